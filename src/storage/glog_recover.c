/* Opening the group log: list the segments, replay every record into the per-group index,
 * cut a torn tail, refuse corruption (rules in docs/design/storage.md, "The group log"). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "storage/glog_internal.h"
#include "storage/segfile.h"

#define SEG_NAME_LEN 21 /* 16 hex, ".glog" */

struct listing {
    uint64_t *seqs;
    size_t n_seqs, cap_seqs;
    uint64_t *tmps; /* seqs of leftover "<seq>.glog.tmp" */
    size_t n_tmps, cap_tmps;
};

static int push_seq(uint64_t **v, size_t *n, size_t *cap, uint64_t seq)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        uint64_t *p = realloc(*v, c * sizeof(*p));
        if (p == NULL) {
            return CRAFT_ENOMEM;
        }
        *v = p;
        *cap = c;
    }
    (*v)[(*n)++] = seq;
    return CRAFT_OK;
}

static int list_one(void *arg, const char *name)
{
    struct listing *l = arg;
    size_t len = strlen(name);
    uint64_t seq;
    if (len < SEG_NAME_LEN || memcmp(name + 16, ".glog", 5) != 0 ||
        !craft_seg_parse_hex16(name, &seq)) {
        return CRAFT_OK; /* not ours: left alone */
    }
    if (len == SEG_NAME_LEN) {
        return push_seq(&l->seqs, &l->n_seqs, &l->cap_seqs, seq);
    }
    if (len == SEG_NAME_LEN + 4 && strcmp(name + SEG_NAME_LEN, ".tmp") == 0) {
        return push_seq(&l->tmps, &l->n_tmps, &l->cap_tmps, seq);
    }
    return CRAFT_OK;
}

static int seq_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Applies a valid record found at off of segment seq to its group. */
static int replay(struct craft_glog *l, const struct glog_rec *r, uint64_t seq, uint64_t off,
                  const char *path)
{
    struct glog_group *g = glog_group_get(l, r->group);
    if (g == NULL) {
        return glog_fail(l, CRAFT_ENOMEM, "%s: out of memory", path);
    }
    switch (r->kind) {
    case GLOG_REC_HARD_STATE:
        g->has_hs = true;
        g->hs = (struct craft_hard_state){.term = r->term, .vote = r->index};
        g->hs_seq = seq;
        return CRAFT_OK;
    case GLOG_REC_COMPACT:
        glog_pos_compact(g, r->index, seq);
        return CRAFT_OK;
    case GLOG_REC_DROP:
        glog_group_forget(g);
        return CRAFT_OK;
    case GLOG_REC_TRUNCATE:
        if (r->index == 0) {
            break;
        }
        glog_pos_truncate(g, r->index, seq);
        return CRAFT_OK;
    case GLOG_REC_COPY:
        if (g->n > 0 && r->index >= g->first && r->index < g->first + g->n) {
            struct glog_pos *p = &g->pos[g->head + (r->index - g->first)];
            if (p->term != r->term) {
                return glog_fail(l, CRAFT_ECORRUPT,
                                 "%s: record at offset %" PRIu64 " copies group %" PRIu64
                                 " index %" PRIu64 " term %" PRIu64 " over term %" PRIu64,
                                 path, off, r->group, r->index, r->term, p->term);
            }
            *p = (struct glog_pos){.term = r->term, .seq = seq, .off = (uint32_t)off,
                                   .len = r->len};
            if (r->index == g->first) {
                g->anchor_seq = seq;
            }
            return CRAFT_OK;
        }
        if (g->n == 0 || r->index < g->first) {
            /* A run of copies that starts before what recovery has seen of the group (the
             * originals' segments are gone): the run rebuilds the group's log from here. */
            g->n = 0;
            g->first = r->index;
            g->head = 0;
            g->anchor_seq = seq;
        }
        /* fall through - appended as an entry */
    case GLOG_REC_ENTRY:
        if (g->n == 0) {
            g->first = r->index; /* a group's first entry, or the first after a restart */
            g->head = 0;
            g->anchor_seq = seq;
        } else if (r->index != g->first + g->n) {
            return glog_fail(l, CRAFT_ECORRUPT,
                             "%s: record at offset %" PRIu64 " holds group %" PRIu64
                             " index %" PRIu64 ", expected %" PRIu64,
                             path, off, r->group, r->index, g->first + g->n);
        }
        if (glog_pos_reserve(g, 1) != 0) {
            return glog_fail(l, CRAFT_ENOMEM, "%s: out of memory", path);
        }
        g->pos[g->head + g->n++] = (struct glog_pos){
            .term = r->term, .seq = seq, .off = (uint32_t)off, .len = r->len};
        return CRAFT_OK;
    default:
        break;
    }
    return glog_fail(l, CRAFT_ECORRUPT, "%s: record at offset %" PRIu64 " is malformed", path,
                     off);
}

