/* Chaos: one seed draws the cluster (3, 5 or 7 nodes, snapshots or not) and a stream of
 * faults, in the spirit of TigerBeetle's VOPR. A safety phase injects random faults while
 * clients propose: crashes and restarts, disconnections, one-way link cuts, random splits
 * into two sides, lossy and reordering network phases (on top of the seed's disk latency,
 * duplication and election timeout). The simulator checks the invariants after every
 * event. Then a liveness phase heals everything, and the cluster must agree on a new
 * command on every node within one()'s budget. */
#include <stdio.h>

#include "base/prng.h"
#include "raft_scenarios.h"
#include "sim/scenario.h"

struct chaos_client {
    int n;
    bool stop;
    bool done;
    uint64_t accepted;
};

static void chaos_client_loop(struct sim_cluster *c, void *arg)
{
    struct chaos_client *cl = arg;
    if (cl->stop) {
        cl->done = true;
        return;
    }
    uint64_t x = sim_raft_rand_cmd(c);
    for (int i = 0; i < cl->n; i++) {
        uint64_t index = 0, term = 0;
        if (sim_is_alive(c, i) && sim_start_int(c, i, x, &index, &term)) {
            cl->accepted++;
            break;
        }
    }
    sim_task_at(c, sim_rand(c, 1, 40), chaos_client_loop, cl);
}

static int random_node(struct sim_cluster *c, int n)
{
    return (int)sim_rand(c, 0, (uint64_t)n);
}

void sim_chaos_heal_links(struct sim_cluster *c, int n)
{
    for (int i = 0; i < n; i++) {
        if (sim_is_alive(c, i)) {
            sim_disconnect(c, i);
        }
    }
    for (int i = 0; i < n; i++) {
        if (sim_is_alive(c, i)) {
            sim_connect(c, i);
        }
    }
}

static void split(struct sim_cluster *c, int n)
{
    bool side[CRAFT_CONF_NODES_MAX];
    for (int i = 0; i < n; i++) {
        side[i] = sim_rand(c, 0, 2) == 1;
    }
    sim_note(c, "chaos: split into two sides");
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            if (i != j && side[i] != side[j]) {
                sim_set_link(c, i, j, false);
            }
        }
    }
}

/* The faults chaos and swarm runs inject, in chaos's order (its uniform draw indexes it). */
enum fault_kind {
    FAULT_CRASH,      /* keeping at least one node up so clients have someone to talk to */
    FAULT_RESTART,    /* a crashed node */
    FAULT_DISCONNECT,
    FAULT_CONNECT,
    FAULT_ONE_WAY,    /* i no longer hears j, j still hears i */
    FAULT_HEAL,
    FAULT_SPLIT,
    FAULT_LOSSY,
    FAULT_REORDER,
    FAULT_QUIET,
    FAULT_KINDS
};

static void apply_fault(struct sim_cluster *c, int n, int *alive, enum fault_kind kind, int i,
                        void (*crash)(struct sim_cluster *c, int i),
                        void (*start)(struct sim_cluster *c, int i))
{
    switch (kind) {
    case FAULT_CRASH:
        if (sim_is_alive(c, i) && *alive > 1) {
            crash(c, i);
            (*alive)--;
        }
        break;
    case FAULT_RESTART:
        if (!sim_is_alive(c, i)) {
            start(c, i);
            sim_connect(c, i);
            (*alive)++;
        }
        break;
    case FAULT_DISCONNECT:
        if (sim_is_alive(c, i)) {
            sim_disconnect(c, i);
        }
        break;
    case FAULT_CONNECT:
        if (sim_is_alive(c, i)) {
            sim_connect(c, i);
        }
        break;
    case FAULT_ONE_WAY: {
        int j = random_node(c, n);
        if (i != j) {
            sim_set_link(c, j, i, false);
        }
        break;
    }
    case FAULT_HEAL:
        sim_chaos_heal_links(c, n);
        break;
    case FAULT_SPLIT:
        split(c, n);
        break;
    case FAULT_LOSSY:
        sim_set_reliable(c, sim_rand(c, 0, 2) == 0);
        break;
    case FAULT_REORDER:
        sim_set_long_reordering(c, sim_rand(c, 0, 4) == 0);
        break;
    case FAULT_QUIET:
    case FAULT_KINDS:
        break;
    }
}

