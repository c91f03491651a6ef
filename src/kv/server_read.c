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

/* How long a batch whose round failed waits before it asks again. */
#define READ_BACKOFF_MS 20

/* Answers a batch from one read transaction of the local state machine. */
static void serve(struct craftkv_server *s, struct craftkv_task *head)
{
    struct craft_kv_read *r;
    int rc = craft_kv_read_begin(s->sm, &r);
    for (struct craftkv_task *t = head; t; t = t->chain) {
        if (rc != CRAFT_OK)
            craft_resp_append_errorf(&t->out, "ERR storage error: %s", craft_strerror(rc));
        else if (t->def->read)
            t->def->read(r, t->argc, t->argv, &t->out);
        else
            craftkv_multi_watch(t->conn, r, t->argc, t->argv, &t->out); /* WATCH */
        t->answered = true;
    }
    if (rc == CRAFT_OK)
        craft_kv_read_end(r);
    head->stage = CRAFTKV_STAGE_DONE;
}

/* Runs on the node thread that completed the round: the loop takes it in read_poll. */
static void round_done(void *ctx)
{
    struct craftkv_server *s = ctx;
    atomic_store(&s->ar_flag, true);
    craftkv_done_push(s, NULL); /* a wake-up only */
}

static void lease_done(void *ctx)
{
    struct craftkv_task *head = ctx;
    craftkv_done_push(head->srv, head);
}

/* Issues a round for every batch waiting for the next one. */
static void issue_round(struct craftkv_server *s)
{
    if (s->ar_fut || !s->ar_next)
        return;
    struct craft_future *f = craft_read_index(s->node);
    if (!f)
        return; /* out of memory: the next round of the loop tries again */
    s->ar_cur = s->ar_next;
    s->ar_next = s->ar_next_tail = NULL;
    s->ar_fut = f;
    craft_future_notify(f, round_done, s);
}

static void wait_round(struct craftkv_server *s, struct craftkv_task *head)
{
    head->stage = CRAFTKV_STAGE_BARRIER;
    head->next = NULL;
    if (s->ar_next_tail)
        s->ar_next_tail->next = head;
    else
        s->ar_next = head;
    s->ar_next_tail = head;
    issue_round(s);
}

/* Picks the batch's barrier. Returns true if it is DONE now. */
static bool route(struct craftkv_server *s, struct craftkv_task *head)
{
    if (s->stopping || craftkv_mono_ms() >= head->deadline_ms) {
        craftkv_batch_timeout(s, head, CRAFTKV_STAGE_DONE);
        return true;
    }
    if (head->read_mode == CRAFTKV_READ_STALE) {
        serve(s, head);
        return true;
    }
    if (head->read_mode == CRAFTKV_READ_LEASE && craft_state(s->node) == CRAFT_LEADER) {
        struct craft_future *f = craft_read_lease(s->node);
        if (f) {
            CRAFT_ASSERT(head->fut == NULL);
            head->fut = f;
            head->stage = CRAFTKV_STAGE_LEASE;
            craft_future_notify(f, lease_done, head);
            return false;
        }
    }
    wait_round(s, head);
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
        if (rc == CRAFT_OK) {
            serve(s, head);
            return true;
        }
        wait_round(s, head); /* no lease holds now: a round instead */
        return false;
    }
    case CRAFTKV_STAGE_BACKOFF:
        return route(s, head);
    default:
        CRAFT_ASSERT(head->stage == CRAFTKV_STAGE_DONE);
        return true;
    }
}

void craftkv_read_poll(struct craftkv_server *s)
{
    if (!s->ar_fut) {
        issue_round(s); /* batches left waiting by a failed allocation */
        return;
    }
    if (!atomic_exchange(&s->ar_flag, false))
        return;
    /* The flag is set after completion, so the future is done here; it may still have
     * completed *with* CRAFT_ETIMEOUT (the round itself timed out): craft_future_done
     * tells the two apart. */
    if (!craft_future_done(s->ar_fut))
        return;
    int rc = craft_future_wait(s->ar_fut, 0);
    craft_future_release(s->ar_fut);
    s->ar_fut = NULL;
    struct craftkv_task *list = s->ar_cur;
    s->ar_cur = NULL;
    issue_round(s); /* for what arrived meanwhile, before serving: keeps a round going */
    uint64_t now = craftkv_mono_ms();
    while (list) {
        struct craftkv_task *head = list;
        list = head->next;
        head->next = NULL;
        if (rc == CRAFT_OK) {
            serve(s, head);
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

void craftkv_read_free(struct craftkv_server *s)
{
    if (s->ar_fut) {
        craft_future_release(s->ar_fut);
        s->ar_fut = NULL;
    }
    struct craftkv_task *lists[2] = {s->ar_cur, s->ar_next};
    for (int i = 0; i < 2; i++) {
        while (lists[i]) {
            struct craftkv_task *t = lists[i];
            lists[i] = t->next;
            craftkv_batch_free(t);
        }
    }
    s->ar_cur = s->ar_next = s->ar_next_tail = NULL;
}
