/* The threaded runtime end to end: 3 craft nodes in one process (include/craft.h), a
 * counter state machine (tests/counter_fsm.h), one producer thread keeping --inflight
 * commands of 16 bytes in flight on the leader. Modes:
 *   mem     in-memory network and stores (no disk):  --inflight 4096, --commands 1000000;
 *   tcp     TCP on 127.0.0.1 and data directories under --dir (WAL with fdatasync):
 *           --inflight 256, --commands 200000;
 *   single  as tcp, one command at a time:           --inflight 1, --commands 2000.
 * Latency is craft_apply on the leader to the producer seeing its future complete (the
 * command is committed and applied on the leader); commits/s is commands over the time
 * from the first submit to the last completion. After --warmup commands (not measured) it
 * prints one line in the shape of bench/canonical/raft_canonical_bench.c:
 *   craft mode=tcp inflight=256 commands=200000 commits_per_s=... p50_us=... p99_us=...
 * Diagnostics go to standard error. Prints figures, never pass/fail; exits 1 if the run
 * itself fails (an error future, a timeout, replicas that disagree).
 *
 *   runtime_bench [--mode mem|tcp|single] [--inflight N] [--commands N] [--dir D]
 *                 [--warmup N] [--snapshot-threshold N] [--apply-on-loop]
 * --apply-on-loop: the counter is applied on the raft loop (craft_config.apply_on_loop: it
 * is a state machine of a few nanoseconds per command). */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "craft.h"
#include "loopback_ports.h"
#include "../tests/counter_fsm.h"

#define N_NODES 3
#define CMD_BYTES 16
#define LEADER_WAIT_MS 30000
#define FUTURE_WAIT_MS 30000 /* a command not done by then stops the run (a stall) */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the cluster ---- */

struct bench {
    const char *mode;
    bool tcp;
    char dir[1100]; /* "" : in-memory stores */
    uint16_t ports[N_NODES + 1];
    struct craft_mem_net *net;
    struct craft_node *nodes[N_NODES + 1];
    struct counter fsms[N_NODES + 1];
    uint64_t snapshot_threshold;
    bool apply_on_loop;
};

