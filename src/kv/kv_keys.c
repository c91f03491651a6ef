/* craftkv's key space in one store transaction: a key's DATA entry, its entry in the expiry
 * index, and a collection's elements (kv.md "Storage", "Data types"). Apply (kv_sm.c,
 * kv_coll.c) and reads (kv_read.c, kv_coll.c) go through it, so there is one place that
 * knows how a key is stored, found, expired and removed. */
#include <stdlib.h>

#include "base/assert.h"
#include "base/bytes.h"
#include "kv/kv_internal.h"

int kv_reserve(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap) {
        return CRAFT_OK;
    }
    size_t n = need < 256 ? 256 : need;
    uint8_t *p = realloc(*buf, n);
    if (p == NULL) {
        return CRAFT_ENOMEM;
    }
    *buf = p;
    *cap = n;
    return CRAFT_OK;
}

const char *kv_type_name(const struct kv_live *v)
{
    if (!v->found) {
        return "none";
    }
    switch (v->type) {
    case KV_TYPE_HASH:
        return "hash";
    case KV_TYPE_SET:
        return "set";
    case KV_TYPE_LIST:
        return "list";
    case KV_TYPE_ZSET:
        return "zset";
    default:
        return "string";
    }
}

uint64_t kv_watch_digest(const struct kv_live *v)
{
    if (v->type == KV_TYPE_STRING) {
        return craft_kv_watch_digest(v->found, v->expire_at, v->val, v->vlen);
    }
    /* Type, expiry, count and version, not the id or a list's head (each store's own);
     * led by 2 where a string's digest is led by its found flag (0 or 1), so that no string
     * digests as a collection. FNV-1a 64, as craft_kv_watch_digest. */
    uint8_t h[1 + 1 + 8 + 8 + 8];
    h[0] = 2;
    h[1] = v->coll.type;
    kv_put_be64(h + 2, v->expire_at);
    kv_put_be64(h + 10, v->coll.count);
    kv_put_be64(h + 18, v->coll.version);
    uint64_t d = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < sizeof h; i++) {
        d = (d ^ h[i]) * 0x100000001b3ULL;
    }
    return d;
}

static int not_found_is_corrupt(int rc)
{
    return rc == CRAFT_ENOTFOUND ? CRAFT_ECORRUPT : rc;
}

static size_t xkey(uint64_t at, const uint8_t *sk, size_t sklen, uint8_t *out)
{
    kv_put_be64(out, at);
    memcpy(out + 8, sk, sklen);
    return 8 + sklen;
}

bool kv_live_parse(const uint8_t *v, size_t vlen, struct kv_live *out)
{
    memset(out, 0, sizeof *out);
    if (vlen < KV_VAL_HEADER) {
        return false;
    }
    uint64_t word = craft_get_u64(v);
    *out = (struct kv_live){.found = true,
                            .expire_at = word & ~KV_COLL_BIT,
                            .val = v + KV_VAL_HEADER,
                            .vlen = vlen - KV_VAL_HEADER};
    if (word & KV_COLL_BIT) {
        if (!kv_coll_get(out->val, out->vlen, &out->coll)) {
            return false;
        }
        out->type = out->coll.type;
    }
    return true;
}

/* Every element of collection id, a chunk at a time (an iteration must not write). */
#define CLEAR_CHUNK 64
struct clear_chunk {
    uint64_t id;
    size_t n;
    uint8_t keys[CLEAR_CHUNK][KV_EKEY_MAX];
    size_t lens[CLEAR_CHUNK];
};

static int clear_collect(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    (void)v, (void)vlen;
    struct clear_chunk *w = ctx;
    if (klen < 8 || kv_get_be64(k) != w->id) {
        return CRAFT_KV_ITER_STOP;
    }
    if (klen > KV_EKEY_MAX) {
        return CRAFT_ECORRUPT;
    }
    memcpy(w->keys[w->n], k, klen);
    w->lens[w->n++] = klen;
    return w->n == CLEAR_CHUNK ? CRAFT_KV_ITER_STOP : CRAFT_OK;
}

/* Removes every entry of table under id; *removed counts them. */
static int clear_table(struct kv_space *ks, int table, uint64_t id, uint64_t *removed)
{
    struct clear_chunk *w = malloc(sizeof *w);
    if (w == NULL) {
        return CRAFT_ENOMEM;
    }
    w->id = id;
    uint8_t from[8];
    kv_put_be64(from, id);
    *removed = 0;
    int rc;
    do {
        w->n = 0;
        rc = ks->o->iter(ks->t, table, from, sizeof from, clear_collect, w);
        for (size_t i = 0; rc == CRAFT_OK && i < w->n; i++) {
            rc = ks->o->del(ks->t, table, w->keys[i], w->lens[i]);
        }
        *removed += w->n;
    } while (rc == CRAFT_OK && w->n == CLEAR_CHUNK);
    free(w);
    return rc;
}

