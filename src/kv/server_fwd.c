/* craftkv: a follower's writes, forwarded by the loop over one pipelined connection.
 *
 * The blocking path (a worker per command, server_fwd.c) pays a round trip per command
 * and two thread hand-offs; here the loop writes every CRAFT.FWD of every batch into one
 * non-blocking connection to the leader's client port and matches replies to commands in
 * order (RESP replies come back in request order). The leader batches what arrives
 * together (server_conn.c), so forwarded writes share its rounds of replication.
 *
 * Anything but a plain reply leaves the command unanswered, and the write pipeline
 * (server_write.c) routes it again with the same session and seq (exactly once):
 * -CRAFTNOTLEADER (leadership moved), a lost or refused connection (every command still
 * waiting), a malformed reply. The leader's session table answers the ones that were
 * applied in fact. A batch whose every command settled goes to the loop's ready list. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/assert.h"
#include "kv/server_internal.h"

#define FWD_IN_MAX (64u << 20) /* a reply larger than this is malformed */

static void fwd_set_events(struct craftkv_fwd *f)
{
    struct craftkv_server *s = f->grp->srv;
    uint32_t ev = EPOLLIN;
    if (f->connecting || f->out.len > f->out_off)
        ev |= EPOLLOUT;
    if (ev == f->events)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = f};
    epoll_ctl(s->epfd, EPOLL_CTL_MOD, f->fd, &e);
    f->events = ev;
}

/* One command's reply is known (or it is to be sent again): its batch may be complete. */
static void settle(struct craftkv_server *s, struct craftkv_task *t)
{
    struct craftkv_task *head = t->head;
    if (atomic_fetch_sub(&head->pending, 1) == 1)
        craftkv_ready_push(s, head);
}

/* Closes the connection; every command still waiting settles unanswered. */
static void fwd_close(struct craftkv_fwd *f)
{
    struct craftkv_server *s = f->grp->srv;
    if (f->fd >= 0) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, f->fd, NULL);
        close(f->fd);
    }
    f->fd = -1;
    f->connecting = false;
    f->events = 0;
    f->out.len = f->out_off = 0;
    f->in_len = 0;
    struct craftkv_task *t = f->q_head;
    f->q_head = f->q_tail = NULL;
    while (t) {
        struct craftkv_task *next = t->fwd_next;
        t->fwd_next = NULL;
        t->out.len = 0;
        settle(s, t);
        t = next;
    }
}

static int fwd_open(struct craftkv_fwd *f, const char *addr)
{
    struct craftkv_server *s = f->grp->srv;
    struct addrinfo *res;
    if (craftkv_addr_resolve(addr, AI_NUMERICHOST | AI_NUMERICSERV, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.ptr = f};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
        close(fd);
        return -1;
    }
    f->fd = fd;
    f->gen++;
    f->connecting = rc != 0;
    f->events = e.events;
    snprintf(f->addr, sizeof f->addr, "%s", addr);
    /* The leader asks for the cluster's password as any client's (every member has the
     * same): AUTH goes first, pipelined with what follows, and its answer is checked. */
    f->auth_pending = false;
    if (s->opts.requirepass[0]) {
        struct craft_resp_arg argv[2] = {{"AUTH", 4},
                                         {s->opts.requirepass, strlen(s->opts.requirepass)}};
        if (craft_resp_append_command(&f->out, 2, argv) != 0) {
            fwd_close(f);
            return -1;
        }
        f->auth_pending = true;
    }
    return 0;
}

static void fwd_flush(struct craftkv_fwd *f)
{
    while (!f->connecting && f->out.len > f->out_off) {
        ssize_t w = send(f->fd, f->out.data + f->out_off, f->out.len - f->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w <= 0) {
            fwd_close(f);
            return;
        }
        f->out_off += (size_t)w;
    }
    if (f->out_off == f->out.len)
        f->out.len = f->out_off = 0;
    fwd_set_events(f);
}

