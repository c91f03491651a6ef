/* Leadership transfer scenarios (transfer/...), thesis 3.10: under load, with the target
 * partitioned mid-transfer, and the refusals. */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "membership_scenarios.h"
#include "raft_scenarios.h"
#include "sim/scenario.h"

#define LIMIT_MS 120000u
#define CLIENTS 2

/* The nodes' base election timeout (the run's fault mix may shorten it). */
static uint64_t run_election_timeout(uint32_t opt)
{
    struct craft_core_config cfg;
    craft_core_config_default(&cfg, 1);
    return opt != 0 ? opt : cfg.election_timeout_ms;
}

static int random_follower(struct sim_cluster *c, int n, int leader)
{
    return (leader + 1 + (int)sim_rand(c, 0, (uint64_t)n - 1)) % n;
}

static struct sim_cluster *begin(int n, const char *description, uint64_t *et)
{
    struct sim_cluster_opts opts;
    sim_cluster_opts_default(&opts, n, false, sim_seed() % 2 == 0);
    struct sim_cluster *c = sim_cluster_create(&opts);
    sim_note(c, "begin: %s", description);
    *et = run_election_timeout(opts.election_timeout_ms);
    return c;
}

void sim_transfer_under_load(void)
{
    int n = sim_seed() % 4 < 2 ? 3 : 5;
    uint64_t et;
    struct sim_cluster *c = begin(n, "leadership transfer while clients write", &et);
    struct mb_client cl[CLIENTS];
    mb_clients_start(c, n, cl, CLIENTS);
    sim_sleep(c, sim_rand(c, 500, 1500));
    int transfers = 1 + (int)sim_rand(c, 0, 3);
    uint64_t refused = 0;
    for (int k = 0; k < transfers; k++) {
        int leader = mb_leader(c);
        bool any = sim_rand(c, 0, 4) == 0;
        int target = any ? -1 : random_follower(c, n, leader);
        uint64_t t0 = sim_now(c);
        int err = sim_transfer(c, leader, target);
        if (err != CRAFT_OK) {
            sim_fail(c, "transfer from leader %d to %d refused: %s", leader, target,
                     craft_strerror(err));
        }
        struct craft_core_status st;
        sim_status(c, leader, &st);
        if (st.transfer_target == CRAFT_NONE || (target >= 0 && st.transfer_target != (uint64_t)target + 1)) {
            sim_fail(c, "leader %d reports transfer target %llu after a transfer to %d", leader,
                     (unsigned long long)st.transfer_target, target);
        }
        if (target < 0) {
            target = (int)st.transfer_target - 1;
        }
        sim_note(c, "transfer %d: leader %d -> %d", k, leader, target);
        /* Proposals wait for the transfer: Start says no, with CRAFT_ETRANSFER. */
        if (sim_start_int(c, leader, sim_raft_rand_cmd(c), NULL, NULL)) {
            sim_fail(c, "leader %d accepted a proposal during a leadership transfer", leader);
        }
        if (sim_last_start_err(c) != CRAFT_ETRANSFER) {
            sim_fail(c, "a proposal during the transfer failed with %s, not CRAFT_ETRANSFER",
                     craft_strerror(sim_last_start_err(c)));
        }
        refused++;
        for (;;) {
            bool is_leader;
            sim_get_state(c, target, NULL, &is_leader);
            if (is_leader) {
                break;
            }
            if (sim_now(c) - t0 > et) {
                sim_fail(c, "transfer target %d did not become leader within an election "
                            "timeout (%llu ms)",
                         target, (unsigned long long)et);
            }
            sim_sleep(c, 5);
        }
        sim_note(c, "target %d leads after %llu ms", target,
                 (unsigned long long)(sim_now(c) - t0));
        sim_get_state(c, leader, NULL, NULL);
        sim_sleep(c, sim_rand(c, 200, 1500));
    }
    mb_clients_stop(c, cl, CLIENTS);
    sim_one_int(c, sim_raft_rand_cmd(c), n, true);
    sim_sleep(c, 500);
    /* No faults: every accepted proposal, before, during and after transfers, commits. */
    mb_check_all_committed(c, cl, CLIENTS);
    mb_check_acked(c, cl, CLIENTS, (1ULL << n) - 1);
    sim_note(c, "%llu proposals refused during transfers (clients: %llu)",
             (unsigned long long)refused,
             (unsigned long long)(cl[0].n_refused_transfer + cl[1].n_refused_transfer));
    mb_end(c, LIMIT_MS);
}