void sim_chaos_fault(struct sim_cluster *c, int n, int *alive, uint32_t extra_crash_weight,
                     void (*crash)(struct sim_cluster *c, int i),
                     void (*start)(struct sim_cluster *c, int i))
{
    int i = random_node(c, n);
    uint64_t kind = sim_rand(c, 0, 10 + (uint64_t)extra_crash_weight);
    apply_fault(c, n, alive, kind < FAULT_KINDS ? (enum fault_kind)kind : FAULT_CRASH, i, crash,
                start);
}

/* Three clients proposing to whichever node takes it, until told to stop. */
static void clients_start(struct sim_cluster *c, int n, struct chaos_client clients[3])
{
    for (int k = 0; k < 3; k++) {
        clients[k] = (struct chaos_client){.n = n};
        sim_task_at(c, (uint64_t)k, chaos_client_loop, &clients[k]);
    }
}

/* The liveness phase: every fault healed and every node up, the clients stopped, then one
 * new command must reach every node within one()'s budget. */
static void heal_and_converge(struct sim_cluster *c, int n, struct chaos_client clients[3])
{
    sim_note(c, "heal everything");
    sim_set_reliable(c, true);
    sim_set_long_reordering(c, false);
    for (int i = 0; i < n; i++) {
        if (!sim_is_alive(c, i)) {
            sim_start(c, i);
        }
    }
    sim_chaos_heal_links(c, n);
    for (int k = 0; k < 3; k++) {
        clients[k].stop = true;
    }
    while (!clients[0].done || !clients[1].done || !clients[2].done) {
        sim_sleep(c, 10);
    }
    sim_one_int(c, sim_raft_rand_cmd(c), n, true);
}

void sim_chaos_phases(struct sim_cluster *c, int n, uint64_t safety_ms,
                      uint32_t extra_crash_weight)
{
    struct chaos_client clients[3];
    clients_start(c, n, clients);
    int alive = n;
    uint64_t start = sim_now(c);
    while (sim_now(c) - start < safety_ms) {
        sim_sleep(c, sim_rand(c, 10, 500));
        sim_chaos_fault(c, n, &alive, extra_crash_weight, sim_crash, sim_start);
    }
    heal_and_converge(c, n, clients);
}

void sim_raft_chaos(void)
{
    /* The cluster's shape comes from its own stream of the seed. */
    struct craft_prng shape;
    craft_prng_seed(&shape, sim_seed() ^ 0x6368616f73ULL);
    int n = 3 + 2 * (int)craft_prng_range(&shape, 0, 3);
    bool snapshot = craft_prng_range(&shape, 0, 2) == 1;
    uint64_t t0;
    struct sim_cluster *c =
        sim_raft_begin(n, false, snapshot, "chaos: random faults, then heal and converge", &t0);
    sim_chaos_phases(c, n, sim_rand(c, 10000, 40000), 0);
    sim_raft_end(c, t0);
}

/* ---- swarm testing (Groce et al.; TigerBeetle's VOPR) ----
 *
 * Chaos draws every fault at the same rates, so the runs of all seeds look alike: a fault
 * whose effect shows only when others are rare (a long partition without crashes, crashes
 * without partitions, reordering alone) is seldom reached. A swarm run draws its own mix
 * first: which faults are on and how often (a weight 0-3 each; 0 is off), how dense the
 * faults come, the cluster's size (even sizes included: their quorums are rare elsewhere)
 * and whether the network starts lossy. The mix is noted in the trace and printed with a
 * failure, before its replay line. */


static const char *const swarm_names[FAULT_KINDS] = {
    "crash", "restart", "disconnect", "connect", "one-way", "heal", "split", "lossy",
    "reorder", "quiet"};

struct swarm_mix {
    uint32_t weight[FAULT_KINDS];
    uint32_t total;
    uint64_t gap_lo, gap_hi; /* ms between faults */
};

static void swarm_draw(struct swarm_mix *m, struct craft_prng *p)
{
    m->total = 0;
    for (int k = 0; k < FAULT_KINDS; k++) {
        m->weight[k] = (uint32_t)craft_prng_range(p, 0, 4);
        m->total += m->weight[k];
    }
    if (m->weight[FAULT_CRASH] > 0 && m->weight[FAULT_RESTART] == 0) {
        m->weight[FAULT_RESTART] = 1; /* crashes alone would leave one node up: liveness */
        m->total++;
    }
    if (m->total == 0) {
        m->weight[FAULT_QUIET] = 1;
        m->total = 1;
    }
    m->gap_lo = 5 + craft_prng_range(p, 0, 100);
    m->gap_hi = m->gap_lo + 1 + craft_prng_range(p, 0, 1000);
}

