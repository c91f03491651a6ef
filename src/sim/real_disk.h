/* The simulator's optional real persistence (opts.real_storage): each node keeps its state
 * in the production stores (the WAL, the stable store for the hard state, the file snapshot
 * store) over its own faulty in-memory filesystem (fs_mem), next to the sim_disk model.
 *
 * Durability model: a batch's bytes go through the stores when the persist port is called.
 * The hard state and snapshots are made durable then (the stores sync themselves); the WAL's
 * final fdatasync of a batch is deferred until the write's simulated completion, when the
 * driver is told (sim_real_disk_sync). So a crash in between loses the unsynced WAL tail,
 * possibly torn. Deferral keeps the on-disk order: at most one file has a deferred sync, and
 * any other mutation first makes it durable, so what survives is a prefix of the issued
 * writes. The sim_disk model (what was acknowledged) is rebuilt from the stores at each
 * start, after checking that they hold at least what was acknowledged. Internal to src/sim. */
#ifndef CRAFT_SIM_REAL_DISK_H
#define CRAFT_SIM_REAL_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct sim_node;

/* Creates node's filesystem (seeded from the run's seed and the node). */
void sim_real_disk_init(struct sim_node *node);
/* Closes the stores and frees the filesystem (NULL-safe on a node without one). */
void sim_real_disk_free(struct sim_node *node);
/* Opens the stores, recovers them, and replaces node->disk with what they hold. Fails the
 * run if they hold less than the acknowledged state or do not recover. */
void sim_real_disk_open(struct sim_node *node);
/* Writes batch b's durable work through the stores (the WAL sync deferred). */
void sim_real_disk_persist(struct sim_node *node, const struct craft_batch *b);
/* Makes every deferred write durable (at a write's completion). */
void sim_real_disk_sync(struct sim_node *node);
/* The application's snapshot: committed to the snapshot store, then the WAL compacted. */
void sim_real_disk_snapshot(struct sim_node *node, const struct craft_snapshot_meta *meta,
                            const uint8_t *data, size_t len);
/* A power loss: the stores are closed and the filesystem loses what was not synced (torn
 * tails drawn from the seed). */
void sim_real_disk_crash(struct sim_node *node);

#endif
