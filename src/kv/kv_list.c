/* craftkv's lists (kv.md "Data types"): elements at contiguous positions head .. head +
 * count - 1 of the list's id (kv_internal.h), so a push or a pop at either end writes one
 * element and the header, LINDEX / LSET find an element by its position, LRANGE walks
 * from one. LREM rewrites the elements after the first it removes (O(n), as Redis's). */
#include <stdlib.h>

#include "base/assert.h"
#include "base/bytes.h"
#include "kv/kv_coll.h"

#define ERR_NO_SUCH_KEY "ERR no such key"
#define ERR_INDEX_RANGE "ERR index out of range"

bool kv_op_is_list(uint8_t op)
{
    return (op >= CRAFT_KV_OP_LPUSH && op <= CRAFT_KV_OP_LTRIM) ||
           (op >= CRAFT_KV_OP_LLEN && op <= CRAFT_KV_OP_LINDEX) || op == CRAFT_KV_OP_LINSERT ||
           op == CRAFT_KV_OP_LMOVE || op == CRAFT_KV_OP_LPOS;
}

static bool is_side(struct craft_kv_bytes b)
{
    return kv_arg_is(b, "LEFT") || kv_arg_is(b, "RIGHT");
}

/* LPOS's options: RANK r (not 0), COUNT c (>= 0; 0: every match), MAXLEN m (>= 0). */
struct lpos {
    int64_t rank, count, maxlen;
    bool has_count;
};

static const char *lpos_parse(size_t n, const struct craft_kv_bytes *a, struct lpos *o)
{
    *o = (struct lpos){.rank = 1, .count = 1};
    if (n < 1 || n % 2 != 1) {
        return n < 1 ? KV_ERR_ARGS : KV_ERR_SYNTAX;
    }
    for (size_t i = 1; i + 1 < n; i += 2) {
        int64_t v;
        if (!kv_arg_is(a[i], "RANK") && !kv_arg_is(a[i], "COUNT") && !kv_arg_is(a[i], "MAXLEN")) {
            return KV_ERR_SYNTAX;
        }
        if (!kv_arg_i64(a[i + 1], &v)) {
            return KV_ERR_NOT_INT;
        }
        if (kv_arg_is(a[i], "RANK")) {
            if (v == 0 || v == INT64_MIN) {
                return "ERR RANK can't be zero: use 1 to start from the first match, 2 from the "
                       "second ... or use negative to start from the end of the list";
            }
            o->rank = v;
        } else if (kv_arg_is(a[i], "COUNT")) {
            if (v < 0) {
                return "ERR COUNT can't be negative";
            }
            o->count = v;
            o->has_count = true;
        } else if (kv_arg_is(a[i], "MAXLEN")) {
            if (v < 0) {
                return "ERR MAXLEN can't be negative";
            }
            o->maxlen = v;
        } else {
            return KV_ERR_SYNTAX;
        }
    }
    return NULL;
}

const char *kv_list_check(uint8_t op, size_t n, const struct craft_kv_bytes *a)
{
    int64_t v;
    switch (op) {
    case CRAFT_KV_OP_LPUSH:
    case CRAFT_KV_OP_RPUSH:
    case CRAFT_KV_OP_LPUSHX:
    case CRAFT_KV_OP_RPUSHX:
        return n < 1 ? KV_ERR_ARGS : NULL;
    case CRAFT_KV_OP_LPOP:
    case CRAFT_KV_OP_RPOP:
        if (n > 1) {
            return KV_ERR_ARGS;
        }
        if (n == 1 && !kv_arg_i64(a[0], &v)) {
            return KV_ERR_NOT_INT;
        }
        return n == 1 && v < 0 ? KV_ERR_POSITIVE : NULL;
    case CRAFT_KV_OP_LSET:
    case CRAFT_KV_OP_LREM:
        return n != 2 ? KV_ERR_ARGS : kv_arg_i64(a[0], &v) ? NULL : KV_ERR_NOT_INT;
    case CRAFT_KV_OP_LTRIM:
    case CRAFT_KV_OP_LRANGE:
        return n != 2                                         ? KV_ERR_ARGS
               : kv_arg_i64(a[0], &v) && kv_arg_i64(a[1], &v) ? NULL
                                                              : KV_ERR_NOT_INT;
    case CRAFT_KV_OP_LINDEX:
        return n != 1 ? KV_ERR_ARGS : kv_arg_i64(a[0], &v) ? NULL : KV_ERR_NOT_INT;
    case CRAFT_KV_OP_LLEN:
        return n != 0 ? KV_ERR_ARGS : NULL;
    case CRAFT_KV_OP_LINSERT:
        if (n != 3) {
            return KV_ERR_ARGS;
        }
        return kv_arg_is(a[0], "BEFORE") || kv_arg_is(a[0], "AFTER") ? NULL : KV_ERR_SYNTAX;
    case CRAFT_KV_OP_LMOVE:
        if (n != 3) {
            return KV_ERR_ARGS;
        }
        if (a[0].len > CRAFT_KV_KEY_BYTES_MAX) {
            return KV_ERR_KEY_LONG;
        }
        return is_side(a[1]) && is_side(a[2]) ? NULL : KV_ERR_SYNTAX;
    case CRAFT_KV_OP_LPOS: {
        struct lpos o;
        return lpos_parse(n, a, &o);
    }
    default:
        CRAFT_UNREACHABLE();
    }
}

