/* Snapshot stores: files over the fs port, memory, discard. One file, because the three
 * share the sink and the sorted list of committed snapshots; the file store is the only one
 * with a durability argument (see commit_file). */
#include "base/bytes.h"
#include "storage/snapshot_store.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/assert.h"

#define SNAP_MAGIC 0x4e534643u /* "CFSN" */
#define SNAP_VERSION 1u
#define SNAP_FIXED_BYTES 40u /* magic, version, index, term, size, crc, conf_len */
#define SNAP_CONF_BYTES_MAX (4u + 4u * 8u * CRAFT_CONF_NODES_MAX)
#define SNAP_ERRMSG_CAP 512u
#define SNAP_IO_CHUNK_BYTES 65536u

_Static_assert(SNAP_FIXED_BYTES + SNAP_CONF_BYTES_MAX + 4u <= CRAFT_SNAPSHOT_HEADER_BYTES,
               "the snapshot header holds the largest configuration");

/* ---- helpers shared by the stores ---- */

/* zlib's crc32 takes a uInt length: feed large buffers in slices. */
static uint32_t crc_update(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uLong c = crc;
    while (len > 0) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
        c = crc32(c, p, n);
        p += n;
        len -= n;
    }
    return (uint32_t)c;
}

static uint32_t crc_init(void)
{
    return (uint32_t)crc32(0L, Z_NULL, 0);
}

/* Newer first: by index, then term. */
static bool info_newer(const struct craft_snapshot_info *a, const struct craft_snapshot_info *b)
{
    return a->meta.index > b->meta.index ||
           (a->meta.index == b->meta.index && a->meta.term > b->meta.term);
}

static bool info_same(const struct craft_snapshot_info *a, const struct craft_snapshot_info *b)
{
    return a->meta.index == b->meta.index && a->meta.term == b->meta.term;
}

static void errmsg_set(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, SNAP_ERRMSG_CAP, fmt, ap);
    va_end(ap);
}

/* Appends to the message (several corrupt snapshots can be met by one open). */
static void errmsg_add(char *buf, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used > 0 && used + 2 < SNAP_ERRMSG_CAP) {
        memcpy(buf + used, "; ", 3);
        used += 2;
    }
    if (used + 1 >= SNAP_ERRMSG_CAP) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, SNAP_ERRMSG_CAP - used, fmt, ap);
    va_end(ap);
}

/* The sink of every store; fields unused by a store stay zero. */
struct craft_snapshot_sink {
    bool has_meta;
    bool failed;
    struct craft_snapshot_meta meta;
    uint64_t size;
    uint32_t crc;
    int fd;        /* file store */
    char *tmp;     /* file store: the temporary path */
    uint8_t *data; /* memory store */
    size_t cap;
};

/* Reference-counted data of a memory snapshot, so that retention cannot pull it from under
 * an open reader. */
struct mem_blob {
    size_t refs;
    uint8_t *data;
};

struct craft_snapshot_reader {
    uint64_t size;
    int fd;                /* file store */
    struct mem_blob *blob; /* memory store */
};

static int sink_new(const struct craft_snapshot_meta *meta, struct craft_snapshot_sink **out)
{
    if (meta != NULL && !craft_conf_valid(&meta->conf)) {
        return CRAFT_EINVAL;
    }
    struct craft_snapshot_sink *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        return CRAFT_ENOMEM;
    }
    k->fd = -1;
    k->crc = crc_init();
    if (meta != NULL) {
        k->has_meta = true;
        k->meta = *meta;
    }
    *out = k;
    return CRAFT_OK;
}

/* Works out which part of a chunk is new. Returns EINVAL if the chunk leaves a hole. */
static int sink_chunk(struct craft_snapshot_sink *k, uint64_t off, const void **buf, size_t *len)
{
    if (k->failed) {
        return CRAFT_EINVAL;
    }
    if (off > k->size) {
        return CRAFT_EINVAL;
    }
    uint64_t skip = k->size - off;
    if (skip >= *len) {
        *len = 0;
        return CRAFT_OK;
    }
    *buf = (const uint8_t *)*buf + skip;
    *len -= (size_t)skip;
    return CRAFT_OK;
}

