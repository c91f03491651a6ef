/* craft_kv_client: leader tracking, resends with the same session and seq, and a bounded
 * RESP2 reply parser (design: docs/design/kv-client.md; contract: craft_kv_client.h).
 *
 * Its own small connection code rather than craftkv_client_call: every wait here is bounded
 * by the operation's deadline (poll on a non-blocking socket, not SO_RCVTIMEO per call),
 * replies are scanned incrementally (a long reply arriving in pieces is scanned once) and
 * capped, and any doubt about the stream closes the connection, so a late reply of an
 * abandoned attempt can never be taken for the answer to the next request. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "craft_kv_client.h"
#include "kv/resp.h"

#define CONFIGURED_NODES_MAX 16
#define BACKOFF_MS_MIN 10u
#define BACKOFF_MS_MAX 500u
/* A simple-string, error, integer or header line longer than this is malformed (craftkv's
 * longest are error texts quoting a few arguments); it also keeps rescans of an
 * incomplete line cheap. */
#define LINE_BYTES_MAX (64u * 1024u)
/* A reply buffer larger than this is released after the operation. */
#define IN_KEEP_BYTES_MAX (1u << 20)

_Static_assert(CONFIGURED_NODES_MAX < CRAFT_KV_CLIENT_NODES_MAX,
               "room must remain for learned leader addresses");

