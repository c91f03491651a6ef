#include "sim/disk.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "sim/world.h"

#define HS_BYTES 16
#define ENTRY_OVERHEAD_BYTES 17

static void reserve(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) {
        return;
    }
    size_t n = *cap ? *cap : 16;
    while (n < need) {
        n *= 2;
    }
    *buf = sim_xrealloc(*buf, n * elem);
    *cap = n;
}

void sim_disk_init(struct sim_disk *disk)
{
    *disk = (struct sim_disk){0};
    disk->log_bytes = HS_BYTES;
}

static void write_free(struct sim_write *w)
{
    free(w->entries);
    free(w->data);
    free(w->chunk);
    free(w);
}

void sim_disk_free(struct sim_disk *disk)
{
    sim_disk_crash(disk);
    for (struct sim_write *w = disk->free_list; w != NULL;) {
        struct sim_write *next = w->next;
        write_free(w);
        w = next;
    }
    for (size_t i = 0; i < disk->n_log; i++) {
        free((void *)disk->log[i].data);
    }
    free(disk->log);
    free(disk->snap_data);
    free(disk->recv);
    *disk = (struct sim_disk){0};
}

struct sim_write *sim_disk_begin(struct sim_disk *disk, const struct craft_batch *b,
                                 uint64_t complete_at)
{
    struct sim_write *w = disk->free_list;
    if (w != NULL) {
        disk->free_list = w->next;
    } else {
        w = calloc(1, sizeof *w);
        CRAFT_ASSERT(w != NULL);
    }
    if (complete_at < disk->last_complete_at) {
        complete_at = disk->last_complete_at;
    }
    disk->last_complete_at = complete_at;
    w->next = NULL;
    w->seq = b->seq;
    w->complete_at = complete_at;
    w->has_hs = b->has_hard_state;
    w->hs = b->hs;
    w->truncate_from = b->truncate_from;
    size_t bytes = 0;
    for (size_t i = 0; i < b->n_entries; i++) {
        bytes += b->entries[i].len;
    }
    reserve((void **)&w->entries, &w->cap_entries, b->n_entries, sizeof *w->entries);
    reserve((void **)&w->data, &w->cap_data, bytes, 1);
    size_t off = 0;
    for (size_t i = 0; i < b->n_entries; i++) {
        w->entries[i] = b->entries[i];
        if (b->entries[i].len > 0) {
            memcpy(w->data + off, b->entries[i].data, b->entries[i].len);
            w->entries[i].data = w->data + off;
            off += b->entries[i].len;
        } else {
            w->entries[i].data = NULL;
        }
    }
    w->n_entries = b->n_entries;
    w->has_snap_chunk = b->has_snap_chunk;
    w->snap_install = b->snap_install;
    w->snap_keep_log = b->snap_keep_log;
    w->snap_meta = b->snap_meta;
    w->snap_offset = b->snap_offset;
    w->chunk_len = 0;
    if (b->has_snap_chunk && b->snap_chunk_len > 0) {
        reserve((void **)&w->chunk, &w->cap_chunk, b->snap_chunk_len, 1);
        memcpy(w->chunk, b->snap_chunk, b->snap_chunk_len);
        w->chunk_len = b->snap_chunk_len;
    }
    if (disk->tail != NULL) {
        disk->tail->next = w;
    } else {
        disk->head = w;
    }
    disk->tail = w;
    disk->n_pending++;
    return w;
}

struct sim_write *sim_disk_head(struct sim_disk *disk)
{
    return disk->head;
}

static size_t entry_bytes(const struct craft_entry *e)
{
    return ENTRY_OVERHEAD_BYTES + e->len;
}

/* Drops log entries with index >= from. */
static void truncate_tail(struct sim_disk *disk, uint64_t from)
{
    while (disk->n_log > 0 && disk->log[disk->n_log - 1].index >= from) {
        struct craft_entry *e = &disk->log[--disk->n_log];
        disk->log_bytes -= entry_bytes(e);
        free((void *)e->data);
    }
}

/* Drops log entries with index <= through. */
static void drop_head(struct sim_disk *disk, uint64_t through)
{
    size_t k = 0;
    while (k < disk->n_log && disk->log[k].index <= through) {
        disk->log_bytes -= entry_bytes(&disk->log[k]);
        free((void *)disk->log[k].data);
        k++;
    }
    if (k > 0) {
        memmove(disk->log, disk->log + k, (disk->n_log - k) * sizeof *disk->log);
        disk->n_log -= k;
    }
}

