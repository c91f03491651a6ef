/* Core lifecycle, timers, proposals and the shared helpers of the role files. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "core/internal.h"
#include "core/quorum.h"

void craft_core_config_default(struct craft_core_config *cfg, uint64_t id)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->id = id;
    cfg->seed = id;
    cfg->heartbeat_ms = 100;
    cfg->election_timeout_ms = 1000;
    cfg->pre_vote = true;
    cfg->check_quorum = true;
    cfg->inflight_msgs_max = 64;
    cfg->inflight_bytes_max = 16u << 20;
    cfg->append_bytes_max = 1u << 20;
    cfg->uncommitted_bytes_max = 64u << 20;
    cfg->snapshot_chunk_bytes_max = 1u << 20;
    cfg->entry_bytes_max = 1u << 20;
    cfg->auto_leave_joint = true;
    cfg->clock_drift_bound_ms = 100;
    cfg->read_timeout_ms = 0;
}

int craft_core_config_validate(const struct craft_core_config *cfg, const char **field)
{
    const char *bad = NULL;
    if (cfg->id == CRAFT_NONE) {
        bad = "id";
    } else if (cfg->heartbeat_ms == 0) {
        bad = "heartbeat_ms";
    } else if (cfg->election_timeout_ms <= cfg->heartbeat_ms) {
        bad = "election_timeout_ms"; /* must exceed heartbeat_ms */
    } else if (cfg->inflight_msgs_max == 0) {
        bad = "inflight_msgs_max";
    } else if (cfg->inflight_bytes_max == 0) {
        bad = "inflight_bytes_max";
    } else if (cfg->append_bytes_max == 0) {
        bad = "append_bytes_max";
    } else if (cfg->uncommitted_bytes_max == 0) {
        bad = "uncommitted_bytes_max";
    } else if (cfg->snapshot_chunk_bytes_max == 0) {
        bad = "snapshot_chunk_bytes_max";
    } else if (cfg->entry_bytes_max == 0 || cfg->entry_bytes_max > UINT32_MAX) {
        bad = "entry_bytes_max";
    } else if (cfg->clock_drift_bound_ms >= cfg->election_timeout_ms) {
        bad = "clock_drift_bound_ms"; /* the lease would be empty */
    }
    if (field != NULL) {
        *field = bad;
    }
    return bad == NULL ? CRAFT_OK : CRAFT_EINVAL;
}

