/* The faulty in-memory filesystem (see fs_mem.h). Linear searches everywhere: it holds
 * the handful of files a test or a simulated node has. */
#include "storage/fs_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/prng.h"

enum { OP_WRITE = 1, OP_SETSIZE = 2 };

struct mem_op {
    int kind;
    uint64_t off; /* OP_SETSIZE: the new size */
    uint64_t len;
    uint8_t *data;
};

struct mem_image {
    uint8_t *bytes;
    uint64_t len;
    uint64_t cap;
};

struct mem_inode {
    bool used;
    struct mem_image cur, dur;
    struct mem_op *ops; /* since the last fdatasync, in issue order */
    size_t n_ops, cap_ops;
};

struct mem_name {
    char *path;
    size_t ino;
};

struct mem_names {
    struct mem_name *v;
    size_t n, cap;
};

struct craft_fs_mem {
    struct craft_fs fs; /* first: the vtable functions cast back */
    struct craft_prng prng;
    struct mem_inode *inodes;
    size_t n_inodes;
    struct mem_names cur, dur;
    char **dirs;
    size_t n_dirs;
    long *fds; /* inode number, or -1 when free */
    size_t n_fds;
    uint64_t n_ops;
    uint64_t fail_at; /* 0: no plan */
    int fail_err;
    bool fail_sticky;
};

static struct craft_fs_mem *mem_of(struct craft_fs *fs)
{
    return (struct craft_fs_mem *)fs;
}

/* Counts an operation and says whether the fault plan fails it. */
static int mem_fault(struct craft_fs_mem *m)
{
    m->n_ops++;
    if (m->fail_at != 0 && m->n_ops >= m->fail_at) {
        if (m->n_ops == m->fail_at || m->fail_sticky) {
            return m->fail_err;
        }
    }
    return CRAFT_OK;
}

static int image_reserve(struct mem_image *im, uint64_t len)
{
    if (len <= im->cap) {
        return CRAFT_OK;
    }
    uint64_t cap = im->cap ? im->cap : 64;
    while (cap < len) {
        cap *= 2;
    }
    uint8_t *b = realloc(im->bytes, cap);
    if (b == NULL) {
        return CRAFT_ENOMEM;
    }
    im->bytes = b;
    im->cap = cap;
    return CRAFT_OK;
}

static int image_setsize(struct mem_image *im, uint64_t size)
{
    int err = image_reserve(im, size);
    if (err != 0) {
        return err;
    }
    if (size > im->len) {
        memset(im->bytes + im->len, 0, size - im->len);
    }
    im->len = size;
    return CRAFT_OK;
}

static int image_write(struct mem_image *im, const uint8_t *data, uint64_t len, uint64_t off)
{
    if (off + len > im->len) {
        int err = image_setsize(im, off + len);
        if (err != 0) {
            return err;
        }
    }
    if (len > 0) {
        memcpy(im->bytes + off, data, len);
    }
    return CRAFT_OK;
}

static int image_copy(struct mem_image *dst, const struct mem_image *src)
{
    int err = image_reserve(dst, src->len);
    if (err != 0) {
        return err;
    }
    if (src->len > 0) {
        memcpy(dst->bytes, src->bytes, src->len);
    }
    dst->len = src->len;
    return CRAFT_OK;
}

static void inode_clear_ops(struct mem_inode *in)
{
    for (size_t i = 0; i < in->n_ops; i++) {
        free(in->ops[i].data);
    }
    in->n_ops = 0;
}

static void inode_free(struct mem_inode *in)
{
    inode_clear_ops(in);
    free(in->ops);
    free(in->cur.bytes);
    free(in->dur.bytes);
    memset(in, 0, sizeof(*in));
}

static int inode_log(struct mem_inode *in, int kind, uint64_t off, const void *data,
                     uint64_t len)
{
    if (in->n_ops == in->cap_ops) {
        size_t cap = in->cap_ops ? in->cap_ops * 2 : 8;
        struct mem_op *ops = realloc(in->ops, cap * sizeof(*ops));
        if (ops == NULL) {
            return CRAFT_ENOMEM;
        }
        in->ops = ops;
        in->cap_ops = cap;
    }
    struct mem_op op = {.kind = kind, .off = off, .len = len, .data = NULL};
    if (kind == OP_WRITE && len > 0) {
        op.data = malloc(len);
        if (op.data == NULL) {
            return CRAFT_ENOMEM;
        }
        memcpy(op.data, data, len);
    }
    in->ops[in->n_ops++] = op;
    return CRAFT_OK;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

/* The directory part of path: everything before the last '/', or "." (written to buf). */
static void parent_of(const char *path, char *buf, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(buf, cap, ".");
        return;
    }
    size_t n = (size_t)(slash - path);
    if (n == 0) {
        snprintf(buf, cap, "/");
        return;
    }
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(buf, path, n);
    buf[n] = '\0';
}