/* Resolves the metadata a commit uses. */
static int sink_meta(struct craft_snapshot_sink *k, const struct craft_snapshot_meta *meta)
{
    if (k->failed) {
        return CRAFT_EINVAL;
    }
    if (meta != NULL) {
        if (!craft_conf_valid(&meta->conf)) {
            return CRAFT_EINVAL;
        }
        k->meta = *meta;
        k->has_meta = true;
    }
    return k->has_meta ? CRAFT_OK : CRAFT_EINVAL;
}

static uint64_t sink_written(struct craft_snapshot_store *s, const struct craft_snapshot_sink *k)
{
    (void)s;
    return k->size;
}

int craft_snapshot_read_all(struct craft_snapshot_store *s, struct craft_snapshot_reader *r,
                            const struct craft_snapshot_info *info, uint8_t **data)
{
    *data = NULL;
    if (info->size == 0) {
        return info->crc == crc_init() ? CRAFT_OK : CRAFT_ECORRUPT;
    }
    if (info->size > SIZE_MAX) {
        return CRAFT_ENOMEM;
    }
    uint8_t *buf = malloc((size_t)info->size);
    if (buf == NULL) {
        return CRAFT_ENOMEM;
    }
    size_t n = 0;
    int err = s->read(s, r, buf, (size_t)info->size, 0, &n);
    if (err == 0 && n != info->size) {
        err = CRAFT_EIO;
    }
    if (err == 0 && crc_update(crc_init(), buf, n) != info->crc) {
        err = CRAFT_ECORRUPT;
    }
    if (err != 0) {
        free(buf);
        return err;
    }
    *data = buf;
    return CRAFT_OK;
}

/* A list of committed snapshots, newest first. */
struct snap_list {
    struct craft_snapshot_info *infos;
    struct mem_blob **blobs; /* memory store only; NULL entries otherwise */
    size_t n, cap;
};

/* Inserts info (and blob) in order, replacing a snapshot with the same index and term;
 * *replaced receives the blob it replaced (or NULL). */
static int list_insert(struct snap_list *l, const struct craft_snapshot_info *info,
                       struct mem_blob *blob, struct mem_blob **replaced)
{
    *replaced = NULL;
    for (size_t i = 0; i < l->n; i++) {
        if (info_same(&l->infos[i], info)) {
            l->infos[i] = *info;
            *replaced = l->blobs[i];
            l->blobs[i] = blob;
            return CRAFT_OK;
        }
    }
    if (l->n == l->cap) {
        size_t cap = l->cap == 0 ? 8 : 2 * l->cap;
        struct craft_snapshot_info *infos = realloc(l->infos, cap * sizeof(*infos));
        if (infos == NULL) {
            return CRAFT_ENOMEM;
        }
        l->infos = infos;
        struct mem_blob **blobs = realloc(l->blobs, cap * sizeof(*blobs));
        if (blobs == NULL) {
            return CRAFT_ENOMEM;
        }
        l->blobs = blobs;
        l->cap = cap;
    }
    size_t at = 0;
    while (at < l->n && !info_newer(info, &l->infos[at])) {
        at++;
    }
    memmove(l->infos + at + 1, l->infos + at, (l->n - at) * sizeof(*l->infos));
    memmove(l->blobs + at + 1, l->blobs + at, (l->n - at) * sizeof(*l->blobs));
    l->infos[at] = *info;
    l->blobs[at] = blob;
    l->n++;
    return CRAFT_OK;
}

static void list_remove(struct snap_list *l, size_t at)
{
    CRAFT_ASSERT(at < l->n);
    memmove(l->infos + at, l->infos + at + 1, (l->n - at - 1) * sizeof(*l->infos));
    memmove(l->blobs + at, l->blobs + at + 1, (l->n - at - 1) * sizeof(*l->blobs));
    l->n--;
}

static void list_copy(const struct snap_list *l, struct craft_snapshot_info *out, size_t cap,
                      size_t *n)
{
    for (size_t i = 0; i < l->n && i < cap; i++) {
        out[i] = l->infos[i];
    }
    *n = l->n;
}