static bool conf_contains(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

bool core_is_voter(const struct craft_core *core, uint64_t id)
{
    return conf_contains(core->conf.voters, core->conf.n_voters, id) ||
           conf_contains(core->conf.voters_outgoing, core->conf.n_voters_outgoing, id);
}

struct progress *core_progress(struct craft_core *core, uint64_t id)
{
    for (uint32_t i = 0; i < core->n_prs; i++) {
        if (core->prs[i].id == id) {
            return &core->prs[i];
        }
    }
    return NULL;
}

static void free_progress(struct craft_core *core)
{
    for (uint32_t i = 0; i < core->n_prs; i++) {
        progress_free(&core->prs[i]);
    }
    free(core->prs);
    core->prs = NULL;
    core->n_prs = 0;
}

/* Adds id to the new array: carried over from the old one if it was there (a leader keeps
 * what it knows of a peer across configuration changes), else fresh. */
static bool sync_one(struct craft_core *core, struct progress *old, uint32_t n_old,
                     struct progress *prs, uint32_t *n, uint64_t id, bool is_learner)
{
    if (id == core->cfg.id) {
        return true;
    }
    for (uint32_t i = 0; i < *n; i++) {
        if (prs[i].id == id) {
            return true;
        }
    }
    struct progress *pr = &prs[*n];
    for (uint32_t i = 0; i < n_old; i++) {
        if (old[i].id == id && old[i].ring != NULL) {
            *pr = old[i];
            old[i].ring = NULL; /* moved */
            pr->is_learner = is_learner;
            (*n)++;
            return true;
        }
    }
    if (!progress_init(pr, id, is_learner, core->cfg.inflight_msgs_max)) {
        return false;
    }
    uint64_t last = log_last_index(&core->log);
    progress_reset(pr, last + 1, core->now);
    pr->round_end = last;
    pr->round_started_at = core->now;
    (*n)++;
    return true;
}

/* One progress per node of the configuration other than this one. */
bool core_rebuild_progress(struct craft_core *core)
{
    const struct craft_conf *c = &core->conf;
    struct progress *prs = craft_calloc(CRAFT_CONF_NODES_MAX * 2, sizeof *prs);
    if (prs == NULL) {
        return false;
    }
    uint32_t n = 0;
    bool ok = true;
    for (uint32_t i = 0; ok && i < c->n_voters; i++) {
        ok = sync_one(core, core->prs, core->n_prs, prs, &n, c->voters[i], false);
    }
    for (uint32_t i = 0; ok && i < c->n_voters_outgoing; i++) {
        ok = sync_one(core, core->prs, core->n_prs, prs, &n, c->voters_outgoing[i], false);
    }
    for (uint32_t i = 0; ok && i < c->n_learners; i++) {
        ok = sync_one(core, core->prs, core->n_prs, prs, &n, c->learners[i], true);
    }
    CRAFT_ASSERT(n <= CRAFT_CONF_NODES_MAX * 2);
    free_progress(core); /* frees only what was not moved */
    core->prs = prs;
    core->n_prs = n;
    return ok;
}

void core_reset_election_timer(struct craft_core *core)
{
    /* Randomized in [base, 2 * base) (thesis 3.4). */
    uint64_t base = core->cfg.election_timeout_ms;
    core->election_deadline = core->now + craft_prng_range(&core->prng, base, 2 * base);
}

void core_fail(struct craft_core *core, int err)
{
    CRAFT_ASSERT(err != CRAFT_OK);
    if (core->error == CRAFT_OK) {
        core->error = err;
        TRACE(core, CRAFT_T_ELECT, "stopped: %s", craft_strerror(err));
    }
}

int craft_core_error(const struct craft_core *core)
{
    return core->error;
}

static bool queue_push(struct msg_queue *q, const struct craft_msg *m)
{
    if (q->n == q->cap) {
        size_t cap = q->cap == 0 ? 16 : q->cap * 2;
        struct craft_msg *grown = craft_realloc(q->msgs, cap * sizeof *grown);
        if (grown == NULL) {
            return false;
        }
        q->msgs = grown;
        q->cap = cap;
    }
    q->msgs[q->n++] = *m;
    return true;
}

/* Starts a call: the previous batch's borrowed output is no longer in use. */
/* What holds between any two calls, whatever the input (checked as each call begins): the
 * snapshot is committed, nothing is applied before it commits, nothing commits that the
 * log does not hold (thesis 3.5, 5.1), and a leader or candidate voted for itself. */
static void check_invariants(const struct craft_core *core)
{
    CRAFT_ASSERT(core->commit >= core->log.snap_index);
    CRAFT_ASSERT(core->applied <= core->commit);
    CRAFT_ASSERT(core->commit <= log_last_index(&core->log));
    CRAFT_ASSERT(core->role != CRAFT_LEADER || core->leader == core->cfg.id);
    CRAFT_ASSERT((core->role != CRAFT_LEADER && core->role != CRAFT_CANDIDATE) ||
                 core->vote == core->cfg.id);
}

void core_enter(struct craft_core *core, uint64_t now)
{
    check_invariants(core);
    CRAFT_ASSERT(now >= core->now);
    core->now = now;
    if (core->out_handed) {
        core->out.n = 0;
        core->out_durable.n = 0;
        core->n_out_reads = 0;
        core->n_caught_up = 0;
        core->out_handed = false;
    }
}

bool core_hs_unstable(const struct craft_core *core)
{
    return core->hs_dirty || core->hs_batch_seq > core->persisted_seq;
}

/* Persist before responding (thesis 3.8, figure 3.1: currentTerm and votedFor are "updated
 * on stable storage before responding to RPCs"): while the current term or vote is not yet
 * durable, even a message that needs nothing else durable (a heartbeat's answer, a stale
 * leader's rejection) waits for it. Otherwise a node that answered in a term and crashed
 * before the term reached its disk comes back in the older term, and can then acknowledge
 * a deposed leader's heartbeats, which a read round or a lease counts. Pre-votes are
 * exempt: they carry a term the sender has not entered and promise nothing. */
void core_send(struct craft_core *core, const struct craft_msg *m, bool durable)
{
    CRAFT_ASSERT(m->to != core->cfg.id && m->to != CRAFT_NONE);
    CRAFT_ASSERT(!core->out_handed);
    struct craft_msg copy = *m;
    copy.from = core->cfg.id;
    if (copy.term == 0) {
        copy.term = core->term;
    }
    bool pre = copy.type == CRAFT_MSG_PREVOTE || copy.type == CRAFT_MSG_PREVOTE_RESP;
    if (!pre && core_hs_unstable(core)) {
        durable = true;
    }
    if (!queue_push(durable ? &core->out_durable : &core->out, &copy)) {
        core_fail(core, CRAFT_ENOMEM);
    }
}

void core_send_raw_durable(struct craft_core *core, const struct craft_msg *m)
{
    if (!queue_push(&core->out_durable, m)) {
        core_fail(core, CRAFT_ENOMEM);
    }
}

struct craft_core *craft_core_create(const struct craft_core_config *cfg,
                                     const struct craft_core_restore *restore, uint64_t now)
{
    CRAFT_ASSERT(craft_core_config_validate(cfg, NULL) == CRAFT_OK);
    struct craft_core *core = craft_calloc(1, sizeof *core);
    if (core == NULL) {
        return NULL;
    }
    core->cfg = *cfg;
    core->now = now;
    craft_prng_seed(&core->prng, cfg->seed);
    core->term = restore->hs.term;
    core->vote = restore->hs.vote;
    core->snap = restore->snap;
    log_init(&core->log, restore->snap.index, restore->snap.term);
    core->bootstrap_conf = restore->bootstrap_conf;
    for (size_t i = 0; i < restore->n_entries; i++) {
        const struct craft_entry *e = &restore->entries[i];
        CRAFT_ASSERT(e->term <= core->term);
        if (log_append(&core->log, e) != CRAFT_OK) {
            craft_core_destroy(core);
            return NULL;
        }
    }
    /* Entries that came from storage are durable; the state machine holds the snapshot. */
    core->persisted = log_last_index(&core->log);
    core->unstable_from = core->persisted + 1;
    core->commit = restore->snap.index;
    core->applied = restore->snap.index;
    core->role = CRAFT_FOLLOWER;
    core->self_vote = -1;
    core_recompute_conf(core);
    if (core->error != CRAFT_OK) {
        craft_core_destroy(core); /* out of memory: as its contract says, NULL */
        return NULL;
    }
    /* A restarted node may have promised a leader, before the crash, not to vote for a
     * while (its lease): keep that promise for an election timeout after start. */
    core->votes_blocked_until = now + cfg->election_timeout_ms;
    core_reset_election_timer(core);
    TRACE(core, CRAFT_T_ELECT, "start: last=%llu/%llu snap=%llu vote=%llu",
          (unsigned long long)log_last_index(&core->log),
          (unsigned long long)log_last_term(&core->log), (unsigned long long)core->snap.index,
          (unsigned long long)core->vote);
    return core;
}

void craft_core_destroy(struct craft_core *core)
{
    if (core == NULL) {
        return;
    }
    free_progress(core);
    log_free(&core->log);
    free(core->out.msgs);
    free(core->out_durable.msgs);
    free(core->chunk_buf);
    free(core->pending);
    free(core->caught_up);
    free(core->reads.reads);
    free(core->out_reads);
    free(core);
}

static bool quorum_active(struct craft_core *core);

void craft_core_tick(struct craft_core *core, uint64_t now)
{
    if (core->error != CRAFT_OK) {
        return; /* stopped: core.md, "Out of memory" */
    }
    core_enter(core, now);
    core_reads_collect(core);
    if (core->role == CRAFT_LEADER) {
        core_transfer_tick(core);
        if (now >= core->heartbeat_deadline) {
            core->heartbeat_deadline = now + core->cfg.heartbeat_ms;
            core_bcast_heartbeat(core);
            core_tick_peers(core);
        }
        if (core->cfg.check_quorum && now >= core->check_quorum_deadline) {
            core->check_quorum_deadline = now + core->cfg.election_timeout_ms;
            /* Thesis 6.2: a leader that has not heard from a quorum within an election
             * timeout steps down, so a partitioned leader stops serving. */
            if (!quorum_active(core)) {
                TRACE(core, CRAFT_T_ELECT, "check-quorum failed: stepping down");
                core_become_follower(core, core->term, CRAFT_NONE);
                return;
            }
            for (uint32_t i = 0; i < core->n_prs; i++) {
                core->prs[i].recent_active = false;
            }
        }
        return;
    }
    if (now < core->election_deadline) {
        if ((core->role == CRAFT_PRECANDIDATE || core->role == CRAFT_CANDIDATE) &&
            now >= core->vote_resend_deadline) {
            core_resend_vote_requests(core);
        }
        return;
    }
    if (core_can_campaign(core)) {
        TRACE(core, CRAFT_T_ELECT, "election timeout");
        core_campaign(core, core->cfg.pre_vote, false);
    } else {
        core_reset_election_timer(core);
    }
}

static int active_vote_of(void *ctx, uint64_t id)
{
    struct craft_core *core = ctx;
    if (id == core->cfg.id) {
        return 1;
    }
    struct progress *pr = core_progress(core, id);
    return pr != NULL && pr->recent_active ? 1 : 0;
}

static bool quorum_active(struct craft_core *core)
{
    return craft_quorum_vote(&core->conf, active_vote_of, core) == CRAFT_VOTE_WON;
}

uint64_t craft_core_next_timeout(const struct craft_core *core)
{
    if (core->error != CRAFT_OK) {
        return UINT64_MAX; /* stopped: no timer of its runs again */
    }
    uint64_t t = core->election_deadline;
    if (core->role == CRAFT_LEADER) {
        t = core->heartbeat_deadline;
        if (core->cfg.check_quorum && core->check_quorum_deadline < t) {
            t = core->check_quorum_deadline;
        }
    } else if ((core->role == CRAFT_PRECANDIDATE || core->role == CRAFT_CANDIDATE) &&
               core->vote_resend_deadline < t) {
        t = core->vote_resend_deadline;
    }
    uint64_t reads = core_reads_next_deadline(core);
    return reads < t ? reads : t;
}

static int craft_core_propose_call(struct craft_core *core, const uint8_t *data, uint32_t len, uint64_t now,
                       uint64_t *index, uint64_t *term)
{
    if (core->error != CRAFT_OK) {
        return core->error; /* stopped: core.md, "Out of memory" */
    }
    core_enter(core, now);
    if (core->role != CRAFT_LEADER) {
        return CRAFT_ENOTLEADER;
    }
    if (core->transfer_target != CRAFT_NONE) {
        return CRAFT_ETRANSFER; /* thesis 3.10: the old leader stops accepting proposals */
    }
    if (len > core->cfg.entry_bytes_max) {
        return CRAFT_ETOOBIG;
    }
    if (core->uncommitted_bytes + len > core->cfg.uncommitted_bytes_max &&
        core->uncommitted_bytes > 0) {
        return CRAFT_EBUSY;
    }
    struct craft_entry e = {
        .term = core->term,
        .index = log_last_index(&core->log) + 1,
        .type = CRAFT_ENTRY_NORMAL,
        .len = len,
        .data = len > 0 ? data : NULL,
    };
    int rv = log_append(&core->log, &e);
    if (rv != CRAFT_OK) {
        return rv;
    }
    core->uncommitted_bytes += len;
    TRACE(core, CRAFT_T_CLIENT, "propose index=%llu len=%u", (unsigned long long)e.index, len);
    if (index != NULL) {
        *index = e.index;
    }
    if (term != NULL) {
        *term = e.term;
    }
    return CRAFT_OK;
}

/* The call, and the stop it may have caused (a step that could not allocate: core.md,
 * "Out of memory") as its answer. */
int craft_core_propose(struct craft_core *core, const uint8_t *data, uint32_t len, uint64_t now,
                       uint64_t *index, uint64_t *term)
{
    int rv = craft_core_propose_call(core, data, len, now, index, term);
    return core->error != CRAFT_OK ? core->error : rv;
}

void craft_core_campaign(struct craft_core *core, uint64_t now)
{
    if (core->error != CRAFT_OK) {
        return; /* stopped: core.md, "Out of memory" */
    }
    core_enter(core, now);
    if (core->role == CRAFT_LEADER || !core_can_campaign(core)) {
        return;
    }
    core_campaign(core, core->cfg.pre_vote, false);
}

void craft_core_step_down(struct craft_core *core, uint64_t now)
{
    if (core->error != CRAFT_OK) {
        return; /* stopped: core.md, "Out of memory" */
    }
    core_enter(core, now);
    if (core->role == CRAFT_LEADER) {
        core_become_follower(core, core->term, CRAFT_NONE);
    }
}

/* Thesis 3.4: timing decides when elections start, never what they decide; restarting
 * the timers cannot make an election or a commit unsafe. The lease (thesis 6.4.1) rests on
 * acknowledged heartbeat rounds and their send times, which this leaves as they are: a
 * leader whose lease ran out while it was quiet regains it only from a new round. */
void craft_core_resume(struct craft_core *core, uint64_t now)
{
    if (core->error != CRAFT_OK) {
        return; /* stopped: core.md, "Out of memory" */
    }
    core_enter(core, now);
    if (core->role == CRAFT_LEADER) {
        core->heartbeat_deadline = now;
        core->check_quorum_deadline = now + core->cfg.election_timeout_ms;
    } else {
        core_reset_election_timer(core);
    }
}

/* A stopped core (core.md, "Out of memory") leads nothing and knows no leader, whatever its
 * last step left: what its accessors say, so callers need no case of their own. */
uint64_t craft_core_leader(const struct craft_core *core)
{
    return core->error != CRAFT_OK ? CRAFT_NONE : core->leader;
}

enum craft_role craft_core_role(const struct craft_core *core)
{
    return core->error != CRAFT_OK ? CRAFT_FOLLOWER : core->role;
}

void craft_core_status(const struct craft_core *core, struct craft_core_status *s)
{
    memset(s, 0, sizeof *s);
    s->id = core->cfg.id;
    s->role = craft_core_role(core); /* a stopped core: a follower without a leader */
    s->term = core->term;
    s->vote = core->vote;
    s->leader = craft_core_leader(core);
    s->commit = core->commit;
    s->applied = core->applied;
    s->persisted = core->persisted;
    s->first_index = core->log.snap_index + 1;
    s->last_index = log_last_index(&core->log);
    s->last_term = log_last_term(&core->log);
    s->snap_index = core->snap.index;
    s->snap_term = core->snap.term;
    s->conf = core->conf;
    s->conf_index = core->conf_index;
    s->transfer_target = core->transfer_target;
    s->lease_until = core->lease_until;
    s->pending_reads = (uint32_t)core->reads.n;
}

const struct craft_entry *craft_core_entry(const struct craft_core *core, uint64_t index)
{
    return log_entry(&core->log, index);
}

size_t craft_core_peers(const struct craft_core *core, struct craft_peer_status *peers, size_t cap)
{
    if (core->role != CRAFT_LEADER) {
        return 0;
    }
    size_t n = 0;
    for (uint32_t i = 0; i < core->n_prs && n < cap; i++) {
        const struct progress *pr = &core->prs[i];
        peers[n++] = (struct craft_peer_status){
            .id = pr->id,
            .is_learner = pr->is_learner,
            .state = (uint8_t)pr->state,
            .match = pr->match,
            .next = pr->next,
            .recent_active = pr->recent_active,
            .inflight_msgs = pr->ring_count,
            .inflight_bytes = pr->ring_bytes,
        };
    }
    return n;
}
