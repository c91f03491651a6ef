/* A replicated service on the simulator, the part the MIT 6.5840 kvraft and shardctrler
 * services share: servers that Start() a clerk's command on the node that believes it
 * leads and answer once that node applies it, and clerks that call them through a
 * labrpc-like client network, retrying until a server says OK. What the command means,
 * and what the answer holds, is the service's (kv_service.c, ctrler_service.c).
 *
 * Servers (config.go's StartKVServer): a request reaching a node that believes it leads is
 * proposed there and answered when that node (same incarnation) applies the entry at the
 * returned index: OK with the service's reply if it is the same command, ErrWrongLeader if
 * another one landed there, or after a handler timeout. Snapshots follow maxraftstate: a
 * node snapshots once its durable Raft state reaches it (-1: never).
 *
 * Clerks try the server they last found leading, then the others in their own random
 * order, forever, pausing after each full cycle. Clerk links are separate from server
 * links (config.go's partition() leaves them alone).
 *
 * Client network (labrpc, LongDelays off): a call to a disabled link or a dead server fails
 * after U[0,100) ms; reliable delivery takes U[0,2) ms; unreliable adds U[0,27) ms to the
 * request and drops 10% of requests and 10% of replies (the call fails). */
#ifndef CRAFT_SIM_RSM_H
#define CRAFT_SIM_RSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/cluster.h"

struct sim_rsm;
struct sim_rsm_clerk;

/* The service's state machines, one per server. */
struct sim_rsm_service {
    void *ctx;
    /* Server i (re)starts: a fresh state machine. */
    void (*start)(void *ctx, int i);
    /* Applies normal entry e on server i (fail the run with sim_fail if it is refused). */
    void (*apply)(void *ctx, int i, const struct craft_entry *e);
    /* Right after apply(e): the reply to the clerk whose command e is (ck_arg: what the
     * clerk was created with). *reply is malloc'd (or NULL with *len 0). */
    void (*reply)(void *ctx, int i, void *ck_arg, const struct craft_entry *e, uint8_t **reply,
                  size_t *len);
    /* Server i's state, for a snapshot through its last applied entry; borrowed. */
    const uint8_t *(*snapshot)(void *ctx, int i, size_t *len);
    /* Server i takes a snapshot through index (fail the run if it does not restore). */
    void (*restore)(void *ctx, int i, const uint8_t *blob, size_t len, uint64_t index);
};

/* A service for n servers; maxraftstate in bytes (-1: no snapshots). svc is copied. */
struct sim_rsm *sim_rsm_create(int n, int maxraftstate, const struct sim_rsm_service *svc);
/* Sets opts->app to the service (before sim_cluster_create). */
void sim_rsm_set_opts(struct sim_rsm *s, struct sim_cluster_opts *opts);
/* Binds the cluster (right after sim_cluster_create). */
void sim_rsm_bind(struct sim_rsm *s, struct sim_cluster *c);
/* Frees the service and its clerks: after sim_cluster_destroy. */
void sim_rsm_destroy(struct sim_rsm *s);
struct sim_cluster *sim_rsm_cluster(const struct sim_rsm *s);
int sim_rsm_servers(const struct sim_rsm *s);

/* Leader(): the first alive server that believes it leads, or -1. */
int sim_rsm_leader(struct sim_rsm *s);
/* SnapshotSize(): the largest snapshot held by a server (bytes). */
size_t sim_rsm_snapshot_size(const struct sim_rsm *s);
/* Clerk RPC attempts so far. */
uint64_t sim_rsm_attempts(const struct sim_rsm *s);

/* A clerk with links to every server (enabled), in a random order; arg is passed to the
 * service's reply(). */
struct sim_rsm_clerk *sim_rsm_clerk(struct sim_rsm *s, void *arg);
/* Enables or disables the clerk's link to server i (ConnectClient / DisconnectClient). */
void sim_rsm_clerk_link(struct sim_rsm_clerk *ck, int i, bool on);
void sim_rsm_clerk_only(struct sim_rsm_clerk *ck, const int *servers, int n);

/* Called when a call succeeds, with the server's reply (borrowed for the call). */
typedef void (*sim_rsm_done_fn)(struct sim_rsm_clerk *ck, void *arg, const uint8_t *reply,
                                size_t len);
/* Sends command cmd[0..len) (taken over: malloc'd) until a server answers OK, then calls
 * done. The clerk must be idle. From a task or the scenario body. */
void sim_rsm_call(struct sim_rsm_clerk *ck, uint8_t *cmd, size_t len, sim_rsm_done_fn done,
                  void *arg);
/* As sim_rsm_call, but gives up once every server failed once in a row (dead, cut off,
 * or not leading): done then gets reply NULL (the skeleton shardkv clerk's "no server
 * answers", after which it asks the controller again). The command may still run. */
void sim_rsm_call_cycle(struct sim_rsm_clerk *ck, uint8_t *cmd, size_t len, sim_rsm_done_fn done,
                        void *arg);
bool sim_rsm_busy(const struct sim_rsm_clerk *ck);
/* Scenario body: waits up to budget_ms for the clerk's call; false if it is still running. */
bool sim_rsm_wait(struct sim_rsm_clerk *ck, uint64_t budget_ms);

#endif
