/* craftkv: the write pipeline. One path for every write batch, whatever its origin: a
 * client of this node, a follower's forwarded batch (CRAFT.FWD), or a retry after a leader
 * change, a full queue or an unknown session. It runs on the loop thread, never blocks,
 * and moves a batch through named stages (design: docs/design/craftkv.md, "Writes"):
 *
 *   ROUTE      decide where the unanswered commands go: this node leads -> PROPOSE;
 *              another node leads -> FORWARD (unless the batch was itself forwarded:
 *              then -CRAFTNOTLEADER, so two nodes that disagree about the leader never
 *              bounce a write between them); no leader known -> BACKOFF.
 *   PROPOSE    craft_apply each command in request order (a SESSION_OPEN just ahead of a
 *              command whose session is new); the batch waits in PROPOSED until its last
 *              future completed (the node thread that completes it queues the batch).
 *   FORWARD    the loop's pipelined connection to the leader (server_fwd.c); the batch
 *              waits in FORWARDED until every command's reply or failure is known.
 *   AWAIT      the results: answered commands keep their reply; an unknown session marks
 *              its command for a SESSION_OPEN; the rest (leader change, queue full, lost
 *              connection) are routed again with the same session and seq. Sharded, a
 *              shard group's refusal of a slot (MOVED, TRYAGAIN) closed its seq there: once
 *              the batch is all answered, the command goes again under a new seq, in the
 *              same group or in the group hosted here that owns the slot now
 *              (craftkv_reroute_writes, server_route.c); the client sees the refusal only
 *              when the owner is hosted elsewhere, or at the deadline.
 *   BACKOFF    a retry that would go where the last attempt went and answered nothing
 *              waits a little first (server_queue.c's later list), so a full queue or a
 *              missing leader is not a busy loop.
 *   DONE       every command has its reply; past the deadline the rest get TRYAGAIN,
 *              also while PROPOSED or FORWARDED (the batch is then ORPHANED: its replies
 *              go out, and it is freed when its futures or the leader's replies come back).
 *
 * Exactly once: every attempt of a command carries the same session and seq, and the state
 * machine answers a seq it applied already with the saved result (kv.md); a refused seq,
 * closed by its refusal, is never applied, so its command may take a new one. Order: commands
 * are proposed in request order by one thread and a proposal that fails stops the later
 * ones of its pass, so no later seq of a session enters the log ahead of an earlier one. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "kv/server_internal.h"

/* How long a retry that answered nothing waits before it goes where it went again. */
#define BACKOFF_LEADER_MS 20    /* this node leads (its queue was full, a round failed) */
#define BACKOFF_NO_LEADER_MS 50 /* no leader known, unreachable, or it refused */

/* ---- the steps, one copy each ---- */

const char *craftkv_leader_addr(struct craftkv_group *g, uint64_t *leader)
{
    struct craftkv_server *s = g->srv;
    uint64_t id = craft_leader(g->node, NULL, 0);
    if (leader != NULL)
        *leader = id;
    return id != 0 && id != s->opts.id ? craftkv_client_addr(s, id) : NULL;
}

void craftkv_reply_notleader(struct craftkv_group *g, struct craft_resp_buf *out)
{
    const char *addr = craftkv_leader_addr(g, NULL);
    craft_resp_append_errorf(out, "%s %s", CRAFTKV_ERR_NOTLEADER, addr ? addr : "?");
}

void craftkv_reply_timeout(struct craftkv_server *s, struct craft_resp_buf *out)
{
    out->len = 0;
    if (s->stopping)
        craft_resp_append_error(out, "ERR server shutting down");
    else
        craft_resp_append_errorf(out, "TRYAGAIN no leader or no quorum within %" PRIu32 " ms",
                                 s->opts.timeout_ms);
}

void craftkv_batch_timeout(struct craftkv_server *s, struct craftkv_task *head, uint8_t stage)
{
    for (struct craftkv_task *t = head; t; t = t->chain)
        if (!t->answered) {
            craftkv_reply_timeout(s, &t->out);
            t->answered = true;
        }
    head->stage = stage;
}

/* Encodes c and proposes it: 0 with *f, or an error (nothing proposed). The loop proposes
 * inside craft_batch_begin/end, so this never blocks; the timeout (the time left to the
 * batch's deadline) lets the node hold a proposal that meets a full uncommitted budget, in
 * order, instead of refusing it while a smaller one behind it gets in (a later seq of a
 * session ahead of an earlier one). */
