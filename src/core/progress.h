/* Per-peer replication progress on the leader, and its inflight window.
 *
 * States (as etcd-raft names them):
 *   PROBE      the leader does not know where the follower's log matches; at most one
 *              append is outstanding until it hears back (or a heartbeat answer arrives).
 *   REPLICATE  the follower is caught up to `match`; appends are pipelined optimistically
 *              up to the inflight window (count and bytes).
 *   SNAPSHOT   the follower needs the leader's snapshot; one chunk is outstanding at a time.
 *
 * Every state transition of a progress lives in progress.c and nowhere else. */
#ifndef CRAFT_CORE_PROGRESS_H
#define CRAFT_CORE_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

enum progress_state {
    PROGRESS_PROBE = 1,
    PROGRESS_REPLICATE,
    PROGRESS_SNAPSHOT,
};

struct inflight {
    uint64_t last_index; /* last entry index of the message */
    uint64_t bytes;      /* payload bytes of the message */
};

struct progress {
    uint64_t id;
    bool is_learner;
    enum progress_state state;
    uint64_t match;
    uint64_t next;
    bool probe_sent;       /* PROBE: an append is outstanding */
    bool recent_active;    /* heard from since the last check-quorum round */
    uint64_t window_moved_at; /* last ack that moved match, or first send into an empty window */
    uint64_t commit_sent;  /* highest commit index this peer was told */
    int vote;              /* -1 none, 0 rejected, 1 granted (elections) */
    /* SNAPSHOT state */
    uint64_t snap_index;   /* the snapshot being sent */
    uint64_t snap_offset;  /* next byte the follower wants */
    bool snap_chunk_inflight;
    uint64_t snap_sent_at;
    /* Heartbeat rounds (reads and lease): the latest round this peer answered. */
    uint64_t acked_round;
    /* Learner catch-up rounds (thesis 4.2.1). */
    uint64_t round_end;
    uint64_t round_started_at;
    bool caught_up_reported;
    /* Inflight window: a ring of the appends sent in REPLICATE state. */
    struct inflight *ring;
    uint32_t ring_cap; /* inflight_msgs_max */
    uint32_t ring_start;
    uint32_t ring_count;
    uint64_t ring_bytes;
};

/* Initializes pr for peer id with a ring of ring_cap slots. Returns false if out of memory. */
bool progress_init(struct progress *pr, uint64_t id, bool is_learner, uint32_t ring_cap);
void progress_free(struct progress *pr);

/* Leader start: match 0, next = next_index, PROBE. */
void progress_reset(struct progress *pr, uint64_t next_index, uint64_t now);

void progress_become_probe(struct progress *pr);
void progress_become_replicate(struct progress *pr);
void progress_become_snapshot(struct progress *pr, uint64_t snap_index);

/* The follower has the log through index. Returns true if match moved forward. */
bool progress_maybe_update(struct progress *pr, uint64_t index, uint64_t now);

/* The follower rejected an append at `rejected`; next_guess is the leader's computed resume
 * point (from the conflict hints). Returns false if the rejection is stale. */
bool progress_maybe_decrease(struct progress *pr, uint64_t rejected, uint64_t next_guess);

/* Records an append sent with entries through last_index (REPLICATE: into the window;
 * PROBE: marks probe_sent). Entries-less messages in REPLICATE take no window slot. */
void progress_sent_entries(struct progress *pr, uint64_t last_index, uint64_t bytes,
                           uint32_t n_entries, uint64_t now);

/* True if no append may be sent now (window full, or a probe outstanding, or snapshot). */
bool progress_is_paused(const struct progress *pr, uint64_t inflight_bytes_max);

/* Frees the window slots of messages through index. */
void progress_free_inflights_to(struct progress *pr, uint64_t index);

#endif
