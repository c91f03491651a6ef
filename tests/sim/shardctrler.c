/* The MIT 6.5840 shardctrler tests (Lab 5A: TestBasic, TestMulti, TestMinimalAgain) on the
 * simulator's controller service (src/sim/ctrler_service.h), adapted from 10 shards to
 * Redis Cluster's 16384 slots: Move takes slot ranges (the ten tenths of the slots stand
 * for the ten shards), and balance means slot counts within one of each other. The
 * "minimal transfers" checks are the intended ones (the Go test's loop looks at gids that
 * are not in use, so it checks nothing): after joins no old group gains a slot, after
 * leaves no remaining group loses one. A fourth scenario, beyond the catalog, runs
 * concurrent changes over an unreliable network with crashes and checks that every change
 * was applied exactly once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "shardctrler_scenarios.h"
#include "sim/cluster.h"
#include "sim/ctrler_service.h"

#define OP_BUDGET_MS 20000u
#define WAIT_MS 120000u
#define NSERVERS 3
#define CLERKS_MAX 10
#define TENTH(k) ((uint16_t)((uint32_t)(k) * CRAFT_SLOTS / 10u))

struct ct {
    struct sim_cluster *c;
    struct sim_ctl *s;
    struct sim_ctl_clerk *ck;
};

/* maxraftstate: as kvraft's (-1: no snapshots). */
static struct ct begin(bool unreliable, int maxraftstate, const char *title)
{
    struct ct t;
    struct sim_cluster_opts opts;
    sim_cluster_opts_default(&opts, NSERVERS, unreliable, false);
    opts.long_delays = false;
    t.s = sim_ctl_create(NSERVERS, maxraftstate);
    sim_ctl_set_opts(t.s, &opts);
    t.c = sim_cluster_create(&opts);
    sim_ctl_bind(t.s, t.c);
    t.ck = sim_ctl_clerk(t.s);
    sim_note(t.c, "Test: %s", title);
    return t;
}

static void end(struct ct *t)
{
    sim_cluster_destroy(t->c);
    sim_ctl_destroy(t->s);
}

static void connect_all(struct ct *t)
{
    for (int i = 0; i < NSERVERS; i++) {
        sim_connect(t->c, i);
    }
}

static struct craft_shard_group group(uint64_t gid, unsigned n_servers)
{
    struct craft_shard_group g;
    memset(&g, 0, sizeof g);
    g.gid = gid;
    g.n_servers = n_servers;
    for (unsigned j = 0; j < n_servers; j++) {
        snprintf(g.servers[j], CRAFT_SHARD_ADDR_BYTES, "server-%llu-%u:7000",
                 (unsigned long long)gid, j);
    }
    return g;
}

static uint64_t join1(struct ct *t, uint64_t gid, unsigned n_servers)
{
    struct craft_shard_group g = group(gid, n_servers);
    return sim_ctl_join(t->ck, &g, 1, OP_BUDGET_MS);
}

static uint64_t leave1(struct ct *t, uint64_t gid)
{
    return sim_ctl_leave(t->ck, &gid, 1, OP_BUDGET_MS);
}

/* The last group cannot leave (its slots would have no owner; MIT's controller hands them
 * to gid 0 instead): the request is refused with a reason and changes nothing. */
static void leave_last_refused(struct ct *t, uint64_t gid)
{
    uint64_t before = sim_ctl_query(t->ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS)->num;
    struct craft_shard_request r;
    memset(&r, 0, sizeof r);
    r.op = CRAFT_SHARD_OP_LEAVE;
    r.n = 1;
    r.gids[0] = gid;
    const struct sim_ctl_answer *a = sim_ctl_call(t->ck, &r, OP_BUDGET_MS);
    if (a->status != CRAFT_EINVAL) {
        sim_fail(t->c, "the last group's Leave answered %s", craft_strerror(a->status));
    }
    if (sim_ctl_query(t->ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS)->num != before) {
        sim_fail(t->c, "a refused Leave made a configuration");
    }
}

/* Group gid of configuration c, or NULL. */
static const struct craft_shard_group *group_of(const struct craft_shard_config *c, uint64_t gid)
{
    for (uint32_t i = 0; i < c->n_groups; i++) {
        if (c->groups[i].gid == gid) {
            return &c->groups[i];
        }
    }
    return NULL;
}

