/* craftkv: client connections. One epoll thread (the loop, server.c) owns every client
 * connection: a non-blocking socket, a RESP parser, an input and an output buffer each.
 * Connection-local commands are answered here; reads and writes are gathered into a batch
 * per connection and started on their pipeline (server_read.c, server_write.c), admin
 * commands go to a worker (server.c). What one pass over a connection's input parses is
 * its round: sharded, one batch per group its commands go to (a pipeline of random keys
 * would otherwise be cut into a batch at every change of group, one round trip each),
 * started one after the other; else one batch. A connection has at most one batch out and
 * parses nothing meanwhile; its replies leave in request order once the round is done.
 * Batches that moved come back through the queues (server_queue.c) and are stepped here,
 * once per round of the loop. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "kv/server_internal.h"

#define IN_PENDING_MAX (4u << 20) /* stop reading a busy connection past this */
#define UNAUTHED_IN_MAX (64u << 10) /* unparsed input of a connection before AUTH */
#define OUT_PENDING_MAX (64u << 20)

/* Most commands one batch holds: bounds a worker's turn and the memory of one pipeline. */
#define BATCH_MAX 128
/* A follower forwards every client's writes over one connection, and a connection has one
 * batch out at a time: with BATCH_MAX, a follower's write throughput would be capped at
 * BATCH_MAX per round of replication (half the leader's at redis-benchmark -c 50 -P 16).
 * Forwarded batches take what has queued up since the last round instead. */
#define FWD_BATCH_MAX 4096

/* ---- connections ---- */

static void conn_set_events(struct craftkv_server *s, struct craftkv_conn *c)
{
    uint32_t ev = 0;
    if (!c->closing && c->in_len - c->in_off < IN_PENDING_MAX && c->out.len < OUT_PENDING_MAX)
        ev |= EPOLLIN;
    if (c->out.len > 0)
        ev |= EPOLLOUT;
    if (ev == c->events)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

/* Frees the round's batches not started yet and its replies kept so far (the connection is
 * closing: nobody waits for them). The batch out, if any, comes back to deliver(). */
static void round_drop(struct craftkv_conn *c)
{
    for (size_t k = 0; k < c->round_groups; k++) {
        size_t gi = c->round_order[k];
        craftkv_batch_free(c->pend_head[gi]);
        c->pend_head[gi] = c->pend_tail[gi] = NULL;
    }
    for (size_t i = 0; c->round_replies && c->round_groups > 1 && i < c->round_n; i++)
        craft_resp_buf_free(&c->round_replies[i]);
    c->round_n = c->round_groups = c->round_next = 0;
    c->round_first = c->round_last = NULL;
}

static void conn_free(struct craftkv_server *s, struct craftkv_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    round_drop(c);
    free(c->round_replies);
    craftkv_multi_end(c);
    craft_resp_parser_free(&c->parser);
    craft_resp_buf_free(&c->out);
    free(c->in);
    free(c);
}

/* Frees c once the current round of events is over (see craftkv_server.graveyard). */
static void conn_bury(struct craftkv_server *s, struct craftkv_conn *c)
{
    if (c->buried)
        return;
    c->buried = true;
    c->grave_next = s->graveyard;
    s->graveyard = c;
}

void craftkv_conn_sweep(struct craftkv_server *s)
{
    while (s->graveyard) {
        struct craftkv_conn *c = s->graveyard;
        s->graveyard = c->grave_next;
        conn_free(s, c);
    }
}

static bool submit(struct craftkv_conn *c, struct craftkv_group *g,
                   const struct craftkv_cmd_def *d, size_t argc,
                   const struct craft_resp_arg *argv, bool forwarded, uint64_t session,
                   uint64_t seq, uint64_t ack);
static bool round_step(struct craftkv_server *s, struct craftkv_conn *c);

/* A closed connection's sessions end with it (SESSION_CLOSE through the write pipeline,
 * as its writes went; one group after the other, as a connection has one batch out at a
 * time): the state machines drop their saved results now rather than an hour of logical
 * time later. Best effort: a close that does not make it (no leader until the deadline, a
 * stopping server) leaves the session to expire. Returns true if a close is out (the
 * connection comes back here when it returns, and is freed after the last). */
static bool end_session(struct craftkv_server *s, struct craftkv_conn *c)
{
    CRAFT_ASSERT(c->round_n == 0 && !c->busy);
    c->ending = true;
    if (atomic_load(&s->stopping))
        return false;
    const struct craftkv_cmd_def *d =
        craftkv_cmd_find(CRAFTKV_ENDSESSION_CMD, strlen(CRAFTKV_ENDSESSION_CMD));
    struct craft_resp_arg name = {CRAFTKV_ENDSESSION_CMD, strlen(CRAFTKV_ENDSESSION_CMD)};
    CRAFT_ASSERT(d != NULL);
    for (size_t i = 0; i < s->n_groups; i++) {
        struct craftkv_session *ss = &c->sessions[i];
        if (!ss->opened || ss->closed)
            continue;
        ss->closed = true;
        if (!submit(c, &s->groups[i], d, 1, &name, false, 0, 0, 0))
            return false;
        struct craftkv_task *t = c->round_last;
        t->needs_seq = false; /* a session op: no seq of its own */
        t->session = ss->id;
        t->seq = t->ack = 0;
        t->open_session = false;
        if (round_step(s, c))
            return true;
        /* answered at once (it could not be proposed): the next group's */
    }
    return false;
}

static void conn_close(struct craftkv_server *s, struct craftkv_conn *c)
{
    if (c->fd < 0)
        return;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    s->n_conns--;
    c->dead = true;
    round_drop(c); /* parsed, never started: nobody waits for them */
    if (c->busy)
        return; /* its batch is out: deliver() ends the session and frees it */
    if (!end_session(s, c))
        conn_bury(s, c);
}

/* Returns false if the connection was closed. */
static bool conn_flush(struct craftkv_server *s, struct craftkv_conn *c)
{
    while (c->out.len > 0) {
        ssize_t w = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w <= 0) {
            conn_close(s, c);
            return false;
        }
        craft_resp_buf_drop(&c->out, (size_t)w);
    }
    if (c->closing && c->out.len == 0 && !c->busy) {
        conn_close(s, c);
        return false;
    }
    conn_set_events(s, c);
    return true;
}

