/* craftkv: reads, on the loop thread.
 *
 * Every node serves reads from its own state machine; what differs is the barrier a batch
 * needs first (the connection's mode, CRAFT.CONSISTENCY):
 *
 *   stale           none: answered at once.
 *   lease           on the leader, its lease check (craft_read_lease: no round while the
 *                   lease holds); where no lease holds, or on a follower, as linearizable.
 *   linearizable    the loop's ReadIndex round: one round in flight at a time serves every
 *                   batch that arrived before it was issued (its read index is at least
 *                   the commit index any of them could have observed), so N concurrent
 *                   reads cost one or two rounds, not N. A follower's round asks the leader.
 *
 * A round that fails (no leader, a leader change) puts its batches in BACKOFF; they ask
 * again until their deadline, then get TRYAGAIN. Then one LMDB read transaction per batch
 * (microseconds) answers every command. No worker thread, no blocking: completions come
 * back through the queues (server_queue.c). */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "kv/server_internal.h"
#include "shard/view.h"

/* How long a batch whose round failed waits before it asks again. */
#define READ_BACKOFF_MS 20

/* What a shard group does with a key's slot at the read's state (the routing that sent
 * the batch here used the server's configuration, which may be ahead of the group's or
 * behind it). */
enum slot_verdict { SLOT_SERVED, SLOT_ELSEWHERE, SLOT_COMING };

static enum slot_verdict slot_check(struct craft_kv_read *r, struct craftkv_task *t, uint8_t *st)
{
    int slot = craftkv_task_slot(t);
    *st = CRAFT_SLOT_SERVING;
    if (slot < 0)
        return SLOT_SERVED; /* routed: keys in one slot */
    if (craft_kv_read_slot_state(r, (uint16_t)slot, st) != CRAFT_OK)
        return SLOT_SERVED; /* the read itself reports the storage error */
    if (craft_slot_state_served(*st))
        return SLOT_SERVED;
    /* On its way here (PULLING), or ours in the configuration this server routes by but
     * not applied by the group yet: served soon, so the batch waits rather than answering
     * TRYAGAIN to clients that would not retry. */
    const struct craftkv_route *rt = craftkv_route_now(t->grp->srv);
    uint8_t k = rt ? rt->cfg.owner[slot] : CRAFT_SHARD_NONE;
    if (*st == CRAFT_SLOT_PULLING ||
        (k != CRAFT_SHARD_NONE && rt->cfg.groups[k].gid == t->grp->gid))
        return SLOT_COMING;
    return SLOT_ELSEWHERE;
}

/* Answers a batch from one read transaction of the local state machine: true. False if a
 * slot of the batch is on its way to this group: nothing answered, ask again later. */
static bool serve(struct craftkv_task *head)
{
    struct craft_kv_read *r;
    int rc = craft_kv_read_begin(head->grp->sm, &r);
    bool sharded = head->grp->srv->sharded;
    uint8_t st;
    if (rc == CRAFT_OK && sharded && craftkv_mono_ms() < head->deadline_ms) {
        for (struct craftkv_task *t = head; t; t = t->chain)
            if (slot_check(r, t, &st) == SLOT_COMING) {
                craft_kv_read_end(r);
                return false;
            }
        if (craftkv_reroute_reads(head->grp->srv, head, r)) {
            craft_kv_read_end(r);
            return false; /* its new group's barrier next */
        }
    }
    for (struct craftkv_task *t = head; t; t = t->chain) {
        int slot;
        if (rc != CRAFT_OK)
            craft_resp_append_errorf(&t->out, "ERR storage error: %s", craft_strerror(rc));
        else if (sharded && slot_check(r, t, &st) != SLOT_SERVED &&
                 (slot = craftkv_task_slot(t)) >= 0)
            craftkv_reply_slot_elsewhere(t->grp->srv, t->grp, (uint16_t)slot, st, &t->out);
        else if (t->def->read)
            t->def->read(r, t->argc, t->argv, &t->out);
        else
            craftkv_multi_watch(t->conn, r, t->argc, t->argv, &t->out); /* WATCH */
        t->answered = true;
    }
    if (rc == CRAFT_OK)
        craft_kv_read_end(r);
    head->stage = CRAFTKV_STAGE_DONE;
    return true;
}

/* serve, or, for a batch that must wait for its slot, BACKOFF: true if DONE. */
static bool serve_or_wait(struct craftkv_task *head)
{
    if (serve(head))
        return true;
    head->stage = CRAFTKV_STAGE_BACKOFF;
    craftkv_later_push(head->grp->srv, head, craftkv_mono_ms() + READ_BACKOFF_MS);
    return false;
}

/* Runs on the node thread that completed the round: the loop takes it in read_poll. */
static void round_done(void *ctx)
{
    struct craftkv_group *g = ctx;
    atomic_store(&g->ar_flag, true);
    craftkv_done_push(g->srv, NULL); /* a wake-up only */
}

