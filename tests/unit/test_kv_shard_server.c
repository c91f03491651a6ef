/* A sharded craftkv (--shard-groups) run in this process: three servers hosting the shard
 * controller and three shard groups, one group owning every slot at first. Writers SET
 * keys through every server while the main thread grows the cluster to three groups, moves
 * a range and removes a group (CRAFT.SHARD); afterwards every acknowledged key must read
 * back with its value through every server, and the servers stop cleanly. Its purpose is
 * the sanitizers (TSan above all: the loop, the workers, the shard driver, the controller's
 * apply and the route publication all meet here), beside the black-box test of real
 * processes (tests/blackbox/craftkv_shard.sh). Waits use generous deadlines; nothing
 * asserts on how long anything took. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kv/resp.h"
#include "kv/server.h"
#include "unit.h"

#define N_NODES 3
#define N_WRITERS 2
#define KEYS_PER_WRITER 4000 /* at most: the writers stop once the changes are done */
#define WAIT_MS 60000u

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct node {
    char dir[256];
    struct craftkv_opts opts;
    struct craftkv_server *srv;
    pthread_t loop;
    volatile sig_atomic_t stop;
};

static char tmp_dir[] = "/tmp/test_kv_shard_server.XXXXXX";
static struct node nodes[N_NODES];

static void *loop_main(void *arg)
{
    struct node *n = arg;
    craftkv_server_run(n->srv, &n->stop);
    return NULL;
}

static void node_stop(int i)
{
    struct node *n = &nodes[i];
    if (!n->srv)
        return;
    craftkv_server_stop(n->srv);
    pthread_join(n->loop, NULL);
    craftkv_server_destroy(n->srv);
    n->srv = NULL;
}

static bool cluster_start(void)
{
    char err[512] = "";
    for (int attempt = 0; attempt < 10; attempt++) {
        int base = 20000 + rand() % (9000 - 200);
        bool ok = true;
        for (int i = 0; i < N_NODES; i++) {
            struct node *n = &nodes[i];
            memset(&n->opts, 0, sizeof n->opts);
            snprintf(n->dir, sizeof n->dir, "%s/a%d-n%d", tmp_dir, attempt, i + 1);
            if (mkdir(n->dir, 0700) != 0) {
                printf("mkdir %s: %s\n", n->dir, strerror(errno));
                return false;
            }
            n->opts.id = (uint64_t)i + 1;
            n->opts.data_dir = n->dir;
            n->opts.timeout_ms = 30000; /* a slot's wait never turns into TRYAGAIN here */
            n->opts.n_members = N_NODES;
            n->opts.shard_groups = 3;
            n->opts.shard_groups_initial = 1;
            n->opts.shard_handover_bytes = CRAFTKV_HANDOVER_BYTES_MIN; /* slots move in parts */
            for (int j = 0; j < N_NODES; j++) {
                struct craftkv_member *m = &n->opts.members[j];
                m->id = (uint64_t)j + 1;
                snprintf(m->client_addr, sizeof m->client_addr, "127.0.0.1:%d", base + j);
                snprintf(m->peer_addr, sizeof m->peer_addr, "127.0.0.1:%d", base + 100 + j);
            }
            memcpy(n->opts.listen_client, n->opts.members[i].client_addr, CRAFTKV_ADDR_MAX);
            memcpy(n->opts.listen_peer, n->opts.members[i].peer_addr, CRAFTKV_ADDR_MAX);
        }
        for (int i = 0; i < N_NODES && ok; i++) {
            ok = craftkv_server_start(&nodes[i].opts, &nodes[i].srv, err, sizeof err) == 0;
            if (ok && pthread_create(&nodes[i].loop, NULL, loop_main, &nodes[i]) != 0) {
                craftkv_server_destroy(nodes[i].srv);
                nodes[i].srv = NULL;
                ok = false;
            }
        }
        if (ok)
            return true;
        for (int i = 0; i < N_NODES; i++)
            node_stop(i);
    }
    printf("cannot start a cluster: %s\n", err);
    return false;
}

/* One command to node i with the server's own blocking client: the raw reply, or "" if
 * the node could not be reached. CRAFT.SHARD answers once the slots moved (up to 60 s). */
static void call(int i, struct craft_resp_buf *reply, size_t argc, const char *const *args)
{
    struct craft_resp_arg argv[8];
    for (size_t k = 0; k < argc; k++)
        argv[k] = (struct craft_resp_arg){args[k], strlen(args[k])};
    reply->len = 0;
    int fd = craftkv_client_connect(nodes[i].opts.listen_client, 90000, "");
    if (fd < 0)
        return;
    if (craftkv_client_call(fd, argc, argv, reply) != 0)
        reply->len = 0;
    close(fd);
}

static bool reply_is(const struct craft_resp_buf *r, const char *want)
{
    return r->len == strlen(want) && memcmp(r->data, want, r->len) == 0;
}

/* Waits until node i answers CLUSTER INFO with cluster_state:ok. */
static bool wait_cluster_ok(int i)
{
    struct craft_resp_buf r = {0};
    const char *cmd[] = {"CLUSTER", "INFO"};
    bool ok = false;
    for (uint64_t until = mono_ms() + WAIT_MS; !ok && mono_ms() < until; sleep_ms(100)) {
        call(i, &r, 2, cmd);
        ok = r.len > 0 && memmem(r.data, r.len, "cluster_state:ok", 16) != NULL;
    }
    craft_resp_buf_free(&r);
    return ok;
}

static atomic_bool changes_done;

