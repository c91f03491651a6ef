/* The MIT 6.5840 shardkv tests (Lab 5B, challenges included) on the simulator's shard groups
 * (src/sim/shardkv_service.h): a controller group and three shard groups (gids 100-102) of
 * three replicas each, on three processes. Adapted to Redis Cluster's 16384 slots: keys map
 * to slots by CRC16, so where the Go tests count keys per shard from "first byte mod 10",
 * these count them from the configuration (which group owns each key's slot). Shutting a
 * group down crashes its three replicas alone (ShutdownGroup); the processes and their
 * other groups keep running. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "shard/slots.h"
#include "shardkv_scenarios.h"
#include "sim/cluster.h"
#include "sim/ctrler_service.h"
#include "sim/linearize.h"
#include "sim/shardkv_service.h"

#define NSERVERS    3
#define NGROUPS     3
#define OP_BUDGET   30000u /* a Get that never returns hangs the Go test: ours fails it */
#define CTL_BUDGET  20000u
#define NKEYS_MAX   30
#define VALUE_MAX   1100

struct st {
    struct sim_cluster *c;
    struct sim_ctl *ctl;
    struct sim_ctl_clerk *mck;
    struct sim_skv *s;
    struct sim_skv_clerk *ck;
    int nkeys;
    char keys[NKEYS_MAX][16];
    char vals[NKEYS_MAX][VALUE_MAX * 4];
};

static struct st t;

static void begin(bool unreliable, int maxraftstate, const char *title)
{
    memset(&t, 0, sizeof t);
    struct sim_cluster_opts opts;
    sim_cluster_opts_default(&opts, NSERVERS, unreliable, false);
    opts.long_delays = false;
    t.ctl = sim_ctl_create(NSERVERS, -1); /* the controller is never crashed */
    sim_ctl_set_opts(t.ctl, &opts);
    t.c = sim_cluster_create(&opts);
    sim_ctl_bind(t.ctl, t.c);
    t.mck = sim_ctl_clerk(t.ctl);
    t.s = sim_skv_create(t.c, t.ctl, NGROUPS, maxraftstate);
    t.ck = sim_skv_clerk(t.s, 0);
    sim_note(t.c, "Test: %s", title);
}

static void end(void)
{
    sim_cluster_destroy(t.c);
    sim_skv_destroy(t.s);
    sim_ctl_destroy(t.ctl);
}

static void join(int g)
{
    struct craft_shard_group d = sim_skv_group(t.s, g);
    sim_ctl_join(t.mck, &d, 1, CTL_BUDGET);
}

static void joinm(const int *gs, int n)
{
    struct craft_shard_group d[NGROUPS];
    for (int k = 0; k < n; k++) {
        d[k] = sim_skv_group(t.s, gs[k]);
    }
    sim_ctl_join(t.mck, d, (size_t)n, CTL_BUDGET);
}

static void leave(int g)
{
    uint64_t gid = sim_skv_gid(t.s, g);
    sim_ctl_leave(t.mck, &gid, 1, CTL_BUDGET);
}

static void leavem(const int *gs, int n)
{
    uint64_t gids[NGROUPS];
    for (int k = 0; k < n; k++) {
        gids[k] = sim_skv_gid(t.s, gs[k]);
    }
    sim_ctl_leave(t.mck, gids, (size_t)n, CTL_BUDGET);
}

