/* The snapshot stores (src/storage/snapshot_store.h): round trips on the file (fs_mem and
 * POSIX), memory and discard stores; retention; a fault and a crash at every filesystem
 * operation of a commit (the old newest or the new snapshot survives, never a partial one);
 * every bit flip of a header and flips in the data are detected and skipped; chunked
 * receive; reads at offsets; leftover temporary files. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/prng.h"
#include "storage/fs_mem.h"
#include "storage/snapshot_store.h"
#include "unit.h"




#define SDIR "snaps"

static struct craft_snapshot_meta mk_meta(uint64_t index, uint64_t term)
{
    struct craft_snapshot_meta m;
    memset(&m, 0, sizeof(m));
    m.index = index;
    m.term = term;
    m.conf.n_voters = 3;
    m.conf.voters[0] = 1;
    m.conf.voters[1] = 2;
    m.conf.voters[2] = 3 + index % 5; /* configurations differ between snapshots */
    m.conf.n_learners = 1;
    m.conf.learners[0] = 100;
    return m;
}

static bool meta_eq(const struct craft_snapshot_meta *a, const struct craft_snapshot_meta *b)
{
    return a->index == b->index && a->term == b->term &&
           a->conf.n_voters == b->conf.n_voters && a->conf.n_learners == b->conf.n_learners &&
           a->conf.n_voters_outgoing == b->conf.n_voters_outgoing &&
           memcmp(a->conf.voters, b->conf.voters, sizeof(a->conf.voters)) == 0 &&
           memcmp(a->conf.learners, b->conf.learners, sizeof(a->conf.learners)) == 0;
}

/* The data of the snapshot at index: deterministic, so any check can recompute it. */
static size_t data_size(uint64_t index)
{
    return (size_t)(index * 997 % 5000);
}

static void data_fill(uint8_t *buf, size_t n, uint64_t index)
{
    struct craft_prng p;
    craft_prng_seed(&p, index * 31 + 7);
    for (size_t i = 0; i < n; i++) {
        buf[i] = (uint8_t)craft_prng_next(&p);
    }
}

/* Writes the snapshot at index in chunks of chunk bytes and commits it. */
static int put_snap(struct craft_snapshot_store *s, uint64_t index, uint64_t term, size_t chunk)
{
    size_t n = data_size(index);
    uint8_t *buf = malloc(n + 1);
    data_fill(buf, n, index);
    struct craft_snapshot_meta m = mk_meta(index, term);
    struct craft_snapshot_sink *k;
    int err = s->create(s, &m, &k);
    if (err != 0) {
        free(buf);
        return err;
    }
    for (size_t off = 0; off < n && err == 0; off += chunk) {
        size_t len = n - off < chunk ? n - off : chunk;
        err = s->write(s, k, s->written(s, k), buf + off, len);
    }
    free(buf);
    if (err != 0) {
        s->abort(s, k);
        return err;
    }
    return s->commit(s, k, NULL);
}

/* Opens the newest snapshot and checks it is `index` with the right meta and data;
 * index 0: expects none. */
static void expect_newest(struct craft_snapshot_store *s, uint64_t index, uint64_t term)
{
    struct craft_snapshot_info info;
    struct craft_snapshot_reader *r = NULL;
    int err = s->open_newest(s, &info, &r);
    if (index == 0) {
        CHECK(err == CRAFT_ENOTFOUND);
        return;
    }
    CHECK(err == CRAFT_OK);
    if (err != 0) {
        return;
    }
    struct craft_snapshot_meta m = mk_meta(index, term);
    CHECK(meta_eq(&info.meta, &m));
    CHECK(info.size == data_size(index));
    uint8_t *got = NULL;
    CHECK(craft_snapshot_read_all(s, r, &info, &got) == CRAFT_OK);
    size_t n = data_size(index);
    uint8_t *want = malloc(n + 1);
    data_fill(want, n, index);
    CHECK(n == 0 || (got != NULL && memcmp(got, want, n) == 0));
    free(want);
    free(got);
    s->reader_close(s, r);
}

