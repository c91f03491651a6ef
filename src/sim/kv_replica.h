/* One replica's craftkv state machine on the simulator (over the in-memory store), shared by
 * the kvraft service (kv_service.c) and the shard groups (shardkv_service.c): opened fresh
 * at each start (the simulator keeps no application state across a crash: the node
 * rebuilds it from its snapshot and log), commands applied, snapshots taken and restored. */
#ifndef CRAFT_SIM_KV_REPLICA_H
#define CRAFT_SIM_KV_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "kv/kv_sm.h"

struct sim_kv_replica {
    uint64_t gid; /* shard group (0: a plain state machine) */
    struct craft_kv_store *store;
    struct craft_kv_sm *sm;
    uint8_t *snap; /* the last snapshot taken */
    size_t snap_len, snap_cap;
};

/* A fresh, empty state machine (the old one, if any, closed). */
void sim_kv_replica_open(struct sim_kv_replica *r, uint64_t gid);
/* Closes the state machine and frees the snapshot buffer. */
void sim_kv_replica_free(struct sim_kv_replica *r);
/* craft_kv_sm_apply of a log entry; *res (may be NULL: a replayed entry) is the caller's. */
int sim_kv_replica_apply(struct sim_kv_replica *r, uint64_t index, const uint8_t *data,
                         size_t len, struct craft_kv_result **res);
/* The state as a snapshot: borrowed until the next call. */
const uint8_t *sim_kv_replica_snapshot(struct sim_kv_replica *r, size_t *len);
/* craft_kv_sm_restore from blob. */
int sim_kv_replica_restore(struct sim_kv_replica *r, const uint8_t *blob, size_t len);

#endif
