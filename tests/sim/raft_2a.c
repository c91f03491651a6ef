/* 2A: leader election (TestInitialElection2A, TestReElection2A, TestManyElections2A). */
#include "raft_scenarios.h"
#include "sim/scenario.h"

void sim_raft_initial_election_2a(void)
{
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(3, false, false, "Test (2A): initial election", &t0);

    sim_check_one_leader(c);

    /* Sleep a bit to avoid racing with followers learning of the election. */
    sim_sleep(c, 50);
    uint64_t term1 = sim_check_terms(c);
    if (term1 < 1) {
        sim_fail(c, "term is %llu, but should be at least 1", (unsigned long long)term1);
    }

    /* With no failures the leader must keep its term. The Go test only prints a warning
     * here; a spurious election without faults is a bug (heartbeats too slow, timers not
     * reset), so ours fails. */
    sim_sleep(c, 2 * SIM_RAFT_ELECTION_TIMEOUT_MS);
    uint64_t term2 = sim_check_terms(c);
    if (term1 != term2) {
        sim_fail(c, "term changed even though there were no failures (%llu -> %llu)",
                 (unsigned long long)term1, (unsigned long long)term2);
    }

    sim_check_one_leader(c);
    sim_raft_end(c, t0);
}

void sim_raft_re_election_2a(void)
{
    const int n = 3;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(n, false, false, "Test (2A): election after network failure", &t0);

    int leader1 = sim_check_one_leader(c);

    /* If the leader disconnects, a new one should be elected. */
    sim_disconnect(c, leader1);
    sim_check_one_leader(c);

    /* The old leader rejoining must not disturb the new leader; it steps down. */
    sim_connect(c, leader1);
    int leader2 = sim_check_one_leader(c);

    /* No quorum, no leader. */
    sim_disconnect(c, leader2);
    sim_disconnect(c, (leader2 + 1) % n);
    sim_sleep(c, 2 * SIM_RAFT_ELECTION_TIMEOUT_MS);
    sim_check_no_leader(c);

    /* A quorum elects a leader. */
    sim_connect(c, (leader2 + 1) % n);
    sim_check_one_leader(c);

    /* The last node rejoining must not prevent a leader from existing. */
    sim_connect(c, leader2);
    sim_check_one_leader(c);

    sim_raft_end(c, t0);
}

void sim_raft_many_elections_2a(void)
{
    const int n = 7;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(n, false, false, "Test (2A): multiple elections", &t0);

    sim_check_one_leader(c);

    for (int iter = 1; iter < 10; iter++) {
        /* Three draws with replacement, as in the Go test: 1 to 3 distinct peers. */
        int i1 = (int)sim_rand(c, 0, (uint64_t)n);
        int i2 = (int)sim_rand(c, 0, (uint64_t)n);
        int i3 = (int)sim_rand(c, 0, (uint64_t)n);
        sim_disconnect(c, i1);
        sim_disconnect(c, i2);
        sim_disconnect(c, i3);

        /* Either the current leader is still alive, or the remaining four elect one. */
        sim_check_one_leader(c);

        sim_connect(c, i1);
        sim_connect(c, i2);
        sim_connect(c, i3);
    }

    sim_check_one_leader(c);
    sim_raft_end(c, t0);
}

/* Beyond the MIT catalog. Thesis 6.2 (check-quorum): a leader that hears from no quorum for
 * an election timeout steps down, so a partitioned leader stops claiming to lead (clients
 * go looking for the new one instead of waiting on it). The leader is cut off both ways,
 * then made deaf (its messages still leave, nothing reaches it); either way, within a few
 * election timeouts (at most 999 ms each in the fault mix) it must no longer lead, and once
 * healed the cluster has one leader. */
void sim_raft_check_quorum_2a(void)
{
    const int n = 5;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(n, false, false, "leaders without a quorum step down",
                                           &t0);
    for (int round = 0; round < 2; round++) {
        int l = sim_check_one_leader(c);
        if (round == 0) {
            sim_disconnect(c, l);
        } else {
            for (int j = 0; j < n; j++) {
                if (j != l) {
                    sim_set_link(c, j, l, false);
                }
            }
        }
        sim_sleep(c, 4 * SIM_RAFT_ELECTION_TIMEOUT_MS);
        uint64_t term;
        bool leader;
        sim_get_state(c, l, &term, &leader);
        if (leader) {
            sim_fail(c, "n%d still leads (term %llu) %u ms after losing its quorum (%s)", l + 1,
                     (unsigned long long)term, 4 * SIM_RAFT_ELECTION_TIMEOUT_MS,
                     round == 0 ? "cut off" : "deaf");
        }
        sim_connect(c, l);
        sim_check_one_leader(c);
    }
    sim_raft_end(c, t0);
}

/* Split votes, forced (thesis 3.6.1, figure 3.1: one vote per term). Randomized timers make
 * two candidates of one term rare, so the rule that a node votes once per term, even for
 * itself and with no leader known, was never exercised: a core granting a second vote in a
 * term passed every other scenario. Here, an election timeout after the leader is cut off
 * (the followers' leader leases have run out), every connected follower campaigns at the
 * same instant: their pre-votes succeed together and they stand in the same term, each
 * having voted for itself, so most rounds split and the randomized timers must resolve
 * them. 4 or 5 voters (even-sized quorums are rare elsewhere). */
void sim_raft_split_votes_2a(void)
{
    const int n = 4 + (int)(sim_seed() % 2);
    uint64_t t0;
    struct sim_cluster *c =
        sim_raft_begin(n, false, false, "split votes: followers campaign together", &t0);
    for (int iter = 0; iter < 8; iter++) {
        int leader = sim_check_one_leader(c);
        sim_disconnect(c, leader);
        sim_sleep(c, SIM_RAFT_ELECTION_TIMEOUT_MS + sim_rand(c, 0, 30));
        for (int i = 0; i < n; i++) {
            if (i != leader) {
                sim_campaign(c, i);
            }
        }
        int next = sim_check_one_leader(c);
        if (next == leader) {
            sim_fail(c, "the cut-off leader %d leads again", leader);
        }
        sim_connect(c, leader);
        /* Every node, the old leader included, ends in the new leader's term. */
        sim_sleep(c, 500);
        sim_check_terms(c);
    }
    sim_raft_end(c, t0);
}