/* The stores behind the vtable: 0 file over fs_mem, 1 memory, 2 discard. */
static void roundtrip_kind(int kind)
{
    struct craft_fs_mem *m = craft_fs_mem_create(1);
    struct craft_snapshot_store *s = NULL;
    int err = kind == 0   ? craft_snapshot_file_open(craft_fs_mem_fs(m), SDIR, 3, &s)
              : kind == 1 ? craft_snapshot_mem_create(3, &s)
                          : craft_snapshot_discard_create(3, &s);
    CHECK(err == CRAFT_OK);
    expect_newest(s, 0, 0);
    size_t n = 99;
    struct craft_snapshot_info infos[4];
    s->list(s, infos, 4, &n);
    CHECK(n == 0);
    CHECK(put_snap(s, 10, 2, 100) == CRAFT_OK);
    CHECK(put_snap(s, 25, 3, 7) == CRAFT_OK);
    CHECK(put_snap(s, 5, 1, 4096) == CRAFT_OK); /* older: listed last */
    s->list(s, infos, 4, &n);
    CHECK(n == 3 && infos[0].meta.index == 25 && infos[1].meta.index == 10 &&
          infos[2].meta.index == 5);
    CHECK(infos[0].size == data_size(25));
    if (kind == 2) {
        expect_newest(s, 0, 0); /* metadata only */
    } else {
        expect_newest(s, 25, 3);
    }
    /* An invalid conf is refused at create and at commit; a sink without meta too. */
    struct craft_snapshot_meta bad = mk_meta(30, 3);
    bad.conf.voters[1] = bad.conf.voters[0];
    struct craft_snapshot_sink *k;
    CHECK(s->create(s, &bad, &k) == CRAFT_EINVAL);
    CHECK(s->create(s, NULL, &k) == CRAFT_OK);
    CHECK(s->commit(s, k, NULL) == CRAFT_EINVAL);
    CHECK(s->create(s, NULL, &k) == CRAFT_OK);
    CHECK(s->commit(s, k, &bad) == CRAFT_EINVAL);
    /* An aborted sink leaves nothing behind. */
    struct craft_snapshot_meta m30 = mk_meta(30, 3);
    CHECK(s->create(s, &m30, &k) == CRAFT_OK);
    CHECK(s->write(s, k, 0, "abc", 3) == CRAFT_OK);
    s->abort(s, k);
    s->list(s, infos, 4, &n);
    CHECK(n == 3 && infos[0].meta.index == 25);
    /* An empty snapshot is a snapshot. */
    CHECK(s->create(s, &m30, &k) == CRAFT_OK);
    CHECK(s->commit(s, k, NULL) == CRAFT_OK);
    s->list(s, infos, 4, &n);
    CHECK(n == 3 && infos[0].meta.index == 30 && infos[0].size == 0);
    if (kind != 2) {
        struct craft_snapshot_info info;
        struct craft_snapshot_reader *r;
        CHECK(s->open_newest(s, &info, &r) == CRAFT_OK);
        uint8_t *got = (uint8_t *)1;
        CHECK(craft_snapshot_read_all(s, r, &info, &got) == CRAFT_OK && got == NULL);
        s->reader_close(s, r);
    }
    CHECK(strcmp(s->errmsg(s), "") == 0);
    s->destroy(s);
    if (kind == 0) {
        /* Reopen: the same list, the same newest. */
        CHECK(craft_snapshot_file_open(craft_fs_mem_fs(m), SDIR, 3, &s) == CRAFT_OK);
        s->list(s, infos, 4, &n);
        CHECK(n == 3 && infos[0].meta.index == 30 && infos[1].meta.index == 25 &&
              infos[2].meta.index == 10);
        CHECK(craft_snapshot_file_n_corrupt(s) == 0);
        s->destroy(s);
        CHECK(craft_snapshot_file_open(craft_fs_mem_fs(m), SDIR, 0, &s) == CRAFT_EINVAL);
    }
    craft_fs_mem_destroy(m);
}

static void test_roundtrip_file(void)
{
    roundtrip_kind(0);
}

static void test_roundtrip_mem(void)
{
    roundtrip_kind(1);
}

static void test_roundtrip_discard(void)
{
    roundtrip_kind(2);
}

static int rm_one(void *arg, const char *name)
{
    char path[1100];
    snprintf(path, sizeof(path), "%s/%s", (const char *)arg, name);
    return unlink(path) == 0 ? 0 : CRAFT_EIO;
}

