/* The LMDB craftkv store: one named database (DBI) per table in one environment, so a
 * single LMDB write transaction covers data, sessions and the applied index together.
 *
 * MDB_NOTLS: read transactions are not tied to the thread that began them (the state
 * machine thread captures a snapshot, the snapshot thread streams it and ends it). Write
 * transactions stay on one thread, as LMDB requires.
 *
 * MDB_WRITEMAP (no_sync stores, craftkv's): a commit writes into the shared map instead of
 * one pwrite per dirty page (a third of craftkv's pipelined SET throughput). The map file is sparse, so a write into
 * a page with no disk block behind it on a full disk kills the process with SIGBUS. The
 * store therefore keeps the file allocated (fallocate) ahead of LMDB's last page: before a
 * write transaction and before each put, by a bound on the pages that transaction can take
 * (see reserve_for_put); a reserve that cannot be allocated fails the put with
 * CRAFT_ENOSPACE before LMDB touches the page. */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/err.h"
#include "kv/kv_store.h"

static const char *const table_names[CRAFT_KV_TABLES] = {"data", "expires", "sessions", "idle",
                                                         "meta", "elems",   "zindex"};

struct lmdb_store {
    struct craft_kv_store base;
    MDB_env *env;
    MDB_dbi dbi[CRAFT_KV_TABLES];
    int fd;                /* data.mdb, for fallocate */
    uint64_t page_bytes;   /* LMDB's page size */
    uint64_t map_bytes;    /* the map's size: nothing is reserved past it */
    uint64_t reserved_end; /* data.mdb has disk blocks for [0, reserved_end) */
    bool writemap;         /* MDB_WRITEMAP (no_sync): the reservation below applies */
    char *marker;   /* no_sync: the unsynced-writes marker, removed by a clean close */
    bool discarded; /* no_sync: the files were dropped at open (a reboot since unsynced writes) */
};

/* ---- no_sync: surviving process crashes for free, and OS crashes by discarding ----
 *
 * Without fsync, LMDB's pages reach the disk in any order: a process crash loses nothing
 * (the page cache has every write), an OS crash can leave a torn file. So while unsynced
 * writes may exist, a marker file holds the kernel's boot id. At open, a marker from
 * another boot means the machine went down with unsynced writes: the files are dropped and
 * the state machine starts empty, to be rebuilt from the Raft snapshot and log (which are
 * fsynced). A clean close syncs and removes the marker. */

