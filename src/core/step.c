/* craft_core_step: the term rules every message passes (thesis figure 3.1, "all servers"),
 * then dispatch to one handler per message type (recv_*.c). */
#include "core/internal.h"

static bool is_leader_message(uint8_t type)
{
    return type == CRAFT_MSG_APPEND || type == CRAFT_MSG_HEARTBEAT || type == CRAFT_MSG_SNAPSHOT;
}

/* Thesis 4.2.3: a server that heard from a leader within the minimum election timeout
 * ignores vote requests, so a removed or partitioned server cannot depose a healthy
 * leader. A leadership transfer's campaign is exempt. */
static bool in_leader_lease(const struct craft_core *core, const struct craft_msg *m)
{
    if (m->transfer || !core->cfg.check_quorum) {
        return false;
    }
    if (core->role == CRAFT_LEADER || core->now < core->votes_blocked_until) {
        return true;
    }
    /* Not tied to `leader`: a message from a higher term that is no vote request (a read
     * index request from a node that moved on, say) resets `leader`, but the promise made
     * to the last leader (its lease rests on it) still stands. */
    return core->leader_contact &&
           core->now - core->leader_contact_at < core->cfg.election_timeout_ms;
}

static int check_msg(const struct craft_core *core, const struct craft_msg *m)
{
    if (m->type == 0 || m->type >= CRAFT_MSG_TYPE_COUNT_ || m->to != core->cfg.id ||
        m->from == CRAFT_NONE || m->from == core->cfg.id) {
        return CRAFT_EINVAL;
    }
    /* Terms start at 1, and the largest would wrap when a node campaigns past it. Indexes
     * and terms this large cannot be reached (2^62 entries); refusing them keeps every
     * "+ 1" in the core from wrapping. */
    const uint64_t huge = UINT64_C(1) << 62;
    if (m->term == 0 || m->term >= huge || m->log_index >= huge || m->commit >= huge ||
        m->index >= huge || m->reject_hint >= huge || m->snap.index >= huge ||
        m->offset >= huge) {
        return CRAFT_EINVAL;
    }
    if (m->n_entries > 0 && m->entries == NULL) {
        return CRAFT_EINVAL;
    }
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct craft_entry *e = &m->entries[i];
        if (e->index != m->log_index + 1 + i || e->term == 0 || e->term > m->term ||
            (i > 0 && e->term < m->entries[i - 1].term) || (i == 0 && e->term < m->log_term) ||
            (e->len > 0 && e->data == NULL)) {
            return CRAFT_EINVAL;
        }
    }
    /* Nothing an honest sender describes can be from a term after its own. */
    if (m->log_term > m->term) {
        return CRAFT_EINVAL;
    }
    if (m->type == CRAFT_MSG_SNAPSHOT &&
        ((m->chunk_len > 0 && m->chunk == NULL) || m->snap.index == 0 || m->snap.term == 0 ||
         m->snap.term > m->term)) {
        return CRAFT_EINVAL;
    }
    return CRAFT_OK;
}

static int craft_core_step_call(struct craft_core *core, const struct craft_msg *m, uint64_t now)
{
    if (core->error != CRAFT_OK) {
        return core->error; /* stopped: core.md, "Out of memory" */
    }
    core_enter(core, now);
    int rv = check_msg(core, m);
    if (rv != CRAFT_OK) {
        return rv;
    }
    if (m->term > core->term) {
        bool vote_req = m->type == CRAFT_MSG_VOTE || m->type == CRAFT_MSG_PREVOTE;
        if (vote_req && in_leader_lease(core, m)) {
            TRACE(core, CRAFT_T_VOTE, "ignore %s from %llu: leader lease",
                  craft_msg_type_name(m->type), (unsigned long long)m->from);
            return CRAFT_OK;
        }
        if (m->type == CRAFT_MSG_PREVOTE) {
            /* A pre-vote never changes our term. */
        } else if (m->type == CRAFT_MSG_PREVOTE_RESP && !m->reject) {
            /* The granted answer carries the term we would campaign in. */
        } else {
            core_become_follower(core, m->term,
                                 is_leader_message(m->type) ? m->from : CRAFT_NONE);
        }
    } else if (m->term < core->term) {
        if (is_leader_message(m->type) || m->type == CRAFT_MSG_PREVOTE) {
            /* Tell a stale leader (or pre-candidate) our term, so it steps down; without
             * this a node partitioned with check-quorum on could stall (etcd-raft #5451). */
            struct craft_msg resp = {
                .type = m->type == CRAFT_MSG_PREVOTE ? CRAFT_MSG_PREVOTE_RESP
                                                     : CRAFT_MSG_APPEND_RESP,
                .to = m->from,
                .reject = true,
            };
            core_send(core, &resp, false); /* held while our term is not durable */
        }
        return CRAFT_OK;
    }

    switch ((enum craft_msg_type)m->type) {
    case CRAFT_MSG_APPEND:
        recv_append(core, m);
        break;
    case CRAFT_MSG_APPEND_RESP:
        recv_append_resp(core, m);
        break;
    case CRAFT_MSG_HEARTBEAT:
        recv_heartbeat(core, m);
        break;
    case CRAFT_MSG_HEARTBEAT_RESP:
        recv_heartbeat_resp(core, m);
        break;
    case CRAFT_MSG_VOTE:
    case CRAFT_MSG_PREVOTE:
        recv_vote(core, m);
        break;
    case CRAFT_MSG_VOTE_RESP:
    case CRAFT_MSG_PREVOTE_RESP:
        recv_vote_resp(core, m);
        break;
    case CRAFT_MSG_SNAPSHOT:
        recv_snapshot(core, m);
        break;
    case CRAFT_MSG_SNAPSHOT_RESP:
        recv_snapshot_resp(core, m);
        break;
    case CRAFT_MSG_TIMEOUT_NOW:
        recv_timeout_now(core, m);
        break;
    case CRAFT_MSG_READ_INDEX:
        recv_read_index(core, m);
        break;
    case CRAFT_MSG_READ_INDEX_RESP:
        recv_read_index_resp(core, m);
        break;
    case CRAFT_MSG_TYPE_COUNT_:
        CRAFT_UNREACHABLE();
    }
    return CRAFT_OK;
}

/* The call, and the stop it may have caused (a step that could not allocate: core.md,
 * "Out of memory") as its answer. */
int craft_core_step(struct craft_core *core, const struct craft_msg *m, uint64_t now)
{
    int rv = craft_core_step_call(core, m, now);
    return core->error != CRAFT_OK ? core->error : rv;
}
