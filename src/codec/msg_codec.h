/* Wire encoding of core messages and configurations.
 *
 * Layout (little-endian, version 1): a fixed header (version byte, type byte, flags byte,
 * then the scalar fields of struct craft_msg that the type uses), then type-specific
 * variable parts (entries; snapshot metadata and chunk). Every length is checked against the
 * buffer and against the limits below before it is used, so any byte string either decodes
 * into a message that satisfies the invariants documented here or returns an error.
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

void craft_msg_decoder_init(struct craft_msg_decoder *d);
void craft_msg_decoder_free(struct craft_msg_decoder *d);

/* Exact number of bytes craft_msg_encode writes for m. */
size_t craft_msg_encoded_size(const struct craft_msg *m);

/* Encodes m into buf, which must hold craft_msg_encoded_size(m) bytes. Returns the number of
 * bytes written. Asserts that m is well-formed (entry count, known type). */
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

/* Configurations (CONF entries, snapshot metadata). */
size_t craft_conf_encoded_size(const struct craft_conf *conf);
size_t craft_conf_encode(const struct craft_conf *conf, uint8_t *buf);
/* Errors: CRAFT_EMALFORMED (truncated, trailing bytes, counts above CRAFT_CONF_NODES_MAX,
 * zero or duplicate ids, a node in two lists). */
int craft_conf_decode(const uint8_t *buf, size_t len, struct craft_conf *out);

#endif
