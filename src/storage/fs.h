/* The filesystem port: the few calls the durable stores make, behind a vtable, so the same
 * write-ahead log and stable store run over the real disk (fs_posix.c) and over the
 * simulator's faulty in-memory filesystem (fs_mem.c).
 *
 * Every function returns CRAFT_OK or an `enum craft_err` (never errno):
 *   CRAFT_ENOTFOUND  the path (or a parent directory) does not exist
 *   CRAFT_ENOSPACE   the disk is full (pwrite, fallocate, ...)
 *   CRAFT_ENOMEM     out of memory
 *   CRAFT_EINVAL     a bad handle or argument
 *   CRAFT_EIO        any other failure the operating system reports
 * Paths are '/'-separated strings, relative or absolute, borrowed for the call. A file
 * handle is a small non-negative int, valid from open() until close(); it says nothing
 * about the operating system (fs_mem hands out its own numbers).
 *
 * Durability contract (the one POSIX gives on Linux, which fs_mem enforces):
 *   - pwrite/ftruncate/fallocate changes are durable only after fdatasync() on that handle;
 *   - creating, renaming or unlinking a name is durable only after fsync_dir() on the
 *     directory holding the name (both directories for a rename);
 *   - rename() atomically replaces the target name.
 * Threads: an implementation may be called from one thread at a time. */
#ifndef CRAFT_STORAGE_FS_H
#define CRAFT_STORAGE_FS_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

enum craft_fs_open_flags {
    CRAFT_FS_CREATE = 1, /* create the file if it does not exist (mode 0644) */
};

/* Called once per name in a directory (never "." or ".."), in no particular order; a
 * non-zero return stops the listing and is returned by list_dir. */
typedef int (*craft_fs_list_fn)(void *arg, const char *name);

struct craft_fs {
    /* Opens path for reading and writing; *fd receives the handle. ENOTFOUND if it does
     * not exist and CRAFT_FS_CREATE is not given. */
    int (*open)(struct craft_fs *fs, const char *path, int flags, int *fd);
    /* Releases fd (even if it returns an error). Syncs nothing. */
    int (*close)(struct craft_fs *fs, int fd);
    /* Reads up to len bytes at off into buf; *n_read < len only at end of file. */
    int (*pread)(struct craft_fs *fs, int fd, void *buf, size_t len, uint64_t off,
                 size_t *n_read);
    /* Writes all len bytes at off (extending the file, zero-filling any hole), or fails. */
    int (*pwrite)(struct craft_fs *fs, int fd, const void *buf, size_t len, uint64_t off);
    /* Makes fd's data and size durable. */
    int (*fdatasync)(struct craft_fs *fs, int fd);
    /* Makes the names in directory dir (creates, renames, unlinks) durable. */
    int (*fsync_dir)(struct craft_fs *fs, const char *dir);
    /* Atomically renames from to to, replacing to. ENOTFOUND if from does not exist. */
    int (*rename)(struct craft_fs *fs, const char *from, const char *to);
    /* Removes the name path. ENOTFOUND if it does not exist. */
    int (*unlink)(struct craft_fs *fs, const char *path);
    /* Sets fd's size to size (zero-filling when it grows). */
    int (*ftruncate)(struct craft_fs *fs, int fd, uint64_t size);
    /* Reserves [off, off + len) so later writes there cannot fail for space; grows the
     * file (with zeros) if it is shorter, never shrinks it (posix_fallocate semantics). */
    int (*fallocate)(struct craft_fs *fs, int fd, uint64_t off, uint64_t len);
    /* Calls fn for every name in dir. ENOTFOUND if dir does not exist. */
    int (*list_dir)(struct craft_fs *fs, const char *dir, craft_fs_list_fn fn, void *arg);
    /* Creates directory path; CRAFT_OK if it exists already. Durable on return for fs_mem;
     * for POSIX, call fsync_dir on the parent to make it durable. */
    int (*mkdir)(struct craft_fs *fs, const char *path);
    /* *size receives fd's current size. */
    int (*file_size)(struct craft_fs *fs, int fd, uint64_t *size);
};

/* Fills fs with the POSIX implementation (open/pread/pwrite/fdatasync/rename/...). It holds
 * no state: one per process is enough, and fs may be a stack or static object. */
void craft_fs_posix_init(struct craft_fs *fs);

#endif
