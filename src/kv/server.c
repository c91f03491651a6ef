/* craftkv: the server's lifetime and its threads (server.h).
 *
 * Threads: the event loop (the caller of craftkv_server_run) does all the work of clients'
 * reads and writes (server_conn.c, server_write.c, server_read.c, server_fwd.c); a few
 * workers run the admin commands, which block (server_admin.c); the ticker proposes the
 * leader's clock; the keeper records members' client addresses. Module calls go one way:
 * this file -> server_conn.c -> the pipelines -> server_fwd.c / server_queue.c -> libcraft;
 * what completes elsewhere comes back through the queues (server_queue.c), never as a
 * call into the module that started it. */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "kv/kv_store.h"
#include "kv/server_admin.h"
#include "kv/server_internal.h"

/* The loop wakes at least this often (stop flag, the forwarding watchdog). */
#define LOOP_WAIT_MS 200
/* Admin commands are the only ones that block a thread, and they are rare. */
#define CRAFTKV_WORKERS_DEFAULT 4

static void *worker_main(void *arg)
{
    pthread_setname_np(pthread_self(), "kv-worker"); /* top -H, perf, gdb */
    struct craftkv_server *s = arg;
    struct craftkv_task *t;
    while ((t = craftkv_todo_pop(s)) != NULL) {
        CRAFT_ASSERT(t->stage == CRAFTKV_STAGE_WORKER && t->chain == NULL);
        if (t->keyless)
            craftkv_keyless(s, t, craftkv_mono_ms() + s->opts.timeout_ms);
        else
            t->def->admin(s, t, craftkv_mono_ms() + s->opts.timeout_ms);
        t->answered = true;
        t->stage = CRAFTKV_STAGE_DONE;
        craftkv_done_push(s, t);
    }
    return NULL;
}

/* The leader's tick: a NOOP about once a second advances logical time on an idle cluster
 * (keys expire for readers) and sweeps expired keys and sessions (kv.md). */
static void *ticker_main(void *arg)
{
    pthread_setname_np(pthread_self(), "kv-ticker"); /* top -H, perf, gdb */
    struct craftkv_server *s = arg;
    while (!s->stopping) {
        for (int i = 0; i < 10 && !s->stopping; i++) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
        for (size_t i = 0; i < s->n_groups && !s->stopping; i++) {
            struct craftkv_group *g = &s->groups[i];
            if (craft_state(g->node) != CRAFT_LEADER)
                continue;
            struct craft_kv_cmd c = {.op = CRAFT_KV_OP_NOOP, .now_ms = craftkv_now_ms()};
            uint8_t buf[64];
            size_t len;
            if (craft_kv_cmd_encode(&c, buf, sizeof buf, &len) != 0)
                continue;
            struct craft_future *f = craft_apply(g->node, buf, (uint32_t)len, 100);
            if (f)
                craft_future_release(f); /* its outcome does not matter */
        }
    }
    return NULL;
}

void craftkv_server_run(struct craftkv_server *s, volatile sig_atomic_t *stop)
{
    struct epoll_event evs[128];
    while (!*stop && !atomic_load(&s->loop_stop)) {
        int wait = craftkv_write_wait_ms(s, craftkv_later_wait_ms(s, LOOP_WAIT_MS));
        int n = epoll_wait(s->epfd, evs, 128, wait);
        /* Everything this round proposes or reads reaches each group's node in one
         * hand-off (one wake-up of the raft loop per group, not one per command). */
        for (size_t g = 0; g < s->n_groups; g++)
            craft_batch_begin(s->groups[g].node);
        bool woken = false;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &s->listen_fd)
                craftkv_conn_accept(s);
            else if (p == &s->evfd)
                woken = true; /* the done queue: taken below */
            else if (*(const uint8_t *)p == CRAFTKV_EP_FWD)
                craftkv_fwd_event(p, evs[i].events);
            else
                craftkv_conn_event(s, p, evs[i].events);
        }
        /* A read round may also end without a wake-up of its own (none was issued because
         * its request could not be allocated): poll it every round. */
        for (size_t g = 0; g < s->n_groups; g++) {
            craftkv_read_poll(&s->groups[g]);
            craftkv_fwd_tick(&s->groups[g]);
        }
        craftkv_conn_resume(s, woken); /* every batch that moved this round, in one pass */
        for (size_t g = 0; g < s->n_groups; g++)
            craft_batch_end(s->groups[g].node);
        craftkv_conn_sweep(s);
    }
}

