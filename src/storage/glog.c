/* The group log: writes, reads, compaction and the per-group index (open is
 * glog_recover.c, the encoding glog_format.c). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "storage/fs_util.h"
#include "storage/glog_internal.h"

void craft_glog_config_default(struct craft_glog_config *cfg)
{
    cfg->segment_bytes = 64u << 20;
    cfg->record_bytes_max = 1u << 20;
    cfg->pin_segments_max = GLOG_PIN_SEGMENTS_DEFAULT;
}

void glog_seg_path(const struct craft_glog *l, uint64_t seq, bool tmp, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%016" PRIx64 ".glog%s", l->dir, seq, tmp ? ".tmp" : "");
}

int glog_fail(struct craft_glog *l, int err, const char *fmt, ...)
{
    CRAFT_ASSERT(err != 0);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->errmsg, sizeof(l->errmsg), fmt, ap);
    va_end(ap);
    l->failed = err;
    return err;
}

/* ---- groups ---- */

/* The position of group id in l->groups, or where it would be inserted. */
static size_t group_slot(const struct craft_glog *l, uint64_t id)
{
    size_t lo = 0, hi = l->n_groups;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->groups[mid].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

struct glog_group *glog_group_find(const struct craft_glog *l, uint64_t id)
{
    size_t i = group_slot(l, id);
    return i < l->n_groups && l->groups[i].id == id ? &l->groups[i] : NULL;
}

struct glog_group *glog_group_get(struct craft_glog *l, uint64_t id)
{
    size_t i = group_slot(l, id);
    if (i < l->n_groups && l->groups[i].id == id) {
        return &l->groups[i];
    }
    if (l->n_groups == l->cap_groups) {
        size_t cap = l->cap_groups ? l->cap_groups * 2 : 8;
        struct glog_group *g = realloc(l->groups, cap * sizeof(*g));
        if (g == NULL) {
            return NULL;
        }
        l->groups = g;
        l->cap_groups = cap;
    }
    memmove(&l->groups[i + 1], &l->groups[i], (l->n_groups - i) * sizeof(*l->groups));
    l->n_groups++;
    l->groups[i] = (struct glog_group){.id = id, .first = 1};
    return &l->groups[i];
}

int glog_pos_reserve(struct glog_group *g, size_t extra)
{
    if (g->head + g->n + extra <= g->cap) {
        return CRAFT_OK;
    }
    if (g->head > 0) {
        memmove(g->pos, g->pos + g->head, g->n * sizeof(*g->pos));
        g->head = 0;
    }
    size_t need = g->n + extra;
    if (need <= g->cap) {
        return CRAFT_OK;
    }
    size_t cap = g->cap ? g->cap : 16;
    while (cap < need) {
        cap *= 2;
    }
    struct glog_pos *p = realloc(g->pos, cap * sizeof(*p));
    if (p == NULL) {
        return CRAFT_ENOMEM;
    }
    g->pos = p;
    g->cap = cap;
    return CRAFT_OK;
}

void glog_pos_truncate(struct glog_group *g, uint64_t t, uint64_t rec_seq)
{
    CRAFT_ASSERT(t != 0);
    if (t < g->first || t > g->first + g->n) {
        /* A restart of the group's log (a snapshot install): nothing before t stays. */
        g->first = t;
        g->head = 0;
        g->n = 0;
    } else {
        g->n = (size_t)(t - g->first);
    }
    if (g->n == 0) {
        g->anchor_seq = rec_seq; /* this marker is what says where the log starts */
    }
}

void glog_pos_compact(struct glog_group *g, uint64_t through, uint64_t rec_seq)
{
    if (through < g->first) {
        return;
    }
    uint64_t drop = through - g->first + 1;
    if (drop >= g->n) {
        g->first = through + 1;
        g->head = 0;
        g->n = 0;
        g->anchor_seq = rec_seq; /* this record is what says where the log starts */
    } else {
        g->head += (size_t)drop;
        g->n -= (size_t)drop;
        g->first = through + 1;
    }
}

/* ---- segments ---- */

int glog_seg_push(struct craft_glog *l, const struct glog_seg *seg)
{
    CRAFT_ASSERT(l->n_segs == 0 || seg->seq == l->segs[l->n_segs - 1].seq + 1);
    if (l->n_segs == l->cap_segs) {
        size_t cap = l->cap_segs ? l->cap_segs * 2 : 8;
        struct glog_seg *s = realloc(l->segs, cap * sizeof(*s));
        if (s == NULL) {
            return CRAFT_ENOMEM;
        }
        l->segs = s;
        l->cap_segs = cap;
    }
    l->segs[l->n_segs++] = *seg;
    return CRAFT_OK;
}

static const struct glog_seg *seg_of(const struct craft_glog *l, uint64_t seq)
{
    CRAFT_ASSERT(l->n_segs > 0 && seq >= l->segs[0].seq &&
                 seq - l->segs[0].seq < l->n_segs);
    return &l->segs[seq - l->segs[0].seq];
}

int glog_seg_create(struct craft_glog *l, uint64_t seq)
{
    char tmp[4096], path[4096];
    glog_seg_path(l, seq, true, tmp, sizeof(tmp));
    glog_seg_path(l, seq, false, path, sizeof(path));
    uint8_t hdr[CRAFT_GLOG_SEGMENT_HEADER_BYTES];
    glog_seg_header_encode(hdr, seq);
    int fd;
    const char *what;
    int err = craft_fs_create_durable(l->fs, l->dir, tmp, path, l->cfg.segment_bytes, hdr,
                                      sizeof(hdr), &fd, &what);
    if (err != 0) {
        return glog_fail(l, err, "%s: %s: %s", tmp, what, craft_strerror(err));
    }
    struct glog_seg seg = {.seq = seq, .size = l->cfg.segment_bytes, .fd = fd};
    err = glog_seg_push(l, &seg);
    if (err != 0) {
        (void)l->fs->close(l->fs, fd);
        return glog_fail(l, err, "%s: out of memory", path);
    }
    l->end = CRAFT_GLOG_SEGMENT_HEADER_BYTES;
    return CRAFT_OK;
}

void glog_free(struct craft_glog *l)
{
    for (size_t i = 0; i < l->n_segs; i++) {
        (void)l->fs->close(l->fs, l->segs[i].fd);
    }
    for (size_t i = 0; i < l->n_groups; i++) {
        free(l->groups[i].pos);
    }
    free(l->groups);
    free(l->segs);
    free(l->wbuf);
    free(l->dir);
    free(l);
}

void craft_glog_close(struct craft_glog *l)
{
    if (l != NULL) {
        glog_free(l);
    }
}

/* ---- writing ---- */

/* Writes the staged records at the last segment's end and makes them durable. */
static int flush(struct craft_glog *l)
{
    if (l->wbuf_len == 0) {
        return CRAFT_OK;
    }
    const struct glog_seg *seg = &l->segs[l->n_segs - 1];
    CRAFT_ASSERT(l->end + l->wbuf_len <= seg->size);
    int err = l->fs->pwrite(l->fs, seg->fd, l->wbuf, l->wbuf_len, l->end);
    if (err == 0) {
        err = l->fs->fdatasync(l->fs, seg->fd);
        l->syncs++;
    }
    if (err != 0) {
        char path[4096];
        glog_seg_path(l, seg->seq, false, path, sizeof(path));
        return glog_fail(l, err, "%s: write at %" PRIu64 ": %s", path, l->end,
                         craft_strerror(err));
    }
    l->end += l->wbuf_len;
    l->wbuf_len = 0;
    return CRAFT_OK;
}

/* Stages a record of `size` bytes: *dst is where to encode it, *seq and *off where it
 * will be on disk. A record never crosses a segment: when the last one cannot hold it, the
 * staged records are made durable and the next segment is created (so only the last
 * segment can ever have a torn tail). */
static int stage(struct craft_glog *l, uint64_t size, uint64_t *seq, uint64_t *off, uint8_t **dst)
{
    CRAFT_ASSERT(size <= l->cfg.record_bytes_max);
    const struct glog_seg *seg = &l->segs[l->n_segs - 1];
    if (l->end + l->wbuf_len + size > seg->size) {
        int err = flush(l);
        if (err == 0) {
            err = glog_seg_create(l, seg->seq + 1);
        }
        if (err != 0) {
            return err;
        }
    }
    if (l->wbuf_len + size > l->wbuf_cap) {
        size_t cap = l->wbuf_cap ? l->wbuf_cap : 64u << 10;
        while (cap < l->wbuf_len + size) {
            cap *= 2;
        }
        uint8_t *b = realloc(l->wbuf, cap);
        if (b == NULL) {
            return glog_fail(l, CRAFT_ENOMEM, "%s: out of memory staging a write", l->dir);
        }
        l->wbuf = b;
        l->wbuf_cap = cap;
    }
    *seq = l->segs[l->n_segs - 1].seq;
    *off = l->end + l->wbuf_len;
    *dst = l->wbuf + l->wbuf_len;
    l->wbuf_len += size;
    return CRAFT_OK;
}

static int stage_meta(struct craft_glog *l, uint8_t kind, uint64_t group, uint64_t term,
                      uint64_t index, uint64_t *seq)
{
    uint64_t off;
    uint8_t *dst;
    int err = stage(l, glog_rec_size(0), seq, &off, &dst);
    if (err == 0) {
        glog_rec_encode(dst, kind, 0, group, term, index, NULL, 0);
    }
    return err;
}

/* Checks u against its group's log as it stands (g NULL: a group never written). */
static int validate(const struct craft_glog *l, const struct glog_group *g,
                    const struct craft_glog_update *u)
{
    uint64_t first = g ? g->first : 1, n = g ? g->n : 0;
    if (u->truncate_from != 0) {
        uint64_t t = u->truncate_from;
        if (t < first || t > first + n) {
            first = t;
            n = 0;
        } else {
            n = t - first;
        }
    }
    for (size_t i = 0; i < u->n; i++) {
        const struct craft_entry *e = &u->entries[i];
        if (e->type == 0 || (e->len > 0 && e->data == NULL)) {
            return CRAFT_EINVAL;
        }
        if (glog_rec_size(e->len) > l->cfg.record_bytes_max) {
            return CRAFT_ETOOBIG;
        }
        bool restart = i == 0 && n == 0; /* an empty log (maybe just emptied): anywhere */
        uint64_t want = i == 0 ? (u->truncate_from != 0 ? u->truncate_from : first + n)
                               : u->entries[i - 1].index + 1;
        if (!restart && e->index != want) {
            return CRAFT_EINVAL;
        }
    }
    return CRAFT_OK;
}

int craft_glog_write(struct craft_glog *l, const struct craft_glog_update *ups, size_t n)
{
    if (l->failed) {
        return CRAFT_ESHUTDOWN;
    }
    CRAFT_ASSERT(l->wbuf_len == 0);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (ups[j].group == ups[i].group) {
                return CRAFT_EINVAL; /* one part per group */
            }
        }
        int err = validate(l, glog_group_find(l, ups[i].group), &ups[i]);
        if (err != 0) {
            return err;
        }
    }
    /* Memory first, so that an allocation failure leaves the log as it was. */
    for (size_t i = 0; i < n; i++) {
        struct glog_group *g = glog_group_get(l, ups[i].group);
        if (g == NULL || glog_pos_reserve(g, ups[i].n) != 0) {
            return CRAFT_ENOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct craft_glog_update *u = &ups[i];
        struct glog_group *g = glog_group_find(l, u->group);
        CRAFT_ASSERT(g != NULL);
        uint64_t seq;
        if (u->has_hard_state) {
            int err = stage_meta(l, GLOG_REC_HARD_STATE, u->group, u->hs.term, u->hs.vote, &seq);
            if (err != 0) {
                return err;
            }
            g->has_hs = true;
            g->hs = u->hs;
            g->hs_seq = seq;
        }
        if (u->truncate_from != 0) {
            int err = stage_meta(l, GLOG_REC_TRUNCATE, u->group, 0, u->truncate_from, &seq);
            if (err != 0) {
                return err;
            }
            glog_pos_truncate(g, u->truncate_from, seq);
        }
        for (size_t k = 0; k < u->n; k++) {
            const struct craft_entry *e = &u->entries[k];
            uint64_t off;
            uint8_t *dst;
            int err = stage(l, glog_rec_size(e->len), &seq, &off, &dst);
            if (err != 0) {
                return err;
            }
            glog_rec_encode(dst, GLOG_REC_ENTRY, e->type, u->group, e->term, e->index, e->data,
                            e->len);
            if (g->n == 0) {
                g->first = e->index; /* a restart, or the first entry after one */
                g->head = 0;
                g->anchor_seq = seq;
            }
            CRAFT_ASSERT(e->index == g->first + g->n && g->head + g->n < g->cap);
            g->pos[g->head + g->n++] = (struct glog_pos){
                .term = e->term, .seq = seq, .off = (uint32_t)off, .len = e->len};
        }
    }
    return flush(l);
}

