/* A follower receives AppendEntries (thesis figure 3.1, receiver implementation). */
#include "core/internal.h"

static void respond(struct craft_core *core, const struct craft_msg *m, bool reject,
                    uint64_t index, uint64_t hint, uint64_t hint_term)
{
    struct craft_msg resp = {
        .type = CRAFT_MSG_APPEND_RESP,
        .to = m->from,
        .reject = reject,
        .index = index,
        .reject_hint = hint,
        .reject_term = hint_term,
    };
    /* A success acknowledges entries: it leaves only once they are durable. */
    core_send(core, &resp, true);
}

void recv_append(struct craft_core *core, const struct craft_msg *m)
{
    if (!core_accept_leader(core, m)) {
        return;
    }
    struct craft_log *log = &core->log;
    uint64_t prev = m->log_index;

    if (prev < core->commit) {
        /* Everything through commit matches the leader already (committed entries never
         * change); tell it where we are. */
        respond(core, m, false, core->commit, 0, 0);
        return;
    }
    uint64_t term = 0;
    if (!log_term_at(log, prev, &term) || term != m->log_term) {
        /* Fast backtracking: point the leader at the last index that can still match,
         * the largest one at or below prev whose term is <= the leader's prev term. */
        uint64_t last = log_last_index(log);
        uint64_t hint = prev < last ? prev : last;
        hint = log_find_conflict_by_term(log, hint, m->log_term);
        TRACE(core, CRAFT_T_APPEND, "reject append prev=%llu/%llu from %llu: hint %llu/%llu",
              (unsigned long long)prev, (unsigned long long)m->log_term,
              (unsigned long long)m->from, (unsigned long long)hint,
              (unsigned long long)log_term_or_zero(log, hint));
        respond(core, m, true, prev, hint, log_term_or_zero(log, hint));
        return;
    }

    /* Skip what we have; drop our log from the first conflict; append the rest. */
    uint32_t i = 0;
    for (; i < m->n_entries; i++) {
        const struct craft_entry *e = &m->entries[i];
        uint64_t have = 0;
        if (!log_term_at(log, e->index, &have)) {
            break;
        }
        if (have != e->term) {
            /* Log matching: a conflict is never at or below commit. */
            CRAFT_ASSERT(e->index > core->commit);
            TRACE(core, CRAFT_T_APPEND, "conflict at %llu: drop from there",
                  (unsigned long long)e->index);
            core_truncate_log(core, e->index);
            break;
        }
    }
    uint64_t first_new = i < m->n_entries ? m->entries[i].index : 0;
    for (; i < m->n_entries; i++) {
        if (log_append(log, &m->entries[i]) != CRAFT_OK) {
            core_fail(core, CRAFT_ENOMEM);
            return;
        }
    }
    if (first_new != 0) {
        core_note_appended(core, first_new);
    }
    uint64_t last_new = prev + m->n_entries;
    core_commit_to(core, m->commit < last_new ? m->commit : last_new);
    if (m->n_entries > 0) {
        TRACE(core, CRAFT_T_APPEND, "append %llu..%llu from %llu commit=%llu",
              (unsigned long long)(prev + 1), (unsigned long long)last_new,
              (unsigned long long)m->from, (unsigned long long)core->commit);
    }
    respond(core, m, false, last_new, 0, 0);
}

void recv_heartbeat(struct craft_core *core, const struct craft_msg *m)
{
    if (!core_accept_leader(core, m)) {
        return;
    }
    /* The leader sends min(match, commit): safe to adopt as far as our log goes. */
    uint64_t last = log_last_index(&core->log);
    core_commit_to(core, m->commit < last ? m->commit : last);
    struct craft_msg resp = {.type = CRAFT_MSG_HEARTBEAT_RESP, .to = m->from, .ctx = m->ctx};
    core_send(core, &resp, false);
}
