/* The leader's side of log replication (thesis 3.5, 10.2.1 batching and pipelining):
 * building appends, heartbeats and snapshot chunks per peer, handling their answers,
 * and advancing the commit index through the quorum module. */
#include "core/internal.h"
#include "core/quorum.h"

static uint64_t match_of(void *ctx, uint64_t id, bool *found)
{
    struct craft_core *core = ctx;
    if (id == core->cfg.id) {
        /* The leader counts itself only for what is durable on its own disk. */
        *found = true;
        return core->persisted;
    }
    struct progress *pr = core_progress(core, id);
    *found = pr != NULL;
    return pr != NULL ? pr->match : 0;
}

void core_maybe_commit(struct craft_core *core)
{
    CRAFT_ASSERT(core->role == CRAFT_LEADER);
    uint64_t index = craft_quorum_committed(&core->conf, match_of, core);
    if (index <= core->commit) {
        return;
    }
    /* Thesis 3.6.2 (figure 3.7): only entries of the current term are committed by
     * counting replicas; earlier ones follow by the log matching property. */
    if (log_term_or_zero(&core->log, index) != core->term) {
        return;
    }
    uint64_t bytes = log_bytes(&core->log, core->commit + 1, index);
    core->uncommitted_bytes = core->uncommitted_bytes > bytes ? core->uncommitted_bytes - bytes : 0;
    core_commit_to(core, index);
    core_reads_on_commit(core);
    core_conf_after_commit(core);
}

void core_bcast_heartbeat(struct craft_core *core)
{
    uint64_t ctx = ++core->hb_round;
    core->hb_sent_at[ctx % HB_ROUNDS_KEPT] = core->now;
    core->hb_round_wanted = false;
    for (uint32_t i = 0; i < core->n_prs; i++) {
        struct progress *pr = &core->prs[i];
        struct craft_msg m = {
            .type = CRAFT_MSG_HEARTBEAT,
            .to = pr->id,
            /* The follower may not have the leader's whole committed prefix yet. */
            .commit = pr->match < core->commit ? pr->match : core->commit,
            .ctx = ctx,
        };
        core_send(core, &m, false);
    }
    core_reads_round_acked(core); /* a cluster of one confirms at once */
}

/* Run at each heartbeat: recover from lost appends and lost snapshot chunks. */
void core_tick_peers(struct craft_core *core)
{
    uint64_t stall = 3 * (uint64_t)core->cfg.heartbeat_ms;
    for (uint32_t i = 0; i < core->n_prs; i++) {
        struct progress *pr = &core->prs[i];
        switch (pr->state) {
        case PROGRESS_REPLICATE:
            if (pr->ring_count > 0 && core->now - pr->window_moved_at >= stall) {
                TRACE(core, CRAFT_T_APPEND, "peer %llu stalled at %llu: probe",
                      (unsigned long long)pr->id, (unsigned long long)pr->match);
                progress_become_probe(pr);
                pr->window_moved_at = core->now;
            }
            break;
        case PROGRESS_SNAPSHOT:
            if (pr->snap_chunk_inflight && core->now - pr->snap_sent_at >= stall) {
                pr->snap_chunk_inflight = false;
                if (core->snap.index != pr->snap_index) {
                    progress_become_snapshot(pr, core->snap.index);
                }
            }
            break;
        case PROGRESS_PROBE:
            break;
        }
    }
}

/* Does the follower need an empty append just to learn the commit index? Only when no
 * append is in flight: an outstanding append's answer will move commit again, and the next
 * append carries it. Under load commit rides on appends; at the end of a burst one empty
 * append per peer tells the last commit index (heartbeats would, within heartbeat_ms). */
static bool wants_commit_update(const struct craft_core *core, const struct progress *pr)
{
    uint64_t useful = pr->match < core->commit ? pr->match : core->commit;
    return pr->state == PROGRESS_REPLICATE && pr->ring_count == 0 && useful > pr->commit_sent;
}

