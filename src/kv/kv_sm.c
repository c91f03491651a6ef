/* craftkv apply: Redis's string commands over the store, sessions for exactly-once, and
 * expiry against logical time. Deterministic: only the commands and the configuration
 * decide what happens (docs/design/kv.md). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/assert.h"
#include "kv/kv_internal.h"

/* Sweep bounds per command (NOOP exists to sweep more). They only bound work: a key or
 * session past its time is invisible whether swept or not, so they are not part of the
 * replicated behaviour. */
#define SWEEP_KEYS          16u
#define SWEEP_SESSIONS      4u
#define NOOP_SWEEP_KEYS     1024u
#define NOOP_SWEEP_SESSIONS 256u
#define SWEEP_CHUNK         16u

#define ERR_NOT_INT  "ERR value is not an integer or out of range"
#define ERR_OVERFLOW "ERR increment or decrement would overflow"
#define ERR_TOO_LONG "ERR string exceeds maximum allowed size (proto-max-bulk-len)"

/* ---- results ---- */

struct craft_kv_result *kv_result_new(uint8_t type, int64_t integer, const void *data, size_t len)
{
    struct craft_kv_result *r = malloc(sizeof *r + len + 1);
    if (r == NULL) {
        return NULL;
    }
    r->type = type;
    r->integer = integer;
    r->len = len;
    if (len > 0) {
        memcpy(r->data, data, len);
    }
    r->data[len] = '\0';
    return r;
}

void craft_kv_result_free(struct craft_kv_result *r)
{
    free(r);
}

static struct craft_kv_result *res_simple(uint8_t type)
{
    return kv_result_new(type, 0, NULL, 0);
}

static struct craft_kv_result *res_int(int64_t v)
{
    return kv_result_new(CRAFT_KV_RES_INT, v, NULL, 0);
}

static struct craft_kv_result *res_err(const char *text)
{
    return kv_result_new(CRAFT_KV_RES_ERR, 0, text, strlen(text));
}

/* Hands r to the caller as *res: CRAFT_ENOMEM if it could not be made. */
static int reply(struct craft_kv_result **res, struct craft_kv_result *r)
{
    *res = r;
    return r != NULL ? CRAFT_OK : CRAFT_ENOMEM;
}

size_t kv_result_encode(const struct craft_kv_result *r, uint8_t *out)
{
    out[0] = r->type;
    switch (r->type) {
    case CRAFT_KV_RES_OK:
    case CRAFT_KV_RES_NIL:
        return 1;
    case CRAFT_KV_RES_INT:
        craft_put_u64(out + 1, (uint64_t)r->integer);
        return 9;
    case CRAFT_KV_RES_BULK:
    case CRAFT_KV_RES_ERR:
        CRAFT_ASSERT(r->len <= CRAFT_KV_VALUE_BYTES_MAX);
        craft_put_u32(out + 1, (uint32_t)r->len);
        if (r->len > 0) {
            memcpy(out + 5, r->data, r->len);
        }
        return 5 + r->len;
    default:
        CRAFT_UNREACHABLE();
    }
}

bool kv_result_valid(const uint8_t *p, size_t len)
{
    if (len < 1) {
        return false;
    }
    switch (p[0]) {
    case CRAFT_KV_RES_OK:
    case CRAFT_KV_RES_NIL:
        return len == 1;
    case CRAFT_KV_RES_INT:
        return len == 9;
    case CRAFT_KV_RES_BULK:
    case CRAFT_KV_RES_ERR: {
        if (len < 5) {
            return false;
        }
        uint32_t n = craft_get_u32(p + 1);
        return n <= CRAFT_KV_VALUE_BYTES_MAX && len - 5 == n;
    }
    default:
        return false;
    }
}

struct craft_kv_result *kv_result_decode(const uint8_t *p, size_t len)
{
    CRAFT_ASSERT(kv_result_valid(p, len));
    switch (p[0]) {
    case CRAFT_KV_RES_INT:
        return res_int((int64_t)craft_get_u64(p + 1));
    case CRAFT_KV_RES_BULK:
    case CRAFT_KV_RES_ERR:
        return kv_result_new(p[0], 0, p + 5, len - 5);
    default:
        return res_simple(p[0]);
    }
}

/* ---- meta ---- */

