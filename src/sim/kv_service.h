/* The MIT 6.5840 kvraft service on the simulator: every node runs craftkv's replicated
 * state machine (craft_kv_sm over the in-memory store) as its application (struct
 * sim_app), and clerks call the servers through a labrpc-like client network.
 *
 * Servers, clerks' retries and the client network are the replicated-service plumbing's
 * (rsm.h). Gets go through the log too, as a NOOP of the clerk's session (the value is read
 * right after that entry is applied: the read is linearized at it).
 *
 * Clerks: one craftkv session each (SESSION_OPEN, then seq 1, 2, ...), so a retried write
 * executes exactly once (the state machine dedups by session and seq).
 *
 * Every completed clerk operation goes into a history (call and return in virtual ms)
 * checked by the linearizability checker (linearize.h). */
#ifndef CRAFT_SIM_KV_SERVICE_H
#define CRAFT_SIM_KV_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/cluster.h"

struct sim_kvs;
struct sim_kvs_clerk;

/* A service for n servers; maxraftstate in bytes (-1: no snapshots). */
struct sim_kvs *sim_kvs_create(int n, int maxraftstate);
/* Sets opts->app to the service (before sim_cluster_create). */
void sim_kvs_set_opts(struct sim_kvs *s, struct sim_cluster_opts *opts);
/* Binds the cluster (right after sim_cluster_create). */
void sim_kvs_bind(struct sim_kvs *s, struct sim_cluster *c);
/* Frees the service, its clerks and history: after sim_cluster_destroy. */
void sim_kvs_destroy(struct sim_kvs *s);

/* ---- clerks ---- */
/* A clerk with links to every server (enabled), in a random order; client id `client` in
 * the history. */
struct sim_kvs_clerk *sim_kvs_clerk(struct sim_kvs *s, uint64_t client);
/* Enables or disables the clerk's link to server i (ConnectClient / DisconnectClient). */
void sim_kvs_clerk_link(struct sim_kvs_clerk *ck, int i, bool on);
void sim_kvs_clerk_only(struct sim_kvs_clerk *ck, const int *servers, int n);

/* Called when an op completes: the value for a get (borrowed until the clerk's next op;
 * NUL-terminated). */
typedef void (*sim_kvs_done_fn)(struct sim_kvs_clerk *ck, void *arg, const char *val,
                                size_t len);
/* Starts op kind (SIM_LIN_GET / _PUT / _APPEND) on key with value (ignored for gets).
 * The clerk must be idle. done may be NULL. From a task or the scenario body. */
void sim_kvs_op(struct sim_kvs_clerk *ck, uint8_t kind, const char *key, const char *value,
                sim_kvs_done_fn done, void *arg);
bool sim_kvs_busy(const struct sim_kvs_clerk *ck);
/* The value of the clerk's last completed get (NUL-terminated). */
const char *sim_kvs_value(const struct sim_kvs_clerk *ck, size_t *len);
/* Scenario body: waits up to budget_ms for the clerk's op; false if it is still running. */
bool sim_kvs_wait(struct sim_kvs_clerk *ck, uint64_t budget_ms);
/* Scenario body: blocking ops; fail the run if one takes more than budget_ms. */
const char *sim_kvs_get(struct sim_kvs_clerk *ck, const char *key, uint64_t budget_ms);
void sim_kvs_put(struct sim_kvs_clerk *ck, const char *key, const char *value, uint64_t budget_ms);
void sim_kvs_append(struct sim_kvs_clerk *ck, const char *key, const char *value,
                    uint64_t budget_ms);
/* check(): Get(key) must return want. */
void sim_kvs_check(struct sim_kvs_clerk *ck, const char *key, const char *want, uint64_t budget_ms);

/* ---- the tester ---- */
/* Leader(): the first alive server that believes it leads, or -1. */
int sim_kvs_leader(struct sim_kvs *s);
/* SnapshotSize(): the largest snapshot held by a server (bytes). */
size_t sim_kvs_snapshot_size(const struct sim_kvs *s);
/* Runs the checker over the history with budget_steps: fails the run on ILLEGAL; UNKNOWN
 * passes with a note (porcupine's timeout in the Go test). */
void sim_kvs_check_history(struct sim_kvs *s, uint64_t budget_steps);
/* Operations completed and clerk RPC attempts so far. */
uint64_t sim_kvs_ops(const struct sim_kvs *s);
uint64_t sim_kvs_attempts(const struct sim_kvs *s);

#endif
