/* What the two segmented logs (wal.c: one group; glog.c: many) share when they recover a
 * segment file: reading it whole, telling written bytes from the preallocated zeros, and
 * cutting a torn tail durably. Internal to src/storage. */
#ifndef CRAFT_STORAGE_SEGFILE_H
#define CRAFT_STORAGE_SEGFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/fs.h"

/* Parses 16 lower-case hex digits at s. */
bool craft_seg_parse_hex16(const char *s, uint64_t *v);

/* True iff p[0..n) are all zero. */
bool craft_seg_all_zero(const uint8_t *p, uint64_t n);

/* Reads file fd whole into a new buffer (*buf, *size; free it). CRAFT_ECORRUPT if the size
 * is below min_size or above 4 GiB (not a segment); else the port's errors, CRAFT_ENOMEM. */
int craft_seg_read_all(struct craft_fs *fs, int fd, uint64_t min_size, uint8_t **buf,
                       uint64_t *size);

/* Zeroes the torn tail [off, last non-zero byte] of buf (the file fd's contents, size bytes)
 * on disk and syncs it, so that a later torn write cannot be mistaken for this one's
 * leftovers; *cut receives the bytes zeroed. The port's errors, CRAFT_ENOMEM. */
int craft_seg_cut_tail(struct craft_fs *fs, int fd, const uint8_t *buf, uint64_t size,
                       uint64_t off, uint64_t *cut);

/* "." or the directory part of path, into buf. */
void craft_seg_parent_dir(const char *path, char *buf, size_t cap);

#endif
