/* craftkv's sorted sets (kv.md "Data types"): each member an element (member -> its score,
 * kv_internal.h) and an entry of the score index ZINDEX (id | sortable score | member), so
 * ZSCORE is one lookup, ZADD / ZREM touch one element and one index entry, and ranges by
 * score walk the index from their lower bound. Ranks are counted by walking the index from
 * its start (O(rank): there is no order-statistics tree), and the REV forms collect their
 * range before reversing it. */
#include <math.h>
#include <stdlib.h>

#include "base/assert.h"
#include "base/bytes.h"
#include "kv/kv_coll.h"

#define ERR_XX_NX  "ERR XX and NX options at the same time are not compatible"
#define ERR_GT_LT  "ERR GT, LT, and/or NX options at the same time are not compatible"
#define ERR_INCR   "ERR INCR option supports a single increment-element pair"
#define ERR_NAN    "ERR resulting score is not a number (NaN)"
#define ERR_MINMAX "ERR min or max is not a float"
#define ERR_LIMIT                                                                                  \
    "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
#define ERR_BYLEX "ERR BYLEX is not supported by craftkv"

bool kv_op_is_zset(uint8_t op)
{
    return (op >= CRAFT_KV_OP_ZADD && op <= CRAFT_KV_OP_ZPOPMAX) ||
           (op >= CRAFT_KV_OP_ZSCORE && op <= CRAFT_KV_OP_ZSCAN);
}

/* ---- arguments ---- */

static bool parse_score(struct craft_kv_bytes b, double *out)
{
    return kv_arg_double(b, true, out);
}

/* A range bound: "(" for exclusive, then a number (Redis: plain strtod, out of range too). */
static bool parse_bound(struct craft_kv_bytes b, double *v, bool *excl)
{
    *excl = b.len > 0 && b.p[0] == '(';
    if (*excl) {
        b.p++;
        b.len--;
    }
    return kv_arg_double(b, false, v);
}

/* ZADD's options and pairs. */
struct zadd {
    bool nx, xx, gt, lt, ch, incr;
    size_t first; /* the first score's argument */
};

static const char *zadd_parse(size_t n, const struct craft_kv_bytes *a, struct zadd *z)
{
    *z = (struct zadd){0};
    size_t i = 0;
    for (; i < n; i++) {
        if (kv_arg_is(a[i], "NX")) {
            z->nx = true;
        } else if (kv_arg_is(a[i], "XX")) {
            z->xx = true;
        } else if (kv_arg_is(a[i], "GT")) {
            z->gt = true;
        } else if (kv_arg_is(a[i], "LT")) {
            z->lt = true;
        } else if (kv_arg_is(a[i], "CH")) {
            z->ch = true;
        } else if (kv_arg_is(a[i], "INCR")) {
            z->incr = true;
        } else {
            break;
        }
    }
    z->first = i;
    size_t pairs = n - i;
    if (pairs == 0 || pairs % 2 != 0) {
        return KV_ERR_SYNTAX;
    }
    if (z->nx && z->xx) {
        return ERR_XX_NX;
    }
    if ((z->gt && z->lt) || (z->nx && (z->gt || z->lt))) {
        return ERR_GT_LT;
    }
    if (z->incr && pairs > 2) {
        return ERR_INCR;
    }
    for (; i < n; i += 2) {
        double d;
        if (!parse_score(a[i], &d)) {
            return KV_ERR_NOT_FLOAT;
        }
        if (a[i + 1].len > CRAFT_KV_FIELD_BYTES_MAX) {
            return KV_ERR_FIELD_LONG;
        }
    }
    return NULL;
}

/* ZRANGE's forms: by rank or by score, ascending or REV, LIMIT, WITHSCORES. */
struct zrange {
    bool byscore, rev, withscores, limit;
    int64_t start, stop;     /* by rank */
    double min, max;         /* by score */
    bool min_excl, max_excl; /* by score */
    int64_t offset, count;   /* LIMIT (count < 0: all) */
};

