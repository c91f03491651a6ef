/* craftkv's hashes, sets, lists and sorted sets (kv_coll.c, kv_list.c, kv_zset.c, kv.md
 * "Data types"): Redis's answers for each
 * command, WRONGTYPE both ways, a collection emptied is gone, its elements removed with it
 * (DEL, SET over it, expiry, FLUSHALL), HSCAN/SSCAN visiting every element once, SPOP's
 * choice replicated by its seed, SRANDMEMBER's repeats, SINTER/SUNION/SDIFF, WATCH seeing
 * an element change and agreeing across replicas whose ids differ, a MULTI's collection
 * reads, and snapshots carrying collections between the memory store and LMDB (and
 * refusing damaged ones). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/bytes.h"
#include "base/err.h"
#include "kv/kv_sm.h"
#include "unit.h"

struct h {
    struct craft_kv_store *st;
    struct craft_kv_sm *sm;
    uint64_t index, now;
    char dir[64];
};

static void h_open(struct h *h, bool lmdb)
{
    memset(h, 0, sizeof *h);
    if (lmdb) {
        snprintf(h->dir, sizeof h->dir, "/tmp/craft-coll-XXXXXX");
        CRAFT_ASSERT(mkdtemp(h->dir) != NULL);
        struct craft_kv_lmdb_config cfg = {.path = h->dir, .map_bytes = 64u << 20, .no_sync = true};
        CRAFT_ASSERT(craft_kv_store_lmdb_open(&cfg, &h->st, NULL, 0) == CRAFT_OK);
    } else {
        CRAFT_ASSERT(craft_kv_store_mem_open(&h->st) == CRAFT_OK);
    }
    CRAFT_ASSERT(craft_kv_sm_open(h->st, NULL, &h->sm) == CRAFT_OK);
    h->now = 1000;
}

static void h_close(struct h *h)
{
    craft_kv_sm_close(h->sm);
    h->st->ops->close(h->st);
    if (h->dir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", h->dir);
        CRAFT_ASSERT(system(cmd) == 0);
    }
}

static struct craft_kv_bytes B(const char *s) {
    return (struct craft_kv_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

/* Builds op key args... (NULL-terminated) into *c, its arguments in a[]. */
static struct craft_kv_cmd
build(uint8_t op, const char *key, const char *const *args, struct craft_kv_bytes *a)
{
    struct craft_kv_cmd c = {.op = op, .key = B(key), .args = a};
    while (args != NULL && args[c.n] != NULL) {
        a[c.n] = B(args[c.n]);
        c.n++;
    }
    return c;
}

static struct craft_kv_result *apply(struct h *h, const struct craft_kv_cmd *in)
{
    struct craft_kv_cmd c = *in;
    c.now_ms = h->now;
    size_t size = craft_kv_cmd_size(&c);
    CRAFT_ASSERT(size > 0);
    uint8_t *p = malloc(size);
    size_t len;
    CRAFT_ASSERT(craft_kv_cmd_encode(&c, p, size, &len) == CRAFT_OK);
    struct craft_kv_result *r = NULL;
    CRAFT_ASSERT(craft_kv_sm_apply(h->sm, ++h->index, p, len, &r) == CRAFT_OK);
    free(p);
    return r;
}

/* Runs a command, write or read (a read on a read of the last commit), returning its
 * answer as text: "i:N", "b:bytes", "nil", "ok", "e:text", "s:status", "[a,b,...]". */
static void text_of(const struct craft_kv_result_view *v, char *out, size_t cap);

static void text_view(const uint8_t *data, size_t len, int64_t n, char *out, size_t cap)
{
    size_t off = 0, w = 0;
    w += (size_t)snprintf(out + w, cap - w, "[");
    struct craft_kv_result_view el;
    int64_t i = 0;
    while (craft_kv_result_next(data, len, &off, &el) && w < cap) {
        w += (size_t)snprintf(out + w, cap - w, i++ ? "," : "");
        text_of(&el, out + w, cap - w);
        w = strlen(out);
    }
    CHECK(i == n);
    snprintf(out + w, cap - w, "]");
}

static void text_of(const struct craft_kv_result_view *v, char *out, size_t cap)
{
    switch (v->type) {
    case CRAFT_KV_RES_OK:
        snprintf(out, cap, "ok");
        break;
    case CRAFT_KV_RES_NIL:
        snprintf(out, cap, "nil");
        break;
    case CRAFT_KV_RES_INT:
        snprintf(out, cap, "i:%lld", (long long)v->integer);
        break;
    case CRAFT_KV_RES_BULK:
        snprintf(out, cap, "b:%.*s", (int)v->len, (const char *)v->data);
        break;
    case CRAFT_KV_RES_ERR:
        snprintf(out, cap, "e:%.*s", (int)v->len, (const char *)v->data);
        break;
    case CRAFT_KV_RES_STATUS:
        snprintf(out, cap, "s:%.*s", (int)v->len, (const char *)v->data);
        break;
    case CRAFT_KV_RES_ARRAY:
        text_view(v->data, v->len, v->integer, out, cap);
        break;
    default:
        snprintf(out, cap, "?");
    }
}

static char last[4096];

static const char *answer(struct craft_kv_result *r)
{
    struct craft_kv_result_view v = {r->type, r->integer, r->len, r->data};
    text_of(&v, last, sizeof last);
    craft_kv_result_free(r);
    return last;
}

static const char *run(struct h *h, uint8_t op, const char *key, const char *const *args)
{
    struct craft_kv_bytes a[16];
    struct craft_kv_cmd c = build(op, key, args, a);
    if (!craft_kv_op_is_read(op)) {
        return answer(apply(h, &c));
    }
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(h->sm, &r) == CRAFT_OK);
    struct craft_kv_result *res = NULL;
    CHECK(craft_kv_read_exec(r, &c, &res) == CRAFT_OK);
    craft_kv_read_end(r);
    return answer(res);
}

#define A(...)               ((const char *const[]){__VA_ARGS__, NULL})
#define RUN(h, op, key, ...) run(h, CRAFT_KV_OP_##op, key, A(__VA_ARGS__))
#define RUN0(h, op, key)     run(h, CRAFT_KV_OP_##op, key, NULL)
#define IS(expr, want)       CHECK(strcmp((expr), (want)) == 0 || (printf("  got %s\n", last), 0))

static const char *string_op(struct h *h, uint8_t op, const char *key, const char *val)
{
    struct craft_kv_cmd c = {.op = op, .key = B(key), .value = B(val != NULL ? val : "")};
    if (op == CRAFT_KV_OP_DEL) {
        c.n = 1;
        c.keys = &c.key;
    }
    return answer(apply(h, &c));
}

static const char *type_of(struct h *h, const char *key)
{
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(h->sm, &r) == CRAFT_OK);
    const char *t = "?";
    CHECK(craft_kv_read_type(r, (const uint8_t *)key, strlen(key), &t) == CRAFT_OK);
    craft_kv_read_end(r);
    return t;
}