/* ---- compaction ---- */

/* Drops the segments before `bound` (never the last one), oldest first. */
static int drop_segments(struct craft_glog *l, uint64_t bound)
{
    size_t k = 0;
    while (k + 1 < l->n_segs && l->segs[k].seq < bound) {
        char path[4096];
        glog_seg_path(l, l->segs[k].seq, false, path, sizeof(path));
        (void)l->fs->close(l->fs, l->segs[k].fd);
        l->segs[k].fd = -1;
        int err = l->fs->unlink(l->fs, path);
        k++;
        if (err != 0) {
            memmove(l->segs, l->segs + k, (l->n_segs - k) * sizeof(*l->segs));
            l->n_segs -= k;
            return glog_fail(l, err, "%s: unlink: %s", path, craft_strerror(err));
        }
    }
    if (k == 0) {
        return CRAFT_OK;
    }
    memmove(l->segs, l->segs + k, (l->n_segs - k) * sizeof(*l->segs));
    l->n_segs -= k;
    int err = l->fs->fsync_dir(l->fs, l->dir);
    return err == 0 ? CRAFT_OK
                    : glog_fail(l, err, "%s: fsync_dir: %s", l->dir, craft_strerror(err));
}

/* Writes again, at the head, every live entry of each group that has one in a segment
 * older than `target`, and points the group's index at the copies. A group's copies are
 * its whole live log, in order (a run of COPY records): at recovery a COPY replaces the
 * entry of its index (same index and term: by the Log Matching property the same entry),
 * or, when recovery starts after that index (the originals' segments are gone), restarts
 * the group's log there, and the rest of the run rebuilds it. A crash in the middle of a
 * run leaves the originals and some copies, both good: the originals' segments go only
 * once the copies are durable (the caller's flush). */
