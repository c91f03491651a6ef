/* Real persistence for the simulator: the production stores over fs_mem (see real_disk.h). */
#include "sim/real_disk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/prng.h"
#include "base/trace.h"
#include "sim/sim_internal.h"
#include "storage/fs_mem.h"
#include "storage/glog.h"
#include "storage/snapshot_store.h"
#include "storage/stable.h"
#include "storage/wal.h"

#define WAL_DIR "wal"
#define GLOG_DIR "glog"
/* The group a node's log is kept under in the group log (any id: not 0, to catch code that
 * assumes it). */
#define GLOG_GROUP 7
/* A second group in the same group log, written with every batch and compacted with every
 * snapshot, so that segments interleave two groups and deleting one group's old segments
 * must keep the other's live records: what the host of many groups will do. Its entry i
 * holds phantom_payload(i); whatever a sync made durable must survive every crash. */
#define PHANTOM_GROUP 1007
#define SNAP_DIR "snap"
#define HS_PATH "hard_state"

/* A filesystem in front of fs_mem that can hold back one fdatasync (see real_disk.h). */
struct defer_fs {
    struct craft_fs vt; /* first: the stores get &vt */
    struct craft_fs *inner;
    bool deferring;
    int pending_fd; /* -1: none */
};

/* A process's filesystem: one per node, or (shared_log) one per process for the replicas
 * of all its groups, which then keep their logs and hard states in one group log. */
struct sim_real_fs {
    struct craft_fs_mem *m;
    struct defer_fs dfs;
    struct craft_prng prng;
    struct craft_glog *glog;
    int users; /* replicas with their stores open on it (the log is open while any) */
    int refs;  /* replicas that hold it */
};

struct sim_real_disk {
    struct sim_real_fs *fs;
    /* Odd-numbered nodes keep their log and hard state in the group log (glog.h, one
     * record stream for entries and hard state), the others in the WAL and the stable
     * store: every real-storage scenario runs both. Replicas on a shared filesystem all
     * use the group log, each under its own group id. */
    bool glog_mode;
    bool shared;
    uint64_t group_id;
    char snap_dir[32];
    uint64_t phantom_written; /* the phantom group's last entry written (not shared) */
    uint64_t phantom_acked;   /* ... and made durable (a sync since) */
    struct craft_wal *wal;
    struct craft_stable *st;
    struct craft_snapshot_store *snaps;
    struct craft_snapshot_sink *sink;
};

static struct defer_fs *dfs_of(struct craft_fs *fs)
{
    return (struct defer_fs *)fs;
}

static int flush(struct defer_fs *d)
{
    if (d->pending_fd < 0) {
        return CRAFT_OK;
    }
    int fd = d->pending_fd;
    d->pending_fd = -1;
    return d->inner->fdatasync(d->inner, fd);
}

/* Every mutation but the WAL's own writes makes the deferred sync durable first, so that
 * the on-disk order is the issue order. */
static int barrier(struct defer_fs *d)
{
    return d->deferring ? CRAFT_OK : flush(d);
}

static int d_open(struct craft_fs *fs, const char *path, int flags, int *fd)
{
    struct defer_fs *d = dfs_of(fs);
    if ((flags & CRAFT_FS_CREATE) != 0) {
        int err = flush(d);
        if (err != CRAFT_OK) {
            return err;
        }
    }
    return d->inner->open(d->inner, path, flags, fd);
}

static int d_close(struct craft_fs *fs, int fd)
{
    struct defer_fs *d = dfs_of(fs);
    if (d->pending_fd == fd) {
        (void)flush(d);
    }
    return d->inner->close(d->inner, fd);
}

static int d_pread(struct craft_fs *fs, int fd, void *buf, size_t len, uint64_t off,
                   size_t *n_read)
{
    struct defer_fs *d = dfs_of(fs);
    return d->inner->pread(d->inner, fd, buf, len, off, n_read);
}

static int d_pwrite(struct craft_fs *fs, int fd, const void *buf, size_t len, uint64_t off)
{
    struct defer_fs *d = dfs_of(fs);
    int err = barrier(d);
    return err != CRAFT_OK ? err : d->inner->pwrite(d->inner, fd, buf, len, off);
}

