/* Read scenarios (tests/sim/reads.c): linearizable reads through ReadIndex, leases and
 * follower reads on the key/value register cluster, checked by the linearizability
 * checker. docs/design/read-scenarios.md describes them. */
#ifndef CRAFT_TESTS_SIM_READ_SCENARIOS_H
#define CRAFT_TESTS_SIM_READ_SCENARIOS_H

/* Clients put/append/get on a few keys with all three read modes under crashes,
 * partitions and a lossy network; heal; final reads; linearizability check. */
void sim_read_linearizable_kv(void);
/* The leader is cut into a minority while it still believes it leads; reads of every mode
 * on it and on its minority followers while the majority elects and writes. */
void sim_read_stale_leader_minority(void);
/* Clocks drift within the configured bound; lease reads across leader crashes and
 * partitions. */
void sim_read_lease_drift(void);
/* A leadership transfer whose target cannot win at once: the leader gives up on it and
 * serves on; the target's transfer campaign later reaches the voters. No lease read of the
 * old leader may miss what the new one committed. */
void sim_read_lease_transfer_abort(void);
/* The leader crashes the moment a write through it completes, its commit update lost on
 * the wire; ReadIndex reads on the others until the new leader serves one. */
void sim_read_new_leader_window(void);
/* A node cut off from the leader alone campaigns; the others, still hearing the leader,
 * must ignore it while the leader serves lease reads. */
void sim_read_lease_disruptive_candidate(void);

#endif
