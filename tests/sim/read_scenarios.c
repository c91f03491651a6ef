/* Read scenarios: clients on the key/value register cluster read through the core's three
 * read paths (ReadIndex, lease, follower) while faults strike; every history must be
 * linearizable (src/sim/reads.h records it, src/sim/linearize.h checks it). */
#include <stdio.h>

#include "base/assert.h"
#include "base/prng.h"
#include "raft_scenarios.h"
#include "read_scenarios.h"
#include "sim/clock.h"
#include "sim/linearize.h"
#include "sim/reads.h"
#include "sim/scenario.h"

#define CORE_ELECTION_TIMEOUT_MS 1000u /* the core's default, when opts leave it 0 */
#define OP_TIMEOUT_MS 2500u
#define FINAL_READ_BUDGET_MS 20000u
/* Search steps for the checker: far above what our histories (a few thousand ops over a
 * few keys, few clients) need; a run that exhausts it fails as UNKNOWN. */
#define LIN_BUDGET_STEPS 200000000u

static uint32_t election_of(const struct sim_cluster_opts *o)
{
    return o->election_timeout_ms ? o->election_timeout_ms : CORE_ELECTION_TIMEOUT_MS;
}

/* The seed's fault mix plus a kv cluster whose clocks drift up to ppm_max, with the drift
 * bound the lease needs (clock.h). */
static struct sim_cluster *begin(int n, bool snapshot, uint32_t ppm_max, const char *what)
{
    struct sim_cluster_opts opts;
    sim_cluster_opts_default(&opts, n, false, snapshot);
    opts.kv = true;
    opts.clock_drift_ppm_max = ppm_max;
    opts.clock_drift_bound_ms =
        ppm_max ? sim_clock_drift_bound_ms(ppm_max, election_of(&opts)) : 0;
    struct sim_cluster *c = sim_cluster_create(&opts);
    sim_note(c, "begin: %s (drift up to %u ppm, bound %u ms, election %u ms)", what, ppm_max,
             opts.clock_drift_bound_ms, election_of(&opts));
    sim_reads_attach(c);
    return c;
}

static void heal_all(struct sim_cluster *c, int n)
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

/* Stops the clients, lets their last ops finish or time out, reads every key once more
 * through the leader, and checks the history. */
static void finish_and_check(struct sim_cluster *c, int n_keys)
{
    sim_reads_stop(c);
    while (sim_reads_pending(c) > 0) {
        sim_sleep(c, 10);
    }
    for (int k = 0; k < n_keys; k++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", k);
        sim_reads_final_read(c, key, FINAL_READ_BUDGET_MS);
    }
    sim_reads_check(c, LIN_BUDGET_STEPS);
    sim_reads_note_stats(c);
}

static int leader_of(struct sim_cluster *c, int n)
{
    int best = -1;
    uint64_t best_term = 0;
    for (int i = 0; i < n; i++) {
        if (!sim_is_alive(c, i)) {
            continue;
        }
        uint64_t term;
        bool leader;
        sim_get_state(c, i, &term, &leader);
        if (leader && (best < 0 || term > best_term)) {
            best = i;
            best_term = term;
        }
    }
    return best;
}

static void split(struct sim_cluster *c, int n)
{
    bool side[CRAFT_CONF_NODES_MAX];
    for (int i = 0; i < n; i++) {
        side[i] = sim_rand(c, 0, 2) == 1;
    }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            if (i != j && side[i] != side[j]) {
                sim_set_link(c, i, j, false);
            }
        }
    }
}

static void fault(struct sim_cluster *c, int n, int *alive)
{
    int i = (int)sim_rand(c, 0, (uint64_t)n);
    switch (sim_rand(c, 0, 10)) {
    case 0:
        if (sim_is_alive(c, i) && *alive > 1) {
            sim_crash(c, i);
            (*alive)--;
        }
        break;
    case 1:
        if (!sim_is_alive(c, i)) {
            sim_start(c, i);
            sim_connect(c, i);
            (*alive)++;
        }
        break;
    case 2:
        if (sim_is_alive(c, i)) {
            sim_disconnect(c, i);
        }
        break;
    case 3:
    case 4:
        if (sim_is_alive(c, i)) {
            sim_connect(c, i);
        }
        break;
    case 5: {
        int j = (int)sim_rand(c, 0, (uint64_t)n);
        if (i != j) {
            sim_set_link(c, j, i, false);
        }
        break;
    }
    case 6:
        split(c, n);
        break;
    case 7:
        sim_set_reliable(c, sim_rand(c, 0, 2) == 0);
        break;
    case 8: { /* the leader, specifically: the reads' hardest case */
        int l = leader_of(c, n);
        if (l >= 0) {
            sim_disconnect(c, l);
        }
        break;
    }
    default:
        break;
    }
}

