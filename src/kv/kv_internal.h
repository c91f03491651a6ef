/* craftkv internals shared by kv_sm.c (apply), kv_read.c (reads) and kv_snap.c
 * (snapshots): the stored layout of docs/design/kv.md, section "Storage". */
#ifndef CRAFT_KV_INTERNAL_H
#define CRAFT_KV_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/bytes.h"
#include "kv/kv_sm.h"

/* Stored format version, in META "format". Version 1 kept one saved result per session
 * (u64 seq | u64 last_ms | result, empty before the first); craft_kv_sm_open converts such a
 * store to version 2 (the window below) in one write transaction. */
#define KV_FORMAT 3u
#define KV_FORMAT_V2                                                                               \
    2u /* before the data types: read as it is (a format 2 store holds no                          \
        * collection), written back as 3 so that an older binary refuses it */
#define KV_FORMAT_V1 1u

#define KV_SESSION_IDLE_MS_DEFAULT (3600u * 1000u)

/* A stored key: u64be hash(key) | key. */
#define KV_SKEY_MAX (8u + CRAFT_KV_KEY_BYTES_MAX)
/* An expiry index key: u64be expire_at | stored key. */
#define KV_XKEY_MAX (8u + KV_SKEY_MAX)
/* A DATA value: u64 expire_at (0: none) | value. */
#define KV_VAL_HEADER 8u
/* A saved result: u8 type | (INT: u64) | (BULK, ERR: u32 len | bytes). */
#define KV_RESULT_ENC_MAX (1u + 4u + CRAFT_KV_VALUE_BYTES_MAX)
/* A session record (docs/design/kv.md, "Sessions"):
 *   u64 last | u64 last_ms | entries, each  u64 seq | u32 rlen | saved result (rlen bytes)
 * last is the highest seq run (0: none yet; KV_SESSION_ENDED: closed, no entry). The entries are the window of saved results:
 * seqs strictly increasing, the newest is last's (no entry iff last == 0), at most
 * CRAFT_KV_SESSION_RESULTS_MAX, and their rlen add up to at most
 * CRAFT_KV_SESSION_RESULT_BYTES_MAX unless only one is left (the newest is always kept).
 * So a record is canonical: its content decides its bytes. */
#define KV_SESSION_HEADER       16u
/* A session's last seq once it was closed (SESSION_CLOSE): the record stays, with no
 * window, until it idles out, so that a copy of one of its commands still on its way (a
 * forwarded write retried to a new leader, an entry of an old leader's log) finds it closed
 * and never runs again in a session opened anew (kv.md, "Sessions"). */
#define KV_SESSION_ENDED        UINT64_MAX
#define KV_SESSION_ENTRY_HEADER 12u
#define KV_SESSION_BYTES_MAX    (KV_SESSION_HEADER + KV_SESSION_ENTRY_HEADER + KV_RESULT_ENC_MAX)
_Static_assert(CRAFT_KV_SESSION_RESULTS_MAX * KV_SESSION_ENTRY_HEADER +
                       CRAFT_KV_SESSION_RESULT_BYTES_MAX <=
                   KV_SESSION_ENTRY_HEADER + KV_RESULT_ENC_MAX,
               "a full window is no larger than one largest result");

_Static_assert(KV_XKEY_MAX <= CRAFT_KV_STORE_KEY_BYTES_MAX, "stored keys fit the store");

struct craft_shard_view;

struct craft_kv_sm {
    struct craft_kv_store *store;
    uint64_t session_idle_ms;
    /* A shard group's (kv_sm.h, "Shard groups"): its gid and its view as of the last commit
     * (NULL, gid 0: not sharded). */
    uint64_t shard_gid;
    struct craft_shard_view *view;
    bool view_stored; /* the store holds it (written with the first batch applied) */
    uint32_t batch_sessions_max; /* 1..SESS_SLOTS_MAX (kv_sm.c) */
    /* As of the last commit; the state machine thread only. */
    uint64_t applied, now, n_keys, coll_next;
    /* Lower bounds of the earliest time in the expiry and idle indexes, so that the sweep
     * every command runs reads them only when something may be due (kv_sm.c, sweep):
     * 0 unknown, UINT64_MAX empty. In memory only; reset whenever the tables are replaced. */
    uint64_t expires_min, idle_min;
};

static inline void kv_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (56 - 8 * i));
    }
}