static const char *zrange_parse(uint8_t op, size_t n, const struct craft_kv_bytes *a,
                                struct zrange *r)
{
    *r = (struct zrange){.count = -1};
    if (n < 2) {
        return KV_ERR_ARGS;
    }
    r->byscore = op == CRAFT_KV_OP_ZRANGEBYSCORE || op == CRAFT_KV_OP_ZREVRANGEBYSCORE;
    r->rev = op == CRAFT_KV_OP_ZREVRANGE || op == CRAFT_KV_OP_ZREVRANGEBYSCORE;
    for (size_t i = 2; i < n; i++) {
        if (kv_arg_is(a[i], "WITHSCORES")) {
            r->withscores = true;
        } else if (kv_arg_is(a[i], "LIMIT") && i + 2 < n) {
            if (!kv_arg_i64(a[i + 1], &r->offset) || !kv_arg_i64(a[i + 2], &r->count)) {
                return KV_ERR_NOT_INT;
            }
            r->limit = true;
            i += 2;
        } else if (op == CRAFT_KV_OP_ZRANGE && kv_arg_is(a[i], "BYSCORE")) {
            r->byscore = true;
        } else if (op == CRAFT_KV_OP_ZRANGE && kv_arg_is(a[i], "REV")) {
            r->rev = true;
        } else if (op == CRAFT_KV_OP_ZRANGE && kv_arg_is(a[i], "BYLEX")) {
            return ERR_BYLEX;
        } else {
            return KV_ERR_SYNTAX;
        }
    }
    if (op == CRAFT_KV_OP_ZREVRANGE && r->limit) {
        return KV_ERR_SYNTAX;
    }
    if (r->limit && !r->byscore) {
        return ERR_LIMIT;
    }
    if (!r->byscore) {
        return kv_arg_i64(a[0], &r->start) && kv_arg_i64(a[1], &r->stop) ? NULL : KV_ERR_NOT_INT;
    }
    /* By score the REV forms name max first. */
    const struct craft_kv_bytes *lo = r->rev ? &a[1] : &a[0], *hi = r->rev ? &a[0] : &a[1];
    if (!parse_bound(*lo, &r->min, &r->min_excl) || !parse_bound(*hi, &r->max, &r->max_excl)) {
        return ERR_MINMAX;
    }
    return NULL;
}

const char *kv_zset_check(uint8_t op, size_t n, const struct craft_kv_bytes *a)
{
    struct zadd z;
    struct zrange r;
    struct kv_scan_args sa;
    int64_t v;
    double d;
    bool x;
    switch (op) {
    case CRAFT_KV_OP_ZADD:
        return zadd_parse(n, a, &z);
    case CRAFT_KV_OP_ZINCRBY:
        if (n != 2) {
            return KV_ERR_ARGS;
        }
        if (!parse_score(a[0], &d)) {
            return KV_ERR_NOT_FLOAT;
        }
        return a[1].len > CRAFT_KV_FIELD_BYTES_MAX ? KV_ERR_FIELD_LONG : NULL;
    case CRAFT_KV_OP_ZREM:
    case CRAFT_KV_OP_ZMSCORE:
        return n < 1 ? KV_ERR_ARGS : NULL;
    case CRAFT_KV_OP_ZPOPMIN:
    case CRAFT_KV_OP_ZPOPMAX:
        if (n > 1) {
            return KV_ERR_ARGS;
        }
        if (n == 1 && !kv_arg_i64(a[0], &v)) {
            return KV_ERR_NOT_INT;
        }
        return n == 1 && v < 0 ? KV_ERR_POSITIVE : NULL;
    case CRAFT_KV_OP_ZSCORE:
    case CRAFT_KV_OP_ZRANK:
    case CRAFT_KV_OP_ZREVRANK:
        return n != 1 ? KV_ERR_ARGS : NULL;
    case CRAFT_KV_OP_ZCARD:
        return n != 0 ? KV_ERR_ARGS : NULL;
    case CRAFT_KV_OP_ZCOUNT:
        if (n != 2) {
            return KV_ERR_ARGS;
        }
        return parse_bound(a[0], &d, &x) && parse_bound(a[1], &d, &x) ? NULL : ERR_MINMAX;
    case CRAFT_KV_OP_ZRANGE:
    case CRAFT_KV_OP_ZRANGEBYSCORE:
    case CRAFT_KV_OP_ZREVRANGE:
    case CRAFT_KV_OP_ZREVRANGEBYSCORE:
        return zrange_parse(op, n, a, &r);
    case CRAFT_KV_OP_ZSCAN:
        return kv_scan_parse(op, n, a, &sa);
    default:
        CRAFT_UNREACHABLE();
    }
}

