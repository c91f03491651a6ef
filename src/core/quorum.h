/* Quorum arithmetic: the only place that counts votes or match indexes (DESIGN decision 4).
 *
 * A majority configuration is a set of voter ids; a joint configuration is two of them, and
 * a decision needs both. Pure functions of their arguments. */
#ifndef CRAFT_CORE_QUORUM_H
#define CRAFT_CORE_QUORUM_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

enum craft_vote_result {
    CRAFT_VOTE_PENDING = 1, /* neither won nor lost yet */
    CRAFT_VOTE_WON,
    CRAFT_VOTE_LOST,
};

/* Looks up a voter's value: its match index, or its vote (1 granted, 0 rejected, -1 none).
 * found is set false if the voter has no value. */
typedef uint64_t (*craft_quorum_index_fn)(void *ctx, uint64_t id, bool *found);
typedef int (*craft_quorum_vote_fn)(void *ctx, uint64_t id);

/* The highest index that a majority of voters[0..n) has reached (missing voters count as
 * 0). An empty voter set returns UINT64_MAX, so that it never limits a joint decision. */
uint64_t craft_quorum_majority_committed(const uint64_t *voters, uint32_t n,
                                         craft_quorum_index_fn index_of, void *ctx);

/* The vote result of a majority configuration. An empty voter set wins. */
enum craft_vote_result craft_quorum_majority_vote(const uint64_t *voters, uint32_t n,
                                                  craft_quorum_vote_fn vote_of, void *ctx);

/* Joint forms: both the incoming (conf->voters) and the outgoing (conf->voters_outgoing)
 * majorities; with no outgoing voters this is the plain majority. committed is the minimum
 * of the two; the vote is won only if both are won, lost if either is lost. */
uint64_t craft_quorum_committed(const struct craft_conf *conf, craft_quorum_index_fn index_of,
                                void *ctx);
enum craft_vote_result craft_quorum_vote(const struct craft_conf *conf,
                                         craft_quorum_vote_fn vote_of, void *ctx);

#endif
