/* The host: one raft loop thread and one transport for every Raft group of a process
 * (multiraft.md). Groups are added and removed while it runs; the loop thread steps each
 * group's share of every round (loop.c) and writes the round's messages, every group's,
 * in one flush per peer.
 *
 * Who touches what: groups/leaving/gen under mu (any thread); the loop's copy of the
 * groups (loop, active) on the loop thread only, refreshed at the start of a
 * round when gen moved; a removed group is let go of (its futures failed) by the loop at
 * that point, which the remover waits for, so no thread steps a group being freed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/assert.h"
#include "runtime/host_msg.h"
#include "runtime/rt.h"
#include "transport/tcp_transport.h"

/* The longest the loop sleeps with nothing due (timers are re-read at least this often). */
#define HOST_WAIT_MS_MAX 1000

/* ---- waking the loop ---- */

/* The in-memory transport has no poll to sleep in: the loop sleeps on the bell, which
 * every group's inbox rings when it gets an item while the loop sleeps. */
static void ring(struct craft_host *h)
{
    pthread_mutex_lock(&h->bell_mu);
    h->rung = true;
    pthread_mutex_unlock(&h->bell_mu);
    pthread_cond_signal(&h->bell_cv);
}

static void bell_wait(struct craft_host *h, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&h->bell_mu);
    while (!h->rung) {
        if (pthread_cond_timedwait(&h->bell_cv, &h->bell_mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
    h->rung = false;
    pthread_mutex_unlock(&h->bell_mu);
}

/* Every group's inbox notify: wakes the loop wherever it sleeps. */
static void wake_loop(void *ctx)
{
    struct craft_host *h = ctx;
    if (h->transport_kind == CRAFT_TRANSPORT_TCP) {
        craft_tcp_transport_wake(h->transport);
    } else {
        ring(h);
    }
}

/* ---- the group table ---- */

/* The first position whose group id is >= group. */
static size_t lower_bound(struct craft_node *const *a, size_t n, uint64_t group)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid]->group < group) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static struct craft_node *find_group(struct craft_node *const *a, size_t n, uint64_t group)
{
    size_t i = lower_bound(a, n, group);
    return i < n && a[i]->group == group ? a[i] : NULL;
}

/* Grows *a to hold at least need pointers; false if out of memory (nothing changed). */
static bool reserve(struct craft_node ***a, size_t *cap, size_t need)
{
    if (need <= *cap) {
        return true;
    }
    size_t c = *cap ? *cap * 2 : 8;
    while (c < need) {
        c *= 2;
    }
    struct craft_node **p = realloc(*a, c * sizeof *p);
    if (p == NULL) {
        return false;
    }
    *a = p;
    *cap = c;
    return true;
}

/* The loop's entry for group, or NULL. */
static struct rt_loop_entry *find_entry(struct craft_host *h, uint64_t group)
{
    size_t lo = 0, hi = h->n_loop;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->loop[mid].group < group) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < h->n_loop && h->loop[lo].group == group ? &h->loop[lo] : NULL;
}

/* ---- peer processes: heartbeats and liveness ---- */

static struct host_peer *peer_find(struct craft_host *h, uint64_t id)
{
    size_t n = atomic_load_explicit(&h->n_peers, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        if (h->peers[i].id == id) {
            return &h->peers[i];
        }
    }
    return NULL;
}

