/* craftkv shard groups: migration payloads and session merges (kv_shard.h). */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/bytes.h"
#include "base/err.h"
#include "kv/kv_shard.h"
#include "shard/slots.h"

/* ---- reading ---- */

void kv_payload_coll_header(const uint8_t *val, struct kv_coll *c)
{
    *c = (struct kv_coll){
        .type = val[0], .count = craft_get_u64(val + 1), .version = craft_get_u64(val + 9)};
}

bool kv_payload_coll_next(const uint8_t *val, size_t vlen, size_t *off, struct craft_kv_bytes *f,
                          struct craft_kv_bytes *v)
{
    if (*off >= vlen) {
        return false;
    }
    struct craft_reader r = {val + *off, vlen - *off};
    const uint8_t *h = craft_take(&r, 8);
    CRAFT_ASSERT(h != NULL); /* checked by kv_payload_coll_valid */
    f->len = craft_get_u32(h);
    v->len = craft_get_u32(h + 4);
    f->p = craft_take(&r, f->len);
    v->p = craft_take(&r, v->len);
    CRAFT_ASSERT((f->p != NULL || f->len == 0) && (v->p != NULL || v->len == 0));
    *off = (size_t)(r.p - val);
    return true;
}

bool kv_payload_coll_valid(const uint8_t *val, size_t vlen)
{
    if (vlen < KV_PAYLOAD_COLL_HEADER) {
        return false;
    }
    struct kv_coll c;
    kv_payload_coll_header(val, &c);
    if (!kv_type_is_coll(c.type) || c.count == 0) {
        return false;
    }
    struct craft_reader r = {val + KV_PAYLOAD_COLL_HEADER, vlen - KV_PAYLOAD_COLL_HEADER};
    uint8_t prev[KV_EKEY_MAX], cur[KV_EKEY_MAX];
    size_t prev_len = 0;
    for (uint64_t i = 0; i < c.count; i++) {
        const uint8_t *h = craft_take(&r, 8), *f, *v;
        if (h == NULL) {
            return false;
        }
        uint32_t flen = craft_get_u32(h), elen = craft_get_u32(h + 4);
        if ((f = craft_take(&r, flen)) == NULL || (v = craft_take(&r, elen)) == NULL ||
            !kv_elem_valid(c.type, (struct craft_kv_bytes){f, flen},
                           (struct craft_kv_bytes){v, elen})) {
            return false;
        }
        size_t cur_len = kv_ekey(0, f, flen, cur);
        if (c.type != KV_TYPE_LIST && i > 0 && kv_skey_cmp(prev, prev_len, cur, cur_len) >= 0) {
            return false; /* out of order, or twice (a list's order is its sequence) */
        }
        memcpy(prev, cur, cur_len);
        prev_len = cur_len;
    }
    return r.left == 0;
}

static bool take_key(struct craft_reader *r, struct kv_payload_key *k)
{
    const uint8_t *h = craft_take(r, 16);
    if (h == NULL) {
        return false;
    }
    uint64_t word = craft_get_u64(h);
    k->coll = (word & KV_COLL_BIT) != 0;
    k->expire_at = word & ~KV_COLL_BIT;
    k->klen = craft_get_u32(h + 8);
    k->vlen = craft_get_u32(h + 12);
    if (k->klen > CRAFT_KV_KEY_BYTES_MAX ||
        k->vlen > (k->coll ? CRAFT_KV_CMD_BYTES_MAX : CRAFT_KV_VALUE_BYTES_MAX)) {
        return false;
    }
    return (k->key = craft_take(r, k->klen)) != NULL && (k->val = craft_take(r, k->vlen)) != NULL;
}

static bool take_session(struct craft_reader *r, struct kv_payload_session *s)
{
    const uint8_t *h = craft_take(r, 12);
    if (h == NULL) {
        return false;
    }
    s->id = craft_get_u64(h);
    s->len = craft_get_u32(h + 8);
    return (s->rec = craft_take(r, s->len)) != NULL;
}

