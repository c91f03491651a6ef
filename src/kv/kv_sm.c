/* craftkv apply: Redis's string commands over the store, sessions for exactly-once, and
 * expiry against logical time. Deterministic: only the commands and the configuration
 * decide what happens (docs/design/kv.md). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/assert.h"
#include "kv/kv_internal.h"
#include "kv/kv_shard.h"
#include "shard/slots.h"
#include "shard/view.h"

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

/* Encodings (a saved result, an element of an array):
 *   OK NIL            u8 type
 *   INT               u8 type | i64
 *   BULK ERR STATUS   u8 type | u32 len | len bytes (len <= CRAFT_KV_VALUE_BYTES_MAX)
 *   ARRAY             u8 type | u32 n | u32 len | n element encodings in len bytes
 * An array holds arrays two levels deep at most (a MULTI's HSCAN: [cursor, [elements]]). */
size_t kv_result_enc_len(const struct craft_kv_result *r)
{
    switch (r->type) {
    case CRAFT_KV_RES_INT:
        return 9;
    case CRAFT_KV_RES_BULK:
    case CRAFT_KV_RES_ERR:
    case CRAFT_KV_RES_STATUS:
        return 5 + r->len;
    case CRAFT_KV_RES_ARRAY:
        return 9 + r->len;
    default:
        return 1;
    }
}

/* type | u32 len | len bytes: a BULK, ERR or STATUS encoding; returns its length. */
static size_t enc_bytes(uint8_t *out, uint8_t type, const uint8_t *p, size_t len)
{
    CRAFT_ASSERT(len <= CRAFT_KV_VALUE_BYTES_MAX);
    out[0] = type;
    craft_put_u32(out + 1, (uint32_t)len);
    if (len > 0) {
        memcpy(out + 5, p, len);
    }
    return 5 + len;
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
    case CRAFT_KV_RES_STATUS:
        return enc_bytes(out, r->type, r->data, r->len);
    case CRAFT_KV_RES_ARRAY:
        CRAFT_ASSERT(r->len <= UINT32_MAX && r->integer >= 0 && r->integer <= UINT32_MAX);
        craft_put_u32(out + 1, (uint32_t)r->integer);
        craft_put_u32(out + 5, (uint32_t)r->len);
        if (r->len > 0) {
            memcpy(out + 9, r->data, r->len);
        }
        return 9 + r->len;
    default:
        CRAFT_UNREACHABLE();
    }
}

/* The length of the valid encoding at the start of p[0..len), or 0 (depth: arrays still
 * allowed inside). */
static size_t enc_valid_prefix(const uint8_t *p, size_t len, int depth)
{
    if (len < 1) {
        return 0;
    }
    switch (p[0]) {
    case CRAFT_KV_RES_OK:
    case CRAFT_KV_RES_NIL:
        return 1;
    case CRAFT_KV_RES_INT:
        return len >= 9 ? 9 : 0;
    case CRAFT_KV_RES_BULK:
    case CRAFT_KV_RES_ERR:
    case CRAFT_KV_RES_STATUS: {
        if (len < 5) {
            return 0;
        }
        uint32_t n = craft_get_u32(p + 1);
        return n <= CRAFT_KV_VALUE_BYTES_MAX && len - 5 >= n ? 5 + (size_t)n : 0;
    }
    case CRAFT_KV_RES_ARRAY: {
        if (depth == 0 || len < 9) {
            return 0;
        }
        uint32_t n = craft_get_u32(p + 1), bytes = craft_get_u32(p + 5);
        if (len - 9 < bytes) {
            return 0;
        }
        size_t off = 9;
        for (uint32_t i = 0; i < n; i++) {
            size_t el = enc_valid_prefix(p + off, 9 + (size_t)bytes - off, depth - 1);
            if (el == 0) {
                return 0;
            }
            off += el;
        }
        return off == 9 + (size_t)bytes ? off : 0;
    }
    default:
        return 0;
    }
}

bool kv_result_valid(const uint8_t *p, size_t len)
{
    return len > 0 && enc_valid_prefix(p, len, 3) == len;
}

struct craft_kv_result *kv_result_decode(const uint8_t *p, size_t len)
{
    CRAFT_ASSERT(kv_result_valid(p, len));
    switch (p[0]) {
    case CRAFT_KV_RES_INT:
        return res_int((int64_t)craft_get_u64(p + 1));
    case CRAFT_KV_RES_BULK:
    case CRAFT_KV_RES_ERR:
    case CRAFT_KV_RES_STATUS:
        return kv_result_new(p[0], 0, p + 5, len - 5);
    case CRAFT_KV_RES_ARRAY:
        return kv_result_new(p[0], craft_get_u32(p + 1), p + 9, len - 9);
    default:
        return res_simple(p[0]);
    }
}

