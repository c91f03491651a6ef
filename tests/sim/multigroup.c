/* Many Raft groups per process (docs/design/multiraft.md): the groups of one simulated
 * process share its clock, its network links and its fate. Faults hit processes: a crash
 * takes every group's replica in that process down at once (each loses its unsynced
 * writes), a restart recovers every group from its disk, a partition cuts every group's
 * messages between the processes it separates. Each group runs its own invariant checks
 * (election safety, log matching, state machine safety, durable votes) after every event;
 * each group's commands carry its group id, and at the end every replica of every group
 * must hold only its own group's commands (a message delivered to the wrong group would
 * put a command where it does not belong, or break a check first).
 *
 *   multi/chaos      3 or 5 processes, 2 to 5 groups: random process faults while clients
 *                    write to every group, then heal: every group agrees on a new command
 *                    on every process.
 *   multi/crash-all  every process crashes at once, repeatedly, under load; every group
 *                    recovers what it committed and goes on.
 *   multi/quiesce    idle groups quiesce (the runtime host's rules) while the processes
 *                    ping each other: clients write in bursts with idle spells between
 *                    them, under random process faults, partitions and lossy phases; in
 *                    a calm, connected spell every group must quiesce on every process,
 *                    then wake for new writes; at the end every group converges.
 *   multi/chaos-log, multi/crash-all-log
 *                    the same over real storage shared as the runtime's host shares it:
 *                    each process keeps every group's log and hard state in one group log
 *                    on one faulty filesystem (src/sim/real_disk.c), so a crash loses the
 *                    unsynced tail of all its groups' writes at once (torn or not) and the
 *                    restart recovers every group from that one log; each replica is
 *                    checked to hold at least what it acknowledged. */
#include "base/prng.h"
#include "raft_scenarios.h"
#include "sim/scenario.h"

#define GROUPS_MAX 5
#define GROUP_BITS 4 /* commands: (random << GROUP_BITS) | group */

struct multi_client {
    struct sim_cluster *g;
    int group, n;
    bool stop, done;
};

static uint64_t group_cmd(struct sim_cluster *g, int group)
{
    return (sim_raft_rand_cmd(g) >> GROUP_BITS << GROUP_BITS) | (uint64_t)group;
}

/* One command of the client's group, started on the first node that takes it; false once
 * the client was told to stop (it is then done). */
static bool client_step(struct multi_client *cl)
{
    if (cl->stop) {
        cl->done = true;
        return false;
    }
    uint64_t x = group_cmd(cl->g, cl->group);
    for (int i = 0; i < cl->n; i++) {
        uint64_t index = 0, term = 0;
        if (sim_is_alive(cl->g, i) && sim_start_int(cl->g, i, x, &index, &term)) {
            break;
        }
    }
    return true;
}

static void client_loop(struct sim_cluster *c, void *arg)
{
    struct multi_client *cl = arg;
    (void)c;
    if (!client_step(cl)) {
        return;
    }
    sim_task_at(cl->g, sim_rand(cl->g, 1, 40), client_loop, cl);
}

/* Every command every replica of every group applied carries that group's id. */
static void check_own_commands(struct sim_cluster *root, int n)
{
    for (int g = 0; g < sim_n_groups(root); g++) {
        struct sim_cluster *gc = sim_group_of(root, g);
        for (int i = 0; i < n; i++) {
            uint8_t cmd[64];
            size_t len = 0;
            for (uint64_t k = 1; sim_node_cmd(gc, i, k, cmd, sizeof cmd, &len); k++) {
                uint64_t v;
                if (!sim_cmd_as_int(cmd, len, &v)) {
                    sim_fail(gc, "group %d: node %d applied a command that is not an int", g,
                             i + 1);
                }
                if ((v & ((1u << GROUP_BITS) - 1)) != (uint64_t)g) {
                    sim_fail(gc, "group %d: node %d applied command %llu of group %llu", g,
                             i + 1, (unsigned long long)v,
                             (unsigned long long)(v & ((1u << GROUP_BITS) - 1)));
                }
            }
        }
    }
}

/* A root of n processes and its groups (shape from the seed's own stream); shared_log:
 * over real storage, one group log per process. */
static struct sim_cluster *multi_begin(const char *description, bool shared_log, bool quiesce,
                                       int *n_out, uint64_t *t0)
{
    struct craft_prng shape;
    craft_prng_seed(&shape, sim_seed() ^ 0x6d756c7469ULL);
    int n = 3 + 2 * (int)craft_prng_range(&shape, 0, 2);
    int groups = 2 + (int)craft_prng_range(&shape, 0, GROUPS_MAX - 1);
    struct sim_cluster_opts opts;
    sim_cluster_opts_default(&opts, n, false, craft_prng_range(&shape, 0, 2) == 1);
    opts.real_storage = opts.shared_log = shared_log;
    opts.quiesce = quiesce;
    struct sim_cluster *root = sim_cluster_create(&opts);
    sim_note(root, "begin: %s", description);
    *t0 = sim_now(root);
    for (int g = 1; g < groups; g++) {
        sim_cluster_opts_default(&opts, n, false, craft_prng_range(&shape, 0, 2) == 1);
        opts.real_storage = shared_log;
        (void)sim_cluster_add_group(root, &opts);
    }
    sim_note(root, "multi: %d processes, %d groups%s", n, groups,
             shared_log ? ", one group log per process" : "");
    *n_out = n;
    return root;
}