static uint64_t dbsize(struct h *h)
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

/* Elements physically stored, every collection's. */
static uint64_t elems_stored(struct h *h)
{
    struct craft_kv_txn *t;
    CRAFT_ASSERT(h->st->ops->begin(h->st, false, &t) == CRAFT_OK);
    uint64_t n = 0;
    CHECK(h->st->ops->iter(t, CRAFT_KV_TABLE_ELEMS, NULL, 0, count_one, &n) == CRAFT_OK);
    h->st->ops->abort(t);
    return n;
}

static void hashes(void)
{
    struct h h;
    h_open(&h, false);
    IS(RUN(&h, HSET, "h", "a", "1", "b", "2"), "i:2");
    IS(RUN(&h, HSET, "h", "a", "10", "c", "3"), "i:1"); /* a replaced, c new */
    IS(RUN(&h, HSET, "dup", "f", "1", "f", "2"), "i:1");
    IS(RUN0(&h, HGETALL, "dup"), "[b:f,b:2]");
    IS(RUN(&h, SADD, "dups", "m", "m"), "i:1");
    IS(string_op(&h, CRAFT_KV_OP_DEL, "dup", NULL), "i:1");
    IS(string_op(&h, CRAFT_KV_OP_DEL, "dups", NULL), "i:1");
    IS(RUN(&h, HGET, "h", "a"), "b:10");
    IS(RUN(&h, HGET, "h", "zz"), "nil");
    IS(RUN(&h, HGET, "nokey", "a"), "nil");
    IS(RUN0(&h, HLEN, "h"), "i:3");
    IS(RUN(&h, HMGET, "h", "c", "x", "a"), "[b:3,nil,b:10]");
    IS(RUN(&h, HEXISTS, "h", "b"), "i:1");
    IS(RUN(&h, HEXISTS, "h", "x"), "i:0");
    IS(RUN(&h, HSTRLEN, "h", "a"), "i:2");
    IS(RUN(&h, HSETNX, "h", "a", "no"), "i:0");
    IS(RUN(&h, HSETNX, "h", "d", "4"), "i:1");
    IS(RUN(&h, HINCRBY, "h", "a", "5"), "i:15");
    IS(RUN(&h, HINCRBY, "h", "new", "-7"), "i:-7");
    IS(RUN(&h, HSET, "h", "s", "abc"), "i:1");
    IS(RUN(&h, HINCRBY, "h", "s", "1"), "e:ERR hash value is not an integer");
    IS(RUN(&h, HSET, "h", "big", "9223372036854775800"), "i:1");
    IS(RUN(&h, HINCRBY, "h", "big", "100"), "e:ERR increment or decrement would overflow");
    IS(RUN(&h, HMSET, "h", "m", "1"), "ok");
    IS(RUN0(&h, HLEN, "h"), "i:8");
    /* HGETALL/HKEYS/HVALS agree with each other, in one (hash) order. */
    char all[4096], keys[4096], vals[4096];
    snprintf(all, sizeof all, "%s", RUN0(&h, HGETALL, "h"));
    snprintf(keys, sizeof keys, "%s", RUN0(&h, HKEYS, "h"));
    snprintf(vals, sizeof vals, "%s", RUN0(&h, HVALS, "h"));
    CHECK(strstr(all, "b:a,b:15") != NULL && strstr(all, "b:m,b:1") != NULL);
    CHECK(strlen(all) == strlen(keys) + strlen(vals) - 1);
    /* Argument errors, as the proposer would answer them. */
    IS(RUN(&h, HSET, "h", "odd"), "e:ERR wrong number of arguments");
    IS(RUN(&h, HINCRBY, "h", "a", "x1"), "e:ERR value is not an integer or out of range");
    /* WRONGTYPE both ways; TYPE; a string's SET replaces the hash and its elements. */
    IS(string_op(&h, CRAFT_KV_OP_SET, "str", "v"), "ok");
    IS(RUN(&h, HSET, "str", "f", "v"), "e:" CRAFT_KV_ERR_WRONGTYPE);
    IS(RUN(&h, HGET, "str", "f"), "e:" CRAFT_KV_ERR_WRONGTYPE);
    IS(string_op(&h, CRAFT_KV_OP_APPEND, "h", "x"), "e:" CRAFT_KV_ERR_WRONGTYPE);
    IS(string_op(&h, CRAFT_KV_OP_GETDEL, "h", NULL), "e:" CRAFT_KV_ERR_WRONGTYPE);
    CHECK(strcmp(type_of(&h, "h"), "hash") == 0 && strcmp(type_of(&h, "str"), "string") == 0 &&
          strcmp(type_of(&h, "nokey"), "none") == 0);
    CHECK(elems_stored(&h) == 8 && dbsize(&h) == 2);
    IS(string_op(&h, CRAFT_KV_OP_SET, "h", "now a string"), "ok");
    CHECK(elems_stored(&h) == 0 && dbsize(&h) == 2);
    /* The last field removed removes the key. */
    IS(RUN(&h, HSET, "h2", "a", "1", "b", "2"), "i:2");
    IS(RUN(&h, HDEL, "h2", "a", "zz"), "i:1");
    IS(RUN(&h, HDEL, "h2", "b"), "i:1");
    CHECK(strcmp(type_of(&h, "h2"), "none") == 0 && dbsize(&h) == 2 && elems_stored(&h) == 0);
    IS(RUN(&h, HDEL, "h2", "b"), "i:0");
    /* DEL and FLUSHALL take the elements along. */
    IS(RUN(&h, HSET, "h3", "a", "1", "b", "2"), "i:2");
    IS(string_op(&h, CRAFT_KV_OP_DEL, "h3", NULL), "i:1");
    CHECK(elems_stored(&h) == 0);
    IS(RUN(&h, HSET, "h4", "a", "1"), "i:1");
    struct craft_kv_cmd flush = {.op = CRAFT_KV_OP_FLUSHALL};
    IS(answer(apply(&h, &flush)), "ok");
    CHECK(elems_stored(&h) == 0 && dbsize(&h) == 0);
    h_close(&h);
}