static int64_t arg(struct craft_kv_bytes b)
{
    int64_t v = 0;
    bool ok = kv_arg_i64(b, &v);
    CRAFT_ASSERT(ok); /* kv_list_check */
    return v;
}

static int elem_at(struct kv_space *ks, const struct kv_coll *c, uint64_t i, const uint8_t **v,
                   size_t *vlen)
{
    CRAFT_ASSERT(i < c->count);
    uint8_t k[KV_LKEY];
    kv_lkey(c->id, c->head + i, k);
    int rc = ks->o->get(ks->t, CRAFT_KV_TABLE_ELEMS, k, sizeof k, v, vlen);
    return rc == CRAFT_ENOTFOUND ? CRAFT_ECORRUPT : rc; /* positions are contiguous */
}

static int put_at(struct kv_space *ks, const struct kv_coll *c, uint64_t pos,
                  struct craft_kv_bytes v)
{
    uint8_t k[KV_LKEY];
    kv_lkey(c->id, pos, k);
    return ks->o->put(ks->t, CRAFT_KV_TABLE_ELEMS, k, sizeof k, v.p, v.len);
}

static int del_at(struct kv_space *ks, const struct kv_coll *c, uint64_t pos)
{
    uint8_t k[KV_LKEY];
    kv_lkey(c->id, pos, k);
    int rc = ks->o->del(ks->t, CRAFT_KV_TABLE_ELEMS, k, sizeof k);
    return rc == CRAFT_ENOTFOUND ? CRAFT_ECORRUPT : rc;
}

/* Redis's index: negative from the end. true with *i in [0, count) if it names one. */
static bool index_of(int64_t idx, uint64_t count, uint64_t *i)
{
    if (idx < 0) {
        if ((uint64_t) - (idx + 1) >= count) {
            return false;
        }
        *i = count - (uint64_t) - (idx + 1) - 1;
        return true;
    }
    if ((uint64_t)idx >= count) {
        return false;
    }
    *i = (uint64_t)idx;
    return true;
}

static int push(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                const struct craft_kv_bytes *a, struct craft_kv_result **res)
{
    bool left = c->op == CRAFT_KV_OP_LPUSH || c->op == CRAFT_KV_OP_LPUSHX;
    bool only_existing = c->op == CRAFT_KV_OP_LPUSHX || c->op == CRAFT_KV_OP_RPUSHX;
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_LIST, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    if (only_existing && !k.old.found) {
        return kv_res_int(res, 0);
    }
    struct kv_coll l = kv_coll_open(ks, &k, KV_TYPE_LIST);
    /* Room at that end (2^63 positions each way from the first push: never in practice). */
    if ((left && l.head < n) || (!left && UINT64_MAX - l.head - l.count < n)) {
        return kv_res_err(res, "ERR list has no room at that end");
    }
    for (size_t i = 0; i < n && rc == CRAFT_OK; i++) {
        if (left) {
            l.head--;
            rc = put_at(ks, &l, l.head, a[i]);
        } else {
            rc = put_at(ks, &l, l.head + l.count, a[i]);
        }
        l.count++;
    }
    if (rc == CRAFT_OK) {
        rc = kv_coll_commit(ks, &k, &l);
    }
    return rc != CRAFT_OK ? rc : kv_res_int(res, (int64_t)l.count);
}

/* LRANGE: from one position, to another. */
struct lrange {
    struct kv_arr *out; /* NULL: measure only */
    uint64_t left;
    uint64_t bytes; /* the answer's encoded size so far */
};