static void clients_start(struct sim_cluster *root, int n, struct multi_client *cl)
{
    for (int g = 0; g < sim_n_groups(root); g++) {
        cl[g] = (struct multi_client){.g = sim_group_of(root, g), .group = g, .n = n};
        sim_task_at(cl[g].g, (uint64_t)g, client_loop, &cl[g]);
    }
}

static void clients_stop(struct sim_cluster *root, struct multi_client *cl)
{
    for (int g = 0; g < sim_n_groups(root); g++) {
        cl[g].stop = true;
    }
    for (int g = 0; g < sim_n_groups(root); g++) {
        while (!cl[g].done) {
            sim_sleep(root, 10);
        }
    }
}

/* Every process up and connected; every group agrees on a new command everywhere. */
static void converge(struct sim_cluster *root, int n)
{
    sim_set_reliable(root, true);
    sim_set_long_reordering(root, false);
    for (int i = 0; i < n; i++) {
        if (!sim_is_alive(root, i)) {
            sim_proc_start(root, i);
        }
    }
    sim_chaos_heal_links(root, n);
    for (int g = 0; g < sim_n_groups(root); g++) {
        struct sim_cluster *gc = sim_group_of(root, g);
        sim_one_int(gc, group_cmd(gc, g), n, true);
    }
    check_own_commands(root, n);
}

static void multi_chaos(bool shared_log)
{
    int n;
    uint64_t t0;
    struct sim_cluster *root =
        multi_begin("multi: process faults over many groups", shared_log, false, &n, &t0);
    struct multi_client cl[GROUPS_MAX];
    clients_start(root, n, cl);
    int alive = n;
    uint64_t start = sim_now(root), safety = sim_rand(root, 10000, 30000);
    while (sim_now(root) - start < safety) {
        sim_sleep(root, sim_rand(root, 10, 500));
        sim_chaos_fault(root, n, &alive, 0, sim_proc_crash, sim_proc_start);
    }
    sim_note(root, "multi: heal everything");
    clients_stop(root, cl);
    converge(root, n);
    sim_raft_end(root, t0);
}

static void multi_crash_all(bool shared_log)
{
    int n;
    uint64_t t0;
    struct sim_cluster *root =
        multi_begin("multi: every process crashes at once", shared_log, false, &n, &t0);
    struct multi_client cl[GROUPS_MAX];
    clients_start(root, n, cl);
    for (int round = 0; round < 4; round++) {
        sim_sleep(root, sim_rand(root, 500, 3000));
        sim_note(root, "multi: crash every process");
        for (int i = 0; i < n; i++) {
            sim_proc_crash(root, i);
        }
        sim_sleep(root, sim_rand(root, 0, 200));
        for (int i = 0; i < n; i++) {
            sim_proc_start(root, i);
        }
        for (int i = 0; i < n; i++) {
            sim_connect(root, i);
        }
    }
    clients_stop(root, cl);
    converge(root, n);
    sim_raft_end(root, t0);
}

void sim_multi_chaos(void)
{
    multi_chaos(false);
}

void sim_multi_crash_all(void)
{
    multi_crash_all(false);
}

void sim_multi_chaos_log(void)
{
    multi_chaos(true);
}

void sim_multi_crash_all_log(void)
{
    multi_crash_all(true);
}

/* The highest term of the group's live replicas. */
static uint64_t max_term(struct sim_cluster *gc, int n)
{
    uint64_t most = 0;
    for (int i = 0; i < n; i++) {
        if (sim_is_alive(gc, i)) {
            uint64_t term;
            bool is_leader;
            sim_get_state(gc, i, &term, &is_leader);
            most = term > most ? term : most;
        }
    }
    return most;
}

/* Whether every group has a leader among its live replicas. */
static bool every_group_led(struct sim_cluster *root, int n)
{
    for (int g = 0; g < sim_n_groups(root); g++) {
        bool led = false;
        for (int i = 0; i < n && !led; i++) {
            if (sim_is_alive(sim_group_of(root, g), i)) {
                uint64_t term;
                sim_get_state(sim_group_of(root, g), i, &term, &led);
            }
        }
        if (!led) {
            return false;
        }
    }
    return true;
}

/* Replicas quiesced: every group on every process, once a calm spell has lasted. */
static int quiesced_replicas(struct sim_cluster *root, int n)
{
    int count = 0;
    for (int g = 0; g < sim_n_groups(root); g++) {
        for (int i = 0; i < n; i++) {
            count += sim_node_quiesced(sim_group_of(root, g), i);
        }
    }
    return count;
}