static inline uint64_t kv_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* The key-space order for SCAN. Part of the stored and snapshot format: never change it
 * without a format version. FNV-1a 64, then a 64-bit mixer (splitmix64's finalizer). */
static inline uint64_t kv_key_hash(const uint8_t *key, size_t klen)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < klen; i++) {
        h = (h ^ key[i]) * 0x100000001b3u;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    return h ^ (h >> 33);
}

/* Writes the stored key of key into out (KV_SKEY_MAX bytes); returns its length. */
static inline size_t kv_skey(const uint8_t *key, size_t klen, uint8_t *out)
{
    kv_put_be64(out, kv_key_hash(key, klen));
    if (klen > 0) {
        memcpy(out + 8, key, klen);
    }
    return 8 + klen;
}

/* Stored-key order, the store's (kv_store.h): memcmp over the shorter, then the shorter
 * first. */
static inline int kv_skey_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;
    return c != 0 ? c : (alen < blen ? -1 : (alen > blen ? 1 : 0));
}

struct kv_meta {
    uint64_t format; /* as loaded: 0 (an empty store), KV_FORMAT_V1 or KV_FORMAT */
    uint64_t applied, now, n_keys;
    uint64_t coll_next; /* the next collection id (0: none given yet, the first is 1) */
};

/* ---- collections (kv.md "Data types") ----
 *
 * A hash, set, list or sorted set is a DATA entry whose expiry word has KV_COLL_BIT set (an
 * expiry is at most INT64_MAX: the bit is free) and whose value is the collection's header,
 * its elements in ELEMS under the collection's id:
 *   hash, set, zset  u64be id | u64be hash(field) | field -> the field's value (a set's
 *                    members: empty; a sorted set's: the score, 8 bytes, kv_zset.c)
 *   list             u64be id | u64be position -> the element (positions head ..
 *                    head + count - 1, contiguous)
 * and a sorted set's score index in ZINDEX: u64be id | u64be sortable(score) | member -> "".
 * Ids come from META "coll_next", never reused; ids and list positions are the store's
 * business (snapshots and hand-overs leave them out, the receiver numbers anew), so what
 * every replica shares is the elements' order: a field's hash, a list's sequence, a score.
 * A collection has at least one element: the last one removed removes its key. */
#define KV_COLL_BIT (UINT64_C(1) << 63)

enum kv_type {
    KV_TYPE_STRING = 0,
    KV_TYPE_HASH = 1,
    KV_TYPE_SET = 2,
    KV_TYPE_LIST = 3,
    KV_TYPE_ZSET = 4,
};

/* The header: u8 type | u64 id | u64 count | u64 version [| u64 head: lists]. version is
 * the log index of the collection's last change (of the install that brought it, after a
 * hand-over), so it grows with every change and a collection deleted and made again gets a
 * new one: WATCH's digest covers it and sees every change. */
#define KV_COLL_HEADER     25u
#define KV_COLL_HEADER_MAX 33u
struct kv_coll {
    uint8_t type;
    uint64_t id, count, version;
    uint64_t head; /* a list's first position */
};

/* A new list's first position: the middle of the range, room to push either way. */
#define KV_LIST_BASE (UINT64_C(1) << 63)

/* Writes c's header into out; returns its length. */
static inline size_t kv_coll_put(uint8_t out[KV_COLL_HEADER_MAX], const struct kv_coll *c)
{
    out[0] = c->type;
    kv_put_be64(out + 1, c->id);
    kv_put_be64(out + 9, c->count);
    kv_put_be64(out + 17, c->version);
    if (c->type != KV_TYPE_LIST) {
        return KV_COLL_HEADER;
    }
    kv_put_be64(out + 25, c->head);
    return KV_COLL_HEADER_MAX;
}

static inline bool kv_type_is_coll(uint8_t t)
{
    return t == KV_TYPE_HASH || t == KV_TYPE_SET || t == KV_TYPE_LIST || t == KV_TYPE_ZSET;
}