void sim_read_linearizable_kv(void)
{
    struct craft_prng shape;
    craft_prng_seed(&shape, sim_seed() ^ 0x726561642d6b76ULL);
    int n = craft_prng_range(&shape, 0, 2) == 0 ? 3 : 5;
    bool snapshot = craft_prng_range(&shape, 0, 2) == 1;
    uint32_t ppm = craft_prng_range(&shape, 0, 2) == 0 ? 0 : (uint32_t)craft_prng_range(&shape, 1, 20001);
    struct sim_cluster *c = begin(n, snapshot, ppm, "linearizable kv reads under faults");
    struct sim_reads_opts ro = {
        .n_clients = 4, .n_keys = 3, .put_pct = 15, .append_pct = 30,
        .modes = {true, true, true}, .op_timeout_ms = OP_TIMEOUT_MS, .think_ms_max = 40};
    sim_reads_start(c, &ro);
    int alive = n;
    uint64_t safety_ms = sim_rand(c, 8000, 20000);
    uint64_t start = sim_now(c);
    while (sim_now(c) - start < safety_ms) {
        sim_sleep(c, sim_rand(c, 50, 700));
        fault(c, n, &alive);
    }
    sim_note(c, "heal everything");
    heal_all(c, n);
    sim_sleep(c, 1000); /* reads on the healed cluster too */
    finish_and_check(c, ro.n_keys);
    sim_cluster_destroy(c);
}

/* ---- the stale leader ---- */

struct minority_reader {
    int nodes[CRAFT_CONF_NODES_MAX];
    int n_nodes;
    int next_client;
    bool stop;
    uint64_t issued;
};

/* Reads of every mode on the minority's nodes, each as its own client so that they may
 * overlap. */
static void minority_loop(struct sim_cluster *c, void *arg)
{
    struct minority_reader *mr = arg;
    if (mr->stop) {
        return;
    }
    int i = mr->nodes[sim_rand(c, 0, (uint64_t)mr->n_nodes)];
    enum sim_read_mode mode = (enum sim_read_mode)sim_rand(c, 0, SIM_READ_MODES_);
    char key[16];
    snprintf(key, sizeof key, "k%d", (int)sim_rand(c, 0, 2));
    if (sim_reads_read(c, mr->next_client, i, mode, key, OP_TIMEOUT_MS) != 0) {
        mr->next_client++;
        mr->issued++;
    }
    sim_task_at(c, sim_rand(c, 1, 8), minority_loop, mr);
}

void sim_read_stale_leader_minority(void)
{
    struct craft_prng shape;
    craft_prng_seed(&shape, sim_seed() ^ 0x7374616c652d6cULL);
    int n = craft_prng_range(&shape, 0, 2) == 0 ? 3 : 5;
    bool snapshot = craft_prng_range(&shape, 0, 2) == 1;
    uint32_t ppm = (uint32_t)craft_prng_range(&shape, 0, 20001);
    struct sim_cluster *c = begin(n, snapshot, ppm, "reads on a leader cut into a minority");
    /* Appends only: a read that misses an append completed before it began is stale
     * (sim_reads_check checks it directly, besides linearizability). */
    struct sim_reads_opts ro = {
        .n_clients = 3, .n_keys = 2, .put_pct = 0, .append_pct = 50,
        .modes = {true, true, true}, .op_timeout_ms = OP_TIMEOUT_MS, .think_ms_max = 20};
    int rounds = (int)sim_rand(c, 1, 4);
    sim_reads_start(c, &ro);
    for (int round = 0; round < rounds; round++) {
        sim_sleep(c, sim_rand(c, 500, 2000));
        int l = sim_check_one_leader(c);
        /* The minority: the leader and, in a cluster of 5, maybe one follower. */
        struct minority_reader mr = {.next_client = 1000 * (round + 1)};
        bool in_minority[CRAFT_CONF_NODES_MAX] = {false};
        in_minority[l] = true;
        mr.nodes[mr.n_nodes++] = l;
        if (n == 5 && sim_rand(c, 0, 2) == 0) {
            int f = (l + 1 + (int)sim_rand(c, 0, 4)) % n;
            in_minority[f] = true;
            mr.nodes[mr.n_nodes++] = f;
        }
        sim_note(c, "cut leader %d (minority of %d) away", l, mr.n_nodes);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                if (i != j && in_minority[i] != in_minority[j]) {
                    sim_set_link(c, i, j, false);
                }
            }
        }
        sim_task_at(c, 0, minority_loop, &mr);
        sim_sleep(c, sim_rand(c, 3000, 6000));
        mr.stop = true;
        sim_sleep(c, 10); /* the reader task ends before mr goes out of scope */
        sim_note(c, "heal the partition (%llu minority reads issued)",
                 (unsigned long long)mr.issued);
        heal_all(c, n);
    }
    sim_sleep(c, 500);
    finish_and_check(c, ro.n_keys);
    sim_cluster_destroy(c);
}

