/* Real-storage scenarios: the same fault loops as raft/chaos and the MIT 2C persistence
 * tests, with every node persisting through the WAL, the stable store and the file snapshot
 * store over fs_mem (crashes lose unsynced WAL tails, torn or not, drawn from the seed). */
#include "storage_scenarios.h"

#include "base/assert.h"
#include "base/prng.h"
#include "raft_scenarios.h"
#include "sim/scenario.h"

static struct sim_cluster *begin(int n, bool snapshot, const char *description)
{
    struct sim_cluster_opts opts;
    sim_cluster_opts_default(&opts, n, false, snapshot);
    opts.real_storage = true;
    /* Slow disks, so that crashes often catch WAL writes not yet synced (torn tails). */
    struct craft_prng disk;
    craft_prng_seed(&disk, sim_seed() ^ 0x6469736bULL);
    opts.disk_latency_max_ms = (uint32_t)craft_prng_range(&disk, 5, 41);
    struct sim_cluster *c = sim_cluster_create(&opts);
    CRAFT_ASSERT(c != NULL);
    sim_note(c, "begin: %s", description);
    return c;
}

static void heal(struct sim_cluster *c, int n)
{
    for (int i = 0; i < n; i++) {
        if (!sim_is_alive(c, i)) {
            sim_start(c, i);
        }
        sim_disconnect(c, i);
    }
    for (int i = 0; i < n; i++) {
        sim_connect(c, i);
    }
}

void sim_storage_chaos_real_wal(void)
{
    struct craft_prng shape;
    craft_prng_seed(&shape, sim_seed() ^ 0x7265616c77616cULL);
    int n = 3 + 2 * (int)craft_prng_range(&shape, 0, 2);
    struct sim_cluster *c = begin(n, true, "chaos over the real WAL with snapshots");
    uint64_t t0 = sim_now(c);
    /* Crashes are the point here: 3 faults in 12 instead of 1 in 10 as in raft/chaos. */
    sim_chaos_phases(c, n, sim_rand(c, 10000, 30000), 2);
    sim_raft_end(c, t0);
}

/* persist2's shape (crash and restart followers and leaders around agreements), then
 * Figure 8's (the leader crashes right after Start), with snapshots for half of the seeds. */
void sim_storage_persist_real_wal(void)
{
    const int n = 5;
    bool snapshot = (sim_seed() & 1) != 0;
    struct sim_cluster *c = begin(n, snapshot, "persist2 and Figure 8 over the real WAL");
    uint64_t index = 1;
    for (int iters = 0; iters < 5; iters++) {
        sim_one_int(c, 10 + index++, n, true);
        int leader1 = sim_check_one_leader(c);
        sim_disconnect(c, (leader1 + 1) % n);
        sim_disconnect(c, (leader1 + 2) % n);
        sim_one_int(c, 10 + index++, n - 2, true);
        sim_disconnect(c, (leader1 + 0) % n);
        sim_disconnect(c, (leader1 + 3) % n);
        sim_disconnect(c, (leader1 + 4) % n);
        sim_start(c, (leader1 + 1) % n);
        sim_start(c, (leader1 + 2) % n);
        sim_connect(c, (leader1 + 1) % n);
        sim_connect(c, (leader1 + 2) % n);
        sim_sleep(c, SIM_RAFT_ELECTION_TIMEOUT_MS);
        sim_start(c, (leader1 + 3) % n);
        sim_connect(c, (leader1 + 3) % n);
        sim_one_int(c, 10 + index++, n - 2, true);
        sim_connect(c, (leader1 + 4) % n);
        sim_connect(c, (leader1 + 0) % n);
    }
    sim_one_int(c, 1000, n, true);

    int nup = n;
    for (int iter = 0; iter < 300; iter++) {
        int leader = -1;
        for (int i = 0; i < n; i++) {
            uint64_t li, term;
            if (sim_is_alive(c, i) && sim_start_int(c, i, sim_raft_rand_cmd(c), &li, &term)) {
                leader = i;
            }
        }
        if (sim_rand(c, 0, 1000) < 100) {
            sim_sleep(c, sim_rand(c, 0, SIM_RAFT_ELECTION_TIMEOUT_MS / 2));
        } else {
            sim_sleep(c, sim_rand(c, 0, 13));
        }
        if (leader != -1) {
            sim_crash(c, leader);
            nup--;
        }
        if (nup < 3) {
            int s = (int)sim_rand(c, 0, (uint64_t)n);
            if (!sim_is_alive(c, s)) {
                sim_start(c, s);
                sim_connect(c, s);
                nup++;
            }
        }
    }
    heal(c, n);
    sim_one_int(c, sim_raft_rand_cmd(c), n, true);
    sim_cluster_destroy(c); /* the 120 s MIT limit does not apply to this longer mix */
}
