/* Linearizable reads without writing to the log (thesis 6.4).
 *
 * ReadIndex (6.4): the leader records its commit index as the read's index, then confirms
 * it is still the leader with a heartbeat round; every read waiting at that moment shares
 * the round. The read is served once the state machine has applied through its index. A
 * new leader first commits an entry of its own term, so that its commit index is at least
 * that of any earlier leader.
 *
 * Follower read (6.4): a follower asks the leader for a read index, then serves the read
 * once it has applied that far itself.
 *
 * Lease read (6.4.1): every heartbeat round is numbered and its send time kept. Once a
 * quorum has answered round r, no other leader can be elected until election_timeout_ms
 * after r was sent (each of those voters ignores campaigns that long after hearing from
 * us), minus the clock drift bound; until then the leader serves reads locally. */
#include <stdlib.h>

#include "base/alloc.h"
#include "core/internal.h"
#include "core/quorum.h"

#define READS_PENDING_MAX 65536u

static struct pending_read *push_read(struct craft_core *core)
{
    struct read_queue *q = &core->reads;
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        struct pending_read *grown = craft_realloc(q->reads, cap * sizeof *grown);
        if (grown == NULL) {
            return NULL;
        }
        q->reads = grown;
        q->cap = cap;
    }
    struct pending_read *r = &q->reads[q->n++];
    *r = (struct pending_read){0};
    return r;
}

static void output(struct craft_core *core, uint64_t ctx, uint64_t index, int err)
{
    if (core->n_out_reads == core->cap_out_reads) {
        size_t cap = core->cap_out_reads ? core->cap_out_reads * 2 : 16;
        struct craft_read_state *grown = craft_realloc(core->out_reads, cap * sizeof *grown);
        if (grown == NULL) {
            core_fail(core, CRAFT_ENOMEM);
            return;
        }
        core->out_reads = grown;
        core->cap_out_reads = cap;
    }
    core->out_reads[core->n_out_reads++] = (struct craft_read_state){ctx, index, err};
}

static uint64_t read_deadline(const struct craft_core *core)
{
    uint32_t t = core->cfg.read_timeout_ms ? core->cfg.read_timeout_ms
                                           : core->cfg.election_timeout_ms;
    return core->now + t;
}

/* Leader: give r its index and the next heartbeat round, if our own term has committed. */
static void assign(struct craft_core *core, struct pending_read *r)
{
    if (r->index != 0 || core->commit < core->term_start_index) {
        return;
    }
    r->index = core->commit;
    r->round = core->hb_round + 1;
    core->hb_round_wanted = true;
}

static int craft_core_read_index_call(struct craft_core *core, uint64_t ctx, uint64_t now)
{
    if (core->error != CRAFT_OK) {
        return core->error; /* stopped: core.md, "Out of memory" */
    }
    core_enter(core, now);
    if (ctx == 0) {
        return CRAFT_EINVAL;
    }
    if (core->reads.n >= READS_PENDING_MAX) {
        return CRAFT_EBUSY;
    }
    if (core->role != CRAFT_LEADER && core->leader == CRAFT_NONE) {
        return CRAFT_ENOTLEADER;
    }
    struct pending_read *r = push_read(core);
    if (r == NULL) {
        return CRAFT_ENOMEM;
    }
    r->ctx = ctx;
    r->deadline = read_deadline(core);
    if (core->role == CRAFT_LEADER) {
        assign(core, r);
        TRACE(core, CRAFT_T_READ, "read %llu: index %llu, round %llu", (unsigned long long)ctx,
              (unsigned long long)r->index, (unsigned long long)r->round);
        return CRAFT_OK;
    }
    struct craft_msg m = {.type = CRAFT_MSG_READ_INDEX, .to = core->leader, .ctx = ctx};
    core_send(core, &m, false);
    TRACE(core, CRAFT_T_READ, "read %llu: asking leader %llu", (unsigned long long)ctx,
          (unsigned long long)core->leader);
    return CRAFT_OK;
}

/* The call, and the stop it may have caused (a step that could not allocate: core.md,
 * "Out of memory") as its answer. */
int craft_core_read_index(struct craft_core *core, uint64_t ctx, uint64_t now)
{
    int rv = craft_core_read_index_call(core, ctx, now);
    return core->error != CRAFT_OK ? core->error : rv;
}

static int craft_core_read_lease_call(struct craft_core *core, uint64_t now, uint64_t *index)
{
    if (core->error != CRAFT_OK) {
        return core->error; /* stopped: core.md, "Out of memory" */
    }
    core_enter(core, now);
    if (core->role != CRAFT_LEADER) {
        return CRAFT_ENOTLEADER;
    }
    if (!core->cfg.check_quorum) {
        return CRAFT_EINVAL;
    }
    CRAFT_ASSERT(!core->lease_forfeited || core->lease_until == 0);
    if (core->transfer_target != CRAFT_NONE || now >= core->lease_until ||
        core->commit < core->term_start_index) {
        return CRAFT_ESTALE;
    }
    *index = core->commit;
    return CRAFT_OK;
}

/* The call, and the stop it may have caused (a step that could not allocate: core.md,
 * "Out of memory") as its answer. */
