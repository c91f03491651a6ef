/* The simulator's event queue and network model in isolation, then the whole engine (disk
 * latency, duplication, crashes) and its checkers through sim_run_scenario. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec/msg_codec.h"
#include "sim/cluster.h"
#include "sim/net.h"
#include "sim/scenario.h"
#include "sim/sim_internal.h"
#include "sim/world.h"

static int checks_failed;
static int case_failed;
static uint64_t cur_seed;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            printf("%s:%d: check failed: %s (seed %llu)\n", __FILE__, __LINE__, #cond,   \
                   (unsigned long long)cur_seed);                                        \
            checks_failed++;                                                             \
            case_failed = 1;                                                             \
        }                                                                                \
    } while (0)

static const uint64_t seeds[] = {1, 2, 3, 42, 1234567};
#define N_SEEDS (sizeof seeds / sizeof seeds[0])

/* ---- event queue ---- */

static uint64_t popped_time[4096], popped_a[4096];
static size_t n_popped;

static void record_event(void *ctx, void *arg, uint64_t a)
{
    (void)arg;
    struct sim_world *w = ctx;
    popped_time[n_popped] = w->now;
    popped_a[n_popped] = a;
    n_popped++;
}

static void test_heap_order(void)
{
    for (size_t s = 0; s < N_SEEDS; s++) {
        cur_seed = seeds[s];
        struct sim_world w;
        sim_world_init(&w, cur_seed);
        uint64_t times[2000];
        for (uint64_t k = 0; k < 2000; k++) {
            times[k] = sim_world_rand(&w, 0, 50); /* many ties */
            sim_world_at(&w, times[k], record_event, &w, NULL, k);
        }
        n_popped = 0;
        struct sim_event ev;
        while (sim_world_pop(&w, &ev)) {
            w.now = ev.time;
            ev.fn(ev.ctx, ev.arg, ev.a);
        }
        CHECK(n_popped == 2000);
        for (size_t k = 1; k < n_popped; k++) {
            CHECK(popped_time[k - 1] <= popped_time[k]);
            /* equal times: insertion order */
            if (popped_time[k - 1] == popped_time[k]) {
                CHECK(popped_a[k - 1] < popped_a[k]);
            }
        }
        for (size_t k = 0; k < n_popped; k++) {
            CHECK(times[popped_a[k]] == popped_time[k]);
        }
        sim_world_free(&w);
    }
}

/* ---- network ---- */

struct got {
    int n;
    int from[20000], to[20000];
    uint64_t at[20000];
    uint64_t hash;
};

/* Every test message is sent to group from * 10 + to: the group travels with it. */
static uint64_t group_of(int from, int to)
{
    return (uint64_t)from * 10 + (uint64_t)to;
}

static void on_deliver(void *ctx, int from, int to, uint64_t group, const uint8_t *bytes,
                       size_t len)
{
    struct got *g = ctx;
    CHECK(group == group_of(from, to));
    (void)bytes;
    if (g->n < 20000) {
        g->from[g->n] = from;
        g->to[g->n] = to;
        g->at[g->n] = 0;
    }
    g->n++;
    g->hash = sim_mix64(g->hash ^ ((uint64_t)from << 40 | (uint64_t)to << 32 | len));
}

static size_t make_msg(uint8_t *buf, enum craft_msg_type type, uint64_t from, uint64_t to)
{
    struct craft_msg m = {.type = (uint8_t)type, .from = from, .to = to, .term = 3};
    if (type == CRAFT_MSG_VOTE) {
        m.log_index = 7;
        m.log_term = 2;
    }
    size_t n = craft_msg_encoded_size(&m);
    CHECK(n <= 256);
    return craft_msg_encode(&m, buf);
}

static void drain(struct sim_world *w)
{
    struct sim_event ev;
    while (sim_world_pop(w, &ev)) {
        w->now = ev.time;
        ev.fn(ev.ctx, ev.arg, ev.a);
    }
}

static void net_setup(struct sim_world *w, struct sim_net *net, struct got *g, int n)
{
    sim_world_init(w, cur_seed);
    memset(g, 0, sizeof *g);
    sim_net_init(net, w, n, on_deliver, g);
    for (int i = 0; i < n; i++) {
        sim_net_node_up(net, i);
        for (int j = 0; j < n; j++) {
            sim_net_set_link(net, i, j, i != j);
        }
    }
}

