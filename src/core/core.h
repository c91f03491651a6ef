/* craft core: the Raft protocol as a pure, deterministic state machine.
 *
 * The core does no I/O, reads no clock, starts no thread and keeps no global state. It is
 * driven by four kinds of input, each stamped with the caller's monotonic time in
 * milliseconds (`now`, never decreasing across calls):
 *
 *   craft_core_step()       a message from a peer
 *   craft_core_tick()       time passed (call it when now >= craft_core_next_timeout())
 *   craft_core_propose()    a command from the application (leader only)
 *   craft_core_persisted()  the driver made a batch durable
 *
 * and hands back its work as data, one batch at a time (craft_core_ready()): hard state and
 * entries to persist, messages to send (before and after persistence), committed entries to
 * apply, a snapshot chunk to store or install. The shared driver (src/runtime/driver.h)
 * turns a batch into calls on the ports; the runtime and the simulator both use it.
 *
 * Threads: a core is not thread-safe. One thread at a time calls its functions.
 * Memory: every pointer passed in is borrowed for the duration of the call; the core copies
 * what it keeps. Every pointer handed out is borrowed until the next call on the same core
 * (except craft_core_status and craft_core_next_timeout, which do not invalidate).
 * Errors: the functions that can fail return 0 or a `enum craft_err` (src/base/err.h).
 * Programmer errors (calls that break a documented precondition) are assertions. */
#ifndef CRAFT_CORE_H
#define CRAFT_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "craft_base.h" /* ids, roles, configurations, peer progress */


enum craft_entry_type {
    CRAFT_ENTRY_NORMAL = 1, /* an application command */
    CRAFT_ENTRY_NOOP = 2,   /* the entry a new leader appends at the start of its term */
    CRAFT_ENTRY_CONF = 3,   /* a configuration (payload: craft_conf_encode) */
};

struct craft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type; /* enum craft_entry_type */
    uint32_t len;
    const uint8_t *data; /* len bytes; NULL when len is 0 */
};


/* ---- the configuration encoding (the payload of CONF entries; also in snapshot metadata) ----
 * Layout (little-endian): u8 n_voters, u8 n_voters_outgoing, u8 n_learners, u8
 * n_learners_next, then the u64 ids list by list; at most 4 + 4 * 8 * CRAFT_CONF_NODES_MAX
 * bytes. */
/* True if conf follows the rules of struct craft_conf. */
bool craft_conf_valid(const struct craft_conf *conf);
size_t craft_conf_encoded_size(const struct craft_conf *conf);
/* Writes craft_conf_encoded_size(conf) bytes to buf and returns that count. Asserts that conf
 * follows the rules of struct craft_conf (the ones craft_conf_decode checks below). */
size_t craft_conf_encode(const struct craft_conf *conf, uint8_t *buf);
/* Decodes exactly len bytes into *out (a copy: nothing points into buf). buf may be NULL if
 * len is 0. Errors: CRAFT_EMALFORMED (truncated, trailing bytes, a count above
 * CRAFT_CONF_NODES_MAX, more than CRAFT_CONF_NODES_MAX distinct nodes, zero or duplicate ids
 * in a list, a learner that is also a voter, a learners_next id that is not an outgoing voter
 * or is also a voter or a learner); *out is unspecified on error. */
int craft_conf_decode(const uint8_t *buf, size_t len, struct craft_conf *out);

/* What must survive a crash besides the log. */
struct craft_hard_state {
    uint64_t term;
    uint64_t vote; /* CRAFT_NONE if no vote in `term` */
};

/* Describes a snapshot: the state through `index`, whose entry had `term`, and the
 * configuration in force at `index`. */
struct craft_snapshot_meta {
    uint64_t index;
    uint64_t term;
    struct craft_conf conf;
};