/* check(groups) on Query(-1): exactly these groups, every slot on one of them, balance. */
static void check(struct ct *t, const uint64_t *gids, size_t n)
{
    const struct craft_shard_config *c = sim_ctl_query(t->ck, CRAFT_SHARD_QUERY_LATEST,
                                                       OP_BUDGET_MS);
    if (c->n_groups != n) {
        sim_fail(t->c, "wanted %zu groups, got %u", n, c->n_groups);
    }
    for (size_t k = 0; k < n; k++) {
        if (group_of(c, gids[k]) == NULL) {
            sim_fail(t->c, "missing group %llu", (unsigned long long)gids[k]);
        }
    }
    if (n == 0) {
        return;
    }
    uint32_t min = CRAFT_SLOTS, max = 0;
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        if (craft_shard_slot_gid(c, (uint16_t)s) == 0) {
            sim_fail(t->c, "slot %u -> invalid group", s);
        }
    }
    for (uint32_t i = 0; i < c->n_groups; i++) {
        uint32_t k = craft_shard_group_slots(c, c->groups[i].gid);
        min = k < min ? k : min;
        max = k > max ? k : max;
    }
    if (max > min + 1) {
        sim_fail(t->c, "max %u too much larger than min %u", max, min);
    }
}

static void check_servers(struct ct *t, const struct craft_shard_config *c, uint64_t gid,
                          unsigned n_servers)
{
    struct craft_shard_group want = group(gid, n_servers);
    const struct craft_shard_group *g = group_of(c, gid);
    if (g == NULL) {
        sim_fail(t->c, "missing group %llu", (unsigned long long)gid);
    }
    if (memcmp(g, &want, sizeof want) != 0) {
        sim_fail(t->c, "wrong servers for gid %llu", (unsigned long long)gid);
    }
}

static void check_same_config(struct ct *t, const struct craft_shard_config *a,
                              const struct craft_shard_config *b)
{
    if (a->num != b->num) {
        sim_fail(t->c, "Num wrong");
    }
    if (memcmp(a->owner, b->owner, sizeof a->owner) != 0) {
        sim_fail(t->c, "Shards wrong");
    }
    if (a->n_groups != b->n_groups) {
        sim_fail(t->c, "number of Groups is wrong");
    }
    if (memcmp(a->groups, b->groups, a->n_groups * sizeof a->groups[0]) != 0) {
        sim_fail(t->c, "Groups wrong");
    }
}

/* The intended minimal-transfer checks, between configurations a (before) and b (after):
 * after joins, a slot that moves goes to a new group (one absent from a); after leaves, a
 * slot that moves came from a departed group (one absent from b). */
static void check_minimal(struct ct *t, const struct craft_shard_config *a,
                          const struct craft_shard_config *b, bool joins)
{
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        uint64_t from = craft_shard_slot_gid(a, (uint16_t)s);
        uint64_t to = craft_shard_slot_gid(b, (uint16_t)s);
        if (from == to) {
            continue;
        }
        bool ok = joins ? craft_shard_group_slots(a, to) == 0
                        : craft_shard_group_slots(b, from) == 0;
        if (!ok) {
            sim_fail(t->c, "non-minimal transfer after %s: slot %u from %llu to %llu",
                     joins ? "Join()s" : "Leave()s", s, (unsigned long long)from,
                     (unsigned long long)to);
        }
    }
}

/* ---- concurrent clerks: each runs a short list of requests ---- */

struct plan {
    struct ct *t;
    struct sim_ctl_clerk *ck;
    struct craft_shard_request req[3];
    int n, next;
    bool done;
};

static void plan_step(struct sim_ctl_clerk *ck, void *arg, const struct sim_ctl_answer *a);

static void plan_next(struct plan *p)
{
    if (p->next == p->n) {
        p->done = true;
        return;
    }
    sim_ctl_start(p->ck, &p->req[p->next++], plan_step, p);
}

static void plan_step(struct sim_ctl_clerk *ck, void *arg, const struct sim_ctl_answer *a)
{
    struct plan *p = arg;
    (void)ck;
    if (a->status != CRAFT_OK) {
        sim_fail(p->t->c, "a concurrent change was refused: %s", craft_strerror(a->status));
    }
    plan_next(p);
}

static void run_plans(struct ct *t, struct plan *plans, int n)
{
    for (int k = 0; k < n; k++) {
        plan_next(&plans[k]);
    }
    uint64_t start = sim_now(t->c);
    for (int k = 0; k < n; k++) {
        while (!plans[k].done) {
            if (sim_now(t->c) - start > WAIT_MS) {
                sim_fail(t->c, "concurrent clerks did not finish within %u ms", WAIT_MS);
            }
            sim_sleep(t->c, 10);
        }
    }
}

