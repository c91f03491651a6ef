/* Quorum arithmetic (src/core/quorum.c) against naive oracles over random configurations:
 * committed index by brute force over candidate values, vote result by enumerating every
 * way the missing votes could still go. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/prng.h"
#include "core/quorum.h"
#include "unit.h"

static int cur_iter;



static const uint64_t seeds[] = {1, 2, 3, 17, 4242, 0xc0ffeeULL, 987654321, 31337, 8, 2024};
#define N_SEEDS (sizeof(seeds) / sizeof(seeds[0]))
#define ITERS_PER_SEED 1000

/* ---- the world a callback looks values up in --------------------------------------- */

#define ID_POOL 16 /* ids 1..ID_POOL */

struct world {
    bool has_match[ID_POOL + 1];
    uint64_t match[ID_POOL + 1];
    int vote[ID_POOL + 1]; /* 1 granted, 0 rejected, -1 none */
    /* Every id a callback was asked about must be a voter of the configuration. */
    bool asked_outside;
    const struct craft_conf *conf;
};

static bool conf_has_voter(const struct craft_conf *c, uint64_t id)
{
    for (uint32_t i = 0; i < c->n_voters; i++) {
        if (c->voters[i] == id) {
            return true;
        }
    }
    for (uint32_t i = 0; i < c->n_voters_outgoing; i++) {
        if (c->voters_outgoing[i] == id) {
            return true;
        }
    }
    return false;
}

static uint64_t index_of(void *ctx, uint64_t id, bool *found)
{
    struct world *w = ctx;
    if (id == 0 || id > ID_POOL || !conf_has_voter(w->conf, id)) {
        w->asked_outside = true;
        *found = false;
        return 0;
    }
    *found = w->has_match[id];
    return w->has_match[id] ? w->match[id] : 12345; /* garbage when not found: must be ignored */
}

static int vote_of(void *ctx, uint64_t id)
{
    struct world *w = ctx;
    if (id == 0 || id > ID_POOL || !conf_has_voter(w->conf, id)) {
        w->asked_outside = true;
        return -1;
    }
    return w->vote[id];
}

/* ---- random inputs ----------------------------------------------------------------- */

static void rand_list(struct craft_prng *r, uint64_t *ids, uint32_t *n)
{
    *n = (uint32_t)craft_prng_range(r, 0, 10);
    for (uint32_t i = 0; i < *n; i++) {
        uint64_t id;
        bool dup;
        do {
            id = craft_prng_range(r, 1, ID_POOL + 1);
            dup = false;
            for (uint32_t k = 0; k < i; k++) {
                dup |= ids[k] == id;
            }
        } while (dup);
        ids[i] = id;
    }
}

static void rand_conf(struct craft_prng *r, struct craft_conf *c, bool joint)
{
    memset(c, 0, sizeof(*c));
    rand_list(r, c->voters, &c->n_voters);
    if (joint) {
        rand_list(r, c->voters_outgoing, &c->n_voters_outgoing);
    }
}

static void rand_world(struct craft_prng *r, struct world *w, const struct craft_conf *c)
{
    memset(w, 0, sizeof(*w));
    w->conf = c;
    /* A narrow value range makes ties common; sometimes a wide one. */
    uint64_t hi = craft_prng_chance(r, 200) ? UINT64_MAX - 1 : craft_prng_range(r, 1, 12);
    for (int id = 1; id <= ID_POOL; id++) {
        w->has_match[id] = craft_prng_chance(r, 850);
        w->match[id] = craft_prng_range(r, 0, hi);
        w->vote[id] = (int)craft_prng_range(r, 0, 3) - 1;
    }
}

/* ---- oracles ----------------------------------------------------------------------- */

static uint64_t naive_match(const struct world *w, uint64_t id)
{
    return w->has_match[id] ? w->match[id] : 0;
}

/* The largest x with count(match >= x) >= n/2 + 1, trying every candidate value. */
static uint64_t naive_majority_committed(const struct world *w, const uint64_t *ids, uint32_t n)
{
    if (n == 0) {
        return UINT64_MAX;
    }
    uint64_t best = 0;
    for (uint32_t c = 0; c < n; c++) {
        uint64_t x = naive_match(w, ids[c]);
        uint32_t reached = 0;
        for (uint32_t i = 0; i < n; i++) {
            reached += naive_match(w, ids[i]) >= x;
        }
        if (reached >= n / 2 + 1 && x > best) {
            best = x;
        }
    }
    return best;
}

