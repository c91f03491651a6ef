/* The write-ahead log's state, shared by wal.c (writing, reading, compaction) and
 * wal_recover.c (open). Internal to src/storage. */
#ifndef CRAFT_STORAGE_WAL_INTERNAL_H
#define CRAFT_STORAGE_WAL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/wal.h"

struct wal_seg {
    uint64_t seq;   /* consecutive across w->segs */
    uint64_t first; /* the log's next index when the segment was created */
    uint64_t size;  /* the file's size: records never cross it */
    int fd;
};

/* Where a live entry's record is. */
struct wal_pos {
    uint64_t term;
    uint64_t seq;
    uint32_t off;
    uint32_t len; /* payload bytes */
};

struct craft_wal {
    struct craft_fs *fs;
    char *dir;
    struct craft_wal_config cfg;
    struct wal_seg *segs; /* by seq; the last one is the one written */
    size_t n_segs, cap_segs;
    uint64_t end; /* the last segment's write offset */
    /* Live entries first .. first + pos_n - 1 are pos[pos_head .. pos_head + pos_n). */
    uint64_t first;
    struct wal_pos *pos;
    size_t pos_head, pos_n, pos_cap;
    uint8_t *wbuf; /* records staged for the last segment, written at `end` */
    size_t wbuf_len, wbuf_cap;
    int failed; /* the error that failed the WAL; 0 while healthy */
    uint64_t torn_bytes;
    char errmsg[512];
};

/* Writes "<dir>/<seq>-<first>.wal" (".wal.tmp" if tmp) into buf. */
void craft_wal_seg_path(const struct craft_wal *w, uint64_t seq, uint64_t first, bool tmp,
                        char *buf, size_t cap);
/* Records err and a printf-style message, fails w, returns err. */
int craft_wal_fail(struct craft_wal *w, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Makes room for `extra` more positions after the live ones. CRAFT_ENOMEM. */
int craft_wal_pos_reserve(struct craft_wal *w, size_t extra);
/* Applies a truncate marker at t to the in-memory log (see craft_wal_write). */
void craft_wal_pos_truncate(struct craft_wal *w, uint64_t t);
/* Appends a segment to w->segs. CRAFT_ENOMEM. */
int craft_wal_seg_push(struct craft_wal *w, const struct wal_seg *seg);
/* Frees w and closes its files. */
void craft_wal_free(struct craft_wal *w);

#endif