enum craft_msg_type {
    CRAFT_MSG_APPEND = 1,      /* entries (maybe none) after (log_index, log_term) */
    CRAFT_MSG_APPEND_RESP,     /* success: index = last matching index; reject: hints */
    CRAFT_MSG_HEARTBEAT,       /* leader liveness and commit; ctx is a read round id */
    CRAFT_MSG_HEARTBEAT_RESP,
    CRAFT_MSG_VOTE,            /* log_index/log_term: candidate's last entry */
    CRAFT_MSG_VOTE_RESP,       /* reject = !granted */
    CRAFT_MSG_PREVOTE,         /* term is the term the sender would campaign in */
    CRAFT_MSG_PREVOTE_RESP,
    CRAFT_MSG_SNAPSHOT,        /* one chunk of snapshot `snap` at `offset`; `last` flags the end */
    CRAFT_MSG_SNAPSHOT_RESP,   /* offset = next offset wanted; index = snap index once installed */
    CRAFT_MSG_TIMEOUT_NOW,     /* leadership transfer: campaign at once */
    CRAFT_MSG_READ_INDEX,      /* follower read: asks the leader for a read index */
    CRAFT_MSG_READ_INDEX_RESP,
    CRAFT_MSG_TYPE_COUNT_
};
const char *craft_msg_type_name(enum craft_msg_type type);

/* Messages are requests (counted as RPCs) or responses. */
bool craft_msg_type_is_response(enum craft_msg_type type);

/* One message. Fields not used by a type are zero. */
struct craft_msg {
    uint8_t type; /* enum craft_msg_type */
    bool reject;
    bool last;     /* SNAPSHOT: final chunk */
    bool transfer; /* VOTE: campaign of a leadership transfer (ignore leader stickiness) */
    uint64_t from, to, term;
    uint64_t log_index; /* APPEND: prev index; VOTE: last index */
    uint64_t log_term;  /* APPEND: prev term; VOTE: last term */
    uint64_t commit;
    uint64_t index;         /* APPEND_RESP: match or rejected index; SNAPSHOT_RESP; READ_INDEX_RESP */
    uint64_t reject_hint;   /* APPEND_RESP reject: follower's guess of the conflict index */
    uint64_t reject_term;   /* APPEND_RESP reject: term at reject_hint (0 if none) */
    uint64_t ctx;           /* HEARTBEAT(_RESP), READ_INDEX(_RESP): request id */
    uint32_t n_entries;
    const struct craft_entry *entries;
    /* SNAPSHOT */
    struct craft_snapshot_meta snap;
    uint64_t offset;
    uint32_t chunk_len;
    const uint8_t *chunk;
};

struct craft_core_config {
    uint64_t id;                    /* this node's id, non-zero */
    uint64_t seed;                  /* seeds the election-timeout PRNG */
    uint32_t heartbeat_ms;          /* leader heartbeat interval (default 100: 10 per second) */
    uint32_t election_timeout_ms;   /* base; each timeout is uniform in [base, 2*base) (default 1000) */
    bool pre_vote;                  /* default true */
    bool check_quorum;              /* default true */
    uint32_t inflight_msgs_max;     /* unacknowledged appends per peer (default 64) */
    uint64_t inflight_bytes_max;    /* unacknowledged entry bytes per peer (default 16 MiB) */
    uint64_t append_bytes_max;      /* entry bytes per append message (default 1 MiB) */
    uint64_t uncommitted_bytes_max; /* leader: uncommitted entry bytes (default 64 MiB) */
    uint32_t snapshot_chunk_bytes_max; /* default 1 MiB; the driver reads chunks of this size */
    uint64_t entry_bytes_max;       /* one command's size limit (default 1 MiB) */
    bool auto_leave_joint;          /* leader leaves a joint configuration once it commits (default true) */
    /* Lease reads: a leader's lease lasts election_timeout_ms - clock_drift_bound_ms from the
     * sending of a heartbeat round that a quorum acknowledged. The bound must cover how far
     * the clocks' rates may disagree over an election timeout (default 100 ms: 5% of the
     * longest default timeout). Requires check_quorum. */
    uint32_t clock_drift_bound_ms;
    uint32_t read_timeout_ms;       /* a pending read fails with CRAFT_ETIMEOUT after this (default: election timeout) */
};

/* Fills cfg with the defaults above for node `id`. */
void craft_core_config_default(struct craft_core_config *cfg, uint64_t id);
/* Returns CRAFT_OK or CRAFT_EINVAL, naming the bad field in *field if field is not NULL. */
int craft_core_config_validate(const struct craft_core_config *cfg, const char **field);

/* What a node starts from: its durable state as the driver read it back. */
struct craft_core_restore {
    struct craft_hard_state hs;
    struct craft_snapshot_meta snap; /* index 0 if there is no snapshot */
    const struct craft_entry *entries; /* the log after snap.index, contiguous; borrowed */
    size_t n_entries;
    /* The configuration when neither the snapshot nor the entries carry one (bootstrap). */
    struct craft_conf bootstrap_conf;
};