static void lease_done(void *ctx)
{
    struct craftkv_task *head = ctx;
    craftkv_done_push(head->srv, head);
}

/* Issues a round for every batch waiting for the next one. */
static void issue_round(struct craftkv_group *g)
{
    if (g->ar_fut || !g->ar_next)
        return;
    struct craft_future *f = craft_read_index(g->node);
    if (!f)
        return; /* out of memory: the next round of the loop tries again */
    g->ar_cur = g->ar_next;
    g->ar_next = g->ar_next_tail = NULL;
    g->ar_fut = f;
    craft_future_notify(f, round_done, g);
}

static void wait_round(struct craftkv_task *head)
{
    struct craftkv_group *g = head->grp;
    head->stage = CRAFTKV_STAGE_BARRIER;
    head->next = NULL;
    if (g->ar_next_tail)
        g->ar_next_tail->next = head;
    else
        g->ar_next = head;
    g->ar_next_tail = head;
    issue_round(g);
}

/* Picks the batch's barrier. Returns true if it is DONE now. */
static bool route(struct craftkv_server *s, struct craftkv_task *head)
{
    if (s->stopping || craftkv_mono_ms() >= head->deadline_ms) {
        craftkv_batch_timeout(s, head, CRAFTKV_STAGE_DONE);
        return true;
    }
    if (head->read_mode == CRAFTKV_READ_STALE)
        return serve_or_wait(head);
    if (head->read_mode == CRAFTKV_READ_LEASE && craft_state(head->grp->node) == CRAFT_LEADER) {
        struct craft_future *f = craft_read_lease(head->grp->node);
        if (f) {
            CRAFT_ASSERT(head->fut == NULL);
            head->fut = f;
            head->stage = CRAFTKV_STAGE_LEASE;
            craft_future_notify(f, lease_done, head);
            return false;
        }
    }
    wait_round(head);
    return false;
}

bool craftkv_read_start(struct craftkv_server *s, struct craftkv_task *head)
{
    CRAFT_ASSERT(head->stage == CRAFTKV_STAGE_NEW);
    head->srv = s;
    head->deadline_ms = head->arrived_ms + s->opts.timeout_ms;
    return route(s, head);
}

bool craftkv_read_step(struct craftkv_server *s, struct craftkv_task *head)
{
    CRAFT_ASSERT(head->def->kind == CRAFTKV_READ);
    switch (head->stage) {
    case CRAFTKV_STAGE_LEASE: {
        int rc = craft_future_wait(head->fut, 0);
        craft_future_release(head->fut);
        head->fut = NULL;
        if (rc == CRAFT_OK)
            return serve_or_wait(head);
        wait_round(head); /* no lease holds now: a round instead */
        return false;
    }
    case CRAFTKV_STAGE_BACKOFF:
        return route(s, head);
    default:
        CRAFT_ASSERT(head->stage == CRAFTKV_STAGE_DONE);
        return true;
    }
}

void craftkv_read_poll(struct craftkv_group *g)
{
    struct craftkv_server *s = g->srv;
    if (!g->ar_fut) {
        issue_round(g); /* batches left waiting by a failed allocation */
        return;
    }
    if (!atomic_exchange(&g->ar_flag, false))
        return;
    /* The flag is set after completion, so the future is done here; it may still have
     * completed *with* CRAFT_ETIMEOUT (the round itself timed out): craft_future_done
     * tells the two apart. */
    if (!craft_future_done(g->ar_fut))
        return;
    int rc = craft_future_wait(g->ar_fut, 0);
    craft_future_release(g->ar_fut);
    g->ar_fut = NULL;
    struct craftkv_task *list = g->ar_cur;
    g->ar_cur = NULL;
    issue_round(g); /* for what arrived meanwhile, before serving: keeps a round going */
    uint64_t now = craftkv_mono_ms();
    while (list) {
        struct craftkv_task *head = list;
        list = head->next;
        head->next = NULL;
        if (rc == CRAFT_OK) {
            if (!serve_or_wait(head))
                continue;
        } else if (s->stopping || now >= head->deadline_ms) {
            craftkv_batch_timeout(s, head, CRAFTKV_STAGE_DONE);
        } else {
            head->stage = CRAFTKV_STAGE_BACKOFF; /* no leader now: ask again soon */
            craftkv_later_push(s, head, now + READ_BACKOFF_MS);
            continue;
        }
        craftkv_ready_push(s, head);
    }
}

void craftkv_read_free(struct craftkv_group *g)
{
    if (g->ar_fut) {
        craft_future_release(g->ar_fut);
        g->ar_fut = NULL;
    }
    struct craftkv_task *lists[2] = {g->ar_cur, g->ar_next};
    for (int i = 0; i < 2; i++) {
        while (lists[i]) {
            struct craftkv_task *t = lists[i];
            lists[i] = t->next;
            craftkv_batch_free(t);
        }
    }
    g->ar_cur = g->ar_next = g->ar_next_tail = NULL;
}
