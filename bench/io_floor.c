/* The I/O floor of this machine: what one replicated commit cannot beat, whatever the
 * Raft implementation. Measures
 *   (a) fdatasync latency: records of 16..64 bytes appended with pwrite + fdatasync to a
 *       file preallocated with fallocate (as craft's WAL segments are), under --dir;
 *       for reference, the same into blocks already written (a pure data flush), and
 *       4 KiB tail-block rewrites with O_DIRECT | O_DSYNC (canonical raft's libuv path);
 *   (b) loopback TCP round trip: 64-byte messages echoed by a server thread over
 *       127.0.0.1 with TCP_NODELAY on both ends;
 * and prints one_at_a_time_bound_us = 1.2 * (fdatasync p50 + loopback p50): a commit of
 * one command at a time needs at least one durable write and one round trip to a
 * follower, which itself writes durably in parallel with the leader's own write.
 * Prints figures, never pass/fail. libc and pthreads only.
 *
 *   io_floor [--dir D] [--count K] */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG_BYTES 64
#define RECORD_MIN 16
#define RECORD_MAX 64
#define WARMUP 50

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v and returns its nearest-rank percentile in microseconds. */
static double percentile_us(uint64_t *v, size_t n, unsigned pct)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    size_t rank = (n * pct + 99) / 100;
    return (double)v[rank == 0 ? 0 : rank - 1] / 1e3;
}

enum sync_mode {
    SYNC_FALLOCATED, /* pwrite + fdatasync into fallocated (unwritten) extents */
    SYNC_OVERWRITE,  /* pwrite + fdatasync into blocks already written and synced */
    SYNC_DIRECT,     /* O_DIRECT | O_DSYNC block writes into fallocated extents */
};

#define BLOCK 4096

/* Appends `count` records, one latency sample per record made durable. SYNC_FALLOCATED is
 * what a preallocated WAL segment pays (craft's: each fdatasync also commits the extent
 * conversion); SYNC_OVERWRITE is a pure data flush; SYNC_DIRECT is canonical raft's
 * libuv backend path: the tail block rewritten whole with O_DIRECT | O_DSYNC. Returns 1
 * if the filesystem refuses O_DIRECT (a skip, not an error). */
static int sync_samples(const char *dir, enum sync_mode mode, uint64_t *lat, size_t count)
{
    static const char *const names[] = {"fallocated", "overwrite", "direct"};
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s", dir, names[mode]);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "io_floor: open %s: %s\n", path, strerror(errno));
        return -1;
    }
    off_t size = (off_t)(count + WARMUP) * RECORD_MAX + 2 * BLOCK;
    int err = 0;
    char *block = NULL;
    if (mode == SYNC_OVERWRITE) {
        static const char zeros[BLOCK];
        for (off_t off = 0; off < size && err == 0; off += BLOCK) {
            err = pwrite(fd, zeros, BLOCK, off) == BLOCK ? 0 : -1;
        }
    } else {
        err = posix_fallocate(fd, 0, size) == 0 ? 0 : -1;
    }
    if (err == 0) {
        err = fsync(fd);
    }
    if (err != 0) {
        fprintf(stderr, "io_floor: preparing %s: %s\n", path, strerror(errno));
        goto close_file;
    }
    if (mode == SYNC_DIRECT) {
        /* A second descriptor opened with the flags: fcntl(F_SETFL) takes O_DIRECT but
         * silently ignores O_DSYNC, which would time writes that are not durable. */
        block = aligned_alloc(BLOCK, BLOCK);
        int dfd = open(path, O_RDWR | O_CLOEXEC | O_DIRECT | O_DSYNC);
        if (block == NULL || dfd < 0) {
            err = 1;
            goto close_file;
        }
        close(fd);
        fd = dfd;
        memset(block, 0, BLOCK);
    }
    char rec[RECORD_MAX];
    memset(rec, 0xab, sizeof(rec));
    off_t off = 0;
    for (size_t i = 0; i < count + WARMUP; i++) {
        size_t len = RECORD_MIN + (i * 7) % (RECORD_MAX - RECORD_MIN + 1);
        uint64_t t0 = now_ns();
        int ok;
        if (mode == SYNC_DIRECT) {
            /* Records never straddle a block: a full tail block starts a new one. */
            if (off % BLOCK + (off_t)len > BLOCK) {
                off += BLOCK - off % BLOCK;
                memset(block, 0, BLOCK);
            }
            memcpy(block + off % BLOCK, rec, len);
            ok = pwrite(fd, block, BLOCK, off - off % BLOCK) == BLOCK;
            if (!ok && errno == EINVAL && i == 0) {
                err = 1; /* no O_DIRECT here (tmpfs, some overlays) */
                goto close_file;
            }
        } else {
            ok = pwrite(fd, rec, len, off) == (ssize_t)len && fdatasync(fd) == 0;
        }
        if (!ok) {
            fprintf(stderr, "io_floor: write %s: %s\n", path, strerror(errno));
            err = -1;
            goto close_file;
        }
        if (i >= WARMUP) {
            lat[i - WARMUP] = now_ns() - t0;
        }
        off += (off_t)len;
    }

