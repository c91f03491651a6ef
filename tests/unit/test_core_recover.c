/* Recovery from a lost quorum in the core (src/core/recover.c, craft_core_force_conf): the
 * forced entry's place and term, its refusals, and what a node restarted on it does — it
 * leads the survivors' configuration and commits its whole log, also when its log ends in
 * entries the old majority never committed and when a survivor's log diverges from it. */
#include <string.h>

#include "core/core.h"
#include "unit.h"

static uint8_t payload[8];

/* Node `id`'s restore: entries with the given terms (entry 1 the configuration {1..5}),
 * hard state (term, no vote). entries must have room for n + 1. */
static void restore_of(struct craft_core_restore *r, struct craft_entry *es, uint8_t *confbuf,
                       const uint64_t *terms, size_t n, uint64_t term)
{
    struct craft_conf five = {.n_voters = 5, .voters = {1, 2, 3, 4, 5}};
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < n; i++) {
        es[i] = (struct craft_entry){.term = terms[i], .index = i + 1,
                                     .type = CRAFT_ENTRY_NORMAL, .len = 8, .data = payload};
    }
    es[0].type = CRAFT_ENTRY_CONF;
    es[0].data = confbuf;
    es[0].len = (uint32_t)craft_conf_encode(&five, confbuf);
    r->hs.term = term;
    r->entries = es;
    r->n_entries = n;
}

static void test_entry(void)
{
    struct craft_entry es[8], e;
    uint8_t cb[4 + 4 * 8 * CRAFT_CONF_NODES_MAX], buf[sizeof cb];
    struct craft_core_restore r;
    const uint64_t terms[] = {1, 2, 2, 4};
    restore_of(&r, es, cb, terms, 4, 6);
    struct craft_conf two = {.n_voters = 2, .voters = {1, 2}};
    struct craft_hard_state hs;
    CHECK(craft_core_force_conf(&r, &two, 0, buf, sizeof buf, &e, &hs) == CRAFT_OK);
    CHECK(e.index == 5 && e.term == 7 && e.type == CRAFT_ENTRY_CONF && e.data == buf);
    CHECK(hs.term == 7 && hs.vote == CRAFT_NONE);
    struct craft_conf back;
    CHECK(craft_conf_decode(e.data, e.len, &back) == CRAFT_OK && back.n_voters == 2 &&
          back.voters[0] == 1 && back.voters[1] == 2);
    /* above what another survivor reported */
    CHECK(craft_core_force_conf(&r, &two, 11, buf, sizeof buf, &e, &hs) == CRAFT_OK);
    CHECK(e.term == 12 && hs.term == 12);
    /* a log term above the hard state's (a damaged store would be caught elsewhere; the
     * entry still goes above it) */
    r.hs.term = 3;
    CHECK(craft_core_force_conf(&r, &two, 0, buf, sizeof buf, &e, &hs) == CRAFT_OK);
    CHECK(e.term == 5);
    /* after a snapshot and nothing else */
    r.n_entries = 0;
    r.snap = (struct craft_snapshot_meta){.index = 40, .term = 9};
    CHECK(craft_core_force_conf(&r, &two, 0, buf, sizeof buf, &e, &hs) == CRAFT_OK);
    CHECK(e.index == 41 && e.term == 10);
    /* refusals */
    struct craft_conf none = {0}, joint = two, dup = {.n_voters = 2, .voters = {1, 1}};
    joint.n_voters_outgoing = 1;
    joint.voters_outgoing[0] = 3;
    CHECK(craft_core_force_conf(&r, &none, 0, buf, sizeof buf, &e, &hs) == CRAFT_EINVAL);
    CHECK(craft_core_force_conf(&r, &joint, 0, buf, sizeof buf, &e, &hs) == CRAFT_EINVAL);
    CHECK(craft_core_force_conf(&r, &dup, 0, buf, sizeof buf, &e, &hs) == CRAFT_EINVAL);
    CHECK(craft_core_force_conf(&r, &two, 0, buf, 4, &e, &hs) == CRAFT_EINVAL);
    CHECK(craft_core_force_conf(&r, &two, UINT64_MAX, buf, sizeof buf, &e, &hs) == CRAFT_EINVAL);
}

/* Drains a core's batches as a driver would: persists, delivers messages to the peer core
 * (if any), and counts what it committed. */
struct pair {
    struct craft_core *c[2];
    uint64_t ids[2];
    uint64_t now;
};