/* Adds peer process id (heard now, so that a new peer gets a whole timeout to answer). */
static void peer_add(struct craft_host *h, uint64_t id)
{
    if (id == h->id || id == CRAFT_NONE || peer_find(h, id) != NULL) {
        return;
    }
    pthread_mutex_lock(&h->mu);
    size_t n = atomic_load(&h->n_peers);
    bool known = false;
    for (size_t i = 0; i < n && !known; i++) {
        known = h->peers[i].id == id;
    }
    if (!known && n < HOST_PEERS_MAX) {
        h->peers[n].id = id;
        atomic_store(&h->peers[n].heard, rt_now_ms());
        h->peers[n].down = false;
        atomic_store_explicit(&h->n_peers, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&h->mu);
}

/* Any frame from process `from` says it is alive; a PING also says since when. */
static void peer_heard(struct craft_host *h, uint64_t from, uint64_t group, const uint8_t *bytes,
                       size_t len)
{
    struct host_peer *p = peer_find(h, from);
    if (p == NULL) {
        peer_add(h, from);
        p = peer_find(h, from);
        if (p == NULL) {
            return; /* HOST_PEERS_MAX reached */
        }
    }
    atomic_store_explicit(&p->heard, rt_now_ms(), memory_order_relaxed);
    struct host_msg m;
    if (group == HOST_MSG_GROUP && host_msg_decode(bytes, len, &m) && m.kind == HOST_MSG_PING) {
        atomic_store_explicit(&p->incarnation, m.term, memory_order_relaxed);
    }
}

static bool conf_has(const struct craft_conf *c, uint64_t id)
{
    for (uint32_t i = 0; i < c->n_voters; i++) {
        if (c->voters[i] == id) return true;
    }
    for (uint32_t i = 0; i < c->n_voters_outgoing; i++) {
        if (c->voters_outgoing[i] == id) return true;
    }
    for (uint32_t i = 0; i < c->n_learners; i++) {
        if (c->learners[i] == id) return true;
    }
    return false;
}

void rt_host_send_msg(struct craft_host *h, uint64_t to, uint64_t group, const struct host_msg *m)
{
    uint8_t buf[HOST_MSG_BYTES_MAX];
    size_t len = host_msg_encode(m, buf);
    (void)craft_transport_send(h->transport, to, group, buf, len);
}

static void activate(struct craft_host *h, struct craft_node *n);

/* Every heartbeat_ms, on the loop thread: a PING to every peer process, and the peers
 * unheard for peer_timeout_ms marked down; the quiesced groups a peer that went down led
 * wake (they elect as without quiescence, their election timers starting now). */
static void peers_tick(struct craft_host *h, uint64_t now)
{
    if (now < h->next_ping) {
        return;
    }
    h->next_ping = now + h->heartbeat_ms;
    struct host_msg ping = {.kind = HOST_MSG_PING, .term = h->incarnation};
    size_t n = atomic_load_explicit(&h->n_peers, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        struct host_peer *p = &h->peers[i];
        rt_host_send_msg(h, p->id, HOST_MSG_GROUP, &ping);
        uint64_t heard = atomic_load_explicit(&p->heard, memory_order_relaxed);
        uint64_t inc = atomic_load_explicit(&p->incarnation, memory_order_relaxed);
        bool down = now > heard && now - heard > h->peer_timeout_ms;
        bool gone = down && !p->down;
        bool restarted = inc != p->incarnation_seen;
        if ((gone || restarted) && atomic_load(&h->groups_quiesced) > 0) {
            for (size_t k = 0; k < h->n_loop; k++) {
                struct craft_node *g = h->loop[k].g;
                if (g->quiet.quiesced && ((gone && g->last_leader == p->id) ||
                                    (restarted && conf_has(&g->last_conf, p->id)))) {
                    activate(h, g);
                    rt_quiesce_wake(g, false, now);
                }
            }
        }
        p->down = down;
        p->incarnation_seen = inc;
    }
}

/* ---- receiving ---- */

/* The group takes part in this round: its driver is held (what it sends and writes leaves
 * at the round's release) and it is stepped, flushed and checked after the round. */
static void activate(struct craft_host *h, struct craft_node *n)
{
    if (n->in_round) {
        return;
    }
    CRAFT_ASSERT(h->n_active < h->cap_loop);
    n->in_round = true;
    rt_group_hold(n);
    h->active[h->n_active++] = n;
}

/* TCP (driven): on the loop thread, inside its poll. A message for a group added since the
 * round began is dropped like a lost one (Raft resends); one for a group this process
 * does not host is dropped and counted. */
static void recv_direct(void *ctx, uint64_t from, uint64_t group, const uint8_t *bytes,
                        size_t len)
{
    struct craft_host *h = ctx;
    peer_heard(h, from, group, bytes, len);
    if (group == HOST_MSG_GROUP) {
        return; /* a PING: heard */
    }
    struct rt_loop_entry *e = find_entry(h, group);
    if (e == NULL) {
        atomic_fetch_add(&h->msgs_unknown_group, 1);
        return;
    }
    struct craft_node *n = e->g;
    activate(h, n);
    rt_loop_recv_direct(n, from, bytes, len);
}

/* In-memory network: on the sender's thread; the message is queued in the group's inbox.
 * Under mu, so the group cannot be freed meanwhile (removal takes it out under mu). */
static void recv_queued(void *ctx, uint64_t from, uint64_t group, const uint8_t *bytes,
                        size_t len)
{
    struct craft_host *h = ctx;
    peer_heard(h, from, group, bytes, len);
    if (group == HOST_MSG_GROUP) {
        return; /* a PING: heard */
    }
    pthread_mutex_lock(&h->mu);
    struct craft_node *n = find_group(h->groups, h->n_groups, group);
    if (n != NULL) {
        rt_loop_recv(n, from, bytes, len);
    } else {
        atomic_fetch_add(&h->msgs_unknown_group, 1);
    }
    pthread_mutex_unlock(&h->mu);
}

/* ---- the loop ---- */

/* Start of a round: adopt the current group table, and let go of removed groups. Returns
 * whether removed groups remain for the next round (the loop must not sleep on them). */
static bool refresh(struct craft_host *h)
{
    pthread_mutex_lock(&h->mu);
    if (h->spare_loop != NULL) {
        /* The table outgrew the loop's arrays: attach allocated bigger ones. */
        free(h->loop);
        free(h->active);
        h->loop = h->spare_loop;
        h->active = h->spare_active;
        h->cap_loop = h->cap_spare;
        h->spare_loop = NULL;
        h->spare_active = NULL;
    }
    if (h->loop_gen != h->gen) {
        CRAFT_ASSERT(h->n_groups <= h->cap_loop);
        for (size_t i = 0; i < h->n_groups; i++) {
            struct craft_node *g = h->groups[i];
            g->loop_index = i;
            h->loop[i] = (struct rt_loop_entry){
                .g = g, .filled = g->inbox.filled, .wake = g->next_wake, .group = g->group};
        }
        h->n_loop = h->n_groups;
        h->loop_gen = h->gen;
    }
    size_t n_leaving = h->n_leaving;
    struct craft_node *leaving[HOST_LEAVING_BATCH];
    if (n_leaving > HOST_LEAVING_BATCH) {
        n_leaving = HOST_LEAVING_BATCH; /* the rest next round */
    }
    if (n_leaving == 0) {
        pthread_mutex_unlock(&h->mu);
        return false;
    }
    memcpy(leaving, h->leaving + (h->n_leaving - n_leaving), n_leaving * sizeof *leaving);
    h->n_leaving -= n_leaving;
    bool more = h->n_leaving > 0;
    pthread_mutex_unlock(&h->mu);
    /* Futures fail outside mu: their callbacks may submit to other groups. */
    for (size_t i = 0; i < n_leaving; i++) {
        rt_group_shutdown(leaving[i]);
    }
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < n_leaving; i++) {
        leaving[i]->detached = true;
    }
    pthread_mutex_unlock(&h->mu);
    pthread_cond_broadcast(&h->cv);
    return more;
}

