/* Opening the write-ahead log: list the segments, replay every record into the in-memory
 * index, cut a torn tail, refuse corruption (rules in docs/design/storage.md). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "storage/segfile.h"
#include "storage/wal_internal.h"
#include "storage/wal_record.h"

#define SEG_NAME_LEN 37 /* 16 hex, '-', 16 hex, ".wal" */

struct seg_name {
    uint64_t seq, first;
};

struct listing {
    struct seg_name *segs;
    size_t n_segs, cap_segs;
    char **tmps;
    size_t n_tmps, cap_tmps;
};

static bool parse_seg_name(const char *name, size_t len, struct seg_name *out)
{
    return len == SEG_NAME_LEN && name[16] == '-' && memcmp(name + 33, ".wal", 4) == 0 &&
           craft_seg_parse_hex16(name, &out->seq) && craft_seg_parse_hex16(name + 17, &out->first);
}

static int list_one(void *arg, const char *name)
{
    struct listing *l = arg;
    size_t len = strlen(name);
    struct seg_name sn;
    if (parse_seg_name(name, len, &sn)) {
        if (l->n_segs == l->cap_segs) {
            size_t cap = l->cap_segs ? l->cap_segs * 2 : 16;
            struct seg_name *v = realloc(l->segs, cap * sizeof(*v));
            if (v == NULL) {
                return CRAFT_ENOMEM;
            }
            l->segs = v;
            l->cap_segs = cap;
        }
        l->segs[l->n_segs++] = sn;
    } else if (len == SEG_NAME_LEN + 4 && parse_seg_name(name, SEG_NAME_LEN, &sn) &&
               strcmp(name + SEG_NAME_LEN, ".tmp") == 0) {
        if (l->n_tmps == l->cap_tmps) {
            size_t cap = l->cap_tmps ? l->cap_tmps * 2 : 4;
            char **v = realloc(l->tmps, cap * sizeof(*v));
            if (v == NULL) {
                return CRAFT_ENOMEM;
            }
            l->tmps = v;
            l->cap_tmps = cap;
        }
        char *copy = malloc(len + 1);
        if (copy == NULL) {
            return CRAFT_ENOMEM;
        }
        memcpy(copy, name, len + 1);
        l->tmps[l->n_tmps++] = copy;
    }
    /* Other names are not ours: left alone. */
    return CRAFT_OK;
}

static void listing_free(struct listing *l)
{
    for (size_t i = 0; i < l->n_tmps; i++) {
        free(l->tmps[i]);
    }
    free(l->tmps);
    free(l->segs);
}