static int relocate(struct craft_glog *l, uint64_t target)
{
    for (size_t i = 0; i < l->n_groups; i++) {
        struct glog_group *g = &l->groups[i];
        if (g->n == 0 || g->pos[g->head].seq >= target) {
            continue; /* positions go with the log: the oldest first */
        }
        struct craft_wal_entries got = {0};
        int err = craft_glog_read(l, g->id, g->first, g->first + g->n - 1, &got);
        if (err != 0) {
            return err;
        }
        CRAFT_ASSERT(got.n == g->n);
        for (size_t j = 0; j < got.n && err == 0; j++) {
            const struct craft_entry *e = &got.entries[j];
            uint64_t seq, off;
            uint8_t *dst;
            err = stage(l, glog_rec_size(e->len), &seq, &off, &dst);
            if (err == 0) {
                glog_rec_encode(dst, GLOG_REC_COPY, e->type, g->id, e->term, e->index, e->data,
                                e->len);
                struct glog_pos *p = &g->pos[g->head + j];
                CRAFT_ASSERT(p->term == e->term && p->len == e->len);
                p->seq = seq;
                p->off = (uint32_t)off;
                if (j == 0) {
                    g->anchor_seq = seq; /* the record that sets `first` at recovery */
                }
            }
        }
        craft_wal_entries_free(&got);
        if (err != 0) {
            return err;
        }
    }
    return CRAFT_OK;
}

