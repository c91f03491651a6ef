/* Helpers shared by the membership and transfer scenarios: clients that remember what they
 * were told, a bounded fault task, healing and convergence checks. */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "membership_scenarios.h"
#include "raft_scenarios.h"

#define CONVERGE_BUDGET_MS 20000
#define CAUGHT_UP_BUDGET_MS 15000
#define POLL_MS 20

struct sim_cluster *mb_begin(int n, int n_initial, bool unreliable, bool snapshot,
                             const char *description)
{
    struct sim_cluster_opts opts;
    sim_cluster_opts_default(&opts, n, unreliable, snapshot);
    opts.n_initial = n_initial;
    struct sim_cluster *c = sim_cluster_create(&opts);
    CRAFT_ASSERT(c != NULL);
    sim_note(c, "begin: %s (%d slots, %d initial voters)", description, n, n_initial);
    return c;
}

void mb_end(struct sim_cluster *c, uint64_t limit_ms)
{
    if (sim_now(c) > limit_ms) {
        sim_fail(c, "scenario took %llu ms of virtual time (limit %llu)",
                 (unsigned long long)sim_now(c), (unsigned long long)limit_ms);
    }
    sim_cluster_destroy(c);
}

/* ---- clients ---- */

static bool value_at(struct sim_cluster *c, uint64_t index, uint64_t *value)
{
    uint8_t buf[8];
    size_t len = 0;
    if (sim_n_committed(c, index, buf, sizeof buf, &len) == 0) {
        return false;
    }
    return sim_cmd_as_int(buf, len, value);
}

static void client_loop(struct sim_cluster *c, void *arg)
{
    struct mb_client *cl = arg;
    /* Acknowledge what has been applied since the last round. */
    for (uint64_t k = cl->n_acked; k < cl->n_accepted; k++) {
        uint64_t v;
        if (!cl->p[k].acked && value_at(c, cl->p[k].index, &v) && v == cl->p[k].value) {
            cl->p[k].acked = true;
        }
    }
    while (cl->n_acked < cl->n_accepted && cl->p[cl->n_acked].acked) {
        cl->n_acked++;
    }
    if (cl->stop) {
        cl->done = true;
        return;
    }
    if (cl->n_accepted < MB_PROPOSALS_MAX) {
        uint64_t x = sim_raft_rand_cmd(c);
        for (int i = 0; i < cl->n; i++) {
            uint64_t index = 0, term = 0;
            if (!sim_is_alive(c, i)) {
                continue;
            }
            if (sim_start_int(c, i, x, &index, &term)) {
                uint64_t k = cl->n_accepted++;
                cl->p[k].value = x;
                cl->p[k].index = index;
                cl->p[k].term = term;
                cl->p[k].acked = false;
                break;
            }
            if (sim_last_start_err(c) == CRAFT_ETRANSFER) {
                cl->n_refused_transfer++;
            }
        }
    }
    sim_task_at(c, sim_rand(c, 1, (uint64_t)cl->period_ms + 1), client_loop, cl);
}

void mb_clients_start(struct sim_cluster *c, int n, struct mb_client *clients, int k)
{
    for (int j = 0; j < k; j++) {
        memset(&clients[j], 0, sizeof clients[j]);
        clients[j].n = n;
        clients[j].period_ms = 40;
        sim_task_at(c, (uint64_t)j + 1, client_loop, &clients[j]);
    }
}

void mb_clients_stop(struct sim_cluster *c, struct mb_client *clients, int k)
{
    for (int j = 0; j < k; j++) {
        clients[j].stop = true;
    }
    for (int j = 0; j < k; j++) {
        while (!clients[j].done) {
            sim_sleep(c, 10);
        }
    }
}