struct craft_kv_client {
    /* Configured addresses first, leaders learned from replies after them. */
    char nodes[CRAFT_KV_CLIENT_NODES_MAX][CRAFT_KV_CLIENT_ADDR_BYTES_MAX];
    size_t n_nodes, n_configured;
    size_t cur;     /* where the next attempt goes */
    int fd;         /* connected to nodes[fd_node], or -1 */
    size_t fd_node;
    char *in;       /* the bytes of the reply being read */
    size_t in_len, in_cap;
    uint64_t session, seq; /* seq: the last one used */
    uint32_t timeout_ms, attempt_timeout_ms;
    size_t reply_bytes_max;
    char errmsg[256];
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void nap_until(uint32_t ms, uint64_t deadline)
{
    uint64_t now = mono_ms();
    if (now >= deadline)
        return;
    if (deadline - now < ms)
        ms = (uint32_t)(deadline - now);
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void set_err(struct craft_kv_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_err(struct craft_kv_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
}

/* ---- the reply parser ---------------------------------------------------------------- */

/* A reply is scanned as it arrives, remembering how far it got (offsets and, per nesting
 * level, how many values are still due), then built in one allocation once complete. */
struct scan {
    size_t pos; /* bytes of complete values and array headers */
    int depth;  /* current nesting level; -1 once the reply is complete */
    size_t left[CRAFT_KV_CLIENT_REPLY_DEPTH_MAX + 1];
    size_t n_values, str_bytes; /* what the built tree needs */
};

static void scan_init(struct scan *s)
{
    memset(s, 0, sizeof *s);
    s->left[0] = 1;
}

/* Strict decimal: optional '-', digits only, no overflow. */
static bool parse_i64(const char *p, size_t n, int64_t *out)
{
    bool neg = n > 0 && p[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i == n || n - i > 19)
        return false;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* Scans on from s->pos over buf[0..len). Returns 1 complete (the reply is buf[0..s->pos)),
 * 0 incomplete, -1 malformed or beyond max bytes. */
static int scan_step(struct scan *s, const char *buf, size_t len, size_t max)
{
    while (s->depth >= 0) {
        if (s->left[s->depth] == 0) {
            s->depth--;
            continue;
        }
        size_t avail = len - s->pos;
        if (avail == 0)
            return 0; /* (buf may be NULL before the first byte) */
        const char *p = buf + s->pos;
        const char *nl = memchr(p, '\n', avail < LINE_BYTES_MAX ? avail : LINE_BYTES_MAX);
        if (!nl)
            return avail < LINE_BYTES_MAX ? 0 : -1;
        size_t l = (size_t)(nl - p) + 1; /* the line, CRLF included */
        if (l < 3 || p[l - 2] != '\r')
            return -1;
        int64_t n = 0;
        switch (p[0]) {
        case '+':
        case '-':
            s->str_bytes += l - 3 + 1;
            s->pos += l;
            break;
        case ':':
            if (!parse_i64(p + 1, l - 3, &n))
                return -1;
            s->pos += l;
            break;
        case '$':
            if (!parse_i64(p + 1, l - 3, &n) || n < -1 || (n > 0 && (uint64_t)n > max))
                return -1;
            if (n >= 0) {
                size_t need = l + (size_t)n + 2;
                if (s->pos + need > max)
                    return -1;
                if (avail < need)
                    return 0;
                if (p[l + (size_t)n] != '\r' || p[l + (size_t)n + 1] != '\n')
                    return -1;
                s->str_bytes += (size_t)n + 1;
                l = need;
            }
            s->pos += l;
            break;
        case '*':
            /* Every value takes at least 3 bytes: a larger count can never complete. */
            if (!parse_i64(p + 1, l - 3, &n) || n < -1 || (n > 0 && (uint64_t)n > max / 3))
                return -1;
            if (n > 0 && s->depth == CRAFT_KV_CLIENT_REPLY_DEPTH_MAX)
                return -1;
            s->pos += l;
            break;
        default:
            return -1;
        }
        s->n_values++;
        s->left[s->depth]--;
        if (p[0] == '*' && n > 0) {
            s->depth++;
            s->left[s->depth] = (size_t)n;
        }
    }
    return 1;
}

struct build {
    const char *buf;
    size_t pos, end;
    struct craft_kv_reply *values;
    size_t n_used;
    char *str;
};

static void build_string(struct build *b, struct craft_kv_reply *r, const char *p, size_t n)
{
    r->str = b->str;
    r->len = n;
    memcpy(b->str, p, n);
    b->str[n] = '\0';
    b->str += n + 1;
}

/* Fills r from the (already validated) value at b->pos. Nesting is bounded by the scan. */
static void build_value(struct build *b, struct craft_kv_reply *r)
{
    const char *p = b->buf + b->pos;
    size_t l = (size_t)((const char *)memchr(p, '\n', b->end - b->pos) - p) + 1;
    int64_t n = 0;
    b->pos += l;
    switch (p[0]) {
    case '+':
    case '-':
        r->type = p[0] == '+' ? CRAFT_KV_REPLY_STATUS : CRAFT_KV_REPLY_ERROR;
        build_string(b, r, p + 1, l - 3);
        return;
    case ':':
        r->type = CRAFT_KV_REPLY_INTEGER;
        parse_i64(p + 1, l - 3, &r->integer);
        return;
    case '$':
        parse_i64(p + 1, l - 3, &n);
        if (n < 0) {
            r->type = CRAFT_KV_REPLY_NIL;
            return;
        }
        r->type = CRAFT_KV_REPLY_BULK;
        build_string(b, r, p + l, (size_t)n);
        b->pos += (size_t)n + 2;
        return;
    default: /* '*' */
        parse_i64(p + 1, l - 3, &n);
        if (n < 0) {
            r->type = CRAFT_KV_REPLY_NIL;
            return;
        }
        r->type = CRAFT_KV_REPLY_ARRAY;
        r->n_elements = (size_t)n;
        if (n == 0)
            return;
        r->elements = b->values + b->n_used;
        b->n_used += (size_t)n;
        for (size_t i = 0; i < (size_t)n; i++)
            build_value(b, &r->elements[i]);
    }
}

/* The tree of the complete reply at buf[0..s->pos), or NULL if out of memory. */
static struct craft_kv_reply *build_reply(const char *buf, const struct scan *s)
{
    size_t size = s->n_values * sizeof(struct craft_kv_reply) + s->str_bytes;
    struct craft_kv_reply *values = calloc(1, size);
    if (!values)
        return NULL;
    struct build b = {.buf = buf, .end = s->pos, .values = values, .n_used = 1,
                      .str = (char *)(values + s->n_values)};
    build_value(&b, &values[0]);
    assert(b.pos == s->pos && b.n_used == s->n_values && b.str == (char *)values + size);
    return values;
}

void craft_kv_reply_free(struct craft_kv_reply *r)
{
    free(r);
}

/* ---- addresses ----------------------------------------------------------------------- */

/* "host:port" with a non-empty host and a numeric port of 1-5 digits, no spaces. */
static bool addr_valid(const char *s, size_t n)
{
    if (n < 3 || n >= CRAFT_KV_CLIENT_ADDR_BYTES_MAX)
        return false;
    size_t colon = n;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
            return false;
        if (s[i] == ':')
            colon = i;
    }
    if (colon == 0 || colon == n || n - colon - 1 < 1 || n - colon - 1 > 5)
        return false;
    for (size_t i = colon + 1; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static void conn_drop(struct craft_kv_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* The index of addr in c->nodes, added if new (a learned address replaces the last
 * learned one when the table is full). */
static size_t node_find_or_add(struct craft_kv_client *c, const char *addr, size_t n)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        if (strlen(c->nodes[i]) == n && memcmp(c->nodes[i], addr, n) == 0)
            return i;
    size_t i = c->n_nodes < CRAFT_KV_CLIENT_NODES_MAX ? c->n_nodes++ : CRAFT_KV_CLIENT_NODES_MAX - 1;
    if (c->fd >= 0 && c->fd_node == i)
        conn_drop(c);
    memcpy(c->nodes[i], addr, n);
    c->nodes[i][n] = '\0';
    return i;
}

/* ---- one connection ------------------------------------------------------------------ */

/* Waits for ev on fd until deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short ev, uint64_t deadline)
{
    for (;;) {
        uint64_t now = mono_ms();
        if (now >= deadline)
            return 0;
        uint64_t left = deadline - now;
        struct pollfd p = {.fd = fd, .events = ev};
        int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r > 0)
            return 1;
    }
}

static int connect_one(const struct addrinfo *ai, uint64_t deadline)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        int err = 0;
        socklen_t len = sizeof err;
        if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            close(fd);
            return -1;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Connects to nodes[cur]. Returns 0, or -1 with errmsg set. */
static int conn_open(struct craft_kv_client *c, uint64_t deadline)
{
    const char *addr = c->nodes[c->cur];
    const char *colon = strrchr(addr, ':');
    char host[CRAFT_KV_CLIENT_ADDR_BYTES_MAX];
    size_t hlen = (size_t)(colon - addr);
    const char *h = addr;
    if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV},
                    *res;
    int gai = getaddrinfo(host, colon + 1, &hints, &res);
    if (gai != 0) {
        set_err(c, "%s: %s", addr, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, deadline);
    freeaddrinfo(res);
    if (fd < 0) {
        set_err(c, "%s: cannot connect", addr);
        return -1;
    }
    c->fd = fd;
    c->fd_node = c->cur;
    return 0;
}

static int send_all(int fd, const char *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(fd, POLLOUT, deadline) != 1)
                return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

enum attempt_result {
    ATTEMPT_OK,     /* *reply is set */
    ATTEMPT_FAILED, /* no usable reply; the connection is closed; errmsg says why */
    ATTEMPT_NOMEM,
};

/* Sends req to nodes[cur] (connecting if needed) and reads one reply until deadline. */
static enum attempt_result attempt(struct craft_kv_client *c, const struct craft_resp_buf *req,
                                   uint64_t deadline, struct craft_kv_reply **reply)
{
    const char *addr = c->nodes[c->cur];
    if (c->fd >= 0 && c->fd_node != c->cur)
        conn_drop(c);
    if (c->fd < 0 && conn_open(c, deadline) != 0)
        return ATTEMPT_FAILED;
    if (send_all(c->fd, req->data, req->len, deadline) != 0) {
        set_err(c, "%s: cannot send the command", addr);
        goto fail;
    }
    struct scan s;
    scan_init(&s);
    c->in_len = 0;
    for (;;) {
        int r = scan_step(&s, c->in, c->in_len, c->reply_bytes_max);
        if (r < 0) {
            set_err(c, "%s: malformed or oversized reply", addr);
            goto fail;
        }
        if (r > 0) {
            if (s.pos != c->in_len) {
                /* One request, one reply: anything more means the stream is not ours. */
                set_err(c, "%s: unexpected bytes after a reply", addr);
                goto fail;
            }
            *reply = build_reply(c->in, &s);
            if (!*reply) {
                conn_drop(c);
                return ATTEMPT_NOMEM;
            }
            return ATTEMPT_OK;
        }
        if (c->in_len >= c->reply_bytes_max) {
            set_err(c, "%s: reply larger than %zu bytes", addr, c->reply_bytes_max);
            goto fail;
        }
        if (c->in_cap - c->in_len < 4096 && c->in_cap < c->reply_bytes_max) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 16384;
            if (cap > c->reply_bytes_max)
                cap = c->reply_bytes_max;
            char *p = realloc(c->in, cap);
            if (!p) {
                conn_drop(c);
                return ATTEMPT_NOMEM;
            }
            c->in = p;
            c->in_cap = cap;
        }
        int w = wait_fd(c->fd, POLLIN, deadline);
        if (w != 1) {
            set_err(c, "%s: %s", addr, w == 0 ? "no reply in time" : strerror(errno));
            goto fail;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
        } else if (n == 0) {
            set_err(c, "%s: connection closed", addr);
            goto fail;
        } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            set_err(c, "%s: %s", addr, strerror(errno));
            goto fail;
        }
    }
fail:
    conn_drop(c);
    return ATTEMPT_FAILED;
}

/* ---- finding the leader -------------------------------------------------------------- */

static bool has_prefix(const struct craft_kv_reply *r, const char *prefix)
{
    size_t n = strlen(prefix);
    return r->type == CRAFT_KV_REPLY_ERROR && r->len >= n && memcmp(r->str, prefix, n) == 0 &&
           (r->len == n || r->str[n] == ' ');
}

/* The address in "CRAFTNOTLEADER <host:port>", if it holds one ("?" or text: none). */
static bool notleader_hint(const struct craft_kv_reply *r, const char **addr, size_t *n)
{
    const char *p = r->str + strlen("CRAFTNOTLEADER");
    if (*p != ' ')
        return false;
    p++;
    *addr = p;
    *n = strcspn(p, " ");
    return addr_valid(p, *n);
}

/* Asks nodes[cur] for INFO's leader_client_addr. Returns true with the address copied. */
static bool info_leader(struct craft_kv_client *c, uint64_t deadline, char *out, size_t cap)
{
    static const struct craft_resp_arg info = {"INFO", 4};
    struct craft_resp_buf req = {0};
    struct craft_kv_reply *r = NULL;
    bool found = false;
    if (craft_resp_append_command(&req, 1, &info) != CRAFT_OK)
        return false;
    if (attempt(c, &req, deadline, &r) == ATTEMPT_OK && r->type == CRAFT_KV_REPLY_BULK) {
        static const char key[] = "leader_client_addr:";
        const char *p = r->str;
        while ((p = strstr(p, key)) != NULL && p != r->str && p[-1] != '\n')
            p += sizeof key - 1;
        if (p) {
            p += sizeof key - 1;
            size_t n = strcspn(p, "\r\n");
            if (addr_valid(p, n) && n < cap) {
                memcpy(out, p, n);
                out[n] = '\0';
                found = true;
            }
        }
    }
    craft_kv_reply_free(r);
    craft_resp_buf_free(&req);
    return found;
}

/* After CRAFTNOTLEADER from nodes[cur]: points cur at the leader it names, or INFO names,
 * and returns true; false when neither knows (cur unchanged). */
static bool follow_leader(struct craft_kv_client *c, const struct craft_kv_reply *r,
                          uint64_t deadline)
{
    const char *addr;
    size_t n;
    char buf[CRAFT_KV_CLIENT_ADDR_BYTES_MAX];
    if (!notleader_hint(r, &addr, &n)) {
        if (!info_leader(c, deadline, buf, sizeof buf))
            return false;
        addr = buf;
        n = strlen(buf);
    }
    if (strlen(c->nodes[c->cur]) == n && memcmp(c->nodes[c->cur], addr, n) == 0)
        return false; /* it names itself: a leader change under way */
    c->cur = node_find_or_add(c, addr, n);
    return true;
}

/* ---- the retry loop ------------------------------------------------------------------ */

struct pace {
    size_t misses;    /* failed attempts since the last pause */
    uint32_t backoff; /* the next pause */
};

/* Counts a failed attempt; pauses once every node has had its turn, so a cluster without a
 * leader is polled, not hammered. always: pause now (the node asked for it). */
static void pace_miss(struct craft_kv_client *c, struct pace *p, bool always, uint64_t deadline)
{
    if (!always && ++p->misses < c->n_nodes)
        return;
    nap_until(p->backoff, deadline);
    p->misses = 0;
    p->backoff = p->backoff * 2 > BACKOFF_MS_MAX ? BACKOFF_MS_MAX : p->backoff * 2;
}

static void node_next(struct craft_kv_client *c)
{
    c->cur = (c->cur + 1) % c->n_nodes;
}

/* Sends req until a reply that is the command's answer, or the deadline. write: req is a
 * CRAFT.FWD (only the leader may answer; CRAFTNOTLEADER moves on to the leader). */
static int run(struct craft_kv_client *c, const struct craft_resp_buf *req, bool write,
               struct craft_kv_reply **out)
{
    uint64_t deadline = mono_ms() + c->timeout_ms;
    struct pace pace = {.misses = 0, .backoff = BACKOFF_MS_MIN};
    c->errmsg[0] = '\0';
    for (;;) {
        uint64_t now = mono_ms();
        if (now >= deadline) {
            char last[sizeof c->errmsg];
            memcpy(last, c->errmsg, sizeof last);
            set_err(c, "no answer within %u ms%s%.200s", (unsigned)c->timeout_ms,
                    last[0] ? "; last: " : "", last);
            return CRAFT_ETIMEOUT;
        }
        uint64_t attempt_deadline = now + c->attempt_timeout_ms;
        if (attempt_deadline > deadline)
            attempt_deadline = deadline;
        struct craft_kv_reply *r = NULL;
        enum attempt_result a = attempt(c, req, attempt_deadline, &r);
        if (a == ATTEMPT_NOMEM) {
            set_err(c, "out of memory");
            return CRAFT_ENOMEM;
        }
        if (a == ATTEMPT_FAILED) {
            node_next(c);
            pace_miss(c, &pace, false, deadline);
            continue;
        }
        if (write && has_prefix(r, "CRAFTNOTLEADER")) {
            set_err(c, "%s: %.200s", c->nodes[c->cur], r->str);
            bool moved = follow_leader(c, r, attempt_deadline);
            craft_kv_reply_free(r);
            if (!moved)
                node_next(c);
            pace_miss(c, &pace, false, deadline);
            continue;
        }
        if (has_prefix(r, "TRYAGAIN")) {
            /* No quorum within the server's own timeout. A write stays with the leader (a
             * new one will say CRAFTNOTLEADER); a read may do better elsewhere. */
            set_err(c, "%s: %.200s", c->nodes[c->cur], r->str);
            craft_kv_reply_free(r);
            if (!write)
                node_next(c);
            pace_miss(c, &pace, true, deadline);
            continue;
        }
        if (r->type == CRAFT_KV_REPLY_ERROR && strcmp(r->str, "ERR server shutting down") == 0) {
            set_err(c, "%s: %s", c->nodes[c->cur], r->str);
            craft_kv_reply_free(r);
            conn_drop(c);
            node_next(c);
            pace_miss(c, &pace, false, deadline);
            continue;
        }
        if (r->type == CRAFT_KV_REPLY_ERROR)
            set_err(c, "%.250s", r->str);
        *out = r;
        return CRAFT_OK;
    }
}

/* ---- the public API ------------------------------------------------------------------ */

static const char *const write_names[] = {
    "SET",    "SETNX",   "GETSET",   "GETDEL",    "DEL",      "UNLINK",  "APPEND",
    "INCR",   "INCRBY",  "DECR",     "DECRBY",    "MSET",     "MSETNX",  "EXPIRE",
    "PEXPIRE", "EXPIREAT", "PEXPIREAT", "PERSIST", "FLUSHALL", "FLUSHDB",
};

static bool name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

static bool is_write(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof write_names / sizeof write_names[0]; i++)
        if (name_is(name, len, write_names[i]))
            return true;
    return false;
}

int craft_kv_client_open(const struct craft_kv_client_opts *o, struct craft_kv_client **out)
{
    if (!o || !out || !o->addrs || o->n_addrs == 0 || o->n_addrs > CONFIGURED_NODES_MAX)
        return CRAFT_EINVAL;
    for (size_t i = 0; i < o->n_addrs; i++)
        if (!o->addrs[i] || !addr_valid(o->addrs[i], strlen(o->addrs[i])))
            return CRAFT_EINVAL;
    struct craft_kv_client *c = calloc(1, sizeof *c);
    if (!c)
        return CRAFT_ENOMEM;
    c->fd = -1;
    c->session = o->session;
    c->seq = o->session ? o->last_seq : 0;
    while (c->session == 0) {
        ssize_t n = getrandom(&c->session, sizeof c->session, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof c->session) {
            free(c);
            return CRAFT_EIO;
        }
    }
    c->timeout_ms = o->timeout_ms ? o->timeout_ms : CRAFT_KV_CLIENT_TIMEOUT_MS_DEFAULT;
    c->attempt_timeout_ms = o->attempt_timeout_ms ? o->attempt_timeout_ms : c->timeout_ms;
    c->reply_bytes_max = o->reply_bytes_max ? o->reply_bytes_max
                                            : CRAFT_KV_CLIENT_REPLY_BYTES_MAX_DEFAULT;
    for (size_t i = 0; i < o->n_addrs; i++)
        node_find_or_add(c, o->addrs[i], strlen(o->addrs[i]));
    c->n_configured = c->n_nodes;
    *out = c;
    return CRAFT_OK;
}

void craft_kv_client_close(struct craft_kv_client *c)
{
    if (!c)
        return;
    conn_drop(c);
    free(c->in);
    free(c);
}

void craft_kv_client_session(const struct craft_kv_client *c, uint64_t *session,
                             uint64_t *last_seq)
{
    if (session)
        *session = c->session;
    if (last_seq)
        *last_seq = c->seq;
}

const char *craft_kv_client_node(const struct craft_kv_client *c)
{
    return c->nodes[c->cur];
}

const char *craft_kv_client_errmsg(const struct craft_kv_client *c)
{
    return c->errmsg;
}

const char *craft_kv_client_strerror(int err)
{
    if (err == CRAFT_KV_CLIENT_EREPLY)
        return "the server answered with an error";
    return craft_strerror(err);
}

int craft_kv_client_command(struct craft_kv_client *c, size_t argc, const char *const *argv,
                            const size_t *lens, struct craft_kv_reply **reply)
{
    if (reply)
        *reply = NULL;
    if (!c || !reply || argc == 0 || !argv)
        return CRAFT_EINVAL;
    for (size_t i = 0; i < argc; i++)
        if (!argv[i])
            return CRAFT_EINVAL;
    /* Room for CRAFT.FWD <session> <seq> in front. */
    struct craft_resp_arg *args = malloc((argc + 3) * sizeof *args);
    if (!args)
        return CRAFT_ENOMEM;
    for (size_t i = 0; i < argc; i++)
        args[i + 3] = (struct craft_resp_arg){argv[i], lens ? lens[i] : strlen(argv[i])};
    bool fwd = name_is(args[3].data, args[3].len, "CRAFT.FWD");
    bool write = fwd || is_write(args[3].data, args[3].len);
    size_t first = 3;
    char sess[24], seq[24];
    if (write && !fwd) {
        /* The seq is spent here, whatever happens: a write in doubt must never share its
         * seq with the next one (the leader would answer the next with the old result). */
        c->seq++;
        args[0] = (struct craft_resp_arg){"CRAFT.FWD", 9};
        args[1] = (struct craft_resp_arg){sess, (size_t)snprintf(sess, sizeof sess, "%llu",
                                                                 (unsigned long long)c->session)};
        args[2] = (struct craft_resp_arg){seq, (size_t)snprintf(seq, sizeof seq, "%llu",
                                                                (unsigned long long)c->seq)};
        first = 0;
    }
    struct craft_resp_buf req = {0};
    int rc = craft_resp_append_command(&req, argc + 3 - first, args + first);
    free(args);
    if (rc == CRAFT_OK)
        rc = run(c, &req, write, reply);
    craft_resp_buf_free(&req);
    if (c->in_cap > IN_KEEP_BYTES_MAX) {
        free(c->in);
        c->in = NULL;
        c->in_cap = c->in_len = 0;
    }
    return rc;
}

/* Runs a two- or three-argument command and turns an error reply into EREPLY. */
static int call(struct craft_kv_client *c, size_t argc, const char *const *argv,
                const size_t *lens, struct craft_kv_reply **r)
{
    int rc = craft_kv_client_command(c, argc, argv, lens, r);
    if (rc == CRAFT_OK && (*r)->type == CRAFT_KV_REPLY_ERROR) {
        craft_kv_reply_free(*r);
        *r = NULL;
        return CRAFT_KV_CLIENT_EREPLY; /* errmsg holds the text (run) */
    }
    return rc;
}

static int wrong_type(struct craft_kv_client *c, struct craft_kv_reply *r)
{
    set_err(c, "unexpected reply type %d", (int)r->type);
    craft_kv_reply_free(r);
    return CRAFT_EMALFORMED;
}

int craft_kv_client_get(struct craft_kv_client *c, const void *key, size_t key_len,
                        void **value, size_t *value_len)
{
    *value = NULL;
    *value_len = 0;
    const char *argv[] = {"GET", key};
    size_t lens[] = {3, key_len};
    struct craft_kv_reply *r;
    int rc = call(c, 2, argv, lens, &r);
    if (rc != CRAFT_OK)
        return rc;
    if (r->type == CRAFT_KV_REPLY_NIL) {
        craft_kv_reply_free(r);
        return CRAFT_ENOTFOUND;
    }
    if (r->type != CRAFT_KV_REPLY_BULK)
        return wrong_type(c, r);
    char *v = malloc(r->len + 1);
    if (!v) {
        craft_kv_reply_free(r);
        return CRAFT_ENOMEM;
    }
    memcpy(v, r->str, r->len + 1);
    *value = v;
    *value_len = r->len;
    craft_kv_reply_free(r);
    return CRAFT_OK;
}

int craft_kv_client_set(struct craft_kv_client *c, const void *key, size_t key_len,
                        const void *value, size_t value_len)
{
    const char *argv[] = {"SET", key, value};
    size_t lens[] = {3, key_len, value_len};
    struct craft_kv_reply *r;
    int rc = call(c, 3, argv, lens, &r);
    if (rc != CRAFT_OK)
        return rc;
    if (r->type != CRAFT_KV_REPLY_STATUS)
        return wrong_type(c, r);
    craft_kv_reply_free(r);
    return CRAFT_OK;
}

static int integer_reply(struct craft_kv_client *c, int rc, struct craft_kv_reply *r,
                         int64_t *out)
{
    if (rc != CRAFT_OK)
        return rc;
    if (r->type != CRAFT_KV_REPLY_INTEGER)
        return wrong_type(c, r);
    if (out)
        *out = r->integer;
    craft_kv_reply_free(r);
    return CRAFT_OK;
}

int craft_kv_client_del(struct craft_kv_client *c, const void *key, size_t key_len,
                        int64_t *n_deleted)
{
    const char *argv[] = {"DEL", key};
    size_t lens[] = {3, key_len};
    struct craft_kv_reply *r = NULL;
    int rc = call(c, 2, argv, lens, &r);
    return integer_reply(c, rc, r, n_deleted);
}

int craft_kv_client_incrby(struct craft_kv_client *c, const void *key, size_t key_len,
                           int64_t delta, int64_t *value)
{
    char num[24];
    const char *argv[] = {"INCRBY", key, num};
    size_t lens[] = {6, key_len, (size_t)snprintf(num, sizeof num, "%lld", (long long)delta)};
    struct craft_kv_reply *r = NULL;
    int rc = call(c, 3, argv, lens, &r);
    return integer_reply(c, rc, r, value);
}
