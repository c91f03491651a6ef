/* The core's refusals of input no honest peer sends (src/core/step.c's check_msg,
 * src/core/conf.c's craft_conf_valid), clause by clause: each test starts from a message
 * or configuration the core accepts and breaks exactly one rule, so a rule that stops
 * being checked (or is checked with the wrong bound) fails here even when another rule
 * would have caught the same input. Found blind by make mutate: the scenarios never send
 * such input, and the fuzz target rarely hits one rule alone. */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "core/core.h"
#include "unit.h"

#define HUGE_INDEX (UINT64_C(1) << 62)

static struct craft_core *new_core(void)
{
    struct craft_core_restore r;
    memset(&r, 0, sizeof r);
    r.bootstrap_conf.n_voters = 3;
    for (int i = 0; i < 3; i++) {
        r.bootstrap_conf.voters[i] = (uint64_t)i + 1;
    }
    struct craft_core_config cfg;
    craft_core_config_default(&cfg, 1);
    return craft_core_create(&cfg, &r, 0);
}

static uint8_t payload[8];
static struct craft_entry es[3];

/* An append node 1 accepts: from 2, term 3, after index 4 (term 2), three entries of
 * terms 2, 3, 3. */
static struct craft_msg good_append(void)
{
    for (int i = 0; i < 3; i++) {
        es[i] = (struct craft_entry){.term = i == 0 ? 2 : 3, .index = 5 + (uint64_t)i,
                                     .type = CRAFT_ENTRY_NORMAL, .len = 8, .data = payload};
    }
    return (struct craft_msg){.type = CRAFT_MSG_APPEND, .from = 2, .to = 1, .term = 3,
                              .log_index = 4, .log_term = 2, .commit = 4, .n_entries = 3,
                              .entries = es};
}

static int step(struct craft_msg m)
{
    struct craft_core *core = new_core();
    int rc = craft_core_step(core, &m, 1);
    craft_core_destroy(core);
    return rc;
}

static void messages(void)
{
    CHECK(step(good_append()) == CRAFT_OK);
    struct craft_msg m;
    /* Addressing. */
    m = good_append(), m.type = 0;
    CHECK(step(m) == CRAFT_EINVAL);
    m = good_append(), m.type = CRAFT_MSG_TYPE_COUNT_;
    CHECK(step(m) == CRAFT_EINVAL);
    m = good_append(), m.to = 3;
    CHECK(step(m) == CRAFT_EINVAL);
    m = good_append(), m.from = CRAFT_NONE;
    CHECK(step(m) == CRAFT_EINVAL);
    m = good_append(), m.from = 1;
    CHECK(step(m) == CRAFT_EINVAL);
    /* Each number at its bound: one below is fine, the bound is refused. */
    m = good_append(), m.term = 0;
    CHECK(step(m) == CRAFT_EINVAL);
    uint64_t *fields[] = {&m.term, &m.log_index, &m.commit, &m.index, &m.reject_hint,
                          &m.snap.index, &m.offset};
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        m = good_append();
        m.n_entries = 0; /* entries would no longer follow log_index */
        m.entries = NULL;
        *fields[f] = HUGE_INDEX;
        CHECK(step(m) == CRAFT_EINVAL);
        *fields[f] = HUGE_INDEX - 1;
        CHECK(step(m) == CRAFT_OK);
    }
    /* Entries. */
    m = good_append(), m.entries = NULL;
    CHECK(step(m) == CRAFT_EINVAL);
    m = good_append(), es[1].index = 7; /* not log_index + 1 + i */
    CHECK(step(m) == CRAFT_EINVAL);
    m = good_append(), es[0].index = 4;
    CHECK(step(m) == CRAFT_EINVAL);
    m = good_append(), es[2].term = 0;
    CHECK(step(m) == CRAFT_EINVAL);
    m = good_append(), es[2].term = 4; /* after the sender's term */
    CHECK(step(m) == CRAFT_EINVAL);
    m = good_append(), es[1].term = 2, es[2].term = 1; /* terms going down */
    CHECK(step(m) == CRAFT_EINVAL);
    m = good_append(), es[0].term = 1; /* below the previous entry's term */
    CHECK(step(m) == CRAFT_EINVAL);
    m = good_append(), es[1].data = NULL;
    CHECK(step(m) == CRAFT_EINVAL);
    m = good_append(), es[1].data = NULL, es[1].len = 0; /* empty entries need no data */
    CHECK(step(m) == CRAFT_OK);
    m = good_append(), m.log_term = 4;
    CHECK(step(m) == CRAFT_EINVAL);
    /* Snapshots. */
    uint8_t chunk[4] = {1, 2, 3, 4};
    struct craft_msg snap = {.type = CRAFT_MSG_SNAPSHOT, .from = 2, .to = 1, .term = 3,
                             .snap = {.index = 10, .term = 2}, .offset = 0, .chunk = chunk,
                             .chunk_len = 4, .last = false};
    snap.snap.conf.n_voters = 3;
    for (int i = 0; i < 3; i++) {
        snap.snap.conf.voters[i] = (uint64_t)i + 1;
    }
    CHECK(step(snap) == CRAFT_OK);
    m = snap, m.chunk = NULL;
    CHECK(step(m) == CRAFT_EINVAL);
    m = snap, m.chunk = NULL, m.chunk_len = 0;
    CHECK(step(m) == CRAFT_OK);
    m = snap, m.snap.index = 0;
    CHECK(step(m) == CRAFT_EINVAL);
    m = snap, m.snap.term = 0;
    CHECK(step(m) == CRAFT_EINVAL);
    m = snap, m.snap.term = 4;
    CHECK(step(m) == CRAFT_EINVAL);
}