/* ---- leases under clock drift ---- */

void sim_read_lease_drift(void)
{
    struct craft_prng shape;
    craft_prng_seed(&shape, sim_seed() ^ 0x6c656173652d64ULL);
    int n = craft_prng_range(&shape, 0, 2) == 0 ? 3 : 5;
    bool snapshot = craft_prng_range(&shape, 0, 2) == 1;
    /* 1% .. 5%: far worse than real oscillators, so the bound matters. */
    uint32_t ppm = (uint32_t)craft_prng_range(&shape, 10000, 50001);
    struct sim_cluster *c = begin(n, snapshot, ppm, "lease reads with drifting clocks");
    struct sim_reads_opts ro = {
        .n_clients = 4, .n_keys = 2, .put_pct = 10, .append_pct = 30,
        .modes = {false, true, false}, .op_timeout_ms = OP_TIMEOUT_MS, .think_ms_max = 15};
    sim_reads_start(c, &ro);
    uint64_t safety_ms = sim_rand(c, 8000, 16000);
    uint64_t start = sim_now(c);
    while (sim_now(c) - start < safety_ms) {
        sim_sleep(c, sim_rand(c, 800, 2500));
        int l = leader_of(c, n);
        if (l < 0) {
            continue;
        }
        switch (sim_rand(c, 0, 3)) {
        case 0:
            sim_note(c, "crash leader %d", l);
            sim_crash(c, l);
            sim_sleep(c, sim_rand(c, 200, 3000));
            sim_start(c, l);
            sim_connect(c, l);
            break;
        case 1:
            sim_note(c, "partition leader %d", l);
            sim_disconnect(c, l);
            sim_sleep(c, sim_rand(c, 200, 3000));
            sim_connect(c, l);
            break;
        default: { /* one-way: the leader still hears the others but they miss it */
            sim_note(c, "leader %d goes silent", l);
            for (int j = 0; j < n; j++) {
                if (j != l) {
                    sim_set_link(c, l, j, false);
                }
            }
            sim_sleep(c, sim_rand(c, 200, 3000));
            sim_connect(c, l);
            break;
        }
        }
    }
    heal_all(c, n);
    sim_sleep(c, 500);
    finish_and_check(c, ro.n_keys);
    sim_cluster_destroy(c);
}

/* ---- helpers of the targeted scenarios below ---- */

/* Waits (in 1 ms steps) until op id is no longer pending; true if it completed (id 0: the
 * node refused it). */
static bool await_op(struct sim_cluster *c, uint64_t id)
{
    while (id != 0 && sim_reads_status(c, id) == SIM_OP_PENDING) {
        sim_sleep(c, 1);
    }
    return id != 0 && sim_reads_status(c, id) == SIM_OP_OK;
}

/* The leader (one holding a lease, if lease), waited for up to 4 s; fails the run else. */
static int await_leader(struct sim_cluster *c, int n, bool lease)
{
    int l = -1;
    for (int k = 0; k < 400 && (l < 0 || (lease && !sim_reads_has_lease(c, l))); k++) {
        sim_sleep(c, 10);
        l = leader_of(c, n);
    }
    if (l < 0 || (lease && !sim_reads_has_lease(c, l))) {
        sim_fail(c, "no leader%s after 4 s", lease ? " with a lease" : "");
    }
    return l;
}

