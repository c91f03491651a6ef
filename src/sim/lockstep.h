/* A lockstep cluster: cores wired to a perfect network (every message encoded, decoded and
 * delivered in send order) with immediate persistence and a hand-driven clock. No faults:
 * the simulator (cluster.h) covers those. Used by the core's unit tests and the pure-core
 * throughput benchmark, where the point is the protocol's own cost. */
#ifndef CRAFT_SIM_LOCKSTEP_H
#define CRAFT_SIM_LOCKSTEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/msg_codec.h"
#include "core/core.h"

#define LOCKSTEP_NODES_MAX 9

/* What the tests see of a message that left a node (the last LOCKSTEP_SENT_MAX of them,
 * in send order; reset n_sent to start a new window). */
struct lockstep_sent {
    uint8_t type; /* enum craft_msg_type */
    bool reject;
    uint64_t from, to, term, log_index, commit, index, ctx;
    uint32_t n_entries;
};

#define LOCKSTEP_SENT_MAX 4096

struct lockstep_wire {
    uint64_t to;
    size_t len;
    uint8_t *bytes;
};

struct lockstep {
    int n;
    uint64_t now;
    struct craft_core *cores[LOCKSTEP_NODES_MAX];
    bool down[LOCKSTEP_NODES_MAX];
    struct lockstep_wire *q; /* FIFO of encoded messages: q[head..n) */
    size_t q_head, q_n, q_cap;
    struct craft_msg_decoder decoder;
    /* What each node applied: NORMAL entries only, payload read as a little-endian u64. */
    uint64_t applied_count[LOCKSTEP_NODES_MAX];
    uint64_t applied_sum[LOCKSTEP_NODES_MAX];
    uint64_t msgs_sent, bytes_sent, step_errors;
    /* Reads released by the cores (all nodes, in order) and learners reported caught up. */
    struct {
        int node;
        struct craft_read_state r;
    } reads[256];
    size_t n_reads;
    uint64_t caught_up[LOCKSTEP_NODES_MAX];
    size_t n_caught_up;
    /* Messages sent (also those later dropped), for tests that count the protocol's cost. */
    struct lockstep_sent sent[LOCKSTEP_SENT_MAX];
    size_t n_sent;
    /* cut[i][j]: messages from node index i to node index j are dropped (one-way cut). */
    bool cut[LOCKSTEP_NODES_MAX][LOCKSTEP_NODES_MAX];
};

/* Creates n (1..LOCKSTEP_NODES_MAX) nodes with default configuration, ids 1..n, all voters.
 * seed varies the election timeouts. */
void lockstep_init(struct lockstep *ls, int n, uint64_t seed);
/* As lockstep_init, but only nodes 1..n_voters are in the bootstrap configuration; the
 * others start with an empty one (they join when a configuration change adds them). */
void lockstep_init_voters(struct lockstep *ls, int n, int n_voters, uint64_t seed);
/* As lockstep_init_voters, with every core configured from *tmpl (its id and seed are
 * replaced per node). */
void lockstep_init_config(struct lockstep *ls, int n, int n_voters, uint64_t seed,
                          const struct craft_core_config *tmpl);
void lockstep_free(struct lockstep *ls);

/* Takes every live node's ready batches (their messages queued, not delivered). */
void lockstep_flush(struct lockstep *ls);

/* Delivers every queued message, and the ones they cause, at the current time. */
void lockstep_deliver_all(struct lockstep *ls);
/* Advances the clock to the earliest timer of a live node, fires it, delivers. */
void lockstep_advance(struct lockstep *ls);
/* Messages in the sent window of `type` (0: any) from node index `from` to node index
 * `to` (-1: any). */
size_t lockstep_count(const struct lockstep *ls, int type, int from, int to);
/* The live leader's index, or -1. */
int lockstep_leader(struct lockstep *ls);
/* Advances until a leader exists (at most `rounds` timer firings); returns it or -1. */
int lockstep_elect(struct lockstep *ls, int rounds);

#endif
