/* craftkv: the client event loop, the worker pool and the server's lifetime.
 *
 * One epoll thread owns every client connection: non-blocking sockets, a RESP parser and
 * an output buffer each. It answers connection-local commands itself and hands the others
 * to workers; a worker's finished task comes back on the done queue and an eventfd wakes
 * the loop. A connection has at most one batch out (a run of pipelined reads or writes)
 * and parses nothing meanwhile, so its replies leave in request order. */
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
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kv/kv_store.h"
#include "kv/server_internal.h"

#define IN_PENDING_MAX (4u << 20) /* stop reading a busy connection past this */
#define OUT_PENDING_MAX (64u << 20)

static struct craftkv_task *task_pop(struct craftkv_task **head, struct craftkv_task **tail)
{
    struct craftkv_task *t = *head;
    if (t) {
        *head = t->next;
        if (!*head)
            *tail = NULL;
        t->next = NULL;
    }
    return t;
}

static void task_push(struct craftkv_task **head, struct craftkv_task **tail,
                      struct craftkv_task *t)
{
    t->next = NULL;
    if (*tail)
        (*tail)->next = t;
    else
        *head = t;
    *tail = t;
}

static void task_free(struct craftkv_task *t)
{
    craft_resp_buf_free(&t->out);
    free(t->args);
    free(t->argv);
    free(t);
}

/* Frees a batch: t and every task chained after it. */
void craftkv_batch_free(struct craftkv_task *t)
{
    while (t) {
        struct craftkv_task *next = t->chain;
        if (t->fut)
            craft_future_release(t->fut);
        task_free(t);
        t = next;
    }
}

void craftkv_todo_push(struct craftkv_server *s, struct craftkv_task *head)
{
    if (head->phase == 2)
        for (struct craftkv_task *t = head; t; t = t->chain)
            if (t->retry)
                atomic_fetch_add(&s->n_retried, 1);
    pthread_mutex_lock(&s->mu);
    task_push(&s->todo_head, &s->todo_tail, head);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void craftkv_done_push(struct craftkv_server *s, struct craftkv_task *head)
{
    bool wake = head == NULL;
    pthread_mutex_lock(&s->mu);
    if (head) {
        /* The loop reads the eventfd before it takes the list, so a push that finds the
         * list non-empty is taken by a drain that is already due: no second write. */
        wake = s->done_head == NULL;
        task_push(&s->done_head, &s->done_tail, head);
    }
    pthread_mutex_unlock(&s->mu);
    uint64_t one = 1;
    if (wake && write(s->evfd, &one, sizeof one) < 0) {
        /* the counter cannot overflow in practice; the loop also polls on a timeout */
    }
}

static void *worker_main(void *arg)
{
    pthread_setname_np(pthread_self(), "kv-worker"); /* top -H, perf, gdb */
    struct craftkv_server *s = arg;
    int fwd_fd = -1;
    char fwd_addr[CRAFTKV_ADDR_MAX] = "";
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stopping && !s->todo_head)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stopping)
            break;
        struct craftkv_task *t = task_pop(&s->todo_head, &s->todo_tail);
        pthread_mutex_unlock(&s->mu);
        craftkv_exec(s, t, &fwd_fd, fwd_addr, sizeof fwd_addr);
        t->phase = 0;
        craftkv_done_push(s, t);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    if (fwd_fd >= 0)
        close(fwd_fd);
    return NULL;
}

/* The leader's tick: a NOOP about once a second advances logical time on an idle cluster
 * (keys expire for readers) and sweeps expired keys and sessions (kv.md). */