int craft_core_read_lease(struct craft_core *core, uint64_t now, uint64_t *index)
{
    int rv = craft_core_read_lease_call(core, now, index);
    return core->error != CRAFT_OK ? core->error : rv;
}

void recv_read_index(struct craft_core *core, const struct craft_msg *m)
{
    struct pending_read *r = NULL;
    if (core->role == CRAFT_LEADER && core->reads.n < READS_PENDING_MAX) {
        r = push_read(core);
    }
    if (r == NULL) {
        struct craft_msg resp = {
            .type = CRAFT_MSG_READ_INDEX_RESP, .to = m->from, .ctx = m->ctx, .reject = true};
        core_send(core, &resp, false);
        return;
    }
    r->ctx = m->ctx;
    r->from = m->from;
    r->deadline = read_deadline(core);
    assign(core, r);
}

void recv_read_index_resp(struct craft_core *core, const struct craft_msg *m)
{
    for (size_t i = 0; i < core->reads.n; i++) {
        struct pending_read *r = &core->reads.reads[i];
        if (r->from == CRAFT_NONE && r->ctx == m->ctx && !r->confirmed) {
            if (m->reject) {
                output(core, r->ctx, 0, CRAFT_ENOTLEADER);
                core->reads.reads[i] = core->reads.reads[--core->reads.n];
            } else {
                r->index = m->index;
                r->confirmed = true;
            }
            return;
        }
    }
}

void core_reads_on_commit(struct craft_core *core)
{
    for (size_t i = 0; i < core->reads.n; i++) {
        assign(core, &core->reads.reads[i]);
    }
}

static uint64_t acked_round_of(void *ctx, uint64_t id, bool *found)
{
    struct craft_core *core = ctx;
    *found = true;
    if (id == core->cfg.id) {
        return core->hb_round;
    }
    struct progress *pr = core_progress(core, id);
    *found = pr != NULL;
    return pr != NULL ? pr->acked_round : 0;
}

void core_reads_round_acked(struct craft_core *core)
{
    CRAFT_ASSERT(core->role == CRAFT_LEADER);
    uint64_t confirmed = craft_quorum_committed(&core->conf, acked_round_of, core);
    if (confirmed == 0) {
        return;
    }
    if (core->cfg.check_quorum && core->transfer_target == CRAFT_NONE &&
        !core->lease_forfeited && core->hb_round - confirmed < HB_ROUNDS_KEPT) {
        uint64_t until = core->hb_sent_at[confirmed % HB_ROUNDS_KEPT] +
                         core->cfg.election_timeout_ms - core->cfg.clock_drift_bound_ms;
        if (until > core->lease_until) {
            core->lease_until = until;
        }
    }
    for (size_t i = 0; i < core->reads.n;) {
        struct pending_read *r = &core->reads.reads[i];
        if (r->round == 0 || r->round > confirmed || r->confirmed) {
            i++;
            continue;
        }
        if (r->from != CRAFT_NONE) {
            struct craft_msg resp = {
                .type = CRAFT_MSG_READ_INDEX_RESP, .to = r->from, .ctx = r->ctx, .index = r->index};
            core_send(core, &resp, false);
            core->reads.reads[i] = core->reads.reads[--core->reads.n];
            continue;
        }
        r->confirmed = true;
        i++;
    }
}

void core_reads_fail_all(struct craft_core *core, int err)
{
    for (size_t i = 0; i < core->reads.n; i++) {
        struct pending_read *r = &core->reads.reads[i];
        if (r->from != CRAFT_NONE) {
            struct craft_msg resp = {
                .type = CRAFT_MSG_READ_INDEX_RESP, .to = r->from, .ctx = r->ctx, .reject = true};
            core_send(core, &resp, false);
        } else {
            output(core, r->ctx, r->index, err);
        }
    }
    core->reads.n = 0;
    core->hb_round_wanted = false;
}

/* `applied` counts an installed snapshot at once, but the state machine holds it only after
 * the install is durable and the driver has restored it: until then no read is served. */
static bool servable(const struct craft_core *core, const struct pending_read *r)
{
    return r->from == CRAFT_NONE && r->confirmed && r->index <= core->applied &&
           core->install_waiting == 0;
}

void core_reads_collect(struct craft_core *core)
{
    for (size_t i = 0; i < core->reads.n;) {
        struct pending_read *r = &core->reads.reads[i];
        if (servable(core, r)) {
            output(core, r->ctx, r->index, CRAFT_OK);
        } else if (core->now >= r->deadline) {
            if (r->from == CRAFT_NONE) {
                output(core, r->ctx, r->index, CRAFT_ETIMEOUT);
            }
        } else {
            i++;
            continue;
        }
        core->reads.reads[i] = core->reads.reads[--core->reads.n];
    }
}

bool core_reads_have_output(const struct craft_core *core)
{
    if (!core->out_handed && core->n_out_reads > 0) {
        return true;
    }
    for (size_t i = 0; i < core->reads.n; i++) {
        if (servable(core, &core->reads.reads[i])) {
            return true;
        }
    }
    return false;
}

uint64_t core_reads_next_deadline(const struct craft_core *core)
{
    uint64_t t = UINT64_MAX;
    for (size_t i = 0; i < core->reads.n; i++) {
        if (core->reads.reads[i].deadline < t) {
            t = core->reads.reads[i].deadline;
        }
    }
    return t;
}
