/* craftkv's hashes and sets (kv.md "Data types"): the collection ops, run by apply (writes,
 * and a MULTI's reads) and by reads, over the key space of one store transaction
 * (kv_keys.c). Every element is its own store entry, so a change costs one element and the
 * header, whatever the collection's size. Deterministic: what a command does depends on
 * its arguments and the state only (SPOP's choice on the seed its proposer drew). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/assert.h"
#include "base/bytes.h"
#include "kv/kv_coll.h"

#define ERR_HASH_INT "ERR hash value is not an integer"
#define ERR_OVERFLOW "ERR increment or decrement would overflow"
#define ERR_CURSOR   "ERR invalid cursor"
_Static_assert(CRAFT_KV_FIELD_BYTES_MAX == 480, "the error text names the limit");

/* ---- arguments ---- */

/* Redis's string2ll: an optional '-', digits without a leading zero, no overflow. */
bool kv_arg_i64(struct craft_kv_bytes b, int64_t *out)
{
    return craft_kv_parse_i64(b.p, b.len, out);
}

bool kv_arg_is(struct craft_kv_bytes b, const char *s)
{
    size_t n = strlen(s);
    if (b.len != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = b.p[i];
        if (ch >= 'a' && ch <= 'z') {
            ch = (uint8_t)(ch - 32);
        }
        if (ch != (uint8_t)s[i]) {
            return false;
        }
    }
    return true;
}

const char *kv_scan_parse(uint8_t op, size_t n, const struct craft_kv_bytes *a,
                          struct kv_scan_args *out)
{
    *out = (struct kv_scan_args){.count = 10};
    if (n < 1) {
        return KV_ERR_ARGS;
    }
    uint64_t cur = 0;
    if (a[0].len == 0 || a[0].len > 20) {
        return ERR_CURSOR;
    }
    for (size_t i = 0; i < a[0].len; i++) {
        unsigned d = (unsigned)(a[0].p[i] - '0');
        if (a[0].p[i] < '0' || a[0].p[i] > '9' || cur > (UINT64_MAX - d) / 10) {
            return ERR_CURSOR;
        }
        cur = cur * 10 + d;
    }
    out->cursor = cur;
    for (size_t i = 1; i < n;) {
        if (op == CRAFT_KV_OP_HSCAN && kv_arg_is(a[i], "NOVALUES")) {
            out->novalues = true;
            i++;
            continue;
        }
        if (i + 1 >= n) {
            return KV_ERR_SYNTAX;
        }
        if (kv_arg_is(a[i], "MATCH")) {
            out->pattern = a[i + 1];
            out->has_pattern = true;
        } else if (kv_arg_is(a[i], "COUNT")) {
            int64_t c;
            if (!kv_arg_i64(a[i + 1], &c)) {
                return KV_ERR_NOT_INT;
            }
            if (c < 1) {
                return KV_ERR_SYNTAX;
            }
            out->count = (uint64_t)c;
        } else {
            return KV_ERR_SYNTAX;
        }
        i += 2;
    }
    return NULL;
}

/* SPOP and SRANDMEMBER: [count] seed (8 bytes, the proposer's). */
static const char *pick_parse(uint8_t op, size_t n, const struct craft_kv_bytes *a, bool *has_count,
                              int64_t *count, uint64_t *seed)
{
    if (n < 1 || n > 2 || a[n - 1].len != 8) {
        return KV_ERR_ARGS;
    }
    *seed = craft_get_u64(a[n - 1].p);
    *has_count = n == 2;
    *count = 1;
    if (n == 2) {
        if (!kv_arg_i64(a[0], count)) {
            return KV_ERR_NOT_INT;
        }
        if (op == CRAFT_KV_OP_SPOP && *count < 0) {
            return KV_ERR_POSITIVE;
        }
        if (*count < -(int64_t)CRAFT_KV_RANDOM_PICKS_MAX) {
            return KV_ERR_RANGE; /* repeats cost a walk each: bounded */
        }
    }
    return NULL;
}

const char *craft_kv_coll_check(uint8_t op, size_t n, const struct craft_kv_bytes *a)
{
    if (kv_op_is_list(op)) {
        return kv_list_check(op, n, a);
    }
    if (kv_op_is_zset(op)) {
        return kv_zset_check(op, n, a);
    }
    if (kv_op_is_str(op)) {
        return kv_str_check(op, n, a);
    }
    int64_t v;
    bool has;
    uint64_t seed;
    struct kv_scan_args sa;
    switch (op) {
    case CRAFT_KV_OP_HSET:
    case CRAFT_KV_OP_HMSET:
        if (n < 2 || n % 2 != 0) {
            return KV_ERR_ARGS;
        }
        for (size_t i = 0; i < n; i += 2) {
            if (a[i].len > CRAFT_KV_FIELD_BYTES_MAX) {
                return KV_ERR_FIELD_LONG;
            }
        }
        return NULL;
    case CRAFT_KV_OP_HSETNX:
        return n != 2                                ? KV_ERR_ARGS
               : a[0].len > CRAFT_KV_FIELD_BYTES_MAX ? KV_ERR_FIELD_LONG
                                                     : NULL;
    case CRAFT_KV_OP_HINCRBY:
        if (n != 2) {
            return KV_ERR_ARGS;
        }
        if (a[0].len > CRAFT_KV_FIELD_BYTES_MAX) {
            return KV_ERR_FIELD_LONG;
        }
        return kv_arg_i64(a[1], &v) ? NULL : KV_ERR_NOT_INT;
    case CRAFT_KV_OP_SADD:
        for (size_t i = 0; i < n; i++) {
            if (a[i].len > CRAFT_KV_FIELD_BYTES_MAX) {
                return KV_ERR_FIELD_LONG;
            }
        }
        return n < 1 ? KV_ERR_ARGS : NULL;
    case CRAFT_KV_OP_HDEL:
    case CRAFT_KV_OP_SREM:
    case CRAFT_KV_OP_HMGET:
    case CRAFT_KV_OP_SMISMEMBER:
        return n < 1 ? KV_ERR_ARGS : NULL;
    case CRAFT_KV_OP_SPOP:
    case CRAFT_KV_OP_SRANDMEMBER:
        return pick_parse(op, n, a, &has, &v, &seed);
    case CRAFT_KV_OP_HGET:
    case CRAFT_KV_OP_HEXISTS:
    case CRAFT_KV_OP_HSTRLEN:
    case CRAFT_KV_OP_SISMEMBER:
        return n != 1 ? KV_ERR_ARGS : NULL;
    case CRAFT_KV_OP_HGETALL:
    case CRAFT_KV_OP_HKEYS:
    case CRAFT_KV_OP_HVALS:
    case CRAFT_KV_OP_HLEN:
    case CRAFT_KV_OP_SMEMBERS:
    case CRAFT_KV_OP_SCARD:
        return n != 0 ? KV_ERR_ARGS : NULL;
    case CRAFT_KV_OP_HSCAN:
    case CRAFT_KV_OP_SSCAN:
        return kv_scan_parse(op, n, a, &sa);

    case CRAFT_KV_OP_SINTER:
    case CRAFT_KV_OP_SUNION:
    case CRAFT_KV_OP_SDIFF:
        return NULL;
    case CRAFT_KV_OP_SINTERSTORE:
    case CRAFT_KV_OP_SUNIONSTORE:
    case CRAFT_KV_OP_SDIFFSTORE:
        return n < 1 ? KV_ERR_ARGS : NULL;
    case CRAFT_KV_OP_SMOVE:
        return n != 2                                ? KV_ERR_ARGS
               : a[0].len > CRAFT_KV_KEY_BYTES_MAX   ? KV_ERR_KEY_LONG
               : a[1].len > CRAFT_KV_FIELD_BYTES_MAX ? KV_ERR_FIELD_LONG
                                                     : NULL;
    case CRAFT_KV_OP_HINCRBYFLOAT: {
        double d;
        if (n != 2) {
            return KV_ERR_ARGS;
        }
        if (a[0].len > CRAFT_KV_FIELD_BYTES_MAX) {
            return KV_ERR_FIELD_LONG;
        }
        return kv_arg_double(a[1], false, &d) ? NULL : KV_ERR_NOT_FLOAT;
    }
    default:
        return "ERR unknown collection command";
    }
}