static void expiry(void)
{
    struct h h;
    h_open(&h, true);
    IS(RUN(&h, HSET, "h", "a", "1", "b", "2"), "i:2");
    IS(RUN(&h, SADD, "s", "x", "y"), "i:2");
    struct craft_kv_cmd ex = {.op = CRAFT_KV_OP_EXPIRE, .key = B("h"), .expire_at = 2000};
    IS(answer(apply(&h, &ex)), "i:1");
    ex.key = B("s");
    ex.expire_at = 5000;
    IS(answer(apply(&h, &ex)), "i:1");
    /* An element change keeps the expiry (Redis: only the key's deletion or SET clears). */
    IS(RUN(&h, HSET, "h", "c", "3"), "i:1");
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(h.sm, &r) == CRAFT_OK);
    int64_t ms;
    CHECK(craft_kv_read_pttl(r, (const uint8_t *)"h", 1, &ms) == CRAFT_OK && ms == 1000);
    craft_kv_read_end(r);
    /* Past its time the hash is gone for readers at once, and its elements with the sweep. */
    h.now = 2500;
    struct craft_kv_cmd noop = {.op = CRAFT_KV_OP_NOOP};
    IS(answer(apply(&h, &noop)), "ok");
    IS(RUN0(&h, HLEN, "h"), "i:0");
    CHECK(strcmp(type_of(&h, "h"), "none") == 0 && elems_stored(&h) == 2 && dbsize(&h) == 1);
    /* PERSIST keeps a collection a collection. */
    struct craft_kv_cmd pe = {.op = CRAFT_KV_OP_PERSIST, .key = B("s")};
    IS(answer(apply(&h, &pe)), "i:1");
    h.now = 9000;
    IS(answer(apply(&h, &noop)), "ok");
    IS(RUN0(&h, SCARD, "s"), "i:2");
    /* A new hash under an expired one's name starts empty (the old elements are gone). */
    IS(RUN(&h, HSET, "h", "z", "1"), "i:1");
    IS(RUN0(&h, HGETALL, "h"), "[b:z,b:1]");
    h_close(&h);
}

static void sets(void)
{
    struct h a, b;
    h_open(&a, false);
    h_open(&b, true);
    IS(RUN(&a, SADD, "s", "x", "y", "z", "x"), "i:3");
    IS(RUN(&a, SADD, "s", "x"), "i:0");
    IS(RUN(&a, SISMEMBER, "s", "y"), "i:1");
    IS(RUN(&a, SISMEMBER, "s", "q"), "i:0");
    IS(RUN(&a, SMISMEMBER, "s", "q", "z"), "[i:0,i:1]");
    IS(RUN0(&a, SCARD, "s"), "i:3");
    IS(RUN(&a, SREM, "s", "y", "q"), "i:1");
    IS(RUN(&a, SADD, "t", "z", "w"), "i:2");
    IS(RUN(&a, SINTER, "s", "t"), "[b:z]");
    IS(RUN(&a, SINTER, "s", "t", "none"), "[]");
    IS(RUN(&a, SDIFF, "s", "t"), "[b:x]");
    char u[4096];
    snprintf(u, sizeof u, "%s", RUN(&a, SUNION, "s", "t", "none"));
    CHECK(strlen(u) == strlen("[b:x,b:z,b:w]") && strstr(u, "b:x") && strstr(u, "b:w"));
    IS(string_op(&a, CRAFT_KV_OP_SET, "str", "v"), "ok");
    IS(RUN(&a, SINTER, "s", "str"), "e:" CRAFT_KV_ERR_WRONGTYPE);
    IS(RUN(&a, SADD, "str", "m"), "e:" CRAFT_KV_ERR_WRONGTYPE);
    IS(RUN(&a, HGET, "s", "x"), "e:" CRAFT_KV_ERR_WRONGTYPE);
    /* SPOP: the seed decides, so two replicas pop the same member. */
    for (int i = 0; i < 20; i++) {
        char m[16];
        snprintf(m, sizeof m, "m%d", i);
        IS(RUN(&a, SADD, "big", m), "i:1");
        IS(RUN(&b, SADD, "big", m), "i:1");
    }
    const char seed[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct craft_kv_bytes args[2] = {B("3"), {(const uint8_t *)seed, 8}};
    struct craft_kv_cmd pop = {.op = CRAFT_KV_OP_SPOP, .key = B("big"), .n = 2, .args = args};
    char pa[4096], pb[4096];
    snprintf(pa, sizeof pa, "%s", answer(apply(&a, &pop)));
    snprintf(pb, sizeof pb, "%s", answer(apply(&b, &pop)));
    CHECK(strcmp(pa, pb) == 0 && pa[0] == '[' && strchr(pa, ',') != NULL);
    IS(RUN0(&a, SCARD, "big"), "i:17");
    pop.n = 1;
    pop.args = &args[1];
    snprintf(pa, sizeof pa, "%s", answer(apply(&a, &pop)));
    CHECK(strncmp(pa, "b:m", 3) == 0);
    /* SPOP of more than there is empties the set, which is then gone. */
    args[0] = B("100");
    pop.n = 2;
    pop.args = args;
    snprintf(pa, sizeof pa, "%s", answer(apply(&a, &pop)));
    CHECK(strcmp(type_of(&a, "big"), "none") == 0);
    args[0] = B("-1");
    IS(answer(apply(&a, &pop)), "e:ERR value is out of range, must be positive");
    /* SRANDMEMBER: distinct up to the size, or repeats with a negative count. */
    struct craft_kv_cmd rnd = {.op = CRAFT_KV_OP_SRANDMEMBER, .key = B("s"), .n = 2, .args = args};
    args[0] = B("5");
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(a.sm, &r) == CRAFT_OK);
    struct craft_kv_result *res;
    CHECK(craft_kv_read_exec(r, &rnd, &res) == CRAFT_OK);
    CHECK(res->type == CRAFT_KV_RES_ARRAY && res->integer == 2);
    craft_kv_result_free(res);
    args[0] = B("-6");
    CHECK(craft_kv_read_exec(r, &rnd, &res) == CRAFT_OK);
    CHECK(res->type == CRAFT_KV_RES_ARRAY && res->integer == 6);
    craft_kv_result_free(res);
    args[0] = B("-2000000"); /* repeats are bounded (CRAFT_KV_RANDOM_PICKS_MAX) */
    CHECK(craft_kv_read_exec(r, &rnd, &res) == CRAFT_OK);
    CHECK(res->type == CRAFT_KV_RES_ERR &&
          strcmp((char *)res->data, "ERR value is out of range") == 0);
    craft_kv_result_free(res);
    craft_kv_read_end(r);
    /* SPOP of more than a chunk (256): distinct members, the same on both replicas. */
    for (int i = 0; i < 600; i++) {
        char m[16];
        snprintf(m, sizeof m, "p%d", i);
        IS(RUN(&a, SADD, "many", m), "i:1");
        IS(RUN(&b, SADD, "many", m), "i:1");
    }
    args[0] = B("500");
    args[1] = (struct craft_kv_bytes){(const uint8_t *)seed, 8};
    pop.key = B("many");
    pop.n = 2;
    pop.args = args;
    struct craft_kv_result *p1 = apply(&a, &pop), *p2 = apply(&b, &pop);
    CHECK(p1->type == CRAFT_KV_RES_ARRAY && p1->integer == 500 && p1->len == p2->len &&
          memcmp(p1->data, p2->data, p1->len) == 0);
    craft_kv_result_free(p1);
    craft_kv_result_free(p2);
    IS(RUN0(&a, SCARD, "many"), "i:100");
    IS(RUN0(&b, SCARD, "many"), "i:100");
    h_close(&a);
    h_close(&b);
}

