/* A replicated counter: the smallest useful program on libcraft.
 *
 *   counter --id 1 --data-dir /tmp/c1 --cluster 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
 *
 * Start three (one per id). Each line typed on stdin ("add 5", "get") goes through Raft:
 * "add" on the leader applies a command, "get" does a linearizable read on any node. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "craft.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t total; /* the state machine's whole state */

static int apply(void *ctx, const struct craft_command *cmds, size_t n, void **results)
{
    (void)ctx;
    (void)results;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n; i++) {
        int64_t delta;
        if (cmds[i].len == sizeof delta) {
            memcpy(&delta, cmds[i].data, sizeof delta);
            total += delta;
        }
    }
    pthread_mutex_unlock(&mu);
    return 0;
}

static int snapshot(void *ctx, void **snap)
{
    (void)ctx;
    int64_t *copy = malloc(sizeof *copy);
    if (copy == NULL) {
        return CRAFT_ENOMEM;
    }
    pthread_mutex_lock(&mu);
    *copy = total;
    pthread_mutex_unlock(&mu);
    *snap = copy;
    return CRAFT_OK;
}

static int snapshot_write(void *ctx, void *snap, struct craft_sink *sink)
{
    (void)ctx;
    return craft_sink_write(sink, snap, sizeof(int64_t));
}

static void snapshot_release(void *ctx, void *snap)
{
    (void)ctx;
    free(snap);
}

static int restore(void *ctx, struct craft_source *src)
{
    (void)ctx;
    int64_t v;
    size_t n;
    int rc = craft_source_read(src, &v, sizeof v, &n);
    if (rc == CRAFT_OK && n != sizeof v) {
        rc = CRAFT_ECORRUPT;
    }
    if (rc == CRAFT_OK) {
        pthread_mutex_lock(&mu);
        total = v;
        pthread_mutex_unlock(&mu);
    }
    return rc;
}

/* Parses "1=127.0.0.1:7001,2=..." into servers; returns the count. */
static size_t parse_cluster(char *spec, struct craft_server *s, size_t cap)
{
    size_t n = 0;
    for (char *tok = strtok(spec, ","); tok != NULL && n < cap; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        if (eq == NULL) {
            return 0;
        }
        *eq = '\0';
        s[n] = (struct craft_server){.id = strtoull(tok, NULL, 10), .voter = true};
        snprintf(s[n].addr, sizeof s[n].addr, "%s", eq + 1);
        n++;
    }
    return n;
}

int main(int argc, char **argv)
{
    uint64_t id = 0;
    const char *dir = NULL;
    char *cluster = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--id") == 0) id = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--data-dir") == 0) dir = argv[i + 1];
        else if (strcmp(argv[i], "--cluster") == 0) cluster = argv[i + 1];
    }
    struct craft_server servers[CRAFT_CONF_NODES_MAX];
    size_t n = cluster ? parse_cluster(cluster, servers, CRAFT_CONF_NODES_MAX) : 0;
    if (id == 0 || dir == NULL || n == 0) {
        fprintf(stderr, "usage: counter --id N --data-dir DIR --cluster ID=HOST:PORT,...\n");
        return 2;
    }
    struct craft_config cfg;
    craft_config_default(&cfg, id);
    cfg.data_dir = dir;
    cfg.peers = servers;
    cfg.n_peers = n;
    cfg.initial_servers = servers; /* used only the first time, on an empty data dir */
    cfg.n_initial_servers = n;
    for (size_t i = 0; i < n; i++) {
        if (servers[i].id == id) {
            snprintf(cfg.listen_addr, sizeof cfg.listen_addr, "%s", servers[i].addr);
        }
    }
    struct craft_fsm fsm = {.apply = apply, .snapshot = snapshot, .snapshot_write = snapshot_write,
                            .snapshot_release = snapshot_release, .restore = restore};
    struct craft_node *node;
    char err[256];
    if (craft_node_create(&cfg, &fsm, &node, err, sizeof err) != CRAFT_OK) {
        fprintf(stderr, "counter: %s\n", err);
        return 1;
    }
    char line[128];
    while (fgets(line, sizeof line, stdin) != NULL) {
        int64_t delta;
        struct craft_future *f = NULL;
        if (sscanf(line, "add %" SCNd64, &delta) == 1) {
            f = craft_apply(node, &delta, sizeof delta, 1000);
        } else if (strncmp(line, "get", 3) == 0) {
            f = craft_read_index(node);
        } else {
            printf("commands: add N | get\n");
            continue;
        }
        int rc = craft_future_wait(f, 5000);
        craft_future_release(f);
        char leader[CRAFT_ADDR_BYTES_MAX];
        craft_leader(node, leader, sizeof leader);
        pthread_mutex_lock(&mu);
        if (rc == CRAFT_OK) {
            printf("counter = %" PRId64 "\n", total);
        } else {
            printf("error: %s (leader: %s)\n", craft_strerror(rc), leader[0] ? leader : "none");
        }
        pthread_mutex_unlock(&mu);
        fflush(stdout);
    }
    craft_node_destroy(node);
    return 0;
}