/* ---- answers ---- */

void kv_arr_bytes(struct kv_arr *a, uint8_t type, const uint8_t *p, size_t len)
{
    if (a->over || a->rc != CRAFT_OK) {
        return;
    }
    if (a->len + 5 + len > a->max) {
        a->over = true;
        return;
    }
    a->rc = kv_reserve(&a->buf, &a->cap, a->len + 5 + len);
    if (a->rc != CRAFT_OK) {
        return;
    }
    a->buf[a->len] = type;
    craft_put_u32(a->buf + a->len + 1, (uint32_t)len);
    if (len > 0) {
        memcpy(a->buf + a->len + 5, p, len);
    }
    a->len += 5 + len;
    a->n++;
}

void kv_arr_nil(struct kv_arr *a)
{
    if (a->over || a->rc != CRAFT_OK) {
        return;
    }
    if (a->len + 1 > a->max) {
        a->over = true;
        return;
    }
    a->rc = kv_reserve(&a->buf, &a->cap, a->len + 1);
    if (a->rc == CRAFT_OK) {
        a->buf[a->len++] = CRAFT_KV_RES_NIL;
        a->n++;
    }
}

void kv_arr_int(struct kv_arr *a, int64_t v)
{
    if (a->over || a->rc != CRAFT_OK) {
        return;
    }
    if (a->len + 9 > a->max) {
        a->over = true;
        return;
    }
    a->rc = kv_reserve(&a->buf, &a->cap, a->len + 9);
    if (a->rc == CRAFT_OK) {
        a->buf[a->len] = CRAFT_KV_RES_INT;
        craft_put_u64(a->buf + a->len + 1, (uint64_t)v);
        a->len += 9;
        a->n++;
    }
}

int kv_reply(struct craft_kv_result **res, struct craft_kv_result *r)
{
    *res = r;
    return r != NULL ? CRAFT_OK : CRAFT_ENOMEM;
}

int kv_res_err(struct craft_kv_result **res, const char *text)
{
    return kv_reply(res, kv_result_new(CRAFT_KV_RES_ERR, 0, text, strlen(text)));
}

int kv_res_int(struct craft_kv_result **res, int64_t v)
{
    return kv_reply(res, kv_result_new(CRAFT_KV_RES_INT, v, NULL, 0));
}

/* The array as the answer (freeing its buffer), or the error that stopped it. */
int kv_arr_done(struct kv_arr *a, int rc, struct craft_kv_result **res)
{
    if (rc == CRAFT_OK) {
        rc = a->rc;
    }
    if (rc == CRAFT_OK) {
        rc = a->over ? kv_res_err(res, CRAFT_KV_ERR_REPLY_LARGE)
                     : kv_reply(res, kv_result_new(CRAFT_KV_RES_ARRAY, a->n, a->buf, a->len));
    }
    free(a->buf);
    a->buf = NULL;
    return rc;
}

/* ---- elements ---- */

int kv_elem_get(struct kv_space *ks, uint64_t id, struct craft_kv_bytes f, const uint8_t **v,
                size_t *vlen)
{
    if (f.len > CRAFT_KV_FIELD_BYTES_MAX) {
        return CRAFT_ENOTFOUND; /* none can have been stored */
    }
    uint8_t k[KV_EKEY_MAX];
    return ks->o->get(ks->t, CRAFT_KV_TABLE_ELEMS, k, kv_ekey(id, f.p, f.len, k), v, vlen);
}

int kv_elem_put(struct kv_space *ks, uint64_t id, struct craft_kv_bytes f, struct craft_kv_bytes v)
{
    uint8_t k[KV_EKEY_MAX];
    return ks->o->put(ks->t, CRAFT_KV_TABLE_ELEMS, k, kv_ekey(id, f.p, f.len, k), v.p, v.len);
}

/* CRAFT_OK (removed) or CRAFT_ENOTFOUND. */
int kv_elem_del(struct kv_space *ks, uint64_t id, struct craft_kv_bytes f)
{
    if (f.len > CRAFT_KV_FIELD_BYTES_MAX) {
        return CRAFT_ENOTFOUND;
    }
    uint8_t k[KV_EKEY_MAX];
    return ks->o->del(ks->t, CRAFT_KV_TABLE_ELEMS, k, kv_ekey(id, f.p, f.len, k));
}

struct walk {
    uint64_t id;
    int table;
    kv_elem_fn fn;
    void *ctx;
};

static int walk_one(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    struct walk *w = ctx;
    if (klen < 8 || kv_get_be64(k) != w->id) {
        return CRAFT_KV_ITER_STOP;
    }
    if (klen < 16 || klen > KV_EKEY_MAX || vlen > CRAFT_KV_VALUE_BYTES_MAX ||
        (w->table == CRAFT_KV_TABLE_ZINDEX && vlen != 0)) {
        return CRAFT_ECORRUPT;
    }
    struct craft_kv_bytes f = {klen > 16 ? k + 16 : NULL, (uint32_t)(klen - 16)};
    struct craft_kv_bytes val = {vlen > 0 ? v : NULL, (uint32_t)vlen};
    return w->fn(w->ctx, kv_get_be64(k + 8), f, val);
}

int kv_table_walk(struct kv_space *ks, int table, uint64_t id, uint64_t from, kv_elem_fn fn,
                  void *ctx)
{
    uint8_t start[16];
    kv_put_be64(start, id);
    kv_put_be64(start + 8, from);
    struct walk w = {.id = id, .table = table, .fn = fn, .ctx = ctx};
    return ks->o->iter(ks->t, table, start, sizeof start, walk_one, &w);
}