static int lrange_one(void *ctx, uint64_t pos, struct craft_kv_bytes f, struct craft_kv_bytes v)
{
    (void)pos, (void)f;
    struct lrange *r = ctx;
    if (r->left == 0) {
        return CRAFT_KV_ITER_STOP;
    }
    r->left--;
    r->bytes += 5 + (uint64_t)v.len;
    if (r->out == NULL) {
        return CRAFT_OK;
    }
    kv_arr_bytes(r->out, CRAFT_KV_RES_BULK, v.p, v.len);
    return r->out->over || r->out->rc != CRAFT_OK ? CRAFT_KV_ITER_STOP : CRAFT_OK;
}

static int pop(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
               const struct craft_kv_bytes *a, size_t budget, struct craft_kv_result **res)
{
    bool left = c->op == CRAFT_KV_OP_LPOP;
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_LIST, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    if (!k.old.found) {
        return kv_reply(res, kv_result_new(CRAFT_KV_RES_NIL, 0, NULL, 0));
    }
    struct kv_coll l = k.old.coll;
    uint64_t want = n == 1 ? (uint64_t)arg(a[0]) : 1;
    want = want < l.count ? want : l.count;
    if (want == 0) {
        return kv_reply(res, kv_result_new(CRAFT_KV_RES_ARRAY, 0, NULL, 0)); /* unchanged */
    }
    /* Measured first: an answer over the budget pops nothing (the elements would be lost
     * with the answer), on every replica alike. */
    struct lrange m = {.left = want};
    rc = kv_elems_walk(ks, l.id, left ? l.head : l.head + l.count - want, lrange_one, &m);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (9 + m.bytes > budget) {
        return kv_res_err(res, CRAFT_KV_ERR_POP_LARGE);
    }
    struct kv_arr out = {.max = budget};
    for (uint64_t i = 0; i < want && rc == CRAFT_OK; i++) {
        const uint8_t *v;
        size_t vlen;
        uint64_t at = left ? 0 : l.count - 1;
        rc = elem_at(ks, &l, at, &v, &vlen);
        if (rc == CRAFT_OK) {
            kv_arr_bytes(&out, CRAFT_KV_RES_BULK, v, vlen); /* copied before the delete */
            rc = del_at(ks, &l, l.head + at);
        }
        if (left) {
            l.head++;
        }
        l.count--;
    }
    if (rc == CRAFT_OK) {
        rc = kv_coll_commit(ks, &k, &l);
    }
    if (n == 0 && rc == CRAFT_OK && out.rc == CRAFT_OK && !out.over) {
        rc = kv_reply(res, kv_result_new(CRAFT_KV_RES_BULK, 0, out.buf + 5, out.len - 5));
        free(out.buf);
        return rc;
    }
    return kv_arr_done(&out, rc, res);
}

static int lset(struct kv_space *ks, const struct craft_kv_cmd *c, const struct craft_kv_bytes *a,
                struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_LIST, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    if (!k.old.found) {
        return kv_res_err(res, ERR_NO_SUCH_KEY);
    }
    struct kv_coll l = k.old.coll;
    uint64_t i;
    if (!index_of(arg(a[0]), l.count, &i)) {
        return kv_res_err(res, ERR_INDEX_RANGE);
    }
    rc = put_at(ks, &l, l.head + i, a[1]);
    if (rc == CRAFT_OK) {
        rc = kv_coll_commit(ks, &k, &l);
    }
    return rc != CRAFT_OK ? rc : kv_reply(res, kv_result_new(CRAFT_KV_RES_OK, 0, NULL, 0));
}

static int ltrim(struct kv_space *ks, const struct craft_kv_cmd *c, const struct craft_kv_bytes *a,
                 struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_LIST, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    if (k.old.found) {
        struct kv_coll l = k.old.coll;
        uint64_t from = 0, to = 0;
        bool keep = kv_range_of(arg(a[0]), arg(a[1]), l.count, &from, &to);
        uint64_t keep_from = keep ? from : l.count, keep_to = keep ? to : l.count;
        for (uint64_t i = 0; i < l.count && rc == CRAFT_OK; i++) {
            if (i < keep_from || i > keep_to || !keep) {
                rc = del_at(ks, &l, l.head + i);
            }
        }
        /* A change even when nothing goes, as Redis signals it (WATCH aborts). */
        if (rc == CRAFT_OK) {
            l.head += keep ? from : 0;
            l.count = keep ? to - from + 1 : 0;
            rc = kv_coll_commit(ks, &k, &l);
        }
    }
    return rc != CRAFT_OK ? rc : kv_reply(res, kv_result_new(CRAFT_KV_RES_OK, 0, NULL, 0));
}

