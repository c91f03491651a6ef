/* The snapshot store port, and three implementations behind it: a durable one over the
 * filesystem port (files in a directory), an in-memory one, and a discard one that keeps
 * only metadata (for runs that never send or restore snapshots).
 *
 * A snapshot is written through a sink: create (or begin a receive), write the data in
 * chunks, then commit with its metadata. Until commit nothing is visible; once commit
 * returns CRAFT_OK the snapshot is durable (file store) and is the newest if its index is
 * the highest. After each commit only the `retain` newest snapshots (by index, then term)
 * are kept. A reader gives the bytes of one committed snapshot at any offset (chunks for
 * followers) or whole (craft_snapshot_read_all, for a restore, checksum verified).
 *
 * Errors, for every implementation:
 *   CRAFT_EINVAL     a bad argument (out-of-order chunk, no metadata, invalid conf)
 *   CRAFT_ENOMEM     out of memory
 *   CRAFT_ENOTFOUND  no snapshot to open (the discard store: always)
 *   CRAFT_ECORRUPT   the data no longer matches its checksum
 *   CRAFT_EIO, CRAFT_ENOSPACE  the filesystem errors (file store)
 * A sink or reader belongs to the store that made it; the store must outlive it.
 * Threads: one thread at a time per store. The format is in docs/design/storage.md. */
#ifndef CRAFT_STORAGE_SNAPSHOT_STORE_H
#define CRAFT_STORAGE_SNAPSHOT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "storage/fs.h"

/* A committed snapshot: its metadata, data size and the crc32 (zlib) of its data. */
struct craft_snapshot_info {
    struct craft_snapshot_meta meta;
    uint64_t size;
    uint32_t crc;
};

struct craft_snapshot_sink;   /* an implementation's writer */
struct craft_snapshot_reader; /* an implementation's reader */

struct craft_snapshot_store {
    /* Starts a snapshot. meta is copied; it may be NULL when the metadata is only known at
     * commit (a snapshot received from a leader). *out is owned by the caller until it
     * passes it to commit or abort. Errors: EINVAL (meta->conf invalid), ENOMEM, fs errors. */
    int (*create)(struct craft_snapshot_store *s, const struct craft_snapshot_meta *meta,
                  struct craft_snapshot_sink **out);
    /* Writes buf[0..len) at offset off of the data. Chunks come in order: off must be at
     * most the bytes written so far; bytes already written are skipped (a resent chunk must
     * hold the same bytes: they are not compared). Appending is write(s, k, size, ...).
     * Errors: EINVAL (off beyond the end: a chunk is missing), ENOMEM, fs errors; after an
     * error the sink can only be aborted. */
    int (*write)(struct craft_snapshot_store *s, struct craft_snapshot_sink *k, uint64_t off,
                 const void *buf, size_t len);
    /* The number of data bytes written to k so far. */
    uint64_t (*written)(struct craft_snapshot_store *s, const struct craft_snapshot_sink *k);
    /* Commits k with metadata meta (NULL: the one given to create) and frees k, whatever
     * the result. On CRAFT_OK the snapshot is durable and listed, and the snapshots beyond
     * the retain count are deleted (a failure to delete them is not an error of the commit:
     * see errmsg; they are retried at the next commit). Errors: EINVAL (no metadata, invalid
     * conf, a previous write failed), ENOMEM, fs errors: nothing is committed. */
    int (*commit)(struct craft_snapshot_store *s, struct craft_snapshot_sink *k,
                  const struct craft_snapshot_meta *meta);
    /* Drops k and what it wrote. */
    void (*abort)(struct craft_snapshot_store *s, struct craft_snapshot_sink *k);
    /* Copies up to cap infos of committed snapshots, newest first, into out; *n receives the
     * total count (which may exceed cap). */
    void (*list)(struct craft_snapshot_store *s, struct craft_snapshot_info *out, size_t cap,
                 size_t *n);
    /* Opens the newest snapshot whose data and metadata check (the file store verifies the
     * data checksum now, and skips, reports in errmsg and counts a snapshot that fails).
     * *info receives its info; *out is owned by the caller until reader_close.
     * Errors: ENOTFOUND (none), ENOMEM, fs errors. */
    int (*open_newest)(struct craft_snapshot_store *s, struct craft_snapshot_info *info,
                       struct craft_snapshot_reader **out);
    /* Reads up to len bytes at data offset off; *n_read < len only at the end.
     * Errors: fs errors. */
    int (*read)(struct craft_snapshot_store *s, struct craft_snapshot_reader *r, void *buf,
                size_t len, uint64_t off, size_t *n_read);
    void (*reader_close)(struct craft_snapshot_store *s, struct craft_snapshot_reader *r);
    /* The last problem met ("" if none): a skipped corrupt snapshot (naming its file), a
     * failed deletion. Borrowed until the next call. */
    const char *(*errmsg)(struct craft_snapshot_store *s);
    /* Frees the store (sinks and readers must be gone). */
    void (*destroy)(struct craft_snapshot_store *s);
};

/* Reads the whole snapshot of r (size bytes, from info) into a new buffer (*data, owned by
 * the caller, free() it; NULL when size is 0) and verifies its crc32 against info->crc.
 * Errors: ECORRUPT, ENOMEM, EIO (the data is shorter than info->size), the store's errors. */
int craft_snapshot_read_all(struct craft_snapshot_store *s, struct craft_snapshot_reader *r,
                            const struct craft_snapshot_info *info, uint8_t **data);

/* ---- the file store ----
 * Directory dir holds "<index>-<term>.snap" (16 hex digits each) files: a checksummed header
 * (CRAFT_SNAPSHOT_HEADER_BYTES) then the data. A snapshot is written under "<seq>.snap.tmp",
 * committed by writing the header, fdatasync, rename, fsync_dir. Opening the store creates
 * dir if needed, deletes leftover "*.tmp" files (durably) and checks every snapshot (header
 * checksum, name, data checksum); one that fails is left in place, skipped, named in errmsg
 * and counted (craft_snapshot_file_n_corrupt). fs is borrowed until destroy; dir is copied.
 * retain >= 1. One store per directory at a time (temporary names restart at each open).
 * Errors: EINVAL (retain 0), ENOMEM, fs errors. */
#define CRAFT_SNAPSHOT_HEADER_BYTES 1088u
int craft_snapshot_file_open(struct craft_fs *fs, const char *dir, uint32_t retain,
                             struct craft_snapshot_store **out);
/* The number of snapshots found corrupt (at open and by open_newest) so far. */
uint64_t craft_snapshot_file_n_corrupt(struct craft_snapshot_store *s);

/* ---- the memory store: the same semantics, nothing durable. Errors: EINVAL, ENOMEM. ---- */
int craft_snapshot_mem_create(uint32_t retain, struct craft_snapshot_store **out);

/* ---- the discard store: keeps the metadata and size of the newest `retain` snapshots,
 * drops the data; open_newest returns CRAFT_ENOTFOUND. Errors: EINVAL, ENOMEM. ---- */
int craft_snapshot_discard_create(uint32_t retain, struct craft_snapshot_store **out);

#endif
