/* The runtime under faults, on 3 threaded nodes in one process with data directories,
 * over the in-memory network and over TCP on loopback: a killed leader, a whole cluster
 * restarted from disk, a follower that fell behind the retained log, a corrupt WAL, a
 * partitioned leader, and shutdown with work in flight. Waits are generous bounds that
 * normally end in milliseconds: nothing here decides pass or fail by timing. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "runtime_cluster.h"
#include "unit.h"

#define WAIT_MS RC_WAIT_MS

static uint64_t term_of(struct craft_node *node)
{
    struct craft_stats st;
    craft_stats(node, &st);
    return st.term;
}

/* ---- the leader dies; later it comes back ---- */

static void kill_leader(bool tcp)
{
    struct rcluster c;
    uint64_t L = rc_start3(&c, tcp, true);
    if (L != 0) {
        rc_pipeline_ok(c.nodes[L], 1000, 256, 0);
        CHECK(rc_wait_total_live(&c, 1000, WAIT_MS));
        uint64_t old_term = term_of(c.nodes[L]);
        rc_stop(&c, L);
        uint64_t L2 = rc_wait_leader(&c, WAIT_MS);
        CHECK(L2 != 0 && L2 != L);
        if (L2 != 0) {
            CHECK(term_of(c.nodes[L2]) > old_term);
            rc_pipeline_ok(c.nodes[L2], 1000, 256, 1000);
            CHECK(rc_wait_total_live(&c, 2000, WAIT_MS));
        }
        /* The old leader restarts from its data directory and catches up. */
        CHECK(rc_restart(&c, L) == CRAFT_OK);
        CHECK(rc_wait_total_live(&c, 2000, WAIT_MS));
        CHECK(rc_apply(&c, 1, WAIT_MS) == CRAFT_OK);
        CHECK(rc_wait_total_live(&c, 2001, WAIT_MS));
        CHECK(counter_view(&c.fsms[L]).n_cmds == 2001);
    }
    rc_destroy(&c);
}

RC_CASES_MEM_TCP(kill_leader)

/* ---- every node restarts from disk ---- */

static void restart_all(bool tcp)
{
    struct rcluster c;
    rc_init(&c, 3, tcp, true);
    c.snapshot_threshold = 500;
    c.trailing = 100;
    uint64_t L = rc_start_all(&c, WAIT_MS);
    if (L != 0) {
        rc_pipeline_ok(c.nodes[L], 2345, 256, 0);
        CHECK(rc_wait_total_live(&c, 2345, WAIT_MS));
        uint64_t terms[4] = {0};
        for (uint64_t i = 1; i <= 3; i++) {
            terms[i] = term_of(c.nodes[i]);
        }
        for (uint64_t i = 1; i <= 3; i++) {
            rc_stop(&c, i);
        }
        /* No initial servers: everything comes from the data directories. */
        for (uint64_t i = 1; i <= 3; i++) {
            CHECK(rc_restart(&c, i) == CRAFT_OK);
        }
        for (uint64_t i = 1; i <= 3; i++) {
            CHECK(c.nodes[i] == NULL || term_of(c.nodes[i]) >= terms[i]);
        }
        uint64_t L2 = rc_wait_leader(&c, WAIT_MS);
        CHECK(L2 != 0);
        /* Snapshot, then the log replayed once the new leader commits. */
        CHECK(rc_wait_total_live(&c, 2345, WAIT_MS));
        for (uint64_t i = 1; i <= 3; i++) {
            struct counter_view v = counter_view(&c.fsms[i]);
            CHECK(v.restores >= 1);
            CHECK(v.total == 2345);
            CHECK(term_of(c.nodes[i]) >= terms[i]);
        }
        if (L2 != 0) {
            CHECK(term_of(c.nodes[L2]) > terms[L]); /* a new election after the restart */
            rc_pipeline_ok(c.nodes[L2], 100, 256, 2345);
            CHECK(rc_wait_total_live(&c, 2445, WAIT_MS));
        }
    }
    rc_destroy(&c);
}

RC_CASES_MEM_TCP(restart_all)

/* ---- a follower behind the retained log catches up by snapshot ---- */

/* wipe: F comes back with an empty data directory. Over TCP, frames the leader queued for
 * F while it was down may still reach it after a restart and bring it up to date by
 * themselves, so only the in-memory network (which drops them) or a wiped F is sure to
 * need a snapshot. */