static int propose(struct craftkv_group *g, uint32_t timeout_ms, const struct craft_kv_cmd *c,
                   struct craft_future **f)
{
    *f = NULL;
    size_t size = craft_kv_cmd_size(c);
    if (size == 0)
        return CRAFT_EINVAL;
    uint8_t stack[512];
    uint8_t *buf = size <= sizeof stack ? stack : malloc(size);
    if (!buf)
        return CRAFT_ENOMEM;
    size_t len;
    int rc = craft_kv_cmd_encode(c, buf, size, &len);
    if (rc == CRAFT_OK) {
        *f = craft_apply(g->node, buf, (uint32_t)len, timeout_ms);
        if (!*f)
            rc = CRAFT_ENOMEM;
    }
    if (buf != stack)
        free(buf);
    return rc;
}

/* SESSION_OPEN is idempotent (reopening a live session changes nothing), so a retry of
 * one is harmless. Its outcome shows in the results of the writes proposed after it. */
static bool propose_session_open(struct craftkv_group *g, uint32_t timeout_ms, uint64_t now,
                                 uint64_t session)
{
    struct craft_kv_cmd open = {.op = CRAFT_KV_OP_SESSION_OPEN, .session = session, .now_ms = now};
    struct craft_future *f = NULL;
    if (propose(g, timeout_ms, &open, &f) != CRAFT_OK)
        return false;
    craft_future_release(f);
    return true;
}

/* The state machine's answer to a write of a session it does not know (new here, or
 * expired): open the session and send the write again with the same seq. */
static bool is_session_error(const struct craft_kv_result *res)
{
    return res->type == CRAFT_KV_RES_ERR && strcmp((const char *)res->data, CRAFT_KV_ERR_SESSION) == 0;
}

/* A result (or an element of a MULTI's array) as RESP. */
static void put_view(struct craft_resp_buf *out, const struct craft_kv_result_view *v)
{
    switch (v->type) {
    case CRAFT_KV_RES_OK:
        craft_resp_append_simple(out, "OK");
        break;
    case CRAFT_KV_RES_NIL:
        craft_resp_append_null_bulk(out);
        break;
    case CRAFT_KV_RES_INT:
        craft_resp_append_int(out, v->integer);
        break;
    case CRAFT_KV_RES_BULK:
        craft_resp_append_bulk(out, v->data, v->len);
        break;
    case CRAFT_KV_RES_STATUS:
    case CRAFT_KV_RES_ERR: {
        /* Texts made by the state machine: no CR or LF, bounded. */
        char text[512];
        size_t n = v->len < sizeof text - 1 ? v->len : sizeof text - 1;
        memcpy(text, v->data, n);
        text[n] = '\0';
        if (v->type == CRAFT_KV_RES_STATUS)
            craft_resp_append_simple(out, text);
        else
            craft_resp_append_error(out, text);
        break;
    }
    case CRAFT_KV_RES_ARRAY: {
        craft_resp_append_array(out, (size_t)v->integer);
        struct craft_kv_result_view el;
        size_t off = 0;
        while (craft_kv_result_next(v->data, v->len, &off, &el))
            put_view(out, &el);
        break;
    }
    default:
        craft_resp_append_error(out, "ERR unknown result");
        break;
    }
}

void craftkv_put_result(struct craft_resp_buf *out, const struct craft_kv_result *res)
{
    struct craft_kv_result_view v = {.type = res->type, .integer = res->integer,
                                     .len = res->len, .data = res->data};
    put_view(out, &v);
}

/* A proposal's failure that another attempt may cure (it changes with the leader, the
 * queue or the node's state); the others are the command's own and are answered. */
static bool retryable(int rc)
{
    return rc == CRAFT_ENOTLEADER || rc == CRAFT_ESTALE || rc == CRAFT_ETRANSFER ||
           rc == CRAFT_ETIMEOUT || rc == CRAFT_EBUSY || rc == CRAFT_ESHUTDOWN ||
           rc == CRAFT_ENOMEM;
}

