/* The in-process network for threaded hosts: a send hands a copy of the message straight
 * to the receiving host (its receive callback queues it in the group's inbox), on the
 * sender's thread. A read-write lock lets every node send at once; attaching, detaching
 * and cutting links take it exclusively, so after a detach no callback for that node runs. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt.h"

#define NET_NODES_MAX 64

struct endpoint {
    struct craft_transport base; /* first */
    struct craft_mem_net *net;
    uint64_t id;
    craft_transport_recv_fn recv;
    void *ctx;
};

struct cut {
    uint64_t a, b;
};

struct craft_mem_net {
    pthread_rwlock_t lock;
    struct endpoint *eps[NET_NODES_MAX];
    size_t n_eps;
    struct cut cuts[NET_NODES_MAX * 4];
    size_t n_cuts;
};

struct craft_mem_net *craft_mem_net_create(void)
{
    struct craft_mem_net *net = calloc(1, sizeof *net);
    if (net != NULL) {
        pthread_rwlock_init(&net->lock, NULL);
    }
    return net;
}

void craft_mem_net_destroy(struct craft_mem_net *net)
{
    if (net != NULL) {
        pthread_rwlock_destroy(&net->lock);
        free(net);
    }
}

static bool is_cut(const struct craft_mem_net *net, uint64_t a, uint64_t b)
{
    for (size_t i = 0; i < net->n_cuts; i++) {
        if ((net->cuts[i].a == a && net->cuts[i].b == b) ||
            (net->cuts[i].a == b && net->cuts[i].b == a)) {
            return true;
        }
    }
    return false;
}

void craft_mem_net_set_link(struct craft_mem_net *net, uint64_t a, uint64_t b, bool connected)
{
    pthread_rwlock_wrlock(&net->lock);
    for (size_t i = 0; i < net->n_cuts; i++) {
        if ((net->cuts[i].a == a && net->cuts[i].b == b) ||
            (net->cuts[i].a == b && net->cuts[i].b == a)) {
            net->cuts[i] = net->cuts[--net->n_cuts];
            break;
        }
    }
    if (!connected && net->n_cuts < sizeof net->cuts / sizeof net->cuts[0]) {
        net->cuts[net->n_cuts++] = (struct cut){a, b};
    }
    pthread_rwlock_unlock(&net->lock);
}

static int ep_send(struct craft_transport *t, uint64_t to, uint64_t group, const uint8_t *bytes,
                   size_t len)
{
    struct endpoint *ep = (struct endpoint *)t;
    struct craft_mem_net *net = ep->net;
    if (len == 0) {
        return CRAFT_EINVAL;
    }
    int rc = CRAFT_EUNKNOWNPEER;
    pthread_rwlock_rdlock(&net->lock);
    for (size_t i = 0; i < net->n_eps; i++) {
        struct endpoint *dst = net->eps[i];
        if (dst->id == to && to != ep->id) {
            if (!is_cut(net, ep->id, to)) {
                dst->recv(dst->ctx, ep->id, group, bytes, len);
            }
            rc = CRAFT_OK;
            break;
        }
    }
    pthread_rwlock_unlock(&net->lock);
    return rc;
}

static void ep_close(struct craft_transport *t)
{
    struct endpoint *ep = (struct endpoint *)t;
    struct craft_mem_net *net = ep->net;
    pthread_rwlock_wrlock(&net->lock);
    for (size_t i = 0; i < net->n_eps; i++) {
        if (net->eps[i] == ep) {
            net->eps[i] = net->eps[--net->n_eps];
            break;
        }
    }
    pthread_rwlock_unlock(&net->lock);
    free(ep);
}

struct craft_transport *rt_mem_net_attach(struct craft_mem_net *net, uint64_t id,
                                          craft_transport_recv_fn recv, void *ctx)
{
    struct endpoint *ep = calloc(1, sizeof *ep);
    if (ep == NULL) {
        return NULL;
    }
    ep->base.send = ep_send;
    ep->base.close = ep_close;
    ep->net = net;
    ep->id = id;
    ep->recv = recv;
    ep->ctx = ctx;
    pthread_rwlock_wrlock(&net->lock);
    bool ok = net->n_eps < NET_NODES_MAX;
    for (size_t i = 0; ok && i < net->n_eps; i++) {
        ok = net->eps[i]->id != id;
    }
    if (ok) {
        net->eps[net->n_eps++] = ep;
    }
    pthread_rwlock_unlock(&net->lock);
    if (!ok) {
        free(ep);
        return NULL;
    }
    return &ep->base;
}