/* Adds a command to the connection's round, in group g's batch; false if out of memory (an
 * error was replied). */
static bool submit(struct craftkv_conn *c, struct craftkv_group *g,
                   const struct craftkv_cmd_def *d, size_t argc,
                   const struct craft_resp_arg *argv, bool forwarded, uint64_t session,
                   uint64_t seq, uint64_t ack)
{
    /* One allocation for the task, its argument array and the argument bytes (it was
     * three): malloc and free were 40 % of the loop's samples at SET -P 16 (perf). */
    size_t total = 0;
    for (size_t i = 0; i < argc; i++)
        total += argv[i].len;
    size_t head = sizeof(struct craftkv_task), vec = argc * sizeof(struct craft_resp_arg);
    struct craftkv_task *t = head + vec + total + 1 > head ? malloc(head + vec + total + 1) : NULL;
    if (!t) {
        craft_resp_append_error(&c->out, "ERR out of memory");
        return false;
    }
    memset(t, 0, sizeof *t);
    t->argv = (struct craft_resp_arg *)(t + 1);
    t->args = (char *)t->argv + vec;
    size_t off = 0;
    for (size_t i = 0; i < argc; i++) {
        memcpy(t->args + off, argv[i].data, argv[i].len);
        t->argv[i] = (struct craft_resp_arg){t->args + off, argv[i].len};
        off += argv[i].len;
    }
    t->argc = argc;
    t->def = d;
    t->conn = c;
    t->grp = g;
    if (c->round_n == 0) {
        t->arrived_ms = craftkv_mono_ms(); /* the first batch's deadline counts from here */
    }
    t->forwarded = forwarded;
    t->refusal_final = g->srv->sharded && !forwarded; /* CRAFT.FWDG's: set by the caller */
    if (forwarded) {
        t->session = session;
        t->seq = seq;
        t->ack = ack;
        /* seq 1 is its session's first write (a follower's connection, a client library):
         * open the session just ahead of it. Otherwise it comes back "unknown session" and
         * costs a round more; a follower's first forwarded batch holds the first writes of
         * all its clients. Reopening a live session (a retry) changes nothing. */
        t->open_session = seq == 1;
    } else if (d->kind == CRAFTKV_WRITE && !(g->srv->sharded && craftkv_keyless_cmd(d))) {
        t->needs_seq = true; /* numbered when its batch starts (round_step) */
    }
    t->read_mode = c->read_mode;
    t->slot = CRAFTKV_SLOT_UNKNOWN;
    size_t gi = g->index;
    if (c->pend_head[gi]) {
        c->pend_tail[gi]->chain = t;
    } else {
        c->pend_head[gi] = t;
        c->round_order[c->round_groups++] = (uint8_t)gi;
    }
    c->pend_tail[gi] = t;
    if (!c->round_first)
        c->round_first = t;
    c->round_last = t;
    t->round_pos = (uint32_t)c->round_n++;
    return true;
}