void craftkv_server_stop(struct craftkv_server *s)
{
    atomic_store(&s->loop_stop, true);
    craftkv_done_push(s, NULL); /* wakes the loop */
}

/* what: "client" or "metrics", for the error texts. */
static int listen_on(const char *addr, const char *what, char *err, size_t cap)
{
    if (!strchr(addr, ':')) {
        snprintf(err, cap, "bad %s address '%s' (want HOST:PORT)", what, addr);
        return -1;
    }
    struct addrinfo *res;
    int gai = craftkv_addr_resolve(addr, AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV, &res);
    if (gai != 0) {
        snprintf(err, cap, "bad %s address '%s': %s", what, addr, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 511) != 0) {
        snprintf(err, cap, "cannot listen for %s on %s: %s",
                 strcmp(what, "client") == 0 ? "clients" : what, addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void observer(void *ctx, const struct craft_event *ev)
{
    (void)ctx;
    if (ev->type == CRAFT_EVENT_FAILED)
        fprintf(stderr, "craftkv: the node stopped: %s\n", craft_strerror(ev->err));
}

/* The unsharded server's one group: its LMDB store, state machine and raft node. */
static int single_start(struct craftkv_server *s, char *err, size_t cap)
{
    const struct craftkv_opts *o = &s->opts;
    struct craftkv_group *g0 = &s->groups[0];
    char path[4200];
    snprintf(path, sizeof path, "%s/kv", s->data_dir);
    /* No fsync per applied batch: the raft log is the durable copy and every start restores
     * the newest snapshot and replays the log (kv_store.h: no_sync). */
    struct craft_kv_lmdb_config lc = {.path = path, .no_sync = true};
    char e2[256] = "";
    int rc = craft_kv_store_lmdb_open(&lc, &g0->store, e2, sizeof e2);
    if (rc != 0) {
        snprintf(err, cap, "cannot open the store %s: %s", path, e2[0] ? e2 : craft_strerror(rc));
        return -1;
    }
    if (craft_kv_store_lmdb_discarded(g0->store))
        fprintf(stderr, "craftkv: %s held writes not yet synced when the machine went down: "
                        "dropped, rebuilding it from the raft snapshot and log\n", path);
    rc = craft_kv_sm_open(g0->store, NULL, &g0->sm);
    if (rc != 0) {
        snprintf(err, cap, "cannot open the state machine in %s: %s", path, craft_strerror(rc));
        return -1;
    }

    struct craft_server servers[CRAFTKV_NODES_MAX];
    for (size_t i = 0; i < o->n_members; i++) {
        servers[i] = (struct craft_server){.id = o->members[i].id, .voter = true};
        snprintf(servers[i].addr, sizeof servers[i].addr, "%s", o->members[i].peer_addr);
    }
    struct craft_config cfg;
    craft_config_default(&cfg, o->id);
    snprintf(path, sizeof path, "%s/raft", s->data_dir);
    cfg.data_dir = path;
    snprintf(cfg.listen_addr, sizeof cfg.listen_addr, "%s", o->listen_peer);
    cfg.peers = servers;
    cfg.n_peers = o->n_members;
    if (!o->join) { /* a joining node bootstraps nothing: the leader adds it */
        cfg.initial_servers = servers;
        cfg.n_initial_servers = o->n_members;
    }
    /* Recovery from a lost quorum: the checks first (server_recover.c), then the forced
     * configuration of the survivors, above the terms the others reported. */
    struct craft_server forced[CRAFTKV_NODES_MAX];
    if (o->n_force_survivors > 0) {
        struct craftkv_member sv[CRAFTKV_NODES_MAX];
        if (craftkv_recover_check(s, craft_kv_sm_applied(g0->sm), sv, &cfg.force_min_term, err,
                                  cap) != 0)
            return -1;
        for (size_t k = 0; k < o->n_force_survivors; k++) {
            forced[k] = (struct craft_server){.id = sv[k].id, .voter = true};
            snprintf(forced[k].addr, sizeof forced[k].addr, "%s", sv[k].peer_addr);
        }
        cfg.force_servers = forced;
        cfg.n_force_servers = o->n_force_survivors;
    }
    cfg.auto_promote = true; /* RAFT.ADDNODE's learners become voters once caught up */
    /* LMDB's apply is a few microseconds per command and never syncs (the Raft log is the
     * durable copy): on the raft loop it costs less than the hand-off to a thread. */
    cfg.apply_on_loop = true;
    cfg.observer = observer;
    /* A snapshot copies the whole keyspace, so craftkv takes them less often than craft's
     * default (8192 entries): 100 000 entries, as etcd does, unless told otherwise. The
     * byte threshold still bounds the log. */
    cfg.snapshot_threshold_entries = o->snapshot_entries ? o->snapshot_entries : 100000;
    if (o->snapshot_bytes)
        cfg.snapshot_threshold_bytes = o->snapshot_bytes;
    if (o->trailing_entries)
        cfg.trailing_entries = o->trailing_entries;
    struct craft_fsm fsm;
    craft_kv_fsm_init(&fsm, g0->sm);
    rc = craft_node_create(&cfg, &fsm, &g0->node, e2, sizeof e2);
    if (rc != 0) {
        snprintf(err, cap, "cannot start the raft node: %s", e2[0] ? e2 : craft_strerror(rc));
        return -1;
    }
    if (o->n_force_survivors > 0) {
        struct craft_stats *st = malloc(sizeof *st);
        if (st) {
            craft_stats(g0->node, st);
            fprintf(stderr, "craftkv: node %" PRIu64 ": recovery from a lost quorum: the "
                            "configuration of %zu survivor(s) forced at log index %" PRIu64
                            ", term %" PRIu64 " (the log records it)\n",
                    o->id, o->n_force_survivors, st->conf_index, st->term);
            free(st);
        }
    }
    return 0;
}

int craftkv_server_start(const struct craftkv_opts *o, struct craftkv_server **out, char *err,
                         size_t cap)
{
    struct craftkv_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    s->opts = *o;
    snprintf(s->data_dir, sizeof s->data_dir, "%s", o->data_dir);
    s->opts.data_dir = s->data_dir;
    if (s->opts.timeout_ms == 0)
        s->opts.timeout_ms = 5000;
    if (s->opts.workers == 0)
        s->opts.workers = CRAFTKV_WORKERS_DEFAULT;
    s->listen_fd = s->epfd = s->evfd = s->metrics_fd = -1;
    if (o->shard_groups > 0 && o->n_force_survivors > 0) {
        snprintf(err, cap, "recovery from a lost quorum is not built for a sharded cluster");
        free(s);
        return -1;
    }
    if (o->shard_groups > CRAFTKV_SHARD_GROUPS_MAX) {
        snprintf(err, cap, "at most %d shard groups", CRAFTKV_SHARD_GROUPS_MAX);
        free(s);
        return -1;
    }
    if (o->shard_handover_bytes != 0 && (o->shard_handover_bytes < CRAFTKV_HANDOVER_BYTES_MIN ||
                                         o->shard_handover_bytes > CRAFTKV_HANDOVER_BYTES_MAX)) {
        snprintf(err, cap, "a hand-over entry holds %u to %u bytes",
                 CRAFTKV_HANDOVER_BYTES_MIN, CRAFTKV_HANDOVER_BYTES_MAX);
        free(s);
        return -1;
    }
    if (o->shard_handover_bytes == 0)
        s->opts.shard_handover_bytes = CRAFTKV_HANDOVER_BYTES_MAX;
    s->sharded = o->shard_groups > 0;
    if (s->sharded && (s->opts.shard_groups_initial == 0 ||
                       s->opts.shard_groups_initial > s->opts.shard_groups))
        s->opts.shard_groups_initial = s->opts.shard_groups;
    if (s->sharded && s->opts.shard_replicas == 0)
        s->opts.shard_replicas = o->n_members < 3 ? (uint32_t)o->n_members : 3;
    if (s->sharded && (s->opts.shard_replicas > o->n_members ||
                       s->opts.shard_replicas > CRAFTKV_SHARD_REPLICAS_MAX)) {
        snprintf(err, cap, "%u replicas of each shard group need as many members (%zu here)",
                 s->opts.shard_replicas, o->n_members);
        free(s);
        return -1;
    }
    if (s->sharded && (size_t)o->shard_groups * s->opts.shard_replicas < o->n_members) {
        snprintf(err, cap, "%u shard groups of %u replicas leave members of the %zu with no "
                           "group: more groups, or more replicas of each",
                 o->shard_groups, s->opts.shard_replicas, o->n_members);
        free(s);
        return -1;
    }
    /* Sharded: the groups placed here (sharding.md, "Placement"), in gid order. */
    for (uint64_t gid = 1; s->sharded && gid <= o->shard_groups; gid++)
        s->n_groups += craftkv_shard_hosts_here(&s->opts, gid);
    if (!s->sharded)
        s->n_groups = 1;
    s->groups = s->n_groups ? calloc(s->n_groups, sizeof *s->groups) : NULL;
    if (!s->groups) {
        snprintf(err, cap, s->n_groups ? "out of memory" : "no shard group is placed on this member");
        free(s);
        return -1;
    }
    for (uint64_t gid = s->sharded ? 1 : 0, i = 0; i < s->n_groups; gid++) {
        if (s->sharded && !craftkv_shard_hosts_here(&s->opts, gid))
            continue;
        struct craftkv_group *g = &s->groups[i];
        g->srv = s;
        g->index = i++;
        g->gid = gid;
        g->fwd = (struct craftkv_fwd){.ep_kind = CRAFTKV_EP_FWD, .grp = g, .fd = -1};
    }
    s->started_wall_ms = craftkv_now_ms();
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->route_mu, NULL);
    pthread_cond_init(&s->cv, NULL);

    s->listen_fd = listen_on(o->listen_client, "client", err, cap);
    if (s->listen_fd < 0)
        goto fail;
    int metrics_fd = -1;
    if (o->listen_metrics[0]) {
        metrics_fd = listen_on(o->listen_metrics, "metrics", err, cap);
        if (metrics_fd < 0)
            goto fail;
        s->metrics_fd = metrics_fd;
    }
    size_t n_cmds = 0;
    while (craftkv_cmd_at(n_cmds))
        n_cmds++;
    s->cmd_calls = calloc(n_cmds, sizeof *s->cmd_calls);
    if (!s->cmd_calls) {
        snprintf(err, cap, "out of memory");
        goto fail;
    }

    if ((s->sharded ? craftkv_shard_start(s, err, cap) : single_start(s, err, cap)) != 0)
        goto fail;

    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->epfd < 0 || s->evfd < 0) {
        snprintf(err, cap, "epoll/eventfd: %s", strerror(errno));
        goto fail;
    }
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &s->listen_fd};
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listen_fd, &e);
    e.data.ptr = &s->evfd;
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &e);

    /* One slot more: the member-table keeper (server_admin.c) is joined with the workers. */
    s->workers = calloc(s->opts.workers + 1, sizeof *s->workers);
    if (!s->workers) {
        snprintf(err, cap, "out of memory");
        goto fail;
    }
    for (; s->n_workers < s->opts.workers; s->n_workers++)
        if (pthread_create(&s->workers[s->n_workers], NULL, worker_main, s) != 0)
            break;
    if (s->n_workers == 0 || pthread_create(&s->ticker, NULL, ticker_main, s) != 0) {
        snprintf(err, cap, "cannot start threads");
        goto fail;
    }
    s->ticker_started = true;
    if (pthread_create(&s->workers[s->n_workers], NULL, craftkv_admin_main, s) != 0) {
        snprintf(err, cap, "cannot start threads");
        goto fail;
    }
    s->n_workers++;
    if (s->metrics_fd >= 0 && craftkv_metrics_start(s, s->metrics_fd) != 0) {
        snprintf(err, cap, "cannot start the metrics thread");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    craftkv_server_destroy(s);
    return -1;
}

