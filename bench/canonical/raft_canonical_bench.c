/* The comparison side of craft's runtime benchmark: canonical raft (libraft 0.15, libuv)
 * driven in the shape of craft's own bench. Three nodes in one process on one uv loop,
 * each with the libuv disk backend over its own fresh directory on the real disk and the
 * libuv TCP transport on 127.0.0.1. After a leader is elected:
 *   (a) one producer keeps --inflight commands (default 256) of 16 bytes in flight for
 *       --commands commands: commits/s and p50/p99 commit latency;
 *   (b) one command at a time for --single commands: p50/p99 latency.
 * Latency is submit (raft_apply) to the apply callback on the leader. Prints figures,
 * never pass/fail. Not built by the Makefile: scripts/bench_canonical.sh builds it.
 *
 *   raft_canonical_bench [--dir D] [--base-port P] [--commands N] [--single N]
 *                        [--inflight N] [--warmup N] [--snapshot-threshold N] */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw, mkdtemp */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>

#define N_NODES 3
#define CMD_BYTES 16
#define LEADER_WAIT_S 30.0
#define RUN_WAIT_S 600.0

struct node {
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft raft;
    uint64_t count; /* the FSM: commands applied */
    char dir[1100];
    char address[64];
    int closed;
};

/* One in-flight command: its request and when it was submitted. */
struct slot {
    struct raft_apply req;
    uint64_t submit_ns;
};

struct run {
    struct raft *leader;
    struct slot *slots;
    uint64_t *lat_ns;     /* one per completed command */
    uint64_t target;      /* commands to complete */
    uint64_t submitted;
    uint64_t completed;   /* callbacks with status 0 */
    uint64_t answered;    /* every callback, failed ones included */
    uint64_t seq;         /* payload counter, unique across runs */
    int failed;           /* first non-zero status or submit error */
    uint64_t start_ns, end_ns;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct node *n = fsm->data;
    if (buf->len != CMD_BYTES) {
        return RAFT_MALFORMED;
    }
    n->count++;
    *result = NULL;
    return 0;
}

/* Snapshots are part of canonical raft's normal running (every 1024 entries by default),
 * so the FSM must provide them; the state is one counter. Raft owns what we allocate. */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct node *n = fsm->data;
    struct raft_buffer *b = raft_malloc(sizeof(*b));
    if (b == NULL) {
        return RAFT_NOMEM;
    }
    b->len = sizeof(n->count);
    b->base = raft_malloc(b->len);
    if (b->base == NULL) {
        raft_free(b);
        return RAFT_NOMEM;
    }
    memcpy(b->base, &n->count, sizeof(n->count));
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

/* Restore takes ownership of buf->base on success. */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct node *n = fsm->data;
    if (buf->len != sizeof(n->count)) {
        return RAFT_MALFORMED;
    }
    memcpy(&n->count, buf->base, sizeof(n->count));
    raft_free(buf->base);
    return 0;
}

static int submit(struct run *r, struct slot *s);

/* raft_apply's callback carries only the request, so the run in progress is a global: one
 * run at a time, on the loop's one thread. */
static struct run *current_run;

static void on_applied(struct raft_apply *req, int status, void *result)
{
    (void)result;
    struct run *r = current_run;
    struct slot *s = req->data;
    uint64_t t = now_ns();
    r->answered++;
    if (status != 0) {
        if (r->failed == 0) {
            r->failed = status;
            fprintf(stderr, "canonical: apply failed: %s\n", raft_strerror(status));
        }
        return;
    }
    r->lat_ns[r->completed++] = t - s->submit_ns;
    if (r->completed == r->target) {
        r->end_ns = t;
    }
    if (r->failed == 0 && r->submitted < r->target) {
        submit(r, s);
    }
}