/* Numbers the writes of a batch that take this connection's seqs, now that it starts: in
 * request order, each with the batch's first as ack (every earlier write of this
 * connection's session in that group was answered: one batch of a connection is out at a
 * time). Numbering at the start, not when parsed, keeps a batch that moves to another
 * group (craftkv_reroute_writes) from taking seqs below those of a batch of the same round
 * still waiting to start there. */
static void number(struct craftkv_conn *c, struct craftkv_task *head)
{
    uint64_t first = 0;
    for (struct craftkv_task *t = head; t; t = t->chain) {
        if (!t->needs_seq)
            continue;
        t->needs_seq = false;
        CRAFT_ASSERT(t->grp == head->grp);
        craftkv_session_next(c, t->grp, t);
        if (first == 0)
            first = t->seq;
        t->ack = first;
    }
}

/* Starts a batch on its path; true if it is answered already. */
static bool start(struct craftkv_server *s, struct craftkv_task *t)
{
    if (t->keyless || (t->def->kind != CRAFTKV_WRITE && t->def->kind != CRAFTKV_READ)) {
        t->stage = CRAFTKV_STAGE_WORKER;
        craftkv_todo_push(s, t);
        return false;
    }
    return t->def->kind == CRAFTKV_WRITE ? craftkv_write_start(s, t) : craftkv_read_start(s, t);
}

/* Takes an answered batch's replies: to the output at once when it is the round's only
 * batch, else kept by position until the round is done (moved out of the tasks: an orphan
 * batch outlives its connection's interest in it). */
static void round_collect(struct craftkv_server *s, struct craftkv_conn *c,
                          struct craftkv_task *t)
{
    for (struct craftkv_task *u = t; u; u = u->chain) {
        craftkv_count_error(s, u->out.data, u->out.len);
        if (c->round_groups > 1) {
            CRAFT_ASSERT(u->round_pos < c->round_n && c->round_replies[u->round_pos].len == 0);
            c->round_replies[u->round_pos] = u->out;
            u->out = (struct craft_resp_buf){0};
        } else if (craftkv_buf_append_raw(&c->out, u->out.data, u->out.len) != 0) {
            c->closing = true;
        }
    }
    if (t->close_conn)
        c->closing = true; /* nothing more is read from it */
}

/* Starts the round's next batches until one is out (true) or every one is answered
 * (false: the round's replies are in the output, and the round is over). */
static bool round_step(struct craftkv_server *s, struct craftkv_conn *c)
{
    if (c->round_groups > 1 && !c->round_replies) {
        c->round_replies = calloc(BATCH_MAX, sizeof *c->round_replies);
        if (!c->round_replies) {
            craft_resp_append_error(&c->out, "ERR out of memory");
            c->closing = true;
            round_drop(c);
            return false;
        }
    }
    CRAFT_ASSERT(c->round_n <= BATCH_MAX || c->round_groups == 1);
    while (c->round_next < c->round_groups) {
        size_t gi = c->round_order[c->round_next++];
        struct craftkv_task *t = c->pend_head[gi];
        c->pend_head[gi] = c->pend_tail[gi] = NULL;
        /* The later batches' deadlines count from their start, as when each was a round
         * of its own: a group without a leader does not use up the others' time. */
        if (c->round_next > 1)
            t->arrived_ms = craftkv_mono_ms();
        number(c, t);
        if (!start(s, t)) {
            c->busy = true;
            return true;
        }
        round_collect(s, c, t);
        craftkv_batch_free(t);
    }
    for (size_t i = 0; c->round_groups > 1 && i < c->round_n; i++) {
        if (craftkv_buf_append_raw(&c->out, c->round_replies[i].data, c->round_replies[i].len))
            c->closing = true;
        craft_resp_buf_free(&c->round_replies[i]);
    }
    c->round_n = c->round_groups = c->round_next = 0;
    c->round_first = c->round_last = NULL;
    return false;
}

