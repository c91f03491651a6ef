/* The voting rules of one node (thesis figure 3.1, 3.6.1, 4.2.3, 9.6), stepped by hand:
 * each case builds a node's state, hands it vote requests and reads its answers and its
 * hard state. The simulator sees a broken rule only when the rare schedule that needs it
 * happens (two candidates in one term, a stale candidate with a longer log of an older
 * term); here every rule meets the input that tells it apart. */
#include <string.h>

#include "core/core.h"
#include "unit.h"

/* A restarted node grants no vote for an election timeout (a lease it promised may still
 * run: step.c); every case here starts after that. */
#define START 5000

struct answer {
    bool sent, granted, durable;
    uint64_t term;
};

/* Node 1 of voters {1,2,3,4,5}, with a log of `n` entries whose terms are `terms`, at hard
 * state (term, vote). */
static struct craft_core *node(uint64_t term, uint64_t vote, const uint64_t *terms, size_t n)
{
    static uint8_t payload[8];
    static struct craft_entry es[16];
    CHECK(n <= 16);
    for (size_t i = 0; i < n; i++) {
        es[i] = (struct craft_entry){.term = terms[i], .index = i + 1,
                                     .type = CRAFT_ENTRY_NORMAL, .len = 8, .data = payload};
    }
    struct craft_core_restore r;
    memset(&r, 0, sizeof r);
    r.hs.term = term;
    r.hs.vote = vote;
    r.entries = es;
    r.n_entries = n;
    r.bootstrap_conf.n_voters = 5;
    for (int i = 0; i < 5; i++) {
        r.bootstrap_conf.voters[i] = (uint64_t)i + 1;
    }
    struct craft_core_config cfg;
    craft_core_config_default(&cfg, 1);
    struct craft_core *core = craft_core_create(&cfg, &r, 0);
    CHECK(core != NULL);
    return core;
}

/* Steps a (pre)vote request from `from` and returns the node's answer to it, persisting
 * whatever the node wrote (as a driver would). */
static struct answer ask(struct craft_core *core, int type, uint64_t from, uint64_t term,
                         uint64_t last_index, uint64_t last_term, bool transfer, uint64_t now)
{
    struct craft_msg m = {.type = (uint8_t)type, .from = from, .to = 1, .term = term,
                          .log_index = last_index, .log_term = last_term, .transfer = transfer};
    CHECK(craft_core_step(core, &m, now) == CRAFT_OK);
    struct answer a = {0};
    int want = type == CRAFT_MSG_VOTE ? CRAFT_MSG_VOTE_RESP : CRAFT_MSG_PREVOTE_RESP;
    struct craft_batch b;
    while (craft_core_ready(core, &b)) {
        for (int durable = 0; durable < 2; durable++) {
            const struct craft_msg *ms = durable ? b.msgs_durable : b.msgs;
            size_t n = durable ? b.n_msgs_durable : b.n_msgs;
            for (size_t k = 0; k < n; k++) {
                if (ms[k].type == want && ms[k].to == from) {
                    CHECK(!a.sent); /* one answer per request */
                    a = (struct answer){.sent = true, .granted = !ms[k].reject,
                                        .durable = durable == 1, .term = ms[k].term};
                }
            }
        }
        craft_core_persisted(core, b.seq, now);
    }
    return a;
}

static uint64_t term_of(struct craft_core *core)
{
    struct craft_core_status s;
    craft_core_status(core, &s);
    return s.term;
}

static struct craft_hard_state hard_state(struct craft_core *core)
{
    struct craft_core_status s;
    craft_core_status(core, &s);
    return (struct craft_hard_state){.term = s.term, .vote = s.vote};
}

/* Figure 3.1: at most one vote per term. A node that voted for 2 in term 5 refuses 3 in
 * term 5, whatever 3's log, even though it knows no leader; it grants 2 again (a resent
 * request); a vote is durable before its grant leaves. */
static void test_one_vote_per_term(void)
{
    const uint64_t terms[] = {1, 2, 3};
    struct craft_core *core = node(4, 0, terms, 3);
    struct answer a = ask(core, CRAFT_MSG_VOTE, 2, 5, 3, 3, false, START + 10);
    CHECK(a.sent && a.granted && a.durable && a.term == 5);
    CHECK(hard_state(core).term == 5 && hard_state(core).vote == 2);
    a = ask(core, CRAFT_MSG_VOTE, 3, 5, 9, 4, false, START + 20);
    CHECK(a.sent && !a.granted && a.term == 5);
    CHECK(hard_state(core).vote == 2);
    a = ask(core, CRAFT_MSG_VOTE, 2, 5, 3, 3, false, START + 30);
    CHECK(a.sent && a.granted);
    /* A pre-vote for the next term is not a vote: 3 may ask whether it could win term 6. */
    a = ask(core, CRAFT_MSG_PREVOTE, 3, 6, 9, 4, false, START + 40);
    CHECK(a.sent && a.granted && a.term == 6);
    CHECK(hard_state(core).term == 5 && hard_state(core).vote == 2);
    /* A new term frees the vote. */
    a = ask(core, CRAFT_MSG_VOTE, 3, 6, 9, 4, false, START + 50);
    CHECK(a.sent && a.granted && a.durable);
    CHECK(hard_state(core).term == 6 && hard_state(core).vote == 3);
    craft_core_destroy(core);

    /* The same after a restart: the durable vote binds the restarted node. */
    core = node(5, 2, terms, 3);
    a = ask(core, CRAFT_MSG_VOTE, 3, 5, 9, 4, false, START + 10);
    CHECK(a.sent && !a.granted);
    CHECK(hard_state(core).vote == 2);
    craft_core_destroy(core);
}