int kv_payload_open(const uint8_t *p, size_t len, struct kv_payload *out)
{
    memset(out, 0, sizeof *out);
    struct craft_reader r = {p, len};
    const uint8_t *b = craft_take(&r, 1);
    if (b == NULL) {
        return CRAFT_ECORRUPT;
    }
    if (b[0] != KV_PAYLOAD_VERSION && b[0] != KV_PAYLOAD_VERSION_PART) {
        return CRAFT_EVERSION;
    }
    out->part = b[0] == KV_PAYLOAD_VERSION_PART;
    if ((b = craft_take(&r, CRAFT_SLOT_SET_BYTES)) == NULL) {
        return CRAFT_ECORRUPT;
    }
    memcpy(out->slots.bits, b, CRAFT_SLOT_SET_BYTES);
    if (craft_slot_set_count(&out->slots) == 0 || (b = craft_take(&r, 4)) == NULL) {
        return CRAFT_ECORRUPT;
    }
    out->n_keys = craft_get_u32(b);
    out->keys = r.p;
    uint8_t prev[KV_SKEY_MAX], cur[KV_SKEY_MAX];
    size_t prev_len = 0;
    for (uint32_t i = 0; i < out->n_keys; i++) {
        struct kv_payload_key k;
        if (!take_key(&r, &k) || !craft_slot_set_has(&out->slots, craft_key_slot(k.key, k.klen)) ||
            (k.coll && !kv_payload_coll_valid(k.val, k.vlen))) {
            return CRAFT_ECORRUPT;
        }
        size_t cur_len = kv_skey(k.key, k.klen, cur);
        if (i > 0 && kv_skey_cmp(prev, prev_len, cur, cur_len) >= 0) {
            return CRAFT_ECORRUPT; /* out of order, or twice */
        }
        memcpy(prev, cur, cur_len);
        prev_len = cur_len;
    }
    out->keys_len = (size_t)(r.p - out->keys);
    if ((b = craft_take(&r, 4)) == NULL) {
        return CRAFT_ECORRUPT;
    }
    out->n_sessions = craft_get_u32(b);
    out->sessions = r.p;
    uint64_t prev_id = 0;
    for (uint32_t i = 0; i < out->n_sessions; i++) {
        struct kv_payload_session s;
        if (!take_session(&r, &s) || s.id <= prev_id || !kv_session_valid(s.rec, s.len)) {
            return CRAFT_ECORRUPT;
        }
        prev_id = s.id;
    }
    out->sessions_len = (size_t)(r.p - out->sessions);
    if (out->part && (out->n_keys == 0 || out->n_sessions != 0)) {
        return CRAFT_ECORRUPT;
    }
    return r.left == 0 ? CRAFT_OK : CRAFT_ECORRUPT;
}

bool kv_payload_next_key(const struct kv_payload *pl, size_t *off, struct kv_payload_key *k)
{
    if (*off >= pl->keys_len) {
        return false;
    }
    struct craft_reader r = {pl->keys + *off, pl->keys_len - *off};
    bool ok = take_key(&r, k);
    CRAFT_ASSERT(ok); /* checked by kv_payload_open */
    *off = (size_t)(r.p - pl->keys);
    return true;
}

bool kv_payload_next_session(const struct kv_payload *pl, size_t *off,
                             struct kv_payload_session *s)
{
    if (*off >= pl->sessions_len) {
        return false;
    }
    struct craft_reader r = {pl->sessions + *off, pl->sessions_len - *off};
    bool ok = take_session(&r, s);
    CRAFT_ASSERT(ok);
    *off = (size_t)(r.p - pl->sessions);
    return true;
}

/* ---- writing ---- */