/* False for a header that breaks the rules above. */
static inline bool kv_coll_get(const uint8_t *v, size_t len, struct kv_coll *c)
{
    if (len < 1 || !kv_type_is_coll(v[0]) ||
        len != (v[0] == KV_TYPE_LIST ? KV_COLL_HEADER_MAX : KV_COLL_HEADER)) {
        return false;
    }
    c->type = v[0];
    c->id = kv_get_be64(v + 1);
    c->count = kv_get_be64(v + 9);
    c->version = kv_get_be64(v + 17);
    c->head = c->type == KV_TYPE_LIST ? kv_get_be64(v + 25) : 0;
    /* A list's positions head .. head + count - 1 do not wrap. */
    return c->id != 0 && c->count != 0 &&
           (c->type != KV_TYPE_LIST || c->head <= UINT64_MAX - c->count + 1);
}

/* A list element's key: u64be id | u64be position. */
#define KV_LKEY 16u
static inline void kv_lkey(uint64_t id, uint64_t pos, uint8_t out[KV_LKEY])
{
    kv_put_be64(out, id);
    kv_put_be64(out + 8, pos);
}

/* An element's key: u64be id | u64be hash(field) | field. */
#define KV_EKEY_MAX (16u + CRAFT_KV_FIELD_BYTES_MAX)
_Static_assert(KV_EKEY_MAX <= CRAFT_KV_STORE_KEY_BYTES_MAX, "element keys fit the store");

static inline size_t kv_ekey(uint64_t id, const uint8_t *f, size_t flen, uint8_t *out)
{
    kv_put_be64(out, id);
    kv_put_be64(out + 8, kv_key_hash(f, flen));
    if (flen > 0) {
        memcpy(out + 16, f, flen);
    }
    return 16 + flen;
}

/* A sorted set's score: stored as the double's 8 bytes (little-endian bits), indexed in
 * ZINDEX by a u64 whose unsigned order is the scores' order (-0 taken as 0; NaN is never
 * stored). */
static inline double kv_score_get(const uint8_t *v)
{
    uint64_t b = 0;
    for (int i = 7; i >= 0; i--) {
        b = (b << 8) | v[i];
    }
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static inline void kv_score_put(uint8_t out[8], double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(b >> (8 * i));
    }
}

static inline uint64_t kv_score_sortable(double d)
{
    if (d == 0) {
        d = 0.0; /* -0 and 0 are one score */
    }
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return (b >> 63) != 0 ? ~b : b ^ KV_COLL_BIT;
}