int kv_elems_walk(struct kv_space *ks, uint64_t id, uint64_t from, kv_elem_fn fn, void *ctx)
{
    return kv_table_walk(ks, CRAFT_KV_TABLE_ELEMS, id, from, fn, ctx);
}

/* ---- the key ---- */

/* The collection of type at key: *k looked up; *wrong if a key of another type is there. */
int kv_coll_find(struct kv_space *ks, struct craft_kv_bytes key, uint8_t type, struct kv_keyed *k,
                 bool *wrong)
{
    int rc = kv_key_find(ks, key, k);
    *wrong = rc == CRAFT_OK && k->old.found && k->old.type != type;
    return rc;
}

int kv_coll_key(struct kv_space *ks, struct craft_kv_bytes key, uint8_t type, struct kv_keyed *k,
                struct craft_kv_result **res)
{
    CRAFT_ASSERT(*res == NULL);
    bool wrong;
    int rc = kv_coll_find(ks, key, type, k, &wrong);
    return rc == CRAFT_OK && wrong ? kv_res_err(res, CRAFT_KV_ERR_WRONGTYPE) : rc;
}

/* After a write's element changes: the header with count, or the key gone at 0. */
int kv_coll_commit(struct kv_space *ks, struct kv_keyed *k, struct kv_coll *c)
{
    if (c->count == 0) {
        if (!k->old.found) {
            return CRAFT_OK;
        }
        struct kv_live gone = k->old;
        gone.coll.count = 0; /* its elements are gone already */
        return kv_key_remove(ks, k->sk, k->sklen, &gone);
    }
    /* The change's log index: it grows with every command (kv_internal.h); a MULTI's
     * changes share their entry's. */
    CRAFT_ASSERT(ks->index >= c->version || !k->old.found);
    c->version = ks->index;
    return kv_coll_store(ks, k->sk, k->sklen, &k->old, c, k->old.found ? k->old.expire_at : 0);
}

/* The collection a write works on: the key's, or a new empty one. */
struct kv_coll kv_coll_open(struct kv_space *ks, const struct kv_keyed *k, uint8_t type)
{
    if (k->old.found) {
        return k->old.coll;
    }
    return (struct kv_coll){
        .type = type, .id = kv_coll_new_id(ks), .head = type == KV_TYPE_LIST ? KV_LIST_BASE : 0};
}

/* ---- writes ---- */

static int hash_set(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                    const struct craft_kv_bytes *a, struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_HASH, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    struct kv_coll coll = kv_coll_open(ks, &k, KV_TYPE_HASH);
    int64_t added = 0;
    if (c->op == CRAFT_KV_OP_HSETNX && k.old.found) {
        const uint8_t *v;
        size_t vlen;
        rc = kv_elem_get(ks, coll.id, a[0], &v, &vlen);
        if (rc == CRAFT_OK) {
            return kv_res_int(res, 0);
        }
        if (rc != CRAFT_ENOTFOUND) {
            return rc;
        }
    }
    for (size_t i = 0; i + 1 < n; i += 2) {
        const uint8_t *v;
        size_t vlen;
        rc = k.old.found || i > 0 ? kv_elem_get(ks, coll.id, a[i], &v, &vlen) : CRAFT_ENOTFOUND;
        if (rc == CRAFT_ENOTFOUND) {
            added++;
            coll.count++;
        } else if (rc != CRAFT_OK) {
            return rc;
        }
        rc = kv_elem_put(ks, coll.id, a[i], a[i + 1]);
        if (rc != CRAFT_OK) {
            return rc;
        }
    }
    rc = kv_coll_commit(ks, &k, &coll);
    if (rc == CRAFT_OK && c->op == CRAFT_KV_OP_HMSET) {
        return kv_reply(res, kv_result_new(CRAFT_KV_RES_OK, 0, NULL, 0));
    }
    return rc != CRAFT_OK ? rc : kv_res_int(res, c->op == CRAFT_KV_OP_HSETNX ? 1 : added);
}

static int hash_incrby(struct kv_space *ks, const struct craft_kv_cmd *c,
                       const struct craft_kv_bytes *a, struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_HASH, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    int64_t delta, cur = 0;
    CRAFT_ASSERT(kv_arg_i64(a[1], &delta)); /* craft_kv_coll_check */
    struct kv_coll coll = kv_coll_open(ks, &k, KV_TYPE_HASH);
    const uint8_t *v = NULL;
    size_t vlen = 0;
    rc = k.old.found ? kv_elem_get(ks, coll.id, a[0], &v, &vlen) : CRAFT_ENOTFOUND;
    if (rc != CRAFT_OK && rc != CRAFT_ENOTFOUND) {
        return rc;
    }
    bool found = rc == CRAFT_OK;
    if (found && !kv_arg_i64((struct craft_kv_bytes){v, (uint32_t)vlen}, &cur)) {
        return kv_res_err(res, ERR_HASH_INT);
    }
    if ((delta < 0 && cur < 0 && delta < INT64_MIN - cur) ||
        (delta > 0 && cur > 0 && delta > INT64_MAX - cur)) {
        return kv_res_err(res, ERR_OVERFLOW);
    }
    cur += delta;
    char digits[24];
    int dn = snprintf(digits, sizeof digits, "%" PRId64, cur);
    CRAFT_ASSERT(dn > 0 && (size_t)dn < sizeof digits);
    rc = kv_elem_put(ks, coll.id, a[0],
                     (struct craft_kv_bytes){(const uint8_t *)digits, (uint32_t)dn});
    coll.count += !found;
    if (rc == CRAFT_OK) {
        rc = kv_coll_commit(ks, &k, &coll);
    }
    return rc != CRAFT_OK ? rc : kv_res_int(res, cur);
}

static int hash_incrbyfloat(struct kv_space *ks, const struct craft_kv_cmd *c,
                            const struct craft_kv_bytes *a, struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_HASH, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    double incr, cur = 0;
    bool ok = kv_arg_double(a[1], false, &incr);
    CRAFT_ASSERT(ok); /* craft_kv_coll_check */
    struct kv_coll coll = kv_coll_open(ks, &k, KV_TYPE_HASH);
    const uint8_t *v = NULL;
    size_t vlen = 0;
    rc = k.old.found ? kv_elem_get(ks, coll.id, a[0], &v, &vlen) : CRAFT_ENOTFOUND;
    if (rc != CRAFT_OK && rc != CRAFT_ENOTFOUND) {
        return rc;
    }
    bool found = rc == CRAFT_OK;
    if (found && !kv_arg_double((struct craft_kv_bytes){v, (uint32_t)vlen}, false, &cur)) {
        return kv_res_err(res, "ERR hash value is not a float");
    }
    double sum = cur + incr; /* a double, as INCRBYFLOAT (kv_str.c) */
    if (!isfinite(sum)) {
        return kv_res_err(res, "ERR increment would produce NaN or Infinity");
    }
    char text[KV_HUMAN_TEXT_MAX];
    size_t tn = kv_double_human(sum, text);
    rc = kv_elem_put(ks, coll.id, a[0],
                     (struct craft_kv_bytes){(const uint8_t *)text, (uint32_t)tn});
    coll.count += !found;
    if (rc == CRAFT_OK) {
        rc = kv_coll_commit(ks, &k, &coll);
    }
    return rc != CRAFT_OK ? rc : kv_reply(res, kv_result_new(CRAFT_KV_RES_BULK, 0, text, tn));
}