static bool dir_exists(const struct craft_fs_mem *m, const char *dir)
{
    if (strcmp(dir, ".") == 0) {
        return true;
    }
    for (size_t i = 0; i < m->n_dirs; i++) {
        if (strcmp(m->dirs[i], dir) == 0) {
            return true;
        }
    }
    return false;
}

static bool parent_exists(const struct craft_fs_mem *m, const char *path)
{
    char dir[4096];
    parent_of(path, dir, sizeof(dir));
    return dir_exists(m, dir);
}

static struct mem_name *names_find(struct mem_names *ns, const char *path)
{
    for (size_t i = 0; i < ns->n; i++) {
        if (strcmp(ns->v[i].path, path) == 0) {
            return &ns->v[i];
        }
    }
    return NULL;
}

static int names_add(struct mem_names *ns, const char *path, size_t ino)
{
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 16;
        struct mem_name *v = realloc(ns->v, cap * sizeof(*v));
        if (v == NULL) {
            return CRAFT_ENOMEM;
        }
        ns->v = v;
        ns->cap = cap;
    }
    char *p = dup_str(path);
    if (p == NULL) {
        return CRAFT_ENOMEM;
    }
    ns->v[ns->n++] = (struct mem_name){.path = p, .ino = ino};
    return CRAFT_OK;
}

static void names_remove(struct mem_names *ns, struct mem_name *e)
{
    free(e->path);
    *e = ns->v[--ns->n];
}

static void names_clear(struct mem_names *ns)
{
    for (size_t i = 0; i < ns->n; i++) {
        free(ns->v[i].path);
    }
    ns->n = 0;
}

static bool inode_referenced(const struct craft_fs_mem *m, size_t ino)
{
    for (size_t i = 0; i < m->cur.n; i++) {
        if (m->cur.v[i].ino == ino) {
            return true;
        }
    }
    for (size_t i = 0; i < m->dur.n; i++) {
        if (m->dur.v[i].ino == ino) {
            return true;
        }
    }
    for (size_t i = 0; i < m->n_fds; i++) {
        if (m->fds[i] == (long)ino) {
            return true;
        }
    }
    return false;
}

/* Frees the inodes nothing refers to any more. */
static void mem_gc(struct craft_fs_mem *m)
{
    for (size_t i = 0; i < m->n_inodes; i++) {
        if (m->inodes[i].used && !inode_referenced(m, i)) {
            inode_free(&m->inodes[i]);
        }
    }
}

static int inode_new(struct craft_fs_mem *m, size_t *ino)
{
    for (size_t i = 0; i < m->n_inodes; i++) {
        if (!m->inodes[i].used) {
            m->inodes[i].used = true;
            *ino = i;
            return CRAFT_OK;
        }
    }
    struct mem_inode *v = realloc(m->inodes, (m->n_inodes + 1) * sizeof(*v));
    if (v == NULL) {
        return CRAFT_ENOMEM;
    }
    m->inodes = v;
    memset(&v[m->n_inodes], 0, sizeof(*v));
    v[m->n_inodes].used = true;
    *ino = m->n_inodes++;
    return CRAFT_OK;
}

static struct mem_inode *inode_of_fd(struct craft_fs_mem *m, int fd)
{
    if (fd < 0 || (size_t)fd >= m->n_fds || m->fds[fd] < 0) {
        return NULL;
    }
    return &m->inodes[m->fds[fd]];
}

