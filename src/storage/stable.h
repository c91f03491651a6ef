/* The stable store: one small value (the hard state, or other metadata) kept atomically
 * and durably in one file, over the filesystem port (fs.h).
 *
 * A put writes "<path>.tmp", fdatasyncs it, renames it over <path> and fsyncs the
 * directory, so after a crash at any point the file holds either the old value or the new
 * one, whole. The file is checksummed (crc32) and versioned: a value that does not check
 * is refused with CRAFT_ECORRUPT, never returned.
 *
 * Failure: a storage error during put is returned and leaves the store failed (later
 * calls return CRAFT_ESHUTDOWN), like the WAL. Threads: one at a time. */
#ifndef CRAFT_STORAGE_STABLE_H
#define CRAFT_STORAGE_STABLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "storage/fs.h"

/* The largest value a put accepts. */
#define CRAFT_STABLE_BYTES_MAX 4096u

struct craft_stable;

/* Opens the store kept in file path (its directory must exist) and reads its value, if
 * any; removes a leftover "<path>.tmp". fs is borrowed until close; path is copied.
 * Errors: CRAFT_ENOMEM, CRAFT_ECORRUPT (the file does not check), the fs errors. */
int craft_stable_open(struct craft_fs *fs, const char *path, struct craft_stable **out);
/* Frees st (NULL allowed). Syncs nothing: every put is durable on return. */
void craft_stable_close(struct craft_stable *st);

/* Replaces the value with data[0..len), atomically and durably. Errors: CRAFT_ETOOBIG
 * (len > CRAFT_STABLE_BYTES_MAX; the store stays usable), CRAFT_ESHUTDOWN, the fs errors
 * (the store fails). */
int craft_stable_put(struct craft_stable *st, const void *data, size_t len);
/* Copies the value into buf (cap bytes) and its length into *len. Errors: CRAFT_ENOTFOUND
 * (never put), CRAFT_ETOOBIG (cap too small; *len says how much is needed),
 * CRAFT_ESHUTDOWN. */
int craft_stable_get(const struct craft_stable *st, void *buf, size_t cap, size_t *len);

/* The hard state as the value (16 bytes: term, vote, little-endian). Errors as put/get;
 * get also returns CRAFT_ECORRUPT if the value is not 16 bytes long. */
int craft_stable_put_hard_state(struct craft_stable *st, const struct craft_hard_state *hs);
int craft_stable_get_hard_state(const struct craft_stable *st, struct craft_hard_state *hs);

#endif