/* SMOVE src dst member: both sets checked for their type before anything changes. */
static int set_move(struct kv_space *ks, const struct craft_kv_cmd *c,
                    const struct craft_kv_bytes *a, struct craft_kv_result **res)
{
    struct kv_keyed src, dst;
    bool wrong_src, wrong_dst = false;
    int rc = kv_coll_find(ks, c->key, KV_TYPE_SET, &src, &wrong_src);
    if (rc == CRAFT_OK && !src.old.found) {
        return kv_res_int(res, 0); /* Redis: before the destination's type */
    }
    if (rc == CRAFT_OK) {
        rc = kv_coll_find(ks, a[0], KV_TYPE_SET, &dst, &wrong_dst);
    }
    if (rc != CRAFT_OK || wrong_src || wrong_dst) {
        return rc != CRAFT_OK ? rc : kv_res_err(res, CRAFT_KV_ERR_WRONGTYPE);
    }
    const uint8_t *v;
    size_t vlen;
    rc = kv_elem_get(ks, src.old.coll.id, a[1], &v, &vlen);
    if (rc == CRAFT_ENOTFOUND) {
        return kv_res_int(res, 0);
    }
    bool same = c->key.len == a[0].len && memcmp(c->key.p, a[0].p, a[0].len) == 0;
    if (rc != CRAFT_OK || same) {
        return rc != CRAFT_OK ? rc : kv_res_int(res, 1); /* Redis: 1, nothing moves */
    }
    struct kv_coll from = src.old.coll;
    rc = kv_elem_del(ks, from.id, a[1]);
    from.count--;
    if (rc == CRAFT_OK) {
        rc = kv_coll_commit(ks, &src, &from);
    }
    if (rc == CRAFT_OK) {
        rc = kv_key_lookup(ks, dst.sk, dst.sklen, &dst.old); /* the writes moved pointers */
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    struct kv_coll to = kv_coll_open(ks, &dst, KV_TYPE_SET);
    rc = dst.old.found ? kv_elem_get(ks, to.id, a[1], &v, &vlen) : CRAFT_ENOTFOUND;
    if (rc == CRAFT_ENOTFOUND) {
        rc = kv_elem_put(ks, to.id, a[1], (struct craft_kv_bytes){NULL, 0});
        to.count++;
        if (rc == CRAFT_OK) {
            rc = kv_coll_commit(ks, &dst, &to);
        }
    }
    return rc != CRAFT_OK ? rc : kv_res_int(res, 1);
}

static int set_add(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                   const struct craft_kv_bytes *a, struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_SET, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    struct kv_coll coll = kv_coll_open(ks, &k, KV_TYPE_SET);
    int64_t added = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *v;
        size_t vlen;
        rc = kv_elem_get(ks, coll.id, a[i], &v, &vlen);
        if (rc == CRAFT_ENOTFOUND) {
            rc = kv_elem_put(ks, coll.id, a[i], (struct craft_kv_bytes){NULL, 0});
            added++;
            coll.count++;
        }
        if (rc != CRAFT_OK) {
            return rc;
        }
    }
    if (added == 0) {
        return kv_res_int(res, 0); /* nothing changed: not even the version */
    }
    rc = kv_coll_commit(ks, &k, &coll);
    return rc != CRAFT_OK ? rc : kv_res_int(res, added);
}

/* HDEL, SREM. */
static int coll_remove(struct kv_space *ks, const struct craft_kv_cmd *c, uint8_t type, size_t n,
                       const struct craft_kv_bytes *a, struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, type, &k, res);
    if (rc != CRAFT_OK || *res != NULL || !k.old.found) {
        return rc != CRAFT_OK || *res != NULL ? rc : kv_res_int(res, 0);
    }
    struct kv_coll coll = k.old.coll;
    int64_t removed = 0;
    for (size_t i = 0; i < n && coll.count > 0; i++) {
        rc = kv_elem_del(ks, coll.id, a[i]);
        if (rc == CRAFT_OK) {
            removed++;
            coll.count--;
        } else if (rc != CRAFT_ENOTFOUND) {
            return rc;
        }
    }
    if (removed == 0) {
        return kv_res_int(res, 0);
    }
    rc = kv_coll_commit(ks, &k, &coll);
    return rc != CRAFT_OK ? rc : kv_res_int(res, removed);
}

/* ---- picking members (SPOP, SRANDMEMBER) ----
 *
 * The seed is a position in the collection's hash order: the members are taken from the
 * first at or after it, on in order, wrapping round. With a negative count (SRANDMEMBER:
 * repeats allowed) each pick draws its own position from the seed. */

static uint64_t kv_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

struct take {
    struct kv_arr *out;                /* the members, as bulk strings (NULL: measure only) */
    uint8_t (*keys)[KV_EKEY_MAX - 16]; /* SPOP: copies of the fields, to delete after */
    size_t *lens;
    uint64_t want, n;
    uint64_t bytes;   /* the answer's encoded size so far */
    uint64_t stop_at; /* the second pass stops at this position */
    bool second;
};

static int take_one(void *ctx, uint64_t hash, struct craft_kv_bytes f, struct craft_kv_bytes v)
{
    (void)v;
    struct take *t = ctx;
    if (t->n == t->want || (t->second && hash >= t->stop_at)) {
        return CRAFT_KV_ITER_STOP;
    }
    if (t->out != NULL) {
        kv_arr_bytes(t->out, CRAFT_KV_RES_BULK, f.p, f.len);
    }
    t->bytes += 5 + (uint64_t)f.len;
    if (t->keys != NULL && f.len > 0) {
        memcpy(t->keys[t->n], f.p, f.len);
    }
    if (t->lens != NULL) {
        t->lens[t->n] = f.len;
    }
    t->n++;
    return CRAFT_OK;
}

/* want distinct members from position `from`, in order, wrapping once. */
static int take_from(struct kv_space *ks, uint64_t id, uint64_t from, struct take *t)
{
    t->second = false;
    int rc = kv_elems_walk(ks, id, from, take_one, t);
    if (rc == CRAFT_OK && t->n < t->want && from != 0) {
        t->second = true;
        t->stop_at = from;
        rc = kv_elems_walk(ks, id, 0, take_one, t);
    }
    return rc;
}

