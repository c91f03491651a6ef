/* The MIT 6.5840 Raft tester (config.go) on the simulator: make_config, the fault helpers,
 * the checks with their exact timings in virtual ms, and the run loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/assert.h"
#include "base/prng.h"
#include "base/trace.h"
#include "sim/clock.h"
#include "sim/reads.h"
#include "sim/sim_internal.h"
#include "sim/world.h"

#define ONE_BUDGET_MS 10000     /* one(): overall */
#define ONE_ATTEMPT_MS 2000     /* one(): per accepted Start */
#define ONE_POLL_MS 20
#define ONE_NO_LEADER_MS 50
#define CHECK_LEADER_ROUNDS 10
#define WAIT_TRIES 30

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    CRAFT_ASSERT(p != NULL);
    return p;
}

static void check_node_index(const struct sim_cluster *c, int i)
{
    CRAFT_ASSERT(i >= 0 && i < c->n);
}

void sim_cluster_opts_default(struct sim_cluster_opts *opts, int n, bool unreliable, bool snapshot)
{
    *opts = (struct sim_cluster_opts){
        .n = n,
        .unreliable = unreliable,
        .snapshot = snapshot,
        .long_delays = true,
    };
    /* The fault mix: config.go's persister is synchronous and labrpc never duplicates;
     * ours vary by seed so the asynchronous write path, the loss of unsynced writes,
     * duplicates and faster elections are all exercised. */
    struct craft_prng mix;
    craft_prng_seed(&mix, sim_seed() ^ 0x6d69782d66617574ULL);
    if (craft_prng_range(&mix, 0, 3) != 0) {
        opts->disk_latency_max_ms = (uint32_t)craft_prng_range(&mix, 1, 9);
    }
    if (craft_prng_range(&mix, 0, 2) != 0) {
        opts->dup_per_mille = (uint32_t)craft_prng_range(&mix, 1, 21);
    }
    if (craft_prng_range(&mix, 0, 2) != 0) {
        opts->election_timeout_ms = (uint32_t)craft_prng_range(&mix, 300, 1000);
    }
    if (craft_prng_range(&mix, 0, 2) != 0) {
        opts->snapshot_chunk_bytes = (uint32_t)craft_prng_range(&mix, 256, 4096);
    }
    /* Drawn last, so the draws above (and every older seed's mix) stay as they were. */
    if (craft_prng_range(&mix, 0, 2) != 0) {
        opts->tail_per_mille = (uint32_t)craft_prng_range(&mix, 1, 31);
    }
}

/* The parts of a cluster that are one group's: nodes, checks, the bootstrap configuration.
 * c->w, c->net and c->connected are set by the caller. */
static void group_init(struct sim_cluster *c, const struct sim_cluster_opts *opts)
{
    c->opts = *opts;
    c->n = opts->n;
    c->nodes = xcalloc((size_t)c->n, sizeof *c->nodes);
    sim_checks_init(&c->ch, c->n);
    CRAFT_ASSERT(opts->n_initial >= 0 && opts->n_initial <= c->n);
    c->n_initial = opts->n_initial > 0 ? opts->n_initial : c->n;
    c->conf.n_voters = (uint32_t)c->n_initial;
    for (int i = 0; i < c->n; i++) {
        if (i < c->n_initial) {
            c->conf.voters[i] = (uint64_t)i + 1;
        }
        sim_node_init(c, i);
    }
    c->ch.conf = c->conf;
}

struct sim_cluster *sim_cluster_create(const struct sim_cluster_opts *opts)
{
    CRAFT_ASSERT(opts->n >= 1 && opts->n <= CRAFT_CONF_NODES_MAX);
    struct sim_cluster *c = xcalloc(1, sizeof *c);
    c->w = &c->w_store;
    c->net = &c->net_store;
    c->root = c;
    c->groups = xcalloc(1, sizeof *c->groups);
    c->groups[0] = c;
    c->n_groups = 1;
    sim_world_init(c->w, sim_seed());
    sim_net_init(c->net, c->w, opts->n, sim_node_deliver, c);
    c->net->reliable = !opts->unreliable;
    c->net->dup_per_mille = opts->dup_per_mille;
    c->net->tail_per_mille = opts->tail_per_mille;
    c->connected = xcalloc((size_t)opts->n, sizeof *c->connected);
    group_init(c, opts);
    sim_run_attach(c);
    sim_note(c, "make_config n=%d unreliable=%d snapshot=%d disk_latency_max=%u dup=%u tail=%u "
             "election=%u chunk=%u",
             c->n, opts->unreliable, opts->snapshot, opts->disk_latency_max_ms,
             opts->dup_per_mille, opts->tail_per_mille, opts->election_timeout_ms,
             opts->snapshot_chunk_bytes);
    for (int i = 0; i < c->n; i++) {
        sim_start(c, i);
    }
    for (int i = 0; i < c->n; i++) {
        sim_connect(c, i);
    }
    if (opts->quiesce) {
        sim_liveness_start(c);
    }
    return c;
}

