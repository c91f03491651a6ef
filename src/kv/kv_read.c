/* craftkv reads: GET, PTTL/TTL, DBSIZE, SCAN over a store read transaction, with expiry
 * decided by the logical time stored with that state (never a clock). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "kv/kv_internal.h"
#include "kv/kv_shard.h"
#include "shard/slots.h"
#include "shard/view.h"

struct craft_kv_read {
    struct craft_kv_store *s;
    struct craft_kv_txn *t;
    struct kv_meta m;
    uint64_t shard_gid, idle_ms;
};

int craft_kv_read_begin(struct craft_kv_sm *sm, struct craft_kv_read **out)
{
    struct craft_kv_read *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return CRAFT_ENOMEM;
    }
    r->s = sm->store;
    r->shard_gid = sm->shard_gid;
    r->idle_ms = sm->session_idle_ms;
    int rc = r->s->ops->begin(r->s, false, &r->t);
    if (rc != CRAFT_OK) {
        free(r);
        return rc;
    }
    rc = kv_meta_load(r->s, r->t, &r->m);
    if (rc != CRAFT_OK) {
        craft_kv_read_end(r);
        return rc;
    }
    *out = r;
    return CRAFT_OK;
}

void craft_kv_read_end(struct craft_kv_read *r)
{
    r->s->ops->abort(r->t);
    free(r);
}

uint64_t craft_kv_read_applied(const struct craft_kv_read *r)
{
    return r->m.applied;
}

uint64_t craft_kv_read_now(const struct craft_kv_read *r)
{
    return r->m.now;
}

/* A read's key space (kv_keys.c): skips expired keys, removes nothing. */
static struct kv_space space_of(struct craft_kv_read *r)
{
    return (struct kv_space){.o = r->s->ops, .t = r->t, .m = &r->m, .write = false};
}

/* The live entry of key (any type): CRAFT_ENOTFOUND if absent or expired. */
static int lookup(struct craft_kv_read *r, const uint8_t *key, size_t klen, struct kv_live *out)
{
    struct kv_space ks = space_of(r);
    struct kv_keyed k;
    int rc = kv_key_find(&ks, (struct craft_kv_bytes){key, (uint32_t)klen}, &k);
    if (rc == CRAFT_OK && !k.old.found) {
        rc = CRAFT_ENOTFOUND;
    }
    if (rc == CRAFT_OK) {
        *out = k.old;
    }
    return rc;
}

int craft_kv_read_get(struct craft_kv_read *r, const uint8_t *key, size_t klen, const uint8_t **val,
                      size_t *vlen)
{
    struct kv_live l;
    int rc = lookup(r, key, klen, &l);
    if (rc == CRAFT_OK && l.type != KV_TYPE_STRING) {
        return CRAFT_ENOTFOUND; /* not a string (craft_kv_read_type tells) */
    }
    if (rc == CRAFT_OK) {
        *val = l.val;
        *vlen = l.vlen;
    }
    return rc;
}

int craft_kv_read_type(struct craft_kv_read *r, const uint8_t *key, size_t klen, const char **name)
{
    struct kv_live l = {0};
    int rc = lookup(r, key, klen, &l);
    if (rc == CRAFT_ENOTFOUND) {
        l.found = false;
        rc = CRAFT_OK;
    }
    if (rc == CRAFT_OK) {
        *name = kv_type_name(&l);
    }
    return rc;
}

int craft_kv_read_watch(struct craft_kv_read *r, const uint8_t *key, size_t klen, uint64_t *digest)
{
    struct kv_live l = {0};
    int rc = lookup(r, key, klen, &l);
    if (rc == CRAFT_ENOTFOUND) {
        l.found = false;
        rc = CRAFT_OK;
    }
    if (rc == CRAFT_OK) {
        *digest = kv_watch_digest(&l); /* as apply computes it (kv_sm.c, exec_multi) */
    }
    return rc;
}

int craft_kv_read_exec(struct craft_kv_read *r, const struct craft_kv_cmd *c,
                       struct craft_kv_result **res)
{
    CRAFT_ASSERT(craft_kv_op_is_coll(c->op) && craft_kv_op_is_read(c->op));
    struct kv_space ks = space_of(r);
    return kv_coll_exec(&ks, c, CRAFT_KV_READ_REPLY_BYTES_MAX, res);
}

