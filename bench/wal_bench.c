/* WAL append throughput on the real disk: batches of 1 and of 256 entries of 16 bytes,
 * each batch made durable with one fdatasync (group commit). Prints figures, never
 * pass/fail.
 *
 *   wal_bench [dir] [seconds per run]
 * dir defaults to a new directory under $TMPDIR (or /tmp); it is removed afterwards. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/fs.h"
#include "storage/wal.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_one(void *arg, const char *name)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s", (const char *)arg, name);
    return unlink(path) == 0 ? 0 : CRAFT_EIO;
}

static int run(struct craft_fs *fs, const char *dir, size_t batch, double seconds)
{
    struct craft_wal_config cfg;
    craft_wal_config_default(&cfg);
    struct craft_wal *w;
    char msg[512];
    int err = craft_wal_open(fs, dir, &cfg, &w, msg, sizeof(msg));
    if (err != 0) {
        fprintf(stderr, "open %s: %s: %s\n", dir, craft_strerror(err), msg);
        return 1;
    }
    struct craft_entry *es = calloc(batch, sizeof(*es));
    static const uint8_t payload[16] = "0123456789abcdef";
    uint64_t next = craft_wal_last_index(w) + 1;
    uint64_t n_batches = 0;
    double t0 = now_s(), t;
    do {
        for (size_t k = 0; k < batch; k++) {
            es[k] = (struct craft_entry){.term = 1, .index = next + k, .type = 1, .len = 16,
                                         .data = payload};
        }
        err = craft_wal_append(w, es, batch);
        if (err != 0) {
            fprintf(stderr, "append: %s: %s\n", craft_strerror(err), craft_wal_errmsg(w));
            break;
        }
        next += batch;
        n_batches++;
        t = now_s();
    } while (t - t0 < seconds);
    double dt = now_s() - t0;
    printf("batch %4zu x 16 B: %8" PRIu64 " batches in %.2f s: %9.0f batches/s (fdatasyncs/s)"
           " %10.0f entries/s, %.3f ms per batch\n",
           batch, n_batches, dt, (double)n_batches / dt, (double)(n_batches * batch) / dt,
           dt * 1e3 / (double)n_batches);
    free(es);
    craft_wal_close(w);
    fs->list_dir(fs, dir, rm_one, (void *)dir);
    return err != 0;
}

int main(int argc, char **argv)
{
    struct craft_fs fs;
    craft_fs_posix_init(&fs);
    char dir[1024];
    bool made = false;
    if (argc > 1) {
        snprintf(dir, sizeof(dir), "%s", argv[1]);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/craft-wal-bench-XXXXXX", tmp ? tmp : "/tmp");
        if (mkdtemp(dir) == NULL) {
            perror("mkdtemp");
            return 1;
        }
        made = true;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    printf("wal_bench: dir %s, 64 MiB preallocated segments, one fdatasync per batch\n", dir);
    int rc = run(&fs, dir, 1, seconds);
    rc |= run(&fs, dir, 256, seconds);
    if (made) {
        rmdir(dir);
    }
    return rc;
}
