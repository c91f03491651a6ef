/* craftkv's replicated state machine: the command encoding, every op's Redis semantics,
 * exactly-once sessions and their deterministic expiry, expiry by logical time, reads and
 * SCAN, snapshots across stores, refusal of corrupt snapshots, LMDB crash consistency
 * (a killed writer process, and injected store failures), and the craft_fsm adapter on a
 * real single-node runtime. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "unit.h"

#include "base/assert.h"
#include "base/prng.h"
#include "kv/kv_sm.h"

/* ---- byte buffers, sinks and sources ---- */

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static int buf_write(void *ctx, const void *p, size_t n)
{
    struct buf *b = ctx;
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        uint8_t *q = realloc(b->p, cap);
        if (q == NULL) {
            return CRAFT_ENOMEM;
        }
        b->p = q;
        b->cap = cap;
    }
    if (n > 0) {
        memcpy(b->p + b->len, p, n);
    }
    b->len += n;
    return CRAFT_OK;
}

static void buf_free(struct buf *b)
{
    free(b->p);
    *b = (struct buf){0};
}

static bool buf_eq(const struct buf *a, const struct buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

/* Reads in pieces of at most chunk bytes, to exercise the restore's buffering. */
struct src {
    const uint8_t *p;
    size_t len, off, chunk;
};

static int src_read(void *ctx, void *out, size_t cap, size_t *n)
{
    struct src *s = ctx;
    size_t k = s->len - s->off;
    if (k > cap) {
        k = cap;
    }
    if (s->chunk != 0 && k > s->chunk) {
        k = s->chunk;
    }
    if (k > 0) {
        memcpy(out, s->p + s->off, k);
    }
    s->off += k;
    *n = k;
    return CRAFT_OK;
}

/* ---- a state machine under test ---- */

struct h {
    struct craft_kv_store *st;
    struct craft_kv_sm *sm;
    uint64_t index, now, idle_ms;
    uint32_t sessions_max; /* craft_kv_sm_config.batch_sessions_max (0: default) */
    char dir[128]; /* LMDB's directory; "" for memory */
};

static void h_open_store(struct h *h)
{
    if (h->dir[0] != '\0') {
        struct craft_kv_lmdb_config cfg = {.path = h->dir, .map_bytes = 256u << 20};
        char err[256];
        int rc = craft_kv_store_lmdb_open(&cfg, &h->st, err, sizeof err);
        if (rc != CRAFT_OK) {
            printf("lmdb open: %s\n", err);
        }
        CRAFT_ASSERT(rc == CRAFT_OK);
    } else {
        CRAFT_ASSERT(craft_kv_store_mem_open(&h->st) == CRAFT_OK);
    }
    struct craft_kv_sm_config cfg = {.session_idle_ms = h->idle_ms,
                                      .batch_sessions_max = h->sessions_max};
    CRAFT_ASSERT(craft_kv_sm_open(h->st, &cfg, &h->sm) == CRAFT_OK);
    h->index = craft_kv_sm_applied(h->sm);
}

static void h_open(struct h *h, bool lmdb, uint64_t idle_ms)
{
    memset(h, 0, sizeof *h);
    h->idle_ms = idle_ms;
    if (lmdb) {
        snprintf(h->dir, sizeof h->dir, "/tmp/craft-kv-XXXXXX");
        CRAFT_ASSERT(mkdtemp(h->dir) != NULL);
    }
    h_open_store(h);
}

static void h_shut(struct h *h)
{
    craft_kv_sm_close(h->sm);
    h->st->ops->close(h->st);
    h->sm = NULL;
    h->st = NULL;
}

static void h_reopen(struct h *h)
{
    h_shut(h);
    h_open_store(h);
}

static void h_close(struct h *h)
{
    h_shut(h);
    if (h->dir[0] != '\0') {
        char cmd[160];
        snprintf(cmd, sizeof cmd, "rm -rf %s", h->dir);
        CRAFT_ASSERT(system(cmd) == 0);
    }
}

static struct craft_kv_result *h_apply_bytes(struct h *h, const uint8_t *p, size_t len)
{
    struct craft_kv_result *r = NULL;
    CHECK(craft_kv_sm_apply(h->sm, ++h->index, p, len, &r) == CRAFT_OK);
    CHECK(r != NULL);
    return r;
}

static struct craft_kv_result *h_run(struct h *h, struct craft_kv_cmd c)
{
    c.now_ms = h->now;
    size_t size = craft_kv_cmd_size(&c);
    CRAFT_ASSERT(size > 0);
    uint8_t *p = malloc(size);
    size_t len;
    CRAFT_ASSERT(craft_kv_cmd_encode(&c, p, size, &len) == CRAFT_OK && len == size);
    struct craft_kv_result *r = h_apply_bytes(h, p, len);
    free(p);
    return r;
}

static void h_snap(struct h *h, struct buf *out)
{
    struct craft_kv_snap *s;
    *out = (struct buf){0};
    CRAFT_ASSERT(craft_kv_sm_snapshot(h->sm, &s) == CRAFT_OK);
    CHECK(craft_kv_snap_write(s, buf_write, out) == CRAFT_OK);
    craft_kv_snap_release(s);
}

static int h_restore(struct h *h, const struct buf *b, size_t chunk)
{
    struct src s = {.p = b->p, .len = b->len, .chunk = chunk};
    int rc = craft_kv_sm_restore(h->sm, src_read, &s);
    if (rc == CRAFT_OK) {
        h->index = craft_kv_sm_applied(h->sm);
    }
    return rc;
}

/* ---- commands ---- */

static struct craft_kv_bytes B(const char *s) {
    return (struct craft_kv_bytes){.p = (const uint8_t *)s, .len = (uint32_t)strlen(s)};
}

static struct craft_kv_cmd
K(uint8_t op, const char *k) {
    return (struct craft_kv_cmd){.op = op, .key = B(k)};
}

static struct craft_kv_cmd
KV(uint8_t op, const char *k, const char *v) {
    return (struct craft_kv_cmd){.op = op, .key = B(k), .value = B(v)};
}

static struct craft_kv_cmd
SET(const char *k, const char *v, uint8_t flags, uint64_t at) {
    return (struct craft_kv_cmd){
        .op = CRAFT_KV_OP_SET, .flags = flags, .expire_at = at, .key = B(k), .value = B(v)};
}

static struct craft_kv_cmd
INCRBY(const char *k, int64_t d) {
    return (struct craft_kv_cmd){.op = CRAFT_KV_OP_INCRBY, .key = B(k), .delta = d};
}

static struct craft_kv_cmd
EXPIRE(const char *k, uint8_t flags, uint64_t at) {
    return (struct craft_kv_cmd){
        .op = CRAFT_KV_OP_EXPIRE, .flags = flags, .expire_at = at, .key = B(k)};
}

static struct craft_kv_cmd
OP(uint8_t op) {
    return (struct craft_kv_cmd){.op = op};
}

static struct craft_kv_cmd
MSET_(uint64_t id, const char *peer, const char *client) {
    return (struct craft_kv_cmd){.op = CRAFT_KV_OP_MEMBER_SET,
                                 .member_id = id,
                                 .peer_addr = B(peer),
                                 .client_addr = B(client)};
}

static struct craft_kv_cmd
MDEL(uint64_t id) {
    return (struct craft_kv_cmd){.op = CRAFT_KV_OP_MEMBER_DEL, .member_id = id};
}

static struct craft_kv_cmd
IN(struct craft_kv_cmd c, uint64_t session, uint64_t seq) {
    c.session = session;
    c.seq = seq;
    return c;
}

/* In a session, with the client's ack (the lowest seq it has no reply for). */
static struct craft_kv_cmd
INA(struct craft_kv_cmd c, uint64_t session, uint64_t seq, uint64_t ack) {
    c.session = session;
    c.seq = seq;
    c.ack = ack;
    return c;
}

/* DEL / MSET / MSETNX over a NULL-terminated list (MSET: key, value, key, value...). */
static struct craft_kv_bytes list_keys[64],
    list_vals[64];
static struct craft_kv_cmd LIST(uint8_t op, const char *const *items) {
    struct craft_kv_cmd c = {.op = op, .keys = list_keys, .values = list_vals};
    bool pairs = op != CRAFT_KV_OP_DEL;
    for (size_t i = 0; items[i] != NULL; i += pairs ? 2 : 1) {
        list_keys[c.n] = B(items[i]);
        if (pairs) {
            list_vals[c.n] = B(items[i + 1]);
        }
        c.n++;
    }
    return c;
}

/* ---- results (each check frees the result) ---- */

static bool
r_type(struct craft_kv_result *r, uint8_t type)
{
    bool ok = r != NULL && r->type == type;
    if (!ok && r != NULL) {
        printf("  got type %u int %lld data '%s'\n", r->type, (long long)r->integer, r->data);
    }
    craft_kv_result_free(r);
    return ok;
}

static bool r_ok(struct craft_kv_result *r)
{
    return r_type(r, CRAFT_KV_RES_OK);
}
static bool r_nil(struct craft_kv_result *r)
{
    return r_type(r, CRAFT_KV_RES_NIL);
}

static bool r_int(struct craft_kv_result *r, int64_t v)
{
    bool ok = r != NULL && r->type == CRAFT_KV_RES_INT && r->integer == v;
    if (!ok && r != NULL) {
        printf("  got type %u int %lld, want %lld\n", r->type, (long long)r->integer, (long long)v);
    }
    craft_kv_result_free(r);
    return ok;
}

static bool r_data(struct craft_kv_result *r, uint8_t type, const char *s)
{
    bool ok = r != NULL && r->type == type && r->len == strlen(s) &&
              memcmp(r->data, s, r->len) == 0 && r->data[r->len] == '\0';
    if (!ok && r != NULL) {
        printf("  got type %u data '%s', want '%s'\n", r->type, r->data, s);
    }
    craft_kv_result_free(r);
    return ok;
}

static bool r_bulk(struct craft_kv_result *r, const char *s)
{
    return r_data(r, CRAFT_KV_RES_BULK, s);
}

static bool r_err(struct craft_kv_result *r, const char *s)
{
    return r_data(r, CRAFT_KV_RES_ERR, s);
}

/* ---- reads ---- */

/* want NULL: the key must be absent. */
static bool h_get(struct h *h, const char *k, const char *want)
{
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(h->sm, &r) == CRAFT_OK);
    const uint8_t *v;
    size_t n;
    int rc = craft_kv_read_get(r, (const uint8_t *)k, strlen(k), &v, &n);
    bool ok = want == NULL ? rc == CRAFT_ENOTFOUND
                           : rc == CRAFT_OK && n == strlen(want) && memcmp(v, want, n) == 0;
    craft_kv_read_end(r);
    return ok;
}

/* A time-to-live read of key k: by craft_kv_read_pttl (ms) or craft_kv_read_ttl (s). */
static int64_t h_ttl_by(struct h *h, const char *k,
                        int (*ttl_read)(struct craft_kv_read *, const uint8_t *, size_t, int64_t *))
{
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(h->sm, &r) == CRAFT_OK);
    int64_t t = 0;
    CHECK(ttl_read(r, (const uint8_t *)k, strlen(k), &t) == CRAFT_OK);
    craft_kv_read_end(r);
    return t;
}

static int64_t h_pttl(struct h *h, const char *k)
{
    return h_ttl_by(h, k, craft_kv_read_pttl);
}

static int64_t h_ttl(struct h *h, const char *k)
{
    return h_ttl_by(h, k, craft_kv_read_ttl);
}

static uint64_t h_dbsize(struct h *h)
{
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(h->sm, &r) == CRAFT_OK);
    uint64_t n = 0;
    CHECK(craft_kv_read_dbsize(r, &n) == CRAFT_OK);
    craft_kv_read_end(r);
    return n;
}

static int count_one(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    (void)k, (void)klen, (void)v, (void)vlen;
    (*(uint64_t *)ctx)++;
    return CRAFT_OK;
}

/* Entries physically in a table (expired and not swept included). */
static uint64_t h_stored(struct h *h, int table)
{
    struct craft_kv_txn *t;
    CRAFT_ASSERT(h->st->ops->begin(h->st, false, &t) == CRAFT_OK);
    uint64_t n = 0;
    CHECK(h->st->ops->iter(t, table, NULL, 0, count_one, &n) == CRAFT_OK);
    h->st->ops->abort(t);
    return n;
}

/* Member id's record: want_peer NULL means it must be absent. */
static bool h_member(struct h *h, uint64_t id, const char *want_peer, const char *want_client)
{
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(h->sm, &r) == CRAFT_OK);
    struct craft_kv_member m;
    int rc = craft_kv_read_member(r, id, &m);
    craft_kv_read_end(r);
    if (want_peer == NULL) {
        return rc == CRAFT_ENOTFOUND;
    }
    return rc == CRAFT_OK && m.id == id && strcmp(m.peer_addr, want_peer) == 0 &&
           strcmp(m.client_addr, want_client) == 0;
}

static size_t h_members(struct h *h)
{
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(h->sm, &r) == CRAFT_OK);
    size_t n = SIZE_MAX;
    CHECK(craft_kv_read_members(r, NULL, 0, &n) == CRAFT_OK);
    craft_kv_read_end(r);
    return n;
}

/* ---- the encoding ---- */

static void check_roundtrip(struct craft_kv_cmd c)
{
    size_t size = craft_kv_cmd_size(&c);
    CHECK(size >= (c.ack == 0 ? CRAFT_KV_CMD_HEADER_BYTES : CRAFT_KV_CMD_HEADER_ACK_BYTES));
    uint8_t *p = malloc(size + 1);
    size_t len = 0;
    CHECK(craft_kv_cmd_encode(&c, p, size, &len) == CRAFT_OK && len == size);
    CHECK(craft_kv_cmd_encode(&c, p, size - 1, &len) == CRAFT_ETOOBIG);
    CHECK(craft_kv_cmd_encode(&c, p, size, &len) == CRAFT_OK);
    struct craft_kv_cmd d;
    CHECK(craft_kv_cmd_decode(p, len, &d) == CRAFT_OK);
    CHECK(p[0] == (c.ack == 0        ? CRAFT_KV_CMD_VERSION
                   : c.refusal_final ? CRAFT_KV_CMD_VERSION_FINAL
                                     : CRAFT_KV_CMD_VERSION_ACK));
    CHECK(d.refusal_final == c.refusal_final);
    CHECK(d.op == c.op && d.flags == c.flags && d.session == c.session && d.seq == c.seq &&
          d.ack == c.ack && d.now_ms == c.now_ms && d.expire_at == c.expire_at && d.delta == c.delta);
    CHECK(d.member_id == c.member_id && d.peer_addr.len == c.peer_addr.len &&
          d.client_addr.len == c.client_addr.len &&
          (d.peer_addr.len == 0 || memcmp(d.peer_addr.p, c.peer_addr.p, d.peer_addr.len) == 0) &&
          (d.client_addr.len == 0 ||
           memcmp(d.client_addr.p, c.client_addr.p, d.client_addr.len) == 0));
    /* Canonical: the decoded command encodes to the same bytes. */
    struct craft_kv_bytes ks[64], vs[64];
    if (d.items != NULL) {
        const struct craft_kv_bytes *want = craft_kv_op_is_coll(c.op) ? c.args : c.keys;
        size_t off = 0;
        uint32_t n = 0;
        while (n < 64 && craft_kv_cmd_next(&d, &off, &ks[n], &vs[n])) {
            CHECK(ks[n].len == want[n].len &&
                  (ks[n].len == 0 || memcmp(ks[n].p, want[n].p, ks[n].len) == 0));
            n++;
        }
        CHECK(n == d.n && n == c.n);
        d.keys = ks;
        d.values = vs;
        d.args = ks;
        CHECK(d.key.len == c.key.len &&
              (d.key.len == 0 || memcmp(d.key.p, c.key.p, d.key.len) == 0));
    }
    uint8_t *q = malloc(size);
    size_t len2 = 0;
    CHECK(craft_kv_cmd_encode(&d, q, size, &len2) == CRAFT_OK && len2 == len &&
          memcmp(p, q, len) == 0);
    /* Every strict prefix and one trailing byte are refused. */
    for (size_t cut = 0; cut < len; cut++) {
        CHECK(craft_kv_cmd_decode(p, cut, &d) == CRAFT_EMALFORMED);
    }
    p[len] = 0;
    CHECK(craft_kv_cmd_decode(p, len + 1, &d) == CRAFT_EMALFORMED);
    free(p);
    free(q);
}