int craft_glog_compact(struct craft_glog *l, uint64_t group, uint64_t through)
{
    if (l->failed) {
        return CRAFT_ESHUTDOWN;
    }
    CRAFT_ASSERT(l->wbuf_len == 0);
    /* The compaction is a record, so that replay drops the same entries: the group's log
     * after a restart is the one in memory now, and a later truncation means the same. */
    struct glog_group *g = glog_group_find(l, group);
    if (g != NULL && through >= g->first) {
        uint64_t seq;
        int err = stage_meta(l, GLOG_REC_COMPACT, group, 0, through, &seq);
        if (err != 0) {
            return err;
        }
        glog_pos_compact(g, through, seq);
    }
    if (l->n_segs > (size_t)l->cfg.pin_segments_max + 1) {
        int err = relocate(l, l->segs[l->n_segs - 1 - l->cfg.pin_segments_max].seq);
        if (err != 0) {
            /* Staged copies and positions moved in memory cannot be taken back: the log
             * fails, and recovery finds the originals (nothing was deleted). */
            return l->failed ? err
                             : glog_fail(l, err, "%s: relocating live entries: %s", l->dir,
                                         craft_strerror(err));
        }
    }
    uint64_t bound = l->segs[l->n_segs - 1].seq;
    for (size_t i = 0; i < l->n_groups; i++) {
        const struct glog_group *h = &l->groups[i];
        if (h->n > 0 && h->pos[h->head].seq < bound) {
            bound = h->pos[h->head].seq; /* positions go with the log: oldest first */
        }
    }
    /* Hard states and restart points in segments about to go are written again. */
    for (size_t i = 0; bound > l->segs[0].seq && i < l->n_groups; i++) {
        struct glog_group *h = &l->groups[i];
        uint64_t seq;
        if (h->has_hs && h->hs_seq < bound) {
            int err = stage_meta(l, GLOG_REC_HARD_STATE, h->id, h->hs.term, h->hs.vote, &seq);
            if (err != 0) {
                return err;
            }
            h->hs_seq = seq;
        }
        if (h->n == 0 && h->first > 1 && h->anchor_seq < bound) {
            int err = stage_meta(l, GLOG_REC_TRUNCATE, h->id, 0, h->first, &seq);
            if (err != 0) {
                return err;
            }
            h->anchor_seq = seq;
        }
    }
    int err = flush(l);
    if (err != 0) {
        return err;
    }
    /* Durable before anything is deleted; a roll while staging moved nothing live below
     * bound. */
    return drop_segments(l, bound);
}