static int seg_name_cmp(const void *a, const void *b)
{
    const struct seg_name *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Reads the whole file fd into a new buffer (*size bytes). */
static int read_all(struct craft_wal *w, int fd, const char *path, uint8_t **buf,
                    uint64_t *size)
{
    int err = craft_seg_read_all(w->fs, fd, CRAFT_WAL_SEGMENT_HEADER_BYTES, buf, size);
    if (err == CRAFT_ECORRUPT) {
        return craft_wal_fail(w, err, "%s: its size is not that of a segment", path);
    }
    if (err != 0) {
        return craft_wal_fail(w, err, "%s: read: %s", path, craft_strerror(err));
    }
    return CRAFT_OK;
}

/* Applies a valid record found at off of segment seq to the in-memory log. */
static int replay(struct craft_wal *w, const struct craft_wal_rec *r, uint64_t seq,
                  uint64_t off, const char *path)
{
    if (r->kind == CRAFT_WAL_REC_TRUNCATE) {
        craft_wal_pos_truncate(w, r->index);
        return CRAFT_OK;
    }
    uint64_t expect = w->first + w->pos_n;
    if (r->index != expect) {
        return craft_wal_fail(w, CRAFT_ECORRUPT,
                              "%s: record at offset %" PRIu64 " holds index %" PRIu64
                              ", expected %" PRIu64,
                              path, off, r->index, expect);
    }
    if (craft_wal_pos_reserve(w, 1) != 0) {
        return craft_wal_fail(w, CRAFT_ENOMEM, "%s: out of memory", path);
    }
    w->pos[w->pos_head + w->pos_n++] = (struct wal_pos){
        .term = r->term, .seq = seq, .off = (uint32_t)off, .len = r->len};
    return CRAFT_OK;
}

/* craft_seg_end's probe: a record that checks at p. */
static bool valid_record(const uint8_t *p, uint64_t avail)
{
    struct craft_wal_rec r;
    return craft_wal_rec_decode(p, avail, &r);
}

/* Replays segment s (the last one if is_last); sets w->end when it is the last. */
static int scan_segment(struct craft_wal *w, struct wal_seg *s, bool is_last)
{
    char path[4096];
    craft_wal_seg_path(w, s->seq, s->first, false, path, sizeof(path));
    uint8_t *buf = NULL;
    uint64_t size = 0;
    int err = read_all(w, s->fd, path, &buf, &size);
    if (err != 0) {
        return err;
    }
    s->size = size;
    uint64_t seq, first;
    if (!craft_wal_seg_header_decode(buf, &seq, &first) || seq != s->seq ||
        first != s->first) {
        free(buf);
        return craft_wal_fail(w, CRAFT_ECORRUPT, "%s: bad segment header at offset 0", path);
    }
    uint64_t expect = w->first + w->pos_n;
    if (first != expect) {
        free(buf);
        return craft_wal_fail(w, CRAFT_ECORRUPT,
                              "%s: segment starts at index %" PRIu64 ", expected %" PRIu64,
                              path, first, expect);
    }
    uint64_t off = CRAFT_WAL_SEGMENT_HEADER_BYTES;
    struct craft_wal_rec r;
    while (off < size && craft_wal_rec_decode(buf + off, size - off, &r)) {
        if ((err = replay(w, &r, s->seq, off, path)) != 0) {
            free(buf);
            return err;
        }
        off += r.total;
    }
    uint64_t cut, valid_at;
    err = craft_seg_end(w->fs, s->fd, buf, size, off, is_last, valid_record,
                        CRAFT_WAL_RECORD_HEADER_BYTES, &cut, &valid_at);
    free(buf);
    if (err == CRAFT_ECORRUPT && valid_at != 0) {
        return craft_wal_fail(w, err,
                              "%s: bad record at offset %" PRIu64
                              " followed by a valid record at offset %" PRIu64,
                              path, off, valid_at);
    }
    if (err == CRAFT_ECORRUPT) {
        return craft_wal_fail(w, err, "%s: bad record at offset %" PRIu64, path, off);
    }
    if (err != 0) {
        return craft_wal_fail(w, err, "%s: cutting the torn tail at offset %" PRIu64 ": %s",
                              path, off, craft_strerror(err));
    }
    w->torn_bytes += cut;
    if (is_last) {
        w->end = off;
    }
    return CRAFT_OK;
}

static int wal_recover(struct craft_wal *w)
{
    struct craft_fs *fs = w->fs;
    char path[4096];
    int err = fs->mkdir(fs, w->dir);
    if (err == 0) {
        craft_seg_parent_dir(w->dir, path, sizeof(path));
        err = fs->fsync_dir(fs, path);
    }
    if (err != 0) {
        return craft_wal_fail(w, err, "%s: mkdir: %s", w->dir, craft_strerror(err));
    }
    struct listing l = {0};
    err = fs->list_dir(fs, w->dir, list_one, &l);
    if (err != 0) {
        listing_free(&l);
        return craft_wal_fail(w, err, "%s: list: %s", w->dir, craft_strerror(err));
    }
    for (size_t i = 0; i < l.n_tmps && err == 0; i++) {
        snprintf(path, sizeof(path), "%s/%s", w->dir, l.tmps[i]);
        err = fs->unlink(fs, path);
    }
    if (err == 0 && l.n_tmps > 0) {
        err = fs->fsync_dir(fs, w->dir);
    }
    if (err != 0) {
        listing_free(&l);
        return craft_wal_fail(w, err, "%s: removing unfinished segments: %s", w->dir,
                              craft_strerror(err));
    }
    if (l.n_segs > 0) {
        qsort(l.segs, l.n_segs, sizeof(*l.segs), seg_name_cmp);
    }
    for (size_t i = 0; i < l.n_segs; i++) {
        craft_wal_seg_path(w, l.segs[i].seq, l.segs[i].first, false, path, sizeof(path));
        if (i > 0 && l.segs[i].seq != l.segs[i - 1].seq + 1) {
            uint64_t prev = l.segs[i - 1].seq;
            listing_free(&l);
            return craft_wal_fail(w, CRAFT_ECORRUPT,
                                  "%s: a segment is missing before it (previous seq %" PRIu64
                                  ")",
                                  path, prev);
        }
        int fd;
        err = fs->open(fs, path, 0, &fd);
        if (err == 0) {
            struct wal_seg seg = {.seq = l.segs[i].seq, .first = l.segs[i].first, .fd = fd};
            err = craft_wal_seg_push(w, &seg);
            if (err != 0) {
                (void)fs->close(fs, fd);
            }
        }
        if (err != 0) {
            listing_free(&l);
            return craft_wal_fail(w, err, "%s: open: %s", path, craft_strerror(err));
        }
    }
    listing_free(&l);
    if (w->n_segs > 0) {
        w->first = w->segs[0].first;
    }
    for (size_t i = 0; i < w->n_segs; i++) {
        err = scan_segment(w, &w->segs[i], i + 1 == w->n_segs);
        if (err != 0) {
            return err;
        }
    }
    return CRAFT_OK;
}

int craft_wal_open(struct craft_fs *fs, const char *dir, const struct craft_wal_config *cfg,
                   struct craft_wal **out, char *errmsg, size_t errmsg_cap)
{
    if (errmsg != NULL && errmsg_cap > 0) {
        errmsg[0] = '\0';
    }
    if (cfg->segment_bytes % 8 != 0 || cfg->segment_bytes > UINT32_MAX ||
        cfg->record_bytes_max < CRAFT_WAL_RECORD_HEADER_BYTES + 8 ||
        cfg->segment_bytes < (uint64_t)CRAFT_WAL_SEGMENT_HEADER_BYTES + cfg->record_bytes_max) {
        if (errmsg != NULL && errmsg_cap > 0) {
            snprintf(errmsg, errmsg_cap, "bad config: segment_bytes or record_bytes_max");
        }
        return CRAFT_EINVAL;
    }
    struct craft_wal *w = calloc(1, sizeof(*w));
    size_t dir_len = strlen(dir);
    if (w != NULL) {
        w->dir = malloc(dir_len + 1);
        w->wbuf_cap = cfg->record_bytes_max > (1u << 20) ? cfg->record_bytes_max : (1u << 20);
        w->wbuf = malloc(w->wbuf_cap);
    }
    if (w == NULL || w->dir == NULL || w->wbuf == NULL) {
        if (w != NULL) {
            craft_wal_free(w);
        }
        if (errmsg != NULL && errmsg_cap > 0) {
            snprintf(errmsg, errmsg_cap, "out of memory");
        }
        return CRAFT_ENOMEM;
    }
    memcpy(w->dir, dir, dir_len + 1);
    w->fs = fs;
    w->cfg = *cfg;
    w->first = 1;
    int err = wal_recover(w);
    if (err != 0) {
        if (errmsg != NULL && errmsg_cap > 0) {
            snprintf(errmsg, errmsg_cap, "%s", w->errmsg);
        }
        craft_wal_free(w);
        return err;
    }
    *out = w;
    return CRAFT_OK;
}