/* Little-endian u64 at p, for hand-made encodings. */
static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* ack 0 keeps version 1 byte for byte; ack != 0 is version 2, the ack right after seq. */
static void check_ack_encoding(void)
{
    /* INCRBY "n" 5 in session 9, seq 4, at 1000: the bytes version 1 always had. */
    uint8_t v1[26 + 4 + 1 + 8] = {1};
    le64(v1 + 1, 9);
    le64(v1 + 9, 4);
    le64(v1 + 17, 1000);
    v1[25] = CRAFT_KV_OP_INCRBY;
    v1[26] = 1;
    v1[30] = 'n';
    le64(v1 + 31, 5);
    struct craft_kv_cmd c = IN(INCRBY("n", 5), 9, 4);
    c.now_ms = 1000;
    uint8_t p[64];
    size_t len;
    CHECK(craft_kv_cmd_encode(&c, p, sizeof p, &len) == CRAFT_OK && len == sizeof v1 &&
          memcmp(p, v1, len) == 0);
    /* With ack 3: version 2, 8 bytes more. */
    uint8_t v2[sizeof v1 + 8] = {2};
    memcpy(v2 + 1, v1 + 1, 16);
    le64(v2 + 17, 3);
    memcpy(v2 + 25, v1 + 17, sizeof v1 - 17);
    c.ack = 3;
    CHECK(craft_kv_cmd_encode(&c, p, sizeof p, &len) == CRAFT_OK && len == sizeof v2 &&
          memcmp(p, v2, len) == 0);
    struct craft_kv_cmd d;
    CHECK(craft_kv_cmd_decode(v2, sizeof v2, &d) == CRAFT_OK && d.ack == 3 && d.seq == 4 &&
          d.session == 9 && d.now_ms == 1000 && d.delta == 5);
    CHECK(craft_kv_cmd_decode(v1, sizeof v1, &d) == CRAFT_OK && d.ack == 0 && d.seq == 4);
    /* Refused: ack 0 in version 2 (not canonical), ack above seq, ack without a session. */
    uint8_t b[sizeof v2];
    memcpy(b, v2, sizeof b);
    le64(b + 17, 0);
    CHECK(craft_kv_cmd_decode(b, sizeof b, &d) == CRAFT_EMALFORMED);
    le64(b + 17, 5);
    CHECK(craft_kv_cmd_decode(b, sizeof b, &d) == CRAFT_EMALFORMED);
    le64(b + 17, 4);
    CHECK(craft_kv_cmd_decode(b, sizeof b, &d) == CRAFT_OK && d.ack == 4);
    le64(b + 1, 0);
    le64(b + 9, 0);
    le64(b + 17, 1);
    CHECK(craft_kv_cmd_decode(b, sizeof b, &d) == CRAFT_EMALFORMED);
    /* A session command with an ack (its seq is 0). */
    uint8_t o[CRAFT_KV_CMD_HEADER_ACK_BYTES] = {2};
    le64(o + 1, 9);
    le64(o + 17, 1);
    o[33] = CRAFT_KV_OP_SESSION_OPEN;
    CHECK(craft_kv_cmd_decode(o, sizeof o, &d) == CRAFT_EMALFORMED);
    /* A version 2 header read as version 1 and the reverse do not decode. */
    memcpy(b, v2, sizeof b);
    b[0] = 1;
    CHECK(craft_kv_cmd_decode(b, sizeof b, &d) == CRAFT_EMALFORMED);
    memcpy(b, v1, sizeof v1);
    b[0] = 2;
    CHECK(craft_kv_cmd_decode(b, sizeof v1, &d) == CRAFT_EMALFORMED);
    /* refusal_final: version 3, version 2's bytes otherwise; it needs an ack. */
    c.refusal_final = true;
    CHECK(craft_kv_cmd_encode(&c, p, sizeof p, &len) == CRAFT_OK && len == sizeof v2 &&
          p[0] == CRAFT_KV_CMD_VERSION_FINAL && memcmp(p + 1, v2 + 1, len - 1) == 0);
    CHECK(craft_kv_cmd_decode(p, len, &d) == CRAFT_OK && d.refusal_final && d.ack == 3);
    CHECK(craft_kv_cmd_decode(v2, sizeof v2, &d) == CRAFT_OK && !d.refusal_final);
    c.ack = 0;
    CHECK(craft_kv_cmd_size(&c) == 0);
    memcpy(b, p, sizeof b);
    le64(b + 17, 0);
    CHECK(craft_kv_cmd_decode(b, sizeof b, &d) == CRAFT_EMALFORMED);
    memcpy(b, v1, sizeof v1);
    b[0] = CRAFT_KV_CMD_VERSION_FINAL;
    CHECK(craft_kv_cmd_decode(b, sizeof v1, &d) == CRAFT_EMALFORMED);
    b[0] = 4;
    CHECK(craft_kv_cmd_decode(b, sizeof v1, &d) == CRAFT_EVERSION);
}

static void test_cmd_encoding(void)
{
    const char *const mset[] = {"a", "1", "b", "", "", "x", NULL};
    const char *const del[] = {"a", "b", "a", NULL};
    struct craft_kv_cmd cmds[] = {
        SET("k", "v", 0, 0),
        SET("k", "", CRAFT_KV_SET_NX | CRAFT_KV_SET_GET | CRAFT_KV_SET_EXPIRE, 12345),
        SET("", "v", CRAFT_KV_SET_XX | CRAFT_KV_SET_KEEPTTL, 0),
        KV(CRAFT_KV_OP_SETNX, "k", "v"),
        KV(CRAFT_KV_OP_GETSET, "k", "v"),
        K(CRAFT_KV_OP_GETDEL, "k"),
        KV(CRAFT_KV_OP_APPEND, "k", "more"),
        INCRBY("n", INT64_MIN),
        INCRBY("n", -1),
        EXPIRE("k", CRAFT_KV_EXPIRE_XX | CRAFT_KV_EXPIRE_GT, (uint64_t)INT64_MAX),
        K(CRAFT_KV_OP_PERSIST, "k"),
        OP(CRAFT_KV_OP_FLUSHALL),
        OP(CRAFT_KV_OP_NOOP),
        IN(OP(CRAFT_KV_OP_SESSION_OPEN), 7, 0),
        IN(OP(CRAFT_KV_OP_SESSION_CLOSE), UINT64_MAX, 0),
        IN(INCRBY("n", 5), 9, 1),
        LIST(CRAFT_KV_OP_MSETNX, mset),
        MSET_(1, "127.0.0.1:7101", "127.0.0.1:7001"),
        MSET_(UINT64_MAX, "[::1]:1", "a:2"),
        IN(MSET_(4, "h:1", "h:2"), 3, 8),
        MDEL(7),
        /* Version 2: with an ack. */
        INA(INCRBY("n", 5), 9, 4, 1),
        INA(INCRBY("n", 5), 9, 4, 4),
        INA(SET("k", "v", CRAFT_KV_SET_EXPIRE | CRAFT_KV_SET_GET, 77), UINT64_MAX, UINT64_MAX,
            UINT64_MAX - 1),
        INA(LIST(CRAFT_KV_OP_DEL, del), 2, 300, 256),
        INA(MSET_(4, "h:1", "h:2"), 3, 8, 2),
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        cmds[i].now_ms = 1000 + i;
        check_roundtrip(cmds[i]);
    }
    struct craft_kv_cmd c = LIST(CRAFT_KV_OP_MSET, mset);
    check_roundtrip(c);
    c = LIST(CRAFT_KV_OP_DEL, del);
    check_roundtrip(c);
    /* The collection ops: a key and its arguments (none, or many, empty ones too). */
    struct craft_kv_bytes args[3] = {
        {(const uint8_t *)"f", 1}, {NULL, 0}, {(const uint8_t *)"v", 1}};
    c = (struct craft_kv_cmd){
        .op = CRAFT_KV_OP_HSET, .key = {(const uint8_t *)"h", 1}, .n = 3, .args = args};
    check_roundtrip(c);
    c = (struct craft_kv_cmd){
        .op = CRAFT_KV_OP_SREM, .key = {(const uint8_t *)"s", 1}, .n = 2, .args = args};
    check_roundtrip(c);
    c = (struct craft_kv_cmd){.op = CRAFT_KV_OP_SPOP, .key = {NULL, 0}, .n = 0};
    check_roundtrip(c);
    c.n = 1; /* arguments promised, none given */
    CHECK(craft_kv_cmd_size(&c) == 0);
    /* An expiry past INT64_MAX: its top bit marks collections in the store (kv.md). */
    c = EXPIRE("k", 0, (uint64_t)INT64_MAX + 1);
    CHECK(craft_kv_cmd_size(&c) == 0);
    c = SET("k", "v", CRAFT_KV_SET_EXPIRE, UINT64_MAX);
    CHECK(craft_kv_cmd_size(&c) == 0);

    /* Invalid commands are refused by the encoder (craft_kv_cmd_size 0). */
    struct craft_kv_cmd bad[] = {
        OP(0),
        OP(CRAFT_KV_OP_COUNT_),
        SET("k", "v", CRAFT_KV_SET_NX | CRAFT_KV_SET_XX, 0),
        SET("k", "v", CRAFT_KV_SET_KEEPTTL | CRAFT_KV_SET_EXPIRE, 1),
        SET("k", "v", 0x20, 0),
        EXPIRE("k", CRAFT_KV_EXPIRE_NX | CRAFT_KV_EXPIRE_GT, 1),
        EXPIRE("k", CRAFT_KV_EXPIRE_GT | CRAFT_KV_EXPIRE_LT, 1),
        IN(OP(CRAFT_KV_OP_NOOP), 0, 3),       /* seq without a session */
        IN(K(CRAFT_KV_OP_GETDEL, "k"), 5, 0), /* session without a seq */
        OP(CRAFT_KV_OP_SESSION_OPEN),         /* no session id */
        IN(OP(CRAFT_KV_OP_SESSION_OPEN), 1, 1),
        {.op = CRAFT_KV_OP_DEL, .n = 0, .keys = list_keys},
        MSET_(0, "h:1", "h:2"),                /* member id 0 */
        MSET_(1, "", "h:2"),                   /* empty address */
        MSET_(1, "h:1", "h 2"),                /* a space */
        MSET_(1, "h:1\n", "h:2"),              /* a control character */
        MSET_(1, "h:1", "0123456789012345678901234567890123456789012345678901234567890123"),
        MDEL(0),
        INA(INCRBY("n", 1), 0, 0, 1),                       /* ack without a session */
        INA(INCRBY("n", 1), 5, 3, 4),                       /* ack above seq */
        INA(OP(CRAFT_KV_OP_SESSION_OPEN), 5, 0, 1),         /* ack on a session command */
        INA(OP(CRAFT_KV_OP_NOOP), 0, 0, 1),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t buf[64];
        size_t len;
        CHECK(craft_kv_cmd_size(&bad[i]) == 0);
        CHECK(craft_kv_cmd_encode(&bad[i], buf, sizeof buf, &len) == CRAFT_EINVAL);
    }
    static char big[CRAFT_KV_KEY_BYTES_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    CHECK(craft_kv_cmd_size(&(struct craft_kv_cmd){.op = CRAFT_KV_OP_GETDEL, .key = B(big)}) == 0);
    big[CRAFT_KV_KEY_BYTES_MAX] = '\0';
    CHECK(craft_kv_cmd_size(&(struct craft_kv_cmd){.op = CRAFT_KV_OP_GETDEL, .key = B(big)}) > 0);

    /* The decoder's own refusals, on hand-made bytes. */
    uint8_t p[64];
    size_t len;
    struct craft_kv_cmd d;
    CHECK(craft_kv_cmd_encode(&(struct craft_kv_cmd){.op = CRAFT_KV_OP_GETDEL, .key = B("ab")}, p,
                              sizeof p, &len) == CRAFT_OK);
    CHECK(craft_kv_cmd_decode(p, len, &d) == CRAFT_OK);
    p[0] = 4;
    CHECK(craft_kv_cmd_decode(p, len, &d) == CRAFT_EVERSION);
    p[0] = 0;
    CHECK(craft_kv_cmd_decode(p, len, &d) == CRAFT_EVERSION);
    p[0] = 1;
    p[25] = 99; /* op */
    CHECK(craft_kv_cmd_decode(p, len, &d) == CRAFT_EMALFORMED);
    p[25] = CRAFT_KV_OP_GETDEL;
    p[29] = 0x80; /* key length: 2^31 + 2 */
    CHECK(craft_kv_cmd_decode(p, len, &d) == CRAFT_EMALFORMED);
    p[29] = 0;
    p[26] = 3; /* key length 3 > what is left */
    CHECK(craft_kv_cmd_decode(p, len, &d) == CRAFT_EMALFORMED);
    CHECK(craft_kv_cmd_decode(p, 0, &d) == CRAFT_EMALFORMED);
    CHECK(craft_kv_cmd_decode(p, (size_t)CRAFT_KV_CMD_BYTES_MAX + 1, &d) == CRAFT_ETOOBIG);
    /* A member record: header, u64 id, peer "a:1", client "b:2". */
    struct craft_kv_cmd m = MSET_(5, "a:1", "b:2");
    CHECK(craft_kv_cmd_encode(&m, p, sizeof p, &len) == CRAFT_OK && len == 26 + 8 + 7 + 7);
    CHECK(craft_kv_cmd_decode(p, len, &d) == CRAFT_OK && d.member_id == 5);
    p[26] = 0; /* id 5 -> 0 */
    CHECK(craft_kv_cmd_decode(p, len, &d) == CRAFT_EMALFORMED);
    p[26] = 5;
    p[38] = ' '; /* peer "a:1" -> "a: " */
    CHECK(craft_kv_cmd_decode(p, len, &d) == CRAFT_EMALFORMED);
    p[38] = '1';
    p[34] = 0; /* peer length 0 */
    CHECK(craft_kv_cmd_decode(p, len, &d) == CRAFT_EMALFORMED);
    p[34] = 3;
    CHECK(craft_kv_cmd_decode(p, len, &d) == CRAFT_OK);
    CHECK(craft_kv_addr_ok((const uint8_t *)"x:1", 3) && !craft_kv_addr_ok(NULL, 0) &&
          !craft_kv_addr_ok((const uint8_t *)"x\x7f", 2));
    check_ack_encoding();

    /* The proposer's deadline arithmetic. */
    uint64_t at;
    CHECK(craft_kv_deadline(1000, 10, true, &at) == CRAFT_OK && at == 11000);
    CHECK(craft_kv_deadline(1000, 10, false, &at) == CRAFT_OK && at == 1010);
    CHECK(craft_kv_deadline(1000, -5, true, &at) == CRAFT_OK && at == 0);
    CHECK(craft_kv_deadline(0, 1234, true, &at) == CRAFT_OK && at == 1234000);
    CHECK(craft_kv_deadline(1000, INT64_MAX / 1000 + 1, true, &at) == CRAFT_EINVAL);
    CHECK(craft_kv_deadline(1000, INT64_MAX - 1000, false, &at) == CRAFT_OK);
    CHECK(craft_kv_deadline(1000, INT64_MAX - 999, false, &at) == CRAFT_EINVAL);
}

/* ---- Redis semantics ---- */

static void test_strings(bool lmdb)
{
    struct h h;
    h_open(&h, lmdb, 0);
    h.now = 1000;
    CHECK(r_ok(h_run(&h, SET("k", "v1", 0, 0))));
    CHECK(h_get(&h, "k", "v1"));
    CHECK(r_nil(h_run(&h, SET("k", "v2", CRAFT_KV_SET_NX, 0))));
    CHECK(h_get(&h, "k", "v1"));
    CHECK(r_ok(h_run(&h, SET("k", "v2", CRAFT_KV_SET_XX, 0))));
    CHECK(r_nil(h_run(&h, SET("none", "x", CRAFT_KV_SET_XX, 0))));
    CHECK(h_get(&h, "none", NULL));
    CHECK(r_bulk(h_run(&h, SET("k", "v3", CRAFT_KV_SET_GET, 0)), "v2"));
    CHECK(r_nil(h_run(&h, SET("g", "x", CRAFT_KV_SET_GET, 0))));
    CHECK(h_get(&h, "g", "x"));
    /* NX GET: the old value, and no write. */
    CHECK(r_bulk(h_run(&h, SET("k", "zz", CRAFT_KV_SET_NX | CRAFT_KV_SET_GET, 0)), "v3"));
    CHECK(h_get(&h, "k", "v3"));
    /* Expiry: EX sets it, a plain SET clears it, KEEPTTL keeps it. */
    CHECK(r_ok(h_run(&h, SET("k", "v4", CRAFT_KV_SET_EXPIRE, 6000))));
    CHECK(h_pttl(&h, "k") == 5000 && h_ttl(&h, "k") == 5);
    CHECK(r_ok(h_run(&h, SET("k", "v5", CRAFT_KV_SET_KEEPTTL, 0))));
    CHECK(h_pttl(&h, "k") == 5000 && h_get(&h, "k", "v5"));
    CHECK(r_ok(h_run(&h, SET("k", "v6", 0, 0))));
    CHECK(h_pttl(&h, "k") == -1);
    CHECK(h_pttl(&h, "absent") == -2 && h_ttl(&h, "absent") == -2);
    /* An expiry in the past deletes the key (and still answers OK). */
    CHECK(r_ok(h_run(&h, SET("k", "v7", CRAFT_KV_SET_EXPIRE, 1000))));
    CHECK(h_get(&h, "k", NULL));
    CHECK(r_ok(h_run(&h, SET("k", "v7", CRAFT_KV_SET_EXPIRE, 0))));
    CHECK(h_get(&h, "k", NULL));
    /* SETNX, GETSET (clears the expiry), GETDEL. */
    CHECK(r_int(h_run(&h, KV(CRAFT_KV_OP_SETNX, "n", "1")), 1));
    CHECK(r_int(h_run(&h, KV(CRAFT_KV_OP_SETNX, "n", "2")), 0));
    CHECK(h_get(&h, "n", "1"));
    CHECK(r_ok(h_run(&h, SET("t", "a", CRAFT_KV_SET_EXPIRE, 9000))));
    CHECK(r_bulk(h_run(&h, KV(CRAFT_KV_OP_GETSET, "t", "b")), "a"));
    CHECK(h_pttl(&h, "t") == -1);
    CHECK(r_nil(h_run(&h, KV(CRAFT_KV_OP_GETSET, "new", "c"))));
    CHECK(r_bulk(h_run(&h, K(CRAFT_KV_OP_GETDEL, "t")), "b"));
    CHECK(r_nil(h_run(&h, K(CRAFT_KV_OP_GETDEL, "t"))));
    CHECK(h_get(&h, "t", NULL));
    /* Binary keys and values, and the empty key. */
    const uint8_t bin[] = {0, 1, 0xff, '\r', '\n'};
    struct craft_kv_cmd c = SET("", "", 0, 0);
    c.key = (struct craft_kv_bytes){.p = bin, .len = sizeof bin};
    c.value = c.key;
    CHECK(r_ok(h_run(&h, c)));
    CHECK(r_ok(h_run(&h, SET("", "empty", 0, 0))));
    CHECK(h_get(&h, "", "empty"));
    struct craft_kv_read *rd;
    CHECK(craft_kv_read_begin(h.sm, &rd) == CRAFT_OK);
    const uint8_t *v;
    size_t n;
    CHECK(craft_kv_read_get(rd, bin, sizeof bin, &v, &n) == CRAFT_OK && n == sizeof bin &&
          memcmp(v, bin, n) == 0);
    CHECK(craft_kv_read_applied(rd) == h.index && craft_kv_read_now(rd) == 1000);
    craft_kv_read_end(rd);
    CHECK(h_dbsize(&h) == 5); /* g n new, the binary key and "" */
    h_close(&h);
}

static void test_strings_mem(void)
{
    test_strings(false);
}
static void test_strings_lmdb(void)
{
    test_strings(true);
}

static void test_del_append_incr(void)
{
    struct h h;
    h_open(&h, false, 0);
    h.now = 50;
    const char *const mset[] = {"a", "1", "b", "2", "c", "3", "a", "4", NULL};
    CHECK(r_ok(h_run(&h, LIST(CRAFT_KV_OP_MSET, mset))));
    CHECK(h_get(&h, "a", "4") && h_get(&h, "b", "2") && h_dbsize(&h) == 3);
    const char *const del[] = {"a", "zz", "a", "b", NULL};
    CHECK(r_int(h_run(&h, LIST(CRAFT_KV_OP_DEL, del)), 2));
    CHECK(h_get(&h, "a", NULL) && h_get(&h, "c", "3") && h_dbsize(&h) == 1);
    const char *const nx1[] = {"c", "x", "d", "y", NULL};
    CHECK(r_int(h_run(&h, LIST(CRAFT_KV_OP_MSETNX, nx1)), 0));
    CHECK(h_get(&h, "d", NULL) && h_get(&h, "c", "3"));
    const char *const nx2[] = {"d", "x", "e", "y", "d", "z", NULL};
    CHECK(r_int(h_run(&h, LIST(CRAFT_KV_OP_MSETNX, nx2)), 1));
    CHECK(h_get(&h, "d", "z") && h_get(&h, "e", "y"));
    /* MSET clears expiries. */
    CHECK(r_int(h_run(&h, EXPIRE("c", 0, 10000)), 1));
    const char *const m2[] = {"c", "5", NULL};
    CHECK(r_ok(h_run(&h, LIST(CRAFT_KV_OP_MSET, m2))));
    CHECK(h_pttl(&h, "c") == -1);

    /* APPEND creates, appends, keeps the expiry, refuses past the value limit. */
    CHECK(r_int(h_run(&h, KV(CRAFT_KV_OP_APPEND, "s", "Hello")), 5));
    CHECK(r_int(h_run(&h, EXPIRE("s", 0, 1050)), 1));
    CHECK(r_int(h_run(&h, KV(CRAFT_KV_OP_APPEND, "s", " World")), 11));
    CHECK(h_get(&h, "s", "Hello World") && h_pttl(&h, "s") == 1000);
    char *big = malloc(CRAFT_KV_VALUE_BYTES_MAX + 1);
    memset(big, 'x', CRAFT_KV_VALUE_BYTES_MAX - 11);
    big[CRAFT_KV_VALUE_BYTES_MAX - 11] = '\0';
    CHECK(r_int(h_run(&h, KV(CRAFT_KV_OP_APPEND, "s", big)), CRAFT_KV_VALUE_BYTES_MAX));
    CHECK(r_err(h_run(&h, KV(CRAFT_KV_OP_APPEND, "s", "!")),
                "ERR string exceeds maximum allowed size (proto-max-bulk-len)"));
    CHECK(r_int(h_run(&h, KV(CRAFT_KV_OP_APPEND, "s", "")), CRAFT_KV_VALUE_BYTES_MAX));
    free(big);

    /* INCRBY: Redis's strict integers, overflow both ways, the expiry kept. */
    CHECK(r_int(h_run(&h, INCRBY("n", 1)), 1));
    CHECK(r_int(h_run(&h, INCRBY("n", -11)), -10));
    CHECK(h_get(&h, "n", "-10"));
    CHECK(r_int(h_run(&h, EXPIRE("n", 0, 2050)), 1));
    CHECK(r_int(h_run(&h, INCRBY("n", 3)), -7));
    CHECK(h_pttl(&h, "n") == 2000);
    const char *bad[] = {"abc",
                         " 1",
                         "1 ",
                         "+1",
                         "01",
                         "-0",
                         "",
                         "-",
                         "1.5",
                         "9223372036854775808",
                         "-9223372036854775809",
                         "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(r_ok(h_run(&h, SET("x", bad[i], 0, 0))));
        CHECK(r_err(h_run(&h, INCRBY("x", 1)), "ERR value is not an integer or out of range"));
        CHECK(h_get(&h, "x", bad[i]));
    }
    CHECK(r_ok(h_run(&h, SET("x", "9223372036854775807", 0, 0))));
    CHECK(r_err(h_run(&h, INCRBY("x", 1)), "ERR increment or decrement would overflow"));
    CHECK(r_int(h_run(&h, INCRBY("x", INT64_MIN)), -1));
    CHECK(r_ok(h_run(&h, SET("x", "-9223372036854775808", 0, 0))));
    CHECK(r_err(h_run(&h, INCRBY("x", -1)), "ERR increment or decrement would overflow"));
    CHECK(r_int(h_run(&h, INCRBY("x", 0)), INT64_MIN));
    CHECK(r_int(h_run(&h, INCRBY("x", INT64_MAX)), -1));
    CHECK(r_ok(h_run(&h, SET("x", "0", 0, 0))));
    CHECK(r_int(h_run(&h, INCRBY("x", -5)), -5));

    /* FLUSHALL empties the data, not the sessions. */
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 3, 0))));
    CHECK(r_int(h_run(&h, IN(INCRBY("q", 1), 3, 1)), 1));
    CHECK(r_ok(h_run(&h, OP(CRAFT_KV_OP_FLUSHALL))));
    CHECK(h_dbsize(&h) == 0 && h_stored(&h, CRAFT_KV_TABLE_DATA) == 0 &&
          h_stored(&h, CRAFT_KV_TABLE_EXPIRES) == 0);
    CHECK(r_int(h_run(&h, IN(INCRBY("q", 1), 3, 1)), 1)); /* a retry still answers */
    CHECK(r_int(h_run(&h, IN(INCRBY("q", 1), 3, 2)), 1));
    h_close(&h);
}

