/* The segmented write-ahead log (src/storage/wal.h), against a model log:
 *   - random workloads (append, truncate, restart, compact, reopen, read) on fs_mem and on
 *     the real disk, compared with the model after every step;
 *   - every byte cut and every bit flip in the last records of a segment: a torn or
 *     corrupt tail is cut, anything else is refused with CRAFT_ECORRUPT naming file and
 *     offset, and nothing corrupt is ever returned;
 *   - crashes (with torn writes) at random points of random workloads, and injected
 *     EIO/ENOSPACE at every operation: the recovered log is the acknowledged one, maybe
 *     plus a prefix of the write in flight; a failed WAL stays failed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/prng.h"
#include "storage/fs_mem.h"
#include "storage/wal.h"
#include "storage/wal_record.h"
#include "unit.h"




#define WDIR "w"
#define BATCH_MAX 24
#define PAYLOAD_MAX 985 /* record_bytes_max 1024 - header 32 - 7 */

/* ---- the model log ---- */

struct mentry {
    uint64_t term;
    uint64_t salt;
    uint32_t len;
    uint8_t type;
};

struct model {
    bool fresh;
    uint64_t first, last;
    struct mentry *e; /* by index */
    uint64_t cap;
};

static void model_init(struct model *md)
{
    memset(md, 0, sizeof(*md));
    md->fresh = true;
    md->first = 1;
}

static void model_free(struct model *md)
{
    free(md->e);
}

static void model_copy(struct model *dst, const struct model *src)
{
    *dst = *src;
    dst->e = malloc(src->cap * sizeof(*dst->e));
    if (src->cap) {
        memcpy(dst->e, src->e, src->cap * sizeof(*dst->e));
    }
}

static void fill(uint64_t index, uint64_t term, uint64_t salt, uint32_t len, uint8_t *out)
{
    uint64_t x = index * 0x9e3779b97f4a7c15ULL ^ term * 0xbf58476d1ce4e5b9ULL ^ salt;
    for (uint32_t j = 0; j < len; j++) {
        out[j] = (uint8_t)((x >> ((j % 8) * 8)) + j * 131);
    }
}

struct batch {
    uint64_t truncate_from;
    size_t n;
    struct craft_entry e[BATCH_MAX];
    uint64_t salt[BATCH_MAX];
    uint8_t data[BATCH_MAX * (PAYLOAD_MAX + 1)];
};

/* Applies the first k entries of b (and its truncation) to md, as the WAL defines it. */
static void model_apply(struct model *md, const struct batch *b, size_t k)
{
    uint64_t t = b->truncate_from;
    if (t != 0) {
        if (t < md->first || t > md->last + 1) {
            md->first = t;
        }
        md->last = t - 1;
    } else if (md->last + 1 == md->first && b->n > 0 && b->e[0].index != md->first) {
        /* Entries on an empty log may start anywhere: an implicit restart (whether or not
         * any of them made it). */
        md->first = b->e[0].index;
        md->last = md->first - 1;
    }
    if (t != 0 || k > 0) {
        md->fresh = false;
    }
    for (size_t i = 0; i < k; i++) {
        uint64_t idx = b->e[i].index;
        if (idx >= md->cap) {
            uint64_t cap = md->cap ? md->cap : 256;
            while (cap <= idx) {
                cap *= 2;
            }
            md->e = realloc(md->e, cap * sizeof(*md->e));
            md->cap = cap;
        }
        md->e[idx] = (struct mentry){.term = b->e[i].term, .salt = b->salt[i],
                                     .len = b->e[i].len, .type = b->e[i].type};
        md->last = idx;
    }
}

/* True iff the WAL holds exactly md (same first, last, and every entry). */
static bool wal_matches(struct craft_wal *w, const struct model *md)
{
    if (craft_wal_first_index(w) != md->first || craft_wal_last_index(w) != md->last) {
        return false;
    }
    struct craft_wal_entries out;
    if (craft_wal_read(w, md->first, md->last, &out) != CRAFT_OK) {
        return false;
    }
    bool ok = out.n == md->last + 1 - md->first;
    static uint8_t expect[PAYLOAD_MAX];
    for (size_t k = 0; ok && k < out.n; k++) {
        const struct craft_entry *e = &out.entries[k];
        const struct mentry *me = &md->e[md->first + k];
        ok = e->index == md->first + k && e->term == me->term && e->type == me->type &&
             e->len == me->len && craft_wal_term_at(w, e->index) == me->term;
        if (ok && e->len) {
            fill(e->index, e->term, me->salt, e->len, expect);
            ok = memcmp(expect, e->data, e->len) == 0;
        }
    }
    craft_wal_entries_free(&out);
    return ok;
}

