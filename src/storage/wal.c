/* The write-ahead log: group-committed writes, reads, compaction (open is wal_recover.c). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "storage/fs_util.h"
#include "storage/wal_internal.h"
#include "storage/wal_record.h"

void craft_wal_config_default(struct craft_wal_config *cfg)
{
    cfg->segment_bytes = 64u << 20;
    cfg->record_bytes_max = 1u << 20;
}

void craft_wal_seg_path(const struct craft_wal *w, uint64_t seq, uint64_t first, bool tmp,
                        char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%016" PRIx64 "-%016" PRIx64 ".wal%s", w->dir, seq, first,
             tmp ? ".tmp" : "");
}

int craft_wal_fail(struct craft_wal *w, int err, const char *fmt, ...)
{
    CRAFT_ASSERT(err != 0);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->errmsg, sizeof(w->errmsg), fmt, ap);
    va_end(ap);
    w->failed = err;
    return err;
}

int craft_wal_pos_reserve(struct craft_wal *w, size_t extra)
{
    if (w->pos_head + w->pos_n + extra <= w->pos_cap) {
        return CRAFT_OK;
    }
    if (w->pos_head > 0) {
        memmove(w->pos, w->pos + w->pos_head, w->pos_n * sizeof(*w->pos));
        w->pos_head = 0;
    }
    size_t need = w->pos_n + extra;
    if (need <= w->pos_cap) {
        return CRAFT_OK;
    }
    size_t cap = w->pos_cap ? w->pos_cap : 64;
    while (cap < need) {
        cap *= 2;
    }
    struct wal_pos *p = realloc(w->pos, cap * sizeof(*p));
    if (p == NULL) {
        return CRAFT_ENOMEM;
    }
    w->pos = p;
    w->pos_cap = cap;
    return CRAFT_OK;
}

void craft_wal_pos_truncate(struct craft_wal *w, uint64_t t)
{
    CRAFT_ASSERT(t != 0);
    if (t < w->first || t > w->first + w->pos_n) {
        /* A restart of the log (snapshot install): nothing before t stays. */
        w->first = t;
        w->pos_head = 0;
        w->pos_n = 0;
    } else {
        w->pos_n = (size_t)(t - w->first);
    }
}

int craft_wal_seg_push(struct craft_wal *w, const struct wal_seg *seg)
{
    if (w->n_segs == w->cap_segs) {
        size_t cap = w->cap_segs ? w->cap_segs * 2 : 8;
        struct wal_seg *s = realloc(w->segs, cap * sizeof(*s));
        if (s == NULL) {
            return CRAFT_ENOMEM;
        }
        w->segs = s;
        w->cap_segs = cap;
    }
    w->segs[w->n_segs++] = *seg;
    return CRAFT_OK;
}

void craft_wal_free(struct craft_wal *w)
{
    for (size_t i = 0; i < w->n_segs; i++) {
        (void)w->fs->close(w->fs, w->segs[i].fd);
    }
    free(w->segs);
    free(w->pos);
    free(w->wbuf);
    free(w->dir);
    free(w);
}

void craft_wal_close(struct craft_wal *w)
{
    if (w != NULL) {
        craft_wal_free(w);
    }
}

uint64_t craft_wal_first_index(const struct craft_wal *w)
{
    return w->first;
}

uint64_t craft_wal_last_index(const struct craft_wal *w)
{
    return w->first + w->pos_n - 1;
}

uint64_t craft_wal_term_at(const struct craft_wal *w, uint64_t index)
{
    if (index < w->first || index > craft_wal_last_index(w)) {
        return 0;
    }
    return w->pos[w->pos_head + (index - w->first)].term;
}

const char *craft_wal_errmsg(const struct craft_wal *w)
{
    return w->errmsg;
}

uint64_t craft_wal_torn_bytes(const struct craft_wal *w)
{
    return w->torn_bytes;
}

static struct wal_seg *seg_last(struct craft_wal *w)
{
    CRAFT_ASSERT(w->n_segs > 0);
    return &w->segs[w->n_segs - 1];
}

static struct wal_seg *seg_by_seq(struct craft_wal *w, uint64_t seq)
{
    CRAFT_ASSERT(w->n_segs > 0 && seq >= w->segs[0].seq);
    CRAFT_ASSERT(seq - w->segs[0].seq < w->n_segs);
    struct wal_seg *s = &w->segs[seq - w->segs[0].seq];
    CRAFT_ASSERT(s->seq == seq);
    return s;
}