/* A joint configuration craft_conf_valid accepts: voters {1,2,3} leaving for {1,2,4},
 * learner 5, and 3 to become a learner when the joint ends. */
static struct craft_conf good_conf(void)
{
    struct craft_conf c;
    memset(&c, 0, sizeof c);
    c.n_voters = 3, c.voters[0] = 1, c.voters[1] = 2, c.voters[2] = 4;
    c.n_voters_outgoing = 3, c.voters_outgoing[0] = 1, c.voters_outgoing[1] = 2;
    c.voters_outgoing[2] = 3;
    c.n_learners = 1, c.learners[0] = 5;
    c.n_learners_next = 1, c.learners_next[0] = 3;
    return c;
}

static void confs(void)
{
    struct craft_conf c = good_conf();
    CHECK(craft_conf_valid(&c));
    c = good_conf(), c.n_voters = CRAFT_CONF_NODES_MAX + 1;
    CHECK(!craft_conf_valid(&c));
    c = good_conf(), c.n_learners_next = CRAFT_CONF_NODES_MAX + 1;
    CHECK(!craft_conf_valid(&c));
    c = good_conf(), c.voters[1] = CRAFT_NONE;
    CHECK(!craft_conf_valid(&c));
    c = good_conf(), c.voters[2] = 1; /* twice in one list */
    CHECK(!craft_conf_valid(&c));
    c = good_conf(), c.learners[0] = 4; /* a voter and a learner */
    CHECK(!craft_conf_valid(&c));
    /* learners_next: an outgoing voter only, no incoming voter, no learner. */
    c = good_conf(), c.learners_next[0] = 6;
    CHECK(!craft_conf_valid(&c));
    c = good_conf(), c.learners_next[0] = 1; /* an incoming voter too */
    CHECK(!craft_conf_valid(&c));
    c = good_conf(), c.learners[0] = 3, c.learners_next[0] = 3; /* a learner already */
    CHECK(!craft_conf_valid(&c));
    c = good_conf(), c.n_voters_outgoing = 0; /* learners_next needs a joint configuration */
    CHECK(!craft_conf_valid(&c));
    /* Each list's bound alone, and the bound itself allowed. */
    c = good_conf(), c.n_voters_outgoing = CRAFT_CONF_NODES_MAX + 1;
    CHECK(!craft_conf_valid(&c));
    c = good_conf(), c.n_learners = CRAFT_CONF_NODES_MAX + 1;
    CHECK(!craft_conf_valid(&c));
    memset(&c, 0, sizeof c);
    c.n_voters = CRAFT_CONF_NODES_MAX;
    for (uint32_t i = 0; i < CRAFT_CONF_NODES_MAX; i++) {
        c.voters[i] = i + 1;
    }
    CHECK(craft_conf_valid(&c));
    /* A joint configuration leaving a full list of voters for one of them. */
    memset(&c, 0, sizeof c);
    c.n_voters = 1, c.voters[0] = 1;
    c.n_voters_outgoing = CRAFT_CONF_NODES_MAX;
    for (uint32_t i = 0; i < CRAFT_CONF_NODES_MAX; i++) {
        c.voters_outgoing[i] = i + 1;
    }
    CHECK(craft_conf_valid(&c));
}

/* The decoder's bound on each list's count, alone, with the exact length that count
 * claims (so the bound, not the length check, is what refuses it), and a valid
 * configuration with a full list decoding. */
