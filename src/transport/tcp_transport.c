/* The TCP transport: an epoll loop over non-blocking sockets, run by a thread of its own or
 * driven by its owner's thread (craft_tcp_transport_poll). See tcp_transport.h for the
 * contract and docs/design/transport.md for the reasons. */
#include "transport/tcp_transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/err.h"
#include "base/prng.h"
#include "transport/frame.h"

#define FRAME_BYTES_MAX_DEFAULT (64u << 20)
#define QUEUE_BYTES_MAX_DEFAULT ((size_t)64 << 20)
#define BACKOFF_MIN_MS_DEFAULT 50u
#define BACKOFF_MAX_MS_DEFAULT 2000u
#define IN_BUF_BYTES_INITIAL (16u << 10)
#define READS_PER_EVENT_MAX 16 /* fairness: level-triggered epoll brings us back */
#define EVENTS_MAX 64
#define IDLE_WAIT_MS 1000
/* A connect() that neither succeeds nor fails by then is abandoned: a blackholed address
 * would otherwise hold the peer for the kernel's SYN retries (about two minutes). */
#define CONNECT_TIMEOUT_MS 3000
/* Unacknowledged data older than this fails the outbound socket, so a peer whose machine
 * vanished without a FIN is noticed and reconnected to instead of filling our queue. */
#define USER_TIMEOUT_MS 10000
/* Peers that set_peer may add after creation. */
#define PEERS_ADDED_MAX 64

enum ev_kind { EV_LISTEN, EV_WAKE, EV_PEER, EV_INBOUND };

/* What an epoll event's data.ptr points to: the first member of each watched object. */
struct ev {
    enum ev_kind kind;
};

struct buf {
    uint8_t *p;
    size_t len, cap;
};

enum peer_state { PEER_IDLE, PEER_CONNECTING, PEER_CONNECTED };

/* This node's outbound side towards one peer. */
struct peer {
    struct ev ev;
    uint64_t id;
    /* Guarded by mu: touched by senders and set_peer on any thread. */
    pthread_mutex_t mu;
    char host[CRAFT_HOST_BYTES_MAX];
    uint16_t port;
    bool addr_changed;
    struct buf queue; /* encoded frames waiting for the loop */
    /* Loop thread only. */
    int fd;
    enum peer_state state;
    uint32_t events; /* the epoll interest currently registered */
    struct buf out;  /* the batch being written: handshake or frames taken from queue */
    size_t out_off;
    uint64_t next_attempt_ms;
    uint64_t attempt_ms; /* when the current connect() started */
    uint32_t backoff_ms;
    uint64_t connected_at_ms;
    bool failure_logged;
};

/* An accepted connection: receive only. */
struct inbound {
    struct ev ev;
    struct inbound *next;
    int fd;
    bool dead; /* closed; freed after the current batch of events */
    bool handshaken;
    uint64_t from;
    char addr[64];
    struct buf in;
};

struct tcp {
    struct craft_transport base; /* first: the vtable pointer is the transport pointer */
    uint64_t cluster_id, self_id;
    uint32_t frame_bytes_max;
    size_t queue_bytes_max;
    uint32_t backoff_min_ms, backoff_max_ms;
    craft_transport_recv_fn recv;
    void *recv_ctx;
    craft_transport_log_fn log;
    void *log_ctx;
    /* Fixed capacity, never reallocated: peers are added (set_peer) by publishing a fully
     * initialised slot with a release store of n_peers, so lookups need no lock. */
    struct peer *peers;
    size_t peers_cap;
    _Atomic size_t n_peers;
    pthread_mutex_t add_mu; /* serializes adders */
    int epfd, listen_fd, wake_fd;
    uint16_t port;
    struct ev listen_ev, wake_ev;
    struct inbound *inbounds, *dead;
    struct craft_prng prng; /* loop thread only */
    bool driven;            /* no thread: the owner calls craft_tcp_transport_poll */
    pthread_t thread;
    atomic_bool stop;
};

