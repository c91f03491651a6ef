/* craftkv snapshots: a store read transaction streamed in a versioned, crc32-checked,
 * canonical format, and restore of it in one write transaction (docs/design/kv.md,
 * "Snapshots").
 *
 *   header  "CRKVSNAP" | u32 version (3) | u32 0 | u64 applied | u64 now
 *   KEY     u8 1 | u64 expire_at | u32 klen | u32 vlen | key | value    (stored-key order)
 *   COLL    u8 5 | u64 expire_at | u8 type | u32 klen | u64 count | u64 version | key,
 *           then count ELEMs (a hash or a set, among the KEYs in stored-key order)
 *   ELEM    u32 flen | u32 vlen | field | value     (element order: hash, then field;
 *           a set's values are empty)
 *   SESSION u8 2 | u64 id | u64 last | u64 last_ms | u32 wlen | window  (id order)
 *   MEMBER  u8 3 | u64 id | u32 plen | u32 clen | peer addr | client addr (id order)
 *   SHARD   u8 4 | u32 len | a shard group's view (shard/view.h)       (at most one)
 *   END     u8 0 | u64 n_keys | u64 n_sessions | u64 n_members | u32 crc32 of every byte
 *           before it
 *
 * A SESSION's window is the stored record's entries as they are (kv_internal.h): restore
 * checks the rebuilt record with kv_session_valid. Versions 1 and 2 (still restored) saved
 * one result per session (u32 rlen | result, empty before the first: a window of at most
 * one); version 1 had no MEMBER records and no n_members. Version 4 is version 3 with a
 * SHARD record, written only by a shard group (a plain state machine's snapshot stays
 * version 3, byte for byte). Expired keys and idle sessions are left out, so equal states
 * give equal bytes. */
#include <stdlib.h>
#include <zlib.h>

#include "base/assert.h"
#include "kv/kv_internal.h"
#include "shard/view.h"

#define SNAP_MAGIC        "CRKVSNAP"
#define SNAP_VERSION_V4   4u /* a shard group's: version 3 and a SHARD record */
#define SNAP_VERSION      3u
#define SNAP_VERSION_V2   2u /* one saved result per session */
#define SNAP_VERSION_V1   1u /* before the member table */
#define SNAP_HEADER_BYTES 32u
#define TAG_END           0u
#define TAG_KEY           1u
#define TAG_SESSION       2u
#define TAG_MEMBER        3u
#define TAG_SHARD         4u
#define TAG_COLL          5u
#define IO_BUF_BYTES      (64u * 1024u)

static uLong crc_add(uLong crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, b, k);
        b += k;
        n -= k;
    }
    return crc;
}

struct craft_kv_snap {
    struct craft_kv_store *s;
    struct craft_kv_txn *t;
    struct kv_meta m;
    uint64_t idle_ms;
};

int craft_kv_sm_snapshot(struct craft_kv_sm *sm, struct craft_kv_snap **out)
{
    struct craft_kv_snap *snap = calloc(1, sizeof *snap);
    if (snap == NULL) {
        return CRAFT_ENOMEM;
    }
    snap->s = sm->store;
    snap->idle_ms = sm->session_idle_ms;
    int rc = snap->s->ops->begin(snap->s, false, &snap->t);
    if (rc != CRAFT_OK) {
        free(snap);
        return rc;
    }
    rc = kv_meta_load(snap->s, snap->t, &snap->m);
    if (rc != CRAFT_OK) {
        craft_kv_snap_release(snap);
        return rc;
    }
    *out = snap;
    return CRAFT_OK;
}

void craft_kv_snap_release(struct craft_kv_snap *snap)
{
    snap->s->ops->abort(snap->t);
    free(snap);
}

/* ---- writing ---- */

struct wr {
    craft_kv_write_fn write;
    void *ctx;
    uint8_t *buf;
    size_t len;
    uLong crc;
    uint64_t now, idle_ms, n_keys, n_sessions, n_members;
    const struct craft_kv_store_ops *o; /* the snapshot's transaction, for the elements */
    struct craft_kv_txn *t;
};