static int d_fdatasync(struct craft_fs *fs, int fd)
{
    struct defer_fs *d = dfs_of(fs);
    if (!d->deferring) {
        int err = flush(d);
        return err != CRAFT_OK ? err : d->inner->fdatasync(d->inner, fd);
    }
    /* One deferred file at most: a later segment never holds records an earlier one lacks. */
    if (d->pending_fd != fd) {
        int err = flush(d);
        if (err != CRAFT_OK) {
            return err;
        }
    }
    d->pending_fd = fd;
    return CRAFT_OK;
}

static int d_fsync_dir(struct craft_fs *fs, const char *dir)
{
    struct defer_fs *d = dfs_of(fs);
    int err = flush(d);
    return err != CRAFT_OK ? err : d->inner->fsync_dir(d->inner, dir);
}

static int d_rename(struct craft_fs *fs, const char *from, const char *to)
{
    struct defer_fs *d = dfs_of(fs);
    int err = flush(d);
    return err != CRAFT_OK ? err : d->inner->rename(d->inner, from, to);
}

static int d_unlink(struct craft_fs *fs, const char *path)
{
    struct defer_fs *d = dfs_of(fs);
    int err = flush(d);
    return err != CRAFT_OK ? err : d->inner->unlink(d->inner, path);
}

static int d_ftruncate(struct craft_fs *fs, int fd, uint64_t size)
{
    struct defer_fs *d = dfs_of(fs);
    int err = flush(d);
    return err != CRAFT_OK ? err : d->inner->ftruncate(d->inner, fd, size);
}

static int d_fallocate(struct craft_fs *fs, int fd, uint64_t off, uint64_t len)
{
    struct defer_fs *d = dfs_of(fs);
    int err = flush(d);
    return err != CRAFT_OK ? err : d->inner->fallocate(d->inner, fd, off, len);
}

static int d_list_dir(struct craft_fs *fs, const char *dir, craft_fs_list_fn fn, void *arg)
{
    struct defer_fs *d = dfs_of(fs);
    return d->inner->list_dir(d->inner, dir, fn, arg);
}

static int d_mkdir(struct craft_fs *fs, const char *path)
{
    struct defer_fs *d = dfs_of(fs);
    int err = flush(d);
    return err != CRAFT_OK ? err : d->inner->mkdir(d->inner, path);
}

static int d_file_size(struct craft_fs *fs, int fd, uint64_t *size)
{
    struct defer_fs *d = dfs_of(fs);
    return d->inner->file_size(d->inner, fd, size);
}

static void check(struct sim_node *node, int err, const char *what)
{
    if (err != CRAFT_OK) {
        const char *msg = "";
        if (node->rd->wal != NULL) {
            msg = craft_wal_errmsg(node->rd->wal);
        } else if (node->rd->fs->glog != NULL) {
            msg = craft_glog_errmsg(node->rd->fs->glog);
        }
        sim_fail(node->c, "server %d real storage: %s: %s %s", node->i, what,
                 craft_strerror(err), msg);
    }
}

static struct sim_real_fs *fs_create(struct sim_node *node)
{
    struct sim_real_fs *f = calloc(1, sizeof *f);
    CRAFT_ASSERT(f != NULL);
    uint64_t seed = sim_mix64(sim_seed() ^ sim_mix64(0x7265616cULL + (uint64_t)node->i));
    f->m = craft_fs_mem_create(seed);
    CRAFT_ASSERT(f->m != NULL);
    craft_prng_seed(&f->prng, seed ^ 0x746f726eULL);
    f->dfs = (struct defer_fs){
        .vt = {.open = d_open, .close = d_close, .pread = d_pread, .pwrite = d_pwrite,
               .fdatasync = d_fdatasync, .fsync_dir = d_fsync_dir, .rename = d_rename,
               .unlink = d_unlink, .ftruncate = d_ftruncate, .fallocate = d_fallocate,
               .list_dir = d_list_dir, .mkdir = d_mkdir, .file_size = d_file_size},
        .inner = craft_fs_mem_fs(f->m),
        .pending_fd = -1,
    };
    return f;
}

void sim_real_disk_init(struct sim_node *node)
{
    struct sim_real_disk *rd = calloc(1, sizeof *rd);
    CRAFT_ASSERT(rd != NULL);
    struct sim_cluster *root = node->c->root;
    rd->shared = root->opts.shared_log;
    if (rd->shared && node->c != root) {
        /* A group added to the root: its replica lives in process i, on its filesystem. */
        struct sim_real_disk *first = root->nodes[node->i].rd;
        CRAFT_ASSERT(first != NULL && first->shared);
        rd->fs = first->fs;
    } else {
        rd->fs = fs_create(node);
    }
    rd->fs->refs++;
    rd->glog_mode = rd->shared || node->i % 2 == 1;
    rd->group_id = GLOG_GROUP + node->c->group;
    snprintf(rd->snap_dir, sizeof rd->snap_dir, "%s-g%llu", SNAP_DIR,
             (unsigned long long)node->c->group);
    node->rd = rd;
}