static void answer_error(struct craftkv_task *t, int rc)
{
    t->out.len = 0;
    if (rc == CRAFT_EINVAL)
        craft_resp_append_errorf(&t->out,
                                 "ERR key or value too long (keys up to %u bytes, values up to %u)",
                                 CRAFT_KV_KEY_BYTES_MAX, CRAFT_KV_VALUE_BYTES_MAX);
    else if (rc == CRAFT_ETOOBIG)
        craft_resp_append_error(&t->out, "ERR command too large");
    else
        craft_resp_append_errorf(&t->out, "ERR %s", craft_strerror(rc));
    t->answered = true;
}

static size_t unanswered(const struct craftkv_task *head)
{
    size_t n = 0;
    for (const struct craftkv_task *t = head; t; t = t->chain)
        n += !t->answered;
    return n;
}

/* ---- PROPOSE and AWAIT ---- */

/* Runs on the node thread that completed a future: the batch's last one queues it. */
static void proposal_settled(void *ctx)
{
    struct craftkv_task *head = ctx;
    if (atomic_fetch_sub(&head->pending, 1) == 1)
        craftkv_done_push(head->srv, head);
}

/* Proposes every unanswered command of the batch, in order. Returns true if at least one
 * proposal is out (the batch is PROPOSED and comes back through the done queue). */
static bool propose_batch(struct craftkv_task *head)
{
    struct craftkv_group *g = head->grp;
    size_t items_cap = 0;
    for (struct craftkv_task *t = head; t; t = t->chain)
        if (!t->answered && t->argc + 1 > items_cap)
            items_cap = t->argc + 1;
    struct craft_kv_bytes *items = malloc(items_cap * sizeof *items);
    if (!items)
        return false;
    head->stage = CRAFTKV_STAGE_PROPOSED;
    atomic_store(&head->pending, 1); /* ours, until every proposal is out */
    uint64_t opened = 0;
    bool stop = false, out = false;
    /* One reading of each clock per batch: the batch's commands share the leader's stamp
     * (as Redis's commands of one event-loop pass share its cached time). */
    uint64_t now = craftkv_now_ms(), mono = craftkv_mono_ms();
    uint32_t timeout_ms = head->deadline_ms > mono ? (uint32_t)(head->deadline_ms - mono) : 1;
    for (struct craftkv_task *t = head; t && !stop; t = t->chain) {
        if (t->answered)
            continue;
        CRAFT_ASSERT(t->fut == NULL);
        if (t->open_session && t->session != opened) {
            if (!propose_session_open(g, timeout_ms, now, t->session)) {
                stop = true;
                break;
            }
            opened = t->session;
        }
        t->open_session = false;
        /* Built again at every attempt: the leader that proposes it stamps its time. */
        struct craft_kv_cmd c = {0};
        t->out.len = 0;
        if (!t->def->write(t->argc, t->argv, now, &c, items, &t->out)) {
            t->answered = true; /* a syntax error, answered in out: nothing to propose */
            continue;
        }
        c.session = t->session;
        c.seq = t->seq;
        c.ack = t->ack;
        /* Sharded, a group's refusal closes the seq there: craftkv_reroute_writes then
         * sends the command again under a new seq, and no copy of the old one still on
         * its way can run too (kv_cmd.h). */
        c.refusal_final = t->refusal_final && c.ack != 0;
        c.now_ms = now;
        CRAFT_ASSERT(c.op != CRAFT_KV_OP_SESSION_CLOSE || (c.seq == 0 && c.ack == 0));
        struct craft_future *f = NULL;
        int rc = propose(g, timeout_ms, &c, &f);
        t->out.len = 0; /* CRAFT.EXEC's list was built there: encoded now */
        if (rc != CRAFT_OK) {
            if (!retryable(rc))
                answer_error(t, rc); /* too large: this command's own, go on */
            else
                stop = true; /* a full queue, a lost leadership: nothing later goes in */
            continue;
        }
        t->fut = f;
        out = true;
        atomic_fetch_add(&head->pending, 1);
        craft_future_notify(f, proposal_settled, head);
        if (craft_future_done(f) && craft_future_wait(f, 0) != CRAFT_OK)
            stop = true; /* refused at once */
    }
    free(items);
    if (!out) {
        atomic_store(&head->pending, 0);
        /* Every command answered here (syntax errors, sizes): done, no back-off. */
        head->stage = unanswered(head) == 0 ? CRAFTKV_STAGE_DONE : CRAFTKV_STAGE_NEW;
        return head->stage == CRAFTKV_STAGE_DONE;
    }
    proposal_settled(head); /* drops ours: back once every future completed */
    return true;
}