/* SPOP's members, a chunk at a time: taking them from the seed again after each chunk is
 * deleted goes on where the chunk stopped, so memory stays one chunk's whatever the count. */
#define POP_CHUNK 256

static int set_pop(struct kv_space *ks, struct kv_keyed *k, uint64_t want, uint64_t seed,
                   struct kv_arr *out)
{
    struct kv_coll coll = k->old.coll;
    struct take t = {.keys = malloc(POP_CHUNK * sizeof *t.keys),
                     .lens = malloc(POP_CHUNK * sizeof *t.lens)};
    int rc = t.keys != NULL && t.lens != NULL ? CRAFT_OK : CRAFT_ENOMEM;
    for (uint64_t left = want; rc == CRAFT_OK && left > 0;) {
        t.out = out;
        t.n = 0;
        t.want = left < POP_CHUNK ? left : POP_CHUNK;
        rc = take_from(ks, coll.id, seed, &t);
        if (rc == CRAFT_OK && t.n != t.want) {
            rc = CRAFT_ECORRUPT; /* fewer elements than the header counts */
        }
        for (uint64_t i = 0; rc == CRAFT_OK && i < t.n; i++) {
            rc = kv_elem_del(ks, coll.id, (struct craft_kv_bytes){t.keys[i], (uint32_t)t.lens[i]});
            rc = rc == CRAFT_ENOTFOUND ? CRAFT_ECORRUPT : rc;
            coll.count--;
        }
        left -= t.n;
    }
    free(t.keys);
    free(t.lens);
    return rc == CRAFT_OK ? kv_coll_commit(ks, k, &coll) : rc;
}

static int set_pick(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                    const struct craft_kv_bytes *a, size_t budget, struct craft_kv_result **res)
{
    bool has_count;
    int64_t count;
    uint64_t seed;
    CRAFT_ASSERT(pick_parse(c->op, n, a, &has_count, &count, &seed) == NULL);
    bool pop = c->op == CRAFT_KV_OP_SPOP;
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_SET, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    if (!k.old.found || count == 0) {
        return has_count ? kv_reply(res, kv_result_new(CRAFT_KV_RES_ARRAY, 0, NULL, 0))
                         : kv_reply(res, kv_result_new(CRAFT_KV_RES_NIL, 0, NULL, 0));
    }
    struct kv_arr out = {.max = budget};
    struct kv_coll coll = k.old.coll;
    if (count < 0) {
        /* SRANDMEMBER with repeats: each pick its own position (at most
         * CRAFT_KV_RANDOM_PICKS_MAX of them: pick_parse). */
        for (int64_t i = 0; rc == CRAFT_OK && i < -count && !out.over && out.rc == CRAFT_OK; i++) {
            struct take t = {.out = &out, .want = 1};
            rc = take_from(ks, coll.id, kv_mix64(seed + (uint64_t)i), &t);
        }
        return kv_arr_done(&out, rc, res);
    }
    uint64_t want = (uint64_t)count < coll.count ? (uint64_t)count : coll.count;
    if (pop) {
        /* Measured first: an answer over the budget pops nothing (the members would be
         * lost with the answer), on every replica alike. */
        struct take m = {.want = want};
        rc = take_from(ks, coll.id, seed, &m);
        if (rc == CRAFT_OK && 9 + m.bytes > budget) {
            return kv_res_err(res, CRAFT_KV_ERR_POP_LARGE);
        }
        rc = rc == CRAFT_OK ? set_pop(ks, &k, want, seed, &out) : rc;
    } else {
        struct take t = {.out = &out, .want = want};
        rc = take_from(ks, coll.id, seed, &t);
        if (rc == CRAFT_OK && t.n != want) {
            rc = CRAFT_ECORRUPT; /* fewer elements than the header counts */
        }
    }
    if (!has_count && rc == CRAFT_OK && out.rc == CRAFT_OK && !out.over) {
        /* One member, as a bulk string. */
        CRAFT_ASSERT(out.n == 1);
        rc = kv_reply(res, kv_result_new(CRAFT_KV_RES_BULK, 0, out.buf + 5, out.len - 5));
        free(out.buf);
        return rc;
    }
    return kv_arr_done(&out, rc, res);
}

/* ---- reads ---- */

struct emit {
    struct kv_arr *out;
    bool fields, values, scores;
    /* SCAN: */
    uint64_t seen, count, next;
    bool last_hash_set;
    uint64_t last_hash;
    struct craft_kv_bytes pattern;
    bool has_pattern;
    uint64_t elements; /* pairs or members added */
};

static int emit_all(void *ctx, uint64_t hash, struct craft_kv_bytes f, struct craft_kv_bytes v)
{
    (void)hash;
    struct emit *e = ctx;
    if (e->fields) {
        kv_arr_bytes(e->out, CRAFT_KV_RES_BULK, f.p, f.len);
    }
    if (e->values && e->scores) {
        if (v.len != 8) {
            return CRAFT_ECORRUPT;
        }
        char text[KV_SCORE_TEXT_MAX];
        size_t tn = kv_score_format(kv_score_get(v.p), text);
        kv_arr_bytes(e->out, CRAFT_KV_RES_BULK, (const uint8_t *)text, tn);
    } else if (e->values) {
        kv_arr_bytes(e->out, CRAFT_KV_RES_BULK, v.p, v.len);
    }
    return e->out->over || e->out->rc != CRAFT_OK ? CRAFT_KV_ITER_STOP : CRAFT_OK;
}

/* HSCAN / SSCAN: about count elements from the cursor, then those sharing the last one's
 * hash, so that the next cursor (the hash of the element after) moves on. */
static int emit_scan(void *ctx, uint64_t hash, struct craft_kv_bytes f, struct craft_kv_bytes v)
{
    struct emit *e = ctx;
    if (e->seen >= e->count && (!e->last_hash_set || hash != e->last_hash)) {
        e->next = hash;
        return CRAFT_KV_ITER_STOP;
    }
    e->seen++;
    e->last_hash_set = true;
    e->last_hash = hash;
    if (e->has_pattern && !craft_kv_glob_match(e->pattern.p, e->pattern.len, f.p, f.len)) {
        return CRAFT_OK;
    }
    return emit_all(ctx, hash, f, v);
}