static void test_expire(void)
{
    struct h h;
    h_open(&h, false, 0);
    h.now = 10000;
    CHECK(r_int(h_run(&h, EXPIRE("k", 0, 20000)), 0)); /* absent */
    CHECK(r_ok(h_run(&h, SET("k", "v", 0, 0))));
    CHECK(r_int(h_run(&h, EXPIRE("k", CRAFT_KV_EXPIRE_XX, 20000)), 0));
    CHECK(r_int(h_run(&h, EXPIRE("k", CRAFT_KV_EXPIRE_GT, 20000)), 0)); /* none is infinite */
    CHECK(r_int(h_run(&h, EXPIRE("k", CRAFT_KV_EXPIRE_NX, 20000)), 1));
    CHECK(r_int(h_run(&h, EXPIRE("k", CRAFT_KV_EXPIRE_NX, 30000)), 0));
    CHECK(h_pttl(&h, "k") == 10000 && h_ttl(&h, "k") == 10);
    CHECK(r_int(h_run(&h, EXPIRE("k", CRAFT_KV_EXPIRE_GT, 15000)), 0));
    CHECK(r_int(h_run(&h, EXPIRE("k", CRAFT_KV_EXPIRE_GT, 25000)), 1));
    CHECK(r_int(h_run(&h, EXPIRE("k", CRAFT_KV_EXPIRE_LT, 30000)), 0));
    CHECK(r_int(h_run(&h, EXPIRE("k", CRAFT_KV_EXPIRE_LT | CRAFT_KV_EXPIRE_XX, 12500)), 1));
    CHECK(h_pttl(&h, "k") == 2500 && h_ttl(&h, "k") == 3); /* 2.5 s rounds up, as Redis */
    struct craft_kv_read *rd;
    CHECK(craft_kv_read_begin(h.sm, &rd) == CRAFT_OK);
    int64_t at;
    CHECK(craft_kv_read_expire_at(rd, (const uint8_t *)"k", 1, &at) == CRAFT_OK && at == 12500);
    craft_kv_read_end(rd);
    CHECK(r_int(h_run(&h, K(CRAFT_KV_OP_PERSIST, "k")), 1));
    CHECK(r_int(h_run(&h, K(CRAFT_KV_OP_PERSIST, "k")), 0));
    CHECK(r_int(h_run(&h, K(CRAFT_KV_OP_PERSIST, "absent")), 0));
    CHECK(h_pttl(&h, "k") == -1);
    CHECK(r_int(h_run(&h, EXPIRE("k", CRAFT_KV_EXPIRE_LT, 40000)), 1)); /* none is infinite */
    CHECK(h_stored(&h, CRAFT_KV_TABLE_EXPIRES) == 1);
    /* An expiry at or before now deletes the key, and counts as done. */
    CHECK(r_int(h_run(&h, EXPIRE("k", 0, 10000)), 1));
    CHECK(h_get(&h, "k", NULL) && h_stored(&h, CRAFT_KV_TABLE_DATA) == 0 &&
          h_stored(&h, CRAFT_KV_TABLE_EXPIRES) == 0);
    CHECK(r_ok(h_run(&h, SET("k", "v", 0, 0))));
    CHECK(r_int(h_run(&h, EXPIRE("k", 0, 0)), 1));
    CHECK(h_get(&h, "k", NULL) && h_dbsize(&h) == 0);
    h_close(&h);
}

/* Keys expire by logical time: the largest now_ms applied, never a clock. */
static void test_logical_time(void)
{
    struct h h;
    h_open(&h, false, 0);
    h.now = 1000;
    for (int i = 0; i < 40; i++) {
        char k[16];
        snprintf(k, sizeof k, "e%d", i);
        CHECK(r_ok(h_run(&h, SET(k, "v", CRAFT_KV_SET_EXPIRE, 2000))));
    }
    CHECK(r_ok(h_run(&h, SET("p", "v", 0, 0))));
    CHECK(r_ok(h_run(&h, SET("late", "v", CRAFT_KV_SET_EXPIRE, 5000))));
    CHECK(h_dbsize(&h) == 42);
    h.now = 1999;
    CHECK(r_ok(h_run(&h, OP(CRAFT_KV_OP_NOOP))));
    CHECK(h_get(&h, "e7", "v") && h_pttl(&h, "e7") == 1 && h_dbsize(&h) == 42);
    /* A leader whose clock is behind does not move time back. */
    h.now = 2000;
    CHECK(r_ok(h_run(&h, SET("x", "1", 0, 0)))); /* sweeps some (16) of the 40 */
    CHECK(craft_kv_sm_now(h.sm) == 2000);
    CHECK(h_stored(&h, CRAFT_KV_TABLE_DATA) == 43 - 16);
    CHECK(h_dbsize(&h) == 3); /* exact, swept or not */
    CHECK(h_get(&h, "e39", NULL) && h_pttl(&h, "e39") == -2);
    h.now = 500;
    CHECK(r_int(h_run(&h, KV(CRAFT_KV_OP_SETNX, "e39", "again")), 1)); /* still expired */
    CHECK(craft_kv_sm_now(h.sm) == 2000);
    CHECK(h_pttl(&h, "late") == 3000);
    /* NOOP sweeps the rest. */
    CHECK(r_ok(h_run(&h, OP(CRAFT_KV_OP_NOOP))));
    CHECK(h_stored(&h, CRAFT_KV_TABLE_DATA) == 4 && h_stored(&h, CRAFT_KV_TABLE_EXPIRES) == 1);
    CHECK(h_dbsize(&h) == 4);
    h.now = 5000;
    CHECK(r_ok(h_run(&h, OP(CRAFT_KV_OP_NOOP))));
    CHECK(h_get(&h, "late", NULL) && h_dbsize(&h) == 3 &&
          h_stored(&h, CRAFT_KV_TABLE_EXPIRES) == 0);
    /* A malformed command is answered deterministically and still applied (index). */
    uint64_t before = craft_kv_sm_applied(h.sm);
    const uint8_t junk[] = {1, 2, 3};
    CHECK(r_err(h_apply_bytes(&h, junk, sizeof junk), "ERR malformed command"));
    const uint8_t v9[] = {9, 0, 0};
    CHECK(r_err(h_apply_bytes(&h, v9, sizeof v9), "ERR unsupported command version"));
    CHECK(craft_kv_sm_applied(h.sm) == before + 2);
    h_close(&h);
}

/* ---- sessions ---- */

#define ERR_NOT_INT "ERR value is not an integer or out of range"

static void test_sessions(void)
{
    struct h h;
    h_open(&h, false, 0);
    h.now = 100;
    CHECK(r_err(h_run(&h, IN(INCRBY("n", 1), 1, 1)), CRAFT_KV_ERR_SESSION));
    CHECK(h_get(&h, "n", NULL));
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 1, 0))));
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 1), 1, 1)), 1));
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 1), 1, 1)), 1)); /* a retry: not run again */
    CHECK(h_get(&h, "n", "1"));
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 1), 1, 2)), 2));
    CHECK(r_err(h_run(&h, IN(INCRBY("n", 1), 1, 1)), CRAFT_KV_ERR_STALE));
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 1), 1, 5)), 3)); /* gaps are fine */
    CHECK(h_get(&h, "n", "3"));
    /* A reopen of a live session keeps its state. */
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 1, 0))));
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 1), 1, 5)), 3));
    /* Saved results of every kind: bulk, nil, error. */
    CHECK(r_ok(h_run(&h, SET("g", "gone", 0, 0))));
    CHECK(r_bulk(h_run(&h, IN(K(CRAFT_KV_OP_GETDEL, "g"), 1, 6)), "gone"));
    CHECK(r_bulk(h_run(&h, IN(K(CRAFT_KV_OP_GETDEL, "g"), 1, 6)), "gone"));
    CHECK(r_nil(h_run(&h, IN(K(CRAFT_KV_OP_GETDEL, "g"), 1, 7))));
    CHECK(r_nil(h_run(&h, IN(K(CRAFT_KV_OP_GETDEL, "g"), 1, 7))));
    CHECK(r_ok(h_run(&h, SET("s", "text", 0, 0))));
    CHECK(r_err(h_run(&h, IN(INCRBY("s", 1), 1, 8)), ERR_NOT_INT));
    CHECK(r_ok(h_run(&h, SET("s", "41", 0, 0))));
    CHECK(r_err(h_run(&h, IN(INCRBY("s", 1), 1, 8)), ERR_NOT_INT));
    CHECK(r_ok(h_run(&h, IN(SET("o", "1", 0, 0), 1, 9))));
    CHECK(r_ok(h_run(&h, IN(SET("o", "2", 0, 0), 1, 9))));
    CHECK(h_get(&h, "o", "1"));
    /* Sessions are independent. */
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 2, 0))));
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 10), 2, 1)), 13));
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 1), 1, 10)), 14));
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 10), 2, 1)), 13));
    /* Close: closed for good. Its record stays, closed and without its window, until it
     * idles out: a copy of its open still on its way (a forwarded batch retried to a new
     * leader) must not open it anew, nor a copy of a command run before the close run
     * again (the partition black-box test counted such a double INCR). */
    CHECK(r_int(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_CLOSE), 2, 0)), 1));
    CHECK(r_int(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_CLOSE), 2, 0)), 0)); /* closed already */
    CHECK(r_err(h_run(&h, IN(INCRBY("n", 10), 2, 2)), CRAFT_KV_ERR_SESSION));
    CHECK(r_err(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 2, 0)), CRAFT_KV_ERR_SESSION));
    CHECK(r_err(h_run(&h, IN(INCRBY("n", 10), 2, 1)), CRAFT_KV_ERR_SESSION)); /* not again */
    CHECK(h_get(&h, "n", "14"));
    CHECK(h_stored(&h, CRAFT_KV_TABLE_SESSIONS) == 2 && h_stored(&h, CRAFT_KV_TABLE_IDLE) == 2);
    h_close(&h);
}

/* Sessions expire after session_idle_ms of logical time without a command: at the same
 * command on every replica, whatever the batching or the store. */
static void test_session_expiry(void)
{
    struct h h;
    h_open(&h, false, 1000);
    h.now = 0;
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 1, 0))));
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 2, 0))));
    h.now = 500;
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 1), 1, 1)), 1)); /* session 1 active at 500 */
    h.now = 999;
    CHECK(r_ok(h_run(&h, OP(CRAFT_KV_OP_NOOP))));
    CHECK(h_stored(&h, CRAFT_KV_TABLE_SESSIONS) == 2);
    h.now = 1000;
    CHECK(r_ok(h_run(&h, OP(CRAFT_KV_OP_NOOP)))); /* 2 idle for 1000 ms: swept */
    CHECK(h_stored(&h, CRAFT_KV_TABLE_SESSIONS) == 1 && h_stored(&h, CRAFT_KV_TABLE_IDLE) == 1);
    CHECK(r_err(h_run(&h, IN(INCRBY("n", 1), 2, 1)), CRAFT_KV_ERR_SESSION));
    h.now = 1499;
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 1), 1, 1)), 1)); /* a retry keeps it alive */
    h.now = 2498;
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 1), 1, 2)), 2));
    /* Idle for 1000 ms again: gone. */
    h.now = 3498;
    CHECK(r_err(h_run(&h, IN(INCRBY("n", 1), 1, 3)), CRAFT_KV_ERR_SESSION));
    CHECK(h_get(&h, "n", "2"));
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 1, 0)))); /* a fresh session */
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 1), 1, 1)), 3));
    h_close(&h);
}

/* The sweep reads the idle index only when its bound says something may be due
 * (kv_internal.h): a session opened after the index emptied must still be swept. */
static void test_session_sweep_after_empty(void)
{
    struct h h;
    h_open(&h, false, 1000);
    h.now = 0;
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 1, 0))));
    h.now = 1000;
    CHECK(r_ok(h_run(&h, OP(CRAFT_KV_OP_NOOP)))); /* swept */
    h.now = 1001;
    CHECK(r_ok(h_run(&h, OP(CRAFT_KV_OP_NOOP)))); /* finds the index empty */
    CHECK(h_stored(&h, CRAFT_KV_TABLE_SESSIONS) == 0 && h_stored(&h, CRAFT_KV_TABLE_IDLE) == 0);
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 2, 0))));
    h.now = 2000;
    CHECK(r_ok(h_run(&h, OP(CRAFT_KV_OP_NOOP)))); /* idle for 999 ms: kept */
    CHECK(h_stored(&h, CRAFT_KV_TABLE_SESSIONS) == 1);
    h.now = 2001;
    CHECK(r_ok(h_run(&h, OP(CRAFT_KV_OP_NOOP)))); /* idle for 1000 ms: swept */
    CHECK(h_stored(&h, CRAFT_KV_TABLE_SESSIONS) == 0 && h_stored(&h, CRAFT_KV_TABLE_IDLE) == 0);
    /* And a key given an expiry after the expiry index emptied. */
    CHECK(r_ok(h_run(&h, SET("k", "v", CRAFT_KV_SET_EXPIRE, 2500))));
    h.now = 2500;
    CHECK(r_ok(h_run(&h, OP(CRAFT_KV_OP_NOOP))));
    CHECK(h_stored(&h, CRAFT_KV_TABLE_EXPIRES) == 0 && h_dbsize(&h) == 0);
    h_close(&h);
}