/* ---- members ---- */

/* A member's score: CRAFT_OK, CRAFT_ENOTFOUND, or a store error. */
static int score_of(struct kv_space *ks, uint64_t id, struct craft_kv_bytes m, double *score)
{
    const uint8_t *v;
    size_t vlen;
    int rc = kv_elem_get(ks, id, m, &v, &vlen);
    if (rc == CRAFT_OK) {
        if (vlen != 8) {
            return CRAFT_ECORRUPT;
        }
        *score = kv_score_get(v);
    }
    return rc;
}

static int index_put(struct kv_space *ks, uint64_t id, struct craft_kv_bytes m, double score)
{
    uint8_t z[KV_ZKEY_MAX];
    return ks->o->put(ks->t, CRAFT_KV_TABLE_ZINDEX, z, kv_zkey(id, score, m.p, m.len, z), NULL, 0);
}

static int index_del(struct kv_space *ks, uint64_t id, struct craft_kv_bytes m, double score)
{
    uint8_t z[KV_ZKEY_MAX];
    int rc = ks->o->del(ks->t, CRAFT_KV_TABLE_ZINDEX, z, kv_zkey(id, score, m.p, m.len, z));
    return rc == CRAFT_ENOTFOUND ? CRAFT_ECORRUPT : rc; /* every member is indexed */
}

/* Sets member m's score (its old one, if found, leaves the index). */
static int member_set(struct kv_space *ks, uint64_t id, struct craft_kv_bytes m, bool found,
                      double old, double score)
{
    uint8_t v[8];
    kv_score_put(v, score);
    int rc = kv_elem_put(ks, id, m, (struct craft_kv_bytes){v, 8});
    if (rc == CRAFT_OK && found) {
        rc = index_del(ks, id, m, old);
    }
    return rc == CRAFT_OK ? index_put(ks, id, m, score) : rc;
}

static int member_del(struct kv_space *ks, uint64_t id, struct craft_kv_bytes m, double score)
{
    int rc = kv_elem_del(ks, id, m);
    rc = rc == CRAFT_ENOTFOUND ? CRAFT_ECORRUPT : rc;
    return rc == CRAFT_OK ? index_del(ks, id, m, score) : rc;
}

static int bulk_score(struct craft_kv_result **res, double d)
{
    char text[KV_SCORE_TEXT_MAX];
    size_t n = kv_score_format(d, text);
    return kv_reply(res, kv_result_new(CRAFT_KV_RES_BULK, 0, text, n));
}

static void arr_score(struct kv_arr *out, double d)
{
    char text[KV_SCORE_TEXT_MAX];
    size_t n = kv_score_format(d, text);
    kv_arr_bytes(out, CRAFT_KV_RES_BULK, (const uint8_t *)text, n);
}

/* ---- writes ---- */

