/* craftkv: the loop's own path for the common cases, without a worker thread.
 *
 * A worker costs two thread wake-ups per command (loop -> worker -> loop) on top of the
 * node's, and on a 2-core machine shared by three nodes those wake-ups are most of the
 * CPU a command costs. So when this node leads, the loop proposes a batch of writes itself
 * (craft_apply without waiting for queue room) and asks each future to notify it
 * (craft_future_notify); the batch comes back through the done queue when its last future
 * completes. Linearizable reads wait on one ReadIndex round the loop keeps in flight for
 * every batch that arrived before it was issued, then the loop reads the state machine
 * itself (an LMDB read transaction: microseconds). Stale reads are answered at once.
 *
 * A follower forwards its writes over the loop's pipelined connection to the leader
 * (server_fwd_async.c). Everything unusual goes to the workers, which block and retry
 * (server_exec.c): lease reads, a write that failed or met a full queue, a failed
 * barrier, no known leader. A write batch's retries run in request order, from the first command
 * that did not succeed; nothing after a command that could not be proposed is proposed
 * here, so no later seq of a session enters the log ahead of an earlier one. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kv/server_internal.h"

/* Runs on the node thread that completed a future: the batch's last one queues it. */
static void write_done(void *ctx)
{
    struct craftkv_task *head = ctx;
    if (atomic_fetch_sub(&head->pending, 1) == 1)
        craftkv_done_push(head->srv, head);
}

static void read_done(void *ctx)
{
    struct craftkv_server *s = ctx;
    atomic_store(&s->ar_flag, true);
    craftkv_done_push(s, NULL); /* a wake-up only */
}

/* Proposes SESSION_OPEN (idempotent) for session; false if it could not be proposed. Its
 * outcome shows in the results of the writes proposed after it. */
static bool open_session(struct craftkv_server *s, uint64_t session)
{
    struct craft_future *f = NULL;
    if (craftkv_propose_session_open(s, session, 0, &f) != CRAFT_OK)
        return false;
    craft_future_release(f);
    return true;
}

static int submit_writes(struct craftkv_server *s, struct craftkv_task *head)
{
    if (craft_state(s->node) != CRAFT_LEADER)
        return craftkv_fwd_submit(s, head);
    size_t items_cap = 0;
    for (struct craftkv_task *t = head; t; t = t->chain)
        if (t->argc + 1 > items_cap)
            items_cap = t->argc + 1;
    struct craft_kv_bytes *items = malloc(items_cap * sizeof *items);
    if (!items)
        return CRAFTKV_ASYNC_DECLINED;
    head->phase = 1;
    atomic_store(&head->pending, 1); /* ours, until every proposal is out */
    bool stop = false;
    if (head->open_session && !head->forwarded) {
        /* The connection's first write: open its session just ahead of it in the log. */
        stop = !open_session(s, head->session);
        if (!stop)
            head->open_session = false;
    }
    for (struct craftkv_task *t = head; t; t = t->chain) {
        t->srv = s;
        /* A forwarded seq 1 is its session's first write (a follower's connection, a
         * client library): open the session ahead of it here too. Otherwise it comes back
         * with "unknown session" and goes to a worker, one round per command: a follower's
         * first forwarded batch holds the first writes of all its clients. Reopening a live
         * session (a retry) changes nothing. */
        if (!stop && t->forwarded && t->seq == 1)
            stop = !open_session(s, t->session);
        if (stop) {
            t->retry = true;
            continue;
        }
        struct craft_kv_cmd c;
        if (!craftkv_task_command(t, craftkv_now_ms(), &c, items, &t->out))
            continue; /* a syntax error: answered, nothing proposed */
        struct craft_future *f = NULL;
        if (craftkv_propose_start(s, &c, 0, &f) != CRAFT_OK) {
            t->out.len = 0;
            t->retry = true; /* exec_write words a size error, retries the rest */
            stop = true;
            continue;
        }
        t->fut = f;
        atomic_fetch_add(&head->pending, 1);
        craft_future_notify(f, write_done, head);
        if (craft_future_done(f) && craft_future_wait(f, 0) != CRAFT_OK)
            stop = true; /* refused at once (a full queue, a lost leadership) */
    }
    free(items);
    write_done(head); /* drops ours: the batch comes back once every future completed */
    return CRAFTKV_ASYNC_TAKEN;
}