/* Raw bytes of a table (klen | key | vlen | value, in order): replicas must agree on them. */
static int dump_one(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    struct buf *b = ctx;
    uint64_t l[2] = {klen, vlen};
    buf_write(b, &l[0], 8);
    buf_write(b, k, klen);
    buf_write(b, &l[1], 8);
    buf_write(b, v, vlen);
    return CRAFT_OK;
}

static void h_dump(struct h *h, int table, struct buf *out)
{
    *out = (struct buf){0};
    struct craft_kv_txn *t;
    CRAFT_ASSERT(h->st->ops->begin(h->st, false, &t) == CRAFT_OK);
    CHECK(h->st->ops->iter(t, table, NULL, 0, dump_one, out) == CRAFT_OK);
    h->st->ops->abort(t);
}

/* Three pipelined writes of session 1 (seqs 5, 6, 7, each with ack 5: no reply received
 * yet) are all applied, then a leader change leaves them in doubt. */
static void window_fill(struct h *h)
{
    h->now = 100;
    CHECK(r_ok(h_run(h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 1, 0))));
    CHECK(r_int(h_run(h, INA(INCRBY("n", 1), 1, 5, 5)), 1));
    CHECK(r_int(h_run(h, INA(INCRBY("n", 10), 1, 6, 5)), 11));
    CHECK(r_nil(h_run(h, INA(KV(CRAFT_KV_OP_GETSET, "g", "b"), 1, 7, 5))));
}

/* The retries of 5, 6 and 7 (in any order) get their saved results, without running. */
static void window_check(struct h *h)
{
    CHECK(r_int(h_run(h, INA(INCRBY("n", 1), 1, 6, 5)), 11));
    CHECK(r_int(h_run(h, INA(INCRBY("n", 1), 1, 5, 5)), 1));
    CHECK(r_nil(h_run(h, INA(KV(CRAFT_KV_OP_GETSET, "g", "c"), 1, 7, 5))));
    CHECK(r_int(h_run(h, INA(INCRBY("n", 1), 1, 5, 5)), 1));
    CHECK(h_get(h, "n", "11") && h_get(h, "g", "b"));
}

static void session_window(bool lmdb)
{
    struct h h;
    h_open(&h, lmdb, 0);
    window_fill(&h);
    window_check(&h);
    /* A snapshot restored into a fresh state machine (on the same kind of store) answers
     * the same, and so does the LMDB store after a reopen. */
    struct buf s1, s2;
    h_snap(&h, &s1);
    struct h f;
    h_open(&f, lmdb, 0);
    CHECK(h_restore(&f, &s1, 100) == CRAFT_OK);
    f.now = 150;
    window_check(&f);
    h_snap(&f, &s2);
    if (lmdb) {
        h_reopen(&f);
        window_check(&f);
    }
    buf_free(&s2);
    h_close(&f);
    buf_free(&s1);
    /* Reopening the live session keeps the window. */
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 1, 0))));
    window_check(&h);
    /* The client got the replies of 5 and 6: seq 8 with ack 7 drops their results. */
    CHECK(r_int(h_run(&h, INA(INCRBY("n", 100), 1, 8, 7)), 111));
    CHECK(r_err(h_run(&h, INA(INCRBY("n", 1), 1, 5, 5)), CRAFT_KV_ERR_STALE));
    CHECK(r_err(h_run(&h, INA(INCRBY("n", 1), 1, 6, 6)), CRAFT_KV_ERR_STALE));
    CHECK(r_nil(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "g", "d"), 1, 7, 7))));
    CHECK(r_int(h_run(&h, INA(INCRBY("n", 100), 1, 8, 7)), 111));
    /* A seq skipped (10 with 9 never sent) is not in the window: stale, not run. */
    CHECK(r_int(h_run(&h, INA(INCRBY("n", 1000), 1, 10, 7)), 1111));
    CHECK(r_err(h_run(&h, INA(INCRBY("n", 1), 1, 9, 7)), CRAFT_KV_ERR_STALE));
    CHECK(r_int(h_run(&h, INA(INCRBY("n", 100), 1, 8, 7)), 111));
    /* ack 0 keeps only the newest: today's behaviour for clients that send none. */
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 1), 1, 11)), 1112));
    CHECK(r_err(h_run(&h, IN(INCRBY("n", 1), 1, 10)), CRAFT_KV_ERR_STALE));
    CHECK(r_err(h_run(&h, IN(INCRBY("n", 1), 1, 7)), CRAFT_KV_ERR_STALE));
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 1), 1, 11)), 1112));
    CHECK(h_get(&h, "n", "1112") && h_get(&h, "g", "b"));
    /* A session command between does not touch the window; a close drops it all. */
    CHECK(r_int(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_CLOSE), 1, 0)), 1));
    CHECK(r_err(h_run(&h, IN(INCRBY("n", 1), 1, 11)), CRAFT_KV_ERR_SESSION));
    h_close(&h);
}

static void test_session_window_mem(void)
{
    session_window(false);
}

static void test_session_window_lmdb(void)
{
    session_window(true);
}

/* The window keeps at most CRAFT_KV_SESSION_RESULTS_MAX results and
 * CRAFT_KV_SESSION_RESULT_BYTES_MAX bytes of them, dropping the oldest, never the newest. */