static uint64_t zindex_stored(struct h *h)
{
    struct craft_kv_txn *t;
    CRAFT_ASSERT(h->st->ops->begin(h->st, false, &t) == CRAFT_OK);
    uint64_t n = 0;
    CHECK(h->st->ops->iter(t, CRAFT_KV_TABLE_ZINDEX, NULL, 0, count_one, &n) == CRAFT_OK);
    h->st->ops->abort(t);
    return n;
}

static void lists(void)
{
    struct h h;
    h_open(&h, true);
    IS(RUN(&h, RPUSH, "l", "a", "b", "c"), "i:3");
    IS(RUN(&h, LPUSH, "l", "z", "y"), "i:5");
    IS(RUN(&h, LRANGE, "l", "0", "-1"), "[b:y,b:z,b:a,b:b,b:c]");
    IS(RUN(&h, LRANGE, "l", "-2", "100"), "[b:b,b:c]");
    IS(RUN(&h, LRANGE, "l", "3", "1"), "[]");
    IS(RUN(&h, LRANGE, "l", "-100", "0"), "[b:y]");
    IS(RUN(&h, LRANGE, "none", "0", "-1"), "[]");
    IS(RUN0(&h, LLEN, "l"), "i:5");
    IS(RUN(&h, LINDEX, "l", "-1"), "b:c");
    IS(RUN(&h, LINDEX, "l", "5"), "nil");
    IS(RUN(&h, LINDEX, "l", "-6"), "nil");
    IS(RUN(&h, LSET, "l", "1", "Z"), "ok");
    IS(RUN(&h, LSET, "l", "9", "Z"), "e:ERR index out of range");
    IS(RUN(&h, LSET, "none", "0", "Z"), "e:ERR no such key");
    IS(RUN0(&h, LPOP, "l"), "b:y");
    IS(RUN(&h, RPOP, "l", "2"), "[b:c,b:b]");
    IS(RUN(&h, RPOP, "l", "0"), "[]");
    IS(RUN(&h, LPOP, "l", "-1"), "e:ERR value is out of range, must be positive");
    IS(RUN0(&h, LPOP, "none"), "nil");
    IS(RUN(&h, LPUSHX, "none", "x"), "i:0");
    IS(RUN(&h, RPUSHX, "l", "x"), "i:3");
    IS(RUN(&h, LRANGE, "l", "0", "-1"), "[b:Z,b:a,b:x]");
    /* LREM from the head, from the tail, every one. */
    IS(RUN(&h, RPUSH, "r", "a", "b", "a", "c", "a", "a"), "i:6");
    IS(RUN(&h, LREM, "r", "1", "a"), "i:1");
    IS(RUN(&h, LRANGE, "r", "0", "-1"), "[b:b,b:a,b:c,b:a,b:a]");
    IS(RUN(&h, LREM, "r", "-2", "a"), "i:2");
    IS(RUN(&h, LRANGE, "r", "0", "-1"), "[b:b,b:a,b:c]");
    IS(RUN(&h, LREM, "r", "0", "q"), "i:0");
    IS(RUN(&h, RPUSH, "m", "a", "b", "a"), "i:3");
    IS(RUN(&h, LREM, "m", "-9223372036854775808", "a"), "i:2");
    IS(RUN(&h, LRANGE, "m", "0", "-1"), "[b:b]");
    IS(string_op(&h, CRAFT_KV_OP_DEL, "m", NULL), "i:1");
    IS(RUN(&h, LREM, "r", "0", "a"), "i:1");
    IS(RUN(&h, LRANGE, "r", "0", "-1"), "[b:b,b:c]");
    IS(RUN(&h, RPUSH, "r", "d"), "i:3");
    IS(RUN(&h, LINDEX, "r", "2"), "b:d"); /* positions contiguous after the rewrite */
    /* LTRIM keeps a range; an empty one removes the key. */
    IS(RUN(&h, LTRIM, "r", "1", "-1"), "ok");
    IS(RUN(&h, LRANGE, "r", "0", "-1"), "[b:c,b:d]");
    IS(RUN(&h, LTRIM, "r", "5", "9"), "ok");
    CHECK(strcmp(type_of(&h, "r"), "none") == 0);
    /* Popping the last element removes the key and its elements. */
    IS(RUN(&h, LPOP, "l", "10"), "[b:Z,b:a,b:x]");
    CHECK(strcmp(type_of(&h, "l"), "none") == 0 && elems_stored(&h) == 0 && dbsize(&h) == 0);
    IS(RUN(&h, RPUSH, "l", "1"), "i:1");
    IS(RUN(&h, HSET, "l", "f", "v"), "e:" CRAFT_KV_ERR_WRONGTYPE);
    IS(RUN0(&h, LLEN, "l"), "i:1");
    CHECK(strcmp(type_of(&h, "l"), "list") == 0);
    h_close(&h);
}

