/* The group log: one write-ahead log shared by many Raft groups (docs/design/multiraft.md,
 * "The log"; format and recovery rules in docs/design/storage.md, "The group log").
 *
 * Every record names its group: entries, truncation markers and hard states (term, vote)
 * of all the groups a process hosts go into one sequence of preallocated segments, so one
 * craft_glog_write (one pwrite per segment touched, one fdatasync) makes a whole round of
 * every group durable. Per group the log behaves as the single-group WAL (wal.h): the same
 * truncation and contiguity rules, the same reads from an in-memory index.
 *
 * Segments: "<seq>.glog" (16 hex digits), created under a ".tmp" name and renamed once
 * complete, deleted from the oldest on once no group has anything live in them: its entries
 * after compaction, its latest hard state, and, for a group whose log is empty, the marker
 * that says where its log restarts. craft_glog_compact re-appends the hard states and
 * restart markers that would keep an otherwise dead segment (one write) before deleting,
 * and the live entries of groups more than pin_segments_max segments behind the last one
 * (relocation: copies that replace the originals at recovery).
 *
 * Durability, failure and threads: as wal.h. A storage error fails the log (every later
 * call but close returns CRAFT_ESHUTDOWN); craft_glog_errmsg() says what went wrong.
 * One thread at a time; the log copies what it is given. */
#ifndef CRAFT_STORAGE_GLOG_H
#define CRAFT_STORAGE_GLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "storage/fs.h"
#include "storage/wal.h" /* struct craft_wal_entries, the read-back type */

#define CRAFT_GLOG_SEGMENT_HEADER_BYTES 32u
#define CRAFT_GLOG_RECORD_HEADER_BYTES 40u

struct craft_glog_config {
    /* Each new segment's preallocated size: a multiple of 8, at least
     * CRAFT_GLOG_SEGMENT_HEADER_BYTES + record_bytes_max. */
    uint64_t segment_bytes;
    /* The largest record (header + payload, padded to 8). */
    uint32_t record_bytes_max;
    /* Segments a group's oldest live entries may lag behind the last one before a
     * compaction writes them again at the head (0: the default, 4), so that a group that
     * never compacts (idle, or a lagging follower) cannot keep every segment after its
     * oldest entry from being deleted. */
    uint32_t pin_segments_max;
};

/* Defaults: 64 MiB segments, 1 MiB records, 4 pinned segments. */
void craft_glog_config_default(struct craft_glog_config *cfg);

struct craft_glog;

/* Opens (creating if needed) the log in directory dir and recovers every group, with the
 * WAL's rules: leftover ".tmp" segments are removed; a torn tail of the last segment is cut
 * and zeroed durably; anything else that does not check is refused with CRAFT_ECORRUPT
 * naming file and offset (a bad record followed by a valid one, garbage in a segment that
 * is not the last, a missing segment, a bad header, an entry that does not follow its
 * group's last one). fs is borrowed until close. Errors: CRAFT_EINVAL (bad config),
 * CRAFT_ENOMEM, CRAFT_EIO, CRAFT_ENOSPACE, CRAFT_ECORRUPT; errmsg (if not NULL) says why. */
int craft_glog_open(struct craft_fs *fs, const char *dir, const struct craft_glog_config *cfg,
                    struct craft_glog **out, char *errmsg, size_t errmsg_cap);

/* Closes the files and frees l (NULL is allowed). Syncs nothing. */
void craft_glog_close(struct craft_glog *l);

/* One group's part of a write: its hard state (if has_hard_state), then a truncation from
 * truncate_from (0: none), then entries[0..n), with craft_wal_write's semantics per group
 * (wal.h) but one: entries follow the group's last entry after the truncation, and may
 * start anywhere when its log is then empty (never written, compacted away, or emptied by
 * this very truncation: a snapshot install drops the log and writes what follows it). */
struct craft_glog_update {
    uint64_t group;
    bool has_hard_state;
    struct craft_hard_state hs;
    uint64_t truncate_from;
    const struct craft_entry *entries;
    size_t n;
};

/* Makes updates[0..n) durable together: one pwrite per segment touched and one fdatasync
 * (plus one per segment filled on the way). A group appears at most once per call.
 * Errors: CRAFT_EINVAL (a group twice, entries not contiguous or not starting where they
 * must, type 0), CRAFT_ETOOBIG (an entry over record_bytes_max), CRAFT_ENOMEM: the log is
 * unchanged and usable; the storage errors fail it; CRAFT_ESHUTDOWN (failed before). */
int craft_glog_write(struct craft_glog *l, const struct craft_glog_update *updates, size_t n);

/* Group `group` no longer needs its entries <= through: they leave its index, and every
 * segment that then holds nothing live for any group (never the last one) is deleted, after
 * re-appending the hard states and restart markers that would have kept it, and (when more
 * than pin_segments_max + 1 segments remain) the live entries of any group in the segments
 * older than the last pin_segments_max + 1. Reads of compacted entries fail with
 * CRAFT_EINVAL. Errors: the storage errors, CRAFT_ENOMEM, CRAFT_ESHUTDOWN. */
int craft_glog_compact(struct craft_glog *l, uint64_t group, uint64_t through);

/* Forgets group `group` (durably, one write): its entries, hard state and restart point
 * are void, as if it had never been written, and the segments that held only its records
 * go with later compactions. Errors: the storage errors, CRAFT_ESHUTDOWN. */
int craft_glog_drop(struct craft_glog *l, uint64_t group);

/* Per group, from memory: first and last index (last = first - 1 when empty; a group
 * never written: first 1, last 0), the term of an index in range (0 otherwise), and its
 * latest hard state (false if it never wrote one). */
uint64_t craft_glog_first_index(const struct craft_glog *l, uint64_t group);
uint64_t craft_glog_last_index(const struct craft_glog *l, uint64_t group);
uint64_t craft_glog_term_at(const struct craft_glog *l, uint64_t group, uint64_t index);
bool craft_glog_hard_state(const struct craft_glog *l, uint64_t group,
                           struct craft_hard_state *hs);

/* Reads group's entries lo..hi (inclusive; lo = hi + 1 for none) into *out, checking every
 * checksum again; free with craft_wal_entries_free. Errors: CRAFT_EINVAL (range),
 * CRAFT_ENOMEM, CRAFT_EIO, CRAFT_ECORRUPT (the media changed: the log fails),
 * CRAFT_ESHUTDOWN. */
int craft_glog_read(struct craft_glog *l, uint64_t group, uint64_t lo, uint64_t hi,
                    struct craft_wal_entries *out);

/* The groups the log knows (any record ever kept), up to cap ids in ascending order;
 * returns how many there are. */
size_t craft_glog_groups(const struct craft_glog *l, uint64_t *ids, size_t cap);

/* The number of segment files (tests and stats). */
size_t craft_glog_segments(const struct craft_glog *l);

/* The fdatasyncs of segment data made by writes since open (stats: one per
 * craft_glog_write, plus one per segment it filled). */
uint64_t craft_glog_syncs(const struct craft_glog *l);

/* The error that failed l ("" if none); the bytes open cut from a torn tail. */
const char *craft_glog_errmsg(const struct craft_glog *l);
uint64_t craft_glog_torn_bytes(const struct craft_glog *l);

#endif