/* Writes the staged records to the last segment (no sync). */
static int wal_flush(struct craft_wal *w)
{
    if (w->wbuf_len == 0) {
        return CRAFT_OK;
    }
    struct wal_seg *s = seg_last(w);
    CRAFT_ASSERT(w->end + w->wbuf_len <= s->size);
    int err = w->fs->pwrite(w->fs, s->fd, w->wbuf, w->wbuf_len, w->end);
    if (err != 0) {
        char path[4096];
        craft_wal_seg_path(w, s->seq, s->first, false, path, sizeof(path));
        return craft_wal_fail(w, err, "%s: write of %zu bytes at offset %" PRIu64 ": %s",
                              path, w->wbuf_len, w->end, craft_strerror(err));
    }
    w->end += w->wbuf_len;
    w->wbuf_len = 0;
    return CRAFT_OK;
}

static int wal_sync_last(struct craft_wal *w)
{
    struct wal_seg *s = seg_last(w);
    int err = w->fs->fdatasync(w->fs, s->fd);
    if (err != 0) {
        char path[4096];
        craft_wal_seg_path(w, s->seq, s->first, false, path, sizeof(path));
        return craft_wal_fail(w, err, "%s: fdatasync: %s", path, craft_strerror(err));
    }
    return CRAFT_OK;
}

/* Creates segment (seq, first) durably and makes it the last one. A crash at any point
 * leaves either no segment or a complete, empty one: the file is prepared under a .tmp
 * name, synced, then renamed, and the rename is synced. */
static int wal_seg_create(struct craft_wal *w, uint64_t seq, uint64_t first)
{
    char tmp[4096], path[4096];
    craft_wal_seg_path(w, seq, first, true, tmp, sizeof(tmp));
    craft_wal_seg_path(w, seq, first, false, path, sizeof(path));
    struct craft_fs *fs = w->fs;
    uint8_t hdr[CRAFT_WAL_SEGMENT_HEADER_BYTES];
    craft_wal_seg_header_encode(hdr, seq, first);
    int fd;
    const char *what;
    int err = craft_fs_create_durable(fs, w->dir, tmp, path, w->cfg.segment_bytes, hdr,
                                      sizeof(hdr), &fd, &what);
    if (err != 0) {
        return craft_wal_fail(w, err, "%s: %s: %s", tmp, what, craft_strerror(err));
    }
    struct wal_seg seg = {.seq = seq, .first = first, .size = w->cfg.segment_bytes, .fd = fd};
    err = craft_wal_seg_push(w, &seg);
    if (err != 0) {
        (void)fs->close(fs, fd);
        return craft_wal_fail(w, err, "%s: out of memory", path);
    }
    w->end = CRAFT_WAL_SEGMENT_HEADER_BYTES;
    return CRAFT_OK;
}

/* Stages a record of `size` bytes; seq and off receive where it will be. Rolls to a new
 * segment (starting at log index `next`) when the last one cannot hold it. */
static int wal_stage(struct craft_wal *w, uint64_t size, uint64_t next, uint64_t *seq,
                     uint64_t *off, uint8_t **dst)
{
    int err;
    if (w->n_segs == 0 || w->end + w->wbuf_len + size > seg_last(w)->size) {
        if (w->n_segs > 0) {
            /* Sync the full segment first: recovery may then treat only the last
             * segment's tail as torn. */
            if ((err = wal_flush(w)) != 0 || (err = wal_sync_last(w)) != 0) {
                return err;
            }
        }
        uint64_t seq_new = w->n_segs > 0 ? seg_last(w)->seq + 1 : 1;
        if ((err = wal_seg_create(w, seq_new, next)) != 0) {
            return err;
        }
    }
    if (w->wbuf_len + size > w->wbuf_cap && (err = wal_flush(w)) != 0) {
        return err;
    }
    CRAFT_ASSERT(w->wbuf_len + size <= w->wbuf_cap);
    *seq = seg_last(w)->seq;
    *off = w->end + w->wbuf_len;
    *dst = w->wbuf + w->wbuf_len;
    w->wbuf_len += (size_t)size;
    return CRAFT_OK;
}