/* Appends CRAFT.FWD <session> <seq> [<ack>] <argv...> for t; a sharded server's
 * CRAFT.FWDG <gid> <session> ... names the group (the receiver serves it there). */
static int fwd_encode(struct craft_resp_buf *out, const struct craftkv_task *t)
{
    char head[256];
    bool sharded = t->grp->srv->sharded;
    int n = snprintf(head, sizeof head, "*%zu\r\n", t->argc + 3 + (t->ack != 0) + sharded);
    const char *name = sharded ? "CRAFT.FWDG" : "CRAFT.FWD";
    n += snprintf(head + n, sizeof head - (size_t)n, "$%zu\r\n%s\r\n", strlen(name), name);
    uint64_t fields[4];
    size_t nf = 0;
    if (sharded)
        fields[nf++] = t->grp->gid;
    fields[nf++] = t->session;
    fields[nf++] = t->seq;
    if (t->ack != 0) /* CRAFT.FWD's optional ack (server_conn.c) */
        fields[nf++] = t->ack;
    for (size_t i = 0; i < nf; i++) {
        char v[24];
        int lv = snprintf(v, sizeof v, "%llu", (unsigned long long)fields[i]);
        n += snprintf(head + n, sizeof head - (size_t)n, "$%d\r\n%s\r\n", lv, v);
    }
    if (craftkv_buf_append_raw(out, head, (size_t)n) != 0)
        return -1;
    for (size_t i = 0; i < t->argc; i++) {
        char len[32];
        int m = snprintf(len, sizeof len, "$%zu\r\n", t->argv[i].len);
        if (craftkv_buf_append_raw(out, len, (size_t)m) != 0 ||
            craftkv_buf_append_raw(out, t->argv[i].data, t->argv[i].len) != 0 ||
            craftkv_buf_append_raw(out, "\r\n", 2) != 0)
            return -1;
    }
    return 0;
}

bool craftkv_fwd_submit(struct craftkv_group *g, struct craftkv_task *head, const char *addr)
{
    struct craftkv_fwd *f = &g->fwd;
    CRAFT_ASSERT(!head->forwarded); /* never forwarded twice */
    if (f->fd >= 0 && strcmp(f->addr, addr) != 0)
        fwd_close(f); /* leadership moved */
    if (f->fd < 0 && fwd_open(f, addr) != 0)
        return false;
    atomic_store(&head->pending, 1); /* ours, until every command is queued */
    for (struct craftkv_task *t = head; t; t = t->chain) {
        if (t->answered)
            continue;
        t->head = head;
        t->out.len = 0;
        if (fwd_encode(&f->out, t) != 0)
            break; /* out of memory: this one and the rest stay unanswered */
        atomic_fetch_add(&head->pending, 1);
        t->fwd_next = NULL;
        if (f->q_tail) {
            f->q_tail->fwd_next = t;
        } else {
            f->q_head = t;
            f->progress_ms = craftkv_mono_ms(); /* the wait for a reply starts now */
        }
        f->q_tail = t;
    }
    fwd_flush(f);
    if (atomic_fetch_sub(&head->pending, 1) == 1)
        craftkv_ready_push(g->srv, head); /* everything settled already (a closed connection) */
    return true;
}

static bool is_notleader(const char *p, size_t n)
{
    return n > 15 && memcmp(p, "-" CRAFTKV_ERR_NOTLEADER, 15) == 0;
}

