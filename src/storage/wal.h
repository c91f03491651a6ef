/* The segmented write-ahead log: the durable log store, over the filesystem port (fs.h).
 *
 * A directory of fixed-size, preallocated segment files named "<seq>-<first>.wal" (16 hex
 * digits each: a sequence number that grows by one per segment, and the log index the
 * segment starts at). Each segment starts with a checksummed header; records follow, each
 * {header, payload} checksummed with crc32 (zlib). A record is an entry or a truncate
 * marker: the log is append-only on disk, and dropping a suffix appends a marker that
 * replay honours. The format and the recovery rules are in docs/design/storage.md.
 *
 * Durability: craft_wal_write() (and its wrappers append/truncate) returns only once what
 * it wrote is durable: one pwrite per segment touched and one fdatasync per batch (group
 * commit; rolling into a new segment adds one fdatasync of the full one, so that a later
 * segment never holds records while an earlier one lacks some).
 *
 * Failure: a storage error (CRAFT_EIO, CRAFT_ENOSPACE, CRAFT_ECORRUPT, or CRAFT_ENOMEM once
 * something was written) is returned by the call that met it, and leaves the WAL failed:
 * every later call except close returns CRAFT_ESHUTDOWN. craft_wal_errmsg() says what went
 * wrong (file and offset for corruption). Nothing acknowledged is lost: reopen to recover.
 *
 * Threads: one thread at a time. Memory: the WAL copies what it is given. */
#ifndef CRAFT_STORAGE_WAL_H
#define CRAFT_STORAGE_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "storage/fs.h"

/* On-disk sizes (the format is in docs/design/storage.md). */
#define CRAFT_WAL_SEGMENT_HEADER_BYTES 32u
#define CRAFT_WAL_RECORD_HEADER_BYTES 32u

struct craft_wal_config {
    /* The size each new segment is preallocated to; a multiple of 8, at least
     * CRAFT_WAL_SEGMENT_HEADER_BYTES + record_bytes_max. Existing segments keep their size. */
    uint64_t segment_bytes;
    /* The largest record (header + payload, padded to 8) a write may produce: an entry
     * payload may hold record_bytes_max - CRAFT_WAL_RECORD_HEADER_BYTES - 7 bytes at most. */
    uint32_t record_bytes_max;
};

/* Defaults: 64 MiB segments, 1 MiB records. */
void craft_wal_config_default(struct craft_wal_config *cfg);

struct craft_wal;

/* Opens (creating if needed) the WAL in directory dir and recovers it:
 *   - leftover "*.wal.tmp" files (an interrupted segment creation) are removed;
 *   - a torn tail (a record that is incomplete or fails its checksum, with no valid record
 *     after it, at the end of the last segment) is cut off and zeroed, durably;
 *   - anything else that does not check is refused: a bad record followed by a valid one,
 *     garbage in a segment that is not the last, an index gap, a missing segment, a bad
 *     segment header.
 * fs is borrowed until craft_wal_close; dir is copied. On failure, if errmsg is not NULL, a
 * NUL-terminated description (naming file and offset for corruption) is written to it.
 * Errors: CRAFT_EINVAL (bad config), CRAFT_ENOMEM, CRAFT_EIO, CRAFT_ENOSPACE (fs errors),
 * CRAFT_ECORRUPT. */
int craft_wal_open(struct craft_fs *fs, const char *dir, const struct craft_wal_config *cfg,
                   struct craft_wal **out, char *errmsg, size_t errmsg_cap);

/* Closes the files and frees w (NULL is allowed). Syncs nothing: every acknowledged write
 * is already durable. */
void craft_wal_close(struct craft_wal *w);

/* One durable, ordered write: first drop the log from index truncate_from (0: none), then
 * append entries[0..n). Semantics of truncate_from t: entries >= t are dropped; if t is
 * beyond last + 1 or below first, the whole log is dropped (a snapshot install) and the log
 * restarts at t. Entries must be contiguous and start at the next index: last + 1, or t when
 * truncating; on an empty log (never written, or emptied), anywhere (an implicit restart at
 * entries[0].index). Returns once durable.
 * Errors: CRAFT_EINVAL (not contiguous / wrong start, type 0), CRAFT_ETOOBIG (an entry over
 * record_bytes_max), CRAFT_ENOMEM; the storage errors (see the top); CRAFT_ESHUTDOWN
 * (failed before). The first three leave the WAL unchanged and usable. */
int craft_wal_write(struct craft_wal *w, uint64_t truncate_from,
                    const struct craft_entry *entries, size_t n);
/* craft_wal_write(w, 0, entries, n). */
int craft_wal_append(struct craft_wal *w, const struct craft_entry *entries, size_t n);
/* craft_wal_write(w, from, NULL, 0): drops the suffix from index `from`, durably. */
int craft_wal_truncate(struct craft_wal *w, uint64_t from);

/* Drops the segments every live entry of which is <= through (never the last segment):
 * cheap (an unlink per segment, one fsync_dir), so the log may keep entries <= through;
 * craft_wal_first_index tells what remains. Errors: the storage errors, CRAFT_ESHUTDOWN. */
int craft_wal_compact(struct craft_wal *w, uint64_t through);

/* The first and last index of the log; last = first - 1 when it is empty. A WAL never
 * written reports first 1, last 0. */
uint64_t craft_wal_first_index(const struct craft_wal *w);
uint64_t craft_wal_last_index(const struct craft_wal *w);
/* The term of entry index (first <= index <= last), from memory; 0 if out of range. */
uint64_t craft_wal_term_at(const struct craft_wal *w, uint64_t index);

/* Entries read back: entries[k].data points into `data` (owned by this struct). */
struct craft_wal_entries {
    struct craft_entry *entries;
    size_t n;
    uint8_t *data;
};

/* Reads entries lo..hi (inclusive; first <= lo, hi <= last, or lo = hi + 1 for none) into
 * *out, checking every checksum again. On success the caller owns *out and frees it with
 * craft_wal_entries_free. Errors: CRAFT_EINVAL (range), CRAFT_ENOMEM, CRAFT_EIO,
 * CRAFT_ECORRUPT (the data changed on disk since open: the WAL fails), CRAFT_ESHUTDOWN. */
int craft_wal_read(struct craft_wal *w, uint64_t lo, uint64_t hi, struct craft_wal_entries *out);
void craft_wal_entries_free(struct craft_wal_entries *e);

/* The description of the error that failed w ("" if none); borrowed until the next call. */
const char *craft_wal_errmsg(const struct craft_wal *w);

/* How open recovered w: the number of bytes cut from a torn tail (0 if none). */
uint64_t craft_wal_torn_bytes(const struct craft_wal *w);

#endif