/* Closes the replica's own stores, and the group log when it was the last replica with
 * its stores open on the filesystem. */
static void close_stores(struct sim_real_disk *rd)
{
    if (rd->sink != NULL) {
        rd->snaps->abort(rd->snaps, rd->sink);
        rd->sink = NULL;
    }
    craft_wal_close(rd->wal);
    rd->wal = NULL;
    craft_stable_close(rd->st);
    rd->st = NULL;
    if (rd->snaps != NULL) {
        rd->snaps->destroy(rd->snaps);
        rd->snaps = NULL;
        CRAFT_ASSERT(rd->fs->users > 0);
        rd->fs->users--;
    }
    if (rd->fs->users == 0) {
        craft_glog_close(rd->fs->glog);
        rd->fs->glog = NULL;
    }
}

void sim_real_disk_free(struct sim_node *node)
{
    struct sim_real_disk *rd = node->rd;
    if (rd == NULL) {
        return;
    }
    struct sim_real_fs *f = rd->fs;
    if (f->users <= 1) {
        f->dfs.pending_fd = -1;
    }
    close_stores(rd);
    if (--f->refs == 0) {
        craft_fs_mem_destroy(f->m);
        free(f);
    }
    free(rd);
    node->rd = NULL;
}

void sim_real_disk_crash(struct sim_node *node)
{
    struct sim_real_disk *rd = node->rd;
    struct sim_real_fs *f = rd->fs;
    if (f->users > 1) {
        /* Other groups' replicas of this process still run (a process crash takes them
         * down next): the filesystem crashes with the last of them. */
        close_stores(rd);
        return;
    }
    bool torn = craft_prng_chance(&f->prng, 500);
    /* The deferred sync never happens: closing must not make it durable. */
    f->dfs.pending_fd = -1;
    f->dfs.deferring = false;
    close_stores(rd);
    craft_fs_mem_crash(f->m, torn);
    CRAFT_TRACE(CRAFT_T_FAULT, node->c->w->now, node->i + 1, 0, "real storage crash%s",
                torn ? " (torn tails)" : "");
}

/* The stores must hold at least what the driver was told is durable (node->disk). */
static void check_covers(struct sim_node *node, const struct craft_hard_state *hs,
                         const struct craft_snapshot_meta *snap)
{
    const struct sim_disk *model = &node->disk;
    if (hs->term < model->hs.term ||
        (hs->term == model->hs.term && model->hs.vote != 0 && hs->vote != model->hs.vote)) {
        sim_fail(node->c, "server %d real storage lost its hard state: term %llu vote %llu, "
                 "acknowledged term %llu vote %llu", node->i, (unsigned long long)hs->term,
                 (unsigned long long)hs->vote, (unsigned long long)model->hs.term,
                 (unsigned long long)model->hs.vote);
    }
    if (snap->index < model->snap.index) {
        sim_fail(node->c, "server %d real storage lost snapshot %llu (holds %llu)", node->i,
                 (unsigned long long)model->snap.index, (unsigned long long)snap->index);
    }
}

/* ---- the log: the WAL, or the group log under GLOG_GROUP ---- */

static uint64_t log_first(const struct sim_real_disk *rd)
{
    return rd->glog_mode ? craft_glog_first_index(rd->fs->glog, rd->group_id)
                         : craft_wal_first_index(rd->wal);
}

static uint64_t log_last(const struct sim_real_disk *rd)
{
    return rd->glog_mode ? craft_glog_last_index(rd->fs->glog, rd->group_id)
                         : craft_wal_last_index(rd->wal);
}

static uint64_t log_term_at(const struct sim_real_disk *rd, uint64_t index)
{
    return rd->glog_mode ? craft_glog_term_at(rd->fs->glog, rd->group_id, index)
                         : craft_wal_term_at(rd->wal, index);
}

static int log_truncate(struct sim_real_disk *rd, uint64_t from)
{
    struct craft_glog_update u = {.group = rd->group_id, .truncate_from = from};
    return rd->glog_mode ? craft_glog_write(rd->fs->glog, &u, 1) : craft_wal_truncate(rd->wal, from);
}