int kv_coll_scan(struct kv_space *ks, uint64_t id, const struct kv_scan_args *sa, bool values,
                 bool scores, size_t budget, struct craft_kv_result **res)
{
    struct kv_arr out = {.max = budget};
    struct emit e = {.out = &out,
                     .fields = true,
                     .values = values,
                     .scores = scores,
                     .count = sa->count,
                     .pattern = sa->pattern,
                     .has_pattern = sa->has_pattern};
    int rc = id != 0 ? kv_elems_walk(ks, id, sa->cursor, emit_scan, &e) : CRAFT_OK;
    if (rc != CRAFT_OK || out.rc != CRAFT_OK || out.over) {
        return kv_arr_done(&out, rc, res);
    }
    /* [cursor, [elements]] */
    char cur[24];
    int cn = snprintf(cur, sizeof cur, "%" PRIu64, e.next);
    struct kv_arr outer = {.max = SIZE_MAX};
    kv_arr_bytes(&outer, CRAFT_KV_RES_BULK, (const uint8_t *)cur, (size_t)cn);
    if (outer.rc == CRAFT_OK) {
        outer.rc = kv_reserve(&outer.buf, &outer.cap, outer.len + 9 + out.len);
    }
    if (outer.rc == CRAFT_OK) {
        outer.buf[outer.len] = CRAFT_KV_RES_ARRAY;
        craft_put_u32(outer.buf + outer.len + 1, (uint32_t)out.n);
        craft_put_u32(outer.buf + outer.len + 5, (uint32_t)out.len);
        if (out.len > 0) {
            memcpy(outer.buf + outer.len + 9, out.buf, out.len);
        }
        outer.len += 9 + out.len;
        outer.n++;
    }
    free(out.buf);
    return kv_arr_done(&outer, CRAFT_OK, res);
}

bool kv_arg_double(struct craft_kv_bytes b, bool strict, double *out)
{
    char buf[KV_HUMAN_TEXT_MAX + 1];
    if (b.len == 0 || b.len > KV_HUMAN_TEXT_MAX || b.p[0] == ' ' || b.p[0] == '\t') {
        return false;
    }
    memcpy(buf, b.p, b.len);
    buf[b.len] = '\0';
    if (strlen(buf) != b.len) {
        return false; /* a NUL inside */
    }
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    if (*end != '\0' || isnan(d) || (strict && errno == ERANGE && (isinf(d) || d == 0))) {
        return false;
    }
    *out = d == 0 ? 0.0 : d; /* -0 is 0 */
    return true;
}

/* The shortest digits, at most max_prec + 1 of them, that read back as d (finite, not 0;
 * past max_prec + 1 digits: d rounded to that many): digits[0..*nd), and the power of ten of
 * the first; *neg for a negative d. */
static void shortest_digits(double d, int max_prec, char digits[24], int *nd, int *e10, bool *neg)
{
    char e[40];
    for (int prec = 0; prec <= max_prec; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, d);
        if (strtod(e, NULL) == d) {
            break;
        }
    }
    /* e: [-]D[.DDD]e(+|-)XX */
    *neg = e[0] == '-';
    const char *p = e + *neg;
    int n = 0;
    digits[n++] = *p++;
    if (*p == '.') {
        for (p++; *p != 'e'; p++) {
            digits[n++] = *p;
        }
    }
    *e10 = atoi(p + 1);
    while (n > 1 && digits[n - 1] == '0') {
        n--;
    }
    *nd = n;
}

size_t kv_double_human(double d, char out[KV_HUMAN_TEXT_MAX])
{
    CRAFT_ASSERT(isfinite(d));
    if (d == 0) {
        out[0] = '0';
        out[1] = '\0';
        return 1;
    }
    char digits[24];
    int nd, e10;
    bool neg;
    shortest_digits(d, 14, digits, &nd, &e10, &neg);
    size_t w = 0;
    if (neg) {
        out[w++] = '-';
    }
    if (e10 < 0) {
        out[w++] = '0';
        out[w++] = '.';
        for (int i = 0; i < -e10 - 1; i++) {
            out[w++] = '0';
        }
        memcpy(out + w, digits, (size_t)nd);
        w += (size_t)nd;
    } else {
        for (int i = 0; i <= e10; i++) {
            out[w++] = i < nd ? digits[i] : '0';
        }
        if (nd > e10 + 1) {
            out[w++] = '.';
            memcpy(out + w, digits + e10 + 1, (size_t)(nd - e10 - 1));
            w += (size_t)(nd - e10 - 1);
        }
    }
    CRAFT_ASSERT(w < KV_HUMAN_TEXT_MAX);
    out[w] = '\0';
    return w;
}

size_t kv_score_format(double d, char out[KV_SCORE_TEXT_MAX])
{
    /* As Redis 7.2 prints a double (fpconv_dtoa): the shortest digits that read back as d,
     * as a plain number when its exponent is small ("10", "0.1", "1.5"), else in scientific
     * notation without padding ("1e+300", "1e-7"). */
    if (isinf(d)) {
        return (size_t)snprintf(out, KV_SCORE_TEXT_MAX, "%s", d > 0 ? "inf" : "-inf");
    }
    if (d == 0) {
        return (size_t)snprintf(out, KV_SCORE_TEXT_MAX, "0");
    }
    char digits[24];
    int nd, e10;
    bool neg;
    shortest_digits(d, 16, digits, &nd, &e10, &neg);
    int k = e10 - (nd - 1); /* d = digits * 10^k */
    int ex = e10 < 0 ? -e10 : e10;
    size_t w = 0;
    if (neg) {
        out[w++] = '-';
    }
    if (k >= 0 && ex < nd + 7) {
        memcpy(out + w, digits, (size_t)nd);
        w += (size_t)nd;
        memset(out + w, '0', (size_t)k);
        w += (size_t)k;
    } else if (k < 0 && (k > -7 || ex < 4)) {
        int offset = nd + k; /* digits before the point */
        if (offset <= 0) {
            out[w++] = '0';
            out[w++] = '.';
            memset(out + w, '0', (size_t)-offset);
            w += (size_t)-offset;
            memcpy(out + w, digits, (size_t)nd);
            w += (size_t)nd;
        } else {
            memcpy(out + w, digits, (size_t)offset);
            w += (size_t)offset;
            out[w++] = '.';
            memcpy(out + w, digits + offset, (size_t)(nd - offset));
            w += (size_t)(nd - offset);
        }
    } else {
        out[w++] = digits[0];
        if (nd > 1) {
            out[w++] = '.';
            memcpy(out + w, digits + 1, (size_t)(nd - 1));
            w += (size_t)(nd - 1);
        }
        w += (size_t)snprintf(out + w, KV_SCORE_TEXT_MAX - w, "e%c%d", e10 < 0 ? '-' : '+', ex);
    }
    CRAFT_ASSERT(w < KV_SCORE_TEXT_MAX);
    out[w] = '\0';
    return w;
}

bool kv_range_of(int64_t start, int64_t stop, uint64_t count, uint64_t *from, uint64_t *to)
{
    int64_t n = count > INT64_MAX ? INT64_MAX : (int64_t)count;
    if (start < 0) {
        start = start < -n ? 0 : n + start;
    }
    if (stop < 0) {
        stop = stop < -n ? -1 : n + stop;
    }
    if (stop >= n) {
        stop = n - 1;
    }
    if (start > stop || start >= n) {
        return false;
    }
    *from = (uint64_t)start;
    *to = (uint64_t)stop;
    return true;
}