static int read_boot_id(char *buf, size_t cap)
{
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Drops the files of an OS crash: a marker from another boot. Fills boot with this one's. */
static int marker_check(const char *dir, const char *marker, char *boot, size_t boot_cap,
                        bool *discarded, char *errbuf, size_t cap)
{
    char old[64] = "";
    if (read_boot_id(boot, boot_cap) != 0) {
        snprintf(errbuf, cap, "lmdb %s: no_sync needs /proc/sys/kernel/random/boot_id", dir);
        return CRAFT_EIO;
    }
    int fd = open(marker, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return CRAFT_OK;
    ssize_t n = read(fd, old, sizeof old - 1);
    close(fd);
    old[n > 0 ? n : 0] = '\0';
    if (strcmp(old, boot) == 0)
        return CRAFT_OK;
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (unlink(path) != 0 && errno != ENOENT)
        goto io;
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    if (unlink(path) != 0 && errno != ENOENT)
        goto io;
    *discarded = true;
    return CRAFT_OK;
io:
    snprintf(errbuf, cap, "lmdb %s: dropping the files of an OS crash: %s", dir, strerror(errno));
    return CRAFT_EIO;
}

/* Writes this boot's marker durably, before the first unsynced write. */
static int marker_write(const char *dir, const char *marker, const char *boot, char *errbuf,
                        size_t cap)
{
    int fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        size_t len = strlen(boot);
        bool ok = write(fd, boot, len) == (ssize_t)len && fsync(fd) == 0;
        close(fd);
        if (ok && fsync_path(dir, O_RDONLY | O_DIRECTORY) == 0)
            return CRAFT_OK;
    }
    snprintf(errbuf, cap, "lmdb %s: unsynced-writes marker: %s", dir, strerror(errno));
    return CRAFT_EIO;
}

struct craft_kv_txn {
    struct lmdb_store *s;
    MDB_txn *txn;
    bool write;
    uint64_t base;      /* write: where LMDB allocates its first new page (bytes) */
    uint64_t depth;     /* write: the deepest of the store's trees at its start, plus one */
    uint64_t by_puts;   /* write: the sum of the puts' own bounds (put_bound) */
    uint64_t new_bytes; /* write: the sum of the puts' data bounds (data_bound) */
};

/* ---- keeping the map file allocated ahead of LMDB (MDB_WRITEMAP) ---- */

/* The reserve grows by a quarter of the file at a time, between these bounds: a few
 * fallocate calls per doubling of the database, not one per commit, and a small database
 * keeps a small file. */
#define RESERVE_STEP_BYTES_MIN ((uint64_t)1 << 20)
#define RESERVE_STEP_BYTES_MAX ((uint64_t)64 << 20)
/* A commit's own pages beyond the puts' (the free-page list, the main tree's root path). */
#define COMMIT_SLACK_BYTES ((uint64_t)1 << 20)

/* Makes sure data.mdb has disk blocks for [0, end) (MDB_WRITEMAP only: otherwise LMDB
 * writes pages with pwrite, which fails cleanly with ENOSPC). */
static int reserve_to(struct lmdb_store *s, uint64_t end)
{
    if (!s->writemap || end <= s->reserved_end)
        return CRAFT_OK;
    uint64_t step = end / 4;
    step = step < RESERVE_STEP_BYTES_MIN ? RESERVE_STEP_BYTES_MIN
         : step > RESERVE_STEP_BYTES_MAX ? RESERVE_STEP_BYTES_MAX
                                         : step;
    uint64_t to = end + step;
    if (to > s->map_bytes)
        to = s->map_bytes; /* LMDB writes nothing past the map: it says MDB_MAP_FULL */
    if (to <= s->reserved_end)
        return CRAFT_OK;
    /* posix_fallocate: fallocate(2), or zero-filled blocks where the filesystem lacks it. */
    int rc = posix_fallocate(s->fd, (off_t)s->reserved_end, (off_t)(to - s->reserved_end));
    if (rc != 0)
        return rc == ENOSPC || rc == EDQUOT ? CRAFT_ENOSPACE : CRAFT_EIO;
    s->reserved_end = to;
    return CRAFT_OK;
}

/* The new pages one put or delete may take, in bytes: the copies of its path from the root
 * (each page of a B+tree touched by a transaction is copied once), a neighbour copied at
 * every level, a split at every level and a new root, and the overflow pages of a large
 * value, in trees as deep as the deepest at the transaction's start plus one. A bound, not
 * an estimate: it is what keeps SIGBUS away. */
static uint64_t put_bound(const struct craft_kv_txn *t, size_t klen, size_t vlen)
{
    /* Per level: the copy of the path, a copied neighbour (a delete's rebalancing), a
     * split; and a new root. */
    uint64_t pages = 3 * t->depth + 1;
    pages += (klen + vlen + t->s->page_bytes - 1) / t->s->page_bytes;
    return pages * t->s->page_bytes;
}

/* What a put adds to the pages that did not exist before, in bytes, whatever the tree: its
 * node (header included) in leaves that a split leaves at least half full, the branch pages
 * above new leaves (no more than the leaves), and a large value's overflow pages. */
static uint64_t data_bound(const struct lmdb_store *s, size_t klen, size_t vlen)
{
    return 4 * ((uint64_t)klen + vlen + 16) + (vlen >= s->page_bytes / 2 ? vlen + s->page_bytes : 0);
}

/* The new pages transaction t may take so far, in bytes: the smaller of two bounds. Per put
 * (put_bound, tight for a few puts), or per transaction: every page that existed at its
 * start copied once and split once (2 x base), plus what the puts add (data_bound), which stays proportional
 * to the data for the transactions that touch most of the tree (a snapshot restore, a
 * flush). On top, the commit's own writes: the free-page list, up to 8 bytes for every page
 * that may be freed (base / 512, rounded up generously), and a fixed slack. */
static uint64_t txn_need(const struct craft_kv_txn *t)
{
    /* Twice base: every page copied once, and every page full at the start split once. */
    uint64_t whole = 2 * t->base + t->new_bytes;
    uint64_t pages = t->by_puts < whole ? t->by_puts : whole;
    return pages + t->base / 256 + COMMIT_SLACK_BYTES;
}

static int map_err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return CRAFT_OK;
    case MDB_NOTFOUND:
        return CRAFT_ENOTFOUND;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case ENOSPC:
        return CRAFT_ENOSPACE;
    case ENOMEM:
        return CRAFT_ENOMEM;
    case MDB_READERS_FULL:
        return CRAFT_EBUSY;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
        return CRAFT_ECORRUPT;
    case MDB_VERSION_MISMATCH:
        return CRAFT_EVERSION;
    case MDB_BAD_VALSIZE:
        return CRAFT_EINVAL;
    default:
        return CRAFT_EIO;
    }
}