static void zsets(void)
{
    struct h h;
    h_open(&h, false);
    /* One member twice in a new key's ZADD: added once, the last score kept. */
    IS(RUN(&h, ZADD, "dup", "1", "m", "2", "m"), "i:1");
    IS(RUN(&h, ZRANGE, "dup", "0", "-1", "WITHSCORES"), "[b:m,b:2]");
    IS(RUN0(&h, ZPOPMAX, "dup"), "[b:m,b:2]");
    IS(RUN(&h, ZADD, "z", "1", "a", "2", "b", "3", "c"), "i:3");
    IS(RUN(&h, ZADD, "z", "INCR", "5", "a"), "b:6");
    IS(RUN(&h, ZRANGE, "z", "0", "-1", "WITHSCORES"), "[b:b,b:2,b:c,b:3,b:a,b:6]");
    IS(RUN(&h, ZADD, "z", "CH", "2", "b", "10", "d", "4", "c"), "i:2"); /* d added, c changed */
    IS(RUN(&h, ZADD, "z", "NX", "0", "b", "0", "e"), "i:1");
    IS(RUN(&h, ZADD, "z", "XX", "0", "b", "0", "f"), "i:0");
    IS(RUN(&h, ZSCORE, "z", "b"), "b:0");
    IS(RUN(&h, ZADD, "z", "GT", "CH", "-1", "a", "7", "a"), "i:1"); /* -1 ignored, 7 > 6 */
    IS(RUN(&h, ZADD, "z", "LT", "INCR", "1", "a"), "nil");
    IS(RUN(&h, ZADD, "z", "NX", "XX", "1", "a"),
       "e:ERR XX and NX options at the same time are not compatible");
    IS(RUN(&h, ZADD, "z", "NX", "GT", "1", "a"),
       "e:ERR GT, LT, and/or NX options at the same time are not compatible");
    IS(RUN(&h, ZADD, "z", "INCR", "1", "a", "2", "b"),
       "e:ERR INCR option supports a single increment-element pair");
    IS(RUN(&h, ZADD, "z", "x", "a"), "e:ERR value is not a valid float");
    IS(RUN(&h, ZADD, "z", "nan", "a"), "e:ERR value is not a valid float");
    IS(RUN(&h, ZADD, "z", "1e400", "a"), "e:ERR value is not a valid float"); /* as Redis */
    IS(RUN(&h, ZADD, "z", "1e-400", "a"), "e:ERR value is not a valid float");
    IS(RUN(&h, ZCOUNT, "z", "-1e400", "1e400"), "i:5"); /* bounds: plain strtod */
    IS(RUN(&h, ZADD, "n", "inf", "a"), "i:1");
    IS(RUN(&h, ZINCRBY, "n", "-inf", "a"), "e:ERR resulting score is not a number (NaN)");
    IS(RUN(&h, ZINCRBY, "n", "1", "b"), "b:1");
    IS(RUN0(&h, ZCARD, "z"), "i:5");
    IS(RUN(&h, ZRANGE, "z", "0", "-1"), "[b:b,b:e,b:c,b:a,b:d]");
    IS(RUN(&h, ZRANGE, "z", "0", "1", "REV", "WITHSCORES"), "[b:d,b:10,b:a,b:7]");
    IS(RUN(&h, ZREVRANGE, "z", "-2", "-1"), "[b:e,b:b]");
    IS(RUN(&h, ZRANK, "z", "c"), "i:2");
    IS(RUN(&h, ZREVRANK, "z", "c"), "i:2");
    IS(RUN(&h, ZRANK, "z", "nope"), "nil");
    IS(RUN(&h, ZCOUNT, "z", "(0", "7"), "i:2");
    IS(RUN(&h, ZCOUNT, "z", "-inf", "+inf"), "i:5");
    IS(RUN(&h, ZCOUNT, "z", "x", "1"), "e:ERR min or max is not a float");
    IS(RUN(&h, ZRANGEBYSCORE, "z", "0", "(7", "WITHSCORES"), "[b:b,b:0,b:e,b:0,b:c,b:4]");
    IS(RUN(&h, ZRANGEBYSCORE, "z", "-inf", "+inf", "LIMIT", "1", "2"), "[b:e,b:c]");
    IS(RUN(&h, ZREVRANGEBYSCORE, "z", "+inf", "4", "LIMIT", "1", "5"), "[b:a,b:c]");
    IS(RUN(&h, ZRANGE, "z", "(4", "10", "BYSCORE"), "[b:a,b:d]");
    IS(RUN(&h, ZRANGE, "z", "10", "(4", "BYSCORE", "REV"), "[b:d,b:a]");
    IS(RUN(&h, ZRANGE, "z", "0", "1", "LIMIT", "0", "1"),
       "e:ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
    IS(RUN(&h, ZMSCORE, "z", "a", "nope", "c"), "[b:7,nil,b:4]");
    IS(RUN(&h, ZREM, "z", "e", "nope"), "i:1");
    IS(RUN0(&h, ZPOPMIN, "z"), "[b:b,b:0]");
    IS(RUN(&h, ZPOPMAX, "z", "2"), "[b:d,b:10,b:a,b:7]");
    IS(RUN(&h, ZPOPMIN, "none", "3"), "[]");
    CHECK(elems_stored(&h) == 1 + 2 && zindex_stored(&h) == 1 + 2); /* z: c; n: a, b */
    IS(RUN(&h, ZADD, "f", "0.1", "x", "-0", "y", "1e300", "w"), "i:3");
    IS(RUN(&h, ZRANGE, "f", "0", "-1", "WITHSCORES"), "[b:y,b:0,b:x,b:0.1,b:w,b:1e+300]");
    IS(RUN(&h, ZINCRBY, "f", "0.2", "x"), "b:0.30000000000000004");
    /* Scores print as Redis 7.2 prints them. */
    IS(RUN(&h, ZADD, "g", "10", "a", "1e7", "b", "1e8", "c", "-0.000001", "d", "1e-7", "e",
           "123.456", "f", "-2.5e-10", "g"),
       "i:7");
    IS(RUN(&h, ZRANGE, "g", "0", "-1", "WITHSCORES"),
       "[b:d,b:-0.000001,b:g,b:-2.5e-10,b:e,b:1e-7,b:a,b:10,b:f,b:123.456,b:b,b:10000000,b:c,"
       "b:1e+8]");
    IS(string_op(&h, CRAFT_KV_OP_DEL, "g", NULL), "i:1");
    /* Deleting a sorted set removes its index entries too. */
    IS(string_op(&h, CRAFT_KV_OP_DEL, "f", NULL), "i:1");
    IS(string_op(&h, CRAFT_KV_OP_SET, "z", "str"), "ok");
    CHECK(elems_stored(&h) == 2 && zindex_stored(&h) == 2);
    IS(RUN0(&h, ZCARD, "z"), "e:" CRAFT_KV_ERR_WRONGTYPE);
    CHECK(strcmp(type_of(&h, "n"), "zset") == 0);
    h_close(&h);
}

/* The string and keyspace ops of the same shape (kv_str.c), and the collection moves. */
static void strings_and_moves(void)
{
    struct h h;
    h_open(&h, true);
    IS(string_op(&h, CRAFT_KV_OP_SET, "f", "10.5"), "ok");
    IS(RUN(&h, INCRBYFLOAT, "f", "0.1"), "b:10.6");
    IS(RUN(&h, INCRBYFLOAT, "f", "5.0e3"), "b:5010.6");
    IS(RUN(&h, INCRBYFLOAT, "new", "-0.0001"), "b:-0.0001");
    IS(string_op(&h, CRAFT_KV_OP_SET, "pt", "0.1"), "ok");
    IS(RUN(&h, INCRBYFLOAT, "pt", "0.2"), "b:0.3"); /* 15 digits, as Redis prints it */
    IS(RUN(&h, INCRBYFLOAT, "pt", "1e20"), "b:100000000000000000000");
    IS(string_op(&h, CRAFT_KV_OP_DEL, "pt", NULL), "i:1");
    IS(RUN(&h, INCRBYFLOAT, "f", "inf"), "e:ERR increment would produce NaN or Infinity");
    IS(string_op(&h, CRAFT_KV_OP_SET, "t", "abc"), "ok");
    IS(RUN(&h, INCRBYFLOAT, "t", "1"), "e:ERR value is not a valid float");
    IS(RUN(&h, SETRANGE, "t", "1", "XY"), "i:3");
    IS(RUN(&h, GETRANGE, "t", "0", "-1"), "b:aXY");
    IS(RUN(&h, GETRANGE, "t", "-2", "100"), "b:XY");
    IS(RUN(&h, GETRANGE, "t", "5", "9"), "b:");
    IS(RUN(&h, GETRANGE, "t", "0", "-100"), "b:a"); /* Redis: a negative end clamps to 0 */
    IS(RUN(&h, GETRANGE, "t", "-100", "-99"), "b:a");
    IS(RUN(&h, GETRANGE, "t", "-1", "-2"), "b:");
    IS(RUN(&h, SETRANGE, "p", "2", "z"), "i:3");
    IS(RUN(&h, SETRANGE, "q", "2", ""), "i:0");
    CHECK(strcmp(type_of(&h, "q"), "none") == 0);
    IS(RUN(&h, SETRANGE, "t", "-1", "z"), "e:ERR offset is out of range");
    /* GETEX: the expiry the proposer made absolute, or PERSIST. */
    IS(RUN(&h, GETEX, "t", "PXAT", "50000"), "b:aXY");
    struct craft_kv_read *r;
    int64_t ms;
    CRAFT_ASSERT(craft_kv_read_begin(h.sm, &r) == CRAFT_OK);
    CHECK(craft_kv_read_pttl(r, (const uint8_t *)"t", 1, &ms) == CRAFT_OK && ms == 49000);
    craft_kv_read_end(r);
    IS(RUN(&h, GETEX, "t", "PERSIST"), "b:aXY");
    IS(RUN(&h, GETEX, "t", "PXAT", "500"), "b:aXY"); /* past: the key goes */
    CHECK(strcmp(type_of(&h, "t"), "none") == 0);
    /* RENAME moves strings and collections (elements stay under the id). */
    IS(RUN(&h, HSET, "h", "a", "1"), "i:1");
    IS(RUN(&h, RENAME, "h", "h2"), "ok");
    IS(RUN0(&h, HGETALL, "h2"), "[b:a,b:1]");
    CHECK(strcmp(type_of(&h, "h"), "none") == 0);
    IS(RUN(&h, RENAME, "f", "h2"), "ok"); /* over a hash: its elements go */
    IS(RUN(&h, RENAMENX, "p", "h2"), "i:0");
    IS(RUN(&h, RENAME, "nokey", "x"), "e:ERR no such key");
    IS(RUN(&h, RENAME, "h2", "h2"), "ok");
    CHECK(elems_stored(&h) == 0 && dbsize(&h) == 3); /* new, p, h2 */
    IS(RUN(&h, HINCRBYFLOAT, "hf", "x", "1.25"), "b:1.25");
    IS(RUN(&h, HINCRBYFLOAT, "hf", "x", "1e2"), "b:101.25");
    /* Lists: LINSERT, LMOVE (RPOPLPUSH), LPOS. */
    IS(RUN(&h, RPUSH, "l", "a", "b", "c"), "i:3");
    IS(RUN(&h, LINSERT, "l", "BEFORE", "b", "X"), "i:4");
    IS(RUN(&h, LINSERT, "l", "AFTER", "c", "Y"), "i:5");
    IS(RUN(&h, LINSERT, "l", "AFTER", "zz", "Y"), "i:-1");
    IS(RUN(&h, LRANGE, "l", "0", "-1"), "[b:a,b:X,b:b,b:c,b:Y]");
    IS(RUN(&h, LMOVE, "l", "l2", "RIGHT", "LEFT"), "b:Y");
    IS(RUN(&h, LMOVE, "l", "l2", "LEFT", "RIGHT"), "b:a");
    IS(RUN(&h, LMOVE, "l", "l", "LEFT", "RIGHT"), "b:X"); /* a rotation */
    IS(RUN(&h, LRANGE, "l", "0", "-1"), "[b:b,b:c,b:X]");
    IS(RUN(&h, LRANGE, "l2", "0", "-1"), "[b:Y,b:a]");
    IS(RUN(&h, LMOVE, "l", "hf", "LEFT", "LEFT"), "e:" CRAFT_KV_ERR_WRONGTYPE);
    IS(RUN(&h, LMOVE, "nolist", "hf", "LEFT", "LEFT"), "nil"); /* no source: before dst */
    /* A one-element list rotated into itself keeps its key and its expiry. */
    IS(RUN(&h, RPUSH, "one", "x"), "i:1");
    struct craft_kv_cmd ex1 = {.op = CRAFT_KV_OP_EXPIRE, .key = B("one"), .expire_at = 90000};
    IS(answer(apply(&h, &ex1)), "i:1");
    IS(RUN(&h, LMOVE, "one", "one", "LEFT", "RIGHT"), "b:x");
    CRAFT_ASSERT(craft_kv_read_begin(h.sm, &r) == CRAFT_OK);
    CHECK(craft_kv_read_pttl(r, (const uint8_t *)"one", 3, &ms) == CRAFT_OK && ms == 89000);
    craft_kv_read_end(r);
    IS(string_op(&h, CRAFT_KV_OP_DEL, "one", NULL), "i:1");
    IS(RUN(&h, LRANGE, "l", "0", "-1"), "[b:b,b:c,b:X]"); /* nothing moved */
    IS(RUN(&h, RPUSH, "l", "X", "b"), "i:5");
    IS(RUN(&h, LPOS, "l", "X"), "i:2");
    IS(RUN(&h, LPOS, "l", "X", "RANK", "-1"), "i:3");
    IS(RUN(&h, LPOS, "l", "X", "COUNT", "0"), "[i:2,i:3]");
    IS(RUN(&h, LPOS, "l", "b", "RANK", "2", "COUNT", "1"), "[i:4]");
    IS(RUN(&h, LPOS, "l", "nope"), "nil");
    IS(RUN(&h, LPOS, "l", "X", "RANK", "0"), "e:ERR RANK can't be zero: use 1 to start from the "
                                             "first match, 2 from the second ... or use "
                                             "negative to start from the end of the list");
    /* Sets: SMOVE, the *STORE forms. */
    IS(RUN(&h, SADD, "A", "1", "2", "3"), "i:3");
    IS(RUN(&h, SADD, "B", "2", "3", "4"), "i:3");
    IS(RUN(&h, SINTERSTORE, "C", "A", "B"), "i:2");
    IS(RUN0(&h, SCARD, "C"), "i:2");
    IS(RUN(&h, SUNIONSTORE, "C", "A", "B"), "i:4"); /* over the old C */
    IS(RUN0(&h, SCARD, "C"), "i:4");
    IS(RUN(&h, SDIFFSTORE, "C", "A", "B", "C"), "i:0"); /* empty: C is gone */
    CHECK(strcmp(type_of(&h, "C"), "none") == 0);
    IS(RUN(&h, SMOVE, "A", "B", "1"), "i:1");
    IS(RUN(&h, SMOVE, "A", "B", "1"), "i:0");
    IS(RUN(&h, SISMEMBER, "B", "1"), "i:1");
    IS(RUN(&h, SMOVE, "A", "l", "2"), "e:" CRAFT_KV_ERR_WRONGTYPE);
    IS(RUN(&h, SMOVE, "noset", "l", "2"), "i:0"); /* no source: before dst's type */
    h_close(&h);
}

/* HSCAN with a small COUNT visits every field exactly once. */
static void scans(void)
{
    struct h h;
    h_open(&h, false);
    enum { N = 300 };
    for (int i = 0; i < N; i++) {
        char f[16];
        snprintf(f, sizeof f, "f%d", i);
        IS(RUN(&h, HSET, "h", f, "v"), "i:1");
    }
    int seen[N] = {0};
    char cursor[32] = "0";
    int calls = 0;
    do {
        struct craft_kv_bytes a[3] = {B(cursor), B("COUNT"), B("7")};
        struct craft_kv_cmd c = {.op = CRAFT_KV_OP_HSCAN, .key = B("h"), .n = 3, .args = a};
        struct craft_kv_read *r;
        CRAFT_ASSERT(craft_kv_read_begin(h.sm, &r) == CRAFT_OK);
        struct craft_kv_result *res = NULL;
        CHECK(craft_kv_read_exec(r, &c, &res) == CRAFT_OK);
        craft_kv_read_end(r);
        CHECK(res->type == CRAFT_KV_RES_ARRAY && res->integer == 2);
        size_t off = 0, eoff = 0;
        struct craft_kv_result_view cur, els, el;
        CHECK(craft_kv_result_next(res->data, res->len, &off, &cur));
        CHECK(craft_kv_result_next(res->data, res->len, &off, &els));
        snprintf(cursor, sizeof cursor, "%.*s", (int)cur.len, (const char *)cur.data);
        int k = 0;
        while (craft_kv_result_next(els.data, els.len, &eoff, &el)) {
            if (k++ % 2 == 0) {
                int i = atoi((const char *)el.data + 1);
                CHECK(i >= 0 && i < N);
                seen[i]++;
            }
        }
        craft_kv_result_free(res);
        calls++;
    } while (strcmp(cursor, "0") != 0 && calls < 1000);
    for (int i = 0; i < N; i++) {
        CHECK(seen[i] == 1);
    }
    CHECK(calls > N / 7 / 2); /* it did go in steps */
    /* MATCH: the ten fields f10..f19, with their values, and the same answer twice. */
    char first[4096];
    snprintf(first, sizeof first, "%s", RUN(&h, HSCAN, "h", "0", "MATCH", "f1?", "COUNT", "1000"));
    CHECK(strncmp(first, "[b:0,[", 6) == 0 && strlen(first) == strlen("[b:0,[]]") + 10 * 10 - 1);
    IS(RUN(&h, HSCAN, "h", "0", "MATCH", "f1?", "COUNT", "1000"), first);
    CHECK(strstr(last, "b:f12,b:v") != NULL && strstr(last, "b:f120") == NULL);
    IS(RUN(&h, HSCAN, "h", "x"), "e:ERR invalid cursor");
    IS(RUN(&h, HSCAN, "h", "0", "COUNT", "0"), "e:ERR syntax error");
    h_close(&h);
}

struct sink {
    uint8_t *p;
    size_t n, cap;
};

static int sink_write(void *ctx, const void *buf, size_t l)
{
    struct sink *s = ctx;
    if (s->n + l > s->cap) {
        s->cap = (s->n + l) * 2;
        s->p = realloc(s->p, s->cap);
        CRAFT_ASSERT(s->p != NULL);
    }
    memcpy(s->p + s->n, buf, l);
    s->n += l;
    return CRAFT_OK;
}

struct src {
    const uint8_t *p;
    size_t n, off;
};

static int src_read(void *ctx, void *buf, size_t c, size_t *got)
{
    struct src *s = ctx;
    size_t k = s->n - s->off < c ? s->n - s->off : c;
    memcpy(buf, s->p + s->off, k);
    s->off += k;
    *got = k;
    return CRAFT_OK;
}

static void snap_of(struct h *h, uint8_t **out, size_t *n)
{
    struct craft_kv_snap *snap;
    CRAFT_ASSERT(craft_kv_sm_snapshot(h->sm, &snap) == CRAFT_OK);
    struct sink sk = {0};
    CHECK(craft_kv_snap_write(snap, sink_write, &sk) == CRAFT_OK);
    craft_kv_snap_release(snap);
    *out = sk.p;
    *n = sk.n;
}

/* WATCH's digest: an element change is a change; replicas with different ids agree. */
static void watch_and_multi(void)
{
    struct h a;
    h_open(&a, false);
    IS(RUN(&a, HSET, "h", "a", "1"), "i:1");
    IS(RUN(&a, SADD, "other", "x"), "i:1"); /* takes id 2 here; a restore renumbers */
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(a.sm, &r) == CRAFT_OK);
    uint64_t d1, d2;
    CHECK(craft_kv_read_watch(r, (const uint8_t *)"other", 5, &d1) == CRAFT_OK);
    craft_kv_read_end(r);
    IS(RUN(&a, HSET, "h", "a", "2"), "i:0"); /* same count, new value */
    CRAFT_ASSERT(craft_kv_read_begin(a.sm, &r) == CRAFT_OK);
    CHECK(craft_kv_read_watch(r, (const uint8_t *)"h", 1, &d2) == CRAFT_OK);
    craft_kv_read_end(r);
    /* A MULTI: WATCH h (current digest), then HSET and HGETALL and SCARD. */
    uint8_t blob[1024];
    size_t len = 0;
    struct craft_kv_cmd w = {.op = CRAFT_KV_OP_WATCH, .key = B("h"), .delta = (int64_t)d2};
    CHECK(craft_kv_cmd_multi_add(&w, blob, sizeof blob, &len) == CRAFT_OK);
    struct craft_kv_bytes a1[2] = {B("b"), B("3")};
    struct craft_kv_cmd s1 = {.op = CRAFT_KV_OP_HSET, .key = B("h"), .n = 2, .args = a1};
    struct craft_kv_cmd s2 = {.op = CRAFT_KV_OP_HGETALL, .key = B("h")};
    struct craft_kv_cmd s3 = {.op = CRAFT_KV_OP_SCARD, .key = B("other")};
    CHECK(craft_kv_cmd_multi_add(&s1, blob, sizeof blob, &len) == CRAFT_OK);
    CHECK(craft_kv_cmd_multi_add(&s2, blob, sizeof blob, &len) == CRAFT_OK);
    CHECK(craft_kv_cmd_multi_add(&s3, blob, sizeof blob, &len) == CRAFT_OK);
    struct craft_kv_cmd m = {.op = CRAFT_KV_OP_MULTI, .n = 4, .blob = {blob, (uint32_t)len}};
    /* A replica restored from a snapshot numbers its collections anew. */
    struct h b;
    h_open(&b, true);
    uint8_t *bytes;
    size_t n;
    snap_of(&a, &bytes, &n);
    struct src src = {bytes, n, 0};
    CHECK(craft_kv_sm_restore(b.sm, src_read, &src) == CRAFT_OK);
    b.index = a.index;
    b.now = a.now;
    CRAFT_ASSERT(craft_kv_read_begin(b.sm, &r) == CRAFT_OK);
    uint64_t d1b;
    CHECK(craft_kv_read_watch(r, (const uint8_t *)"other", 5, &d1b) == CRAFT_OK && d1b == d1);
    craft_kv_read_end(r);
    char ra[4096];
    snprintf(ra, sizeof ra, "%s", answer(apply(&a, &m)));
    IS(answer(apply(&b, &m)), ra);
    CHECK(strcmp(ra, "[i:1,[b:a,b:2,b:b,b:3],i:1]") == 0 ||
          strcmp(ra, "[i:1,[b:b,b:3,b:a,b:2],i:1]") == 0);
    /* The same MULTI again: h changed since the digest, so it runs nowhere. */
    IS(answer(apply(&a, &m)), "nil");
    IS(answer(apply(&b, &m)), "nil");
    /* Deleted and made again with the same count: another state, another digest; and an
     * LTRIM that keeps everything still counts as a change (Redis signals it). */
    uint64_t before, after;
    CRAFT_ASSERT(craft_kv_read_begin(a.sm, &r) == CRAFT_OK);
    CHECK(craft_kv_read_watch(r, (const uint8_t *)"other", 5, &before) == CRAFT_OK);
    craft_kv_read_end(r);
    IS(string_op(&a, CRAFT_KV_OP_DEL, "other", NULL), "i:1");
    IS(RUN(&a, SADD, "other", "y"), "i:1");
    CRAFT_ASSERT(craft_kv_read_begin(a.sm, &r) == CRAFT_OK);
    CHECK(craft_kv_read_watch(r, (const uint8_t *)"other", 5, &after) == CRAFT_OK);
    craft_kv_read_end(r);
    CHECK(before != after);
    IS(RUN(&a, RPUSH, "l", "x"), "i:1");
    CRAFT_ASSERT(craft_kv_read_begin(a.sm, &r) == CRAFT_OK);
    CHECK(craft_kv_read_watch(r, (const uint8_t *)"l", 1, &before) == CRAFT_OK);
    craft_kv_read_end(r);
    IS(RUN(&a, LTRIM, "l", "0", "-1"), "ok");
    CRAFT_ASSERT(craft_kv_read_begin(a.sm, &r) == CRAFT_OK);
    CHECK(craft_kv_read_watch(r, (const uint8_t *)"l", 1, &after) == CRAFT_OK);
    craft_kv_read_end(r);
    CHECK(before != after);
    /* A string holding a collection's digest input is not that collection. */
    CHECK(d1 != craft_kv_watch_digest(true, 0, NULL, 0));
    free(bytes);
    h_close(&a);
    h_close(&b);
}

