/* The TCP transport's wire format, as pure functions over buffers (fuzzed by
 * tests/fuzz/fuzz_frame_decode.c).
 *
 * A connection is a sequence of frames: u32 little-endian payload length, then the payload.
 * The first frame on every connection is the handshake (CRAFT_HANDSHAKE_BYTES bytes):
 *   u32 magic "CRFT" | u16 version | u16 zero | u64 cluster id | u64 from id | u64 to id
 * (all little-endian). Every later frame carries one message of one Raft group:
 *   u64 group id | the opaque message (at least one byte)
 * so one connection per pair of processes carries every group they share (multiraft.md).
 * Version 1 frames had no group id; a version 1 peer is refused at the handshake. */
#ifndef CRAFT_TRANSPORT_FRAME_H
#define CRAFT_TRANSPORT_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define CRAFT_FRAME_HEADER_BYTES 4u
#define CRAFT_HANDSHAKE_MAGIC 0x54465243u /* "CRFT" read as a little-endian u32 */
#define CRAFT_HANDSHAKE_VERSION 2u
#define CRAFT_HANDSHAKE_BYTES 32u

struct craft_handshake {
    uint64_t cluster_id;
    uint64_t from;
    uint64_t to;
};

/* Header of a message frame: the frame header, then the group id. */
#define CRAFT_GROUP_ID_BYTES 8u
#define CRAFT_MESSAGE_HEADER_BYTES (CRAFT_FRAME_HEADER_BYTES + CRAFT_GROUP_ID_BYTES)

struct craft_frame {
    const uint8_t *payload; /* points into the decoded buffer */
    uint32_t payload_len;
    size_t consumed; /* header + payload; 0: the buffer holds no complete frame yet */
};

/* Looks for one frame at the start of buf[0..len). Returns CRAFT_OK and sets *out (with
 * out->consumed == 0 when more bytes are needed), CRAFT_ETOOBIG if the header announces a
 * payload above payload_bytes_max, CRAFT_EMALFORMED for an empty payload (never sent).
 * Reads nothing outside buf[0..len). */
int craft_frame_decode(const uint8_t *buf, size_t len, uint32_t payload_bytes_max,
                       struct craft_frame *out);

/* Writes the 4-byte header for a payload of payload_len bytes into hdr. */
void craft_frame_header_encode(uint8_t hdr[CRAFT_FRAME_HEADER_BYTES], uint32_t payload_len);

/* Splits a message frame's payload into its group id and message. Errors:
 * CRAFT_EMALFORMED (no message byte after the group id). Reads nothing outside
 * payload[0..len); *msg points into payload. */
int craft_message_frame_split(const uint8_t *payload, size_t len, uint64_t *group,
                              const uint8_t **msg, size_t *msg_len);

/* Writes the header of a message frame carrying msg_len message bytes of group: the frame
 * header (payload CRAFT_GROUP_ID_BYTES + msg_len) and the group id. */
void craft_message_header_encode(uint8_t hdr[CRAFT_MESSAGE_HEADER_BYTES], uint64_t group,
                                 uint32_t msg_len);

/* Writes a complete handshake frame (header + payload) into out; returns its size,
 * CRAFT_FRAME_HEADER_BYTES + CRAFT_HANDSHAKE_BYTES. */
size_t craft_handshake_encode(const struct craft_handshake *hs,
                              uint8_t out[CRAFT_FRAME_HEADER_BYTES + CRAFT_HANDSHAKE_BYTES]);

/* Decodes a handshake payload (the first frame's payload). Errors: CRAFT_EMALFORMED (wrong
 * size, magic or reserved bits), CRAFT_EVERSION (an unknown version). */
int craft_handshake_decode(const uint8_t *payload, size_t len, struct craft_handshake *hs);

#endif
