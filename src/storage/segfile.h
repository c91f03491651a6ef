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

/* Where a segment's valid records stop, at off of buf (the file fd, size bytes): decides
 * what the rest is. All zeros (the preallocated, never written part): CRAFT_OK. Otherwise,
 * in a segment that is not the last (synced whole before the next was created, so a crash
 * cannot have cut it): CRAFT_ECORRUPT with *valid_at 0. In the last one: if a valid record
 * (valid(p, avail), probed at every 8-byte offset from off + 8 on, each needing at least
 * header_bytes) follows, the bad one is not a torn write: CRAFT_ECORRUPT with *valid_at its
 * offset; else a torn tail, cut durably (craft_seg_cut_tail, *cut its bytes): CRAFT_OK, or
 * the port's error. The caller words the errors (file and offsets). */
int craft_seg_end(struct craft_fs *fs, int fd, const uint8_t *buf, uint64_t size, uint64_t off,
                  bool is_last, bool (*valid)(const uint8_t *p, uint64_t avail),
                  uint64_t header_bytes, uint64_t *cut, uint64_t *valid_at);

/* "." or the directory part of path, into buf. */
void craft_seg_parent_dir(const char *path, char *buf, size_t cap);

#endif
