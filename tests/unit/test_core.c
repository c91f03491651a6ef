/* Unit tests of the pure core through a tiny in-process cluster: a perfect network (every
 * message encoded and decoded, delivered in order), immediate persistence, and a clock
 * advanced by hand. The simulator covers faults; this covers the protocol's basic paths. */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "core/core.h"
#include "core/log.h"
#include "sim/lockstep.h"
#include "unit.h"


static void test_elect_and_replicate(void)
{
    struct lockstep c;
    lockstep_init(&c, 3, 1);
    int l = lockstep_elect(&c, 100);
    CHECK(l >= 0);
    uint64_t sum = 0;
    for (uint64_t v = 1; v <= 100; v++) {
        uint64_t index = 0, term = 0;
        CHECK(craft_core_propose(c.cores[l], (const uint8_t *)&v, sizeof v, c.now, &index,
                                 &term) == CRAFT_OK);
        sum += v;
        if (v % 7 == 0) {
            lockstep_deliver_all(&c);
        }
    }
    lockstep_deliver_all(&c);
    lockstep_advance(&c); /* a heartbeat carries the last commit index */
    for (int i = 0; i < 3; i++) {
        CHECK(c.applied_count[i] == 100);
        CHECK(c.applied_sum[i] == sum);
    }
    CHECK(c.step_errors == 0);
    /* A follower refuses proposals. */
    uint64_t v = 7;
    CHECK(craft_core_propose(c.cores[(l + 1) % 3], (const uint8_t *)&v, 8, c.now, NULL, NULL) ==
          CRAFT_ENOTLEADER);
    lockstep_free(&c);
}

static void test_leader_failover(void)
{
    struct lockstep c;
    lockstep_init(&c, 5, 2);
    int l = lockstep_elect(&c, 100);
    CHECK(l >= 0);
    uint64_t v = 1;
    craft_core_propose(c.cores[l], (const uint8_t *)&v, 8, c.now, NULL, NULL);
    lockstep_deliver_all(&c);
    struct craft_core_status s1;
    craft_core_status(c.cores[l], &s1);
    c.down[l] = true;
    int l2 = lockstep_elect(&c, 100);
    CHECK(l2 >= 0 && l2 != l);
    struct craft_core_status s2;
    craft_core_status(c.cores[l2], &s2);
    CHECK(s2.term > s1.term);
    v = 2;
    CHECK(craft_core_propose(c.cores[l2], (const uint8_t *)&v, 8, c.now, NULL, NULL) == CRAFT_OK);
    lockstep_deliver_all(&c);
    lockstep_advance(&c);
    for (int i = 0; i < 5; i++) {
        if (i != l) {
            CHECK(c.applied_count[i] == 2);
        }
    }
    lockstep_free(&c);
}

static void test_single_node(void)
{
    struct lockstep c;
    lockstep_init(&c, 1, 3);
    int l = lockstep_elect(&c, 100);
    CHECK(l == 0);
    uint64_t v = 5;
    CHECK(craft_core_propose(c.cores[0], (const uint8_t *)&v, 8, c.now, NULL, NULL) == CRAFT_OK);
    lockstep_deliver_all(&c);
    CHECK(c.applied_count[0] == 1);
    lockstep_free(&c);
}

static void test_log_view(void)
{
    struct craft_log log;
    log_init(&log, 10, 3);
    CHECK(log_last_index(&log) == 10 && log_last_term(&log) == 3);
    uint64_t t = 0;
    CHECK(log_term_at(&log, 10, &t) && t == 3);
    CHECK(!log_term_at(&log, 9, &t) && !log_term_at(&log, 11, &t));
    uint8_t data[4] = {1, 2, 3, 4};
    for (uint64_t i = 11; i <= 20; i++) {
        struct craft_entry e = {.term = i < 15 ? 3 : 4, .index = i, .type = 1, .len = 4, .data = data};
        CHECK(log_append(&log, &e) == CRAFT_OK);
    }
    CHECK(log_last_index(&log) == 20 && log_last_term(&log) == 4);
    CHECK(log_find_conflict_by_term(&log, 20, 3) == 14);
    CHECK(log_find_conflict_by_term(&log, 20, 2) == 10);
    CHECK(log_bytes(&log, 11, 20) == 40);
    log_compact(&log, 12);
    CHECK(log_term_at(&log, 12, &t) && t == 3 && log_entry(&log, 12) == NULL);
    CHECK(log_entry(&log, 13)->index == 13);
    log_truncate_from(&log, 16);
    CHECK(log_last_index(&log) == 15);
    CHECK(log_is_up_to_date(&log, 15, 4) && !log_is_up_to_date(&log, 14, 4) &&
          log_is_up_to_date(&log, 1, 5));
    log_reset(&log, 30, 6);
    CHECK(log_last_index(&log) == 30 && log_last_term(&log) == 6);
    log_free(&log);
}

