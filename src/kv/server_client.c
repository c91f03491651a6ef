/* craftkv: the cluster list (--initial-cluster), members' client addresses, and a small
 * blocking RESP client (admin commands forwarded by a worker to the leader, `--join`, the
 * `local` supervisor). Client writes never use it: they are forwarded by the loop
 * (server_fwd.c). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "kv/server_internal.h"

static int copy_addr(char *dst, const char *s, size_t n)
{
    if (n == 0 || n >= CRAFTKV_ADDR_MAX || !memchr(s, ':', n))
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

int craftkv_parse_cluster(const char *s, struct craftkv_opts *o, char *err, size_t cap)
{
    o->n_members = 0;
    while (*s) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', n), *slash = memchr(s, '/', n);
        char idbuf[24];
        if (!eq || !slash || slash < eq || (size_t)(eq - s) >= sizeof idbuf || eq == s) {
            snprintf(err, cap, "bad --initial-cluster entry '%.*s' (want ID=HOST:PEERPORT/HOST:CLIENTPORT)",
                     (int)n, s);
            return -1;
        }
        if (o->n_members == CRAFTKV_NODES_MAX) {
            snprintf(err, cap, "too many cluster members (at most %d)", CRAFTKV_NODES_MAX);
            return -1;
        }
        memcpy(idbuf, s, (size_t)(eq - s));
        idbuf[eq - s] = '\0';
        char *idend;
        errno = 0;
        unsigned long long id = strtoull(idbuf, &idend, 10);
        struct craftkv_member *m = &o->members[o->n_members];
        if (errno || *idend || id == 0 ||
            copy_addr(m->peer_addr, eq + 1, (size_t)(slash - eq - 1)) ||
            copy_addr(m->client_addr, slash + 1, n - (size_t)(slash - s) - 1)) {
            snprintf(err, cap, "bad --initial-cluster entry '%.*s' (want ID=HOST:PEERPORT/HOST:CLIENTPORT)",
                     (int)n, s);
            return -1;
        }
        m->id = id;
        for (size_t i = 0; i < o->n_members; i++)
            if (o->members[i].id == id) {
                snprintf(err, cap, "node id %llu appears twice in --initial-cluster", id);
                return -1;
            }
        o->n_members++;
        s += n;
        if (*s == ',')
            s++;
    }
    if (o->n_members == 0) {
        snprintf(err, cap, "--initial-cluster is empty");
        return -1;
    }
    return 0;
}

/* The replicated member table first (it knows nodes added after this one started, and
 * survives restarts and snapshots: kv.md), then this node's own list (--initial-cluster,
 * or the members learned at --join), which covers a cluster whose first leader has not
 * recorded its initial members yet. The answer lives in a per-thread buffer: valid until
 * this thread's next call. */
const char *craftkv_client_addr(const struct craftkv_server *s, uint64_t id)
{
    static _Thread_local char addr[CRAFTKV_ADDR_MAX];
    _Static_assert(CRAFT_KV_ADDR_BYTES_MAX < sizeof addr, "a recorded address fits");
    struct craft_kv_read *r;
    if (craftkv_main_group(s)->sm && craft_kv_read_begin(craftkv_main_group(s)->sm, &r) == CRAFT_OK) {
        struct craft_kv_member m;
        int rc = craft_kv_read_member(r, id, &m);
        craft_kv_read_end(r);
        if (rc == CRAFT_OK) {
            snprintf(addr, sizeof addr, "%s", m.client_addr);
            return addr;
        }
    }
    for (size_t i = 0; i < s->opts.n_members; i++)
        if (s->opts.members[i].id == id)
            return s->opts.members[i].client_addr;
    return NULL;
}

int craftkv_addr_resolve(const char *addr, int flags, struct addrinfo **res)
{
    char host[CRAFTKV_ADDR_MAX];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host)
        return EAI_NONAME;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = flags};
    return getaddrinfo(host[0] || !(flags & AI_PASSIVE) ? host : NULL, colon + 1, &hints, res);
}

