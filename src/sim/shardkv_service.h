/* The MIT 6.5840 shardkv service on the simulator (docs/design/sharding.md, "Shard groups"):
 * shard groups whose replicas run craftkv's state machine as a shard group
 * (kv_sm.h), next to a shard controller group (ctrler_service.h), with the drivers that
 * move slots between groups and clerks that route keys by the controller's configuration.
 *
 * Layout (the tester's, on shared processes): the controller's cluster is the root; each
 * shard group is a group of the root (node i of every group lives in process i), gid 100
 * + g, its servers named "server-<gid>-<i>" in configurations. A group's replica can be
 * shut down and restarted alone (sim_replica_crash / _start), as ShutdownServer does.
 *
 * Drivers (one per replica; acting only while the replica believes it leads its group),
 * every DRIVER_MS of virtual time, as the handout's servers poll:
 *   - every slot settled: Query(its configuration + 1) at the controller, through a
 *     controller clerk of its own; the answer, if it is that number, goes into the log
 *     (SHARD_CONFIG);
 *   - slots being received: ask a server of their previous owner for them (any replica
 *     that applied the same configuration answers: the slots are frozen there), and put
 *     the payload into the log (SHARD_INSTALL);
 *   - slots received: ask the previous owner to delete its copy (a server that leads it
 *     proposes SHARD_DELETE and answers done once applied), then SHARD_CONFIRM.
 * Every one of these is idempotent in the state machine, so a lost answer, a leader change
 * or a duplicate only repeats work. Group-to-group calls travel like client calls
 * (labrpc: U[0,2) ms, unreliable: + U[0,27) ms and 10% of requests and replies lost; a
 * call to a replica that is down fails after U[0,100) ms).
 *
 * Clerks: one craftkv session each (opened in a group before the first command sent
 * there), seq 1, 2, ... across groups; a get is a NOOP of the session read right after it
 * applies (linearized at that entry, and answered MOVED / TRYAGAIN like a write if the
 * group does not serve the key's slot there). On MOVED a clerk sleeps 100 ms and asks
 * the controller for the latest configuration; on TRYAGAIN it retries after 50 ms; a
 * retried write keeps its seq, so it runs once whichever group ends up running it. Every
 * completed op goes into a history for the linearizability checker. */
#ifndef CRAFT_SIM_SHARDKV_SERVICE_H
#define CRAFT_SIM_SHARDKV_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shard/config.h"
#include "sim/cluster.h"
#include "sim/ctrler_service.h"

#define SIM_SKV_GID_BASE 100u

struct sim_skv;
struct sim_skv_clerk;

/* Adds n_groups shard groups (gids 100, 101, ...) of root's size to root, the controller's
 * cluster (created with sim_ctl_set_opts and bound to ctl), unjoined; maxraftstate as
 * kvraft's (-1: no snapshots). */
struct sim_skv *sim_skv_create(struct sim_cluster *root, struct sim_ctl *ctl, int n_groups,
                               int maxraftstate);
/* After sim_cluster_destroy. */
void sim_skv_destroy(struct sim_skv *s);

int sim_skv_groups(const struct sim_skv *s);
uint64_t sim_skv_gid(const struct sim_skv *s, int g);
struct sim_cluster *sim_skv_cluster(struct sim_skv *s, int g);
/* Group g as Join names it. */
struct craft_shard_group sim_skv_group(const struct sim_skv *s, int g);
/* ShutdownGroup / StartGroup: every replica of group g down / restarted from its disk. */
void sim_skv_shutdown_group(struct sim_skv *s, int g);
void sim_skv_start_group(struct sim_skv *s, int g);
/* checklogs(): every replica's Raft state within 8 x maxraftstate (with snapshots on), or
 * no snapshot at all (maxraftstate -1). */
void sim_skv_check_logs(struct sim_skv *s);
/* Raft state plus snapshot bytes over every replica of every group (TestChallenge1Delete). */
size_t sim_skv_total_bytes(const struct sim_skv *s);

/* ---- clerks ---- */
struct sim_skv_clerk *sim_skv_clerk(struct sim_skv *s, uint64_t client);
/* Called when an op completes: a get's value (borrowed until the clerk's next op). */
typedef void (*sim_skv_done_fn)(struct sim_skv_clerk *ck, void *arg, const char *val, size_t len);
/* Starts op kind (SIM_LIN_GET / _PUT / _APPEND) on key; the clerk must be idle. From a task
 * or the scenario body. */
void sim_skv_op(struct sim_skv_clerk *ck, uint8_t kind, const char *key, const char *value,
                sim_skv_done_fn done, void *arg);
bool sim_skv_busy(const struct sim_skv_clerk *ck);
/* Scenario body: waits up to budget_ms; false if the op is still running. */
bool sim_skv_wait(struct sim_skv_clerk *ck, uint64_t budget_ms);
/* Scenario body, blocking; fail the run past budget_ms. */
const char *sim_skv_get(struct sim_skv_clerk *ck, const char *key, uint64_t budget_ms);
void sim_skv_put(struct sim_skv_clerk *ck, const char *key, const char *value, uint64_t budget_ms);
void sim_skv_append(struct sim_skv_clerk *ck, const char *key, const char *value,
                    uint64_t budget_ms);
/* check(): Get(key) must return want. */
void sim_skv_check(struct sim_skv_clerk *ck, const char *key, const char *want, uint64_t budget_ms);

/* The linearizability checker over every clerk's ops (sim_kv_history_check). */
void sim_skv_check_history(struct sim_skv *s, uint64_t budget_steps);

#endif
