/* libFuzzer target: WAL recovery over a fuzzed segment file.
 *
 * The first input byte picks how the rest becomes the segment "0000000000000001-
 * 0000000000000001.wal" in an in-memory filesystem:
 *   0: the raw bytes;
 *   1: a valid segment header, then the raw bytes;
 *   2: a valid segment header, then records built from the input with valid checksums
 *      (entries, truncate markers, index jumps), then the remaining bytes raw: this reaches
 *      the replay rules (gaps, markers) behind the checksums.
 * Opening must never crash and only succeed or fail with CRAFT_ECORRUPT (or
 * CRAFT_EMALFORMED). If it succeeds, every entry reads back, the log takes an append, and a
 * reopen finds the same log plus that entry. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "fuzz_segment.h"
#include "storage/fs_mem.h"
#include "storage/wal.h"
#include "storage/wal_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEG "w/0000000000000001-0000000000000001.wal"

static size_t build_records(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    size_t o = 0, i = 0;
    uint64_t index = 1;
    while (i + 3 <= n) {
        uint8_t op = in[i], delta = in[i + 1], len = in[i + 2];
        i += 3;
        if (op >= 0xf0) {
            break; /* the rest goes in raw */
        }
        if (len > n - i) {
            len = (uint8_t)(n - i);
        }
        if ((op & 7) == 7) { /* a truncate marker, near the current index */
            uint64_t t = index > delta % 8 ? index - delta % 8 : 1;
            if (o + craft_wal_rec_size(0) > cap) {
                break;
            }
            craft_wal_rec_encode(out + o, CRAFT_WAL_REC_TRUNCATE, 0, 0, t, NULL, 0);
            o += craft_wal_rec_size(0);
            index = t;
            continue;
        }
        if ((op & 7) == 6) { /* an index jump: a gap or a repeat */
            index = index + (delta % 5) > 2 ? index + (delta % 5) - 2 : 1;
        }
        if (o + craft_wal_rec_size(len) > cap) {
            break;
        }
        craft_wal_rec_encode(out + o, CRAFT_WAL_REC_ENTRY, (uint8_t)(1 + op % 3), delta, index,
                             in + i, len);
        o += craft_wal_rec_size(len);
        i += len;
        index++;
    }
    if (i < n) {
        size_t rest = n - i < cap - o ? n - i : cap - o;
        memcpy(out + o, in + i, rest);
        o += rest;
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    uint8_t hdr[CRAFT_WAL_SEGMENT_HEADER_BYTES];
    craft_wal_seg_header_encode(hdr, 1, 1);
    struct craft_fs_mem *m = fuzz_segment(data, size, "w", SEG, hdr, sizeof hdr,
                                          build_records);
    struct craft_fs *fs = craft_fs_mem_fs(m);

    struct craft_wal_config cfg = {.segment_bytes = FUZZ_SEGMENT_BYTES, .record_bytes_max = 4096};
    struct craft_wal *w = NULL;
    char msg[512];
    int err = craft_wal_open(fs, "w", &cfg, &w, msg, sizeof(msg));
    CRAFT_ASSERT(err == CRAFT_OK || err == CRAFT_ECORRUPT || err == CRAFT_EMALFORMED);
    if (err != CRAFT_OK) {
        CRAFT_ASSERT(msg[0] != '\0');
        craft_fs_mem_destroy(m);
        return 0;
    }
    uint64_t first = craft_wal_first_index(w), last = craft_wal_last_index(w);
    CRAFT_ASSERT(last + 1 >= first);
    struct craft_wal_entries before;
    CRAFT_ASSERT(craft_wal_read(w, first, last, &before) == CRAFT_OK);
    CRAFT_ASSERT(before.n == last + 1 - first);
    for (size_t k = 0; k < before.n; k++) {
        CRAFT_ASSERT(before.entries[k].index == first + k);
        CRAFT_ASSERT(before.entries[k].term == craft_wal_term_at(w, first + k));
    }
    struct craft_entry e = {.term = 1, .index = last + 1, .type = 1, .len = 3,
                            .data = (const uint8_t *)"abc"};
    /* The file may be too full for one more record at its end: the WAL then rolls. */
    CRAFT_ASSERT(craft_wal_append(w, &e, 1) == CRAFT_OK);
    craft_wal_close(w);
    w = NULL;
    err = craft_wal_open(fs, "w", &cfg, &w, msg, sizeof(msg));
    CRAFT_ASSERT(err == CRAFT_OK);
    CRAFT_ASSERT(craft_wal_first_index(w) == first && craft_wal_last_index(w) == last + 1);
    struct craft_wal_entries after;
    CRAFT_ASSERT(craft_wal_read(w, first, last + 1, &after) == CRAFT_OK);
    for (size_t k = 0; k < before.n; k++) {
        const struct craft_entry *a = &before.entries[k], *b = &after.entries[k];
        CRAFT_ASSERT(a->term == b->term && a->type == b->type && a->len == b->len);
        CRAFT_ASSERT(a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
    }
    CRAFT_ASSERT(after.entries[before.n].len == 3 &&
                 memcmp(after.entries[before.n].data, "abc", 3) == 0);
    craft_wal_entries_free(&before);
    craft_wal_entries_free(&after);
    craft_wal_close(w);
    craft_fs_mem_destroy(m);
    return 0;
}