/* Thesis 3.6.1: a candidate's log must be at least as up-to-date as the voter's: a later
 * last term wins whatever the lengths; with equal last terms, the longer log. The same
 * rule decides pre-votes (thesis 9.6). */
static void test_up_to_date_rule(void)
{
    const uint64_t terms[] = {1, 1, 2, 3, 3}; /* last: index 5, term 3 */
    struct {
        uint64_t last_index, last_term;
        bool granted;
    } cases[] = {
        {5, 3, true},   /* the same log end */
        {6, 3, true},   /* longer, same last term */
        {4, 3, false},  /* shorter, same last term */
        {2, 4, true},   /* shorter, later last term */
        {9, 2, false},  /* longer, earlier last term */
        {0, 0, false},  /* empty */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        for (int pre = 0; pre < 2; pre++) {
            struct craft_core *core = node(3, 0, terms, 5);
            int type = pre ? CRAFT_MSG_PREVOTE : CRAFT_MSG_VOTE;
            struct answer a = ask(core, type, 2, 4, cases[k].last_index, cases[k].last_term,
                                  false, START + 10);
            CHECK(a.sent && a.granted == cases[k].granted);
            /* A refused candidate still moves a voter to its term (not for a pre-vote). */
            CHECK(hard_state(core).term == (pre ? 3 : 4));
            CHECK(hard_state(core).vote == (a.granted && !pre ? 2 : 0));
            craft_core_destroy(core);
        }
    }
}

/* Requests of an older term are refused with the voter's term, so the candidate learns
 * it is behind; a pre-vote for the voter's own term (nothing to win) is refused too. */
static void test_stale_terms(void)
{
    const uint64_t terms[] = {1, 2};
    struct craft_core *core = node(4, 0, terms, 2);
    struct answer a = ask(core, CRAFT_MSG_VOTE, 2, 3, 9, 3, false, START + 10);
    CHECK(!a.sent || (!a.granted && a.term == 4));
    CHECK(hard_state(core).term == 4 && hard_state(core).vote == 0);
    a = ask(core, CRAFT_MSG_PREVOTE, 2, 3, 9, 3, false, START + 20);
    CHECK(!a.sent || (!a.granted && a.term == 4));
    CHECK(hard_state(core).term == 4);
    craft_core_destroy(core);
}

/* Thesis 4.2.3 (disruptive servers) with check-quorum: a voter that heard from a leader
 * within the election timeout refuses vote and pre-vote requests, even of a later term
 * and a longer log, and keeps its term; a leadership transfer's campaign is exempt; once
 * the timeout passed without the leader, the same request is granted. */
static void test_leader_stickiness(void)
{
    const uint64_t terms[] = {1, 2};
    struct craft_core *core = node(2, 0, terms, 2);
    struct craft_msg hb = {.type = CRAFT_MSG_HEARTBEAT, .from = 3, .to = 1, .term = 2,
                           .commit = 2, .ctx = 1};
    CHECK(craft_core_step(core, &hb, START + 100) == CRAFT_OK);
    struct craft_batch b;
    while (craft_core_ready(core, &b)) {
        craft_core_persisted(core, b.seq, START + 100);
    }
    struct answer a = ask(core, CRAFT_MSG_PREVOTE, 2, 3, 5, 2, false, START + 200);
    CHECK(!a.sent || !a.granted);
    a = ask(core, CRAFT_MSG_VOTE, 2, 3, 5, 2, false, START + 300);
    CHECK(!a.sent || !a.granted);
    CHECK(hard_state(core).term == 2 && hard_state(core).vote == 0);
    a = ask(core, CRAFT_MSG_VOTE, 2, 3, 5, 2, true, START + 400);
    CHECK(a.sent && a.granted && hard_state(core).term == 3 && hard_state(core).vote == 2);
    craft_core_destroy(core);

    core = node(2, 0, terms, 2);
    CHECK(craft_core_step(core, &hb, START + 100) == CRAFT_OK);
    while (craft_core_ready(core, &b)) {
        craft_core_persisted(core, b.seq, START + 100);
    }
    a = ask(core, CRAFT_MSG_PREVOTE, 2, 3, 5, 2, false, START + 100 + 1000);
    CHECK(a.sent && a.granted);
    craft_core_destroy(core);
}

/* A node that restarts grants no vote for an election timeout (a leader's lease may rest
 * on its promise from before the crash: it acknowledged heartbeats it no longer remembers),
 * then grants as usual. A transfer's campaign is exempt. */
static void test_restart_blocks_votes(void)
{
    const uint64_t terms[] = {1, 2};
    struct craft_core *core = node(2, 0, terms, 2); /* created at time 0 */
    struct answer a = ask(core, CRAFT_MSG_VOTE, 2, 3, 5, 2, false, 10);
    CHECK(!a.sent || !a.granted);
    a = ask(core, CRAFT_MSG_PREVOTE, 3, 3, 5, 2, false, 999);
    CHECK(!a.sent || !a.granted);
    CHECK(term_of(core) == 2);
    a = ask(core, CRAFT_MSG_VOTE, 2, 3, 5, 2, false, 1000);
    CHECK(a.sent && a.granted);
    craft_core_destroy(core);
    core = node(2, 0, terms, 2);
    a = ask(core, CRAFT_MSG_VOTE, 2, 3, 5, 2, true, 10);
    CHECK(a.sent && a.granted);
    craft_core_destroy(core);
}

int main(void)
{
    run_case("one_vote_per_term", test_one_vote_per_term);
    run_case("up_to_date_rule", test_up_to_date_rule);
    run_case("stale_terms", test_stale_terms);
    run_case("leader_stickiness", test_leader_stickiness);
    run_case("restart_blocks_votes", test_restart_blocks_votes);
    return unit_finish();
}