/* The transport whose poll this thread runs, if any: a send from the owner of a driven
 * transport needs no wake-up, since the owner flushes after its round. */
static _Thread_local const struct tcp *tl_polling;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

__attribute__((format(printf, 2, 3))) static void tlog(struct tcp *t, const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "transport n%llu: ", (unsigned long long)t->self_id);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (t->log != NULL) {
        t->log(t->log_ctx, line);
    } else {
        fprintf(stderr, "%s\n", line);
    }
}

static bool buf_reserve(struct buf *b, size_t need)
{
    if (b->cap - b->len >= need) {
        return true;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < need) {
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL) {
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

/* Parses a numeric host and port into *ss; false if host is not a numeric address. */
static bool make_addr(const char *host, uint16_t port, struct sockaddr_storage *ss,
                      socklen_t *sl)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (host == NULL || host[0] == '\0') {
        v4->sin_family = AF_INET;
        v4->sin_addr.s_addr = htonl(INADDR_ANY);
        v4->sin_port = htons(port);
        *sl = sizeof(*v4);
        return true;
    }
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *sl = sizeof(*v4);
        return true;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *sl = sizeof(*v6);
        return true;
    }
    return false;
}

static size_t peer_count(struct tcp *t)
{
    return atomic_load_explicit(&t->n_peers, memory_order_acquire);
}

static struct peer *find_peer(struct tcp *t, uint64_t id)
{
    size_t n = peer_count(t);
    for (size_t i = 0; i < n; i++) {
        if (t->peers[i].id == id) {
            return &t->peers[i];
        }
    }
    return NULL;
}

static void set_interest(struct tcp *t, struct peer *p, uint32_t events)
{
    if (p->events != events) {
        struct epoll_event e = {.events = events, .data.ptr = &p->ev};
        int rc = epoll_ctl(t->epfd, EPOLL_CTL_MOD, p->fd, &e);
        CRAFT_ASSERT(rc == 0);
        p->events = events;
    }
}

/* ---- outbound side ---- */

static void peer_schedule_retry(struct tcp *t, struct peer *p, uint64_t now)
{
    /* Capped doubling; a connection that stayed up a while starts the sequence again, so
     * a peer that accepts and then refuses us backs off instead of spinning. */
    bool was_stable = p->connected_at_ms != 0 && now - p->connected_at_ms >= t->backoff_max_ms;
    if (p->backoff_ms == 0 || was_stable) {
        p->backoff_ms = t->backoff_min_ms;
    } else {
        p->backoff_ms = p->backoff_ms >= t->backoff_max_ms / 2 ? t->backoff_max_ms
                                                               : p->backoff_ms * 2;
    }
    /* Jitter in [3/4, 5/4) of the delay keeps restarted nodes from reconnecting in step. */
    uint64_t d = p->backoff_ms;
    p->next_attempt_ms = now + d - d / 4 + craft_prng_range(&t->prng, 0, d / 2 + 1);
    p->connected_at_ms = 0;
}

static void peer_fail(struct tcp *t, struct peer *p, const char *why, int sys_err)
{
    uint64_t now = now_ms();
    if (p->state == PEER_CONNECTED || !p->failure_logged) {
        tlog(t, "connection to node %llu %s%s%s", (unsigned long long)p->id, why,
             sys_err ? ": " : "", sys_err ? strerror(sys_err) : "");
        p->failure_logged = true;
    }
    if (p->fd >= 0) {
        epoll_ctl(t->epfd, EPOLL_CTL_DEL, p->fd, NULL);
        close(p->fd);
    }
    p->fd = -1;
    p->state = PEER_IDLE;
    p->events = 0;
    /* A partly written batch cannot continue on a new connection: the peer would see a
     * torn frame. Drop it; the queue behind it is kept. */
    p->out.len = 0;
    p->out_off = 0;
    peer_schedule_retry(t, p, now);
}

/* Writes the current batch, then takes the queue as the next batch, until the socket is
 * full or nothing is left. One write() per batch: that is the write batching. */