/* A follower that was down while the leader compacted catches up by snapshot, then by log. */
static void test_snapshot_catch_up(void)
{
    struct lockstep c;
    lockstep_init(&c, 3, 4);
    int l = lockstep_elect(&c, 100);
    CHECK(l >= 0);
    int lagger = (l + 1) % 3;
    c.down[lagger] = true;
    for (uint64_t v = 1; v <= 50; v++) {
        CHECK(craft_core_propose(c.cores[l], (const uint8_t *)&v, 8, c.now, NULL, NULL) == 0);
    }
    lockstep_deliver_all(&c);
    struct craft_core_status s;
    craft_core_status(c.cores[l], &s);
    CHECK(s.commit == s.last_index && s.applied == s.commit);
    CHECK(craft_core_snapshot_taken(c.cores[l], s.applied, 5) == CRAFT_OK);
    CHECK(craft_core_snapshot_taken(c.cores[l], s.applied, 5) == CRAFT_ESTALE);
    craft_core_status(c.cores[l], &s);
    CHECK(s.snap_index == s.applied && s.first_index == s.applied - 4);
    c.down[lagger] = false;
    for (int r = 0; r < 5; r++) {
        lockstep_advance(&c);
    }
    struct craft_core_status f;
    craft_core_status(c.cores[lagger], &f);
    CHECK(f.snap_index == s.snap_index);
    CHECK(f.commit >= s.snap_index);
    uint64_t v = 51;
    CHECK(craft_core_propose(c.cores[l], (const uint8_t *)&v, 8, c.now, NULL, NULL) == 0);
    lockstep_deliver_all(&c);
    lockstep_advance(&c);
    craft_core_status(c.cores[lagger], &f);
    craft_core_status(c.cores[l], &s);
    CHECK(f.applied == s.applied && f.last_index == s.last_index);
    CHECK(c.applied_count[lagger] == 1); /* only the entry after the snapshot */
    CHECK(c.step_errors == 0);
    lockstep_free(&c);
}

/* A leader cut off from the majority keeps accepting entries that never commit; when it
 * comes back its conflicting suffix is replaced (TestRejoin/TestBackup in miniature). */
static void test_conflicting_suffix_replaced(void)
{
    struct lockstep c;
    lockstep_init(&c, 3, 5);
    int l1 = lockstep_elect(&c, 100);
    CHECK(l1 >= 0);
    uint64_t v = 1;
    craft_core_propose(c.cores[l1], (const uint8_t *)&v, 8, c.now, NULL, NULL);
    lockstep_deliver_all(&c);
    /* Isolate l1: its proposals cannot reach anyone. */
    c.down[l1] = true;
    for (v = 100; v < 110; v++) {
        craft_core_propose(c.cores[l1], (const uint8_t *)&v, 8, c.now, NULL, NULL);
    }
    int l2 = lockstep_elect(&c, 100);
    CHECK(l2 >= 0 && l2 != l1);
    for (v = 200; v < 203; v++) {
        CHECK(craft_core_propose(c.cores[l2], (const uint8_t *)&v, 8, c.now, NULL, NULL) == 0);
    }
    lockstep_deliver_all(&c);
    c.down[l1] = false;
    for (int r = 0; r < 30; r++) {
        lockstep_advance(&c);
    }
    struct craft_core_status a, b;
    craft_core_status(c.cores[l1], &a);
    craft_core_status(c.cores[l2], &b);
    CHECK(a.role == CRAFT_FOLLOWER);
    CHECK(a.last_index == b.last_index && a.last_term == b.last_term && a.commit == b.commit);
    CHECK(c.applied_count[l1] == 4 && c.applied_sum[l1] == 1 + 200 + 201 + 202);
    lockstep_free(&c);
}

/* Regression (chaos seed 494): a follower whose log conflicts at the snapshot's index
 * discards its log on install; entries it receives afterwards must still be handed out for
 * persisting. */