static uint64_t naive_committed(const struct world *w, const struct craft_conf *c)
{
    if (c->n_voters == 0 && c->n_voters_outgoing == 0) {
        return 0;
    }
    uint64_t in = naive_majority_committed(w, c->voters, c->n_voters);
    uint64_t out = naive_majority_committed(w, c->voters_outgoing, c->n_voters_outgoing);
    return in < out ? in : out;
}

/* Granted votes among ids, with the missing ones in `missing` decided by the bits of
 * `completion`. */
static bool wins(const struct world *w, const uint64_t *ids, uint32_t n, const uint64_t *missing,
                 uint32_t n_missing, uint32_t completion)
{
    if (n == 0) {
        return true;
    }
    uint32_t granted = 0;
    for (uint32_t i = 0; i < n; i++) {
        int v = w->vote[ids[i]];
        if (v < 0) {
            for (uint32_t k = 0; k < n_missing; k++) {
                if (missing[k] == ids[i]) {
                    v = (completion >> k) & 1;
                }
            }
        }
        granted += v == 1;
    }
    return granted > n / 2;
}

/* WON if every way the missing votes can go wins, LOST if none does, else PENDING. A voter
 * in both halves of a joint configuration casts one vote for both. */
static enum craft_vote_result naive_vote(const struct world *w, const struct craft_conf *c)
{
    uint64_t missing[2 * ID_POOL];
    uint32_t n_missing = 0;
    const uint64_t *lists[2] = {c->voters, c->voters_outgoing};
    uint32_t lens[2] = {c->n_voters, c->n_voters_outgoing};
    for (int l = 0; l < 2; l++) {
        for (uint32_t i = 0; i < lens[l]; i++) {
            uint64_t id = lists[l][i];
            bool seen = false;
            for (uint32_t k = 0; k < n_missing; k++) {
                seen |= missing[k] == id;
            }
            if (w->vote[id] < 0 && !seen) {
                missing[n_missing++] = id;
            }
        }
    }
    uint32_t n_won = 0, total = 1u << n_missing;
    for (uint32_t comp = 0; comp < total; comp++) {
        n_won += wins(w, c->voters, c->n_voters, missing, n_missing, comp) &&
                 wins(w, c->voters_outgoing, c->n_voters_outgoing, missing, n_missing, comp);
    }
    if (n_won == total) {
        return CRAFT_VOTE_WON;
    }
    return n_won == 0 ? CRAFT_VOTE_LOST : CRAFT_VOTE_PENDING;
}

/* ---- cases ------------------------------------------------------------------------- */

static void test_committed_oracle(void)
{
    for (size_t s = 0; s < N_SEEDS; s++) {
        cur_seed = seeds[s];
        struct craft_prng r;
        craft_prng_seed(&r, cur_seed);
        for (cur_iter = 0; cur_iter < ITERS_PER_SEED; cur_iter++) {
            struct craft_conf c;
            struct world w;
            rand_conf(&r, &c, craft_prng_chance(&r, 500));
            rand_world(&r, &w, &c);
            uint64_t got = craft_quorum_committed(&c, index_of, &w);
            uint64_t want = naive_committed(&w, &c);
            CHECK(got == want);
            CHECK(craft_quorum_majority_committed(c.voters, c.n_voters, index_of, &w) ==
                  naive_majority_committed(&w, c.voters, c.n_voters));
            CHECK(craft_quorum_majority_committed(c.voters_outgoing, c.n_voters_outgoing,
                                                  index_of, &w) ==
                  naive_majority_committed(&w, c.voters_outgoing, c.n_voters_outgoing));
            CHECK(!w.asked_outside);
            if (got != want) {
                printf("  voters %u outgoing %u: got %" PRIu64 " want %" PRIu64 "\n",
                       c.n_voters, c.n_voters_outgoing, got, want);
            }
        }
    }
}

