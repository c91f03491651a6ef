/* Record and segment-header encoding. Little-endian byte by byte: no alignment or host
 * order assumptions. */
#include "base/bytes.h"
#include "storage/wal_record.h"

#include <string.h>
#include <zlib.h>

#include "base/assert.h"
#include "storage/wal.h"

/* Record header: magic u32 | version u8 | kind u8 | entry type u8 | reserved u8 | len u32 |
 * crc u32 | term u64 | index u64. The crc covers the header without its own field, then
 * the payload. */
_Static_assert(CRAFT_WAL_RECORD_HEADER_BYTES == 32, "record header layout");
_Static_assert(CRAFT_WAL_SEGMENT_HEADER_BYTES == 32, "segment header layout");

static uint32_t rec_crc(const uint8_t *hdr, const uint8_t *payload, uint32_t len)
{
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, hdr, 12);
    c = crc32(c, hdr + 16, 16);
    if (len > 0) {
        c = crc32(c, payload, len);
    }
    return (uint32_t)c;
}

uint64_t craft_wal_rec_size(uint32_t len)
{
    return ((uint64_t)CRAFT_WAL_RECORD_HEADER_BYTES + len + 7) & ~(uint64_t)7;
}

void craft_wal_rec_encode(uint8_t *dst, uint8_t kind, uint8_t entry_type, uint64_t term,
                          uint64_t index, const uint8_t *payload, uint32_t len)
{
    uint64_t total = craft_wal_rec_size(len);
    craft_put_u32(dst, CRAFT_WAL_REC_MAGIC);
    dst[4] = CRAFT_WAL_VERSION;
    dst[5] = kind;
    dst[6] = entry_type;
    dst[7] = 0;
    craft_put_u32(dst + 8, len);
    craft_put_u64(dst + 16, term);
    craft_put_u64(dst + 24, index);
    if (len > 0) {
        memcpy(dst + CRAFT_WAL_RECORD_HEADER_BYTES, payload, len);
    }
    memset(dst + CRAFT_WAL_RECORD_HEADER_BYTES + len, 0,
           total - CRAFT_WAL_RECORD_HEADER_BYTES - len);
    craft_put_u32(dst + 12, rec_crc(dst, dst + CRAFT_WAL_RECORD_HEADER_BYTES, len));
    /* That the decoder accepts what the encoder writes is the unit tests' and the fuzz
     * target's job: re-checking here computed every record's checksum twice on the hot
     * path (a tenth of the leader's CPU in the TCP benchmark). */
}

bool craft_wal_rec_decode(const uint8_t *src, uint64_t avail, struct craft_wal_rec *r)
{
    if (avail < CRAFT_WAL_RECORD_HEADER_BYTES) {
        return false;
    }
    if (craft_get_u32(src) != CRAFT_WAL_REC_MAGIC || src[4] != CRAFT_WAL_VERSION || src[7] != 0) {
        return false;
    }
    uint8_t kind = src[5];
    uint32_t len = craft_get_u32(src + 8);
    uint64_t total = craft_wal_rec_size(len);
    if (total > avail) {
        return false;
    }
    const uint8_t *payload = src + CRAFT_WAL_RECORD_HEADER_BYTES;
    for (uint64_t i = CRAFT_WAL_RECORD_HEADER_BYTES + (uint64_t)len; i < total; i++) {
        if (src[i] != 0) {
            return false;
        }
    }
    if (craft_get_u32(src + 12) != rec_crc(src, payload, len)) {
        return false;
    }
    r->kind = kind;
    r->entry_type = src[6];
    r->len = len;
    r->term = craft_get_u64(src + 16);
    r->index = craft_get_u64(src + 24);
    r->payload = payload;
    r->total = total;
    /* Checked after the crc: a record that checks but breaks these rules was written by a
     * bug or a hostile hand, and is refused all the same. */
    if (r->index == 0) {
        return false;
    }
    if (kind == CRAFT_WAL_REC_ENTRY) {
        return r->entry_type != 0;
    }
    return kind == CRAFT_WAL_REC_TRUNCATE && len == 0 && r->entry_type == 0 && r->term == 0;
}

/* Segment header: magic u32 | version u32 | seq u64 | first u64 | crc u32 (of the 24 bytes
 * before it) | reserved u32 (zero). */
void craft_wal_seg_header_encode(uint8_t *dst, uint64_t seq, uint64_t first)
{
    craft_put_u32(dst, CRAFT_WAL_SEG_MAGIC);
    craft_put_u32(dst + 4, CRAFT_WAL_VERSION);
    craft_put_u64(dst + 8, seq);
    craft_put_u64(dst + 16, first);
    craft_put_u32(dst + 24, (uint32_t)crc32(crc32(0L, Z_NULL, 0), dst, 24));
    craft_put_u32(dst + 28, 0);
}

bool craft_wal_seg_header_decode(const uint8_t *src, uint64_t *seq, uint64_t *first)
{
    if (craft_get_u32(src) != CRAFT_WAL_SEG_MAGIC || craft_get_u32(src + 4) != CRAFT_WAL_VERSION ||
        craft_get_u32(src + 28) != 0) {
        return false;
    }
    if (craft_get_u32(src + 24) != (uint32_t)crc32(crc32(0L, Z_NULL, 0), src, 24)) {
        return false;
    }
    *seq = craft_get_u64(src + 8);
    *first = craft_get_u64(src + 16);
    return true;
}