static void snapshot_catch_up(bool tcp, bool disk, bool wipe)
{
    struct rcluster c;
    rc_init(&c, 3, tcp, disk);
    c.snapshot_threshold = 100;
    c.trailing = 10;
    uint64_t L = rc_start_all(&c, WAIT_MS);
    if (L != 0) {
        uint64_t F = L == 1 ? 2 : 1;
        rc_pipeline_ok(c.nodes[L], 250, 256, 0);
        CHECK(rc_wait_total_live(&c, 250, WAIT_MS));
        struct craft_stats st;
        craft_stats(c.nodes[F], &st);
        uint64_t f_last = st.last_index;
        rc_stop(&c, F);
        uint64_t n = rc_under_valgrind() ? 1000 : 3000;
        rc_pipeline_ok(c.nodes[L], n, 256, 250);
        CHECK(rc_wait_total_live(&c, 250 + n, WAIT_MS));
        /* Automatic snapshots may lag a fast pipeline: one more on demand (ESTALE if an
         * automatic one covers everything already) compacts the leader's log past what F
         * has, so that only a snapshot can bring F up to date. */
        int rc = rc_wait_release(craft_snapshot(c.nodes[L]), WAIT_MS, NULL);
        CHECK(rc == CRAFT_OK || rc == CRAFT_ESTALE);
        craft_stats(c.nodes[L], &st);
        CHECK(st.snapshots_taken >= 2);
        CHECK(st.first_index > f_last + 1);
        /* With a data directory F restarts from its own state; without, from nothing. */
        if (wipe) {
            char cmd[600];
            rc_node_dir(&c, F, cmd + 7, sizeof cmd - 7);
            memcpy(cmd, "rm -rf ", 7);
            CHECK(system(cmd) == 0);
        }
        CHECK(rc_restart(&c, F) == CRAFT_OK);
        CHECK(rc_wait_total_live(&c, 250 + n, WAIT_MS));
        struct counter_view v = counter_view(&c.fsms[F]);
        CHECK(v.restores >= 1);
        CHECK(v.total == 250 + n);
        craft_stats(c.nodes[F], &st);
        bool must_install = !tcp || wipe;
        if (must_install && st.snapshots_installed == 0) {
            rc_dump(&c, "snapshot_catch_up: no snapshot installed");
        }
        CHECK(!must_install || st.snapshots_installed >= 1);
        CHECK(st.failed == 0);
        /* And it follows what comes next from the log. */
        CHECK(rc_apply(&c, 1, WAIT_MS) == CRAFT_OK);
        bool next = rc_wait_total_live(&c, 251 + n, WAIT_MS);
        if (!next) {
            rc_dump(&c, "snapshot_catch_up: a node does not follow after catching up");
        }
        CHECK(next);
    }
    rc_destroy(&c);
}

static void test_snapshot_catch_up_mem(void)
{
    snapshot_catch_up(false, true, false);
}
static void test_snapshot_catch_up_tcp(void)
{
    snapshot_catch_up(true, true, false);
}
static void test_snapshot_catch_up_tcp_wiped(void)
{
    snapshot_catch_up(true, true, true);
}
static void test_snapshot_catch_up_memstore(void)
{
    snapshot_catch_up(false, false, false);
}

/* A follower that comes back while the leader streams commands and compacts its log
 * often catches up through a mix of appends and snapshots, a snapshot arriving while
 * appended entries are not yet on its disk: it must come through with its storage
 * intact. */
static void lagging_followers(bool tcp)
{
    struct rcluster c;
    rc_init(&c, 3, tcp, true);
    c.snapshot_threshold = 50;
    c.trailing = 5;
    rc_start_all(&c, WAIT_MS);
    /* A follower goes away and comes back, again and again, and each time the leader
     * streams more commands while it catches up. Leadership may move (this is about
     * storage, not elections): the verdict is that every node converges, none failed. */
    int cycles = rc_under_valgrind() ? 2 : 4;
    for (int k = 0; k < cycles; k++) {
        uint64_t L = rc_wait_leader(&c, WAIT_MS);
        CHECK(L != 0);
        if (L == 0) {
            break;
        }
        uint64_t F = L == 1 ? 2 : 1;
        struct rc_pipe p;
        rc_stop(&c, F);
        rc_pipeline(c.nodes[L], 1000, 1024, 0, 60000, &p);
        CHECK(rc_restart(&c, F) == CRAFT_OK);
        rc_pipeline(c.nodes[L], 1000, 1024, 0, 60000, &p);
    }
    CHECK(rc_apply(&c, 1, WAIT_MS) == CRAFT_OK);
    uint64_t L = rc_wait_leader(&c, WAIT_MS);
    uint64_t total = L != 0 ? counter_total(&c.fsms[L]) : 0;
    int failed = 0;
    struct craft_stats st;
    for (uint64_t i = 1; i <= 3; i++) {
        craft_stats(c.nodes[i], &st);
        if (st.failed != 0) {
            printf("lagging_followers: node %" PRIu64 " failed: %s\n", i,
                   craft_strerror(st.failed));
            failed++;
        }
    }
    CHECK(failed == 0);
    CHECK(total > 0);
    bool all = failed != 0 || rc_wait_total_live(&c, total, WAIT_MS);
    if (!all) {
        rc_dump(&c, "lagging_followers: the nodes do not converge");
    }
    CHECK(all);
    rc_destroy(&c);
}