void sim_transfer_target_partitioned(void)
{
    int n = sim_seed() % 4 < 2 ? 3 : 5;
    uint64_t et;
    struct sim_cluster *c = begin(n, "the transfer target is partitioned mid-transfer", &et);
    struct mb_client cl[CLIENTS];
    mb_clients_start(c, n, cl, CLIENTS);
    sim_sleep(c, sim_rand(c, 500, 1500));
    int leader = mb_leader(c);
    int target = random_follower(c, n, leader);
    uint64_t t0 = sim_now(c);
    int err = sim_transfer(c, leader, target);
    if (err != CRAFT_OK) {
        sim_fail(c, "transfer from leader %d to %d refused: %s", leader, target,
                 craft_strerror(err));
    }
    sim_sleep(c, sim_rand(c, 0, 20));
    sim_note(c, "partition target %d", target);
    sim_disconnect(c, target);
    /* Within an election timeout (plus a heartbeat interval of timer granularity) the
     * transfer is abandoned: some connected node accepts proposals again. */
    uint64_t deadline = et + 150;
    int accepted_by = -1;
    bool stepped_down = false;
    while (accepted_by < 0) {
        bool is_leader;
        sim_get_state(c, leader, NULL, &is_leader);
        if (!is_leader && !stepped_down) {
            /* TIMEOUT_NOW got out and the target's vote requests reached the others before
             * the partition: the transfer is over, and the remaining voters elect a leader
             * as after any leader loss (randomized timeouts up to 2x, pre-vote, vote). */
            stepped_down = true;
            deadline = sim_now(c) - t0 + 3 * et + 500;
            sim_note(c, "old leader %d stepped down: the target's campaign got out", leader);
        }
        for (int i = 0; i < n && accepted_by < 0; i++) {
            if (i != target && sim_start_int(c, i, sim_raft_rand_cmd(c), NULL, NULL)) {
                accepted_by = i;
            }
        }
        if (accepted_by >= 0) {
            break;
        }
        if (sim_now(c) - t0 > deadline) {
            sim_fail(c, "no node accepted proposals %llu ms after a transfer to partitioned "
                        "node %d",
                     (unsigned long long)deadline, target);
        }
        sim_sleep(c, 5);
    }
    sim_note(c, "server %d (old leader %d) accepts proposals %llu ms after the transfer began",
             accepted_by, leader, (unsigned long long)(sim_now(c) - t0));
    struct craft_core_status st;
    sim_status(c, accepted_by, &st);
    if (st.transfer_target != CRAFT_NONE) {
        sim_fail(c, "server %d accepted a proposal with a transfer to %llu in progress",
                 accepted_by, (unsigned long long)st.transfer_target);
    }
    sim_sleep(c, sim_rand(c, 0, 2000));
    sim_connect(c, target);
    mb_clients_stop(c, cl, CLIENTS);
    sim_one_int(c, sim_raft_rand_cmd(c), n, true);
    sim_sleep(c, 500);
    mb_check_acked(c, cl, CLIENTS, (1ULL << n) - 1);
    mb_end(c, LIMIT_MS);
}

static void expect_err(struct sim_cluster *c, int got, int want, const char *what)
{
    if (got != want) {
        sim_fail(c, "%s: got %s, want %s", what, craft_strerror(got), craft_strerror(want));
    }
}

void sim_transfer_refused(void)
{
    /* Slots: 0..2 voters, 3 a learner, 4 never added. */
    struct sim_cluster *c = mb_begin(5, 3, false, false, "refused leadership transfers");
    struct craft_conf_change add = {.type = CRAFT_CONF_ADD_LEARNER, .id = 4};
    sim_change_conf_on_leader(c, &add, 1, false);
    int leader = mb_leader(c);
    uint64_t term0;
    sim_get_state(c, leader, &term0, NULL);
    int follower = (leader + 1) % 3;
    expect_err(c, sim_transfer(c, leader, 3), CRAFT_EINVAL, "transfer to a learner");
    expect_err(c, sim_transfer(c, leader, 4), CRAFT_EUNKNOWNPEER, "transfer to an unknown node");
    expect_err(c, sim_transfer(c, leader, 20), CRAFT_EUNKNOWNPEER, "transfer to node id 21");
    expect_err(c, sim_transfer(c, leader, leader), CRAFT_EINVAL, "transfer to the leader itself");
    expect_err(c, sim_transfer(c, follower, -1), CRAFT_ENOTLEADER, "transfer on a follower");
    expect_err(c, sim_transfer(c, 3, -1), CRAFT_ENOTLEADER, "transfer on a learner");
    struct craft_core_status st;
    sim_status(c, leader, &st);
    if (st.role != CRAFT_LEADER || st.term != term0 || st.transfer_target != CRAFT_NONE) {
        sim_fail(c, "refused transfers changed the leader's state (role %s, term %llu, target %llu)",
                 craft_role_name(st.role), (unsigned long long)st.term,
                 (unsigned long long)st.transfer_target);
    }
    /* The leader still takes proposals. */
    if (!sim_start_int(c, leader, sim_raft_rand_cmd(c), NULL, NULL)) {
        sim_fail(c, "leader %d refused a proposal after refused transfers: %s", leader,
                 craft_strerror(sim_last_start_err(c)));
    }
    /* One transfer at a time, and no configuration change during one. Partition the target
     * first so the transfer cannot finish under our feet. */
    sim_disconnect(c, follower);
    expect_err(c, sim_transfer(c, leader, follower), CRAFT_OK, "transfer to a voter");
    int other = 3 - leader - follower;
    expect_err(c, sim_transfer(c, leader, other), CRAFT_ETRANSFER, "a second transfer");
    struct craft_conf_change promote = {.type = CRAFT_CONF_ADD_VOTER, .id = 4};
    expect_err(c, sim_conf_change(c, leader, &promote, 1, false, NULL), CRAFT_ETRANSFER,
               "a configuration change during a transfer");
    sim_connect(c, follower);
    sim_one_int(c, sim_raft_rand_cmd(c), 4, true);
    mb_end(c, LIMIT_MS);
}
