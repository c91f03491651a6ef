/* The log view (DESIGN decision 2): every index arithmetic of the in-memory log lives here.
 *
 * The view always holds a sentinel at the snapshot boundary (snap_index, snap_term), so an
 * empty log and a compacted log are the same code path. Entries snap_index+1 .. last are
 * held in memory, contiguous; each entry's payload is owned by the view. */
#ifndef CRAFT_CORE_LOG_H
#define CRAFT_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct craft_log {
    uint64_t snap_index;
    uint64_t snap_term;
    struct craft_entry *entries; /* entries[i] has index snap_index + 1 + i */
    size_t n;
    size_t cap;
};

void log_init(struct craft_log *log, uint64_t snap_index, uint64_t snap_term);
void log_free(struct craft_log *log);

uint64_t log_last_index(const struct craft_log *log);
uint64_t log_last_term(const struct craft_log *log);

/* True and *term set if index is the sentinel or a held entry. */
bool log_term_at(const struct craft_log *log, uint64_t index, uint64_t *term);
/* The term at index, or 0 if the view does not know it. */
uint64_t log_term_or_zero(const struct craft_log *log, uint64_t index);

/* The held entry at index (snap_index < index <= last), else NULL. */
const struct craft_entry *log_entry(const struct craft_log *log, uint64_t index);
/* Entries from index `from` (snap_index < from <= last + 1), and how many there are. */
const struct craft_entry *log_entries_from(const struct craft_log *log, uint64_t from, size_t *n);

/* Appends a copy of e; e->index must be last + 1 and e->term >= last term. Returns
 * CRAFT_ENOMEM on allocation failure (the view is unchanged). */
int log_append(struct craft_log *log, const struct craft_entry *e);

/* Drops the entries at index >= from (snap_index < from <= last). */
void log_truncate_from(struct craft_log *log, uint64_t from);

/* Drops the entries through index (snap_index <= index <= last): the sentinel moves there. */
void log_compact(struct craft_log *log, uint64_t index);

/* Drops everything; the sentinel becomes (index, term). */
void log_reset(struct craft_log *log, uint64_t index, uint64_t term);

/* Sum of payload sizes of entries from..to inclusive (held entries only). */
uint64_t log_bytes(const struct craft_log *log, uint64_t from, uint64_t to);

/* The largest index <= index whose term is <= term, at least snap_index (fast backtracking:
 * thesis 5.3's optimization as etcd-raft phrases it). index must be <= last. */
uint64_t log_find_conflict_by_term(const struct craft_log *log, uint64_t index, uint64_t term);

/* Up-to-date check of the election restriction (thesis 3.6.1). */
bool log_is_up_to_date(const struct craft_log *log, uint64_t last_index, uint64_t last_term);

#endif