static void rand_value(char *out, size_t n)
{
    static const char abc[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (size_t i = 0; i < n; i++) {
        out[i] = abc[sim_rand(t.c, 0, sizeof abc - 1)];
    }
    out[n] = '\0';
}

/* Puts keys "0".."n-1" with random values of vlen bytes. */
static void put_keys(int n, size_t vlen)
{
    t.nkeys = n;
    for (int i = 0; i < n; i++) {
        snprintf(t.keys[i], sizeof t.keys[i], "%d", i);
        rand_value(t.vals[i], vlen);
        sim_skv_put(t.ck, t.keys[i], t.vals[i], OP_BUDGET);
    }
}

static void check_all(void)
{
    for (int i = 0; i < t.nkeys; i++) {
        sim_skv_check(t.ck, t.keys[i], t.vals[i], OP_BUDGET);
    }
}

static void check_and_append_all(size_t vlen)
{
    for (int i = 0; i < t.nkeys; i++) {
        sim_skv_check(t.ck, t.keys[i], t.vals[i], OP_BUDGET);
        char x[32];
        rand_value(x, vlen);
        sim_skv_append(t.ck, t.keys[i], x, OP_BUDGET);
        strcat(t.vals[i], x);
    }
}

/* The group owning key's slot in the latest configuration. */
static uint64_t owner(const char *key)
{
    const struct craft_shard_config *c = sim_ctl_query(t.mck, CRAFT_SHARD_QUERY_LATEST,
                                                       CTL_BUDGET);
    return craft_shard_slot_gid(c, craft_key_slot((const uint8_t *)key, strlen(key)));
}

/* Every group shut down (all at once), then every group started again. */
static void restart_all_groups(void)
{
    for (int g = 0; g < NGROUPS; g++) {
        sim_skv_shutdown_group(t.s, g);
    }
    for (int g = 0; g < NGROUPS; g++) {
        sim_skv_start_group(t.s, g);
    }
}

/* ---- TestStaticShards ---- */

static int completions;

static void counted(struct sim_skv_clerk *ck, void *arg, const char *val, size_t len)
{
    (void)ck;
    (void)len;
    int i = (int)(intptr_t)arg;
    if (strcmp(val, t.vals[i]) != 0) {
        sim_fail(t.c, "Get(%s): expected:\n%s\nreceived:\n%s", t.keys[i], t.vals[i], val);
    }
    completions++;
}

void sim_skv_static_shards(void)
{
    begin(false, -1, "static shards");
    join(0);
    join(1);
    put_keys(10, 20);
    check_all();
    sim_skv_shutdown_group(t.s, 1);
    sim_skv_check_logs(t.s);
    int expect = 0;
    for (int i = 0; i < t.nkeys; i++) {
        expect += owner(t.keys[i]) == sim_skv_gid(t.s, 0);
    }
    completions = 0;
    for (int i = 0; i < t.nkeys; i++) {
        struct sim_skv_clerk *ck = sim_skv_clerk(t.s, (uint64_t)i + 1);
        sim_skv_op(ck, SIM_LIN_GET, t.keys[i], NULL, counted, (void *)(intptr_t)i);
    }
    /* Collect completions until 2 s pass without one. */
    int seen = -1;
    while (seen != completions) {
        seen = completions;
        sim_sleep(t.c, 2000);
    }
    if (completions != expect) {
        sim_fail(t.c, "expected %d completions with one group dead; got %d", expect, completions);
    }
    sim_skv_start_group(t.s, 1);
    check_all();
    end();
}

/* ---- TestJoinLeave ---- */

void sim_skv_join_leave(void)
{
    begin(false, -1, "join then leave");
    join(0);
    put_keys(10, 5);
    join(1);
    check_and_append_all(5);
    leave(0);
    check_and_append_all(5);
    sim_sleep(t.c, 1000);
    sim_skv_check_logs(t.s);
    sim_skv_shutdown_group(t.s, 0);
    check_all(); /* group 100's data moved to 101 */
    end();
}

/* ---- TestSnapshot ---- */

void sim_skv_snapshot(void)
{
    begin(false, 1000, "snapshots, join, and leave");
    join(0);
    put_keys(30, 20);
    join(1);
    join(2);
    leave(0);
    check_and_append_all(20);
    leave(1);
    join(0);
    check_and_append_all(20);
    sim_sleep(t.c, 1000);
    check_all();
    sim_sleep(t.c, 1000);
    sim_skv_check_logs(t.s);
    restart_all_groups();
    check_all();
    end();
}

/* ---- TestMissChange ---- */

static void replica_of_each(int i, bool up)
{
    for (int g = 0; g < NGROUPS; g++) {
        if (up) {
            sim_replica_start(sim_skv_cluster(t.s, g), i);
        } else {
            sim_replica_crash(sim_skv_cluster(t.s, g), i);
        }
    }
}

void sim_skv_miss_change(void)
{
    begin(false, 1000, "servers miss configuration changes");
    join(0);
    put_keys(10, 20);
    join(1);
    replica_of_each(0, false);
    join(2);
    leave(1);
    leave(0);
    check_and_append_all(20);
    join(1);
    check_and_append_all(20);
    replica_of_each(0, true);
    check_and_append_all(20);
    sim_sleep(t.c, 2000);
    replica_of_each(1, false);
    join(0);
    leave(2);
    check_and_append_all(20);
    replica_of_each(1, true);
    check_all();
    end();
}

/* ---- concurrent appenders (TestConcurrent1-3, TestUnreliable2) ---- */

struct stopper {
    bool stop, stopped;
};

struct appender {
    struct stopper st;
    struct sim_skv_clerk *ck;
    int key;
    uint64_t pause_ms; /* between appends */
    size_t vlen;
    char next[32];
};

static struct appender apps[NKEYS_MAX];

static void append_next(struct sim_cluster *c, void *arg);

static void appended(struct sim_skv_clerk *ck, void *arg, const char *val, size_t len)
{
    struct appender *a = arg;
    (void)ck;
    (void)val;
    (void)len;
    strcat(t.vals[a->key], a->next); /* acknowledged: part of the expected value */
    sim_task_at(t.c, a->pause_ms, append_next, a);
}

static void append_next(struct sim_cluster *c, void *arg)
{
    struct appender *a = arg;
    (void)c;
    if (a->st.stop || strlen(t.vals[a->key]) + a->vlen >= sizeof t.vals[0] - 1) {
        a->st.stopped = true;
        return;
    }
    rand_value(a->next, a->vlen);
    sim_skv_op(a->ck, SIM_LIN_APPEND, t.keys[a->key], a->next, appended, a);
}

static void start_appenders(uint64_t pause_ms, size_t vlen)
{
    for (int i = 0; i < t.nkeys; i++) {
        apps[i] = (struct appender){.ck = sim_skv_clerk(t.s, (uint64_t)i + 1), .key = i,
                                    .pause_ms = pause_ms, .vlen = vlen};
        append_next(t.c, &apps[i]);
    }
}

/* Asks n client tasks to stop and waits until every one has finished its op in flight. */
static void stop_all(struct stopper *const *tasks, int n, const char *what)
{
    for (int i = 0; i < n; i++) {
        tasks[i]->stop = true;
    }
    uint64_t start = sim_now(t.c);
    for (int i = 0; i < n; i++) {
        while (!tasks[i]->stopped) {
            if (sim_now(t.c) - start > OP_BUDGET) {
                sim_fail(t.c, "%s %d did not finish within %u ms", what, i, OP_BUDGET);
            }
            sim_sleep(t.c, 10);
        }
    }
}

static void stop_appenders(void)
{
    struct stopper *tasks[NKEYS_MAX];
    for (int i = 0; i < t.nkeys; i++) {
        tasks[i] = &apps[i].st;
    }
    stop_all(tasks, t.nkeys, "appender");
}

void sim_skv_concurrent1(void)
{
    begin(false, 100, "concurrent puts and configuration changes");
    join(0);
    put_keys(10, 20);
    start_appenders(10, 5);
    sim_sleep(t.c, 150);
    join(1);
    sim_sleep(t.c, 500);
    join(2);
    sim_sleep(t.c, 500);
    leave(0);
    sim_skv_shutdown_group(t.s, 0);
    sim_sleep(t.c, 100);
    sim_skv_shutdown_group(t.s, 1);
    sim_sleep(t.c, 100);
    sim_skv_shutdown_group(t.s, 2);
    leave(2);
    sim_sleep(t.c, 100);
    for (int g = 0; g < NGROUPS; g++) {
        sim_skv_start_group(t.s, g);
    }
    sim_sleep(t.c, 100);
    join(0);
    leave(1);
    sim_sleep(t.c, 500);
    join(1);
    sim_sleep(t.c, 1000);
    stop_appenders();
    check_all();
    end();
}

void sim_skv_concurrent2(void)
{
    begin(false, -1, "more concurrent puts and configuration changes");
    join(1);
    join(0);
    join(2);
    put_keys(10, 1);
    start_appenders(50, 1);
    leave(0);
    leave(2);
    sim_sleep(t.c, 3000);
    join(0);
    join(2);
    leave(1);
    sim_sleep(t.c, 3000);
    join(1);
    leave(0);
    leave(2);
    sim_sleep(t.c, 3000);
    sim_skv_shutdown_group(t.s, 1);
    sim_skv_shutdown_group(t.s, 2);
    sim_sleep(t.c, 1000);
    sim_skv_start_group(t.s, 1);
    sim_skv_start_group(t.s, 2);
    sim_sleep(t.c, 2000);
    stop_appenders();
    check_all();
    end();
}

void sim_skv_concurrent3(void)
{
    begin(false, 300, "concurrent configuration change and restart");
    join(0);
    put_keys(10, 1);
    start_appenders(0, 1);
    uint64_t start = sim_now(t.c);
    while (sim_now(t.c) - start < 12000) {
        join(2);
        join(1);
        sim_sleep(t.c, sim_rand(t.c, 0, 900));
        restart_all_groups();
        sim_sleep(t.c, sim_rand(t.c, 0, 900));
        leave(1);
        leave(2);
        sim_sleep(t.c, sim_rand(t.c, 0, 900));
    }
    sim_sleep(t.c, 2000);
    stop_appenders();
    check_all();
    end();
}

/* ---- unreliable ---- */

void sim_skv_unreliable1(void)
{
    begin(true, 100, "unreliable 1");
    join(0);
    put_keys(10, 5);
    join(1);
    join(2);
    leave(0);
    for (int ii = 0; ii < 2 * t.nkeys; ii++) {
        int i = ii % t.nkeys;
        sim_skv_check(t.ck, t.keys[i], t.vals[i], OP_BUDGET);
        char x[8];
        rand_value(x, 5);
        sim_skv_append(t.ck, t.keys[i], x, OP_BUDGET);
        strcat(t.vals[i], x);
    }
    join(0);
    leave(1);
    for (int ii = 0; ii < 2 * t.nkeys; ii++) {
        int i = ii % t.nkeys;
        sim_skv_check(t.ck, t.keys[i], t.vals[i], OP_BUDGET);
    }
    end();
}

static void reconfigure_timeline(void)
{
    sim_sleep(t.c, 150);
    join(1);
    sim_sleep(t.c, 500);
    join(2);
    sim_sleep(t.c, 500);
    leave(0);
    sim_sleep(t.c, 500);
    leave(1);
    sim_sleep(t.c, 500);
    join(1);
    join(0);
    sim_sleep(t.c, 2000);
}

void sim_skv_unreliable2(void)
{
    begin(true, 100, "unreliable 2");
    join(0);
    put_keys(10, 5);
    start_appenders(0, 5);
    reconfigure_timeline();
    sim_set_reliable(t.c, true);
    stop_appenders();
    check_all();
    end();
}

/* Random clients: Append (50%), Put (5%), else Get, on random keys; the history must be
 * linearizable. */
struct rclient {
    struct stopper st;
    struct sim_skv_clerk *ck;
    char v[16];
};

static struct rclient rcs[10];

static void rclient_next(struct sim_cluster *c, void *arg);

static void rclient_done(struct sim_skv_clerk *ck, void *arg, const char *val, size_t len)
{
    (void)ck;
    (void)val;
    (void)len;
    rclient_next(t.c, arg);
}

static void rclient_next(struct sim_cluster *c, void *arg)
{
    struct rclient *r = arg;
    if (r->st.stop) {
        r->st.stopped = true;
        return;
    }
    const char *key = t.keys[sim_rand(c, 0, (uint64_t)t.nkeys)];
    uint64_t p = sim_rand(c, 0, 100);
    rand_value(r->v, 5);
    uint8_t kind = p < 50 ? SIM_LIN_APPEND : p < 55 ? SIM_LIN_PUT : SIM_LIN_GET;
    sim_skv_op(r->ck, kind, key, kind == SIM_LIN_GET ? NULL : r->v, rclient_done, r);
}

void sim_skv_unreliable3(void)
{
    begin(true, 100, "unreliable 3");
    join(0);
    put_keys(10, 5);
    for (int i = 0; i < 10; i++) {
        rcs[i] = (struct rclient){.ck = sim_skv_clerk(t.s, (uint64_t)i + 1)};
        rclient_next(t.c, &rcs[i]);
    }
    reconfigure_timeline();
    sim_set_reliable(t.c, true);
    struct stopper *tasks[10];
    for (int i = 0; i < 10; i++) {
        tasks[i] = &rcs[i].st;
    }
    stop_all(tasks, 10, "client");
    sim_skv_check_history(t.s, 2000000);
    end();
}

/* ---- challenges ---- */

/* Old slots are deleted once handed over: the state of every replica stays bounded. */
void sim_skv_challenge1_delete(void)
{
    begin(false, 1, "shard deletion (challenge 1)");
    join(0);
    put_keys(30, 1000);
    for (int i = 0; i < 3; i++) {
        sim_skv_check(t.ck, t.keys[i], t.vals[i], OP_BUDGET);
    }
    for (int iters = 0; iters < 2; iters++) {
        join(1);
        leave(0);
        join(2);
        sim_sleep(t.c, 3000);
        check_all();
        leave(1);
        join(0);
        leave(2);
        sim_sleep(t.c, 3000);
        check_all();
    }
    join(1);
    join(2);
    for (int k = 0; k < 3; k++) {
        sim_sleep(t.c, 1000);
        check_all();
    }
    /* 3 copies of 30 KB of values, plus the Go test's allowance for Raft state and
     * snapshot overhead (its bound: 3 x (27*1000 + 2*3*1000 + 6000) = 117000), scaled by
     * the simulator's MIT RaftStateSize estimate, which counts the same bytes. */
    size_t total = sim_skv_total_bytes(t.s);
    size_t bound = 3 * (27 * 1000 + 2 * 3 * 1000 + 6000);
    if (total > bound) {
        sim_fail(t.c, "snapshot + persisted Raft state are too big: %zu > %zu", total, bound);
    }
    check_all();
    end();
}

/* Keys "0".."9" all set to v. */
static void put_ten(const char *v)
{
    t.nkeys = 10;
    for (int i = 0; i < t.nkeys; i++) {
        snprintf(t.keys[i], sizeof t.keys[i], "%d", i);
        strcpy(t.vals[i], v);
        sim_skv_put(t.ck, t.keys[i], t.vals[i], OP_BUDGET);
    }
}

/* Which keys group g owns in the latest configuration. */
static void owned_by(int g, bool *owned)
{
    for (int i = 0; i < t.nkeys; i++) {
        owned[i] = owner(t.keys[i]) == sim_skv_gid(t.s, g);
    }
}

/* For every owned key: check it, append suffix with a Put, check again. */
static void check_update(const bool *owned, const char *suffix)
{
    for (int i = 0; i < t.nkeys; i++) {
        if (owned[i]) {
            sim_skv_check(t.ck, t.keys[i], t.vals[i], OP_BUDGET);
            strcat(t.vals[i], suffix);
            sim_skv_put(t.ck, t.keys[i], t.vals[i], OP_BUDGET);
            sim_skv_check(t.ck, t.keys[i], t.vals[i], OP_BUDGET);
        }
    }
}

/* While a configuration is stuck (its group 100 is down and leaving), group 101 serves the
 * slots it already owned. */
void sim_skv_challenge2_unaffected(void)
{
    begin(true, 100, "unaffected shard access (challenge 2)");
    join(0);
    put_ten("100");
    join(1);
    bool owned[NKEYS_MAX];
    owned_by(1, owned);
    sim_sleep(t.c, 1000);
    for (int i = 0; i < t.nkeys; i++) {
        if (owned[i]) {
            strcpy(t.vals[i], "101");
            sim_skv_put(t.ck, t.keys[i], t.vals[i], OP_BUDGET);
        }
    }
    sim_skv_shutdown_group(t.s, 0);
    leave(0);
    sim_sleep(t.c, 1000);
    check_update(owned, "-1");
    end();
}

/* Group 101 takes everything from 100 (down) and 102: it serves 102's former slots as soon
 * as it has them, though 100's never arrive. */
void sim_skv_challenge2_partial(void)
{
    begin(true, 100, "partial migration shard access (challenge 2)");
    joinm((const int[]){0, 1, 2}, 3);
    sim_sleep(t.c, 1000);
    put_ten("100");
    bool owned[NKEYS_MAX];
    owned_by(2, owned);
    sim_skv_shutdown_group(t.s, 0);
    leavem((const int[]){0, 2}, 2);
    sim_sleep(t.c, 1000);
    check_update(owned, "-2");
    end();
}