static int mem_open(struct craft_fs *fs, const char *path, int flags, int *fd)
{
    struct craft_fs_mem *m = mem_of(fs);
    int err = mem_fault(m);
    if (err != 0) {
        return err;
    }
    if (!parent_exists(m, path)) {
        return CRAFT_ENOTFOUND;
    }
    size_t slot = m->n_fds;
    for (size_t i = 0; i < m->n_fds; i++) {
        if (m->fds[i] < 0) {
            slot = i;
            break;
        }
    }
    if (slot == m->n_fds) {
        long *v = realloc(m->fds, (m->n_fds + 1) * sizeof(*v));
        if (v == NULL) {
            return CRAFT_ENOMEM;
        }
        m->fds = v;
        m->fds[m->n_fds++] = -1;
    }
    struct mem_name *e = names_find(&m->cur, path);
    size_t ino;
    if (e != NULL) {
        ino = e->ino;
    } else {
        if (!(flags & CRAFT_FS_CREATE)) {
            return CRAFT_ENOTFOUND;
        }
        err = inode_new(m, &ino);
        if (err != 0) {
            return err;
        }
        err = names_add(&m->cur, path, ino);
        if (err != 0) {
            m->inodes[ino].used = false;
            return err;
        }
    }
    m->fds[slot] = (long)ino;
    *fd = (int)slot;
    return CRAFT_OK;
}

static int mem_close(struct craft_fs *fs, int fd)
{
    struct craft_fs_mem *m = mem_of(fs);
    if (inode_of_fd(m, fd) == NULL) {
        return CRAFT_EINVAL;
    }
    m->fds[fd] = -1;
    mem_gc(m);
    return CRAFT_OK;
}

static int mem_pread(struct craft_fs *fs, int fd, void *buf, size_t len, uint64_t off,
                     size_t *n_read)
{
    struct craft_fs_mem *m = mem_of(fs);
    int err = mem_fault(m);
    if (err != 0) {
        return err;
    }
    struct mem_inode *in = inode_of_fd(m, fd);
    if (in == NULL) {
        return CRAFT_EINVAL;
    }
    size_t n = 0;
    if (off < in->cur.len) {
        uint64_t avail = in->cur.len - off;
        n = avail < len ? (size_t)avail : len;
        memcpy(buf, in->cur.bytes + off, n);
    }
    *n_read = n;
    return CRAFT_OK;
}

static int mem_pwrite(struct craft_fs *fs, int fd, const void *buf, size_t len, uint64_t off)
{
    struct craft_fs_mem *m = mem_of(fs);
    int err = mem_fault(m);
    if (err != 0) {
        return err;
    }
    struct mem_inode *in = inode_of_fd(m, fd);
    if (in == NULL) {
        return CRAFT_EINVAL;
    }
    err = inode_log(in, OP_WRITE, off, buf, len);
    if (err != 0) {
        return err;
    }
    return image_write(&in->cur, buf, len, off);
}

static int mem_setsize(struct craft_fs_mem *m, int fd, uint64_t size)
{
    struct mem_inode *in = inode_of_fd(m, fd);
    if (in == NULL) {
        return CRAFT_EINVAL;
    }
    int err = inode_log(in, OP_SETSIZE, size, NULL, 0);
    if (err != 0) {
        return err;
    }
    return image_setsize(&in->cur, size);
}

static int mem_ftruncate(struct craft_fs *fs, int fd, uint64_t size)
{
    struct craft_fs_mem *m = mem_of(fs);
    int err = mem_fault(m);
    if (err != 0) {
        return err;
    }
    return mem_setsize(m, fd, size);
}

static int mem_fallocate(struct craft_fs *fs, int fd, uint64_t off, uint64_t len)
{
    struct craft_fs_mem *m = mem_of(fs);
    int err = mem_fault(m);
    if (err != 0) {
        return err;
    }
    struct mem_inode *in = inode_of_fd(m, fd);
    if (in == NULL) {
        return CRAFT_EINVAL;
    }
    if (off + len <= in->cur.len) {
        return CRAFT_OK;
    }
    return mem_setsize(m, fd, off + len);
}

static int mem_fdatasync(struct craft_fs *fs, int fd)
{
    struct craft_fs_mem *m = mem_of(fs);
    int err = mem_fault(m);
    if (err != 0) {
        return err;
    }
    struct mem_inode *in = inode_of_fd(m, fd);
    if (in == NULL) {
        return CRAFT_EINVAL;
    }
    err = image_copy(&in->dur, &in->cur);
    if (err != 0) {
        return err;
    }
    inode_clear_ops(in);
    return CRAFT_OK;
}

static bool in_dir(const char *path, const char *dir)
{
    char p[4096];
    parent_of(path, p, sizeof(p));
    return strcmp(p, dir) == 0;
}