void glog_group_forget(struct glog_group *g)
{
    g->first = 1;
    g->head = g->n = 0;
    g->has_hs = false;
    g->hs = (struct craft_hard_state){0};
    g->hs_seq = g->anchor_seq = 0;
}

int craft_glog_drop(struct craft_glog *l, uint64_t group)
{
    if (l->failed) {
        return CRAFT_ESHUTDOWN;
    }
    CRAFT_ASSERT(l->wbuf_len == 0);
    struct glog_group *g = glog_group_find(l, group);
    if (g == NULL) {
        return CRAFT_OK; /* never written: nothing to void */
    }
    uint64_t seq;
    int err = stage_meta(l, GLOG_REC_DROP, group, 0, 0, &seq);
    if (err == 0) {
        err = flush(l);
    }
    if (err != 0) {
        return err;
    }
    glog_group_forget(g);
    return CRAFT_OK;
}

/* ---- reads ---- */

uint64_t craft_glog_first_index(const struct craft_glog *l, uint64_t group)
{
    const struct glog_group *g = glog_group_find(l, group);
    return g ? g->first : 1;
}

uint64_t craft_glog_last_index(const struct craft_glog *l, uint64_t group)
{
    const struct glog_group *g = glog_group_find(l, group);
    return g ? g->first + g->n - 1 : 0;
}

