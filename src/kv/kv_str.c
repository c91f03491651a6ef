/* craftkv's string and keyspace commands that carry their Redis arguments (kv.md "Data
 * types"): INCRBYFLOAT, SETRANGE, GETEX, RENAME, RENAMENX, GETRANGE. Same shape, same
 * dispatch and the same one check as the collections' (kv_coll.c). */
#include <math.h>
#include <stdlib.h>

#include "base/assert.h"
#include "base/bytes.h"
#include "kv/kv_coll.h"

#define ERR_NOT_FLOAT_VAL "ERR value is not a valid float"
#define ERR_NAN_INF       "ERR increment would produce NaN or Infinity"
#define ERR_NO_SUCH_KEY   "ERR no such key"
#define ERR_OFFSET        "ERR offset is out of range"
#define ERR_TOO_LONG      "ERR string exceeds maximum allowed size (proto-max-bulk-len)"

bool kv_op_is_str(uint8_t op)
{
    return op == CRAFT_KV_OP_INCRBYFLOAT || op == CRAFT_KV_OP_SETRANGE || op == CRAFT_KV_OP_GETEX ||
           op == CRAFT_KV_OP_RENAME || op == CRAFT_KV_OP_RENAMENX || op == CRAFT_KV_OP_GETRANGE;
}

/* GETEX's arguments as the proposer sends them: none, PXAT <absolute ms>, or PERSIST. */
static const char *getex_parse(size_t n, const struct craft_kv_bytes *a, bool *persist, int64_t *at)
{
    *persist = false;
    *at = -1;
    if (n == 0) {
        return NULL;
    }
    if (n == 1 && kv_arg_is(a[0], "PERSIST")) {
        *persist = true;
        return NULL;
    }
    if (n == 2 && kv_arg_is(a[0], "PXAT")) {
        return kv_arg_i64(a[1], at) && *at >= 0 ? NULL : KV_ERR_NOT_INT;
    }
    return KV_ERR_SYNTAX;
}

const char *kv_str_check(uint8_t op, size_t n, const struct craft_kv_bytes *a)
{
    double d;
    int64_t v;
    bool persist;
    switch (op) {
    case CRAFT_KV_OP_INCRBYFLOAT:
        return n != 1 ? KV_ERR_ARGS : kv_arg_double(a[0], false, &d) ? NULL : KV_ERR_NOT_FLOAT;
    case CRAFT_KV_OP_SETRANGE:
        if (n != 2) {
            return KV_ERR_ARGS;
        }
        if (!kv_arg_i64(a[0], &v)) {
            return KV_ERR_NOT_INT;
        }
        if (v < 0) {
            return ERR_OFFSET;
        }
        /* An empty value writes nothing, at any offset (Redis answers the length). */
        return a[1].len > 0 && (uint64_t)v + a[1].len > CRAFT_KV_VALUE_BYTES_MAX ? ERR_TOO_LONG
                                                                                 : NULL;
    case CRAFT_KV_OP_GETEX:
        return getex_parse(n, a, &persist, &v);
    case CRAFT_KV_OP_RENAME:
    case CRAFT_KV_OP_RENAMENX:
        return n != 1 ? KV_ERR_ARGS : a[0].len > CRAFT_KV_KEY_BYTES_MAX ? KV_ERR_KEY_LONG : NULL;
    case CRAFT_KV_OP_GETRANGE:
        return n != 2                                         ? KV_ERR_ARGS
               : kv_arg_i64(a[0], &v) && kv_arg_i64(a[1], &v) ? NULL
                                                              : KV_ERR_NOT_INT;
    default:
        CRAFT_UNREACHABLE();
    }
}