static void test_roundtrip_posix(void)
{
    struct craft_fs fs;
    craft_fs_posix_init(&fs);
    char dir[1024];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/craft-test-snap-XXXXXX", tmp ? tmp : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
    struct craft_snapshot_store *s;
    CHECK(craft_snapshot_file_open(&fs, dir, 2, &s) == CRAFT_OK);
    CHECK(put_snap(s, 11, 1, 1000) == CRAFT_OK);
    CHECK(put_snap(s, 22, 2, 1000) == CRAFT_OK);
    CHECK(put_snap(s, 33, 2, 333) == CRAFT_OK);
    s->destroy(s);
    CHECK(craft_snapshot_file_open(&fs, dir, 2, &s) == CRAFT_OK);
    struct craft_snapshot_info infos[4];
    size_t n = 0;
    s->list(s, infos, 4, &n);
    CHECK(n == 2 && infos[0].meta.index == 33 && infos[1].meta.index == 22);
    expect_newest(s, 33, 2);
    s->destroy(s);
    CHECK(fs.list_dir(&fs, dir, rm_one, dir) == CRAFT_OK);
    CHECK(rmdir(dir) == 0);
}

struct count_arg {
    int n_snap, n_tmp;
};

static int count_name(void *arg, const char *name)
{
    struct count_arg *c = arg;
    size_t len = strlen(name);
    if (len > 4 && strcmp(name + len - 4, ".tmp") == 0) {
        c->n_tmp++;
    } else if (len > 5 && strcmp(name + len - 5, ".snap") == 0) {
        c->n_snap++;
    }
    return 0;
}

static struct count_arg count_files(struct craft_fs *fs)
{
    struct count_arg c = {0, 0};
    CHECK(fs->list_dir(fs, SDIR, count_name, &c) == CRAFT_OK);
    return c;
}

static void test_retention(void)
{
    for (uint32_t retain = 1; retain <= 3; retain++) {
        struct craft_fs_mem *m = craft_fs_mem_create(retain);
        struct craft_fs *fs = craft_fs_mem_fs(m);
        struct craft_snapshot_store *s, *ms;
        CHECK(craft_snapshot_file_open(fs, SDIR, retain, &s) == CRAFT_OK);
        CHECK(craft_snapshot_mem_create(retain, &ms) == CRAFT_OK);
        for (uint64_t i = 1; i <= 6; i++) {
            CHECK(put_snap(s, i * 10, i, 512) == CRAFT_OK);
            CHECK(put_snap(ms, i * 10, i, 512) == CRAFT_OK);
            struct craft_snapshot_info infos[8], minfos[8];
            size_t n = 0, mn = 0;
            s->list(s, infos, 8, &n);
            ms->list(ms, minfos, 8, &mn);
            size_t want = i < retain ? i : retain;
            CHECK(n == want && mn == want);
            for (size_t j = 0; j < n && j < mn; j++) {
                CHECK(infos[j].meta.index == (i - j) * 10);
                CHECK(minfos[j].meta.index == (i - j) * 10 && minfos[j].crc == infos[j].crc);
            }
            struct count_arg c = count_files(fs);
            CHECK(c.n_snap == (int)want && c.n_tmp == 0);
        }
        /* Deletions are durable: a crash brings none back. */
        s->destroy(s);
        craft_fs_mem_crash(m, true);
        CHECK(craft_snapshot_file_open(fs, SDIR, retain, &s) == CRAFT_OK);
        struct count_arg c = count_files(fs);
        CHECK(c.n_snap == (int)retain);
        expect_newest(s, 60, 6);
        expect_newest(ms, 60, 6);
        /* The memory store's reader outlives retention dropping its snapshot. */
        struct craft_snapshot_info info;
        struct craft_snapshot_reader *r;
        CHECK(ms->open_newest(ms, &info, &r) == CRAFT_OK);
        for (uint64_t i = 7; i <= 9; i++) {
            CHECK(put_snap(ms, i * 10, i, 512) == CRAFT_OK);
        }
        uint8_t *got = NULL;
        CHECK(craft_snapshot_read_all(ms, r, &info, &got) == CRAFT_OK && info.meta.index == 60);
        free(got);
        ms->reader_close(ms, r);
        s->destroy(s);
        ms->destroy(ms);
        craft_fs_mem_destroy(m);
    }
}

static int n_found_old, n_found_new_unacked, n_acked_with_fault;