uint64_t craft_glog_term_at(const struct craft_glog *l, uint64_t group, uint64_t index)
{
    const struct glog_group *g = glog_group_find(l, group);
    if (g == NULL || index < g->first || index >= g->first + g->n) {
        return 0;
    }
    return g->pos[g->head + (index - g->first)].term;
}

bool craft_glog_hard_state(const struct craft_glog *l, uint64_t group,
                           struct craft_hard_state *hs)
{
    const struct glog_group *g = glog_group_find(l, group);
    if (g == NULL || !g->has_hs) {
        return false;
    }
    *hs = g->hs;
    return true;
}

int craft_glog_read(struct craft_glog *l, uint64_t group, uint64_t lo, uint64_t hi,
                    struct craft_wal_entries *out)
{
    memset(out, 0, sizeof(*out));
    if (l->failed) {
        return CRAFT_ESHUTDOWN;
    }
    const struct glog_group *g = glog_group_find(l, group);
    uint64_t first = g ? g->first : 1, last = g ? g->first + g->n - 1 : 0;
    if (lo == hi + 1) {
        return CRAFT_OK;
    }
    if (lo > hi || lo < first || hi > last) {
        return CRAFT_EINVAL;
    }
    size_t count = (size_t)(hi - lo + 1), bytes = 0;
    for (size_t i = 0; i < count; i++) {
        bytes += g->pos[g->head + (lo - first) + i].len;
    }
    out->entries = calloc(count, sizeof(*out->entries));
    out->data = malloc(bytes ? bytes : 1);
    uint8_t *rec = malloc(l->cfg.record_bytes_max);
    if (out->entries == NULL || out->data == NULL || rec == NULL) {
        free(rec);
        craft_wal_entries_free(out);
        return CRAFT_ENOMEM;
    }
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t index = lo + i;
        const struct glog_pos *p = &g->pos[g->head + (index - first)];
        const struct glog_seg *seg = seg_of(l, p->seq);
        uint64_t size = glog_rec_size(p->len);
        size_t got = 0;
        int err = l->fs->pread(l->fs, seg->fd, rec, size, p->off, &got);
        struct glog_rec r;
        if (err == 0 && (got != size || !glog_rec_decode(rec, size, &r) ||
                         !glog_rec_is_entry(r.kind) || r.group != group || r.index != index ||
                         r.term != p->term || r.len != p->len)) {
            char path[4096];
            glog_seg_path(l, p->seq, false, path, sizeof(path));
            glog_fail(l, CRAFT_ECORRUPT, "%s: offset %" PRIu32 ": group %" PRIu64
                      " entry %" PRIu64 " no longer checks", path, p->off, group, index);
            err = CRAFT_ECORRUPT;
        }
        if (err != 0) {
            free(rec);
            craft_wal_entries_free(out);
            return err;
        }
        memcpy(out->data + at, r.payload, r.len);
        out->entries[i] = (struct craft_entry){.term = r.term, .index = r.index,
                                               .type = r.entry_type, .len = r.len,
                                               .data = r.len ? out->data + at : NULL};
        at += r.len;
    }
    out->n = count;
    free(rec);
    return CRAFT_OK;
}

/* ---- stats ---- */

size_t craft_glog_groups(const struct craft_glog *l, uint64_t *ids, size_t cap)
{
    for (size_t i = 0; i < l->n_groups && i < cap; i++) {
        ids[i] = l->groups[i].id;
    }
    return l->n_groups;
}

size_t craft_glog_segments(const struct craft_glog *l)
{
    return l->n_segs;
}

uint64_t craft_glog_syncs(const struct craft_glog *l)
{
    return l->syncs;
}

const char *craft_glog_errmsg(const struct craft_glog *l)
{
    return l->errmsg;
}

uint64_t craft_glog_torn_bytes(const struct craft_glog *l)
{
    return l->torn_bytes;
}