/* ---- workloads ---- */

struct ctx {
    struct craft_fs_mem *m; /* NULL on the real disk */
    struct craft_fs *fs;
    struct craft_fs posix;
    char dir[512];
    struct craft_wal_config cfg;
    struct craft_wal *w;
    struct model md;
    struct craft_prng rng;
    uint64_t term;
};

enum op_kind { OP_WRITE, OP_COMPACT, OP_REOPEN, OP_READ };

struct op {
    enum op_kind kind;
    uint64_t through; /* OP_COMPACT */
    struct batch b;   /* OP_WRITE */
};

static uint64_t rnd(struct ctx *c, uint64_t lo, uint64_t hi_incl)
{
    return craft_prng_range(&c->rng, lo, hi_incl + 1);
}

#define LEN_RANDOM UINT32_MAX

/* n entries from index next; payload lengths random, or fixed_len + i * len_step. */
static void gen_entries_len(struct ctx *c, struct batch *b, uint64_t next, size_t n,
                            uint32_t fixed_len, uint32_t len_step)
{
    size_t off = 0;
    b->n = n;
    for (size_t i = 0; i < n; i++) {
        uint32_t len = (uint32_t)(craft_prng_chance(&c->rng, 50)   ? rnd(c, 0, PAYLOAD_MAX)
                                  : craft_prng_chance(&c->rng, 100) ? 0
                                                                    : rnd(c, 1, 200));
        if (fixed_len != LEN_RANDOM) {
            len = fixed_len + (uint32_t)i * len_step;
        }
        b->salt[i] = craft_prng_next(&c->rng);
        b->e[i] = (struct craft_entry){.term = c->term, .index = next + i,
                                       .type = (uint8_t)rnd(c, 1, 3), .len = len,
                                       .data = len ? b->data + off : NULL};
        fill(next + i, c->term, b->salt[i], len, b->data + off);
        off += len;
    }
}

static void gen_entries(struct ctx *c, struct batch *b, uint64_t next, size_t n)
{
    gen_entries_len(c, b, next, n, LEN_RANDOM, 0);
}

static void gen_op(struct ctx *c, struct op *op)
{
    struct model *md = &c->md;
    uint64_t r = rnd(c, 0, 99);
    memset(&op->b, 0, offsetof(struct batch, e));
    op->kind = OP_WRITE;
    size_t n = craft_prng_chance(&c->rng, 300) ? 1 : (size_t)rnd(c, 1, BATCH_MAX);
    if (md->fresh) {
        gen_entries(c, &op->b, craft_prng_chance(&c->rng, 500) ? 1 : rnd(c, 2, 1000), n);
    } else if (r < 50) {
        gen_entries(c, &op->b, md->last + 1, n);
    } else if (r < 62) { /* a conflict: drop a suffix, append from there in a new term */
        uint64_t lo = md->last > md->first + 10 ? md->last - 10 : md->first;
        op->b.truncate_from = rnd(c, lo, md->last + 1);
        c->term++;
        gen_entries(c, &op->b, op->b.truncate_from, craft_prng_chance(&c->rng, 200) ? 0 : n);
    } else if (r < 65) { /* a snapshot install beyond the log */
        op->b.truncate_from = md->last + rnd(c, 2, 50);
        gen_entries(c, &op->b, op->b.truncate_from, craft_prng_chance(&c->rng, 500) ? 0 : n);
    } else if (r < 77) {
        op->kind = OP_COMPACT;
        op->through = rnd(c, md->first > 1 ? md->first - 1 : 0, md->last + 3);
    } else if (r < 87) {
        op->kind = OP_REOPEN;
    } else {
        op->kind = OP_READ;
    }
}

static int ctx_open(struct ctx *c)
{
    char msg[512];
    int err = craft_wal_open(c->fs, c->dir, &c->cfg, &c->w, msg, sizeof(msg));
    if (err != 0) {
        c->w = NULL;
        if (err != CRAFT_EIO && err != CRAFT_ENOSPACE) {
            printf("open: %s: %s\n", craft_strerror(err), msg);
        }
    }
    return err;
}