/* craft_seg_end's probe: a record that checks at p. */
static bool valid_record(const uint8_t *p, uint64_t avail)
{
    struct glog_rec r;
    return glog_rec_decode(p, avail, &r);
}

/* Replays segment s (the last one if is_last); sets l->end when it is the last. */
static int scan_segment(struct craft_glog *l, struct glog_seg *s, bool is_last)
{
    char path[4096];
    glog_seg_path(l, s->seq, false, path, sizeof(path));
    uint8_t *buf = NULL;
    uint64_t size = 0;
    int err = craft_seg_read_all(l->fs, s->fd, CRAFT_GLOG_SEGMENT_HEADER_BYTES, &buf, &size);
    if (err != 0) {
        return glog_fail(l, err, "%s: read: %s", path,
                         err == CRAFT_ECORRUPT ? "its size is not that of a segment"
                                               : craft_strerror(err));
    }
    s->size = size;
    uint64_t seq;
    if (!glog_seg_header_decode(buf, &seq) || seq != s->seq) {
        free(buf);
        return glog_fail(l, CRAFT_ECORRUPT, "%s: bad segment header at offset 0", path);
    }
    uint64_t off = CRAFT_GLOG_SEGMENT_HEADER_BYTES;
    struct glog_rec r;
    while (off < size && glog_rec_decode(buf + off, size - off, &r)) {
        if ((err = replay(l, &r, s->seq, off, path)) != 0) {
            free(buf);
            return err;
        }
        off += r.total;
    }
    uint64_t cut, valid_at;
    err = craft_seg_end(l->fs, s->fd, buf, size, off, is_last, valid_record,
                        CRAFT_GLOG_RECORD_HEADER_BYTES, &cut, &valid_at);
    free(buf);
    if (err == CRAFT_ECORRUPT && valid_at != 0) {
        return glog_fail(l, err,
                         "%s: bad record at offset %" PRIu64
                         " followed by a valid record at offset %" PRIu64,
                         path, off, valid_at);
    }
    if (err == CRAFT_ECORRUPT) {
        return glog_fail(l, err, "%s: bad record at offset %" PRIu64, path, off);
    }
    if (err != 0) {
        return glog_fail(l, err, "%s: cutting the torn tail at offset %" PRIu64 ": %s", path,
                         off, craft_strerror(err));
    }
    l->torn_bytes += cut;
    if (is_last) {
        l->end = off;
    }
    return CRAFT_OK;
}

