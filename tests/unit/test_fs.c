/* The filesystem port (src/storage/fs.h): the same semantic checks against the POSIX and the
 * in-memory implementation, then fs_mem's crash model (unsynced data and names are lost,
 * torn writes keep a prefix), bit flips and the fault plan. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/prng.h"
#include "storage/fs.h"
#include "storage/fs_mem.h"
#include "unit.h"




struct names {
    int n;
    bool has_a, has_b, has_sub;
};

static int count_name(void *arg, const char *name)
{
    struct names *ns = arg;
    ns->n++;
    ns->has_a |= strcmp(name, "a") == 0;
    ns->has_b |= strcmp(name, "b") == 0;
    ns->has_sub |= strcmp(name, "sub") == 0;
    return 0;
}

static int stop_listing(void *arg, const char *name)
{
    (void)arg;
    (void)name;
    return CRAFT_EBUSY;
}

/* The contract of fs.h, on any implementation, in directory dir (which must exist). */
static void check_semantics(struct craft_fs *fs, const char *dir)
{
    char a[512], b[512], sub[512], deep[512];
    snprintf(a, sizeof(a), "%s/a", dir);
    snprintf(b, sizeof(b), "%s/b", dir);
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    snprintf(deep, sizeof(deep), "%s/nodir/x", dir);
    int fd = -1, fd2 = -1;
    CHECK(fs->open(fs, a, 0, &fd) == CRAFT_ENOTFOUND);
    CHECK(fs->open(fs, deep, CRAFT_FS_CREATE, &fd) == CRAFT_ENOTFOUND);
    CHECK(fs->open(fs, a, CRAFT_FS_CREATE, &fd) == CRAFT_OK);
    uint64_t size = 99;
    CHECK(fs->file_size(fs, fd, &size) == CRAFT_OK && size == 0);
    CHECK(fs->pwrite(fs, fd, "hello", 5, 0) == CRAFT_OK);
    CHECK(fs->pwrite(fs, fd, "world", 5, 10) == CRAFT_OK); /* a hole reads as zeros */
    CHECK(fs->file_size(fs, fd, &size) == CRAFT_OK && size == 15);
    char buf[32];
    size_t got = 0;
    CHECK(fs->pread(fs, fd, buf, sizeof(buf), 0, &got) == CRAFT_OK && got == 15);
    CHECK(memcmp(buf, "hello\0\0\0\0\0world", 15) == 0);
    CHECK(fs->pread(fs, fd, buf, 4, 12, &got) == CRAFT_OK && got == 3);
    CHECK(fs->pread(fs, fd, buf, 4, 100, &got) == CRAFT_OK && got == 0);
    CHECK(fs->fdatasync(fs, fd) == CRAFT_OK);
    CHECK(fs->ftruncate(fs, fd, 3) == CRAFT_OK);
    CHECK(fs->file_size(fs, fd, &size) == CRAFT_OK && size == 3);
    CHECK(fs->fallocate(fs, fd, 0, 4096) == CRAFT_OK);
    CHECK(fs->file_size(fs, fd, &size) == CRAFT_OK && size == 4096);
    CHECK(fs->fallocate(fs, fd, 0, 16) == CRAFT_OK); /* never shrinks */
    CHECK(fs->file_size(fs, fd, &size) == CRAFT_OK && size == 4096);
    CHECK(fs->pread(fs, fd, buf, 8, 0, &got) == CRAFT_OK && got == 8);
    CHECK(memcmp(buf, "hel\0\0\0\0\0", 8) == 0);
    CHECK(fs->close(fs, fd) == CRAFT_OK);

    CHECK(fs->open(fs, b, CRAFT_FS_CREATE, &fd2) == CRAFT_OK);
    CHECK(fs->pwrite(fs, fd2, "B", 1, 0) == CRAFT_OK);
    CHECK(fs->close(fs, fd2) == CRAFT_OK);
    CHECK(fs->mkdir(fs, sub) == CRAFT_OK);
    CHECK(fs->mkdir(fs, sub) == CRAFT_OK); /* idempotent */
    CHECK(fs->mkdir(fs, deep) == CRAFT_ENOTFOUND);
    struct names ns = {0};
    CHECK(fs->list_dir(fs, dir, count_name, &ns) == CRAFT_OK);
    CHECK(ns.n == 3 && ns.has_a && ns.has_b && ns.has_sub);
    CHECK(fs->list_dir(fs, dir, stop_listing, NULL) == CRAFT_EBUSY);
    CHECK(fs->list_dir(fs, deep, count_name, &ns) == CRAFT_ENOTFOUND);

    /* rename replaces the target atomically */
    CHECK(fs->rename(fs, b, a) == CRAFT_OK);
    CHECK(fs->open(fs, b, 0, &fd) == CRAFT_ENOTFOUND);
    CHECK(fs->open(fs, a, 0, &fd) == CRAFT_OK);
    CHECK(fs->pread(fs, fd, buf, sizeof(buf), 0, &got) == CRAFT_OK && got == 1 && buf[0] == 'B');
    CHECK(fs->close(fs, fd) == CRAFT_OK);
    CHECK(fs->rename(fs, b, a) == CRAFT_ENOTFOUND);
    CHECK(fs->fsync_dir(fs, dir) == CRAFT_OK);
    CHECK(fs->unlink(fs, a) == CRAFT_OK);
    CHECK(fs->unlink(fs, a) == CRAFT_ENOTFOUND);
    CHECK(fs->fsync_dir(fs, deep) == CRAFT_ENOTFOUND);
}

