/* Node (group) lifetime: open (validate, open and recover storage, make the driver), attach
 * to a host (its own one for craft_node_create), and destroy (detach, flush, join, close). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/assert.h"
#include "runtime/host_msg.h"
#include "runtime/rt.h"

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

static void node_free(struct craft_node *n)
{
    if (n->driver != NULL) {
        craft_driver_destroy(n->driver);
    }
    rt_storage_close(n);
    rt_queue_destroy(&n->inbox);
    rt_queue_destroy(&n->fsm_q);
    pthread_mutex_destroy(&n->pub_mu);
    free(n->data_dir);
    free(n);
}

/* A group's replica without threads: validated config, storage opened and recovered (in
 * host's shared log if it has one and cfg no data_dir; host NULL: a host of its own, made
 * after), the driver made. */
static int group_open(struct craft_host *host, const struct craft_config *cfg,
                      const struct craft_fsm *fsm, uint64_t group, struct craft_node **out,
                      char *errbuf, size_t errbuf_cap)
{
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
    n->group = group;
    n->host = host;
    n->disk_acc = SIZE_MAX;
    n->data_dir = cfg->data_dir ? strdup(cfg->data_dir) : NULL;
    n->cfg.data_dir = n->data_dir;
    rt_queue_init(&n->inbox, cfg->queue_max);
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
    n->cfg.force_servers = NULL;
    n->cfg.n_force_servers = 0;
    if (rc != CRAFT_OK) {
        node_free(n);
        return rc;
    }
    n->pub_book = n->loop_book;
    struct craft_core_status st;
    craft_core_status(craft_driver_core(n->driver), &st);
    n->last_role = st.role;
    n->last_conf = st.conf;
    atomic_store(&n->pub_role, (int)st.role);
    atomic_store(&n->pub_term, st.term);
    *out = n;
    return CRAFT_OK;
}

/* The largest message a group with these limits sends: an append, or a snapshot chunk,
 * with room for the message's own fields. */
static uint64_t group_msg_bytes_max(const struct craft_config *cfg)
{
    return cfg->append_bytes_max + cfg->entry_bytes_max + cfg->snapshot_chunk_bytes_max +
           (1u << 20);
}

static void add_error(char *errbuf, size_t cap, int rc, uint64_t group)
{
    snprintf(errbuf, cap, rc == CRAFT_EINVAL ? "group %" PRIu64 " is already hosted (or being "
                                               "added or removed)"
                          : rc == CRAFT_ENOMEM ? "out of memory (group %" PRIu64 ")"
                                               : "host stopping (group %" PRIu64 ")",
             group);
}

int craft_host_add_group(struct craft_host *h, uint64_t group, const struct craft_config *cfg,
                         const struct craft_fsm *fsm, struct craft_node **out, char *errbuf,
                         size_t errbuf_cap)
{
    char scratch[8];
    rt_errbuf_init(&errbuf, &errbuf_cap, scratch, sizeof scratch);
    *out = NULL;
    struct craft_config c = *cfg;
    c.id = h->id;
    c.transport = h->transport_kind;
    c.mem_net = h->mem_net;
    snprintf(c.listen_addr, sizeof c.listen_addr, "%s", h->listen_addr);
    /* Groups of one host draw different election timers: a mix of the group id. */
    c.seed = h->seed ^ (group * 0x9e3779b97f4a7c15ull);
    uint64_t frame_max = h->frame_bytes_max ? h->frame_bytes_max : CRAFT_HOST_FRAME_BYTES_DEFAULT;
    if (h->transport_kind == CRAFT_TRANSPORT_TCP && group_msg_bytes_max(&c) > frame_max) {
        snprintf(errbuf, errbuf_cap, "invalid configuration: append_bytes_max + entry_bytes_max "
                                     "+ snapshot_chunk_bytes_max exceed the host's "
                                     "frame_bytes_max");
        return CRAFT_EINVAL;
    }
    if (group == HOST_MSG_GROUP) {
        snprintf(errbuf, errbuf_cap, "invalid group id %" PRIu64 " (reserved)", group);
        return CRAFT_EINVAL;
    }
    if (h->glog != NULL && c.data_dir == NULL && c.entry_bytes_max > h->entry_bytes_max) {
        snprintf(errbuf, errbuf_cap, "invalid configuration: entry_bytes_max exceeds the "
                                     "host's (the shared log's records)");
        return CRAFT_EINVAL;
    }
    int rc = rt_host_claim(h, group, false);
    if (rc != CRAFT_OK) {
        add_error(errbuf, errbuf_cap, rc, group);
        return rc;
    }
    struct craft_node *n;
    rc = group_open(h, &c, fsm, group, &n, errbuf, errbuf_cap);
    if (rc != CRAFT_OK) {
        rt_host_unclaim(h, group);
        return rc;
    }
    /* Addresses the group knows (its log's, cfg->peers) reach the shared transport. */
    for (size_t i = 0; i < n->loop_book.n; i++) {
        rt_host_learn_peer(h, n->loop_book.s[i].id, n->loop_book.s[i].addr);
    }
    rc = rt_host_attach(h, n);
    rt_host_unclaim(h, group);
    if (rc != CRAFT_OK) {
        add_error(errbuf, errbuf_cap, rc, group);
        node_free(n);
        return rc;
    }
    *out = n;
    return CRAFT_OK;
}

