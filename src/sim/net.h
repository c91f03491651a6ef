/* The simulated network: labrpc's model (mit-6.5840-tests.md sections 2 and 12) for
 * one-way messages between nodes 0..n-1.
 *
 * A message is a request or a response (craft_msg_type_is_response of its peeked type).
 * Loss rules: lost at send if the link is disabled or the receiver is down; lost at
 * delivery if the receiver went down or came back as a new incarnation since the send, if
 * the link was disabled meanwhile, or (responses only) if the sender crashed meanwhile:
 * labrpc drops the reply of a server that was deleted. Unreliable mode delays requests by
 * U[0,27) ms and drops 10% of requests and 10% of responses; long reordering holds back
 * 600/900 of responses for 200 + U[0, U[0,2000]] ms. Every message also gets a tiny base
 * latency (U[0,2) ms) so that delivery is an event like any other.
 *
 * Counters follow labrpc: rpc_total counts every request sent (delivered or not),
 * bytes_total adds request bytes at send and response bytes at delivery, rpc_count[i]
 * counts requests delivered to i. Internal to src/sim. */
#ifndef CRAFT_SIM_NET_H
#define CRAFT_SIM_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/world.h"

/* Hands a delivered message of Raft group `group` to node (process) `to`. bytes is
 * borrowed for the call. */
typedef void (*sim_net_deliver_fn)(void *ctx, int from, int to, uint64_t group,
                                   const uint8_t *bytes, size_t len);

struct sim_packet;

struct sim_net {
    struct sim_world *w;
    int n;
    bool *link;         /* n*n: link[from*n+to] */
    uint64_t *link_last_at; /* n*n: latest delivery time scheduled on the link */
    bool *up;           /* n */
    uint64_t *inc;      /* n: incarnation, bumped at every up and down */
    bool reliable;
    bool long_reordering;
    uint32_t dup_per_mille;
    uint32_t tail_per_mille; /* cluster.h */
    uint64_t rpc_total, bytes_total;
    uint64_t *rpc_count; /* n */
    uint64_t sent, delivered, dropped; /* all messages, for stats and tests */
    sim_net_deliver_fn deliver;
    void *ctx;
    struct sim_packet *free_list;
    struct sim_packet **all; /* every packet ever allocated, to free them */
    size_t n_all, cap_all;
};

/* All links start disabled, all nodes down, reliable mode. Asserts on out of memory. */
void sim_net_init(struct sim_net *net, struct sim_world *w, int n, sim_net_deliver_fn deliver,
                  void *ctx);
/* Frees packets, including ones still in flight: call only with the world's queue dead. */
void sim_net_free(struct sim_net *net);

void sim_net_set_link(struct sim_net *net, int from, int to, bool enabled);
bool sim_net_link(const struct sim_net *net, int from, int to);
/* A node comes up or goes down; either way it is a new incarnation, so messages in flight
 * to (and responses from) the old one are lost. */
void sim_net_node_up(struct sim_net *net, int i);
bool sim_net_is_up(const struct sim_net *net, int i);
void sim_net_node_down(struct sim_net *net, int i);

/* Sends a copy of bytes, a message of group `group`, from `from` to `to`. Nodes are
 * processes: links, loss and incarnations are per process, whatever the group. */
void sim_net_send(struct sim_net *net, int from, int to, uint64_t group, const uint8_t *bytes,
                  size_t len);

#endif
