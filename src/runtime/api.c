/* The public calls that hand work to the loop thread and return a future. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "runtime/rt.h"

/* ---- batches: a thread's submissions handed over in one push ---- */

/* The thread's open batches: requests held per node, oldest first (a thread that serves
 * several groups of a host holds one list per group). */
#define RT_BATCH_NODES 64
struct rt_batch {
    struct craft_node *node;
    struct rt_item *head, *tail;
};
static _Thread_local struct rt_batch tl_batch[RT_BATCH_NODES];
static _Thread_local size_t tl_batches;

static void batch_flush(struct rt_batch *b)
{
    if (b->head == NULL) {
        return;
    }
    struct craft_node *n = b->node;
    struct rt_item *rest = rt_queue_push_list(&n->inbox, b->head, true);
    b->head = b->tail = NULL;
    /* What did not fit fails as a full queue fails a single apply; everything after the
     * first such request fails with it, so no command enters the log ahead of one it
     * followed. */
    while (rest != NULL) {
        struct rt_req *r = (struct rt_req *)rest;
        rest = rest->next;
        rt_future_complete(r->f, atomic_load(&n->stopping) ? CRAFT_ESHUTDOWN : CRAFT_ETIMEOUT, 0,
                           NULL);
        free(r->conf);
        free(r);
    }
}

void rt_batch_flush(void)
{
    for (size_t i = 0; i < tl_batches; i++) {
        batch_flush(&tl_batch[i]);
    }
}

static struct rt_batch *batch_of(const struct craft_node *n)
{
    for (size_t i = 0; i < tl_batches; i++) {
        if (tl_batch[i].node == n) {
            return &tl_batch[i];
        }
    }
    return NULL;
}

void craft_batch_begin(struct craft_node *n)
{
    CRAFT_ASSERT(batch_of(n) == NULL); /* one batch per node at a time */
    CRAFT_ASSERT(tl_batches < RT_BATCH_NODES);
    tl_batch[tl_batches++] = (struct rt_batch){.node = n};
}

void craft_batch_end(struct craft_node *n)
{
    struct rt_batch *b = batch_of(n);
    CRAFT_ASSERT(b != NULL);
    /* Removed before the flush: a completion that runs during it finds no open batch. */
    struct rt_batch mine = *b;
    *b = tl_batch[--tl_batches];
    batch_flush(&mine);
}

static bool batched(const struct craft_node *n, const struct rt_req *r)
{
    return (r->kind == REQ_APPLY || r->kind == REQ_READ_INDEX || r->kind == REQ_READ_LEASE) &&
           batch_of(n) != NULL;
}

static struct craft_future *submit(struct craft_node *n, struct rt_req *r, uint8_t fkind,
                                   bool bounded, uint64_t deadline)
{
    if (r == NULL) {
        return rt_future_failed(CRAFT_ENOMEM);
    }
    struct craft_future *f = rt_future_new(fkind);
    if (f == NULL) {
        free(r->conf);
        free(r);
        return NULL;
    }
    r->f = f;
    if (batched(n, r)) {
        struct rt_batch *b = batch_of(n);
        r->item.next = NULL;
        if (b->tail != NULL) {
            b->tail->next = &r->item;
        } else {
            b->head = &r->item;
        }
        b->tail = &r->item;
        return f;
    }
    rt_batch_flush(); /* what this thread submitted before goes first */
    /* The request holds the node's reference: the loop completes it. */
    if (!rt_queue_push(&n->inbox, &r->item, bounded, deadline)) {
        rt_future_complete(f, atomic_load(&n->stopping) ? CRAFT_ESHUTDOWN : CRAFT_ETIMEOUT, 0,
                           NULL);
        free(r->conf);
        free(r);
    }
    return f;
}

struct craft_future *craft_apply(struct craft_node *n, const void *data, uint32_t len,
                                 uint32_t timeout_ms)
{
    if (len > n->cfg.entry_bytes_max) {
        return rt_future_failed(CRAFT_ETOOBIG);
    }
    struct rt_req *r = rt_req_new(REQ_APPLY, NULL, len + 1);
    if (r == NULL) {
        return rt_future_failed(CRAFT_ENOMEM);
    }
    r->data[0] = TAG_USER;
    if (len > 0) {
        memcpy(r->data + 1, data, len);
    }
    uint64_t now = rt_now_ms();
    r->deadline = now + timeout_ms;
    return submit(n, r, FUT_APPLY, true, timeout_ms ? r->deadline : 0);
}

struct craft_future *craft_barrier(struct craft_node *n)
{
    return submit(n, rt_req_new(REQ_BARRIER, NULL, 0), FUT_BARRIER, false, 0);
}

struct craft_future *craft_verify_leader(struct craft_node *n)
{
    return submit(n, rt_req_new(REQ_VERIFY, NULL, 0), FUT_VERIFY, false, 0);
}

struct craft_future *craft_read_index(struct craft_node *n)
{
    return submit(n, rt_req_new(REQ_READ_INDEX, NULL, 0), FUT_READ, false, 0);
}

struct craft_future *craft_read_lease(struct craft_node *n)
{
    return submit(n, rt_req_new(REQ_READ_LEASE, NULL, 0), FUT_READ, false, 0);
}

struct craft_future *craft_transfer_leadership(struct craft_node *n, uint64_t id)
{
    struct rt_req *r = rt_req_new(REQ_TRANSFER, NULL, 0);
    if (r != NULL) {
        r->a = id;
    }
    return submit(n, r, FUT_TRANSFER, false, 0);
}