static MDB_dbi dbi_of(struct craft_kv_txn *t, int table)
{
    CRAFT_ASSERT(table >= 0 && table < CRAFT_KV_TABLES);
    return t->s->dbi[table];
}

static int lmdb_begin(struct craft_kv_store *base, bool write, struct craft_kv_txn **out)
{
    struct lmdb_store *s = (struct lmdb_store *)base;
    struct craft_kv_txn *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return CRAFT_ENOMEM;
    }
    int rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
    if (rc != MDB_SUCCESS) {
        free(t);
        return map_err(rc);
    }
    t->s = s;
    t->write = write;
    if (write) {
        /* The only writer: the newest meta page is this transaction's starting point, and
         * new pages come after its last page. */
        MDB_envinfo info;
        mdb_env_info(s->env, &info);
        t->base = ((uint64_t)info.me_last_pgno + 1) * s->page_bytes;
        t->depth = 1;
        for (int i = 0; i < CRAFT_KV_TABLES; i++) {
            MDB_stat st;
            if (mdb_stat(t->txn, s->dbi[i], &st) == MDB_SUCCESS && st.ms_depth + 1 > t->depth)
                t->depth = st.ms_depth + 1;
        }
        t->depth += 1; /* the main tree that names the tables, and the free-page tree */
        int err = reserve_to(s, t->base + txn_need(t));
        if (err != CRAFT_OK) {
            mdb_txn_abort(t->txn);
            free(t);
            return err;
        }
    }
    *out = t;
    return CRAFT_OK;
}

static int lmdb_get(struct craft_kv_txn *t, int table, const uint8_t *key, size_t klen,
                    const uint8_t **val, size_t *vlen)
{
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key}, v;
    int rc = mdb_get(t->txn, dbi_of(t, table), &k, &v);
    if (rc == MDB_SUCCESS) {
        *val = v.mv_data;
        *vlen = v.mv_size;
    }
    return map_err(rc);
}

/* A put or a delete (which may merge pages: bounded the same way) in t needs klen + vlen. */
static int reserve_for_put(struct craft_kv_txn *t, size_t klen, size_t vlen)
{
    t->by_puts += put_bound(t, klen, vlen);
    t->new_bytes += data_bound(t->s, klen, vlen);
    return reserve_to(t->s, t->base + txn_need(t));
}

static int lmdb_put(struct craft_kv_txn *t, int table, const uint8_t *key, size_t klen,
                    const uint8_t *val, size_t vlen)
{
    CRAFT_ASSERT(t->write);
    int err = reserve_for_put(t, klen, vlen);
    if (err != CRAFT_OK)
        return err;
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
    MDB_val v = {.mv_size = vlen, .mv_data = (void *)val};
    return map_err(mdb_put(t->txn, dbi_of(t, table), &k, &v, 0));
}

static int lmdb_del(struct craft_kv_txn *t, int table, const uint8_t *key, size_t klen)
{
    CRAFT_ASSERT(t->write);
    int err = reserve_for_put(t, klen, 0);
    if (err != CRAFT_OK)
        return err;
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
    return map_err(mdb_del(t->txn, dbi_of(t, table), &k, NULL));
}

static int lmdb_drop(struct craft_kv_txn *t, int table)
{
    CRAFT_ASSERT(t->write);
    /* Emptying a table frees its pages (their list at commit is in txn_need's base / 256)
     * and copies only the main tree's path to its record. */
    int err = reserve_for_put(t, 0, 0);
    if (err != CRAFT_OK)
        return err;
    return map_err(mdb_drop(t->txn, dbi_of(t, table), 0));
}