/* AWAIT after PROPOSE: takes each result. Returns true if the attempt made progress (a
 * command answered, or a session to open before the next attempt). */
static bool collect(struct craftkv_task *head)
{
    bool progress = false;
    for (struct craftkv_task *t = head; t; t = t->chain) {
        if (!t->fut)
            continue;
        int rc = craft_future_wait(t->fut, 0);
        struct craft_kv_result *res = rc == CRAFT_OK ? craft_future_result(t->fut) : NULL;
        craft_future_release(t->fut);
        t->fut = NULL;
        if (rc == CRAFT_OK && !res) {
            craft_resp_append_error(&t->out, "ERR no result");
            t->answered = true;
        } else if (res && is_session_error(res)) {
            t->open_session = true;
        } else if (res) {
            if (res->type == CRAFT_KV_RES_NIL && strcmp(t->def->name, CRAFTKV_EXEC_CMD) == 0)
                craft_resp_append_null_array(&t->out); /* a WATCHed key changed: *-1 */
            else
                craftkv_put_result(&t->out, res);
            /* A shard group's refusal of a slot it does not serve (not run; with
             * refusal_final its seq is closed there): MOVED with the owner's address;
             * craftkv_reroute_writes decides whether it goes again under a new seq, here
             * or in another group, or to the client. */
            if (head->grp->srv->sharded)
                craftkv_route_result(head->grp->srv, head->grp, &t->out, 0);
            t->answered = true;
        } else if (!retryable(rc)) {
            answer_error(t, rc);
        }
        progress |= t->answered || t->open_session;
        if (res)
            craft_kv_result_free(res);
    }
    return progress;
}

/* ---- the waiting list: batches PROPOSED or FORWARDED, by deadline ---- */

static void wait_insert(struct craftkv_server *s, struct craftkv_task *head)
{
    /* From the tail: batches mostly start waiting in the order of their deadlines. */
    struct craftkv_task *after = s->waiting_tail;
    while (after && after->deadline_ms > head->deadline_ms)
        after = after->wait_prev;
    head->wait_prev = after;
    head->wait_next = after ? after->wait_next : s->waiting_head;
    if (head->wait_next)
        head->wait_next->wait_prev = head;
    else
        s->waiting_tail = head;
    if (after)
        after->wait_next = head;
    else
        s->waiting_head = head;
}

static void wait_remove(struct craftkv_server *s, struct craftkv_task *head)
{
    if (head->wait_prev)
        head->wait_prev->wait_next = head->wait_next;
    else
        s->waiting_head = head->wait_next;
    if (head->wait_next)
        head->wait_next->wait_prev = head->wait_prev;
    else
        s->waiting_tail = head->wait_prev;
    head->wait_prev = head->wait_next = NULL;
}

struct craftkv_task *craftkv_write_expired(struct craftkv_server *s)
{
    struct craftkv_task *head = s->waiting_head;
    if (!head || craftkv_mono_ms() < head->deadline_ms)
        return NULL;
    CRAFT_ASSERT(head->stage == CRAFTKV_STAGE_PROPOSED || head->stage == CRAFTKV_STAGE_FORWARDED);
    wait_remove(s, head);
    /* In doubt, as any TRYAGAIN: the proposals may still commit (their futures, or the
     * leader's replies, come back to a batch nobody waits for), and a retry by the client
     * is a new command. */
    craftkv_batch_timeout(s, head, CRAFTKV_STAGE_ORPHANED);
    return head;
}

int craftkv_write_wait_ms(struct craftkv_server *s, int max_ms)
{
    return s->waiting_head ? craftkv_ms_until(s->waiting_head->deadline_ms, max_ms) : max_ms;
}

/* ---- ROUTE ---- */

/* Sends the unanswered commands where they can be served now. Returns true if they are
 * out (PROPOSED or FORWARDED) or answered (DONE); false if nothing could be sent. */
