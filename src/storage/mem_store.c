/* In-memory log and stable stores: the WAL's and stable store's semantics without a disk.
 * Every operation validates fully and allocates before it changes anything, so that an
 * error leaves the store as it was (what the WAL promises for its argument errors). */
#include "base/bytes.h"
#include "storage/mem_store.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "storage/stable.h"

struct mem_ent {
    uint64_t term;
    uint8_t type;
    uint32_t len;
    uint8_t *data; /* owned; NULL when len is 0 */
};

struct craft_mem_log {
    uint64_t entry_bytes_max;
    uint64_t first;
    struct mem_ent *ents; /* ents[head + k] holds index first + k */
    size_t head, n, cap;
};

struct craft_mem_log *craft_mem_log_create(uint64_t entry_bytes_max)
{
    struct craft_mem_log *l = calloc(1, sizeof(*l));
    if (l != NULL) {
        l->entry_bytes_max = entry_bytes_max;
        l->first = 1;
    }
    return l;
}

static void ents_free(struct mem_ent *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].data);
    }
}

void craft_mem_log_destroy(struct craft_mem_log *l)
{
    if (l == NULL) {
        return;
    }
    ents_free(l->ents + l->head, l->n);
    free(l->ents);
    free(l);
}

uint64_t craft_mem_log_first_index(const struct craft_mem_log *l)
{
    return l->first;
}

uint64_t craft_mem_log_last_index(const struct craft_mem_log *l)
{
    return l->first + l->n - 1;
}

uint64_t craft_mem_log_term_at(const struct craft_mem_log *l, uint64_t index)
{
    if (index < l->first || index - l->first >= l->n) {
        return 0;
    }
    return l->ents[l->head + (index - l->first)].term;
}

/* Makes room for `total` live entries starting at ents[0]. */
static int log_reserve(struct craft_mem_log *l, size_t total)
{
    if (l->head > 0) {
        memmove(l->ents, l->ents + l->head, l->n * sizeof(*l->ents));
        l->head = 0;
    }
    if (total <= l->cap) {
        return CRAFT_OK;
    }
    size_t cap = l->cap == 0 ? 16 : l->cap;
    while (cap < total) {
        cap *= 2;
    }
    struct mem_ent *e = realloc(l->ents, cap * sizeof(*e));
    if (e == NULL) {
        return CRAFT_ENOMEM;
    }
    l->ents = e;
    l->cap = cap;
    return CRAFT_OK;
}

int craft_mem_log_write(struct craft_mem_log *l, uint64_t truncate_from,
                        const struct craft_entry *entries, size_t n)
{
    if (truncate_from == 0 && n == 0) {
        return CRAFT_OK;
    }
    uint64_t first = l->first;
    uint64_t count = l->n;
    if (truncate_from != 0) {
        if (truncate_from < first || truncate_from > first + count) {
            first = truncate_from;
            count = 0;
        } else {
            count = truncate_from - first;
        }
    } else if (count == 0) {
        first = entries[0].index; /* an empty log restarts where its first entry says */
    }
    uint64_t next = first + count;
    for (size_t k = 0; k < n; k++) {
        const struct craft_entry *e = &entries[k];
        if (e->index != next + k || e->type == 0 || (e->len > 0 && e->data == NULL)) {
            return CRAFT_EINVAL;
        }
        if (l->entry_bytes_max != 0 && e->len > l->entry_bytes_max) {
            return CRAFT_ETOOBIG;
        }
    }
    struct mem_ent *copies = n > 0 ? calloc(n, sizeof(*copies)) : NULL;
    if (n > 0 && copies == NULL) {
        return CRAFT_ENOMEM;
    }
    for (size_t k = 0; k < n; k++) {
        const struct craft_entry *e = &entries[k];
        copies[k] = (struct mem_ent){.term = e->term, .type = e->type, .len = e->len};
        if (e->len > 0) {
            copies[k].data = malloc(e->len);
            if (copies[k].data == NULL) {
                ents_free(copies, k);
                free(copies);
                return CRAFT_ENOMEM;
            }
            memcpy(copies[k].data, e->data, e->len);
        }
    }
    /* count <= l->n, so the surviving prefix fits; reserve for what comes after it. */
    CRAFT_ASSERT(count <= l->n);
    if (log_reserve(l, l->n > count + n ? l->n : (size_t)count + n) != 0) {
        ents_free(copies, n);
        free(copies);
        return CRAFT_ENOMEM;
    }
    ents_free(l->ents + count, l->n - (size_t)count);
    if (n > 0) {
        memcpy(l->ents + count, copies, n * sizeof(*copies));
    }
    free(copies);
    l->first = first;
    l->n = (size_t)count + n;
    return CRAFT_OK;
}

