/* The MIT 6.5840 shardctrler tests (Lab 5A) on the simulator's controller service
 * (src/sim/ctrler_service.h): tests/sim/shardctrler.c. */
#ifndef CRAFT_TESTS_SIM_SHARDCTRLER_SCENARIOS_H
#define CRAFT_TESTS_SIM_SHARDCTRLER_SCENARIOS_H

void sim_ctl_basic(void);
void sim_ctl_multi(void);
void sim_ctl_minimal_again(void);
void sim_ctl_unreliable_exactly_once(void);

#endif