static int submit(struct run *r, struct slot *s)
{
    struct raft_buffer buf = {.base = raft_malloc(CMD_BYTES), .len = CMD_BYTES};
    if (buf.base == NULL) {
        r->failed = RAFT_NOMEM;
        return RAFT_NOMEM;
    }
    memset(buf.base, 0, CMD_BYTES);
    memcpy(buf.base, &r->seq, sizeof(r->seq));
    r->seq++;
    s->req.data = s;
    s->submit_ns = now_ns();
    int rv = raft_apply(r->leader, &s->req, &buf, 1, on_applied);
    if (rv != 0) {
        /* Ownership of the payload stays with us when raft_apply fails. */
        raft_free(buf.base);
        if (r->failed == 0) {
            r->failed = rv;
            fprintf(stderr, "canonical: raft_apply: %s: %s\n", raft_strerror(rv),
                    raft_errmsg(r->leader));
        }
        return rv;
    }
    r->submitted++;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static uint64_t percentile(const uint64_t *v, uint64_t n, unsigned pct)
{
    uint64_t rank = (n * pct + 99) / 100;
    return v[rank == 0 ? 0 : rank - 1];
}

/* Runs the loop until cond() or the deadline; returns 0 if cond() became true. */
static int run_until(uv_loop_t *loop, int (*cond)(void *), void *arg, double seconds)
{
    uint64_t deadline = now_ns() + (uint64_t)(seconds * 1e9);
    while (!cond(arg)) {
        if (now_ns() > deadline) {
            return -1;
        }
        uv_run(loop, UV_RUN_ONCE);
    }
    return 0;
}

static int run_done(void *arg)
{
    struct run *r = arg;
    return r->completed == r->target || (r->failed != 0 && r->answered == r->submitted);
}

/* One run: keeps `inflight` commands outstanding until `count` have completed, and prints
 * the figures line if `print` (not for the warm-up). */
static int measure(uv_loop_t *loop, struct raft *leader, uint64_t *seq, unsigned inflight,
                   uint64_t count, int print)
{
    struct run *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        fprintf(stderr, "canonical: out of memory\n");
        return 1;
    }
    *r = (struct run){.leader = leader, .target = count, .seq = *seq};
    r->slots = calloc(inflight, sizeof(*r->slots));
    r->lat_ns = calloc(count, sizeof(*r->lat_ns));
    if (r->slots == NULL || r->lat_ns == NULL) {
        fprintf(stderr, "canonical: out of memory\n");
        goto free_run;
    }
    current_run = r;
    r->start_ns = now_ns();
    for (unsigned k = 0; k < inflight && r->submitted < count && r->failed == 0; k++) {
        submit(r, &r->slots[k]);
    }
    int timed_out = run_until(loop, run_done, r, RUN_WAIT_S) != 0;
    *seq = r->seq;
    if (timed_out || r->failed != 0 || r->completed != count) {
        fprintf(stderr, "canonical: run inflight=%u stopped after %llu of %llu commands%s\n",
                inflight, (unsigned long long)r->completed, (unsigned long long)count,
                timed_out ? " (timed out)" : "");
        /* Requests still inside raft point into r->slots and raft will fail them at close:
         * leave the run allocated (and current) for those callbacks. */
        if (r->submitted != r->answered) {
            return 1;
        }
        current_run = NULL;
        free(r->slots);
        free(r->lat_ns);
        free(r);
        return 1;
    }
    if (print) {
        qsort(r->lat_ns, count, sizeof(*r->lat_ns), cmp_u64);
        double secs = (double)(r->end_ns - r->start_ns) / 1e9;
        printf("canonical inflight=%u commands=%llu commits_per_s=%.0f p50_us=%.0f "
               "p99_us=%.0f\n",
               inflight, (unsigned long long)count, (double)count / secs,
               (double)percentile(r->lat_ns, count, 50) / 1e3,
               (double)percentile(r->lat_ns, count, 99) / 1e3);
        fflush(stdout);
    }
    current_run = NULL;
    free(r->slots);
    free(r->lat_ns);
    free(r);
    return 0;

free_run:
    free(r->slots);
    free(r->lat_ns);
    free(r);
    return 1;
}

static struct raft *find_leader(struct node *nodes)
{
    for (int i = 0; i < N_NODES; i++) {
        if (raft_state(&nodes[i].raft) == RAFT_LEADER) {
            return &nodes[i].raft;
        }
    }
    return NULL;
}

static int has_leader(void *arg)
{
    return find_leader(arg) != NULL;
}

static void on_closed(struct raft *raft)
{
    struct node *n = raft->data;
    raft_uv_close(&n->io);
    raft_uv_tcp_close(&n->transport);
    n->closed = 1;
}

static int all_closed(void *arg)
{
    struct node *nodes = arg;
    for (int i = 0; i < N_NODES; i++) {
        if (!nodes[i].closed) {
            return 0;
        }
    }
    return 1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

/* Picks N_NODES distinct free ports by binding to port 0; the sockets are closed before
 * raft binds (libuv sets SO_REUSEADDR, so the short race is harmless in practice). */
static int pick_ports(unsigned ports[N_NODES])
{
    int fds[N_NODES];
    int err = 0;
    for (int i = 0; i < N_NODES; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(a);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof(a)) != 0
            || getsockname(fds[i], (struct sockaddr *)&a, &len) != 0) {
            err = -1;
            ports[i] = 0;
        } else {
            ports[i] = ntohs(a.sin_port);
        }
    }
    for (int i = 0; i < N_NODES; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    return err;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: raft_canonical_bench [--dir D] [--base-port P] [--commands N] "
            "[--single N] [--inflight N] [--warmup N] [--snapshot-threshold N]\n");
}