struct sim_cluster *sim_cluster_add_group(struct sim_cluster *root,
                                          const struct sim_cluster_opts *opts)
{
    CRAFT_ASSERT(root->root == root && opts->n == root->n);
    CRAFT_ASSERT(!opts->kv && !opts->shared_log && !opts->quiesce);
    CRAFT_ASSERT(opts->real_storage == (root->opts.real_storage && root->opts.shared_log));
    struct sim_cluster *c = xcalloc(1, sizeof *c);
    c->w = root->w;
    c->net = root->net;
    c->connected = root->connected;
    c->root = root;
    c->group = (uint64_t)root->n_groups;
    root->groups = sim_xrealloc(root->groups, ((size_t)root->n_groups + 1) * sizeof *root->groups);
    root->groups[root->n_groups++] = c;
    group_init(c, opts);
    sim_note(c, "group %llu: n=%d snapshot=%d", (unsigned long long)c->group, c->n,
             opts->snapshot);
    /* Its replicas live in the root's processes: up where the process is up (started
     * directly: sim_start would crash and disconnect the whole process first). */
    for (int i = 0; i < c->n; i++) {
        if (root->nodes[i].alive) {
            sim_node_start(c, i);
        }
    }
    return c;
}

struct sim_cluster *sim_group_of(struct sim_cluster *c, int g)
{
    CRAFT_ASSERT(g >= 0 && g < c->root->n_groups);
    return c->root->groups[g];
}

int sim_n_groups(const struct sim_cluster *c)
{
    return c->root->n_groups;
}

void sim_replica_crash(struct sim_cluster *c, int i)
{
    check_node_index(c, i);
    sim_node_crash(c, i);
}

void sim_replica_start(struct sim_cluster *c, int i)
{
    check_node_index(c, i);
    sim_node_crash(c, i);
    sim_node_start(c, i);
}

void sim_proc_crash(struct sim_cluster *c, int i)
{
    for (int g = 0; g < c->root->n_groups; g++) {
        sim_crash(c->root->groups[g], i);
    }
}

void sim_proc_start(struct sim_cluster *c, int i)
{
    for (int g = 0; g < c->root->n_groups; g++) {
        sim_start(c->root->groups[g], i);
    }
}

struct task {
    sim_task_fn fn;
    void *arg;
};

static void task_event(void *ctx, void *arg, uint64_t a);

/* One group's end: its Passed line and its memory (not the shared world or network). */
static void group_free(struct sim_cluster *c)
{
    uint64_t cmds = 0;
    for (int i = 0; i < c->n; i++) {
        if (c->nodes[i].n_known > cmds) {
            cmds = c->nodes[i].n_known;
        }
    }
    if (c->group != 0) {
        sim_note(c, "  ... group %llu: %llu commands", (unsigned long long)c->group,
                 (unsigned long long)cmds);
    } else {
        sim_note(c, "  ... Passed --  %llu.%01llus %d %llu %llu %llu",
                 (unsigned long long)(c->w->now / 1000),
                 (unsigned long long)(c->w->now % 1000 / 100), c->n,
                 (unsigned long long)c->net->rpc_total, (unsigned long long)c->net->bytes_total,
                 (unsigned long long)cmds);
    }
    for (int i = 0; i < c->n; i++) {
        sim_node_free(&c->nodes[i]);
    }
    sim_checks_free(&c->ch, c->n);
    free(c->nodes);
    free(c->blob);
}