/* ---- the file store ---- */

struct file_store {
    struct craft_snapshot_store vt; /* first: the vtable pointer is the store pointer */
    struct craft_fs *fs;
    char *dir;
    uint32_t retain;
    uint64_t tmp_seq;
    uint64_t n_corrupt;
    struct snap_list list;
    char err[SNAP_ERRMSG_CAP];
};

static struct file_store *file_of(struct craft_snapshot_store *s)
{
    return (struct file_store *)s;
}

static char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p != NULL) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

#define SNAP_NAME_BYTES 38u /* 16 hex - 16 hex .snap */

static void snap_name(char *buf, uint64_t index, uint64_t term)
{
    snprintf(buf, SNAP_NAME_BYTES + 1, "%016" PRIx64 "-%016" PRIx64 ".snap", index, term);
}

static bool parse_hex16(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9') {
            d = (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = (unsigned)(c - 'a' + 10);
        } else {
            return false;
        }
        x = (x << 4) | d;
    }
    *v = x;
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

/* Encodes the header of info into hdr (CRAFT_SNAPSHOT_HEADER_BYTES). */
static void header_encode(uint8_t *hdr, const struct craft_snapshot_info *info)
{
    memset(hdr, 0, CRAFT_SNAPSHOT_HEADER_BYTES);
    craft_put_u32(hdr, SNAP_MAGIC);
    craft_put_u32(hdr + 4, SNAP_VERSION);
    craft_put_u64(hdr + 8, info->meta.index);
    craft_put_u64(hdr + 16, info->meta.term);
    craft_put_u64(hdr + 24, info->size);
    craft_put_u32(hdr + 32, info->crc);
    size_t conf_len = craft_conf_encode(&info->meta.conf, hdr + SNAP_FIXED_BYTES);
    CRAFT_ASSERT(conf_len <= SNAP_CONF_BYTES_MAX);
    craft_put_u32(hdr + 36, (uint32_t)conf_len);
    uint32_t crc = crc_update(crc_init(), hdr, CRAFT_SNAPSHOT_HEADER_BYTES - 4);
    craft_put_u32(hdr + CRAFT_SNAPSHOT_HEADER_BYTES - 4, crc);
}

/* Decodes a header; *why says what does not check. */
static bool header_decode(const uint8_t *hdr, struct craft_snapshot_info *info, const char **why)
{
    if (craft_get_u32(hdr + CRAFT_SNAPSHOT_HEADER_BYTES - 4) !=
        crc_update(crc_init(), hdr, CRAFT_SNAPSHOT_HEADER_BYTES - 4)) {
        *why = "header checksum mismatch";
        return false;
    }
    if (craft_get_u32(hdr) != SNAP_MAGIC || craft_get_u32(hdr + 4) != SNAP_VERSION) {
        *why = "bad magic or version";
        return false;
    }
    uint32_t conf_len = craft_get_u32(hdr + 36);
    memset(info, 0, sizeof(*info));
    if (conf_len > SNAP_CONF_BYTES_MAX ||
        craft_conf_decode(hdr + SNAP_FIXED_BYTES, conf_len, &info->meta.conf) != 0) {
        *why = "bad configuration";
        return false;
    }
    info->meta.index = craft_get_u64(hdr + 8);
    info->meta.term = craft_get_u64(hdr + 16);
    info->size = craft_get_u64(hdr + 24);
    info->crc = craft_get_u32(hdr + 32);
    return true;
}

/* Checks the snapshot file `name` whole: header, name, size, data checksum. Returns CRAFT_OK
 * with *info, CRAFT_ECORRUPT with *why, or an fs error. If fd_out is not NULL the file is
 * left open there on CRAFT_OK. */