static bool peer_wants_send(const struct craft_core *core, const struct progress *pr)
{
    if (pr->state == PROGRESS_SNAPSHOT) {
        return !pr->snap_chunk_inflight;
    }
    if (pr->next - 1 < core->log.snap_index) {
        return true; /* needs the snapshot */
    }
    if (progress_is_paused(pr, core->cfg.inflight_bytes_max)) {
        return false;
    }
    uint64_t last = log_last_index(&core->log);
    /* A probe goes out, empty if need be, until the peer is known to match (a new peer
     * added after the leader's last entry has nothing "new" to receive, yet must be found). */
    bool probing = pr->state == PROGRESS_PROBE && pr->match < last;
    return pr->next <= last || probing || wants_commit_update(core, pr);
}

bool core_leader_has_messages(const struct craft_core *core)
{
    if (core->role != CRAFT_LEADER) {
        return false;
    }
    for (uint32_t i = 0; i < core->n_prs; i++) {
        if (peer_wants_send(core, &core->prs[i])) {
            return true;
        }
    }
    return false;
}

static void send_snapshot_chunk(struct craft_core *core, struct progress *pr)
{
    if (core->snap.index != pr->snap_index) {
        /* A newer snapshot replaced the one being sent (and may have deleted it): start
         * the transfer over with the newer one. */
        progress_become_snapshot(pr, core->snap.index);
    }
    struct craft_msg m = {
        .type = CRAFT_MSG_SNAPSHOT,
        .to = pr->id,
        .snap = core->snap,
        .offset = pr->snap_offset,
    };
    pr->snap_chunk_inflight = true;
    pr->snap_sent_at = core->now;
    TRACE(core, CRAFT_T_SNAP, "send snapshot %llu to %llu at offset %llu",
          (unsigned long long)core->snap.index, (unsigned long long)pr->id,
          (unsigned long long)pr->snap_offset);
    core_send(core, &m, false);
}

/* One append to pr: entries from next, bounded by append_bytes_max (at least one entry). */
static void send_append(struct craft_core *core, struct progress *pr)
{
    const struct craft_log *log = &core->log;
    uint64_t prev = pr->next - 1;
    size_t avail = 0;
    const struct craft_entry *entries = NULL;
    if (pr->next <= log_last_index(log)) {
        entries = log_entries_from(log, pr->next, &avail);
    }
    uint32_t n = 0;
    uint64_t bytes = 0;
    while (n < avail && n < CRAFT_MSG_ENTRIES_LIMIT &&
           (n == 0 || bytes + entries[n].len <= core->cfg.append_bytes_max)) {
        bytes += entries[n].len;
        n++;
    }
    struct craft_msg m = {
        .type = CRAFT_MSG_APPEND,
        .to = pr->id,
        .log_index = prev,
        .log_term = log_term_or_zero(log, prev),
        .commit = core->commit,
        .n_entries = n,
        .entries = n > 0 ? entries : NULL,
    };
    CRAFT_ASSERT(prev == log->snap_index || m.log_term != 0 || prev == 0);
    uint64_t last_sent = prev + n;
    uint64_t told = core->commit < last_sent ? core->commit : last_sent;
    if (told > pr->commit_sent) {
        pr->commit_sent = told;
    }
    progress_sent_entries(pr, last_sent, bytes, n, core->now);
    core_send(core, &m, false);
}

void core_build_leader_messages(struct craft_core *core)
{
    CRAFT_ASSERT(core->role == CRAFT_LEADER);
    for (uint32_t i = 0; i < core->n_prs; i++) {
        struct progress *pr = &core->prs[i];
        while (peer_wants_send(core, pr)) {
            if (pr->state != PROGRESS_SNAPSHOT && pr->next - 1 < core->log.snap_index) {
                CRAFT_ASSERT(core->snap.index >= core->log.snap_index);
                progress_become_snapshot(pr, core->snap.index);
            }
            if (pr->state == PROGRESS_SNAPSHOT) {
                send_snapshot_chunk(core, pr);
                break;
            }
            bool had_entries = pr->next <= log_last_index(&core->log);
            send_append(core, pr);
            if (pr->state == PROGRESS_PROBE || !had_entries) {
                break;
            }
        }
    }
}