/* A put of value to k0 through `writer`, then, once it completed, a lease read of k0 on
 * `reader` a millisecond later (the checker takes operations that touch at one instant as
 * concurrent), so a stale lease read is one the checker must refuse. */
static void write_then_lease_read(struct sim_cluster *c, int writer, int reader,
                                  const char *value)
{
    if (await_op(c, sim_reads_write(c, 1, writer, SIM_LIN_PUT, "k0", value, OP_TIMEOUT_MS))) {
        sim_sleep(c, 1);
        (void)await_op(c, sim_reads_read(c, 3, reader, SIM_READ_LEASE, "k0", OP_TIMEOUT_MS));
    }
}

/* 3 or 5 nodes, from the seed's own stream for this scenario (salt). */
static int three_or_five(uint64_t salt)
{
    struct craft_prng shape;
    craft_prng_seed(&shape, sim_seed() ^ salt);
    return craft_prng_range(&shape, 0, 2) == 0 ? 3 : 5;
}

/* Heals, lets the cluster settle, reads k0 through the leader, checks the history. */
static void heal_and_check(struct sim_cluster *c, int n)
{
    heal_all(c, n);
    sim_sleep(c, 500);
    finish_and_check(c, 1);
    sim_cluster_destroy(c);
}

/* ---- leases and an aborted leadership transfer (issue: libcraft complete) ----
 *
 * The leader L transfers to T, which it sees caught up, so TIMEOUT_NOW leaves at once; T's
 * own messages reach nobody (only L reaches T), so its transfer campaign for term + 1
 * gets no vote, and L gives the transfer up after an election timeout and serves on,
 * renewing its lease from new heartbeat rounds. Then L is cut off from everyone and T
 * from L only: T's campaign, still carrying the transfer flag (it resends it every
 * heartbeat interval for its whole candidacy), reaches the voters, who answer it whatever
 * they promised L (the flag is what lets a transfer through, thesis 3.10). If T wins and
 * commits a write while L still counts on its lease, a lease read on L returns the old
 * value: the checker sees it. Seeds where T's candidacy ended before L regained its lease
 * (T then campaigns without the flag and waits out the voters' promise) check nothing new
 * and say so in the trace. */
void sim_read_lease_transfer_abort(void)
{
    const int n = 5;
    struct sim_cluster *c = begin(n, false, 0, "lease reads around an aborted transfer");
    int l = await_leader(c, n, true);
    if (!await_op(c, sim_reads_write(c, 0, l, SIM_LIN_PUT, "k0", "1", OP_TIMEOUT_MS))) {
        sim_fail(c, "the first write did not complete on leader %d", l);
    }
    sim_sleep(c, 300); /* every follower acknowledged the write: the target is caught up */
    int t = (l + 1 + (int)sim_rand(c, 0, (uint64_t)n - 1)) % n;
    for (int j = 0; j < n; j++) {
        if (j != t) {
            sim_set_link(c, t, j, false);
            if (j != l) {
                sim_set_link(c, j, t, false);
            }
        }
    }
    int err = sim_transfer(c, l, t);
    if (err != CRAFT_OK) {
        sim_fail(c, "transfer %d -> %d refused: %s", l, t, craft_strerror(err));
    }
    sim_note(c, "transfer %d -> %d; %d's messages reach nobody", l, t, t);
    /* L gives the transfer up after an election timeout; it may then lease again. */
    uint64_t start = sim_now(c);
    bool lease_again = false;
    while (!lease_again && sim_now(c) - start < 3000) {
        sim_sleep(c, 5);
        lease_again = sim_is_alive(c, l) && leader_of(c, n) == l && sim_reads_has_lease(c, l);
    }
    sim_note(c, "old leader %d %s a lease after the transfer", l,
             lease_again ? "holds" : "does not hold");
    /* L alone; T with the other three. */
    for (int j = 0; j < n; j++) {
        if (j != l) {
            sim_set_link(c, l, j, false);
            sim_set_link(c, j, l, false);
            sim_set_link(c, t, j, true);
            sim_set_link(c, j, t, true);
        }
    }
    bool t_won = false;
    start = sim_now(c);
    while (!t_won && sim_now(c) - start < 3000) {
        sim_sleep(c, 2);
        uint64_t term;
        sim_get_state(c, t, &term, &t_won);
    }
    bool both = t_won && sim_reads_has_lease(c, l);
    sim_note(c, "target %d %s; old leader %s its lease then", t, t_won ? "leads" : "does not lead",
             both ? "still holds" : "no longer holds");
    if (t_won) {
        write_then_lease_read(c, t, l, "2");
    }
    heal_and_check(c, n);
}

