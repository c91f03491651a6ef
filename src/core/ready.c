/* Handing out work as batches, and taking back the acknowledgements (DESIGN decision 1).
 * Also the two log mutations whose effects storage must learn: truncation and
 * compaction. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "core/internal.h"

void core_truncate_log(struct craft_core *core, uint64_t from)
{
    CRAFT_ASSERT(from > core->commit);
    log_truncate_from(&core->log, from);
    /* Entries already handed out must be dropped by storage too. */
    if (from < core->unstable_from) {
        if (core->truncate_from == 0 || from < core->truncate_from) {
            core->truncate_from = from;
        }
        core->unstable_from = from;
    }
    if (core->persisted >= from) {
        core->persisted = from - 1;
    }
    if (core->conf_index >= from) {
        core_recompute_conf(core); /* the configuration entry is gone: revert */
    }
}

void core_commit_to(struct craft_core *core, uint64_t index)
{
    if (index <= core->commit) {
        return; /* the commit index never decreases */
    }
    CRAFT_ASSERT(index <= log_last_index(&core->log));
    TRACE(core, CRAFT_T_COMMIT, "commit %llu -> %llu", (unsigned long long)core->commit,
          (unsigned long long)index);
    core->commit = index;
}

/* Entries that may be applied now: committed, durable here, and not behind a snapshot
 * install that is still being written. */
static uint64_t applicable_to(const struct craft_core *core)
{
    if (core->install_waiting != 0) {
        return core->applied;
    }
    uint64_t to = core->commit < core->persisted ? core->commit : core->persisted;
    return to > core->applied ? to : core->applied;
}

bool craft_core_has_ready(const struct craft_core *core)
{
    if (core->error != CRAFT_OK) {
        return false; /* stopped: core.md, "Out of memory" */
    }
    return (!core->out_handed && (core->out.n > 0 || core->out_durable.n > 0 ||
                                  core->n_caught_up > 0)) ||
           (core->role == CRAFT_LEADER && core->hb_round_wanted) || core_reads_have_output(core) ||
           core->hs_dirty || core->truncate_from != 0 ||
           core->unstable_from <= log_last_index(&core->log) || core->chunk_pending ||
           applicable_to(core) > core->applied || core_leader_has_messages(core);
}

static void push_pending(struct craft_core *core, const struct pending_batch *p)
{
    if (core->n_pending == core->cap_pending) {
        size_t cap = core->cap_pending == 0 ? 16 : core->cap_pending * 2;
        struct pending_batch *grown = craft_realloc(core->pending, cap * sizeof *grown);
        if (grown == NULL) {
            core_fail(core, CRAFT_ENOMEM);
            return;
        }
        core->pending = grown;
        core->cap_pending = cap;
    }
    core->pending[core->n_pending++] = *p;
}

bool craft_core_ready(struct craft_core *core, struct craft_batch *b)
{
    if (core->error != CRAFT_OK) {
        return false; /* stopped: core.md, "Out of memory" */
    }
    core_enter(core, core->now);
    memset(b, 0, sizeof *b);
    if (!craft_core_has_ready(core)) {
        return false;
    }
    if (core->role == CRAFT_LEADER) {
        if (core->hb_round_wanted) {
            core_bcast_heartbeat(core); /* confirms the waiting reads */
        }
        core_build_leader_messages(core);
    }
    struct pending_batch p = {.seq = ++core->batch_seq};
    b->seq = p.seq;

    if (core->hs_dirty) {
        b->has_hard_state = true;
        b->hs.term = core->term;
        b->hs.vote = core->vote;
        core->hs_dirty = false;
        core->hs_batch_seq = p.seq;
        /* Messages sent in a term or after a vote must not leave before it is durable;
         * pre-votes promise nothing and go at once (core_send). */
        size_t kept = 0;
        for (size_t i = 0; i < core->out.n; i++) {
            const struct craft_msg *m = &core->out.msgs[i];
            if (m->type == CRAFT_MSG_PREVOTE || m->type == CRAFT_MSG_PREVOTE_RESP) {
                core->out.msgs[kept++] = *m;
            } else {
                core_send_raw_durable(core, m);
            }
        }
        core->out.n = kept;
    }
    b->truncate_from = core->truncate_from;
    core->truncate_from = 0;
    uint64_t last = log_last_index(&core->log);
    if (core->unstable_from <= last) {
        b->entries = log_entries_from(&core->log, core->unstable_from, &b->n_entries);
        p.last_index = last;
        p.last_term = log_last_term(&core->log);
        core->unstable_from = last + 1;
    }
    if (core->chunk_pending) {
        b->has_snap_chunk = true;
        b->snap_meta = core->chunk_install ? core->snap : core->recv_snap;
        b->snap_offset = core->chunk_offset;
        b->snap_chunk = core->chunk_buf;
        b->snap_chunk_len = core->chunk_len;
        b->snap_install = core->chunk_install;
        b->snap_keep_log = core->chunk_keep_log;
        if (core->chunk_install) {
            p.snap_index = core->snap.index;
        }
        core->chunk_pending = false;
    }
    b->msgs = core->out.msgs;
    b->n_msgs = core->out.n;
    b->msgs_durable = core->out_durable.msgs;
    b->n_msgs_durable = core->out_durable.n;
    core->out_handed = true;

    uint64_t to = applicable_to(core);
    if (to > core->applied) {
        size_t n = 0;
        const struct craft_entry *e = log_entries_from(&core->log, core->applied + 1, &n);
        b->committed = e;
        b->n_committed = (size_t)(to - core->applied);
        CRAFT_ASSERT(b->n_committed <= n);
        TRACE(core, CRAFT_T_APPLY, "apply %llu..%llu", (unsigned long long)(core->applied + 1),
              (unsigned long long)to);
        core->applied = to;
    }
    core_reads_collect(core);
    b->reads = core->out_reads;
    b->n_reads = core->n_out_reads;
    b->caught_up = core->caught_up;
    b->n_caught_up = core->n_caught_up;
    push_pending(core, &p);
    return core->error == CRAFT_OK; /* a batch the core cannot track is not handed out */
}