/* Takes what group n's inbox holds into its round items (after the ones taken before). */
static void take_items(struct craft_host *h, struct craft_node *n)
{
    activate(h, n);
    struct rt_item *more = rt_queue_take_nowait(&n->inbox);
    struct rt_item **tail = &n->round_items;
    while (*tail != NULL) {
        tail = &(*tail)->next;
    }
    *tail = more;
}

/* Takes every group with inbox items or a due timer into the round; returns the earliest
 * next wake of the others (at most HOST_WAIT_MS_MAX away). */
static uint64_t gather(struct craft_host *h, uint64_t now)
{
    uint64_t wake = now + HOST_WAIT_MS_MAX;
    if (h->quiesce && h->next_ping < wake) {
        wake = h->next_ping > now ? h->next_ping : now;
    }
    for (size_t i = 0; i < h->n_loop; i++) {
        const struct rt_loop_entry *e = &h->loop[i];
        if (atomic_load(e->filled)) {
            take_items(h, e->g);
        } else if (e->wake <= now) {
            activate(h, e->g);
        } else if (e->wake < wake) {
            wake = e->wake;
        }
    }
    return wake;
}

/* A round steps only the groups with something to do: inbox items, messages read in the
 * poll, or a due timer. The others cost a flag read and a comparison of their cached next
 * wake: the per-group work of a round (status copies, timer computation, queue locks) is
 * what an idle host spent its time on (host_bench, perf: 70 % of the loop's samples). */
