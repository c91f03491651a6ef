/* The LMDB store's no_sync mode (src/kv/kv_store_lmdb.c): a clean close syncs and removes
 * the unsynced-writes marker; a process crash (a child that exits without closing) keeps
 * every committed write; a marker from another boot (an OS crash with unsynced writes)
 * drops the files at the next open and says so; the synced mode never writes a marker.
 * A full filesystem is an error from a put, not SIGBUS in the shared map (MDB_WRITEMAP),
 * and every write committed before it survives (needs root for a small tmpfs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kv/kv_store.h"
#include "unit.h"

static char dir[256];

static struct craft_kv_store *open_store(bool no_sync)
{
    struct craft_kv_lmdb_config cfg = {.path = dir, .map_bytes = 64u << 20, .no_sync = no_sync};
    struct craft_kv_store *s = NULL;
    char err[256] = "";
    int rc = craft_kv_store_lmdb_open(&cfg, &s, err, sizeof err);
    if (rc != CRAFT_OK)
        printf("  open %s: %s\n", dir, err);
    CHECK(rc == CRAFT_OK);
    return s;
}

static void put(struct craft_kv_store *s, const char *k, const char *v)
{
    struct craft_kv_txn *t;
    CHECK(s->ops->begin(s, true, &t) == CRAFT_OK);
    CHECK(s->ops->put(t, CRAFT_KV_TABLE_DATA, (const uint8_t *)k, strlen(k), (const uint8_t *)v,
                      strlen(v)) == CRAFT_OK);
    CHECK(s->ops->commit(t) == CRAFT_OK);
}

static bool has(struct craft_kv_store *s, const char *k, const char *v)
{
    struct craft_kv_txn *t;
    if (s->ops->begin(s, false, &t) != CRAFT_OK)
        return false;
    const uint8_t *val;
    size_t vlen;
    bool ok = s->ops->get(t, CRAFT_KV_TABLE_DATA, (const uint8_t *)k, strlen(k), &val, &vlen) ==
                  CRAFT_OK &&
              vlen == strlen(v) && memcmp(val, v, vlen) == 0;
    s->ops->abort(t);
    return ok;
}

static bool marker_exists(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/unsynced.boot", dir);
    struct stat st;
    return stat(path, &st) == 0;
}

static void fresh_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/craft_lmdb_test.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
}

static void cleanup_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static void test_clean_close_removes_marker(void)
{
    fresh_dir();
    struct craft_kv_store *s = open_store(true);
    if (!s)
        return;
    CHECK(marker_exists());
    put(s, "a", "1");
    s->ops->close(s);
    CHECK(!marker_exists());
    s = open_store(true);
    if (s) {
        CHECK(!craft_kv_store_lmdb_discarded(s));
        CHECK(has(s, "a", "1"));
        s->ops->close(s);
    }
    cleanup_dir();
}

static void test_process_crash_keeps_writes(void)
{
    fresh_dir();
    pid_t pid = fork();
    if (pid == 0) {
        struct craft_kv_store *s = open_store(true);
        if (!s)
            _exit(2);
        put(s, "k", "v");
        if (case_failed)
            _exit(1);
        /* No close, no sync: as a crash. exec rather than a signal so that a leak checker
         * running this test does not count the store the "crash" left open. */
        execl("/bin/true", "true", (char *)NULL);
        _exit(1);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(marker_exists());
    struct craft_kv_store *s = open_store(true);
    if (s) {
        CHECK(!craft_kv_store_lmdb_discarded(s));
        CHECK(has(s, "k", "v"));
        s->ops->close(s);
    }
    cleanup_dir();
}

static void test_marker_of_another_boot_discards(void)
{
    fresh_dir();
    struct craft_kv_store *s = open_store(true);
    if (!s)
        return;
    put(s, "k", "v");
    s->ops->close(s);
    char path[300];
    snprintf(path, sizeof path, "%s/unsynced.boot", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("00000000-0000-0000-0000-000000000000\n", f);
        fclose(f);
    }
    s = open_store(true);
    if (s) {
        CHECK(craft_kv_store_lmdb_discarded(s));
        CHECK(!has(s, "k", "v"));
        put(s, "k2", "v2"); /* a working empty store */
        CHECK(has(s, "k2", "v2"));
        s->ops->close(s);
    }
    cleanup_dir();
}

