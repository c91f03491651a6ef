#include "sim/net.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/trace.h"
#include "codec/msg_codec.h"

struct sim_packet {
    struct sim_packet *next; /* free list */
    int from, to;
    uint64_t group;
    uint64_t from_inc, to_inc;
    bool is_request;
    int type;
    size_t len, cap;
    uint8_t *bytes;
};

void sim_net_init(struct sim_net *net, struct sim_world *w, int n, sim_net_deliver_fn deliver,
                  void *ctx)
{
    CRAFT_ASSERT(n > 0);
    *net = (struct sim_net){.w = w, .n = n, .reliable = true, .deliver = deliver, .ctx = ctx};
    net->link = calloc((size_t)n * (size_t)n, sizeof *net->link);
    net->link_last_at = calloc((size_t)n * (size_t)n, sizeof *net->link_last_at);
    net->up = calloc((size_t)n, sizeof *net->up);
    net->inc = calloc((size_t)n, sizeof *net->inc);
    net->rpc_count = calloc((size_t)n, sizeof *net->rpc_count);
    CRAFT_ASSERT(net->link && net->link_last_at && net->up && net->inc && net->rpc_count);
}

void sim_net_free(struct sim_net *net)
{
    for (size_t i = 0; i < net->n_all; i++) {
        free(net->all[i]->bytes);
        free(net->all[i]);
    }
    free(net->all);
    free(net->link);
    free(net->link_last_at);
    free(net->up);
    free(net->inc);
    free(net->rpc_count);
    *net = (struct sim_net){0};
}

void sim_net_set_link(struct sim_net *net, int from, int to, bool enabled)
{
    CRAFT_ASSERT(from >= 0 && from < net->n && to >= 0 && to < net->n);
    net->link[from * net->n + to] = enabled;
}

bool sim_net_link(const struct sim_net *net, int from, int to)
{
    return net->link[from * net->n + to];
}

void sim_net_node_up(struct sim_net *net, int i)
{
    net->up[i] = true;
    net->inc[i]++;
}

bool sim_net_is_up(const struct sim_net *net, int i)
{
    return net->up[i];
}

void sim_net_node_down(struct sim_net *net, int i)
{
    net->up[i] = false;
    net->inc[i]++;
}

static struct sim_packet *packet_get(struct sim_net *net, size_t len)
{
    struct sim_packet *p = net->free_list;
    if (p != NULL) {
        net->free_list = p->next;
    } else {
        p = calloc(1, sizeof *p);
        CRAFT_ASSERT(p != NULL);
        if (net->n_all == net->cap_all) {
            size_t cap = net->cap_all ? net->cap_all * 2 : 64;
            struct sim_packet **all = realloc(net->all, cap * sizeof *all);
            CRAFT_ASSERT(all != NULL);
            net->all = all;
            net->cap_all = cap;
        }
        net->all[net->n_all++] = p;
    }
    if (p->cap < len) {
        size_t cap = p->cap ? p->cap : 64;
        while (cap < len) {
            cap *= 2;
        }
        uint8_t *b = realloc(p->bytes, cap);
        CRAFT_ASSERT(b != NULL);
        p->bytes = b;
        p->cap = cap;
    }
    p->len = len;
    p->next = NULL;
    return p;
}

static void packet_put(struct sim_net *net, struct sim_packet *p)
{
    p->next = net->free_list;
    net->free_list = p;
}

static void drop(struct sim_net *net, int from, int to, int type, const char *why)
{
    net->dropped++;
    CRAFT_TRACE(CRAFT_T_NET, net->w->now, 0, 0, "drop %d->%d %s: %s", from + 1, to + 1,
                craft_msg_type_name((enum craft_msg_type)type), why);
}