static int zadd(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                const struct craft_kv_bytes *a, struct craft_kv_result **res)
{
    struct zadd z = {.first = 0};
    if (c->op == CRAFT_KV_OP_ZADD) {
        CRAFT_ASSERT(zadd_parse(n, a, &z) == NULL);
    } else {
        z.incr = true; /* ZINCRBY incr member */
    }
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_ZSET, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    if (z.xx && !k.old.found) {
        return z.incr ? kv_reply(res, kv_result_new(CRAFT_KV_RES_NIL, 0, NULL, 0))
                      : kv_res_int(res, 0);
    }
    struct kv_coll zs = kv_coll_open(ks, &k, KV_TYPE_ZSET);
    int64_t added = 0, changed = 0;
    double last = 0;
    bool done = false; /* INCR: whether the member was written */
    for (size_t i = z.first; i + 1 < n && rc == CRAFT_OK; i += 2) {
        double score, old = 0;
        bool ok = parse_score(a[i], &score);
        CRAFT_ASSERT(ok);
        /* A new key's first pair finds nothing; a later pair may name the same member. */
        rc = k.old.found || i > z.first ? score_of(ks, zs.id, a[i + 1], &old) : CRAFT_ENOTFOUND;
        if (rc != CRAFT_OK && rc != CRAFT_ENOTFOUND) {
            break;
        }
        bool found = rc == CRAFT_OK;
        rc = CRAFT_OK;
        if ((z.nx && found) || (z.xx && !found)) {
            continue;
        }
        if (z.incr) {
            score = found ? old + score : score;
            if (isnan(score)) {
                return kv_res_err(res, ERR_NAN); /* nothing written yet: one pair */
            }
            score = score == 0 ? 0.0 : score;
        }
        if (found && ((z.gt && !(score > old)) || (z.lt && !(score < old)))) {
            continue;
        }
        last = score;
        done = true;
        if (found && score == old) {
            continue; /* unchanged */
        }
        rc = member_set(ks, zs.id, a[i + 1], found, old, score);
        if (found) {
            changed++;
        } else {
            added++;
            zs.count++;
        }
    }
    if (rc == CRAFT_OK && added + changed > 0) {
        rc = kv_coll_commit(ks, &k, &zs);
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (z.incr) {
        return done ? bulk_score(res, last)
                    : kv_reply(res, kv_result_new(CRAFT_KV_RES_NIL, 0, NULL, 0));
    }
    return kv_res_int(res, z.ch ? added + changed : added);
}

static int zrem(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                const struct craft_kv_bytes *a, struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_ZSET, &k, res);
    if (rc != CRAFT_OK || *res != NULL || !k.old.found) {
        return rc != CRAFT_OK || *res != NULL ? rc : kv_res_int(res, 0);
    }
    struct kv_coll zs = k.old.coll;
    int64_t removed = 0;
    for (size_t i = 0; i < n && rc == CRAFT_OK; i++) {
        double score;
        rc = score_of(ks, zs.id, a[i], &score);
        if (rc == CRAFT_ENOTFOUND) {
            rc = CRAFT_OK;
            continue;
        }
        if (rc == CRAFT_OK) {
            rc = member_del(ks, zs.id, a[i], score);
            removed++;
            zs.count--;
        }
    }
    if (rc == CRAFT_OK && removed > 0) {
        rc = kv_coll_commit(ks, &k, &zs);
    }
    return rc != CRAFT_OK ? rc : kv_res_int(res, removed);
}

/* ---- walking the index ---- */

/* Members with their scores, copied out of a walk (the store's bytes do not outlive it). */
struct zitems {
    struct zitem {
        double score;
        size_t off;
        uint32_t len;
    } * items;
    size_t n, cap;
    uint8_t *bytes;
    size_t blen, bcap;
};

static int zitems_add(struct zitems *z, double score, struct craft_kv_bytes m)
{
    if (z->n == z->cap) {
        size_t cap = z->cap ? z->cap * 2 : 16;
        struct zitem *p = realloc(z->items, cap * sizeof *p);
        if (p == NULL) {
            return CRAFT_ENOMEM;
        }
        z->items = p;
        z->cap = cap;
    }
    int rc = kv_reserve(&z->bytes, &z->bcap, z->blen + m.len);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (m.len > 0) {
        memcpy(z->bytes + z->blen, m.p, m.len);
    }
    z->items[z->n++] = (struct zitem){score, z->blen, m.len};
    z->blen += m.len;
    return CRAFT_OK;
}