static int file_check(struct file_store *st, const char *name, struct craft_snapshot_info *info,
                      const char **why, int *fd_out)
{
    struct craft_fs *fs = st->fs;
    char *path = path_join(st->dir, name);
    if (path == NULL) {
        return CRAFT_ENOMEM;
    }
    int fd;
    int err = fs->open(fs, path, 0, &fd);
    free(path);
    if (err != 0) {
        if (err == CRAFT_ENOTFOUND) {
            *why = "file vanished";
            return CRAFT_ECORRUPT;
        }
        return err;
    }
    uint8_t *buf = malloc(SNAP_IO_CHUNK_BYTES);
    if (buf == NULL) {
        (void)fs->close(fs, fd);
        return CRAFT_ENOMEM;
    }
    uint64_t file_bytes = 0;
    size_t got = 0;
    uint64_t idx = 0, term = 0;
    err = fs->file_size(fs, fd, &file_bytes);
    if (err == 0) {
        err = fs->pread(fs, fd, buf, CRAFT_SNAPSHOT_HEADER_BYTES, 0, &got);
    }
    if (err != 0) {
        goto close_file;
    }
    err = CRAFT_ECORRUPT;
    if (got < CRAFT_SNAPSHOT_HEADER_BYTES) {
        *why = "shorter than its header";
        goto close_file;
    }
    if (!header_decode(buf, info, why)) {
        goto close_file;
    }
    if (!parse_hex16(name, &idx) || !parse_hex16(name + 17, &term) ||
        idx != info->meta.index || term != info->meta.term) {
        *why = "name does not match the header";
        goto close_file;
    }
    if (file_bytes != CRAFT_SNAPSHOT_HEADER_BYTES + info->size) {
        *why = "size does not match the header";
        goto close_file;
    }
    uint32_t crc = crc_init();
    for (uint64_t off = 0; off < info->size;) {
        uint64_t want = info->size - off;
        size_t len = want > SNAP_IO_CHUNK_BYTES ? SNAP_IO_CHUNK_BYTES : (size_t)want;
        int rerr = fs->pread(fs, fd, buf, len, CRAFT_SNAPSHOT_HEADER_BYTES + off, &got);
        if (rerr != 0) {
            err = rerr;
            goto close_file;
        }
        if (got != len) {
            *why = "data shorter than the header says";
            goto close_file;
        }
        crc = crc_update(crc, buf, len);
        off += len;
    }
    if (crc != info->crc) {
        *why = "data checksum mismatch";
        goto close_file;
    }
    err = CRAFT_OK;
close_file:
    free(buf);
    if (err == 0 && fd_out != NULL) {
        *fd_out = fd;
    } else {
        (void)fs->close(fs, fd);
    }
    return err;
}

struct scan {
    struct file_store *st;
    char **names;
    size_t n, cap;
    int err;
};

static int scan_name(void *arg, const char *name)
{
    struct scan *sc = arg;
    if (sc->n == sc->cap) {
        size_t cap = sc->cap == 0 ? 16 : 2 * sc->cap;
        char **names = realloc(sc->names, cap * sizeof(*names));
        if (names == NULL) {
            sc->err = CRAFT_ENOMEM;
            return 1;
        }
        sc->names = names;
        sc->cap = cap;
    }
    size_t len = strlen(name);
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        sc->err = CRAFT_ENOMEM;
        return 1;
    }
    memcpy(copy, name, len + 1);
    sc->names[sc->n++] = copy;
    return 0;
}

static void scan_free(struct scan *sc)
{
    for (size_t i = 0; i < sc->n; i++) {
        free(sc->names[i]);
    }
    free(sc->names);
}