int craftkv_client_connect(const char *addr, uint32_t timeout_ms, const char *password)
{
    struct addrinfo *res;
    if (craftkv_addr_resolve(addr, 0, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0 && password && password[0]) {
        struct craft_resp_arg argv[2] = {{"AUTH", 4}, {password, strlen(password)}};
        struct craft_resp_buf reply = {0};
        int rc = craftkv_client_call(fd, 2, argv, &reply);
        bool ok = rc == 0 && reply.len == 5 && memcmp(reply.data, "+OK\r\n", 5) == 0;
        craft_resp_buf_free(&reply);
        if (!ok) {
            close(fd);
            errno = rc == 0 ? EACCES : errno;
            return -1;
        }
    }
    return fd;
}

/* Length of the line at buf (CRLF included), 0 if incomplete. */
static size_t line_len(const char *buf, size_t len)
{
    const char *nl = memchr(buf, '\n', len);
    return nl ? (size_t)(nl - buf) + 1 : 0;
}

static long reply_len_depth(const char *buf, size_t len, int depth)
{
    if (len == 0)
        return 0;
    if (depth > 8)
        return -1;
    size_t l = line_len(buf, len);
    if (l == 0)
        return 0;
    if (l < 3 || buf[l - 2] != '\r')
        return -1;
    switch (buf[0]) {
    case '+':
    case '-':
    case ':':
        return (long)l;
    case '$':
    case '*': {
        /* "-1" or digits, up to the CR (strtol would skip a CR or LF as white space and
         * read on past the line: the fuzzer of the shard peers' replies found that). */
        int64_t n = 0;
        size_t d = 1;
        if (l == 5 && buf[1] == '-' && buf[2] == '1') {
            n = -1;
            d = 3;
        }
        for (; n >= 0 && d < l - 2; d++) {
            if (buf[d] < '0' || buf[d] > '9' || n > (1L << 30))
                return -1;
            n = n * 10 + (buf[d] - '0');
        }
        if (l == 3 || n > (1L << 30))
            return -1;
        if (n < 0)
            return (long)l;
        if (buf[0] == '$') {
            if (len < l + (size_t)n + 2)
                return 0;
            return buf[l + n] == '\r' && buf[l + n + 1] == '\n' ? (long)(l + (size_t)n + 2) : -1;
        }
        size_t off = l;
        for (long i = 0; i < n; i++) {
            long e = reply_len_depth(buf + off, len - off, depth + 1);
            if (e <= 0)
                return e;
            off += (size_t)e;
        }
        return (long)off;
    }
    default:
        return -1;
    }
}

long craftkv_reply_len(const char *buf, size_t len)
{
    return reply_len_depth(buf, len, 0);
}

int craftkv_client_call(int fd, size_t argc, const struct craft_resp_arg *argv,
                        struct craft_resp_buf *reply)
{
    struct craft_resp_buf req = {0};
    if (craft_resp_append_command(&req, argc, argv) != 0)
        return -1;
    size_t off = 0;
    while (off < req.len) {
        ssize_t w = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            craft_resp_buf_free(&req);
            return -1;
        }
        off += (size_t)w;
    }
    craft_resp_buf_free(&req);
    reply->len = 0;
    for (;;) {
        long n = craftkv_reply_len(reply->data, reply->len);
        if (n < 0)
            return -1;
        if (n > 0)
            return (size_t)n == reply->len ? 0 : -1; /* one request, one reply */
        if (reply->cap - reply->len < 4096) {
            size_t cap = reply->cap ? reply->cap * 2 : 8192;
            char *p = realloc(reply->data, cap);
            if (!p)
                return -1;
            reply->data = p;
            reply->cap = cap;
        }
        ssize_t r = recv(fd, reply->data + reply->len, reply->cap - reply->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        reply->len += (size_t)r;
    }
}