void craftkv_server_destroy(struct craftkv_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    if (s->ticker_started)
        pthread_join(s->ticker, NULL);
    free(s->workers);
    craftkv_metrics_join(s); /* before the node: a scrape reads its stats */
    craftkv_shard_join(s);   /* the driver proposes to the groups */
    /* The node first: it completes every future, so the loop path's batches all land on
     * the done queue, then tasks never run or never returned, then every connection. */
    for (size_t i = 0; i < s->n_groups; i++) {
        struct craftkv_group *g = &s->groups[i];
        if (g->node)
            craft_node_destroy(g->node);
        g->node = NULL;
    }
    craftkv_shard_destroy(s); /* the controller and the host, after the groups */
    for (size_t i = 0; i < s->n_groups; i++) {
        craftkv_read_free(&s->groups[i]);
        craftkv_fwd_free(&s->groups[i]);
    }
    craftkv_queues_free(s);
    craftkv_conn_free_all(s);
    for (size_t i = 0; i < s->n_groups; i++) {
        struct craftkv_group *g = &s->groups[i];
        if (g->sm)
            craft_kv_sm_close(g->sm);
        if (g->store)
            g->store->ops->close(g->store);
    }
    free(s->groups);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->evfd >= 0)
        close(s->evfd);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->route_mu);
    pthread_cond_destroy(&s->cv);
    free(s->cmd_calls);
    free(s);
}