/* LREM in one pass over positions, O(1) memory: element i read, compared, and if kept
 * written down to position w <= i (a copy: the store's bytes do not outlive the write).
 * From the tail (count < 0) a first pass finds the first index to remove from. */
static bool same_bytes(const uint8_t *p, size_t n, struct craft_kv_bytes b)
{
    return n == b.len && (n == 0 || memcmp(p, b.p, n) == 0);
}

static int lrem(struct kv_space *ks, const struct craft_kv_cmd *c, const struct craft_kv_bytes *a,
                struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_LIST, &k, res);
    if (rc != CRAFT_OK || *res != NULL || !k.old.found) {
        return rc != CRAFT_OK || *res != NULL ? rc : kv_res_int(res, 0);
    }
    struct kv_coll l = k.old.coll;
    int64_t count = arg(a[0]);
    /* How many to remove (0: every one), as a magnitude (INT64_MIN has none in int64). */
    uint64_t limit = count >= 0 ? (uint64_t)count : (uint64_t)(-(count + 1)) + 1;
    uint64_t from = 0; /* count < 0: the first index the removals may touch */
    const uint8_t *v;
    size_t vlen;
    if (count < 0) {
        uint64_t seen = 0;
        for (uint64_t j = l.count; j > 0 && rc == CRAFT_OK && seen < limit; j--) {
            rc = elem_at(ks, &l, j - 1, &v, &vlen);
            if (rc == CRAFT_OK && same_bytes(v, vlen, a[1])) {
                seen++;
                from = j - 1;
            }
        }
        if (rc == CRAFT_OK && seen == 0) {
            return kv_res_int(res, 0);
        }
    }
    uint8_t *copy = NULL;
    size_t cap = 0;
    uint64_t w = 0, removed = 0;
    for (uint64_t i = 0; i < l.count && rc == CRAFT_OK; i++) {
        rc = elem_at(ks, &l, i, &v, &vlen);
        if (rc != CRAFT_OK) {
            break;
        }
        bool drop = i >= from && same_bytes(v, vlen, a[1]) && (limit == 0 || removed < limit);
        if (drop) {
            removed++;
        } else if (w != i) {
            rc = kv_reserve(&copy, &cap, vlen > 0 ? vlen : 1);
            if (rc == CRAFT_OK) {
                if (vlen > 0) {
                    memcpy(copy, v, vlen);
                }
                rc = put_at(ks, &l, l.head + w, (struct craft_kv_bytes){copy, (uint32_t)vlen});
            }
            w++;
        } else {
            w++;
        }
    }
    free(copy);
    for (uint64_t i = w; i < l.count && rc == CRAFT_OK; i++) {
        rc = del_at(ks, &l, l.head + i); /* the tail's freed positions */
    }
    if (rc == CRAFT_OK && removed > 0) {
        l.count = w;
        rc = kv_coll_commit(ks, &k, &l);
    }
    return rc != CRAFT_OK ? rc : kv_res_int(res, (int64_t)removed);
}

static int read_op(struct kv_space *ks, const struct craft_kv_cmd *c,
                   const struct craft_kv_bytes *a, size_t budget, struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_LIST, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    struct kv_coll l = k.old.found ? k.old.coll : (struct kv_coll){0};
    switch (c->op) {
    case CRAFT_KV_OP_LLEN:
        return kv_res_int(res, (int64_t)l.count);
    case CRAFT_KV_OP_LINDEX: {
        uint64_t i;
        if (!index_of(arg(a[0]), l.count, &i)) {
            return kv_reply(res, kv_result_new(CRAFT_KV_RES_NIL, 0, NULL, 0));
        }
        const uint8_t *v;
        size_t vlen;
        rc = elem_at(ks, &l, i, &v, &vlen);
        return rc != CRAFT_OK ? rc : kv_reply(res, kv_result_new(CRAFT_KV_RES_BULK, 0, v, vlen));
    }
    case CRAFT_KV_OP_LRANGE: {
        struct kv_arr out = {.max = budget};
        uint64_t from, to;
        if (kv_range_of(arg(a[0]), arg(a[1]), l.count, &from, &to)) {
            struct lrange r = {.out = &out, .left = to - from + 1};
            rc = kv_elems_walk(ks, l.id, l.head + from, lrange_one, &r);
            if (rc == CRAFT_OK && r.left != 0 && !out.over && out.rc == CRAFT_OK) {
                rc = CRAFT_ECORRUPT;
            }
        }
        return kv_arr_done(&out, rc, res);
    }
    default:
        CRAFT_UNREACHABLE();
    }
}

