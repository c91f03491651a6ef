/* craftkv shard groups: the pure parts of a migration (design: docs/design/sharding.md,
 * "Shard groups"): the payload a group hands over with slots (SHARD_INSTALL's blob), and the
 * merge of a session record received with one already held, and the view's records in the
 * store (kv_internal.h). Any thread; the store functions in the caller's transaction.
 *
 * Payload, canonical (one state, one byte string), little-endian:
 *   u8 version (1, or 2 for a part) | slot set (CRAFT_SLOT_SET_BYTES) |
 *   u32 n_keys   | per key, in stored-key order (kv_internal.h: hash, then key):
 *                  u64 expire_at (0: none) | u32 klen | u32 vlen | key | value
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
    uint64_t expire_at;
    const uint8_t *key, *val;
    uint32_t klen, vlen;
};
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
};
int kv_payload_begin(struct kv_payload_writer *w, const struct craft_slot_set *slots, size_t max);
int kv_payload_add_key(struct kv_payload_writer *w, uint64_t expire_at, const uint8_t *key,
                       size_t klen, const uint8_t *val, size_t vlen);
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