static void swarm_describe(const struct swarm_mix *m, char *buf, size_t cap)
{
    size_t off = (size_t)snprintf(buf, cap, "gap %llu-%llu ms:", (unsigned long long)m->gap_lo,
                                  (unsigned long long)m->gap_hi);
    for (int k = 0; k < FAULT_KINDS && off < cap; k++) {
        if (m->weight[k] > 0) {
            off += (size_t)snprintf(buf + off, cap - off, " %s=%u", swarm_names[k], m->weight[k]);
        }
    }
}

static void swarm_fault(struct sim_cluster *c, int n, int *alive, const struct swarm_mix *m)
{
    uint64_t x = sim_rand(c, 0, m->total);
    int kind = 0;
    while (x >= m->weight[kind]) {
        x -= m->weight[kind];
        kind++;
    }
    int i = random_node(c, n);
    apply_fault(c, n, alive, (enum fault_kind)kind, i, sim_crash, sim_start);
}

void sim_swarm_raft(void)
{
    struct craft_prng p;
    craft_prng_seed(&p, sim_seed() ^ 0x737761726dULL);
    static const int sizes[] = {3, 4, 5, 6, 7};
    int n = sizes[craft_prng_range(&p, 0, 5)];
    bool snapshot = craft_prng_range(&p, 0, 2) == 1;
    bool lossy = craft_prng_range(&p, 0, 3) == 0;
    struct swarm_mix m;
    swarm_draw(&m, &p);
    char mix[400];
    swarm_describe(&m, mix, sizeof mix);
    sim_run_context("swarm mix: n=%d snapshot=%d lossy=%d %s", n, snapshot, lossy, mix);
    uint64_t t0;
    struct sim_cluster *c =
        sim_raft_begin(n, lossy, snapshot, "swarm: a drawn fault mix, then heal and converge", &t0);
    sim_note(c, "swarm mix: n=%d snapshot=%d lossy=%d %s", n, snapshot, lossy, mix);
    struct chaos_client clients[3];
    clients_start(c, n, clients);
    int alive = n;
    uint64_t start = sim_now(c), safety_ms = sim_rand(c, 10000, 40000);
    while (sim_now(c) - start < safety_ms) {
        sim_sleep(c, sim_rand(c, m.gap_lo, m.gap_hi));
        swarm_fault(c, n, &alive, &m);
    }
    heal_and_converge(c, n, clients);
    sim_raft_end(c, t0);
}

/* Out of memory in the core (docs/design/core.md, "Out of memory"): five nodes under
 * proposals while 0.5-2 % of the cores' allocations fail. A node whose step could not
 * allocate stops (never an assertion) and is restarted from its disk 100-1000 ms later; a
 * proposal that could not allocate is refused. The invariant checks run throughout;
 * afterwards, with memory to spare, every node agrees on a new command. */
void sim_raft_alloc_failures(void)
{
    const int n = 5;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(n, false, false, "allocation failures in the core", &t0);
    uint32_t ppm = (uint32_t)sim_rand(c, 5000, 20000);
    sim_note(c, "allocations fail at %u per million", ppm);
    sim_one_int(c, sim_raft_rand_cmd(c), n, true);
    sim_set_alloc_failures(c, ppm);
    for (int iter = 0; iter < 300; iter++) {
        for (int i = 0; i < n; i++) {
            uint64_t index, term;
            if (sim_is_alive(c, i)) {
                (void)sim_start_int(c, i, sim_raft_rand_cmd(c), &index, &term);
            }
        }
        sim_sleep(c, sim_rand(c, 10, 60));
    }
    sim_set_alloc_failures(c, 0);
    uint64_t failed, stopped;
    sim_alloc_failures(c, &failed, &stopped);
    sim_note(c, "%llu allocations failed, %llu cores stopped", (unsigned long long)failed,
             (unsigned long long)stopped);
    if (failed == 0) {
        sim_fail(c, "no allocation failed: the scenario tested nothing");
    }
    sim_sleep(c, 1500); /* the last stopped nodes are restarted */
    sim_one_int(c, sim_raft_rand_cmd(c), n, true);
    sim_raft_end(c, t0);
}