/* Whether group c has converged: one leader that committed every entry its log held when
 * it was first seen leading (*target, reset with the leader's term: entries still arriving
 * from clients need not be), a configuration that is not joint, and every member of it up,
 * following that leader in its term, with that much committed and applied and no read
 * pending. *leader_out: the leader's index. */
static bool converged(struct sim_cluster *c, uint64_t *target, uint64_t *term, int *leader_out,
                      char *why, size_t cap)
{
    struct craft_core_status ls = {0};
    int leader = -1;
    for (int i = 0; i < c->n; i++) {
        if (!c->nodes[i].alive) {
            continue;
        }
        struct craft_core_status st;
        craft_core_status(craft_driver_core(c->nodes[i].d), &st);
        if (st.role == CRAFT_LEADER && (leader < 0 || st.term > ls.term)) {
            leader = i;
            ls = st;
        }
    }
    *leader_out = leader;
    if (leader < 0) {
        snprintf(why, cap, "no leader");
        return false;
    }
    if (ls.term != *term) {
        *term = ls.term;
        *target = ls.last_index;
    }
    if (ls.commit < *target || ls.transfer_target != CRAFT_NONE ||
        ls.conf.n_voters_outgoing != 0) {
        snprintf(why, cap, "leader n%d: commit %llu of %llu%s", leader + 1,
                 (unsigned long long)ls.commit, (unsigned long long)*target,
                 ls.conf.n_voters_outgoing != 0 ? ", joint configuration" : "");
        return false;
    }
    for (int i = 0; i < c->n; i++) {
        uint64_t id = (uint64_t)i + 1;
        if (!sim_conf_is_voter(&ls.conf, id) && !sim_conf_is_learner(&ls.conf, id)) {
            continue; /* not a member: nothing to catch up on */
        }
        if (!c->nodes[i].alive) {
            snprintf(why, cap, "member n%d down", i + 1);
            return false;
        }
        struct craft_core_status st;
        craft_core_status(craft_driver_core(c->nodes[i].d), &st);
        if (st.term != ls.term || (i != leader && st.leader != (uint64_t)leader + 1) ||
            st.commit < *target || st.applied < *target || st.pending_reads != 0) {
            snprintf(why, cap, "n%d: term %llu leader %llu commit %llu applied %llu reads %u; "
                     "leader n%d term %llu log %llu", i + 1, (unsigned long long)st.term,
                     (unsigned long long)st.leader, (unsigned long long)st.commit,
                     (unsigned long long)st.applied, st.pending_reads, leader + 1,
                     (unsigned long long)ls.term, (unsigned long long)*target);
            return false;
        }
    }
    return true;
}

/* Waits until every group has converged and stayed so, under the same leaders' terms, for
 * STABLE_MS; fails the run past CONVERGE_MS. leaders[g] receives group g's leader. */
#define CONVERGE_MS 60000u
#define STABLE_MS   3000u
static void await_converged(struct sim_cluster *root, int *leaders)
{
    int n = root->n_groups;
    uint64_t *target = xcalloc((size_t)n, sizeof *target);
    uint64_t *term = xcalloc((size_t)n, sizeof *term);
    uint64_t *seen = xcalloc((size_t)n, sizeof *seen);
    char why[256] = "";
    uint64_t stable_since = UINT64_MAX;
    for (uint64_t waited = 0;; waited += 100) {
        bool all = true;
        for (int g = 0; g < n; g++) {
            bool ok = converged(root->groups[g], &target[g], &term[g], &leaders[g], why,
                                sizeof why);
            if (!ok && n > 1) {
                size_t k = strlen(why);
                snprintf(why + k, sizeof why - k, " (group %d)", g);
            }
            if (ok && seen[g] != term[g]) {
                seen[g] = term[g];
                stable_since = UINT64_MAX; /* a new term: stability starts over */
            }
            all = all && ok;
            if (!ok) {
                break;
            }
        }
        if (!all) {
            stable_since = UINT64_MAX;
        } else if (stable_since == UINT64_MAX) {
            stable_since = waited;
        } else if (waited - stable_since >= STABLE_MS) {
            break;
        }
        if (waited >= CONVERGE_MS) {
            free(target);
            free(term);
            free(seen);
            sim_fail(root, "no convergence within %u ms after the faults stopped: %s",
                     CONVERGE_MS, all ? "leaders keep changing" : why);
        }
        sim_sleep(root, 100);
    }
    free(target);
    free(term);
    free(seen);
}