static void deliver_event(void *ctx, void *arg, uint64_t a)
{
    (void)a;
    struct sim_net *net = ctx;
    struct sim_packet *p = arg;
    if (!net->up[p->to] || net->inc[p->to] != p->to_inc) {
        drop(net, p->from, p->to, p->type, "receiver crashed");
    } else if (!sim_net_link(net, p->from, p->to)) {
        drop(net, p->from, p->to, p->type, "link disabled in flight");
    } else if (!p->is_request && net->inc[p->from] != p->from_inc) {
        drop(net, p->from, p->to, p->type, "responder crashed");
    } else {
        net->delivered++;
        if (p->is_request) {
            net->rpc_count[p->to]++;
        } else {
            net->bytes_total += p->len;
        }
        CRAFT_TRACE(CRAFT_T_NET, net->w->now, 0, 0, "deliver %d->%d %s %zu bytes", p->from + 1,
                    p->to + 1, craft_msg_type_name((enum craft_msg_type)p->type), p->len);
        net->deliver(net->ctx, p->from, p->to, p->group, p->bytes, p->len);
    }
    packet_put(net, p);
}

static uint64_t delay_of(struct sim_net *net, bool is_request)
{
    struct sim_world *w = net->w;
    uint64_t delay = sim_world_rand(w, 0, 2);
    if (!net->reliable && is_request) {
        delay += sim_world_rand(w, 0, 27);
    }
    if (!is_request && net->long_reordering && sim_world_rand(w, 0, 900) < 600) {
        /* labrpc: 200 + rand.Intn(1 + rand.Intn(2000)) */
        uint64_t hi = 1 + sim_world_rand(w, 0, 2000);
        delay += 200 + sim_world_rand(w, 0, hi);
    }
    if (!net->reliable && net->tail_per_mille > 0 && sim_world_chance(w, net->tail_per_mille)) {
        delay += 200 + sim_world_rand(w, 0, 2801);
    }
    return delay;
}

static void schedule(struct sim_net *net, int from, int to, uint64_t group, int type,
                     bool is_request, const uint8_t *bytes, size_t len, uint64_t delay)
{
    struct sim_packet *p = packet_get(net, len);
    p->from = from;
    p->to = to;
    p->group = group;
    p->from_inc = net->inc[from];
    p->to_inc = net->inc[to];
    p->is_request = is_request;
    p->type = type;
    if (len > 0) {
        memcpy(p->bytes, bytes, len);
    }
    uint64_t at = net->w->now + delay;
    uint64_t *last = &net->link_last_at[from * net->n + to];
    if (net->reliable && !net->long_reordering) {
        /* A reliable network is a TCP connection: first in, first out per link. Events at
         * equal times run in insertion order, so max() keeps the order. The unreliable
         * network reorders, as labrpc does. */
        if (at < *last) {
            at = *last;
        }
    }
    *last = at;
    sim_world_at(net->w, at, deliver_event, net, p, 0);
}

void sim_net_send(struct sim_net *net, int from, int to, uint64_t group, const uint8_t *bytes,
                  size_t len)
{
    CRAFT_ASSERT(from >= 0 && from < net->n && to >= 0 && to < net->n);
    int type = craft_msg_peek_type(bytes, len);
    bool is_request = !(type > 0 && craft_msg_type_is_response((enum craft_msg_type)type));
    net->sent++;
    if (is_request) {
        net->rpc_total++;
        net->bytes_total += len;
    }
    if (!sim_net_link(net, from, to)) {
        drop(net, from, to, type, "link disabled");
        return;
    }
    if (!net->up[to]) {
        drop(net, from, to, type, "receiver down");
        return;
    }
    if (!net->reliable && sim_world_chance(net->w, 100)) {
        drop(net, from, to, type, is_request ? "request lost" : "response lost");
        return;
    }
    uint64_t delay = delay_of(net, is_request);
    CRAFT_TRACE(CRAFT_T_NET, net->w->now, 0, 0, "send %d->%d %s %zu bytes +%llums", from + 1,
                to + 1, craft_msg_type_name((enum craft_msg_type)type), len,
                (unsigned long long)delay);
    schedule(net, from, to, group, type, is_request, bytes, len, delay);
    if (net->dup_per_mille > 0 && sim_world_chance(net->w, net->dup_per_mille)) {
        uint64_t later = delay + 1 + sim_world_rand(net->w, 0, 27);
        CRAFT_TRACE(CRAFT_T_NET, net->w->now, 0, 0, "duplicate %d->%d +%llums", from + 1, to + 1,
                    (unsigned long long)later);
        schedule(net, from, to, group, type, is_request, bytes, len, later);
    }
}