static void peer_flush(struct tcp *t, struct peer *p)
{
    CRAFT_ASSERT(p->state == PEER_CONNECTED);
    for (;;) {
        if (p->out_off == p->out.len) {
            p->out.len = 0;
            p->out_off = 0;
            pthread_mutex_lock(&p->mu);
            struct buf tmp = p->out;
            p->out = p->queue;
            p->queue = tmp;
            pthread_mutex_unlock(&p->mu);
            if (p->out.len == 0) {
                set_interest(t, p, EPOLLIN | EPOLLRDHUP);
                return;
            }
        }
        ssize_t n = send(p->fd, p->out.p + p->out_off, p->out.len - p->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_interest(t, p, EPOLLIN | EPOLLRDHUP | EPOLLOUT);
                return;
            }
            peer_fail(t, p, "lost", errno);
            return;
        }
        p->out_off += (size_t)n;
    }
}

static void peer_connect(struct tcp *t, struct peer *p, const char *host, uint16_t port)
{
    CRAFT_ASSERT(p->state == PEER_IDLE && p->fd < 0);
    struct sockaddr_storage ss;
    socklen_t sl;
    if (!make_addr(host, port, &ss, &sl)) {
        p->failure_logged = false;
        peer_fail(t, p, "not attempted: address is not numeric", 0);
        return;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        peer_fail(t, p, "not attempted: socket()", errno);
        return;
    }
    int one = 1;
    /* We batch ourselves; Nagle would only add latency to the last frame of a batch. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    unsigned user_timeout = USER_TIMEOUT_MS;
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
    p->fd = fd;
    p->attempt_ms = now_ms();
    p->state = PEER_CONNECTING;
    p->events = EPOLLIN | EPOLLRDHUP | EPOLLOUT;
    struct epoll_event e = {.events = p->events, .data.ptr = &p->ev};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
        peer_fail(t, p, "not attempted: epoll_ctl()", errno);
        return;
    }
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS) {
        peer_fail(t, p, "failed", errno);
        return;
    }
    /* The handshake is the first frame of the first batch. */
    struct craft_handshake hs = {.cluster_id = t->cluster_id, .from = t->self_id, .to = p->id};
    CRAFT_ASSERT(p->out.len == 0);
    if (!buf_reserve(&p->out, CRAFT_FRAME_HEADER_BYTES + CRAFT_HANDSHAKE_BYTES)) {
        peer_fail(t, p, "not attempted: out of memory", 0);
        return;
    }
    p->out.len = craft_handshake_encode(&hs, p->out.p);
    p->out_off = 0;
}

static void peer_event(struct tcp *t, struct peer *p, uint32_t events)
{
    if (p->state == PEER_IDLE) {
        return; /* failed earlier in this batch of events */
    }
    if (p->state == PEER_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            return;
        }
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (soerr != 0 || (events & (EPOLLERR | EPOLLHUP))) {
            peer_fail(t, p, "failed", soerr);
            return;
        }
        p->state = PEER_CONNECTED;
        p->connected_at_ms = now_ms();
        p->failure_logged = false;
        peer_flush(t, p);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
        /* The peer never writes on our outbound connection: anything readable is either
         * its close or a protocol violation; both end the connection. */
        uint8_t b[64];
        ssize_t n = recv(p->fd, b, sizeof(b), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            return;
        }
        peer_fail(t, p, n > 0 ? "closed: the peer wrote on a send-only connection"
                              : "closed by the peer",
                  n < 0 ? errno : 0);
        return;
    }
    if (events & EPOLLOUT) {
        peer_flush(t, p);
    }
}

/* Writes what is queued for a connected peer whose last batch is fully written (a batch
 * still being written waits for EPOLLOUT; the queue goes after it). Returns whether the
 * peer is connected. */
static bool peer_flush_idle(struct tcp *t, struct peer *p)
{
    if (p->state != PEER_CONNECTED) {
        return false;
    }
    if (p->out_off == p->out.len) {
        peer_flush(t, p);
    }
    return true;
}