struct craft_core;

/* Recovery from a lost quorum (recover.c): the entry that forces configuration conf (a
 * simple one: voters and learners, at least one voter, no joint part) onto a node whose
 * storage holds r, and the hard state to persist with it: the entry goes at the end of the
 * log (after r's last entry, or its snapshot) with a term above r's hard state, above every
 * term in r and above min_term; the hard state moves to that term with no vote. The caller
 * persists both (hard state first), then creates the core from a restore that includes the
 * entry. Run it on one node only. entry->data points to buf (cap bytes; room for
 * craft_conf_encoded_size(conf)). Errors: CRAFT_EINVAL (conf not simple and valid, no voter,
 * buf too small, terms exhausted). */
int craft_core_force_conf(const struct craft_core_restore *r, const struct craft_conf *conf,
                          uint64_t min_term, uint8_t *buf, size_t cap, struct craft_entry *entry,
                          struct craft_hard_state *hs);

/* Creates a core. cfg must validate. Returns NULL only if out of memory. The state machine
 * is assumed to hold the snapshot's state (applied = snap.index). */
struct craft_core *craft_core_create(const struct craft_core_config *cfg,
                                     const struct craft_core_restore *restore, uint64_t now);
void craft_core_destroy(struct craft_core *core);

/* Handles the timers that are due at `now`: election, heartbeat, check-quorum. */
void craft_core_tick(struct craft_core *core, uint64_t now);

/* The earliest time at which craft_core_tick has work to do. */
uint64_t craft_core_next_timeout(const struct craft_core *core);

/* Steps a message. msg->to must be this node. Errors: CRAFT_EUNKNOWNPEER is never returned
 * for a message from a node outside the configuration (such messages are answered by the
 * rules of Raft); CRAFT_EINVAL if the message is inconsistent (for example entries that are
 * not contiguous from log_index + 1). Either way the core's state is unchanged by a bad
 * message. */
int craft_core_step(struct craft_core *core, const struct craft_msg *msg, uint64_t now);

/* Proposes a command. On success, *index and *term tell where it will be committed if it is
 * (the entry may still be lost to a leader change: the application then sees a different
 * entry, or term, at that index). Errors: CRAFT_ENOTLEADER, CRAFT_ETRANSFER, CRAFT_ETOOBIG
 * (len > entry_bytes_max), CRAFT_EBUSY (uncommitted_bytes_max reached). */
int craft_core_propose(struct craft_core *core, const uint8_t *data, uint32_t len, uint64_t now,
                       uint64_t *index, uint64_t *term);

/* Starts an election now (tests and leadership transfer). No-op on a leader or learner. */
void craft_core_campaign(struct craft_core *core, uint64_t now);

/* A leader steps down to follower in its term, knowing no leader (the runtime does this
 * when its disk stalls: a leader that cannot persist must let another lead). Its followers
 * elect a new leader once their election timers run out. No-op on other roles. */
void craft_core_step_down(struct craft_core *core, uint64_t now);

/* The caller stopped ticking the core for a while (a quiesced group: the host ticks no
 * group whose replicas agreed that nothing is in flight) and ticks it again from now: its
 * timers restart as if they had been set now. A leader heartbeats at once and gives its
 * followers a whole election timeout to answer before check-quorum counts them; a
 * follower or learner starts a new election timeout (a quiet leader is no dead one). */
void craft_core_resume(struct craft_core *core, uint64_t now);

/* ---- configuration changes (thesis chapter 4) ----
 * A configuration takes effect as soon as its entry is in the log (appended by the leader,
 * received by a follower), not when it commits; truncating the entry reverts it. */
enum craft_conf_change_type {
    CRAFT_CONF_ADD_VOTER = 1, /* add a new voter, or promote a learner */
    CRAFT_CONF_ADD_LEARNER,   /* add a new learner, or demote a voter */
    CRAFT_CONF_REMOVE,        /* remove a voter or learner */
};

struct craft_conf_change {
    uint8_t type; /* enum craft_conf_change_type */
    uint64_t id;
};