static void pump(struct pair *p)
{
    for (int round = 0; round < 50; round++) {
        bool any = false;
        for (int i = 0; i < 2; i++) {
            if (p->c[i] == NULL) {
                continue;
            }
            struct craft_batch b;
            while (craft_core_ready(p->c[i], &b)) {
                any = true;
                struct craft_msg out[64];
                size_t n = 0;
                for (size_t k = 0; k < b.n_msgs && n < 64; k++) {
                    out[n++] = b.msgs[k];
                }
                for (size_t k = 0; k < b.n_msgs_durable && n < 64; k++) {
                    out[n++] = b.msgs_durable[k];
                }
                craft_core_persisted(p->c[i], b.seq, p->now);
                for (size_t k = 0; k < n; k++) {
                    int j = out[k].to == p->ids[0] ? 0 : out[k].to == p->ids[1] ? 1 : -1;
                    if (j >= 0 && p->c[j] != NULL) {
                        (void)craft_core_step(p->c[j], &out[k], p->now);
                    }
                }
            }
        }
        if (!any) {
            return;
        }
    }
}

static struct craft_core_status status_of(struct craft_core *c)
{
    struct craft_core_status s;
    craft_core_status(c, &s);
    return s;
}

/* Five voters, three gone for good. Node 1's log ends in entries of term 4 that no majority
 * acknowledged; node 2's log diverges after index 3 (an entry of term 3). Forced on node 1
 * with {1, 2}: node 1 leads term 5 (above both), node 2's divergent entry is replaced, and
 * the whole of node 1's log commits. */
static void test_survivors_lead_again(void)
{
    struct craft_entry e1[8], e2[8];
    uint8_t c1[4 + 4 * 8 * CRAFT_CONF_NODES_MAX], c2[sizeof c1], fb[sizeof c1];
    struct craft_core_restore r1, r2;
    const uint64_t t1[] = {1, 2, 2, 4, 4}, t2[] = {1, 2, 2, 3};
    restore_of(&r1, e1, c1, t1, 5, 4);
    restore_of(&r2, e2, c2, t2, 4, 4);
    struct craft_conf two = {.n_voters = 2, .voters = {1, 2}};
    struct craft_hard_state hs;
    CHECK(craft_core_force_conf(&r1, &two, 4, fb, sizeof fb, &e1[5], &hs) == CRAFT_OK);
    CHECK(e1[5].index == 6 && e1[5].term == 5);
    r1.hs = hs;
    r1.n_entries = 6;

    struct craft_core_config cfg;
    struct pair p = {.ids = {1, 2}, .now = 0};
    craft_core_config_default(&cfg, 1);
    p.c[0] = craft_core_create(&cfg, &r1, 0);
    craft_core_config_default(&cfg, 2);
    p.c[1] = craft_core_create(&cfg, &r2, 0);
    CHECK(p.c[0] != NULL && p.c[1] != NULL);
    CHECK(status_of(p.c[0]).conf.n_voters == 2); /* the newest configuration in the log */
    CHECK(status_of(p.c[1]).conf.n_voters == 5); /* until node 1's log reaches node 2 */
    /* Node 2 alone cannot win under {1..5}; node 1 wins under {1, 2}. */
    for (int step = 0; step < 400 && status_of(p.c[0]).role != CRAFT_LEADER; step++) {
        p.now += 10;
        craft_core_tick(p.c[0], p.now);
        craft_core_tick(p.c[1], p.now);
        pump(&p);
    }
    CHECK(status_of(p.c[0]).role == CRAFT_LEADER);
    for (int step = 0; step < 100; step++) {
        p.now += 10;
        craft_core_tick(p.c[0], p.now);
        craft_core_tick(p.c[1], p.now);
        pump(&p);
    }
    struct craft_core_status s1 = status_of(p.c[0]), s2 = status_of(p.c[1]);
    CHECK(s1.term >= 5 && s1.commit >= 7); /* its log, the forced entry, its no-op */
    CHECK(s2.last_index == s1.last_index && s2.commit == s1.commit);
    CHECK(s2.conf.n_voters == 2 && s2.role == CRAFT_FOLLOWER);
    /* node 2's entry 4 (term 3) was replaced by node 1's (term 4) */
    const struct craft_entry *e4 = craft_core_entry(p.c[1], 4);
    CHECK(e4 != NULL && e4->term == 4);
    craft_core_destroy(p.c[0]);
    craft_core_destroy(p.c[1]);
}

int main(void)
{
    run_case("entry", test_entry);
    run_case("survivors_lead_again", test_survivors_lead_again);
    return unit_finish();
}