static void test_session_caps(void)
{
    struct h h;
    h_open(&h, false, 0);
    h.now = 100;
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 1, 0))));
    /* 300 writes, none acknowledged (ack 1): the last 256 stay. */
    for (uint64_t seq = 1; seq <= 300; seq++) {
        CHECK(r_int(h_run(&h, INA(INCRBY("n", 1), 1, seq, 1)), (int64_t)seq));
    }
    uint64_t low = 300 - CRAFT_KV_SESSION_RESULTS_MAX + 1;
    CHECK(r_int(h_run(&h, INA(INCRBY("n", 1), 1, low, 1)), (int64_t)low));
    CHECK(r_err(h_run(&h, INA(INCRBY("n", 1), 1, low - 1, 1)), CRAFT_KV_ERR_STALE));
    CHECK(r_int(h_run(&h, INA(INCRBY("n", 1), 1, 300, 1)), 300));
    CHECK(h_get(&h, "n", "300"));

    /* Bytes: GETSET replies with the old value. 100 KiB results: the third pushes the sum
     * over 256 KiB, so the oldest go until it fits. */
    enum { V = 100 * 1024 };
    char *vals[4];
    for (int i = 0; i < 4; i++) {
        vals[i] = malloc(V + 1);
        memset(vals[i], 'a' + i, V);
        vals[i][V] = '\0';
    }
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 2, 0))));
    CHECK(r_nil(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", vals[0]), 2, 1, 1))));
    CHECK(r_bulk(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", vals[1]), 2, 2, 1)), vals[0]));
    CHECK(r_bulk(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", vals[2]), 2, 3, 1)), vals[1]));
    /* 1 + 2 * (V + 5) bytes so far: all three kept. */
    CHECK(r_nil(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", "x"), 2, 1, 1))));
    CHECK(r_bulk(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", vals[3]), 2, 4, 1)), vals[2]));
    /* 1 + 3 * (V + 5) > 256 KiB: 1 and 2 dropped, 3 and 4 kept. */
    CHECK(r_err(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", "x"), 2, 1, 1)), CRAFT_KV_ERR_STALE));
    CHECK(r_err(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", "x"), 2, 2, 1)), CRAFT_KV_ERR_STALE));
    CHECK(r_bulk(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", "x"), 2, 3, 1)), vals[1]));
    CHECK(r_bulk(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", "x"), 2, 4, 1)), vals[2]));
    /* A result larger than the byte cap alone: it stays, alone. */
    char *huge = malloc(CRAFT_KV_VALUE_BYTES_MAX + 1);
    memset(huge, 'h', CRAFT_KV_VALUE_BYTES_MAX);
    huge[CRAFT_KV_VALUE_BYTES_MAX] = '\0';
    CHECK(r_bulk(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", huge), 2, 5, 1)), vals[3]));
    CHECK(r_bulk(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", "small"), 2, 6, 1)), huge));
    CHECK(r_bulk(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", "x"), 2, 6, 1)), huge));
    CHECK(r_err(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", "x"), 2, 5, 1)), CRAFT_KV_ERR_STALE));
    CHECK(r_err(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", "x"), 2, 4, 1)), CRAFT_KV_ERR_STALE));
    CHECK(h_get(&h, "big", "small"));
    /* The next small one joins it until the sum passes the cap: here at once. */
    CHECK(r_bulk(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", "tiny"), 2, 7, 1)), "small"));
    CHECK(r_err(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", "x"), 2, 6, 1)), CRAFT_KV_ERR_STALE));
    CHECK(r_bulk(h_run(&h, INA(KV(CRAFT_KV_OP_GETSET, "big", "x"), 2, 7, 1)), "small"));
    /* Both sessions' windows survive a snapshot and restore. */
    struct buf s1, s2;
    h_snap(&h, &s1);
    struct h f;
    h_open(&f, true, 0);
    CHECK(h_restore(&f, &s1, 4096) == CRAFT_OK);
    f.now = 200;
    CHECK(r_int(h_run(&f, INA(INCRBY("n", 1), 1, low, 1)), (int64_t)low));
    CHECK(r_err(h_run(&f, INA(INCRBY("n", 1), 1, low - 1, 1)), CRAFT_KV_ERR_STALE));
    CHECK(r_bulk(h_run(&f, INA(KV(CRAFT_KV_OP_GETSET, "big", "x"), 2, 7, 1)), "small"));
    h_snap(&f, &s2);
    buf_free(&s2);
    h_close(&f);
    buf_free(&s1);
    free(huge);
    for (int i = 0; i < 4; i++) {
        free(vals[i]);
    }
    h_close(&h);
}

/* ---- SCAN and glob ---- */

static bool glob(const char *p, const char *s)
{
    return craft_kv_glob_match((const uint8_t *)p, strlen(p), (const uint8_t *)s, strlen(s));
}

/* ---- transactions (MULTI) ---- */

/* A MULTI of the given commands (each with session, seq and time 0). */
static uint8_t multi_list[1 << 16];
static struct craft_kv_cmd MULTI_(const struct craft_kv_cmd *subs, uint32_t n)
{
    size_t len = 0;
    for (uint32_t i = 0; i < n; i++) {
        CRAFT_ASSERT(craft_kv_cmd_multi_add(&subs[i], multi_list, sizeof multi_list, &len) ==
                     CRAFT_OK);
    }
    return (struct craft_kv_cmd){.op = CRAFT_KV_OP_MULTI, .n = n,
                                 .blob = {.p = multi_list, .len = (uint32_t)len}};
}

/* The i-th element of an ARRAY result (its data and type), or false. */
static bool elem(const struct craft_kv_result *r, size_t i, struct craft_kv_result_view *v)
{
    if (r == NULL || r->type != CRAFT_KV_RES_ARRAY) {
        return false;
    }
    size_t off = 0;
    for (size_t k = 0; craft_kv_result_next(r->data, r->len, &off, v); k++) {
        if (k == i) {
            return true;
        }
    }
    return false;
}

static bool v_int(const struct craft_kv_result_view *v, int64_t n)
{
    return v->type == CRAFT_KV_RES_INT && v->integer == n;
}

static bool v_data(const struct craft_kv_result_view *v, uint8_t type, const char *s)
{
    return v->type == type && v->len == strlen(s) && memcmp(v->data, s, v->len) == 0;
}

/* Redis's EXEC: the commands run in order as one step; each read sees the writes before
 * it; a command's own error is its element and the others still run; a retry in a session
 * answers the saved array; a MULTI holds no MULTI, session or member op, and reads stand
 * only inside one. */
static void test_multi(void)
{
    struct h h;
    h_open(&h, false, 0);
    h.now = 1000;
    CHECK(r_ok(h_run(&h, SET("s", "text", 0, 0))));
    const char *const mget_keys[] = {"a", "none", NULL};
    struct craft_kv_cmd mget = LIST(CRAFT_KV_OP_DEL, mget_keys);
    mget.op = CRAFT_KV_OP_MGET;
    struct craft_kv_cmd subs[] = {
        SET("a", "1", CRAFT_KV_SET_EXPIRE, 61000),
        INCRBY("a", 4),
        K(CRAFT_KV_OP_GET, "a"),
        mget,
        INCRBY("s", 1), /* an error: the others still run */
        K(CRAFT_KV_OP_TYPE, "a"),
        K(CRAFT_KV_OP_TTL, "a"),
        K(CRAFT_KV_OP_PTTL, "none"),
        K(CRAFT_KV_OP_STRLEN, "s"),
        K(CRAFT_KV_OP_GETDEL, "s"),
        K(CRAFT_KV_OP_TYPE, "s"),
    };
    const uint32_t n = sizeof subs / sizeof subs[0];
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 7, 0))));
    for (int attempt = 0; attempt < 2; attempt++) { /* the second is a retry */
        struct craft_kv_result *r = h_run(&h, IN(MULTI_(subs, n), 7, 1));
        struct craft_kv_result_view v, w;
        CHECK(r != NULL && r->type == CRAFT_KV_RES_ARRAY && r->integer == n);
        CHECK(elem(r, 0, &v) && v.type == CRAFT_KV_RES_OK);
        CHECK(elem(r, 1, &v) && v_int(&v, 5));
        CHECK(elem(r, 2, &v) && v_data(&v, CRAFT_KV_RES_BULK, "5"));
        CHECK(elem(r, 3, &v) && v.type == CRAFT_KV_RES_ARRAY && v.integer == 2);
        size_t off = 0;
        CHECK(craft_kv_result_next(v.data, v.len, &off, &w) && v_data(&w, CRAFT_KV_RES_BULK, "5"));
        CHECK(craft_kv_result_next(v.data, v.len, &off, &w) && w.type == CRAFT_KV_RES_NIL);
        CHECK(!craft_kv_result_next(v.data, v.len, &off, &w));
        CHECK(elem(r, 4, &v) && v_data(&v, CRAFT_KV_RES_ERR, ERR_NOT_INT));
        CHECK(elem(r, 5, &v) && v_data(&v, CRAFT_KV_RES_STATUS, "string"));
        CHECK(elem(r, 6, &v) && v_int(&v, 60));
        CHECK(elem(r, 7, &v) && v_int(&v, -2));
        CHECK(elem(r, 8, &v) && v_int(&v, 4));
        CHECK(elem(r, 9, &v) && v_data(&v, CRAFT_KV_RES_BULK, "text"));
        CHECK(elem(r, 10, &v) && v_data(&v, CRAFT_KV_RES_STATUS, "none"));
        CHECK(!elem(r, 11, &v));
        craft_kv_result_free(r);
        h.now += 10;
    }
    CHECK(h_get(&h, "a", "5") && h_get(&h, "s", NULL));

    /* WATCH: the transaction runs only while each watched key still has the state its
     * digest was taken from; otherwise nil and nothing runs. WATCHes are no elements. */
    uint64_t five = craft_kv_watch_digest(true, 61000, (const uint8_t *)"5", 1);
    uint64_t absent = craft_kv_watch_digest(false, 0, NULL, 0);
    CHECK(five != absent && five != craft_kv_watch_digest(true, 0, (const uint8_t *)"5", 1));
    struct craft_kv_cmd guarded[] = {
        {.op = CRAFT_KV_OP_WATCH, .key = B("a"), .delta = (int64_t)five},
        {.op = CRAFT_KV_OP_WATCH, .key = B("nokey"), .delta = (int64_t)absent},
        INCRBY("a", 1),
    };
    struct craft_kv_result *g = h_run(&h, MULTI_(guarded, 3));
    struct craft_kv_result_view gv;
    CHECK(g != NULL && g->type == CRAFT_KV_RES_ARRAY && g->integer == 1 && elem(g, 0, &gv) &&
          v_int(&gv, 6));
    craft_kv_result_free(g);
    CHECK(r_nil(h_run(&h, MULTI_(guarded, 3)))); /* a is 6 now: nothing runs */
    CHECK(h_get(&h, "a", "6"));
    guarded[0].delta = (int64_t)craft_kv_watch_digest(true, 61000, (const uint8_t *)"6", 1);
    CHECK(r_ok(h_run(&h, SET("nokey", "x", 0, 0))));
    CHECK(r_nil(h_run(&h, MULTI_(guarded, 3)))); /* the second watched key appeared */
    CHECK(h_get(&h, "a", "6"));
    struct craft_kv_cmd watch_alone = {.op = CRAFT_KV_OP_WATCH, .key = B("nokey"), .delta = 1};
    CHECK(craft_kv_cmd_size(&watch_alone) == 0); /* only inside a MULTI */

    /* Refused shapes: no MULTI in a MULTI, no session op, no member op, no read alone. */
    uint8_t buf[4096];
    size_t len = 0;
    struct craft_kv_cmd inner = MULTI_(subs, 1);
    CHECK(craft_kv_cmd_multi_add(&inner, buf, sizeof buf, &len) == CRAFT_EINVAL);
    struct craft_kv_cmd open = OP(CRAFT_KV_OP_SESSION_OPEN);
    open.session = 1;
    CHECK(craft_kv_cmd_multi_add(&open, buf, sizeof buf, &len) == CRAFT_EINVAL);
    struct craft_kv_cmd member = MSET_(3, "127.0.0.1:1", "127.0.0.1:2");
    CHECK(craft_kv_cmd_multi_add(&member, buf, sizeof buf, &len) == CRAFT_EINVAL);
    struct craft_kv_cmd noop = OP(CRAFT_KV_OP_NOOP);
    CHECK(craft_kv_cmd_multi_add(&noop, buf, sizeof buf, &len) == CRAFT_EINVAL);
    struct craft_kv_cmd stamped = SET("x", "1", 0, 0);
    stamped.now_ms = 5; /* the MULTI's header carries the time */
    CHECK(craft_kv_cmd_multi_add(&stamped, buf, sizeof buf, &len) == CRAFT_EINVAL);
    CHECK(len == 0);
    struct craft_kv_cmd get = K(CRAFT_KV_OP_GET, "a");
    CHECK(craft_kv_cmd_size(&get) == 0);
    CHECK(craft_kv_cmd_multi_add(&get, buf, 8, &len) == CRAFT_ETOOBIG && len == 0);
    struct craft_kv_cmd empty = {.op = CRAFT_KV_OP_MULTI, .n = 0};
    CHECK(craft_kv_cmd_size(&empty) == 0);
    struct craft_kv_cmd short_n = MULTI_(subs, 2);
    short_n.n = 3; /* says three, holds two */
    CHECK(craft_kv_cmd_size(&short_n) == 0);
    /* A decoded MULTI walks back to its commands, re-encoding to the same bytes. */
    struct craft_kv_cmd m = IN(MULTI_(subs, n), 9, 1);
    m.now_ms = 1;
    size_t size = craft_kv_cmd_size(&m), got = 0;
    uint8_t *p = malloc(size), *q = malloc(size);
    CHECK(p && q && craft_kv_cmd_encode(&m, p, size, &got) == CRAFT_OK && got == size);
    struct craft_kv_cmd d;
    CHECK(craft_kv_cmd_decode(p, size, &d) == CRAFT_OK && d.op == CRAFT_KV_OP_MULTI && d.n == n);
    struct craft_kv_cmd s;
    size_t off = 0;
    uint32_t k = 0;
    while (craft_kv_cmd_next_sub(&d, &off, &s)) {
        CHECK(s.op == subs[k].op && s.session == 0);
        k++;
    }
    CHECK(k == n);
    CHECK(craft_kv_cmd_encode(&d, q, size, &got) == CRAFT_OK && memcmp(p, q, size) == 0);
    free(p);
    free(q);
    h_close(&h);
}

/* A MULTI whose replies pass what a session keeps (KV_RESULT_ENC_MAX) answers in full and
 * leaves an error saying that it ran for a retry. */
static void test_multi_large_reply(void)
{
    struct h h;
    h_open(&h, false, 0);
    h.now = 1000;
    static char big[600 * 1024];
    memset(big, 'v', sizeof big - 1);
    CHECK(r_ok(h_run(&h, SET("big", big, 0, 0))));
    struct craft_kv_cmd subs[] = {K(CRAFT_KV_OP_GET, "big"), K(CRAFT_KV_OP_GET, "big")};
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 7, 0))));
    struct craft_kv_result *r = h_run(&h, IN(MULTI_(subs, 2), 7, 1));
    struct craft_kv_result_view v;
    CHECK(elem(r, 1, &v) && v.type == CRAFT_KV_RES_BULK && v.len == sizeof big - 1);
    craft_kv_result_free(r);
    CHECK(r_err(h_run(&h, IN(MULTI_(subs, 2), 7, 1)), CRAFT_KV_ERR_EXEC_LARGE));

    /* Past CRAFT_KV_MULTI_REPLY_BYTES_MAX (32 MiB): every command still runs, the elements
     * past the bound are an error each, an MGET past it is one error (never built). */
    static char mb[1000 * 1000];
    memset(mb, 'm', sizeof mb - 1);
    CHECK(r_ok(h_run(&h, SET("mb", mb, 0, 0))));
    static struct craft_kv_cmd many[40];
    static const char *const mkeys[] = {"mb", "mb", "mb", "mb", "mb", "mb", "mb", "mb", "mb",
                                        "mb", "mb", "mb", "mb", "mb", "mb", "mb", "mb", "mb",
                                        "mb", "mb", "mb", "mb", "mb", "mb", "mb", "mb", "mb",
                                        "mb", "mb", "mb", "mb", "mb", "mb", "mb", "mb", "mb",
                                        "mb", "mb", "mb", "mb", NULL};
    struct craft_kv_cmd mg = LIST(CRAFT_KV_OP_DEL, mkeys);
    mg.op = CRAFT_KV_OP_MGET;
    many[0] = mg;
    for (int i = 1; i < 38; i++) {
        many[i] = K(CRAFT_KV_OP_GET, "mb");
    }
    many[38] = INCRBY("after", 1);
    many[39] = K(CRAFT_KV_OP_GET, "mb");
    r = h_run(&h, MULTI_(many, 40));
    CHECK(r != NULL && r->type == CRAFT_KV_RES_ARRAY && r->integer == 40 &&
          r->len + 9 <= CRAFT_KV_MULTI_REPLY_BYTES_MAX);
    CHECK(elem(r, 0, &v) && v_data(&v, CRAFT_KV_RES_ERR, CRAFT_KV_ERR_REPLY_LARGE));
    CHECK(elem(r, 1, &v) && v.type == CRAFT_KV_RES_BULK && v.len == sizeof mb - 1);
    CHECK(elem(r, 37, &v) && v_data(&v, CRAFT_KV_RES_ERR, CRAFT_KV_ERR_REPLY_LARGE));
    CHECK(elem(r, 39, &v) && v_data(&v, CRAFT_KV_RES_ERR, CRAFT_KV_ERR_REPLY_LARGE));
    craft_kv_result_free(r);
    CHECK(h_get(&h, "after", "1")); /* it ran, its reply left out */
    h_close(&h);
}

static void test_glob(void)
{
    CHECK(glob("*", "") && glob("*", "abc") && glob("**", "abc"));
    CHECK(glob("h?llo", "hello") && !glob("h?llo", "hllo"));
    CHECK(glob("h*llo", "hllo") && glob("h*llo", "heeeello") && !glob("h*llo", "hellx"));
    CHECK(glob("h[ae]llo", "hallo") && !glob("h[ae]llo", "hillo"));
    CHECK(glob("h[^e]llo", "hallo") && !glob("h[^e]llo", "hello"));
    CHECK(glob("h[a-b]llo", "hbllo") && !glob("h[a-b]llo", "hcllo"));
    CHECK(glob("h[b-a]llo", "hallo")); /* a reversed range, as Redis */
    CHECK(glob("a\\*b", "a*b") && !glob("a\\*b", "axb"));
    CHECK(glob("[\\]]", "]") && glob("user:*:name", "user:42:name"));
    CHECK(!glob("user:*:name", "user:42:names") && !glob("", "a") && glob("", ""));
    CHECK(glob("*a*b*c*", "xxaxxbxxcxx") && !glob("*a*b*c*", "xxaxxcxxbxx"));
    /* No exponential backtracking. */
    char s[4001];
    memset(s, 'a', 4000);
    s[4000] = '\0';
    CHECK(!glob("*a*a*a*a*a*a*a*a*a*b", s));
}

struct seen {
    uint8_t *count; /* by key number */
    size_t n, bad;
};

static int seen_emit(void *ctx, const uint8_t *key, size_t klen)
{
    struct seen *s = ctx;
    char k[32];
    if (klen < 2 || klen >= sizeof k) {
        s->bad++;
        return CRAFT_OK;
    }
    memcpy(k, key, klen);
    k[klen] = '\0';
    size_t i = (size_t)strtoul(k + 1, NULL, 10);
    if (i >= s->n) {
        s->bad++;
    } else {
        s->count[i]++;
    }
    return CRAFT_OK;
}

static void test_scan(bool lmdb)
{
    struct h h;
    h_open(&h, lmdb, 0);
    h.now = 100;
    enum { N = 600 };
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof k, "%c%d", i % 3 == 0 ? 'u' : 'v', i);
        CHECK(r_ok(h_run(&h, SET(k, "x", i % 10 == 9 ? CRAFT_KV_SET_EXPIRE : 0, 200))));
    }
    h.now = 200;                                  /* every tenth key expires, unswept */
    CHECK(r_ok(h_run(&h, SET("u0", "x", 0, 0)))); /* sweeps only 16 of the 60 */
    struct seen s = {.count = calloc(N, 1), .n = N};
    struct craft_kv_read *rd;
    CHECK(craft_kv_read_begin(h.sm, &rd) == CRAFT_OK);
    uint64_t cursor = 0;
    int calls = 0;
    do {
        CHECK(craft_kv_read_scan(rd, cursor, NULL, 0, 7, seen_emit, &s, &cursor) == CRAFT_OK);
        calls++;
    } while (cursor != 0 && calls < 10 * N);
    craft_kv_read_end(rd);
    CHECK(calls >= N / 7 - 10 && calls <= N / 7 + 2);
    for (int i = 0; i < N; i++) {
        CHECK(s.count[i] == (i % 10 == 9 ? 0 : 1));
    }
    CHECK(s.bad == 0);
    /* MATCH, while keys are added and removed between calls: every key present throughout
     * is returned. */
    memset(s.count, 0, N);
    cursor = 0;
    calls = 0;
    do {
        CHECK(craft_kv_read_begin(h.sm, &rd) == CRAFT_OK);
        CHECK(craft_kv_read_scan(rd, cursor, (const uint8_t *)"u*", 2, 20, seen_emit, &s,
                                 &cursor) == CRAFT_OK);
        craft_kv_read_end(rd);
        char k[16];
        snprintf(k, sizeof k, "u%d", N + calls); /* beyond the counted range: ignored */
        CHECK(r_ok(h_run(&h, SET(k, "y", 0, 0))));
        snprintf(k, sizeof k, "v%d", 3 * calls + 1);
        craft_kv_result_free(h_run(&h, K(CRAFT_KV_OP_GETDEL, k)));
        calls++;
    } while (cursor != 0 && calls < 10 * N);
    for (int i = 0; i < N; i++) {
        CHECK(s.count[i] == (i % 3 == 0 && i % 10 != 9 ? 1 : 0));
    }
    free(s.count);
    h_close(&h);
}

static void test_scan_mem(void)
{
    test_scan(false);
}
static void test_scan_lmdb(void)
{
    test_scan(true);
}

/* ---- the member table ---- */

static int scan_count(void *ctx, const uint8_t *key, size_t klen)
{
    (void)key, (void)klen;
    (*(size_t *)ctx)++;
    return CRAFT_OK;
}

static size_t h_scan_all(struct h *h)
{
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(h->sm, &r) == CRAFT_OK);
    size_t n = 0;
    uint64_t cursor = 0;
    do {
        CHECK(craft_kv_read_scan(r, cursor, NULL, 0, 100, scan_count, &n, &cursor) == CRAFT_OK);
    } while (cursor != 0);
    craft_kv_read_end(r);
    return n;
}

/* Members are set, replaced and removed; user commands never see or remove them; they
 * survive a reopen; the table is bounded. */
static void members(bool lmdb)
{
    struct h h;
    h_open(&h, lmdb, 0);
    h.now = 100;
    CHECK(h_members(&h) == 0 && h_member(&h, 1, NULL, NULL));
    CHECK(r_ok(h_run(&h, MSET_(2, "127.0.0.1:7102", "127.0.0.1:7002"))));
    CHECK(r_ok(h_run(&h, MSET_(1, "127.0.0.1:7101", "127.0.0.1:7001"))));
    CHECK(r_ok(h_run(&h, SET("k", "v", 0, 0))));
    CHECK(h_member(&h, 1, "127.0.0.1:7101", "127.0.0.1:7001"));
    CHECK(h_member(&h, 2, "127.0.0.1:7102", "127.0.0.1:7002"));
    CHECK(r_ok(h_run(&h, MSET_(2, "10.1.1.1:1", "10.1.1.1:2")))); /* replaced */
    CHECK(h_member(&h, 2, "10.1.1.1:1", "10.1.1.1:2") && h_members(&h) == 2);
    struct craft_kv_member ms[4];
    struct craft_kv_read *r;
    size_t n = 0;
    CHECK(craft_kv_read_begin(h.sm, &r) == CRAFT_OK);
    CHECK(craft_kv_read_members(r, ms, 4, &n) == CRAFT_OK && n == 2 && ms[0].id == 1 &&
          ms[1].id == 2 && strcmp(ms[1].client_addr, "10.1.1.1:2") == 0);
    CHECK(craft_kv_read_members(r, ms, 1, &n) == CRAFT_OK && n == 2 && ms[0].id == 1);
    craft_kv_read_end(r);
    /* Invisible to the user's commands: DBSIZE, SCAN, GET; FLUSHALL keeps them. */
    CHECK(h_dbsize(&h) == 1 && h_scan_all(&h) == 1 && h_get(&h, "member/", NULL));
    CHECK(r_ok(h_run(&h, OP(CRAFT_KV_OP_FLUSHALL))));
    CHECK(h_dbsize(&h) == 0 && h_scan_all(&h) == 0 && h_members(&h) == 2);
    /* Removal answers whether there was one; the meta entries are not members. */
    CHECK(r_int(h_run(&h, MDEL(2)), 1));
    CHECK(r_int(h_run(&h, MDEL(2)), 0));
    CHECK(h_member(&h, 2, NULL, NULL) && h_members(&h) == 1);
    /* In a session: a retry answers the saved result. */
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 5, 0))));
    CHECK(r_ok(h_run(&h, IN(MSET_(7, "p:7", "c:7"), 5, 1))));
    CHECK(r_ok(h_run(&h, IN(MSET_(7, "p:7", "c:7"), 5, 1))));
    CHECK(h_member(&h, 7, "p:7", "c:7"));
    if (lmdb) {
        h_reopen(&h);
        CHECK(h_member(&h, 1, "127.0.0.1:7101", "127.0.0.1:7001") && h_members(&h) == 2);
    }
    /* At most CRAFT_KV_MEMBERS_MAX; replacing one is still allowed when full. */
    for (uint64_t id = 100; h_members(&h) < CRAFT_KV_MEMBERS_MAX; id++) {
        CHECK(r_ok(h_run(&h, MSET_(id, "p:1", "c:1"))));
    }
    CHECK(r_err(h_run(&h, MSET_(99, "p:1", "c:1")), CRAFT_KV_ERR_MEMBERS));
    CHECK(r_ok(h_run(&h, MSET_(1, "p:1", "c:1"))));
    CHECK(h_members(&h) == CRAFT_KV_MEMBERS_MAX && h_member(&h, 99, NULL, NULL));
    struct buf s1, s2;
    h_snap(&h, &s1);
    struct h b;
    h_open(&b, !lmdb, 0);
    CHECK(h_restore(&b, &s1, 13) == CRAFT_OK);
    h_snap(&b, &s2);
    CHECK(buf_eq(&s1, &s2) && h_members(&b) == CRAFT_KV_MEMBERS_MAX);
    buf_free(&s1);
    buf_free(&s2);
    h_close(&b);
    h_close(&h);
}

static void test_members_mem(void)
{
    members(false);
}
static void test_members_lmdb(void)
{
    members(true);
}

/* Appends a snapshot record or header field. */
static void put64(struct buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++) {
        x[i] = (uint8_t)(v >> (8 * i));
    }
    buf_write(b, x, 8);
}

static void put32(struct buf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++) {
        x[i] = (uint8_t)(v >> (8 * i));
    }
    buf_write(b, x, 4);
}

/* Ends a hand-made snapshot: the END record's counts (n_members < 0: version 1's END)
 * and the crc32 of everything before it. */
static void snap_end(struct buf *b, uint64_t n_keys, uint64_t n_sessions, int64_t n_members)
{
    buf_write(b, "\0", 1);
    put64(b, n_keys);
    put64(b, n_sessions);
    if (n_members >= 0) {
        put64(b, (uint64_t)n_members);
    }
    put32(b, (uint32_t)crc32(crc32(0L, Z_NULL, 0), b->p, (uInt)b->len));
}

static void snap_header(struct buf *b, uint32_t version, uint64_t applied, uint64_t now)
{
    buf_write(b, "CRKVSNAP", 8);
    put32(b, version);
    put32(b, 0);
    put64(b, applied);
    put64(b, now);
}

static void snap_member(struct buf *b, uint64_t id, const char *peer, const char *client)
{
    buf_write(b, "\3", 1);
    put64(b, id);
    put32(b, (uint32_t)strlen(peer));
    put32(b, (uint32_t)strlen(client));
    buf_write(b, peer, strlen(peer));
    buf_write(b, client, strlen(client));
}

/* Snapshots of version 1 (before the member table) still restore; member records are
 * checked as strictly as the others. */
static void test_snapshot_versions(void)
{
    struct h h;
    h_open(&h, false, 0);
    h.now = 10;
    CHECK(r_ok(h_run(&h, MSET_(1, "a:1", "a:2"))));
    struct buf v1 = {0}, v2 = {0}, mine;
    snap_header(&v1, 1, 40, 500);
    buf_write(&v1, "\1", 1);
    put64(&v1, 0);
    put32(&v1, 1);
    put32(&v1, 2);
    buf_write(&v1, "kvv", 3);
    snap_end(&v1, 1, 0, -1);
    CHECK(h_restore(&h, &v1, 5) == CRAFT_OK);
    CHECK(h_get(&h, "k", "vv") && h_members(&h) == 0 && craft_kv_sm_applied(h.sm) == 40);
    /* Written back as version 3. */
    h_snap(&h, &mine);
    snap_header(&v2, 3, 40, 500);
    buf_write(&v2, v1.p + 32, 1 + 16 + 3);
    snap_end(&v2, 1, 0, 0);
    CHECK(buf_eq(&mine, &v2));
    buf_free(&mine);
    buf_free(&v2);

    struct {
        uint32_t version;
        uint64_t ids[2];
        const char *peer;
        int64_t count;
        int want;
    } cases[] = {
        {2, {4, 6}, "p:1", 2, CRAFT_OK},
        {3, {4, 6}, "p:1", 2, CRAFT_OK},
        {1, {4, 6}, "p:1", -1, CRAFT_ECORRUPT}, /* no members in version 1 */
        {2, {6, 4}, "p:1", 2, CRAFT_ECORRUPT},  /* out of order */
        {2, {4, 4}, "p:1", 2, CRAFT_ECORRUPT},  /* repeated */
        {2, {0, 4}, "p:1", 2, CRAFT_ECORRUPT},  /* id 0 */
        {2, {4, 6}, "p 1", 2, CRAFT_ECORRUPT},  /* a bad address */
        {2, {4, 6}, "", 2, CRAFT_ECORRUPT},     /* an empty address */
        {2, {4, 6}, "p:1", 1, CRAFT_ECORRUPT},  /* END's count */
        {4, {4, 6}, "p:1", 2, CRAFT_ECORRUPT},  /* version 4 without its SHARD record */
        {5, {4, 6}, "p:1", 2, CRAFT_EVERSION},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf b = {0};
        snap_header(&b, cases[i].version, 41, 500);
        snap_member(&b, cases[i].ids[0], cases[i].peer, "c:1");
        snap_member(&b, cases[i].ids[1], "p:2", "c:2");
        snap_end(&b, 0, 0, cases[i].count);
        int rc = h_restore(&h, &b, 3);
        CHECK(rc == cases[i].want);
        if (rc == CRAFT_OK) {
            CHECK(h_member(&h, 4, "p:1", "c:1") && h_member(&h, 6, "p:2", "c:2") &&
                  h_get(&h, "k", NULL));
            CHECK(h_restore(&h, &v1, 0) == CRAFT_OK && h_members(&h) == 0);
        } else {
            CHECK(h_get(&h, "k", "vv") && h_members(&h) == 0); /* untouched */
        }
        buf_free(&b);
    }
    /* A member record before a key is out of order too. */
    struct buf b = {0};
    snap_header(&b, 2, 41, 500);
    snap_member(&b, 4, "p:1", "c:1");
    buf_write(&b, v1.p + 32, 1 + 16 + 3);
    snap_end(&b, 1, 0, 1);
    CHECK(h_restore(&h, &b, 0) == CRAFT_ECORRUPT);
    buf_free(&b);
    buf_free(&v1);
    h_close(&h);
}

static void snap_session(struct buf *b, uint64_t id, uint64_t last, uint64_t last_ms,
                         const struct buf *tail)
{
    buf_write(b, "\2", 1);
    put64(b, id);
    put64(b, last);
    put64(b, last_ms);
    put32(b, (uint32_t)tail->len);
    buf_write(b, tail->p, tail->len);
}

/* A window entry: seq, then an INT result (type, u64) or, if blen > 0, a bulk of blen. */
static void win_entry(struct buf *w, uint64_t seq, int64_t v, size_t blen)
{
    put64(w, seq);
    if (blen == 0) {
        put32(w, 9);
        buf_write(w, (uint8_t[]){CRAFT_KV_RES_INT}, 1);
        put64(w, (uint64_t)v);
        return;
    }
    put32(w, (uint32_t)(5 + blen));
    buf_write(w, (uint8_t[]){CRAFT_KV_RES_BULK}, 1);
    put32(w, (uint32_t)blen);
    uint8_t *z = calloc(1, blen);
    buf_write(w, z, blen);
    free(z);
}

/* Version 2 snapshots (one saved result per session) restore as windows of one and are
 * written back as version 3; version 3 windows are checked entry by entry. */
static void test_snapshot_sessions(void)
{
    struct h h;
    h_open(&h, false, 0);
    struct buf v2 = {0}, want = {0}, mine, res = {0}, none = {0}, w = {0};
    /* Session 7: seq 3 answered 42. Session 8: opened, nothing run. */
    buf_write(&res, (uint8_t[]){CRAFT_KV_RES_INT}, 1);
    put64(&res, 42);
    snap_header(&v2, 2, 40, 500);
    snap_session(&v2, 7, 3, 400, &res);
    snap_session(&v2, 8, 0, 450, &none);
    snap_end(&v2, 0, 2, 0);
    CHECK(h_restore(&h, &v2, 7) == CRAFT_OK);
    h_snap(&h, &mine);
    win_entry(&w, 3, 42, 0);
    snap_header(&want, 3, 40, 500);
    snap_session(&want, 7, 3, 400, &w);
    snap_session(&want, 8, 0, 450, &none);
    snap_end(&want, 0, 2, 0);
    CHECK(buf_eq(&mine, &want));
    buf_free(&mine);
    h.now = 500;
    CHECK(r_int(h_run(&h, INA(INCRBY("n", 1), 7, 3, 3)), 42));
    CHECK(r_int(h_run(&h, INA(INCRBY("n", 1), 7, 4, 3)), 1));
    CHECK(r_int(h_run(&h, INA(INCRBY("n", 1), 7, 3, 3)), 42));
    CHECK(r_int(h_run(&h, INA(INCRBY("n", 1), 8, 1, 1)), 2));
    /* The exact snapshot restores as it is. */
    CHECK(h_restore(&h, &want, 3) == CRAFT_OK);
    h_snap(&h, &mine);
    CHECK(buf_eq(&mine, &want));
    buf_free(&mine);
    buf_free(&w);

    /* Bad version 2 records: a seq without a result, a result without a seq, a bad one. */
    struct buf bad_res = {0};
    buf_write(&bad_res, (uint8_t[]){CRAFT_KV_RES_INT}, 1);
    put32(&bad_res, 0);
    struct {
        uint64_t last;
        const struct buf *tail;
    } v2_bad[] = {{3, &none}, {0, &res}, {3, &bad_res}};
    for (size_t i = 0; i < sizeof v2_bad / sizeof v2_bad[0]; i++) {
        struct buf b = {0};
        snap_header(&b, 2, 41, 500);
        snap_session(&b, 7, v2_bad[i].last, 400, v2_bad[i].tail);
        snap_end(&b, 0, 1, 0);
        CHECK(h_restore(&h, &b, 0) == CRAFT_ECORRUPT);
        buf_free(&b);
    }
    buf_free(&bad_res);

    /* Version 3 windows. */
    enum { GOOD_FULL, GOOD_BIG_ALONE, GOOD_AT_CAP, DISORDER, REPEAT, SEQ0, LAST_OFF, TOO_MANY,
           OVER_BYTES, TRUNC_ENTRY, BAD_RESULT, EMPTY_WITH_LAST, CASES };
    for (int c = 0; c < CASES; c++) {
        struct buf t = {0};
        uint64_t last = 0;
        size_t cap = CRAFT_KV_SESSION_RESULT_BYTES_MAX;
        switch (c) {
        case GOOD_FULL:
        case TOO_MANY: {
            size_t n = CRAFT_KV_SESSION_RESULTS_MAX + (c == TOO_MANY);
            for (size_t i = 1; i <= n; i++) {
                win_entry(&t, 10 + i, (int64_t)i, 0);
            }
            last = 10 + n;
            break;
        }
        case GOOD_BIG_ALONE:
            win_entry(&t, 9, 0, CRAFT_KV_VALUE_BYTES_MAX);
            last = 9;
            break;
        case GOOD_AT_CAP:
        case OVER_BYTES:
            /* Two bulks whose encodings add up to the cap (plus one). */
            win_entry(&t, 4, 0, cap / 2 - 5);
            win_entry(&t, 5, 0, cap / 2 - 5 + (c == OVER_BYTES));
            last = 5;
            break;
        case DISORDER:
            win_entry(&t, 5, 1, 0);
            win_entry(&t, 4, 1, 0);
            last = 4;
            break;
        case REPEAT:
            win_entry(&t, 4, 1, 0);
            win_entry(&t, 4, 1, 0);
            last = 4;
            break;
        case SEQ0:
            win_entry(&t, 0, 1, 0);
            last = 0;
            break;
        case LAST_OFF:
            win_entry(&t, 4, 1, 0);
            last = 5;
            break;
        case TRUNC_ENTRY:
            win_entry(&t, 4, 1, 0);
            t.len -= 1;
            last = 4;
            break;
        case BAD_RESULT:
            put64(&t, 4);
            put32(&t, 2);
            buf_write(&t, (uint8_t[]){CRAFT_KV_RES_OK, 0}, 2);
            last = 4;
            break;
        case EMPTY_WITH_LAST:
            last = 4;
            break;
        }
        struct buf b = {0};
        snap_header(&b, 3, 41, 500);
        snap_session(&b, 7, last, 400, &t);
        snap_end(&b, 0, 1, 0);
        int rc = h_restore(&h, &b, 4096);
        bool good = c == GOOD_FULL || c == GOOD_BIG_ALONE || c == GOOD_AT_CAP;
        CHECK(rc == (good ? CRAFT_OK : CRAFT_ECORRUPT));
        if (!good && rc != CRAFT_ECORRUPT) {
            printf("  window case %d\n", c);
        }
        if (good) {
            h_snap(&h, &mine);
            CHECK(buf_eq(&mine, &b));
            buf_free(&mine);
        }
        buf_free(&b);
        buf_free(&t);
    }
    buf_free(&v2);
    buf_free(&want);
    buf_free(&res);
    h_close(&h);
}

/* A store of format 1 (one saved result per session record) is converted when a state
 * machine opens it: the same sessions, the same retries answered. */
static void upgrade_v1(bool lmdb)
{
    struct h h;
    h_open(&h, lmdb, 0);
    h.now = 100;
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 1, 0))));
    CHECK(r_ok(h_run(&h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 2, 0))));
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 5), 1, 3)), 5));
    struct buf before, after;
    h_snap(&h, &before);
    /* Rewrite it as format 1 had it. */
    const struct craft_kv_store_ops *o = h.st->ops;
    struct craft_kv_txn *t;
    CRAFT_ASSERT(o->begin(h.st, true, &t) == CRAFT_OK);
    uint8_t id[8] = {0}, rec[16 + 9], one[8] = {1};
    le64(rec, 3);
    le64(rec + 8, 100);
    rec[16] = CRAFT_KV_RES_INT;
    le64(rec + 17, 5);
    id[7] = 1;
    CHECK(o->put(t, CRAFT_KV_TABLE_SESSIONS, id, 8, rec, sizeof rec) == CRAFT_OK);
    id[7] = 2;
    le64(rec, 0);
    CHECK(o->put(t, CRAFT_KV_TABLE_SESSIONS, id, 8, rec, 16) == CRAFT_OK);
    CHECK(o->put(t, CRAFT_KV_TABLE_META, (const uint8_t *)"format", 6, one, 8) == CRAFT_OK);
    CHECK(o->commit(t) == CRAFT_OK);
    if (lmdb) {
        h_reopen(&h);
    } else {
        craft_kv_sm_close(h.sm);
        CHECK(craft_kv_sm_open(h.st, NULL, &h.sm) == CRAFT_OK);
    }
    h_snap(&h, &after);
    CHECK(buf_eq(&before, &after));
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 5), 1, 3)), 5));
    CHECK(r_int(h_run(&h, IN(INCRBY("n", 5), 2, 1)), 10));
    buf_free(&after);
    /* A bad format 1 record (a seq without a result) is refused, and so is format 4 (one
     * after this build's). */
    CRAFT_ASSERT(o->begin(h.st, true, &t) == CRAFT_OK);
    le64(rec, 4);
    CHECK(o->put(t, CRAFT_KV_TABLE_SESSIONS, id, 8, rec, 16) == CRAFT_OK);
    CHECK(o->put(t, CRAFT_KV_TABLE_META, (const uint8_t *)"format", 6, one, 8) == CRAFT_OK);
    CHECK(o->commit(t) == CRAFT_OK);
    struct craft_kv_sm *sm = NULL;
    CHECK(craft_kv_sm_open(h.st, NULL, &sm) == CRAFT_ECORRUPT);
    CRAFT_ASSERT(o->begin(h.st, true, &t) == CRAFT_OK);
    uint8_t four[8] = {4};
    CHECK(o->put(t, CRAFT_KV_TABLE_META, (const uint8_t *)"format", 6, four, 8) == CRAFT_OK);
    CHECK(o->commit(t) == CRAFT_OK);
    CHECK(craft_kv_sm_open(h.st, NULL, &sm) == CRAFT_EVERSION);
    buf_free(&before);
    h_close(&h);
}