static inline double kv_score_of_sortable(uint64_t s)
{
    uint64_t b = (s >> 63) != 0 ? s ^ KV_COLL_BIT : ~s;
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

/* A ZINDEX key: u64be id | u64be sortable score | member. */
#define KV_ZKEY_MAX (16u + CRAFT_KV_FIELD_BYTES_MAX)
static inline size_t kv_zkey(uint64_t id, double score, const uint8_t *m, size_t mlen, uint8_t *out)
{
    kv_put_be64(out, id);
    kv_put_be64(out + 8, kv_score_sortable(score));
    if (mlen > 0) {
        memcpy(out + 16, m, mlen);
    }
    return 16 + mlen;
}

/* ---- the key space: one store transaction's keys (kv_keys.c) ----
 *
 * Shared by apply (kv_sm.c, kv_coll.c) and reads (kv_read.c, kv_coll.c): a write space
 * removes the expired keys it meets and keeps the counts in m; a read space only skips
 * them. */
struct kv_space {
    const struct craft_kv_store_ops *o;
    struct craft_kv_txn *t;
    struct kv_meta *m; /* the running meta values (a read's: as loaded) */
    bool write;
    uint64_t index;        /* write: the log index of the command being applied */
    uint64_t *expires_min; /* write: the expiry index's lower bound (struct craft_kv_sm) */
    uint8_t *buf;          /* write: scratch for a stored value, grown on demand */
    size_t cap;
};

/* A key's live entry. */
struct kv_live {
    bool found;
    uint64_t expire_at;  /* 0: none */
    uint8_t type;        /* enum kv_type */
    struct kv_coll coll; /* type != KV_TYPE_STRING */
    const uint8_t *val;  /* the string, or the collection's header; borrowed until the
                          * next write */
    size_t vlen;
};

struct kv_keyed {
    uint8_t sk[KV_SKEY_MAX];
    size_t sklen;
    struct kv_live old;
};

/* TYPE's answer: "none", "string", "hash", "set". */
const char *kv_type_name(const struct kv_live *v);

/* WATCH's digest of a key's state (craft_kv_watch_digest): a string's value, or a
 * collection's type, count and version (not its id, which differs between replicas). The
 * same on every replica, and for a read (the server's WATCH) as for apply. */
uint64_t kv_watch_digest(const struct kv_live *v);

/* Grows *buf (capacity *cap) to hold need bytes, keeping its contents. CRAFT_ENOMEM. */
int kv_reserve(uint8_t **buf, size_t *cap, size_t need);
/* Parses a DATA value: false if it is damaged. */
bool kv_live_parse(const uint8_t *v, size_t vlen, struct kv_live *out);
/* The live entry of a stored key (an expired one is absent, and removed in a write space).
 * Errors: the store's, CRAFT_ECORRUPT. */
int kv_key_lookup(struct kv_space *ks, const uint8_t *sk, size_t sklen, struct kv_live *out);
/* kv_key_lookup of a user key (any length: one over the limit is absent). */
int kv_key_find(struct kv_space *ks, struct craft_kv_bytes key, struct kv_keyed *k);
/* Removes a present key (its elements too). */
int kv_key_remove(struct kv_space *ks, const uint8_t *sk, size_t sklen, const struct kv_live *v);
/* Removes a present key's entry and expiry only: a collection's elements stay, for a
 * RENAME that stores the same header under another key. */
int kv_key_drop_entry(struct kv_space *ks, const uint8_t *sk, size_t sklen,
                      const struct kv_live *v);
/* Removes the stored key sk whatever its expiry (CRAFT_ECORRUPT if it is not there). */
int kv_key_drop(struct kv_space *ks, const uint8_t *sk, size_t sklen);
/* Stores the string p1 | p2 with expiry at (0: none) over old, the key's lookup (a
 * collection there is removed first). An expiry already past deletes the key instead, as
 * Redis does. p1 and p2 may point into the store. */
int kv_key_store(struct kv_space *ks, const uint8_t *sk, size_t sklen, const struct kv_live *old,
                 const uint8_t *p1, size_t l1, const uint8_t *p2, size_t l2, uint64_t at);
/* Stores a collection's header with expiry at over old (absent, or the same collection). */
int kv_coll_store(struct kv_space *ks, const uint8_t *sk, size_t sklen, const struct kv_live *old,
                  const struct kv_coll *c, uint64_t at);
/* A new collection's id (META coll_next). */
uint64_t kv_coll_new_id(struct kv_space *ks);

/* An element as snapshots and hand-overs carry it (field, value): within its limits for
 * the type (a list's field empty, a set's value empty, a sorted set's value a score that
 * is not NaN). */
bool kv_elem_valid(uint8_t type, struct craft_kv_bytes f, struct craft_kv_bytes v);
/* Stores element i of c as received (a list's at position c->head + i; a sorted set's
 * score indexed too). Apply's own changes go through kv_coll.c. */
int kv_elem_install(struct kv_space *ks, const struct kv_coll *c, uint64_t i,
                    struct craft_kv_bytes f, struct craft_kv_bytes v);

/* Runs a collection op (craft_kv_op_is_coll; kv_coll.c) in ks: a write space for the
 * writes, any space for the reads. Its answer in *res (an array over budget bytes encoded:
 * CRAFT_KV_ERR_REPLY_LARGE instead; a write runs whatever its answer's size), or a store
 * error with *res NULL. */
int kv_coll_exec(struct kv_space *ks, const struct craft_kv_cmd *c, size_t budget,
                 struct craft_kv_result **res);

/* The meta entries. */
#define KV_META_FORMAT  "format"
#define KV_META_APPLIED "applied"
#define KV_META_NOW     "now"
#define KV_META_NKEYS   "n_keys"
#define KV_META_COLL    "coll_next"

/* The member table lives in META (so no store change and no user command reaches it),
 * keyed "member/" | u64be id (ordered by id, after "format" and "applied", before
 * "n_keys"); value u32 plen | peer address | u32 clen | client address. */
#define KV_MEMBER_PREFIX     "member/"
#define KV_MEMBER_PREFIX_LEN 7u
#define KV_MEMBER_KEY_BYTES  (KV_MEMBER_PREFIX_LEN + 8u)
#define KV_MEMBER_VAL_MAX    (8u + 2u * CRAFT_KV_ADDR_BYTES_MAX)

static inline void kv_member_key(uint64_t id, uint8_t out[KV_MEMBER_KEY_BYTES])
{
    memcpy(out, KV_MEMBER_PREFIX, KV_MEMBER_PREFIX_LEN);
    kv_put_be64(out + KV_MEMBER_PREFIX_LEN, id);
}

/* Encodes a member's stored value into out (KV_MEMBER_VAL_MAX bytes); returns its length.
 * The addresses must pass craft_kv_addr_ok. */
size_t kv_member_value(const uint8_t *peer, size_t plen, const uint8_t *client, size_t clen,
                       uint8_t *out);
/* Decodes a META entry: true, with *m filled, if it is a valid member record; false if the
 * key is not a member key (*is_member false) or the record is bad (*is_member true). */
bool kv_member_parse(const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen,
                     struct craft_kv_member *m, bool *is_member);

/* A shard group's view (shard/view.h) lives in META too: "shard" holds its encoding,
 * "shard/slots" the slot states as they are (one byte per slot), so that a read checks a
 * key's slot with one lookup and no decoding. Both are written together. */
#define KV_META_SHARD       "shard"
#define KV_META_SHARD_SLOTS "shard/slots"

/* Loads a shard group's view from t into *v: the stored one (*stored true), or for an
 * empty store (applied 0) the group's initial view. Errors: CRAFT_EINVAL (another group's
 * store; a store with state but no view, a plain state machine's, opened as a group's; or a
 * group's store opened as a plain one: gid 0 and a view present), CRAFT_ECORRUPT, the
 * store's. v and stored may be NULL for gid 0. */
int kv_view_load(struct craft_kv_store *s, struct craft_kv_txn *t, uint64_t gid,
                 uint64_t applied, struct craft_shard_view *v, bool *stored);
/* Writes v's two META entries into t. */
int kv_view_store(struct craft_kv_store *s, struct craft_kv_txn *t,
                  const struct craft_shard_view *v);

/* Reads the meta entries of t (all zero in an empty store). A version 1 store loads (with
 * format KV_FORMAT_V1): only craft_kv_sm_open sees one, and converts it. kv_meta_store
 * always writes KV_FORMAT. Errors: CRAFT_EVERSION, CRAFT_ECORRUPT, the store's. */
int kv_meta_load(struct craft_kv_store *s, struct craft_kv_txn *t, struct kv_meta *m);
int kv_meta_store(struct craft_kv_store *s, struct craft_kv_txn *t, const struct kv_meta *m);

/* TTL and PTTL, as Redis answers them, for reads (kv_read.c) and a MULTI's reads
 * (kv_sm.c) alike: at is a live key's expiry (0: none; else at > now). */
static inline int64_t kv_pttl(uint64_t at, uint64_t now)
{
    if (at == 0) {
        return -1;
    }
    uint64_t left = at - now;
    return left > INT64_MAX ? INT64_MAX : (int64_t)left;
}

/* Seconds from a PTTL answer: -1 and -2 stay, the rest rounds to the nearest second. */
static inline int64_t kv_ttl_of_pttl(int64_t ms)
{
    return ms < 0 ? ms : (ms > INT64_MAX - 500 ? INT64_MAX / 1000 : (ms + 500) / 1000);
}

/* Results. */
struct craft_kv_result *kv_result_new(uint8_t type, int64_t integer, const void *data, size_t len);
/* The length of r's encoding (kv_sm.c: may pass KV_RESULT_ENC_MAX for a MULTI's array). */
size_t kv_result_enc_len(const struct craft_kv_result *r);
/* Encodes r into out (kv_result_enc_len(r) bytes); returns the length. */
size_t kv_result_encode(const struct craft_kv_result *r, uint8_t *out);
/* Checks an encoding; true if it is exactly one valid result. */
bool kv_result_valid(const uint8_t *p, size_t len);
/* Decodes a valid encoding into a new result (NULL: out of memory). */
struct craft_kv_result *kv_result_decode(const uint8_t *p, size_t len);

/* Sessions. kv_session_valid checks a whole record v[0..vlen) against the rules above
 * (not last_ms, which the caller compares with its logical time). kv_session_result finds
 * seq's saved result in a valid record: true with res[0..rlen) inside v, false if the
 * window does not hold it. */
bool kv_session_valid(const uint8_t *v, size_t vlen);
bool kv_session_result(const uint8_t *v, size_t vlen, uint64_t seq, const uint8_t **res,
                       size_t *rlen);

#endif
