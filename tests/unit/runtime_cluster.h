/* A cluster of threaded nodes in one process for the runtime tests: the counter state
 * machine of tests/counter_fsm.h on each node, nodes over the in-memory network or TCP on
 * loopback, with or without data directories. */
#ifndef CRAFT_TESTS_RUNTIME_CLUSTER_H
#define CRAFT_TESTS_RUNTIME_CLUSTER_H

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../counter_fsm.h"
#include "craft.h"
#include "unit.h"

/* Nodes created from now on apply on the raft loop (craft_config.apply_on_loop). */
static bool rc_apply_on_loop;

static inline uint64_t rc_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Valgrind runs every thread of the process on one core, many times slower: tests scale
 * their load down under it (its preload library is in LD_PRELOAD). */
static inline bool rc_under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p != NULL && strstr(p, "vgpreload") != NULL;
}

#define RC_NODES_MAX 7

struct rcluster {
    int n;
    bool tcp;
    char base_dir[256]; /* "" : in-memory storage */
    struct craft_mem_net *net;
    struct craft_node *nodes[RC_NODES_MAX + 1]; /* by id 1..n */
    struct counter fsms[RC_NODES_MAX + 1];
    uint16_t ports[RC_NODES_MAX + 1];
    uint32_t election_timeout_ms, heartbeat_ms;
    uint64_t snapshot_threshold, trailing;
    bool auto_promote;
    /* Optional, zero by default: an observer for every node (its ctx per node id), and a
     * hook that adjusts each node's configuration just before create. */
    craft_observer_fn observer;
    void *observer_ctx[RC_NODES_MAX + 1];
    void (*tweak)(struct craft_config *cfg, void *ctx);
    void *tweak_ctx;
};

/* A free loopback port, found by binding and closing (a small race with other processes,
 * acceptable for tests). Ports are drawn below the kernel's ephemeral range: a port from
 * that range, free now, may become the local end of a node's outgoing connection before
 * the node that was meant to listen on it starts (nodes added later in a test). */
#include <netinet/in.h>
#include <sys/socket.h>
static inline bool rc_port_bindable(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return false;
    }
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static inline uint16_t rc_free_port(void)
{
    static atomic_uint draws;
    unsigned lo = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f != NULL) {
        if (fscanf(f, "%u", &lo) != 1) {
            lo = 32768;
        }
        fclose(f);
    }
    if (lo > 12000) {
        /* Spread over [10000, lo) by pid and draw, so that concurrent test processes
         * rarely try the same ports. */
        unsigned span = lo - 10000;
        unsigned base = (unsigned)getpid() * 7919u;
        for (int tries = 0; tries < 64; tries++) {
            unsigned k = atomic_fetch_add(&draws, 1);
            uint16_t port = (uint16_t)(10000 + (base + k * 104729u) % span);
            if (rc_port_bindable(port)) {
                return port;
            }
        }
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t sl = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &sl);
    close(fd);
    return ntohs(a.sin_port);
}

/* Sanitizer builds run several times slower, and the test command runs them on a busy
 * machine: they get valgrind's longer timeouts too. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define RC_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define RC_SANITIZED 1
#endif
#endif
#ifndef RC_SANITIZED
#define RC_SANITIZED 0
#endif

/* The tests' protocol timing: short, but long enough under valgrind and sanitizers. */
static inline void rc_timing(uint32_t *election_timeout_ms, uint32_t *heartbeat_ms)
{
    *election_timeout_ms = 300;
    *heartbeat_ms = 30;
    if (rc_under_valgrind() || RC_SANITIZED) {
        /* Serialized threads can miss a 300 ms election timeout, and even 1 s on a loaded
         * machine: no spurious elections. */
        *election_timeout_ms = 2000;
        *heartbeat_ms = 150;
    }
}