/* Starts due connection attempts; returns how long the loop may sleep. */
static int peers_tick(struct tcp *t)
{
    uint64_t now = now_ms();
    uint64_t wait = IDLE_WAIT_MS;
    for (size_t i = 0, n = peer_count(t); i < n; i++) {
        struct peer *p = &t->peers[i];
        if (peer_flush_idle(t, p)) {
            continue; /* connected: it took anything queued since the last pass */
        }
        if (p->state == PEER_CONNECTING) {
            uint64_t deadline = p->attempt_ms + CONNECT_TIMEOUT_MS;
            if (now >= deadline) {
                peer_fail(t, p, "failed", ETIMEDOUT);
            } else {
                wait = deadline - now < wait ? deadline - now : wait;
                continue;
            }
        }
        if (p->state != PEER_IDLE) {
            continue;
        }
        char host[CRAFT_HOST_BYTES_MAX];
        pthread_mutex_lock(&p->mu);
        uint16_t port = p->port;
        memcpy(host, p->host, sizeof(host));
        if (p->addr_changed) {
            p->addr_changed = false;
            p->next_attempt_ms = now;
            p->backoff_ms = 0;
            p->failure_logged = false;
        }
        pthread_mutex_unlock(&p->mu);
        if (port == 0) {
            continue;
        }
        if (p->next_attempt_ms <= now) {
            peer_connect(t, p, host, port);
        }
        if (p->state == PEER_IDLE) {
            uint64_t due = p->next_attempt_ms > now ? p->next_attempt_ms - now : 0;
            wait = due < wait ? due : wait;
        }
    }
    return (int)wait;
}

/* ---- inbound side ---- */

static void inbound_close(struct tcp *t, struct inbound *c)
{
    if (c->dead) {
        return;
    }
    epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->dead = true;
    struct inbound **pp = &t->inbounds;
    while (*pp != c) {
        pp = &(*pp)->next;
    }
    *pp = c->next;
    /* Events for it may still be in the current batch: free it after the batch. */
    c->next = t->dead;
    t->dead = c;
}

/* Validates the handshake; false (and the connection is to be closed) if refused. */
static bool inbound_handshake(struct tcp *t, struct inbound *c, const uint8_t *payload,
                              size_t len)
{
    struct craft_handshake hs;
    int rc = craft_handshake_decode(payload, len, &hs);
    if (rc != CRAFT_OK) {
        tlog(t, "refused connection from %s: bad handshake (%s)", c->addr, craft_strerror(rc));
        return false;
    }
    if (hs.cluster_id != t->cluster_id) {
        tlog(t, "refused connection from %s (node %llu): foreign cluster id %llu, ours is %llu",
             c->addr, (unsigned long long)hs.from, (unsigned long long)hs.cluster_id,
             (unsigned long long)t->cluster_id);
        return false;
    }
    if (hs.to != t->self_id) {
        tlog(t, "refused connection from %s (node %llu): addressed to node %llu, this is "
                "node %llu", c->addr, (unsigned long long)hs.from, (unsigned long long)hs.to,
             (unsigned long long)t->self_id);
        return false;
    }
    if (hs.from == t->self_id || find_peer(t, hs.from) == NULL) {
        tlog(t, "refused connection from %s: unknown node %llu", c->addr,
             (unsigned long long)hs.from);
        return false;
    }
    /* One inbound connection per peer: a new one means the old one is dead (the peer
     * restarted or reconnected), even if we have not noticed yet. */
    for (struct inbound *o = t->inbounds, *next; o != NULL; o = next) {
        next = o->next;
        if (o != c && o->handshaken && o->from == hs.from) {
            inbound_close(t, o);
        }
    }
    c->handshaken = true;
    c->from = hs.from;
    return true;
}

