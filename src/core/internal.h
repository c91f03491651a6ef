/* The core's private state and the functions its files share. Not for use outside
 * src/core: everything public is in core.h. */
#ifndef CRAFT_CORE_INTERNAL_H
#define CRAFT_CORE_INTERNAL_H

#include "base/assert.h"
#include "base/prng.h"
#include "base/trace.h"
#include "core/core.h"
#include "core/log.h"
#include "core/progress.h"

/* Entries in one append message (the codec refuses more than CRAFT_MSG_ENTRIES_MAX). */
#define CRAFT_MSG_ENTRIES_LIMIT 65536u

struct msg_queue {
    struct craft_msg *msgs;
    size_t n;
    size_t cap;
};

/* A read waiting for its index to be confirmed (leader) or applied. */
struct pending_read {
    uint64_t ctx;
    uint64_t from;     /* leader: the follower that asked (CRAFT_NONE: local) */
    uint64_t index;    /* read index; 0 until known */
    uint64_t round;    /* leader: heartbeat round that confirms it; 0 until assigned */
    uint64_t deadline; /* fails with CRAFT_ETIMEOUT after this */
    bool confirmed;    /* the index is safe: serve once applied through it */
};

#define HB_ROUNDS_KEPT 64u /* send times of recent heartbeat rounds, for the lease */

struct read_queue {
    struct pending_read *reads;
    size_t n, cap;
};

/* A batch handed out and not yet acknowledged as durable. */
struct pending_batch {
    uint64_t seq;
    uint64_t last_index; /* last entry appended by the batch, 0 if none */
    uint64_t last_term;
    uint64_t snap_index; /* snapshot installed by the batch, 0 if none */
};

struct craft_core {
    struct craft_core_config cfg;
    struct craft_prng prng;
    uint64_t now;
    /* Out of memory in a step (core.md, "Out of memory"): the node stops here. Every entry
     * point then refuses or does nothing; what the failed step half did is never handed
     * out (no batch after it). */
    int error;

    /* Persistent state (thesis figure 3.1), and what of it is durable. */
    uint64_t term;
    uint64_t vote;
    struct craft_log log;
    bool hs_dirty;          /* term or vote changed since the last batch took them */
    uint64_t hs_batch_seq;  /* the last batch that carried the hard state (0: none) */
    uint64_t persisted_seq; /* the highest batch craft_core_persisted acknowledged */

    enum craft_role role;
    uint64_t leader;
    uint64_t commit;
    uint64_t applied;   /* handed out for apply, or restored */
    uint64_t persisted; /* log prefix known durable and matching the view */
    struct craft_conf conf;
    struct craft_snapshot_meta snap; /* the latest local snapshot */

    /* Timers (absolute times in ms). */
    uint64_t election_deadline;
    uint64_t heartbeat_deadline;
    uint64_t check_quorum_deadline;
    uint64_t vote_resend_deadline; /* (pre)candidate: resend unanswered vote requests */
    uint64_t leader_contact_at; /* last message from the current leader */
    bool leader_contact;        /* leader_contact_at is meaningful */

    /* Peers: one progress per node of the configuration other than this one. */
    struct progress *prs;
    uint32_t n_prs;
    int self_vote; /* this node's own vote in the current election */
    uint64_t uncommitted_bytes;

    /* Work for the next batch. */
    struct msg_queue out;         /* may leave before this batch is durable */
    struct msg_queue out_durable; /* only after */
    bool out_handed;              /* the queues were handed out in the last batch */
    uint64_t unstable_from;       /* first log index not yet handed out for persisting */
    uint64_t truncate_from;       /* 0 or the lowest index dropped since the last batch */
    /* A snapshot being received (follower). */
    struct craft_snapshot_meta recv_snap;
    uint64_t recv_snap_offset;
    bool recv_active;
    bool chunk_pending; /* a chunk waits in chunk_buf for the next batch */
    bool chunk_install;
    bool chunk_keep_log;
    uint64_t chunk_offset;
    uint8_t *chunk_buf;
    uint32_t chunk_len;
    uint64_t install_waiting; /* an installed snapshot whose batch is not yet durable */

    /* Configuration (thesis 4.1: in force from the moment its entry is in the log). */
    uint64_t conf_index;              /* entry holding conf; 0 = snapshot or bootstrap */
    struct craft_conf bootstrap_conf; /* used when neither log nor snapshot has one */
    uint64_t term_start_index;        /* leader: index of its no-op (first entry of its term) */
    uint64_t *caught_up;              /* learners to report in the next batch */
    size_t n_caught_up, cap_caught_up;

    /* Leadership transfer (thesis 3.10). */
    uint64_t transfer_target;
    uint64_t transfer_deadline;
    bool timeout_now_sent;
    bool campaign_transfer; /* this campaign was started by TIMEOUT_NOW */
    uint64_t votes_blocked_until; /* no votes granted before this (lease safety after restart) */

    /* Reads (thesis 6.4). */
    struct read_queue reads;        /* pending */
    struct craft_read_state *out_reads;
    size_t n_out_reads, cap_out_reads;
    uint64_t hb_round;              /* last heartbeat round sent (leader) */
    bool hb_round_wanted;           /* a read waits for a round not yet sent */
    uint64_t hb_sent_at[HB_ROUNDS_KEPT];
    uint64_t lease_until;
    /* This leader sent TIMEOUT_NOW in its term: no lease until the term ends (transfer.c). */
    bool lease_forfeited;

