/* Many Raft groups per process (craft_host_*): 3 hosts in this process over TCP on
 * 127.0.0.1, each with a replica of every group. Storage: each host's shared log under
 * --dir (one write-ahead log for all its groups, fdatasync on), or with --group-dirs a
 * data directory (WAL) per group. Figures, each printed as one line:
 *
 *   idle: with --groups groups elected and nothing proposed, the CPU (utime + stime of
 *     this process, all 3 hosts) per host over --idle-s seconds, in % of one core, and per
 *     group. The target (issue 10) is < 2 % of a core per process with 1,000 groups: it
 *     needs coalesced heartbeats and quiescence (docs/design/multiraft.md, step 5).
 *   busy: --inflight commands of 16 bytes kept in flight on every group's leader for
 *     --busy-s seconds; commits/s of all groups together, against the same load on one
 *     group in the same run (same storage), and fdatasyncs (all hosts) per committed
 *     entry. Target: at least the single group's rate, with one fdatasync per round for
 *     all groups. With the shared log, the same load on a data directory per group follows
 *     in the same run, for comparison.
 *
 * Prints figures, never pass/fail; exits 1 if the run itself fails (no leader, an error
 * future, a stall).
 *
 *   host_bench [--groups N] [--inflight N] [--idle-s S] [--busy-s S] [--dir D]
 *              [--idle-only] [--idle-mem] [--group-dirs]
 * --idle-mem: the idle groups keep their logs in memory; --idle-only: skip the busy part;
 * --group-dirs: a data directory per group (each preallocates a 4 MiB segment: 1,000
 * groups x 3 hosts reserve 12 GiB). */
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "craft.h"
#include "loopback_ports.h"
#include "../tests/counter_fsm.h"

#define HOSTS 3
#define CMD_BYTES 16
#define LEADER_WAIT_MS 60000
#define STALL_MS 30000

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

enum stores { STORES_MEM, STORES_SHARED_LOG, STORES_GROUP_DIRS };
static const char *const stores_name[] = {"mem", "shared-log", "group-dirs"};

struct world {
    int groups;
    enum stores stores;
    char dir[1024];
    uint16_t ports[HOSTS + 1];
    struct craft_host *hosts[HOSTS + 1];
    struct craft_node **g[HOSTS + 1]; /* [host][group index] */
    struct counter *fsms[HOSTS + 1];
};


static void servers(const struct world *w, struct craft_server *s)
{
    for (int i = 0; i < HOSTS; i++) {
        memset(&s[i], 0, sizeof s[i]);
        s[i].id = (uint64_t)i + 1;
        s[i].voter = true;
        snprintf(s[i].addr, sizeof s[i].addr, "127.0.0.1:%u", w->ports[i + 1]);
    }
}