static void net_teardown(struct sim_world *w, struct sim_net *net)
{
    sim_world_free(w);
    sim_net_free(net);
}

static struct got g;

static void test_reliable_counters(void)
{
    for (size_t s = 0; s < N_SEEDS; s++) {
        cur_seed = seeds[s];
        struct sim_world w;
        struct sim_net net;
        net_setup(&w, &net, &g, 3);
        uint8_t req[256], resp[256];
        size_t lq = make_msg(req, CRAFT_MSG_VOTE, 1, 2);
        size_t lr = make_msg(resp, CRAFT_MSG_VOTE_RESP, 2, 1);
        for (int k = 0; k < 100; k++) {
            sim_net_send(&net, 0, 1, group_of(0, 1), req, lq);
            sim_net_send(&net, 1, 0, group_of(1, 0), resp, lr);
        }
        /* requests are counted at send, responses only when delivered */
        CHECK(net.rpc_total == 100);
        CHECK(net.bytes_total == 100 * lq);
        drain(&w);
        CHECK(g.n == 200);
        CHECK(net.rpc_count[1] == 100);
        CHECK(net.rpc_count[0] == 0);
        CHECK(net.bytes_total == 100 * (lq + lr));
        CHECK(w.now <= 1); /* reliable: only the tiny base latency */
        net_teardown(&w, &net);
    }
}

static void test_disabled_and_down(void)
{
    for (size_t s = 0; s < N_SEEDS; s++) {
        cur_seed = seeds[s];
        struct sim_world w;
        struct sim_net net;
        net_setup(&w, &net, &g, 3);
        uint8_t req[256], resp[256];
        size_t lq = make_msg(req, CRAFT_MSG_VOTE, 1, 2);
        size_t lr = make_msg(resp, CRAFT_MSG_VOTE_RESP, 3, 1);

        /* disabled at send: lost but counted as an RPC (labrpc counts every Call) */
        sim_net_set_link(&net, 0, 1, false);
        sim_net_send(&net, 0, 1, group_of(0, 1), req, lq);
        CHECK(net.rpc_total == 1);
        drain(&w);
        CHECK(g.n == 0);

        /* disabled in flight: lost */
        sim_net_set_link(&net, 0, 1, true);
        sim_net_send(&net, 0, 1, group_of(0, 1), req, lq);
        sim_net_set_link(&net, 0, 1, false);
        drain(&w);
        CHECK(g.n == 0);
        sim_net_set_link(&net, 0, 1, true);

        /* receiver crashes and restarts in flight: the new incarnation gets nothing */
        sim_net_send(&net, 0, 1, group_of(0, 1), req, lq);
        sim_net_node_down(&net, 1);
        sim_net_node_up(&net, 1);
        drain(&w);
        CHECK(g.n == 0);
        CHECK(net.rpc_count[1] == 0);

        /* receiver down at send */
        sim_net_node_down(&net, 1);
        sim_net_send(&net, 0, 1, group_of(0, 1), req, lq);
        drain(&w);
        CHECK(g.n == 0);
        sim_net_node_up(&net, 1);

        /* the sender crashes after sending: its request still arrives, its reply does not */
        sim_net_send(&net, 2, 1, group_of(2, 1), req, lq);
        sim_net_send(&net, 2, 0, group_of(2, 0), resp, lr);
        sim_net_node_down(&net, 2);
        drain(&w);
        CHECK(g.n == 1);
        CHECK(g.n >= 1 && g.from[0] == 2 && g.to[0] == 1);
        net_teardown(&w, &net);
    }
}

static void test_unreliable_rates(void)
{
    for (size_t s = 0; s < N_SEEDS; s++) {
        cur_seed = seeds[s];
        struct sim_world w;
        struct sim_net net;
        net_setup(&w, &net, &g, 2);
        net.reliable = false;
        uint8_t req[256];
        size_t lq = make_msg(req, CRAFT_MSG_VOTE, 1, 2);
        for (int k = 0; k < 10000; k++) {
            sim_net_send(&net, 0, 1, group_of(0, 1), req, lq);
        }
        drain(&w);
        /* 10% dropped: 9000 expected, sd ~30 */
        CHECK(g.n > 8800 && g.n < 9200);
        CHECK(w.now <= 28); /* U[0,27) plus the base latency */
        CHECK(w.now >= 20);
        net_teardown(&w, &net);
    }
}