    /* Batches handed out, awaiting craft_core_persisted. */
    uint64_t batch_seq;
    struct pending_batch *pending;
    size_t n_pending, cap_pending;
    /* Scratch for the leader's outgoing messages built in craft_core_ready. */
};

#define TRACE(core, topic, ...) \
    CRAFT_TRACE(topic, (core)->now, (core)->cfg.id, (core)->term, __VA_ARGS__)

/* core.c */
/* Starts a public call at now: the previous batch's borrowed output is released. */
void core_enter(struct craft_core *core, uint64_t now);
/* An allocation the step needed failed: the node stops (core->error). */
void core_fail(struct craft_core *core, int err);
bool core_is_voter(const struct craft_core *core, uint64_t id);
struct progress *core_progress(struct craft_core *core, uint64_t id);
void core_reset_election_timer(struct craft_core *core);
/* Queues a message; durable = it may leave only after this batch's write is durable. */
/* Whether the current term or vote is not yet durable (changed, or in a batch not yet
 * acknowledged by craft_core_persisted). */
bool core_hs_unstable(const struct craft_core *core);
/* Queues m; durable: only once the batch it goes out with is durable (which it also is while
 * the hard state is not: core_send says why). */
void core_send(struct craft_core *core, const struct craft_msg *m, bool durable);
bool core_rebuild_progress(struct craft_core *core);
/* Appends m as-is to the durable queue (ready.c moves queued messages there). */
void core_send_raw_durable(struct craft_core *core, const struct craft_msg *m);

/* election.c */
void core_become_follower(struct craft_core *core, uint64_t term, uint64_t leader);
void core_become_leader(struct craft_core *core);
void core_campaign(struct craft_core *core, bool pre_vote, bool transfer);
void core_resend_vote_requests(struct craft_core *core);
void recv_vote(struct craft_core *core, const struct craft_msg *m);
void recv_vote_resp(struct craft_core *core, const struct craft_msg *m);

/* replication.c */
/* Sends heartbeat round hb_round + 1 to every peer. */
void core_bcast_heartbeat(struct craft_core *core);
void core_maybe_commit(struct craft_core *core);
void core_build_leader_messages(struct craft_core *core);
bool core_leader_has_messages(const struct craft_core *core);
void core_tick_peers(struct craft_core *core);

/* follower.c */
/* Follows m's sender as leader of m's term; false (ignore m) if this node leads it. */
bool core_accept_leader(struct craft_core *core, const struct craft_msg *m);

/* recv_*.c */
void recv_append(struct craft_core *core, const struct craft_msg *m);
void recv_append_resp(struct craft_core *core, const struct craft_msg *m);
void recv_heartbeat(struct craft_core *core, const struct craft_msg *m);
void recv_heartbeat_resp(struct craft_core *core, const struct craft_msg *m);
void recv_snapshot(struct craft_core *core, const struct craft_msg *m);
void recv_snapshot_resp(struct craft_core *core, const struct craft_msg *m);

/* membership.c */
/* Recomputes conf from the log view (latest CONF entry), the snapshot or the bootstrap;
 * updates progress on the leader. */
void core_recompute_conf(struct craft_core *core);
/* Called after entries from `from` were appended to the log view. */
void core_note_appended(struct craft_core *core, uint64_t from);
/* The configuration in force at index (index >= snapshot index). */
void core_conf_at(const struct craft_core *core, uint64_t index, struct craft_conf *out);
/* Leader, after commit moved: step down if removed, leave joint if due. */
void core_conf_after_commit(struct craft_core *core);
bool conf_has_voter(const struct craft_conf *conf, uint64_t id);
/* A voter of its configuration, or of the previous one while the latest is uncommitted. */
bool core_can_campaign(const struct craft_core *core);
bool conf_has_node(const struct craft_conf *conf, uint64_t id);
/* Leader: a learner's progress moved; reports it once caught up (thesis 4.2.1). */
void core_learner_progress(struct craft_core *core, struct progress *pr);

/* transfer.c */
void core_transfer_tick(struct craft_core *core);
void core_transfer_progress(struct craft_core *core, struct progress *pr);
void recv_timeout_now(struct craft_core *core, const struct craft_msg *m);

/* read.c */
void recv_read_index(struct craft_core *core, const struct craft_msg *m);
void recv_read_index_resp(struct craft_core *core, const struct craft_msg *m);
/* Leader: a heartbeat answer acknowledged round `round` from pr. */
void core_reads_round_acked(struct craft_core *core);
/* Fails every pending read (leadership lost). */
void core_reads_fail_all(struct craft_core *core, int err);
/* Moves reads that may be served at `applied` (and expired ones) to the output. */
void core_reads_collect(struct craft_core *core);
/* Leader: its own-term entry committed: pending reads get their index. */
void core_reads_on_commit(struct craft_core *core);
bool core_reads_have_output(const struct craft_core *core);
uint64_t core_reads_next_deadline(const struct craft_core *core);

/* ready.c */
void core_truncate_log(struct craft_core *core, uint64_t from);
void core_commit_to(struct craft_core *core, uint64_t index);

#endif