int main(int argc, char **argv)
{
    const char *base_dir = "/tmp";
    unsigned base_port = 0;
    uint64_t n_commands = 50000, n_single = 2000, n_warmup = 200;
    unsigned inflight = 256, snapshot_threshold = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--dir") == 0) {
            base_dir = v;
        } else if (strcmp(a, "--base-port") == 0) {
            base_port = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--commands") == 0) {
            n_commands = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--single") == 0) {
            n_single = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--inflight") == 0) {
            inflight = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--warmup") == 0) {
            n_warmup = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--snapshot-threshold") == 0) {
            snapshot_threshold = (unsigned)strtoul(v, NULL, 10);
        } else {
            usage();
            return 2;
        }
    }
    if (inflight == 0 || base_port > 65535 - N_NODES) {
        usage();
        return 2;
    }

    char root[1024];
    snprintf(root, sizeof(root), "%s/raft-canonical-XXXXXX", base_dir);
    if (mkdtemp(root) == NULL) {
        fprintf(stderr, "canonical: mkdtemp %s: %s\n", root, strerror(errno));
        return 1;
    }
    unsigned ports[N_NODES];
    if (base_port != 0) {
        for (int i = 0; i < N_NODES; i++) {
            ports[i] = base_port + (unsigned)i;
        }
    } else if (pick_ports(ports) != 0) {
        fprintf(stderr, "canonical: cannot pick free ports: %s\n", strerror(errno));
        return 1;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct node *nodes = calloc(N_NODES, sizeof(*nodes));
    if (nodes == NULL) {
        fprintf(stderr, "canonical: out of memory\n");
        return 1;
    }
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int status = 0;
    int started = 0;
    for (int i = 0; i < N_NODES; i++) {
        snprintf(nodes[i].address, sizeof(nodes[i].address), "127.0.0.1:%u", ports[i]);
        if (raft_configuration_add(&conf, (raft_id)(i + 1), nodes[i].address, RAFT_VOTER)
            != 0) {
            fprintf(stderr, "canonical: configuration_add failed\n");
            return 1;
        }
    }
    for (int i = 0; i < N_NODES; i++) {
        struct node *n = &nodes[i];
        snprintf(n->dir, sizeof(n->dir), "%s/node%d", root, i + 1);
        if (mkdir(n->dir, 0755) != 0) {
            fprintf(stderr, "canonical: mkdir %s: %s\n", n->dir, strerror(errno));
            status = 1;
            break;
        }
        n->fsm = (struct raft_fsm){.version = 1, .data = n, .apply = fsm_apply,
                                   .snapshot = fsm_snapshot, .restore = fsm_restore};
        int rv = raft_uv_tcp_init(&n->transport, &loop);
        if (rv == 0) {
            rv = raft_uv_init(&n->io, &loop, n->dir, &n->transport);
        }
        if (rv == 0) {
            rv = raft_init(&n->raft, &n->io, &n->fsm, (raft_id)(i + 1), n->address);
        }
        if (rv != 0) {
            fprintf(stderr, "canonical: node %d init: %s: %s\n", i + 1, raft_strerror(rv),
                    n->io.errmsg);
            status = 1;
            break;
        }
        n->raft.data = n;
        if (snapshot_threshold != 0) {
            raft_set_snapshot_threshold(&n->raft, snapshot_threshold);
        }
        rv = raft_bootstrap(&n->raft, &conf);
        if (rv == 0) {
            rv = raft_start(&n->raft);
        }
        if (rv != 0) {
            fprintf(stderr, "canonical: node %d start: %s: %s\n", i + 1, raft_strerror(rv),
                    raft_errmsg(&n->raft));
            status = 1;
            break;
        }
        started = i + 1;
    }
    raft_configuration_close(&conf);

    struct raft *leader = NULL;
    if (status == 0) {
        uint64_t t0 = now_ns();
        if (run_until(&loop, has_leader, nodes, LEADER_WAIT_S) != 0) {
            fprintf(stderr, "canonical: no leader after %.0f s\n", LEADER_WAIT_S);
            status = 1;
        } else {
            leader = find_leader(nodes);
            fprintf(stderr, "canonical: leader %llu elected after %.0f ms (ports %u %u %u, dir %s)\n",
                    leader->id, (double)(now_ns() - t0) / 1e6,
                    ports[0], ports[1], ports[2], root);
        }
    }
    uint64_t seq = 0;
    /* The warm-up lets every connection get established before anything is timed. */
    if (status == 0 && n_warmup > 0) {
        status = measure(&loop, leader, &seq, 1, n_warmup, 0);
    }
    if (status == 0 && n_commands > 0) {
        status = measure(&loop, leader, &seq, inflight, n_commands, 1);
    }
    if (status == 0 && n_single > 0) {
        status = measure(&loop, leader, &seq, 1, n_single, 1);
    }

    for (int i = 0; i < N_NODES; i++) {
        if (i < started) {
            raft_close(&nodes[i].raft, on_closed);
        } else {
            nodes[i].closed = 1; /* never started: nothing of it is on the loop */
        }
    }
    run_until(&loop, all_closed, nodes, 30.0);
    uv_run(&loop, UV_RUN_DEFAULT); /* let handles finish closing */
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "canonical: uv loop still busy at exit\n");
    }
    free(nodes);
    if (nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        fprintf(stderr, "canonical: cannot remove %s: %s\n", root, strerror(errno));
    }
    return status;
}