void craft_core_persisted(struct craft_core *core, uint64_t seq, uint64_t now)
{
    if (core->error != CRAFT_OK) {
        return; /* stopped: core.md, "Out of memory" */
    }
    core_enter(core, now);
    CRAFT_ASSERT(seq <= core->batch_seq);
    if (seq > core->persisted_seq) {
        core->persisted_seq = seq;
    }
    size_t done = 0;
    while (done < core->n_pending && core->pending[done].seq <= seq) {
        const struct pending_batch *p = &core->pending[done];
        if (p->snap_index != 0) {
            if (core->persisted < p->snap_index) {
                core->persisted = p->snap_index;
            }
            if (core->install_waiting == p->snap_index) {
                core->install_waiting = 0;
            }
        }
        /* Entries overwritten by a later batch are covered by that batch's ack. */
        if (p->last_index > core->persisted &&
            log_term_or_zero(&core->log, p->last_index) == p->last_term) {
            core->persisted = p->last_index;
        }
        done++;
    }
    memmove(core->pending, core->pending + done, (core->n_pending - done) * sizeof *core->pending);
    core->n_pending -= done;
    CRAFT_ASSERT(core->persisted <= log_last_index(&core->log));
    TRACE(core, CRAFT_T_PERSIST, "durable through batch %llu: log %llu",
          (unsigned long long)seq, (unsigned long long)core->persisted);
    if (core->role == CRAFT_LEADER) {
        core_maybe_commit(core);
    }
}

static int craft_core_snapshot_taken_call(struct craft_core *core, uint64_t index, uint64_t retain_entries)
{
    if (core->error != CRAFT_OK) {
        return core->error; /* stopped: core.md, "Out of memory" */
    }
    core_enter(core, core->now);
    if (index <= core->snap.index) {
        return CRAFT_ESTALE;
    }
    CRAFT_ASSERT(index <= core->applied);
    uint64_t term = 0;
    bool known = log_term_at(&core->log, index, &term);
    CRAFT_ASSERT(known);
    struct craft_conf conf;
    core_conf_at(core, index, &conf);
    core->snap.index = index;
    core->snap.term = term;
    core->snap.conf = conf;
    uint64_t compact_to = index > retain_entries ? index - retain_entries : 0;
    if (compact_to > core->log.snap_index) {
        log_compact(&core->log, compact_to);
    }
    TRACE(core, CRAFT_T_SNAP, "snapshot taken through %llu/%llu, log from %llu",
          (unsigned long long)index, (unsigned long long)term,
          (unsigned long long)(core->log.snap_index + 1));
    return CRAFT_OK;
}

/* The call, and the stop it may have caused (a step that could not allocate: core.md,
 * "Out of memory") as its answer. */
int craft_core_snapshot_taken(struct craft_core *core, uint64_t index, uint64_t retain_entries)
{
    int rv = craft_core_snapshot_taken_call(core, index, retain_entries);
    return core->error != CRAFT_OK ? core->error : rv;
}