static void *host_main(void *arg)
{
    pthread_setname_np(pthread_self(), "craft-raft"); /* top -H, perf, gdb */
    struct craft_host *h = arg;
    bool tcp = h->transport_kind == CRAFT_TRANSPORT_TCP;
    for (;;) {
        bool more = refresh(h);
        bool stopping = atomic_load(&h->stopping);
        size_t n = h->n_loop;
        if (stopping && n == 0 && !more) {
            break;
        }
        CRAFT_ASSERT(h->n_active == 0);
        uint64_t now = rt_now_ms();
        uint64_t wake = gather(h, now);
        /* Sleep (in the transport's poll, or on the bell) only with nothing to do, until a
         * message arrives, a producer fills an inbox (it reads `sleeping` after publishing
         * its item; the loop reads every inbox after setting it), or the next timer is due.
         * The poll runs every round: its messages are stepped right there. */
        int timeout = 0;
        if (h->n_active == 0 && !more && !stopping && wake > now) {
            timeout = (int)(wake - now);
        }
        bool sleep = false;
        if (timeout > 0) {
            atomic_store(&h->sleeping, true);
            sleep = true;
            for (size_t i = 0; i < n && sleep; i++) {
                sleep = !atomic_load(h->loop[i].filled);
            }
        }
        if (tcp) {
            craft_tcp_transport_poll(h->transport, sleep ? timeout : 0);
        } else if (sleep) {
            bell_wait(h, timeout);
        }
        atomic_store(&h->sleeping, false);
        now = rt_now_ms();
        (void)gather(h, now); /* what came in or fell due while polling */
        if (h->quiesce) {
            peers_tick(h, now);
        }
        for (size_t i = 0; i < h->n_active; i++) {
            struct craft_node *g = h->active[i];
            rt_group_step(g, g->round_items, now);
            g->round_items = NULL;
        }
        if (tcp) {
            /* The round's messages leave now, one write per peer for every group. */
            craft_tcp_transport_flush(h->transport);
        }
        now = rt_now_ms();
        for (size_t i = 0; i < h->n_active; i++) {
            struct craft_node *g = h->active[i];
            rt_group_after_send(g);
            g->next_wake = rt_group_wake(g, now);
            h->loop[g->loop_index].wake = g->next_wake;
            g->in_round = false;
        }
        h->n_active = 0;
        atomic_fetch_add(&h->rounds, 1);
    }
    return NULL;
}

void rt_host_learn_peer(struct craft_host *h, uint64_t id, const char *addr)
{
    peer_add(h, id);
    char host[CRAFT_ADDR_BYTES_MAX];
    uint16_t port;
    if (h->transport_kind == CRAFT_TRANSPORT_TCP && id != h->id &&
        rt_addr_split(addr, host, sizeof host, &port)) {
        (void)craft_tcp_transport_set_peer(h->transport, id, host, port);
    }
}

/* ---- slots: the inboxes' filled flags, dense ---- */

/* A free slot (under mu); false if out of memory. */
static bool slot_take(struct craft_host *h, uint32_t *slot)
{
    if (h->n_free == 0) {
        if (h->n_chunks == h->cap_chunks) {
            size_t cap = h->cap_chunks ? 2 * h->cap_chunks : 4;
            atomic_bool **p = realloc(h->slot_chunks, cap * sizeof *p);
            if (p == NULL) {
                return false;
            }
            h->slot_chunks = p;
            h->cap_chunks = cap;
        }
        size_t cap_free = h->cap_free + HOST_SLOTS_PER_CHUNK;
        uint32_t *f = realloc(h->free_slots, cap_free * sizeof *f);
        if (f == NULL) {
            return false;
        }
        h->free_slots = f;
        h->cap_free = cap_free;
        atomic_bool *chunk = calloc(HOST_SLOTS_PER_CHUNK, sizeof *chunk);
        if (chunk == NULL) {
            return false;
        }
        CRAFT_ASSERT(h->n_chunks < UINT32_MAX / HOST_SLOTS_PER_CHUNK);
        for (uint32_t i = 0; i < HOST_SLOTS_PER_CHUNK; i++) {
            atomic_init(&chunk[i], false);
            h->free_slots[h->n_free++] =
                (uint32_t)(h->n_chunks * HOST_SLOTS_PER_CHUNK) + (HOST_SLOTS_PER_CHUNK - 1 - i);
        }
        h->slot_chunks[h->n_chunks++] = chunk;
    }
    *slot = h->free_slots[--h->n_free];
    return true;
}

void rt_host_release_slot(struct craft_node *n)
{
    struct craft_host *h = n->host;
    pthread_mutex_lock(&h->mu);
    CRAFT_ASSERT(h->n_free < h->cap_free);
    h->free_slots[h->n_free++] = n->slot;
    n->inbox.filled = &n->inbox.filled_own;
    pthread_mutex_unlock(&h->mu);
}

/* ---- attach and detach ---- */

