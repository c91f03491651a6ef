/* The MIT 6.5840 kvraft tests (Lab 3A/3B) on the simulator's kv service
 * (src/sim/kv_service.h): tests/sim/kvraft.c. */
#ifndef CRAFT_TESTS_SIM_KVRAFT_SCENARIOS_H
#define CRAFT_TESTS_SIM_KVRAFT_SCENARIOS_H

void sim_kv_basic_3a(void);
void sim_kv_concurrent_3a(void);
void sim_kv_unreliable_3a(void);
void sim_kv_unreliable_one_key_3a(void);
void sim_kv_one_partition_3a(void);
void sim_kv_many_partitions_one_client_3a(void);
void sim_kv_many_partitions_many_clients_3a(void);
void sim_kv_persist_one_client_3a(void);
void sim_kv_persist_concurrent_3a(void);
void sim_kv_persist_concurrent_unreliable_3a(void);
void sim_kv_persist_partition_3a(void);
void sim_kv_persist_partition_unreliable_3a(void);
void sim_kv_persist_partition_unreliable_linearizable_3a(void);
void sim_kv_speed_3a(void);
void sim_kv_snapshot_rpc_3b(void);
void sim_kv_snapshot_size_3b(void);
void sim_kv_snapshot_recover_3b(void);
void sim_kv_snapshot_recover_many_clients_3b(void);
void sim_kv_snapshot_unreliable_3b(void);
void sim_kv_snapshot_unreliable_recover_3b(void);
void sim_kv_snapshot_unreliable_recover_concurrent_partition_3b(void);
void sim_kv_snapshot_unreliable_recover_concurrent_partition_linearizable_3b(void);
void sim_kv_speed_3b(void);

#endif