static const char *const read_mode_names[] = {"linearizable", "lease", "stale"};

void craftkv_l_consistency(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                           const struct craft_resp_arg *argv)
{
    (void)s;
    if (argc == 1) {
        craft_resp_append_simple(&c->out, read_mode_names[c->read_mode]);
        return;
    }
    for (uint8_t m = 0; m < 3 && argc == 2; m++) {
        if (craftkv_arg_is(&argv[1], read_mode_names[m])) {
            c->read_mode = m;
            craft_resp_append_simple(&c->out, "OK");
            return;
        }
    }
    craft_resp_append_error(&c->out,
                            "ERR CRAFT.CONSISTENCY takes LINEARIZABLE, LEASE or STALE");
}

void craftkv_l_readonly(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                        const struct craft_resp_arg *argv)
{
    (void)s, (void)argc, (void)argv;
    c->read_mode = CRAFTKV_READ_STALE;
    craft_resp_append_simple(&c->out, "OK");
}

void craftkv_l_readwrite(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                         const struct craft_resp_arg *argv)
{
    (void)s, (void)argc, (void)argv;
    c->read_mode = CRAFTKV_READ_LINEARIZABLE;
    craft_resp_append_simple(&c->out, "OK");
}

/* Runs one command or adds it to the round. Returns false, consuming nothing, when the
 * command cannot join the round being built (another kind, a local command, an error
 * reply, a new routing table): the round goes first and the command is parsed again once
 * it has been answered. */