/* One commit of snapshot 20 over a store holding 10 (retain 1, so retention deletes 10),
 * with operation n failing (sticky) and then a crash; or, n = 0, no fault. Returns the
 * number of fs operations the attempt used, and checks recovery. */
static uint64_t crash_one(uint64_t n, bool torn, bool sticky, uint64_t seed)
{
    cur_seed = seed;
    struct craft_fs_mem *m = craft_fs_mem_create(seed);
    struct craft_fs *fs = craft_fs_mem_fs(m);
    struct craft_snapshot_store *s;
    CHECK(craft_snapshot_file_open(fs, SDIR, 1, &s) == CRAFT_OK);
    CHECK(put_snap(s, 10, 1, 300) == CRAFT_OK);
    s->destroy(s);
    CHECK(craft_snapshot_file_open(fs, SDIR, 1, &s) == CRAFT_OK);
    uint64_t start = craft_fs_mem_op_count(m);
    if (n > 0) {
        craft_fs_mem_fail(m, n, CRAFT_EIO, sticky);
    }
    int err = put_snap(s, 20, 2, 300);
    uint64_t used = craft_fs_mem_op_count(m) - start;
    if (n == 0) {
        CHECK(err == CRAFT_OK);
    }
    craft_fs_mem_fail(m, 0, 0, false); /* a sticky fault would fail the reads below */
    if (err == 0 && n > 0 && n <= used) {
        n_acked_with_fault++; /* the fault hit retention, after the commit point */
    }
    if (err == 0) {
        /* Acknowledged: it is the newest now, whatever happened to the deletion. */
        expect_newest(s, 20, 2);
    }
    s->destroy(s);
    craft_fs_mem_crash(m, torn);
    CHECK(craft_snapshot_file_open(fs, SDIR, 1, &s) == CRAFT_OK);
    CHECK(craft_snapshot_file_n_corrupt(s) == 0);
    struct count_arg c = count_files(fs);
    CHECK(c.n_tmp == 0);
    struct craft_snapshot_info infos[4];
    size_t k = 0;
    s->list(s, infos, 4, &k);
    CHECK(k >= 1 && k <= 2);
    if (err == 0) {
        expect_newest(s, 20, 2);
    } else if (k >= 1 && infos[0].meta.index == 20) {
        expect_newest(s, 20, 2); /* not acknowledged, but whole: allowed */
        n_found_new_unacked++;
    } else {
        expect_newest(s, 10, 1);
        n_found_old++;
    }
    /* The store works after recovery. */
    CHECK(put_snap(s, 30, 3, 1000) == CRAFT_OK);
    expect_newest(s, 30, 3);
    s->destroy(s);
    craft_fs_mem_destroy(m);
    return used;
}

static void test_crash_every_op(void)
{
    uint64_t total = crash_one(0, false, false, 1);
    CHECK(total >= 8); /* open, writes, header, sync, rename, fsync_dir, unlink, fsync_dir */
    for (uint64_t seed = 1; seed <= 4; seed++) {
        for (uint64_t n = 1; n <= total + 1; n++) {
            crash_one(n, seed % 2 == 0, true, seed * 1000 + n);
            crash_one(n, seed % 2 == 1, false, seed * 1000 + n);
        }
    }
    /* Faults before the commit point fell back to the old snapshot, faults after it (in
     * retention) were acknowledged. An unacknowledged but whole new snapshot cannot occur
     * here: nothing syncs the directory after a failed commit. */
    CHECK(n_found_old > 0 && n_acked_with_fault > 0 && n_found_new_unacked == 0);
    CHECK(total < 40);
}

/* Flips bits in snapshot 20's file; 10 must be served instead, the file named. */
static void flip_check(struct craft_fs_mem *m, uint64_t bit)
{
    cur_seed = bit;
    struct craft_fs *fs = craft_fs_mem_fs(m);
    char path[128];
    snprintf(path, sizeof(path), SDIR "/%016" PRIx64 "-%016" PRIx64 ".snap", (uint64_t)20,
             (uint64_t)2);
    CHECK(craft_fs_mem_flip_bit(m, path, bit) == CRAFT_OK);
    struct craft_snapshot_store *s;
    CHECK(craft_snapshot_file_open(fs, SDIR, 3, &s) == CRAFT_OK);
    CHECK(craft_snapshot_file_n_corrupt(s) == 1);
    CHECK(strstr(s->errmsg(s), path) != NULL);
    struct craft_snapshot_info infos[4];
    size_t k = 0;
    s->list(s, infos, 4, &k);
    CHECK(k == 1 && infos[0].meta.index == 10);
    expect_newest(s, 10, 1);
    s->destroy(s);
    CHECK(craft_fs_mem_flip_bit(m, path, bit) == CRAFT_OK); /* repair */
}