/* Deletes leftover temporary files and loads every snapshot that checks. */
static int file_recover(struct file_store *st)
{
    struct craft_fs *fs = st->fs;
    struct scan sc = {.st = st};
    int err = fs->list_dir(fs, st->dir, scan_name, &sc);
    if (sc.err != 0) {
        err = sc.err;
    }
    bool removed = false;
    for (size_t i = 0; err == 0 && i < sc.n; i++) {
        const char *name = sc.names[i];
        if (ends_with(name, ".tmp")) {
            char *path = path_join(st->dir, name);
            if (path == NULL) {
                err = CRAFT_ENOMEM;
                break;
            }
            err = fs->unlink(fs, path);
            free(path);
            removed = true;
            continue;
        }
        if (strlen(name) != SNAP_NAME_BYTES || !ends_with(name, ".snap") || name[16] != '-') {
            continue; /* not ours */
        }
        struct craft_snapshot_info info;
        const char *why = "";
        err = file_check(st, name, &info, &why, NULL);
        if (err == CRAFT_ECORRUPT) {
            st->n_corrupt++;
            errmsg_add(st->err, "skipped snapshot %s/%s: %s", st->dir, name, why);
            err = CRAFT_OK;
            continue;
        }
        if (err == 0) {
            struct mem_blob *replaced;
            err = list_insert(&st->list, &info, NULL, &replaced);
        }
    }
    if (err == 0 && removed) {
        err = fs->fsync_dir(fs, st->dir);
    }
    scan_free(&sc);
    return err;
}

static int file_create(struct craft_snapshot_store *s, const struct craft_snapshot_meta *meta,
                       struct craft_snapshot_sink **out)
{
    struct file_store *st = file_of(s);
    struct craft_snapshot_sink *k;
    int err = sink_new(meta, &k);
    if (err != 0) {
        return err;
    }
    char name[32];
    snprintf(name, sizeof(name), "%016" PRIx64 ".snap.tmp", st->tmp_seq++);
    k->tmp = path_join(st->dir, name);
    if (k->tmp == NULL) {
        free(k);
        return CRAFT_ENOMEM;
    }
    err = st->fs->open(st->fs, k->tmp, CRAFT_FS_CREATE, &k->fd);
    if (err == 0) {
        /* A leftover of an earlier store under the same name: start empty. */
        err = st->fs->ftruncate(st->fs, k->fd, 0);
        if (err != 0) {
            (void)st->fs->close(st->fs, k->fd);
        }
    }
    if (err != 0) {
        free(k->tmp);
        free(k);
        return err;
    }
    *out = k;
    return CRAFT_OK;
}

static int file_write(struct craft_snapshot_store *s, struct craft_snapshot_sink *k,
                      uint64_t off, const void *buf, size_t len)
{
    struct file_store *st = file_of(s);
    int err = sink_chunk(k, off, &buf, &len);
    if (err != 0 || len == 0) {
        return err;
    }
    err = st->fs->pwrite(st->fs, k->fd, buf, len, CRAFT_SNAPSHOT_HEADER_BYTES + k->size);
    if (err != 0) {
        k->failed = true;
        return err;
    }
    k->crc = crc_update(k->crc, buf, len);
    k->size += len;
    return CRAFT_OK;
}

static void file_sink_free(struct file_store *st, struct craft_snapshot_sink *k, bool unlink)
{
    if (k->fd >= 0) {
        (void)st->fs->close(st->fs, k->fd);
    }
    if (unlink) {
        (void)st->fs->unlink(st->fs, k->tmp); /* best effort: open deletes leftovers */
    }
    free(k->tmp);
    free(k);
}

static void file_abort(struct craft_snapshot_store *s, struct craft_snapshot_sink *k)
{
    file_sink_free(file_of(s), k, true);
}

/* Deletes the snapshots beyond the retain count, oldest first; a failure is recorded and
 * left for the next commit (an extra old snapshot is harmless). */
static void file_retain(struct file_store *st)
{
    bool removed = false;
    while (st->list.n > st->retain) {
        const struct craft_snapshot_info *old = &st->list.infos[st->list.n - 1];
        char name[SNAP_NAME_BYTES + 1];
        snap_name(name, old->meta.index, old->meta.term);
        char *path = path_join(st->dir, name);
        if (path == NULL) {
            errmsg_set(st->err, "deleting old snapshot %s/%s: %s", st->dir, name,
                       craft_strerror(CRAFT_ENOMEM));
            break;
        }
        int err = st->fs->unlink(st->fs, path);
        free(path);
        if (err != 0 && err != CRAFT_ENOTFOUND) {
            errmsg_set(st->err, "deleting old snapshot %s/%s: %s", st->dir, name,
                       craft_strerror(err));
            break;
        }
        list_remove(&st->list, st->list.n - 1);
        removed = true;
    }
    if (removed) {
        int err = st->fs->fsync_dir(st->fs, st->dir);
        if (err != 0) {
            errmsg_set(st->err, "syncing %s after deleting old snapshots: %s", st->dir,
                       craft_strerror(err));
        }
    }
}