static bool dispatch(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                     const struct craft_resp_arg *argv)
{
    bool forwarded = false;
    const struct craft_resp_arg *argv0 = argv;
    uint64_t session = 0, seq = 0, ack = 0;
    const struct craftkv_cmd_def *d = NULL;
    bool bad_fwd = false;
    if (craftkv_auth_refuses(s, c, argc, argv))
        return true;
    if (c->multi) {
        /* Inside MULTI every command is queued or refused (CRAFT.FWD too: it is no
         * command of the table), so no batch is ever built meanwhile; or EXEC. */
        CRAFT_ASSERT(c->round_n == 0);
        const struct craftkv_cmd_def *q = craftkv_cmd_find(argv[0].data, argv[0].len);
        if (q)
            atomic_fetch_add_explicit(&s->cmd_calls[craftkv_cmd_index(q)], 1,
                                      memory_order_relaxed);
        enum craftkv_multi_step st = craftkv_multi_feed(c, q, argc, argv);
        if (st == CRAFTKV_MULTI_ANSWERED)
            return true;
        if (st == CRAFTKV_MULTI_EXEC) {
            size_t n;
            const struct craft_resp_arg *v;
            craftkv_multi_exec_args(c, &n, &v);
            const struct craftkv_cmd_def *x = craftkv_cmd_find(CRAFTKV_EXEC_CMD,
                                                               strlen(CRAFTKV_EXEC_CMD));
            CRAFT_ASSERT(x != NULL);
            struct craftkv_group *g = NULL;
            int slot;
            if (!v) {
                craft_resp_append_error(&c->out, "ERR out of memory");
            } else if ((g = craftkv_route_cmd(s, craftkv_route_now(s), x, n, v, &c->out,
                                              &slot)) != NULL &&
                       submit(c, g, x, n, v, false, 0, 0, 0)) {
                c->round_last->slot = slot;
                round_step(s, c); /* alone: one entry */
            }
            craftkv_multi_end(c);
            return true;
        }
    }
    /* Plain CRAFT.FWD on a sharded server (a client library's exactly-once write): by its
     * keys, as any command. */
    struct craftkv_group *fwd_group = s->sharded ? NULL : &s->groups[0];
    if (s->sharded && craftkv_arg_is(&argv[0], "CRAFT.FWDG")) {
        /* CRAFT.FWDG <gid> <session> ...: a sharded server's forwarded write names its
         * group; the rest is CRAFT.FWD's. */
        uint64_t gid = 0;
        bool named = argc > 1 && craftkv_arg_u64(&argv[1], UINT64_MAX, &gid);
        fwd_group = named ? craftkv_group_of(s, gid) : NULL;
        bad_fwd = fwd_group == NULL;
        argc -= 1;
        argv += 1;
    }
    if (!bad_fwd && (argv != argv0 || craftkv_arg_is(&argv[0], "CRAFT.FWD"))) {
        /* CRAFT.FWD <session> <seq> [<ack>] <command...>: a follower's forwarded write, or
         * a client library's exactly-once write (kv-client.md). A command name is never a
         * number, so a numeric fourth argument is the ack. */
        if (argc < 4 || !craftkv_arg_u64(&argv[1], UINT64_MAX, &session) ||
            !craftkv_arg_u64(&argv[2], UINT64_MAX, &seq) ||
            session == 0 || (seq == 0) != (argc == 4 && craftkv_arg_is(&argv[3], CRAFTKV_ENDSESSION_CMD))) {
            /* seq 0: only the end of a session (CRAFT.FWD <session> 0 CRAFT.ENDSESSION) */
            bad_fwd = true;
        } else {
            forwarded = true;
            argc -= 3;
            argv += 3;
            if (craftkv_arg_u64(&argv[0], UINT64_MAX, &ack)) {
                if (argc < 2 || ack == 0 || ack > seq) {
                    bad_fwd = true;
                } else {
                    argc -= 1;
                    argv += 1;
                }
            } else {
                ack = 0;
            }
        }
    }
    if (!bad_fwd)
        d = craftkv_cmd_find(argv[0].data, argv[0].len);
    bool batchable = d && craftkv_cmd_arity_ok(d, argc) && (d->kind == CRAFTKV_READ || d->kind == CRAFTKV_WRITE);
    /* The group that serves it (sharded: by its keys' slot; forwarded: the one named);
     * NULL with the refusal in route_err. */
    struct craftkv_group *g = NULL;
    int slot = CRAFTKV_SLOT_UNKNOWN;
    const struct craftkv_route *route = s->sharded ? craftkv_route_now(s) : NULL;
    struct craft_resp_buf route_err = {0};
    if (batchable && forwarded && fwd_group)
        g = fwd_group;
    else if (batchable && !(!forwarded && strcmp(d->name, CRAFTKV_ENDSESSION_CMD) == 0))
        g = craftkv_route_cmd(s, route, d, argc, argv, &route_err, &slot);
    if (c->round_n > 0) {
        /* Sharded, a client's commands for several groups make one round (a batch per
         * group); a forwarded batch names one group, and one group serves unsharded. */
        const struct craftkv_task *h = c->round_first;
        bool other_group = g != h->grp && (forwarded || !s->sharded);
        /* One routing table per round: under a newer one a key of the round may go to
         * another group, whose batch would run before or after its earlier commands'. */
        bool new_route = s->sharded && !forwarded && route != c->round_route;
        if (!batchable || !g || other_group || new_route || d->kind != h->def->kind ||
            forwarded != h->forwarded || c->round_n >= (forwarded ? FWD_BATCH_MAX : BATCH_MAX)) {
            craft_resp_buf_free(&route_err);
            return false;
        }
    }
    if (bad_fwd) {
        craft_resp_append_error(&c->out, "ERR bad CRAFT.FWD");
        return true;
    }
    if (!d) {
        craftkv_reply_unknown(&c->out, argc, argv);
        craftkv_count_error(s, "-ERR", 4);
        return true;
    }
    atomic_fetch_add_explicit(&s->cmd_calls[craftkv_cmd_index(d)], 1, memory_order_relaxed);
    if (!craftkv_cmd_arity_ok(d, argc)) {
        craftkv_reply_arity(&c->out, &argv[0]);
        craftkv_count_error(s, "-ERR", 4);
        return true;
    }
    if (forwarded && d->kind != CRAFTKV_WRITE) {
        craft_resp_append_error(&c->out, "ERR CRAFT.FWD carries writes only");
        craft_resp_buf_free(&route_err); /* (a refusal of its routing: not sent) */
        return true;
    }
    if (!forwarded && strcmp(d->name, CRAFTKV_ENDSESSION_CMD) == 0) {
        craftkv_reply_unknown(&c->out, argc, argv); /* the server's own */
        return true;
    }
    if (d->kind == CRAFTKV_LOCAL) {
        d->local(s, c, argc, argv);
        return true;
    }
    if (batchable && !g && s->sharded && !forwarded && craftkv_keyless_cmd(d)) {
        /* Every group this process leads: a worker's job, alone (server_keyless.c). */
        craft_resp_buf_free(&route_err);
        if (submit(c, &s->groups[0], d, argc, argv, false, 0, 0, 0)) {
            c->round_last->keyless = true;
            round_step(s, c);
        }
        return true;
    }
    if (batchable && !g) {
        craftkv_count_error(s, route_err.data, route_err.len);
        if (craftkv_buf_append_raw(&c->out, route_err.data, route_err.len) != 0)
            c->closing = true;
        craft_resp_buf_free(&route_err);
        return true;
    }
    if (!submit(c, g ? g : &s->groups[0], d, argc, argv, forwarded, session, seq, ack))
        return true;
    if (c->round_n == 1)
        c->round_route = route; /* the table the round's commands are routed by */
    if (forwarded && s->sharded && fwd_group)
        c->round_last->refusal_final = true; /* CRAFT.FWDG: a sharded server's */
    c->round_last->slot = slot;
    if (d->kind == CRAFTKV_ADMIN)
        round_step(s, c); /* alone: it may block for long */
    return true;
}