static int mem_fsync_dir(struct craft_fs *fs, const char *dir)
{
    struct craft_fs_mem *m = mem_of(fs);
    int err = mem_fault(m);
    if (err != 0) {
        return err;
    }
    if (!dir_exists(m, dir)) {
        return CRAFT_ENOTFOUND;
    }
    /* The durable names of dir become exactly its current names. */
    for (size_t i = 0; i < m->dur.n;) {
        if (in_dir(m->dur.v[i].path, dir)) {
            names_remove(&m->dur, &m->dur.v[i]);
        } else {
            i++;
        }
    }
    for (size_t i = 0; i < m->cur.n; i++) {
        if (in_dir(m->cur.v[i].path, dir)) {
            err = names_add(&m->dur, m->cur.v[i].path, m->cur.v[i].ino);
            if (err != 0) {
                return err;
            }
        }
    }
    mem_gc(m);
    return CRAFT_OK;
}

static int mem_rename(struct craft_fs *fs, const char *from, const char *to)
{
    struct craft_fs_mem *m = mem_of(fs);
    int err = mem_fault(m);
    if (err != 0) {
        return err;
    }
    struct mem_name *src = names_find(&m->cur, from);
    if (src == NULL || !parent_exists(m, to)) {
        return CRAFT_ENOTFOUND;
    }
    if (strcmp(from, to) == 0) {
        return CRAFT_OK;
    }
    size_t ino = src->ino;
    struct mem_name *dst = names_find(&m->cur, to);
    if (dst != NULL) {
        dst->ino = ino;
    } else {
        err = names_add(&m->cur, to, ino);
        if (err != 0) {
            return err;
        }
    }
    names_remove(&m->cur, names_find(&m->cur, from));
    mem_gc(m);
    return CRAFT_OK;
}

static int mem_unlink(struct craft_fs *fs, const char *path)
{
    struct craft_fs_mem *m = mem_of(fs);
    int err = mem_fault(m);
    if (err != 0) {
        return err;
    }
    struct mem_name *e = names_find(&m->cur, path);
    if (e == NULL) {
        return CRAFT_ENOTFOUND;
    }
    names_remove(&m->cur, e);
    mem_gc(m);
    return CRAFT_OK;
}

static int mem_list_dir(struct craft_fs *fs, const char *dir, craft_fs_list_fn fn, void *arg)
{
    struct craft_fs_mem *m = mem_of(fs);
    int err = mem_fault(m);
    if (err != 0) {
        return err;
    }
    if (!dir_exists(m, dir)) {
        return CRAFT_ENOTFOUND;
    }
    /* Sub-directories are listed too, as POSIX does. */
    for (size_t i = 0; i < m->n_dirs; i++) {
        if (in_dir(m->dirs[i], dir)) {
            const char *slash = strrchr(m->dirs[i], '/');
            err = fn(arg, slash ? slash + 1 : m->dirs[i]);
            if (err != 0) {
                return err;
            }
        }
    }
    /* fn may not change the namespace, so indexes stay valid. */
    for (size_t i = 0; i < m->cur.n; i++) {
        if (in_dir(m->cur.v[i].path, dir)) {
            const char *slash = strrchr(m->cur.v[i].path, '/');
            err = fn(arg, slash ? slash + 1 : m->cur.v[i].path);
            if (err != 0) {
                return err;
            }
        }
    }
    return CRAFT_OK;
}

static int mem_mkdir(struct craft_fs *fs, const char *path)
{
    struct craft_fs_mem *m = mem_of(fs);
    int err = mem_fault(m);
    if (err != 0) {
        return err;
    }
    if (dir_exists(m, path)) {
        return CRAFT_OK;
    }
    if (!parent_exists(m, path)) {
        return CRAFT_ENOTFOUND;
    }
    char **v = realloc(m->dirs, (m->n_dirs + 1) * sizeof(*v));
    if (v == NULL) {
        return CRAFT_ENOMEM;
    }
    m->dirs = v;
    char *p = dup_str(path);
    if (p == NULL) {
        return CRAFT_ENOMEM;
    }
    m->dirs[m->n_dirs++] = p;
    return CRAFT_OK;
}

static int mem_file_size(struct craft_fs *fs, int fd, uint64_t *size)
{
    struct craft_fs_mem *m = mem_of(fs);
    int err = mem_fault(m);
    if (err != 0) {
        return err;
    }
    struct mem_inode *in = inode_of_fd(m, fd);
    if (in == NULL) {
        return CRAFT_EINVAL;
    }
    *size = in->cur.len;
    return CRAFT_OK;
}

