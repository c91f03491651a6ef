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
    sim_raft_persist2_rounds(c, n, 5);
    sim_raft_figure8_rounds(c, n, 300);
    sim_one_int(c, sim_raft_rand_cmd(c), n, true);
    sim_cluster_destroy(c); /* the 120 s MIT limit does not apply to this longer mix */
}