/* LINSERT key BEFORE|AFTER pivot element: the elements after the insertion point move up
 * one position (O(n - i), as Redis's O(n)). */
static int linsert(struct kv_space *ks, const struct craft_kv_cmd *c,
                   const struct craft_kv_bytes *a, struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_LIST, &k, res);
    if (rc != CRAFT_OK || *res != NULL || !k.old.found) {
        return rc != CRAFT_OK || *res != NULL ? rc : kv_res_int(res, 0);
    }
    struct kv_coll l = k.old.coll;
    if (UINT64_MAX - l.head - l.count < 1) {
        return kv_res_err(res, "ERR list has no room at that end");
    }
    const uint8_t *v;
    size_t vlen;
    uint64_t pivot = l.count;
    for (uint64_t i = 0; i < l.count && rc == CRAFT_OK; i++) {
        rc = elem_at(ks, &l, i, &v, &vlen);
        if (rc == CRAFT_OK && vlen == a[1].len && (vlen == 0 || memcmp(v, a[1].p, vlen) == 0)) {
            pivot = i;
            break;
        }
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (pivot == l.count) {
        return kv_res_int(res, -1);
    }
    uint64_t at = kv_arg_is(a[0], "AFTER") ? pivot + 1 : pivot;
    uint8_t *copy = NULL;
    size_t cap = 0;
    for (uint64_t i = l.count; i > at && rc == CRAFT_OK; i--) {
        rc = elem_at(ks, &l, i - 1, &v, &vlen);
        if (rc == CRAFT_OK) {
            rc = kv_reserve(&copy, &cap, vlen > 0 ? vlen : 1);
        }
        if (rc == CRAFT_OK) {
            if (vlen > 0) {
                memcpy(copy, v, vlen);
            }
            rc = put_at(ks, &l, l.head + i, (struct craft_kv_bytes){copy, (uint32_t)vlen});
        }
    }
    free(copy);
    if (rc == CRAFT_OK) {
        rc = put_at(ks, &l, l.head + at, a[2]);
        l.count++;
    }
    if (rc == CRAFT_OK) {
        rc = kv_coll_commit(ks, &k, &l);
    }
    return rc != CRAFT_OK ? rc : kv_res_int(res, (int64_t)l.count);
}

/* LMOVE src dst LEFT|RIGHT LEFT|RIGHT (RPOPLPUSH: RIGHT LEFT): one element popped from a
 * side of src, pushed on a side of dst (src itself: a rotation). Both keys' types are
 * checked before anything changes. */
static int lmove(struct kv_space *ks, const struct craft_kv_cmd *c, const struct craft_kv_bytes *a,
                 struct craft_kv_result **res)
{
    struct kv_keyed src, dst;
    bool wrong_src, wrong_dst = false;
    int rc = kv_coll_find(ks, c->key, KV_TYPE_LIST, &src, &wrong_src);
    if (rc == CRAFT_OK && !wrong_src && !src.old.found) {
        return kv_reply(res, kv_result_new(CRAFT_KV_RES_NIL, 0, NULL, 0)); /* Redis's order */
    }
    bool same = c->key.len == a[0].len && memcmp(c->key.p, a[0].p, a[0].len) == 0;
    if (rc == CRAFT_OK && !same) {
        rc = kv_coll_find(ks, a[0], KV_TYPE_LIST, &dst, &wrong_dst);
    }
    if (rc != CRAFT_OK || wrong_src || wrong_dst) {
        return rc != CRAFT_OK ? rc : kv_res_err(res, CRAFT_KV_ERR_WRONGTYPE);
    }
    struct kv_coll l = src.old.coll;
    bool from_left = kv_arg_is(a[1], "LEFT"), to_left = kv_arg_is(a[2], "LEFT");
    uint64_t at = from_left ? 0 : l.count - 1;
    const uint8_t *v;
    size_t vlen;
    rc = elem_at(ks, &l, at, &v, &vlen);
    struct craft_kv_result *r =
        rc == CRAFT_OK ? kv_result_new(CRAFT_KV_RES_BULK, 0, v, vlen) : NULL;
    if (rc == CRAFT_OK && r == NULL) {
        rc = CRAFT_ENOMEM;
    }
    if (rc == CRAFT_OK) {
        rc = del_at(ks, &l, l.head + at);
        l.head += from_left ? 1 : 0;
        l.count--;
    }
    /* One key (a rotation): pushed back into the same list, one commit, so a list of one
     * element keeps its key and expiry. */
    if (rc == CRAFT_OK && !same) {
        rc = kv_coll_commit(ks, &src, &l);
    }
    if (rc == CRAFT_OK && !same) {
        rc = kv_key_lookup(ks, dst.sk, dst.sklen, &dst.old); /* src's writes moved pointers */
    }
    struct kv_keyed *into = same ? &src : &dst;
    if (rc == CRAFT_OK) {
        struct kv_coll d = same ? l : kv_coll_open(ks, &dst, KV_TYPE_LIST);
        if ((to_left && d.head < 1) || (!to_left && UINT64_MAX - d.head - d.count < 1)) {
            rc = CRAFT_ECORRUPT; /* 2^63 pushes to one end: not in this universe */
        } else {
            d.head -= to_left ? 1 : 0;
            rc = put_at(ks, &d, to_left ? d.head : d.head + d.count,
                        (struct craft_kv_bytes){r->data, (uint32_t)r->len});
            d.count++;
        }
        if (rc == CRAFT_OK) {
            rc = kv_coll_commit(ks, into, &d);
        }
    }
    if (rc != CRAFT_OK) {
        craft_kv_result_free(r);
        return rc;
    }
    *res = r;
    return CRAFT_OK;
}