static void test_vote_oracle(void)
{
    uint32_t seen[4] = {0};
    for (size_t s = 0; s < N_SEEDS; s++) {
        cur_seed = seeds[s];
        struct craft_prng r;
        craft_prng_seed(&r, cur_seed);
        for (cur_iter = 0; cur_iter < ITERS_PER_SEED; cur_iter++) {
            struct craft_conf c;
            struct world w;
            rand_conf(&r, &c, craft_prng_chance(&r, 500));
            rand_world(&r, &w, &c);
            enum craft_vote_result got = craft_quorum_vote(&c, vote_of, &w);
            enum craft_vote_result want = naive_vote(&w, &c);
            CHECK(got == want);
            struct craft_conf in_only = c;
            in_only.n_voters_outgoing = 0;
            CHECK(craft_quorum_majority_vote(c.voters, c.n_voters, vote_of, &w) ==
                  naive_vote(&w, &in_only));
            CHECK(!w.asked_outside);
            if (got != want) {
                printf("  voters %u outgoing %u: got %d want %d\n", c.n_voters,
                       c.n_voters_outgoing, (int)got, (int)want);
            }
            if (want >= 1 && want <= 3) {
                seen[want]++;
            }
        }
    }
    cur_iter = -1;
    /* The random inputs reach every outcome often. */
    CHECK(seen[CRAFT_VOTE_WON] > 500 && seen[CRAFT_VOTE_LOST] > 500 &&
          seen[CRAFT_VOTE_PENDING] > 500);
}

/* Hand-made cases that read like the thesis' examples. */
static void test_known_answers(void)
{
    struct craft_conf c = {0};
    struct world w;
    memset(&w, 0, sizeof(w));
    w.conf = &c;
    c.n_voters = 3;
    c.voters[0] = 1;
    c.voters[1] = 2;
    c.voters[2] = 3;
    for (int id = 1; id <= 3; id++) {
        w.has_match[id] = true;
    }
    w.match[1] = 5;
    w.match[2] = 3;
    w.match[3] = 1;
    CHECK(craft_quorum_committed(&c, index_of, &w) == 3);
    w.has_match[2] = false; /* unknown progress counts as 0 */
    CHECK(craft_quorum_committed(&c, index_of, &w) == 1);
    w.has_match[2] = true;

    /* Joint C_old,new (thesis 4.3): the outgoing half {1, 4, 5} lags, so it decides. */
    c.n_voters_outgoing = 3;
    c.voters_outgoing[0] = 1;
    c.voters_outgoing[1] = 4;
    c.voters_outgoing[2] = 5;
    w.has_match[4] = w.has_match[5] = true;
    w.match[4] = 2;
    w.match[5] = 0;
    CHECK(craft_quorum_committed(&c, index_of, &w) == 2);
    /* Votes: the incoming half won, the outgoing half has only one of three. */
    w.vote[1] = 1;
    w.vote[2] = 1;
    w.vote[3] = 0;
    w.vote[4] = -1;
    w.vote[5] = 0;
    CHECK(craft_quorum_vote(&c, vote_of, &w) == CRAFT_VOTE_PENDING);
    w.vote[4] = 1;
    CHECK(craft_quorum_vote(&c, vote_of, &w) == CRAFT_VOTE_WON);
    w.vote[4] = 0;
    CHECK(craft_quorum_vote(&c, vote_of, &w) == CRAFT_VOTE_LOST);

    /* Even sizes need n/2 + 1: two of four is not a majority. */
    c.n_voters_outgoing = 0;
    c.n_voters = 4;
    c.voters[3] = 4;
    w.vote[1] = 1;
    w.vote[2] = 1;
    w.vote[3] = 0;
    w.vote[4] = 0;
    CHECK(craft_quorum_vote(&c, vote_of, &w) == CRAFT_VOTE_LOST);
    w.vote[4] = -1;
    CHECK(craft_quorum_vote(&c, vote_of, &w) == CRAFT_VOTE_PENDING);
    w.match[1] = 9;
    w.match[2] = 9;
    w.match[3] = 1;
    w.match[4] = 1;
    CHECK(craft_quorum_committed(&c, index_of, &w) == 1);

    /* Empty sets: a majority of nobody is everything and always won; a configuration with no
     * voters at all commits nothing. */
    CHECK(craft_quorum_majority_committed(NULL, 0, index_of, &w) == UINT64_MAX);
    CHECK(craft_quorum_majority_vote(NULL, 0, vote_of, &w) == CRAFT_VOTE_WON);
    c.n_voters = 0;
    CHECK(craft_quorum_committed(&c, index_of, &w) == 0);
    CHECK(!w.asked_outside);
}

int main(void)
{
    run_case("committed_oracle", test_committed_oracle);
    run_case("vote_oracle", test_vote_oracle);
    run_case("known_answers", test_known_answers);
    return unit_finish();
}