/* Delivers the complete frames in c->in; false if the connection must be closed. */
static bool inbound_parse(struct tcp *t, struct inbound *c)
{
    size_t off = 0;
    bool ok = true;
    while (ok) {
        if (atomic_load(&t->stop)) {
            return false; /* shutting down: stop delivering, the connection goes anyway */
        }
        struct craft_frame f;
        uint32_t max =
            c->handshaken ? t->frame_bytes_max + CRAFT_GROUP_ID_BYTES : CRAFT_HANDSHAKE_BYTES;
        int rc = craft_frame_decode(c->in.p + off, c->in.len - off, max, &f);
        if (rc != CRAFT_OK) {
            tlog(t, "closing connection from %s%s: bad frame (%s)", c->addr,
                 c->handshaken ? "" : " before its handshake", craft_strerror(rc));
            return false;
        }
        if (f.consumed == 0) {
            break;
        }
        if (!c->handshaken) {
            ok = inbound_handshake(t, c, f.payload, f.payload_len);
        } else {
            uint64_t group;
            const uint8_t *msg;
            size_t msg_len;
            rc = craft_message_frame_split(f.payload, f.payload_len, &group, &msg, &msg_len);
            if (rc != CRAFT_OK) {
                tlog(t, "closing connection from %s: bad frame (%s)", c->addr,
                     craft_strerror(rc));
                return false;
            }
            t->recv(t->recv_ctx, c->from, group, msg, msg_len);
        }
        off += f.consumed;
    }
    memmove(c->in.p, c->in.p + off, c->in.len - off);
    c->in.len -= off;
    return ok;
}

static void inbound_event(struct tcp *t, struct inbound *c)
{
    for (int i = 0; i < READS_PER_EVENT_MAX && !c->dead; i++) {
        if (c->in.len == c->in.cap) {
            /* Never more than one maximal frame: decode rejects longer headers first. */
            size_t limit = (size_t)t->frame_bytes_max + CRAFT_MESSAGE_HEADER_BYTES;
            size_t cap = c->in.cap ? c->in.cap * 2 : IN_BUF_BYTES_INITIAL;
            cap = cap < limit ? cap : limit;
            CRAFT_ASSERT(cap > c->in.cap);
            uint8_t *p = realloc(c->in.p, cap);
            if (p == NULL) {
                tlog(t, "closing connection from %s: out of memory", c->addr);
                inbound_close(t, c);
                return;
            }
            c->in.p = p;
            c->in.cap = cap;
        }
        ssize_t n = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n <= 0) {
            if (n < 0) {
                tlog(t, "connection from %s lost: %s", c->addr, strerror(errno));
            }
            inbound_close(t, c);
            return;
        }
        c->in.len += (size_t)n;
        if (!inbound_parse(t, c)) {
            inbound_close(t, c);
            return;
        }
    }
}

static void listen_event(struct tcp *t)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(t->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED) {
                tlog(t, "accept failed: %s", strerror(errno));
            }
            return;
        }
        struct inbound *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            tlog(t, "refused a connection: out of memory");
            continue;
        }
        c->ev.kind = EV_INBOUND;
        c->fd = fd;
        char host[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
            port = ntohs(v4->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
            port = ntohs(v6->sin6_port);
        }
        snprintf(c->addr, sizeof(c->addr), "%s:%u", host, port);
        struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = &c->ev};
        if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
            tlog(t, "refused connection from %s: epoll_ctl: %s", c->addr, strerror(errno));
            close(fd);
            free(c);
            continue;
        }
        c->next = t->inbounds;
        t->inbounds = c;
    }
}

static void free_dead(struct tcp *t)
{
    while (t->dead != NULL) {
        struct inbound *c = t->dead;
        t->dead = c->next;
        free(c->in.p);
        free(c);
    }
}

/* One pass of the loop: starts due connections and writes what is queued, waits up to
 * timeout_ms (or until the next connection attempt is due) for events, handles them. */