static void req_join(struct craft_shard_request *r, const uint64_t *gids, const unsigned *servers,
                     int n)
{
    memset(r, 0, sizeof *r);
    r->op = CRAFT_SHARD_OP_JOIN;
    r->n = (uint32_t)n;
    for (int k = 0; k < n; k++) {
        r->groups[k] = group(gids[k], servers[k]);
    }
}

static void req_leave(struct craft_shard_request *r, const uint64_t *gids, int n)
{
    memset(r, 0, sizeof *r);
    r->op = CRAFT_SHARD_OP_LEAVE;
    r->n = (uint32_t)n;
    memcpy(r->gids, gids, (size_t)n * sizeof *gids);
}

static struct plan plans[CLERKS_MAX];
static struct craft_shard_config cfa[6], c1, c2;

/* ---- TestBasic ---- */

void sim_ctl_basic(void)
{
    struct ct t = begin(false, -1, "Basic leave/join ...");
    memset(cfa, 0, sizeof cfa);
    cfa[0] = *sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS);
    check(&t, NULL, 0);
    join1(&t, 1, 3);
    check(&t, (uint64_t[]){1}, 1);
    cfa[1] = *sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS);
    join1(&t, 2, 3);
    check(&t, (uint64_t[]){1, 2}, 2);
    cfa[2] = *sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS);
    check_servers(&t, &cfa[2], 1, 3);
    check_servers(&t, &cfa[2], 2, 3);
    leave1(&t, 1);
    check(&t, (uint64_t[]){2}, 1);
    cfa[4] = *sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS);
    leave_last_refused(&t, 2);
    cfa[5] = *sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS);
    /* The Go test never sets cfa[3], so it is the zero Config, which equals Query(0) there;
     * here configuration 0 owns no slot (CRAFT_SHARD_NONE), so it is set to that. */
    cfa[3] = cfa[0];

    sim_note(t.c, "Test: Historical queries ...");
    for (int s = 0; s < NSERVERS; s++) {
        sim_crash(t.c, s);
        for (int i = 0; i < 6; i++) {
            const struct craft_shard_config *c = sim_ctl_query(t.ck, cfa[i].num, OP_BUDGET_MS);
            check_same_config(&t, c, &cfa[i]);
        }
        sim_start(t.c, s);
        connect_all(&t);
    }

    sim_note(t.c, "Test: Move ...");
    join1(&t, 503, 3);
    join1(&t, 504, 3);
    leave1(&t, 2);
    for (int k = 0; k < 10; k++) {
        const struct craft_shard_config *c = sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST,
                                                           OP_BUDGET_MS);
        uint64_t before = c->num, to = k < 5 ? 503 : 504;
        uint64_t num = sim_ctl_move(t.ck, TENTH(k), (uint16_t)(TENTH(k + 1) - 1), to,
                                    OP_BUDGET_MS);
        if (num <= before) {
            sim_fail(t.c, "Move should increase Config.Num");
        }
    }
    const struct craft_shard_config *c = sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST,
                                                       OP_BUDGET_MS);
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        uint64_t want = s < TENTH(5) ? 503 : 504;
        if (craft_shard_slot_gid(c, (uint16_t)s) != want) {
            sim_fail(t.c, "expected slot %u on gid %llu actually %llu", s,
                     (unsigned long long)want,
                     (unsigned long long)craft_shard_slot_gid(c, (uint16_t)s));
        }
    }
    leave1(&t, 503);
    leave_last_refused(&t, 504);

    sim_note(t.c, "Test: Concurrent leave/join ...");
    uint64_t gids[CLERKS_MAX];
    for (int i = 0; i < CLERKS_MAX; i++) {
        uint64_t gid = 100 + 10 * (uint64_t)i;
        gids[i] = gid;
        plans[i] = (struct plan){.t = &t, .ck = sim_ctl_clerk(t.s), .n = 3};
        req_join(&plans[i].req[0], (uint64_t[]){gid + 1000}, (unsigned[]){1}, 1);
        req_join(&plans[i].req[1], (uint64_t[]){gid}, (unsigned[]){1}, 1);
        req_leave(&plans[i].req[2], (uint64_t[]){gid + 1000}, 1);
    }
    run_plans(&t, plans, CLERKS_MAX);
    leave1(&t, 504); /* the group the last Leave above could not take away */
    check(&t, gids, CLERKS_MAX);

    sim_note(t.c, "Test: Minimal transfers after joins ...");
    c1 = *sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS);
    for (uint64_t gid = 11; gid <= 15; gid++) {
        join1(&t, gid, 1);
    }
    c2 = *sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS);
    check_minimal(&t, &c1, &c2, true);

    sim_note(t.c, "Test: Minimal transfers after leaves ...");
    for (uint64_t gid = 11; gid <= 15; gid++) {
        leave1(&t, gid);
    }
    c1 = *sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS);
    check_minimal(&t, &c2, &c1, false);
    check(&t, gids, CLERKS_MAX);
    end(&t);
}