/* Proposes a configuration change. With n == 1 and !joint it is a single-server change
 * (thesis 4.1: the old and new majorities overlap); otherwise one entry enters the joint
 * configuration C(old,new) for all the changes at once (thesis 4.3), which is left again
 * automatically once committed (auto_leave_joint) or by craft_core_leave_joint(). A leader
 * removed by the change keeps leading until the change commits, then steps down.
 * Errors: CRAFT_ENOTLEADER, CRAFT_ETRANSFER, CRAFT_ECONFCHANGE (a configuration entry is not
 * yet committed, or the configuration is joint), CRAFT_EINVAL (n == 0, an id listed twice,
 * a change that changes nothing, removing an unknown node, a result with no voter, or more
 * than CRAFT_CONF_NODES_MAX nodes), CRAFT_EBUSY (as craft_core_propose). */
int craft_core_propose_conf_change(struct craft_core *core, const struct craft_conf_change *changes,
                                   size_t n, bool joint, uint64_t now, uint64_t *index,
                                   uint64_t *term);

/* Proposes the entry that leaves the joint configuration: C(new), with learners_next turned
 * into learners. Errors: CRAFT_ENOTLEADER, CRAFT_ETRANSFER, CRAFT_ECONFCHANGE (not joint,
 * or the joint entry or a leave entry is not yet committed). */
int craft_core_leave_joint(struct craft_core *core, uint64_t now, uint64_t *index, uint64_t *term);

/* ---- leadership transfer (thesis 3.10) ----
 * Stops accepting proposals, brings the target up to date, then sends it TIMEOUT_NOW; the
 * target campaigns at once, without pre-vote. Aborted if no new leader emerges within an
 * election timeout (proposals are accepted again). target CRAFT_NONE picks the voter with
 * the highest match index. Errors: CRAFT_ENOTLEADER, CRAFT_ETRANSFER (one is in progress),
 * CRAFT_EUNKNOWNPEER (not in the configuration), CRAFT_EINVAL (a learner, or this node, or
 * no other voter). */
int craft_core_transfer_leadership(struct craft_core *core, uint64_t target, uint64_t now);

/* ---- linearizable reads (thesis 6.4) ----
 * A read is identified by the caller's non-zero ctx. Its outcome arrives in a later batch
 * as a craft_read_state: once err == 0, the state machine reflects every write committed
 * before the read began as soon as it has applied through `index`, and the core hands the
 * read out only when its applied index (craft_batch.committed included) has reached
 * `index`: serve it after applying that batch's committed entries. */
struct craft_read_state {
    uint64_t ctx;
    uint64_t index;
    int err; /* 0, CRAFT_ENOTLEADER (leadership lost, or no leader known), CRAFT_ETIMEOUT */
};

/* ReadIndex: on the leader, records the commit index and confirms leadership with one
 * heartbeat round shared by every read waiting at that moment (a new leader first commits
 * an entry of its term). On a follower (follower read), asks the leader for a read index.
 * Errors: CRAFT_ENOTLEADER (a follower that knows no leader; a learner may read), CRAFT_EBUSY
 * (too many pending reads), CRAFT_EINVAL (ctx 0). */
int craft_core_read_index(struct craft_core *core, uint64_t ctx, uint64_t now);

/* Lease read (thesis 6.4.1), leader only, with check_quorum: if the lease holds at now, sets
 * *index to the commit index (serve once applied through it) and returns 0. Errors:
 * CRAFT_ENOTLEADER, CRAFT_ESTALE (no valid lease: use craft_core_read_index), CRAFT_EINVAL
 * (check_quorum is off). */
int craft_core_read_lease(struct craft_core *core, uint64_t now, uint64_t *index);

/* A batch of work. Process it in this order:
 *   1. send msgs (they do not depend on this batch's persistence);
 *   2. persist, in one ordered durable write: hard state (if has_hard_state), then drop the
 *      log from truncate_from (if non-zero), then the snapshot chunk (write snap_chunk at
 *      snap_offset into the snapshot being received; if snap_install, the received
 *      snapshot is complete: make it durable and, if snap_keep_log, drop the log through
 *      snap_meta.index, otherwise drop the whole log), then append entries (after an
 *      install they start right after snap_meta.index);
 *   3. once that write is durable: if snap_install, restore the state machine from the
 *      snapshot; send msgs_durable; then call craft_core_persisted(seq);
 *   4. apply committed entries in order (they are durable already; may run in parallel
 *      with 2 and 3).
 * Batches must be persisted in seq order; acknowledging seq acknowledges all below it. */
