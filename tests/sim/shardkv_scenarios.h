/* The MIT 6.5840 shardkv tests (Lab 5B and its challenges) on the simulator's shard groups
 * (src/sim/shardkv_service.h): tests/sim/shardkv.c. */
#ifndef CRAFT_TESTS_SIM_SHARDKV_SCENARIOS_H
#define CRAFT_TESTS_SIM_SHARDKV_SCENARIOS_H

void sim_skv_static_shards(void);
void sim_skv_join_leave(void);
void sim_skv_snapshot(void);
void sim_skv_miss_change(void);
void sim_skv_concurrent1(void);
void sim_skv_concurrent2(void);
void sim_skv_concurrent3(void);
void sim_skv_unreliable1(void);
void sim_skv_unreliable2(void);
void sim_skv_unreliable3(void);
void sim_skv_challenge1_delete(void);
void sim_skv_challenge2_unaffected(void);
void sim_skv_challenge2_partial(void);

#endif