static void test_bit_flips(void)
{
    struct craft_fs_mem *m = craft_fs_mem_create(3);
    struct craft_fs *fs = craft_fs_mem_fs(m);
    struct craft_snapshot_store *s;
    CHECK(craft_snapshot_file_open(fs, SDIR, 3, &s) == CRAFT_OK);
    CHECK(put_snap(s, 10, 1, 300) == CRAFT_OK);
    CHECK(put_snap(s, 20, 2, 300) == CRAFT_OK);
    s->destroy(s);
    /* Every bit of the header, then every 7th bit of the data. */
    for (uint64_t bit = 0; bit < 8u * CRAFT_SNAPSHOT_HEADER_BYTES; bit++) {
        flip_check(m, bit);
    }
    uint64_t file_bits = 8u * (CRAFT_SNAPSHOT_HEADER_BYTES + data_size(20));
    for (uint64_t bit = 8u * CRAFT_SNAPSHOT_HEADER_BYTES; bit < file_bits; bit += 7) {
        flip_check(m, bit);
    }
    /* Repaired: 20 is back. */
    CHECK(craft_snapshot_file_open(fs, SDIR, 3, &s) == CRAFT_OK);
    CHECK(craft_snapshot_file_n_corrupt(s) == 0);
    expect_newest(s, 20, 2);
    /* Corruption after open is caught by open_newest, which falls back and reports. */
    char path[128];
    snprintf(path, sizeof(path), SDIR "/%016" PRIx64 "-%016" PRIx64 ".snap", (uint64_t)20,
             (uint64_t)2);
    CHECK(craft_fs_mem_flip_bit(m, path, 8u * CRAFT_SNAPSHOT_HEADER_BYTES + 77) == CRAFT_OK);
    expect_newest(s, 10, 1);
    CHECK(craft_snapshot_file_n_corrupt(s) == 1);
    CHECK(strstr(s->errmsg(s), path) != NULL);
    /* read_all catches a flip between open_newest and the read. */
    struct craft_snapshot_info info;
    struct craft_snapshot_reader *r;
    CHECK(s->open_newest(s, &info, &r) == CRAFT_OK && info.meta.index == 10);
    snprintf(path, sizeof(path), SDIR "/%016" PRIx64 "-%016" PRIx64 ".snap", (uint64_t)10,
             (uint64_t)1);
    CHECK(craft_fs_mem_flip_bit(m, path, 8u * CRAFT_SNAPSHOT_HEADER_BYTES + 3) == CRAFT_OK);
    uint8_t *got = NULL;
    CHECK(craft_snapshot_read_all(s, r, &info, &got) == CRAFT_ECORRUPT && got == NULL);
    s->reader_close(s, r);
    expect_newest(s, 0, 0); /* nothing valid left: never a corrupt one */
    s->destroy(s);
    craft_fs_mem_destroy(m);
}