static void test_upgrade_v1_mem(void)
{
    upgrade_v1(false);
}

static void test_upgrade_v1_lmdb(void)
{
    upgrade_v1(true);
}

/* ---- a random workload ---- */

struct cmdlist {
    uint8_t **data;
    size_t *len;
    size_t n;
};

static void cmdlist_free(struct cmdlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->data[i]);
    }
    free(l->data);
    free(l->len);
}

/* n commands over a small key space: every op, sessions with retries and stale requests,
 * time moving mostly forward (sometimes back), expiries near now, junk commands. */
static void gen_workload(uint64_t seed, size_t n, struct cmdlist *out)
{
    struct craft_prng p;
    craft_prng_seed(&p, seed);
    out->data = calloc(n, sizeof *out->data);
    out->len = calloc(n, sizeof *out->len);
    out->n = n;
    uint64_t now = 1000, seq[5] = {0};
    char kbuf[8][8], vbuf[8][24];
    struct craft_kv_bytes ks[8], vs[8];
    for (size_t i = 0; i < n; i++) {
        if (craft_prng_chance(&p, 30)) {
            size_t len = (size_t)craft_prng_range(&p, 0, 40);
            out->data[i] = malloc(len + 1);
            for (size_t j = 0; j < len; j++) {
                out->data[i][j] = (uint8_t)craft_prng_next(&p);
            }
            if (len > 0 && craft_prng_chance(&p, 500)) {
                out->data[i][0] = 1; /* the right version, so deeper refusals */
            }
            out->len[i] = len;
            continue;
        }
        now += craft_prng_range(&p, 0, 120);
        if (craft_prng_chance(&p, 50) && now > 600) {
            now -= craft_prng_range(&p, 0, 600);
        }
        for (int j = 0; j < 8; j++) {
            snprintf(kbuf[j], sizeof kbuf[j], "k%u", (unsigned)craft_prng_range(&p, 0, 24));
            ks[j] = B(kbuf[j]);
            if (craft_prng_chance(&p, 500)) {
                snprintf(vbuf[j], sizeof vbuf[j], "%lld",
                         (long long)craft_prng_range(&p, 0, 2000) - 1000);
            } else {
                snprintf(vbuf[j], sizeof vbuf[j], "v%u", (unsigned)craft_prng_range(&p, 0, 1000));
            }
            vs[j] = B(vbuf[j]);
        }
        struct craft_kv_cmd c = {.now_ms = now, .key = ks[0], .value = vs[0]};
        uint64_t at = now + craft_prng_range(&p, 0, 1500) - 100;
        /* Collection ops' arguments: fields f0..f5 and the values above (numbers, some). */
        char fbuf[8][8], seed8[8];
        struct craft_kv_bytes args[9];
        for (int j = 0; j < 8; j++) {
            snprintf(fbuf[j], sizeof fbuf[j], "f%u", (unsigned)craft_prng_range(&p, 0, 6));
            args[j] = (j % 2 == 0) ? B(fbuf[j]) : vs[j];
        }
        uint64_t sv = craft_prng_next(&p);
        memcpy(seed8, &sv, 8);
        switch (craft_prng_range(&p, 0, 29)) {
        case 27:
        case 28: {
            /* The ops of two keys, and the string ops of the same shape. */
            static const uint8_t ops[] = {
                CRAFT_KV_OP_RENAME,      CRAFT_KV_OP_RENAMENX,    CRAFT_KV_OP_LMOVE,
                CRAFT_KV_OP_SMOVE,       CRAFT_KV_OP_SUNIONSTORE, CRAFT_KV_OP_SINTERSTORE,
                CRAFT_KV_OP_INCRBYFLOAT, CRAFT_KV_OP_LINSERT,     CRAFT_KV_OP_SETRANGE,
                CRAFT_KV_OP_GETEX,       CRAFT_KV_OP_HINCRBYFLOAT};
            c.op = ops[craft_prng_range(&p, 0, sizeof ops)];
            c.args = args;
            args[0] = ks[1];
            switch (c.op) {
            case CRAFT_KV_OP_LMOVE:
                c.n = 3;
                args[1] = B(craft_prng_chance(&p, 500) ? "LEFT" : "RIGHT");
                args[2] = B(craft_prng_chance(&p, 500) ? "LEFT" : "RIGHT");
                break;
            case CRAFT_KV_OP_SMOVE:
                c.n = 2;
                args[1] = B(fbuf[0]);
                break;
            case CRAFT_KV_OP_SUNIONSTORE:
            case CRAFT_KV_OP_SINTERSTORE:
                c.n = 2;
                args[1] = ks[2];
                break;
            case CRAFT_KV_OP_INCRBYFLOAT:
                c.n = 1;
                args[0] = B(craft_prng_chance(&p, 500) ? "1.5" : "-0.25");
                break;
            case CRAFT_KV_OP_HINCRBYFLOAT:
                c.n = 2;
                args[0] = B(fbuf[0]);
                args[1] = B("0.5");
                break;
            case CRAFT_KV_OP_LINSERT:
                c.n = 3;
                args[0] = B(craft_prng_chance(&p, 500) ? "BEFORE" : "AFTER");
                args[1] = B(fbuf[1]);
                args[2] = B(fbuf[2]);
                break;
            case CRAFT_KV_OP_SETRANGE:
                c.n = 2;
                args[0] = B(craft_prng_chance(&p, 500) ? "0" : "3");
                args[1] = vs[1];
                break;
            case CRAFT_KV_OP_GETEX:
                c.n = craft_prng_chance(&p, 500) ? 0 : 2;
                args[0] = B("PXAT");
                snprintf(fbuf[7], sizeof fbuf[7], "%u", (unsigned)(at % 10000000));
                args[1] = B(fbuf[7]);
                break;
            default:
                c.n = 1;
                break;
            }
            break;
        }
        case 22:
        case 23: {
            static const uint8_t ops[] = {CRAFT_KV_OP_LPUSH, CRAFT_KV_OP_RPUSH, CRAFT_KV_OP_LPOP,
                                          CRAFT_KV_OP_RPOP,  CRAFT_KV_OP_LSET,  CRAFT_KV_OP_LREM,
                                          CRAFT_KV_OP_LTRIM, CRAFT_KV_OP_RPUSHX};
            static const char *const idx[] = {"0", "1", "-1", "2", "-3", "5"};
            c.op = ops[craft_prng_range(&p, 0, sizeof ops)];
            c.args = args;
            for (int j = 0; j < 8; j++) {
                args[j] = B(fbuf[j]);
            }
            switch (c.op) {
            case CRAFT_KV_OP_LPOP:
            case CRAFT_KV_OP_RPOP:
                c.n = craft_prng_chance(&p, 500) ? 0 : 1;
                args[0] = B(idx[craft_prng_range(&p, 0, 2)]);
                break;
            case CRAFT_KV_OP_LSET:
            case CRAFT_KV_OP_LREM:
                c.n = 2;
                args[0] = B(idx[craft_prng_range(&p, 0, 6)]);
                break;
            case CRAFT_KV_OP_LTRIM:
                c.n = 2;
                args[0] = B(idx[craft_prng_range(&p, 0, 6)]);
                args[1] = B(idx[craft_prng_range(&p, 0, 6)]);
                break;
            default:
                c.n = (uint32_t)craft_prng_range(&p, 1, 5);
                break;
            }
            break;
        }
        case 24:
        case 25:
        case 26: {
            static const uint8_t ops[] = {CRAFT_KV_OP_ZADD,    CRAFT_KV_OP_ZADD,
                                          CRAFT_KV_OP_ZINCRBY, CRAFT_KV_OP_ZREM,
                                          CRAFT_KV_OP_ZPOPMIN, CRAFT_KV_OP_ZPOPMAX};
            static const char *const scores[] = {"1", "-2.5", "0", "inf", "3", "1e3"};
            static const char *const flags[] = {"NX", "XX", "GT", "LT", "CH", "INCR"};
            c.op = ops[craft_prng_range(&p, 0, sizeof ops)];
            c.args = args;
            if (c.op == CRAFT_KV_OP_ZADD) {
                uint32_t na = 0;
                if (craft_prng_chance(&p, 300)) {
                    args[na++] = B(flags[craft_prng_range(&p, 0, 6)]);
                }
                uint32_t pairs =
                    na > 0 && args[0].p[0] == 'I' ? 1 : (uint32_t)craft_prng_range(&p, 1, 4);
                for (uint32_t j = 0; j < pairs; j++) {
                    args[na++] = B(scores[craft_prng_range(&p, 0, 6)]);
                    args[na++] = B(fbuf[j]);
                }
                c.n = na;
            } else if (c.op == CRAFT_KV_OP_ZINCRBY) {
                c.n = 2;
                args[0] = B(scores[craft_prng_range(&p, 0, 6)]);
                args[1] = B(fbuf[1]);
            } else if (c.op == CRAFT_KV_OP_ZREM) {
                c.n = (uint32_t)craft_prng_range(&p, 1, 4);
                for (int j = 0; j < 8; j++) {
                    args[j] = B(fbuf[j]);
                }
            } else {
                c.n = craft_prng_chance(&p, 500) ? 0 : 1;
                args[0] = B(craft_prng_chance(&p, 500) ? "1" : "3");
            }
            break;
        }
        case 16:
        case 17: {
            static const uint8_t ops[] = {CRAFT_KV_OP_HSET, CRAFT_KV_OP_HMSET, CRAFT_KV_OP_HSETNX,
                                          CRAFT_KV_OP_HINCRBY, CRAFT_KV_OP_HDEL};
            c.op = ops[craft_prng_range(&p, 0, sizeof ops)];
            c.n = c.op == CRAFT_KV_OP_HSETNX || c.op == CRAFT_KV_OP_HINCRBY
                      ? 2
                      : (uint32_t)(2 * craft_prng_range(&p, 1, 4));
            c.args = args;
            if (c.op == CRAFT_KV_OP_HINCRBY) {
                args[1] = B("3"); /* a number; the field's value may not be */
            }
            break;
        }
        case 18:
        case 19:
        case 20: {
            static const uint8_t ops[] = {CRAFT_KV_OP_SADD, CRAFT_KV_OP_SADD, CRAFT_KV_OP_SREM,
                                          CRAFT_KV_OP_SPOP};
            c.op = ops[craft_prng_range(&p, 0, sizeof ops)];
            for (int j = 0; j < 8; j++) {
                args[j] = B(fbuf[j]);
            }
            c.n = (uint32_t)craft_prng_range(&p, 1, 6);
            c.args = args;
            if (c.op == CRAFT_KV_OP_SPOP) {
                c.n = craft_prng_chance(&p, 500) ? 1 : 2;
                args[0] = B(craft_prng_chance(&p, 500) ? "2" : "1");
                args[c.n - 1] = (struct craft_kv_bytes){(const uint8_t *)seed8, 8};
            }
            break;
        }
        case 0:
        case 1: {
            static const uint8_t flags[] = {
                0,
                CRAFT_KV_SET_NX,
                CRAFT_KV_SET_XX,
                CRAFT_KV_SET_GET,
                CRAFT_KV_SET_KEEPTTL,
                CRAFT_KV_SET_EXPIRE,
                CRAFT_KV_SET_EXPIRE | CRAFT_KV_SET_NX | CRAFT_KV_SET_GET,
                CRAFT_KV_SET_XX | CRAFT_KV_SET_KEEPTTL | CRAFT_KV_SET_GET};
            c.op = CRAFT_KV_OP_SET;
            c.flags = flags[craft_prng_range(&p, 0, sizeof flags)];
            c.expire_at = (c.flags & CRAFT_KV_SET_EXPIRE) ? at : 0;
            break;
        }
        case 2:
            c.op = CRAFT_KV_OP_SETNX;
            break;
        case 3:
            c.op = CRAFT_KV_OP_GETSET;
            break;
        case 4:
            c.op = CRAFT_KV_OP_GETDEL;
            break;
        case 5:
            c.op = CRAFT_KV_OP_DEL;
            c.n = (uint32_t)craft_prng_range(&p, 1, 4);
            c.keys = ks;
            break;
        case 6:
            c.op = CRAFT_KV_OP_APPEND;
            break;
        case 7:
        case 8:
            c.op = CRAFT_KV_OP_INCRBY;
            c.delta = (int64_t)craft_prng_range(&p, 0, 20) - 10;
            if (craft_prng_chance(&p, 20)) {
                c.delta = craft_prng_chance(&p, 500) ? INT64_MAX : INT64_MIN;
            }
            break;
        case 9:
            c.op = craft_prng_chance(&p, 500) ? CRAFT_KV_OP_MSET : CRAFT_KV_OP_MSETNX;
            c.n = (uint32_t)craft_prng_range(&p, 1, 5);
            c.keys = ks;
            c.values = vs;
            break;
        case 10:
        case 11: {
            static const uint8_t flags[] = {0,
                                            CRAFT_KV_EXPIRE_NX,
                                            CRAFT_KV_EXPIRE_XX,
                                            CRAFT_KV_EXPIRE_GT,
                                            CRAFT_KV_EXPIRE_LT,
                                            CRAFT_KV_EXPIRE_XX | CRAFT_KV_EXPIRE_LT};
            c.op = CRAFT_KV_OP_EXPIRE;
            c.flags = flags[craft_prng_range(&p, 0, sizeof flags)];
            c.expire_at = craft_prng_chance(&p, 30) ? 0 : at;
            break;
        }
        case 12:
            c.op = CRAFT_KV_OP_PERSIST;
            break;
        case 13:
            c.op = craft_prng_chance(&p, 50) ? CRAFT_KV_OP_FLUSHALL : CRAFT_KV_OP_NOOP;
            break;
        case 14:
            c.op =
                craft_prng_chance(&p, 700) ? CRAFT_KV_OP_SESSION_OPEN : CRAFT_KV_OP_SESSION_CLOSE;
            break;
        default:
            c.op = CRAFT_KV_OP_NOOP;
            if (craft_prng_chance(&p, 300)) {
                c.op = craft_prng_chance(&p, 600) ? CRAFT_KV_OP_MEMBER_SET
                                                  : CRAFT_KV_OP_MEMBER_DEL;
                c.member_id = craft_prng_range(&p, 1, 6);
                c.peer_addr = B(kbuf[1]);
                c.client_addr = B(vbuf[1][0] == '-' ? "neg:1" : vbuf[1]);
            }
            break;
        }
        if (c.op == CRAFT_KV_OP_SESSION_OPEN || c.op == CRAFT_KV_OP_SESSION_CLOSE) {
            c.session = craft_prng_range(&p, 1, 5);
        } else if (c.op != CRAFT_KV_OP_NOOP && craft_prng_chance(&p, 600)) {
            c.session = craft_prng_range(&p, 1, 5);
            uint64_t r = craft_prng_range(&p, 0, 100);
            uint64_t *s = &seq[c.session];
            if (r < 70 || *s == 0) {
                c.seq = ++*s;
            } else if (r < 90) {
                c.seq = *s; /* retry */
            } else {
                /* An older one: answered from the window, or stale. */
                uint64_t back = craft_prng_range(&p, 1, 4);
                c.seq = *s > back ? *s - back : 1;
            }
            /* Half of them carry an ack a few seqs back (the others 0: keep one). */
            if (craft_prng_chance(&p, 500)) {
                uint64_t back = craft_prng_range(&p, 0, 4);
                c.ack = c.seq > back ? c.seq - back : 1;
            }
        }
        size_t size = craft_kv_cmd_size(&c);
        CRAFT_ASSERT(size > 0);
        out->data[i] = malloc(size);
        CRAFT_ASSERT(craft_kv_cmd_encode(&c, out->data[i], size, &out->len[i]) == CRAFT_OK);
    }
}

