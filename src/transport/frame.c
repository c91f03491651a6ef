#include "transport/frame.h"

#include "base/assert.h"
#include "base/err.h"

_Static_assert(CRAFT_HANDSHAKE_BYTES == 4 + 2 + 2 + 8 + 8 + 8, "handshake layout");

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

int craft_frame_decode(const uint8_t *buf, size_t len, uint32_t payload_bytes_max,
                       struct craft_frame *out)
{
    out->payload = NULL;
    out->payload_len = 0;
    out->consumed = 0;
    if (len < CRAFT_FRAME_HEADER_BYTES) {
        return CRAFT_OK;
    }
    uint32_t n = get_u32(buf);
    /* Checked before waiting for the payload, so a hostile length never makes us buffer. */
    if (n > payload_bytes_max) {
        return CRAFT_ETOOBIG;
    }
    if (n == 0) {
        return CRAFT_EMALFORMED;
    }
    if (len - CRAFT_FRAME_HEADER_BYTES < n) {
        return CRAFT_OK;
    }
    out->payload = buf + CRAFT_FRAME_HEADER_BYTES;
    out->payload_len = n;
    out->consumed = CRAFT_FRAME_HEADER_BYTES + (size_t)n;
    CRAFT_ASSERT(out->consumed <= len);
    return CRAFT_OK;
}

void craft_frame_header_encode(uint8_t hdr[CRAFT_FRAME_HEADER_BYTES], uint32_t payload_len)
{
    put_u32(hdr, payload_len);
}

int craft_message_frame_split(const uint8_t *payload, size_t len, uint64_t *group,
                              const uint8_t **msg, size_t *msg_len)
{
    if (len <= CRAFT_GROUP_ID_BYTES) {
        return CRAFT_EMALFORMED;
    }
    *group = get_u64(payload);
    *msg = payload + CRAFT_GROUP_ID_BYTES;
    *msg_len = len - CRAFT_GROUP_ID_BYTES;
    return CRAFT_OK;
}

void craft_message_header_encode(uint8_t hdr[CRAFT_MESSAGE_HEADER_BYTES], uint64_t group,
                                 uint32_t msg_len)
{
    craft_frame_header_encode(hdr, CRAFT_GROUP_ID_BYTES + msg_len);
    put_u64(hdr + CRAFT_FRAME_HEADER_BYTES, group);
}

size_t craft_handshake_encode(const struct craft_handshake *hs,
                              uint8_t out[CRAFT_FRAME_HEADER_BYTES + CRAFT_HANDSHAKE_BYTES])
{
    uint8_t *p = out + CRAFT_FRAME_HEADER_BYTES;
    craft_frame_header_encode(out, CRAFT_HANDSHAKE_BYTES);
    put_u32(p, CRAFT_HANDSHAKE_MAGIC);
    p[4] = (uint8_t)CRAFT_HANDSHAKE_VERSION;
    p[5] = (uint8_t)(CRAFT_HANDSHAKE_VERSION >> 8);
    p[6] = 0;
    p[7] = 0;
    put_u64(p + 8, hs->cluster_id);
    put_u64(p + 16, hs->from);
    put_u64(p + 24, hs->to);
    return CRAFT_FRAME_HEADER_BYTES + CRAFT_HANDSHAKE_BYTES;
}

int craft_handshake_decode(const uint8_t *payload, size_t len, struct craft_handshake *hs)
{
    if (len != CRAFT_HANDSHAKE_BYTES || get_u32(payload) != CRAFT_HANDSHAKE_MAGIC) {
        return CRAFT_EMALFORMED;
    }
    uint32_t version = (uint32_t)payload[4] | (uint32_t)payload[5] << 8;
    if (version != CRAFT_HANDSHAKE_VERSION) {
        return CRAFT_EVERSION;
    }
    if (payload[6] != 0 || payload[7] != 0) {
        return CRAFT_EMALFORMED;
    }
    hs->cluster_id = get_u64(payload + 8);
    hs->from = get_u64(payload + 16);
    hs->to = get_u64(payload + 24);
    return CRAFT_OK;
}