void mb_check_acked(struct sim_cluster *c, const struct mb_client *clients, int k, uint64_t nodes)
{
    uint64_t total = 0;
    for (int j = 0; j < k; j++) {
        for (uint64_t q = 0; q < clients[j].n_accepted; q++) {
            if (!clients[j].p[q].acked) {
                continue;
            }
            total++;
            for (int i = 0; i < CRAFT_CONF_NODES_MAX; i++) {
                if (!(nodes >> i & 1)) {
                    continue;
                }
                uint8_t buf[8];
                size_t len = 0;
                uint64_t v = 0;
                if (!sim_node_cmd(c, i, clients[j].p[q].index, buf, sizeof buf, &len)) {
                    sim_fail(c, "server %d has not applied index %llu, where %llu was acknowledged",
                             i, (unsigned long long)clients[j].p[q].index,
                             (unsigned long long)clients[j].p[q].value);
                }
                if (!sim_cmd_as_int(buf, len, &v) || v != clients[j].p[q].value) {
                    sim_fail(c, "lost write: server %d holds %llu at index %llu, where %llu was "
                                "acknowledged",
                             i, (unsigned long long)v, (unsigned long long)clients[j].p[q].index,
                             (unsigned long long)clients[j].p[q].value);
                }
            }
        }
    }
    sim_note(c, "%llu acknowledged writes intact on every final member", (unsigned long long)total);
}

void mb_check_all_committed(struct sim_cluster *c, const struct mb_client *clients, int k)
{
    for (int j = 0; j < k; j++) {
        for (uint64_t q = 0; q < clients[j].n_accepted; q++) {
            uint64_t v = 0;
            if (!value_at(c, clients[j].p[q].index, &v) || v != clients[j].p[q].value) {
                sim_fail(c, "lost proposal: %llu accepted at index %llu (term %llu) was not "
                            "committed there (found %llu)",
                         (unsigned long long)clients[j].p[q].value,
                         (unsigned long long)clients[j].p[q].index,
                         (unsigned long long)clients[j].p[q].term, (unsigned long long)v);
            }
        }
    }
}

/* ---- faults ---- */

static void heal_one(struct sim_cluster *c, struct mb_faults *f)
{
    if (f->crashed >= 0) {
        sim_start(c, f->crashed);
        sim_connect(c, f->crashed);
        f->crashed = -1;
    }
    if (f->disconnected >= 0) {
        sim_connect(c, f->disconnected);
        f->disconnected = -1;
    }
    sim_set_reliable(c, true);
}

static void fault_loop(struct sim_cluster *c, void *arg)
{
    struct mb_faults *f = arg;
    if (f->stop) {
        f->done = true;
        return;
    }
    heal_one(c, f);
    int i = (int)sim_rand(c, 0, (uint64_t)f->n);
    switch (sim_rand(c, 0, 5)) {
    case 0:
        sim_crash(c, i);
        f->crashed = i;
        break;
    case 1:
        sim_disconnect(c, i);
        f->disconnected = i;
        break;
    case 2:
        sim_set_reliable(c, false);
        break;
    default:
        break; /* a quiet period */
    }
    sim_task_at(c, sim_rand(c, 200, 1500), fault_loop, f);
}

void mb_faults_start(struct sim_cluster *c, struct mb_faults *f, int n)
{
    *f = (struct mb_faults){.n = n, .crashed = -1, .disconnected = -1};
    sim_task_at(c, sim_rand(c, 100, 1000), fault_loop, f);
}

void mb_faults_stop(struct sim_cluster *c, struct mb_faults *f)
{
    f->stop = true;
    while (!f->done) {
        sim_sleep(c, 10);
    }
    heal_one(c, f);
    mb_heal_all(c, f->n);
}

void mb_heal_all(struct sim_cluster *c, int n)
{
    sim_set_reliable(c, true);
    sim_set_long_reordering(c, false);
    for (int i = 0; i < n; i++) {
        if (!sim_is_alive(c, i)) {
            sim_start(c, i);
        }
    }
    for (int i = 0; i < n; i++) {
        sim_disconnect(c, i);
    }
    for (int i = 0; i < n; i++) {
        sim_connect(c, i);
    }
}

/* ---- configurations ---- */

static uint64_t ids_mask(const uint64_t *ids, uint32_t n)
{
    uint64_t m = 0;
    for (uint32_t k = 0; k < n; k++) {
        CRAFT_ASSERT(ids[k] >= 1 && ids[k] <= 64);
        m |= 1ULL << (ids[k] - 1);
    }
    return m;
}

uint64_t mb_conf_members(const struct craft_conf *conf)
{
    return ids_mask(conf->voters, conf->n_voters) |
           ids_mask(conf->voters_outgoing, conf->n_voters_outgoing) |
           ids_mask(conf->learners, conf->n_learners) |
           ids_mask(conf->learners_next, conf->n_learners_next);
}