static void zitems_free(struct zitems *z)
{
    free(z->items);
    free(z->bytes);
}

static struct craft_kv_bytes zitem_member(const struct zitems *z, size_t i)
{
    return (struct craft_kv_bytes){z->bytes + z->items[i].off, z->items[i].len};
}

/* A walk of the index in score order: by rank (skip, then take), or by score (from the
 * walk's start at min, up to max), collecting into items. */
struct zwalk {
    struct zitems *items;
    uint64_t skip, take; /* take UINT64_MAX: no bound */
    bool byscore;
    double min, max;
    bool min_excl, max_excl;
    uint64_t counted; /* ZCOUNT: count only */
    bool count_only;
    /* ZPOP*: the answer's encoded size (members and scores as text); past limit, over
     * (and the walk stops) */
    uint64_t bytes, limit;
    bool over;
    /* ZRANK: stop at this member, counting the ones before it */
    bool find;
    struct craft_kv_bytes member;
    double member_score;
    bool found;
};

static int zwalk_one(void *ctx, uint64_t sortable, struct craft_kv_bytes m, struct craft_kv_bytes v)
{
    (void)v;
    struct zwalk *w = ctx;
    double score = kv_score_of_sortable(sortable);
    if (w->find) {
        if (score == w->member_score && m.len == w->member.len &&
            (m.len == 0 || memcmp(m.p, w->member.p, m.len) == 0)) {
            w->found = true;
            return CRAFT_KV_ITER_STOP;
        }
        w->counted++;
        return CRAFT_OK;
    }
    if (w->byscore) {
        if (score < w->min || (w->min_excl && score == w->min)) {
            return CRAFT_OK; /* the walk starts at min's position: exclusive min's equals */
        }
        if (score > w->max || (w->max_excl && score == w->max)) {
            return CRAFT_KV_ITER_STOP;
        }
    }
    if (w->skip > 0) {
        w->skip--;
        return CRAFT_OK;
    }
    if (w->take == 0) {
        return CRAFT_KV_ITER_STOP;
    }
    if (w->take != UINT64_MAX) {
        w->take--;
    }
    if (w->count_only) {
        w->counted++;
        return CRAFT_OK;
    }
    if (w->limit != 0) {
        char text[KV_SCORE_TEXT_MAX];
        w->bytes += 5 + (uint64_t)m.len + 5 + kv_score_format(score, text);
        if (w->bytes > w->limit) {
            w->over = true;
            return CRAFT_KV_ITER_STOP;
        }
    }
    return zitems_add(w->items, score, m);
}

static int zwalk(struct kv_space *ks, uint64_t id, struct zwalk *w)
{
    uint64_t from = w->byscore ? kv_score_sortable(w->min) : 0;
    return kv_table_walk(ks, CRAFT_KV_TABLE_ZINDEX, id, from, zwalk_one, w);
}

/* The items as members (and scores), in order or reversed. */
static void emit_items(struct kv_arr *out, const struct zitems *z, bool rev, bool withscores)
{
    for (size_t j = 0; j < z->n; j++) {
        size_t i = rev ? z->n - 1 - j : j;
        struct craft_kv_bytes m = zitem_member(z, i);
        kv_arr_bytes(out, CRAFT_KV_RES_BULK, m.p, m.len);
        if (withscores) {
            arr_score(out, z->items[i].score);
        }
    }
}