int craft_node_create(const struct craft_config *cfg, const struct craft_fsm *fsm,
                      struct craft_node **out, char *errbuf, size_t errbuf_cap)
{
    char scratch[8];
    rt_errbuf_init(&errbuf, &errbuf_cap, scratch, sizeof scratch);
    *out = NULL;
    struct craft_node *n;
    int rc = group_open(NULL, cfg, fsm, 0, &n, errbuf, errbuf_cap);
    if (rc != CRAFT_OK) {
        return rc;
    }
    /* A host for this group alone, knowing the peers the group's book names (the log's
     * addresses after a restart, cfg->peers at first). */
    struct craft_host_config hc;
    craft_host_config_default(&hc, cfg->id);
    hc.cluster_id = cfg->cluster_id;
    hc.transport = cfg->transport;
    snprintf(hc.listen_addr, sizeof hc.listen_addr, "%s", cfg->listen_addr);
    hc.mem_net = cfg->mem_net;
    hc.peers = n->loop_book.s;
    hc.n_peers = n->loop_book.n;
    hc.frame_bytes_max = (uint32_t)group_msg_bytes_max(cfg);
    hc.seed = cfg->seed;
    /* One group: its own heartbeats are its process's; an idle one costs little. */
    hc.quiesce = false;
    hc.apply_threads = 1; /* one state machine: one thread, as before hosts */
    struct craft_host *h;
    rc = craft_host_create(&hc, &h, errbuf, errbuf_cap);
    if (rc != CRAFT_OK) {
        node_free(n);
        return rc;
    }
    n->own_host = true;
    rc = rt_host_attach(h, n);
    CRAFT_ASSERT(rc == CRAFT_OK || rc == CRAFT_ENOMEM);
    if (rc != CRAFT_OK) {
        snprintf(errbuf, errbuf_cap, "out of memory");
        node_free(n);
        craft_host_destroy(h);
        return rc;
    }
    *out = n;
    return CRAFT_OK;
}

void craft_node_destroy(struct craft_node *n)
{
    if (n == NULL) {
        return;
    }
    struct craft_host *h = n->host;
    /* Nobody adds the group again before its last write is done. */
    int claimed = rt_host_claim(h, n->group, true);
    rt_host_detach(n); /* the loop let go of it: no thread steps it any more */
    rt_disk_wait(n);   /* and the host's disk thread is done with its jobs */
    rt_apply_release(n); /* and its apply thread with its state machine jobs */
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
    rt_host_release_slot(n); /* closed and drained: nothing writes its flag any more */
    struct craft_host *own = n->own_host ? h : NULL;
    uint64_t group = n->group;
    node_free(n);
    if (claimed == CRAFT_OK) {
        rt_host_unclaim(h, group);
    }
    craft_host_destroy(own);
}

uint16_t craft_node_port(struct craft_node *n)
{
    return craft_host_port(n->host);
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

/* ---- latency histograms (craft_stats) ---- */

/* Powers of about 2.5 from 50 us to 1 s: fdatasync on a VM is 0.1-10 ms, an LMDB apply
 * batch 10 us-10 ms. */
const uint64_t craft_histogram_bounds_us[CRAFT_HISTOGRAM_BUCKETS - 1] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};

uint64_t rt_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void rt_hist_observe(struct rt_hist *h, uint64_t us)
{
    size_t i = 0;
    while (i < CRAFT_HISTOGRAM_BUCKETS - 1 && us > craft_histogram_bounds_us[i]) {
        i++;
    }
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

void rt_hist_read(const struct rt_hist *h, struct craft_histogram *out)
{
    uint64_t total = 0;
    for (size_t i = 0; i < CRAFT_HISTOGRAM_BUCKETS; i++) {
        total += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        out->buckets[i] = total; /* cumulative, as Prometheus reads them */
    }
    out->sum_us = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}