int rt_host_claim(struct craft_host *h, uint64_t group, bool removal)
{
    pthread_mutex_lock(&h->mu);
    int rc = atomic_load(&h->stopping) && !removal ? CRAFT_ESHUTDOWN : CRAFT_OK;
    if (rc == CRAFT_OK && !removal && find_group(h->groups, h->n_groups, group) != NULL) {
        rc = CRAFT_EINVAL;
    }
    for (size_t i = 0; rc == CRAFT_OK && i < h->n_adding; i++) {
        if (h->adding[i] == group) {
            rc = CRAFT_EINVAL;
        }
    }
    if (rc == CRAFT_OK && h->n_adding == h->cap_adding) {
        size_t cap = h->cap_adding ? 2 * h->cap_adding : 8;
        uint64_t *a = realloc(h->adding, cap * sizeof *a);
        if (a == NULL) {
            rc = CRAFT_ENOMEM;
        } else {
            h->adding = a;
            h->cap_adding = cap;
        }
    }
    if (rc == CRAFT_OK) {
        h->adding[h->n_adding++] = group;
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

void rt_host_unclaim(struct craft_host *h, uint64_t group)
{
    pthread_mutex_lock(&h->mu);
    size_t i = 0;
    while (i < h->n_adding && h->adding[i] != group) {
        i++;
    }
    CRAFT_ASSERT(i < h->n_adding);
    h->adding[i] = h->adding[--h->n_adding];
    pthread_mutex_unlock(&h->mu);
}

int rt_host_attach(struct craft_host *h, struct craft_node *n)
{
    n->host = h;
    n->inbox.notify = wake_loop;
    n->inbox.notify_ctx = h;
    n->inbox.consumer_sleeping = &h->sleeping;
    n->next_wake = 0; /* stepped in the loop's next round */
    pthread_mutex_lock(&h->mu);
    if (atomic_load(&h->stopping)) {
        pthread_mutex_unlock(&h->mu);
        return CRAFT_ESHUTDOWN;
    }
    if (find_group(h->groups, h->n_groups, n->group) != NULL) {
        pthread_mutex_unlock(&h->mu);
        return CRAFT_EINVAL;
    }
    size_t need = h->n_groups + 1;
    /* Every array the group may need later is reserved now, so neither the loop's refresh
     * nor a removal can fail for want of memory. */
    if (!reserve(&h->groups, &h->cap_groups, need) ||
        !reserve(&h->leaving, &h->cap_leaving, need + h->n_leaving)) {
        pthread_mutex_unlock(&h->mu);
        return CRAFT_ENOMEM;
    }
    if (need > h->cap_loop && (h->spare_loop == NULL || need > h->cap_spare)) {
        size_t cap = h->cap_groups;
        struct rt_loop_entry *loop = malloc(cap * sizeof *loop);
        struct craft_node **active = malloc(cap * sizeof *active);
        if (loop == NULL || active == NULL) {
            free(loop);
            free(active);
            pthread_mutex_unlock(&h->mu);
            return CRAFT_ENOMEM;
        }
        free(h->spare_loop);
        free(h->spare_active);
        h->spare_loop = loop;
        h->spare_active = active;
        h->cap_spare = cap;
    }
    if (!slot_take(h, &n->slot)) {
        pthread_mutex_unlock(&h->mu);
        return CRAFT_ENOMEM;
    }
    n->inbox.filled = &h->slot_chunks[n->slot / HOST_SLOTS_PER_CHUNK][n->slot % HOST_SLOTS_PER_CHUNK];
    rt_apply_assign(h, n);
    atomic_store(n->inbox.filled, false);
    size_t at = lower_bound(h->groups, h->n_groups, n->group);
    memmove(h->groups + at + 1, h->groups + at, (h->n_groups - at) * sizeof *h->groups);
    h->groups[at] = n;
    h->n_groups++;
    h->gen++;
    pthread_mutex_unlock(&h->mu);
    wake_loop(h);
    return CRAFT_OK;
}

void rt_host_detach(struct craft_node *n)
{
    struct craft_host *h = n->host;
    pthread_mutex_lock(&h->mu);
    size_t at = lower_bound(h->groups, h->n_groups, n->group);
    CRAFT_ASSERT(at < h->n_groups && h->groups[at] == n);
    memmove(h->groups + at, h->groups + at + 1, (h->n_groups - at - 1) * sizeof *h->groups);
    h->n_groups--;
    CRAFT_ASSERT(h->n_leaving < h->cap_leaving); /* reserved at attach */
    h->leaving[h->n_leaving++] = n;
    h->gen++;
    atomic_store(&n->stopping, true);
    pthread_mutex_unlock(&h->mu);
    rt_queue_close(&n->inbox); /* its notify wakes the loop */
    pthread_mutex_lock(&h->mu);
    while (!n->detached) {
        pthread_cond_wait(&h->cv, &h->mu);
    }
    pthread_mutex_unlock(&h->mu);
}

/* ---- lifetime ---- */

void craft_host_config_default(struct craft_host_config *cfg, uint64_t id)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->id = id;
    cfg->cluster_id = 1;
    cfg->transport = CRAFT_TRANSPORT_TCP;
    snprintf(cfg->listen_addr, sizeof cfg->listen_addr, "127.0.0.1:0");
    cfg->seed = id;
    cfg->log_segment_bytes = 64ull << 20;
    cfg->entry_bytes_max = 1u << 20;
    cfg->quiesce = true;
    cfg->apply_threads = 2;
    cfg->heartbeat_ms = 100;
    cfg->peer_timeout_ms = 1000;
}

static void transport_log(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "craft %s\n", line); /* the transport's lines name their node */
}