/* A truncated or extended file, and a file whose name disagrees with its header. */
static void test_bad_files(void)
{
    struct craft_fs_mem *m = craft_fs_mem_create(4);
    struct craft_fs *fs = craft_fs_mem_fs(m);
    struct craft_snapshot_store *s;
    CHECK(craft_snapshot_file_open(fs, SDIR, 3, &s) == CRAFT_OK);
    CHECK(put_snap(s, 10, 1, 300) == CRAFT_OK);
    CHECK(put_snap(s, 20, 2, 300) == CRAFT_OK);
    s->destroy(s);
    char p20[128], p30[128];
    snprintf(p20, sizeof(p20), SDIR "/%016" PRIx64 "-%016" PRIx64 ".snap", (uint64_t)20,
             (uint64_t)2);
    snprintf(p30, sizeof(p30), SDIR "/%016" PRIx64 "-%016" PRIx64 ".snap", (uint64_t)30,
             (uint64_t)2);
    uint64_t sizes[] = {0, 10, CRAFT_SNAPSHOT_HEADER_BYTES,
                        CRAFT_SNAPSHOT_HEADER_BYTES + data_size(20) - 1,
                        CRAFT_SNAPSHOT_HEADER_BYTES + data_size(20) + 1};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        /* A copy of 20 cut (or grown) to sizes[i], under a name of its own. */
        int src, dst;
        uint8_t *buf = malloc(CRAFT_SNAPSHOT_HEADER_BYTES + data_size(20) + 1);
        size_t got = 0;
        CHECK(fs->open(fs, p20, 0, &src) == CRAFT_OK);
        CHECK(fs->pread(fs, src, buf, CRAFT_SNAPSHOT_HEADER_BYTES + data_size(20), 0, &got) ==
              CRAFT_OK);
        fs->close(fs, src);
        CHECK(fs->open(fs, p30, CRAFT_FS_CREATE, &dst) == CRAFT_OK);
        CHECK(fs->ftruncate(fs, dst, 0) == CRAFT_OK);
        CHECK(fs->pwrite(fs, dst, buf, got, 0) == CRAFT_OK);
        CHECK(fs->ftruncate(fs, dst, sizes[i]) == CRAFT_OK);
        fs->close(fs, dst);
        free(buf);
        CHECK(craft_snapshot_file_open(fs, SDIR, 3, &s) == CRAFT_OK);
        CHECK(craft_snapshot_file_n_corrupt(s) == 1);
        CHECK(strstr(s->errmsg(s), p30) != NULL);
        expect_newest(s, 20, 2);
        s->destroy(s);
    }
    /* Unrelated names are left alone; leftover temporaries are deleted. */
    int fd;
    CHECK(fs->open(fs, SDIR "/README", CRAFT_FS_CREATE, &fd) == CRAFT_OK);
    fs->close(fs, fd);
    CHECK(fs->open(fs, SDIR "/0000000000000007.snap.tmp", CRAFT_FS_CREATE, &fd) == CRAFT_OK);
    CHECK(fs->pwrite(fs, fd, "partial", 7, 0) == CRAFT_OK);
    fs->close(fs, fd);
    CHECK(fs->unlink(fs, p30) == CRAFT_OK);
    CHECK(craft_snapshot_file_open(fs, SDIR, 3, &s) == CRAFT_OK);
    CHECK(count_files(fs).n_tmp == 0);
    CHECK(fs->open(fs, SDIR "/README", 0, &fd) == CRAFT_OK);
    fs->close(fs, fd);
    CHECK(craft_snapshot_file_n_corrupt(s) == 0);
    expect_newest(s, 20, 2);
    s->destroy(s);
    craft_fs_mem_destroy(m);
}

/* A snapshot received from a leader: metadata known at the end, chunks in order, resent
 * chunks tolerated, a gap refused. For the three stores. */
static void receive_kind(int kind)
{
    struct craft_fs_mem *m = craft_fs_mem_create(5);
    struct craft_snapshot_store *s = NULL;
    int err = kind == 0   ? craft_snapshot_file_open(craft_fs_mem_fs(m), SDIR, 2, &s)
              : kind == 1 ? craft_snapshot_mem_create(2, &s)
                          : craft_snapshot_discard_create(2, &s);
    CHECK(err == CRAFT_OK);
    size_t n = data_size(45);
    CHECK(n > 3000);
    uint8_t *buf = malloc(n);
    data_fill(buf, n, 45);
    struct craft_snapshot_sink *k;
    CHECK(s->create(s, NULL, &k) == CRAFT_OK);
    CHECK(s->write(s, k, 0, buf, 1000) == CRAFT_OK);
    CHECK(s->write(s, k, 1001, buf + 1001, 10) == CRAFT_EINVAL); /* a gap */
    CHECK(s->write(s, k, 0, buf, 1000) == CRAFT_OK);              /* resent whole */
    CHECK(s->write(s, k, 500, buf + 500, 1000) == CRAFT_OK);      /* resent, overlapping */
    CHECK(s->written(s, k) == 1500);
    CHECK(s->write(s, k, 1500, buf + 1500, 0) == CRAFT_OK);
    CHECK(s->write(s, k, 1500, buf + 1500, n - 1500) == CRAFT_OK);
    CHECK(s->written(s, k) == n);
    struct craft_snapshot_meta meta = mk_meta(45, 4);
    CHECK(s->commit(s, k, &meta) == CRAFT_OK);
    if (kind == 2) {
        expect_newest(s, 0, 0);
        struct craft_snapshot_info info;
        size_t cnt = 0;
        s->list(s, &info, 1, &cnt);
        CHECK(cnt == 1 && info.meta.index == 45 && info.size == n);
    } else {
        expect_newest(s, 45, 4);
    }
    if (kind == 0) {
        s->destroy(s);
        craft_fs_mem_crash(m, true);
        CHECK(craft_snapshot_file_open(craft_fs_mem_fs(m), SDIR, 2, &s) == CRAFT_OK);
        expect_newest(s, 45, 4);
    }
    /* A failed write poisons the sink: commit refuses, nothing is listed. */
    if (kind == 0) {
        struct craft_snapshot_meta m50 = mk_meta(50, 5);
        CHECK(s->create(s, &m50, &k) == CRAFT_OK);
        craft_fs_mem_fail(m, 1, CRAFT_ENOSPACE, false);
        CHECK(s->write(s, k, 0, buf, 100) == CRAFT_ENOSPACE);
        CHECK(s->write(s, k, 0, buf, 100) == CRAFT_EINVAL);
        CHECK(s->commit(s, k, NULL) == CRAFT_EINVAL);
        expect_newest(s, 45, 4);
        CHECK(count_files(craft_fs_mem_fs(m)).n_tmp == 0);
    }
    free(buf);
    s->destroy(s);
    craft_fs_mem_destroy(m);
}

