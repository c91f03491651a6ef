#include "transport/mem_transport.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/err.h"

struct mem_msg {
    struct mem_msg *next;
    uint64_t from, to, group;
    size_t len;
    uint8_t bytes[];
};

struct mem_endpoint {
    struct craft_transport base; /* first: the vtable pointer is the endpoint pointer */
    struct craft_mem_hub *hub;
    struct mem_endpoint *next;
    uint64_t id;
    craft_transport_recv_fn recv;
    void *ctx;
};

struct craft_mem_hub {
    uint32_t msg_bytes_max;
    size_t queue_bytes_max;
    struct mem_endpoint *endpoints;
    struct mem_msg *head, *tail;
    size_t n_queued;
    uint64_t n_dropped;
    /* Pending bytes per (from, to): a small table, grown on demand. */
    struct {
        uint64_t from, to;
        size_t bytes;
    } *pending;
    size_t n_pending, cap_pending;
};

static struct mem_endpoint *hub_find(const struct craft_mem_hub *hub, uint64_t id)
{
    for (struct mem_endpoint *e = hub->endpoints; e != NULL; e = e->next) {
        if (e->id == id) {
            return e;
        }
    }
    return NULL;
}

/* Returns the pending-bytes counter of (from, to), creating it; NULL if out of memory. */
static size_t *hub_pending(struct craft_mem_hub *hub, uint64_t from, uint64_t to)
{
    for (size_t i = 0; i < hub->n_pending; i++) {
        if (hub->pending[i].from == from && hub->pending[i].to == to) {
            return &hub->pending[i].bytes;
        }
    }
    if (hub->n_pending == hub->cap_pending) {
        size_t cap = hub->cap_pending ? hub->cap_pending * 2 : 8;
        void *p = realloc(hub->pending, cap * sizeof(*hub->pending));
        if (p == NULL) {
            return NULL;
        }
        hub->pending = p;
        hub->cap_pending = cap;
    }
    hub->pending[hub->n_pending].from = from;
    hub->pending[hub->n_pending].to = to;
    hub->pending[hub->n_pending].bytes = 0;
    return &hub->pending[hub->n_pending++].bytes;
}

static int mem_send(struct craft_transport *t, uint64_t to, uint64_t group, const uint8_t *bytes,
                    size_t len)
{
    struct mem_endpoint *e = (struct mem_endpoint *)t;
    struct craft_mem_hub *hub = e->hub;
    if (len == 0) {
        return CRAFT_EINVAL;
    }
    if (len > hub->msg_bytes_max) {
        return CRAFT_ETOOBIG;
    }
    if (to == e->id || hub_find(hub, to) == NULL) {
        return CRAFT_EUNKNOWNPEER;
    }
    size_t *pending = hub_pending(hub, e->id, to);
    if (pending == NULL) {
        return CRAFT_ENOMEM;
    }
    if (*pending + len > hub->queue_bytes_max) {
        return CRAFT_EBUSY;
    }
    struct mem_msg *m = malloc(sizeof(*m) + len);
    if (m == NULL) {
        return CRAFT_ENOMEM;
    }
    m->next = NULL;
    m->from = e->id;
    m->to = to;
    m->group = group;
    m->len = len;
    memcpy(m->bytes, bytes, len);
    if (hub->tail != NULL) {
        hub->tail->next = m;
    } else {
        hub->head = m;
    }
    hub->tail = m;
    hub->n_queued++;
    *pending += len;
    return CRAFT_OK;
}

static void mem_close(struct craft_transport *t)
{
    struct mem_endpoint *e = (struct mem_endpoint *)t;
    struct mem_endpoint **pp = &e->hub->endpoints;
    while (*pp != e) {
        CRAFT_ASSERT(*pp != NULL);
        pp = &(*pp)->next;
    }
    *pp = e->next;
    free(e);
}

struct craft_mem_hub *craft_mem_hub_create(uint32_t msg_bytes_max, size_t queue_bytes_max)
{
    if (msg_bytes_max == 0 || queue_bytes_max == 0) {
        return NULL;
    }
    struct craft_mem_hub *hub = calloc(1, sizeof(*hub));
    if (hub == NULL) {
        return NULL;
    }
    hub->msg_bytes_max = msg_bytes_max;
    hub->queue_bytes_max = queue_bytes_max;
    return hub;
}

void craft_mem_hub_destroy(struct craft_mem_hub *hub)
{
    if (hub == NULL) {
        return;
    }
    CRAFT_ASSERT(hub->endpoints == NULL);
    while (hub->head != NULL) {
        struct mem_msg *m = hub->head;
        hub->head = m->next;
        free(m);
    }
    free(hub->pending);
    free(hub);
}

struct craft_transport *craft_mem_transport_create(struct craft_mem_hub *hub, uint64_t id,
                                                   craft_transport_recv_fn recv, void *ctx)
{
    if (id == 0 || recv == NULL || hub_find(hub, id) != NULL) {
        return NULL;
    }
    struct mem_endpoint *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }
    e->base.send = mem_send;
    e->base.close = mem_close;
    e->hub = hub;
    e->id = id;
    e->recv = recv;
    e->ctx = ctx;
    e->next = hub->endpoints;
    hub->endpoints = e;
    return &e->base;
}

size_t craft_mem_hub_pump(struct craft_mem_hub *hub)
{
    /* Detach the current queue first: callbacks may send, and those wait for the next
     * round, so one pump is one bounded step. */
    struct mem_msg *m = hub->head;
    hub->head = hub->tail = NULL;
    size_t delivered = 0;
    while (m != NULL) {
        struct mem_msg *next = m->next;
        hub->n_queued--;
        size_t *pending = hub_pending(hub, m->from, m->to);
        CRAFT_ASSERT(pending != NULL && *pending >= m->len); /* the entry exists already */
        *pending -= m->len;
        struct mem_endpoint *dst = hub_find(hub, m->to);
        if (dst != NULL) {
            dst->recv(dst->ctx, m->from, m->group, m->bytes, m->len);
            delivered++;
        } else {
            hub->n_dropped++;
        }
        free(m);
        m = next;
    }
    return delivered;
}

size_t craft_mem_hub_pump_all(struct craft_mem_hub *hub, size_t rounds_max)
{
    size_t total = 0;
    for (size_t i = 0; i < rounds_max && hub->head != NULL; i++) {
        total += craft_mem_hub_pump(hub);
    }
    return total;
}

size_t craft_mem_hub_queued(const struct craft_mem_hub *hub)
{
    return hub->n_queued;
}

uint64_t craft_mem_hub_dropped(const struct craft_mem_hub *hub)
{
    return hub->n_dropped;
}