static bool route(struct craftkv_server *s, struct craftkv_task *head, uint64_t leader)
{
    if (head->attempts++ > 0)
        atomic_fetch_add(&s->n_retried, head->sent); /* INFO writes_retried */
    head->tried_leader = leader;
    if (leader == s->opts.id && craft_state(head->grp->node) == CRAFT_LEADER)
        return propose_batch(head);
    if (head->forwarded) {
        /* Never forwarded twice: the follower that sent it asks the leader it knows. And
         * the connection closes after these replies: what the sender pipelined behind them
         * must not be applied here (this node may lead by the time it reads them), or a
         * later seq of a session would enter the log ahead of these, which the sender
         * sends again elsewhere, in order, on a new connection. */
        for (struct craftkv_task *t = head; t; t = t->chain)
            if (!t->answered) {
                craftkv_reply_notleader(head->grp, &t->out);
                t->answered = true;
            }
        head->close_conn = true;
        head->stage = CRAFTKV_STAGE_DONE;
        return true;
    }
    const char *addr = craftkv_leader_addr(head->grp, NULL);
    if (!addr || !craftkv_fwd_submit(head->grp, head, addr))
        return false; /* no leader known (or this node, stepping down): back off */
    head->stage = CRAFTKV_STAGE_FORWARDED;
    return true;
}

bool craftkv_write_step(struct craftkv_server *s, struct craftkv_task *head)
{
    CRAFT_ASSERT(head->def->kind == CRAFTKV_WRITE);
    bool progress = true;
    if (head->stage == CRAFTKV_STAGE_PROPOSED || head->stage == CRAFTKV_STAGE_FORWARDED)
        wait_remove(s, head);
    if (head->stage == CRAFTKV_STAGE_PROPOSED)
        progress = collect(head);
    else if (head->stage == CRAFTKV_STAGE_FORWARDED)
        progress = unanswered(head) < head->sent;
    else if (head->stage == CRAFTKV_STAGE_DONE)
        return true;
    CRAFT_ASSERT(head->stage != CRAFTKV_STAGE_ORPHANED); /* freed by the caller */
    enum craftkv_reroute rr = craftkv_mono_ms() < head->deadline_ms
                                  ? craftkv_reroute_writes(s, head)
                                  : CRAFTKV_REROUTE_NONE;
    if (rr == CRAFTKV_REROUTE_MOVED) {
        head->tried_leader = UINT64_MAX; /* another group: route now */
        progress = true;
    } else if (rr == CRAFTKV_REROUTE_WAIT) {
        head->stage = CRAFTKV_STAGE_BACKOFF; /* for this server's next configuration */
        craftkv_later_push(s, head, craftkv_mono_ms() + BACKOFF_LEADER_MS);
        return false;
    }
    size_t left = unanswered(head);
    if (left == 0 || (head->conn->dead && !head->conn->ending)) {
        /* A closed connection's writes: nobody waits. Its session's close goes on: it is
         * what the connection's end is for (server_conn.c). */
        head->stage = CRAFTKV_STAGE_DONE;
        return true;
    }
    uint64_t now = craftkv_mono_ms();
    if (s->stopping || now >= head->deadline_ms) {
        craftkv_batch_timeout(s, head, CRAFTKV_STAGE_DONE);
        return true;
    }
    uint64_t leader = craft_leader(head->grp->node, NULL, 0);
    /* Again at once if the last attempt got somewhere, or the leader changed since it was
     * sent; otherwise the same attempt would most likely fail the same way. */
    if (progress || leader != head->tried_leader) {
        head->sent = left;
        if (route(s, head, leader)) {
            if (head->stage == CRAFTKV_STAGE_DONE)
                return true;
            wait_insert(s, head); /* PROPOSED or FORWARDED */
            return false;
        }
    }
    head->stage = CRAFTKV_STAGE_BACKOFF;
    craftkv_later_push(s, head, now + (leader == s->opts.id ? BACKOFF_LEADER_MS
                                                             : BACKOFF_NO_LEADER_MS));
    return false;
}

bool craftkv_write_start(struct craftkv_server *s, struct craftkv_task *head)
{
    CRAFT_ASSERT(head->stage == CRAFTKV_STAGE_NEW);
    head->srv = s;
    head->deadline_ms = head->arrived_ms + s->opts.timeout_ms;
    head->attempts = 0;
    head->tried_leader = UINT64_MAX; /* no attempt yet: route now */
    return craftkv_write_step(s, head);
}
