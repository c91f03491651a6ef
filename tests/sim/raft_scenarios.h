/* The MIT 6.5840 Raft lab tests (2A..2D, 2023 set: 28 tests) as simulator scenarios.
 *
 * Each function is one scenario's body (struct sim_scenario.run): it takes no arguments,
 * creates its cluster from the current run's seed, draws every random choice through
 * sim_rand, ends a failed run through sim_fail (with the Go test's error text) and destroys
 * the cluster before returning. docs/design/scenarios.md maps each one to its Go test. */
#ifndef CRAFT_TESTS_SIM_RAFT_SCENARIOS_H
#define CRAFT_TESTS_SIM_RAFT_SCENARIOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/cluster.h"

/* 2A: election */
void sim_raft_initial_election_2a(void);
void sim_raft_re_election_2a(void);
void sim_raft_check_quorum_2a(void);
void sim_raft_many_elections_2a(void);
void sim_raft_split_votes_2a(void);

/* 2B: log agreement */
void sim_raft_basic_agree_2b(void);
void sim_raft_rpc_bytes_2b(void);
void sim_raft_follower_failure_2b(void);
void sim_raft_leader_failure_2b(void);
void sim_raft_fail_agree_2b(void);
void sim_raft_fail_no_agree_2b(void);
void sim_raft_concurrent_starts_2b(void);
void sim_raft_rejoin_2b(void);
void sim_raft_backup_2b(void);
void sim_raft_count_2b(void);

/* 2C: persistence and adversarial schedules */
void sim_raft_persist1_2c(void);
void sim_raft_persist2_2c(void);
void sim_raft_persist3_2c(void);
void sim_raft_figure8_2c(void);
void sim_raft_unreliable_agree_2c(void);
void sim_raft_figure8_unreliable_2c(void);
void sim_raft_reliable_churn_2c(void);
void sim_raft_unreliable_churn_2c(void);

/* 2D: snapshots */
void sim_raft_snapshot_basic_2d(void);
void sim_raft_snapshot_install_2d(void);
void sim_raft_snapshot_install_unreliable_2d(void);
void sim_raft_snapshot_install_crash_2d(void);
void sim_raft_snapshot_install_uncrash_2d(void);
void sim_raft_snapshot_all_crash_2d(void);
void sim_raft_snapshot_init_2d(void);

/* ---- shared by the scenario files ---- */

/* config.go's RaftElectionTimeout: the tester's notion only, not the core's timeout. */
#define SIM_RAFT_ELECTION_TIMEOUT_MS 1000u
/* config.go's per-test limit, applied to virtual time. */
#define SIM_RAFT_TEST_LIMIT_MS 120000u

/* make_config(n, unreliable, snapshot) plus begin(): creates the cluster, notes the
 * description in the trace and stores the start time in *t0 for sim_raft_end. The cluster
 * is owned by the caller until sim_raft_end. */
/* For scenarios that bound message counts exactly (reliable, no snapshots): no duplication,
 * default election timeout. */
/* The bodies of persist2 (its rounds of crashing stale and fresh peers around agreements,
 * then one(1000, n)) and Figure 8 (rounds of Start on every live node, the leader crashed
 * right after, at least 3 up; then everyone restarted and connected), on n >= 5 nodes, for
 * scenarios that run them under other conditions (tests/sim/storage_scenarios.c). */
void sim_raft_persist2_rounds(struct sim_cluster *c, int n, int iterations);
void sim_raft_figure8_rounds(struct sim_cluster *c, int n, int iterations);

/* Random faults, then heal and converge (chaos.c). */
void sim_raft_chaos(void);
void sim_raft_alloc_failures(void);
/* Swarm testing: a fault mix drawn per seed (chaos.c). */
void sim_swarm_raft(void);
/* The chaos phases on a cluster of n nodes: clients propose while random faults hit for
 * safety_ms (crashes weighted up by extra_crash_weight out of 10), then everything heals and
 * one() must reach all n nodes. */
void sim_chaos_phases(struct sim_cluster *c, int n, uint64_t safety_ms,
                      uint32_t extra_crash_weight);
/* One random fault of the chaos mix on n nodes (or processes): a crash (through crash,
 * keeping one up; weighted up by extra_crash_weight out of 10) or restart (through start),
 * a disconnection, a one-way cut, a split into two sides, all links healed, a lossy or
 * reordering network, or nothing. *alive counts the nodes up. */
void sim_chaos_fault(struct sim_cluster *c, int n, int *alive, uint32_t extra_crash_weight,
                     void (*crash)(struct sim_cluster *c, int i),
                     void (*start)(struct sim_cluster *c, int i));
/* Every live node disconnected, then reconnected: every link between live nodes is up. */
void sim_chaos_heal_links(struct sim_cluster *c, int n);

/* Many groups per process (multigroup.c). */
void sim_multi_chaos(void);
void sim_multi_crash_all(void);
void sim_multi_chaos_log(void);
void sim_multi_quiesce(void);
void sim_multi_crash_all_log(void);

struct sim_cluster *sim_raft_begin_counted(int n, const char *description, uint64_t *t0);
struct sim_cluster *sim_raft_begin(int n, bool unreliable, bool snapshot, const char *description,
                                   uint64_t *t0);

/* end(): fails a run that took more than 120 s of virtual time since t0 (checkTimeout:
 * "test took longer than 120 seconds"), then destroys the cluster (which checks the
 * invariants). c is freed. */
void sim_raft_end(struct sim_cluster *c, uint64_t t0);

/* rand.Int() for commands: a non-negative value that survives sim_wait's int64 result. */
uint64_t sim_raft_rand_cmd(struct sim_cluster *c);

/* Formats vals as Go's %v of a []int ("[1 2 3]") into buf (always NUL-terminated,
 * truncated with "...]" when it does not fit). Returns buf. */
const char *sim_raft_fmt_ints(char *buf, size_t cap, const uint64_t *vals, size_t n_vals);

#endif