/* Liveness, checked at the end of every run that passed its own checks: once the faults
 * stop (every process up and connected, the network reliable), every group elects a
 * leader that keeps its term for STABLE_MS, commits what its log holds, and every member
 * follows it, catches up and resolves its reads, within CONVERGE_MS of virtual time. Then
 * each group's leadership moves (a transfer: a new term, whose first entry every member
 * must commit and apply in turn), so a group that only looked settled, with no new work
 * to show otherwise, must make progress once more. Raft promises this (thesis 3.4: with
 * timing eventually good), so a run that cannot is a bug, whatever the scenario checked. */
static void converge(struct sim_cluster *root)
{
    sim_set_reliable(root, true);
    sim_set_long_reordering(root, false);
    for (int g = 0; g < root->n_groups; g++) {
        struct sim_cluster *c = root->groups[g];
        for (int i = 0; i < c->n; i++) {
            if (!c->nodes[i].alive && !c->nodes[i].gone) {
                sim_replica_start(c, i);
            }
        }
    }
    for (int i = 0; i < root->n; i++) {
        sim_connect(root, i);
    }
    int *leaders = xcalloc((size_t)root->n_groups, sizeof *leaders);
    await_converged(root, leaders);
    for (int g = 0; g < root->n_groups; g++) {
        (void)sim_transfer(root->groups[g], leaders[g], -1); /* refused alone: no peer */
    }
    await_converged(root, leaders);
    free(leaders);
}

static bool alloc_fails(void *ctx)
{
    struct sim_cluster *root = ctx;
    root->alloc_rng = sim_mix64(root->alloc_rng + 0x9e3779b97f4a7c15ULL);
    bool fail = root->alloc_rng % 1000000u < root->alloc_fail_ppm;
    root->n_allocs_failed += fail;
    return fail;
}

void sim_set_alloc_failures(struct sim_cluster *c, uint32_t per_million)
{
    struct sim_cluster *root = c->root;
    /* A node that fails at start must be able to come back later with nothing half set
     * (node.c): the plain disk model and the MIT applier only. */
    CRAFT_ASSERT(per_million == 0 ||
                 (!root->opts.kv && root->opts.app == NULL && !root->opts.real_storage));
    if (root->alloc_rng == 0) {
        root->alloc_rng = sim_mix64(sim_seed() ^ 0xa110cULL);
    }
    root->alloc_fail_ppm = per_million;
    craft_alloc_set_hook(per_million != 0 ? alloc_fails : NULL, root);
}

void sim_alloc_failures(const struct sim_cluster *c, uint64_t *failed, uint64_t *stopped)
{
    *failed = c->root->n_allocs_failed;
    *stopped = c->root->n_cores_stopped;
}

void sim_cluster_destroy(struct sim_cluster *c)
{
    if (c == NULL) {
        return;
    }
    CRAFT_ASSERT(c->root == c); /* groups end with their root */
    sim_set_alloc_failures(c, 0); /* liveness is checked with memory to spare */
    converge(c);
    sim_run_detach(c);
    struct sim_event ev;
    /* Pending events of every group are dropped unrun, before any group's memory goes. */
    while (sim_world_pop(c->w, &ev)) {
        if (ev.fn == task_event) {
            free(ev.arg);
        }
    }
    sim_reads_free(c); /* after the events: client tasks point into it */
    for (int g = c->n_groups - 1; g >= 1; g--) {
        group_free(c->groups[g]);
        free(c->groups[g]);
    }
    group_free(c);
    sim_net_free(c->net);
    sim_world_free(c->w);
    sim_liveness_free(c);
    free(c->connected);
    free(c->groups);
    free(c);
}

/* ---- time ---- */

/* Runs every event and node timer due at or before `until`, in (time, sequence) order; node
 * timers come first at equal times, lowest node first. Nodes are few (<= 7 in the MIT
 * tests), so scanning their cached timers per event is cheaper than queueing every timer
 * change. */