/* Room for n more bytes, and the session count's 4 after them until it is written. */
static int room(struct kv_payload_writer *w, size_t n)
{
    size_t keep = w->sessions_count_at == 0 ? 4 : 0;
    if (n > w->max - w->len || w->max - w->len - n < keep) {
        return CRAFT_ETOOBIG; /* nothing added; the payload so far stays */
    }
    n += keep;
    if (w->len + n <= w->cap) {
        return CRAFT_OK;
    }
    size_t cap = w->cap * 2 > w->len + n ? w->cap * 2 : w->len + n;
    uint8_t *b = realloc(w->buf, cap);
    if (b == NULL) {
        free(w->buf);
        w->buf = NULL;
        return CRAFT_ENOMEM;
    }
    w->buf = b;
    w->cap = cap;
    return CRAFT_OK;
}

static void put(struct kv_payload_writer *w, const void *p, size_t n)
{
    if (n > 0) {
        memcpy(w->buf + w->len, p, n);
        w->len += n;
    }
}

int kv_payload_begin(struct kv_payload_writer *w, const struct craft_slot_set *slots, size_t max)
{
    memset(w, 0, sizeof *w);
    w->max = max;
    int rc = room(w, KV_PAYLOAD_HEADER + 4);
    if (rc != CRAFT_OK) {
        return rc;
    }
    uint8_t v = KV_PAYLOAD_VERSION, zero[4] = {0};
    put(w, &v, 1);
    put(w, slots->bits, CRAFT_SLOT_SET_BYTES);
    w->keys_count_at = w->len;
    put(w, zero, 4);
    return CRAFT_OK;
}

int kv_payload_add_key(struct kv_payload_writer *w, uint64_t expire_at, const uint8_t *key,
                       size_t klen, const uint8_t *val, size_t vlen)
{
    CRAFT_ASSERT(klen <= CRAFT_KV_KEY_BYTES_MAX && vlen <= CRAFT_KV_VALUE_BYTES_MAX);
    int rc = room(w, 16 + klen + vlen);
    if (rc != CRAFT_OK) {
        return rc;
    }
    uint8_t h[16];
    craft_put_u64(h, expire_at);
    craft_put_u32(h + 8, (uint32_t)klen);
    craft_put_u32(h + 12, (uint32_t)vlen);
    put(w, h, 16);
    put(w, key, klen);
    put(w, val, vlen);
    w->n_keys++;
    return CRAFT_OK;
}

int kv_payload_begin_coll(struct kv_payload_writer *w, uint64_t expire_at, const uint8_t *key,
                          size_t klen, const struct kv_coll *c)
{
    CRAFT_ASSERT(klen <= CRAFT_KV_KEY_BYTES_MAX && w->coll_at == 0 && w->len > 0);
    int rc = room(w, 16 + klen + KV_PAYLOAD_COLL_HEADER);
    if (rc != CRAFT_OK) {
        return rc;
    }
    w->coll_at = w->len;
    uint8_t h[16];
    craft_put_u64(h, expire_at | KV_COLL_BIT);
    craft_put_u32(h + 8, (uint32_t)klen);
    craft_put_u32(h + 12, 0); /* patched by end_coll */
    put(w, h, 16);
    put(w, key, klen);
    uint8_t ch[KV_PAYLOAD_COLL_HEADER];
    ch[0] = c->type;
    craft_put_u64(ch + 1, c->count);
    craft_put_u64(ch + 9, c->version);
    put(w, ch, sizeof ch);
    return CRAFT_OK;
}

int kv_payload_add_elem(struct kv_payload_writer *w, const uint8_t *f, size_t flen,
                        const uint8_t *v, size_t vlen)
{
    CRAFT_ASSERT(w->coll_at != 0 && flen <= CRAFT_KV_FIELD_BYTES_MAX &&
                 vlen <= CRAFT_KV_VALUE_BYTES_MAX);
    int rc = room(w, 8 + flen + vlen);
    if (rc != CRAFT_OK) {
        return rc;
    }
    uint8_t h[8];
    craft_put_u32(h, (uint32_t)flen);
    craft_put_u32(h + 4, (uint32_t)vlen);
    put(w, h, 8);
    put(w, f, flen);
    put(w, v, vlen);
    return CRAFT_OK;
}