static void test_posix_semantics(void)
{
    struct craft_fs fs;
    craft_fs_posix_init(&fs);
    const char *tmp = getenv("TMPDIR");
    char dir[512], sub[600];
    snprintf(dir, sizeof(dir), "%s/craft-test-fs-XXXXXX", tmp ? tmp : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
    check_semantics(&fs, dir);
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    rmdir(sub);
    CHECK(rmdir(dir) == 0); /* everything the check created is gone */
}

static void test_mem_semantics(void)
{
    struct craft_fs_mem *m = craft_fs_mem_create(1);
    struct craft_fs *fs = craft_fs_mem_fs(m);
    CHECK(fs->mkdir(fs, "d") == CRAFT_OK);
    check_semantics(fs, "d");
    craft_fs_mem_destroy(m);
}

/* Writes len bytes of `c` at off through a fresh handle; syncs data and/or the dir. */
static void put(struct craft_fs *fs, const char *path, char c, size_t len, uint64_t off,
                bool sync, bool sync_dir)
{
    char buf[256];
    memset(buf, c, sizeof(buf));
    int fd;
    CHECK(fs->open(fs, path, CRAFT_FS_CREATE, &fd) == CRAFT_OK);
    CHECK(fs->pwrite(fs, fd, buf, len, off) == CRAFT_OK);
    if (sync) {
        CHECK(fs->fdatasync(fs, fd) == CRAFT_OK);
    }
    CHECK(fs->close(fs, fd) == CRAFT_OK);
    if (sync_dir) {
        CHECK(fs->fsync_dir(fs, "d") == CRAFT_OK);
    }
}

/* Reads path whole (up to 256 bytes); returns its size or -1 if it does not exist. */
static long get(struct craft_fs *fs, const char *path, char *buf)
{
    int fd;
    if (fs->open(fs, path, 0, &fd) != CRAFT_OK) {
        return -1;
    }
    size_t got = 0;
    CHECK(fs->pread(fs, fd, buf, 256, 0, &got) == CRAFT_OK);
    CHECK(fs->close(fs, fd) == CRAFT_OK);
    return (long)got;
}

static void test_mem_crash_loses_unsynced(void)
{
    struct craft_fs_mem *m = craft_fs_mem_create(2);
    struct craft_fs *fs = craft_fs_mem_fs(m);
    char buf[256];
    CHECK(fs->mkdir(fs, "d") == CRAFT_OK);
    put(fs, "d/synced", 'a', 10, 0, true, true);
    put(fs, "d/synced", 'b', 10, 10, false, false); /* unsynced append */
    put(fs, "d/nodatasync", 'e', 10, 0, false, true); /* name synced, data not */
    put(fs, "d/nodirsync", 'c', 10, 0, true, false); /* data synced, name not */
    CHECK(get(fs, "d/synced", buf) == 20);
    craft_fs_mem_crash(m, false);
    CHECK(get(fs, "d/synced", buf) == 10 && buf[9] == 'a');
    CHECK(get(fs, "d/nodirsync", buf) == -1);
    CHECK(get(fs, "d/nodatasync", buf) == 0);

    /* An unsynced rename is lost; a synced one survives, replacing the target. */
    put(fs, "d/tmp", 't', 5, 0, true, true);
    CHECK(fs->rename(fs, "d/tmp", "d/synced") == CRAFT_OK);
    CHECK(get(fs, "d/synced", buf) == 5);
    craft_fs_mem_crash(m, false);
    CHECK(get(fs, "d/synced", buf) == 10 && buf[0] == 'a');
    CHECK(get(fs, "d/tmp", buf) == 5);
    CHECK(fs->rename(fs, "d/tmp", "d/synced") == CRAFT_OK);
    CHECK(fs->fsync_dir(fs, "d") == CRAFT_OK);
    craft_fs_mem_crash(m, false);
    CHECK(get(fs, "d/synced", buf) == 5 && buf[0] == 't');
    CHECK(get(fs, "d/tmp", buf) == -1);

    /* An unsynced unlink is lost. */
    CHECK(fs->unlink(fs, "d/synced") == CRAFT_OK);
    CHECK(get(fs, "d/synced", buf) == -1);
    craft_fs_mem_crash(m, false);
    CHECK(get(fs, "d/synced", buf) == 5);
    /* Handles open at the crash are dead. */
    int fd;
    CHECK(fs->open(fs, "d/synced", 0, &fd) == CRAFT_OK);
    craft_fs_mem_crash(m, false);
    CHECK(fs->pwrite(fs, fd, "x", 1, 0) == CRAFT_EINVAL);
    uint64_t size;
    CHECK(craft_fs_mem_durable_size(m, "d/synced", &size) == CRAFT_OK && size == 5);
    craft_fs_mem_destroy(m);
}

/* A torn crash keeps a prefix of the unsynced writes in issue order, the last maybe cut. */
static void test_mem_torn_prefix(void)
{
    static const uint64_t seeds[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 99, 1234};
    bool saw_torn = false, saw_none = false, saw_all = false;
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        for (int rep = 0; rep < 20; rep++) {
            cur_seed = seeds[s] * 100 + (uint64_t)rep;
            struct craft_fs_mem *m = craft_fs_mem_create(cur_seed);
            struct craft_fs *fs = craft_fs_mem_fs(m);
            CHECK(fs->mkdir(fs, "d") == CRAFT_OK);
            put(fs, "d/f", 'a', 16, 0, true, true);
            int fd;
            CHECK(fs->open(fs, "d/f", 0, &fd) == CRAFT_OK);
            /* Three unsynced appends of 16 bytes: 'b', 'c', 'd'. */
            for (int k = 0; k < 3; k++) {
                char chunk[16];
                memset(chunk, 'b' + k, sizeof(chunk));
                CHECK(fs->pwrite(fs, fd, chunk, 16, 16 + 16 * (uint64_t)k) == CRAFT_OK);
            }
            craft_fs_mem_crash(m, true);
            char buf[256];
            long n = get(fs, "d/f", buf);
            CHECK(n >= 16 && n <= 64);
            for (long i = 0; i < n; i++) {
                CHECK(buf[i] == 'a' + i / 16);
            }
            saw_none |= n == 16;
            saw_all |= n == 64;
            saw_torn |= n % 16 != 0;
            craft_fs_mem_destroy(m);
        }
    }
    CHECK(saw_none && saw_all && saw_torn);
}