static void run_until(struct sim_cluster *c, uint64_t until)
{
    struct sim_world *w = c->w;
    struct sim_cluster *root = c->root;
    for (;;) {
        struct sim_node *timer_node = NULL;
        uint64_t t_timer = UINT64_MAX;
        for (int g = 0; g < root->n_groups; g++) {
            struct sim_cluster *gc = root->groups[g];
            for (int i = 0; i < gc->n; i++) {
                if (gc->nodes[i].alive && gc->nodes[i].next_timeout < t_timer) {
                    t_timer = gc->nodes[i].next_timeout;
                    timer_node = &gc->nodes[i];
                }
            }
        }
        uint64_t t_event = UINT64_MAX;
        (void)sim_world_peek(w, &t_event);
        uint64_t t = t_timer < t_event ? t_timer : t_event;
        if (t > until) {
            break;
        }
        CRAFT_ASSERT(t >= w->now);
        w->now = t;
        w->events++;
        if (t_timer <= t_event) {
            sim_node_tick(timer_node);
        } else {
            struct sim_event ev;
            bool ok = sim_world_pop(w, &ev);
            CRAFT_ASSERT(ok);
            ev.fn(ev.ctx, ev.arg, ev.a);
        }
        sim_run_budget_check(c);
    }
    w->now = until;
}

uint64_t sim_now(const struct sim_cluster *c)
{
    return c->w->now;
}

void sim_sleep(struct sim_cluster *c, uint64_t ms)
{
    CRAFT_ASSERT(!c->in_task); /* tasks are callbacks: they reschedule instead */
    run_until(c, c->w->now + ms);
}

uint64_t sim_rand(struct sim_cluster *c, uint64_t lo, uint64_t hi)
{
    return sim_world_rand(c->w, lo, hi);
}

/* ---- faults ---- */

void sim_connect(struct sim_cluster *c, int i)
{
    check_node_index(c, i);
    CRAFT_TRACE(CRAFT_T_FAULT, c->w->now, 0, 0, "connect n%d", i + 1);
    c->connected[i] = true;
    for (int j = 0; j < c->n; j++) {
        if (j != i && c->connected[j]) {
            sim_net_set_link(c->net, i, j, true);
            sim_net_set_link(c->net, j, i, true);
        }
    }
}

void sim_disconnect(struct sim_cluster *c, int i)
{
    check_node_index(c, i);
    CRAFT_TRACE(CRAFT_T_FAULT, c->w->now, 0, 0, "disconnect n%d", i + 1);
    c->connected[i] = false;
    for (int j = 0; j < c->n; j++) {
        if (j != i) {
            sim_net_set_link(c->net, i, j, false);
            sim_net_set_link(c->net, j, i, false);
        }
    }
}

bool sim_is_connected(const struct sim_cluster *c, int i)
{
    check_node_index(c, i);
    return c->connected[i];
}

void sim_set_link(struct sim_cluster *c, int from, int to, bool enabled)
{
    check_node_index(c, from);
    check_node_index(c, to);
    CRAFT_TRACE(CRAFT_T_FAULT, c->w->now, 0, 0, "link n%d->n%d %s", from + 1, to + 1,
                enabled ? "on" : "off");
    sim_net_set_link(c->net, from, to, enabled);
}

void sim_crash(struct sim_cluster *c, int i)
{
    check_node_index(c, i);
    sim_disconnect(c, i); /* crash1 disconnects first */
    sim_node_crash(c, i);
}

void sim_start(struct sim_cluster *c, int i)
{
    check_node_index(c, i);
    sim_crash(c, i);
    sim_node_start(c, i);
}

bool sim_node_quiesced(const struct sim_cluster *c, int i)
{
    check_node_index(c, i);
    return c->nodes[i].alive && c->nodes[i].quiet.quiesced;
}

bool sim_is_alive(const struct sim_cluster *c, int i)
{
    check_node_index(c, i);
    return c->nodes[i].alive;
}

void sim_set_reliable(struct sim_cluster *c, bool reliable)
{
    CRAFT_TRACE(CRAFT_T_FAULT, c->w->now, 0, 0, "network %s", reliable ? "reliable" : "unreliable");
    c->net->reliable = reliable;
}