int craft_kv_read_expire_at(struct craft_kv_read *r, const uint8_t *key, size_t klen, int64_t *out)
{
    struct kv_live l;
    int rc = lookup(r, key, klen, &l);
    if (rc == CRAFT_ENOTFOUND) {
        *out = -2;
        return CRAFT_OK;
    }
    if (rc == CRAFT_OK) {
        *out = l.expire_at == 0 ? -1 : (int64_t)l.expire_at; /* at most INT64_MAX */
    }
    return rc;
}

int craft_kv_read_pttl(struct craft_kv_read *r, const uint8_t *key, size_t klen, int64_t *ms)
{
    int64_t at;
    int rc = craft_kv_read_expire_at(r, key, klen, &at);
    if (rc == CRAFT_OK) {
        /* -2 absent, -1 no expiry; else live, so at > now */
        *ms = at < 0 ? at : kv_pttl((uint64_t)at, r->m.now);
    }
    return rc;
}

int craft_kv_read_ttl(struct craft_kv_read *r, const uint8_t *key, size_t klen, int64_t *s)
{
    int64_t ms;
    int rc = craft_kv_read_pttl(r, key, klen, &ms);
    if (rc == CRAFT_OK) {
        *s = kv_ttl_of_pttl(ms);
    }
    return rc;
}

/* ---- DBSIZE ---- */

struct due {
    uint64_t now, n;
};

static int count_due(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    (void)v;
    (void)vlen;
    struct due *d = ctx;
    if (klen < 8) {
        return CRAFT_ECORRUPT;
    }
    if (kv_get_be64(k) > d->now) {
        return CRAFT_KV_ITER_STOP;
    }
    d->n++;
    return CRAFT_OK;
}

int craft_kv_read_dbsize(struct craft_kv_read *r, uint64_t *n)
{
    struct due d = {.now = r->m.now, .n = 0};
    int rc = r->s->ops->iter(r->t, CRAFT_KV_TABLE_EXPIRES, NULL, 0, count_due, &d);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (d.n > r->m.n_keys) {
        return CRAFT_ECORRUPT;
    }
    *n = r->m.n_keys - d.n;
    return CRAFT_OK;
}

/* ---- SCAN ---- */

struct scan {
    uint64_t now;
    const uint8_t *pat;
    size_t plen, count, seen;
    uint64_t last_hash, next;
    const char *type; /* NULL: any */
    craft_kv_emit_fn emit;
    void *ctx;
};

static int scan_one(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    struct scan *sc = ctx;
    if (klen < 8 || vlen < KV_VAL_HEADER) {
        return CRAFT_ECORRUPT;
    }
    uint64_t h = kv_get_be64(k);
    /* Past count, finish the keys of the last hash: the next cursor must lie beyond it. */
    if (sc->seen >= sc->count && h != sc->last_hash) {
        sc->next = h;
        return CRAFT_KV_ITER_STOP;
    }
    sc->seen++;
    sc->last_hash = h;
    struct kv_live l;
    if (!kv_live_parse(v, vlen, &l)) {
        return CRAFT_ECORRUPT;
    }
    if (l.expire_at != 0 && l.expire_at <= sc->now) {
        return CRAFT_OK;
    }
    if (sc->type != NULL && strcmp(sc->type, kv_type_name(&l)) != 0) {
        return CRAFT_OK;
    }
    if (sc->pat != NULL && !craft_kv_glob_match(sc->pat, sc->plen, k + 8, klen - 8)) {
        return CRAFT_OK;
    }
    return sc->emit(sc->ctx, k + 8, klen - 8);
}

int craft_kv_read_scan(struct craft_kv_read *r, uint64_t cursor, const uint8_t *pattern,
                       size_t plen, size_t count, craft_kv_emit_fn emit, void *ctx, uint64_t *next)
{
    return craft_kv_read_scan_type(r, cursor, pattern, plen, count, NULL, emit, ctx, next);
}

int craft_kv_read_scan_type(struct craft_kv_read *r, uint64_t cursor, const uint8_t *pattern,
                            size_t plen, size_t count, const char *type, craft_kv_emit_fn emit,
                            void *ctx, uint64_t *next)
{
    struct scan sc = {.now = r->m.now,
                      .type = type,
                      .pat = pattern,
                      .plen = plen,
                      .count = count == 0 ? 1 : count,
                      .next = 0,
                      .emit = emit,
                      .ctx = ctx};
    uint8_t from[8];
    kv_put_be64(from, cursor);
    int rc = r->s->ops->iter(r->t, CRAFT_KV_TABLE_DATA, from, sizeof from, scan_one, &sc);
    if (rc == CRAFT_OK) {
        /* next > every hash returned, so > cursor: never 0 unless the end was reached. */
        CRAFT_ASSERT(sc.next == 0 || sc.next > cursor || sc.seen == 0);
        *next = sc.next;
    }
    return rc;
}