/* The commit point is the rename: before it only a .tmp exists (deleted at open); the data
 * and header are fdatasynced before it, so the name never points at a partial file; the
 * fsync_dir makes the name durable before we acknowledge. */
static int file_commit(struct craft_snapshot_store *s, struct craft_snapshot_sink *k,
                       const struct craft_snapshot_meta *meta)
{
    struct file_store *st = file_of(s);
    struct craft_fs *fs = st->fs;
    int err = sink_meta(k, meta);
    if (err != 0) {
        file_sink_free(st, k, true);
        return err;
    }
    struct craft_snapshot_info info = {.meta = k->meta, .size = k->size, .crc = k->crc};
    char name[SNAP_NAME_BYTES + 1];
    snap_name(name, info.meta.index, info.meta.term);
    char *path = path_join(st->dir, name);
    uint8_t *hdr = malloc(CRAFT_SNAPSHOT_HEADER_BYTES);
    if (path == NULL || hdr == NULL) {
        err = CRAFT_ENOMEM;
        goto free_all;
    }
    header_encode(hdr, &info);
    if ((err = fs->pwrite(fs, k->fd, hdr, CRAFT_SNAPSHOT_HEADER_BYTES, 0)) != 0 ||
        (err = fs->fdatasync(fs, k->fd)) != 0) {
        goto free_all;
    }
    (void)fs->close(fs, k->fd);
    k->fd = -1;
    if ((err = fs->rename(fs, k->tmp, path)) != 0) {
        goto free_all;
    }
    if ((err = fs->fsync_dir(fs, st->dir)) != 0) {
        /* The name may or may not survive a crash; a reopen finds a whole snapshot or none.
         * Not listing it keeps this process from serving what it did not acknowledge. */
        goto free_all;
    }
    struct mem_blob *replaced;
    err = list_insert(&st->list, &info, NULL, &replaced);
    if (err == 0) {
        file_retain(st);
    }
free_all:
    free(hdr);
    free(path);
    file_sink_free(st, k, err != 0);
    return err;
}

static void file_list(struct craft_snapshot_store *s, struct craft_snapshot_info *out,
                      size_t cap, size_t *n)
{
    list_copy(&file_of(s)->list, out, cap, n);
}

static int file_open_newest(struct craft_snapshot_store *s, struct craft_snapshot_info *info,
                            struct craft_snapshot_reader **out)
{
    struct file_store *st = file_of(s);
    while (st->list.n > 0) {
        char name[SNAP_NAME_BYTES + 1];
        snap_name(name, st->list.infos[0].meta.index, st->list.infos[0].meta.term);
        const char *why = "";
        int fd = -1;
        int err = file_check(st, name, info, &why, &fd);
        if (err == 0 && (info->size != st->list.infos[0].size ||
                         info->crc != st->list.infos[0].crc)) {
            (void)st->fs->close(st->fs, fd);
            why = "changed since it was listed";
            err = CRAFT_ECORRUPT;
        }
        if (err == CRAFT_ECORRUPT) {
            st->n_corrupt++;
            errmsg_set(st->err, "skipped snapshot %s/%s: %s", st->dir, name, why);
            list_remove(&st->list, 0);
            continue;
        }
        if (err != 0) {
            return err;
        }
        struct craft_snapshot_reader *r = calloc(1, sizeof(*r));
        if (r == NULL) {
            (void)st->fs->close(st->fs, fd);
            return CRAFT_ENOMEM;
        }
        r->fd = fd;
        r->size = info->size;
        *out = r;
        return CRAFT_OK;
    }
    return CRAFT_ENOTFOUND;
}