static int lmdb_iter(struct craft_kv_txn *t, int table, const uint8_t *from, size_t from_len,
                     craft_kv_iter_fn fn, void *ctx)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(t->txn, dbi_of(t, table), &cur);
    if (rc != MDB_SUCCESS) {
        return map_err(rc);
    }
    MDB_val k = {.mv_size = from_len, .mv_data = (void *)from}, v;
    /* MDB_SET_RANGE refuses an empty key (MDB_BAD_VALSIZE): the first key is >= "". */
    rc = mdb_cursor_get(cur, &k, &v, from != NULL && from_len > 0 ? MDB_SET_RANGE : MDB_FIRST);
    int out = CRAFT_OK;
    while (rc == MDB_SUCCESS) {
        out = fn(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        if (out != CRAFT_OK) {
            break;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (out == CRAFT_KV_ITER_STOP) {
        return CRAFT_OK;
    }
    if (out != CRAFT_OK) {
        return out;
    }
    return rc == MDB_NOTFOUND ? CRAFT_OK : map_err(rc);
}

/* LMDB reports a short write as EIO, and on a full filesystem a write is short: tell the
 * two apart by the space left where the store lives (a clearer error for the operator). */
static int commit_error(MDB_env *env, int rc)
{
    const char *path = NULL;
    struct statvfs vfs;
    if (rc == EIO && mdb_env_get_path(env, &path) == MDB_SUCCESS && path != NULL &&
        statvfs(path, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < (1u << 20))
        return CRAFT_ENOSPACE;
    return map_err(rc);
}

static int lmdb_commit(struct craft_kv_txn *t)
{
    CRAFT_ASSERT(t->write);
    MDB_env *env = t->s->env;
    int rc = mdb_txn_commit(t->txn); /* frees the txn whatever the outcome */
    free(t);
    return rc == MDB_SUCCESS ? CRAFT_OK : commit_error(env, rc);
}

static void lmdb_abort(struct craft_kv_txn *t)
{
    mdb_txn_abort(t->txn);
    free(t);
}

/* Makes every commit durable. With MDB_WRITEMAP, mdb_env_sync msyncs the whole map (16 GiB
 * by default): on Linux that is an fdatasync of the file's range, so fdatasync the file
 * instead (a tool that checks msync's range byte by byte, such as valgrind, took seconds
 * over a sparse 16 GiB map, starving every other thread of the process). */
static int store_sync(struct lmdb_store *s)
{
    if (!s->writemap)
        return mdb_env_sync(s->env, 1) == MDB_SUCCESS ? 0 : -1;
    return fdatasync(s->fd);
}

static void lmdb_close(struct craft_kv_store *base)
{
    struct lmdb_store *s = (struct lmdb_store *)base;
    if (s->marker != NULL && store_sync(s) == 0 && unlink(s->marker) == 0) {
        /* the marker stays if the sync failed: the next open after a reboot drops the files */
        char *slash = strrchr(s->marker, '/');
        if (slash != NULL) {
            *slash = '\0';
            fsync_path(s->marker, O_RDONLY | O_DIRECTORY);
        }
    }
    mdb_env_close(s->env);
    free(s->marker);
    free(s);
}

bool craft_kv_store_lmdb_discarded(const struct craft_kv_store *base)
{
    return ((const struct lmdb_store *)base)->discarded;
}

static const struct craft_kv_store_ops lmdb_ops = {
    .begin = lmdb_begin,
    .get = lmdb_get,
    .put = lmdb_put,
    .del = lmdb_del,
    .drop = lmdb_drop,
    .iter = lmdb_iter,
    .commit = lmdb_commit,
    .abort = lmdb_abort,
    .close = lmdb_close,
};

static int fail(char *errbuf, size_t cap, int err, const char *what, const char *path, int rc)
{
    if (errbuf != NULL && cap > 0) {
        snprintf(errbuf, cap, "%s %s: %s", what, path, mdb_strerror(rc));
    }
    return err;
}

int craft_kv_store_lmdb_open(const struct craft_kv_lmdb_config *cfg, struct craft_kv_store **out,
                             char *errbuf, size_t errbuf_cap)
{
    if (cfg == NULL || cfg->path == NULL || cfg->path[0] == '\0') {
        return fail(errbuf, errbuf_cap, CRAFT_EINVAL, "lmdb", "(no path)", EINVAL);
    }
    const char *path = cfg->path;
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        return fail(errbuf, errbuf_cap, CRAFT_EIO, "mkdir", path, errno);
    }
    struct lmdb_store *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return CRAFT_ENOMEM;
    }
    s->base.ops = &lmdb_ops;
    char boot[64] = "";
    if (cfg->no_sync) {
        size_t n = strlen(path) + sizeof "/unsynced.boot";
        s->marker = malloc(n);
        if (s->marker == NULL) {
            free(s);
            return CRAFT_ENOMEM;
        }
        snprintf(s->marker, n, "%s/unsynced.boot", path);
        int mrc = marker_check(path, s->marker, boot, sizeof boot, &s->discarded, errbuf,
                               errbuf_cap);
        if (mrc != CRAFT_OK) {
            free(s->marker);
            free(s);
            return mrc;
        }
    }
    int rc = mdb_env_create(&s->env);
    if (rc != MDB_SUCCESS) {
        free(s->marker);
        free(s);
        return fail(errbuf, errbuf_cap, map_err(rc), "mdb_env_create", path, rc);
    }
    const char *what = "mdb_env_set_maxdbs";
    rc = mdb_env_set_maxdbs(s->env, CRAFT_KV_TABLES);
    if (rc == MDB_SUCCESS) {
        what = "mdb_env_set_mapsize";
        rc = mdb_env_set_mapsize(s->env,
                                 (size_t)(cfg->map_bytes != 0 ? cfg->map_bytes : 16ull << 30));
    }
    if (rc == MDB_SUCCESS) {
        what = "mdb_env_set_maxreaders";
        rc = mdb_env_set_maxreaders(s->env, cfg->readers_max != 0 ? cfg->readers_max : 256);
    }
    if (rc == MDB_SUCCESS) {
        what = "mdb_env_open";
        /* MDB_WRITEMAP with no_sync only: with it every durable commit (MDB_NOMETASYNC) would
         * msync the whole map, and its gain, no pwrite per page, is noise next to an fsync
         * per commit. */
        s->writemap = cfg->no_sync;
        unsigned flags = MDB_NOTLS | (cfg->no_sync ? MDB_NOSYNC | MDB_WRITEMAP : MDB_NOMETASYNC);
        rc = mdb_env_open(s->env, path, flags, 0644);
    }
    if (rc == MDB_SUCCESS && mdb_env_get_maxkeysize(s->env) < (int)CRAFT_KV_STORE_KEY_BYTES_MAX) {
        mdb_env_close(s->env);
        free(s->marker);
        free(s);
        if (errbuf != NULL && errbuf_cap > 0) {
            snprintf(errbuf, errbuf_cap, "lmdb %s: key limit below %u bytes", path,
                     CRAFT_KV_STORE_KEY_BYTES_MAX);
        }
        return CRAFT_EINVAL;
    }
    if (rc == MDB_SUCCESS) {
        what = "mdb_env_get_fd";
        rc = mdb_env_get_fd(s->env, &s->fd);
    }
    if (rc == MDB_SUCCESS) {
        MDB_stat st;
        MDB_envinfo info;
        what = "mdb_env_stat";
        rc = mdb_env_stat(s->env, &st);
        if (rc == MDB_SUCCESS)
            rc = mdb_env_info(s->env, &info);
        s->page_bytes = st.ms_psize;
        s->map_bytes = info.me_mapsize;
    }
    if (rc == MDB_SUCCESS) {
        /* Before the first write: the tables' creation below writes pages too. */
        what = "fallocate";
        int err = reserve_to(s, 0 + COMMIT_SLACK_BYTES);
        if (err != CRAFT_OK) {
            mdb_env_close(s->env);
            free(s->marker);
            free(s);
            if (errbuf != NULL && errbuf_cap > 0)
                snprintf(errbuf, errbuf_cap, "lmdb %s: reserving space for the map: %s", path,
                         craft_strerror(err));
            return err;
        }
    }
    if (rc == MDB_SUCCESS) {
        /* Reader slots left by a crashed process would pin old pages forever. */
        int dead;
        what = "mdb_reader_check";
        rc = mdb_reader_check(s->env, &dead);
    }
    if (rc == MDB_SUCCESS && s->marker != NULL) {
        /* After the environment opened (a refused file leaves the directory as it found
         * it), before the first write transaction. */
        int mrc = marker_write(path, s->marker, boot, errbuf, errbuf_cap);
        if (mrc != CRAFT_OK) {
            mdb_env_close(s->env);
            free(s->marker);
            free(s);
            return mrc;
        }
    }
    MDB_txn *txn = NULL;
    if (rc == MDB_SUCCESS) {
        what = "mdb_txn_begin";
        rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    }
    for (int i = 0; rc == MDB_SUCCESS && i < CRAFT_KV_TABLES; i++) {
        what = "mdb_dbi_open";
        rc = mdb_dbi_open(txn, table_names[i], MDB_CREATE, &s->dbi[i]);
    }
    if (rc == MDB_SUCCESS) {
        what = "mdb_txn_commit";
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }

    if (rc != MDB_SUCCESS) {
        if (txn != NULL) {
            mdb_txn_abort(txn);
        }
        mdb_env_close(s->env);
        free(s->marker);
        free(s);
        return fail(errbuf, errbuf_cap, map_err(rc), what, path, rc);
    }
    *out = &s->base;
    return CRAFT_OK;
}