bool craftkv_async_collect(struct craftkv_server *s, struct craftkv_task *head)
{
    (void)s;
    bool all = true;
    for (struct craftkv_task *t = head; t; t = t->chain) {
        if (t->fut) {
            int rc = craft_future_wait(t->fut, 0);
            struct craft_kv_result *res = rc == CRAFT_OK ? craft_future_result(t->fut) : NULL;
            if (res && !craftkv_is_session_error(res))
                craftkv_put_result(&t->out, res);
            else
                t->retry = true;
            if (res)
                craft_kv_result_free(res);
            craft_future_release(t->fut);
            t->fut = NULL;
        }
        if (t->retry)
            all = false;
    }
    head->phase = all ? 0 : 2;
    return all;
}

/* ---- reads ---- */

void craftkv_serve_reads(struct craftkv_server *s, struct craftkv_task *head)
{
    struct craft_kv_read *r;
    int rc = craft_kv_read_begin(s->sm, &r);
    for (struct craftkv_task *t = head; t; t = t->chain) {
        if (rc != CRAFT_OK)
            craft_resp_append_errorf(&t->out, "ERR storage error: %s", craft_strerror(rc));
        else
            t->def->read(s, r, t->argc, t->argv, &t->out);
    }
    if (rc == CRAFT_OK)
        craft_kv_read_end(r);
}

/* Issues a barrier for every batch waiting for the next one. */
static void issue_barrier(struct craftkv_server *s)
{
    if (s->ar_fut || !s->ar_next)
        return;
    struct craft_future *f = craft_read_index(s->node);
    if (!f)
        return; /* out of memory: the next wake-up tries again */
    s->ar_cur = s->ar_next;
    s->ar_next = s->ar_next_tail = NULL;
    s->ar_fut = f;
    craft_future_notify(f, read_done, s);
}

static int submit_reads(struct craftkv_server *s, struct craftkv_task *head)
{
    if (head->read_mode == CRAFTKV_READ_STALE) {
        craftkv_serve_reads(s, head);
        return CRAFTKV_ASYNC_SERVED;
    }
    if (head->read_mode != CRAFTKV_READ_LINEARIZABLE)
        return CRAFTKV_ASYNC_DECLINED;
    head->phase = 1;
    head->next = NULL;
    if (s->ar_next_tail)
        s->ar_next_tail->next = head;
    else
        s->ar_next = head;
    s->ar_next_tail = head;
    issue_barrier(s);
    return CRAFTKV_ASYNC_TAKEN;
}

int craftkv_async_submit(struct craftkv_server *s, struct craftkv_task *head)
{
    if (head->def->kind == CRAFTKV_WRITE)
        return submit_writes(s, head);
    if (head->def->kind == CRAFTKV_READ)
        return submit_reads(s, head);
    return CRAFTKV_ASYNC_DECLINED;
}

void craftkv_async_poll(struct craftkv_server *s)
{
    if (!s->ar_fut) {
        issue_barrier(s); /* batches left waiting by a failed allocation */
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
    issue_barrier(s); /* for what arrived meanwhile, before serving: keeps a round going */
    while (list) {
        struct craftkv_task *head = list;
        list = head->next;
        head->next = NULL;
        head->phase = 0;
        if (rc == CRAFT_OK) {
            craftkv_serve_reads(s, head);
            craftkv_deliver(s, head);
        } else {
            craftkv_todo_push(s, head); /* no leader now: a worker waits and retries */
        }
    }
}

void craftkv_async_free(struct craftkv_server *s)
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