static int log_read(struct sim_real_disk *rd, uint64_t lo, uint64_t hi,
                    struct craft_wal_entries *out)
{
    return rd->glog_mode ? craft_glog_read(rd->fs->glog, rd->group_id, lo, hi, out)
                         : craft_wal_read(rd->wal, lo, hi, out);
}

static uint32_t phantom_payload(uint64_t index, uint8_t *buf)
{
    uint32_t len = (uint32_t)(index % 24);
    for (uint32_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(index * 7 + i);
    }
    return len;
}

/* After recovery: the phantom group holds at least what was acknowledged, intact. */
static void phantom_check(struct sim_node *node)
{
    struct sim_real_disk *rd = node->rd;
    uint64_t first = craft_glog_first_index(rd->fs->glog, PHANTOM_GROUP);
    uint64_t last = craft_glog_last_index(rd->fs->glog, PHANTOM_GROUP);
    if (last < rd->phantom_acked) {
        sim_fail(node->c, "server %d group log lost group %d's entries %llu..%llu", node->i,
                 PHANTOM_GROUP, (unsigned long long)last + 1,
                 (unsigned long long)rd->phantom_acked);
    }
    struct craft_wal_entries got = {0};
    if (last >= first) {
        check(node, craft_glog_read(rd->fs->glog, PHANTOM_GROUP, first, last, &got), "phantom read");
    }
    for (size_t i = 0; i < got.n; i++) {
        uint8_t want[32];
        uint32_t len = phantom_payload(first + i, want);
        if (got.entries[i].len != len ||
            (len > 0 && memcmp(got.entries[i].data, want, len) != 0)) {
            sim_fail(node->c, "server %d group log: group %d entry %llu does not read back",
                     node->i, PHANTOM_GROUP, (unsigned long long)(first + i));
        }
    }
    craft_wal_entries_free(&got);
    rd->phantom_written = rd->phantom_acked = last;
}

/* Opens the log and reads the hard state (zero if none was ever written). */
static void log_open(struct sim_node *node, struct craft_hard_state *hs)
{
    struct sim_real_disk *rd = node->rd;
    struct craft_fs *fs = &rd->fs->dfs.vt;
    char errmsg[256] = "";
    int err;
    memset(hs, 0, sizeof *hs);
    if (rd->glog_mode) {
        /* Small, so that segments roll, get compacted, and groups that do not compact get
         * their entries relocated (copied to the head) often. */
        struct craft_glog_config cfg = {.segment_bytes = 16 * 1024,
                                        .record_bytes_max = 8 * 1024,
                                        .pin_segments_max = 2};
        err = CRAFT_OK;
        if (rd->fs->glog == NULL) {
            /* The first replica of the process to start recovers every group's records. */
            err = craft_glog_open(fs, GLOG_DIR, &cfg, &rd->fs->glog, errmsg, sizeof errmsg);
        }
        if (err == CRAFT_OK) {
            (void)craft_glog_hard_state(rd->fs->glog, rd->group_id, hs);
            if (!rd->shared) {
                phantom_check(node);
            }
        }
    } else {
        check(node, craft_stable_open(fs, HS_PATH, &rd->st), "stable open");
        err = craft_stable_get_hard_state(rd->st, hs);
        if (err != CRAFT_ENOTFOUND) {
            check(node, err, "hard state get");
        }
        struct craft_wal_config cfg;
        craft_wal_config_default(&cfg);
        cfg.segment_bytes = 64 * 1024; /* small, so that segments roll and get compacted */
        cfg.record_bytes_max = 16 * 1024;
        err = craft_wal_open(fs, WAL_DIR, &cfg, &rd->wal, errmsg, sizeof errmsg);
    }
    if (err != CRAFT_OK) {
        sim_fail(node->c, "server %d %s recovery failed: %s: %s", node->i,
                 rd->glog_mode ? "group log" : "WAL", craft_strerror(err), errmsg);
    }
}