static bool result_eq(const struct craft_kv_result *a, const struct craft_kv_result *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    return a->type == b->type && a->integer == b->integer && a->len == b->len &&
           memcmp(a->data, b->data, a->len) == 0;
}

/* Applies l->data[from..to) (indexes from+1..to) in batches of 1..max_batch. results may
 * be NULL; else results[i] receives command i's result. */
static void apply_range(struct h *h, const struct cmdlist *l, size_t from, size_t to,
                        size_t max_batch, struct craft_prng *p, struct craft_kv_result **results)
{
    struct craft_command cmds[64];
    void *res[64];
    CRAFT_ASSERT(max_batch <= 64);
    size_t i = from;
    while (i < to) {
        size_t n = max_batch <= 1 ? 1 : (size_t)craft_prng_range(p, 1, max_batch + 1);
        if (n > to - i) {
            n = to - i;
        }
        for (size_t j = 0; j < n; j++) {
            cmds[j] = (struct craft_command){
                .index = i + j + 1, .data = l->data[i + j], .len = (uint32_t)l->len[i + j]};
        }
        CHECK(craft_kv_sm_apply_batch(h->sm, cmds, n, res) == CRAFT_OK);
        for (size_t j = 0; j < n; j++) {
            if (results != NULL) {
                results[i + j] = res[j];
            } else {
                craft_kv_result_free(res[j]);
            }
        }
        i += n;
    }
    h->index = to;
}

/* The same commands give the same results and the same state (snapshot bytes) on both
 * stores, whatever the batching, and however many sessions a batch holds in memory before
 * it writes them (seeds 2 and 3: one and three, so the held ones are written mid-batch). */
static void test_determinism(void)
{
    enum { N = 3000 };
    for (uint64_t seed = 1; seed <= 3; seed++) {
        cur_seed = seed;
        struct cmdlist l;
        gen_workload(seed, N, &l);
        struct h a, b;
        h_open(&a, false, 700);
        h_open(&b, true, 700);
        b.sessions_max = seed == 1 ? 0 : seed == 2 ? 1 : 3;
        h_reopen(&b);
        struct craft_kv_result **ra = calloc(N, sizeof *ra), **rb = calloc(N, sizeof *rb);
        struct craft_prng p;
        craft_prng_seed(&p, seed * 77);
        size_t session_bytes = 0;
        for (size_t at = 0; at < N; at += N / 3) {
            apply_range(&a, &l, at, at + N / 3, 1, &p, ra);
            apply_range(&b, &l, at, at + N / 3, 40, &p, rb);
            struct buf sa, sb;
            h_snap(&a, &sa);
            h_snap(&b, &sb);
            CHECK(buf_eq(&sa, &sb));
            CHECK(h_dbsize(&a) == h_dbsize(&b));
            buf_free(&sa);
            buf_free(&sb);
            /* The session tables themselves, byte for byte (windows included). */
            h_dump(&a, CRAFT_KV_TABLE_SESSIONS, &sa);
            h_dump(&b, CRAFT_KV_TABLE_SESSIONS, &sb);
            CHECK(buf_eq(&sa, &sb));
            session_bytes += sa.len;
            buf_free(&sa);
            buf_free(&sb);
            h_dump(&a, CRAFT_KV_TABLE_IDLE, &sa);
            h_dump(&b, CRAFT_KV_TABLE_IDLE, &sb);
            CHECK(buf_eq(&sa, &sb));
            buf_free(&sa);
            buf_free(&sb);
        }
        size_t mismatches = 0, errors = 0, ints = 0, bulks = 0, stale = 0;
        for (size_t i = 0; i < N; i++) {
            mismatches += !result_eq(ra[i], rb[i]);
            stale += ra[i]->type == CRAFT_KV_RES_ERR &&
                     strcmp((const char *)ra[i]->data, CRAFT_KV_ERR_STALE) == 0;
            errors += ra[i]->type == CRAFT_KV_RES_ERR;
            ints += ra[i]->type == CRAFT_KV_RES_INT;
            bulks += ra[i]->type == CRAFT_KV_RES_BULK;
            craft_kv_result_free(ra[i]);
            craft_kv_result_free(rb[i]);
        }
        CHECK(mismatches == 0);
        CHECK(errors > 50 && ints > 200 && bulks > 50); /* the workload is not trivial */
        CHECK(stale > 0 && session_bytes > 0);
        free(ra);
        free(rb);
        h_close(&a);
        h_close(&b);
        cmdlist_free(&l);
    }
}

/* ---- snapshots ---- */

static void fill_some(struct h *h)
{
    h->now = 5000;
    CHECK(r_ok(h_run(h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 11, 0))));
    CHECK(r_ok(h_run(h, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 12, 0))));
    for (int i = 0; i < 300; i++) {
        char k[16], v[32];
        snprintf(k, sizeof k, "key%d", i);
        snprintf(v, sizeof v, "value-%d", i * 7);
        CHECK(r_ok(h_run(h, SET(k, v, i % 4 == 0 ? CRAFT_KV_SET_EXPIRE : 0, 6000 + i))));
    }
    CHECK(r_int(h_run(h, IN(INCRBY("ctr", 5), 11, 1)), 5));
    CHECK(r_bulk(h_run(h, IN(K(CRAFT_KV_OP_GETDEL, "key1"), 12, 1)), "value-7"));
    char *big = malloc(300000);
    memset(big, 'b', 299999);
    big[299999] = '\0';
    CHECK(r_ok(h_run(h, SET("big", big, 0, 0))));
    free(big);
    CHECK(r_ok(h_run(h, MSET_(3, "10.0.0.3:7101", "10.0.0.3:7001"))));
    CHECK(r_ok(h_run(h, MSET_(1, "10.0.0.1:7101", "10.0.0.1:7001"))));
    h->now = 6010; /* key0..key8 with expiry are past now: left out of snapshots */
    CHECK(r_ok(h_run(h, OP(CRAFT_KV_OP_NOOP))));
}

static void snapshot_roundtrip(bool from_lmdb, bool to_lmdb)
{
    struct h a, b;
    h_open(&a, from_lmdb, 0);
    h_open(&b, to_lmdb, 0);
    fill_some(&a);
    CHECK(r_ok(h_run(&b, SET("other", "state", 0, 0)))); /* replaced by the restore */
    struct buf s1, s2;
    h_snap(&a, &s1);
    CHECK(h_restore(&b, &s1, 1000) == CRAFT_OK);
    CHECK(craft_kv_sm_applied(b.sm) == craft_kv_sm_applied(a.sm));
    CHECK(craft_kv_sm_now(b.sm) == craft_kv_sm_now(a.sm));
    h_snap(&b, &s2);
    CHECK(buf_eq(&s1, &s2));
    CHECK(h_get(&b, "other", NULL) && h_get(&b, "key2", "value-14") && h_get(&b, "key0", NULL));
    CHECK(h_dbsize(&b) == h_dbsize(&a) && h_pttl(&b, "key12") == h_pttl(&a, "key12"));
    CHECK(h_members(&b) == 2 && h_member(&b, 3, "10.0.0.3:7101", "10.0.0.3:7001") &&
          h_member(&b, 2, NULL, NULL));
    /* Sessions travel: a retry after the restore gets the saved result. */
    b.now = 7000;
    CHECK(r_int(h_run(&b, IN(INCRBY("ctr", 5), 11, 1)), 5));
    CHECK(r_bulk(h_run(&b, IN(K(CRAFT_KV_OP_GETDEL, "key1"), 12, 1)), "value-7"));
    CHECK(r_int(h_run(&b, IN(INCRBY("ctr", 5), 11, 2)), 10));
    if (to_lmdb) {
        h_reopen(&b); /* the restore is durable */
        CHECK(h_get(&b, "ctr", "10") && h_get(&b, "key2", "value-14"));
        CHECK(h_member(&b, 1, "10.0.0.1:7101", "10.0.0.1:7001"));
    }
    buf_free(&s1);
    buf_free(&s2);
    h_close(&a);
    h_close(&b);
}

static void test_snapshot_mem_mem(void)
{
    snapshot_roundtrip(false, false);
}
static void test_snapshot_lmdb_lmdb(void)
{
    snapshot_roundtrip(true, true);
}
static void test_snapshot_mem_lmdb(void)
{
    snapshot_roundtrip(false, true);
}
static void test_snapshot_lmdb_mem(void)
{
    snapshot_roundtrip(true, false);
}

struct writer_job {
    struct craft_kv_snap *snap;
    struct buf out;
    int rc;
};

static void *writer_main(void *arg)
{
    struct writer_job *j = arg;
    j->rc = craft_kv_snap_write(j->snap, buf_write, &j->out);
    craft_kv_snap_release(j->snap);
    return NULL;
}

/* A captured snapshot is the state at capture, written on another thread while apply goes
 * on (and overwrites, deletes and flushes everything). */
static void snapshot_during_apply(bool lmdb)
{
    struct h h;
    h_open(&h, lmdb, 0);
    fill_some(&h);
    struct buf before;
    h_snap(&h, &before);
    struct writer_job j = {.rc = -1};
    CHECK(craft_kv_sm_snapshot(h.sm, &j.snap) == CRAFT_OK);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, writer_main, &j) == 0);
    for (int i = 0; i < 200; i++) {
        char k[16];
        snprintf(k, sizeof k, "key%d", i);
        CHECK(r_ok(h_run(&h, SET(k, "new", 0, 0))));
        if (i % 50 == 0) {
            CHECK(r_ok(h_run(&h, OP(CRAFT_KV_OP_FLUSHALL))));
        }
    }
    pthread_join(th, NULL);
    CHECK(j.rc == CRAFT_OK && buf_eq(&before, &j.out));
    buf_free(&before);
    buf_free(&j.out);
    h_close(&h);
}

static void test_snapshot_during_apply_mem(void)
{
    snapshot_during_apply(false);
}
static void test_snapshot_during_apply_lmdb(void)
{
    snapshot_during_apply(true);
}

/* A corrupt snapshot (any flipped byte, a truncation, extra bytes) is refused and the old
 * state stays, whole. */