static void test_receive(void)
{
    for (int kind = 0; kind < 3; kind++) {
        cur_seed = (uint64_t)kind;
        receive_kind(kind);
    }
}

/* Reads at random offsets and lengths (the leader sending chunks) agree with the data. */
static void test_read_offsets(void)
{
    for (int kind = 0; kind < 2; kind++) {
        struct craft_fs_mem *m = craft_fs_mem_create(6);
        struct craft_snapshot_store *s = NULL;
        CHECK((kind == 0 ? craft_snapshot_file_open(craft_fs_mem_fs(m), SDIR, 2, &s)
                         : craft_snapshot_mem_create(2, &s)) == CRAFT_OK);
        CHECK(put_snap(s, 47, 2, 999) == CRAFT_OK);
        size_t n = data_size(47);
        uint8_t *want = malloc(n);
        data_fill(want, n, 47);
        struct craft_snapshot_info info;
        struct craft_snapshot_reader *r;
        CHECK(s->open_newest(s, &info, &r) == CRAFT_OK && info.size == n);
        struct craft_prng p;
        for (uint64_t seed = 1; seed <= 20; seed++) {
            cur_seed = seed;
            craft_prng_seed(&p, seed);
            for (int i = 0; i < 100; i++) {
                uint64_t off = craft_prng_range(&p, 0, n + 50);
                size_t len = (size_t)craft_prng_range(&p, 0, 2000);
                uint8_t buf[2000];
                size_t got = 99999;
                CHECK(s->read(s, r, buf, len, off, &got) == CRAFT_OK);
                size_t expect = off >= n ? 0 : (n - off < len ? (size_t)(n - off) : len);
                CHECK(got == expect);
                CHECK(got == 0 || memcmp(buf, want + off, got) == 0);
            }
        }
        /* Chunked reads reassemble the snapshot. */
        uint8_t *all = malloc(n);
        size_t got = 0;
        for (uint64_t off = 0; off < n; off += got) {
            CHECK(s->read(s, r, all + off, 256, off, &got) == CRAFT_OK && got > 0);
            if (got == 0) {
                break;
            }
        }
        CHECK(memcmp(all, want, n) == 0);
        free(all);
        s->reader_close(s, r);
        free(want);
        s->destroy(s);
        craft_fs_mem_destroy(m);
    }
}

int main(void)
{
    run_case("roundtrip_file", test_roundtrip_file);
    run_case("roundtrip_mem", test_roundtrip_mem);
    run_case("roundtrip_discard", test_roundtrip_discard);
    run_case("roundtrip_posix", test_roundtrip_posix);
    run_case("retention", test_retention);
    run_case("crash_every_op", test_crash_every_op);
    run_case("bit_flips", test_bit_flips);
    run_case("bad_files", test_bad_files);
    run_case("receive", test_receive);
    run_case("read_offsets", test_read_offsets);
    return unit_finish();
}