static int zpop(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                const struct craft_kv_bytes *a, size_t budget, struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_ZSET, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    int64_t count = 1;
    if (n == 1) {
        bool ok = kv_arg_i64(a[0], &count);
        CRAFT_ASSERT(ok && count >= 0);
    }
    struct kv_arr out = {.max = budget};
    if (!k.old.found || count == 0) {
        return kv_arr_done(&out, CRAFT_OK, res);
    }
    struct kv_coll zs = k.old.coll;
    uint64_t want = (uint64_t)count < zs.count ? (uint64_t)count : zs.count;
    bool max = c->op == CRAFT_KV_OP_ZPOPMAX;
    struct zitems items = {0};
    /* ZPOPMAX: the last want in score order (O(n): the index is walked from its start). */
    /* Collected, and measured, before anything is deleted: an answer over the budget pops
     * nothing (the members would be lost with the answer), on every replica alike. */
    struct zwalk w = {.items = &items,
                      .skip = max ? zs.count - want : 0,
                      .take = want,
                      .limit = budget > 9 ? budget - 9 : 1};
    rc = zwalk(ks, zs.id, &w);
    if (rc == CRAFT_OK && w.over) {
        zitems_free(&items);
        return kv_res_err(res, CRAFT_KV_ERR_POP_LARGE);
    }
    if (rc == CRAFT_OK && items.n != want) {
        rc = CRAFT_ECORRUPT;
    }
    for (size_t i = 0; i < items.n && rc == CRAFT_OK; i++) {
        rc = member_del(ks, zs.id, zitem_member(&items, i), items.items[i].score);
        zs.count--;
    }
    if (rc == CRAFT_OK) {
        rc = kv_coll_commit(ks, &k, &zs);
        emit_items(&out, &items, max, true);
    }
    zitems_free(&items);
    return kv_arr_done(&out, rc, res);
}

/* ---- reads ---- */

static int zrange(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                  const struct craft_kv_bytes *a, const struct kv_coll *zs, size_t budget,
                  struct craft_kv_result **res)
{
    struct zrange r;
    CRAFT_ASSERT(zrange_parse(c->op, n, a, &r) == NULL);
    struct kv_arr out = {.max = budget};
    struct zitems items = {0};
    int rc = CRAFT_OK;
    if (zs->count == 0) {
        return kv_arr_done(&out, rc, res);
    }
    if (!r.byscore) {
        uint64_t from, to;
        if (kv_range_of(r.start, r.stop, zs->count, &from, &to)) {
            /* REV counts from the top: the same range read ascending, then reversed. */
            uint64_t lo = r.rev ? zs->count - 1 - to : from, hi = r.rev ? zs->count - 1 - from : to;
            struct zwalk w = {.items = &items, .skip = lo, .take = hi - lo + 1};
            rc = zwalk(ks, zs->id, &w);
        }
        if (rc == CRAFT_OK) {
            emit_items(&out, &items, r.rev, r.withscores);
        }
    } else {
        bool limited = r.limit && r.count >= 0;
        struct zwalk w = {.items = &items,
                          .take = UINT64_MAX,
                          .byscore = true,
                          .min = r.min,
                          .max = r.max,
                          .min_excl = r.min_excl,
                          .max_excl = r.max_excl};
        if (!r.rev && r.limit) {
            w.skip = r.offset < 0 ? UINT64_MAX : (uint64_t)r.offset;
            w.take = limited ? (uint64_t)r.count : UINT64_MAX;
        }
        rc = r.limit && r.offset < 0 ? CRAFT_OK : zwalk(ks, zs->id, &w);
        if (rc == CRAFT_OK && r.rev && r.limit) {
            /* The range reversed, then LIMIT from its top. */
            struct zitems cut = {0};
            uint64_t off = r.offset < 0 ? items.n : (uint64_t)r.offset;
            for (size_t j = 0; j < items.n && rc == CRAFT_OK; j++) {
                if (j < off || (limited && j - off >= (uint64_t)r.count)) {
                    continue;
                }
                size_t i = items.n - 1 - j;
                rc = zitems_add(&cut, items.items[i].score, zitem_member(&items, i));
            }
            if (rc == CRAFT_OK) {
                emit_items(&out, &cut, false, r.withscores);
            }
            zitems_free(&cut);
        } else if (rc == CRAFT_OK) {
            emit_items(&out, &items, r.rev, r.withscores);
        }
    }
    zitems_free(&items);
    return kv_arr_done(&out, rc, res);
}