/* ---- TestMulti ---- */

void sim_ctl_multi(void)
{
    struct ct t = begin(false, -1, "Multi-group join/leave ...");
    struct craft_shard_group g[5];
    g[0] = group(1, 3);
    g[1] = group(2, 3);
    sim_ctl_join(t.ck, g, 2, OP_BUDGET_MS);
    check(&t, (uint64_t[]){1, 2}, 2);
    g[0] = group(3, 3);
    sim_ctl_join(t.ck, g, 1, OP_BUDGET_MS);
    check(&t, (uint64_t[]){1, 2, 3}, 3);
    const struct craft_shard_config *c = sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST,
                                                       OP_BUDGET_MS);
    for (uint64_t gid = 1; gid <= 3; gid++) {
        check_servers(&t, c, gid, 3);
    }
    sim_ctl_leave(t.ck, (uint64_t[]){1, 3}, 2, OP_BUDGET_MS);
    check(&t, (uint64_t[]){2}, 1);
    leave_last_refused(&t, 2);

    sim_note(t.c, "Test: Concurrent multi leave/join ...");
    uint64_t gids[CLERKS_MAX];
    for (int i = 0; i < CLERKS_MAX; i++) {
        uint64_t gid = 1000 + (uint64_t)i;
        gids[i] = gid;
        plans[i] = (struct plan){.t = &t, .ck = sim_ctl_clerk(t.s), .n = 2};
        req_join(&plans[i].req[0], (uint64_t[]){gid, gid + 1000, gid + 2000},
                 (unsigned[]){3, 1, 1}, 3);
        req_leave(&plans[i].req[1], (uint64_t[]){gid + 1000, gid + 2000}, 2);
    }
    run_plans(&t, plans, CLERKS_MAX);
    leave1(&t, 2);
    check(&t, gids, CLERKS_MAX);

    sim_note(t.c, "Test: Minimal transfers after multijoins ...");
    c1 = *sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS);
    for (int k = 0; k < 5; k++) {
        g[k] = group(11 + (uint64_t)k, 2);
    }
    sim_ctl_join(t.ck, g, 5, OP_BUDGET_MS);
    c2 = *sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS);
    check_minimal(&t, &c1, &c2, true);

    sim_note(t.c, "Test: Minimal transfers after multileaves ...");
    sim_ctl_leave(t.ck, (uint64_t[]){11, 12, 13, 14, 15}, 5, OP_BUDGET_MS);
    c1 = *sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS);
    check_minimal(&t, &c2, &c1, false);
    check(&t, gids, CLERKS_MAX);

    sim_note(t.c, "Test: Check Same config on servers ...");
    int leader = sim_ctl_leader(t.s);
    for (int k = 0; leader < 0 && k < 100; k++) {
        sim_sleep(t.c, 50);
        leader = sim_ctl_leader(t.s);
    }
    if (leader < 0) {
        sim_fail(t.c, "Leader not found");
    }
    c1 = *sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS);
    sim_crash(t.c, leader);
    c = sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS);
    check_same_config(&t, c, &c1);
    end(&t);
}

/* ---- TestMinimalAgain ---- */

static uint32_t slots_changed(const struct craft_shard_config *a, const struct craft_shard_config *b)
{
    uint32_t n = 0;
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        n += craft_shard_slot_gid(a, (uint16_t)s) != craft_shard_slot_gid(b, (uint16_t)s);
    }
    return n;
}

/* Every slot that moved from a to b went to gid `only_to` (joins), or came from gid
 * `only_from` (leaves); 0: that side is free. */
static void check_only_moves(struct ct *t, const struct craft_shard_config *a,
                             const struct craft_shard_config *b, uint64_t only_to,
                             uint64_t only_from)
{
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        uint64_t from = craft_shard_slot_gid(a, (uint16_t)s);
        uint64_t to = craft_shard_slot_gid(b, (uint16_t)s);
        if (to != from && ((only_to != 0 && to != only_to) ||
                           (only_from != 0 && from != only_from))) {
            sim_fail(t->c, "slot %u moved from gid %llu to gid %llu, but shouldn't have", s,
                     (unsigned long long)from, (unsigned long long)to);
        }
    }
}

