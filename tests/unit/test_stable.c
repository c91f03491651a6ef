/* The stable store (src/storage/stable.h): round trips on both filesystems, and atomicity:
 * a crash (torn or not) or an injected error at every operation of a put leaves the old
 * value or the new one, never a mix, and the new one whenever the put succeeded. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/fs_mem.h"
#include "storage/stable.h"
#include "unit.h"




#define PATH "d/meta"

static void roundtrip(struct craft_fs *fs, const char *path)
{
    struct craft_stable *st;
    uint8_t buf[CRAFT_STABLE_BYTES_MAX + 1];
    size_t len = 0;
    CHECK(craft_stable_open(fs, path, &st) == CRAFT_OK);
    CHECK(craft_stable_get(st, buf, sizeof(buf), &len) == CRAFT_ENOTFOUND);
    struct craft_hard_state hs = {.term = 7, .vote = 3}, got = {0};
    CHECK(craft_stable_get_hard_state(st, &got) == CRAFT_ENOTFOUND);
    CHECK(craft_stable_put_hard_state(st, &hs) == CRAFT_OK);
    CHECK(craft_stable_get_hard_state(st, &got) == CRAFT_OK && got.term == 7 && got.vote == 3);
    craft_stable_close(st);
    CHECK(craft_stable_open(fs, path, &st) == CRAFT_OK);
    got = (struct craft_hard_state){0};
    CHECK(craft_stable_get_hard_state(st, &got) == CRAFT_OK && got.term == 7 && got.vote == 3);
    memset(buf, 0xab, sizeof(buf));
    CHECK(craft_stable_put(st, buf, CRAFT_STABLE_BYTES_MAX + 1) == CRAFT_ETOOBIG);
    CHECK(craft_stable_put(st, buf, CRAFT_STABLE_BYTES_MAX) == CRAFT_OK);
    CHECK(craft_stable_get(st, buf, 10, &len) == CRAFT_ETOOBIG && len == CRAFT_STABLE_BYTES_MAX);
    CHECK(craft_stable_get_hard_state(st, &got) == CRAFT_ECORRUPT); /* not 16 bytes */
    CHECK(craft_stable_put(st, NULL, 0) == CRAFT_OK);
    craft_stable_close(st);
    CHECK(craft_stable_open(fs, path, &st) == CRAFT_OK);
    CHECK(craft_stable_get(st, buf, sizeof(buf), &len) == CRAFT_OK && len == 0);
    craft_stable_close(st);
}

static void test_roundtrip_mem(void)
{
    struct craft_fs_mem *m = craft_fs_mem_create(1);
    struct craft_fs *fs = craft_fs_mem_fs(m);
    CHECK(fs->mkdir(fs, "d") == CRAFT_OK);
    roundtrip(fs, PATH);
    craft_fs_mem_destroy(m);
}