static uint64_t last_at;
static int n_late;

static void on_deliver_time(void *ctx, int from, int to, uint64_t group, const uint8_t *bytes,
                            size_t len)
{
    (void)from;
    (void)to;
    (void)group;
    (void)bytes;
    (void)len;
    struct sim_world *w = ctx;
    last_at = w->now;
    if (w->now >= 200) {
        n_late++;
    }
}

static void test_long_reordering(void)
{
    for (size_t s = 0; s < N_SEEDS; s++) {
        cur_seed = seeds[s];
        struct sim_world w;
        struct sim_net net;
        sim_world_init(&w, cur_seed);
        sim_net_init(&net, &w, 2, on_deliver_time, &w);
        sim_net_node_up(&net, 0);
        sim_net_node_up(&net, 1);
        sim_net_set_link(&net, 1, 0, true);
        net.long_reordering = true;
        uint8_t resp[256];
        size_t lr = make_msg(resp, CRAFT_MSG_VOTE_RESP, 2, 1);
        n_late = 0;
        for (int k = 0; k < 3000; k++) {
            sim_net_send(&net, 1, 0, group_of(1, 0), resp, lr);
        }
        drain(&w);
        /* 600/900 held back: 2000 expected */
        CHECK(n_late > 1850 && n_late < 2150);
        CHECK(last_at <= 200 + 2000 + 1);
        sim_world_free(&w);
        sim_net_free(&net);
    }
}

static void test_duplication_and_determinism(void)
{
    for (size_t s = 0; s < N_SEEDS; s++) {
        cur_seed = seeds[s];
        uint64_t hashes[2];
        int counts[2];
        for (int run = 0; run < 2; run++) {
            struct sim_world w;
            struct sim_net net;
            net_setup(&w, &net, &g, 3);
            net.reliable = false;
            net.dup_per_mille = 100;
            uint8_t req[256];
            size_t lq = make_msg(req, CRAFT_MSG_VOTE, 1, 2);
            for (int k = 0; k < 3000; k++) {
                int from = (int)sim_world_rand(&w, 0, 3);
                int to = (from + 1 + (int)sim_world_rand(&w, 0, 2)) % 3;
                sim_net_send(&net, from, to, group_of(from, to), req, lq);
            }
            drain(&w);
            hashes[run] = g.hash;
            counts[run] = g.n;
            /* 2700 survive the drops, ~270 of them twice */
            CHECK(g.n > 2800 && g.n < 3200);
            net_teardown(&w, &net);
        }
        CHECK(hashes[0] == hashes[1]);
        CHECK(counts[0] == counts[1]);
    }
}

/* ---- the whole engine, through sim_run_scenario ---- */

static void scenario_async_disk(void)
{
    struct sim_cluster_opts o;
    sim_cluster_opts_default(&o, 5, false, true);
    o.disk_latency_max_ms = 8;
    o.dup_per_mille = 30;
    struct sim_cluster *c = sim_cluster_create(&o);
    int leader = sim_check_one_leader(c);
    for (uint64_t k = 1; k <= 25; k++) {
        uint64_t idx = sim_one_int(c, 1000 + k, 5, false);
        if (idx != k) {
            sim_fail(c, "got index %llu but expected %llu", (unsigned long long)idx,
                     (unsigned long long)k);
        }
    }
    /* lose unsynced writes on the leader and a follower, then catch up */
    sim_crash(c, leader);
    sim_crash(c, (leader + 1) % 5);
    sim_one_int(c, 2000, 3, true);
    sim_start(c, leader);
    sim_connect(c, leader);
    sim_start(c, (leader + 1) % 5);
    sim_connect(c, (leader + 1) % 5);
    sim_set_reliable(c, false);
    for (uint64_t k = 0; k < 10; k++) {
        sim_one_int(c, 3000 + k, 5, true);
    }
    if (sim_log_size(c) >= 2000) {
        sim_fail(c, "Log size too large");
    }
    sim_cluster_destroy(c);
}