void sim_set_long_reordering(struct sim_cluster *c, bool on)
{
    CRAFT_TRACE(CRAFT_T_FAULT, c->w->now, 0, 0, "long reordering %s", on ? "on" : "off");
    c->net->long_reordering = on;
}

/* ---- the Raft API of one node ---- */

/* The command index (the MIT "index") of the entry at log index `index` in node's log: the
 * NORMAL entries before it, plus one. Counting starts from the highest committed index the
 * node's log holds, whose count the appliers recorded, so the scan is short. */
static uint64_t command_index(struct sim_node *node, uint64_t index)
{
    const struct craft_core *core = craft_driver_core(node->d);
    struct craft_core_status st;
    craft_core_status(core, &st);
    const struct sim_checks *ch = &node->c->ch;
    uint64_t base = ch->gc_max < index - 1 ? ch->gc_max : index - 1;
    for (;; base--) {
        if (base <= st.snap_index) {
            base = st.snap_index;
            break;
        }
        const struct sim_committed *g = sim_check_committed(ch, base);
        const struct craft_entry *e = craft_core_entry(core, base);
        if (g != NULL && e != NULL && e->term == g->term) {
            break;
        }
    }
    uint64_t count = 0;
    if (base > 0) {
        const struct sim_committed *g = sim_check_committed(ch, base);
        if (g == NULL) {
            sim_fail(node->c, "server %d: no command count for its snapshot index %llu", node->i,
                     (unsigned long long)base);
        }
        count = g->cmds_through;
    }
    for (uint64_t k = base + 1; k < index; k++) {
        const struct craft_entry *e = craft_core_entry(core, k);
        CRAFT_ASSERT(e != NULL);
        if (e->type == CRAFT_ENTRY_NORMAL) {
            count++;
        }
    }
    return count + 1;
}

bool sim_start_cmd(struct sim_cluster *c, int i, const void *cmd, size_t len, uint64_t *index,
                   uint64_t *term)
{
    check_node_index(c, i);
    struct sim_node *node = &c->nodes[i];
    if (!node->alive) {
        return false;
    }
    CRAFT_ASSERT(len <= UINT32_MAX);
    uint64_t li = 0, t = 0;
    sim_node_work(node);
    int err = craft_driver_propose(node->d, cmd, (uint32_t)len, sim_node_now(node), &li, &t);
    sim_node_after(node);
    c->last_start_err = err;
    if (err != CRAFT_OK) {
        return false;
    }
    uint64_t ci = command_index(node, li);
    if (CRAFT_TRACE_ON(CRAFT_T_CLIENT)) {
        char buf[64];
        CRAFT_TRACE(CRAFT_T_CLIENT, c->w->now, (uint64_t)i + 1, t,
                    "Start(%s) accepted at index %llu (log index %llu)",
                    sim_fmt_cmd(buf, sizeof buf, cmd, len), (unsigned long long)ci,
                    (unsigned long long)li);
    }
    if (index != NULL) {
        *index = ci;
    }
    if (term != NULL) {
        *term = t;
    }
    return true;
}

static void put_int(uint8_t out[8], uint64_t v)
{
    for (int k = 0; k < 8; k++) {
        out[k] = (uint8_t)(v >> (8 * k));
    }
}

bool sim_cmd_as_int(const void *cmd, size_t len, uint64_t *out)
{
    if (cmd == NULL || len != 8) {
        return false;
    }
    const uint8_t *p = cmd;
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) {
        v |= (uint64_t)p[k] << (8 * k);
    }
    *out = v;
    return true;
}

bool sim_start_int(struct sim_cluster *c, int i, uint64_t cmd, uint64_t *index, uint64_t *term)
{
    uint8_t b[8];
    put_int(b, cmd);
    return sim_start_cmd(c, i, b, sizeof b, index, term);
}

void sim_get_state(struct sim_cluster *c, int i, uint64_t *term, bool *is_leader)
{
    check_node_index(c, i);
    struct sim_node *node = &c->nodes[i];
    CRAFT_ASSERT(node->alive);
    struct craft_core_status st;
    craft_core_status(craft_driver_core(node->d), &st);
    if (term != NULL) {
        *term = st.term;
    }
    if (is_leader != NULL) {
        *is_leader = st.role == CRAFT_LEADER;
    }
}

/* ---- tester helpers ---- */

