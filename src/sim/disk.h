/* One simulated node's disk: the durable state the MIT persister holds, plus a queue of
 * writes in flight.
 *
 * The persist port copies a batch into a pending write; the write becomes durable when the
 * node's owner applies it (sim_disk_pop + sim_disk_apply), in order. A crash drops every
 * pending write: unsynced data is lost, as on a real disk without fdatasync. The snapshot
 * the application takes is written synchronously, like the persister's Save. Internal to
 * src/sim. */
#ifndef CRAFT_SIM_DISK_H
#define CRAFT_SIM_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct sim_write {
    struct sim_write *next;
    uint64_t seq;
    uint64_t complete_at; /* virtual ms */
    bool has_hs;
    struct craft_hard_state hs;
    uint64_t truncate_from;
    struct craft_entry *entries; /* data points into `data` */
    size_t n_entries, cap_entries;
    uint8_t *data;
    size_t cap_data;
    bool has_snap_chunk, snap_install, snap_keep_log;
    struct craft_snapshot_meta snap_meta;
    uint64_t snap_offset;
    uint8_t *chunk;
    uint32_t chunk_len;
    size_t cap_chunk;
};

struct sim_disk {
    struct craft_hard_state hs;
    /* The log after the snapshot, contiguous: log[k].index == snap.index + 1 + k. Each entry's
     * data is its own allocation. */
    struct craft_entry *log;
    size_t n_log, cap_log;
    struct craft_snapshot_meta snap; /* index 0: none */
    uint8_t *snap_data;
    size_t snap_len;
    uint8_t *recv; /* snapshot being received */
    size_t recv_len, recv_cap;
    size_t log_bytes; /* the MIT RaftStateSize estimate, see sim_disk_log_size */
    struct sim_write *head, *tail, *free_list;
    size_t n_pending;
    uint64_t last_complete_at;
};

void sim_disk_init(struct sim_disk *disk);
void sim_disk_free(struct sim_disk *disk);

/* Copies batch b's durable work into a new pending write, queued last, completing at
 * complete_at (clamped so that writes complete in order). Returns it (owned by the disk). */
struct sim_write *sim_disk_begin(struct sim_disk *disk, const struct craft_batch *b,
                                 uint64_t complete_at);
/* The oldest pending write, or NULL. */
struct sim_write *sim_disk_head(struct sim_disk *disk);
/* Makes the oldest pending write durable and removes it from the queue. Returns it; it
 * stays readable until sim_disk_release. */
struct sim_write *sim_disk_apply_head(struct sim_disk *disk);
void sim_disk_release(struct sim_disk *disk, struct sim_write *w);
/* Recovery from a lost quorum (recover.c): hs and entry e (at the end of the log) made
 * durable at once, as the runtime writes them before the node starts. No write pending. */
void sim_disk_force(struct sim_disk *disk, const struct craft_hard_state *hs,
                    const struct craft_entry *e);
/* A crash: every pending write and the partially received snapshot are lost. */
void sim_disk_crash(struct sim_disk *disk);

/* The application's own snapshot through meta->index, written synchronously: replaces the
 * snapshot (data is copied) and drops the log through meta->index. */
void sim_disk_save_snapshot(struct sim_disk *disk, const struct craft_snapshot_meta *meta,
                            const uint8_t *data, size_t len);

/* Term of the entry at index in the durable state (snapshot boundary included); 0 and
 * *found = false if the disk does not hold it. */
uint64_t sim_disk_term_at(const struct sim_disk *disk, uint64_t index, bool *found);
uint64_t sim_disk_last_index(const struct sim_disk *disk);

/* Encoded-size estimate of the durable Raft state: 16 bytes of hard state plus 17 + len per
 * log entry. The snapshot is not counted (MIT's 2000-byte bound is on Raft state only). */
size_t sim_disk_log_size(const struct sim_disk *disk);

#endif