RC_CASES_MEM_TCP(lagging_followers)

/* The same, made deterministic: a follower's loop is held (its observer blocks) while the
 * leader streams appends to it, snapshots, compacts its log and, the follower silent,
 * falls back to sending it that snapshot. Released, the follower steps the appends (not
 * yet on its disk) and the snapshot, which its log now holds, in one round. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool armed, holding, open;
};

static void gate_observer(void *ctx, const struct craft_event *ev)
{
    struct gate *g = ctx;
    if (ev->type != CRAFT_EVENT_PEER_ADDED) {
        return;
    }
    pthread_mutex_lock(&g->mu);
    if (g->armed) {
        g->armed = false;
        g->holding = true;
        pthread_cond_broadcast(&g->cv);
        while (!g->open) {
            pthread_cond_wait(&g->cv, &g->mu);
        }
        g->holding = false;
    }
    pthread_mutex_unlock(&g->mu);
}

static void install_over_unwritten_appends(bool disk)
{
    static struct gate g[RC_NODES_MAX + 1];
    struct rcluster c;
    rc_init(&c, 3, false, disk);
    c.trailing = 5;
    c.observer = gate_observer;
    for (int i = 0; i <= RC_NODES_MAX; i++) {
        pthread_mutex_init(&g[i].mu, NULL);
        pthread_cond_init(&g[i].cv, NULL);
        g[i].armed = g[i].holding = g[i].open = false;
        c.observer_ctx[i] = &g[i];
    }
    uint64_t L = rc_start_all(&c, WAIT_MS);
    if (L != 0) {
        uint64_t F = L == 1 ? 2 : 1;
        rc_pipeline_ok(c.nodes[L], 100, 256, 0);
        CHECK(rc_wait_total_live(&c, 100, WAIT_MS));
        /* Hold F's loop at the event of a new member (node 4, never started). */
        pthread_mutex_lock(&g[F].mu);
        g[F].armed = true;
        pthread_mutex_unlock(&g[F].mu);
        CHECK(rc_wait_release(craft_add_nonvoter(c.nodes[L], 4, NULL, 0), WAIT_MS, NULL) ==
              CRAFT_OK);
        bool held = false;
        pthread_mutex_lock(&g[F].mu);
        uint64_t end = rc_mono_ms() + WAIT_MS;
        while (!g[F].holding && rc_mono_ms() < end) {
            pthread_mutex_unlock(&g[F].mu);
            usleep(1000);
            pthread_mutex_lock(&g[F].mu);
        }
        held = g[F].holding;
        pthread_mutex_unlock(&g[F].mu);
        CHECK(held);
        /* Appends F cannot answer; a snapshot; the leader gives up on appends for F. */
        rc_pipeline_ok(c.nodes[L], 1000, 256, 100);
        CHECK(rc_wait_release(craft_snapshot(c.nodes[L]), WAIT_MS, NULL) == CRAFT_OK);
        bool snapshot_sent = false;
        end = rc_mono_ms() + WAIT_MS;
        while (!snapshot_sent && rc_mono_ms() < end) {
            struct craft_stats st;
            craft_stats(c.nodes[L], &st);
            for (size_t k = 0; k < st.n_peers; k++) {
                snapshot_sent = snapshot_sent || (st.peers[k].id == F && st.peers[k].state == 3);
            }
            usleep(2000);
        }
        CHECK(snapshot_sent);
        pthread_mutex_lock(&g[F].mu);
        g[F].open = true;
        pthread_cond_broadcast(&g[F].cv);
        pthread_mutex_unlock(&g[F].mu);
        /* F installs the snapshot, then follows new commands. */
        CHECK(rc_apply(&c, 1, WAIT_MS) == CRAFT_OK);
        struct craft_stats st;
        uint64_t end2 = rc_mono_ms() + WAIT_MS;
        bool caught = false;
        do {
            usleep(5000);
            craft_stats(c.nodes[F], &st);
            caught = counter_view(&c.fsms[F]).total == 1101;
        } while (!caught && st.failed == 0 && rc_mono_ms() < end2);
        if (st.failed != 0) {
            printf("install_over_unwritten_appends: node %" PRIu64 " failed: %s\n", F,
                   craft_strerror(st.failed));
        }
        CHECK(st.failed == 0);
        CHECK(caught);
        CHECK(st.snapshots_installed >= 1);
    }
    rc_destroy(&c);
    for (int i = 0; i <= RC_NODES_MAX; i++) {
        pthread_mutex_destroy(&g[i].mu);
        pthread_cond_destroy(&g[i].cv);
    }
}