static void test_snapshot_over_conflicting_log(void)
{
    struct lockstep c;
    lockstep_init(&c, 3, 6);
    int l1 = lockstep_elect(&c, 100);
    CHECK(l1 >= 0);
    c.down[l1] = true;
    uint64_t v;
    for (v = 100; v < 130; v++) {
        craft_core_propose(c.cores[l1], (const uint8_t *)&v, 8, c.now, NULL, NULL);
    }
    lockstep_deliver_all(&c);
    int l2 = lockstep_elect(&c, 100);
    CHECK(l2 >= 0 && l2 != l1);
    for (v = 200; v < 205; v++) {
        CHECK(craft_core_propose(c.cores[l2], (const uint8_t *)&v, 8, c.now, NULL, NULL) == 0);
    }
    lockstep_deliver_all(&c);
    struct craft_core_status s;
    craft_core_status(c.cores[l2], &s);
    CHECK(craft_core_snapshot_taken(c.cores[l2], s.applied, 0) == CRAFT_OK);
    c.down[l1] = false;
    for (int r = 0; r < 30; r++) {
        lockstep_advance(&c);
    }
    v = 300;
    CHECK(craft_core_propose(c.cores[l2], (const uint8_t *)&v, 8, c.now, NULL, NULL) == 0);
    lockstep_deliver_all(&c);
    lockstep_advance(&c);
    struct craft_core_status a, b;
    craft_core_status(c.cores[l1], &a);
    craft_core_status(c.cores[l2], &b);
    CHECK(a.snap_index == s.applied);
    CHECK(a.last_index == b.last_index && a.persisted == a.last_index);
    CHECK(a.applied == b.applied);
    lockstep_free(&c);
}

/* Regression (review): a snapshot install and appends stepped before the next batch. The
 * batch must carry the entries after the snapshot, to be written after the install (the
 * order core.h documents), so the durable answer for them is true. */
static void test_install_then_append_in_one_batch(void)
{
    struct craft_core_restore r;
    memset(&r, 0, sizeof r);
    r.bootstrap_conf.n_voters = 3;
    for (int i = 0; i < 3; i++) {
        r.bootstrap_conf.voters[i] = (uint64_t)i + 1;
    }
    struct craft_core_config cfg;
    craft_core_config_default(&cfg, 1);
    struct craft_core *core = craft_core_create(&cfg, &r, 0);
    uint8_t chunk[4] = {1, 2, 3, 4};
    struct craft_msg snap = {.type = CRAFT_MSG_SNAPSHOT, .from = 2, .to = 1, .term = 1,
                             .snap = {.index = 10, .term = 1, .conf = r.bootstrap_conf},
                             .offset = 0, .chunk = chunk, .chunk_len = 4, .last = true};
    CHECK(craft_core_step(core, &snap, 10) == CRAFT_OK);
    uint64_t v = 5;
    struct craft_entry es[3];
    for (int i = 0; i < 3; i++) {
        es[i] = (struct craft_entry){.term = 1, .index = 11 + (uint64_t)i, .type = 1, .len = 8,
                                     .data = (const uint8_t *)&v};
    }
    struct craft_msg app = {.type = CRAFT_MSG_APPEND, .from = 2, .to = 1, .term = 1,
                            .log_index = 10, .log_term = 1, .commit = 10, .n_entries = 3,
                            .entries = es};
    CHECK(craft_core_step(core, &app, 10) == CRAFT_OK);
    struct craft_batch b;
    CHECK(craft_core_ready(core, &b));
    CHECK(b.snap_install && !b.snap_keep_log && b.snap_meta.index == 10);
    CHECK(b.n_entries == 3 && b.entries[0].index == 11 && b.truncate_from == 0);
    bool answered_13 = false;
    for (size_t i = 0; i < b.n_msgs_durable; i++) {
        answered_13 |= b.msgs_durable[i].type == CRAFT_MSG_APPEND_RESP &&
                       !b.msgs_durable[i].reject && b.msgs_durable[i].index == 13;
    }
    CHECK(answered_13);
    craft_core_persisted(core, b.seq, 10);
    struct craft_core_status s;
    craft_core_status(core, &s);
    CHECK(s.persisted == 13 && s.snap_index == 10 && s.first_index == 11);
    craft_core_destroy(core);
}


int main(void)
{
    run_case("log_view", test_log_view);
    run_case("single_node", test_single_node);
    run_case("elect_and_replicate", test_elect_and_replicate);
    run_case("leader_failover", test_leader_failover);
    run_case("snapshot_catch_up", test_snapshot_catch_up);
    run_case("conflicting_suffix_replaced", test_conflicting_suffix_replaced);
    run_case("snapshot_over_conflicting_log", test_snapshot_over_conflicting_log);
    run_case("install_then_append_in_one_batch", test_install_then_append_in_one_batch);
    return unit_finish();
}