static int wr_flush(struct wr *w)
{
    int rc = w->len > 0 ? w->write(w->ctx, w->buf, w->len) : CRAFT_OK;
    w->len = 0;
    return rc;
}

static int wr_put(struct wr *w, const void *p, size_t n)
{
    w->crc = crc_add(w->crc, p, n);
    if (w->len + n > IO_BUF_BYTES) {
        int rc = wr_flush(w);
        if (rc != CRAFT_OK) {
            return rc;
        }
        if (n >= IO_BUF_BYTES) {
            return w->write(w->ctx, p, n);
        }
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return CRAFT_OK;
}

/* A collection's elements as ELEM records: exactly count of them. */
struct wr_elems {
    struct wr *w;
    uint64_t id, left;
};

static int write_elem(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    struct wr_elems *e = ctx;
    if (klen < 8 || kv_get_be64(k) != e->id) {
        return CRAFT_KV_ITER_STOP;
    }
    if (klen < 16 || klen > KV_EKEY_MAX || vlen > CRAFT_KV_VALUE_BYTES_MAX || e->left == 0) {
        return CRAFT_ECORRUPT;
    }
    e->left--;
    uint8_t h[8];
    craft_put_u32(h, (uint32_t)(klen - 16));
    craft_put_u32(h + 4, (uint32_t)vlen);
    int rc = wr_put(e->w, h, sizeof h);
    if (rc == CRAFT_OK) {
        rc = wr_put(e->w, k + 16, klen - 16);
    }
    if (rc == CRAFT_OK) {
        rc = wr_put(e->w, v, vlen);
    }
    return rc;
}

static int write_coll(struct wr *w, const uint8_t *k, size_t klen, const struct kv_live *l)
{
    uint8_t h[1 + 8 + 1 + 4 + 8 + 8];
    h[0] = TAG_COLL;
    craft_put_u64(h + 1, l->expire_at);
    h[9] = l->type;
    craft_put_u32(h + 10, (uint32_t)(klen - 8));
    craft_put_u64(h + 14, l->coll.count);
    craft_put_u64(h + 22, l->coll.version);
    int rc = wr_put(w, h, sizeof h);
    if (rc == CRAFT_OK) {
        rc = wr_put(w, k + 8, klen - 8);
    }
    w->n_keys++;
    if (rc != CRAFT_OK) {
        return rc;
    }
    struct wr_elems e = {.w = w, .id = l->coll.id, .left = l->coll.count};
    uint8_t from[8];
    kv_put_be64(from, l->coll.id);
    /* A second cursor in the same read transaction, inside the DATA walk. */
    rc = w->o->iter(w->t, CRAFT_KV_TABLE_ELEMS, from, sizeof from, write_elem, &e);
    return rc == CRAFT_OK && e.left != 0 ? CRAFT_ECORRUPT : rc;
}

static int write_key(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    struct wr *w = ctx;
    struct kv_live l;
    if (klen < 8 || klen > KV_SKEY_MAX || !kv_live_parse(v, vlen, &l) ||
        vlen - KV_VAL_HEADER > CRAFT_KV_VALUE_BYTES_MAX) {
        return CRAFT_ECORRUPT;
    }
    uint64_t at = l.expire_at;
    if (at != 0 && at <= w->now) {
        return CRAFT_OK; /* expired, not yet swept */
    }
    if (l.type != KV_TYPE_STRING) {
        return write_coll(w, k, klen, &l);
    }
    uint8_t h[1 + 8 + 4 + 4];
    h[0] = TAG_KEY;
    craft_put_u64(h + 1, at);
    craft_put_u32(h + 9, (uint32_t)(klen - 8));
    craft_put_u32(h + 13, (uint32_t)(vlen - KV_VAL_HEADER));
    int rc = wr_put(w, h, sizeof h);
    if (rc == CRAFT_OK) {
        rc = wr_put(w, k + 8, klen - 8);
    }
    if (rc == CRAFT_OK) {
        rc = wr_put(w, v + KV_VAL_HEADER, vlen - KV_VAL_HEADER);
    }
    w->n_keys++;
    return rc;
}

static int write_session(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    struct wr *w = ctx;
    if (klen != 8 || !kv_session_valid(v, vlen)) {
        return CRAFT_ECORRUPT;
    }
    uint64_t last = craft_get_u64(v + 8);
    if (last > w->now) {
        return CRAFT_ECORRUPT;
    }
    if (w->now - last >= w->idle_ms) {
        return CRAFT_OK; /* idle, not yet swept */
    }
    uint8_t h[1 + 8 + 8 + 8 + 4];
    h[0] = TAG_SESSION;
    craft_put_u64(h + 1, kv_get_be64(k));
    memcpy(h + 9, v, 16); /* last, last_ms */
    craft_put_u32(h + 25, (uint32_t)(vlen - KV_SESSION_HEADER));
    int rc = wr_put(w, h, sizeof h);
    if (rc == CRAFT_OK) {
        rc = wr_put(w, v + KV_SESSION_HEADER, vlen - KV_SESSION_HEADER);
    }
    w->n_sessions++;
    return rc;
}

static int write_member(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    struct wr *w = ctx;
    struct craft_kv_member m;
    bool is_member;
    if (!kv_member_parse(k, klen, v, vlen, &m, &is_member)) {
        return is_member ? CRAFT_ECORRUPT : CRAFT_KV_ITER_STOP; /* past the members */
    }
    size_t plen = strlen(m.peer_addr), clen = strlen(m.client_addr);
    uint8_t h[1 + 8 + 4 + 4];
    h[0] = TAG_MEMBER;
    craft_put_u64(h + 1, m.id);
    craft_put_u32(h + 9, (uint32_t)plen);
    craft_put_u32(h + 13, (uint32_t)clen);
    int rc = wr_put(w, h, sizeof h);
    if (rc == CRAFT_OK) {
        rc = wr_put(w, m.peer_addr, plen);
    }
    if (rc == CRAFT_OK) {
        rc = wr_put(w, m.client_addr, clen);
    }
    w->n_members++;
    return rc;
}

int craft_kv_snap_write(struct craft_kv_snap *snap, craft_kv_write_fn write, void *ctx)
{
    struct wr w = {.write = write,
                   .ctx = ctx,
                   .crc = crc32(0L, Z_NULL, 0),
                   .now = snap->m.now,
                   .idle_ms = snap->idle_ms,
                   .o = snap->s->ops,
                   .t = snap->t};
    w.buf = malloc(IO_BUF_BYTES);
    if (w.buf == NULL) {
        return CRAFT_ENOMEM;
    }
    const struct craft_kv_store_ops *o = snap->s->ops;
    const uint8_t *view;
    size_t view_len = 0;
    int rc = o->get(snap->t, CRAFT_KV_TABLE_META, (const uint8_t *)KV_META_SHARD,
                    strlen(KV_META_SHARD), &view, &view_len);
    if (rc != CRAFT_OK && rc != CRAFT_ENOTFOUND) {
        free(w.buf);
        return rc;
    }
    bool sharded = rc == CRAFT_OK;
    if (sharded && (view_len == 0 || view_len > CRAFT_SHARD_VIEW_BYTES_MAX)) {
        free(w.buf);
        return CRAFT_ECORRUPT;
    }
    uint8_t h[SNAP_HEADER_BYTES];
    memcpy(h, SNAP_MAGIC, 8);
    craft_put_u32(h + 8, sharded ? SNAP_VERSION_V4 : SNAP_VERSION);
    craft_put_u32(h + 12, 0);
    craft_put_u64(h + 16, snap->m.applied);
    craft_put_u64(h + 24, snap->m.now);
    rc = wr_put(&w, h, sizeof h);
    if (rc == CRAFT_OK) {
        rc = o->iter(snap->t, CRAFT_KV_TABLE_DATA, NULL, 0, write_key, &w);
    }
    if (rc == CRAFT_OK) {
        rc = o->iter(snap->t, CRAFT_KV_TABLE_SESSIONS, NULL, 0, write_session, &w);
    }
    if (rc == CRAFT_OK) {
        rc = o->iter(snap->t, CRAFT_KV_TABLE_META, (const uint8_t *)KV_MEMBER_PREFIX,
                     KV_MEMBER_PREFIX_LEN, write_member, &w);
    }
    if (rc == CRAFT_OK && w.n_members > CRAFT_KV_MEMBERS_MAX) {
        rc = CRAFT_ECORRUPT; /* apply never records more */
    }
    if (rc == CRAFT_OK && sharded) {
        uint8_t sh[5];
        sh[0] = TAG_SHARD;
        craft_put_u32(sh + 1, (uint32_t)view_len);
        rc = wr_put(&w, sh, sizeof sh);
        if (rc == CRAFT_OK) {
            rc = wr_put(&w, view, view_len);
        }
    }
    if (rc == CRAFT_OK) {
        uint8_t end[1 + 8 + 8 + 8];
        end[0] = TAG_END;
        craft_put_u64(end + 1, w.n_keys);
        craft_put_u64(end + 9, w.n_sessions);
        craft_put_u64(end + 17, w.n_members);
        rc = wr_put(&w, end, sizeof end);
    }
    if (rc == CRAFT_OK) {
        uint8_t c[4];
        craft_put_u32(c, (uint32_t)w.crc);
        rc = wr_put(&w, c, sizeof c);
    }
    if (rc == CRAFT_OK) {
        rc = wr_flush(&w);
    }
    free(w.buf);
    return rc;
}

/* ---- restoring ---- */

struct rd {
    craft_kv_read_fn read;
    void *ctx;
    uint8_t *buf;
    size_t pos, len;
    uLong crc;
};

/* Exactly n bytes (CRAFT_ECORRUPT if the snapshot ends first), added to the crc. */
static int rd_exact(struct rd *r, void *out, size_t n)
{
    uint8_t *o = out;
    size_t got = 0;
    while (got < n) {
        if (r->pos == r->len) {
            size_t k = 0;
            int rc = r->read(r->ctx, r->buf, IO_BUF_BYTES, &k);
            if (rc != CRAFT_OK) {
                return rc;
            }
            if (k == 0) {
                return CRAFT_ECORRUPT; /* truncated */
            }
            CRAFT_ASSERT(k <= IO_BUF_BYTES);
            r->pos = 0;
            r->len = k;
        }
        size_t k = r->len - r->pos < n - got ? r->len - r->pos : n - got;
        memcpy(o + got, r->buf + r->pos, k);
        r->pos += k;
        got += k;
    }
    r->crc = crc_add(r->crc, out, n);
    return CRAFT_OK;
}

/* CRAFT_OK if nothing follows. */
static int rd_at_end(struct rd *r)
{
    if (r->pos < r->len) {
        return CRAFT_ECORRUPT;
    }
    size_t k = 0;
    int rc = r->read(r->ctx, r->buf, IO_BUF_BYTES, &k);
    if (rc != CRAFT_OK) {
        return rc;
    }
    return k == 0 ? CRAFT_OK : CRAFT_ECORRUPT;
}

struct loader {
    struct rd r;
    struct craft_kv_store *s;
    const struct craft_kv_store_ops *o;
    struct craft_kv_txn *t;
    struct kv_meta m;
    uint8_t *rec; /* a record's key and value */
    uint8_t prev[KV_SKEY_MAX];
    size_t prev_len;
    bool have_prev;
    uint64_t prev_id, n_sessions;
    uint32_t version;
    uint64_t prev_member, n_members;
    uint64_t shard_gid;            /* the state machine's (0: plain) */
    struct craft_shard_view *view; /* the SHARD record, once read */
    /* The restore's key space (kv_keys.c), for collections: its scratch freed at the end;
     * the expiry bound it keeps is not used (the tables are replaced: unknown after). */
    struct kv_space ks;
    uint64_t expires_min;
    bool have_view;
};

/* The key of a KEY or COLL record: after the one before it in stored-key order. */
static int key_in_order(struct loader *l, const uint8_t *sk, size_t sklen)
{
    if (l->have_prev && kv_skey_cmp(l->prev, l->prev_len, sk, sklen) >= 0) {
        return CRAFT_ECORRUPT; /* out of order or repeated */
    }
    memcpy(l->prev, sk, sklen);
    l->prev_len = sklen;
    l->have_prev = true;
    return CRAFT_OK;
}

static int load_key(struct loader *l)
{
    uint8_t h[16];
    int rc = rd_exact(&l->r, h, sizeof h);
    if (rc != CRAFT_OK) {
        return rc;
    }
    uint64_t at = craft_get_u64(h);
    uint32_t klen = craft_get_u32(h + 8), vlen = craft_get_u32(h + 12);
    if (klen > CRAFT_KV_KEY_BYTES_MAX || vlen > CRAFT_KV_VALUE_BYTES_MAX ||
        at > (uint64_t)INT64_MAX || (at != 0 && at <= l->m.now)) {
        return CRAFT_ECORRUPT;
    }
    /* rec: stored key, then the DATA value (expire_at | value). */
    uint8_t *sk = l->rec, *val = l->rec + KV_SKEY_MAX;
    rc = rd_exact(&l->r, sk + 8, klen);
    if (rc == CRAFT_OK) {
        rc = rd_exact(&l->r, val + KV_VAL_HEADER, vlen);
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    kv_put_be64(sk, kv_key_hash(sk + 8, klen));
    size_t sklen = 8 + klen;
    rc = key_in_order(l, sk, sklen);
    if (rc != CRAFT_OK) {
        return rc;
    }
    craft_put_u64(val, at);
    rc = l->o->put(l->t, CRAFT_KV_TABLE_DATA, sk, sklen, val, KV_VAL_HEADER + vlen);
    if (rc == CRAFT_OK && at != 0) {
        uint8_t x[KV_XKEY_MAX];
        kv_put_be64(x, at);
        memcpy(x + 8, sk, sklen);
        rc = l->o->put(l->t, CRAFT_KV_TABLE_EXPIRES, x, 8 + sklen, NULL, 0);
    }
    l->m.n_keys++;
    return rc;
}

static int load_coll(struct loader *l)
{
    uint8_t h[8 + 1 + 4 + 8 + 8];
    int rc = rd_exact(&l->r, h, sizeof h);
    if (rc != CRAFT_OK) {
        return rc;
    }
    struct kv_coll c = {
        .type = h[8], .count = craft_get_u64(h + 13), .version = craft_get_u64(h + 21)};
    uint64_t at = craft_get_u64(h);
    uint32_t klen = craft_get_u32(h + 9);
    /* version: the log index of its last change, at most the snapshot's applied index. */
    if (klen > CRAFT_KV_KEY_BYTES_MAX || !kv_type_is_coll(c.type) || c.count == 0 ||
        c.version == 0 || c.version > l->m.applied || at > (uint64_t)INT64_MAX ||
        (at != 0 && at <= l->m.now)) {
        return CRAFT_ECORRUPT;
    }
    uint8_t sk[KV_SKEY_MAX];
    rc = rd_exact(&l->r, sk + 8, klen);
    if (rc != CRAFT_OK) {
        return rc;
    }
    kv_put_be64(sk, kv_key_hash(sk + 8, klen));
    size_t sklen = 8 + klen;
    rc = key_in_order(l, sk, sklen);
    if (rc != CRAFT_OK) {
        return rc;
    }
    /* A new id in this store: ids are the store's own (kv_internal.h). */
    if (l->m.coll_next == 0) {
        l->m.coll_next = 1;
    }
    c.id = l->m.coll_next++;
    c.head = c.type == KV_TYPE_LIST ? KV_LIST_BASE : 0;
    struct kv_space *ks = &l->ks;
    uint8_t prev[KV_EKEY_MAX], cur[KV_EKEY_MAX];
    size_t prev_len = 0;
    uint8_t *ef = l->rec, *ev = l->rec + KV_EKEY_MAX; /* the field, then the value */
    for (uint64_t i = 0; i < c.count; i++) {
        uint8_t eh[8];
        rc = rd_exact(&l->r, eh, sizeof eh);
        if (rc != CRAFT_OK) {
            return rc;
        }
        uint32_t flen = craft_get_u32(eh), vlen = craft_get_u32(eh + 4);
        if (flen > CRAFT_KV_FIELD_BYTES_MAX || vlen > CRAFT_KV_VALUE_BYTES_MAX) {
            return CRAFT_ECORRUPT;
        }
        rc = rd_exact(&l->r, ef, flen);
        if (rc == CRAFT_OK) {
            rc = rd_exact(&l->r, ev, vlen);
        }
        if (rc != CRAFT_OK) {
            return rc;
        }
        struct craft_kv_bytes f = {ef, flen}, v = {ev, vlen};
        if (!kv_elem_valid(c.type, f, v)) {
            return CRAFT_ECORRUPT;
        }
        size_t cur_len = kv_ekey(0, ef, flen, cur);
        if (c.type != KV_TYPE_LIST && i > 0 && kv_skey_cmp(prev, prev_len, cur, cur_len) >= 0) {
            return CRAFT_ECORRUPT; /* elements out of order or repeated */
        }
        memcpy(prev, cur, cur_len);
        prev_len = cur_len;
        rc = kv_elem_install(ks, &c, i, f, v);
        if (rc != CRAFT_OK) {
            return rc;
        }
    }
    /* The header, its expiry index entry and the key count, as apply stores them. */
    struct kv_live none = {0};
    return kv_coll_store(ks, sk, sklen, &none, &c, at);
}

static int load_session(struct loader *l)
{
    uint8_t h[28];
    int rc = rd_exact(&l->r, h, sizeof h);
    if (rc != CRAFT_OK) {
        return rc;
    }
    uint64_t id = craft_get_u64(h), seq = craft_get_u64(h + 8), last = craft_get_u64(h + 16);
    uint32_t wlen = craft_get_u32(h + 24);
    /* Before version 3 the tail is one result (none before the first): read it in place as
     * the window's one entry. */
    bool one = l->version < SNAP_VERSION;
    size_t entry = one && wlen > 0 ? KV_SESSION_ENTRY_HEADER : 0;
    if (id == 0 || (l->n_sessions > 0 && id <= l->prev_id) || last > l->m.now ||
        wlen > KV_SESSION_BYTES_MAX - KV_SESSION_HEADER - entry) {
        return CRAFT_ECORRUPT;
    }
    uint8_t *rec = l->rec; /* the stored record: last | last_ms | window */
    memcpy(rec, h + 8, 16);
    if (entry > 0) {
        craft_put_u64(rec + KV_SESSION_HEADER, seq);
        craft_put_u32(rec + KV_SESSION_HEADER + 8, wlen);
    }
    rc = rd_exact(&l->r, rec + KV_SESSION_HEADER + entry, wlen);
    if (rc != CRAFT_OK) {
        return rc;
    }
    size_t len = KV_SESSION_HEADER + entry + wlen;
    if (!kv_session_valid(rec, len)) {
        return CRAFT_ECORRUPT;
    }
    uint8_t k[16];
    kv_put_be64(k, id);
    rc = l->o->put(l->t, CRAFT_KV_TABLE_SESSIONS, k, 8, rec, len);
    if (rc == CRAFT_OK) {
        kv_put_be64(k, last);
        kv_put_be64(k + 8, id);
        rc = l->o->put(l->t, CRAFT_KV_TABLE_IDLE, k, 16, NULL, 0);
    }
    l->prev_id = id;
    l->n_sessions++;
    return rc;
}

static int load_member(struct loader *l)
{
    uint8_t h[16];
    int rc = rd_exact(&l->r, h, sizeof h);
    if (rc != CRAFT_OK) {
        return rc;
    }
    uint64_t id = craft_get_u64(h);
    uint32_t plen = craft_get_u32(h + 8), clen = craft_get_u32(h + 12);
    if (id == 0 || (l->n_members > 0 && id <= l->prev_member) ||
        l->n_members >= CRAFT_KV_MEMBERS_MAX || plen == 0 || plen > CRAFT_KV_ADDR_BYTES_MAX ||
        clen == 0 || clen > CRAFT_KV_ADDR_BYTES_MAX) {
        return CRAFT_ECORRUPT;
    }
    uint8_t a[2 * CRAFT_KV_ADDR_BYTES_MAX];
    rc = rd_exact(&l->r, a, plen + clen);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (!craft_kv_addr_ok(a, plen) || !craft_kv_addr_ok(a + plen, clen)) {
        return CRAFT_ECORRUPT;
    }
    uint8_t k[KV_MEMBER_KEY_BYTES], v[KV_MEMBER_VAL_MAX];
    kv_member_key(id, k);
    size_t vlen = kv_member_value(a, plen, a + plen, clen, v);
    l->prev_member = id;
    l->n_members++;
    return l->o->put(l->t, CRAFT_KV_TABLE_META, k, sizeof k, v, vlen);
}

static int load_shard(struct loader *l)
{
    uint8_t h[4];
    int rc = rd_exact(&l->r, h, sizeof h);
    if (rc != CRAFT_OK) {
        return rc;
    }
    uint32_t len = craft_get_u32(h);
    _Static_assert(CRAFT_SHARD_VIEW_BYTES_MAX <= KV_SKEY_MAX + KV_VAL_HEADER +
                                                      CRAFT_KV_VALUE_BYTES_MAX,
                   "a view fits rec");
    /* A plain state machine takes no shard group's snapshot, nor one group another's. */
    if (l->have_view || l->shard_gid == 0 || len > CRAFT_SHARD_VIEW_BYTES_MAX) {
        return CRAFT_ECORRUPT;
    }
    rc = rd_exact(&l->r, l->rec, len);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (craft_shard_view_decode(l->rec, len, l->view) != CRAFT_OK ||
        l->view->gid != l->shard_gid) {
        return CRAFT_ECORRUPT;
    }
    l->have_view = true;
    return kv_view_store(l->s, l->t, l->view);
}

static int load_end(struct loader *l)
{
    uint8_t b[24];
    size_t n = l->version == SNAP_VERSION_V1 ? 16 : 24;
    int rc = rd_exact(&l->r, b, n);
    if (rc != CRAFT_OK) {
        return rc;
    }
    uLong want = l->r.crc;
    uint8_t c[4];
    rc = rd_exact(&l->r, c, sizeof c);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (craft_get_u32(c) != (uint32_t)want || craft_get_u64(b) != l->m.n_keys ||
        craft_get_u64(b + 8) != l->n_sessions ||
        (n == 24 && craft_get_u64(b + 16) != l->n_members)) {
        return CRAFT_ECORRUPT;
    }
    return rd_at_end(&l->r);
}

static int load(struct loader *l)
{
    uint8_t h[SNAP_HEADER_BYTES];
    int rc = rd_exact(&l->r, h, sizeof h);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (memcmp(h, SNAP_MAGIC, 8) != 0 || craft_get_u32(h + 12) != 0) {
        return CRAFT_ECORRUPT;
    }
    l->version = craft_get_u32(h + 8);
    if (l->version != SNAP_VERSION_V4 && l->version != SNAP_VERSION &&
        l->version != SNAP_VERSION_V2 && l->version != SNAP_VERSION_V1) {
        return CRAFT_EVERSION;
    }
    l->m.applied = craft_get_u64(h + 16);
    l->m.now = craft_get_u64(h + 24);
    for (int i = 0; i < CRAFT_KV_TABLES; i++) {
        rc = l->o->drop(l->t, i);
        if (rc != CRAFT_OK) {
            return rc;
        }
    }
    for (;;) {
        uint8_t tag;
        rc = rd_exact(&l->r, &tag, 1);
        if (rc != CRAFT_OK) {
            return rc;
        }
        if (tag == TAG_END) {
            /* Version 4 exactly when there is a SHARD record: one state, one encoding. A
             * shard group takes only a group's snapshot (its own: load_shard). */
            if (l->have_view != (l->version == SNAP_VERSION_V4) ||
                (l->shard_gid != 0 && !l->have_view)) {
                return CRAFT_ECORRUPT;
            }
            return load_end(l);
        }
        /* Records come in table order: keys, sessions, members, then the view. */
        if (l->have_view) {
            return CRAFT_ECORRUPT;
        }
        if (tag == TAG_KEY && l->n_sessions == 0 && l->n_members == 0) {
            rc = load_key(l);
        } else if (tag == TAG_COLL && l->n_sessions == 0 && l->n_members == 0 &&
                   l->version >= SNAP_VERSION) {
            rc = load_coll(l);
        } else if (tag == TAG_SESSION && l->n_members == 0) {
            rc = load_session(l);
        } else if (tag == TAG_MEMBER && l->version != SNAP_VERSION_V1) {
            rc = load_member(l);
        } else if (tag == TAG_SHARD && l->version == SNAP_VERSION_V4) {
            rc = load_shard(l);
        } else {
            return CRAFT_ECORRUPT; /* unknown, or out of order */
        }
        if (rc != CRAFT_OK) {
            return rc;
        }
    }
}

int craft_kv_sm_restore(struct craft_kv_sm *sm, craft_kv_read_fn read, void *ctx)
{
    sm->expires_min = sm->idle_min = 0; /* the tables are being replaced: unknown */
    struct loader *l = calloc(1, sizeof *l);
    if (l == NULL) {
        return CRAFT_ENOMEM;
    }
    l->r = (struct rd){.read = read, .ctx = ctx, .crc = crc32(0L, Z_NULL, 0)};
    l->s = sm->store;
    l->o = sm->store->ops;
    l->shard_gid = sm->shard_gid;
    l->r.buf = malloc(IO_BUF_BYTES);
    l->rec = malloc(KV_SKEY_MAX + KV_VAL_HEADER + CRAFT_KV_VALUE_BYTES_MAX);
    _Static_assert(CRAFT_KV_FIELD_BYTES_MAX <= KV_EKEY_MAX &&
                       KV_EKEY_MAX <= KV_SKEY_MAX + KV_VAL_HEADER,
                   "an element's field and value fit rec");
    _Static_assert(KV_SESSION_BYTES_MAX <= KV_SKEY_MAX + KV_VAL_HEADER + CRAFT_KV_VALUE_BYTES_MAX,
                   "a session record fits rec");
    int rc = l->r.buf != NULL && l->rec != NULL ? CRAFT_OK : CRAFT_ENOMEM;
    if (rc == CRAFT_OK && sm->shard_gid != 0 && (l->view = malloc(sizeof *l->view)) == NULL) {
        rc = CRAFT_ENOMEM;
    }
    if (rc == CRAFT_OK) {
        rc = l->o->begin(sm->store, true, &l->t);
    }
    l->ks = (struct kv_space){
        .o = l->o, .t = l->t, .m = &l->m, .write = true, .expires_min = &l->expires_min};
    if (rc == CRAFT_OK) {
        rc = load(l);
        if (rc == CRAFT_OK) {
            rc = kv_meta_store(sm->store, l->t, &l->m);
        }
        if (rc == CRAFT_OK) {
            rc = l->o->commit(l->t);
        } else {
            l->o->abort(l->t);
        }
    }
    if (rc == CRAFT_OK) {
        sm->applied = l->m.applied;
        sm->now = l->m.now;
        sm->n_keys = l->m.n_keys;
        sm->coll_next = l->m.coll_next;
        if (sm->view != NULL) {
            *sm->view = *l->view;
            sm->view_stored = true;
        }
    }
    free(l->view);
    free(l->r.buf);
    free(l->rec);
    free(l->ks.buf);
    free(l);
    return rc;
}