/* ---- the member table ---- */

int craft_kv_read_member(struct craft_kv_read *r, uint64_t id, struct craft_kv_member *out)
{
    uint8_t k[KV_MEMBER_KEY_BYTES];
    kv_member_key(id, k);
    const uint8_t *v;
    size_t vlen;
    int rc = r->s->ops->get(r->t, CRAFT_KV_TABLE_META, k, sizeof k, &v, &vlen);
    if (rc != CRAFT_OK) {
        return rc;
    }
    bool is_member;
    return kv_member_parse(k, sizeof k, v, vlen, out, &is_member) && out->id == id
               ? CRAFT_OK
               : CRAFT_ECORRUPT;
}

struct members {
    struct craft_kv_member *out;
    size_t cap, n;
};

static int member_one(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    struct members *ms = ctx;
    struct craft_kv_member m;
    bool is_member;
    if (!kv_member_parse(k, klen, v, vlen, &m, &is_member)) {
        return is_member ? CRAFT_ECORRUPT : CRAFT_KV_ITER_STOP;
    }
    if (ms->n < ms->cap) {
        ms->out[ms->n] = m;
    }
    ms->n++;
    return CRAFT_OK;
}

int craft_kv_read_members(struct craft_kv_read *r, struct craft_kv_member *out, size_t cap,
                          size_t *n)
{
    struct members ms = {.out = out, .cap = cap, .n = 0};
    int rc = r->s->ops->iter(r->t, CRAFT_KV_TABLE_META, (const uint8_t *)KV_MEMBER_PREFIX,
                             KV_MEMBER_PREFIX_LEN, member_one, &ms);
    if (rc == CRAFT_OK) {
        *n = ms.n;
    }
    return rc;
}

/* ---- glob ---- */

/* One character class starting after '[' at pat[*i]; leaves *i after the closing ']' (or at
 * the end for an unterminated class, which then extends to the end of the pattern). */
static bool class_match(const uint8_t *pat, size_t plen, size_t *i, uint8_t c)
{
    size_t j = *i;
    bool neg = j < plen && pat[j] == '^';
    if (neg) {
        j++;
    }
    bool hit = false;
    while (j < plen && pat[j] != ']') {
        if (pat[j] == '\\' && j + 1 < plen) {
            j++;
            hit = hit || pat[j] == c;
            j++;
        } else if (j + 2 < plen && pat[j + 1] == '-' && pat[j + 2] != ']') {
            uint8_t lo = pat[j], hi = pat[j + 2];
            if (lo > hi) {
                uint8_t t = lo;
                lo = hi;
                hi = t;
            }
            hit = hit || (c >= lo && c <= hi);
            j += 3;
        } else {
            hit = hit || pat[j] == c;
            j++;
        }
    }
    *i = j < plen ? j + 1 : j;
    return neg ? !hit : hit;
}

/* Iterative with one backtrack point (the last '*'): linear in practice, never
 * exponential, unlike the naive recursion. */
bool craft_kv_glob_match(const uint8_t *pat, size_t plen, const uint8_t *s, size_t slen)
{
    size_t p = 0, i = 0;
    size_t star_p = SIZE_MAX, star_i = 0;
    while (i < slen) {
        if (p < plen) {
            uint8_t pc = pat[p];
            if (pc == '*') {
                while (p < plen && pat[p] == '*') {
                    p++;
                }
                if (p == plen) {
                    return true;
                }
                star_p = p;
                star_i = i;
                continue;
            }
            size_t np = p + 1;
            bool ok;
            if (pc == '?') {
                ok = true;
            } else if (pc == '[') {
                ok = class_match(pat, plen, &np, s[i]);
            } else if (pc == '\\' && p + 1 < plen) {
                ok = pat[p + 1] == s[i];
                np = p + 2;
            } else {
                ok = pc == s[i];
            }
            if (ok) {
                p = np;
                i++;
                continue;
            }
        }
        if (star_p == SIZE_MAX) {
            return false;
        }
        p = star_p; /* let the last '*' eat one more character */
        i = ++star_i;
    }
    while (p < plen && pat[p] == '*') {
        p++;
    }
    return p == plen;
}