void sim_ctl_minimal_again(void)
{
    struct ct t = begin(false, -1, "minimal movement again ...");
    join1(&t, 1, 3);
    join1(&t, 2, 3);
    c1 = *sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS);
    join1(&t, 3, 3);
    c2 = *sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS);
    uint32_t bound = CRAFT_SLOTS / 3 + 1;
    check_only_moves(&t, &c1, &c2, 3, 0);
    if (slots_changed(&c1, &c2) > bound) {
        sim_fail(t.c, "too many slots (%u) moved after join", slots_changed(&c1, &c2));
    }
    leave1(&t, 1);
    c1 = *sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST, OP_BUDGET_MS);
    check_only_moves(&t, &c2, &c1, 0, 1);
    if (slots_changed(&c2, &c1) > bound) {
        sim_fail(t.c, "too many slots (%u) moved after leave", slots_changed(&c2, &c1));
    }
    end(&t);
}

/* ---- beyond the catalog: exactly once under an unreliable network and crashes ---- */

/* Ten clerks each join a group of their own, move a range of 100 slots to it and leave
 * again, while the network drops and delays requests and replies, a random server crashes
 * and restarts now and then, and the servers snapshot every 2000 bytes of Raft state (so
 * restarts and lagging servers restore the controller from snapshots). Every change is
 * applied exactly once, so the latest configuration is number 1 + 3 x 10 = 31 on every
 * server, and each historical query answers its own number. */
void sim_ctl_unreliable_exactly_once(void)
{
    struct ct t = begin(true, 2000, "unreliable net, restarts, snapshots, concurrent changes "
                                    "applied once");
    join1(&t, 1, 3); /* a home for slots while the clerks' groups come and go */
    for (int i = 0; i < CLERKS_MAX; i++) {
        uint64_t gid = 200 + (uint64_t)i;
        plans[i] = (struct plan){.t = &t, .ck = sim_ctl_clerk(t.s), .n = 3};
        req_join(&plans[i].req[0], (uint64_t[]){gid}, (unsigned[]){2}, 1);
        struct craft_shard_request *m = &plans[i].req[1];
        memset(m, 0, sizeof *m);
        m->op = CRAFT_SHARD_OP_MOVE;
        m->first = (uint16_t)(100 * i);
        m->last = (uint16_t)(100 * i + 99);
        m->gid = gid;
        req_leave(&plans[i].req[2], (uint64_t[]){gid}, 1);
    }
    for (int k = 0; k < CLERKS_MAX; k++) {
        plan_next(&plans[k]);
    }
    uint64_t start = sim_now(t.c);
    for (;;) {
        bool all = true;
        for (int k = 0; k < CLERKS_MAX; k++) {
            all &= plans[k].done;
        }
        if (all) {
            break;
        }
        if (sim_now(t.c) - start > WAIT_MS) {
            sim_fail(t.c, "concurrent clerks did not finish within %u ms", WAIT_MS);
        }
        sim_sleep(t.c, sim_rand(t.c, 200, 800));
        if (sim_rand(t.c, 0, 3) == 0) {
            int victim = (int)sim_rand(t.c, 0, NSERVERS);
            sim_crash(t.c, victim);
            sim_sleep(t.c, sim_rand(t.c, 100, 1000));
            sim_start(t.c, victim);
            connect_all(&t);
        }
    }
    const struct craft_shard_config *c = sim_ctl_query(t.ck, CRAFT_SHARD_QUERY_LATEST,
                                                       OP_BUDGET_MS);
    uint64_t want = 1 + 3 * CLERKS_MAX;
    if (c->num != want) {
        sim_fail(t.c, "latest configuration is %llu after %llu changes: a change was %s",
                 (unsigned long long)c->num, (unsigned long long)want,
                 c->num > want ? "applied twice" : "lost");
    }
    if (c->n_groups != 1 || c->groups[0].gid != 1) {
        sim_fail(t.c, "every clerk's group left, yet %u groups remain", c->n_groups);
    }
    for (uint64_t num = 0; num <= want; num++) {
        if (sim_ctl_query(t.ck, num, OP_BUDGET_MS)->num != num) {
            sim_fail(t.c, "query %llu answered another configuration", (unsigned long long)num);
        }
    }
    /* Every server catches up to the same latest configuration. */
    for (int i = 0; i < NSERVERS; i++) {
        uint64_t waited = 0;
        while (sim_ctl_server_latest(t.s, i) != want && waited < WAIT_MS) {
            sim_sleep(t.c, 50);
            waited += 50;
        }
        if (sim_ctl_server_latest(t.s, i) != want) {
            sim_fail(t.c, "server %d holds configuration %llu, not %llu", i,
                     (unsigned long long)sim_ctl_server_latest(t.s, i), (unsigned long long)want);
        }
    }
    end(&t);
}
