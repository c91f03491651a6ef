/* Scenarios that persist through the real stores over the faulty filesystem
 * (opts.real_storage; src/sim/real_disk.h). */
#ifndef CRAFT_TESTS_SIM_STORAGE_SCENARIOS_H
#define CRAFT_TESTS_SIM_STORAGE_SCENARIOS_H

/* Random faults (crashes with torn WAL tails, partitions, lossy phases) with snapshots,
 * then heal and converge. */
void sim_storage_chaos_real_wal(void);
/* persist2 and Figure 8: leaders crash right after Start, nodes restart from the WAL. */
void sim_storage_persist_real_wal(void);

#endif