/* ---- shard groups ---- */

int craft_kv_read_slot_state(struct craft_kv_read *r, uint16_t slot, uint8_t *state)
{
    CRAFT_ASSERT(slot < CRAFT_SLOTS);
    if (r->shard_gid == 0) {
        *state = CRAFT_SLOT_SERVING;
        return CRAFT_OK;
    }
    const uint8_t *p;
    size_t n;
    int rc = r->s->ops->get(r->t, CRAFT_KV_TABLE_META, (const uint8_t *)KV_META_SHARD_SLOTS,
                            strlen(KV_META_SHARD_SLOTS), &p, &n);
    if (rc == CRAFT_ENOTFOUND) {
        *state = CRAFT_SLOT_ABSENT; /* no configuration yet */
        return CRAFT_OK;
    }
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (n != CRAFT_SLOTS || p[slot] >= CRAFT_SLOT_STATES) {
        return CRAFT_ECORRUPT;
    }
    *state = p[slot];
    return CRAFT_OK;
}

int craft_kv_read_view(struct craft_kv_read *r, struct craft_shard_view *out)
{
    if (r->shard_gid == 0) {
        return CRAFT_EINVAL;
    }
    bool stored;
    return kv_view_load(r->s, r->t, r->shard_gid, r->m.applied, out, &stored);
}

struct export {
    struct kv_payload_writer w;
    const struct craft_slot_set *slots;
    uint64_t now, idle_ms;
    struct craft_kv_export_cursor *cur; /* NULL: one payload; else the last key added */
    const struct craft_kv_store_ops *o; /* the read's transaction, for the elements */
    struct craft_kv_txn *t;
};

/* A collection's elements into the payload (a second cursor in the read transaction). */
struct export_elems {
    struct kv_payload_writer *w;
    uint64_t id, left;
};

static int export_elem(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    struct export_elems *x = ctx;
    if (klen < 8 || kv_get_be64(k) != x->id) {
        return CRAFT_KV_ITER_STOP;
    }
    if (klen < 16 || klen > KV_EKEY_MAX || vlen > CRAFT_KV_VALUE_BYTES_MAX || x->left == 0) {
        return CRAFT_ECORRUPT;
    }
    x->left--;
    return kv_payload_add_elem(x->w, k + 16, klen - 16, v, vlen);
}

static int export_coll(struct export *e, const uint8_t *k, size_t klen, const struct kv_live *l)
{
    int rc = kv_payload_begin_coll(&e->w, l->expire_at, k + 8, klen - 8, &l->coll);
    if (rc != CRAFT_OK) {
        return rc;
    }
    struct export_elems x = {.w = &e->w, .id = l->coll.id, .left = l->coll.count};
    uint8_t from[8];
    kv_put_be64(from, l->coll.id);
    rc = e->o->iter(e->t, CRAFT_KV_TABLE_ELEMS, from, sizeof from, export_elem, &x);
    if (rc == CRAFT_OK && x.left != 0) {
        rc = CRAFT_ECORRUPT;
    }
    if (rc == CRAFT_OK) {
        kv_payload_end_coll(&e->w);
    } else {
        kv_payload_drop_coll(&e->w);
    }
    return rc;
}

static int export_key(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    struct export *e = ctx;
    struct kv_live l;
    if (klen < 8 || klen > KV_SKEY_MAX || !kv_live_parse(v, vlen, &l)) {
        return CRAFT_ECORRUPT;
    }
    uint64_t at = l.expire_at;
    if (!craft_slot_set_has(e->slots, craft_key_slot(k + 8, klen - 8)) ||
        (at != 0 && at <= e->now)) {
        return CRAFT_OK; /* another slot's, or expired */
    }
    if (e->cur != NULL && kv_skey_cmp(k, klen, e->cur->key, e->cur->len) <= 0) {
        return CRAFT_OK; /* the cursor's own key: in the part before */
    }
    if (vlen - KV_VAL_HEADER > CRAFT_KV_VALUE_BYTES_MAX) {
        return CRAFT_ECORRUPT;
    }
    int rc = l.type != KV_TYPE_STRING ? export_coll(e, k, klen, &l)
                                      : kv_payload_add_key(&e->w, at, k + 8, klen - 8,
                                                           v + KV_VAL_HEADER, vlen - KV_VAL_HEADER);
    if (rc == CRAFT_OK && e->cur != NULL) {
        memcpy(e->cur->key, k, klen); /* the last key so far (a copy: kept only if a part) */
        e->cur->len = klen;
    }
    return rc;
}