static void test_roundtrip_posix(void)
{
    struct craft_fs fs;
    craft_fs_posix_init(&fs);
    const char *tmp = getenv("TMPDIR");
    char dir[512], path[600];
    snprintf(dir, sizeof(dir), "%s/craft-test-stable-XXXXXX", tmp ? tmp : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/meta", dir);
    roundtrip(&fs, path);
    CHECK(unlink(path) == 0);
    CHECK(rmdir(dir) == 0);
}

static void test_corrupt_refused(void)
{
    struct craft_fs_mem *m = craft_fs_mem_create(2);
    struct craft_fs *fs = craft_fs_mem_fs(m);
    CHECK(fs->mkdir(fs, "d") == CRAFT_OK);
    struct craft_stable *st;
    CHECK(craft_stable_open(fs, PATH, &st) == CRAFT_OK);
    struct craft_hard_state hs = {.term = 1, .vote = 2};
    CHECK(craft_stable_put_hard_state(st, &hs) == CRAFT_OK);
    craft_stable_close(st);
    /* Every single bit flip of the file is caught. */
    for (uint64_t bit = 0; bit < (16 + 16) * 8; bit++) {
        cur_seed = bit;
        CHECK(craft_fs_mem_flip_bit(m, PATH, bit) == CRAFT_OK);
        CHECK(craft_stable_open(fs, PATH, &st) == CRAFT_ECORRUPT);
        CHECK(craft_fs_mem_flip_bit(m, PATH, bit) == CRAFT_OK);
    }
    CHECK(craft_stable_open(fs, PATH, &st) == CRAFT_OK);
    craft_stable_close(st);
    craft_fs_mem_destroy(m);
}

/* Puts {term = t, vote = t} over the durable {term = 1, vote = 1} with the fault plan armed
 * at operation n; returns the put's result. */
static int put_with_fault(struct craft_fs_mem *m, uint64_t n, int err, bool sticky, uint64_t t)
{
    struct craft_fs *fs = craft_fs_mem_fs(m);
    struct craft_stable *st;
    CHECK(craft_stable_open(fs, PATH, &st) == CRAFT_OK);
    craft_fs_mem_fail(m, n, err, sticky);
    struct craft_hard_state hs = {.term = t, .vote = t};
    int r = craft_stable_put_hard_state(st, &hs);
    craft_fs_mem_fail(m, 0, 0, false);
    if (r != 0) {
        /* Failed stays failed. */
        CHECK(craft_stable_put_hard_state(st, &hs) == CRAFT_ESHUTDOWN);
        CHECK(craft_stable_get_hard_state(st, &hs) == CRAFT_ESHUTDOWN);
    }
    craft_stable_close(st);
    return r;
}

static void test_atomic_under_crash(void)
{
    int n_old = 0, n_new_unacked = 0;
    for (int mode = 0; mode < 4; mode++) {
        bool sticky = mode & 1, crash = mode & 2;
        for (uint64_t n = 1; n <= 12; n++) {
            for (uint64_t rep = 0; rep < 8; rep++) {
                cur_seed = (uint64_t)mode * 1000 + n * 10 + rep;
                struct craft_fs_mem *m = craft_fs_mem_create(cur_seed);
                struct craft_fs *fs = craft_fs_mem_fs(m);
                CHECK(fs->mkdir(fs, "d") == CRAFT_OK);
                struct craft_stable *st;
                CHECK(craft_stable_open(fs, PATH, &st) == CRAFT_OK);
                struct craft_hard_state hs = {.term = 1, .vote = 1};
                CHECK(craft_stable_put_hard_state(st, &hs) == CRAFT_OK);
                craft_stable_close(st);
                int r = put_with_fault(m, n, n % 2 ? CRAFT_EIO : CRAFT_ENOSPACE, sticky, 2);
                if (crash) {
                    craft_fs_mem_crash(m, rep % 2 == 0);
                }
                CHECK(craft_stable_open(fs, PATH, &st) == CRAFT_OK);
                hs = (struct craft_hard_state){0};
                CHECK(craft_stable_get_hard_state(st, &hs) == CRAFT_OK);
                CHECK((hs.term == 1 && hs.vote == 1) || (hs.term == 2 && hs.vote == 2));
                if (r == CRAFT_OK) {
                    CHECK(hs.term == 2); /* acknowledged: durable */
                }
                n_old += hs.term == 1;
                n_new_unacked += r != CRAFT_OK && hs.term == 2;
                /* The store works after recovery. */
                hs = (struct craft_hard_state){.term = 3, .vote = 3};
                CHECK(craft_stable_put_hard_state(st, &hs) == CRAFT_OK);
                craft_stable_close(st);
                craft_fs_mem_crash(m, true);
                CHECK(craft_stable_open(fs, PATH, &st) == CRAFT_OK);
                CHECK(craft_stable_get_hard_state(st, &hs) == CRAFT_OK && hs.term == 3);
                craft_stable_close(st);
                craft_fs_mem_destroy(m);
            }
        }
    }
    /* Both outcomes of an interrupted put happened. */
    CHECK(n_old > 0 && n_new_unacked > 0);
}

int main(void)
{
    run_case("roundtrip_mem", test_roundtrip_mem);
    run_case("roundtrip_posix", test_roundtrip_posix);
    run_case("corrupt_refused", test_corrupt_refused);
    run_case("atomic_under_crash", test_atomic_under_crash);
    return unit_finish();
}