static int file_read(struct craft_snapshot_store *s, struct craft_snapshot_reader *r, void *buf,
                     size_t len, uint64_t off, size_t *n_read)
{
    struct file_store *st = file_of(s);
    *n_read = 0;
    if (off >= r->size || len == 0) {
        return CRAFT_OK;
    }
    if (len > r->size - off) {
        len = (size_t)(r->size - off);
    }
    return st->fs->pread(st->fs, r->fd, buf, len, CRAFT_SNAPSHOT_HEADER_BYTES + off, n_read);
}

static void file_reader_close(struct craft_snapshot_store *s, struct craft_snapshot_reader *r)
{
    (void)file_of(s)->fs->close(file_of(s)->fs, r->fd);
    free(r);
}

static const char *file_errmsg(struct craft_snapshot_store *s)
{
    return file_of(s)->err;
}

static void file_destroy(struct craft_snapshot_store *s)
{
    struct file_store *st = file_of(s);
    free(st->list.infos);
    free(st->list.blobs);
    free(st->dir);
    free(st);
}

int craft_snapshot_file_open(struct craft_fs *fs, const char *dir, uint32_t retain,
                             struct craft_snapshot_store **out)
{
    if (retain == 0) {
        return CRAFT_EINVAL;
    }
    struct file_store *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return CRAFT_ENOMEM;
    }
    st->vt = (struct craft_snapshot_store){
        .create = file_create,
        .write = file_write,
        .written = sink_written,
        .commit = file_commit,
        .abort = file_abort,
        .list = file_list,
        .open_newest = file_open_newest,
        .read = file_read,
        .reader_close = file_reader_close,
        .errmsg = file_errmsg,
        .destroy = file_destroy,
    };
    st->fs = fs;
    st->retain = retain;
    size_t len = strlen(dir);
    st->dir = malloc(len + 1);
    if (st->dir == NULL) {
        free(st);
        return CRAFT_ENOMEM;
    }
    memcpy(st->dir, dir, len + 1);
    int err = fs->mkdir(fs, dir);
    if (err == 0) {
        err = file_recover(st);
    }
    if (err != 0) {
        file_destroy(&st->vt);
        return err;
    }
    *out = &st->vt;
    return CRAFT_OK;
}

uint64_t craft_snapshot_file_n_corrupt(struct craft_snapshot_store *s)
{
    CRAFT_ASSERT(s->destroy == file_destroy);
    return file_of(s)->n_corrupt;
}

/* ---- the memory and discard stores ---- */

struct mem_store {
    struct craft_snapshot_store vt;
    uint32_t retain;
    bool keep_data; /* false: the discard store */
    struct snap_list list;
    char err[SNAP_ERRMSG_CAP];
};

static struct mem_store *mem_of(struct craft_snapshot_store *s)
{
    return (struct mem_store *)s;
}

static void blob_unref(struct mem_blob *b)
{
    if (b != NULL && --b->refs == 0) {
        free(b->data);
        free(b);
    }
}

static int mem_create(struct craft_snapshot_store *s, const struct craft_snapshot_meta *meta,
                      struct craft_snapshot_sink **out)
{
    (void)s;
    return sink_new(meta, out);
}

static int mem_write(struct craft_snapshot_store *s, struct craft_snapshot_sink *k, uint64_t off,
                     const void *buf, size_t len)
{
    struct mem_store *st = mem_of(s);
    int err = sink_chunk(k, off, &buf, &len);
    if (err != 0 || len == 0) {
        return err;
    }
    if (st->keep_data) {
        if (k->size + len > k->cap) {
            size_t cap = k->cap == 0 ? 4096 : k->cap;
            while (cap < k->size + len) {
                cap *= 2;
            }
            uint8_t *data = realloc(k->data, cap);
            if (data == NULL) {
                k->failed = true;
                return CRAFT_ENOMEM;
            }
            k->data = data;
            k->cap = cap;
        }
        memcpy(k->data + k->size, buf, len);
    }
    k->crc = crc_update(k->crc, buf, len);
    k->size += len;
    return CRAFT_OK;
}

static void mem_abort(struct craft_snapshot_store *s, struct craft_snapshot_sink *k)
{
    (void)s;
    free(k->data);
    free(k);
}