/* The leader's progress for the peer that answered, marked active (check-quorum); NULL if
 * this node is no longer the leader or the peer is not in the configuration. */
static struct progress *answering_peer(struct craft_core *core, const struct craft_msg *m)
{
    if (core->role != CRAFT_LEADER) {
        return NULL;
    }
    struct progress *pr = core_progress(core, m->from);
    if (pr != NULL) {
        pr->recent_active = true;
    }
    return pr;
}

void recv_append_resp(struct craft_core *core, const struct craft_msg *m)
{
    struct progress *pr = answering_peer(core, m);
    if (pr == NULL) {
        return;
    }
    if (m->reject) {
        if (m->index > log_last_index(&core->log)) {
            return; /* rejects a probe this leader never sent */
        }
        uint64_t guess = m->reject_hint;
        if (m->reject_term > 0 && guess <= log_last_index(&core->log)) {
            guess = log_find_conflict_by_term(&core->log, guess, m->reject_term);
        }
        if (progress_maybe_decrease(pr, m->index, guess + 1)) {
            TRACE(core, CRAFT_T_APPEND, "peer %llu rejected %llu: next %llu",
                  (unsigned long long)pr->id, (unsigned long long)m->index,
                  (unsigned long long)pr->next);
        }
        return;
    }
    if (m->index > log_last_index(&core->log)) {
        return; /* cannot be an answer to this leader; ignore rather than trust it */
    }
    bool moved = progress_maybe_update(pr, m->index, core->now);
    switch (pr->state) {
    case PROGRESS_PROBE:
        progress_become_replicate(pr);
        break;
    case PROGRESS_SNAPSHOT:
        if (pr->match >= pr->snap_index) {
            progress_become_probe(pr);
            progress_become_replicate(pr);
        }
        break;
    case PROGRESS_REPLICATE:
        progress_free_inflights_to(pr, m->index);
        break;
    }
    if (moved) {
        core_learner_progress(core, pr);
        core_transfer_progress(core, pr);
        core_maybe_commit(core);
    }
}

void recv_heartbeat_resp(struct craft_core *core, const struct craft_msg *m)
{
    struct progress *pr = answering_peer(core, m);
    if (pr == NULL) {
        return;
    }
    if (pr->state == PROGRESS_PROBE) {
        pr->probe_sent = false; /* the probe may have been lost: allow another */
    }
    if (m->ctx > pr->acked_round && m->ctx <= core->hb_round) {
        pr->acked_round = m->ctx;
        core_reads_round_acked(core);
    }
}

void recv_snapshot_resp(struct craft_core *core, const struct craft_msg *m)
{
    struct progress *pr = answering_peer(core, m);
    if (pr == NULL) {
        return;
    }
    if (pr->state != PROGRESS_SNAPSHOT) {
        return;
    }
    if (m->index > 0 && m->index >= pr->snap_index && m->index <= log_last_index(&core->log)) {
        /* Installed (or the follower was already past it). */
        TRACE(core, CRAFT_T_SNAP, "peer %llu installed snapshot through %llu",
              (unsigned long long)pr->id, (unsigned long long)m->index);
        bool moved = progress_maybe_update(pr, m->index, core->now);
        progress_become_probe(pr);
        if (moved) {
            core_maybe_commit(core);
        }
        return;
    }
    if (m->snap.index != pr->snap_index) {
        return; /* about another snapshot */
    }
    if (m->reject) {
        /* The follower has no transfer of this snapshot under way (it restarted): begin
         * again. A stale copy of this answer at worst costs one round trip. */
        pr->snap_offset = 0;
        pr->snap_chunk_inflight = false;
        return;
    }
    /* Only an answer that moves the offset releases the next chunk. A duplicated or stale
     * answer must not: each would put one more chunk in flight for good, and on a network
     * that duplicates, chunks would multiply. Loss is covered by the resend timer. */
    if (m->offset > pr->snap_offset) {
        pr->snap_offset = m->offset;
        pr->snap_chunk_inflight = false;
    }
}