int craft_wal_write(struct craft_wal *w, uint64_t truncate_from,
                    const struct craft_entry *entries, size_t n)
{
    if (w->failed) {
        return CRAFT_ESHUTDOWN;
    }
    if (truncate_from == 0 && n == 0) {
        return CRAFT_OK;
    }
    if (truncate_from == 0 && w->pos_n == 0 && entries[0].index != w->first &&
        w->n_segs > 0) {
        /* Entries on an empty log may start anywhere: recorded as a restart marker, so
         * that replay (which checks every index) agrees. */
        truncate_from = entries[0].index;
    }
    /* The log as it will be once this write is durable: first, then count live entries. */
    uint64_t first = w->first;
    uint64_t count = w->pos_n;
    if (truncate_from != 0) {
        if (truncate_from < first || truncate_from > first + count) {
            first = truncate_from;
            count = 0;
        } else {
            count = truncate_from - first;
        }
    } else if (w->n_segs == 0) {
        first = entries[0].index; /* a new WAL starts where its first entry says */
    }
    uint64_t next = first + count;
    uint64_t payload_max = w->cfg.record_bytes_max - CRAFT_WAL_RECORD_HEADER_BYTES - 7;
    for (size_t k = 0; k < n; k++) {
        const struct craft_entry *e = &entries[k];
        if (e->index != next + k || e->type == 0 || (e->len > 0 && e->data == NULL)) {
            return CRAFT_EINVAL;
        }
        if (e->len > payload_max) {
            return CRAFT_ETOOBIG;
        }
    }
    if (craft_wal_pos_reserve(w, n) != 0) {
        return CRAFT_ENOMEM;
    }
    /* Positions are written past the surviving prefix (count is 0 on a restart) as records
     * are staged; they become live only once the batch is durable (on failure the WAL is
     * failed anyway). */
    size_t base = w->pos_head + (size_t)count;
    int err;
    uint64_t seq, off;
    uint8_t *dst;
    /* The index a new segment would start at: the log's next index at that point. */
    uint64_t at = w->n_segs == 0 ? first : w->first + w->pos_n;
    if (truncate_from != 0) {
        err = wal_stage(w, craft_wal_rec_size(0), at, &seq, &off, &dst);
        if (err != 0) {
            return err;
        }
        craft_wal_rec_encode(dst, CRAFT_WAL_REC_TRUNCATE, 0, 0, truncate_from, NULL, 0);
        at = next;
    }
    for (size_t k = 0; k < n; k++) {
        const struct craft_entry *e = &entries[k];
        err = wal_stage(w, craft_wal_rec_size(e->len), at, &seq, &off, &dst);
        if (err != 0) {
            return err;
        }
        craft_wal_rec_encode(dst, CRAFT_WAL_REC_ENTRY, e->type, e->term, e->index, e->data,
                             e->len);
        CRAFT_ASSERT(off <= UINT32_MAX);
        w->pos[base + k] =
            (struct wal_pos){.term = e->term, .seq = seq, .off = (uint32_t)off, .len = e->len};
        at++;
    }
    if ((err = wal_flush(w)) != 0 || (err = wal_sync_last(w)) != 0) {
        return err;
    }
    w->first = first;
    w->pos_n = (size_t)count + n;
    return CRAFT_OK;
}

int craft_wal_append(struct craft_wal *w, const struct craft_entry *entries, size_t n)
{
    return craft_wal_write(w, 0, entries, n);
}

int craft_wal_truncate(struct craft_wal *w, uint64_t from)
{
    if (from == 0) {
        return CRAFT_EINVAL;
    }
    return craft_wal_write(w, from, NULL, 0);
}