static inline void rc_init(struct rcluster *c, int n, bool tcp, bool disk)
{
    memset(c, 0, sizeof *c);
    c->n = n;
    c->tcp = tcp;
    rc_timing(&c->election_timeout_ms, &c->heartbeat_ms);
    c->snapshot_threshold = 0;
    c->trailing = 1024;
    if (disk) {
        snprintf(c->base_dir, sizeof c->base_dir, "/tmp/craft-rt-XXXXXX");
        if (mkdtemp(c->base_dir) == NULL) {
            perror("mkdtemp");
            exit(1);
        }
    }
    if (!tcp) {
        c->net = craft_mem_net_create();
    }
    for (int i = 1; i <= RC_NODES_MAX; i++) {
        pthread_mutex_init(&c->fsms[i].mu, NULL);
        c->ports[i] = tcp ? rc_free_port() : 0;
    }
}

static inline void rc_server(const struct rcluster *c, uint64_t id, struct craft_server *s)
{
    memset(s, 0, sizeof *s);
    s->id = id;
    s->voter = true;
    if (c->tcp) {
        snprintf(s->addr, sizeof s->addr, "127.0.0.1:%u", c->ports[id]);
    }
}

/* Starts node id. bootstrap: it is one of the initial servers 1..c->n. On failure the
 * node's error line is copied to errbuf (if not NULL). */
static inline int rc_start_err(struct rcluster *c, uint64_t id, bool bootstrap, char *errbuf,
                               size_t errbuf_cap)
{
    struct craft_config cfg;
    craft_config_default(&cfg, id);
    char dir[300];
    if (c->base_dir[0] != '\0') {
        snprintf(dir, sizeof dir, "%s/n%" PRIu64, c->base_dir, id);
        cfg.data_dir = dir;
    }
    struct craft_server servers[RC_NODES_MAX];
    for (int i = 0; i < RC_NODES_MAX; i++) {
        rc_server(c, (uint64_t)i + 1, &servers[i]);
    }
    if (c->tcp) {
        cfg.transport = CRAFT_TRANSPORT_TCP;
        snprintf(cfg.listen_addr, sizeof cfg.listen_addr, "127.0.0.1:%u", c->ports[id]);
        cfg.peers = servers;
        cfg.n_peers = RC_NODES_MAX;
    } else {
        cfg.transport = CRAFT_TRANSPORT_MEM;
        cfg.mem_net = c->net;
    }
    if (bootstrap) {
        cfg.initial_servers = servers;
        cfg.n_initial_servers = (size_t)c->n;
    }
    cfg.election_timeout_ms = c->election_timeout_ms;
    cfg.heartbeat_ms = c->heartbeat_ms;
    cfg.snapshot_threshold_entries = c->snapshot_threshold;
    cfg.snapshot_threshold_bytes = 0;
    cfg.trailing_entries = c->trailing;
    cfg.auto_promote = c->auto_promote;
    cfg.apply_on_loop = rc_apply_on_loop;
    cfg.observer = c->observer;
    cfg.observer_ctx = c->observer_ctx[id];
    if (c->tweak != NULL) {
        c->tweak(&cfg, c->tweak_ctx);
    }
    struct craft_fsm fsm = counter_fsm(&c->fsms[id]);
    char err[512];
    int rc = craft_node_create(&cfg, &fsm, &c->nodes[id], err, sizeof err);
    if (rc != CRAFT_OK) {
        fprintf(stderr, "node %" PRIu64 ": %s\n", id, err);
    }
    if (errbuf != NULL && errbuf_cap > 0) {
        snprintf(errbuf, errbuf_cap, "%s", rc != CRAFT_OK ? err : "");
    }
    return rc;
}

/* Starts node id. bootstrap: it is one of the initial servers 1..c->n. */
static inline int rc_start(struct rcluster *c, uint64_t id, bool bootstrap)
{
    return rc_start_err(c, id, bootstrap, NULL, 0);
}

static inline void rc_stop(struct rcluster *c, uint64_t id)
{
    craft_node_destroy(c->nodes[id]);
    c->nodes[id] = NULL;
}

static inline void rc_destroy(struct rcluster *c)
{
    for (int i = 1; i <= RC_NODES_MAX; i++) {
        if (c->nodes[i] != NULL) {
            rc_stop(c, (uint64_t)i);
        }
        pthread_mutex_destroy(&c->fsms[i].mu);
    }
    craft_mem_net_destroy(c->net);
    if (c->base_dir[0] != '\0') {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", c->base_dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "cannot remove %s\n", c->base_dir);
        }
    }
}

