/* Membership-change and leadership-transfer scenarios (member/..., transfer/...) and the
 * helpers they share. docs/design/membership-scenarios.md says what each one checks.
 *
 * Every scenario draws its choices from the run's seed, ends a failed run through sim_fail
 * and destroys its cluster before returning. */
#ifndef CRAFT_TESTS_SIM_MEMBERSHIP_SCENARIOS_H
#define CRAFT_TESTS_SIM_MEMBERSHIP_SCENARIOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/cluster.h"

void sim_member_grow_3_to_5(void);
void sim_member_shrink_5_to_3(void);
void sim_member_joint_change(void);
void sim_member_random_changes(void);
void sim_member_remove_leader(void);
void sim_member_removed_keeps_campaigning(void);
void sim_member_replace_all(void);
void sim_member_lost_quorum(void);
void sim_transfer_under_load(void);
void sim_transfer_target_partitioned(void);
void sim_transfer_refused(void);

/* ---- shared helpers (membership_common.c) ---- */

/* Creates a cluster of n node slots, the first n_initial of them the bootstrap voters, with
 * the seed's fault mix; notes the description. */
struct sim_cluster *mb_begin(int n, int n_initial, bool unreliable, bool snapshot,
                             const char *description);
/* Fails if the run took more than its limit, then destroys the cluster. */
void mb_end(struct sim_cluster *c, uint64_t limit_ms);

#define MB_PROPOSALS_MAX 4096

/* A client task: proposes random int commands to whichever node accepts them and records
 * every accepted proposal; a proposal is "acknowledged" once the client sees its value
 * applied at its index (what a real client would be told). */
struct mb_client {
    int n;             /* node slots */
    bool stop, done;
    uint32_t period_ms; /* pause between proposals: U[1, period_ms] */
    uint64_t n_accepted, n_acked;
    uint64_t n_refused_transfer; /* Start refused with CRAFT_ETRANSFER */
    struct {
        uint64_t value, index, term;
        bool acked;
    } p[MB_PROPOSALS_MAX];
};
/* Starts clients[0..k-1] (each zeroed and set up here) over node slots 0..n-1. */
void mb_clients_start(struct sim_cluster *c, int n, struct mb_client *clients, int k);
/* Stops them and waits until their tasks ended. */
void mb_clients_stop(struct sim_cluster *c, struct mb_client *clients, int k);
/* Every acknowledged value is at its index on every node of `nodes` (a bitmask of node
 * indexes), which must have applied through it. */
void mb_check_acked(struct sim_cluster *c, const struct mb_client *clients, int k, uint64_t nodes);
/* Every accepted proposal was committed (at its index, with its value). */
void mb_check_all_committed(struct sim_cluster *c, const struct mb_client *clients, int k);

/* A fault task: every 200..1500 ms it heals the previous fault and maybe injects a new one
 * (crash and restart, disconnection, a lossy network), never more than one node at a time,
 * so that any configuration of three or more voters keeps a live majority. */
struct mb_faults {
    int n;
    bool stop, done;
    int crashed, disconnected; /* -1: none */
};
void mb_faults_start(struct sim_cluster *c, struct mb_faults *f, int n);
/* Stops the task and heals: every node restarted if down, all connected, reliable. */
void mb_faults_stop(struct sim_cluster *c, struct mb_faults *f);

/* Restarts every crashed node and connects everything (reliable network). */
void mb_heal_all(struct sim_cluster *c, int n);
/* The bitmask of node indexes named by conf (voters, outgoing, learners, learners_next). */
uint64_t mb_conf_members(const struct craft_conf *conf);
/* Whether a and b hold the same ids in each list. */
bool mb_conf_equal(const struct craft_conf *a, const struct craft_conf *b);
/* Liveness after healing: waits (bounded) until the committed configuration is not joint,
 * commits a new command with one() and waits until every member of the committed
 * configuration has applied it; then checks that every member's own configuration equals
 * the committed one. Returns the committed configuration in *conf. */
void mb_converge(struct sim_cluster *c, struct craft_conf *conf);
/* The current leader (sim_check_one_leader). */
int mb_leader(struct sim_cluster *c);
/* Waits (bounded) until learner j caught up: the caught_up port reported it, or the
 * leader's progress shows it matched the leader's commit. Returns true if the port did. */
bool mb_wait_caught_up(struct sim_cluster *c, int n, int j);

#endif