/* Parses and runs commands until a batch goes to a worker or the input runs out. */
static void conn_process(struct craftkv_server *s, struct craftkv_conn *c)
{
again:
    while (!c->busy && !c->closing) {
        struct craft_resp_cmd cmd;
        int rc = craft_resp_parse(&c->parser, c->in + c->in_off, c->in_len - c->in_off, &cmd);
        if (rc == CRAFT_RESP_NEED_MORE)
            break;
        if (rc != CRAFT_OK) {
            if (c->round_n > 0) {
                craft_resp_parser_reset(&c->parser);
                break; /* answer the batch first; the error is found again after it */
            }
            /* a hostile or broken stream: answer as Redis does and close this one only */
            craft_resp_append_error(&c->out, cmd.error ? cmd.error : "ERR Protocol error");
            c->closing = true;
            break;
        }
        if (cmd.argc > 0 && !dispatch(s, c, cmd.argc, cmd.argv))
            break; /* not consumed: parsed again after the batch */
        c->in_off += cmd.consumed;
        if (c->out.len >= OUT_PENDING_MAX)
            break; /* a client that does not read: let it drain first */
    }
    if (c->round_n > 0 && !c->busy && !round_step(s, c) && !c->closing &&
        c->out.len < OUT_PENDING_MAX)
        goto again; /* answered at once: go on with the input */
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
}

static void conn_readable(struct craftkv_server *s, struct craftkv_conn *c)
{
    for (int rounds = 0; rounds < 16; rounds++) {
        if (c->in_off > 0 && (c->in_off == c->in_len || c->in_off > c->in_cap / 2)) {
            memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
            c->in_len -= c->in_off;
            c->in_off = 0;
        }
        if (c->in_cap - c->in_len < 16384) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 32768;
            char *p = realloc(c->in, cap);
            if (!p) {
                conn_close(s, c);
                return;
            }
            c->in = p;
            c->in_cap = cap;
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (r <= 0) {
            conn_close(s, c);
            return;
        }
        c->in_len += (size_t)r;
        if (!c->authed && c->in_len - c->in_off > UNAUTHED_IN_MAX) {
            /* Before AUTH a client gets a small buffer (an AUTH is short): a stranger
             * cannot make the server hold megabytes, nor a large stream of NOAUTH. */
            craft_resp_append_error(&c->out, "ERR unauthenticated input too large");
            c->closing = true;
            c->in_off = c->in_len;
            break;
        }
        if (c->busy || c->in_len - c->in_off >= IN_PENDING_MAX)
            break;
        conn_process(s, c);
        if (c->busy || c->closing)
            break;
    }
    if (!c->busy)
        conn_process(s, c);
    conn_flush(s, c);
}