/* Waits until one running node is leader and every running node agrees; returns its id or 0
 * after timeout_ms. */
static inline uint64_t rc_wait_leader(struct rcluster *c, uint64_t timeout_ms)
{
    uint64_t end = rc_mono_ms() + timeout_ms;
    while (rc_mono_ms() < end) {
        uint64_t leader = 0;
        bool agree = true;
        for (int i = 1; i <= RC_NODES_MAX; i++) {
            if (c->nodes[i] != NULL && craft_state(c->nodes[i]) == CRAFT_LEADER) {
                leader = (uint64_t)i;
            }
        }
        for (int i = 1; i <= RC_NODES_MAX && leader; i++) {
            if (c->nodes[i] != NULL && craft_leader(c->nodes[i], NULL, 0) != leader) {
                agree = false;
            }
        }
        if (leader != 0 && agree) {
            return leader;
        }
        usleep(5000);
    }
    return 0;
}

/* Starts nodes 1..c->n of a cluster set up by rc_init (and adjusted after it) and waits for
 * a leader: its id, or 0 (a failed check; the cluster is still set up, to be destroyed by
 * the caller). */
static inline uint64_t rc_start_all(struct rcluster *c, uint64_t timeout_ms)
{
    for (uint64_t i = 1; i <= (uint64_t)c->n; i++) {
        CHECK(rc_start(c, i, true) == CRAFT_OK);
    }
    uint64_t leader = rc_wait_leader(c, timeout_ms);
    CHECK(leader != 0);
    return leader;
}

/* Applies one increment through whichever node leads, retrying across leader changes.
 * Returns 0 or the last error. */
static inline int rc_apply(struct rcluster *c, uint64_t delta, uint64_t timeout_ms)
{
    uint64_t end = rc_mono_ms() + timeout_ms;
    int rc = CRAFT_ETIMEOUT;
    while (rc_mono_ms() < end) {
        uint64_t leader = rc_wait_leader(c, end - rc_mono_ms());
        if (leader == 0) {
            break;
        }
        struct craft_future *f = craft_apply(c->nodes[leader], &delta, 8, 1000);
        rc = craft_future_wait(f, 5000);
        craft_future_release(f);
        if (rc == CRAFT_OK) {
            return rc;
        }
        usleep(10000);
    }
    return rc;
}

/* Waits until every running node's counter reaches total. */
static inline bool rc_wait_total(struct rcluster *c, uint64_t total, uint64_t timeout_ms)
{
    uint64_t end = rc_mono_ms() + timeout_ms;
    while (rc_mono_ms() < end) {
        bool all = true;
        for (int i = 1; i <= RC_NODES_MAX; i++) {
            if (c->nodes[i] != NULL && counter_total(&c->fsms[i]) != total) {
                all = false;
            }
        }
        if (all) {
            return true;
        }
        usleep(5000);
    }
    return false;
}

/* ---- helpers for the runtime's proof tests ---- */

/* A node restarted in this process starts from an empty state machine, as a new process
 * would: whatever it shows afterwards came from its snapshot, its log and the leader. */
static inline void rc_reset_counter(struct rcluster *c, uint64_t id)
{
    struct counter *k = &c->fsms[id];
    pthread_mutex_lock(&k->mu);
    k->total = k->applied = k->n_cmds = k->restores = 0;
    pthread_mutex_unlock(&k->mu);
}

/* Restarts a stopped node from what its storage holds (no initial servers). */
static inline int rc_restart(struct rcluster *c, uint64_t id)
{
    rc_reset_counter(c, id);
    return rc_start(c, id, false);
}

static inline void rc_node_dir(const struct rcluster *c, uint64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/n%" PRIu64, c->base_dir, id);
}

/* "127.0.0.1:port" of node id with TCP, "" with the in-memory network. */
static inline void rc_addr(const struct rcluster *c, uint64_t id, char *buf, size_t cap)
{
    if (c->tcp) {
        snprintf(buf, cap, "127.0.0.1:%u", c->ports[id]);
    } else if (cap > 0) {
        buf[0] = '\0';
    }
}