static void *ticker_main(void *arg)
{
    pthread_setname_np(pthread_self(), "kv-ticker"); /* top -H, perf, gdb */
    struct craftkv_server *s = arg;
    while (!s->stopping) {
        for (int i = 0; i < 10 && !s->stopping; i++) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (s->stopping || craft_state(s->node) != CRAFT_LEADER)
            continue;
        struct craft_kv_cmd c = {.op = CRAFT_KV_OP_NOOP, .now_ms = craftkv_now_ms()};
        uint8_t buf[64];
        size_t len;
        if (craft_kv_cmd_encode(&c, buf, sizeof buf, &len) != 0)
            continue;
        struct craft_future *f = craft_apply(s->node, buf, (uint32_t)len, 100);
        if (f)
            craft_future_release(f); /* its outcome does not matter */
    }
    return NULL;
}

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

static void conn_free(struct craftkv_server *s, struct craftkv_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    craftkv_batch_free(c->batch_head);
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

static void conn_sweep(struct craftkv_server *s)
{
    while (s->graveyard) {
        struct craftkv_conn *c = s->graveyard;
        s->graveyard = c->grave_next;
        conn_free(s, c);
    }
}

static void conn_close(struct craftkv_server *s, struct craftkv_conn *c)
{
    if (c->fd < 0)
        return;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    s->n_conns--;
    if (c->busy)
        c->dead = true; /* the worker still holds the task: free on its return */
    else
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

static bool name_is(const struct craft_resp_arg *a, const char *name)
{
    size_t n = strlen(name);
    return a->len == n && strncasecmp(a->data, name, n) == 0;
}

static int parse_u64(const struct craft_resp_arg *a, uint64_t *v)
{
    char buf[24];
    if (a->len == 0 || a->len >= sizeof buf)
        return -1;
    memcpy(buf, a->data, a->len);
    buf[a->len] = '\0';
    char *end;
    errno = 0;
    unsigned long long x = strtoull(buf, &end, 10);
    if (errno || *end || buf[0] == '-')
        return -1;
    *v = x;
    return 0;
}

static void reply_unknown(struct craft_resp_buf *out, size_t argc, const struct craft_resp_arg *argv)
{
    /* Redis: ERR unknown command 'x', with args beginning with: 'a' 'b' */
    char msg[512];
    int n = snprintf(msg, sizeof msg, "ERR unknown command '%.*s', with args beginning with: ",
                     (int)(argv[0].len > 128 ? 128 : argv[0].len), argv[0].data);
    for (size_t i = 1; i < argc && n > 0 && (size_t)n < sizeof msg - 140; i++)
        n += snprintf(msg + n, sizeof msg - (size_t)n, "'%.*s' ",
                      (int)(argv[i].len > 128 ? 128 : argv[i].len), argv[i].data);
    craft_resp_append_error(out, msg);
}

static bool arity_ok(const struct craftkv_cmd_def *d, size_t argc)
{
    return d->arity >= 0 ? argc == (size_t)d->arity : argc >= (size_t)-d->arity;
}

static void reply_arity(struct craft_resp_buf *out, const struct craft_resp_arg *name)
{
    char lower[64];
    size_t n = name->len < sizeof lower - 1 ? name->len : sizeof lower - 1;
    for (size_t i = 0; i < n; i++)
        lower[i] = (char)(name->data[i] >= 'A' && name->data[i] <= 'Z' ? name->data[i] + 32
                                                                        : name->data[i]);
    lower[n] = '\0';
    craft_resp_append_errorf(out, "ERR wrong number of arguments for '%s' command", lower);
}

/* Adds a command to the connection's batch; false if out of memory (an error was replied). */
static bool submit(struct craftkv_conn *c, const struct craftkv_cmd_def *d,
                   size_t argc, const struct craft_resp_arg *argv, bool forwarded,
                   uint64_t session, uint64_t seq, uint64_t ack)
{
    struct craftkv_task *t = calloc(1, sizeof *t);
    size_t total = 0;
    for (size_t i = 0; i < argc; i++)
        total += argv[i].len;
    if (t) {
        t->argv = malloc(argc * sizeof *t->argv);
        t->args = malloc(total + 1);
    }
    if (!t || !t->argv || !t->args) {
        if (t)
            task_free(t);
        craft_resp_append_error(&c->out, "ERR out of memory");
        return false;
    }
    size_t off = 0;
    for (size_t i = 0; i < argc; i++) {
        memcpy(t->args + off, argv[i].data, argv[i].len);
        t->argv[i] = (struct craft_resp_arg){t->args + off, argv[i].len};
        off += argv[i].len;
    }
    t->argc = argc;
    t->def = d;
    t->conn = c;
    t->arrived_ms = craftkv_mono_ms();
    t->forwarded = forwarded;
    if (forwarded) {
        t->session = session;
        t->seq = seq;
        t->ack = ack;
    } else if (d->kind == CRAFTKV_WRITE) {
        t->session = c->session;
        t->seq = ++c->seq;
        /* Every earlier write of this connection was answered: a connection has one batch
         * out at a time, so the lowest unanswered seq is the batch's first. */
        t->ack = c->batch_n > 0 ? c->batch_head->seq : t->seq;
        t->open_session = !c->session_opened;
        c->session_opened = true;
    }
    t->read_mode = c->read_mode;
    if (c->batch_tail)
        c->batch_tail->chain = t;
    else
        c->batch_head = t;
    c->batch_tail = t;
    c->batch_n++;
    return true;
}

/* Hands the connection's batch to the loop's own path or to the workers. Returns false if
 * it was answered at once (the replies are in c->out already). */
static bool submit_batch(struct craftkv_server *s, struct craftkv_conn *c)
{
    struct craftkv_task *t = c->batch_head;
    c->batch_head = c->batch_tail = NULL;
    c->batch_n = 0;
    int how = craftkv_async_submit(s, t);
    if (how == CRAFTKV_ASYNC_SERVED) {
        for (struct craftkv_task *u = t; u; u = u->chain)
            if (craftkv_buf_append_raw(&c->out, u->out.data, u->out.len) != 0)
                c->closing = true;
        craftkv_batch_free(t);
        return false;
    }
    c->busy = true;
    if (how == CRAFTKV_ASYNC_DECLINED)
        craftkv_todo_push(s, t);
    return true;
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
        if (name_is(&argv[1], read_mode_names[m])) {
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

/* Most commands one batch holds: bounds a worker's turn and the memory of one pipeline. */
#define BATCH_MAX 128
/* A follower forwards every client's writes over one connection, and a connection has one
 * batch out at a time: with BATCH_MAX, a follower's write throughput would be capped at
 * BATCH_MAX per round of replication (half the leader's at redis-benchmark -c 50 -P 16).
 * Forwarded batches take what has queued up since the last round instead. */
#define FWD_BATCH_MAX 4096

/* Runs or batches one command. Returns false, consuming nothing, when the command cannot
 * join the batch being built (another kind, a local command, an error reply): the batch
 * goes first and the command is parsed again once it has been answered. */
static bool dispatch(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                     const struct craft_resp_arg *argv)
{
    bool forwarded = false;
    uint64_t session = 0, seq = 0, ack = 0;
    const struct craftkv_cmd_def *d = NULL;
    bool bad_fwd = false;
    if (name_is(&argv[0], "CRAFT.FWD")) {
        /* CRAFT.FWD <session> <seq> [<ack>] <command...>: a follower's forwarded write, or
         * a client library's exactly-once write (kv-client.md). A command name is never a
         * number, so a numeric fourth argument is the ack. */
        if (argc < 4 || parse_u64(&argv[1], &session) || parse_u64(&argv[2], &seq) ||
            session == 0 || seq == 0) {
            bad_fwd = true;
        } else {
            forwarded = true;
            argc -= 3;
            argv += 3;
            if (parse_u64(&argv[0], &ack) == 0) {
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
    bool batchable = d && arity_ok(d, argc) && (d->kind == CRAFTKV_READ || d->kind == CRAFTKV_WRITE);
    if (c->batch_n > 0) {
        const struct craftkv_task *h = c->batch_head;
        if (!batchable || d->kind != h->def->kind || forwarded != h->forwarded ||
            c->batch_n >= (forwarded ? FWD_BATCH_MAX : BATCH_MAX))
            return false;
    }
    if (bad_fwd) {
        craft_resp_append_error(&c->out, "ERR bad CRAFT.FWD");
        return true;
    }
    if (!d) {
        reply_unknown(&c->out, argc, argv);
        return true;
    }
    if (!arity_ok(d, argc)) {
        reply_arity(&c->out, &argv[0]);
        return true;
    }
    if (forwarded && d->kind != CRAFTKV_WRITE) {
        craft_resp_append_error(&c->out, "ERR CRAFT.FWD carries writes only");
        return true;
    }
    if (d->kind == CRAFTKV_LOCAL) {
        d->local(s, c, argc, argv);
        return true;
    }
    if (submit(c, d, argc, argv, forwarded, session, seq, ack) && d->kind == CRAFTKV_ADMIN)
        submit_batch(s, c); /* alone: it may block for long */
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
            if (c->batch_n > 0) {
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
    if (c->batch_n > 0 && !c->busy && !submit_batch(s, c) && !c->closing &&
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

static void accept_all(struct craftkv_server *s)
{
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct craftkv_conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        c->id = ++s->next_conn_id;
        craft_resp_parser_init(&c->parser, NULL);
        /* A random session id: no round trip to learn one (kv.md). */
        while (c->session == 0)
            if (getrandom(&c->session, sizeof c->session, 0) != sizeof c->session)
                c->session = ((uint64_t)time(NULL) << 20) ^ c->id ^ (uint64_t)getpid() << 40;
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

static void drain_done(struct craftkv_server *s)
{
    uint64_t n;
    if (read(s->evfd, &n, sizeof n) < 0) {
        /* nothing pending (EAGAIN): fine */
    }
    pthread_mutex_lock(&s->mu);
    struct craftkv_task *list = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (list) {
        struct craftkv_task *t = list;
        list = t->next;
        t->next = NULL;
        if (t->phase == 1 && !craftkv_async_collect(s, t) && !t->conn->dead)
            craftkv_todo_push(s, t); /* the rest, in order, by a worker */
        else
            craftkv_deliver(s, t);
    }
    craftkv_async_poll(s);
}

void craftkv_batch_complete(struct craftkv_server *s, struct craftkv_task *head)
{
    bool retry = false;
    for (struct craftkv_task *t = head; t; t = t->chain)
        retry |= t->retry;
    if (retry && !head->conn->dead) {
        head->phase = 2;
        craftkv_todo_push(s, head); /* the rest, in order, by a worker */
    } else {
        head->phase = 0;
        craftkv_deliver(s, head);
    }
}

void craftkv_deliver(struct craftkv_server *s, struct craftkv_task *t)
{
    struct craftkv_conn *c = t->conn;
    c->busy = false;
    if (c->dead) {
        conn_bury(s, c);
    } else {
        for (struct craftkv_task *u = t; u; u = u->chain)
            if (craftkv_buf_append_raw(&c->out, u->out.data, u->out.len) != 0)
                c->closing = true;
        conn_process(s, c);
        conn_flush(s, c);
    }
    craftkv_batch_free(t);
}

void craftkv_server_run(struct craftkv_server *s, volatile sig_atomic_t *stop)
{
    struct epoll_event evs[128];
    while (!*stop && !atomic_load(&s->loop_stop)) {
        int n = epoll_wait(s->epfd, evs, 128, 200);
        /* Everything this round proposes or reads reaches the node in one hand-off. */
        craft_batch_begin(s->node);
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &s->listen_fd) {
                accept_all(s);
            } else if (p == &s->evfd) {
                drain_done(s);
            } else if (p == &s->fwd) {
                craftkv_fwd_event(s, evs[i].events);
            } else {
                struct craftkv_conn *c = p;
                if (c->fd < 0)
                    continue; /* closed earlier in this round */
                if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                    conn_readable(s, c);
                else if (evs[i].events & EPOLLOUT)
                    conn_flush(s, c);
            }
        }
        /* A barrier round may also end without a wake-up of its own (none was issued
         * because its request could not be allocated): poll it every round. */
        craftkv_async_poll(s);
        craftkv_fwd_tick(s);
        craft_batch_end(s->node);
        conn_sweep(s);
    }
}

void craftkv_server_stop(struct craftkv_server *s)
{
    atomic_store(&s->loop_stop, true);
    craftkv_done_push(s, NULL); /* wakes the loop */
}

/* ---- lifetime ---- */

static int listen_on(const char *addr, char *err, size_t cap)
{
    char host[CRAFTKV_ADDR_MAX];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host) {
        snprintf(err, cap, "bad client address '%s' (want HOST:PORT)", addr);
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV},
                    *res;
    int gai = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
    if (gai != 0) {
        snprintf(err, cap, "bad client address '%s': %s", addr, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 511) != 0) {
        snprintf(err, cap, "cannot listen for clients on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void observer(void *ctx, const struct craft_event *ev)
{
    (void)ctx;
    if (ev->type == CRAFT_EVENT_FAILED)
        fprintf(stderr, "craftkv: the node stopped: %s\n", craft_strerror(ev->err));
}

int craftkv_server_start(const struct craftkv_opts *o, struct craftkv_server **out, char *err,
                         size_t cap)
{
    struct craftkv_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    s->opts = *o;
    snprintf(s->data_dir, sizeof s->data_dir, "%s", o->data_dir);
    s->opts.data_dir = s->data_dir;
    if (s->opts.timeout_ms == 0)
        s->opts.timeout_ms = 5000;
    if (s->opts.workers == 0)
        s->opts.workers = 64;
    s->listen_fd = s->epfd = s->evfd = -1;
    s->fwd.fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->rmu, NULL);
    pthread_cond_init(&s->rcv, NULL);

    s->listen_fd = listen_on(o->listen_client, err, cap);
    if (s->listen_fd < 0)
        goto fail;

    char path[4200];
    snprintf(path, sizeof path, "%s/kv", s->data_dir);
    /* No fsync per applied batch: the raft log is the durable copy and every start restores
     * the newest snapshot and replays the log (kv_store.h: no_sync). */
    struct craft_kv_lmdb_config lc = {.path = path, .no_sync = true};
    char e2[256] = "";
    int rc = craft_kv_store_lmdb_open(&lc, &s->store, e2, sizeof e2);
    if (rc != 0) {
        snprintf(err, cap, "cannot open the store %s: %s", path, e2[0] ? e2 : craft_strerror(rc));
        goto fail;
    }
    if (craft_kv_store_lmdb_discarded(s->store))
        fprintf(stderr, "craftkv: %s held writes not yet synced when the machine went down: "
                        "dropped, rebuilding it from the raft snapshot and log\n", path);
    rc = craft_kv_sm_open(s->store, NULL, &s->sm);
    if (rc != 0) {
        snprintf(err, cap, "cannot open the state machine in %s: %s", path, craft_strerror(rc));
        goto fail;
    }

    struct craft_server servers[CRAFTKV_NODES_MAX];
    for (size_t i = 0; i < o->n_members; i++) {
        servers[i] = (struct craft_server){.id = o->members[i].id, .voter = true};
        snprintf(servers[i].addr, sizeof servers[i].addr, "%s", o->members[i].peer_addr);
    }
    struct craft_config cfg;
    craft_config_default(&cfg, o->id);
    snprintf(path, sizeof path, "%s/raft", s->data_dir);
    cfg.data_dir = path;
    snprintf(cfg.listen_addr, sizeof cfg.listen_addr, "%s", o->listen_peer);
    cfg.peers = servers;
    cfg.n_peers = o->n_members;
    if (!o->join) { /* a joining node bootstraps nothing: the leader adds it */
        cfg.initial_servers = servers;
        cfg.n_initial_servers = o->n_members;
    }
    cfg.auto_promote = true; /* RAFT.ADDNODE's learners become voters once caught up */
    /* LMDB's apply is a few microseconds per command and never syncs (the Raft log is the
     * durable copy): on the raft loop it costs less than the hand-off to a thread. */
    cfg.apply_on_loop = true;
    cfg.observer = observer;
    /* A snapshot copies the whole keyspace, so craftkv takes them less often than craft's
     * default (8192 entries): 100 000 entries, as etcd does, unless told otherwise. The
     * byte threshold still bounds the log. */
    cfg.snapshot_threshold_entries = o->snapshot_entries ? o->snapshot_entries : 100000;
    if (o->snapshot_bytes)
        cfg.snapshot_threshold_bytes = o->snapshot_bytes;
    if (o->trailing_entries)
        cfg.trailing_entries = o->trailing_entries;
    struct craft_fsm fsm;
    craft_kv_fsm_init(&fsm, s->sm);
    rc = craft_node_create(&cfg, &fsm, &s->node, e2, sizeof e2);
    if (rc != 0) {
        snprintf(err, cap, "cannot start the raft node: %s", e2[0] ? e2 : craft_strerror(rc));
        goto fail;
    }

    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->epfd < 0 || s->evfd < 0) {
        snprintf(err, cap, "epoll/eventfd: %s", strerror(errno));
        goto fail;
    }
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &s->listen_fd};
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listen_fd, &e);
    e.data.ptr = &s->evfd;
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &e);

    /* One slot more: the member-table keeper (server_admin.c) is joined with the workers. */
    s->workers = calloc(s->opts.workers + 1, sizeof *s->workers);
    if (!s->workers) {
        snprintf(err, cap, "out of memory");
        goto fail;
    }
    for (; s->n_workers < s->opts.workers; s->n_workers++)
        if (pthread_create(&s->workers[s->n_workers], NULL, worker_main, s) != 0)
            break;
    if (s->n_workers == 0 || pthread_create(&s->ticker, NULL, ticker_main, s) != 0) {
        snprintf(err, cap, "cannot start threads");
        goto fail;
    }
    s->ticker_started = true;
    if (pthread_create(&s->workers[s->n_workers], NULL, craftkv_admin_main, s) != 0) {
        snprintf(err, cap, "cannot start threads");
        goto fail;
    }
    s->n_workers++;
    *out = s;
    return 0;
fail:
    craftkv_server_destroy(s);
    return -1;
}

void craftkv_server_destroy(struct craftkv_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    if (s->ticker_started)
        pthread_join(s->ticker, NULL);
    free(s->workers);
    /* The node first: it completes every future, so the loop path's batches all land on
     * the done queue, then tasks never run or never returned, then every connection. */
    if (s->node)
        craft_node_destroy(s->node);
    s->node = NULL;
    craftkv_async_free(s);
    craftkv_fwd_free(s);
    struct craftkv_task *t;
    while ((t = task_pop(&s->todo_head, &s->todo_tail)))
        craftkv_batch_free(t);
    while ((t = task_pop(&s->done_head, &s->done_tail)))
        craftkv_batch_free(t);
    conn_sweep(s);
    while (s->conns) {
        if (s->conns->fd >= 0)
            close(s->conns->fd);
        conn_free(s, s->conns);
    }
    if (s->sm)
        craft_kv_sm_close(s->sm);
    if (s->store)
        s->store->ops->close(s->store);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->evfd >= 0)
        close(s->evfd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->rmu);
    pthread_cond_destroy(&s->rcv);
    free(s);
}