static void conf_decode_counts(void)
{
    static uint8_t buf[4 + 8 * 4 * (CRAFT_CONF_NODES_MAX + 1)];
    for (int list = 0; list < 4; list++) {
        memset(buf, 0, sizeof buf);
        buf[list] = CRAFT_CONF_NODES_MAX + 1;
        for (size_t i = 0; i < CRAFT_CONF_NODES_MAX + 1u; i++) {
            buf[4 + 8 * i] = (uint8_t)(i + 1); /* distinct ids, little-endian */
        }
        struct craft_conf out;
        CHECK(craft_conf_decode(buf, 4 + 8 * (CRAFT_CONF_NODES_MAX + 1u), &out) == CRAFT_EMALFORMED);
    }
    /* A full list of voters decodes. */
    struct craft_conf c;
    memset(&c, 0, sizeof c);
    c.n_voters = CRAFT_CONF_NODES_MAX;
    for (uint32_t i = 0; i < CRAFT_CONF_NODES_MAX; i++) {
        c.voters[i] = i + 1;
    }
    size_t n = craft_conf_encode(&c, buf);
    struct craft_conf back;
    CHECK(craft_conf_decode(buf, n, &back) == CRAFT_OK && back.n_voters == CRAFT_CONF_NODES_MAX);
}

/* Node 1, leader of voters 1..n: elected by hand (pre-votes and votes from a quorum). */
static struct craft_core *leader_of(uint32_t n)
{
    struct craft_core_restore r;
    memset(&r, 0, sizeof r);
    r.bootstrap_conf.n_voters = n;
    for (uint32_t i = 0; i < n; i++) {
        r.bootstrap_conf.voters[i] = i + 1;
    }
    struct craft_core_config cfg;
    craft_core_config_default(&cfg, 1);
    struct craft_core *core = craft_core_create(&cfg, &r, 0);
    CHECK(core != NULL);
    uint64_t now = 5000; /* past the restart's vote block */
    craft_core_campaign(core, now);
    for (int round = 0; round < 2; round++) {
        struct craft_batch b;
        while (craft_core_ready(core, &b)) {
            craft_core_persisted(core, b.seq, now);
        }
        for (uint64_t from = 2; from <= n / 2 + 1; from++) {
            struct craft_msg m = {.type = round == 0 ? CRAFT_MSG_PREVOTE_RESP
                                                     : CRAFT_MSG_VOTE_RESP,
                                  .from = from, .to = 1, .term = 1};
            CHECK(craft_core_step(core, &m, now) == CRAFT_OK);
        }
    }
    struct craft_batch b;
    while (craft_core_ready(core, &b)) {
        craft_core_persisted(core, b.seq, now);
    }
    CHECK(craft_core_role(core) == CRAFT_LEADER);
    return core;
}

/* A configuration change may reach CRAFT_CONF_NODES_MAX members of a kind, not one more. */
static void conf_change_limits(void)
{
    struct craft_core *core = leader_of(CRAFT_CONF_NODES_MAX - 1);
    struct craft_conf_change add = {.type = CRAFT_CONF_ADD_VOTER, .id = CRAFT_CONF_NODES_MAX};
    CHECK(craft_core_propose_conf_change(core, &add, 1, false, 5000, NULL, NULL) == CRAFT_OK);
    craft_core_destroy(core);
    core = leader_of(CRAFT_CONF_NODES_MAX);
    add.id = CRAFT_CONF_NODES_MAX + 1;
    CHECK(craft_core_propose_conf_change(core, &add, 1, false, 5000, NULL, NULL) ==
          CRAFT_EINVAL);
    craft_core_destroy(core);
}

/* A command of entry_bytes_max is accepted, one byte more is not. */
static void entry_size_limit(void)
{
    struct craft_core *core = leader_of(3);
    struct craft_core_config cfg;
    craft_core_config_default(&cfg, 1);
    uint8_t *big = calloc(1, cfg.entry_bytes_max + 1);
    CHECK(big != NULL);
    CHECK(craft_core_propose(core, big, (uint32_t)cfg.entry_bytes_max, 5000, NULL, NULL) ==
          CRAFT_OK);
    CHECK(craft_core_propose(core, big, (uint32_t)cfg.entry_bytes_max + 1, 5000, NULL, NULL) ==
          CRAFT_ETOOBIG);
    free(big);
    craft_core_destroy(core);
}

int main(void)
{
    run_case("messages", messages);
    run_case("confs", confs);
    run_case("conf_change_limits", conf_change_limits);
    run_case("conf_decode_counts", conf_decode_counts);
    run_case("entry_size_limit", entry_size_limit);
    return unit_finish();
}
