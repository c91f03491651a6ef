/* Node lifetime: create (validate, open and recover storage, start transport and threads)
 * and destroy (stop, flush, join, close). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "runtime/rt.h"
#include "transport/tcp_transport.h"

void rt_loop_ports(struct craft_driver_ports *p, struct craft_node *n);

static void core_config(const struct craft_config *c, struct craft_core_config *core)
{
    craft_core_config_default(core, c->id);
    core->seed = c->seed;
    core->heartbeat_ms = c->heartbeat_ms;
    core->election_timeout_ms = c->election_timeout_ms;
    core->pre_vote = c->pre_vote;
    core->check_quorum = c->check_quorum;
    core->inflight_msgs_max = c->inflight_msgs_max;
    core->append_bytes_max = c->append_bytes_max;
    core->entry_bytes_max = c->entry_bytes_max + 1; /* the tag byte */
    core->snapshot_chunk_bytes_max = c->snapshot_chunk_bytes_max;
    core->clock_drift_bound_ms = c->clock_drift_bound_ms;
}

static void transport_log(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "craft %s\n", line);
}

/* The inbox's notify with a driven transport: the loop sleeps in the transport's poll. */
static void wake_transport(void *ctx)
{
    craft_tcp_transport_wake(ctx);
}

static int start_transport(struct craft_node *n, char *errbuf, size_t cap)
{
    if (n->cfg.transport == CRAFT_TRANSPORT_MEM) {
        n->transport = rt_mem_net_attach(n->cfg.mem_net, n->cfg.id, rt_loop_recv, n);
        if (n->transport == NULL) {
            snprintf(errbuf, cap, "node %" PRIu64 " is already on the in-memory network",
                     n->cfg.id);
            return CRAFT_EINVAL;
        }
        return CRAFT_OK;
    }
    struct craft_peer_addr peers[2 * CRAFT_CONF_NODES_MAX];
    size_t np = 0;
    for (size_t i = 0; i < n->loop_book.n; i++) {
        const struct craft_server *s = &n->loop_book.s[i];
        if (s->id == n->cfg.id) {
            continue;
        }
        peers[np].id = s->id;
        if (!rt_addr_split(s->addr, peers[np].host, sizeof peers[np].host, &peers[np].port)) {
            continue; /* an address we cannot use: learn a better one later */
        }
        np++;
    }
    char host[CRAFT_ADDR_BYTES_MAX];
    uint16_t port;
    if (!rt_addr_split(n->cfg.listen_addr, host, sizeof host, &port)) {
        snprintf(errbuf, cap, "invalid configuration: listen_addr");
        return CRAFT_EINVAL;
    }
    struct craft_tcp_config tc = {
        .cluster_id = n->cfg.cluster_id,
        .self_id = n->cfg.id,
        .peers = peers,
        .n_peers = np,
        .listen_host = host,
        .listen_port = port,
        .frame_bytes_max = (uint32_t)(n->cfg.append_bytes_max + n->cfg.entry_bytes_max +
                                      n->cfg.snapshot_chunk_bytes_max + (1u << 20)),
        .seed = n->cfg.seed,
        .recv = rt_loop_recv_direct,
        .recv_ctx = n,
        .log = transport_log,
        .driven = true, /* the loop thread runs it: no hand-off per message */
    };
    int err;
    n->transport = craft_tcp_transport_create(&tc, &err);
    if (n->transport == NULL) {
        snprintf(errbuf, cap, "cannot listen on %s: %s", n->cfg.listen_addr,
                 craft_strerror(err));
        return err;
    }
    n->net_driven = true;
    n->inbox.notify = wake_transport;
    n->inbox.notify_ctx = n->transport;
    return CRAFT_OK;
}

static void node_free(struct craft_node *n)
{
    if (n->driver != NULL) {
        craft_driver_destroy(n->driver);
    }
    rt_storage_close(n);
    rt_queue_destroy(&n->inbox);
    rt_queue_destroy(&n->disk_q);
    rt_queue_destroy(&n->fsm_q);
    pthread_mutex_destroy(&n->pub_mu);
    free(n->data_dir);
    free(n);
}