static void ctx_init(struct ctx *c, uint64_t seed, bool posix)
{
    memset(c, 0, sizeof(*c));
    craft_prng_seed(&c->rng, seed);
    c->cfg.segment_bytes = 4096;
    c->cfg.record_bytes_max = 1024;
    c->term = 1;
    model_init(&c->md);
    if (posix) {
        craft_fs_posix_init(&c->posix);
        c->fs = &c->posix;
        const char *tmp = getenv("TMPDIR");
        snprintf(c->dir, sizeof(c->dir), "%s/craft-test-wal-XXXXXX", tmp ? tmp : "/tmp");
        CHECK(mkdtemp(c->dir) != NULL);
    } else {
        c->m = craft_fs_mem_create(seed);
        c->fs = craft_fs_mem_fs(c->m);
        snprintf(c->dir, sizeof(c->dir), WDIR);
    }
    CHECK(ctx_open(c) == CRAFT_OK);
}

static int rm_one(void *arg, const char *name)
{
    char path[1100];
    snprintf(path, sizeof(path), "%s/%s", (const char *)arg, name);
    return unlink(path) == 0 ? 0 : CRAFT_EIO;
}

static void ctx_free(struct ctx *c)
{
    craft_wal_close(c->w);
    if (c->m != NULL) {
        craft_fs_mem_destroy(c->m);
    } else {
        CHECK(c->fs->list_dir(c->fs, c->dir, rm_one, c->dir) == CRAFT_OK);
        CHECK(rmdir(c->dir) == 0);
    }
    model_free(&c->md);
}

/* Runs op on the WAL; on success the model follows. Returns the WAL's error. */
static int run_op(struct ctx *c, struct op *op)
{
    int err = CRAFT_OK;
    switch (op->kind) {
    case OP_WRITE:
        err = craft_wal_write(c->w, op->b.truncate_from, op->b.e, op->b.n);
        if (err == 0) {
            model_apply(&c->md, &op->b, op->b.n);
        }
        break;
    case OP_COMPACT: {
        uint64_t first_before = c->md.first;
        err = craft_wal_compact(c->w, op->through);
        if (err == 0) {
            uint64_t f = craft_wal_first_index(c->w);
            uint64_t hi = op->through < c->md.last ? op->through : c->md.last;
            uint64_t bound = hi + 1 > first_before ? hi + 1 : first_before;
            CHECK(f >= first_before && f <= bound);
            c->md.first = f;
        }
        break;
    }
    case OP_REOPEN:
        craft_wal_close(c->w);
        c->w = NULL;
        err = ctx_open(c);
        break;
    case OP_READ: {
        if (c->md.last < c->md.first) {
            break;
        }
        uint64_t lo = rnd(c, c->md.first, c->md.last);
        uint64_t hi = rnd(c, lo, c->md.last);
        struct craft_wal_entries out;
        err = craft_wal_read(c->w, lo, hi, &out);
        if (err == 0) {
            CHECK(out.n == hi - lo + 1);
            for (size_t k = 0; k < out.n; k++) {
                CHECK(out.entries[k].index == lo + k);
                CHECK(out.entries[k].term == c->md.e[lo + k].term);
            }
            craft_wal_entries_free(&out);
        }
        break;
    }
    }
    return err;
}

static void test_random_workloads(void)
{
    static const uint64_t seeds[] = {1, 2, 3, 42, 1000, 0xfeed, 77777, 31337};
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        cur_seed = seeds[s];
        struct ctx c;
        ctx_init(&c, cur_seed, false);
        static struct op op;
        for (int i = 0; i < 400 && !case_failed; i++) {
            gen_op(&c, &op);
            CHECK(run_op(&c, &op) == CRAFT_OK);
            CHECK(c.w != NULL && wal_matches(c.w, &c.md));
        }
        ctx_free(&c);
    }
}

static void test_random_workload_posix(void)
{
    cur_seed = 5;
    struct ctx c;
    ctx_init(&c, cur_seed, true);
    static struct op op;
    for (int i = 0; i < 80 && !case_failed; i++) {
        gen_op(&c, &op);
        CHECK(run_op(&c, &op) == CRAFT_OK);
        CHECK(c.w != NULL && wal_matches(c.w, &c.md));
    }
    ctx_free(&c);
}

/* Checks that the reopened WAL holds `before`, or `before` with op's write applied up to
 * some prefix of its entries; on success replaces c->md with the one it matched. */