/* ---- a new leader's first reads (thesis 6.4: not before an entry of its term commits) ----
 *
 * A new leader may hold entries the old one committed without knowing they are committed:
 * its commit index lags until its own no-op commits. A read it confirmed at that lagging
 * index would miss writes whose clients already saw success. Each round: a write through
 * the leader; the moment it completes, the leader's outgoing links go down (so the commit
 * index it would send next is lost on the wire) and it crashes; then every node is asked
 * for ReadIndex reads of the key every millisecond until one answers. Over the rounds and
 * seeds some new leaders take office with the write uncommitted in their view; the
 * checker sees any read that missed it. */
void sim_read_new_leader_window(void)
{
    int n = three_or_five(0x6e65776c6561ULL);
    struct sim_cluster *c = begin(n, false, 0, "a new leader's first reads");
    char val[32];
    for (int round = 0; round < 12; round++) {
        int l = await_leader(c, n, false);
        snprintf(val, sizeof val, "%d", round + 1);
        if (!await_op(c, sim_reads_write(c, 0, l, SIM_LIN_PUT, "k0", val, OP_TIMEOUT_MS))) {
            continue; /* the leader moved: try again */
        }
        for (int j = 0; j < n; j++) {
            if (j != l) {
                sim_set_link(c, l, j, false);
            }
        }
        sim_crash(c, l);
        /* Reads on every other node until one is served (or 3 s pass). */
        bool served = false;
        uint64_t start = sim_now(c);
        while (!served && sim_now(c) - start < 3000) {
            uint64_t ids[CRAFT_CONF_NODES_MAX] = {0};
            for (int j = 0; j < n; j++) {
                if (j != l) {
                    ids[j] = sim_reads_read(c, 1 + j, j, SIM_READ_INDEX, "k0", 50);
                }
            }
            sim_sleep(c, 1);
            for (int j = 0; j < n; j++) {
                served = await_op(c, ids[j]) || served;
            }
        }
        sim_start(c, l);
        heal_all(c, n);
    }
    heal_and_check(c, n);
}

/* ---- a candidate cut off from the leader only (thesis 4.2.3 with 6.4.1) ----
 *
 * The lease rests on voters ignoring campaigns while they hear from the leader. Node X
 * loses its links to the leader L (both ways) and nothing else: X times out and
 * campaigns, and every other voter, still hearing L, must ignore it. If they vote instead,
 * X wins while L still counts on its lease: the scenario then writes through X and reads
 * with the lease on L a millisecond later, and the checker sees the stale read. With the
 * rule kept, X never wins while L is up and connected (the scenario heals after 3 s). */
void sim_read_lease_disruptive_candidate(void)
{
    int n = three_or_five(0x6469737275ULL);
    struct sim_cluster *c = begin(n, false, 0, "lease reads while a cut-off node campaigns");
    for (int round = 0; round < 4; round++) {
        int l = await_leader(c, n, true);
        char val[16];
        snprintf(val, sizeof val, "a%d", round);
        (void)await_op(c, sim_reads_write(c, 0, l, SIM_LIN_PUT, "k0", val, OP_TIMEOUT_MS));
        int x = (l + 1 + (int)sim_rand(c, 0, (uint64_t)n - 1)) % n;
        sim_set_link(c, l, x, false);
        sim_set_link(c, x, l, false);
        sim_note(c, "node %d cut off from leader %d only", x, l);
        uint64_t start = sim_now(c);
        bool x_leads = false;
        while (!x_leads && sim_now(c) - start < 3000) {
            sim_sleep(c, 1);
            uint64_t term;
            sim_get_state(c, x, &term, &x_leads);
            if (sim_now(c) % 20 == 0) { /* lease reads on L meanwhile */
                (void)sim_reads_read(c, 2, l, SIM_READ_LEASE, "k0", OP_TIMEOUT_MS);
            }
        }
        if (x_leads) {
            sim_note(c, "node %d won while cut off from leader %d", x, l);
            snprintf(val, sizeof val, "b%d", round);
            write_then_lease_read(c, x, l, val);
        }
        heal_all(c, n);
    }
    heal_and_check(c, n);
}
