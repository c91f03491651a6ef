/* A faulty in-memory filesystem for tests and the simulator, behind the craft_fs vtable.
 *
 * Every file keeps two images: the current one (what reads see) and the durable one (what
 * survives a crash), plus the list of operations applied since the last fdatasync. Names
 * are tracked the same way: a create, rename or unlink changes the current namespace at
 * once and the durable namespace only at fsync_dir of the directory holding the name.
 * Directories are durable as soon as mkdir returns (a simplification: the stores create
 * their directory once).
 *
 * Faults:
 *   - craft_fs_mem_crash(): every handle is closed, every name and file reverts to its
 *     durable state; with torn set, each file keeps a random prefix (in issue order) of
 *     its unsynced operations, the last one possibly cut mid-write (a torn write);
 *   - craft_fs_mem_flip_bit(): flips a stored bit in both images (media corruption that a
 *     checksum must catch);
 *   - craft_fs_mem_fail(): the Nth operation from now fails with a chosen error (CRAFT_EIO,
 *     CRAFT_ENOSPACE, ...), optionally every operation after it too. A failed operation
 *     has no effect.
 * All randomness comes from the craft_prng seeded at creation: same seed and calls, same
 * result. Not thread-safe. */
#ifndef CRAFT_STORAGE_FS_MEM_H
#define CRAFT_STORAGE_FS_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/fs.h"

struct craft_fs_mem;

/* Creates an empty filesystem (only "." exists). Returns NULL if out of memory. */
struct craft_fs_mem *craft_fs_mem_create(uint64_t seed);
/* Frees m and every file; handles still open become invalid. */
void craft_fs_mem_destroy(struct craft_fs_mem *m);
/* The vtable to hand to the stores; borrowed, valid until craft_fs_mem_destroy. */
struct craft_fs *craft_fs_mem_fs(struct craft_fs_mem *m);

/* Simulates a power loss, as described above. */
void craft_fs_mem_crash(struct craft_fs_mem *m, bool torn);
/* Flips bit `bit` (0 = lowest bit of byte 0) of file path, in the current and durable
 * images where they are that long. CRAFT_ENOTFOUND if path does not exist. */
int craft_fs_mem_flip_bit(struct craft_fs_mem *m, const char *path, uint64_t bit);
/* Makes the nth operation from now (1 = the next one) fail with err; if sticky, every
 * later one too. n = 0 clears the plan. close() is never failed nor counted. */
void craft_fs_mem_fail(struct craft_fs_mem *m, uint64_t n, int err, bool sticky);
/* The number of operations counted so far (for choosing where to inject a fault). */
uint64_t craft_fs_mem_op_count(const struct craft_fs_mem *m);
/* The durable size of path (what a crash would leave, not counting torn writes), or
 * CRAFT_ENOTFOUND if the name is not durable. */
int craft_fs_mem_durable_size(struct craft_fs_mem *m, const char *path, uint64_t *size);

#endif
