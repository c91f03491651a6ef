/* Quiescence of one replica: the rules (quiesce.h), thread-free. */
#include "runtime/quiesce.h"

#include "base/assert.h"
#include "codec/msg_codec.h"

static void tell(const struct craft_quiesce_io *io, uint64_t to, uint8_t kind, uint64_t term,
                 uint64_t index)
{
    struct host_msg m = {.kind = kind, .term = term, .index = index};
    io->send(io->ctx, to, &m);
}

/* Every other member of the replica's configuration. */
static void tell_all(struct craft_driver *d, const struct craft_quiesce_io *io, uint8_t kind,
                     uint64_t term, uint64_t index)
{
    struct craft_core_status st;
    craft_core_status(craft_driver_core(d), &st);
    const struct craft_conf *c = &st.conf;
    uint64_t ids[3 * CRAFT_CONF_NODES_MAX];
    size_t k = 0;
    for (uint32_t i = 0; i < c->n_voters; i++) ids[k++] = c->voters[i];
    for (uint32_t i = 0; i < c->n_voters_outgoing; i++) ids[k++] = c->voters_outgoing[i];
    for (uint32_t i = 0; i < c->n_learners; i++) ids[k++] = c->learners[i];
    for (size_t i = 0; i < k; i++) {
        bool seen = ids[i] == io->self;
        for (size_t j = 0; j < i && !seen; j++) seen = ids[j] == ids[i];
        if (!seen) {
            tell(io, ids[i], kind, term ? term : st.term, index);
        }
    }
}

bool craft_quiesce_wake(struct craft_quiesce *q, struct craft_driver *d,
                        const struct craft_quiesce_io *io, bool tell_others, uint64_t now)
{
    if (!q->quiesced) {
        return false;
    }
    q->quiesced = false;
    q->quiet_since = 0; /* a new quiet spell must last as long as the first */
    craft_driver_resume(d, now);
    if (tell_others) {
        tell_all(d, io, HOST_MSG_WAKE, 0, 0);
    }
    return true;
}

/* Anything in flight in the core. */
static bool core_busy(const struct craft_core_status *st)
{
    return st->commit != st->last_index || st->applied != st->commit ||
           st->persisted != st->last_index ||
           st->transfer_target != CRAFT_NONE || st->pending_reads > 0 ||
           st->conf.n_voters_outgoing > 0;
}

bool craft_quiesce_check(struct craft_quiesce *q, struct craft_driver *d,
                         const struct craft_quiesce_io *io, bool busy_here,
                         uint32_t heartbeat_ms, uint64_t now)
{
    if (q->quiesced) {
        return false;
    }
    struct craft_core *core = craft_driver_core(d);
    if (craft_core_role(core) != CRAFT_LEADER) {
        q->quiet_since = 0;
        return false;
    }
    struct craft_core_status st;
    craft_core_status(core, &st);
    bool quiet = !busy_here && !core_busy(&st);
    struct craft_peer_status peers[CRAFT_CONF_NODES_MAX];
    size_t np = quiet ? craft_core_peers(core, peers, CRAFT_CONF_NODES_MAX) : 0;
    for (size_t i = 0; i < np && quiet; i++) {
        quiet = peers[i].id == io->self || peers[i].match == st.last_index;
    }
    if (!quiet || q->quiet_since == 0 || q->quiet_term != st.term ||
        q->quiet_index != st.last_index) {
        q->quiet_since = quiet ? now : 0;
        q->quiet_term = st.term;
        q->quiet_index = st.last_index;
        return false;
    }
    if (now - q->quiet_since < CRAFT_QUIESCE_HEARTBEATS * (uint64_t)heartbeat_ms) {
        return false;
    }
    q->quiesced = true;
    tell_all(d, io, HOST_MSG_QUIESCE, st.term, st.last_index);
    return true;
}

int craft_quiesce_recv(struct craft_quiesce *q, struct craft_driver *d,
                       const struct craft_quiesce_io *io, uint64_t from,
                       const struct host_msg *m, bool busy_here, bool enabled, uint64_t now)
{
    if (m->kind == HOST_MSG_WAKE) {
        /* Awake again, or (a leader told no by a follower) its quiet spell starts over:
         * the heartbeats to come bring that follower up to date. */
        bool woke = craft_quiesce_wake(q, d, io, false, now);
        q->quiet_since = 0;
        return woke ? -1 : 0;
    }
    CRAFT_ASSERT(m->kind == HOST_MSG_QUIESCE);
    if (q->quiesced) {
        return 0;
    }
    struct craft_core_status st;
    craft_core_status(craft_driver_core(d), &st);
    bool agree = enabled && st.role == CRAFT_FOLLOWER && st.term == m->term &&
                 st.leader == from && st.last_index == m->index && !busy_here &&
                 !core_busy(&st);
    if (!agree) {
        if (enabled) {
            tell(io, from, HOST_MSG_WAKE, st.term, 0);
        }
        return 0;
    }
    q->quiesced = true;
    q->quiet_term = st.term;
    return 1;
}

bool craft_quiesce_msg_wakes(const struct craft_quiesce *q, const uint8_t *bytes, size_t len)
{
    return q->quiesced && craft_msg_peek_type(bytes, len) != CRAFT_MSG_HEARTBEAT_RESP;
}

bool craft_quiesce_settle(struct craft_quiesce *q, struct craft_driver *d,
                          const struct craft_quiesce_io *io, uint64_t now)
{
    if (!q->quiesced) {
        return false;
    }
    struct craft_core_status st;
    craft_core_status(craft_driver_core(d), &st);
    if (st.term == q->quiet_term && (st.role == CRAFT_LEADER || st.role == CRAFT_FOLLOWER)) {
        return false;
    }
    return craft_quiesce_wake(q, d, io, false, now);
}

bool craft_quiesce_leave(struct craft_quiesce *q, struct craft_driver *d,
                         const struct craft_quiesce_io *io)
{
    if (!q->quiesced) {
        return false;
    }
    tell_all(d, io, HOST_MSG_WAKE, 0, 0);
    q->quiesced = false;
    return true;
}