static int export_session(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v,
                          size_t vlen)
{
    struct export *e = ctx;
    if (klen != 8 || !kv_session_valid(v, vlen)) {
        return CRAFT_ECORRUPT;
    }
    uint64_t last_ms = craft_get_u64(v + 8);
    if (last_ms <= e->now && e->now - last_ms >= e->idle_ms) {
        return CRAFT_OK; /* idle past its time: gone for every reader */
    }
    if (craft_get_u64(v) == KV_SESSION_ENDED) {
        /* Closed here: what it guards against (a copy of its commands applied again in this
         * group's log) cannot reach the receiver's log, and a connection's sessions close
         * by the thousand: a hand-over carries live sessions only. */
        return CRAFT_OK;
    }
    return kv_payload_add_session(&e->w, kv_get_be64(k), v, vlen);
}

int craft_kv_read_export(struct craft_kv_read *r, uint64_t num, const struct craft_slot_set *slots,
                         size_t max, struct craft_kv_export_cursor *cur, uint8_t **out,
                         size_t *len, bool *part)
{
    *part = false;
    struct craft_shard_view *v = malloc(sizeof *v);
    struct export *e = calloc(1, sizeof *e);
    int rc = v != NULL && e != NULL ? CRAFT_OK : CRAFT_ENOMEM;
    if (rc == CRAFT_OK) {
        rc = craft_kv_read_view(r, v);
    }
    if (rc == CRAFT_OK && v->cur.num != num) {
        rc = v->cur.num > num ? CRAFT_ESTALE : CRAFT_EBUSY;
    }
    for (uint32_t s = 0; rc == CRAFT_OK && s < CRAFT_SLOTS; s++) {
        if (!craft_slot_set_has(slots, (uint16_t)s) || v->state[s] == CRAFT_SLOT_GIVING) {
            continue;
        }
        /* Ours before num and gone now: deleted, so the receiver has it (a receiver whose
         * applied state lags may still ask). Anything else was never ours to give. */
        bool deleted = v->state[s] == CRAFT_SLOT_ABSENT &&
                       craft_shard_slot_gid(&v->prev, (uint16_t)s) == r->shard_gid;
        rc = deleted ? CRAFT_ESTALE : CRAFT_EINVAL;
    }
    if (rc == CRAFT_OK && craft_slot_set_count(slots) == 0) {
        rc = CRAFT_EINVAL;
    }
    if (rc == CRAFT_OK) {
        e->slots = slots;
        e->o = r->s->ops;
        e->t = r->t;
        e->now = r->m.now;
        e->idle_ms = r->idle_ms;
        rc = kv_payload_begin(&e->w, slots, max);
    }
    /* The walk starts at the cursor (a stored key's order); export_key moves *cur, and an
     * error puts it back. */
    struct craft_kv_export_cursor start = {0};
    if (cur != NULL && e != NULL) {
        CRAFT_ASSERT(cur->len <= sizeof cur->key);
        start = *cur;
        e->cur = cur;
    }
    if (rc == CRAFT_OK) {
        rc = r->s->ops->iter(r->t, CRAFT_KV_TABLE_DATA, start.key, start.len, export_key, e);
        if (rc == CRAFT_OK) {
            rc = kv_payload_start_sessions(&e->w);
        }
        if (rc == CRAFT_OK) {
            rc = r->s->ops->iter(r->t, CRAFT_KV_TABLE_SESSIONS, NULL, 0, export_session, e);
        }
        if (rc == CRAFT_OK) {
            kv_payload_end(&e->w);
        } else if (rc == CRAFT_ETOOBIG && cur != NULL && e->w.n_keys > 0) {
            /* The keys so far, as a part; the sessions go with the last part. */
            kv_payload_end_part(&e->w);
            *part = true;
            rc = CRAFT_OK;
        }
        if (rc == CRAFT_OK) {
            *out = e->w.buf;
            *len = e->w.len;
        } else {
            free(e->w.buf); /* NULL after the writer's own failures */
            if (cur != NULL) {
                *cur = start; /* unchanged on failure */
            }
        }
    }
    free(v);
    free(e);
    return rc;
}