static void scenario_forged_conflict(void)
{
    struct sim_cluster_opts o;
    sim_cluster_opts_default(&o, 3, false, false);
    struct sim_cluster *c = sim_cluster_create(&o);
    uint64_t idx = sim_one_int(c, 77, 3, false);
    (void)idx;
    /* Pretend node 0 applied a different command at an index that is already committed. */
    uint8_t bad[8] = {78};
    const struct sim_committed *g0 = NULL;
    uint64_t li = 0;
    for (uint64_t k = 1; k <= c->ch.gc_max; k++) {
        if (sim_check_committed(&c->ch, k) != NULL &&
            sim_check_committed(&c->ch, k)->type == CRAFT_ENTRY_NORMAL) {
            g0 = sim_check_committed(&c->ch, k);
            li = k;
        }
    }
    if (g0 == NULL) {
        sim_cluster_destroy(c);
        return; /* makes the test fail: the run passes */
    }
    struct craft_entry e = {.term = g0->term, .index = li, .type = CRAFT_ENTRY_NORMAL,
                            .len = 8, .data = bad};
    sim_check_apply(&c->nodes[0], &e, g0->cmds_through);
    sim_cluster_destroy(c);
}

static void scenario_forged_double_vote(void)
{
    struct sim_cluster_opts o;
    sim_cluster_opts_default(&o, 3, false, false);
    struct sim_cluster *c = sim_cluster_create(&o);
    sim_check_one_leader(c);
    struct sim_write w1 = {.has_hs = true, .hs = {.term = 50, .vote = 2}};
    struct sim_write w2 = {.has_hs = true, .hs = {.term = 50, .vote = 3}};
    sim_check_persisted(&c->nodes[0], &w1);
    sim_check_persisted(&c->nodes[0], &w1); /* the same vote again is fine */
    sim_check_persisted(&c->nodes[0], &w2);
    sim_cluster_destroy(c);
}

/* A failed run leaves its cluster behind (it may unwind from inside a driver call), so it
 * runs in a child process, as craft-sim runs every seed. Returns 0 passed, 1 failed. */
static int run_in_child(const struct sim_scenario *sc, uint64_t seed)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        struct sim_run_result r = sim_run_scenario(sc, seed, false);
        fflush(stdout);
        fflush(stderr);
        _exit(r.passed ? 0 : 1); /* _exit: the leak checker must not judge a failed run */
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        return -1;
    }
    return WEXITSTATUS(status);
}

static void test_engine(void)
{
    static const struct sim_scenario async = {"unit/async-disk", "", scenario_async_disk};
    static const struct sim_scenario conflict = {"unit/forged-conflict", "",
                                                 scenario_forged_conflict};
    static const struct sim_scenario vote = {"unit/forged-double-vote", "",
                                             scenario_forged_double_vote};
    for (size_t s = 0; s < N_SEEDS; s++) {
        cur_seed = seeds[s];
        struct sim_run_result r1 = sim_run_scenario(&async, cur_seed, false);
        struct sim_run_result r2 = sim_run_scenario(&async, cur_seed, false);
        CHECK(r1.passed);
        CHECK(r1.events == r2.events && r1.virtual_ms == r2.virtual_ms);
        CHECK(r1.events > 100);
    }
    cur_seed = 1;
    fprintf(stderr, "(the next two FAIL lines are expected)\n");
    CHECK(run_in_child(&conflict, 1) == 1);
    CHECK(run_in_child(&vote, 1) == 1);
}

int main(void)
{
    struct {
        const char *name;
        void (*fn)(void);
    } cases[] = {
        {"heap_order", test_heap_order},
        {"reliable_counters", test_reliable_counters},
        {"disabled_and_down", test_disabled_and_down},
        {"unreliable_rates", test_unreliable_rates},
        {"long_reordering", test_long_reordering},
        {"duplication_and_determinism", test_duplication_and_determinism},
        {"engine", test_engine},
    };
    int passed = 0, failed = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        case_failed = 0;
        cases[k].fn();
        if (case_failed) {
            printf("FAILED: %s\n", cases[k].name);
            failed++;
        } else {
            passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