void kv_payload_end_coll(struct kv_payload_writer *w)
{
    CRAFT_ASSERT(w->coll_at != 0);
    uint32_t klen = craft_get_u32(w->buf + w->coll_at + 8);
    size_t vlen = w->len - w->coll_at - 16 - klen;
    CRAFT_ASSERT(vlen <= CRAFT_KV_CMD_BYTES_MAX);
    craft_put_u32(w->buf + w->coll_at + 12, (uint32_t)vlen);
    w->coll_at = 0;
    w->n_keys++;
}

void kv_payload_drop_coll(struct kv_payload_writer *w)
{
    if (w->buf != NULL && w->coll_at != 0) {
        w->len = w->coll_at;
    }
    w->coll_at = 0;
}

int kv_payload_start_sessions(struct kv_payload_writer *w)
{
    /* Every room() before kept these 4 bytes. */
    CRAFT_ASSERT(w->sessions_count_at == 0 && w->max - w->len >= 4 && w->cap - w->len >= 4);
    uint8_t zero[4] = {0};
    w->sessions_count_at = w->len;
    put(w, zero, 4);
    return CRAFT_OK;
}

int kv_payload_add_session(struct kv_payload_writer *w, uint64_t id, const uint8_t *rec,
                           size_t len)
{
    int rc = room(w, 12 + len);
    if (rc != CRAFT_OK) {
        return rc;
    }
    uint8_t h[12];
    craft_put_u64(h, id);
    craft_put_u32(h + 8, (uint32_t)len);
    put(w, h, 12);
    put(w, rec, len);
    w->n_sessions++;
    return CRAFT_OK;
}

void kv_payload_end(struct kv_payload_writer *w)
{
    CRAFT_ASSERT(w->sessions_count_at > w->keys_count_at);
    craft_put_u32(w->buf + w->keys_count_at, w->n_keys);
    craft_put_u32(w->buf + w->sessions_count_at, w->n_sessions);
}

void kv_payload_end_part(struct kv_payload_writer *w)
{
    CRAFT_ASSERT(w->buf != NULL && w->n_keys > 0);
    if (w->sessions_count_at == 0) {
        w->sessions_count_at = w->len; /* its room was kept (room) */
        CRAFT_ASSERT(w->len + 4 <= w->cap);
    }
    w->len = w->sessions_count_at + 4;
    w->n_sessions = 0;
    w->buf[0] = KV_PAYLOAD_VERSION_PART;
    kv_payload_end(w);
}

/* ---- sessions ---- */

struct window {
    const uint8_t *v;
    size_t len, off;
};

static bool entry_at(const struct window *w, uint64_t *seq, size_t *elen)
{
    if (w->off >= w->len) {
        return false;
    }
    *seq = craft_get_u64(w->v + w->off);
    *elen = KV_SESSION_ENTRY_HEADER + craft_get_u32(w->v + w->off + 8);
    return true;
}