static int recover(struct craft_glog *l)
{
    struct craft_fs *fs = l->fs;
    char path[4096];
    int err = fs->mkdir(fs, l->dir);
    if (err == 0) {
        craft_seg_parent_dir(l->dir, path, sizeof(path));
        err = fs->fsync_dir(fs, path);
    }
    if (err != 0) {
        return glog_fail(l, err, "%s: mkdir: %s", l->dir, craft_strerror(err));
    }
    struct listing li = {0};
    err = fs->list_dir(fs, l->dir, list_one, &li);
    for (size_t i = 0; err == 0 && i < li.n_tmps; i++) {
        glog_seg_path(l, li.tmps[i], true, path, sizeof(path));
        err = fs->unlink(fs, path);
    }
    if (err == 0 && li.n_tmps > 0) {
        err = fs->fsync_dir(fs, l->dir);
    }
    if (err != 0) {
        free(li.seqs);
        free(li.tmps);
        return glog_fail(l, err, "%s: listing and removing unfinished segments: %s", l->dir,
                         craft_strerror(err));
    }
    free(li.tmps);
    if (li.n_seqs > 0) {
        qsort(li.seqs, li.n_seqs, sizeof(*li.seqs), seq_cmp);
    }
    for (size_t i = 0; i < li.n_seqs; i++) {
        glog_seg_path(l, li.seqs[i], false, path, sizeof(path));
        if (i > 0 && li.seqs[i] != li.seqs[i - 1] + 1) {
            uint64_t prev = li.seqs[i - 1];
            free(li.seqs);
            return glog_fail(l, CRAFT_ECORRUPT,
                             "%s: a segment is missing before it (previous seq %" PRIu64 ")",
                             path, prev);
        }
        int fd;
        err = fs->open(fs, path, 0, &fd);
        if (err == 0) {
            struct glog_seg seg = {.seq = li.seqs[i], .fd = fd};
            err = glog_seg_push(l, &seg);
            if (err != 0) {
                (void)fs->close(fs, fd);
            }
        }
        if (err != 0) {
            free(li.seqs);
            return glog_fail(l, err, "%s: open: %s", path, craft_strerror(err));
        }
    }
    free(li.seqs);
    for (size_t i = 0; i < l->n_segs; i++) {
        err = scan_segment(l, &l->segs[i], i + 1 == l->n_segs);
        if (err != 0) {
            return err;
        }
    }
    if (l->n_segs == 0) {
        return glog_seg_create(l, 1);
    }
    return CRAFT_OK;
}

int craft_glog_open(struct craft_fs *fs, const char *dir, const struct craft_glog_config *cfg,
                    struct craft_glog **out, char *errmsg, size_t errmsg_cap)
{
    if (errmsg != NULL && errmsg_cap > 0) {
        errmsg[0] = '\0';
    }
    if (cfg->segment_bytes % 8 != 0 || cfg->segment_bytes > UINT32_MAX ||
        cfg->record_bytes_max < CRAFT_GLOG_RECORD_HEADER_BYTES + 8 ||
        cfg->segment_bytes < (uint64_t)CRAFT_GLOG_SEGMENT_HEADER_BYTES + cfg->record_bytes_max) {
        if (errmsg != NULL && errmsg_cap > 0) {
            snprintf(errmsg, errmsg_cap, "bad config: segment_bytes or record_bytes_max");
        }
        return CRAFT_EINVAL;
    }
    struct craft_glog *l = calloc(1, sizeof(*l));
    size_t dir_len = strlen(dir);
    if (l != NULL) {
        l->dir = malloc(dir_len + 1);
    }
    if (l == NULL || l->dir == NULL) {
        if (l != NULL) {
            glog_free(l);
        }
        if (errmsg != NULL && errmsg_cap > 0) {
            snprintf(errmsg, errmsg_cap, "out of memory");
        }
        return CRAFT_ENOMEM;
    }
    memcpy(l->dir, dir, dir_len + 1);
    l->fs = fs;
    l->cfg = *cfg;
    if (l->cfg.pin_segments_max == 0) {
        l->cfg.pin_segments_max = GLOG_PIN_SEGMENTS_DEFAULT;
    }
    int err = recover(l);
    if (err != 0) {
        if (errmsg != NULL && errmsg_cap > 0) {
            snprintf(errmsg, errmsg_cap, "%s", l->errmsg);
        }
        glog_free(l);
        return err;
    }
    *out = l;
    return CRAFT_OK;
}