static int start_node(struct bench *b, uint64_t id)
{
    struct craft_server servers[N_NODES];
    memset(servers, 0, sizeof servers);
    for (int i = 0; i < N_NODES; i++) {
        servers[i].id = (uint64_t)i + 1;
        servers[i].voter = true;
        if (b->tcp) {
            snprintf(servers[i].addr, sizeof servers[i].addr, "127.0.0.1:%u", b->ports[i + 1]);
        }
    }
    struct craft_config cfg;
    craft_config_default(&cfg, id);
    char dir[1200];
    if (b->dir[0] != '\0') {
        snprintf(dir, sizeof dir, "%s/n%" PRIu64, b->dir, id);
        cfg.data_dir = dir;
    }
    if (b->tcp) {
        cfg.transport = CRAFT_TRANSPORT_TCP;
        snprintf(cfg.listen_addr, sizeof cfg.listen_addr, "127.0.0.1:%u", b->ports[id]);
        cfg.peers = servers;
        cfg.n_peers = N_NODES;
    } else {
        cfg.transport = CRAFT_TRANSPORT_MEM;
        cfg.mem_net = b->net;
    }
    cfg.initial_servers = servers;
    cfg.n_initial_servers = N_NODES;
    /* The defaults' timing (election 1 s, heartbeat 100 ms), as the canonical bench keeps
     * canonical raft's. */
    /* The counter snapshots only when asked for (--snapshot-threshold). */
    cfg.snapshot_threshold_entries = b->snapshot_threshold;
    cfg.snapshot_threshold_bytes = 0;
    cfg.apply_on_loop = b->apply_on_loop;
    b->fsms[id] = (struct counter){0};
    pthread_mutex_init(&b->fsms[id].mu, NULL);
    struct craft_fsm fsm = counter_fsm(&b->fsms[id]);
    char err[512];
    int rc = craft_node_create(&cfg, &fsm, &b->nodes[id], err, sizeof err);
    if (rc != CRAFT_OK) {
        fprintf(stderr, "craft: node %" PRIu64 ": %s: %s\n", id, craft_strerror(rc), err);
        pthread_mutex_destroy(&b->fsms[id].mu);
    }
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

static void stop_all(struct bench *b)
{
    for (int i = 1; i <= N_NODES; i++) {
        if (b->nodes[i] != NULL) {
            craft_node_destroy(b->nodes[i]);
            b->nodes[i] = NULL;
            pthread_mutex_destroy(&b->fsms[i].mu);
        }
    }
    craft_mem_net_destroy(b->net);
    b->net = NULL;
    if (b->dir[0] != '\0' && nftw(b->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        fprintf(stderr, "craft: cannot remove %s: %s\n", b->dir, strerror(errno));
    }
}

/* The leader every node agrees on, or 0 after timeout_ms. */
static uint64_t wait_leader(struct bench *b, uint64_t timeout_ms)
{
    uint64_t end = now_ns() + timeout_ms * 1000000u;
    do {
        uint64_t leader = 0;
        for (int i = 1; i <= N_NODES; i++) {
            if (craft_state(b->nodes[i]) == CRAFT_LEADER) {
                leader = (uint64_t)i;
            }
        }
        bool agree = leader != 0;
        for (int i = 1; i <= N_NODES && agree; i++) {
            agree = craft_leader(b->nodes[i], NULL, 0) == leader;
        }
        if (agree) {
            return leader;
        }
        usleep(2000);
    } while (now_ns() < end);
    return 0;
}

/* ---- the producer ---- */

struct slot {
    struct craft_future *f;
    uint64_t t0;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
static double percentile_us(const uint64_t *v, uint64_t n, unsigned pct)
{
    uint64_t rank = (n * pct + 99) / 100;
    return (double)v[rank == 0 ? 0 : rank - 1] / 1e3;
}

/* Keeps `inflight` commands outstanding until `count` completed. Futures complete in
 * commit order, so the oldest one in the ring is the next to complete: the producer
 * collects it as soon as it is done (checked before each submit, so a completion is seen
 * within one submit's time) and only blocks on it when the ring is full. Fills lat[] (if
 * not NULL) and *secs; returns 0 or the first error. */
struct pause {
    uint64_t ns, at; /* the longest time without a completion, and the command ending it */
};

static int run(struct craft_node *leader, uint32_t inflight, uint64_t count, uint64_t *seq,
               uint64_t *lat, double *secs, struct pause *pause)
{
    struct slot *ring = calloc(inflight, sizeof *ring);
    if (ring == NULL) {
        return CRAFT_ENOMEM;
    }
    uint64_t submitted = 0, done = 0;
    int err = CRAFT_OK;
    uint64_t start = now_ns(), last = start;
    *pause = (struct pause){0};
    while (done < count) {
        struct slot *old = &ring[done % inflight];
        bool full = submitted - done == inflight || submitted == count;
        if (submitted > done && (full || craft_future_done(old->f))) {
            int rc = craft_future_wait(old->f, full ? FUTURE_WAIT_MS : 0);
            uint64_t t = now_ns();
            craft_future_release(old->f);
            old->f = NULL;
            if (rc != CRAFT_OK) {
                fprintf(stderr, "craft: command %" PRIu64 " of %" PRIu64 " failed: %s\n", done,
                        count, craft_strerror(rc));
                err = rc;
                break;
            }
            if (lat != NULL) {
                lat[done] = t - old->t0;
            }
            if (t - last > pause->ns) {
                *pause = (struct pause){.ns = t - last, .at = done};
            }
            last = t;
            done++;
            continue;
        }
        struct slot *s = &ring[submitted % inflight];
        uint8_t cmd[CMD_BYTES];
        uint64_t one = 1;
        memcpy(cmd, &one, 8);
        memcpy(cmd + 8, seq, 8);
        (*seq)++;
        s->t0 = now_ns();
        s->f = craft_apply(leader, cmd, CMD_BYTES, FUTURE_WAIT_MS);
        if (s->f == NULL) {
            fprintf(stderr, "craft: craft_apply: out of memory\n");
            err = CRAFT_ENOMEM;
            break;
        }
        submitted++;
    }
    *secs = (double)(now_ns() - start) / 1e9;
    /* After a failure: drop the rest (their outcome no longer matters). */
    for (uint64_t i = done; i < submitted; i++) {
        if (ring[i % inflight].f != NULL) {
            craft_future_release(ring[i % inflight].f);
        }
    }
    free(ring);
    return err;
}

/* Every replica applied every command (all were acknowledged, so each node must reach the
 * total once replication settles). */
static bool replicas_agree(struct bench *b, uint64_t total)
{
    uint64_t end = now_ns() + 10000000000u;
    for (;;) {
        bool all = true;
        for (int i = 1; i <= N_NODES; i++) {
            all = all && counter_view(&b->fsms[i]).n_cmds == total;
        }
        if (all) {
            return true;
        }
        if (now_ns() > end) {
            for (int i = 1; i <= N_NODES; i++) {
                fprintf(stderr, "craft: node %d applied %" PRIu64 " of %" PRIu64 " commands\n",
                        i, counter_view(&b->fsms[i]).n_cmds, total);
            }
            return false;
        }
        usleep(2000);
    }
}

static void print_stats(struct bench *b, uint64_t leader)
{
    for (int i = 1; i <= N_NODES; i++) {
        struct craft_stats st;
        craft_stats(b->nodes[i], &st);
        fprintf(stderr,
                "craft: node %d%s term=%" PRIu64 " commit=%" PRIu64 " disk_writes=%" PRIu64
                " disk_syncs=%" PRIu64 " entries_written=%" PRIu64 " (%.1f per write)"
                " msgs_sent=%" PRIu64 " msgs_received=%" PRIu64 " snapshots=%" PRIu64 "\n",
                i, (uint64_t)i == leader ? " (leader)" : "", st.term, st.commit, st.disk_writes,
                st.disk_syncs, st.entries_written,
                st.disk_writes ? (double)st.entries_written / (double)st.disk_writes : 0.0,
                st.msgs_sent, st.msgs_received, st.snapshots_taken);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: runtime_bench [--mode mem|tcp|single] [--inflight N] [--commands N] "
                    "[--dir D] [--warmup N] [--snapshot-threshold N] [--stats] "
                    "[--apply-on-loop]\n");
}

int main(int argc, char **argv)
{
    const char *mode = "mem", *base_dir = "/tmp";
    uint64_t inflight = 0, commands = 0, warmup = 500, snapshot_threshold = 0;
    bool stats = false, apply_on_loop = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--stats") == 0) {
            stats = true;
            continue;
        }
        if (strcmp(a, "--apply-on-loop") == 0) {
            apply_on_loop = true;
            continue;
        }
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--mode") == 0) {
            mode = v;
        } else if (strcmp(a, "--inflight") == 0) {
            inflight = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--commands") == 0) {
            commands = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--dir") == 0) {
            base_dir = v;
        } else if (strcmp(a, "--warmup") == 0) {
            warmup = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--snapshot-threshold") == 0) {
            snapshot_threshold = strtoull(v, NULL, 10);
        } else {
            usage();
            return 2;
        }
    }
    struct bench *b = calloc(1, sizeof *b);
    if (b == NULL) {
        return 1;
    }
    b->mode = mode;
    b->snapshot_threshold = snapshot_threshold;
    b->apply_on_loop = apply_on_loop;
    if (strcmp(mode, "mem") == 0) {
        inflight = inflight ? inflight : 4096;
        commands = commands ? commands : 1000000;
        b->net = craft_mem_net_create();
    } else if (strcmp(mode, "tcp") == 0 || strcmp(mode, "single") == 0) {
        bool single = mode[0] == 's';
        inflight = inflight ? inflight : single ? 1 : 256;
        commands = commands ? commands : single ? 2000 : 200000;
        b->tcp = true;
        snprintf(b->dir, sizeof b->dir, "%s/craft-bench-XXXXXX", base_dir);
        if (mkdtemp(b->dir) == NULL) {
            fprintf(stderr, "craft: mkdtemp %s: %s\n", b->dir, strerror(errno));
            free(b);
            return 1;
        }
        if (bench_pick_ports(b->ports, N_NODES) != 0) {
            fprintf(stderr, "craft: cannot pick free ports: %s\n", strerror(errno));
            rmdir(b->dir);
            free(b);
            return 1;
        }
    } else {
        usage();
        free(b);
        return 2;
    }
    if (inflight > UINT32_MAX) {
        usage();
        free(b);
        return 2;
    }
    uint64_t *lat = calloc(commands, sizeof *lat);
    int status = 1;
    if (lat == NULL) {
        fprintf(stderr, "craft: out of memory\n");
        goto out;
    }

    uint64_t t_start = now_ns();
    for (uint64_t id = 1; id <= N_NODES; id++) {
        if (start_node(b, id) != CRAFT_OK) {
            goto out;
        }
    }
    uint64_t leader = wait_leader(b, LEADER_WAIT_MS);
    if (leader == 0) {
        fprintf(stderr, "craft: no leader after %d ms\n", LEADER_WAIT_MS);
        goto out;
    }
    fprintf(stderr, "craft: mode=%s leader %" PRIu64 " after %.0f ms%s%s\n", mode, leader,
            (double)(now_ns() - t_start) / 1e6, b->dir[0] ? ", dir " : "", b->dir);

    uint64_t seq = 0;
    double secs;
    struct pause pause;
    if (warmup > 0 &&
        run(b->nodes[leader], (uint32_t)inflight, warmup, &seq, NULL, &secs, &pause) != 0) {
        goto out;
    }
    if (run(b->nodes[leader], (uint32_t)inflight, commands, &seq, lat, &secs, &pause) != 0) {
        goto out;
    }
    if (!replicas_agree(b, seq)) {
        goto out;
    }
    qsort(lat, commands, sizeof *lat, cmp_u64);
    printf("craft mode=%s inflight=%" PRIu64 " commands=%" PRIu64
           " commits_per_s=%.0f p50_us=%.0f p99_us=%.0f\n",
           mode, inflight, commands, (double)commands / secs, percentile_us(lat, commands, 50),
           percentile_us(lat, commands, 99));
    fflush(stdout);
    /* A stall shows here (and in commits/s) while the percentiles may hide it. */
    fprintf(stderr, "craft: max_us=%.0f, longest pause without a completion %.1f ms (before command %" PRIu64 ")\n",
            (double)lat[commands - 1] / 1e3, (double)pause.ns / 1e6, pause.at);
    if (stats) {
        print_stats(b, leader);
    }
    if (wait_leader(b, 0) != leader) {
        fprintf(stderr, "craft: leadership changed during the run\n");
    }
    status = 0;

out:
    stop_all(b);
    free(lat);
    free(b);
    return status;
}