static int incrbyfloat(struct kv_space *ks, const struct craft_kv_cmd *c,
                       const struct craft_kv_bytes *a, struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_STRING, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    double incr, cur = 0;
    bool ok = kv_arg_double(a[0], false, &incr);
    CRAFT_ASSERT(ok);
    if (k.old.found &&
        !kv_arg_double((struct craft_kv_bytes){k.old.val, (uint32_t)k.old.vlen}, false, &cur)) {
        return kv_res_err(res, ERR_NOT_FLOAT_VAL);
    }
    /* A double (Redis: a long double): the same on every replica whatever its machine. */
    double sum = cur + incr;
    if (!isfinite(sum)) {
        return kv_res_err(res, ERR_NAN_INF);
    }
    char text[KV_HUMAN_TEXT_MAX];
    size_t n = kv_double_human(sum, text);
    rc = kv_key_store(ks, k.sk, k.sklen, &k.old, (const uint8_t *)text, n, NULL, 0,
                      k.old.found ? k.old.expire_at : 0);
    return rc != CRAFT_OK ? rc : kv_reply(res, kv_result_new(CRAFT_KV_RES_BULK, 0, text, n));
}

static int setrange(struct kv_space *ks, const struct craft_kv_cmd *c,
                    const struct craft_kv_bytes *a, struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_STRING, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    int64_t off;
    bool ok = kv_arg_i64(a[0], &off);
    CRAFT_ASSERT(ok && off >= 0);
    size_t old_len = k.old.found ? k.old.vlen : 0;
    if (a[1].len == 0) {
        return kv_res_int(res, (int64_t)old_len); /* Redis: nothing written, even to pad */
    }
    size_t len = (size_t)off + a[1].len > old_len ? (size_t)off + a[1].len : old_len;
    CRAFT_ASSERT(len <= CRAFT_KV_VALUE_BYTES_MAX); /* kv_str_check */
    uint8_t *v = calloc(len, 1);                   /* zero padding past the old end */
    if (v == NULL) {
        return CRAFT_ENOMEM;
    }
    if (old_len > 0) {
        memcpy(v, k.old.val, old_len);
    }
    memcpy(v + off, a[1].p, a[1].len);
    rc =
        kv_key_store(ks, k.sk, k.sklen, &k.old, v, len, NULL, 0, k.old.found ? k.old.expire_at : 0);
    free(v);
    return rc != CRAFT_OK ? rc : kv_res_int(res, (int64_t)len);
}

static int getex(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                 const struct craft_kv_bytes *a, struct craft_kv_result **res)
{
    struct kv_keyed k;
    bool persist;
    int64_t at;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_STRING, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    CRAFT_ASSERT(getex_parse(n, a, &persist, &at) == NULL);
    if (!k.old.found) {
        return kv_reply(res, kv_result_new(CRAFT_KV_RES_NIL, 0, NULL, 0));
    }
    struct craft_kv_result *r = kv_result_new(CRAFT_KV_RES_BULK, 0, k.old.val, k.old.vlen);
    if (r == NULL) {
        return CRAFT_ENOMEM;
    }
    if (persist || at >= 0) {
        uint64_t when = persist ? 0 : (uint64_t)at;
        if (!persist && when == 0) {
            rc = kv_key_remove(ks, k.sk, k.sklen, &k.old); /* instant 0 is in the past */
        } else if (when != k.old.expire_at) {
            /* kv_key_store removes the key when `when` is past, as Redis's GETEX does. */
            rc = kv_key_store(ks, k.sk, k.sklen, &k.old, k.old.val, k.old.vlen, NULL, 0, when);
        }
    }
    if (rc != CRAFT_OK) {
        craft_kv_result_free(r);
        return rc;
    }
    *res = r;
    return CRAFT_OK;
}

/* RENAME src dst: the source's DATA entry (a string, or a collection's header: its
 * elements stay under its id) and expiry move to dst, over whatever dst held. */
