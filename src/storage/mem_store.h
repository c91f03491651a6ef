/* In-memory log store and stable store: the semantics of the write-ahead log (wal.h) and of
 * the stable store (stable.h), nothing durable. For tests, the simulator's oracles and
 * single-process use.
 *
 * Differences from the WAL, on purpose: compact drops exactly the entries <= through (the
 * WAL drops whole segments and may keep some), and there is no record size limit other
 * than entry_bytes_max. Threads: one at a time. Memory: the stores copy what they are given. */
#ifndef CRAFT_STORAGE_MEM_STORE_H
#define CRAFT_STORAGE_MEM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "storage/wal.h" /* struct craft_wal_entries, the read result shared with the WAL */

/* ---- the log ---- */

struct craft_mem_log;

/* Creates an empty log (first 1, last 0). entry_bytes_max: the largest payload accepted
 * (0: no limit). Returns NULL if out of memory. */
struct craft_mem_log *craft_mem_log_create(uint64_t entry_bytes_max);
void craft_mem_log_destroy(struct craft_mem_log *l); /* NULL allowed */

/* As craft_wal_write: drop from truncate_from (0: none; below first or beyond last + 1: the
 * whole log, restarting at truncate_from), then append entries[0..n), which must start at
 * the next index (anywhere on an empty log when not truncating).
 * Errors: CRAFT_EINVAL (not contiguous, wrong start, type 0, data NULL with len > 0),
 * CRAFT_ETOOBIG (a payload over entry_bytes_max), CRAFT_ENOMEM; all leave the log unchanged. */
int craft_mem_log_write(struct craft_mem_log *l, uint64_t truncate_from,
                        const struct craft_entry *entries, size_t n);
int craft_mem_log_append(struct craft_mem_log *l, const struct craft_entry *entries, size_t n);
/* Drops entries >= from. Errors: CRAFT_EINVAL (from 0). */
int craft_mem_log_truncate(struct craft_mem_log *l, uint64_t from);
/* Drops every entry <= through; if that is all of them, the log is empty with first =
 * through + 1 (or last + 1 if through is below). Never fails. */
void craft_mem_log_compact(struct craft_mem_log *l, uint64_t through);

/* first and last index; last = first - 1 when empty. */
uint64_t craft_mem_log_first_index(const struct craft_mem_log *l);
uint64_t craft_mem_log_last_index(const struct craft_mem_log *l);
/* The term of entry index, 0 if out of range. */
uint64_t craft_mem_log_term_at(const struct craft_mem_log *l, uint64_t index);
/* Copies entries lo..hi (inclusive; lo = hi + 1 for none) into *out, which the caller frees
 * with craft_wal_entries_free (same layout as a WAL read). Errors: CRAFT_EINVAL (range),
 * CRAFT_ENOMEM. */
int craft_mem_log_read(const struct craft_mem_log *l, uint64_t lo, uint64_t hi,
                       struct craft_wal_entries *out);

/* ---- the stable store ---- */

struct craft_mem_stable;

/* Returns NULL if out of memory. */
struct craft_mem_stable *craft_mem_stable_create(void);
void craft_mem_stable_destroy(struct craft_mem_stable *st); /* NULL allowed */
/* As craft_stable_put/get (same CRAFT_STABLE_BYTES_MAX limit and errors, minus the I/O ones). */
int craft_mem_stable_put(struct craft_mem_stable *st, const void *data, size_t len);
int craft_mem_stable_get(const struct craft_mem_stable *st, void *buf, size_t cap, size_t *len);
/* As craft_stable_put/get_hard_state: 16 bytes, term then vote, little-endian. */
int craft_mem_stable_put_hard_state(struct craft_mem_stable *st, const struct craft_hard_state *hs);
int craft_mem_stable_get_hard_state(const struct craft_mem_stable *st,
                                    struct craft_hard_state *hs);

#endif
