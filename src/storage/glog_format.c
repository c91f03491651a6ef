/* The group log's records and segment headers, little-endian byte by byte, checksummed
 * with zlib's crc32 (layout: docs/design/storage.md, "The group log"). */
#include <string.h>
#include <zlib.h>

#include "base/assert.h"
#include "base/bytes.h"
#include "storage/glog_internal.h"

/* Record header: magic u32 | version u8 | kind u8 | entry type u8 | reserved u8 | len u32 |
 * crc u32 | group u64 | term u64 | index u64. The crc covers the header without its own
 * field, then the payload. */
_Static_assert(CRAFT_GLOG_RECORD_HEADER_BYTES == 40, "record header layout");
_Static_assert(CRAFT_GLOG_SEGMENT_HEADER_BYTES == 32, "segment header layout");

static uint32_t rec_crc(const uint8_t *hdr, const uint8_t *payload, uint32_t len)
{
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, hdr, 12);
    c = crc32(c, hdr + 16, CRAFT_GLOG_RECORD_HEADER_BYTES - 16);
    if (len > 0) {
        c = crc32(c, payload, len);
    }
    return (uint32_t)c;
}

uint64_t glog_rec_size(uint32_t len)
{
    return ((uint64_t)CRAFT_GLOG_RECORD_HEADER_BYTES + len + 7) & ~(uint64_t)7;
}

void glog_rec_encode(uint8_t *dst, uint8_t kind, uint8_t entry_type, uint64_t group,
                     uint64_t term, uint64_t index, const uint8_t *payload, uint32_t len)
{
    CRAFT_ASSERT(kind >= GLOG_REC_ENTRY && kind <= GLOG_REC_DROP);
    CRAFT_ASSERT(glog_rec_is_entry(kind) ? entry_type != 0 : entry_type == 0 && len == 0);
    uint64_t total = glog_rec_size(len);
    craft_put_u32(dst, CRAFT_GLOG_REC_MAGIC);
    dst[4] = CRAFT_GLOG_VERSION;
    dst[5] = kind;
    dst[6] = entry_type;
    dst[7] = 0;
    craft_put_u32(dst + 8, len);
    craft_put_u64(dst + 16, group);
    craft_put_u64(dst + 24, term);
    craft_put_u64(dst + 32, index);
    if (len > 0) {
        memcpy(dst + CRAFT_GLOG_RECORD_HEADER_BYTES, payload, len);
    }
    memset(dst + CRAFT_GLOG_RECORD_HEADER_BYTES + len, 0,
           total - CRAFT_GLOG_RECORD_HEADER_BYTES - len);
    craft_put_u32(dst + 12, rec_crc(dst, dst + CRAFT_GLOG_RECORD_HEADER_BYTES, len));
}

bool glog_rec_decode(const uint8_t *src, uint64_t avail, struct glog_rec *r)
{
    if (avail < CRAFT_GLOG_RECORD_HEADER_BYTES || craft_get_u32(src) != CRAFT_GLOG_REC_MAGIC ||
        src[4] != CRAFT_GLOG_VERSION || src[7] != 0) {
        return false;
    }
    uint8_t kind = src[5];
    uint8_t type = src[6];
    uint32_t len = craft_get_u32(src + 8);
    if (kind < GLOG_REC_ENTRY || kind > GLOG_REC_DROP ||
        (glog_rec_is_entry(kind) ? type == 0 : type != 0 || len != 0)) {
        return false;
    }
    uint64_t total = glog_rec_size(len);
    if (total > avail) {
        return false;
    }
    for (uint64_t i = CRAFT_GLOG_RECORD_HEADER_BYTES + len; i < total; i++) {
        if (src[i] != 0) {
            return false;
        }
    }
    if (craft_get_u32(src + 12) != rec_crc(src, src + CRAFT_GLOG_RECORD_HEADER_BYTES, len)) {
        return false;
    }
    r->kind = kind;
    r->entry_type = type;
    r->len = len;
    r->group = craft_get_u64(src + 16);
    r->term = craft_get_u64(src + 24);
    r->index = craft_get_u64(src + 32);
    r->payload = src + CRAFT_GLOG_RECORD_HEADER_BYTES;
    r->total = total;
    return true;
}

/* Segment header: magic u32 | version u32 | seq u64 | zero u64 | crc32 of the previous 24
 * bytes u32 | zero u32. */
void glog_seg_header_encode(uint8_t *dst, uint64_t seq)
{
    memset(dst, 0, CRAFT_GLOG_SEGMENT_HEADER_BYTES);
    craft_put_u32(dst, CRAFT_GLOG_SEG_MAGIC);
    craft_put_u32(dst + 4, CRAFT_GLOG_VERSION);
    craft_put_u64(dst + 8, seq);
    craft_put_u32(dst + 24, (uint32_t)crc32(crc32(0L, Z_NULL, 0), dst, 24));
}

bool glog_seg_header_decode(const uint8_t *src, uint64_t *seq)
{
    if (craft_get_u32(src) != CRAFT_GLOG_SEG_MAGIC || craft_get_u32(src + 4) != CRAFT_GLOG_VERSION ||
        craft_get_u64(src + 16) != 0 || craft_get_u32(src + 28) != 0 ||
        craft_get_u32(src + 24) != (uint32_t)crc32(crc32(0L, Z_NULL, 0), src, 24)) {
        return false;
    }
    *seq = craft_get_u64(src + 8);
    return true;
}