int craft_mem_log_append(struct craft_mem_log *l, const struct craft_entry *entries, size_t n)
{
    return craft_mem_log_write(l, 0, entries, n);
}

int craft_mem_log_truncate(struct craft_mem_log *l, uint64_t from)
{
    if (from == 0) {
        return CRAFT_EINVAL;
    }
    return craft_mem_log_write(l, from, NULL, 0);
}

void craft_mem_log_compact(struct craft_mem_log *l, uint64_t through)
{
    if (through < l->first) {
        return;
    }
    uint64_t drop = through - l->first + 1;
    if (drop >= l->n) {
        ents_free(l->ents + l->head, l->n);
        l->first += l->n;
        if (through + 1 > l->first) {
            l->first = through + 1;
        }
        l->head = 0;
        l->n = 0;
        return;
    }
    ents_free(l->ents + l->head, (size_t)drop);
    l->head += (size_t)drop;
    l->n -= (size_t)drop;
    l->first += drop;
}

int craft_mem_log_read(const struct craft_mem_log *l, uint64_t lo, uint64_t hi,
                       struct craft_wal_entries *out)
{
    memset(out, 0, sizeof(*out));
    if (lo == hi + 1) {
        return CRAFT_OK;
    }
    if (lo > hi || lo < l->first || hi > craft_mem_log_last_index(l)) {
        return CRAFT_EINVAL;
    }
    size_t n = (size_t)(hi - lo + 1);
    const struct mem_ent *src = l->ents + l->head + (lo - l->first);
    size_t bytes = 0;
    for (size_t k = 0; k < n; k++) {
        bytes += src[k].len;
    }
    out->entries = calloc(n, sizeof(*out->entries));
    out->data = bytes > 0 ? malloc(bytes) : NULL;
    if (out->entries == NULL || (bytes > 0 && out->data == NULL)) {
        craft_wal_entries_free(out);
        memset(out, 0, sizeof(*out));
        return CRAFT_ENOMEM;
    }
    size_t off = 0;
    for (size_t k = 0; k < n; k++) {
        out->entries[k] = (struct craft_entry){
            .term = src[k].term,
            .index = lo + k,
            .type = src[k].type,
            .len = src[k].len,
            .data = src[k].len > 0 ? out->data + off : NULL,
        };
        if (src[k].len > 0) {
            memcpy(out->data + off, src[k].data, src[k].len);
        }
        off += src[k].len;
    }
    out->n = n;
    return CRAFT_OK;
}

/* ---- the stable store ---- */

struct craft_mem_stable {
    bool has_value;
    size_t len;
    uint8_t value[CRAFT_STABLE_BYTES_MAX];
};

struct craft_mem_stable *craft_mem_stable_create(void)
{
    return calloc(1, sizeof(struct craft_mem_stable));
}

void craft_mem_stable_destroy(struct craft_mem_stable *st)
{
    free(st);
}

int craft_mem_stable_put(struct craft_mem_stable *st, const void *data, size_t len)
{
    if (len > CRAFT_STABLE_BYTES_MAX) {
        return CRAFT_ETOOBIG;
    }
    if (len > 0) {
        memcpy(st->value, data, len);
    }
    st->len = len;
    st->has_value = true;
    return CRAFT_OK;
}

int craft_mem_stable_get(const struct craft_mem_stable *st, void *buf, size_t cap, size_t *len)
{
    if (!st->has_value) {
        return CRAFT_ENOTFOUND;
    }
    *len = st->len;
    if (cap < st->len) {
        return CRAFT_ETOOBIG;
    }
    if (st->len > 0) {
        memcpy(buf, st->value, st->len);
    }
    return CRAFT_OK;
}

int craft_mem_stable_put_hard_state(struct craft_mem_stable *st, const struct craft_hard_state *hs)
{
    uint8_t buf[16];
    craft_put_u64(buf, hs->term);
    craft_put_u64(buf + 8, hs->vote);
    return craft_mem_stable_put(st, buf, sizeof(buf));
}

int craft_mem_stable_get_hard_state(const struct craft_mem_stable *st,
                                    struct craft_hard_state *hs)
{
    uint8_t buf[16];
    size_t len = 0;
    int err = craft_mem_stable_get(st, buf, sizeof(buf), &len);
    if (err == CRAFT_ETOOBIG) {
        return CRAFT_ECORRUPT;
    }
    if (err != 0) {
        return err;
    }
    if (len != sizeof(buf)) {
        return CRAFT_ECORRUPT;
    }
    hs->term = craft_get_u64(buf);
    hs->vote = craft_get_u64(buf + 8);
    return CRAFT_OK;
}