uint64_t sim_disk_last_index(const struct sim_disk *disk)
{
    return disk->n_log ? disk->log[disk->n_log - 1].index : disk->snap.index;
}

static void append(struct sim_disk *disk, const struct craft_entry *e)
{
    if (e->index <= disk->snap.index) {
        return; /* already covered by a snapshot the application took meanwhile */
    }
    /* The core only appends contiguously after what it told us to truncate. */
    CRAFT_ASSERT(e->index == sim_disk_last_index(disk) + 1);
    reserve((void **)&disk->log, &disk->cap_log, disk->n_log + 1, sizeof *disk->log);
    struct craft_entry *d = &disk->log[disk->n_log++];
    *d = *e;
    if (e->len > 0) {
        uint8_t *data = sim_xrealloc(NULL, e->len);
        memcpy(data, e->data, e->len);
        d->data = data;
    } else {
        d->data = NULL;
    }
    disk->log_bytes += entry_bytes(d);
}

void sim_disk_force(struct sim_disk *disk, const struct craft_hard_state *hs,
                    const struct craft_entry *e)
{
    CRAFT_ASSERT(disk->n_pending == 0 && hs->term >= disk->hs.term);
    disk->hs = *hs;
    append(disk, e);
}

struct sim_write *sim_disk_apply_head(struct sim_disk *disk)
{
    struct sim_write *w = disk->head;
    CRAFT_ASSERT(w != NULL);
    disk->head = w->next;
    if (disk->head == NULL) {
        disk->tail = NULL;
    }
    disk->n_pending--;
    if (w->has_hs) {
        disk->hs = w->hs;
    }
    if (w->truncate_from != 0) {
        truncate_tail(disk, w->truncate_from);
    }
    /* The batch order of core.h: the snapshot (and its install) before the entries, which
     * then start after the snapshot. */
    if (w->has_snap_chunk) {
        if (w->snap_offset == 0) {
            disk->recv_len = 0;
        }
        size_t end = (size_t)w->snap_offset + w->chunk_len;
        reserve((void **)&disk->recv, &disk->recv_cap, end, 1);
        if (w->chunk_len > 0) {
            memcpy(disk->recv + w->snap_offset, w->chunk, w->chunk_len);
        }
        if (end > disk->recv_len) {
            disk->recv_len = end;
        }
    }
    if (w->snap_install) {
        free(disk->snap_data);
        disk->snap_data = disk->recv;
        disk->snap_len = disk->recv_len;
        disk->recv = NULL;
        disk->recv_cap = 0;
        disk->recv_len = 0;
        disk->snap = w->snap_meta;
        if (w->snap_keep_log) {
            drop_head(disk, w->snap_meta.index);
        } else {
            truncate_tail(disk, 0);
        }
    }
    for (size_t i = 0; i < w->n_entries; i++) {
        append(disk, &w->entries[i]);
    }
    return w;
}

void sim_disk_release(struct sim_disk *disk, struct sim_write *w)
{
    w->next = disk->free_list;
    disk->free_list = w;
}

void sim_disk_crash(struct sim_disk *disk)
{
    while (disk->head != NULL) {
        struct sim_write *w = disk->head;
        disk->head = w->next;
        sim_disk_release(disk, w);
    }
    disk->tail = NULL;
    disk->n_pending = 0;
    disk->last_complete_at = 0;
    disk->recv_len = 0;
}

void sim_disk_save_snapshot(struct sim_disk *disk, const struct craft_snapshot_meta *meta,
                            const uint8_t *data, size_t len)
{
    uint8_t *copy = sim_xrealloc(NULL, len);
    if (len > 0) {
        memcpy(copy, data, len);
    }
    free(disk->snap_data);
    disk->snap_data = copy;
    disk->snap_len = len;
    disk->snap = *meta;
    drop_head(disk, meta->index);
}

uint64_t sim_disk_term_at(const struct sim_disk *disk, uint64_t index, bool *found)
{
    *found = true;
    if (index == disk->snap.index) {
        return disk->snap.term;
    }
    if (disk->n_log > 0 && index >= disk->log[0].index &&
        index <= disk->log[disk->n_log - 1].index) {
        const struct craft_entry *e = &disk->log[index - disk->log[0].index];
        CRAFT_ASSERT(e->index == index);
        return e->term;
    }
    *found = false;
    return 0;
}

size_t sim_disk_log_size(const struct sim_disk *disk)
{
    return disk->log_bytes;
}