static int rename_key(struct kv_space *ks, const struct craft_kv_cmd *c,
                      const struct craft_kv_bytes *a, struct craft_kv_result **res)
{
    bool nx = c->op == CRAFT_KV_OP_RENAMENX;
    struct kv_keyed src, dst;
    int rc = kv_key_find(ks, c->key, &src);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (!src.old.found) {
        return kv_res_err(res, ERR_NO_SUCH_KEY);
    }
    if (c->key.len == a[0].len && memcmp(c->key.p, a[0].p, a[0].len) == 0) {
        return nx ? kv_res_int(res, 0) : kv_reply(res, kv_result_new(CRAFT_KV_RES_OK, 0, NULL, 0));
    }
    rc = kv_key_find(ks, a[0], &dst);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (nx && dst.old.found) {
        return kv_res_int(res, 0);
    }
    if (dst.old.found) {
        rc = kv_key_remove(ks, dst.sk, dst.sklen, &dst.old);
        if (rc != CRAFT_OK) {
            return rc;
        }
    }
    /* The lookups' pointers die with the writes: look the source up again, then move it. */
    rc = kv_key_lookup(ks, src.sk, src.sklen, &src.old);
    if (rc == CRAFT_OK && !src.old.found) {
        rc = CRAFT_ECORRUPT;
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    struct kv_live none = {0};
    if (src.old.type == KV_TYPE_STRING) {
        uint8_t *v = malloc(src.old.vlen > 0 ? src.old.vlen : 1);
        if (v == NULL) {
            return CRAFT_ENOMEM;
        }
        size_t vlen = src.old.vlen;
        if (vlen > 0) {
            memcpy(v, src.old.val, vlen);
        }
        uint64_t at = src.old.expire_at;
        rc = kv_key_drop_entry(ks, src.sk, src.sklen, &src.old);
        if (rc == CRAFT_OK) {
            rc = kv_key_store(ks, dst.sk, dst.sklen, &none, v, vlen, NULL, 0, at);
        }
        free(v);
    } else {
        struct kv_coll coll = src.old.coll;
        coll.version = ks->index; /* a change to both keys, for WATCH */
        uint64_t at = src.old.expire_at;
        rc = kv_key_drop_entry(ks, src.sk, src.sklen, &src.old);
        if (rc == CRAFT_OK) {
            rc = kv_coll_store(ks, dst.sk, dst.sklen, &none, &coll, at);
        }
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    return nx ? kv_res_int(res, 1) : kv_reply(res, kv_result_new(CRAFT_KV_RES_OK, 0, NULL, 0));
}

static int getrange(struct kv_space *ks, const struct craft_kv_cmd *c,
                    const struct craft_kv_bytes *a, struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc = kv_coll_key(ks, c->key, KV_TYPE_STRING, &k, res);
    if (rc != CRAFT_OK || *res != NULL) {
        return rc; /* a store error, or WRONGTYPE answered */
    }
    int64_t start, end;
    bool ok = kv_arg_i64(a[0], &start) && kv_arg_i64(a[1], &end);
    CRAFT_ASSERT(ok);
    /* Redis's getrangeCommand, step by step (not LRANGE's rules: a negative end past the
     * start clamps to 0). */
    int64_t len = k.old.found ? (int64_t)k.old.vlen : 0;
    if ((start < 0 && end < 0 && start > end) || len == 0) {
        return kv_reply(res, kv_result_new(CRAFT_KV_RES_BULK, 0, NULL, 0));
    }
    if (start < 0) {
        start = start < -len ? 0 : len + start;
    }
    if (end < 0) {
        end = end < -len ? 0 : len + end;
    }
    if (end >= len) {
        end = len - 1;
    }
    if (start > end) {
        return kv_reply(res, kv_result_new(CRAFT_KV_RES_BULK, 0, NULL, 0));
    }
    return kv_reply(
        res, kv_result_new(CRAFT_KV_RES_BULK, 0, k.old.val + start, (size_t)(end - start + 1)));
}

int kv_str_exec(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                const struct craft_kv_bytes *a, struct craft_kv_result **res)
{
    switch (c->op) {
    case CRAFT_KV_OP_INCRBYFLOAT:
        return incrbyfloat(ks, c, a, res);
    case CRAFT_KV_OP_SETRANGE:
        return setrange(ks, c, a, res);
    case CRAFT_KV_OP_GETEX:
        return getex(ks, c, n, a, res);
    case CRAFT_KV_OP_RENAME:
    case CRAFT_KV_OP_RENAMENX:
        return rename_key(ks, c, a, res);
    case CRAFT_KV_OP_GETRANGE:
        return getrange(ks, c, a, res);
    default:
        CRAFT_UNREACHABLE();
    }
}