size_t kv_session_merge(const uint8_t *ours, size_t olen, const uint8_t *theirs, size_t tlen,
                        uint8_t *out)
{
    CRAFT_ASSERT(kv_session_valid(ours, olen) && kv_session_valid(theirs, tlen));
    uint64_t last = craft_get_u64(ours) > craft_get_u64(theirs) ? craft_get_u64(ours)
                                                                : craft_get_u64(theirs);
    if (last == KV_SESSION_ENDED) {
        /* Closed on either side: closed (no window). */
        craft_put_u64(out, KV_SESSION_ENDED);
        return KV_SESSION_HEADER;
    }
    /* Union by seq into out, after the header. */
    struct window a = {ours, olen, KV_SESSION_HEADER}, b = {theirs, tlen, KV_SESSION_HEADER};
    size_t len = KV_SESSION_HEADER, n = 0;
    for (;;) {
        uint64_t sa = 0, sb = 0;
        size_t la = 0, lb = 0;
        bool ha = entry_at(&a, &sa, &la), hb = entry_at(&b, &sb, &lb);
        if (!ha && !hb) {
            break;
        }
        if (ha && (!hb || sa <= sb)) {
            memcpy(out + len, a.v + a.off, la);
            len += la;
            a.off += la;
            if (hb && sb == sa) {
                b.off += lb; /* the same seq: ours */
            }
        } else {
            memcpy(out + len, b.v + b.off, lb);
            len += lb;
            b.off += lb;
        }
        n++;
    }
    /* Trim the oldest while over a cap, never the newest (as session_append does). */
    uint64_t bytes = 0;
    for (size_t off = KV_SESSION_HEADER; off < len;) {
        uint32_t rlen = craft_get_u32(out + off + 8);
        bytes += rlen;
        off += KV_SESSION_ENTRY_HEADER + rlen;
    }
    size_t from = KV_SESSION_HEADER;
    while (n > 1 && (n > CRAFT_KV_SESSION_RESULTS_MAX || bytes > CRAFT_KV_SESSION_RESULT_BYTES_MAX)) {
        uint32_t rlen = craft_get_u32(out + from + 8);
        bytes -= rlen;
        from += KV_SESSION_ENTRY_HEADER + rlen;
        n--;
    }
    memmove(out + KV_SESSION_HEADER, out + from, len - from);
    len -= from - KV_SESSION_HEADER;
    craft_put_u64(out, last);
    craft_put_u64(out + 8, craft_get_u64(ours + 8));
    CRAFT_ASSERT(kv_session_valid(out, len));
    return len;
}

/* ---- the view in META ---- */

int kv_view_load(struct craft_kv_store *s, struct craft_kv_txn *t, uint64_t gid,
                 uint64_t applied, struct craft_shard_view *v, bool *stored)
{
    const uint8_t *p;
    size_t len;
    int rc = s->ops->get(t, CRAFT_KV_TABLE_META, (const uint8_t *)KV_META_SHARD,
                         strlen(KV_META_SHARD), &p, &len);
    if (rc == CRAFT_ENOTFOUND) {
        if (gid == 0) {
            return CRAFT_OK;
        }
        if (applied != 0) {
            return CRAFT_EINVAL; /* a plain state machine's store: its keys are no group's */
        }
        craft_shard_view_init(v, gid);
        *stored = false;
        return CRAFT_OK;
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (gid == 0) {
        return CRAFT_EINVAL; /* a shard group's store opened as a plain one */
    }
    if (craft_shard_view_decode(p, len, v) != CRAFT_OK) {
        return CRAFT_ECORRUPT;
    }
    *stored = true;
    return v->gid == gid ? CRAFT_OK : CRAFT_EINVAL;
}

int kv_view_store(struct craft_kv_store *s, struct craft_kv_txn *t,
                  const struct craft_shard_view *v)
{
    size_t len = craft_shard_view_size(v);
    uint8_t *buf = malloc(len);
    if (buf == NULL) {
        return CRAFT_ENOMEM;
    }
    craft_shard_view_encode(v, buf, len);
    int rc = s->ops->put(t, CRAFT_KV_TABLE_META, (const uint8_t *)KV_META_SHARD,
                         strlen(KV_META_SHARD), buf, len);
    free(buf);
    if (rc == CRAFT_OK) {
        rc = s->ops->put(t, CRAFT_KV_TABLE_META, (const uint8_t *)KV_META_SHARD_SLOTS,
                         strlen(KV_META_SHARD_SLOTS), v->state, CRAFT_SLOTS);
    }
    return rc;
}