static void loop_once(struct tcp *t, int timeout_ms)
{
    struct epoll_event evs[EVENTS_MAX];
    int wait = peers_tick(t);
    if (timeout_ms >= 0 && timeout_ms < wait) {
        wait = timeout_ms;
    }
    int n = epoll_wait(t->epfd, evs, EVENTS_MAX, wait);
    if (n < 0) {
        CRAFT_ASSERT(errno == EINTR);
        return;
    }
    for (int i = 0; i < n && !atomic_load(&t->stop); i++) {
        struct ev *ev = evs[i].data.ptr;
        switch (ev->kind) {
        case EV_LISTEN:
            listen_event(t);
            break;
        case EV_WAKE: {
            uint64_t v;
            ssize_t r = read(t->wake_fd, &v, sizeof(v));
            (void)r; /* EAGAIN only: another reader cannot exist */
            break;
        }
        case EV_PEER:
            peer_event(t, (struct peer *)ev, evs[i].events);
            break;
        case EV_INBOUND: {
            struct inbound *c = (struct inbound *)ev;
            if (!c->dead) {
                inbound_event(t, c);
            }
            break;
        }
        }
    }
    free_dead(t);
}

static void *loop_main(void *arg)
{
    pthread_setname_np(pthread_self(), "craft-tcp"); /* top -H, perf, gdb */
    struct tcp *t = arg;
    tl_polling = t;
    while (!atomic_load(&t->stop)) {
        loop_once(t, -1);
    }
    return NULL;
}

static void wake(struct tcp *t)
{
    if (t->wake_fd < 0) {
        return; /* during setup: the loop is not running yet */
    }
    uint64_t one = 1;
    ssize_t r = write(t->wake_fd, &one, sizeof(one));
    (void)r; /* EAGAIN means the counter is huge: a wakeup is pending anyway */
}

/* ---- the vtable ---- */

static int tcp_send(struct craft_transport *base, uint64_t to, uint64_t group,
                    const uint8_t *bytes, size_t len)
{
    struct tcp *t = (struct tcp *)base;
    if (atomic_load(&t->stop)) {
        return CRAFT_ESHUTDOWN;
    }
    if (len == 0) {
        return CRAFT_EINVAL;
    }
    if (len > t->frame_bytes_max) {
        return CRAFT_ETOOBIG;
    }
    struct peer *p = find_peer(t, to);
    if (p == NULL) {
        return CRAFT_EUNKNOWNPEER;
    }
    size_t need = CRAFT_MESSAGE_HEADER_BYTES + len;
    pthread_mutex_lock(&p->mu);
    if (p->queue.len + need > t->queue_bytes_max) {
        pthread_mutex_unlock(&p->mu);
        return CRAFT_EBUSY;
    }
    if (!buf_reserve(&p->queue, need)) {
        pthread_mutex_unlock(&p->mu);
        return CRAFT_ENOMEM;
    }
    bool was_empty = p->queue.len == 0;
    craft_message_header_encode(p->queue.p + p->queue.len, group, (uint32_t)len);
    memcpy(p->queue.p + p->queue.len + CRAFT_MESSAGE_HEADER_BYTES, bytes, len);
    p->queue.len += need;
    pthread_mutex_unlock(&p->mu);
    /* Only the first frame of a queue wakes the loop; it takes the whole queue at once. The
     * loop's own thread (a driven transport's owner) flushes after its round instead. */
    if (was_empty && tl_polling != t) {
        wake(t);
    }
    return CRAFT_OK;
}

static void tcp_free(struct tcp *t)
{
    for (struct inbound *c = t->inbounds; c != NULL; c = c->next) {
        close(c->fd);
    }
    while (t->inbounds != NULL) {
        struct inbound *c = t->inbounds;
        t->inbounds = c->next;
        c->next = t->dead;
        t->dead = c;
    }
    free_dead(t);
    for (size_t i = 0, n = peer_count(t); i < n; i++) {
        struct peer *p = &t->peers[i];
        if (p->fd >= 0) {
            close(p->fd);
        }
        free(p->queue.p);
        free(p->out.p);
        pthread_mutex_destroy(&p->mu);
    }
    free(t->peers);
    pthread_mutex_destroy(&t->add_mu);
    if (t->listen_fd >= 0) {
        close(t->listen_fd);
    }
    if (t->wake_fd >= 0) {
        close(t->wake_fd);
    }
    if (t->epfd >= 0) {
        close(t->epfd);
    }
    free(t);
}

