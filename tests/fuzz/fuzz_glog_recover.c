/* libFuzzer target: group-log recovery over a fuzzed segment file.
 *
 * The first input byte picks how the rest becomes the segment "0000000000000001.glog" in an
 * in-memory filesystem:
 *   0: the raw bytes;
 *   1: a valid segment header, then the raw bytes;
 *   2: a valid segment header, then records of several groups built from the input with
 *      valid checksums (entries, truncate markers, hard states, index jumps), then the
 *      remaining bytes raw: this reaches the replay rules behind the checksums.
 * Opening must never crash and only succeed or fail with CRAFT_ECORRUPT. If it succeeds,
 * every group's entries read back, each group takes an append in one write, and a reopen
 * finds the same groups plus those entries. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "fuzz_segment.h"
#include "storage/fs_mem.h"
#include "storage/glog.h"
#include "storage/glog_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEG "g/0000000000000001.glog"
#define GROUPS_MAX 8

static size_t build_records(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    size_t o = 0, i = 0;
    uint64_t next[GROUPS_MAX] = {0};
    while (i + 3 <= n) {
        uint8_t op = in[i], delta = in[i + 1], len = in[i + 2];
        i += 3;
        if (op >= 0xf0) {
            break; /* the rest goes in raw */
        }
        uint64_t group = op % GROUPS_MAX;
        uint64_t *index = &next[group];
        if (*index == 0) {
            *index = 1 + delta % 4;
        }
        if (len > n - i) {
            len = (uint8_t)(n - i);
        }
        switch ((op >> 3) & 7) {
        case 7: { /* a truncate marker near the group's next index */
            uint64_t t = *index > delta % 8 ? *index - delta % 8 : 1;
            if (o + glog_rec_size(0) > cap) {
                return o;
            }
            glog_rec_encode(out + o, GLOG_REC_TRUNCATE, 0, group, 0, t, NULL, 0);
            o += glog_rec_size(0);
            *index = t;
            continue;
        }
        case 6: /* a hard state */
            if (o + glog_rec_size(0) > cap) {
                return o;
            }
            glog_rec_encode(out + o, GLOG_REC_HARD_STATE, 0, group, delta, len % 4, NULL, 0);
            o += glog_rec_size(0);
            continue;
        case 4: /* a compaction near the group's next index */
            if (o + glog_rec_size(0) > cap) {
                return o;
            }
            glog_rec_encode(out + o, GLOG_REC_COMPACT, 0, group, 0,
                            *index > delta % 8 ? *index - delta % 8 : 0, NULL, 0);
            o += glog_rec_size(0);
            continue;
        case 5: /* an index jump: a gap or a repeat */
            *index = *index + (delta % 5) > 2 ? *index + (delta % 5) - 2 : 1;
            break;
        default:
            break;
        }
        if (o + glog_rec_size(len) > cap) {
            return o;
        }
        glog_rec_encode(out + o, GLOG_REC_ENTRY, (uint8_t)(1 + op % 3), group, delta, *index,
                        in + i, len);
        o += glog_rec_size(len);
        i += len;
        (*index)++;
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
    uint8_t hdr[CRAFT_GLOG_SEGMENT_HEADER_BYTES];
    glog_seg_header_encode(hdr, 1);
    struct craft_fs_mem *m = fuzz_segment(data, size, "g", SEG, hdr, sizeof hdr,
                                          build_records);
    struct craft_fs *fs = craft_fs_mem_fs(m);

    struct craft_glog_config cfg = {.segment_bytes = FUZZ_SEGMENT_BYTES, .record_bytes_max = 4096};
    struct craft_glog *l = NULL;
    char msg[512];
    int err = craft_glog_open(fs, "g", &cfg, &l, msg, sizeof(msg));
    CRAFT_ASSERT(err == CRAFT_OK || err == CRAFT_ECORRUPT);
    if (err != CRAFT_OK) {
        CRAFT_ASSERT(msg[0] != '\0');
        craft_fs_mem_destroy(m);
        return 0;
    }
    uint64_t ids[GROUPS_MAX];
    size_t n_groups = craft_glog_groups(l, ids, GROUPS_MAX);
    CRAFT_ASSERT(n_groups <= GROUPS_MAX);
    uint64_t firsts[GROUPS_MAX], lasts[GROUPS_MAX];
    struct craft_entry es[GROUPS_MAX];
    struct craft_glog_update ups[GROUPS_MAX];
    for (size_t g = 0; g < n_groups; g++) {
        firsts[g] = craft_glog_first_index(l, ids[g]);
        lasts[g] = craft_glog_last_index(l, ids[g]);
        CRAFT_ASSERT(lasts[g] + 1 >= firsts[g]);
        struct craft_wal_entries got;
        CRAFT_ASSERT(craft_glog_read(l, ids[g], firsts[g], lasts[g], &got) == CRAFT_OK);
        CRAFT_ASSERT(got.n == lasts[g] + 1 - firsts[g]);
        for (size_t k = 0; k < got.n; k++) {
            CRAFT_ASSERT(got.entries[k].index == firsts[g] + k);
            CRAFT_ASSERT(got.entries[k].term == craft_glog_term_at(l, ids[g], firsts[g] + k));
        }
        craft_wal_entries_free(&got);
        es[g] = (struct craft_entry){.term = 1, .index = lasts[g] + 1, .type = 1, .len = 3,
                                     .data = (const uint8_t *)"abc"};
        ups[g] = (struct craft_glog_update){.group = ids[g], .entries = &es[g], .n = 1};
    }
    /* The file may be too full for more records at its end: the log then rolls. */
    CRAFT_ASSERT(craft_glog_write(l, ups, n_groups) == CRAFT_OK);
    craft_glog_close(l);
    l = NULL;
    err = craft_glog_open(fs, "g", &cfg, &l, msg, sizeof(msg));
    CRAFT_ASSERT(err == CRAFT_OK);
    for (size_t g = 0; g < n_groups; g++) {
        CRAFT_ASSERT(craft_glog_first_index(l, ids[g]) == (lasts[g] >= firsts[g] ? firsts[g]
                                                                                : lasts[g] + 1));
        CRAFT_ASSERT(craft_glog_last_index(l, ids[g]) == lasts[g] + 1);
    }
    craft_glog_close(l);
    craft_fs_mem_destroy(m);
    return 0;
}
