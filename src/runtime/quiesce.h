/* Quiescence of one replica of a group (docs/design/multiraft.md, "Coalesced heartbeats and
 * quiescence"): the rules, thread-free, over the replica's driver. The runtime's host
 * (loop_quiesce.c) and the simulator run the same code; each keeps one struct
 * craft_quiesce per replica, says what is in flight outside the core (`busy_here`), sends
 * the host messages through `io`, and does not tick the driver while `quiesced`.
 *
 * Safety never rests on this: Raft's timers only decide when elections start (thesis
 * 3.4), and the lease rests on acknowledged heartbeat rounds, which a quiet leader stops
 * getting, so its lease runs out as it would without quiescence. What the rules keep is
 * liveness: a quiesced replica wakes for any work, and tells the others when the work is
 * its own (a leader then heartbeats again, so no follower times out alone); a follower
 * that refuses to quiesce says so; a replica that leaves or fails wakes the others; and
 * (the caller's part) the followers of a leader whose process went silent wake and elect. */
#ifndef CRAFT_RUNTIME_QUIESCE_H
#define CRAFT_RUNTIME_QUIESCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/driver.h"
#include "runtime/host_msg.h"

/* A leader quiesces its group after this many heartbeat intervals with nothing in flight:
 * the heartbeats of that time carried the final commit index to every follower, so they
 * agree when they are told. */
#define CRAFT_QUIESCE_HEARTBEATS 3

struct craft_quiesce {
    bool quiesced;
    /* A leader's quiet spell: since when (0: not quiet), in which term, at which last
     * index; a follower's quiet term. */
    uint64_t quiet_since, quiet_term, quiet_index;
};

struct craft_quiesce_io {
    void *ctx;
    uint64_t self; /* this replica's node id */
    /* Sends host message m (QUIESCE or WAKE) about this group to replica `to`. */
    void (*send)(void *ctx, uint64_t to, const struct host_msg *m);
};

/* Work for the replica (tell_others: work of this process, not a message of another
 * replica, whose sender is awake): if it was quiesced its timers restart from now
 * (craft_driver_resume) and (tell_others) the other members get WAKE. Returns whether it
 * was quiesced. */
bool craft_quiesce_wake(struct craft_quiesce *q, struct craft_driver *d,
                        const struct craft_quiesce_io *io, bool tell_others, uint64_t now);

/* After a step of a leader: with nothing in flight (in the core, and busy_here false) for
 * CRAFT_QUIESCE_HEARTBEATS heartbeat intervals, it quiesces and sends QUIESCE to every
 * member. Returns whether it quiesced now. */
bool craft_quiesce_check(struct craft_quiesce *q, struct craft_driver *d,
                         const struct craft_quiesce_io *io, bool busy_here,
                         uint32_t heartbeat_ms, uint64_t now);

/* A host message about the group from replica `from`: WAKE wakes it (and a leader's quiet
 * spell starts over); QUIESCE quiesces a follower that agrees (same term and leader, the
 * leader's whole log held and committed, nothing in flight), and one that does not
 * answers WAKE (if enabled: a replica with quiescence off never quiesces). Returns +1 if
 * it quiesced, -1 if it woke, 0 otherwise. */
int craft_quiesce_recv(struct craft_quiesce *q, struct craft_driver *d,
                       const struct craft_quiesce_io *io, uint64_t from,
                       const struct host_msg *m, bool busy_here, bool enabled, uint64_t now);

/* Whether Raft message bytes wake the replica: it is quiesced, and the message is not an
 * answer to its last heartbeats (they arrive after a leader quiesced). */
bool craft_quiesce_msg_wakes(const struct craft_quiesce *q, const uint8_t *bytes, size_t len);

/* After stepping a message into a quiesced replica: if its term or role changed, it wakes.
 * Returns whether it woke. */
bool craft_quiesce_settle(struct craft_quiesce *q, struct craft_driver *d,
                          const struct craft_quiesce_io *io, uint64_t now);

/* The replica leaves (removal, failure): if it was quiesced, the other members get WAKE
 * (they may wait for it, their leader). Returns whether it was quiesced. */
bool craft_quiesce_leave(struct craft_quiesce *q, struct craft_driver *d,
                         const struct craft_quiesce_io *io);

#endif
