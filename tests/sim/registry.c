/* The scenario registry: every scenario craft-sim can run, in listing order. */
#include "kvraft_scenarios.h"
#include "shardctrler_scenarios.h"
#include "shardkv_scenarios.h"
#include "membership_scenarios.h"
#include "raft_scenarios.h"
#include "read_scenarios.h"
#include "sim/scenario.h"
#include "storage_scenarios.h"

const struct sim_scenario sim_scenarios[] = {
    /* MIT 6.5840 Raft lab, 2A: election */
    { "raft/initial-election-2a", "Test (2A): initial election", sim_raft_initial_election_2a },
    { "raft/re-election-2a", "Test (2A): election after network failure", sim_raft_re_election_2a },
    { "raft/check-quorum-2a", "a leader cut off or deaf steps down (thesis 6.2)",
      sim_raft_check_quorum_2a },
    { "raft/many-elections-2a", "Test (2A): multiple elections", sim_raft_many_elections_2a },
    { "raft/split-votes-2a", "split votes: followers campaign together (one vote per term)",
      sim_raft_split_votes_2a },

    /* 2B: log agreement */
    { "raft/basic-agree-2b", "Test (2B): basic agreement", sim_raft_basic_agree_2b },
    { "raft/rpc-bytes-2b", "Test (2B): RPC byte count", sim_raft_rpc_bytes_2b },
    { "raft/follower-failure-2b", "Test (2B): test progressive failure of followers",
      sim_raft_follower_failure_2b },
    { "raft/leader-failure-2b", "Test (2B): test failure of leaders", sim_raft_leader_failure_2b },
    { "raft/fail-agree-2b", "Test (2B): agreement after follower reconnects",
      sim_raft_fail_agree_2b },
    { "raft/fail-no-agree-2b", "Test (2B): no agreement if too many followers disconnect",
      sim_raft_fail_no_agree_2b },
    { "raft/concurrent-starts-2b", "Test (2B): concurrent Start()s", sim_raft_concurrent_starts_2b },
    { "raft/rejoin-2b", "Test (2B): rejoin of partitioned leader", sim_raft_rejoin_2b },
    { "raft/backup-2b", "Test (2B): leader backs up quickly over incorrect follower logs",
      sim_raft_backup_2b },
    { "raft/count-2b", "Test (2B): RPC counts aren't too high", sim_raft_count_2b },

    /* 2C: persistence and adversarial schedules */
    { "raft/persist1-2c", "Test (2C): basic persistence", sim_raft_persist1_2c },
    { "raft/persist2-2c", "Test (2C): more persistence", sim_raft_persist2_2c },
    { "raft/persist3-2c", "Test (2C): partitioned leader and one follower crash, leader restarts",
      sim_raft_persist3_2c },
    { "raft/figure8-2c", "Test (2C): Figure 8", sim_raft_figure8_2c },
    { "raft/unreliable-agree-2c", "Test (2C): unreliable agreement", sim_raft_unreliable_agree_2c },
    { "raft/figure8-unreliable-2c", "Test (2C): Figure 8 (unreliable)",
      sim_raft_figure8_unreliable_2c },
    { "raft/reliable-churn-2c", "Test (2C): churn", sim_raft_reliable_churn_2c },
    { "raft/unreliable-churn-2c", "Test (2C): unreliable churn", sim_raft_unreliable_churn_2c },

    /* 2D: snapshots */
    { "raft/snapshot-basic-2d", "Test (2D): snapshots basic", sim_raft_snapshot_basic_2d },
    { "raft/snapshot-install-2d", "Test (2D): install snapshots (disconnect)",
      sim_raft_snapshot_install_2d },
    { "raft/snapshot-install-unreliable-2d", "Test (2D): install snapshots (disconnect+unreliable)",
      sim_raft_snapshot_install_unreliable_2d },
    { "raft/snapshot-install-crash-2d", "Test (2D): install snapshots (crash)",
      sim_raft_snapshot_install_crash_2d },
    { "raft/snapshot-install-uncrash-2d", "Test (2D): install snapshots (unreliable+crash)",
      sim_raft_snapshot_install_uncrash_2d },
    { "raft/snapshot-all-crash-2d", "Test (2D): crash and restart all servers",
      sim_raft_snapshot_all_crash_2d },
    { "raft/snapshot-init-2d", "Test (2D): snapshot initialization after crash",
      sim_raft_snapshot_init_2d },

    /* Beyond the MIT suite */
    { "raft/chaos", "chaos: random faults, then heal and converge", sim_raft_chaos },
    { "raft/alloc-failures", "the cores' allocations fail at random: nodes stop cleanly and "
      "restart, then agree", sim_raft_alloc_failures },
    { "swarm/raft", "swarm: a fault mix drawn per seed (which faults, how often, cluster size)",
      sim_swarm_raft },

    /* Many Raft groups per process: process-level faults (tests/sim/multigroup.c) */
    { "multi/chaos", "process faults over 2-5 groups per process, then heal and converge",
      sim_multi_chaos },
    { "multi/crash-all", "every process crashes at once under load, repeatedly",
      sim_multi_crash_all },
    { "multi/quiesce", "idle groups quiesce under process faults; in calm spells all do, "
      "then wake for writes", sim_multi_quiesce },
    { "multi/chaos-log", "multi/chaos with every process's groups in one group log on a "
      "faulty filesystem", sim_multi_chaos_log },
    { "multi/crash-all-log", "multi/crash-all with every process's groups in one group log: "
      "each crash loses their unsynced tail at once", sim_multi_crash_all_log },

    /* Membership changes and leadership transfer (docs/design/membership-scenarios.md) */
    { "member/grow-3-to-5", "grow from 3 to 5 voters (learner, catch up, promote)",
      sim_member_grow_3_to_5 },
    { "member/shrink-5-to-3", "shrink from 5 to 3 voters, maybe removing the leader",
      sim_member_shrink_5_to_3 },
    { "member/joint-change", "joint changes with auto-leave under faults", sim_member_joint_change },
    { "member/random-changes", "random single and joint changes under faults, then converge",
      sim_member_random_changes },
    { "member/remove-leader", "the leader removes itself, steps down once committed",
      sim_member_remove_leader },
    { "member/removed-keeps-campaigning", "a removed server keeps campaigning harmlessly",
      sim_member_removed_keeps_campaigning },
    { "member/replace-all", "replace every member of a 3-node cluster", sim_member_replace_all },
    { "member/lost-quorum", "3 of 5 voters lost for good: the survivors forced to a new configuration",
      sim_member_lost_quorum },
    { "transfer/under-load", "leadership transfer while clients write", sim_transfer_under_load },
    { "transfer/target-partitioned", "the transfer target is partitioned mid-transfer",
      sim_transfer_target_partitioned },
    { "transfer/refused", "refused leadership transfers", sim_transfer_refused },

    /* Linearizable reads (ReadIndex, lease, follower) on the key/value register */
    { "read/linearizable-kv", "kv clients with all read modes under faults",
      sim_read_linearizable_kv },
    { "read/stale-leader-minority", "reads on a leader cut into a minority",
      sim_read_stale_leader_minority },
    { "read/lease-drift", "lease reads with drifting clocks across leader changes",
      sim_read_lease_drift },
    { "read/lease-transfer-abort", "lease reads around a leadership transfer the leader gave up on",
      sim_read_lease_transfer_abort },
    { "read/new-leader-window", "ReadIndex reads on a new leader that has not yet learned the last commit",
      sim_read_new_leader_window },
    { "read/lease-disruptive-candidate", "lease reads while a node cut off from the leader alone campaigns",
      sim_read_lease_disruptive_candidate },

    /* Persistence through the real stores over the faulty filesystem */
    { "storage/chaos-real-wal", "chaos with snapshots over the real WAL and stores",
      sim_storage_chaos_real_wal },
    { "storage/persist-real-wal", "persist2 and Figure 8 over the real WAL and stores",
      sim_storage_persist_real_wal },

    /* MIT 6.5840 kvraft (Lab 3A/3B) on craftkv's state machine (tests/sim/kvraft.c) */
    { "kv/basic-3a", "Test: one client (3A)",
      sim_kv_basic_3a },
    { "kv/concurrent-3a", "Test: many clients (3A)",
      sim_kv_concurrent_3a },
    { "kv/unreliable-3a", "Test: unreliable net, many clients (3A)",
      sim_kv_unreliable_3a },
    { "kv/unreliable-one-key-3a", "Test: concurrent append to same key, unreliable (3A)",
      sim_kv_unreliable_one_key_3a },
    { "kv/one-partition-3a", "Test: progress in majority, no progress in minority, completion after heal (3A)",
      sim_kv_one_partition_3a },
    { "kv/many-partitions-one-client-3a", "Test: partitions, one client (3A)",
      sim_kv_many_partitions_one_client_3a },
    { "kv/many-partitions-many-clients-3a", "Test: partitions, many clients (3A)",
      sim_kv_many_partitions_many_clients_3a },
    { "kv/persist-one-client-3a", "Test: restarts, one client (3A)",
      sim_kv_persist_one_client_3a },
    { "kv/persist-concurrent-3a", "Test: restarts, many clients (3A)",
      sim_kv_persist_concurrent_3a },
    { "kv/persist-concurrent-unreliable-3a", "Test: unreliable net, restarts, many clients (3A)",
      sim_kv_persist_concurrent_unreliable_3a },
    { "kv/persist-partition-3a", "Test: restarts, partitions, many clients (3A)",
      sim_kv_persist_partition_3a },
    { "kv/persist-partition-unreliable-3a", "Test: unreliable net, restarts, partitions, many clients (3A)",
      sim_kv_persist_partition_unreliable_3a },
    { "kv/persist-partition-unreliable-linearizable-3a", "Test: unreliable net, restarts, partitions, random keys, many clients (3A)",
      sim_kv_persist_partition_unreliable_linearizable_3a },
    { "kv/speed-3a", "Test: ops complete fast enough (3A)",
      sim_kv_speed_3a },
    { "kv/snapshot-rpc-3b", "Test: InstallSnapshot RPC (3B)",
      sim_kv_snapshot_rpc_3b },
    { "kv/snapshot-size-3b", "Test: snapshot size is reasonable (3B)",
      sim_kv_snapshot_size_3b },
    { "kv/snapshot-recover-3b", "Test: restarts, snapshots, one client (3B)",
      sim_kv_snapshot_recover_3b },
    { "kv/snapshot-recover-many-clients-3b", "Test: restarts, snapshots, many clients (3B)",
      sim_kv_snapshot_recover_many_clients_3b },
    { "kv/snapshot-unreliable-3b", "Test: unreliable net, snapshots, many clients (3B)",
      sim_kv_snapshot_unreliable_3b },
    { "kv/snapshot-unreliable-recover-3b", "Test: unreliable net, restarts, snapshots, many clients (3B)",
      sim_kv_snapshot_unreliable_recover_3b },
    { "kv/snapshot-unreliable-recover-concurrent-partition-3b", "Test: unreliable net, restarts, partitions, snapshots, many clients (3B)",
      sim_kv_snapshot_unreliable_recover_concurrent_partition_3b },
    { "kv/snapshot-unreliable-recover-concurrent-partition-linearizable-3b", "Test: unreliable net, restarts, partitions, snapshots, random keys, many clients (3B)",
      sim_kv_snapshot_unreliable_recover_concurrent_partition_linearizable_3b },
    { "kv/speed-3b", "Test: ops complete fast enough (3B)",
      sim_kv_speed_3b },

    /* MIT 6.5840 shardctrler (Lab 5A) on the shard controller (tests/sim/shardctrler.c) */
    { "ctrler/basic-5a", "Test: basic leave/join, historical queries, move, concurrent leave/join, minimal transfers (5A)",
      sim_ctl_basic },
    { "ctrler/multi-5a", "Test: multi-group join/leave, concurrent, minimal transfers, same config on servers (5A)",
      sim_ctl_multi },
    { "ctrler/minimal-again-5a", "Test: minimal movement again (5A)",
      sim_ctl_minimal_again },
    { "ctrler/unreliable-exactly-once", "concurrent changes over an unreliable net with restarts, each applied once",
      sim_ctl_unreliable_exactly_once },

    /* MIT 6.5840 shardkv (Lab 5B) on shard groups and the controller (tests/sim/shardkv.c) */
    { "shardkv/static-shards-5b", "Test: static shards (5B)", sim_skv_static_shards },
    { "shardkv/join-leave-5b", "Test: join then leave (5B)", sim_skv_join_leave },
    { "shardkv/snapshot-5b", "Test: snapshots, join, and leave (5B)", sim_skv_snapshot },
    { "shardkv/miss-change-5b", "Test: servers miss configuration changes (5B)",
      sim_skv_miss_change },
    { "shardkv/concurrent1-5b", "Test: concurrent puts and configuration changes (5B)",
      sim_skv_concurrent1 },
    { "shardkv/concurrent2-5b", "Test: more concurrent puts and configuration changes (5B)",
      sim_skv_concurrent2 },
    { "shardkv/concurrent3-5b", "Test: concurrent configuration change and restart (5B)",
      sim_skv_concurrent3 },
    { "shardkv/unreliable1-5b", "Test: unreliable 1 (5B)", sim_skv_unreliable1 },
    { "shardkv/unreliable2-5b", "Test: unreliable 2 (5B)", sim_skv_unreliable2 },
    { "shardkv/unreliable3-5b", "Test: unreliable 3, linearizable (5B)", sim_skv_unreliable3 },
    { "shardkv/challenge1-delete", "Test: shard deletion (challenge 1)",
      sim_skv_challenge1_delete },
    { "shardkv/challenge2-unaffected", "Test: unaffected shard access (challenge 2)",
      sim_skv_challenge2_unaffected },
    { "shardkv/challenge2-partial", "Test: partial migration shard access (challenge 2)",
      sim_skv_challenge2_partial },
};

const size_t sim_n_scenarios = sizeof sim_scenarios / sizeof sim_scenarios[0];

/* The kvraft scenarios cost seconds of CPU per seed: the test command's 200 seeds run 20 of
 * them, make soak (--capped-share 200) 200 of its 1000. */
const struct sim_seed_share sim_seed_shares[] = {
    { "kv/", 100 },
    { "shardkv/", 100 }, /* 13 scenarios of 3 groups and a controller: the same share */
};

const size_t sim_n_seed_shares = sizeof sim_seed_shares / sizeof sim_seed_shares[0];
