#include "core/quorum.h"

#include "base/assert.h"

uint64_t craft_quorum_majority_committed(const uint64_t *voters, uint32_t n,
                                         craft_quorum_index_fn index_of, void *ctx)
{
    CRAFT_ASSERT(n <= CRAFT_CONF_NODES_MAX);
    if (n == 0) {
        return UINT64_MAX;
    }
    uint64_t match[CRAFT_CONF_NODES_MAX];
    for (uint32_t i = 0; i < n; i++) {
        bool found = false;
        uint64_t v = index_of(ctx, voters[i], &found);
        match[i] = found ? v : 0;
    }
    /* Insertion sort, descending: n is small, and this avoids qsort's callback. */
    for (uint32_t i = 1; i < n; i++) {
        uint64_t v = match[i];
        uint32_t j = i;
        while (j > 0 && match[j - 1] < v) {
            match[j] = match[j - 1];
            j--;
        }
        match[j] = v;
    }
    /* The (n/2 + 1)-th largest value is reached by a majority. */
    return match[n / 2];
}

enum craft_vote_result craft_quorum_majority_vote(const uint64_t *voters, uint32_t n,
                                                  craft_quorum_vote_fn vote_of, void *ctx)
{
    CRAFT_ASSERT(n <= CRAFT_CONF_NODES_MAX);
    if (n == 0) {
        return CRAFT_VOTE_WON;
    }
    uint32_t granted = 0, rejected = 0, missing = 0;
    for (uint32_t i = 0; i < n; i++) {
        int v = vote_of(ctx, voters[i]);
        if (v > 0) {
            granted++;
        } else if (v == 0) {
            rejected++;
        } else {
            missing++;
        }
    }
    uint32_t quorum = n / 2 + 1;
    if (granted >= quorum) {
        return CRAFT_VOTE_WON;
    }
    if (granted + missing >= quorum) {
        return CRAFT_VOTE_PENDING;
    }
    return CRAFT_VOTE_LOST;
}

uint64_t craft_quorum_committed(const struct craft_conf *conf, craft_quorum_index_fn index_of,
                                void *ctx)
{
    uint64_t in = craft_quorum_majority_committed(conf->voters, conf->n_voters, index_of, ctx);
    uint64_t out = craft_quorum_majority_committed(conf->voters_outgoing,
                                                   conf->n_voters_outgoing, index_of, ctx);
    uint64_t c = in < out ? in : out;
    /* Both empty cannot happen in a valid configuration; never report "everything". */
    return c == UINT64_MAX ? 0 : c;
}

enum craft_vote_result craft_quorum_vote(const struct craft_conf *conf,
                                         craft_quorum_vote_fn vote_of, void *ctx)
{
    enum craft_vote_result in =
        craft_quorum_majority_vote(conf->voters, conf->n_voters, vote_of, ctx);
    enum craft_vote_result out =
        craft_quorum_majority_vote(conf->voters_outgoing, conf->n_voters_outgoing, vote_of, ctx);
    if (in == CRAFT_VOTE_LOST || out == CRAFT_VOTE_LOST) {
        return CRAFT_VOTE_LOST;
    }
    if (in == CRAFT_VOTE_WON && out == CRAFT_VOTE_WON) {
        return CRAFT_VOTE_WON;
    }
    return CRAFT_VOTE_PENDING;
}