static int read_op(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                   const struct craft_kv_bytes *a, size_t budget, struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_ZSET, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    struct kv_coll zs = k.old.found ? k.old.coll : (struct kv_coll){0};
    double score;
    switch (c->op) {
    case CRAFT_KV_OP_ZCARD:
        return kv_res_int(res, (int64_t)zs.count);
    case CRAFT_KV_OP_ZSCORE:
        rc = zs.count > 0 ? score_of(ks, zs.id, a[0], &score) : CRAFT_ENOTFOUND;
        if (rc == CRAFT_ENOTFOUND) {
            return kv_reply(res, kv_result_new(CRAFT_KV_RES_NIL, 0, NULL, 0));
        }
        return rc != CRAFT_OK ? rc : bulk_score(res, score);
    case CRAFT_KV_OP_ZMSCORE: {
        struct kv_arr out = {.max = budget};
        for (size_t i = 0; i < n && rc == CRAFT_OK; i++) {
            rc = zs.count > 0 ? score_of(ks, zs.id, a[i], &score) : CRAFT_ENOTFOUND;
            if (rc == CRAFT_OK) {
                arr_score(&out, score);
            } else if (rc == CRAFT_ENOTFOUND) {
                kv_arr_nil(&out);
                rc = CRAFT_OK;
            }
        }
        return kv_arr_done(&out, rc, res);
    }
    case CRAFT_KV_OP_ZCOUNT: {
        struct zwalk w = {.take = UINT64_MAX, .byscore = true, .count_only = true};
        bool ok = parse_bound(a[0], &w.min, &w.min_excl) && parse_bound(a[1], &w.max, &w.max_excl);
        CRAFT_ASSERT(ok);
        rc = zs.count > 0 ? zwalk(ks, zs.id, &w) : CRAFT_OK;
        return rc != CRAFT_OK ? rc : kv_res_int(res, (int64_t)w.counted);
    }
    case CRAFT_KV_OP_ZRANK:
    case CRAFT_KV_OP_ZREVRANK: {
        rc = zs.count > 0 ? score_of(ks, zs.id, a[0], &score) : CRAFT_ENOTFOUND;
        if (rc == CRAFT_ENOTFOUND) {
            return kv_reply(res, kv_result_new(CRAFT_KV_RES_NIL, 0, NULL, 0));
        }
        struct zwalk w = {.find = true, .member = a[0], .member_score = score};
        rc = rc == CRAFT_OK ? zwalk(ks, zs.id, &w) : rc;
        if (rc == CRAFT_OK && (!w.found || w.counted >= zs.count)) {
            rc = CRAFT_ECORRUPT; /* a member not in the index */
        }
        if (rc != CRAFT_OK) {
            return rc;
        }
        return kv_res_int(
            res, (int64_t)(c->op == CRAFT_KV_OP_ZRANK ? w.counted : zs.count - 1 - w.counted));
    }
    case CRAFT_KV_OP_ZSCAN: {
        struct kv_scan_args sa;
        CRAFT_ASSERT(kv_scan_parse(c->op, n, a, &sa) == NULL);
        return kv_coll_scan(ks, zs.id, &sa, true, true, budget, res);
    }
    default:
        return zrange(ks, c, n, a, &zs, budget, res);
    }
}

int kv_zset_exec(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                 const struct craft_kv_bytes *a, size_t budget, struct craft_kv_result **res)
{
    switch (c->op) {
    case CRAFT_KV_OP_ZADD:
    case CRAFT_KV_OP_ZINCRBY:
        return zadd(ks, c, n, a, res);
    case CRAFT_KV_OP_ZREM:
        return zrem(ks, c, n, a, res);
    case CRAFT_KV_OP_ZPOPMIN:
    case CRAFT_KV_OP_ZPOPMAX:
        return zpop(ks, c, n, a, budget, res);
    default:
        return read_op(ks, c, n, a, budget, res);
    }
}