int craft_node_create(const struct craft_config *cfg, const struct craft_fsm *fsm,
                      struct craft_node **out, char *errbuf, size_t errbuf_cap)
{
    char scratch[8];
    if (errbuf == NULL) {
        errbuf = scratch;
        errbuf_cap = sizeof scratch;
    }
    errbuf[0] = '\0';
    *out = NULL;
    const char *field = NULL;
    if (craft_config_validate(cfg, &field) != CRAFT_OK) {
        snprintf(errbuf, errbuf_cap, "invalid configuration: %s", field ? field : "?");
        return CRAFT_EINVAL;
    }
    if (fsm == NULL || fsm->apply == NULL ||
        (fsm->snapshot != NULL && (fsm->snapshot_write == NULL || fsm->restore == NULL))) {
        snprintf(errbuf, errbuf_cap, "invalid state machine: apply is required, and snapshot "
                                     "needs snapshot_write and restore");
        return CRAFT_EINVAL;
    }
    struct craft_node *n = calloc(1, sizeof *n);
    if (n == NULL) {
        snprintf(errbuf, errbuf_cap, "out of memory");
        return CRAFT_ENOMEM;
    }
    n->cfg = *cfg;
    n->fsm = *fsm;
    n->data_dir = cfg->data_dir ? strdup(cfg->data_dir) : NULL;
    n->cfg.data_dir = n->data_dir;
    rt_queue_init(&n->inbox, cfg->queue_max);
    rt_queue_init(&n->disk_q, 0);
    rt_queue_init(&n->fsm_q, 0);
    pthread_mutex_init(&n->pub_mu, NULL);
    int rc = rt_storage_open(n, errbuf, errbuf_cap);
    struct craft_core_restore restore;
    struct craft_wal_entries hold = {0};
    if (rc == CRAFT_OK) {
        rc = rt_storage_recover(n, &restore, &hold, errbuf, errbuf_cap);
    }
    if (rc == CRAFT_OK) {
        struct craft_core_config cc;
        core_config(&n->cfg, &cc);
        struct craft_driver_ports ports;
        rt_loop_ports(&ports, n);
        n->driver = craft_driver_create(&cc, &restore, &ports, rt_now_ms());
        if (n->driver == NULL) {
            snprintf(errbuf, errbuf_cap, "out of memory");
            rc = CRAFT_ENOMEM;
        }
    }
    craft_wal_entries_free(&hold);
    /* The caller's arrays are not kept: what they said is in the book and the log now. */
    n->cfg.peers = NULL;
    n->cfg.n_peers = 0;
    n->cfg.initial_servers = NULL;
    n->cfg.n_initial_servers = 0;
    if (rc == CRAFT_OK) {
        n->pub_book = n->loop_book;
        struct craft_core_status st;
        craft_core_status(craft_driver_core(n->driver), &st);
        n->last_role = st.role;
        n->last_conf = st.conf;
        atomic_store(&n->pub_role, (int)st.role);
        atomic_store(&n->pub_term, st.term);
        rc = start_transport(n, errbuf, errbuf_cap);
    }
    if (rc != CRAFT_OK) {
        node_free(n);
        return rc;
    }
    /* Every batch is acknowledged up to here: nothing was handed out yet. */
    if (pthread_create(&n->disk_thread, NULL, rt_disk_main, n) != 0 ||
        pthread_create(&n->fsm_thread, NULL, rt_fsm_main, n) != 0 ||
        pthread_create(&n->loop_thread, NULL, rt_loop_main, n) != 0) {
        CRAFT_UNREACHABLE(); /* TODO(limits): unwind partially started threads */
    }
    *out = n;
    return CRAFT_OK;
}

void craft_node_destroy(struct craft_node *n)
{
    if (n == NULL) {
        return;
    }
    atomic_store(&n->stopping, true);
    rt_queue_close(&n->inbox);
    pthread_join(n->loop_thread, NULL);
    rt_queue_close(&n->disk_q);
    pthread_join(n->disk_thread, NULL);
    rt_queue_close(&n->fsm_q);
    pthread_join(n->fsm_thread, NULL);
    /* After the threads that push to the inbox: its notify wakes the transport. */
    craft_transport_close(n->transport);
    /* Requests that arrived after the loop's last pass. */
    for (struct rt_item *it = rt_queue_take_all(&n->inbox, 0); it != NULL;) {
        struct rt_req *r = (struct rt_req *)it;
        it = it->next;
        if (r->f != NULL) {
            rt_future_complete(r->f, CRAFT_ESHUTDOWN, 0, NULL);
        }
        free(r->conf);
        free(r);
    }
    node_free(n);
}

uint16_t craft_node_port(struct craft_node *n)
{
    return n->cfg.transport == CRAFT_TRANSPORT_TCP ? craft_tcp_transport_port(n->transport) : 0;
}

uint64_t craft_leader(struct craft_node *n, char *addr, size_t cap)
{
    uint64_t id = atomic_load(&n->pub_leader);
    if (addr != NULL && cap > 0) {
        pthread_mutex_lock(&n->pub_mu);
        const char *a = id != CRAFT_NONE ? rt_book_get(&n->pub_book, id) : NULL;
        snprintf(addr, cap, "%s", a != NULL ? a : "");
        pthread_mutex_unlock(&n->pub_mu);
    }
    return id;
}

enum craft_role craft_state(struct craft_node *n)
{
    return (enum craft_role)atomic_load(&n->pub_role);
}