struct craft_fs_mem *craft_fs_mem_create(uint64_t seed)
{
    struct craft_fs_mem *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    craft_prng_seed(&m->prng, seed);
    m->fs.open = mem_open;
    m->fs.close = mem_close;
    m->fs.pread = mem_pread;
    m->fs.pwrite = mem_pwrite;
    m->fs.fdatasync = mem_fdatasync;
    m->fs.fsync_dir = mem_fsync_dir;
    m->fs.rename = mem_rename;
    m->fs.unlink = mem_unlink;
    m->fs.ftruncate = mem_ftruncate;
    m->fs.fallocate = mem_fallocate;
    m->fs.list_dir = mem_list_dir;
    m->fs.mkdir = mem_mkdir;
    m->fs.file_size = mem_file_size;
    return m;
}

void craft_fs_mem_destroy(struct craft_fs_mem *m)
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < m->n_inodes; i++) {
        if (m->inodes[i].used) {
            inode_free(&m->inodes[i]);
        }
    }
    free(m->inodes);
    names_clear(&m->cur);
    names_clear(&m->dur);
    free(m->cur.v);
    free(m->dur.v);
    for (size_t i = 0; i < m->n_dirs; i++) {
        free(m->dirs[i]);
    }
    free(m->dirs);
    free(m->fds);
    free(m);
}

struct craft_fs *craft_fs_mem_fs(struct craft_fs_mem *m)
{
    return &m->fs;
}

/* The image a crash leaves: the durable one, plus (torn) a prefix of the unsynced ops. */
static void inode_crash(struct craft_fs_mem *m, struct mem_inode *in, bool torn)
{
    if (torn && in->n_ops > 0) {
        size_t keep = (size_t)craft_prng_range(&m->prng, 0, in->n_ops + 1);
        for (size_t i = 0; i < keep; i++) {
            struct mem_op *op = &in->ops[i];
            uint64_t len = op->len;
            if (i + 1 == keep && op->kind == OP_WRITE && len > 0) {
                len = craft_prng_range(&m->prng, 0, len + 1); /* the torn write */
            }
            /* Out of memory here would lose bytes a crash may lose anyway. */
            if (op->kind == OP_WRITE) {
                (void)image_write(&in->dur, op->data, len, op->off);
            } else {
                (void)image_setsize(&in->dur, op->off);
            }
        }
    }
    inode_clear_ops(in);
    int err = image_copy(&in->cur, &in->dur);
    CRAFT_ASSERT(err == CRAFT_OK); /* out of memory while crashing: the harness aborts */
}

void craft_fs_mem_crash(struct craft_fs_mem *m, bool torn)
{
    for (size_t i = 0; i < m->n_fds; i++) {
        m->fds[i] = -1;
    }
    names_clear(&m->cur);
    for (size_t i = 0; i < m->dur.n; i++) {
        /* Out of memory while crashing cannot be reported; the test harness aborts. */
        CRAFT_ASSERT(names_add(&m->cur, m->dur.v[i].path, m->dur.v[i].ino) == CRAFT_OK);
    }
    mem_gc(m);
    for (size_t i = 0; i < m->n_inodes; i++) {
        if (m->inodes[i].used) {
            inode_crash(m, &m->inodes[i], torn);
        }
    }
}

int craft_fs_mem_flip_bit(struct craft_fs_mem *m, const char *path, uint64_t bit)
{
    struct mem_name *e = names_find(&m->cur, path);
    if (e == NULL) {
        e = names_find(&m->dur, path);
    }
    if (e == NULL) {
        return CRAFT_ENOTFOUND;
    }
    struct mem_inode *in = &m->inodes[e->ino];
    uint64_t byte = bit / 8;
    uint8_t mask = (uint8_t)(1u << (bit % 8));
    if (byte < in->cur.len) {
        in->cur.bytes[byte] ^= mask;
    }
    if (byte < in->dur.len) {
        in->dur.bytes[byte] ^= mask;
    }
    return CRAFT_OK;
}

void craft_fs_mem_fail(struct craft_fs_mem *m, uint64_t n, int err, bool sticky)
{
    m->fail_at = n == 0 ? 0 : m->n_ops + n;
    m->fail_err = err;
    m->fail_sticky = sticky;
}

uint64_t craft_fs_mem_op_count(const struct craft_fs_mem *m)
{
    return m->n_ops;
}

int craft_fs_mem_durable_size(struct craft_fs_mem *m, const char *path, uint64_t *size)
{
    struct mem_name *e = names_find(&m->dur, path);
    if (e == NULL) {
        return CRAFT_ENOTFOUND;
    }
    *size = m->inodes[e->ino].dur.len;
    return CRAFT_OK;
}