static int start_transport(struct craft_host *h, const struct craft_host_config *cfg,
                           char *errbuf, size_t cap)
{
    if (cfg->transport == CRAFT_TRANSPORT_MEM) {
        h->transport = rt_mem_net_attach(cfg->mem_net, cfg->id, recv_queued, h);
        if (h->transport == NULL) {
            snprintf(errbuf, cap, "node %" PRIu64 " is already on the in-memory network",
                     cfg->id);
            return CRAFT_EINVAL;
        }
        return CRAFT_OK;
    }
    struct craft_peer_addr *peers = calloc(cfg->n_peers + 1, sizeof *peers);
    if (peers == NULL) {
        snprintf(errbuf, cap, "out of memory");
        return CRAFT_ENOMEM;
    }
    size_t np = 0;
    for (size_t i = 0; i < cfg->n_peers; i++) {
        const struct craft_server *s = &cfg->peers[i];
        if (s->id == cfg->id) {
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
    if (!rt_addr_split(cfg->listen_addr, host, sizeof host, &port)) {
        free(peers);
        snprintf(errbuf, cap, "invalid configuration: listen_addr");
        return CRAFT_EINVAL;
    }
    struct craft_tcp_config tc = {
        .cluster_id = cfg->cluster_id,
        .self_id = cfg->id,
        .peers = peers,
        .n_peers = np,
        .listen_host = host,
        .listen_port = port,
        .frame_bytes_max = cfg->frame_bytes_max,
        .seed = cfg->seed,
        .recv = recv_direct,
        .recv_ctx = h,
        .log = transport_log,
        .log_ctx = h,
        .driven = true, /* the loop thread runs it: no hand-off per message */
    };
    int err;
    h->transport = craft_tcp_transport_create(&tc, &err);
    free(peers);
    if (h->transport == NULL) {
        snprintf(errbuf, cap, "cannot listen on %s: %s", cfg->listen_addr, craft_strerror(err));
        return err;
    }
    return CRAFT_OK;
}

/* The shared log (a host with a data directory): <data_dir>/log, and <data_dir>/groups
 * for the groups' snapshots. */
static int open_log(struct craft_host *h, const struct craft_host_config *cfg, char *errbuf,
                    size_t cap)
{
    h->data_dir = strdup(cfg->data_dir);
    if (h->data_dir == NULL) {
        snprintf(errbuf, cap, "out of memory");
        return CRAFT_ENOMEM;
    }
    h->entry_bytes_max = (uint32_t)cfg->entry_bytes_max;
    craft_fs_posix_init(&h->fs);
    char path[4096];
    int rc = h->fs.mkdir(&h->fs, h->data_dir);
    if (rc == CRAFT_OK) {
        snprintf(path, sizeof path, "%s/groups", h->data_dir);
        rc = h->fs.mkdir(&h->fs, path);
    }
    if (rc == CRAFT_OK) {
        rc = h->fs.fsync_dir(&h->fs, h->data_dir);
    }
    if (rc != CRAFT_OK) {
        snprintf(errbuf, cap, "cannot create data directory %s: %s", h->data_dir,
                 craft_strerror(rc));
        return rc;
    }
    struct craft_glog_config gc;
    craft_glog_config_default(&gc);
    /* One record holds the largest entry: payload + tag byte + header + padding. */
    uint64_t rec = (cfg->entry_bytes_max + 1 + CRAFT_GLOG_RECORD_HEADER_BYTES + 7) & ~7ull;
    gc.record_bytes_max = (uint32_t)(rec > gc.record_bytes_max ? rec : gc.record_bytes_max);
    gc.segment_bytes = cfg->log_segment_bytes;
    if (gc.segment_bytes < 2ull * gc.record_bytes_max + CRAFT_GLOG_SEGMENT_HEADER_BYTES) {
        gc.segment_bytes = 2ull * gc.record_bytes_max + CRAFT_GLOG_SEGMENT_HEADER_BYTES;
    }
    snprintf(path, sizeof path, "%s/log", h->data_dir);
    char msg[512] = "";
    rc = craft_glog_open(&h->fs, path, &gc, &h->glog, msg, sizeof msg);
    if (rc != CRAFT_OK) {
        snprintf(errbuf, cap, "cannot open the log in %s: %s (%s)", path, craft_strerror(rc),
                 msg);
    }
    return rc;
}

static void host_free(struct craft_host *h)
{
    CRAFT_ASSERT(h->n_groups == 0 && h->n_leaving == 0);
    rt_apply_pool_stop(h);
    rt_apply_scratch_free(h->loop_scratch);
    if (h->disk_started) {
        rt_queue_close(&h->disk_q);
        pthread_join(h->disk_thread, NULL);
    }
    rt_queue_destroy(&h->disk_q);
    craft_glog_close(h->glog);
    free(h->data_dir);
    pthread_mutex_destroy(&h->glog_mu);
    pthread_mutex_destroy(&h->disk_mu);
    pthread_cond_destroy(&h->disk_cv);
    if (h->transport != NULL) {
        craft_transport_close(h->transport);
    }
    free(h->groups);
    free(h->leaving);
    free(h->adding);
    free(h->loop);
    free(h->active);
    free(h->spare_loop);
    free(h->spare_active);
    for (size_t i = 0; i < h->n_chunks; i++) {
        free(h->slot_chunks[i]);
    }
    free(h->slot_chunks);
    free(h->free_slots);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->bell_mu);
    pthread_cond_destroy(&h->bell_cv);
    free(h);
}

int craft_host_create(const struct craft_host_config *cfg, struct craft_host **out,
                      char *errbuf, size_t errbuf_cap)
{
    char scratch[8];
    rt_errbuf_init(&errbuf, &errbuf_cap, scratch, sizeof scratch);
    *out = NULL;
    if (cfg->id == 0 || (cfg->transport != CRAFT_TRANSPORT_TCP &&
                         (cfg->transport != CRAFT_TRANSPORT_MEM || cfg->mem_net == NULL))) {
        snprintf(errbuf, errbuf_cap, "invalid configuration: %s",
                 cfg->id == 0 ? "id" : cfg->transport == CRAFT_TRANSPORT_MEM ? "mem_net"
                                                                              : "transport");
        return CRAFT_EINVAL;
    }
    if (cfg->apply_threads == 0 || cfg->apply_threads > CRAFT_HOST_APPLY_THREADS_MAX) {
        snprintf(errbuf, errbuf_cap, "invalid configuration: apply_threads");
        return CRAFT_EINVAL;
    }
    if (cfg->quiesce && (cfg->heartbeat_ms == 0 || cfg->peer_timeout_ms <= cfg->heartbeat_ms)) {
        snprintf(errbuf, errbuf_cap, "invalid configuration: %s",
                 cfg->heartbeat_ms == 0 ? "heartbeat_ms" : "peer_timeout_ms");
        return CRAFT_EINVAL;
    }
    if (cfg->data_dir != NULL &&
        (cfg->log_segment_bytes < (4u << 20) || cfg->log_segment_bytes % 8 != 0 ||
         cfg->entry_bytes_max == 0 || cfg->entry_bytes_max > (64u << 20))) {
        snprintf(errbuf, errbuf_cap, "invalid configuration: %s",
                 cfg->entry_bytes_max == 0 || cfg->entry_bytes_max > (64u << 20)
                     ? "entry_bytes_max"
                     : "log_segment_bytes");
        return CRAFT_EINVAL;
    }
    struct craft_host *h = calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(errbuf, errbuf_cap, "out of memory");
        return CRAFT_ENOMEM;
    }
    h->id = cfg->id;
    h->transport_kind = cfg->transport;
    h->mem_net = cfg->mem_net;
    snprintf(h->listen_addr, sizeof h->listen_addr, "%s", cfg->listen_addr);
    h->frame_bytes_max = cfg->frame_bytes_max;
    h->seed = cfg->seed;
    h->quiesce = cfg->quiesce;
    if (getrandom(&h->incarnation, sizeof h->incarnation, 0) != sizeof h->incarnation) {
        h->incarnation = rt_now_ms() ^ (cfg->id << 32) ^ (uint64_t)(uintptr_t)h;
    }
    h->heartbeat_ms = cfg->heartbeat_ms;
    h->peer_timeout_ms = cfg->peer_timeout_ms;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    pthread_mutex_init(&h->bell_mu, NULL);
    rt_cond_init_mono(&h->bell_cv);
    pthread_mutex_init(&h->glog_mu, NULL);
    pthread_mutex_init(&h->disk_mu, NULL);
    pthread_cond_init(&h->disk_cv, NULL);
    rt_queue_init(&h->disk_q, 0);
    int rc = cfg->data_dir != NULL ? open_log(h, cfg, errbuf, errbuf_cap) : CRAFT_OK;
    if (rc == CRAFT_OK) {
        rc = start_transport(h, cfg, errbuf, errbuf_cap);
    }
    if (rc != CRAFT_OK) {
        host_free(h);
        return rc;
    }
    for (size_t i = 0; i < cfg->n_peers; i++) {
        peer_add(h, cfg->peers[i].id);
    }
    /* A thread that cannot start (the process's limit) is the caller's error, as memory. */
    if (pthread_create(&h->disk_thread, NULL, rt_disk_main, h) != 0) {
        snprintf(errbuf, errbuf_cap, "cannot start the host's disk thread");
        host_free(h);
        return CRAFT_ENOMEM;
    }
    h->disk_started = true;
    if (rt_apply_pool_start(h, cfg->apply_threads) != CRAFT_OK) {
        snprintf(errbuf, errbuf_cap, "out of memory or threads for the apply pool");
        host_free(h); /* stops the apply threads that started */
        return CRAFT_ENOMEM;
    }
    if (pthread_create(&h->loop_thread, NULL, host_main, h) != 0) {
        snprintf(errbuf, errbuf_cap, "cannot start the host's loop thread");
        host_free(h);
        return CRAFT_ENOMEM;
    }
    *out = h;
    return CRAFT_OK;
}