void sim_real_disk_open(struct sim_node *node)
{
    struct sim_real_disk *rd = node->rd;
    struct craft_fs *fs = &rd->fs->dfs.vt;
    rd->fs->dfs.deferring = false;
    rd->fs->dfs.pending_fd = -1;

    struct craft_hard_state hs;
    log_open(node, &hs); /* sim_fail does not return */

    int err;
    check(node, craft_snapshot_file_open(fs, rd->snap_dir, 2, &rd->snaps), "snapshot store open");
    rd->fs->users++;
    struct craft_snapshot_info info = {0};
    struct craft_snapshot_reader *r = NULL;
    uint8_t *data = NULL;
    err = rd->snaps->open_newest(rd->snaps, &info, &r);
    if (err == CRAFT_OK) {
        err = craft_snapshot_read_all(rd->snaps, r, &info, &data);
        rd->snaps->reader_close(rd->snaps, r);
        check(node, err, "snapshot read");
    } else if (err != CRAFT_ENOTFOUND) {
        check(node, err, "snapshot open");
    }
    if (craft_snapshot_file_n_corrupt(rd->snaps) != 0) {
        sim_fail(node->c, "server %d corrupt snapshot: %s", node->i, rd->snaps->errmsg(rd->snaps));
    }

    /* The log after the snapshot. A snapshot install commits the snapshot before the WAL
     * drops the old log; if the crash kept the first and not the second, the WAL's log does
     * not continue the snapshot and is stale. */
    uint64_t s = info.meta.index, first = log_first(rd);
    uint64_t last = log_last(rd);
    uint64_t lo = 0;
    if (last >= first) {
        if (first == s + 1) {
            lo = first;
        } else if (first <= s && last >= s && log_term_at(rd, s) == info.meta.term) {
            lo = s + 1;
        } else if (first > s + 1) {
            sim_fail(node->c, "server %d WAL starts at %llu after snapshot %llu", node->i,
                     (unsigned long long)first, (unsigned long long)s);
        } else {
            CRAFT_TRACE(CRAFT_T_FAULT, node->c->w->now, node->i + 1, 0,
                        "real storage: WAL %llu..%llu does not continue snapshot %llu: dropped",
                        (unsigned long long)first, (unsigned long long)last,
                        (unsigned long long)s);
            check(node, log_truncate(rd, first), "stale WAL drop");
        }
    }
    struct craft_wal_entries got = {0};
    if (lo != 0 && lo <= last) {
        check(node, log_read(rd, lo, last, &got), "WAL read");
    }
    check_covers(node, &hs, &info.meta);
    CRAFT_TRACE(CRAFT_T_FAULT, node->c->w->now, node->i + 1, 0,
                "real storage: torn %llu bytes, WAL %llu..%llu, snapshot %llu, restoring %zu",
                (unsigned long long)(rd->glog_mode ? craft_glog_torn_bytes(rd->fs->glog)
                                                   : craft_wal_torn_bytes(rd->wal)),
                (unsigned long long)first,
                (unsigned long long)last, (unsigned long long)s, got.n);

    /* The model becomes what the stores hold. */
    sim_disk_free(&node->disk);
    sim_disk_init(&node->disk);
    if (s > 0) {
        sim_disk_save_snapshot(&node->disk, &info.meta, data, (size_t)info.size);
    }
    struct craft_batch b = {.has_hard_state = true, .hs = hs, .entries = got.entries,
                            .n_entries = got.n};
    struct sim_write *w = sim_disk_begin(&node->disk, &b, 0);
    CRAFT_ASSERT(sim_disk_apply_head(&node->disk) == w);
    sim_disk_release(&node->disk, w);
    craft_wal_entries_free(&got);
    free(data);
}

/* A received snapshot chunk, and the snapshot's commit with its last one. */
static void persist_chunk(struct sim_node *node, const struct craft_batch *b)
{
    struct sim_real_disk *rd = node->rd;
    if (b->has_snap_chunk) {
        if (b->snap_offset == 0) {
            if (rd->sink != NULL) {
                rd->snaps->abort(rd->snaps, rd->sink);
                rd->sink = NULL;
            }
            check(node, rd->snaps->create(rd->snaps, NULL, &rd->sink), "snapshot create");
        }
        if (rd->sink == NULL) {
            sim_fail(node->c, "server %d snapshot chunk at %llu with no snapshot begun", node->i,
                     (unsigned long long)b->snap_offset);
        }
        check(node, rd->snaps->write(rd->snaps, rd->sink, b->snap_offset, b->snap_chunk,
                                     b->snap_chunk_len), "snapshot write");
    }
    if (b->snap_install) {
        CRAFT_ASSERT(rd->sink != NULL);
        int err = rd->snaps->commit(rd->snaps, rd->sink, &b->snap_meta);
        rd->sink = NULL;
        check(node, err, "snapshot commit");
    }
}