static void check_recovered(struct ctx *c, const struct model *before, const struct op *op)
{
    CHECK(c->w != NULL);
    if (c->w == NULL) {
        return;
    }
    bool ok = wal_matches(c->w, before);
    struct model cand;
    if (ok) {
        model_copy(&cand, before);
    }
    if (!ok && op->kind == OP_WRITE) {
        for (size_t k = 0; !ok && k <= op->b.n; k++) {
            model_copy(&cand, before);
            model_apply(&cand, &op->b, k);
            ok = wal_matches(c->w, &cand);
            if (!ok) {
                model_free(&cand);
            }
        }
    }
    if (!ok && op->kind == OP_COMPACT) {
        /* An interrupted compaction may have dropped some of its segments. */
        model_copy(&cand, before);
        cand.first = craft_wal_first_index(c->w);
        ok = cand.first >= before->first && wal_matches(c->w, &cand);
        if (!ok) {
            model_free(&cand);
        }
    }
    CHECK(ok);
    if (!ok) {
        printf("recovered %" PRIu64 "..%" PRIu64 " before %" PRIu64 "..%" PRIu64
               " op kind %d trunc %" PRIu64 " n %zu e0 %" PRIu64 "\n",
               craft_wal_first_index(c->w), craft_wal_last_index(c->w), before->first,
               before->last, op->kind, op->b.truncate_from, op->b.n,
               op->b.n ? op->b.e[0].index : 0);
    }
    if (ok) {
        model_free(&c->md);
        c->md = cand;
    }
}

/* Runs random ops until one fails: the fault plan fails the fail_n-th fs operation made by
 * the ops (not by the checks between them). Returns that op's error (0 if none failed). */
static int run_until_error(struct ctx *c, struct op *op, struct model *before, int max_ops,
                           uint64_t fail_n, int fail_err, bool sticky)
{
    uint64_t counted = 0;
    for (int i = 0; i < max_ops; i++) {
        gen_op(c, op);
        model_free(before);
        model_copy(before, &c->md);
        uint64_t t0 = craft_fs_mem_op_count(c->m);
        craft_fs_mem_fail(c->m, fail_n - counted, fail_err, sticky);
        int err = run_op(c, op);
        counted += craft_fs_mem_op_count(c->m) - t0;
        craft_fs_mem_fail(c->m, 0, 0, false);
        if (err != 0) {
            CHECK(counted >= fail_n);
            return err;
        }
        CHECK(counted < fail_n); /* an injected error is never swallowed */
        if (!wal_matches(c->w, &c->md)) {
            printf("op %d kind %d trunc %" PRIu64 " n %zu through %" PRIu64 " model %" PRIu64
                   "..%" PRIu64 " wal %" PRIu64 "..%" PRIu64 "\n",
                   i, op->kind, op->b.truncate_from, op->b.n, op->through, c->md.first,
                   c->md.last, craft_wal_first_index(c->w), craft_wal_last_index(c->w));
            CHECK(!"the WAL differs from the model");
            return CRAFT_OK;
        }
    }
    return CRAFT_OK;
}

static void test_crash_random_points(void)
{
    int n_torn = 0, n_failed_ops = 0;
    for (uint64_t s = 1; s <= 150 && !case_failed; s++) {
        cur_seed = s;
        struct ctx c;
        ctx_init(&c, cur_seed, false);
        static struct op op;
        struct model before;
        model_init(&before);
        for (int round = 0; round < 6 && !case_failed; round++) {
            /* Fail (and keep failing) at a random operation: the process dies there. */
            int err = run_until_error(&c, &op, &before, 500, rnd(&c, 1, 300), CRAFT_EIO, true);
            craft_wal_close(c.w);
            c.w = NULL;
            craft_fs_mem_crash(c.m, craft_prng_chance(&c.rng, 700));
            CHECK(ctx_open(&c) == CRAFT_OK);
            n_torn += c.w != NULL && craft_wal_torn_bytes(c.w) > 0;
            n_failed_ops += err != 0;
            if (err == 0) {
                CHECK(c.w != NULL && wal_matches(c.w, &c.md)); /* all of it was durable */
            } else {
                check_recovered(&c, &before, &op);
            }
        }
        model_free(&before);
        ctx_free(&c);
    }
    /* The crashes did hit writes in flight and did leave torn tails. */
    CHECK(n_failed_ops > 500 && n_torn > 20);
    printf("crash_random_points: %d crashes in an operation, %d torn tails cut\n",
           n_failed_ops, n_torn);
}