static bool up_and_connected(const struct sim_cluster *c, int i)
{
    return c->connected[i] && c->nodes[i].alive;
}

int sim_check_one_leader(struct sim_cluster *c)
{
    CRAFT_ASSERT(!c->in_task);
    for (int iters = 0; iters < CHECK_LEADER_ROUNDS; iters++) {
        sim_sleep(c, 450 + sim_rand(c, 0, 100));
        uint64_t best_term = 0;
        int best = -1;
        for (int i = 0; i < c->n; i++) {
            if (!up_and_connected(c, i)) {
                continue;
            }
            uint64_t term;
            bool leader;
            sim_get_state(c, i, &term, &leader);
            if (!leader) {
                continue;
            }
            int count = 0;
            for (int j = 0; j < c->n; j++) {
                uint64_t tj;
                bool lj;
                if (up_and_connected(c, j)) {
                    sim_get_state(c, j, &tj, &lj);
                    count += lj && tj == term;
                }
            }
            if (count > 1) {
                sim_fail(c, "term %llu has %d (>1) leaders", (unsigned long long)term, count);
            }
            if (best < 0 || term > best_term) {
                best_term = term;
                best = i;
            }
        }
        if (best >= 0) {
            return best;
        }
    }
    sim_fail(c, "expected one leader, got none");
}

uint64_t sim_check_terms(struct sim_cluster *c)
{
    bool have = false;
    uint64_t term = 0;
    for (int i = 0; i < c->n; i++) {
        if (!up_and_connected(c, i)) {
            continue;
        }
        uint64_t t;
        sim_get_state(c, i, &t, NULL);
        if (!have) {
            term = t;
            have = true;
        } else if (t != term) {
            sim_fail(c, "servers disagree on term");
        }
    }
    return term;
}

void sim_check_no_leader(struct sim_cluster *c)
{
    for (int i = 0; i < c->n; i++) {
        if (!up_and_connected(c, i)) {
            continue;
        }
        bool leader;
        sim_get_state(c, i, NULL, &leader);
        if (leader) {
            sim_fail(c, "expected no leader among connected servers, but %d claims to be leader",
                     i);
        }
    }
}

int sim_n_committed(struct sim_cluster *c, uint64_t index, void *cmd, size_t cap, size_t *len)
{
    int count = 0;
    const uint8_t *first = NULL;
    uint32_t first_len = 0;
    for (int i = 0; i < c->n; i++) {
        const struct sim_node *node = &c->nodes[i];
        if (index == 0 || index > node->n_known) {
            continue;
        }
        uint32_t dlen;
        const uint8_t *data = sim_committed_data(c, node->cmds[index - 1], &dlen);
        CRAFT_ASSERT(data != NULL || dlen == 0);
        if (count > 0 && (dlen != first_len || memcmp(data, first, dlen) != 0)) {
            char a[64], b[64];
            sim_fail(c, "committed values do not match: index %llu, %s, %s",
                     (unsigned long long)index, sim_fmt_cmd(a, sizeof a, first, first_len),
                     sim_fmt_cmd(b, sizeof b, data, dlen));
        }
        if (count == 0) {
            first = data;
            first_len = dlen;
        }
        count++;
    }
    if (len != NULL) {
        *len = first_len;
    }
    if (cmd != NULL && first_len > 0) {
        memcpy(cmd, first, first_len < cap ? first_len : cap);
    }
    return count;
}

/* nCommitted without copying: the agreed command, borrowed until the next event. */
static int n_committed_ref(struct sim_cluster *c, uint64_t index, const uint8_t **cmd,
                           uint32_t *len)
{
    size_t l = 0;
    int count = sim_n_committed(c, index, NULL, 0, &l);
    *cmd = NULL;
    *len = (uint32_t)l;
    for (int i = 0; i < c->n && count > 0; i++) {
        if (index <= c->nodes[i].n_known) {
            *cmd = sim_committed_data(c, c->nodes[i].cmds[index - 1], len);
            break;
        }
    }
    return count;
}

