/* A cluster of threaded nodes in one process for the runtime tests and benchmarks: a
 * counter state machine (commands are little-endian u64 increments; the result is the new
 * total) with snapshots, nodes over the in-memory network or TCP on loopback, with or
 * without data directories. */
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

#include "craft.h"

struct counter {
    pthread_mutex_t mu; /* guards total/applied against readers on the test thread */
    uint64_t total, applied, n_cmds, restores;
};

static inline uint64_t rc_get_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void counter_apply(void *ctx, const struct craft_command *cmds, size_t n, void **results)
{
    struct counter *c = ctx;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        if (cmds[i].len >= 8) {
            c->total += rc_get_u64(cmds[i].data);
        }
        c->n_cmds++;
        c->applied = cmds[i].index;
        results[i] = (void *)(uintptr_t)c->total;
    }
    pthread_mutex_unlock(&c->mu);
}

static int counter_snapshot(void *ctx, void **snap)
{
    struct counter *c = ctx;
    uint64_t *s = malloc(2 * sizeof *s);
    if (s == NULL) {
        return CRAFT_ENOMEM;
    }
    pthread_mutex_lock(&c->mu);
    s[0] = c->total;
    s[1] = c->n_cmds;
    pthread_mutex_unlock(&c->mu);
    *snap = s;
    return CRAFT_OK;
}

static int counter_snapshot_write(void *ctx, void *snap, struct craft_sink *sink)
{
    (void)ctx;
    return craft_sink_write(sink, snap, 2 * sizeof(uint64_t));
}

static void counter_snapshot_release(void *ctx, void *snap)
{
    (void)ctx;
    free(snap);
}

static int counter_restore(void *ctx, struct craft_source *src)
{
    struct counter *c = ctx;
    uint64_t s[2];
    size_t got = 0;
    while (got < sizeof s) {
        size_t k;
        int rc = craft_source_read(src, (uint8_t *)s + got, sizeof s - got, &k);
        if (rc != CRAFT_OK) {
            return rc;
        }
        if (k == 0) {
            return CRAFT_ECORRUPT;
        }
        got += k;
    }
    pthread_mutex_lock(&c->mu);
    c->total = s[0];
    c->n_cmds = s[1];
    c->restores++;
    pthread_mutex_unlock(&c->mu);
    return CRAFT_OK;
}

static inline struct craft_fsm counter_fsm(struct counter *c)
{
    return (struct craft_fsm){.ctx = c,
                              .apply = counter_apply,
                              .snapshot = counter_snapshot,
                              .snapshot_write = counter_snapshot_write,
                              .snapshot_release = counter_snapshot_release,
                              .restore = counter_restore};
}

static inline uint64_t counter_total(struct counter *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t t = c->total;
    pthread_mutex_unlock(&c->mu);
    return t;
}

static inline uint64_t rc_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
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
};

/* Reserves n free loopback ports by binding port 0 and closing (a small race with other
 * processes, acceptable for tests). */
#include <netinet/in.h>
#include <sys/socket.h>
static inline uint16_t rc_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t sl = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &sl);
    close(fd);
    return ntohs(a.sin_port);
}

static inline void rc_init(struct rcluster *c, int n, bool tcp, bool disk)
{
    memset(c, 0, sizeof *c);
    c->n = n;
    c->tcp = tcp;
    c->election_timeout_ms = 300;
    c->heartbeat_ms = 30;
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

/* Starts node id. bootstrap: it is one of the initial servers 1..c->n. */
static inline int rc_start(struct rcluster *c, uint64_t id, bool bootstrap)
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
    struct craft_fsm fsm = counter_fsm(&c->fsms[id]);
    char err[512];
    int rc = craft_node_create(&cfg, &fsm, &c->nodes[id], err, sizeof err);
    if (rc != CRAFT_OK) {
        fprintf(stderr, "node %" PRIu64 ": %s\n", id, err);
    }
    return rc;
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

#endif