static void test_fault_injection(void)
{
    static const int errs[] = {CRAFT_EIO, CRAFT_ENOSPACE};
    for (uint64_t n = 1; n <= 400 && !case_failed; n++) {
        for (size_t e = 0; e < 2; e++) {
            cur_seed = n * 10 + e;
            struct ctx c;
            ctx_init(&c, 99 + n % 7, false); /* a few workloads, failed at every point */
            static struct op op;
            struct model before;
            model_init(&before);
            int err = run_until_error(&c, &op, &before, 300, n, errs[e], false);
            CHECK(err == 0 || err == errs[e]);
            if (err != 0 && c.w != NULL) {
                /* The WAL is failed: nothing works any more, and it says why. */
                CHECK(craft_wal_errmsg(c.w)[0] != '\0');
                CHECK(craft_wal_append(c.w, op.b.e, op.b.n ? 1 : 0) == CRAFT_ESHUTDOWN);
                CHECK(craft_wal_truncate(c.w, c.md.last + 1) == CRAFT_ESHUTDOWN);
                CHECK(craft_wal_compact(c.w, c.md.last) == CRAFT_ESHUTDOWN);
                struct craft_wal_entries out;
                CHECK(craft_wal_read(c.w, c.md.first, c.md.last, &out) == CRAFT_ESHUTDOWN);
            }
            craft_wal_close(c.w);
            c.w = NULL;
            if (n % 2 == 0) {
                craft_fs_mem_crash(c.m, true);
            }
            CHECK(ctx_open(&c) == CRAFT_OK);
            if (err != 0) {
                check_recovered(&c, &before, &op);
            } else {
                CHECK(c.w != NULL && wal_matches(c.w, &c.md));
            }
            model_free(&before);
            ctx_free(&c);
        }
    }
}

/* ---- byte cuts and bit flips in the last records ---- */

#define SEG0 WDIR "/0000000000000001-0000000000000001.wal"

struct image {
    uint8_t *bytes;
    uint64_t size;
    uint64_t rec_off[64]; /* offsets of the records of the first segment */
    uint64_t rec_end[64];
    uint64_t rec_data_end[64]; /* without the zero padding */
    size_t n_recs;
    struct model md;
};

/* Builds a one-segment log of 12 entries (three batches) and captures its bytes. */
static void build_image(struct image *im, uint64_t seg_bytes)
{
    struct ctx c;
    ctx_init(&c, 7, false);
    c.cfg.segment_bytes = seg_bytes;
    craft_wal_close(c.w);
    CHECK(ctx_open(&c) == CRAFT_OK);
    static struct op op;
    memset(&op, 0, sizeof(op));
    uint64_t next = 1;
    uint64_t off = CRAFT_WAL_SEGMENT_HEADER_BYTES;
    im->n_recs = 0;
    for (int b = 0; b < 3; b++) {
        gen_entries_len(&c, &op.b, next, 4, (uint32_t)b, 13); /* small: one segment */
        CHECK(craft_wal_append(c.w, op.b.e, 4) == CRAFT_OK);
        model_apply(&c.md, &op.b, 4);
        for (size_t i = 0; i < 4; i++) {
            im->rec_off[im->n_recs] = off;
            im->rec_data_end[im->n_recs] = off + CRAFT_WAL_RECORD_HEADER_BYTES + op.b.e[i].len;
            off += craft_wal_rec_size(op.b.e[i].len);
            im->rec_end[im->n_recs++] = off;
        }
        next += 4;
    }
    int fd;
    CHECK(c.fs->open(c.fs, SEG0, 0, &fd) == CRAFT_OK);
    CHECK(c.fs->file_size(c.fs, fd, &im->size) == CRAFT_OK);
    im->bytes = malloc(im->size);
    size_t got;
    CHECK(c.fs->pread(c.fs, fd, im->bytes, im->size, 0, &got) == CRAFT_OK && got == im->size);
    CHECK(c.fs->close(c.fs, fd) == CRAFT_OK);
    model_copy(&im->md, &c.md);
    ctx_free(&c);
}

/* Opens a WAL over a fresh fs holding bytes as its only segment. */
static int open_image(const uint8_t *bytes, uint64_t size, struct craft_fs_mem **m,
                      struct craft_wal **w, char *msg, size_t cap)
{
    *m = craft_fs_mem_create(1);
    struct craft_fs *fs = craft_fs_mem_fs(*m);
    int fd;
    CHECK(fs->mkdir(fs, WDIR) == CRAFT_OK);
    CHECK(fs->open(fs, SEG0, CRAFT_FS_CREATE, &fd) == CRAFT_OK);
    CHECK(fs->pwrite(fs, fd, bytes, size, 0) == CRAFT_OK);
    CHECK(fs->fdatasync(fs, fd) == CRAFT_OK);
    CHECK(fs->close(fs, fd) == CRAFT_OK);
    CHECK(fs->fsync_dir(fs, WDIR) == CRAFT_OK);
    struct craft_wal_config cfg = {.segment_bytes = 4096, .record_bytes_max = 1024};
    return craft_wal_open(fs, WDIR, &cfg, w, msg, cap);
}

