#include "base/alloc.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

void log_init(struct craft_log *log, uint64_t snap_index, uint64_t snap_term)
{
    memset(log, 0, sizeof *log);
    log->snap_index = snap_index;
    log->snap_term = snap_term;
}

static void entry_free(struct craft_entry *e)
{
    free((void *)e->data);
    e->data = NULL;
}

void log_free(struct craft_log *log)
{
    for (size_t i = 0; i < log->n; i++) {
        entry_free(&log->entries[i]);
    }
    free(log->entries);
    memset(log, 0, sizeof *log);
}

uint64_t log_last_index(const struct craft_log *log)
{
    return log->snap_index + log->n;
}

uint64_t log_last_term(const struct craft_log *log)
{
    return log->n == 0 ? log->snap_term : log->entries[log->n - 1].term;
}

bool log_term_at(const struct craft_log *log, uint64_t index, uint64_t *term)
{
    if (index == log->snap_index) {
        *term = log->snap_term;
        return true;
    }
    if (index < log->snap_index || index > log_last_index(log)) {
        return false;
    }
    *term = log->entries[index - log->snap_index - 1].term;
    return true;
}

uint64_t log_term_or_zero(const struct craft_log *log, uint64_t index)
{
    uint64_t term = 0;
    return log_term_at(log, index, &term) ? term : 0;
}

const struct craft_entry *log_entry(const struct craft_log *log, uint64_t index)
{
    if (index <= log->snap_index || index > log_last_index(log)) {
        return NULL;
    }
    const struct craft_entry *e = &log->entries[index - log->snap_index - 1];
    CRAFT_ASSERT(e->index == index);
    return e;
}

const struct craft_entry *log_entries_from(const struct craft_log *log, uint64_t from, size_t *n)
{
    CRAFT_ASSERT(from > log->snap_index && from <= log_last_index(log) + 1);
    size_t offset = (size_t)(from - log->snap_index - 1);
    *n = log->n - offset;
    return log->entries + offset;
}

int log_append(struct craft_log *log, const struct craft_entry *e)
{
    CRAFT_ASSERT(e->index == log_last_index(log) + 1);
    CRAFT_ASSERT(e->term >= log_last_term(log));
    CRAFT_ASSERT(e->len == 0 || e->data != NULL);
    if (log->n == log->cap) {
        size_t cap = log->cap == 0 ? 64 : log->cap * 2;
        struct craft_entry *grown = craft_realloc(log->entries, cap * sizeof *grown);
        if (grown == NULL) {
            return CRAFT_ENOMEM;
        }
        log->entries = grown;
        log->cap = cap;
    }
    uint8_t *data = NULL;
    if (e->len > 0) {
        data = craft_malloc(e->len);
        if (data == NULL) {
            return CRAFT_ENOMEM;
        }
        memcpy(data, e->data, e->len);
    }
    struct craft_entry *slot = &log->entries[log->n++];
    *slot = *e;
    slot->data = data;
    return CRAFT_OK;
}

void log_truncate_from(struct craft_log *log, uint64_t from)
{
    CRAFT_ASSERT(from > log->snap_index && from <= log_last_index(log));
    size_t keep = (size_t)(from - log->snap_index - 1);
    for (size_t i = keep; i < log->n; i++) {
        entry_free(&log->entries[i]);
    }
    log->n = keep;
}

void log_compact(struct craft_log *log, uint64_t index)
{
    CRAFT_ASSERT(index >= log->snap_index && index <= log_last_index(log));
    if (index == log->snap_index) {
        return;
    }
    size_t drop = (size_t)(index - log->snap_index);
    uint64_t term = log->entries[drop - 1].term;
    for (size_t i = 0; i < drop; i++) {
        entry_free(&log->entries[i]);
    }
    memmove(log->entries, log->entries + drop, (log->n - drop) * sizeof *log->entries);
    log->n -= drop;
    log->snap_index = index;
    log->snap_term = term;
}

void log_reset(struct craft_log *log, uint64_t index, uint64_t term)
{
    for (size_t i = 0; i < log->n; i++) {
        entry_free(&log->entries[i]);
    }
    log->n = 0;
    log->snap_index = index;
    log->snap_term = term;
}

uint64_t log_bytes(const struct craft_log *log, uint64_t from, uint64_t to)
{
    uint64_t bytes = 0;
    for (uint64_t i = from; i <= to; i++) {
        const struct craft_entry *e = log_entry(log, i);
        if (e != NULL) {
            bytes += e->len;
        }
    }
    return bytes;
}

uint64_t log_find_conflict_by_term(const struct craft_log *log, uint64_t index, uint64_t term)
{
    CRAFT_ASSERT(index <= log_last_index(log));
    if (index <= log->snap_index) {
        return index; /* compacted: the caller falls back to a snapshot */
    }
    while (index > log->snap_index) {
        uint64_t t = log->entries[index - log->snap_index - 1].term;
        if (t <= term) {
            break;
        }
        index--;
    }
    return index;
}

bool log_is_up_to_date(const struct craft_log *log, uint64_t last_index, uint64_t last_term)
{
    uint64_t my_term = log_last_term(log);
    return last_term > my_term || (last_term == my_term && last_index >= log_last_index(log));
}