static int coll_read(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                     const struct craft_kv_bytes *a, size_t budget, struct craft_kv_result **res)
{
    uint8_t type = c->op >= CRAFT_KV_OP_SISMEMBER ? KV_TYPE_SET : KV_TYPE_HASH;
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, type, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    bool found = k.old.found;
    uint64_t id = found ? k.old.coll.id : 0;
    const uint8_t *v;
    size_t vlen;
    struct kv_arr out = {.max = budget};
    switch (c->op) {
    case CRAFT_KV_OP_HLEN:
    case CRAFT_KV_OP_SCARD:
        return kv_res_int(res, found ? (int64_t)k.old.coll.count : 0);
    case CRAFT_KV_OP_HGET:
    case CRAFT_KV_OP_HEXISTS:
    case CRAFT_KV_OP_HSTRLEN:
    case CRAFT_KV_OP_SISMEMBER:
        rc = found ? kv_elem_get(ks, id, a[0], &v, &vlen) : CRAFT_ENOTFOUND;
        if (rc != CRAFT_OK && rc != CRAFT_ENOTFOUND) {
            return rc;
        }
        if (c->op == CRAFT_KV_OP_HGET) {
            return kv_reply(res, rc == CRAFT_OK ? kv_result_new(CRAFT_KV_RES_BULK, 0, v, vlen)
                                                : kv_result_new(CRAFT_KV_RES_NIL, 0, NULL, 0));
        }
        if (c->op == CRAFT_KV_OP_HSTRLEN) {
            return kv_res_int(res, rc == CRAFT_OK ? (int64_t)vlen : 0);
        }
        return kv_res_int(res, rc == CRAFT_OK);
    case CRAFT_KV_OP_HMGET:
    case CRAFT_KV_OP_SMISMEMBER:
        for (size_t i = 0; i < n && rc == CRAFT_OK; i++) {
            rc = found ? kv_elem_get(ks, id, a[i], &v, &vlen) : CRAFT_ENOTFOUND;
            if (rc == CRAFT_OK || rc == CRAFT_ENOTFOUND) {
                if (c->op == CRAFT_KV_OP_SMISMEMBER) {
                    kv_arr_int(&out, rc == CRAFT_OK);
                } else if (rc == CRAFT_OK) {
                    kv_arr_bytes(&out, CRAFT_KV_RES_BULK, v, vlen);
                } else {
                    kv_arr_nil(&out);
                }
                rc = CRAFT_OK;
            }
        }
        return kv_arr_done(&out, rc, res);
    case CRAFT_KV_OP_HGETALL:
    case CRAFT_KV_OP_HKEYS:
    case CRAFT_KV_OP_HVALS:
    case CRAFT_KV_OP_SMEMBERS: {
        struct emit e = {.out = &out,
                         .fields = c->op != CRAFT_KV_OP_HVALS,
                         .values = c->op == CRAFT_KV_OP_HGETALL || c->op == CRAFT_KV_OP_HVALS};
        rc = found ? kv_elems_walk(ks, id, 0, emit_all, &e) : CRAFT_OK;
        return kv_arr_done(&out, rc, res);
    }
    case CRAFT_KV_OP_HSCAN:
    case CRAFT_KV_OP_SSCAN: {
        struct kv_scan_args sa;
        CRAFT_ASSERT(kv_scan_parse(c->op, n, a, &sa) == NULL);
        return kv_coll_scan(ks, id, &sa, c->op == CRAFT_KV_OP_HSCAN && !sa.novalues, false, budget,
                            res);
    }
    case CRAFT_KV_OP_SRANDMEMBER:
        return set_pick(ks, c, n, a, budget, res);
    default:
        CRAFT_UNREACHABLE();
    }
}

/* SINTER SUNION SDIFF: the first set's members (each set's, for SUNION) kept or dropped by
 * membership in the others. */
struct combine {
    struct kv_space *ks;
    struct kv_arr *out;
    uint8_t op;
    const uint64_t *ids; /* the sets' ids, 0 for a missing key */
    size_t n_sets, self;
};

static int combine_one(void *ctx, uint64_t hash, struct craft_kv_bytes f, struct craft_kv_bytes v)
{
    (void)hash, (void)v;
    struct combine *m = ctx;
    bool keep = true;
    for (size_t j = 0; j < m->n_sets && keep; j++) {
        if (j == m->self || (m->op == CRAFT_KV_OP_SUNION && j > m->self)) {
            continue;
        }
        const uint8_t *p;
        size_t plen;
        int rc = m->ids[j] != 0 ? kv_elem_get(m->ks, m->ids[j], f, &p, &plen) : CRAFT_ENOTFOUND;
        if (rc != CRAFT_OK && rc != CRAFT_ENOTFOUND) {
            return rc;
        }
        bool in = rc == CRAFT_OK;
        /* SINTER: in every other; SDIFF: in none of the others; SUNION: not already
         * emitted from an earlier set. */
        keep = m->op == CRAFT_KV_OP_SINTER ? in : !in;
    }
    if (keep) {
        kv_arr_bytes(m->out, CRAFT_KV_RES_BULK, f.p, f.len);
    }
    return m->out->over || m->out->rc != CRAFT_OK ? CRAFT_KV_ITER_STOP : CRAFT_OK;
}

static int set_combine(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                       const struct craft_kv_bytes *a, size_t budget, struct craft_kv_result **res)
{
    size_t n_sets = n + 1;
    uint64_t *ids = calloc(n_sets, sizeof *ids);
    if (ids == NULL) {
        return CRAFT_ENOMEM;
    }
    int rc = CRAFT_OK;
    bool any_missing = false;
    for (size_t i = 0; i < n_sets && rc == CRAFT_OK; i++) {
        struct kv_keyed k;
        bool wrong;
        rc = kv_coll_find(ks, i == 0 ? c->key : a[i - 1], KV_TYPE_SET, &k, &wrong);
        if (rc == CRAFT_OK && wrong) {
            free(ids);
            return kv_res_err(res, CRAFT_KV_ERR_WRONGTYPE);
        }
        ids[i] = rc == CRAFT_OK && k.old.found ? k.old.coll.id : 0;
        any_missing = any_missing || ids[i] == 0;
    }
    struct kv_arr out = {.max = budget};
    struct combine m = {.ks = ks, .out = &out, .op = c->op, .ids = ids, .n_sets = n_sets};
    size_t sources = c->op == CRAFT_KV_OP_SUNION ? n_sets : 1;
    if (c->op == CRAFT_KV_OP_SINTER && any_missing) {
        sources = 0; /* an empty set in the intersection */
    }
    for (size_t i = 0; i < sources && rc == CRAFT_OK && !out.over && out.rc == CRAFT_OK; i++) {
        m.self = i;
        rc = ids[i] != 0 ? kv_elems_walk(ks, ids[i], 0, combine_one, &m) : CRAFT_OK;
    }
    free(ids);
    return kv_arr_done(&out, rc, res);
}