static void test_cut_every_byte(void)
{
    struct image im;
    build_image(&im, 4096);
    size_t last3 = im.n_recs - 3;
    uint8_t *buf = malloc(im.size);
    for (uint64_t cut = im.rec_off[last3]; cut <= im.rec_end[im.n_recs - 1]; cut++) {
        cur_seed = cut;
        memcpy(buf, im.bytes, im.size);
        memset(buf + cut, 0, im.size - cut); /* the bytes after the cut never made it */
        struct craft_fs_mem *m;
        struct craft_wal *w = NULL;
        char msg[512];
        int oerr = open_image(buf, im.size, &m, &w, msg, sizeof(msg));
        CHECK(oerr == CRAFT_OK);
        if (oerr != CRAFT_OK) {
            printf("cut %" PRIu64 ": %s\n", cut, msg);
        }
        /* Every record wholly before the cut survives, and nothing else (its zero padding
         * may be cut: zeros are zeros). */
        size_t whole = 0;
        while (whole < im.n_recs && im.rec_data_end[whole] <= cut) {
            whole++;
        }
        struct model md;
        model_copy(&md, &im.md);
        md.last = whole;
        CHECK(w != NULL && wal_matches(w, &md));
        if (w != NULL) {
            bool torn = whole < im.n_recs && cut > im.rec_off[whole];
            CHECK((craft_wal_torn_bytes(w) > 0) == torn);
            /* The log goes on from the cut, and survives a reopen. */
            struct batch *b = calloc(1, sizeof(*b));
            b->n = 1;
            b->e[0] = (struct craft_entry){.term = 9, .index = whole + 1, .type = 1};
            CHECK(craft_wal_append(w, b->e, 1) == CRAFT_OK);
            model_apply(&md, b, 1);
            craft_wal_close(w);
            w = NULL;
            craft_fs_mem_crash(m, false);
            struct craft_wal_config cfg = {.segment_bytes = 4096, .record_bytes_max = 1024};
            CHECK(craft_wal_open(craft_fs_mem_fs(m), WDIR, &cfg, &w, msg, sizeof(msg)) ==
                  CRAFT_OK);
            CHECK(w != NULL && wal_matches(w, &md) && craft_wal_torn_bytes(w) == 0);
            free(b);
        }
        craft_wal_close(w);
        model_free(&md);
        craft_fs_mem_destroy(m);
    }
    free(buf);
    free(im.bytes);
    model_free(&im.md);
}

static void test_flip_every_bit(void)
{
    struct image im;
    build_image(&im, 4096);
    size_t last3 = im.n_recs - 3;
    uint8_t *buf = malloc(im.size);
    /* The segment header, then the last three records. */
    uint64_t ranges[2][2] = {{0, CRAFT_WAL_SEGMENT_HEADER_BYTES},
                             {im.rec_off[last3], im.rec_end[im.n_recs - 1]}};
    for (int r = 0; r < 2; r++) {
        for (uint64_t bit = ranges[r][0] * 8; bit < ranges[r][1] * 8; bit++) {
            cur_seed = bit;
            memcpy(buf, im.bytes, im.size);
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            struct craft_fs_mem *m;
            struct craft_wal *w = NULL;
            char msg[512];
            int err = open_image(buf, im.size, &m, &w, msg, sizeof(msg));
            size_t rec = 0;
            while (rec < im.n_recs && im.rec_end[rec] <= bit / 8) {
                rec++;
            }
            char want[128];
            if (r == 0) {
                CHECK(err == CRAFT_ECORRUPT);
                CHECK(strstr(msg, SEG0) != NULL && strstr(msg, "offset 0") != NULL);
            } else if (rec + 1 < im.n_recs) {
                /* A bad record with valid ones after it: refused, naming where. */
                snprintf(want, sizeof(want), "offset %" PRIu64, im.rec_off[rec]);
                CHECK(err == CRAFT_ECORRUPT);
                CHECK(strstr(msg, SEG0) != NULL && strstr(msg, want) != NULL);
            } else {
                /* The last record: a corrupt tail, cut. */
                CHECK(err == CRAFT_OK);
                struct model md;
                model_copy(&md, &im.md);
                md.last = im.n_recs - 1;
                CHECK(w != NULL && wal_matches(w, &md));
                model_free(&md);
            }
            craft_wal_close(w);
            craft_fs_mem_destroy(m);
        }
    }
    free(buf);
    free(im.bytes);
    model_free(&im.md);
}