static int mem_commit(struct craft_snapshot_store *s, struct craft_snapshot_sink *k,
                      const struct craft_snapshot_meta *meta)
{
    struct mem_store *st = mem_of(s);
    int err = sink_meta(k, meta);
    struct mem_blob *blob = NULL;
    if (err == 0 && st->keep_data) {
        blob = calloc(1, sizeof(*blob));
        if (blob == NULL) {
            err = CRAFT_ENOMEM;
        } else {
            blob->refs = 1;
            blob->data = k->data;
            k->data = NULL;
        }
    }
    if (err == 0) {
        struct craft_snapshot_info info = {.meta = k->meta, .size = k->size, .crc = k->crc};
        struct mem_blob *replaced;
        err = list_insert(&st->list, &info, blob, &replaced);
        if (err != 0) {
            blob_unref(blob);
        } else {
            blob_unref(replaced);
        }
    }
    while (err == 0 && st->list.n > st->retain) {
        blob_unref(st->list.blobs[st->list.n - 1]);
        list_remove(&st->list, st->list.n - 1);
    }
    mem_abort(s, k);
    return err;
}

static void mem_list(struct craft_snapshot_store *s, struct craft_snapshot_info *out,
                     size_t cap, size_t *n)
{
    list_copy(&mem_of(s)->list, out, cap, n);
}

static int mem_open_newest(struct craft_snapshot_store *s, struct craft_snapshot_info *info,
                           struct craft_snapshot_reader **out)
{
    struct mem_store *st = mem_of(s);
    if (!st->keep_data || st->list.n == 0) {
        return CRAFT_ENOTFOUND;
    }
    struct craft_snapshot_reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return CRAFT_ENOMEM;
    }
    *info = st->list.infos[0];
    r->fd = -1;
    r->size = info->size;
    r->blob = st->list.blobs[0];
    r->blob->refs++;
    *out = r;
    return CRAFT_OK;
}

static int mem_read(struct craft_snapshot_store *s, struct craft_snapshot_reader *r, void *buf,
                    size_t len, uint64_t off, size_t *n_read)
{
    (void)s;
    *n_read = 0;
    if (off >= r->size || len == 0) {
        return CRAFT_OK;
    }
    if (len > r->size - off) {
        len = (size_t)(r->size - off);
    }
    memcpy(buf, r->blob->data + off, len);
    *n_read = len;
    return CRAFT_OK;
}

static void mem_reader_close(struct craft_snapshot_store *s, struct craft_snapshot_reader *r)
{
    (void)s;
    blob_unref(r->blob);
    free(r);
}

static const char *mem_errmsg(struct craft_snapshot_store *s)
{
    return mem_of(s)->err;
}

static void mem_destroy(struct craft_snapshot_store *s)
{
    struct mem_store *st = mem_of(s);
    for (size_t i = 0; i < st->list.n; i++) {
        blob_unref(st->list.blobs[i]);
    }
    free(st->list.infos);
    free(st->list.blobs);
    free(st);
}

static int mem_new(uint32_t retain, bool keep_data, struct craft_snapshot_store **out)
{
    if (retain == 0) {
        return CRAFT_EINVAL;
    }
    struct mem_store *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return CRAFT_ENOMEM;
    }
    st->vt = (struct craft_snapshot_store){
        .create = mem_create,
        .write = mem_write,
        .written = sink_written,
        .commit = mem_commit,
        .abort = mem_abort,
        .list = mem_list,
        .open_newest = mem_open_newest,
        .read = mem_read,
        .reader_close = mem_reader_close,
        .errmsg = mem_errmsg,
        .destroy = mem_destroy,
    };
    st->retain = retain;
    st->keep_data = keep_data;
    *out = &st->vt;
    return CRAFT_OK;
}

int craft_snapshot_mem_create(uint32_t retain, struct craft_snapshot_store **out)
{
    return mem_new(retain, true, out);
}

int craft_snapshot_discard_create(uint32_t retain, struct craft_snapshot_store **out)
{
    return mem_new(retain, false, out);
}