static void corrupt_refused(bool lmdb)
{
    struct h src, dst;
    h_open(&src, false, 0);
    h_open(&dst, lmdb, 0);
    src.now = 100;
    for (int i = 0; i < 40; i++) {
        char k[16];
        snprintf(k, sizeof k, "s%d", i);
        CHECK(r_ok(h_run(&src, SET(k, "payload", i % 3 ? CRAFT_KV_SET_EXPIRE : 0, 900 + i))));
    }
    CHECK(r_ok(h_run(&src, IN(OP(CRAFT_KV_OP_SESSION_OPEN), 4, 0))));
    CHECK(r_int(h_run(&src, IN(INCRBY("c", 2), 4, 1)), 2));
    CHECK(r_ok(h_run(&src, MSET_(2, "p:2", "c:2"))));
    CHECK(r_ok(h_run(&src, MSET_(9, "p:9", "c:9"))));
    fill_some(&dst);
    struct buf good, old, now;
    h_snap(&src, &good);
    h_snap(&dst, &old);
    uint64_t applied = craft_kv_sm_applied(dst.sm);
    struct craft_prng p;
    craft_prng_seed(&p, 5);
    size_t refused = 0, tries = 0;
    /* Every byte of the header and of the end, a sample in between. */
    for (size_t pos = 0; pos < good.len; pos++) {
        if (pos > 40 && pos + 40 < good.len && !craft_prng_chance(&p, 60)) {
            continue;
        }
        uint8_t saved = good.p[pos];
        good.p[pos] ^= (uint8_t)craft_prng_range(&p, 1, 256);
        int rc = h_restore(&dst, &good, 0);
        good.p[pos] = saved;
        tries++;
        refused += rc == CRAFT_ECORRUPT || (rc == CRAFT_EVERSION && pos >= 8 && pos < 12);
    }
    CHECK(refused == tries && tries > 60);
    for (size_t cut = 0; cut < good.len; cut += 1 + good.len / 50) {
        struct buf t = {.p = good.p, .len = cut};
        CHECK(h_restore(&dst, &t, 0) == CRAFT_ECORRUPT);
    }
    struct buf longer = {0};
    buf_write(&longer, good.p, good.len);
    buf_write(&longer, "x", 1);
    CHECK(h_restore(&dst, &longer, 0) == CRAFT_ECORRUPT);
    buf_free(&longer);
    h_snap(&dst, &now);
    CHECK(buf_eq(&old, &now) && craft_kv_sm_applied(dst.sm) == applied);
    buf_free(&now);
    if (lmdb) {
        h_reopen(&dst);
        h_snap(&dst, &now);
        CHECK(buf_eq(&old, &now));
        buf_free(&now);
    }
    /* And the good one still restores. */
    CHECK(h_restore(&dst, &good, 7) == CRAFT_OK);
    h_snap(&dst, &now);
    CHECK(buf_eq(&good, &now));
    buf_free(&now);
    buf_free(&good);
    buf_free(&old);
    h_close(&src);
    h_close(&dst);
}

static void test_corrupt_snapshot_mem(void)
{
    corrupt_refused(false);
}
static void test_corrupt_snapshot_lmdb(void)
{
    corrupt_refused(true);
}

/* ---- crash consistency ---- */

/* A store that fails its Nth write operation (put, del, drop or commit) and passes the
 * rest to an inner store: the SQLite-style anomaly test of apply's rollback. */
struct failing {
    struct craft_kv_store base;
    struct craft_kv_store *inner;
    long countdown; /* fails when it reaches 0; negative: never */
    long ops;
};

static struct failing *failing_of;

static bool fail_now(void)
{
    failing_of->ops++;
    return failing_of->countdown >= 0 && failing_of->countdown-- == 0;
}

static int f_begin(struct craft_kv_store *s, bool w, struct craft_kv_txn **out)
{
    (void)s; /* the inner store's transactions pass through */
    return failing_of->inner->ops->begin(failing_of->inner, w, out);
}

static int f_get(struct craft_kv_txn *t, int table, const uint8_t *k, size_t kl, const uint8_t **v,
                 size_t *vl)
{
    return failing_of->inner->ops->get(t, table, k, kl, v, vl);
}

static int f_put(struct craft_kv_txn *t, int table, const uint8_t *k, size_t kl, const uint8_t *v,
                 size_t vl)
{
    return fail_now() ? CRAFT_EIO : failing_of->inner->ops->put(t, table, k, kl, v, vl);
}

static int f_del(struct craft_kv_txn *t, int table, const uint8_t *k, size_t kl)
{
    return fail_now() ? CRAFT_EIO : failing_of->inner->ops->del(t, table, k, kl);
}

static int f_drop(struct craft_kv_txn *t, int table)
{
    return fail_now() ? CRAFT_ENOSPACE : failing_of->inner->ops->drop(t, table);
}

static int f_iter(struct craft_kv_txn *t, int table, const uint8_t *from, size_t fl,
                  craft_kv_iter_fn fn, void *ctx)
{
    return failing_of->inner->ops->iter(t, table, from, fl, fn, ctx);
}

static int f_commit(struct craft_kv_txn *t)
{
    if (fail_now()) {
        failing_of->inner->ops->abort(t);
        return CRAFT_EIO;
    }
    return failing_of->inner->ops->commit(t);
}

static void f_abort(struct craft_kv_txn *t)
{
    failing_of->inner->ops->abort(t);
}

static void f_close(struct craft_kv_store *s)
{
    (void)s;
}

static const struct craft_kv_store_ops failing_ops = {.begin = f_begin,
                                                      .get = f_get,
                                                      .put = f_put,
                                                      .del = f_del,
                                                      .drop = f_drop,
                                                      .iter = f_iter,
                                                      .commit = f_commit,
                                                      .abort = f_abort,
                                                      .close = f_close};

/* Fail the Nth write of a batch, for every N: the batch has no effect at all (results
 * NULL, same state, same applied index), then the same batch goes through. */
static void injected_failures(bool lmdb)
{
    struct h h;
    h_open(&h, lmdb, 0);
    struct cmdlist l;
    gen_workload(9, 600, &l);
    struct craft_prng p;
    craft_prng_seed(&p, 9);
    apply_range(&h, &l, 0, 400, 10, &p, NULL);
    struct failing f = {.base.ops = &failing_ops, .inner = h.st, .countdown = -1};
    failing_of = &f;
    struct craft_kv_sm *fsm;
    CHECK(craft_kv_sm_open(&f.base, &(struct craft_kv_sm_config){0}, &fsm) == CRAFT_OK);
    struct craft_kv_sm *plain = h.sm;
    h.sm = fsm;
    size_t done = 400;
    int batches = 0;
    while (done < l.n) {
        size_t n = (size_t)craft_prng_range(&p, 1, 20);
        n = n > l.n - done ? l.n - done : n;
        struct craft_command cmds[20];
        void *res[20];
        for (size_t j = 0; j < n; j++) {
            cmds[j] = (struct craft_command){
                .index = done + j + 1, .data = l.data[done + j], .len = (uint32_t)l.len[done + j]};
        }
        struct buf before;
        h_snap(&h, &before);
        for (long k = 0;; k++) {
            f.countdown = k;
            f.ops = 0;
            int rc = craft_kv_sm_apply_batch(fsm, cmds, n, res);
            if (rc == CRAFT_OK) {
                break;
            }
            CHECK(rc == CRAFT_EIO || rc == CRAFT_ENOSPACE);
            for (size_t j = 0; j < n; j++) {
                CHECK(res[j] == NULL);
            }
            CHECK(craft_kv_sm_applied(fsm) == done);
            struct buf after;
            h_snap(&h, &after);
            CHECK(buf_eq(&before, &after));
            buf_free(&after);
        }
        for (size_t j = 0; j < n; j++) {
            CHECK(res[j] != NULL);
            craft_kv_result_free(res[j]);
        }
        buf_free(&before);
        done += n;
        batches++;
    }
    CHECK(craft_kv_sm_applied(fsm) == l.n && batches > 10);
    craft_kv_sm_close(fsm);
    /* The plain state machine's cached values are stale now: open it again. */
    craft_kv_sm_close(plain);
    CHECK(craft_kv_sm_open(h.st, NULL, &h.sm) == CRAFT_OK);
    struct h ref;
    h_open(&ref, false, 0);
    apply_range(&ref, &l, 0, l.n, 1, &p, NULL);
    struct buf x, y;
    h_snap(&h, &x);
    h_snap(&ref, &y);
    CHECK(buf_eq(&x, &y));
    buf_free(&x);
    buf_free(&y);
    h_close(&ref);
    h_close(&h);
    cmdlist_free(&l);
}

static void test_injected_failures_mem(void)
{
    injected_failures(false);
}
static void test_injected_failures_lmdb(void)
{
    injected_failures(true);
}

/* A writer process killed at a random moment: after reopening, the applied index and the
 * data agree (equal to a fresh replay of exactly that many commands), and replaying the
 * log from the start skips what the store has. */
static void test_lmdb_crash(void)
{
    enum { N = 6000 };
    struct cmdlist l;
    gen_workload(21, N, &l);
    int mid_way = 0;
    for (int round = 0; round < 4; round++) {
        cur_seed = (uint64_t)round;
        struct h h;
        h_open(&h, true, 0);
        h_shut(&h);
        int fds[2];
        CRAFT_ASSERT(pipe(fds) == 0);
        pid_t pid = fork();
        CRAFT_ASSERT(pid >= 0);
        if (pid == 0) {
            /* The child applies in batches and says when it is a fifth of the way plus
             * round fifths in; it is killed soon after, in the middle of some batch. */
            close(fds[0]);
            h_open_store(&h);
            struct craft_prng p;
            craft_prng_seed(&p, 100 + (uint64_t)round);
            size_t mark = N / 5 * (size_t)(round + 1), at = 0;
            while (at < N) {
                size_t to = at + 300 < N ? at + 300 : N;
                apply_range(&h, &l, at, to, 30, &p, NULL);
                if (at < mark && to >= mark) {
                    CRAFT_ASSERT(write(fds[1], "x", 1) == 1);
                }
                at = to;
            }
            _exit(0); /* finished before the kill: fine too */
        }
        close(fds[1]);
        char mark_byte;
        CHECK(read(fds[0], &mark_byte, 1) == 1);
        close(fds[0]);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)round * 300000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        h_open_store(&h);
        uint64_t applied = craft_kv_sm_applied(h.sm);
        CHECK(applied <= N);
        mid_way += applied > 0 && applied < N;
        struct h ref;
        h_open(&ref, false, 0);
        struct craft_prng p;
        craft_prng_seed(&p, 1);
        apply_range(&ref, &l, 0, applied, 1, &p, NULL);
        struct buf x, y;
        h_snap(&h, &x);
        h_snap(&ref, &y);
        CHECK(buf_eq(&x, &y));
        CHECK(craft_kv_sm_now(h.sm) == craft_kv_sm_now(ref.sm));
        buf_free(&x);
        buf_free(&y);
        /* Replay from index 1, as a restarted node without a snapshot would. */
        struct craft_kv_result **rs = calloc(N, sizeof *rs);
        apply_range(&h, &l, 0, N, 30, &p, rs);
        size_t skipped = 0;
        for (size_t i = 0; i < N; i++) {
            skipped += rs[i] == NULL;
            craft_kv_result_free(rs[i]);
        }
        free(rs);
        CHECK(skipped == applied);
        apply_range(&ref, &l, applied, N, 1, &p, NULL);
        h_snap(&h, &x);
        h_snap(&ref, &y);
        CHECK(buf_eq(&x, &y));
        buf_free(&x);
        buf_free(&y);
        h_close(&ref);
        h_close(&h);
    }
    CHECK(mid_way >= 2);
    cmdlist_free(&l);
}

/* Close and reopen: applied index, time, keys and sessions are all there. */
static void test_lmdb_reopen(void)
{
    struct h h;
    h_open(&h, true, 0);
    fill_some(&h);
    struct buf a, b;
    h_snap(&h, &a);
    uint64_t applied = craft_kv_sm_applied(h.sm), now = craft_kv_sm_now(h.sm);
    h_reopen(&h);
    CHECK(craft_kv_sm_applied(h.sm) == applied && craft_kv_sm_now(h.sm) == now);
    h_snap(&h, &b);
    CHECK(buf_eq(&a, &b));
    CHECK(r_int(h_run(&h, IN(INCRBY("ctr", 5), 11, 1)), 5));
    buf_free(&a);
    buf_free(&b);
    h_close(&h);
}

/* ---- the craft_fsm adapter on a real node ---- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct craft_node *node_start(struct craft_mem_net *net, const char *dir,
                                     struct craft_kv_sm *sm)
{
    struct craft_config cfg;
    craft_config_default(&cfg, 1);
    cfg.data_dir = dir;
    cfg.transport = CRAFT_TRANSPORT_MEM;
    cfg.mem_net = net;
    struct craft_server self = {.id = 1, .voter = true};
    cfg.initial_servers = &self;
    cfg.n_initial_servers = 1;
    cfg.election_timeout_ms = 200;
    cfg.heartbeat_ms = 20;
    cfg.snapshot_threshold_entries = 0;
    cfg.trailing_entries = 5;
    struct craft_fsm fsm;
    craft_kv_fsm_init(&fsm, sm);
    struct craft_node *node = NULL;
    char err[256];
    int rc = craft_node_create(&cfg, &fsm, &node, err, sizeof err);
    if (rc != CRAFT_OK) {
        printf("node: %s\n", err);
    }
    CHECK(rc == CRAFT_OK);
    uint64_t end = mono_ms() + 10000;
    while (node != NULL && craft_state(node) != CRAFT_LEADER && mono_ms() < end) {
        usleep(2000);
    }
    CHECK(node != NULL && craft_state(node) == CRAFT_LEADER);
    return node;
}

static struct craft_kv_result *node_run(struct craft_node *node, struct craft_kv_cmd c)
{
    uint8_t buf[256];
    size_t len;
    c.now_ms = 1000;
    CRAFT_ASSERT(craft_kv_cmd_encode(&c, buf, sizeof buf, &len) == CRAFT_OK);
    struct craft_future *f = craft_apply(node, buf, (uint32_t)len, 1000);
    CHECK(craft_future_wait(f, 10000) == CRAFT_OK);
    struct craft_kv_result *r = craft_future_result(f);
    craft_future_release(f);
    return r;
}

/* Through the runtime: results reach the futures, reads after ReadIndex, a snapshot, and a
 * restart that restores the snapshot into the LMDB store and replays the log after it. */
static void test_fsm_node(void)
{
    char base[64];
    snprintf(base, sizeof base, "/tmp/craft-kvnode-XXXXXX");
    CRAFT_ASSERT(mkdtemp(base) != NULL);
    char raft_dir[96], kv_dir[96];
    snprintf(raft_dir, sizeof raft_dir, "%s/raft", base);
    snprintf(kv_dir, sizeof kv_dir, "%s/kv", base);
    struct h h = {0};
    snprintf(h.dir, sizeof h.dir, "%s", kv_dir);
    h_open_store(&h);
    struct craft_mem_net *net = craft_mem_net_create();
    struct craft_node *node = node_start(net, raft_dir, h.sm);
    if (node != NULL) {
        CHECK(r_ok(node_run(node, SET("a", "1", 0, 0))));
        CHECK(r_int(node_run(node, INCRBY("a", 41)), 42));
        struct craft_future *f = craft_read_index(node);
        CHECK(craft_future_wait(f, 10000) == CRAFT_OK);
        craft_future_release(f);
        CHECK(h_get(&h, "a", "42"));
        f = craft_snapshot(node);
        CHECK(craft_future_wait(f, 10000) == CRAFT_OK);
        craft_future_release(f);
        CHECK(r_int(node_run(node, INCRBY("a", 1)), 43));
        CHECK(r_ok(node_run(node, SET("b", "after", 0, 0))));
        craft_node_destroy(node);
        h_reopen(&h);
        node = node_start(net, raft_dir, h.sm);
    }
    if (node != NULL) {
        struct craft_future *f = craft_barrier(node);
        CHECK(craft_future_wait(f, 10000) == CRAFT_OK);
        craft_future_release(f);
        CHECK(h_get(&h, "a", "43") && h_get(&h, "b", "after"));
        CHECK(r_int(node_run(node, INCRBY("a", 1)), 44));
        craft_node_destroy(node);
    }
    craft_mem_net_destroy(net);
    h_shut(&h);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    CRAFT_ASSERT(system(cmd) == 0);
}

int main(void)
{
    run_case("cmd_encoding", test_cmd_encoding);
    run_case("strings_mem", test_strings_mem);
    run_case("strings_lmdb", test_strings_lmdb);
    run_case("del_append_incr", test_del_append_incr);
    run_case("expire", test_expire);
    run_case("logical_time", test_logical_time);
    run_case("sessions", test_sessions);
    run_case("session_expiry", test_session_expiry);
    run_case("session_sweep_after_empty", test_session_sweep_after_empty);
    run_case("session_window_mem", test_session_window_mem);
    run_case("session_window_lmdb", test_session_window_lmdb);
    run_case("session_caps", test_session_caps);
    run_case("multi", test_multi);
    run_case("multi_large_reply", test_multi_large_reply);
    run_case("glob", test_glob);
    run_case("scan_mem", test_scan_mem);
    run_case("scan_lmdb", test_scan_lmdb);
    run_case("members_mem", test_members_mem);
    run_case("members_lmdb", test_members_lmdb);
    run_case("snapshot_versions", test_snapshot_versions);
    run_case("snapshot_sessions", test_snapshot_sessions);
    run_case("upgrade_v1_mem", test_upgrade_v1_mem);
    run_case("upgrade_v1_lmdb", test_upgrade_v1_lmdb);
    run_case("determinism", test_determinism);
    run_case("snapshot_mem_mem", test_snapshot_mem_mem);
    run_case("snapshot_lmdb_lmdb", test_snapshot_lmdb_lmdb);
    run_case("snapshot_mem_lmdb", test_snapshot_mem_lmdb);
    run_case("snapshot_lmdb_mem", test_snapshot_lmdb_mem);
    run_case("snapshot_during_apply_mem", test_snapshot_during_apply_mem);
    run_case("snapshot_during_apply_lmdb", test_snapshot_during_apply_lmdb);
    run_case("corrupt_snapshot_mem", test_corrupt_snapshot_mem);
    run_case("corrupt_snapshot_lmdb", test_corrupt_snapshot_lmdb);
    run_case("injected_failures_mem", test_injected_failures_mem);
    run_case("injected_failures_lmdb", test_injected_failures_lmdb);
    run_case("lmdb_crash", test_lmdb_crash);
    run_case("lmdb_reopen", test_lmdb_reopen);
    run_case("fsm_node", test_fsm_node);
    return unit_finish();
}