/* LPOS key element [RANK r] [COUNT c] [MAXLEN m]: indexes of the matches, from the head
 * (rank > 0) or the tail (rank < 0), skipping |rank| - 1 of them. */
static int lpos(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                const struct craft_kv_bytes *a, size_t budget, struct craft_kv_result **res)
{
    struct lpos o;
    CRAFT_ASSERT(lpos_parse(n, a, &o) == NULL);
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_LIST, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    struct kv_coll l = k.old.found ? k.old.coll : (struct kv_coll){0};
    struct kv_arr out = {.max = budget};
    uint64_t skip = o.rank > 0 ? (uint64_t)o.rank - 1 : (uint64_t) - (o.rank + 1);
    uint64_t want = o.count == 0 ? UINT64_MAX : (uint64_t)o.count, found = 0;
    uint64_t limit = o.maxlen == 0 || (uint64_t)o.maxlen > l.count ? l.count : (uint64_t)o.maxlen;
    int64_t first = -1;
    for (uint64_t j = 0; j < limit && found < want && rc == CRAFT_OK; j++) {
        uint64_t i = o.rank > 0 ? j : l.count - 1 - j;
        const uint8_t *v;
        size_t vlen;
        rc = elem_at(ks, &l, i, &v, &vlen);
        if (rc == CRAFT_OK && vlen == a[0].len && (vlen == 0 || memcmp(v, a[0].p, vlen) == 0)) {
            if (skip > 0) {
                skip--;
                continue;
            }
            found++;
            if (first < 0) {
                first = (int64_t)i;
            }
            kv_arr_int(&out, (int64_t)i);
        }
    }
    if (!o.has_count && rc == CRAFT_OK) {
        free(out.buf);
        return first < 0 ? kv_reply(res, kv_result_new(CRAFT_KV_RES_NIL, 0, NULL, 0))
                         : kv_res_int(res, first);
    }
    return kv_arr_done(&out, rc, res);
}

int kv_list_exec(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                 const struct craft_kv_bytes *a, size_t budget, struct craft_kv_result **res)
{
    switch (c->op) {
    case CRAFT_KV_OP_LPUSH:
    case CRAFT_KV_OP_RPUSH:
    case CRAFT_KV_OP_LPUSHX:
    case CRAFT_KV_OP_RPUSHX:
        return push(ks, c, n, a, res);
    case CRAFT_KV_OP_LPOP:
    case CRAFT_KV_OP_RPOP:
        return pop(ks, c, n, a, budget, res);
    case CRAFT_KV_OP_LSET:
        return lset(ks, c, a, res);
    case CRAFT_KV_OP_LREM:
        return lrem(ks, c, a, res);
    case CRAFT_KV_OP_LTRIM:
        return ltrim(ks, c, a, res);
    case CRAFT_KV_OP_LINSERT:
        return linsert(ks, c, a, res);
    case CRAFT_KV_OP_LMOVE:
        return lmove(ks, c, a, res);
    case CRAFT_KV_OP_LPOS:
        return lpos(ks, c, n, a, budget, res);
    default:
        return read_op(ks, c, a, budget, res);
    }
}