/* The group log takes a batch's hard state, truncation and entries in one write, whose sync
 * is deferred like the WAL's (a snapshot chunk and commit go first: the order a runtime
 * that writes them in one round keeps is snapshot, then log). */
static void persist_glog(struct sim_node *node, const struct craft_batch *b)
{
    struct sim_real_disk *rd = node->rd;
    bool drop_log = b->snap_install && !b->snap_keep_log;
    struct craft_glog_update u = {.group = rd->group_id, .has_hard_state = b->has_hard_state,
                                  .hs = b->hs, .truncate_from = b->truncate_from,
                                  .entries = b->entries, .n = b->n_entries};
    if (drop_log) {
        u.truncate_from = log_first(rd); /* the whole log, whatever follows the snapshot */
    }
    /* The phantom group's part: one to three entries. */
    struct craft_entry pe[3];
    uint8_t pbuf[3][32];
    size_t pn = 1 + b->n_entries % 3;
    for (size_t i = 0; i < pn; i++) {
        uint64_t index = rd->phantom_written + 1 + i;
        uint32_t len = phantom_payload(index, pbuf[i]);
        pe[i] = (struct craft_entry){.term = 1, .index = index, .type = CRAFT_ENTRY_NORMAL,
                                     .len = len, .data = len ? pbuf[i] : NULL};
    }
    struct craft_glog_update two[2] = {
        u, {.group = PHANTOM_GROUP, .entries = pe, .n = pn,
            .has_hard_state = b->has_hard_state, .hs = {.term = b->hs.term, .vote = 1}}};
    rd->fs->dfs.deferring = true;
    /* Replicas on a shared filesystem: the other groups of the process are the real thing. */
    check(node, craft_glog_write(rd->fs->glog, two, rd->shared ? 1 : 2), "group log write");
    rd->fs->dfs.deferring = false;
    if (!rd->shared) {
        rd->phantom_written += pn;
    }
}

void sim_real_disk_persist(struct sim_node *node, const struct craft_batch *b)
{
    struct sim_real_disk *rd = node->rd;
    rd->fs->dfs.deferring = false;
    if (rd->glog_mode) {
        persist_chunk(node, b);
        persist_glog(node, b);
        return;
    }
    if (b->has_hard_state) {
        check(node, craft_stable_put_hard_state(rd->st, &b->hs), "hard state put");
    }
    bool drop_log = b->snap_install && !b->snap_keep_log;
    rd->fs->dfs.deferring = true;
    if (b->truncate_from != 0 && !drop_log) {
        check(node, craft_wal_truncate(rd->wal, b->truncate_from), "WAL truncate");
    }
    rd->fs->dfs.deferring = false;
    persist_chunk(node, b);
    rd->fs->dfs.deferring = true;
    if (drop_log && log_last(rd) >= log_first(rd)) {
        check(node, craft_wal_truncate(rd->wal, log_first(rd)), "WAL drop");
    }
    if (b->n_entries > 0) {
        check(node, craft_wal_append(rd->wal, b->entries, b->n_entries), "WAL append");
    }
    rd->fs->dfs.deferring = false;
}

void sim_real_disk_sync(struct sim_node *node)
{
    struct sim_real_disk *rd = node->rd;
    rd->fs->dfs.deferring = false;
    check(node, flush(&rd->fs->dfs), "WAL sync");
    rd->phantom_acked = rd->phantom_written;
}

void sim_real_disk_snapshot(struct sim_node *node, const struct craft_snapshot_meta *meta,
                            const uint8_t *data, size_t len)
{
    struct sim_real_disk *rd = node->rd;
    rd->fs->dfs.deferring = false;
    struct craft_snapshot_sink *k = NULL;
    check(node, rd->snaps->create(rd->snaps, meta, &k), "snapshot create");
    int err = rd->snaps->write(rd->snaps, k, 0, data, len);
    if (err != CRAFT_OK) {
        rd->snaps->abort(rd->snaps, k);
        check(node, err, "snapshot write");
    }
    check(node, rd->snaps->commit(rd->snaps, k, NULL), "snapshot commit");
    check(node, rd->glog_mode ? craft_glog_compact(rd->fs->glog, rd->group_id, meta->index)
                              : craft_wal_compact(rd->wal, meta->index),
          "log compact");
    if (rd->glog_mode && !rd->shared && rd->phantom_acked > 3) {
        check(node, craft_glog_compact(rd->fs->glog, PHANTOM_GROUP, rd->phantom_acked - 3),
              "phantom compact");
    }
}