/* Clients that write in bursts: a burst of commands, then an idle spell (the groups
 * quiesce), while faults come and go. */
static void burst_loop(struct sim_cluster *c, void *arg)
{
    struct multi_client *cl = arg;
    (void)c;
    if (!client_step(cl)) {
        return;
    }
    bool idle = sim_rand(cl->g, 0, 9) == 0;
    sim_task_at(cl->g, idle ? sim_rand(cl->g, 1000, 4000) : sim_rand(cl->g, 1, 40), burst_loop,
                cl);
}

void sim_multi_quiesce(void)
{
    int n;
    uint64_t t0;
    struct sim_cluster *root =
        multi_begin("multi: idle groups quiesce, processes ping", false, true, &n, &t0);
    struct multi_client cl[GROUPS_MAX];
    for (int g = 0; g < sim_n_groups(root); g++) {
        cl[g] = (struct multi_client){.g = sim_group_of(root, g), .group = g, .n = n};
        sim_task_at(cl[g].g, (uint64_t)g, burst_loop, &cl[g]);
    }
    int alive = n;
    for (int phase = 0; phase < 3; phase++) {
        uint64_t start = sim_now(root), span = sim_rand(root, 5000, 15000);
        while (sim_now(root) - start < span) {
            sim_sleep(root, sim_rand(root, 10, 800));
            sim_chaos_fault(root, n, &alive, 0, sim_proc_crash, sim_proc_start);
        }
        /* A calm spell: every process up and connected, no writes: every group quiesces
         * on every process (the leader after three quiet heartbeats, its followers when
         * told), within a bound of virtual time. */
        sim_note(root, "multi: calm spell %d", phase);
        clients_stop(root, cl);
        sim_set_reliable(root, true);
        sim_set_long_reordering(root, false);
        for (int i = 0; i < n; i++) {
            if (!sim_is_alive(root, i)) {
                sim_proc_start(root, i);
                alive++;
            }
        }
        sim_chaos_heal_links(root, n);
        uint64_t calm = sim_now(root);
        while (quiesced_replicas(root, n) < n * sim_n_groups(root) &&
               sim_now(root) - calm < 30000) {
            sim_sleep(root, 100);
        }
        if (quiesced_replicas(root, n) < n * sim_n_groups(root)) {
            sim_fail(root, "only %d of %d replicas quiesced after 30 s of calm",
                     quiesced_replicas(root, n), n * sim_n_groups(root));
        }
        /* Quiesced groups still take writes: the first wakes its group everywhere, and
         * with every process up and the network calm, waking is no reason to elect (the
         * timers restart at the wake; the leader heartbeats at once). */
        for (int g = 0; g < sim_n_groups(root); g++) {
            struct sim_cluster *gc = sim_group_of(root, g);
            uint64_t term0 = max_term(gc, n);
            sim_one_int(gc, group_cmd(gc, g), n, true);
            if (max_term(gc, n) != term0) {
                sim_fail(gc, "group %d elected (term %llu -> %llu) when a write woke it in a "
                         "calm spell", g, (unsigned long long)term0,
                         (unsigned long long)max_term(gc, n));
            }
        }
        /* Quiesced again, the leader process of group 0 crashes and stays down: the others
         * stop hearing it, wake the groups it led, and those elect and take writes. */
        while (quiesced_replicas(root, n) < n * sim_n_groups(root) &&
               sim_now(root) - calm < 60000) {
            sim_sleep(root, 100);
        }
        int lead = -1;
        for (int i = 0; i < n; i++) {
            uint64_t term;
            bool is_leader;
            sim_get_state(root, i, &term, &is_leader);
            lead = is_leader ? i : lead;
        }
        if (lead >= 0) {
            sim_note(root, "multi: leader process %d of quiesced groups crashes", lead + 1);
            sim_proc_crash(root, lead);
            /* With no work at all, the pings alone must wake them: every group has a
             * leader again within a bound of virtual time. */
            uint64_t crashed = sim_now(root);
            while (!every_group_led(root, n) && sim_now(root) - crashed < 15000) {
                sim_sleep(root, 100);
            }
            if (!every_group_led(root, n)) {
                sim_fail(root, "15 s after leader process %d crashed, a group it led has no "
                         "leader", lead + 1);
            }
            for (int g = 0; g < sim_n_groups(root); g++) {
                struct sim_cluster *gc = sim_group_of(root, g);
                sim_one_int(gc, group_cmd(gc, g), n - 1, true);
            }
            sim_proc_start(root, lead);
            sim_connect(root, lead);
        }
        for (int g = 0; g < sim_n_groups(root); g++) {
            cl[g].stop = cl[g].done = false;
            sim_task_at(cl[g].g, (uint64_t)g, burst_loop, &cl[g]);
        }
    }
    clients_stop(root, cl);
    converge(root, n);
    sim_raft_end(root, t0);
}