/* Removes the count elements of c (O(count): Redis's DEL of a big key is O(n) too), and a
 * sorted set's score index. */
static int coll_clear(struct kv_space *ks, const struct kv_coll *c)
{
    uint64_t removed = 0, indexed = c->count;
    int rc = clear_table(ks, CRAFT_KV_TABLE_ELEMS, c->id, &removed);
    if (rc == CRAFT_OK && c->type == KV_TYPE_ZSET) {
        rc = clear_table(ks, CRAFT_KV_TABLE_ZINDEX, c->id, &indexed);
    }
    if (rc == CRAFT_OK && (removed != c->count || indexed != c->count)) {
        rc = CRAFT_ECORRUPT; /* the header's count is the elements' */
    }
    return rc;
}

static int key_remove(struct kv_space *ks, const uint8_t *sk, size_t sklen, const struct kv_live *v,
                      bool elements)
{
    CRAFT_ASSERT(ks->write && v->found);
    int rc = not_found_is_corrupt(ks->o->del(ks->t, CRAFT_KV_TABLE_DATA, sk, sklen));
    if (rc == CRAFT_OK && v->expire_at != 0) {
        uint8_t x[KV_XKEY_MAX];
        rc = not_found_is_corrupt(
            ks->o->del(ks->t, CRAFT_KV_TABLE_EXPIRES, x, xkey(v->expire_at, sk, sklen, x)));
    }
    if (rc == CRAFT_OK && v->type != KV_TYPE_STRING && elements) {
        rc = coll_clear(ks, &v->coll);
    }
    if (rc == CRAFT_OK) {
        if (ks->m->n_keys == 0) {
            return CRAFT_ECORRUPT;
        }
        ks->m->n_keys--;
    }
    return rc;
}

int kv_key_remove(struct kv_space *ks, const uint8_t *sk, size_t sklen, const struct kv_live *v)
{
    return key_remove(ks, sk, sklen, v, true);
}

int kv_key_drop_entry(struct kv_space *ks, const uint8_t *sk, size_t sklen, const struct kv_live *v)
{
    return key_remove(ks, sk, sklen, v, false);
}

int kv_key_drop(struct kv_space *ks, const uint8_t *sk, size_t sklen)
{
    const uint8_t *v;
    size_t vlen;
    int rc = not_found_is_corrupt(ks->o->get(ks->t, CRAFT_KV_TABLE_DATA, sk, sklen, &v, &vlen));
    struct kv_live l;
    if (rc == CRAFT_OK && !kv_live_parse(v, vlen, &l)) {
        rc = CRAFT_ECORRUPT;
    }
    return rc == CRAFT_OK ? kv_key_remove(ks, sk, sklen, &l) : rc;
}

