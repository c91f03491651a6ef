/* The driver: the one piece of glue between the pure core and the outside world, shared by
 * the threaded runtime and the deterministic simulator (DESIGN decision 5).
 *
 * It owns a core, turns each batch the core hands out into calls on the ports (send,
 * persist, apply, restore) in the order craft_batch documents, holds the messages that may
 * leave only after a write is durable, and feeds completions back. It is thread-free: it
 * never blocks, sleeps or starts a thread; the caller serializes all calls on one driver.
 *
 * Re-entrancy: ports may call craft_driver_persisted() and craft_driver_snapshot_taken()
 * from inside a port call; the driver defers the work until the port returns. Ports must
 * not call any other driver function from inside a port call. */
#ifndef CRAFT_RUNTIME_DRIVER_H
#define CRAFT_RUNTIME_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct craft_driver;

struct craft_driver_ports {
    void *ctx;
    /* Sends one encoded message to node `to`. bytes is borrowed for the call. Best effort:
     * a send may be dropped; Raft retries. */
    void (*send)(void *ctx, uint64_t to, const uint8_t *bytes, size_t len);
    /* Starts the durable write of batch b (craft_batch step 2). b is borrowed for the call:
     * copy what the write needs. When the write is durable, call
     * craft_driver_persisted(driver, b->seq); writes complete in seq order. */
    void (*persist)(void *ctx, const struct craft_batch *b);
    /* Applies committed entries, in index order, to the state machine. Borrowed. */
    void (*apply)(void *ctx, const struct craft_entry *entries, size_t n);
    /* Replaces the state machine's state with the received snapshot `meta`, which the
     * persist port made durable. Called after that write completes, before any later entry
     * is applied. */
    void (*restore)(void *ctx, const struct craft_snapshot_meta *meta);
    /* Reads up to cap bytes at offset of the local snapshot `meta` into buf; sets *len and
     * *last (the chunk ends the snapshot). Returns 0 or an error (CRAFT_ENOTFOUND if that
     * snapshot is gone: the chunk is not sent). */
    int (*snapshot_read)(void *ctx, const struct craft_snapshot_meta *meta, uint64_t offset,
                         uint8_t *buf, uint32_t cap, uint32_t *len, bool *last);
    /* Optional (may be NULL). A read may be served (r->err == 0; the state machine has
     * applied through r->index: called after the batch's apply) or failed. Borrowed. */
    void (*read)(void *ctx, const struct craft_read_state *r);
    /* Optional (may be NULL). Learner `id` caught up with the leader's log. */
    void (*caught_up)(void *ctx, uint64_t id);
    /* Optional (may be NULL). The core stopped (craft_core_error: an allocation a step
     * needed failed): called once, after the call that stopped it; the node must stop
     * (destroy the driver; a restart recovers from storage). Nothing more is handed out. */
    void (*failed)(void *ctx, int err);
};

/* Creates a driver with a new core (craft_core_create with cfg, restore and now). ports is
 * copied. Returns NULL if out of memory. */
struct craft_driver *craft_driver_create(const struct craft_core_config *cfg,
                                         const struct craft_core_restore *restore,
                                         const struct craft_driver_ports *ports, uint64_t now);

/* Destroys the driver and its core; held messages are dropped (a crash loses them too). */
void craft_driver_destroy(struct craft_driver *d);

/* The core, for status queries (craft_core_status, craft_core_entry). Do not step it
 * directly: go through the driver so that its batches are processed. */
struct craft_core *craft_driver_core(struct craft_driver *d);

/* Decodes bytes and steps the message. Errors: the codec's (the message is dropped and the
 * node is unaffected) and CRAFT_EINVAL from the core. */
int craft_driver_receive(struct craft_driver *d, const uint8_t *bytes, size_t len, uint64_t now);

/* Runs due timers. Call when now >= craft_driver_next_timeout(). */
void craft_driver_tick(struct craft_driver *d, uint64_t now);
uint64_t craft_driver_next_timeout(const struct craft_driver *d);

/* Proposes a command; errors as craft_core_propose. */
int craft_driver_propose(struct craft_driver *d, const uint8_t *data, uint32_t len,
                         uint64_t now, uint64_t *index, uint64_t *term);

/* Batching: between craft_driver_hold() and craft_driver_release(), entry points step the
 * core but build no batch, so everything stepped in between (many proposals, many
 * messages) leaves in one batch: one append per peer and one durable write. release()
 * processes what accumulated. Holds do not nest. */
void craft_driver_hold(struct craft_driver *d);
void craft_driver_release(struct craft_driver *d);

/* A leader steps down (craft_core_step_down). */
void craft_driver_step_down(struct craft_driver *d, uint64_t now);

/* Starts an election at once. */
void craft_driver_campaign(struct craft_driver *d, uint64_t now);

/* The core's timers restart from now after a quiet spell (craft_core_resume). */
void craft_driver_resume(struct craft_driver *d, uint64_t now);

/* The core's configuration changes, transfer and reads (see core.h for contracts and
 * errors); each processes the resulting batches before returning. */
int craft_driver_propose_conf_change(struct craft_driver *d,
                                     const struct craft_conf_change *changes, size_t n,
                                     bool joint, uint64_t now, uint64_t *index, uint64_t *term);
int craft_driver_leave_joint(struct craft_driver *d, uint64_t now, uint64_t *index,
                             uint64_t *term);
int craft_driver_transfer_leadership(struct craft_driver *d, uint64_t target, uint64_t now);
int craft_driver_read_index(struct craft_driver *d, uint64_t ctx, uint64_t now);
int craft_driver_read_lease(struct craft_driver *d, uint64_t now, uint64_t *index);

/* Every batch through seq is durable: sends its held messages, restores a received snapshot
 * if the batch installed one, and acknowledges to the core. */
void craft_driver_persisted(struct craft_driver *d, uint64_t seq, uint64_t now);

/* The state machine captured a durable snapshot through index (see
 * craft_core_snapshot_taken). May be called from inside the apply port. */
void craft_driver_snapshot_taken(struct craft_driver *d, uint64_t index, uint64_t retain_entries);

/* Counters for tests and stats. */
struct craft_driver_stats {
    uint64_t msgs_sent, bytes_sent, msgs_received, bad_msgs_received;
    uint64_t batches, entries_persisted, entries_applied;
    uint64_t leader_changes; /* a new leader known (the core's leader changed to non-zero) */
};
void craft_driver_stats(const struct craft_driver *d, struct craft_driver_stats *stats);

#endif