void craft_host_destroy(struct craft_host *h)
{
    if (h == NULL) {
        return;
    }
    for (;;) {
        pthread_mutex_lock(&h->mu);
        struct craft_node *n = h->n_groups > 0 ? h->groups[h->n_groups - 1] : NULL;
        pthread_mutex_unlock(&h->mu);
        if (n == NULL) {
            break;
        }
        CRAFT_ASSERT(!n->own_host);
        craft_node_destroy(n);
    }
    atomic_store(&h->stopping, true);
    wake_loop(h);
    pthread_join(h->loop_thread, NULL);
    host_free(h);
}

int craft_host_drop_group(struct craft_host *h, uint64_t group, char *errbuf,
                          size_t errbuf_cap)
{
    char scratch[8];
    rt_errbuf_init(&errbuf, &errbuf_cap, scratch, sizeof scratch);
    if (h->glog == NULL) {
        snprintf(errbuf, errbuf_cap, "the host has no data_dir: no storage to drop");
        return CRAFT_EINVAL;
    }
    int rc = rt_host_claim(h, group, false);
    if (rc != CRAFT_OK) {
        snprintf(errbuf, errbuf_cap, rc == CRAFT_EINVAL ? "group %" PRIu64 " is hosted (or "
                                                          "being added or removed)"
                                     : "cannot drop group %" PRIu64 " now",
                 group);
        return rc;
    }
    rc = rt_storage_drop(h, group, errbuf, errbuf_cap);
    rt_host_unclaim(h, group);
    return rc;
}

uint16_t craft_host_port(struct craft_host *h)
{
    return h->transport_kind == CRAFT_TRANSPORT_TCP ? craft_tcp_transport_port(h->transport)
                                                    : 0;
}

void craft_host_stats(struct craft_host *h, struct craft_host_stats *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&h->mu);
    s->groups = h->n_groups;
    pthread_mutex_unlock(&h->mu);
    s->rounds = atomic_load(&h->rounds);
    s->msgs_unknown_group = atomic_load(&h->msgs_unknown_group);
    s->log_writes = atomic_load(&h->log_writes);
    s->log_syncs = atomic_load(&h->log_syncs);
    s->log_entries = atomic_load(&h->log_entries);
    s->groups_quiesced = atomic_load(&h->groups_quiesced);
}
