/* craftkv shard groups: the pure parts of a migration (design: docs/design/sharding.md,
 * "Shard groups"): the payload a group hands over with slots (SHARD_INSTALL's blob), and the
 * merge of a session record received with one already held, and the view's records in the
 * store (kv_internal.h). Any thread; the store functions in the caller's transaction.
 *
 * Payload, canonical (one state, one byte string), little-endian:
 *   u8 version (1, or 2 for a part) | slot set (CRAFT_SLOT_SET_BYTES) |
 *   u32 n_keys   | per key, in stored-key order (kv_internal.h: hash, then key):
 *                  u64 expire_at (0: none) | u32 klen | u32 vlen | key | value
 *                  (a hash or a set: expire_at | KV_COLL_BIT, and the value is
 *                   u8 type | u64 count | u64 version | count elements, in element order,
 *                   each u32 flen | u32 elen | field | element value; up to the payload's
 *                   size, so a collection larger than one part cannot move yet)
 *   u32 n_sessions | per session, ascending id: u64 id | u32 rlen | record (kv_internal.h)
 * Keys are live ones of the slots in the set, sessions every live session of the sender
 * (not only its clients of those slots: a client's seq may have run at the sender on any
 * slot, and the receiver must answer its retry, whichever slot it names).
 * A hand-over too large for one payload goes in parts: version 2 payloads of at least one
 * key and no session, each continuing in stored-key order where the one before stopped,
 * then a version 1 payload with the keys left (maybe none) and the sessions. */
#ifndef CRAFT_KV_SHARD_H
#define CRAFT_KV_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/kv_internal.h"
#include "shard/view.h"

#define KV_PAYLOAD_VERSION      1u
#define KV_PAYLOAD_VERSION_PART 2u
#define KV_PAYLOAD_HEADER  (1u + CRAFT_SLOT_SET_BYTES)

/* A payload, checked whole by kv_payload_open, walked by the _next calls. */
struct kv_payload {
    bool part; /* version 2: keys only, more follow */
    struct craft_slot_set slots;
    uint32_t n_keys, n_sessions;
    const uint8_t *keys, *sessions; /* their records, inside the input */
    size_t keys_len, sessions_len;
};

/* Checks p[0..len) completely: version, a non-empty slot set, every key's length within
 * CRAFT_KV_KEY_BYTES_MAX / CRAFT_KV_VALUE_BYTES_MAX and its slot in the set, keys strictly
 * ascending in stored-key order, session ids strictly ascending and non-zero, every record
 * valid (kv_session_valid), the counts, no trailing bytes; a part holds a key and no
 * session. CRAFT_OK with *out pointing into p, CRAFT_EVERSION, or CRAFT_ECORRUPT. */
int kv_payload_open(const uint8_t *p, size_t len, struct kv_payload *out);

struct kv_payload_key {
    uint64_t expire_at; /* without KV_COLL_BIT */
    const uint8_t *key, *val;
    uint32_t klen, vlen;
    bool coll; /* val is a collection's encoding (above), checked by kv_payload_open */
};

/* A collection's encoding: the header's type, count and version (id 0), then its elements
 * one by one (*off starts at KV_PAYLOAD_COLL_HEADER; false after the last). */
#define KV_PAYLOAD_COLL_HEADER 17u
void kv_payload_coll_header(const uint8_t *val, struct kv_coll *c);
bool kv_payload_coll_next(const uint8_t *val, size_t vlen, size_t *off, struct craft_kv_bytes *f,
                          struct craft_kv_bytes *v);
/* Checks a collection's encoding (type, count >= 1, elements in order, fields and values
 * within their limits, a set's values empty). */
bool kv_payload_coll_valid(const uint8_t *val, size_t vlen);
struct kv_payload_session {
    uint64_t id;
    const uint8_t *rec;
    uint32_t len;
};
/* Walk an opened payload: *off starts at 0; false after the last. */
bool kv_payload_next_key(const struct kv_payload *pl, size_t *off, struct kv_payload_key *k);
bool kv_payload_next_session(const struct kv_payload *pl, size_t *off,
                             struct kv_payload_session *s);

/* Builds a payload: begin with the slot set, add keys in stored-key order and sessions in id
 * order (both counted as added), end to patch the counts (or end_part, after at least one
 * key: a part of the keys added, the sessions dropped). Grows a malloc'd buffer: errors
 * CRAFT_ENOMEM (the buffer is then freed) and CRAFT_ETOOBIG (over max bytes: the item is
 * not added, and what was added stays; room for the session count is kept from the
 * start). */
struct kv_payload_writer {
    uint8_t *buf;
    size_t len, cap, max;
    size_t keys_count_at, sessions_count_at;
    uint32_t n_keys, n_sessions;
    size_t coll_at; /* a collection being added: where its record starts (0: none) */
};
int kv_payload_begin(struct kv_payload_writer *w, const struct craft_slot_set *slots, size_t max);
int kv_payload_add_key(struct kv_payload_writer *w, uint64_t expire_at, const uint8_t *key,
                       size_t klen, const uint8_t *val, size_t vlen);
/* A collection (expire_at without KV_COLL_BIT): its header, then each element with
 * kv_payload_add_elem, then kv_payload_end_coll. CRAFT_ETOOBIG as above: then the
 * collection is not added (nothing of it stays). */
int kv_payload_begin_coll(struct kv_payload_writer *w, uint64_t expire_at, const uint8_t *key,
                          size_t klen, const struct kv_coll *c);
int kv_payload_add_elem(struct kv_payload_writer *w, const uint8_t *f, size_t flen,
                        const uint8_t *v, size_t vlen);
void kv_payload_end_coll(struct kv_payload_writer *w);
/* Drops a collection begun and not ended (after an error of add_elem). */
void kv_payload_drop_coll(struct kv_payload_writer *w);
/* After the last key. */
int kv_payload_start_sessions(struct kv_payload_writer *w);
int kv_payload_add_session(struct kv_payload_writer *w, uint64_t id, const uint8_t *rec,
                           size_t len);
/* Patches the counts; the payload is buf[0..len), the caller's to free. */
void kv_payload_end(struct kv_payload_writer *w);
/* Makes the payload a part: the keys added, no session (version 2). */
void kv_payload_end_part(struct kv_payload_writer *w);

/* Merges two valid session records of one client (ours, the receiver's; theirs, from the
 * payload) into out (room for olen + tlen bytes): last is the larger, the window the union
 * of both windows by seq (ours where both hold a seq: a seq runs in one group only, so
 * both are the same result), then trimmed oldest first to the window's caps (kv_sm.h).
 * last_ms is left for the caller to stamp. Returns the length; the result is valid. */
size_t kv_session_merge(const uint8_t *ours, size_t olen, const uint8_t *theirs, size_t tlen,
                        uint8_t *out);

#endif