struct craft_future *craft_snapshot(struct craft_node *n)
{
    return submit(n, rt_req_new(REQ_SNAPSHOT, NULL, 0), FUT_SNAPSHOT, false, 0);
}

void craft_stats(struct craft_node *n, struct craft_stats *stats)
{
    struct rt_req *r = rt_req_new(REQ_STATS, NULL, 0);
    if (r == NULL) {
        memset(stats, 0, sizeof *stats);
        return;
    }
    r->stats = stats;
    struct craft_future *f = submit(n, r, FUT_STATS, false, 0);
    if (f == NULL || craft_future_wait(f, -1) != CRAFT_OK) {
        memset(stats, 0, sizeof *stats);
        stats->id = n->cfg.id;
        stats->failed = CRAFT_ESHUTDOWN;
    }
    craft_future_release(f);
}

/* ---- membership ---- */

static bool addr_ok(const struct craft_node *n, const char *addr)
{
    if (addr == NULL || addr[0] == '\0') {
        return n->cfg.transport == CRAFT_TRANSPORT_MEM;
    }
    if (strnlen(addr, CRAFT_ADDR_BYTES_MAX) >= CRAFT_ADDR_BYTES_MAX) {
        return false;
    }
    char host[CRAFT_ADDR_BYTES_MAX];
    uint16_t port;
    uint8_t buf[16];
    return rt_addr_split(addr, host, sizeof host, &port) &&
           (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1);
}

static struct craft_future *conf_submit(struct craft_node *n, struct rt_conf_req *c)
{
    struct rt_req *r = rt_req_new(REQ_CONF, NULL, 0);
    if (r == NULL) {
        free(c);
        return rt_future_failed(CRAFT_ENOMEM);
    }
    r->conf = c;
    return submit(n, r, FUT_CONF, false, 0);
}

static struct craft_future *change_one(struct craft_node *n, uint8_t type, uint64_t id,
                                       const char *addr, uint64_t prev_index)
{
    /* A NULL address keeps what the cluster knows (a demotion, or a server whose address
     * was given in the configured peers). */
    if (id == 0 || (addr != NULL && !addr_ok(n, addr))) {
        return rt_future_failed(CRAFT_EINVAL);
    }
    struct rt_conf_req *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return rt_future_failed(CRAFT_ENOMEM);
    }
    c->changes[0] = (struct craft_conf_change){.type = type, .id = id};
    c->n = 1;
    c->prev_index = prev_index;
    if (addr != NULL && addr[0] != '\0') {
        c->addrs[0].id = id;
        strcpy(c->addrs[0].addr, addr);
        c->n_addrs = 1;
    }
    return conf_submit(n, c);
}

struct craft_future *craft_add_voter(struct craft_node *n, uint64_t id, const char *addr,
                                     uint64_t prev_index)
{
    return change_one(n, CRAFT_CONF_ADD_VOTER, id, addr, prev_index);
}

struct craft_future *craft_add_nonvoter(struct craft_node *n, uint64_t id, const char *addr,
                                        uint64_t prev_index)
{
    return change_one(n, CRAFT_CONF_ADD_LEARNER, id, addr, prev_index);
}

struct craft_future *craft_demote_voter(struct craft_node *n, uint64_t id, uint64_t prev_index)
{
    if (id == 0) {
        return rt_future_failed(CRAFT_EINVAL);
    }
    struct rt_conf_req *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return rt_future_failed(CRAFT_ENOMEM);
    }
    c->changes[0] = (struct craft_conf_change){.type = CRAFT_CONF_ADD_LEARNER, .id = id};
    c->n = 1;
    c->prev_index = prev_index;
    c->demote = true;
    return conf_submit(n, c);
}

struct craft_future *craft_remove_server(struct craft_node *n, uint64_t id, uint64_t prev_index)
{
    return change_one(n, CRAFT_CONF_REMOVE, id, NULL, prev_index);
}

struct craft_future *craft_change_joint(struct craft_node *n, const struct craft_server *add,
                                        size_t n_add, const uint64_t *remove, size_t n_remove,
                                        uint64_t prev_index)
{
    if (n_add + n_remove == 0 || n_add + n_remove > CRAFT_CONF_NODES_MAX) {
        return rt_future_failed(CRAFT_EINVAL);
    }
    struct rt_conf_req *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return rt_future_failed(CRAFT_ENOMEM);
    }
    for (size_t i = 0; i < n_add; i++) {
        if (add[i].id == 0 || (add[i].addr[0] != '\0' && !addr_ok(n, add[i].addr))) {
            free(c);
            return rt_future_failed(CRAFT_EINVAL);
        }
        c->changes[c->n++] = (struct craft_conf_change){
            .type = add[i].voter ? CRAFT_CONF_ADD_VOTER : CRAFT_CONF_ADD_LEARNER, .id = add[i].id};
        if (add[i].addr[0] != '\0') {
            c->addrs[c->n_addrs++] = add[i];
        }
    }
    for (size_t i = 0; i < n_remove; i++) {
        c->changes[c->n++] = (struct craft_conf_change){.type = CRAFT_CONF_REMOVE, .id = remove[i]};
    }
    c->joint = true;
    c->prev_index = prev_index;
    return conf_submit(n, c);
}
