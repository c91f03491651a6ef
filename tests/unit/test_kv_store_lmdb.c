/* The LMDB store's no_sync mode (src/kv/kv_store_lmdb.c): a clean close syncs and removes
 * the unsynced-writes marker; a process crash (a child that exits without closing) keeps
 * every committed write; a marker from another boot (an OS crash with unsynced writes)
 * drops the files at the next open and says so; the synced mode never writes a marker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(void)
{
    run_case("clean close removes the marker", test_clean_close_removes_marker);
    run_case("a process crash keeps the writes", test_process_crash_keeps_writes);
    run_case("a marker of another boot discards", test_marker_of_another_boot_discards);
    run_case("synced mode has no marker", test_synced_mode_has_no_marker);
    return unit_finish();
}