static void test_install_over_unwritten_appends_wal(void)
{
    install_over_unwritten_appends(true);
}
static void test_install_over_unwritten_appends_memstore(void)
{
    install_over_unwritten_appends(false);
}

/* ---- a corrupt WAL refuses to open and stays as it was ---- */

static bool read_file(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return false;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(size > 0 ? (size_t)size : 1);
    *len = *buf != NULL && size > 0 ? fread(*buf, 1, (size_t)size, f) : 0;
    fclose(f);
    return *buf != NULL && *len == (size_t)size;
}

/* The one WAL segment in dir (its name in name). */
static bool find_segment(const char *dir, char *name, size_t cap)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return false;
    }
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".wal") == 0) {
            snprintf(name, cap, "%s", e->d_name);
            found++;
        }
    }
    closedir(d);
    return found == 1;
}

/* Offsets of the WAL records in a segment: 32-byte segment header, then records of a
 * 32-byte header (magic, ..., payload length u32 LE at 8) and the payload padded to 8. */
static size_t record_offsets(const uint8_t *buf, size_t len, size_t *offs, size_t cap)
{
    size_t n = 0, off = 32;
    while (n < cap && off + 32 <= len && memcmp(buf + off, buf + 32, 4) == 0) {
        uint32_t plen = (uint32_t)buf[off + 8] | (uint32_t)buf[off + 9] << 8 |
                        (uint32_t)buf[off + 10] << 16 | (uint32_t)buf[off + 11] << 24;
        offs[n++] = off;
        off += 32 + (((size_t)plen + 7) & ~(size_t)7);
    }
    return n;
}

static void corrupt_wal(bool tcp)
{
    struct rcluster c;
    uint64_t L = rc_start3(&c, tcp, true);
    if (L != 0) {
        uint64_t F = L == 1 ? 2 : 1;
        rc_pipeline_ok(c.nodes[L], 300, 256, 0);
        CHECK(rc_wait_total_live(&c, 300, WAIT_MS));
        rc_stop(&c, F);
        char dir[512], name[256], path[800];
        rc_node_dir(&c, F, dir, sizeof dir);
        strcat(dir, "/wal");
        CHECK(find_segment(dir, name, sizeof name));
        snprintf(path, sizeof path, "%s/%s", dir, name);
        uint8_t *before = NULL, *after = NULL;
        size_t len = 0, len2 = 0;
        CHECK(read_file(path, &before, &len));
        static size_t offs[4096];
        size_t n = before != NULL ? record_offsets(before, len, offs, 4096) : 0;
        CHECK(n >= 300);
        if (n >= 300) {
            /* A bit flip in the term of a record in the middle: valid records follow it,
             * so it cannot pass for a torn tail. */
            size_t at = offs[n / 2] + 16;
            before[at] ^= 0x40;
            int fd = open(path, O_WRONLY);
            CHECK(fd >= 0 && pwrite(fd, before + at, 1, (off_t)at) == 1);
            if (fd >= 0) {
                close(fd);
            }
            char err[512] = "";
            CHECK(rc_start_err(&c, F, false, err, sizeof err) == CRAFT_ECORRUPT);
            CHECK(c.nodes[F] == NULL);
            if (strstr(err, name) == NULL) {
                printf("corrupt WAL: the error does not name %s: \"%s\"\n", name, err);
            }
            CHECK(strstr(err, name) != NULL);
            /* Nothing was repaired, cut or zeroed. */
            CHECK(read_file(path, &after, &len2));
            CHECK(len2 == len && after != NULL && memcmp(before, after, len) == 0);
            /* Again: same refusal (the first attempt changed nothing). */
            CHECK(rc_start_err(&c, F, false, err, sizeof err) == CRAFT_ECORRUPT);
            free(after);
            after = NULL;
            CHECK(read_file(path, &after, &len2));
            CHECK(len2 == len && after != NULL && memcmp(before, after, len) == 0);
        }
        free(before);
        free(after);
        /* The two others go on. */
        CHECK(rc_apply(&c, 1, WAIT_MS) == CRAFT_OK);
        CHECK(rc_wait_total_live(&c, 301, WAIT_MS));
    }
    rc_destroy(&c);
}

