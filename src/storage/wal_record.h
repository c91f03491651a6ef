/* The on-disk encoding of the write-ahead log: segment headers and records, little-endian,
 * checksummed with zlib's crc32 (docs/design/storage.md has the layout). Internal to
 * src/storage. */
#ifndef CRAFT_STORAGE_WAL_RECORD_H
#define CRAFT_STORAGE_WAL_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#define CRAFT_WAL_VERSION 1u
#define CRAFT_WAL_SEG_MAGIC 0x53574643u /* "CFWS" */
#define CRAFT_WAL_REC_MAGIC 0x52574643u /* "CFWR" */

enum craft_wal_rec_kind {
    CRAFT_WAL_REC_ENTRY = 1,
    CRAFT_WAL_REC_TRUNCATE = 2, /* index = the truncation point; no payload */
};

struct craft_wal_rec {
    uint8_t kind;
    uint8_t entry_type;
    uint32_t len; /* payload bytes */
    uint64_t term;
    uint64_t index;
    const uint8_t *payload; /* points into the decoded buffer */
    uint64_t total;         /* header + payload + padding */
};

/* The bytes a record with a len-byte payload occupies (a multiple of 8). */
uint64_t craft_wal_rec_size(uint32_t len);

/* Writes a record of craft_wal_rec_size(len) bytes at dst (padding zeroed). */
void craft_wal_rec_encode(uint8_t *dst, uint8_t kind, uint8_t entry_type, uint64_t term,
                          uint64_t index, const uint8_t *payload, uint32_t len);

/* Decodes the record at src (avail bytes readable). True iff it is complete, its magic,
 * version, kind, reserved and padding bytes are right and its checksum matches. */
bool craft_wal_rec_decode(const uint8_t *src, uint64_t avail, struct craft_wal_rec *r);

/* Writes the CRAFT_WAL_SEGMENT_HEADER_BYTES-byte segment header. */
void craft_wal_seg_header_encode(uint8_t *dst, uint64_t seq, uint64_t first);
/* True iff the header at src (CRAFT_WAL_SEGMENT_HEADER_BYTES bytes) checks. */
bool craft_wal_seg_header_decode(const uint8_t *src, uint64_t *seq, uint64_t *first);

#endif
