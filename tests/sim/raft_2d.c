/* 2D: snapshots. The clusters use the snapshot applier, which snapshots after each index k
 * with (k + 1) % 10 == 0 (config.go's SnapShotInterval = 10). */
#include "raft_scenarios.h"

enum { snapshot_interval = 10 };
/* MAXLOGSIZE: the bound on the durable Raft state (log, not snapshot), in bytes. */
enum { max_log_size = 2000 };

/* snapcommon: 30 rounds of proposals around a victim that is left behind (disconnected or
 * crashed) so that it must catch up, with an InstallSnapshot when the log was compacted. */
static void snapcommon(const char *name, bool disconnect, bool reliable, bool crash)
{
    const int n = 3;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(n, !reliable, true, name, &t0);

    sim_one_int(c, sim_raft_rand_cmd(c), n, true);
    int leader1 = sim_check_one_leader(c);

    for (int i = 0; i < 30; i++) {
        int victim = (leader1 + 1) % n;
        int sender = leader1;
        if (i % 3 == 1) {
            /* The sender is a follower: its Starts are no-ops. */
            sender = (leader1 + 1) % n;
            victim = leader1;
        }

        if (disconnect) {
            sim_disconnect(c, victim);
            sim_one_int(c, sim_raft_rand_cmd(c), n - 1, true);
        }
        if (crash) {
            sim_crash(c, victim);
            sim_one_int(c, sim_raft_rand_cmd(c), n - 1, true);
        }

        /* Perhaps send enough to get a snapshot. */
        uint64_t nn = snapshot_interval / 2 + sim_rand(c, 0, snapshot_interval);
        for (uint64_t k = 0; k < nn; k++) {
            uint64_t index, term;
            (void)sim_start_int(c, sender, sim_raft_rand_cmd(c), &index, &term);
        }

        /* Let the appliers catch up with the Starts. Without faults every follower must be
         * current, so that TestSnapshotBasic needs no InstallSnapshot. */
        if (!disconnect && !crash) {
            sim_one_int(c, sim_raft_rand_cmd(c), n, true);
        } else {
            sim_one_int(c, sim_raft_rand_cmd(c), n - 1, true);
        }

        size_t log_size = sim_log_size(c);
        if (log_size >= max_log_size) {
            sim_fail(c, "Log size too large (%zu bytes)", log_size);
        }

        if (disconnect) {
            /* The follower may be behind and need a snapshot to catch up. */
            sim_connect(c, victim);
            sim_one_int(c, sim_raft_rand_cmd(c), n, true);
            leader1 = sim_check_one_leader(c);
        }
        if (crash) {
            sim_start(c, victim);
            sim_connect(c, victim);
            sim_one_int(c, sim_raft_rand_cmd(c), n, true);
            leader1 = sim_check_one_leader(c);
        }
    }

    sim_raft_end(c, t0);
}

void sim_raft_snapshot_basic_2d(void)
{
    snapcommon("Test (2D): snapshots basic", false, true, false);
}

void sim_raft_snapshot_install_2d(void)
{
    snapcommon("Test (2D): install snapshots (disconnect)", true, true, false);
}

void sim_raft_snapshot_install_unreliable_2d(void)
{
    snapcommon("Test (2D): install snapshots (disconnect+unreliable)", true, false, false);
}

void sim_raft_snapshot_install_crash_2d(void)
{
    snapcommon("Test (2D): install snapshots (crash)", false, true, true);
}

void sim_raft_snapshot_install_uncrash_2d(void)
{
    snapcommon("Test (2D): install snapshots (unreliable+crash)", false, false, true);
}

static void crash_all(struct sim_cluster *c, int n)
{
    for (int i = 0; i < n; i++) {
        sim_crash(c, i);
    }
}

static void restart_all(struct sim_cluster *c, int n)
{
    for (int i = 0; i < n; i++) {
        sim_start(c, i);
        sim_connect(c, i);
    }
}

/* Do the servers persist their snapshots, and restart from the snapshot plus the tail of
 * the log? */
void sim_raft_snapshot_all_crash_2d(void)
{
    const int n = 3;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(n, false, true, "Test (2D): crash and restart all servers", &t0);

    sim_one_int(c, sim_raft_rand_cmd(c), n, true);

    for (int i = 0; i < 5; i++) {
        /* Perhaps enough to get a snapshot. */
        uint64_t nn = snapshot_interval / 2 + sim_rand(c, 0, snapshot_interval);
        for (uint64_t k = 0; k < nn; k++) {
            sim_one_int(c, sim_raft_rand_cmd(c), n, true);
        }

        uint64_t index1 = sim_one_int(c, sim_raft_rand_cmd(c), n, true);

        crash_all(c, n);
        restart_all(c, n);

        uint64_t index2 = sim_one_int(c, sim_raft_rand_cmd(c), n, true);
        if (index2 < index1 + 1) {
            sim_fail(c, "index decreased from %llu to %llu", (unsigned long long)index1,
                     (unsigned long long)index2);
        }
    }

    sim_raft_end(c, t0);
}

/* Do the servers initialize their in-memory copy of the snapshot on restart, so that later
 * writes of the Raft state do not lose it? */
void sim_raft_snapshot_init_2d(void)
{
    const int n = 3;
    uint64_t t0;
    struct sim_cluster *c =
        sim_raft_begin(n, false, true, "Test (2D): snapshot initialization after crash", &t0);

    sim_one_int(c, sim_raft_rand_cmd(c), n, true);

    /* Enough operations to make a snapshot. */
    for (int i = 0; i < snapshot_interval + 1; i++) {
        sim_one_int(c, sim_raft_rand_cmd(c), n, true);
    }

    crash_all(c, n);
    restart_all(c, n);

    /* A single operation, to get something written back to durable storage. */
    sim_one_int(c, sim_raft_rand_cmd(c), n, true);

    crash_all(c, n);
    restart_all(c, n);

    /* Another operation, to trigger the potential bug. */
    sim_one_int(c, sim_raft_rand_cmd(c), n, true);

    sim_raft_end(c, t0);
}
