/* Quiescence of idle groups (docs/design/multiraft.md, "Coalesced heartbeats and
 * quiescence"): a group whose replicas agree that nothing is in flight stops ticking on
 * every replica, so a thousand idle groups send no heartbeats and start no elections. On
 * the loop thread, for one group at a time; the host runs the process heartbeats that
 * wake the groups of a process that went silent (host.c).
 *
 * Safety never rests on this: Raft's timers only decide when elections start (thesis
 * 3.4), and the lease rests on acknowledged heartbeat rounds, which a quiet leader stops
 * getting, so its lease runs out as it would without quiescence. What this must keep is
 * liveness: a quiesced replica wakes for any work, and tells the others when the work is
 * its own (a leader then heartbeats again, so no follower times out alone); a follower
 * that refuses to quiesce says so; a replica that leaves or fails wakes the others; and
 * the followers of a leader whose process went silent wake and elect. */
#include "base/assert.h"
#include "codec/msg_codec.h"
#include "runtime/host_msg.h"
#include "runtime/rt.h"

/* A leader quiesces its group after this many heartbeat intervals with nothing in
 * flight: the heartbeats of that time carried the final commit index to every follower,
 * so they agree when they are told. */
#define QUIET_HEARTBEATS 3

static void tell(struct craft_node *n, uint64_t to, uint8_t kind, uint64_t term, uint64_t index)
{
    struct host_msg m = {.kind = kind, .term = term, .index = index};
    rt_host_send_msg(n->host, to, n->group, &m);
}

/* Every other member of the group's configuration. */
static void tell_all(struct craft_node *n, uint8_t kind, uint64_t term, uint64_t index)
{
    struct craft_core_status st;
    craft_core_status(craft_driver_core(n->driver), &st);
    const struct craft_conf *c = &st.conf;
    uint64_t ids[3 * CRAFT_CONF_NODES_MAX];
    size_t k = 0;
    for (uint32_t i = 0; i < c->n_voters; i++) ids[k++] = c->voters[i];
    for (uint32_t i = 0; i < c->n_voters_outgoing; i++) ids[k++] = c->voters_outgoing[i];
    for (uint32_t i = 0; i < c->n_learners; i++) ids[k++] = c->learners[i];
    for (size_t i = 0; i < k; i++) {
        bool seen = ids[i] == n->cfg.id;
        for (size_t j = 0; j < i && !seen; j++) seen = ids[j] == ids[i];
        if (!seen) {
            tell(n, ids[i], kind, term ? term : st.term, index);
        }
    }
}

void rt_quiesce_wake(struct craft_node *n, bool local, uint64_t now)
{
    if (!n->quiesced) {
        return;
    }
    n->quiesced = false;
    n->quiet_since = 0; /* a new quiet spell must last as long as the first */
    atomic_fetch_sub(&n->host->groups_quiesced, 1);
    craft_driver_resume(n->driver, now);
    if (local) {
        tell_all(n, HOST_MSG_WAKE, 0, 0);
    }
}

/* Anything in flight on this replica: the runtime's pending work, and the core's. */
static bool busy(const struct craft_node *n, const struct craft_core_status *st)
{
    return n->futs_head != NULL || n->reads != NULL || n->lease_reads != NULL ||
           n->blocked_head != NULL || n->transfer_f != NULL || n->snapshot_running ||
           n->snapshot_waiters != NULL || n->n_promote > 0 ||
           n->disk_done_seq != n->disk_submitted_seq || n->failed_seen ||
           st->commit != st->last_index || st->applied != st->commit ||
           st->transfer_target != CRAFT_NONE || st->pending_reads > 0 ||
           st->conf.n_voters_outgoing > 0;
}

void rt_quiesce_check(struct craft_node *n, uint64_t now)
{
    if (!n->host->quiesce || n->quiesced || atomic_load(&n->stopping)) {
        return;
    }
    struct craft_core *core = craft_driver_core(n->driver);
    if (craft_core_role(core) != CRAFT_LEADER) {
        n->quiet_since = 0;
        return;
    }
    struct craft_core_status st;
    craft_core_status(core, &st);
    bool quiet = !busy(n, &st);
    struct craft_peer_status peers[CRAFT_STATS_PEERS_MAX];
    size_t np = quiet ? craft_core_peers(core, peers, CRAFT_STATS_PEERS_MAX) : 0;
    for (size_t i = 0; i < np && quiet; i++) {
        quiet = peers[i].id == n->cfg.id || peers[i].match == st.last_index;
    }
    if (!quiet || n->quiet_since == 0 || n->quiet_term != st.term ||
        n->quiet_index != st.last_index) {
        n->quiet_since = quiet ? now : 0;
        n->quiet_term = st.term;
        n->quiet_index = st.last_index;
        return;
    }
    if (now - n->quiet_since < QUIET_HEARTBEATS * (uint64_t)n->cfg.heartbeat_ms) {
        return;
    }
    n->quiesced = true;
    atomic_fetch_add(&n->host->groups_quiesced, 1);
    tell_all(n, HOST_MSG_QUIESCE, st.term, st.last_index);
}

void rt_quiesce_recv(struct craft_node *n, uint64_t from, const struct host_msg *m, uint64_t now)
{
    if (m->kind == HOST_MSG_WAKE) {
        /* Awake again, or (a leader told no by a follower) its quiet spell starts over:
         * the heartbeats to come bring that follower up to date. */
        rt_quiesce_wake(n, false, now);
        n->quiet_since = 0;
        return;
    }
    CRAFT_ASSERT(m->kind == HOST_MSG_QUIESCE);
    if (n->quiesced || atomic_load(&n->stopping)) {
        return;
    }
    struct craft_core *core = craft_driver_core(n->driver);
    struct craft_core_status st;
    craft_core_status(core, &st);
    /* This replica agrees only if it follows that leader in that term, holds and knows
     * committed everything the leader has, and has nothing of its own in flight; if not,
     * the leader must go on heartbeating (it wakes on the answer). */
    bool agree = st.role == CRAFT_FOLLOWER && st.term == m->term && st.leader == from &&
                 st.last_index == m->index && !busy(n, &st);
    if (!agree && n->host->quiesce) {
        tell(n, from, HOST_MSG_WAKE, st.term, 0);
        return;
    }
    if (agree) {
        n->quiesced = true;
        n->quiet_term = st.term;
        atomic_fetch_add(&n->host->groups_quiesced, 1);
    }
}

bool rt_quiesce_msg_wakes(const struct craft_node *n, const uint8_t *bytes, size_t len)
{
    /* The answers to a quiet leader's last heartbeats arrive after it quiesced: they
     * change nothing (one that does, a higher term, shows after the step: settle). */
    return n->quiesced && craft_msg_peek_type(bytes, len) != CRAFT_MSG_HEARTBEAT_RESP;
}

void rt_quiesce_settle(struct craft_node *n, uint64_t now)
{
    if (!n->quiesced) {
        return;
    }
    struct craft_core *core = craft_driver_core(n->driver);
    struct craft_core_status st;
    craft_core_status(core, &st);
    if (st.term != n->quiet_term || (st.role != CRAFT_LEADER && st.role != CRAFT_FOLLOWER)) {
        rt_quiesce_wake(n, false, now);
    }
}

void rt_quiesce_leave(struct craft_node *n)
{
    if (n->quiesced) {
        /* Its replicas may wait for this one (their leader): they elect without it. */
        tell_all(n, HOST_MSG_WAKE, 0, 0);
        n->quiesced = false;
        atomic_fetch_sub(&n->host->groups_quiesced, 1);
    }
}