/* A flipped bit in the last record of a segment that is not the last one is corruption. */
static void test_flip_in_full_segment(void)
{
    struct ctx c;
    ctx_init(&c, 11, false);
    static struct op op;
    uint64_t next = 1;
    char seg1[128];
    /* Fill past the first segment. */
    while (true) {
        memset(&op.b, 0, offsetof(struct batch, e));
        gen_entries(&c, &op.b, next, 4);
        CHECK(craft_wal_append(c.w, op.b.e, 4) == CRAFT_OK);
        model_apply(&c.md, &op.b, 4);
        next += 4;
        int fd;
        snprintf(seg1, sizeof(seg1), WDIR "/0000000000000002-%016" PRIx64 ".wal", (uint64_t)0);
        bool has_seg2 = false;
        for (uint64_t f = 1; f < next && !has_seg2; f++) {
            snprintf(seg1, sizeof(seg1), WDIR "/0000000000000002-%016" PRIx64 ".wal", f);
            if (c.fs->open(c.fs, seg1, 0, &fd) == CRAFT_OK) {
                has_seg2 = true;
                c.fs->close(c.fs, fd);
            }
        }
        if (has_seg2) {
            break;
        }
    }
    /* Find the last record of segment 1 by scanning it. */
    int fd;
    CHECK(c.fs->open(c.fs, SEG0, 0, &fd) == CRAFT_OK);
    uint8_t *buf = malloc(4096);
    size_t got;
    CHECK(c.fs->pread(c.fs, fd, buf, 4096, 0, &got) == CRAFT_OK && got == 4096);
    c.fs->close(c.fs, fd);
    uint64_t off = CRAFT_WAL_SEGMENT_HEADER_BYTES, last_off = 0;
    struct craft_wal_rec r;
    while (off < 4096 && craft_wal_rec_decode(buf + off, 4096 - off, &r)) {
        last_off = off;
        off += r.total;
    }
    free(buf);
    CHECK(last_off > 0);
    craft_wal_close(c.w);
    c.w = NULL;
    CHECK(craft_fs_mem_flip_bit(c.m, SEG0, (last_off + 20) * 8) == CRAFT_OK);
    char msg[512], want[64];
    CHECK(craft_wal_open(c.fs, WDIR, &c.cfg, &c.w, msg, sizeof(msg)) == CRAFT_ECORRUPT);
    snprintf(want, sizeof(want), "offset %" PRIu64, last_off);
    CHECK(strstr(msg, SEG0) != NULL && strstr(msg, want) != NULL);
    c.w = NULL;
    /* Flip it back, and remove the second segment: a gap is refused too. */
    CHECK(craft_fs_mem_flip_bit(c.m, SEG0, (last_off + 20) * 8) == CRAFT_OK);
    CHECK(ctx_open(&c) == CRAFT_OK);
    CHECK(c.w != NULL && wal_matches(c.w, &c.md));
    ctx_free(&c);
}