close_file:
    free(block);
    close(fd);
    unlink(path);
    return err;
}

static int read_full(int fd, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

static int write_full(int fd, const char *buf, size_t len)
{
    size_t put = 0;
    while (put < len) {
        ssize_t n = write(fd, buf + put, len - put);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        put += (size_t)n;
    }
    return 0;
}

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Echo server: accepts one connection and echoes 64-byte messages until it closes. */
static void *echo_main(void *arg)
{
    int lfd = *(int *)arg;
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
        return NULL;
    }
    set_nodelay(fd);
    char buf[MSG_BYTES];
    while (read_full(fd, buf, sizeof(buf)) == 0 && write_full(fd, buf, sizeof(buf)) == 0) {
    }
    close(fd);
    return NULL;
}

static int rtt_samples(uint64_t *lat, size_t count)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(addr);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(lfd, 1) != 0
        || getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0) {
        fprintf(stderr, "io_floor: listen: %s\n", strerror(errno));
        if (lfd >= 0) {
            close(lfd);
        }
        return -1;
    }
    pthread_t server;
    if (pthread_create(&server, NULL, echo_main, &lfd) != 0) {
        fprintf(stderr, "io_floor: pthread_create failed\n");
        close(lfd);
        return -1;
    }
    int err = -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        fprintf(stderr, "io_floor: connect: %s\n", strerror(errno));
        /* Unblock the server's accept so that it can be joined. */
        shutdown(lfd, SHUT_RDWR);
        goto join_server;
    }
    set_nodelay(fd);
    char out[MSG_BYTES], in[MSG_BYTES];
    memset(out, 0x5a, sizeof(out));
    for (size_t i = 0; i < count + WARMUP; i++) {
        uint64_t t0 = now_ns();
        if (write_full(fd, out, sizeof(out)) != 0 || read_full(fd, in, sizeof(in)) != 0) {
            fprintf(stderr, "io_floor: round trip: %s\n", strerror(errno));
            goto join_server;
        }
        if (i >= WARMUP) {
            lat[i - WARMUP] = now_ns() - t0;
        }
    }
    err = 0;

join_server:
    if (fd >= 0) {
        close(fd); /* the server's read sees end of file and it returns */
    }
    pthread_join(server, NULL);
    close(lfd);
    return err;
}

int main(int argc, char **argv)
{
    const char *base_dir = "/tmp";
    size_t count = 2000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            base_dir = argv[++i];
        } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            count = strtoull(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: io_floor [--dir D] [--count K]\n");
            return 2;
        }
    }
    if (count == 0) {
        fprintf(stderr, "io_floor: --count must be > 0\n");
        return 2;
    }
    uint64_t *lat = calloc(count, sizeof(*lat));
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/io-floor-XXXXXX", base_dir);
    if (lat == NULL || mkdtemp(dir) == NULL) {
        fprintf(stderr, "io_floor: setup in %s: %s\n", base_dir, strerror(errno));
        free(lat);
        return 1;
    }
    int status = 0;
    double sync_p50 = 0, rtt_p50 = 0;
    if (sync_samples(dir, SYNC_FALLOCATED, lat, count) == 0) {
        sync_p50 = percentile_us(lat, count, 50);
        printf("io_floor fdatasync p50_us=%.0f p99_us=%.0f\n", sync_p50,
               percentile_us(lat, count, 99));
    } else {
        status = 1;
    }
    if (sync_samples(dir, SYNC_OVERWRITE, lat, count) == 0) {
        printf("io_floor fdatasync_overwrite p50_us=%.0f p99_us=%.0f\n",
               percentile_us(lat, count, 50), percentile_us(lat, count, 99));
    } else {
        status = 1;
    }
    int err = sync_samples(dir, SYNC_DIRECT, lat, count);
    if (err == 0) {
        printf("io_floor direct_dsync p50_us=%.0f p99_us=%.0f\n",
               percentile_us(lat, count, 50), percentile_us(lat, count, 99));
    } else if (err > 0) {
        fprintf(stderr, "io_floor: no O_DIRECT in %s: direct_dsync skipped\n", base_dir);
    } else {
        status = 1;
    }
    rmdir(dir);
    if (rtt_samples(lat, count) == 0) {
        rtt_p50 = percentile_us(lat, count, 50);
        printf("io_floor loopback_rtt p50_us=%.1f p99_us=%.1f\n", rtt_p50,
               percentile_us(lat, count, 99));
    } else {
        status = 1;
    }
    if (status == 0) {
        printf("io_floor one_at_a_time_bound_us=%.0f\n", 1.2 * (sync_p50 + rtt_p50));
    }
    free(lat);
    return status;
}