RC_CASES_MEM_TCP(corrupt_wal)

/* ---- a partitioned leader ---- */

static void test_partitioned_leader(void)
{
    struct rcluster c;
    uint64_t L = rc_start3(&c, false, false);
    if (L != 0) {
        rc_pipeline_ok(c.nodes[L], 100, 256, 0);
        CHECK(rc_wait_total_live(&c, 100, WAIT_MS));
        /* Cut the leader off; what it takes now cannot commit. */
        for (uint64_t i = 1; i <= 3; i++) {
            if (i != L) {
                craft_mem_net_set_link(c.net, L, i, false);
            }
        }
        uint64_t one = 1;
        enum { K = 50 };
        struct craft_future *fs[K];
        for (int i = 0; i < K; i++) {
            fs[i] = craft_apply(c.nodes[L], &one, 8, 1000);
        }
        /* The majority elects a leader of its own and commits. */
        uint64_t L2 = 0;
        uint64_t end = rc_mono_ms() + WAIT_MS;
        while (L2 == 0 && rc_mono_ms() < end) {
            for (uint64_t i = 1; i <= 3; i++) {
                if (i != L && craft_state(c.nodes[i]) == CRAFT_LEADER) {
                    L2 = i;
                }
            }
            usleep(5000);
        }
        CHECK(L2 != 0);
        if (L2 != 0) {
            uint64_t delta = 1000;
            CHECK(rc_wait_release(craft_apply(c.nodes[L2], &delta, 8, 1000), WAIT_MS, NULL) ==
                  CRAFT_OK);
        }
        /* The old leader steps down (check-quorum) and, once healed, follows: its
         * proposals were overwritten, and their futures say so. */
        for (uint64_t i = 1; i <= 3; i++) {
            if (i != L) {
                craft_mem_net_set_link(c.net, L, i, true);
            }
        }
        CHECK(rc_wait_leader(&c, WAIT_MS) != 0);
        CHECK(rc_wait_total_live(&c, 1000 + 100, WAIT_MS));
        /* Healed and following: its log lost those entries to the new leader's, so every
         * one of their futures must complete, none applied. One bound for all of them. */
        uint64_t end2 = rc_mono_ms() + 10000;
        int pending = 0, bad = 0;
        for (int i = 0; i < K; i++) {
            uint64_t now = rc_mono_ms();
            int rc = craft_future_wait(fs[i], now < end2 ? (int64_t)(end2 - now) : 0);
            if (rc == CRAFT_ETIMEOUT) {
                pending++;
            } else if (rc != CRAFT_ESTALE && rc != CRAFT_ENOTLEADER) {
                bad++;
            }
            craft_future_release(fs[i]);
        }
        if (pending != 0) {
            printf("partitioned_leader: %d of %d futures of the deposed leader never "
                   "completed\n",
                   pending, K);
        }
        CHECK(pending == 0);
        CHECK(bad == 0);
    }
    rc_destroy(&c);
}

/* ---- shutdown with work in flight ---- */

static bool ok_or_shutdown(int rc)
{
    return rc == CRAFT_OK || rc == CRAFT_ESHUTDOWN;
}

