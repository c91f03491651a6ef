/* Wire encoding of core messages and configurations.
 *
 * Layout (little-endian, version 1): a fixed header (version byte, type byte, flags byte,
 * then the scalar fields of struct craft_msg that the type uses), then type-specific
 * variable parts (entries; snapshot metadata and chunk). Every length is checked against the
 * buffer and against the limits below before it is used, so any byte string either decodes
 * into a message that satisfies the invariants documented here or returns an error.
 *
 * Exact layout (integers fixed-width little-endian; docs/design/codec.md says why):
 *   u8 version, u8 type, u8 flags (bit 0 reject, bit 1 last, bit 2 transfer; others 0),
 *   u64 from (non-zero), u64 to (non-zero), u64 term,
 *   then the type's u64 scalars, present per type, always in this order:
 *     log_index, log_term, commit, index, reject_hint, reject_term, ctx, offset
 *       APPEND           log_index log_term commit                      + entries
 *       APPEND_RESP      commit index reject_hint reject_term  [reject]
 *       HEARTBEAT        commit ctx
 *       HEARTBEAT_RESP   ctx                                   [reject]
 *       VOTE, PREVOTE    log_index log_term                    [transfer]
 *       VOTE_RESP, PREVOTE_RESP                                [reject]
 *       SNAPSHOT         offset                                [last]   + snapshot
 *       SNAPSHOT_RESP    index offset                          [reject] + snap id
 *       TIMEOUT_NOW      (none)
 *       READ_INDEX       ctx
 *       READ_INDEX_RESP  index ctx                             [reject]
 *   entries:  u32 n_entries, then per entry u64 term, u8 type, u32 len, len bytes
 *             (index not sent: entry i has index log_index + 1 + i)
 *   snapshot: u64 snap.index, u64 snap.term, conf, u32 chunk_len, chunk_len bytes
 *   snap id:  u64 snap.index, u64 snap.term (the snapshot answered; snap.conf stays empty)
 *   conf:     u8 n_voters, u8 n_voters_outgoing, u8 n_learners, u8 n_learners_next, then the
 *             u64 ids list by list
 * Fields and flags a type does not list must be zero/false on encode (asserted) and are
 * zero/false after decode. NOOP entries have no payload; a CONF entry's payload is a valid
 * conf encoding. The encoding is canonical: a successful decode re-encodes to its input.
 *
 * The framing (length prefix on a stream) belongs to the transport; this layer encodes
 * exactly one message into exactly one buffer. */
#ifndef CRAFT_CODEC_MSG_CODEC_H
#define CRAFT_CODEC_MSG_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define CRAFT_CODEC_VERSION 1
#define CRAFT_MSG_ENTRIES_MAX (1u << 20)        /* entries in one message */
#define CRAFT_MSG_BYTES_MAX (256u * 1024 * 1024) /* one encoded message */

/* Owns the scratch array that decoded entries live in, reused across decodes. */
struct craft_msg_decoder {
    struct craft_entry *entries;
    uint32_t entries_cap;
};

/* Starts a decoder with no scratch array (allocation is deferred to the first decode with
 * entries). Cannot fail. */
void craft_msg_decoder_init(struct craft_msg_decoder *d);
/* Frees the scratch array and resets d to its initial state (freeing twice is harmless).
 * Messages decoded with d are invalid afterwards. */
void craft_msg_decoder_free(struct craft_msg_decoder *d);

/* Exact number of bytes craft_msg_encode writes for m. Asserts m->type is known. */
size_t craft_msg_encoded_size(const struct craft_msg *m);

/* Encodes m into buf, which must hold craft_msg_encoded_size(m) bytes. Returns the number of
 * bytes written. m and what it points to are only read. Asserts that m is well-formed:
 * known type, from and to non-zero, only the type's fields and flags set, entries contiguous
 * from log_index + 1 with known types and valid payloads, at most CRAFT_MSG_ENTRIES_MAX of
 * them, a valid snapshot conf, total size at most CRAFT_MSG_BYTES_MAX. */
size_t craft_msg_encode(const struct craft_msg *m, uint8_t *buf);

/* Decodes exactly len bytes. On success *out refers into buf (entry data, chunk) and into
 * d's scratch array: both must outlive the use of *out, which is valid until the next decode
 * with d. Errors: CRAFT_EMALFORMED (truncated, trailing bytes, bad type, bad lengths, entry
 * indexes not contiguous from log_index + 1, bad configuration), CRAFT_EVERSION,
 * CRAFT_ETOOBIG (len > CRAFT_MSG_BYTES_MAX or more than CRAFT_MSG_ENTRIES_MAX entries),
 * CRAFT_ENOMEM. On error *out is unspecified. */
int craft_msg_decode(struct craft_msg_decoder *d, const uint8_t *buf, size_t len,
                     struct craft_msg *out);

/* Returns the message type of an encoded message, or 0 if buf is too short or the version
 * or type is unknown. Does not validate the rest. */
int craft_msg_peek_type(const uint8_t *buf, size_t len);

/* Configurations are encoded by the core (craft_conf_encode in core.h): they are the payload
 * of CONF entries. */

#endif