struct writer {
    pthread_t thread;
    int id;
    int written; /* keys 0..written-1 were sent */
    bool acked[KEYS_PER_WRITER];
    int errors;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct craft_resp_buf r = {0};
    for (int k = 0; k < KEYS_PER_WRITER && !atomic_load(&changes_done); k++) {
        w->written = k + 1;
        char key[32], val[32];
        snprintf(key, sizeof key, "w%d:%d", w->id, k);
        snprintf(val, sizeof val, "%d", k * 7);
        const char *cmd[] = {"SET", key, val};
        call(k % N_NODES, &r, 3, cmd);
        w->acked[k] = reply_is(&r, "+OK\r\n");
        w->errors += !w->acked[k];
        if (!w->acked[k] && w->errors <= 5)
            printf("  SET %s -> %.*s\n", key, (int)(r.len > 120 ? 120 : r.len), r.data);
    }
    craft_resp_buf_free(&r);
    return NULL;
}

/* The sum over the nodes of an INFO cluster field. */
static uint64_t info_sum(const char *field)
{
    struct craft_resp_buf r = {0};
    const char *cmd[] = {"INFO", "cluster"};
    uint64_t sum = 0;
    for (int i = 0; i < N_NODES; i++) {
        call(i, &r, 2, cmd);
        const char *p = r.len > 0 ? memmem(r.data, r.len, field, strlen(field)) : NULL;
        if (p && p + strlen(field) < r.data + r.len && p[strlen(field)] == ':')
            sum += strtoull(p + strlen(field) + 1, NULL, 10);
    }
    craft_resp_buf_free(&r);
    return sum;
}

#define PRELOAD_KEYS 400

static void grow_under_writers(void)
{
    CHECK(wait_cluster_ok(0));
    /* 400 keys of 100 bytes in group 1 first: each hand-over below is several entries of
     * at most CRAFTKV_HANDOVER_BYTES_MIN (the slot set alone is 2 KiB of them). */
    struct craft_resp_buf r = {0};
    char val[101];
    memset(val, 'p', 100);
    val[100] = 0;
    int preload_errors = 0;
    for (int k = 0; k < PRELOAD_KEYS; k++) {
        char key[32];
        snprintf(key, sizeof key, "pre:%d", k);
        const char *cmd[] = {"SET", key, val};
        call(k % N_NODES, &r, 3, cmd);
        preload_errors += !reply_is(&r, "+OK\r\n");
    }
    CHECK(preload_errors == 0);
    struct writer writers[N_WRITERS] = {0};
    for (int i = 0; i < N_WRITERS; i++) {
        writers[i].id = i;
        CHECK(pthread_create(&writers[i].thread, NULL, writer_main, &writers[i]) == 0);
    }
    const char *join[] = {"CRAFT.SHARD", "JOIN", "2", "3"};
    call(1, &r, 4, join);
    CHECK(reply_is(&r, "+OK\r\n"));
    const char *move[] = {"CRAFT.SHARD", "MOVE", "0", "2000", "3"};
    call(2, &r, 5, move);
    CHECK(reply_is(&r, "+OK\r\n"));
    const char *leave[] = {"CRAFT.SHARD", "LEAVE", "1"};
    call(0, &r, 3, leave);
    CHECK(reply_is(&r, "+OK\r\n"));
    atomic_store(&changes_done, true); /* the writers wrote through all three changes */
    for (int i = 0; i < N_WRITERS; i++)
        pthread_join(writers[i].thread, NULL);
    /* Every SET was acknowledged, and reads back with its value through every node. */
    int written = 0, wrong = 0;
    for (int i = 0; i < N_WRITERS; i++) {
        CHECK(writers[i].errors == 0);
        written += writers[i].written;
        for (int k = 0; k < writers[i].written; k++) {
            char key[32], want[64];
            snprintf(key, sizeof key, "w%d:%d", i, k);
            int v = k * 7;
            snprintf(want, sizeof want, "$%d\r\n%d\r\n",
                     v >= 10000 ? 5 : v >= 1000 ? 4 : v >= 100 ? 3 : v >= 10 ? 2 : 1, v);
            const char *get[] = {"GET", key};
            for (int n = 0; n < N_NODES; n++) {
                call(n, &r, 2, get);
                wrong += !reply_is(&r, want);
            }
        }
    }
    char want[128];
    snprintf(want, sizeof want, "$100\r\n%s\r\n", val);
    for (int k = 0; k < PRELOAD_KEYS; k++) {
        char key[32];
        snprintf(key, sizeof key, "pre:%d", k);
        const char *get[] = {"GET", key};
        call(k % N_NODES, &r, 2, get);
        wrong += !reply_is(&r, want);
    }
    /* At most six hand-overs (JOIN: 1 to 2 and 3; MOVE; LEAVE: 1 to 2 and 3), in more
     * entries than that: parts. */
    uint64_t entries = info_sum("craft_handover_entries");
    uint64_t bytes = info_sum("craft_handover_bytes");
    printf("  %d SETs written during the changes, each read through %d nodes; %" PRIu64
           " hand-over entries, %" PRIu64 " bytes\n",
           written, N_NODES, entries, bytes);
    CHECK(written > 0);
    CHECK(wrong == 0);
    CHECK(entries > 6 && bytes > (uint64_t)PRELOAD_KEYS * 100);
    craft_resp_buf_free(&r);
}

int main(void)
{
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(tmp_dir)) {
        printf("mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    if (!cluster_start())
        return 1;
    run_case("grow_under_writers", grow_under_writers);
    for (int i = 0; i < N_NODES; i++)
        node_stop(i);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        printf("could not remove %s\n", tmp_dir);
    return unit_finish();
}