static void test_synced_mode_has_no_marker(void)
{
    fresh_dir();
    struct craft_kv_store *s = open_store(false);
    if (s) {
        CHECK(!marker_exists());
        put(s, "a", "b");
        CHECK(has(s, "a", "b"));
        CHECK(!craft_kv_store_lmdb_discarded(s));
        s->ops->close(s);
    }
    cleanup_dir();
}

/* Writes 64 KiB values, one per transaction, into a store on a 16 MiB tmpfs behind a
 * 64 MiB map until the filesystem is full. The writer is a child: SIGBUS kills it, not the
 * test. */
#define FULL_VALUE_BYTES (64u << 10)
static void test_full_disk_is_an_error(void)
{
    fresh_dir();
    if (mount("tmpfs", dir, "tmpfs", 0, "size=16m") != 0) {
        printf("  skip: cannot mount a tmpfs (%s): run as root to test a full disk\n",
               strerror(errno));
        cleanup_dir();
        return;
    }
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        struct craft_kv_store *s = open_store(true);
        static uint8_t v[FULL_VALUE_BYTES];
        memset(v, 'v', sizeof v);
        uint32_t committed = 0;
        int rc = CRAFT_OK;
        while (rc == CRAFT_OK && committed < 100000) {
            char k[32];
            snprintf(k, sizeof k, "k%u", committed);
            struct craft_kv_txn *t;
            rc = s->ops->begin(s, true, &t);
            if (rc != CRAFT_OK)
                break;
            rc = s->ops->put(t, CRAFT_KV_TABLE_DATA, (const uint8_t *)k, strlen(k), v, sizeof v);
            if (rc != CRAFT_OK) {
                s->ops->abort(t);
                break;
            }
            rc = s->ops->commit(t);
            if (rc == CRAFT_OK)
                committed++;
        }
        ssize_t w = write(fds[1], &committed, sizeof committed);
        (void)w;
        /* No close: a crash keeps committed writes. exec rather than exit so that a leak
         * checker running this test does not count the store the "crash" left open. */
        if (rc == CRAFT_ENOSPACE)
            execl("/bin/true", "true", (char *)NULL);
        execl("/bin/false", "false", (char *)NULL);
        _exit(3);
    }
    close(fds[1]);
    uint32_t committed = 0;
    ssize_t r = read(fds[0], &committed, sizeof committed);
    close(fds[0]);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status))
        printf("  the writer died of signal %d\n", WTERMSIG(status));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(r == (ssize_t)sizeof committed && committed > 10);
    /* Same boot, so the unsynced store is kept: every committed value is there. */
    struct craft_kv_store *s = open_store(true);
    if (s != NULL) {
        CHECK(!craft_kv_store_lmdb_discarded(s));
        struct craft_kv_txn *t;
        CHECK(s->ops->begin(s, false, &t) == CRAFT_OK);
        uint32_t found = 0;
        for (uint32_t i = 0; i < committed; i++) {
            char k[32];
            snprintf(k, sizeof k, "k%u", i);
            const uint8_t *val;
            size_t vlen;
            if (s->ops->get(t, CRAFT_KV_TABLE_DATA, (const uint8_t *)k, strlen(k), &val, &vlen) ==
                    CRAFT_OK &&
                vlen == FULL_VALUE_BYTES && val[0] == 'v' && val[vlen - 1] == 'v')
                found++;
        }
        s->ops->abort(t);
        CHECK(found == committed);
        s->ops->close(s);
    }
    CHECK(umount(dir) == 0);
    cleanup_dir();
}

int main(void)
{
    run_case("clean close removes the marker", test_clean_close_removes_marker);
    run_case("a process crash keeps the writes", test_process_crash_keeps_writes);
    run_case("a marker of another boot discards", test_marker_of_another_boot_discards);
    run_case("synced mode has no marker", test_synced_mode_has_no_marker);
    run_case("a full disk is an error, not SIGBUS", test_full_disk_is_an_error);
    return unit_finish();
}