/* Snapshots carry collections both ways between the stores, byte for byte; a damaged
 * collection record (its count, its order) is refused and changes nothing. */
static void snapshots(void)
{
    struct h a, b, c;
    h_open(&a, false);
    h_open(&b, true);
    h_open(&c, false);
    for (int i = 0; i < 50; i++) {
        char f[16], v[16];
        snprintf(f, sizeof f, "f%d", i);
        snprintf(v, sizeof v, "v%d", i * 3);
        IS(RUN(&a, HSET, "hash", f, v), "i:1");
        IS(RUN(&a, SADD, "set", f), "i:1");
    }
    IS(string_op(&a, CRAFT_KV_OP_SET, "str", "v"), "ok");
    IS(RUN(&a, RPUSH, "list", "x", "y", "x", ""), "i:4");
    IS(RUN(&a, LPUSH, "list", "w"), "i:5");
    IS(RUN(&a, ZADD, "zset", "2", "b", "-1.5", "a", "inf", "c"), "i:3");
    struct craft_kv_cmd ex = {.op = CRAFT_KV_OP_EXPIRE, .key = B("set"), .expire_at = 99999};
    IS(answer(apply(&a, &ex)), "i:1");
    uint8_t *s1, *s2, *s3;
    size_t n1, n2, n3;
    snap_of(&a, &s1, &n1);
    struct src src = {s1, n1, 0};
    CHECK(craft_kv_sm_restore(b.sm, src_read, &src) == CRAFT_OK);
    snap_of(&b, &s2, &n2);
    CHECK(n1 == n2 && memcmp(s1, s2, n1) == 0);
    IS(RUN(&b, HGET, "hash", "f7"), "b:v21");
    IS(RUN0(&b, SCARD, "set"), "i:50");
    IS(RUN(&b, LRANGE, "list", "0", "-1"), "[b:w,b:x,b:y,b:x,b:]");
    IS(RUN(&b, ZRANGE, "zset", "0", "-1", "WITHSCORES"), "[b:a,b:-1.5,b:b,b:2,b:c,b:inf]");
    CHECK(elems_stored(&b) == 108 && zindex_stored(&b) == 3 && dbsize(&b) == 5);
    b.index = craft_kv_sm_applied(b.sm);
    IS(RUN(&b, LPUSH, "list", "v"), "i:6"); /* the restored list's positions work */
    IS(RUN(&b, LINDEX, "list", "5"), "b:");
    IS(RUN0(&b, RPOP, "list"), "b:");
    /* Back into a memory store. */
    src = (struct src){s2, n2, 0};
    CHECK(craft_kv_sm_restore(c.sm, src_read, &src) == CRAFT_OK);
    snap_of(&c, &s3, &n3);
    CHECK(n3 == n1 && memcmp(s3, s1, n1) == 0);
    /* Damage: any single byte flipped in the records is refused (the crc, or a rule). */
    c.index = craft_kv_sm_applied(c.sm);
    IS(RUN(&c, SADD, "mine", "x"), "i:1");
    free(s3);
    snap_of(&c, &s3, &n3);
    for (size_t at = 32; at + 4 < n1; at += 13) {
        uint8_t *d = malloc(n1);
        memcpy(d, s1, n1);
        d[at] ^= 0x40;
        src = (struct src){d, n1, 0};
        CHECK(craft_kv_sm_restore(c.sm, src_read, &src) != CRAFT_OK);
        free(d);
    }
    uint8_t *s4;
    size_t n4;
    snap_of(&c, &s4, &n4);
    CHECK(n4 == n3 && memcmp(s4, s3, n3) == 0); /* unchanged */
    free(s1);
    free(s2);
    free(s3);
    free(s4);
    h_close(&a);
    h_close(&b);
    h_close(&c);
}

int main(void)
{
    run_case("hashes", hashes);
    run_case("expiry", expiry);
    run_case("sets", sets);
    run_case("scans", scans);
    run_case("lists", lists);
    run_case("strings_and_moves", strings_and_moves);
    run_case("zsets", zsets);
    run_case("watch_and_multi", watch_and_multi);
    run_case("snapshots", snapshots);
    return unit_finish();
}