static inline bool rc_conf_has(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

static inline bool rc_is_voter(const struct craft_conf *conf, uint64_t id)
{
    return rc_conf_has(conf->voters, conf->n_voters, id);
}

static inline bool rc_is_learner(const struct craft_conf *conf, uint64_t id)
{
    return rc_conf_has(conf->learners, conf->n_learners, id);
}

/* Waits until node's configuration in force, committed and not joint, lists id as a voter
 * (want 1), a learner (want 2) or not at all (want 0). */
static inline bool rc_wait_conf(struct rcluster *c, uint64_t node, uint64_t id, int want,
                                uint64_t timeout_ms)
{
    uint64_t end = rc_mono_ms() + timeout_ms;
    for (;;) {
        struct craft_stats st;
        craft_stats(c->nodes[node], &st);
        int is = rc_is_voter(&st.conf, id) ? 1 : rc_is_learner(&st.conf, id) ? 2 : 0;
        if (is == want && st.conf.n_voters_outgoing == 0 && st.conf_index <= st.commit) {
            return true;
        }
        if (rc_mono_ms() >= end) {
            return false;
        }
        usleep(5000);
    }
}

/* rc_wait_total, but gives up at once when a running node stopped after an error (its
 * craft_stats.failed): no point waiting for a node that will never apply again. */
static inline bool rc_wait_total_live(struct rcluster *c, uint64_t total, uint64_t timeout_ms)
{
    uint64_t end = rc_mono_ms() + timeout_ms;
    for (;;) {
        if (rc_wait_total(c, total, 100)) {
            return true;
        }
        for (int i = 1; i <= RC_NODES_MAX; i++) {
            if (c->nodes[i] != NULL) {
                struct craft_stats st;
                craft_stats(c->nodes[i], &st);
                if (st.failed != 0) {
                    printf("node %d stopped after an error: %s\n", i, craft_strerror(st.failed));
                    return false;
                }
            }
        }
        if (rc_mono_ms() >= end) {
            return false;
        }
    }
}

/* Prints each running node's state: for the log of a failed check. */
static inline void rc_dump(struct rcluster *c, const char *why)
{
    printf("cluster state (%s):\n", why);
    for (int i = 1; i <= RC_NODES_MAX; i++) {
        if (c->nodes[i] == NULL) {
            continue;
        }
        struct craft_stats st;
        craft_stats(c->nodes[i], &st);
        struct counter_view v = counter_view(&c->fsms[i]);
        printf("  node %d: role %d term %" PRIu64 " leader %" PRIu64 " commit %" PRIu64
               " applied %" PRIu64 " log %" PRIu64 "..%" PRIu64 " snap %" PRIu64
               " persisted %" PRIu64 " installed %" PRIu64 " failed %d | counter total %" PRIu64
               " applied %" PRIu64 " restores %" PRIu64 "\n",
               i, (int)st.role, st.term, st.leader, st.commit, st.applied, st.first_index,
               st.last_index, st.snap_index, st.persisted, st.snapshots_installed, st.failed,
               v.total, v.applied, v.restores);
        for (size_t k = 0; k < st.n_peers; k++) {
            printf("    peer %" PRIu64 ": state %u match %" PRIu64 " next %" PRIu64
                   " active %d inflight %u\n",
                   st.peers[k].id, st.peers[k].state, st.peers[k].match, st.peers[k].next,
                   st.peers[k].recent_active, st.peers[k].inflight_msgs);
        }
    }
}

/* The outcome of a pipelined run of commands through one node. */
struct rc_pipe {
    uint64_t ok, errors;
    int first_err;
    uint64_t bad_results; /* a result that is not the running total */
    uint64_t bad_indexes; /* an index not above the previous future's */
    uint64_t bad_order;   /* a future done while an earlier one was not */
    uint64_t last_index;
};

/* Proposes n increments of 1 through node with up to `window` futures in flight, waiting
 * for them in submission order, and checks what they report: each result is the running
 * total (base + the commands that succeeded so far), indexes increase, and futures
 * complete in commit order (checked by scanning the window from its newest future down:
 * once one is seen done, every older one must be done too). Gives up after timeout_ms;
 * every future is released. */
static inline void rc_pipeline(struct craft_node *node, uint64_t n, uint32_t window, uint64_t base,
                               uint64_t timeout_ms, struct rc_pipe *p)
{
    memset(p, 0, sizeof *p);
    struct craft_future **ring = calloc(window, sizeof *ring);
    if (ring == NULL) {
        p->errors = n;
        p->first_err = CRAFT_ENOMEM;
        return;
    }
    uint64_t end = rc_mono_ms() + timeout_ms;
    uint64_t head = 0, tail = 0, one = 1;
    while (head < n) {
        while (tail < n && tail - head < window) {
            ring[tail % window] = craft_apply(node, &one, 8, 10000);
            tail++;
        }
        struct craft_future *f = ring[head % window];
        uint64_t now = rc_mono_ms();
        int rc = craft_future_wait(f, now < end ? (int64_t)(end - now) : 0);
        if (rc == CRAFT_OK) {
            p->ok++;
            if ((uint64_t)(uintptr_t)craft_future_result(f) != base + p->ok) {
                p->bad_results++;
            }
            uint64_t idx = craft_future_index(f);
            if (idx <= p->last_index) {
                p->bad_indexes++;
            }
            p->last_index = idx;
        } else {
            if (p->errors++ == 0) {
                p->first_err = rc;
            }
        }
        if (head % 64 == 0) {
            bool seen_done = false;
            for (uint64_t k = tail; k-- > head + 1;) {
                bool d = craft_future_done(ring[k % window]);
                if (seen_done && !d) {
                    p->bad_order++;
                    break;
                }
                seen_done = seen_done || d;
            }
        }
        craft_future_release(f);
        head++;
    }
    free(ring);
}

/* The tests' bound on a wait that normally ends in milliseconds. */
#define RC_WAIT_MS 15000

/* rc_init of 3 nodes, then rc_start_all. */
static inline uint64_t rc_start3(struct rcluster *c, bool tcp, bool disk)
{
    rc_init(c, 3, tcp, disk);
    return rc_start_all(c, RC_WAIT_MS);
}

/* rc_pipeline with a check of everything it reports. */
static inline void rc_pipeline_ok(struct craft_node *node, uint64_t n, uint32_t window,
                                  uint64_t base)
{
    struct rc_pipe p;
    rc_pipeline(node, n, window, base, 60000, &p);
    if (p.ok != n) {
        printf("pipeline: %" PRIu64 " of %" PRIu64 " ok, first error %s\n", p.ok, n,
               craft_strerror(p.first_err));
    }
    CHECK(p.ok == n);
    CHECK(p.bad_results == 0);
    CHECK(p.bad_indexes == 0);
    CHECK(p.bad_order == 0);
}

/* Defines the cases test_<fn>_mem and test_<fn>_tcp: fn(false) and fn(true). */
#define RC_CASES_MEM_TCP(fn)                                                                       \
    static void test_##fn##_mem(void)                                                              \
    {                                                                                              \
        fn(false);                                                                                 \
    }                                                                                              \
    static void test_##fn##_tcp(void)                                                              \
    {                                                                                              \
        fn(true);                                                                                  \
    }

/* Runs the two cases RC_CASES_MEM_TCP(fn) defines, as "<fn>_mem" and "<fn>_tcp". */
#define RC_RUN_MEM_TCP(fn)                                                                         \
    do {                                                                                           \
        run_case(#fn "_mem", test_##fn##_mem);                                                     \
        run_case(#fn "_tcp", test_##fn##_tcp);                                                     \
    } while (0)

/* Waits for f and releases it; returns its result code (CRAFT_ETIMEOUT if it did not
 * complete in time). *index, if not NULL, receives its index. */
static inline int rc_wait_release(struct craft_future *f, int64_t timeout_ms, uint64_t *index)
{
    if (f == NULL) {
        return CRAFT_ENOMEM;
    }
    int rc = craft_future_wait(f, timeout_ms);
    if (index != NULL) {
        *index = craft_future_index(f);
    }
    craft_future_release(f);
    return rc;
}

#endif