static int world_start(struct world *w, int groups, enum stores stores, const char *base)
{
    memset(w, 0, sizeof *w);
    w->groups = groups;
    w->stores = stores;
    snprintf(w->dir, sizeof w->dir, "%s/craft-host-bench-XXXXXX", base);
    if (mkdtemp(w->dir) == NULL || bench_pick_ports(w->ports, HOSTS) != 0) {
        fprintf(stderr, "cannot make %s or pick ports\n", w->dir);
        return -1;
    }
    struct craft_server s[HOSTS];
    servers(w, s);
    for (int h = 1; h <= HOSTS; h++) {
        w->g[h] = calloc((size_t)groups, sizeof *w->g[h]);
        w->fsms[h] = calloc((size_t)groups, sizeof *w->fsms[h]);
        struct craft_host_config hc;
        craft_host_config_default(&hc, (uint64_t)h);
        snprintf(hc.listen_addr, sizeof hc.listen_addr, "127.0.0.1:%u", w->ports[h]);
        hc.peers = s;
        hc.n_peers = HOSTS;
        char hdir[1200];
        snprintf(hdir, sizeof hdir, "%s/h%d", w->dir, h);
        hc.data_dir = stores == STORES_SHARED_LOG ? hdir : NULL;
        hc.log_segment_bytes = 16u << 20;
        char err[256];
        if (w->g[h] == NULL || w->fsms[h] == NULL ||
            craft_host_create(&hc, &w->hosts[h], err, sizeof err) != CRAFT_OK) {
            fprintf(stderr, "host %d: %s\n", h, err);
            return -1;
        }
        for (int gi = 0; gi < groups; gi++) {
            pthread_mutex_init(&w->fsms[h][gi].mu, NULL);
            struct craft_config cfg;
            craft_config_default(&cfg, (uint64_t)h);
            char dir[1200];
            snprintf(dir, sizeof dir, "%s/h%d-g%d", w->dir, h, gi + 1);
            cfg.data_dir = stores == STORES_GROUP_DIRS ? dir : NULL;
            /* The smallest segment: each group's log preallocates one (64 MiB by default:
             * 64 groups x 3 hosts would reserve 12 GiB of /tmp). */
            cfg.wal_segment_bytes = 4u << 20;
            cfg.initial_servers = s;
            cfg.n_initial_servers = HOSTS;
            cfg.snapshot_threshold_entries = 0;
            cfg.snapshot_threshold_bytes = 0;
            struct craft_fsm fsm = counter_fsm(&w->fsms[h][gi]);
            if (craft_host_add_group(w->hosts[h], (uint64_t)gi + 1, &cfg, &fsm, &w->g[h][gi], err,
                                     sizeof err) != CRAFT_OK) {
                fprintf(stderr, "host %d group %d: %s\n", h, gi + 1, err);
                return -1;
            }
        }
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void world_stop(struct world *w)
{
    for (int h = 1; h <= HOSTS; h++) {
        craft_host_destroy(w->hosts[h]);
        for (int gi = 0; gi < w->groups && w->fsms[h] != NULL; gi++) {
            pthread_mutex_destroy(&w->fsms[h][gi].mu);
        }
        free(w->g[h]);
        free(w->fsms[h]);
    }
    nftw(w->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The leader of group gi, once one replica leads; NULL after the wait. */
static struct craft_node *leader_of(struct world *w, int gi, uint64_t deadline)
{
    while (now_ms() < deadline) {
        for (int h = 1; h <= HOSTS; h++) {
            if (craft_state(w->g[h][gi]) == CRAFT_LEADER) {
                return w->g[h][gi];
            }
        }
        usleep(2000);
    }
    return NULL;
}

static uint64_t syncs_total(struct world *w)
{
    uint64_t syncs = 0;
    for (int h = 1; h <= HOSTS; h++) {
        struct craft_host_stats hs;
        craft_host_stats(w->hosts[h], &hs);
        syncs += hs.log_syncs; /* the shared log's, once for all its groups */
        for (int gi = 0; gi < w->groups && w->stores == STORES_GROUP_DIRS; gi++) {
            struct craft_stats st;
            craft_stats(w->g[h][gi], &st);
            syncs += st.disk_syncs;
        }
    }
    return syncs;
}

/* Keeps `inflight` commands in flight on every group's leader for busy_s seconds;
 * returns the commands committed (-1 on failure), and the fdatasyncs meanwhile. */
static int64_t busy(struct world *w, int inflight, double busy_s, uint64_t *syncs)
{
    size_t n = (size_t)w->groups * (size_t)inflight;
    struct craft_future **fs = calloc(n, sizeof *fs);
    struct craft_node **leaders = calloc((size_t)w->groups, sizeof *leaders);
    uint64_t *since = calloc(n, sizeof *since);
    if (fs == NULL || leaders == NULL || since == NULL) {
        free(fs);
        free(leaders);
        free(since);
        return -1;
    }
    int64_t done = 0;
    uint8_t cmd[CMD_BYTES] = {1};
    uint64_t syncs0 = syncs_total(w);
    uint64_t start = now_ms(), end = start + (uint64_t)(busy_s * 1000);
    bool failed = false;
    while (!failed) {
        uint64_t now = now_ms();
        bool submitting = now < end;
        bool pending = false;
        for (int gi = 0; gi < w->groups && !failed; gi++) {
            if (leaders[gi] == NULL || craft_state(leaders[gi]) != CRAFT_LEADER) {
                leaders[gi] = leader_of(w, gi, now + LEADER_WAIT_MS);
                if (leaders[gi] == NULL) {
                    fprintf(stderr, "group %d: no leader\n", gi + 1);
                    failed = true;
                    break;
                }
            }
            craft_batch_begin(leaders[gi]);
            for (int k = 0; k < inflight; k++) {
                size_t i = (size_t)gi * (size_t)inflight + (size_t)k;
                if (fs[i] != NULL && craft_future_done(fs[i])) {
                    int rc = craft_future_wait(fs[i], 0);
                    craft_future_release(fs[i]);
                    fs[i] = NULL;
                    if (rc == CRAFT_OK) {
                        done++;
                    } else if (rc != CRAFT_ENOTLEADER && rc != CRAFT_ESHUTDOWN) {
                        fprintf(stderr, "group %d: apply failed: %s\n", gi + 1,
                                craft_strerror(rc));
                        failed = true;
                    }
                } else if (fs[i] != NULL && now - since[i] > STALL_MS) {
                    fprintf(stderr, "group %d: a command stalled\n", gi + 1);
                    failed = true;
                }
                if (fs[i] == NULL && submitting) {
                    fs[i] = craft_apply(leaders[gi], cmd, CMD_BYTES, 5000);
                    since[i] = now;
                }
                pending = pending || fs[i] != NULL;
            }
            craft_batch_end(leaders[gi]);
        }
        if (!submitting && !pending) {
            break;
        }
        usleep(200);
    }
    for (size_t i = 0; i < n; i++) {
        if (fs[i] != NULL) {
            craft_future_release(fs[i]);
        }
    }
    *syncs = syncs_total(w) - syncs0;
    free(fs);
    free(leaders);
    free(since);
    return failed ? -1 : done;
}

static int run_busy(int groups, enum stores stores, int inflight, double busy_s, const char *dir,
                    double *rate, double *syncs_per_entry)
{
    struct world w;
    int rc = world_start(&w, groups, stores, dir);
    for (int gi = 0; gi < groups && rc == 0; gi++) {
        rc = leader_of(&w, gi, now_ms() + LEADER_WAIT_MS) != NULL ? 0 : -1;
    }
    uint64_t syncs = 0;
    int64_t done = rc == 0 ? busy(&w, inflight, busy_s, &syncs) : -1;
    world_stop(&w);
    if (done <= 0) {
        return -1;
    }
    *rate = (double)done / busy_s;
    *syncs_per_entry = (double)syncs / (double)done;
    return 0;
}

int main(int argc, char **argv)
{
    int groups = 64, inflight = 8;
    double idle_s = 5, busy_s = 5;
    const char *dir = "/tmp";
    bool idle_only = false, idle_mem = false;
    enum stores disk = STORES_SHARED_LOG;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--group-dirs") == 0) {
            disk = STORES_GROUP_DIRS;
            continue;
        }
        if (strcmp(argv[i], "--idle-only") == 0) {
            idle_only = true;
            continue;
        }
        if (strcmp(argv[i], "--idle-mem") == 0) {
            idle_mem = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "option %s needs a value\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--groups") == 0) {
            groups = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--inflight") == 0) {
            inflight = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--idle-s") == 0) {
            idle_s = atof(argv[i + 1]);
        } else if (strcmp(argv[i], "--busy-s") == 0) {
            busy_s = atof(argv[i + 1]);
        } else if (strcmp(argv[i], "--dir") == 0) {
            dir = argv[i + 1];
        } else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
        i++;
    }
    if (groups < 1 || inflight < 1 || idle_s <= 0 || busy_s <= 0) {
        fprintf(stderr, "usage: host_bench [--groups N>=1] [--inflight N>=1] [--idle-s S] "
                        "[--busy-s S] [--dir D] [--idle-only] [--idle-mem] [--group-dirs]\n");
        return 2;
    }

    /* Idle: every group elected, nothing proposed. */
    struct world w;
    enum stores idle_stores = idle_mem ? STORES_MEM : disk;
    if (world_start(&w, groups, idle_stores, dir) != 0) {
        world_stop(&w);
        return 1;
    }
    for (int gi = 0; gi < groups; gi++) {
        if (leader_of(&w, gi, now_ms() + LEADER_WAIT_MS) == NULL) {
            fprintf(stderr, "group %d: no leader\n", gi + 1);
            world_stop(&w);
            return 1;
        }
    }
    sleep(1); /* elections settle */
    double c0 = cpu_s();
    uint64_t t0 = now_ms();
    usleep((useconds_t)(idle_s * 1e6));
    double cpu = cpu_s() - c0, wall = (double)(now_ms() - t0) / 1000.0;
    struct craft_host_stats hs;
    craft_host_stats(w.hosts[1], &hs);
    world_stop(&w);
    double per_host = 100.0 * cpu / wall / HOSTS;
    printf("host idle groups=%d stores=%s quiesced_on_host1=%" PRIu64 " cpu_pct_per_host=%.2f "
           "cpu_pct_per_group=%.4f (target: < 2%% per host at 1000 groups)\n",
           groups, stores_name[idle_stores], hs.groups_quiesced, per_host, per_host / groups);
    if (idle_only) {
        return 0;
    }

    /* Busy: the same load per group on 1 group and on `groups` groups, and (shared log)
     * on `groups` groups with a data directory each. */
    double r1, s1, rg, sg, rd = 0, sd = 0;
    if (run_busy(1, disk, inflight, busy_s, dir, &r1, &s1) != 0 ||
        run_busy(groups, disk, inflight, busy_s, dir, &rg, &sg) != 0 ||
        (disk == STORES_SHARED_LOG &&
         run_busy(groups, STORES_GROUP_DIRS, inflight, busy_s, dir, &rd, &sd) != 0)) {
        return 1;
    }
    printf("host busy stores=%s inflight_per_group=%d groups=1 commits_per_s=%.0f "
           "syncs_per_entry=%.3f\n",
           stores_name[disk], inflight, r1, s1);
    printf("host busy stores=%s inflight_per_group=%d groups=%d commits_per_s=%.0f "
           "syncs_per_entry=%.3f ratio_to_one_group=%.2f (target: >= 1.0, one fdatasync per "
           "round for all groups)\n",
           stores_name[disk], inflight, groups, rg, sg, rg / r1);
    if (disk == STORES_SHARED_LOG) {
        printf("host busy stores=group-dirs inflight_per_group=%d groups=%d commits_per_s=%.0f "
               "syncs_per_entry=%.3f ratio_to_shared_log=%.2f\n",
               inflight, groups, rd, sd, rd / rg);
    }
    return 0;
}