int kv_key_lookup(struct kv_space *ks, const uint8_t *sk, size_t sklen, struct kv_live *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *v;
    size_t vlen;
    int rc = ks->o->get(ks->t, CRAFT_KV_TABLE_DATA, sk, sklen, &v, &vlen);
    if (rc == CRAFT_ENOTFOUND) {
        return CRAFT_OK;
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    struct kv_live l;
    if (!kv_live_parse(v, vlen, &l)) {
        return CRAFT_ECORRUPT;
    }
    if (l.expire_at != 0 && l.expire_at <= ks->m->now) {
        /* Deterministic: expiry is decided by logical time only. */
        return ks->write ? kv_key_remove(ks, sk, sklen, &l) : CRAFT_OK;
    }
    *out = l;
    return CRAFT_OK;
}

int kv_key_find(struct kv_space *ks, struct craft_kv_bytes key, struct kv_keyed *k)
{
    if (key.len > CRAFT_KV_KEY_BYTES_MAX) {
        /* No such key can have been written (a read's key is not checked by a decoder). */
        memset(&k->old, 0, sizeof k->old);
        k->sklen = 0;
        return CRAFT_OK;
    }
    k->sklen = kv_skey(key.p, key.len, k->sk);
    return kv_key_lookup(ks, k->sk, k->sklen, &k->old);
}

/* Writes word | p1 | p2 as sk's DATA value, and the expiry index as the change of expiry
 * from old's to at requires. */
static int store_value(struct kv_space *ks, const uint8_t *sk, size_t sklen,
                       const struct kv_live *old, uint64_t word, const uint8_t *p1, size_t l1,
                       const uint8_t *p2, size_t l2, uint64_t at)
{
    CRAFT_ASSERT(ks->write && at <= (uint64_t)INT64_MAX);
    int rc = kv_reserve(&ks->buf, &ks->cap, KV_VAL_HEADER + l1 + l2);
    if (rc != CRAFT_OK) {
        return rc;
    }
    craft_put_u64(ks->buf, word);
    if (l1 > 0) {
        memmove(ks->buf + KV_VAL_HEADER, p1, l1);
    }
    if (l2 > 0) {
        memmove(ks->buf + KV_VAL_HEADER + l1, p2, l2);
    }
    rc = ks->o->put(ks->t, CRAFT_KV_TABLE_DATA, sk, sklen, ks->buf, KV_VAL_HEADER + l1 + l2);
    uint8_t x[KV_XKEY_MAX];
    if (rc == CRAFT_OK && old->found && old->expire_at != 0 && old->expire_at != at) {
        rc = not_found_is_corrupt(
            ks->o->del(ks->t, CRAFT_KV_TABLE_EXPIRES, x, xkey(old->expire_at, sk, sklen, x)));
    }
    if (rc == CRAFT_OK && at != 0 && (!old->found || old->expire_at != at)) {
        rc = ks->o->put(ks->t, CRAFT_KV_TABLE_EXPIRES, x, xkey(at, sk, sklen, x), NULL, 0);
        *ks->expires_min = at < *ks->expires_min ? at : *ks->expires_min;
    }
    if (rc == CRAFT_OK && !old->found) {
        ks->m->n_keys++;
    }
    return rc;
}

int kv_key_store(struct kv_space *ks, const uint8_t *sk, size_t sklen, const struct kv_live *old,
                 const uint8_t *p1, size_t l1, const uint8_t *p2, size_t l2, uint64_t at)
{
    if (at != 0 && at <= ks->m->now) {
        return old->found ? kv_key_remove(ks, sk, sklen, old) : CRAFT_OK;
    }
    if (old->found && old->type != KV_TYPE_STRING) {
        /* A string replaces a collection (SET, MSET): its elements go first. */
        CRAFT_ASSERT(p1 != old->val);
        int rc = kv_key_remove(ks, sk, sklen, old);
        if (rc != CRAFT_OK) {
            return rc;
        }
        struct kv_live none = {0};
        return store_value(ks, sk, sklen, &none, at, p1, l1, p2, l2, at);
    }
    return store_value(ks, sk, sklen, old, at, p1, l1, p2, l2, at);
}

int kv_coll_store(struct kv_space *ks, const uint8_t *sk, size_t sklen, const struct kv_live *old,
                  const struct kv_coll *c, uint64_t at)
{
    CRAFT_ASSERT(c->count > 0 && c->id != 0);
    CRAFT_ASSERT(!old->found || (old->type == c->type && old->coll.id == c->id));
    if (at != 0 && at <= ks->m->now) {
        return old->found ? kv_key_remove(ks, sk, sklen, old) : CRAFT_OK;
    }
    uint8_t h[KV_COLL_HEADER_MAX];
    size_t hlen = kv_coll_put(h, c);
    return store_value(ks, sk, sklen, old, at | KV_COLL_BIT, h, hlen, NULL, 0, at);
}

uint64_t kv_coll_new_id(struct kv_space *ks)
{
    CRAFT_ASSERT(ks->write);
    if (ks->m->coll_next == 0) {
        ks->m->coll_next = 1;
    }
    return ks->m->coll_next++;
}

bool kv_elem_valid(uint8_t type, struct craft_kv_bytes f, struct craft_kv_bytes v)
{
    if (f.len > CRAFT_KV_FIELD_BYTES_MAX || v.len > CRAFT_KV_VALUE_BYTES_MAX) {
        return false;
    }
    switch (type) {
    case KV_TYPE_HASH:
        return true;
    case KV_TYPE_SET:
        return v.len == 0;
    case KV_TYPE_LIST:
        return f.len == 0;
    case KV_TYPE_ZSET: {
        if (v.len != 8) {
            return false;
        }
        double d = kv_score_get(v.p);
        return d == d; /* not NaN */
    }
    default:
        return false;
    }
}

int kv_elem_install(struct kv_space *ks, const struct kv_coll *c, uint64_t i,
                    struct craft_kv_bytes f, struct craft_kv_bytes v)
{
    CRAFT_ASSERT(kv_elem_valid(c->type, f, v));
    if (c->type == KV_TYPE_LIST) {
        uint8_t k[KV_LKEY];
        kv_lkey(c->id, c->head + i, k);
        return ks->o->put(ks->t, CRAFT_KV_TABLE_ELEMS, k, sizeof k, v.p, v.len);
    }
    uint8_t k[KV_EKEY_MAX];
    int rc = ks->o->put(ks->t, CRAFT_KV_TABLE_ELEMS, k, kv_ekey(c->id, f.p, f.len, k), v.p, v.len);
    if (rc == CRAFT_OK && c->type == KV_TYPE_ZSET) {
        uint8_t z[KV_ZKEY_MAX];
        rc = ks->o->put(ks->t, CRAFT_KV_TABLE_ZINDEX, z,
                        kv_zkey(c->id, kv_score_get(v.p), f.p, f.len, z), NULL, 0);
    }
    return rc;
}