static void test_mem_flip_and_faults(void)
{
    struct craft_fs_mem *m = craft_fs_mem_create(3);
    struct craft_fs *fs = craft_fs_mem_fs(m);
    char buf[256];
    CHECK(fs->mkdir(fs, "d") == CRAFT_OK);
    put(fs, "d/f", 'a', 8, 0, true, true);
    CHECK(craft_fs_mem_flip_bit(m, "d/f", 8 * 3 + 1) == CRAFT_OK);
    CHECK(get(fs, "d/f", buf) == 8 && buf[3] == ('a' ^ 2) && buf[2] == 'a');
    craft_fs_mem_crash(m, false);
    CHECK(get(fs, "d/f", buf) == 8 && buf[3] == ('a' ^ 2)); /* the flip is on the media */
    CHECK(craft_fs_mem_flip_bit(m, "d/none", 0) == CRAFT_ENOTFOUND);

    /* The 2nd operation from now fails, once; it has no effect. */
    int fd;
    uint64_t before = craft_fs_mem_op_count(m);
    craft_fs_mem_fail(m, 2, CRAFT_ENOSPACE, false);
    CHECK(fs->open(fs, "d/f", 0, &fd) == CRAFT_OK);
    CHECK(fs->pwrite(fs, fd, "zz", 2, 0) == CRAFT_ENOSPACE);
    CHECK(fs->pread(fs, fd, buf, 8, 0, &(size_t){0}) == CRAFT_OK && buf[0] == 'a');
    CHECK(craft_fs_mem_op_count(m) == before + 3);
    /* Sticky: every operation from the 1st on fails. */
    craft_fs_mem_fail(m, 1, CRAFT_EIO, true);
    CHECK(fs->fdatasync(fs, fd) == CRAFT_EIO);
    CHECK(fs->fsync_dir(fs, "d") == CRAFT_EIO);
    CHECK(fs->unlink(fs, "d/f") == CRAFT_EIO);
    CHECK(fs->close(fs, fd) == CRAFT_OK); /* close is never failed */
    craft_fs_mem_fail(m, 0, 0, false);
    CHECK(get(fs, "d/f", buf) == 8);
    craft_fs_mem_destroy(m);
}

int main(void)
{
    run_case("posix_semantics", test_posix_semantics);
    run_case("mem_semantics", test_mem_semantics);
    run_case("mem_crash_loses_unsynced", test_mem_crash_loses_unsynced);
    run_case("mem_torn_prefix", test_mem_torn_prefix);
    run_case("mem_flip_and_faults", test_mem_flip_and_faults);
    return unit_finish();
}