/* SINTERSTORE / SUNIONSTORE / SDIFFSTORE dst key...: the combination of the sets (the
 * read's, key as the first set), written over dst as a new set; the answer, its size. */
static int set_store(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                     const struct craft_kv_bytes *a, size_t budget, struct craft_kv_result **res)
{
    static const uint8_t read_op[] = {
        [CRAFT_KV_OP_SINTERSTORE - CRAFT_KV_OP_SINTERSTORE] = CRAFT_KV_OP_SINTER,
        [CRAFT_KV_OP_SUNIONSTORE - CRAFT_KV_OP_SINTERSTORE] = CRAFT_KV_OP_SUNION,
        [CRAFT_KV_OP_SDIFFSTORE - CRAFT_KV_OP_SINTERSTORE] = CRAFT_KV_OP_SDIFF};
    (void)budget; /* the answer is an integer: the members' bound is fixed, not the MULTI's */
    struct craft_kv_cmd r = {.op = read_op[c->op - CRAFT_KV_OP_SINTERSTORE], .key = a[0]};
    struct craft_kv_result *members = NULL;
    int rc = set_combine(ks, &r, n - 1, a + 1, CRAFT_KV_MULTI_REPLY_BYTES_MAX, &members);
    if (rc != CRAFT_OK || members->type != CRAFT_KV_RES_ARRAY) {
        if (rc == CRAFT_OK && strcmp((const char *)members->data, CRAFT_KV_ERR_REPLY_LARGE) == 0) {
            craft_kv_result_free(members);
            return kv_res_err(res, "ERR result too large to store (nothing was stored)");
        }
        if (rc == CRAFT_OK) {
            *res = members; /* WRONGTYPE: nothing changes */
        }
        return rc;
    }
    struct kv_keyed dst;
    rc = kv_key_find(ks, c->key, &dst);
    if (rc == CRAFT_OK && dst.old.found) {
        rc = kv_key_remove(ks, dst.sk, dst.sklen, &dst.old);
        dst.old = (struct kv_live){0};
    }
    struct kv_coll set = {0};
    if (rc == CRAFT_OK && members->integer > 0) {
        set = kv_coll_open(ks, &dst, KV_TYPE_SET);
        size_t off = 0;
        struct craft_kv_result_view el;
        while (rc == CRAFT_OK && craft_kv_result_next(members->data, members->len, &off, &el)) {
            rc = kv_elem_put(ks, set.id, (struct craft_kv_bytes){el.data, (uint32_t)el.len},
                             (struct craft_kv_bytes){NULL, 0});
            set.count++;
        }
        if (rc == CRAFT_OK) {
            rc = kv_coll_commit(ks, &dst, &set);
        }
    }
    int64_t size = members->integer;
    craft_kv_result_free(members);
    return rc != CRAFT_OK ? rc : kv_res_int(res, size);
}

#define ARGS_ON_STACK 16

int kv_coll_exec(struct kv_space *ks, const struct craft_kv_cmd *c, size_t budget,
                 struct craft_kv_result **res)
{
    CRAFT_ASSERT(craft_kv_op_is_coll(c->op));
    CRAFT_ASSERT(ks->write || craft_kv_op_is_read(c->op));
    *res = NULL;
    /* The arguments as an array: the caller's (a read's, a test's), else decoded from the
     * entry into a stack array (commands have few: no allocation per command on the write
     * path) or, past it, an allocated one. */
    struct craft_kv_bytes few[ARGS_ON_STACK], *decoded = NULL;
    const struct craft_kv_bytes *a = c->args;
    if (c->n > 0 && a == NULL) {
        decoded = c->n <= ARGS_ON_STACK ? few : malloc(c->n * sizeof *decoded);
        if (decoded == NULL) {
            return CRAFT_ENOMEM;
        }
        size_t off = 0;
        for (uint32_t i = 0; i < c->n; i++) {
            bool more = craft_kv_cmd_next(c, &off, &decoded[i], NULL);
            CRAFT_ASSERT(more);
        }
        a = decoded;
    }
    size_t n = c->n;
    int rc;
    const char *err = craft_kv_coll_check(c->op, n, a);
    if (err != NULL) {
        /* The proposer checks first: only a command it did not make gets here. */
        rc = kv_res_err(res, err);
    } else if (kv_op_is_list(c->op)) {
        rc = kv_list_exec(ks, c, n, a, budget, res);
    } else if (kv_op_is_zset(c->op)) {
        rc = kv_zset_exec(ks, c, n, a, budget, res);
    } else if (kv_op_is_str(c->op)) {
        rc = kv_str_exec(ks, c, n, a, res);
    } else {
        switch (c->op) {
        case CRAFT_KV_OP_HSET:
        case CRAFT_KV_OP_HMSET:
        case CRAFT_KV_OP_HSETNX:
            rc = hash_set(ks, c, n, a, res);
            break;
        case CRAFT_KV_OP_HINCRBY:
            rc = hash_incrby(ks, c, a, res);
            break;
        case CRAFT_KV_OP_HDEL:
            rc = coll_remove(ks, c, KV_TYPE_HASH, n, a, res);
            break;
        case CRAFT_KV_OP_SADD:
            rc = set_add(ks, c, n, a, res);
            break;
        case CRAFT_KV_OP_SREM:
            rc = coll_remove(ks, c, KV_TYPE_SET, n, a, res);
            break;
        case CRAFT_KV_OP_SPOP:
            rc = set_pick(ks, c, n, a, budget, res);
            break;
        case CRAFT_KV_OP_SINTER:
        case CRAFT_KV_OP_SUNION:
        case CRAFT_KV_OP_SDIFF:
            rc = set_combine(ks, c, n, a, budget, res);
            break;
        case CRAFT_KV_OP_SINTERSTORE:
        case CRAFT_KV_OP_SUNIONSTORE:
        case CRAFT_KV_OP_SDIFFSTORE:
            rc = set_store(ks, c, n, a, budget, res);
            break;
        case CRAFT_KV_OP_SMOVE:
            rc = set_move(ks, c, a, res);
            break;
        case CRAFT_KV_OP_HINCRBYFLOAT:
            rc = hash_incrbyfloat(ks, c, a, res);
            break;
        default:
            rc = coll_read(ks, c, n, a, budget, res);
            break;
        }
    }
    if (decoded != few) {
        free(decoded);
    }
    if (rc != CRAFT_OK && *res != NULL) {
        craft_kv_result_free(*res);
        *res = NULL;
    }
    return rc;
}