static void test_missing_or_renamed_segment(void)
{
    struct ctx c;
    ctx_init(&c, 12, false);
    static struct op op;
    uint64_t next = 1;
    for (int i = 0; i < 40; i++) {
        memset(&op.b, 0, offsetof(struct batch, e));
        gen_entries(&c, &op.b, next, 8);
        CHECK(craft_wal_append(c.w, op.b.e, 8) == CRAFT_OK);
        next += 8;
    }
    craft_wal_close(c.w);
    c.w = NULL;
    /* Collect the segment names. */
    struct names {
        char v[64][128];
        int n;
    } *ns = calloc(1, sizeof(*ns));
    struct craft_fs *fs = c.fs;
    int fd;
    for (uint64_t seq = 1; seq < 64; seq++) {
        for (uint64_t f = 1; f < next; f++) {
            char p[128];
            snprintf(p, sizeof(p), WDIR "/%016" PRIx64 "-%016" PRIx64 ".wal", seq, f);
            if (fs->open(fs, p, 0, &fd) == CRAFT_OK) {
                fs->close(fs, fd);
                snprintf(ns->v[ns->n++], 128, "%s", p);
                break;
            }
        }
    }
    CHECK(ns->n >= 4);
    char msg[512];
    /* A leftover temporary segment is removed. */
    CHECK(fs->open(fs, WDIR "/00000000000000ff-0000000000000001.wal.tmp", CRAFT_FS_CREATE,
                   &fd) == CRAFT_OK);
    fs->close(fs, fd);
    CHECK(craft_wal_open(fs, WDIR, &c.cfg, &c.w, msg, sizeof(msg)) == CRAFT_OK);
    craft_wal_close(c.w);
    c.w = NULL;
    CHECK(fs->open(fs, WDIR "/00000000000000ff-0000000000000001.wal.tmp", 0, &fd) ==
          CRAFT_ENOTFOUND);
    /* A segment renamed to start elsewhere: its header disagrees. */
    char moved[128];
    snprintf(moved, sizeof(moved), "%.*s%016" PRIx64 ".wal", (int)(strlen(WDIR) + 18),
             ns->v[2], (uint64_t)12345);
    CHECK(fs->rename(fs, ns->v[2], moved) == CRAFT_OK);
    CHECK(craft_wal_open(fs, WDIR, &c.cfg, &c.w, msg, sizeof(msg)) == CRAFT_ECORRUPT);
    CHECK(strstr(msg, moved) != NULL && strstr(msg, "offset 0") != NULL);
    CHECK(fs->rename(fs, moved, ns->v[2]) == CRAFT_OK);
    /* A middle segment missing. */
    CHECK(fs->unlink(fs, ns->v[1]) == CRAFT_OK);
    CHECK(craft_wal_open(fs, WDIR, &c.cfg, &c.w, msg, sizeof(msg)) == CRAFT_ECORRUPT);
    CHECK(strstr(msg, ns->v[2]) != NULL && strstr(msg, "missing") != NULL);
    c.w = NULL;
    free(ns);
    ctx_free(&c);
}

static void test_invalid_writes(void)
{
    struct ctx c;
    ctx_init(&c, 13, false);
    static struct op op;
    memset(&op.b, 0, offsetof(struct batch, e));
    gen_entries(&c, &op.b, 5, 3);
    CHECK(craft_wal_append(c.w, op.b.e, 3) == CRAFT_OK); /* a new log starts anywhere */
    model_apply(&c.md, &op.b, 3);
    CHECK(craft_wal_append(c.w, op.b.e, 3) == CRAFT_EINVAL); /* not at last + 1 */
    gen_entries(&c, &op.b, 8, 3);
    op.b.e[1].index = 100;
    CHECK(craft_wal_append(c.w, op.b.e, 3) == CRAFT_EINVAL); /* not contiguous */
    gen_entries(&c, &op.b, 8, 1);
    op.b.e[0].type = 0;
    CHECK(craft_wal_append(c.w, op.b.e, 1) == CRAFT_EINVAL);
    gen_entries_len(&c, &op.b, 8, 1, PAYLOAD_MAX + 1, 0);
    CHECK(craft_wal_append(c.w, op.b.e, 1) == CRAFT_ETOOBIG);
    CHECK(craft_wal_truncate(c.w, 0) == CRAFT_EINVAL);
    CHECK(wal_matches(c.w, &c.md)); /* unchanged and still usable */
    gen_entries_len(&c, &op.b, 8, 1, PAYLOAD_MAX, 0);
    CHECK(craft_wal_append(c.w, op.b.e, 1) == CRAFT_OK);
    model_apply(&c.md, &op.b, 1);
    struct craft_wal_entries out;
    CHECK(craft_wal_read(c.w, 4, 8, &out) == CRAFT_EINVAL);
    CHECK(craft_wal_read(c.w, 6, 9, &out) == CRAFT_EINVAL);
    CHECK(craft_wal_read(c.w, 7, 6, &out) == CRAFT_OK && out.n == 0);
    CHECK(wal_matches(c.w, &c.md));
    struct craft_wal_config bad = {.segment_bytes = 1000, .record_bytes_max = 1024};
    struct craft_wal *w2;
    CHECK(craft_wal_open(c.fs, WDIR, &bad, &w2, NULL, 0) == CRAFT_EINVAL);
    ctx_free(&c);
}

int main(void)
{
    run_case("random_workloads", test_random_workloads);
    run_case("random_workload_posix", test_random_workload_posix);
    run_case("invalid_writes", test_invalid_writes);
    run_case("cut_every_byte", test_cut_every_byte);
    run_case("flip_every_bit", test_flip_every_bit);
    run_case("flip_in_full_segment", test_flip_in_full_segment);
    run_case("missing_or_renamed_segment", test_missing_or_renamed_segment);
    run_case("crash_random_points", test_crash_random_points);
    run_case("fault_injection", test_fault_injection);
    return unit_finish();
}