uint64_t sim_one(struct sim_cluster *c, const void *cmd, size_t len, int expected, bool retry)
{
    CRAFT_ASSERT(!c->in_task);
    char buf[64];
    uint64_t t0 = c->w->now;
    int starts = 0;
    while (c->w->now - t0 < ONE_BUDGET_MS) {
        uint64_t index = 0;
        bool accepted = false;
        for (int si = 0; si < c->n; si++) {
            starts = (starts + 1) % c->n;
            if (up_and_connected(c, starts) &&
                sim_start_cmd(c, starts, cmd, len, &index, NULL)) {
                accepted = true;
                break;
            }
        }
        if (accepted) {
            uint64_t t1 = c->w->now;
            while (c->w->now - t1 < ONE_ATTEMPT_MS) {
                const uint8_t *got;
                uint32_t got_len;
                int nd = n_committed_ref(c, index, &got, &got_len);
                if (nd > 0 && nd >= expected && got_len == len &&
                    (len == 0 || memcmp(got, cmd, len) == 0)) {
                    return index;
                }
                sim_sleep(c, ONE_POLL_MS);
            }
            if (!retry) {
                sim_fail(c, "one(%s) failed to reach agreement",
                         sim_fmt_cmd(buf, sizeof buf, cmd, len));
            }
        } else {
            sim_sleep(c, ONE_NO_LEADER_MS);
        }
    }
    sim_fail(c, "one(%s) failed to reach agreement", sim_fmt_cmd(buf, sizeof buf, cmd, len));
}

uint64_t sim_one_int(struct sim_cluster *c, uint64_t cmd, int expected, bool retry)
{
    uint8_t b[8];
    put_int(b, cmd);
    return sim_one(c, b, sizeof b, expected, retry);
}

int64_t sim_wait(struct sim_cluster *c, uint64_t index, int n, int64_t start_term)
{
    CRAFT_ASSERT(!c->in_task);
    uint64_t to = 10;
    for (int iters = 0; iters < WAIT_TRIES; iters++) {
        if (sim_n_committed(c, index, NULL, 0, NULL) >= n) {
            break;
        }
        sim_sleep(c, to);
        if (to < 1000) {
            to *= 2;
        }
        if (start_term > -1) {
            for (int i = 0; i < c->n; i++) {
                if (!c->nodes[i].alive) {
                    continue;
                }
                uint64_t t;
                sim_get_state(c, i, &t, NULL);
                if (t > (uint64_t)start_term) {
                    return -1; /* someone has moved on; can no longer guarantee to win */
                }
            }
        }
    }
    const uint8_t *got;
    uint32_t got_len;
    int nd = n_committed_ref(c, index, &got, &got_len);
    if (nd < n) {
        sim_fail(c, "only %d decided for index %llu; wanted %d", nd, (unsigned long long)index,
                 n);
    }
    uint64_t v;
    if (!sim_cmd_as_int(got, got_len, &v)) {
        sim_fail(c, "value at index %llu is not an int", (unsigned long long)index);
    }
    return (int64_t)v;
}

uint64_t sim_rpc_count(const struct sim_cluster *c, int i)
{
    check_node_index(c, i);
    return c->net->rpc_count[i];
}

uint64_t sim_rpc_total(const struct sim_cluster *c)
{
    return c->net->rpc_total;
}

uint64_t sim_bytes_total(const struct sim_cluster *c)
{
    return c->net->bytes_total;
}

size_t sim_log_size(const struct sim_cluster *c)
{
    size_t max = 0;
    for (int i = 0; i < c->n; i++) {
        size_t s = sim_disk_log_size(&c->nodes[i].disk);
        if (s > max) {
            max = s;
        }
    }
    return max;
}

uint64_t sim_last_applied(const struct sim_cluster *c, int i)
{
    check_node_index(c, i);
    return c->nodes[i].n_cmds;
}

/* ---- tasks ---- */

static void task_event(void *ctx, void *arg, uint64_t a)
{
    (void)a;
    struct sim_cluster *c = ctx;
    struct task t = *(struct task *)arg;
    free(arg);
    c->in_task = true;
    t.fn(c, t.arg);
    c->in_task = false;
}

void sim_task_at(struct sim_cluster *c, uint64_t delay_ms, sim_task_fn fn, void *arg)
{
    struct task *t = xcalloc(1, sizeof *t);
    t->fn = fn;
    t->arg = arg;
    sim_world_at(c->w, c->w->now + delay_ms, task_event, c, t, 0);
}