int craft_wal_compact(struct craft_wal *w, uint64_t through)
{
    if (w->failed) {
        return CRAFT_ESHUTDOWN;
    }
    if (w->n_segs <= 1) {
        return CRAFT_OK;
    }
    /* Live entries sit in non-decreasing segment order, so every segment before the one
     * holding entry through + 1 holds only entries <= through (or dead ones). */
    uint64_t k = through + 1 < w->first ? w->first : through + 1;
    uint64_t last = craft_wal_last_index(w);
    uint64_t keep = k <= last ? w->pos[w->pos_head + (k - w->first)].seq : seg_last(w)->seq;
    size_t n_drop = (size_t)(keep - w->segs[0].seq);
    if (n_drop == 0) {
        return CRAFT_OK;
    }
    CRAFT_ASSERT(n_drop < w->n_segs);
    /* Oldest first: a crash part-way leaves a consecutive run of segments. */
    for (size_t i = 0; i < n_drop; i++) {
        struct wal_seg *s = &w->segs[i];
        char path[4096];
        craft_wal_seg_path(w, s->seq, s->first, false, path, sizeof(path));
        (void)w->fs->close(w->fs, s->fd);
        s->fd = -1;
        int err = w->fs->unlink(w->fs, path);
        if (err != 0) {
            for (size_t j = i + 1; j < n_drop; j++) {
                (void)w->fs->close(w->fs, w->segs[j].fd);
            }
            memmove(w->segs, w->segs + n_drop, (w->n_segs - n_drop) * sizeof(*w->segs));
            w->n_segs -= n_drop;
            return craft_wal_fail(w, err, "%s: unlink: %s", path, craft_strerror(err));
        }
    }
    memmove(w->segs, w->segs + n_drop, (w->n_segs - n_drop) * sizeof(*w->segs));
    w->n_segs -= n_drop;
    int err = w->fs->fsync_dir(w->fs, w->dir);
    if (err != 0) {
        return craft_wal_fail(w, err, "%s: fsync_dir: %s", w->dir, craft_strerror(err));
    }
    size_t j = 0;
    while (j < w->pos_n && w->pos[w->pos_head + j].seq < keep) {
        j++;
    }
    w->pos_head += j;
    w->pos_n -= j;
    w->first += j;
    return CRAFT_OK;
}

void craft_wal_entries_free(struct craft_wal_entries *e)
{
    free(e->entries);
    free(e->data);
    memset(e, 0, sizeof(*e));
}

int craft_wal_read(struct craft_wal *w, uint64_t lo, uint64_t hi, struct craft_wal_entries *out)
{
    memset(out, 0, sizeof(*out));
    if (w->failed) {
        return CRAFT_ESHUTDOWN;
    }
    if (lo == hi + 1) {
        return CRAFT_OK;
    }
    if (lo > hi || lo < w->first || hi > craft_wal_last_index(w)) {
        return CRAFT_EINVAL;
    }
    size_t n = (size_t)(hi - lo + 1);
    const struct wal_pos *pos = w->pos + w->pos_head + (lo - w->first);
    size_t data_bytes = 0;
    uint32_t len_max = 0;
    for (size_t k = 0; k < n; k++) {
        data_bytes += pos[k].len;
        len_max = pos[k].len > len_max ? pos[k].len : len_max;
    }
    uint64_t rec_max = craft_wal_rec_size(len_max);
    out->entries = calloc(n, sizeof(*out->entries));
    out->data = data_bytes ? malloc(data_bytes) : NULL;
    uint8_t *scratch = malloc((size_t)rec_max);
    if (out->entries == NULL || (data_bytes && out->data == NULL) || scratch == NULL) {
        free(scratch);
        craft_wal_entries_free(out);
        return CRAFT_ENOMEM;
    }
    size_t data_off = 0;
    int err = CRAFT_OK;
    for (size_t k = 0; k < n && err == 0; k++) {
        struct wal_seg *s = seg_by_seq(w, pos[k].seq);
        uint64_t size = craft_wal_rec_size(pos[k].len);
        size_t got;
        char path[4096];
        err = w->fs->pread(w->fs, s->fd, scratch, (size_t)size, pos[k].off, &got);
        if (err != 0) {
            craft_wal_seg_path(w, s->seq, s->first, false, path, sizeof(path));
            err = craft_wal_fail(w, err, "%s: read at offset %" PRIu32 ": %s", path,
                                 pos[k].off, craft_strerror(err));
            break;
        }
        struct craft_wal_rec r;
        if (got != size || !craft_wal_rec_decode(scratch, size, &r) ||
            r.kind != CRAFT_WAL_REC_ENTRY || r.index != lo + k || r.term != pos[k].term ||
            r.len != pos[k].len) {
            craft_wal_seg_path(w, s->seq, s->first, false, path, sizeof(path));
            err = craft_wal_fail(w, CRAFT_ECORRUPT,
                                 "%s: record of entry %" PRIu64 " at offset %" PRIu32
                                 " changed on disk since open",
                                 path, lo + k, pos[k].off);
            break;
        }
        struct craft_entry *e = &out->entries[k];
        e->index = r.index;
        e->term = r.term;
        e->type = r.entry_type;
        e->len = r.len;
        e->data = r.len ? out->data + data_off : NULL;
        if (r.len) {
            memcpy(out->data + data_off, r.payload, r.len);
        }
        data_off += r.len;
    }
    free(scratch);
    if (err != 0) {
        craft_wal_entries_free(out);
        return err;
    }
    out->n = n;
    return CRAFT_OK;
}