bool mb_conf_equal(const struct craft_conf *a, const struct craft_conf *b)
{
    return a->n_voters == b->n_voters && a->n_voters_outgoing == b->n_voters_outgoing &&
           a->n_learners == b->n_learners && a->n_learners_next == b->n_learners_next &&
           ids_mask(a->voters, a->n_voters) == ids_mask(b->voters, b->n_voters) &&
           ids_mask(a->voters_outgoing, a->n_voters_outgoing) ==
               ids_mask(b->voters_outgoing, b->n_voters_outgoing) &&
           ids_mask(a->learners, a->n_learners) == ids_mask(b->learners, b->n_learners) &&
           ids_mask(a->learners_next, a->n_learners_next) ==
               ids_mask(b->learners_next, b->n_learners_next);
}

int mb_leader(struct sim_cluster *c)
{
    return sim_check_one_leader(c);
}

void mb_converge(struct sim_cluster *c, struct craft_conf *conf)
{
    uint64_t t0 = sim_now(c);
    char a[256], b[256];
    uint64_t index;
    /* A change proposed before healing may still commit (and a joint one be left) now: go
     * on until a command commits under a configuration that is not joint. */
    for (;;) {
        sim_committed_conf(c, conf);
        if (conf->n_voters_outgoing == 0) {
            index = sim_one_int(c, sim_raft_rand_cmd(c), 1, true);
            sim_committed_conf(c, conf);
            if (conf->n_voters_outgoing == 0) {
                break;
            }
        }
        if (sim_now(c) - t0 > CONVERGE_BUDGET_MS) {
            sim_fail(c, "converge: the committed configuration %s stayed joint",
                     sim_conf_fmt(a, sizeof a, conf));
        }
        sim_sleep(c, POLL_MS);
    }
    uint64_t members = mb_conf_members(conf);
    for (;;) {
        bool all = true;
        for (int i = 0; i < 64; i++) {
            if ((members >> i & 1) && !sim_node_cmd(c, i, index, NULL, 0, NULL)) {
                all = false;
            }
        }
        if (all) {
            break;
        }
        if (sim_now(c) - t0 > CONVERGE_BUDGET_MS) {
            sim_fail(c, "converge: not every member of %s applied command %llu",
                     sim_conf_fmt(a, sizeof a, conf), (unsigned long long)index);
        }
        sim_sleep(c, POLL_MS);
    }
    for (int i = 0; i < 64; i++) {
        if (!(members >> i & 1)) {
            continue;
        }
        struct craft_conf own;
        sim_conf_of(c, i, &own);
        if (!mb_conf_equal(&own, conf)) {
            sim_fail(c, "converge: server %d has configuration %s, the committed one is %s", i,
                     sim_conf_fmt(a, sizeof a, &own), sim_conf_fmt(b, sizeof b, conf));
        }
    }
    int leader = mb_leader(c);
    if (!sim_conf_is_voter(conf, (uint64_t)leader + 1)) {
        sim_fail(c, "converge: leader %d is not a voter of %s", leader,
                 sim_conf_fmt(a, sizeof a, conf));
    }
    sim_note(c, "converged on %s, leader %d", sim_conf_fmt(a, sizeof a, conf), leader);
}

bool mb_wait_caught_up(struct sim_cluster *c, int n, int j)
{
    uint64_t t0 = sim_now(c);
    while (sim_now(c) - t0 < CAUGHT_UP_BUDGET_MS) {
        if (sim_caught_up(c, j)) {
            return true;
        }
        /* Or a leader whose progress shows the learner at its commit index (a report may
         * have gone to a leader that lost its term before we looked). */
        for (int i = 0; i < n; i++) {
            if (!sim_is_alive(c, i)) {
                continue;
            }
            struct craft_core_status st;
            sim_status(c, i, &st);
            struct craft_peer_status peers[CRAFT_CONF_NODES_MAX * 2];
            size_t np = sim_peers(c, i, peers, sizeof peers / sizeof peers[0]);
            for (size_t k = 0; k < np; k++) {
                if (peers[k].id == (uint64_t)j + 1 && peers[k].match >= st.commit &&
                    sim_now(c) - t0 > 2000) {
                    return false;
                }
            }
        }
        sim_sleep(c, POLL_MS);
    }
    sim_fail(c, "learner %d did not catch up within %d ms", j, CAUGHT_UP_BUDGET_MS);
}