static void shutdown_pending(bool tcp)
{
    struct rcluster c;
    uint64_t L = rc_start3(&c, tcp, tcp);
    if (L != 0) {
        uint64_t F = L == 1 ? 2 : 1;
        CHECK(rc_apply(&c, 1, WAIT_MS) == CRAFT_OK);
        enum { N = 3000 };
        static struct craft_future *fs[N + 16];
        uint64_t one = 1;
        size_t n = 0;
        for (int i = 0; i < N; i++) {
            struct craft_future *f = craft_apply(c.nodes[L], &one, 8, 1000);
            if (i % 3 == 0) {
                craft_future_release(f); /* dropped before it completes */
            } else {
                fs[n++] = f;
            }
            if (i % 500 == 0) {
                fs[n++] = craft_barrier(c.nodes[L]);
                fs[n++] = craft_read_index(c.nodes[F]);
            }
        }
        fs[n++] = craft_read_index(c.nodes[L]);
        fs[n++] = craft_verify_leader(c.nodes[L]);
        fs[n++] = craft_snapshot(c.nodes[L]);
        fs[n++] = craft_snapshot(c.nodes[L]);
        struct craft_future *dropped = craft_snapshot(c.nodes[F]);
        craft_future_release(dropped);
        /* The leader first, then the others, with all of that in flight. */
        rc_stop(&c, L);
        for (uint64_t i = 1; i <= 3; i++) {
            if (c.nodes[i] != NULL) {
                rc_stop(&c, i);
            }
        }
        size_t ok = 0, shut = 0, bad = 0;
        for (size_t i = 0; i < n; i++) {
            /* Everything completed during destroy: no waiting needed. */
            CHECK(craft_future_done(fs[i]));
            int rc = craft_future_wait(fs[i], WAIT_MS);
            if (!ok_or_shutdown(rc)) {
                if (bad++ == 0) {
                    printf("shutdown: future %zu completed with %s\n", i, craft_strerror(rc));
                }
            }
            ok += rc == CRAFT_OK;
            shut += rc == CRAFT_ESHUTDOWN;
            craft_future_release(fs[i]);
        }
        CHECK(bad == 0);
        CHECK(ok + shut == n);
    }
    rc_destroy(&c);
}

RC_CASES_MEM_TCP(shutdown_pending)

/* A future waited on by another thread while its node is destroyed: the waiter wakes. */
struct waiter {
    struct craft_future *f;
    int rc;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    w->rc = craft_future_wait(w->f, -1);
    return NULL;
}

static void test_shutdown_wakes_waiters(void)
{
    struct rcluster c;
    uint64_t L = rc_start3(&c, false, false);
    if (L != 0) {
        CHECK(rc_apply(&c, 1, WAIT_MS) == CRAFT_OK);
        /* Cut off, the leader can commit nothing and confirm nothing: its work waits. */
        for (uint64_t i = 1; i <= 3; i++) {
            if (i != L) {
                craft_mem_net_set_link(c.net, L, i, false);
            }
        }
        struct waiter w[3];
        pthread_t th[3];
        uint64_t one = 1;
        w[0].f = craft_apply(c.nodes[L], &one, 8, 1000);
        w[1].f = craft_read_index(c.nodes[L]);
        w[2].f = craft_barrier(c.nodes[L]);
        for (int i = 0; i < 3; i++) {
            w[i].rc = -12345;
            CHECK(pthread_create(&th[i], NULL, waiter_main, &w[i]) == 0);
        }
        usleep(20000);
        rc_stop(&c, L);
        for (int i = 0; i < 3; i++) {
            pthread_join(th[i], NULL);
            craft_future_release(w[i].f);
        }
        /* The command never committed; the reads either saw the leader step down first
         * (check-quorum) or were stopped. */
        CHECK(w[0].rc == CRAFT_ESHUTDOWN);
        CHECK(w[1].rc == CRAFT_ESHUTDOWN || w[1].rc == CRAFT_ENOTLEADER);
        CHECK(w[2].rc == CRAFT_ESHUTDOWN || w[2].rc == CRAFT_ENOTLEADER);
    }
    rc_destroy(&c);
}

int main(void)
{
    RC_RUN_MEM_TCP(kill_leader);
    RC_RUN_MEM_TCP(restart_all);
    RC_RUN_MEM_TCP(snapshot_catch_up);
    run_case("snapshot_catch_up_tcp_wiped", test_snapshot_catch_up_tcp_wiped);
    run_case("snapshot_catch_up_memstore", test_snapshot_catch_up_memstore);
    RC_RUN_MEM_TCP(lagging_followers);
    run_case("install_over_unwritten_appends_wal", test_install_over_unwritten_appends_wal);
    run_case("install_over_unwritten_appends_memstore",
             test_install_over_unwritten_appends_memstore);
    RC_RUN_MEM_TCP(corrupt_wal);
    run_case("partitioned_leader", test_partitioned_leader);
    RC_RUN_MEM_TCP(shutdown_pending);
    run_case("shutdown_wakes_waiters", test_shutdown_wakes_waiters);
    return unit_finish();
}