struct craft_batch {
    uint64_t seq; /* 1, 2, 3, ... */
    bool has_hard_state;
    struct craft_hard_state hs;
    uint64_t truncate_from; /* 0 = none */
    const struct craft_entry *entries;
    size_t n_entries;
    /* Snapshot being received. */
    bool has_snap_chunk;
    bool snap_install;
    bool snap_keep_log; /* the log already held the snapshot's last entry: keep what follows */
    struct craft_snapshot_meta snap_meta;
    uint64_t snap_offset;
    const uint8_t *snap_chunk;
    uint32_t snap_chunk_len;
    const struct craft_msg *msgs;
    size_t n_msgs;
    const struct craft_msg *msgs_durable;
    size_t n_msgs_durable;
    const struct craft_entry *committed;
    size_t n_committed;
    /* 5. reads that may be served now (after applying `committed`), or that failed. */
    const struct craft_read_state *reads;
    size_t n_reads;
    /* Learners that caught up with the leader (thesis 4.2.1: a round of replication took
     * less than an election timeout); each reported once, for automatic promotion. */
    const uint64_t *caught_up;
    size_t n_caught_up;
};

/* True if craft_core_ready would return a non-empty batch. */
bool craft_core_has_ready(const struct craft_core *core);

/* Fills *batch with the pending work and marks it handed out. The pointers in *batch stay
 * valid until the next call on core. Returns false (and leaves an empty batch) if there is
 * no work. A batch with nothing to persist still has a seq and must be acknowledged. */
bool craft_core_ready(struct craft_core *core, struct craft_batch *batch);

/* The driver made every batch up to and including seq durable. */
void craft_core_persisted(struct craft_core *core, uint64_t seq, uint64_t now);

/* The application captured its state through `index` (index <= applied) into a durable
 * snapshot. The core records the snapshot's metadata (for sending to followers that are
 * behind) and compacts its log, keeping `retain_entries` entries before index. Returns
 * CRAFT_ESTALE if index is not above the current snapshot index. */
int craft_core_snapshot_taken(struct craft_core *core, uint64_t index, uint64_t retain_entries);

/* The leader's snapshot chunk messages carry no data: the driver reads up to
 * snapshot_chunk_bytes_max bytes at msg->offset of snapshot msg->snap from its snapshot
 * store, and sets chunk, chunk_len and last before encoding. */

struct craft_core_status {
    uint64_t id;
    enum craft_role role;
    uint64_t term;
    uint64_t vote;
    uint64_t leader; /* CRAFT_NONE if unknown */
    uint64_t commit;
    uint64_t applied;   /* highest index handed out for apply (or restored from a snapshot) */
    uint64_t persisted; /* highest log index known durable */
    uint64_t first_index, last_index, last_term;
    uint64_t snap_index, snap_term;
    struct craft_conf conf;
    uint64_t conf_index;       /* index of the entry that holds conf (0: snapshot or bootstrap) */
    uint64_t transfer_target;  /* leadership transfer in progress, or CRAFT_NONE */
    uint64_t lease_until;      /* leader: end of its read lease (0 if none) */
    uint32_t pending_reads;
};


/* Fills up to cap peers (leader only; returns 0 on other roles) and returns how many. */
size_t craft_core_peers(const struct craft_core *core, struct craft_peer_status *peers, size_t cap);

void craft_core_status(const struct craft_core *core, struct craft_core_status *status);
/* CRAFT_OK, or why the node stopped (CRAFT_ENOMEM: an allocation a step needed failed;
 * docs/design/core.md, "Out of memory"). Once stopped, every call refuses with that error or
 * does nothing, craft_core_ready hands out nothing more, the status, role and leader say
 * follower without a leader and the next timeout is never: the driver stops the node (its
 * durable state is as of the last batch persisted; a restart recovers from it). */
int craft_core_error(const struct craft_core *core);
/* The leader this node knows of (CRAFT_NONE: none), without a copy of the status. */
uint64_t craft_core_leader(const struct craft_core *core);
/* The role alone (no copy of the configuration: for per-batch decisions). */
enum craft_role craft_core_role(const struct craft_core *core);

/* Returns the entry at index if the core's log view holds it (snapshot < index <= last),
 * else NULL. Borrowed until the next call on core. */
const struct craft_entry *craft_core_entry(const struct craft_core *core, uint64_t index);

#endif