static int meta_get(struct craft_kv_store *s, struct craft_kv_txn *t, const char *name, uint64_t *v)
{
    const uint8_t *p;
    size_t n;
    int rc = s->ops->get(t, CRAFT_KV_TABLE_META, (const uint8_t *)name, strlen(name), &p, &n);
    if (rc == CRAFT_ENOTFOUND) {
        *v = 0;
        return CRAFT_OK;
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (n != 8) {
        return CRAFT_ECORRUPT;
    }
    *v = craft_get_u64(p);
    return CRAFT_OK;
}

int kv_meta_load(struct craft_kv_store *s, struct craft_kv_txn *t, struct kv_meta *m)
{
    uint64_t format;
    int rc = meta_get(s, t, KV_META_FORMAT, &format);
    if (rc == CRAFT_OK && format != 0 && format != KV_FORMAT) {
        rc = CRAFT_EVERSION;
    }
    if (rc == CRAFT_OK) {
        rc = meta_get(s, t, KV_META_APPLIED, &m->applied);
    }
    if (rc == CRAFT_OK) {
        rc = meta_get(s, t, KV_META_NOW, &m->now);
    }
    if (rc == CRAFT_OK) {
        rc = meta_get(s, t, KV_META_NKEYS, &m->n_keys);
    }
    return rc;
}

static int meta_put(struct craft_kv_store *s, struct craft_kv_txn *t, const char *name, uint64_t v)
{
    uint8_t b[8];
    craft_put_u64(b, v);
    return s->ops->put(t, CRAFT_KV_TABLE_META, (const uint8_t *)name, strlen(name), b, 8);
}

int kv_meta_store(struct craft_kv_store *s, struct craft_kv_txn *t, const struct kv_meta *m)
{
    int rc = meta_put(s, t, KV_META_FORMAT, KV_FORMAT);
    if (rc == CRAFT_OK) {
        rc = meta_put(s, t, KV_META_APPLIED, m->applied);
    }
    if (rc == CRAFT_OK) {
        rc = meta_put(s, t, KV_META_NOW, m->now);
    }
    if (rc == CRAFT_OK) {
        rc = meta_put(s, t, KV_META_NKEYS, m->n_keys);
    }
    return rc;
}

/* ---- member records ---- */

size_t kv_member_value(const uint8_t *peer, size_t plen, const uint8_t *client, size_t clen,
                       uint8_t *out)
{
    CRAFT_ASSERT(craft_kv_addr_ok(peer, plen) && craft_kv_addr_ok(client, clen));
    craft_put_u32(out, (uint32_t)plen);
    memcpy(out + 4, peer, plen);
    craft_put_u32(out + 4 + plen, (uint32_t)clen);
    memcpy(out + 8 + plen, client, clen);
    return 8 + plen + clen;
}

bool kv_member_parse(const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen,
                     struct craft_kv_member *m, bool *is_member)
{
    *is_member = klen >= KV_MEMBER_PREFIX_LEN &&
                 memcmp(k, KV_MEMBER_PREFIX, KV_MEMBER_PREFIX_LEN) == 0;
    if (!*is_member || klen != KV_MEMBER_KEY_BYTES || vlen < 4) {
        return false;
    }
    uint32_t plen = craft_get_u32(v);
    if (plen > vlen - 4 || vlen - 4 - plen < 4) {
        return false;
    }
    uint32_t clen = craft_get_u32(v + 4 + plen);
    const uint8_t *peer = v + 4, *client = v + 8 + plen;
    if (clen != vlen - 8 - plen || !craft_kv_addr_ok(peer, plen) ||
        !craft_kv_addr_ok(client, clen)) {
        return false;
    }
    m->id = kv_get_be64(k + KV_MEMBER_PREFIX_LEN);
    if (m->id == 0) {
        return false;
    }
    memcpy(m->peer_addr, peer, plen);
    m->peer_addr[plen] = '\0';
    memcpy(m->client_addr, client, clen);
    m->client_addr[clen] = '\0';
    return true;
}

/* ---- one batch being applied ---- */

struct ap {
    struct craft_kv_sm *sm;
    const struct craft_kv_store_ops *o;
    struct craft_kv_txn *t;
    struct kv_meta m; /* running values, stored at commit */
    uint8_t *buf;     /* scratch for a stored value or session record */
    size_t cap;
};

static int scratch(struct ap *a, size_t need)
{
    if (need <= a->cap) {
        return CRAFT_OK;
    }
    size_t cap = need < 256 ? 256 : need;
    uint8_t *p = realloc(a->buf, cap);
    if (p == NULL) {
        return CRAFT_ENOMEM;
    }
    a->buf = p;
    a->cap = cap;
    return CRAFT_OK;
}

static int not_found_is_corrupt(int rc)
{
    return rc == CRAFT_ENOTFOUND ? CRAFT_ECORRUPT : rc;
}

/* ---- keys ---- */

static size_t xkey(uint64_t at, const uint8_t *sk, size_t sklen, uint8_t *out)
{
    kv_put_be64(out, at);
    memcpy(out + 8, sk, sklen);
    return 8 + sklen;
}

struct live {
    bool found;
    uint64_t expire_at;
    const uint8_t *val; /* borrowed until the next write */
    size_t vlen;
};

/* Removes a present key whose expiry is at (0: none). */
static int key_remove(struct ap *a, const uint8_t *sk, size_t sklen, uint64_t at)
{
    int rc = not_found_is_corrupt(a->o->del(a->t, CRAFT_KV_TABLE_DATA, sk, sklen));
    if (rc == CRAFT_OK && at != 0) {
        uint8_t x[KV_XKEY_MAX];
        rc = not_found_is_corrupt(
            a->o->del(a->t, CRAFT_KV_TABLE_EXPIRES, x, xkey(at, sk, sklen, x)));
    }
    if (rc == CRAFT_OK) {
        if (a->m.n_keys == 0) {
            return CRAFT_ECORRUPT;
        }
        a->m.n_keys--;
    }
    return rc;
}

/* The live value of a key. An expired key is removed on the way (deterministic: expiry is
 * decided by logical time only). */
static int key_lookup(struct ap *a, const uint8_t *sk, size_t sklen, struct live *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *v;
    size_t vlen;
    int rc = a->o->get(a->t, CRAFT_KV_TABLE_DATA, sk, sklen, &v, &vlen);
    if (rc == CRAFT_ENOTFOUND) {
        return CRAFT_OK;
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (vlen < KV_VAL_HEADER) {
        return CRAFT_ECORRUPT;
    }
    uint64_t at = craft_get_u64(v);
    if (at != 0 && at <= a->m.now) {
        return key_remove(a, sk, sklen, at);
    }
    *out = (struct live){.found = true, .expire_at = at, .val = v + 8, .vlen = vlen - 8};
    return CRAFT_OK;
}

/* A command's key: its store key and its live value, looked up with key_find. */
struct keyed {
    uint8_t sk[KV_SKEY_MAX];
    size_t sklen;
    struct live old;
};

static int key_find(struct ap *a, struct craft_kv_bytes key, struct keyed *k)
{
    k->sklen = kv_skey(key.p, key.len, k->sk);
    return key_lookup(a, k->sk, k->sklen, &k->old);
}

/* The live value as a reply: bulk, or nil when the key is absent. */
static struct craft_kv_result *res_value(const struct live *v)
{
    return v->found ? kv_result_new(CRAFT_KV_RES_BULK, 0, v->val, v->vlen)
                    : res_simple(CRAFT_KV_RES_NIL);
}

/* Stores p1 | p2 under the key with expiry at (0: none); old is the key's lookup. An
 * expiry already past deletes the key instead, as Redis does. p1 and p2 may point into the
 * store: they are copied before any write. */
static int key_store(struct ap *a, const uint8_t *sk, size_t sklen, const struct live *old,
                     const uint8_t *p1, size_t l1, const uint8_t *p2, size_t l2, uint64_t at)
{
    if (at != 0 && at <= a->m.now) {
        return old->found ? key_remove(a, sk, sklen, old->expire_at) : CRAFT_OK;
    }
    int rc = scratch(a, KV_VAL_HEADER + l1 + l2);
    if (rc != CRAFT_OK) {
        return rc;
    }
    craft_put_u64(a->buf, at);
    if (l1 > 0) {
        memmove(a->buf + KV_VAL_HEADER, p1, l1);
    }
    if (l2 > 0) {
        memmove(a->buf + KV_VAL_HEADER + l1, p2, l2);
    }
    rc = a->o->put(a->t, CRAFT_KV_TABLE_DATA, sk, sklen, a->buf, KV_VAL_HEADER + l1 + l2);
    uint8_t x[KV_XKEY_MAX];
    if (rc == CRAFT_OK && old->found && old->expire_at != 0 && old->expire_at != at) {
        rc = not_found_is_corrupt(
            a->o->del(a->t, CRAFT_KV_TABLE_EXPIRES, x, xkey(old->expire_at, sk, sklen, x)));
    }
    if (rc == CRAFT_OK && at != 0 && (!old->found || old->expire_at != at)) {
        rc = a->o->put(a->t, CRAFT_KV_TABLE_EXPIRES, x, xkey(at, sk, sklen, x), NULL, 0);
    }
    if (rc == CRAFT_OK && !old->found) {
        a->m.n_keys++;
    }
    return rc;
}

/* ---- sweeping ---- */

struct sweep {
    uint64_t now, idle;
    bool sessions;
    size_t want, n;
    uint8_t keys[SWEEP_CHUNK][KV_XKEY_MAX];
    size_t lens[SWEEP_CHUNK];
};

static int sweep_collect(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    (void)v;
    struct sweep *w = ctx;
    if (vlen != 0 || klen < 16 || klen > KV_XKEY_MAX || (w->sessions && klen != 16)) {
        return CRAFT_ECORRUPT;
    }
    uint64_t at = kv_get_be64(k);
    bool due = w->sessions ? (at <= w->now && w->now - at >= w->idle) : at <= w->now;
    if (!due) {
        return CRAFT_KV_ITER_STOP; /* in time order: nothing further is due */
    }
    memcpy(w->keys[w->n], k, klen);
    w->lens[w->n++] = klen;
    return w->n == w->want ? CRAFT_KV_ITER_STOP : CRAFT_OK;
}

/* Removes up to max due keys (sessions: false) or idle sessions (true), oldest first. */
static int sweep(struct ap *a, bool sessions, size_t max)
{
    struct sweep *w = malloc(sizeof *w);
    if (w == NULL) {
        return CRAFT_ENOMEM;
    }
    w->now = a->m.now;
    w->idle = a->sm->session_idle_ms;
    w->sessions = sessions;
    int table = sessions ? CRAFT_KV_TABLE_IDLE : CRAFT_KV_TABLE_EXPIRES;
    int rc = CRAFT_OK;
    size_t done = 0;
    while (rc == CRAFT_OK && done < max) {
        w->n = 0;
        w->want = max - done < SWEEP_CHUNK ? max - done : SWEEP_CHUNK;
        rc = a->o->iter(a->t, table, NULL, 0, sweep_collect, w);
        for (size_t i = 0; rc == CRAFT_OK && i < w->n; i++) {
            const uint8_t *k = w->keys[i];
            if (sessions) {
                rc = not_found_is_corrupt(a->o->del(a->t, CRAFT_KV_TABLE_SESSIONS, k + 8, 8));
                if (rc == CRAFT_OK) {
                    rc = a->o->del(a->t, CRAFT_KV_TABLE_IDLE, k, 16);
                }
            } else {
                rc = key_remove(a, k + 8, w->lens[i] - 8, kv_get_be64(k));
            }
        }
        done += w->n;
        if (w->n < w->want) {
            break;
        }
    }
    free(w);
    return rc;
}

/* ---- sessions ---- */

struct sess {
    bool found;
    uint64_t seq, last_ms;
    const uint8_t *res; /* the saved result's encoding (borrowed until the next write) */
    size_t res_len;
};

static void idle_key(uint64_t last_ms, uint64_t id, uint8_t out[16])
{
    kv_put_be64(out, last_ms);
    kv_put_be64(out + 8, id);
}

static int session_remove(struct ap *a, uint64_t id, uint64_t last_ms)
{
    uint8_t k[16];
    kv_put_be64(k, id);
    int rc = not_found_is_corrupt(a->o->del(a->t, CRAFT_KV_TABLE_SESSIONS, k, 8));
    if (rc == CRAFT_OK) {
        idle_key(last_ms, id, k);
        rc = not_found_is_corrupt(a->o->del(a->t, CRAFT_KV_TABLE_IDLE, k, 16));
    }
    return rc;
}

/* A live session; one past its idle time is removed on the way. */
static int session_lookup(struct ap *a, uint64_t id, struct sess *out)
{
    memset(out, 0, sizeof *out);
    uint8_t k[8];
    kv_put_be64(k, id);
    const uint8_t *v;
    size_t vlen;
    int rc = a->o->get(a->t, CRAFT_KV_TABLE_SESSIONS, k, 8, &v, &vlen);
    if (rc == CRAFT_ENOTFOUND) {
        return CRAFT_OK;
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (vlen < KV_SESSION_HEADER) {
        return CRAFT_ECORRUPT;
    }
    uint64_t seq = craft_get_u64(v), last = craft_get_u64(v + 8);
    const uint8_t *res = v + KV_SESSION_HEADER;
    size_t res_len = vlen - KV_SESSION_HEADER;
    if (last > a->m.now || (res_len == 0) != (seq == 0) ||
        (res_len > 0 && !kv_result_valid(res, res_len))) {
        return CRAFT_ECORRUPT;
    }
    if (a->m.now - last >= a->sm->session_idle_ms) {
        return session_remove(a, id, last);
    }
    *out =
        (struct sess){.found = true, .seq = seq, .last_ms = last, .res = res, .res_len = res_len};
    return CRAFT_OK;
}

/* Writes the session's record (seq and the result encoding res, which may point into the
 * store) stamped with the logical time; old is its lookup. */
static int session_write(struct ap *a, uint64_t id, const struct sess *old, uint64_t seq,
                         const uint8_t *res, size_t res_len)
{
    int rc = scratch(a, KV_SESSION_HEADER + res_len);
    if (rc != CRAFT_OK) {
        return rc;
    }
    craft_put_u64(a->buf, seq);
    craft_put_u64(a->buf + 8, a->m.now);
    if (res_len > 0) {
        memmove(a->buf + KV_SESSION_HEADER, res, res_len);
    }
    uint8_t k[16];
    kv_put_be64(k, id);
    rc = a->o->put(a->t, CRAFT_KV_TABLE_SESSIONS, k, 8, a->buf, KV_SESSION_HEADER + res_len);
    if (rc == CRAFT_OK && old->found && old->last_ms != a->m.now) {
        idle_key(old->last_ms, id, k);
        rc = not_found_is_corrupt(a->o->del(a->t, CRAFT_KV_TABLE_IDLE, k, 16));
    }
    if (rc == CRAFT_OK && (!old->found || old->last_ms != a->m.now)) {
        idle_key(a->m.now, id, k);
        rc = a->o->put(a->t, CRAFT_KV_TABLE_IDLE, k, 16, NULL, 0);
    }
    return rc;
}

/* ---- the commands ---- */

/* Redis's strict integer syntax: optional '-', no '+', no spaces, no leading zeros. */
static bool parse_i64(const uint8_t *p, size_t len, int64_t *out)
{
    if (len == 0 || len > 20) {
        return false;
    }
    if (len == 1 && p[0] == '0') {
        *out = 0;
        return true;
    }
    bool neg = p[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i >= len || p[i] < '1' || p[i] > '9') {
        return false;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) {
            return false;
        }
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) {
            return false;
        }
        *out = (int64_t)v;
    }
    return true;
}

/* Each exec_* sets *res (owned) or returns a store error with *res NULL. */

static int exec_set(struct ap *a, const struct craft_kv_cmd *c, struct craft_kv_result **res)
{
    struct keyed k;
    int rc = key_find(a, c->key, &k);
    if (rc != CRAFT_OK) {
        return rc;
    }
    bool do_set = true;
    if (c->op == CRAFT_KV_OP_SETNX || (c->flags & CRAFT_KV_SET_NX)) {
        do_set = !k.old.found;
    } else if (c->flags & CRAFT_KV_SET_XX) {
        do_set = k.old.found;
    }
    struct craft_kv_result *r;
    if (c->op == CRAFT_KV_OP_SETNX) {
        r = res_int(do_set ? 1 : 0);
    } else if (c->op == CRAFT_KV_OP_GETSET || (c->flags & CRAFT_KV_SET_GET)) {
        r = res_value(&k.old);
    } else {
        r = res_simple(do_set ? CRAFT_KV_RES_OK : CRAFT_KV_RES_NIL);
    }
    if (r == NULL) {
        return CRAFT_ENOMEM;
    }
    if (do_set) {
        uint64_t at = 0;
        if (c->flags & CRAFT_KV_SET_EXPIRE) {
            at = c->expire_at;
        } else if ((c->flags & CRAFT_KV_SET_KEEPTTL) && k.old.found) {
            at = k.old.expire_at;
        }
        if ((c->flags & CRAFT_KV_SET_EXPIRE) && at == 0) {
            /* Instant 0 is in the past (key_store reads 0 as "no expiry"). */
            rc = k.old.found ? key_remove(a, k.sk, k.sklen, k.old.expire_at) : CRAFT_OK;
        } else {
            rc = key_store(a, k.sk, k.sklen, &k.old, c->value.p, c->value.len, NULL, 0, at);
        }
        if (rc != CRAFT_OK) {
            craft_kv_result_free(r);
            return rc;
        }
    }
    *res = r;
    return CRAFT_OK;
}

static int exec_getdel(struct ap *a, const struct craft_kv_cmd *c, struct craft_kv_result **res)
{
    struct keyed k;
    int rc = key_find(a, c->key, &k);
    if (rc != CRAFT_OK) {
        return rc;
    }
    struct craft_kv_result *r = res_value(&k.old);
    if (r == NULL) {
        return CRAFT_ENOMEM;
    }
    if (k.old.found) {
        rc = key_remove(a, k.sk, k.sklen, k.old.expire_at);
        if (rc != CRAFT_OK) {
            craft_kv_result_free(r);
            return rc;
        }
    }
    *res = r;
    return CRAFT_OK;
}

static int exec_del(struct ap *a, const struct craft_kv_cmd *c, struct craft_kv_result **res)
{
    int64_t n = 0;
    size_t off = 0;
    struct craft_kv_bytes key;
    while (craft_kv_cmd_next(c, &off, &key, NULL)) {
        struct keyed k;
        int rc = key_find(a, key, &k);
        if (rc == CRAFT_OK && k.old.found) {
            rc = key_remove(a, k.sk, k.sklen, k.old.expire_at);
            n++;
        }
        if (rc != CRAFT_OK) {
            return rc;
        }
    }
    return reply(res, res_int(n));
}

static int exec_append(struct ap *a, const struct craft_kv_cmd *c, struct craft_kv_result **res)
{
    struct keyed k;
    int rc = key_find(a, c->key, &k);
    if (rc != CRAFT_OK) {
        return rc;
    }
    size_t len = k.old.vlen + c->value.len;
    if (len > CRAFT_KV_VALUE_BYTES_MAX) {
        return reply(res, res_err(ERR_TOO_LONG));
    }
    rc = key_store(a, k.sk, k.sklen, &k.old, k.old.val, k.old.vlen, c->value.p, c->value.len,
                   k.old.expire_at);
    if (rc != CRAFT_OK) {
        return rc;
    }
    return reply(res, res_int((int64_t)len));
}

static int exec_incrby(struct ap *a, const struct craft_kv_cmd *c, struct craft_kv_result **res)
{
    struct keyed k;
    int rc = key_find(a, c->key, &k);
    if (rc != CRAFT_OK) {
        return rc;
    }
    int64_t v = 0;
    const char *err = NULL;
    if (k.old.found && !parse_i64(k.old.val, k.old.vlen, &v)) {
        err = ERR_NOT_INT;
    } else if ((c->delta < 0 && v < 0 && c->delta < INT64_MIN - v) ||
               (c->delta > 0 && v > 0 && c->delta > INT64_MAX - v)) {
        err = ERR_OVERFLOW;
    }
    if (err != NULL) {
        return reply(res, res_err(err));
    }
    v += c->delta;
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%" PRId64, v);
    CRAFT_ASSERT(n > 0 && (size_t)n < sizeof digits);
    rc = key_store(a, k.sk, k.sklen, &k.old, (const uint8_t *)digits, (size_t)n, NULL, 0,
                   k.old.expire_at);
    if (rc != CRAFT_OK) {
        return rc;
    }
    return reply(res, res_int(v));
}

static int exec_mset(struct ap *a, const struct craft_kv_cmd *c, struct craft_kv_result **res)
{
    size_t off = 0;
    struct craft_kv_bytes key, val;
    if (c->op == CRAFT_KV_OP_MSETNX) {
        /* All or nothing: look first (expired keys go on the way, as any lookup). */
        while (craft_kv_cmd_next(c, &off, &key, &val)) {
            struct keyed k;
            int rc = key_find(a, key, &k);
            if (rc != CRAFT_OK) {
                return rc;
            }
            if (k.old.found) {
                return reply(res, res_int(0));
            }
        }
        off = 0;
    }
    while (craft_kv_cmd_next(c, &off, &key, &val)) {
        struct keyed k;
        int rc = key_find(a, key, &k);
        if (rc == CRAFT_OK) {
            rc = key_store(a, k.sk, k.sklen, &k.old, val.p, val.len, NULL, 0, 0);
        }
        if (rc != CRAFT_OK) {
            return rc;
        }
    }
    return reply(res, c->op == CRAFT_KV_OP_MSETNX ? res_int(1) : res_simple(CRAFT_KV_RES_OK));
}

static int exec_expire(struct ap *a, const struct craft_kv_cmd *c, struct craft_kv_result **res)
{
    struct keyed k;
    int rc = key_find(a, c->key, &k);
    if (rc != CRAFT_OK) {
        return rc;
    }
    bool apply = k.old.found;
    if (apply && c->op == CRAFT_KV_OP_PERSIST) {
        apply = k.old.expire_at != 0;
    } else if (apply) {
        /* Redis 7: no expiry counts as an infinite one for GT and LT. */
        uint64_t cur = k.old.expire_at, at = c->expire_at;
        if (c->flags & CRAFT_KV_EXPIRE_NX) {
            apply = cur == 0;
        }
        if (c->flags & CRAFT_KV_EXPIRE_XX) {
            apply = apply && cur != 0;
        }
        if (c->flags & CRAFT_KV_EXPIRE_GT) {
            apply = apply && cur != 0 && at > cur;
        }
        if (c->flags & CRAFT_KV_EXPIRE_LT) {
            apply = apply && (cur == 0 || at < cur);
        }
    }
    if (apply) {
        uint64_t at = c->op == CRAFT_KV_OP_PERSIST ? 0 : c->expire_at;
        if (c->op == CRAFT_KV_OP_EXPIRE && at == 0) {
            rc = key_remove(a, k.sk, k.sklen, k.old.expire_at); /* instant 0 is in the past */
        } else {
            rc = key_store(a, k.sk, k.sklen, &k.old, k.old.val, k.old.vlen, NULL, 0, at);
        }
        if (rc != CRAFT_OK) {
            return rc;
        }
    }
    return reply(res, res_int(apply ? 1 : 0));
}

static int exec_flushall(struct ap *a, struct craft_kv_result **res)
{
    int rc = a->o->drop(a->t, CRAFT_KV_TABLE_DATA);
    if (rc == CRAFT_OK) {
        rc = a->o->drop(a->t, CRAFT_KV_TABLE_EXPIRES);
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    a->m.n_keys = 0;
    return reply(res, res_simple(CRAFT_KV_RES_OK));
}

static int count_member(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    (void)v, (void)vlen;
    if (klen < KV_MEMBER_PREFIX_LEN || memcmp(k, KV_MEMBER_PREFIX, KV_MEMBER_PREFIX_LEN) != 0) {
        return CRAFT_KV_ITER_STOP; /* past the members */
    }
    (*(size_t *)ctx)++;
    return CRAFT_OK;
}

static int exec_member(struct ap *a, const struct craft_kv_cmd *c, struct craft_kv_result **res)
{
    uint8_t k[KV_MEMBER_KEY_BYTES];
    kv_member_key(c->member_id, k);
    if (c->op == CRAFT_KV_OP_MEMBER_DEL) {
        int rc = a->o->del(a->t, CRAFT_KV_TABLE_META, k, sizeof k);
        if (rc != CRAFT_OK && rc != CRAFT_ENOTFOUND) {
            return rc;
        }
        return reply(res, res_int(rc == CRAFT_OK ? 1 : 0));
    }
    const uint8_t *old;
    size_t old_len;
    int rc = a->o->get(a->t, CRAFT_KV_TABLE_META, k, sizeof k, &old, &old_len);
    if (rc == CRAFT_ENOTFOUND) {
        /* A new member: the table is bounded (kv_sm.h). */
        size_t n = 0;
        rc = a->o->iter(a->t, CRAFT_KV_TABLE_META, (const uint8_t *)KV_MEMBER_PREFIX,
                        KV_MEMBER_PREFIX_LEN, count_member, &n);
        if (rc == CRAFT_OK && n >= CRAFT_KV_MEMBERS_MAX) {
            return reply(res, res_err(CRAFT_KV_ERR_MEMBERS));
        }
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    uint8_t v[KV_MEMBER_VAL_MAX];
    size_t vlen = kv_member_value(c->peer_addr.p, c->peer_addr.len, c->client_addr.p,
                                  c->client_addr.len, v);
    rc = a->o->put(a->t, CRAFT_KV_TABLE_META, k, sizeof k, v, vlen);
    if (rc != CRAFT_OK) {
        return rc;
    }
    return reply(res, res_simple(CRAFT_KV_RES_OK));
}

static int exec(struct ap *a, const struct craft_kv_cmd *c, struct craft_kv_result **res)
{
    switch (c->op) {
    case CRAFT_KV_OP_SET:
    case CRAFT_KV_OP_SETNX:
    case CRAFT_KV_OP_GETSET:
        return exec_set(a, c, res);
    case CRAFT_KV_OP_GETDEL:
        return exec_getdel(a, c, res);
    case CRAFT_KV_OP_DEL:
        return exec_del(a, c, res);
    case CRAFT_KV_OP_APPEND:
        return exec_append(a, c, res);
    case CRAFT_KV_OP_INCRBY:
        return exec_incrby(a, c, res);
    case CRAFT_KV_OP_MSET:
    case CRAFT_KV_OP_MSETNX:
        return exec_mset(a, c, res);
    case CRAFT_KV_OP_EXPIRE:
    case CRAFT_KV_OP_PERSIST:
        return exec_expire(a, c, res);
    case CRAFT_KV_OP_FLUSHALL:
        return exec_flushall(a, res);
    case CRAFT_KV_OP_MEMBER_SET:
    case CRAFT_KV_OP_MEMBER_DEL:
        return exec_member(a, c, res);
    default:
        CRAFT_UNREACHABLE();
    }
}

/* ---- one command ---- */

static int apply_session_op(struct ap *a, const struct craft_kv_cmd *c,
                            struct craft_kv_result **res)
{
    struct sess s;
    int rc = session_lookup(a, c->session, &s);
    if (rc == CRAFT_OK && c->op == CRAFT_KV_OP_SESSION_OPEN) {
        /* Idempotent: reopening a live session keeps its seq and result. */
        rc = s.found ? session_write(a, c->session, &s, s.seq, s.res, s.res_len)
                     : session_write(a, c->session, &s, 0, NULL, 0);
    } else if (rc == CRAFT_OK && s.found) {
        rc = session_remove(a, c->session, s.last_ms);
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    return reply(res, res_simple(CRAFT_KV_RES_OK));
}

/* Exactly once (thesis 6.3): a session's seq decides whether the command runs. */
static int apply_in_session(struct ap *a, const struct craft_kv_cmd *c,
                            struct craft_kv_result **res)
{
    struct sess s;
    int rc = session_lookup(a, c->session, &s);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (!s.found || c->seq < s.seq) {
        return reply(res, res_err(!s.found ? CRAFT_KV_ERR_SESSION : CRAFT_KV_ERR_STALE));
    }
    if (c->seq == s.seq) {
        /* A retry: the saved result, and the session stays alive. */
        struct craft_kv_result *r = kv_result_decode(s.res, s.res_len);
        if (r == NULL) {
            return CRAFT_ENOMEM;
        }
        rc = session_write(a, c->session, &s, s.seq, s.res, s.res_len);
        if (rc != CRAFT_OK) {
            craft_kv_result_free(r);
            return rc;
        }
        *res = r;
        return CRAFT_OK;
    }
    struct craft_kv_result *r = NULL;
    rc = exec(a, c, &r);
    if (rc != CRAFT_OK) {
        return rc;
    }
    uint8_t *enc = malloc(1 + 8 + 4 + r->len);
    if (enc == NULL) {
        craft_kv_result_free(r);
        return CRAFT_ENOMEM;
    }
    size_t enc_len = kv_result_encode(r, enc);
    /* The lookup's pointers are stale after exec's writes; only found and last_ms are used. */
    s.res = NULL;
    rc = session_write(a, c->session, &s, c->seq, enc, enc_len);
    free(enc);
    if (rc != CRAFT_OK) {
        craft_kv_result_free(r);
        return rc;
    }
    *res = r;
    return CRAFT_OK;
}

static int apply_one(struct ap *a, const uint8_t *data, size_t len, struct craft_kv_result **res)
{
    struct craft_kv_cmd c;
    int rc = craft_kv_cmd_decode(data, len, &c);
    if (rc != CRAFT_OK) {
        /* The same bytes fail the same way everywhere: an answer, not a failure. */
        return reply(res,
                     res_err(rc == CRAFT_EVERSION ? CRAFT_KV_ERR_VERSION : CRAFT_KV_ERR_MALFORMED));
    }
    if (c.now_ms > a->m.now) {
        a->m.now = c.now_ms;
    }
    bool noop = c.op == CRAFT_KV_OP_NOOP;
    rc = sweep(a, false, noop ? NOOP_SWEEP_KEYS : SWEEP_KEYS);
    if (rc == CRAFT_OK) {
        rc = sweep(a, true, noop ? NOOP_SWEEP_SESSIONS : SWEEP_SESSIONS);
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    switch (c.op) {
    case CRAFT_KV_OP_NOOP:
        return reply(res, res_simple(CRAFT_KV_RES_OK));
    case CRAFT_KV_OP_SESSION_OPEN:
    case CRAFT_KV_OP_SESSION_CLOSE:
        return apply_session_op(a, &c, res);
    default:
        return c.session == 0 ? exec(a, &c, res) : apply_in_session(a, &c, res);
    }
}

/* ---- the state machine ---- */

int craft_kv_sm_open(struct craft_kv_store *store, const struct craft_kv_sm_config *cfg,
                     struct craft_kv_sm **out)
{
    struct craft_kv_sm *sm = calloc(1, sizeof *sm);
    if (sm == NULL) {
        return CRAFT_ENOMEM;
    }
    sm->store = store;
    sm->session_idle_ms = cfg != NULL && cfg->session_idle_ms != 0 ? cfg->session_idle_ms
                                                                   : KV_SESSION_IDLE_MS_DEFAULT;
    struct craft_kv_txn *t;
    int rc = store->ops->begin(store, false, &t);
    if (rc == CRAFT_OK) {
        struct kv_meta m = {0};
        rc = kv_meta_load(store, t, &m);
        store->ops->abort(t);
        sm->applied = m.applied;
        sm->now = m.now;
        sm->n_keys = m.n_keys;
    }
    if (rc != CRAFT_OK) {
        free(sm);
        return rc;
    }
    *out = sm;
    return CRAFT_OK;
}

void craft_kv_sm_close(struct craft_kv_sm *sm)
{
    free(sm);
}

uint64_t craft_kv_sm_applied(const struct craft_kv_sm *sm)
{
    return sm->applied;
}

uint64_t craft_kv_sm_now(const struct craft_kv_sm *sm)
{
    return sm->now;
}

int craft_kv_sm_apply_batch(struct craft_kv_sm *sm, const struct craft_command *cmds, size_t n,
                            void **results)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        results[i] = NULL;
        any = any || cmds[i].index > sm->applied;
    }
    if (!any) {
        return CRAFT_OK;
    }
    struct ap a = {.sm = sm, .o = sm->store->ops};
    a.m = (struct kv_meta){.applied = sm->applied, .now = sm->now, .n_keys = sm->n_keys};
    int rc = a.o->begin(sm->store, true, &a.t);
    if (rc != CRAFT_OK) {
        return rc;
    }
    for (size_t i = 0; rc == CRAFT_OK && i < n; i++) {
        if (cmds[i].index <= a.m.applied) {
            continue; /* replayed: the store has it */
        }
        struct craft_kv_result *r = NULL;
        rc = apply_one(&a, cmds[i].data, cmds[i].len, &r);
        results[i] = r;
        a.m.applied = cmds[i].index;
    }
    if (rc == CRAFT_OK) {
        rc = kv_meta_store(sm->store, a.t, &a.m);
    }
    if (rc == CRAFT_OK) {
        rc = a.o->commit(a.t);
    } else {
        a.o->abort(a.t);
    }
    free(a.buf);
    if (rc != CRAFT_OK) {
        for (size_t i = 0; i < n; i++) {
            craft_kv_result_free(results[i]);
            results[i] = NULL;
        }
        return rc;
    }
    sm->applied = a.m.applied;
    sm->now = a.m.now;
    sm->n_keys = a.m.n_keys;
    return CRAFT_OK;
}

int craft_kv_sm_apply(struct craft_kv_sm *sm, uint64_t index, const uint8_t *data, size_t len,
                      struct craft_kv_result **result)
{
    CRAFT_ASSERT(len <= UINT32_MAX);
    struct craft_command cmd = {.index = index, .term = 0, .data = data, .len = (uint32_t)len};
    void *r = NULL;
    int rc = craft_kv_sm_apply_batch(sm, &cmd, 1, &r);
    *result = r;
    return rc;
}
