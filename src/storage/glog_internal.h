/* The group log's state and on-disk encoding, shared by glog.c (writes, reads,
 * compaction), glog_recover.c (open) and glog_format.c (encoding). Internal to
 * src/storage. */
#ifndef CRAFT_STORAGE_GLOG_INTERNAL_H
#define CRAFT_STORAGE_GLOG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/glog.h"

#define CRAFT_GLOG_VERSION 1u
#define CRAFT_GLOG_SEG_MAGIC 0x53474643u /* "CFGS" */
#define CRAFT_GLOG_REC_MAGIC 0x52474643u /* "CFGR" */
#define GLOG_PIN_SEGMENTS_DEFAULT 4u

enum glog_rec_kind {
    GLOG_REC_ENTRY = 1,
    GLOG_REC_TRUNCATE = 2,   /* index: the truncation point; no payload */
    GLOG_REC_HARD_STATE = 3, /* term: the term, index: the vote; no payload */
    GLOG_REC_COMPACT = 4,    /* index: the group no longer needs entries <= index */
    GLOG_REC_COPY = 5,       /* an entry written again (relocation): its index now lives here */
    GLOG_REC_DROP = 6,       /* the group's records before this one are void: as never written */
};

/* Whether records of this kind carry an entry (ENTRY and COPY). */
static inline bool glog_rec_is_entry(uint8_t kind)
{
    return kind == GLOG_REC_ENTRY || kind == GLOG_REC_COPY;
}

struct glog_rec {
    uint8_t kind;
    uint8_t entry_type;
    uint32_t len; /* payload bytes */
    uint64_t group, term, index;
    const uint8_t *payload; /* into the decoded buffer */
    uint64_t total;         /* header + payload + padding */
};

/* The bytes a record with a len-byte payload takes (a multiple of 8). */
uint64_t glog_rec_size(uint32_t len);
/* Writes a record of glog_rec_size(len) bytes at dst, padding zeroed. */
void glog_rec_encode(uint8_t *dst, uint8_t kind, uint8_t entry_type, uint64_t group,
                     uint64_t term, uint64_t index, const uint8_t *payload, uint32_t len);
/* Decodes the record at src (avail bytes readable): true iff complete, magic, version,
 * kind, reserved and padding right, and its checksum matches. */
bool glog_rec_decode(const uint8_t *src, uint64_t avail, struct glog_rec *r);
void glog_seg_header_encode(uint8_t *dst, uint64_t seq);
bool glog_seg_header_decode(const uint8_t *src, uint64_t *seq);

struct glog_seg {
    uint64_t seq; /* consecutive across l->segs */
    uint64_t size;
    int fd;
};

/* Where a live entry's record is. */
struct glog_pos {
    uint64_t term;
    uint64_t seq;
    uint32_t off;
    uint32_t len; /* payload bytes */
};

struct glog_group {
    uint64_t id;
    /* Live entries first .. first + n - 1 are pos[head .. head + n). */
    uint64_t first;
    struct glog_pos *pos;
    size_t head, n, cap;
    bool has_hs;
    struct craft_hard_state hs;
    uint64_t hs_seq;     /* the segment of the latest hard-state record */
    uint64_t anchor_seq; /* the segment of the record that set `first` (0: none) */
};

struct craft_glog {
    struct craft_fs *fs;
    char *dir;
    struct craft_glog_config cfg;
    struct glog_seg *segs; /* by seq; the last one is written */
    size_t n_segs, cap_segs;
    uint64_t end; /* the last segment's write offset */
    struct glog_group *groups; /* sorted by id */
    size_t n_groups, cap_groups;
    uint8_t *wbuf; /* records staged for the last segment, written at `end` */
    size_t wbuf_len, wbuf_cap;
    int failed;
    uint64_t torn_bytes;
    uint64_t syncs; /* fdatasyncs of segments by writes */
    char errmsg[512];
};

/* "<dir>/<seq>.glog" (".glog.tmp" if tmp). */
void glog_seg_path(const struct craft_glog *l, uint64_t seq, bool tmp, char *buf, size_t cap);
int glog_fail(struct craft_glog *l, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The group's state, or NULL; glog_group_get adds it (CRAFT_ENOMEM: NULL). The pointer is
 * valid until the next group is added. */
struct glog_group *glog_group_find(const struct craft_glog *l, uint64_t id);
struct glog_group *glog_group_get(struct craft_glog *l, uint64_t id);
/* Room for extra more positions after g's live ones. CRAFT_ENOMEM. */
int glog_pos_reserve(struct glog_group *g, size_t extra);
/* Applies a truncation at t to g's index (craft_wal_write's semantics); rec_seq is the
 * segment of the marker. */
void glog_pos_truncate(struct glog_group *g, uint64_t t, uint64_t rec_seq);
/* Drops g's entries <= through from its index; rec_seq is the segment of the compaction
 * record (it anchors `first` when the log becomes empty). */
void glog_pos_compact(struct glog_group *g, uint64_t through, uint64_t rec_seq);
/* A dropped group (GLOG_REC_DROP): as never written. */
void glog_group_forget(struct glog_group *g);
int glog_seg_push(struct craft_glog *l, const struct glog_seg *seg);
void glog_free(struct craft_glog *l);
/* Creates segment seq durably and makes it the last one (end after its header). */
int glog_seg_create(struct craft_glog *l, uint64_t seq);

#endif