bool craft_kv_result_next(const uint8_t *data, size_t len, size_t *off,
                          struct craft_kv_result_view *el)
{
    if (*off >= len) {
        return false;
    }
    const uint8_t *p = data + *off;
    size_t n = enc_valid_prefix(p, len - *off, 2);
    CRAFT_ASSERT(n > 0);
    *el = (struct craft_kv_result_view){.type = p[0]};
    switch (p[0]) {
    case CRAFT_KV_RES_INT:
        el->integer = (int64_t)craft_get_u64(p + 1);
        break;
    case CRAFT_KV_RES_BULK:
    case CRAFT_KV_RES_ERR:
    case CRAFT_KV_RES_STATUS:
        el->len = n - 5;
        el->data = p + 5;
        break;
    case CRAFT_KV_RES_ARRAY:
        el->integer = craft_get_u32(p + 1);
        el->len = n - 9;
        el->data = p + 9;
        break;
    default:
        break;
    }
    *off += n;
    return true;
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
    int rc = meta_get(s, t, KV_META_FORMAT, &m->format);
    if (rc == CRAFT_OK && m->format != 0 && m->format != KV_FORMAT && m->format != KV_FORMAT_V2 &&
        m->format != KV_FORMAT_V1) {
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
    if (rc == CRAFT_OK) {
        rc = meta_get(s, t, KV_META_COLL, &m->coll_next);
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
    if (rc == CRAFT_OK && m->coll_next != 0) {
        rc = meta_put(s, t, KV_META_COLL, m->coll_next); /* absent until a collection */
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

/* The sessions a batch touched, held in memory and written to the store once, at the end
 * of the batch (sess_flush), instead of at every command: with pipelined clients a batch
 * holds many commands of each session, and reading, checking and rewriting the record
 * per command was a fifth of the leader's throughput at SET -P 16 (the record holds the
 * results of the whole pipelined window). Same bytes in the store at commit as before. */
#define SESS_SLOTS_MAX 64
struct sess_slot {
    uint64_t id;
    uint8_t *rec; /* the record as it will be stored, its stamp included */
    size_t len, cap;
    uint64_t store_ms; /* in_store: the record's time in the store's idle index */
    bool in_store;     /* the store holds a record of this session */
    bool dirty;        /* rec is newer than the store's */
};

struct ap {
    struct craft_kv_sm *sm;
    struct kv_space ks; /* the transaction's keys (kv_keys.c); its buf is the scratch for a
                         * stored value or session record */
    struct kv_meta m;   /* running values, stored at commit */
    struct sess_slot slots[SESS_SLOTS_MAX]; /* [0, n_slots) in use; buffers kept */
    size_t n_slots;
    uint64_t expires_min, idle_min; /* sm's, as this transaction sees them (at commit: sm's) */
    /* A shard group's view as this batch changed it (NULL: unchanged, sm->view holds),
     * swapped in at commit. */
    struct craft_shard_view *view_next;
};

static struct sess_slot *slot_find(struct ap *a, uint64_t id)
{
    for (size_t i = 0; i < a->n_slots; i++) {
        if (a->slots[i].id == id) {
            return &a->slots[i];
        }
    }
    return NULL;
}

static int reserve(uint8_t **buf, size_t *cap, size_t need)
{
    return kv_reserve(buf, cap, need);
}

static int scratch(struct ap *a, size_t need)
{
    return kv_reserve(&a->ks.buf, &a->ks.cap, need);
}

static int not_found_is_corrupt(int rc)
{
    return rc == CRAFT_ENOTFOUND ? CRAFT_ECORRUPT : rc;
}

/* ---- keys (kv_keys.c) ---- */

static int key_find(struct ap *a, struct craft_kv_bytes key, struct kv_keyed *k)
{
    return kv_key_find(&a->ks, key, k);
}

static int key_remove(struct ap *a, const uint8_t *sk, size_t sklen, const struct kv_live *v)
{
    return kv_key_remove(&a->ks, sk, sklen, v);
}

static int key_store(struct ap *a, const uint8_t *sk, size_t sklen, const struct kv_live *old,
                     const uint8_t *p1, size_t l1, const uint8_t *p2, size_t l2, uint64_t at)
{
    return kv_key_store(&a->ks, sk, sklen, old, p1, l1, p2, l2, at);
}

/* A string command's key holding a collection: Redis's WRONGTYPE. */
static bool wrong_type(const struct kv_live *v)
{
    return v->found && v->type != KV_TYPE_STRING;
}

/* The live value as a reply: bulk, or nil when the key is absent. */
static struct craft_kv_result *res_value(const struct kv_live *v)
{
    return v->found ? kv_result_new(CRAFT_KV_RES_BULK, 0, v->val, v->vlen)
                    : res_simple(CRAFT_KV_RES_NIL);
}

/* ---- sweeping ---- */

struct sweep {
    uint64_t now, idle;
    bool sessions;
    size_t want, n;
    uint64_t first_not_due; /* the time of the entry the scan stopped at; UINT64_MAX: none */
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
        w->first_not_due = at;
        return CRAFT_KV_ITER_STOP; /* in time order: nothing further is due */
    }
    memcpy(w->keys[w->n], k, klen);
    w->lens[w->n++] = klen;
    return w->n == w->want ? CRAFT_KV_ITER_STOP : CRAFT_OK;
}

/* Whether the index may hold a due entry, from its bound (struct craft_kv_sm). */
static bool maybe_due(const struct ap *a, bool sessions)
{
    uint64_t min = sessions ? a->idle_min : a->expires_min;
    if (min == UINT64_MAX) {
        return false;
    }
    return sessions ? min <= a->m.now && a->m.now - min >= a->sm->session_idle_ms
                    : min <= a->m.now;
}

/* Removes up to max due keys (sessions: false) or idle sessions (true), oldest first. */
static int sweep(struct ap *a, bool sessions, size_t max)
{
    if (!maybe_due(a, sessions)) {
        return CRAFT_OK; /* what a scan would find: nothing due */
    }
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
    uint64_t *min = sessions ? &a->idle_min : &a->expires_min;
    while (rc == CRAFT_OK && done < max) {
        w->n = 0;
        w->want = max - done < SWEEP_CHUNK ? max - done : SWEEP_CHUNK;
        w->first_not_due = UINT64_MAX;
        rc = a->ks.o->iter(a->ks.t, table, NULL, 0, sweep_collect, w);
        if (rc == CRAFT_OK) {
            /* Exact when the scan found nothing due: the earliest entry, or none at all.
             * Otherwise unknown until a scan finds nothing due (the next command's). */
            *min = w->n == 0 ? w->first_not_due : 0;
        }
        for (size_t i = 0; rc == CRAFT_OK && i < w->n; i++) {
            const uint8_t *k = w->keys[i];
            if (sessions && slot_find(a, kv_get_be64(k + 8)) != NULL) {
                continue; /* held by this batch: used since, so not idle */
            }
            if (sessions) {
                rc = not_found_is_corrupt(a->ks.o->del(a->ks.t, CRAFT_KV_TABLE_SESSIONS, k + 8, 8));
                if (rc == CRAFT_OK) {
                    rc = a->ks.o->del(a->ks.t, CRAFT_KV_TABLE_IDLE, k, 16);
                }
            } else {
                rc = kv_key_drop(&a->ks, k + 8, w->lens[i] - 8);
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

bool kv_session_valid(const uint8_t *v, size_t vlen)
{
    if (vlen < KV_SESSION_HEADER || vlen > KV_SESSION_BYTES_MAX) {
        return false;
    }
    uint64_t prev = 0, bytes = 0;
    size_t off = KV_SESSION_HEADER, n = 0;
    while (off < vlen) {
        if (vlen - off < KV_SESSION_ENTRY_HEADER || n == CRAFT_KV_SESSION_RESULTS_MAX) {
            return false;
        }
        uint64_t seq = craft_get_u64(v + off);
        uint32_t rlen = craft_get_u32(v + off + 8);
        off += KV_SESSION_ENTRY_HEADER;
        if (seq <= prev || rlen > vlen - off || !kv_result_valid(v + off, rlen)) {
            return false;
        }
        off += rlen;
        prev = seq;
        bytes += rlen;
        n++;
    }
    /* prev == last: the newest entry is the last run (none at all iff last == 0); or a
     * closed session: no window at all. */
    if (craft_get_u64(v) == KV_SESSION_ENDED) {
        return n == 0;
    }
    return prev == craft_get_u64(v) && (n <= 1 || bytes <= CRAFT_KV_SESSION_RESULT_BYTES_MAX);
}

bool kv_session_result(const uint8_t *v, size_t vlen, uint64_t seq, const uint8_t **res,
                       size_t *rlen)
{
    for (size_t off = KV_SESSION_HEADER; off < vlen;) {
        uint64_t s = craft_get_u64(v + off);
        uint32_t n = craft_get_u32(v + off + 8);
        if (s == seq) {
            *res = v + off + KV_SESSION_ENTRY_HEADER;
            *rlen = n;
            return true;
        }
        if (s > seq) {
            break; /* in seq order */
        }
        off += KV_SESSION_ENTRY_HEADER + n;
    }
    return false;
}

struct sess {
    bool found;
    uint64_t last, last_ms;
    const uint8_t *rec; /* the whole record (borrowed until the next write) */
    size_t rec_len;
};

static void idle_key(uint64_t last_ms, uint64_t id, uint8_t out[16])
{
    kv_put_be64(out, last_ms);
    kv_put_be64(out + 8, id);
}

static int slot_set(struct sess_slot *sl, const uint8_t *p, size_t len)
{
    int rc = reserve(&sl->rec, &sl->cap, len);
    if (rc != CRAFT_OK) {
        return rc;
    }
    memmove(sl->rec, p, len);
    sl->len = len;
    return CRAFT_OK;
}

/* Writes every session changed in this batch to the store, moving its idle index entry,
 * as session_store did per command before the batch held them. */
static int sess_flush(struct ap *a)
{
    for (size_t i = 0; i < a->n_slots; i++) {
        struct sess_slot *sl = &a->slots[i];
        if (!sl->dirty) {
            continue;
        }
        CRAFT_ASSERT(kv_session_valid(sl->rec, sl->len));
        uint64_t ms = craft_get_u64(sl->rec + 8);
        uint8_t k[16];
        kv_put_be64(k, sl->id);
        int rc = a->ks.o->put(a->ks.t, CRAFT_KV_TABLE_SESSIONS, k, 8, sl->rec, sl->len);
        if (rc == CRAFT_OK && sl->in_store && sl->store_ms != ms) {
            idle_key(sl->store_ms, sl->id, k);
            rc = not_found_is_corrupt(a->ks.o->del(a->ks.t, CRAFT_KV_TABLE_IDLE, k, 16));
        }
        if (rc == CRAFT_OK && (!sl->in_store || sl->store_ms != ms)) {
            idle_key(ms, sl->id, k);
            rc = a->ks.o->put(a->ks.t, CRAFT_KV_TABLE_IDLE, k, 16, NULL, 0);
            a->idle_min = ms < a->idle_min ? ms : a->idle_min;
        }
        if (rc != CRAFT_OK) {
            return rc;
        }
        sl->in_store = true;
        sl->store_ms = ms;
        sl->dirty = false;
    }
    return CRAFT_OK;
}

/* Makes room for one more held session: when the slots are full, the held ones are
 * written and let go. Call it before reading a record from the store: the writes move the
 * store's pages, and a pointer read before them would be stale. */
static int slots_room(struct ap *a)
{
    if (a->n_slots < a->sm->batch_sessions_max) {
        return CRAFT_OK;
    }
    int rc = sess_flush(a);
    if (rc == CRAFT_OK) {
        a->n_slots = 0; /* their buffers stay for reuse */
    }
    return rc;
}

/* Holds a copy of session id's record (p, len), in the room slots_room made. */
static int slot_add(struct ap *a, uint64_t id, const uint8_t *p, size_t len, bool in_store,
                    uint64_t store_ms, struct sess_slot **out)
{
    CRAFT_ASSERT(a->n_slots < SESS_SLOTS_MAX);
    struct sess_slot *sl = &a->slots[a->n_slots];
    int rc = slot_set(sl, p, len);
    if (rc != CRAFT_OK) {
        return rc;
    }
    sl->id = id;
    sl->in_store = in_store;
    sl->store_ms = store_ms;
    sl->dirty = false;
    a->n_slots++;
    *out = sl;
    return CRAFT_OK;
}

static void slot_drop(struct ap *a, struct sess_slot *sl)
{
    /* Swapped with the last one in use, buffers included, so none is lost. */
    struct sess_slot last = a->slots[a->n_slots - 1];
    a->slots[a->n_slots - 1] = *sl;
    *sl = last;
    a->n_slots--;
}

static void slots_free(struct ap *a)
{
    for (size_t i = 0; i < SESS_SLOTS_MAX; i++) {
        free(a->slots[i].rec);
    }
}

static int session_remove(struct ap *a, uint64_t id, uint64_t last_ms)
{
    struct sess_slot *sl = slot_find(a, id);
    if (sl != NULL) {
        bool in_store = sl->in_store;
        last_ms = sl->store_ms; /* the store's idle entry, not the held stamp */
        slot_drop(a, sl);
        if (!in_store) {
            return CRAFT_OK;
        }
    }
    uint8_t k[16];
    kv_put_be64(k, id);
    int rc = not_found_is_corrupt(a->ks.o->del(a->ks.t, CRAFT_KV_TABLE_SESSIONS, k, 8));
    if (rc == CRAFT_OK) {
        idle_key(last_ms, id, k);
        rc = not_found_is_corrupt(a->ks.o->del(a->ks.t, CRAFT_KV_TABLE_IDLE, k, 16));
    }
    return rc;
}

/* A live session; one past its idle time is removed on the way. */
static int session_lookup(struct ap *a, uint64_t id, struct sess *out)
{
    memset(out, 0, sizeof *out);
    struct sess_slot *sl = slot_find(a, id);
    if (sl != NULL) {
        uint64_t last_ms = craft_get_u64(sl->rec + 8);
        CRAFT_ASSERT(last_ms <= a->m.now); /* stamped with this batch's time */
        if (a->m.now - last_ms >= a->sm->session_idle_ms) {
            return session_remove(a, id, last_ms);
        }
        *out = (struct sess){.found = true, .last = craft_get_u64(sl->rec), .last_ms = last_ms,
                             .rec = sl->rec, .rec_len = sl->len};
        return CRAFT_OK;
    }
    int rc = slots_room(a);
    if (rc != CRAFT_OK) {
        return rc;
    }
    uint8_t k[8];
    kv_put_be64(k, id);
    const uint8_t *v;
    size_t vlen;
    rc = a->ks.o->get(a->ks.t, CRAFT_KV_TABLE_SESSIONS, k, 8, &v, &vlen);
    if (rc == CRAFT_ENOTFOUND) {
        return CRAFT_OK;
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (!kv_session_valid(v, vlen)) {
        return CRAFT_ECORRUPT;
    }
    uint64_t last_ms = craft_get_u64(v + 8);
    if (last_ms > a->m.now) {
        return CRAFT_ECORRUPT;
    }
    if (a->m.now - last_ms >= a->sm->session_idle_ms) {
        return session_remove(a, id, last_ms);
    }
    rc = slot_add(a, id, v, vlen, true, last_ms, &sl);
    if (rc != CRAFT_OK) {
        return rc;
    }
    *out = (struct sess){.found = true, .last = craft_get_u64(sl->rec), .last_ms = last_ms,
                         .rec = sl->rec, .rec_len = sl->len};
    return CRAFT_OK;
}

/* Makes a->ks.buf[0..len) session id's record, stamped with the logical time: held in the
 * batch's slots until sess_flush writes it; old is its lookup. */
static int session_store(struct ap *a, uint64_t id, const struct sess *old, size_t len)
{
    craft_put_u64(a->ks.buf + 8, a->m.now);
    struct sess_slot *sl = slot_find(a, id);
    int rc = sl != NULL ? slot_set(sl, a->ks.buf, len) : slots_room(a);
    if (rc == CRAFT_OK && sl == NULL) {
        rc = slot_add(a, id, a->ks.buf, len, old->found, old->last_ms, &sl);
    }
    if (rc == CRAFT_OK) {
        sl->dirty = true;
    }
    return rc;
}

/* A new session: nothing run yet, an empty window. */
static int session_create(struct ap *a, uint64_t id, const struct sess *old)
{
    int rc = scratch(a, KV_SESSION_HEADER);
    if (rc != CRAFT_OK) {
        return rc;
    }
    craft_put_u64(a->ks.buf, 0);
    return session_store(a, id, old, KV_SESSION_HEADER);
}

/* Keeps a live session's record as it is, stamped with the logical time. */
static int session_touch(struct ap *a, uint64_t id, const struct sess *s)
{
    if (s->last_ms == a->m.now) {
        return CRAFT_OK; /* the record would not change */
    }
    int rc = scratch(a, s->rec_len);
    if (rc != CRAFT_OK) {
        return rc;
    }
    memcpy(a->ks.buf, s->rec, s->rec_len); /* s->rec is in the store, not in a->ks.buf */
    return session_store(a, id, s, s->rec_len);
}

/* After c (seq > last) ran with result r: the window drops the seqs below c's ack (ack 0:
 * every one before c, the behaviour before ack existed), takes c's result, then drops its
 * oldest while over a cap, never the newest (thesis 6.3: the client's ack says which
 * replies it has, so which results may go). old is the session's lookup. */
static int session_append(struct ap *a, const struct craft_kv_cmd *c, const struct sess *old,
                          const struct craft_kv_result *r)
{
    /* The record old describes is held in the batch's slots (exec never touches them). */
    struct sess_slot *sl = slot_find(a, c->session);
    CRAFT_ASSERT(sl != NULL && sl->rec == old->rec && sl->len == old->rec_len);
    const uint8_t *v = sl->rec;
    size_t vlen = sl->len;
    CRAFT_ASSERT(vlen >= KV_SESSION_HEADER);
    int rc;
    uint64_t ack = c->ack != 0 ? c->ack : c->seq;
    /* The entries kept before the trim, a suffix of the old window (seqs increase). */
    size_t offs[CRAFT_KV_SESSION_RESULTS_MAX];
    uint32_t lens[CRAFT_KV_SESSION_RESULTS_MAX];
    size_t n = 0;
    for (size_t off = KV_SESSION_HEADER; off < vlen;) {
        uint32_t rlen = craft_get_u32(v + off + 8);
        if (craft_get_u64(v + off) >= ack) {
            CRAFT_ASSERT(n < CRAFT_KV_SESSION_RESULTS_MAX);
            offs[n] = off;
            lens[n++] = rlen;
        }
        off += KV_SESSION_ENTRY_HEADER + rlen;
    }
    size_t enc_len = kv_result_enc_len(r);
    CRAFT_ASSERT(enc_len <= KV_RESULT_ENC_MAX);
    uint64_t bytes = enc_len;
    for (size_t i = 0; i < n; i++) {
        bytes += lens[i];
    }
    size_t first = 0; /* the oldest entry kept */
    while (first < n && (n + 1 - first > CRAFT_KV_SESSION_RESULTS_MAX ||
                         bytes > CRAFT_KV_SESSION_RESULT_BYTES_MAX)) {
        bytes -= lens[first++];
    }
    size_t from = first < n ? offs[first] : vlen;
    size_t len = KV_SESSION_HEADER + (vlen - from) + KV_SESSION_ENTRY_HEADER + enc_len;
    rc = scratch(a, len);
    if (rc != CRAFT_OK) {
        return rc;
    }
    craft_put_u64(a->ks.buf, c->seq);
    memcpy(a->ks.buf + KV_SESSION_HEADER, v + from, vlen - from);
    uint8_t *e = a->ks.buf + KV_SESSION_HEADER + (vlen - from);
    craft_put_u64(e, c->seq);
    craft_put_u32(e + 8, (uint32_t)enc_len);
    size_t written = kv_result_encode(r, e + KV_SESSION_ENTRY_HEADER);
    CRAFT_ASSERT(written == enc_len);
    return session_store(a, c->session, old, len);
}

/* ---- the commands ---- */

/* Redis's strict integer syntax: optional '-', no '+', no spaces, no leading zeros. */

/* Each exec_* sets *res (owned) or returns a store error with *res NULL. */

static int exec_set(struct ap *a, const struct craft_kv_cmd *c, struct craft_kv_result **res)
{
    struct kv_keyed k;
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
    bool want_old = c->op == CRAFT_KV_OP_GETSET || (c->flags & CRAFT_KV_SET_GET);
    if (want_old && wrong_type(&k.old)) {
        return reply(res, res_err(CRAFT_KV_ERR_WRONGTYPE));
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
            rc = k.old.found ? key_remove(a, k.sk, k.sklen, &k.old) : CRAFT_OK;
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
    struct kv_keyed k;
    int rc = key_find(a, c->key, &k);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (wrong_type(&k.old)) {
        return reply(res, res_err(CRAFT_KV_ERR_WRONGTYPE));
    }
    struct craft_kv_result *r = res_value(&k.old);
    if (r == NULL) {
        return CRAFT_ENOMEM;
    }
    if (k.old.found) {
        rc = key_remove(a, k.sk, k.sklen, &k.old);
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
        struct kv_keyed k;
        int rc = key_find(a, key, &k);
        if (rc == CRAFT_OK && k.old.found) {
            rc = key_remove(a, k.sk, k.sklen, &k.old);
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
    struct kv_keyed k;
    int rc = key_find(a, c->key, &k);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (wrong_type(&k.old)) {
        return reply(res, res_err(CRAFT_KV_ERR_WRONGTYPE));
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
    struct kv_keyed k;
    int rc = key_find(a, c->key, &k);
    if (rc != CRAFT_OK) {
        return rc;
    }
    int64_t v = 0;
    const char *err = NULL;
    if (wrong_type(&k.old)) {
        err = CRAFT_KV_ERR_WRONGTYPE;
    } else if (k.old.found && !craft_kv_parse_i64(k.old.val, k.old.vlen, &v)) {
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
            struct kv_keyed k;
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
        struct kv_keyed k;
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
    struct kv_keyed k;
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
            rc = key_remove(a, k.sk, k.sklen, &k.old); /* instant 0 is in the past */
        } else if (k.old.type != KV_TYPE_STRING) {
            rc = kv_coll_store(&a->ks, k.sk, k.sklen, &k.old, &k.old.coll, at);
        } else {
            rc = key_store(a, k.sk, k.sklen, &k.old, k.old.val, k.old.vlen, NULL, 0, at);
        }
        if (rc != CRAFT_OK) {
            return rc;
        }
    }
    return reply(res, res_int(apply ? 1 : 0));
}

/* ---- shard groups (kv_sm.h) ---- */

/* The view this batch sees: its own changes, or the last commit's (NULL: not sharded). */
static const struct craft_shard_view *view_of(const struct ap *a)
{
    return a->view_next != NULL ? a->view_next : a->sm->view;
}

/* The view to change: a copy of the committed one, made once per batch. */
static int view_edit(struct ap *a, struct craft_shard_view **out)
{
    if (a->view_next == NULL) {
        a->view_next = malloc(sizeof *a->view_next);
        if (a->view_next == NULL) {
            return CRAFT_ENOMEM;
        }
        *a->view_next = *a->sm->view;
    }
    *out = a->view_next;
    return CRAFT_OK;
}

#define DELETE_CHUNK 64u

struct slot_keys {
    const struct craft_slot_set *slots;
    size_t n;
    uint8_t keys[DELETE_CHUNK][KV_SKEY_MAX];
    size_t lens[DELETE_CHUNK];
    uint64_t at[DELETE_CHUNK];
};

static int collect_slot_key(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v,
                            size_t vlen)
{
    struct slot_keys *w = ctx;
    if (klen < 8 || klen > KV_SKEY_MAX || vlen < KV_VAL_HEADER) {
        return CRAFT_ECORRUPT;
    }
    if (!craft_slot_set_has(w->slots, craft_key_slot(k + 8, klen - 8))) {
        return CRAFT_OK;
    }
    memcpy(w->keys[w->n], k, klen);
    w->lens[w->n] = klen;
    w->at[w->n++] = craft_get_u64(v);
    return w->n == DELETE_CHUNK ? CRAFT_KV_ITER_STOP : CRAFT_OK;
}

/* Removes every key of slots, expired ones included: collected a chunk at a time (an
 * iteration must not write), each chunk resuming at the last key removed. O(keys stored):
 * there is no index by slot yet. */
static int delete_slots(struct ap *a, const struct craft_slot_set *slots)
{
    struct slot_keys *w = malloc(sizeof *w);
    if (w == NULL) {
        return CRAFT_ENOMEM;
    }
    w->slots = slots;
    uint8_t from[KV_SKEY_MAX];
    size_t from_len = 0;
    int rc;
    do {
        w->n = 0;
        rc = a->ks.o->iter(a->ks.t, CRAFT_KV_TABLE_DATA, from_len ? from : NULL, from_len,
                           collect_slot_key, w);
        for (size_t i = 0; rc == CRAFT_OK && i < w->n; i++) {
            rc = kv_key_drop(&a->ks, w->keys[i], w->lens[i]);
        }
        if (w->n > 0) {
            memcpy(from, w->keys[w->n - 1], w->lens[w->n - 1]);
            from_len = w->lens[w->n - 1];
        }
    } while (rc == CRAFT_OK && w->n == DELETE_CHUNK);
    free(w);
    return rc;
}

static int exec_flushall(struct ap *a, struct craft_kv_result **res)
{
    const struct craft_shard_view *v = view_of(a);
    if (v != NULL) {
        /* A shard group empties what it serves: the keys of slots frozen for their next
         * owner, or on their way here, are not its to drop. */
        struct craft_slot_set served = {{0}};
        for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
            if (craft_shard_view_serves(v, (uint16_t)s)) {
                craft_slot_set_add(&served, (uint16_t)s);
            }
        }
        int rc = delete_slots(a, &served);
        return rc != CRAFT_OK ? rc : reply(res, res_simple(CRAFT_KV_RES_OK));
    }
    int rc = a->ks.o->drop(a->ks.t, CRAFT_KV_TABLE_DATA);
    if (rc == CRAFT_OK) {
        rc = a->ks.o->drop(a->ks.t, CRAFT_KV_TABLE_EXPIRES);
    }
    if (rc == CRAFT_OK) {
        rc = a->ks.o->drop(a->ks.t, CRAFT_KV_TABLE_ELEMS);
    }
    if (rc == CRAFT_OK) {
        rc = a->ks.o->drop(a->ks.t, CRAFT_KV_TABLE_ZINDEX);
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
        int rc = a->ks.o->del(a->ks.t, CRAFT_KV_TABLE_META, k, sizeof k);
        if (rc != CRAFT_OK && rc != CRAFT_ENOTFOUND) {
            return rc;
        }
        return reply(res, res_int(rc == CRAFT_OK ? 1 : 0));
    }
    const uint8_t *old;
    size_t old_len;
    int rc = a->ks.o->get(a->ks.t, CRAFT_KV_TABLE_META, k, sizeof k, &old, &old_len);
    if (rc == CRAFT_ENOTFOUND) {
        /* A new member: the table is bounded (kv_sm.h). */
        size_t n = 0;
        rc = a->ks.o->iter(a->ks.t, CRAFT_KV_TABLE_META, (const uint8_t *)KV_MEMBER_PREFIX,
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
    rc = a->ks.o->put(a->ks.t, CRAFT_KV_TABLE_META, k, sizeof k, v, vlen);
    if (rc != CRAFT_OK) {
        return rc;
    }
    return reply(res, res_simple(CRAFT_KV_RES_OK));
}

/* ---- a MULTI: its reads, then its commands in order ---- */

/* A read inside a MULTI: the state the commands before it left. An expired key found on
 * the way is removed, as any command's lookup does. An MGET whose array would pass budget
 * bytes of encoding answers CRAFT_KV_ERR_REPLY_LARGE instead (checked as it grows: the
 * array is never built past it). */
static int exec_read(struct ap *a, const struct craft_kv_cmd *c, size_t budget,
                     struct craft_kv_result **res)
{
    struct kv_keyed k;
    int rc;
    switch (c->op) {
    case CRAFT_KV_OP_MGET:
    case CRAFT_KV_OP_EXISTS: {
        bool mget = c->op == CRAFT_KV_OP_MGET;
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0;
        int64_t n = 0;
        struct craft_kv_bytes key;
        size_t off = 0;
        rc = CRAFT_OK;
        while (rc == CRAFT_OK && craft_kv_cmd_next(c, &off, &key, NULL)) {
            rc = key_find(a, key, &k);
            bool string = k.old.found && k.old.type == KV_TYPE_STRING;
            if (rc == CRAFT_OK && !mget) {
                n += k.old.found;
            } else if (rc == CRAFT_OK) {
                /* As Redis: nil for anything not a string. */
                size_t need = string ? 5 + k.old.vlen : 1;
                if (9 + len + need > budget) {
                    free(buf);
                    return reply(res, res_err(CRAFT_KV_ERR_REPLY_LARGE));
                }
                rc = reserve(&buf, &cap, len + need);
                if (rc == CRAFT_OK) {
                    buf[len] = CRAFT_KV_RES_NIL;
                    len +=
                        string ? enc_bytes(buf + len, CRAFT_KV_RES_BULK, k.old.val, k.old.vlen) : 1;
                    n++;
                }
            }
        }
        if (rc == CRAFT_OK) {
            rc = reply(res, mget ? kv_result_new(CRAFT_KV_RES_ARRAY, n, buf, len) : res_int(n));
        }
        free(buf);
        return rc;
    }
    default:
        break;
    }
    rc = key_find(a, c->key, &k);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if ((c->op == CRAFT_KV_OP_GET || c->op == CRAFT_KV_OP_STRLEN) && wrong_type(&k.old)) {
        return reply(res, res_err(CRAFT_KV_ERR_WRONGTYPE));
    }
    switch (c->op) {
    case CRAFT_KV_OP_GET:
        return reply(res, res_value(&k.old));
    case CRAFT_KV_OP_STRLEN:
        return reply(res, res_int(k.old.found ? (int64_t)k.old.vlen : 0));
    case CRAFT_KV_OP_TYPE: {
        const char *t = kv_type_name(&k.old);
        return reply(res, kv_result_new(CRAFT_KV_RES_STATUS, 0, t, strlen(t)));
    }
    case CRAFT_KV_OP_TTL:
    case CRAFT_KV_OP_PTTL: {
        int64_t ms = k.old.found ? kv_pttl(k.old.expire_at, a->m.now) : -2;
        return reply(res, res_int(c->op == CRAFT_KV_OP_TTL ? kv_ttl_of_pttl(ms) : ms));
    }
    default:
        CRAFT_UNREACHABLE();
    }
}

static int exec(struct ap *a, const struct craft_kv_cmd *c, struct craft_kv_result **res);

/* Redis's EXEC: every command runs, in order, as one step of the state machine (one log
 * entry, one store transaction); a command's own error is its reply and the others still
 * run. The reply is the array of their replies, bounded (CRAFT_KV_MULTI_REPLY_BYTES_MAX):
 * every command runs whatever its reply's size, so the state is the same either way. */
static int exec_multi(struct ap *a, const struct craft_kv_cmd *c, struct craft_kv_result **res)
{
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = CRAFT_OK;
    struct craft_kv_cmd s;
    size_t off = 0;
    /* Room for one error text per element: an element past the budget is replaced by it,
     * so the array never passes the bound whatever its elements. */
    const size_t err_len = 5 + strlen(CRAFT_KV_ERR_REPLY_LARGE);
    const size_t limit = CRAFT_KV_MULTI_REPLY_BYTES_MAX - 9 - (size_t)c->n * err_len;
    CRAFT_ASSERT((size_t)c->n * err_len < CRAFT_KV_MULTI_REPLY_BYTES_MAX / 2);
    /* WATCH first (Redis's optimistic lock): a watched key whose state changed since the
     * client's WATCH, on this log's order, makes the whole transaction answer nil and run
     * nothing. Not an element of the answer. */
    uint32_t n_watch = 0;
    while (craft_kv_cmd_next_sub(c, &off, &s)) {
        if (s.op != CRAFT_KV_OP_WATCH) {
            continue;
        }
        n_watch++;
        struct kv_keyed k;
        rc = key_find(a, s.key, &k);
        if (rc != CRAFT_OK) {
            return rc;
        }
        if (kv_watch_digest(&k.old) != (uint64_t)s.delta) {
            return reply(res, res_simple(CRAFT_KV_RES_NIL));
        }
    }
    off = 0;
    while (rc == CRAFT_OK && craft_kv_cmd_next_sub(c, &off, &s)) {
        if (s.op == CRAFT_KV_OP_WATCH) {
            continue;
        }
        struct craft_kv_result *r = NULL;
        size_t budget = len < limit ? limit - len : 0;
        if (craft_kv_op_is_coll(s.op)) {
            rc = kv_coll_exec(&a->ks, &s, budget, &r);
        } else {
            rc = craft_kv_op_is_read(s.op) ? exec_read(a, &s, budget, &r) : exec(a, &s, &r);
        }
        if (rc == CRAFT_OK && kv_result_enc_len(r) > budget) {
            craft_kv_result_free(r);
            r = res_err(CRAFT_KV_ERR_REPLY_LARGE);
            rc = r != NULL ? CRAFT_OK : CRAFT_ENOMEM;
        }
        if (rc == CRAFT_OK) {
            rc = reserve(&buf, &cap, len + kv_result_enc_len(r));
        }
        if (rc == CRAFT_OK) {
            len += kv_result_encode(r, buf + len);
        }
        craft_kv_result_free(r);
    }
    if (rc == CRAFT_OK) {
        rc = reply(res, kv_result_new(CRAFT_KV_RES_ARRAY, c->n - n_watch, buf, len));
    }
    free(buf);
    return rc;
}

static int exec(struct ap *a, const struct craft_kv_cmd *c, struct craft_kv_result **res)
{
    CRAFT_ASSERT(!craft_kv_op_is_read(c->op)); /* exec_multi runs them with their budget */
    switch (c->op) {
    case CRAFT_KV_OP_MULTI:
        return exec_multi(a, c, res);
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
        /* A collection write (kv_coll.c); its answer (SPOP's members) bounded as a MULTI's. */
        CRAFT_ASSERT(craft_kv_op_is_coll(c->op));
        return kv_coll_exec(&a->ks, c, CRAFT_KV_MULTI_REPLY_BYTES_MAX, res);
    }
}

/* A key's command runs only where its slot is served (kv_sm.h). True if key's slot is not
 * served here, with *r the answer instead (NULL: no memory for it). */
static bool refused(const struct craft_shard_view *v, const uint8_t *key, size_t klen,
                    struct craft_kv_result **r)
{
    uint16_t slot = craft_key_slot(key, klen);
    if (craft_shard_view_serves(v, slot)) {
        return false;
    }
    if (v->state[slot] == CRAFT_SLOT_PULLING) {
        *r = res_err(CRAFT_KV_ERR_TRYAGAIN);
        return true;
    }
    char text[32];
    snprintf(text, sizeof text, CRAFT_KV_ERR_MOVED " %u", (unsigned)slot);
    *r = res_err(text);
    return true;
}

/* CRAFT_OK with *r NULL if c may run here, or with *r the answer it gets instead;
 * CRAFT_ENOMEM. */
static int not_served(const struct ap *a, const struct craft_kv_cmd *c,
                      struct craft_kv_result **r)
{
    const struct craft_shard_view *v = view_of(a);
    *r = NULL;
    if (v != NULL && c->op == CRAFT_KV_OP_MULTI) {
        /* A transaction runs where all of its keys are served, or not at all. */
        struct craft_kv_cmd s;
        size_t off = 0;
        while (craft_kv_cmd_next_sub(c, &off, &s)) {
            int rc = not_served(a, &s, r);
            if (rc != CRAFT_OK || *r != NULL) {
                return rc;
            }
        }
        return CRAFT_OK;
    }
    struct craft_kv_bytes k;
    size_t off = 0;
    while (v != NULL && craft_kv_cmd_next_key(c, &off, &k)) {
        if (refused(v, k.p, k.len, r)) {
            return *r == NULL ? CRAFT_ENOMEM : CRAFT_OK;
        }
    }
    return CRAFT_OK;
}

static int shard_answer(int rc, const char *err, struct craft_kv_result **res)
{
    if (rc == CRAFT_OK) {
        return reply(res, res_simple(CRAFT_KV_RES_OK));
    }
    char text[160];
    snprintf(text, sizeof text, "ERR %s", err[0] ? err : craft_strerror(rc));
    return reply(res, res_err(text));
}

/* Keys and sessions handed over with slots (SHARD_INSTALL), into this transaction. */
/* A collection of a payload (kv_shard.h) under a new id of this store; its version is the
 * install's log index, this group's (WATCH compares versions of one group's log). A copy
 * already here from an earlier part sent again has the same type, count and expiry. */
static int import_coll(struct ap *a, struct kv_keyed *kd, const struct kv_payload_key *k)
{
    struct kv_coll c;
    kv_payload_coll_header(k->val, &c);
    if (kd->old.found) {
        bool same = kd->old.type == c.type && kd->old.coll.count == c.count &&
                    kd->old.expire_at == k->expire_at;
        return same ? CRAFT_OK : CRAFT_ECORRUPT;
    }
    if (k->expire_at != 0 && k->expire_at <= a->m.now) {
        return CRAFT_OK; /* expired here already: absent, as key_store would leave it */
    }
    c.id = kv_coll_new_id(&a->ks);
    c.head = c.type == KV_TYPE_LIST ? KV_LIST_BASE : 0;
    c.version = a->ks.index; /* a change in this group's log (kv_internal.h) */
    struct craft_kv_bytes f, v;
    size_t off = KV_PAYLOAD_COLL_HEADER;
    int rc = CRAFT_OK;
    for (uint64_t i = 0; rc == CRAFT_OK && kv_payload_coll_next(k->val, k->vlen, &off, &f, &v);
         i++) {
        rc = kv_elem_install(&a->ks, &c, i, f, v);
    }
    return rc == CRAFT_OK ? kv_coll_store(&a->ks, kd->sk, kd->sklen, &kd->old, &c, k->expire_at)
                          : rc;
}

static int import_payload(struct ap *a, const struct kv_payload *pl)
{
    struct kv_payload_key k;
    size_t off = 0;
    int rc = CRAFT_OK;
    while (rc == CRAFT_OK && kv_payload_next_key(pl, &off, &k)) {
        if (pl->part && view_of(a)->state[craft_key_slot(k.key, k.klen)] != CRAFT_SLOT_PULLING) {
            continue; /* a part's slot already installed (served, or on its way out again) */
        }
        struct kv_keyed kd;
        rc = key_find(a, (struct craft_kv_bytes){k.key, k.klen}, &kd);
        if (rc == CRAFT_OK && k.coll) {
            rc = import_coll(a, &kd, &k);
            continue;
        }
        if (rc == CRAFT_OK && kd.old.found) {
            /* A slot being received holds no key here (ABSENT before, never served, its
             * keys deleted when it last left) but those of earlier parts of the same
             * hand-over, sent again after a leader change: the sender's copy is frozen, so
             * the same key has the same value and expiry. Anything else means a damaged
             * store. */
            bool same = kd.old.expire_at == k.expire_at && kd.old.vlen == k.vlen &&
                        (k.vlen == 0 || memcmp(kd.old.val, k.val, k.vlen) == 0);
            if (same) {
                continue;
            }
            rc = CRAFT_ECORRUPT;
        }
        if (rc == CRAFT_OK) {
            rc = key_store(a, kd.sk, kd.sklen, &kd.old, k.val, k.vlen, NULL, 0, k.expire_at);
        }
    }
    struct kv_payload_session ps;
    off = 0;
    while (rc == CRAFT_OK && kv_payload_next_session(pl, &off, &ps)) {
        struct sess s;
        rc = session_lookup(a, ps.id, &s);
        if (rc == CRAFT_OK) {
            rc = scratch(a, (s.found ? s.rec_len : 0) + ps.len);
        }
        if (rc != CRAFT_OK) {
            break;
        }
        size_t len = ps.len;
        if (s.found) {
            len = kv_session_merge(s.rec, s.rec_len, ps.rec, ps.len, a->ks.buf);
        } else {
            memcpy(a->ks.buf, ps.rec, ps.len);
        }
        rc = session_store(a, ps.id, &s, len);
    }
    return rc;
}

/* The SHARD_* commands (kv_sm.h): validated whole before anything changes. */
static int apply_shard(struct ap *a, const struct craft_kv_cmd *c, struct craft_kv_result **res)
{
    if (a->sm->view == NULL) {
        return reply(res, res_err(CRAFT_KV_ERR_NOT_SHARD));
    }
    char err[128] = "";
    struct craft_slot_set set;
    struct kv_payload pl;
    bool changed = false;
    int rc = CRAFT_OK;
    switch (c->op) {
    case CRAFT_KV_OP_SHARD_CONFIG: {
        struct craft_shard_config *cfg = malloc(sizeof *cfg);
        if (cfg == NULL) {
            return CRAFT_ENOMEM;
        }
        if (craft_shard_config_decode(c->blob.p, c->blob.len, cfg) != CRAFT_OK ||
            cfg->num != c->shard_num) {
            rc = CRAFT_EMALFORMED;
            snprintf(err, sizeof err, "malformed configuration");
        } else if (view_of(a)->cur.num < cfg->num) {
            /* Check on the current view, change a copy only if it applies. */
            struct craft_shard_view *v;
            rc = view_edit(a, &v);
            if (rc == CRAFT_OK) {
                rc = craft_shard_view_config(v, cfg, &changed, err, sizeof err);
            }
            if (rc == CRAFT_ENOMEM) {
                free(cfg);
                return rc;
            }
        }
        free(cfg);
        return shard_answer(rc, err, res);
    }
    case CRAFT_KV_OP_SHARD_INSTALL:
        rc = kv_payload_open(c->blob.p, c->blob.len, &pl);
        if (rc != CRAFT_OK) {
            return shard_answer(rc, "malformed payload", res);
        }
        set = pl.slots;
        break;
    case CRAFT_KV_OP_SHARD_DELETE:
    case CRAFT_KV_OP_SHARD_CONFIRM:
        if (c->blob.len != CRAFT_SLOT_SET_BYTES) {
            return shard_answer(CRAFT_EMALFORMED, "malformed slot set", res);
        }
        memcpy(set.bits, c->blob.p, CRAFT_SLOT_SET_BYTES);
        break;
    default:
        CRAFT_UNREACHABLE();
    }
    enum craft_shard_step step = c->op == CRAFT_KV_OP_SHARD_INSTALL  ? CRAFT_SHARD_STEP_INSTALL
                                 : c->op == CRAFT_KV_OP_SHARD_DELETE ? CRAFT_SHARD_STEP_DELETE
                                                                     : CRAFT_SHARD_STEP_CONFIRM;
    /* Retries and late arrivals (the drivers resend every step until it is done) change
     * nothing: answer them from the view as it is, copying it only for a real change. */
    bool changes;
    rc = craft_shard_view_check(view_of(a), step, c->shard_num, &set, &changes, err, sizeof err);
    if (rc != CRAFT_OK || !changes) {
        return shard_answer(rc, err, res);
    }
    if (step == CRAFT_SHARD_STEP_INSTALL && pl.part) {
        /* A part of a hand-over (kv_shard.h): the keys of its slots still on their way
         * (import_payload skips the others); the view changes with the last part. A part
         * arriving after it is a retry of one already in: answered above, unchanged. */
        rc = import_payload(a, &pl);
        return rc != CRAFT_OK ? rc : shard_answer(CRAFT_OK, err, res);
    }
    struct craft_shard_view *v;
    rc = view_edit(a, &v);
    if (rc != CRAFT_OK) {
        return rc;
    }
    rc = craft_shard_view_step(v, step, c->shard_num, &set, &changed, err, sizeof err);
    CRAFT_ASSERT(rc == CRAFT_OK && changed); /* as checked */
    if (step == CRAFT_SHARD_STEP_INSTALL) {
        rc = import_payload(a, &pl);
    } else if (step == CRAFT_SHARD_STEP_DELETE) {
        rc = delete_slots(a, &set);
    }
    /* A store error fails the batch (its view copy with it). */
    return rc != CRAFT_OK ? rc : shard_answer(CRAFT_OK, err, res);
}

/* ---- one command ---- */

static int apply_session_op(struct ap *a, const struct craft_kv_cmd *c,
                            struct craft_kv_result **res)
{
    struct sess s;
    int rc = session_lookup(a, c->session, &s);
    bool ended = s.found && s.last == KV_SESSION_ENDED;
    if (rc == CRAFT_OK && ended) {
        /* Closed: never opened again, nothing to close (a copy of its open or close that
         * was on its way). */
        return reply(res, c->op == CRAFT_KV_OP_SESSION_OPEN ? res_err(CRAFT_KV_ERR_SESSION)
                                                            : res_int(0));
    }
    if (rc == CRAFT_OK && c->op == CRAFT_KV_OP_SESSION_OPEN) {
        /* Idempotent: reopening a live session keeps its seq and window. */
        rc = s.found ? session_touch(a, c->session, &s) : session_create(a, c->session, &s);
    } else if (rc == CRAFT_OK && s.found) {
        /* The record stays, closed and without its window, until it idles out. */
        rc = scratch(a, KV_SESSION_HEADER);
        if (rc == CRAFT_OK) {
            craft_put_u64(a->ks.buf, KV_SESSION_ENDED);
            rc = session_store(a, c->session, &s, KV_SESSION_HEADER);
        }
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    /* A close says whether it closed a live session (1) or found none (0), as DEL does. */
    return reply(res, c->op == CRAFT_KV_OP_SESSION_OPEN ? res_simple(CRAFT_KV_RES_OK)
                                                        : res_int(s.found ? 1 : 0));
}

/* Exactly once (thesis 6.3): a session's last seq and window decide whether the command
 * runs. */
static int apply_in_session(struct ap *a, const struct craft_kv_cmd *c,
                            struct craft_kv_result **res)
{
    struct sess s;
    int rc = session_lookup(a, c->session, &s);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (!s.found || s.last == KV_SESSION_ENDED) {
        return reply(res, res_err(CRAFT_KV_ERR_SESSION));
    }
    if (c->seq <= s.last) {
        /* A retry: its saved result, if the window still holds it, and the session stays
         * alive; otherwise the client already had the reply (seq < its ack) or gave up. */
        const uint8_t *p;
        size_t plen;
        if (!kv_session_result(s.rec, s.rec_len, c->seq, &p, &plen)) {
            return reply(res, res_err(CRAFT_KV_ERR_STALE));
        }
        struct craft_kv_result *r = kv_result_decode(p, plen);
        if (r == NULL) {
            return CRAFT_ENOMEM;
        }
        rc = session_touch(a, c->session, &s);
        if (rc != CRAFT_OK) {
            craft_kv_result_free(r);
            return rc;
        }
        *res = r;
        return CRAFT_OK;
    }
    struct craft_kv_result *r;
    rc = not_served(a, c, &r);
    if (rc == CRAFT_OK && r != NULL && c->refusal_final) {
        /* Sharding (kv_cmd.h, refusal_final): the refusal is this seq's answer for good,
         * so a copy of it still on its way can never run here after its sender gave the
         * command a new seq. */
        rc = session_append(a, c, &s, r);
        if (rc != CRAFT_OK) {
            craft_kv_result_free(r);
            return rc;
        }
        *res = r;
        return CRAFT_OK;
    }
    if (rc != CRAFT_OK || r != NULL) {
        /* Not run, so not recorded: the seq may run in the group that owns the slot. */
        *res = r;
        return rc;
    }
    rc = exec(a, c, &r);
    if (rc == CRAFT_OK && kv_result_enc_len(r) > KV_RESULT_ENC_MAX) {
        /* Only an array (a MULTI's, SPOP's) can be this large: it answers in full now, and
         * a retry gets an error saying that it ran (the window's records stay bounded). */
        CRAFT_ASSERT(r->type == CRAFT_KV_RES_ARRAY);
        struct craft_kv_result *kept = res_err(CRAFT_KV_ERR_EXEC_LARGE);
        rc = kept != NULL ? session_append(a, c, &s, kept) : CRAFT_ENOMEM;
        craft_kv_result_free(kept);
    } else if (rc == CRAFT_OK) {
        rc = session_append(a, c, &s, r);
    }
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
    case CRAFT_KV_OP_SHARD_CONFIG:
    case CRAFT_KV_OP_SHARD_INSTALL:
    case CRAFT_KV_OP_SHARD_DELETE:
    case CRAFT_KV_OP_SHARD_CONFIRM:
        return apply_shard(a, &c, res);
    default:
        if (c.session != 0) {
            return apply_in_session(a, &c, res);
        }
        rc = not_served(a, &c, res);
        return rc != CRAFT_OK || *res != NULL ? rc : exec(a, &c, res);
    }
}

/* ---- a version 1 store ---- */

/* The first session record at or after a key, copied (the store's pointers do not survive
 * the writes that follow). */
struct v1_cursor {
    bool found;
    uint8_t id[8];
    uint8_t *rec; /* KV_SESSION_ENTRY_HEADER free bytes, then the record */
    size_t len;
};

static int v1_grab(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    struct v1_cursor *cur = ctx;
    if (klen != 8 || vlen < KV_SESSION_HEADER || vlen - KV_SESSION_HEADER > KV_RESULT_ENC_MAX) {
        return CRAFT_ECORRUPT;
    }
    memcpy(cur->id, k, 8);
    memcpy(cur->rec + KV_SESSION_ENTRY_HEADER, v, vlen);
    cur->len = vlen;
    cur->found = true;
    return CRAFT_KV_ITER_STOP;
}

/* Converts every session record of a version 1 store (u64 seq | u64 last_ms | the last
 * result, empty before the first) into a window holding that one result, and marks the
 * store version 2, in one write transaction: all or nothing. */
static int upgrade_v1(struct craft_kv_store *store)
{
    const struct craft_kv_store_ops *o = store->ops;
    struct v1_cursor cur = {0};
    cur.rec = malloc(KV_SESSION_BYTES_MAX);
    if (cur.rec == NULL) {
        return CRAFT_ENOMEM;
    }
    struct craft_kv_txn *t;
    int rc = o->begin(store, true, &t);
    if (rc != CRAFT_OK) {
        free(cur.rec);
        return rc;
    }
    struct kv_meta m = {0};
    rc = kv_meta_load(store, t, &m);
    uint8_t from[8] = {0};
    bool more = rc == CRAFT_OK && m.format == KV_FORMAT_V1;
    while (more) {
        cur.found = false;
        rc = o->iter(t, CRAFT_KV_TABLE_SESSIONS, from, sizeof from, v1_grab, &cur);
        if (rc != CRAFT_OK || !cur.found) {
            break;
        }
        /* Move the 16-byte header in front of the result, with the entry header between. */
        uint8_t *old = cur.rec + KV_SESSION_ENTRY_HEADER, *rec = cur.rec;
        uint64_t seq = craft_get_u64(old);
        size_t rlen = cur.len - KV_SESSION_HEADER;
        if ((rlen == 0) != (seq == 0) ||
            (rlen > 0 && !kv_result_valid(old + KV_SESSION_HEADER, rlen))) {
            rc = CRAFT_ECORRUPT;
            break;
        }
        memmove(rec, old, KV_SESSION_HEADER);
        size_t len = KV_SESSION_HEADER;
        if (rlen > 0) {
            craft_put_u64(rec + KV_SESSION_HEADER, seq);
            craft_put_u32(rec + KV_SESSION_HEADER + 8, (uint32_t)rlen);
            len += KV_SESSION_ENTRY_HEADER + rlen; /* the result is already in place */
        }
        CRAFT_ASSERT(kv_session_valid(rec, len));
        rc = o->put(t, CRAFT_KV_TABLE_SESSIONS, cur.id, 8, rec, len);
        uint64_t id = kv_get_be64(cur.id);
        more = rc == CRAFT_OK && id != UINT64_MAX;
        kv_put_be64(from, id + 1);
    }
    if (rc == CRAFT_OK && m.format == KV_FORMAT_V1) {
        rc = kv_meta_store(store, t, &m); /* writes KV_FORMAT */
    }
    if (rc == CRAFT_OK) {
        rc = o->commit(t);
    } else {
        o->abort(t);
    }
    free(cur.rec);
    return rc;
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
    sm->shard_gid = cfg != NULL ? cfg->shard_gid : 0;
    if (sm->shard_gid != 0 && (sm->view = malloc(sizeof *sm->view)) == NULL) {
        free(sm);
        return CRAFT_ENOMEM;
    }
    sm->session_idle_ms = cfg != NULL && cfg->session_idle_ms != 0 ? cfg->session_idle_ms
                                                                   : KV_SESSION_IDLE_MS_DEFAULT;
    sm->batch_sessions_max = cfg != NULL && cfg->batch_sessions_max != 0 &&
                                     cfg->batch_sessions_max < SESS_SLOTS_MAX
                                 ? cfg->batch_sessions_max
                                 : SESS_SLOTS_MAX;
    struct craft_kv_txn *t;
    int rc = store->ops->begin(store, false, &t);
    if (rc == CRAFT_OK) {
        struct kv_meta m = {0};
        rc = kv_meta_load(store, t, &m);
        if (rc == CRAFT_OK) {
            rc = kv_view_load(store, t, sm->shard_gid, m.applied, sm->view, &sm->view_stored);
        }
        store->ops->abort(t);
        sm->applied = m.applied;
        sm->now = m.now;
        sm->n_keys = m.n_keys;
        sm->coll_next = m.coll_next;
        if (rc == CRAFT_OK && m.format == KV_FORMAT_V1) {
            rc = upgrade_v1(store);
        }
    }
    if (rc != CRAFT_OK) {
        free(sm->view);
        free(sm);
        return rc;
    }
    *out = sm;
    return CRAFT_OK;
}

void craft_kv_sm_close(struct craft_kv_sm *sm)
{
    free(sm->view);
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
    struct ap a = {.sm = sm, /* every slot empty: no buffer yet */
                   .expires_min = sm->expires_min,
                   .idle_min = sm->idle_min};
    a.m = (struct kv_meta){
        .applied = sm->applied, .now = sm->now, .n_keys = sm->n_keys, .coll_next = sm->coll_next};
    a.ks = (struct kv_space){
        .o = sm->store->ops, .m = &a.m, .write = true, .expires_min = &a.expires_min};
    int rc = a.ks.o->begin(sm->store, true, &a.ks.t);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (sm->view != NULL && !sm->view_stored) {
        /* A group's first batch records its view, so that its store (and snapshots) are
         * told from a plain state machine's from then on. */
        struct craft_shard_view *v;
        rc = view_edit(&a, &v);
    }
    for (size_t i = 0; rc == CRAFT_OK && i < n; i++) {
        if (cmds[i].index <= a.m.applied) {
            continue; /* replayed: the store has it */
        }
        struct craft_kv_result *r = NULL;
        a.ks.index = cmds[i].index;
        rc = apply_one(&a, cmds[i].data, cmds[i].len, &r);
        results[i] = r;
        a.m.applied = cmds[i].index;
    }
    if (rc == CRAFT_OK) {
        rc = sess_flush(&a);
    }
    if (rc == CRAFT_OK) {
        rc = kv_meta_store(sm->store, a.ks.t, &a.m);
    }
    if (rc == CRAFT_OK && a.view_next != NULL) {
        rc = kv_view_store(sm->store, a.ks.t, a.view_next);
    }
    if (rc == CRAFT_OK) {
        rc = a.ks.o->commit(a.ks.t);
    } else {
        a.ks.o->abort(a.ks.t);
    }
    free(a.ks.buf);
    slots_free(&a);
    if (rc == CRAFT_OK && a.view_next != NULL) {
        struct craft_shard_view *old_view = sm->view;
        sm->view = a.view_next;
        a.view_next = old_view;
        sm->view_stored = true;
    }
    free(a.view_next);
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
    sm->coll_next = a.m.coll_next;
    /* Only a committed scan's bounds: an aborted batch leaves the tables as they were. */
    sm->expires_min = a.expires_min;
    sm->idle_min = a.idle_min;
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