static void tcp_close(struct craft_transport *base)
{
    struct tcp *t = (struct tcp *)base;
    atomic_store(&t->stop, true);
    if (!t->driven) {
        CRAFT_ASSERT(!pthread_equal(pthread_self(), t->thread));
        wake(t);
        int rc = pthread_join(t->thread, NULL);
        CRAFT_ASSERT(rc == 0);
    }
    if (tl_polling == t) {
        tl_polling = NULL; /* the owner's thread may drive another transport later */
    }
    tcp_free(t);
}

static int tcp_listen(struct tcp *t, const struct craft_tcp_config *cfg)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (!make_addr(cfg->listen_host, cfg->listen_port, &ss, &sl)) {
        return CRAFT_EINVAL;
    }
    t->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->listen_fd < 0) {
        return CRAFT_EIO;
    }
    int one = 1;
    /* A restarted node must get its port back while old connections sit in TIME_WAIT. */
    setsockopt(t->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(t->listen_fd, (struct sockaddr *)&ss, sl) != 0 || listen(t->listen_fd, 128) != 0) {
        tlog(t, "cannot listen on %s:%u: %s", cfg->listen_host ? cfg->listen_host : "*",
             (unsigned)cfg->listen_port, strerror(errno));
        return CRAFT_EIO;
    }
    sl = sizeof(ss);
    if (getsockname(t->listen_fd, (struct sockaddr *)&ss, &sl) != 0) {
        return CRAFT_EIO;
    }
    t->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                            : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return CRAFT_OK;
}

/* Initialises the next free slot and publishes it. Caller holds add_mu or is the creator. */
static int peer_init(struct tcp *t, uint64_t id, const char *host, uint16_t port)
{
    size_t n = peer_count(t);
    if (n == t->peers_cap) {
        return CRAFT_EBUSY;
    }
    struct peer *p = &t->peers[n];
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        return CRAFT_ENOMEM;
    }
    p->ev.kind = EV_PEER;
    p->id = id;
    snprintf(p->host, sizeof(p->host), "%s", host);
    p->port = port;
    p->fd = -1;
    atomic_store_explicit(&t->n_peers, n + 1, memory_order_release);
    wake(t);
    return CRAFT_OK;
}

static int tcp_setup(struct tcp *t, const struct craft_tcp_config *cfg)
{
    t->peers_cap = cfg->n_peers + PEERS_ADDED_MAX;
    t->peers = calloc(t->peers_cap, sizeof(*t->peers));
    if (t->peers == NULL) {
        return CRAFT_ENOMEM;
    }
    for (size_t i = 0; i < cfg->n_peers; i++) {
        const struct craft_peer_addr *a = &cfg->peers[i];
        if (a->id == cfg->self_id) {
            continue;
        }
        if (a->id == 0 || find_peer(t, a->id) != NULL ||
            memchr(a->host, '\0', sizeof(a->host)) == NULL) {
            return CRAFT_EINVAL;
        }
        int rc = peer_init(t, a->id, a->host, a->port);
        if (rc != CRAFT_OK) {
            return rc;
        }
    }
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->epfd < 0 || t->wake_fd < 0) {
        return CRAFT_EIO;
    }
    int rc = tcp_listen(t, cfg);
    if (rc != CRAFT_OK) {
        return rc;
    }
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &t->listen_ev};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->listen_fd, &e) != 0) {
        return CRAFT_EIO;
    }
    e.data.ptr = &t->wake_ev;
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wake_fd, &e) != 0) {
        return CRAFT_EIO;
    }
    return CRAFT_OK;
}