void craftkv_conn_accept(struct craftkv_server *s)
{
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        /* One block: the connection, and per group its session and its round's batch. */
        size_t n = s->n_groups;
        struct craftkv_conn *c = calloc(1, sizeof *c + n * sizeof *c->sessions +
                                               2 * n * sizeof(struct craftkv_task *) + n);
        if (!c) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->ep_kind = CRAFTKV_EP_CONN;
        c->sessions = (struct craftkv_session *)(c + 1);
        c->pend_head = (struct craftkv_task **)(c->sessions + n);
        c->pend_tail = c->pend_head + n;
        c->round_order = (uint8_t *)(c->pend_tail + n);
        c->fd = fd;
        c->id = ++s->next_conn_id;
        c->authed = s->opts.requirepass[0] == '\0';
        craft_resp_parser_init(&c->parser, NULL);
        c->events = EPOLLIN;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
            close(fd);
            craft_resp_parser_free(&c->parser);
            free(c);
            continue;
        }
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
    }
}

int craftkv_buf_append_raw(struct craft_resp_buf *b, const char *p, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        char *q = realloc(b->data, cap);
        if (!q)
            return -1;
        b->data = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Hands a finished batch's replies to its connection and goes on with its input; frees
 * the batch unless keep (an orphan still referenced by futures or the forwarding queue). */
static void deliver(struct craftkv_server *s, struct craftkv_task *t, bool keep)
{
    struct craftkv_conn *c = t->conn;
    t->conn = NULL;
    c->busy = false;
    if (c->dead) {
        /* The session's close came back: counted if it closed a live session. */
        if (c->ending && t->out.len == 4 && memcmp(t->out.data, ":1\r\n", 4) == 0)
            atomic_fetch_add(&s->n_sessions_ended, 1);
        round_drop(c); /* the rest of its round: nobody waits */
        if (!end_session(s, c))
            conn_bury(s, c);
    } else {
        for (struct craftkv_task *u = t; u; u = u->chain)
            CRAFT_ASSERT(u->answered);
        round_collect(s, c, t);
        if (!round_step(s, c)) /* else the round's next batch is out */
            conn_process(s, c);
        conn_flush(s, c);
    }
    if (!keep)
        craftkv_batch_free(t);
}

void craftkv_conn_resume(struct craftkv_server *s, bool woken)
{
    struct craftkv_task *list = craftkv_ready_take(s, woken), *t;
    while (list) {
        t = list;
        list = t->next;
        t->next = NULL;
        if (t->stage == CRAFTKV_STAGE_ORPHANED) {
            craftkv_batch_free(t); /* answered at its deadline: nothing refers to it now */
            continue;
        }
        bool done = t->stage == CRAFTKV_STAGE_DONE;
        if (!done && t->def->kind == CRAFTKV_WRITE)
            done = craftkv_write_step(s, t);
        else if (!done && t->def->kind == CRAFTKV_READ)
            done = craftkv_read_step(s, t);
        if (done)
            deliver(s, t, false);
    }
    /* After the batches that came back: one that completed in time is not expired. */
    while ((t = craftkv_write_expired(s)) != NULL)
        deliver(s, t, true);
}

void craftkv_conn_event(struct craftkv_server *s, struct craftkv_conn *c, uint32_t events)
{
    if (c->fd < 0)
        return; /* closed earlier in this round */
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_readable(s, c);
    else if (events & EPOLLOUT)
        conn_flush(s, c);
}

void craftkv_conn_free_all(struct craftkv_server *s)
{
    craftkv_conn_sweep(s);
    while (s->conns) {
        if (s->conns->fd >= 0)
            close(s->conns->fd);
        conn_free(s, s->conns);
    }
}