static void fwd_read(struct craftkv_fwd *f)
{
    struct craftkv_server *s = f->grp->srv;
    uint64_t gen = f->gen;
    while (f->fd >= 0 && f->gen == gen) {
        if (f->in_cap - f->in_len < 16384) {
            size_t cap = f->in_cap ? f->in_cap * 2 : 65536;
            char *p = cap <= FWD_IN_MAX * 2 ? realloc(f->in, cap) : NULL;
            if (!p) {
                fwd_close(f);
                return;
            }
            f->in = p;
            f->in_cap = cap;
        }
        ssize_t r = recv(f->fd, f->in + f->in_len, f->in_cap - f->in_len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (r <= 0) {
            fwd_close(f);
            return;
        }
        f->in_len += (size_t)r;
        /* Match replies first, settle after: a settled batch is stepped later, on the
         * ready list, but keep this loop independent of what settling does. */
        struct craftkv_task *done = NULL, **tail = &done;
        size_t off = 0;
        bool bad = false;
        while (off < f->in_len) {
            long n = craftkv_reply_len(f->in + off, f->in_len - off);
            if (n == 0)
                break;
            if (n > 0 && f->auth_pending) {
                f->auth_pending = false;
                if (n != 5 || memcmp(f->in + off, "+OK\r\n", 5) != 0) {
                    uint64_t now = craftkv_mono_ms();
                    if (f->auth_warned_ms == 0 || now - f->auth_warned_ms >= 10000) {
                        f->auth_warned_ms = now;
                        fprintf(stderr, "craftkv: the leader at %s refused this node's "
                                        "password (every member needs the same "
                                        "--requirepass)\n", f->addr);
                    }
                    bad = true;
                    break;
                }
                off += 5;
                continue;
            }
            struct craftkv_task *t = f->q_head;
            if (n < 0 || !t) {
                bad = true; /* malformed, or a reply nobody asked for */
                break;
            }
            f->q_head = t->fwd_next;
            if (!f->q_head)
                f->q_tail = NULL;
            t->fwd_next = NULL;
            if (!is_notleader(f->in + off, (size_t)n) &&
                craftkv_buf_append_raw(&t->out, f->in + off, (size_t)n) == 0)
                t->answered = true;
            off += (size_t)n;
            *tail = t;
            tail = &t->fwd_next;
        }
        memmove(f->in, f->in + off, f->in_len - off);
        f->in_len -= off;
        if (off > 0)
            f->progress_ms = craftkv_mono_ms();
        if (bad || f->in_len >= FWD_IN_MAX)
            fwd_close(f);
        while (done) {
            struct craftkv_task *t = done;
            done = t->fwd_next;
            t->fwd_next = NULL;
            settle(s, t);
        }
    }
}

void craftkv_fwd_event(struct craftkv_fwd *f, uint32_t events)
{
    if (f->fd < 0)
        return;
    if (f->connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            fwd_close(f);
            return;
        }
        f->connecting = false;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        fwd_read(f);
        if (f->fd < 0)
            return;
    }
    fwd_flush(f);
}

void craftkv_fwd_tick(struct craftkv_group *g)
{
    struct craftkv_fwd *f = &g->fwd;
    struct craftkv_server *s = g->srv;
    if (f->fd < 0 || !f->q_head)
        return;
    uint64_t leader;
    const char *addr = craftkv_leader_addr(g, &leader);
    bool moved = leader != 0 && (!addr || strcmp(addr, f->addr) != 0);
    bool silent = craftkv_mono_ms() - f->progress_ms > s->opts.timeout_ms / 2;
    /* Without this, commands sent to a leader that was paused or failed waited for its
     * reply for as long as it took: a new submit closes a stale connection, but clients
     * that all wait on it submit nothing. */
    if (moved || silent)
        fwd_close(f);
}

void craftkv_fwd_free(struct craftkv_group *g)
{
    struct craftkv_fwd *f = &g->fwd;
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    craft_resp_buf_free(&f->out);
    free(f->in);
    f->in = NULL;
    /* A waiting command's batch is held by nothing else: free each batch with its last. */
    struct craftkv_task *t = f->q_head;
    f->q_head = f->q_tail = NULL;
    while (t) {
        struct craftkv_task *next = t->fwd_next;
        if (atomic_fetch_sub(&t->head->pending, 1) == 1)
            craftkv_batch_free(t->head);
        t = next;
    }
}