struct craft_transport *craft_tcp_transport_create(const struct craft_tcp_config *cfg, int *err)
{
    *err = CRAFT_EINVAL;
    if (cfg->recv == NULL || cfg->self_id == 0 || (cfg->n_peers > 0 && cfg->peers == NULL)) {
        return NULL;
    }
    struct tcp *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        *err = CRAFT_ENOMEM;
        return NULL;
    }
    t->base.send = tcp_send;
    t->base.close = tcp_close;
    t->cluster_id = cfg->cluster_id;
    t->self_id = cfg->self_id;
    t->frame_bytes_max = cfg->frame_bytes_max ? cfg->frame_bytes_max : FRAME_BYTES_MAX_DEFAULT;
    t->queue_bytes_max =
        cfg->peer_queue_bytes_max ? cfg->peer_queue_bytes_max : QUEUE_BYTES_MAX_DEFAULT;
    t->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : BACKOFF_MIN_MS_DEFAULT;
    t->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : BACKOFF_MAX_MS_DEFAULT;
    if (t->backoff_max_ms < t->backoff_min_ms) {
        t->backoff_max_ms = t->backoff_min_ms;
    }
    t->recv = cfg->recv;
    t->recv_ctx = cfg->recv_ctx;
    t->log = cfg->log;
    t->log_ctx = cfg->log_ctx;
    t->epfd = t->listen_fd = t->wake_fd = -1;
    pthread_mutex_init(&t->add_mu, NULL);
    t->listen_ev.kind = EV_LISTEN;
    t->wake_ev.kind = EV_WAKE;
    craft_prng_seed(&t->prng, cfg->seed ^ cfg->self_id);
    atomic_init(&t->stop, false);
    t->driven = cfg->driven;
    int rc = tcp_setup(t, cfg);
    if (rc == CRAFT_OK && !t->driven && pthread_create(&t->thread, NULL, loop_main, t) != 0) {
        rc = CRAFT_ENOMEM;
    }
    if (rc != CRAFT_OK) {
        tcp_free(t);
        *err = rc;
        return NULL;
    }
    *err = CRAFT_OK;
    return &t->base;
}

uint16_t craft_tcp_transport_port(const struct craft_transport *base)
{
    return ((const struct tcp *)base)->port;
}

int craft_tcp_transport_set_peer(struct craft_transport *base, uint64_t id, const char *host,
                                 uint16_t port)
{
    struct tcp *t = (struct tcp *)base;
    if (host == NULL || strlen(host) >= CRAFT_HOST_BYTES_MAX || id == 0) {
        return CRAFT_EINVAL;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    if (!make_addr(host, port, &ss, &sl)) {
        return CRAFT_EINVAL;
    }
    if (id == t->self_id) {
        return CRAFT_OK;
    }
    struct peer *p = find_peer(t, id);
    if (p == NULL) {
        pthread_mutex_lock(&t->add_mu);
        int rc = find_peer(t, id) != NULL ? CRAFT_OK : peer_init(t, id, host, port);
        pthread_mutex_unlock(&t->add_mu);
        return rc;
    }
    pthread_mutex_lock(&p->mu);
    snprintf(p->host, sizeof(p->host), "%s", host);
    p->port = port;
    p->addr_changed = true;
    pthread_mutex_unlock(&p->mu);
    wake(t);
    return CRAFT_OK;
}

void craft_tcp_transport_poll(struct craft_transport *base, int timeout_ms)
{
    struct tcp *t = (struct tcp *)base;
    CRAFT_ASSERT(t->driven);
    tl_polling = t;
    loop_once(t, timeout_ms);
}

void craft_tcp_transport_flush(struct craft_transport *base)
{
    struct tcp *t = (struct tcp *)base;
    CRAFT_ASSERT(t->driven && tl_polling == t);
    for (size_t i = 0, n = peer_count(t); i < n; i++) {
        (void)peer_flush_idle(t, &t->peers[i]);
    }
}

void craft_tcp_transport_wake(struct craft_transport *base)
{
    wake((struct tcp *)base);
}
