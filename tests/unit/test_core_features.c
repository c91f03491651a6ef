/* Unit tests of the core's configuration changes, leadership transfer and reads, through a
 * lockstep cluster (perfect network, immediate persistence). Faults are the simulator's
 * business; these pin down the paths and the documented errors. */
#include <stdio.h>
#include <string.h>

#include "base/trace.h"
#include "core/core.h"
#include "sim/lockstep.h"
#include "unit.h"


static void settle(struct lockstep *c, int rounds)
{
    for (int r = 0; r < rounds; r++) {
        lockstep_advance(c);
    }
}

static void status(struct lockstep *c, int i, struct craft_core_status *s)
{
    craft_core_status(c->cores[i], s);
}

static bool has_id(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

static int propose_value(struct lockstep *c, int l, uint64_t v)
{
    return craft_core_propose(c->cores[l], (const uint8_t *)&v, 8, c->now, NULL, NULL);
}

/* Add a learner, see it reported caught up, promote it, then remove the leader. */
static void test_single_server_changes(void)
{
    struct lockstep c;
    lockstep_init_voters(&c, 4, 3, 1);
    int l = lockstep_elect(&c, 100);
    CHECK(l >= 0 && l < 3);
    for (uint64_t v = 1; v <= 20; v++) {
        CHECK(propose_value(&c, l, v) == CRAFT_OK);
    }
    lockstep_deliver_all(&c);

    struct craft_conf_change add = {.type = CRAFT_CONF_ADD_LEARNER, .id = 4};
    uint64_t index = 0;
    CHECK(craft_core_propose_conf_change(c.cores[l], &add, 1, false, c.now, &index, NULL) == 0);
    /* In force on the leader at once, before it commits (thesis 4.1). */
    struct craft_core_status s;
    status(&c, l, &s);
    CHECK(s.conf_index == index && has_id(s.conf.learners, s.conf.n_learners, 4));
    /* One change at a time. */
    struct craft_conf_change add5 = {.type = CRAFT_CONF_ADD_VOTER, .id = 5};
    CHECK(craft_core_propose_conf_change(c.cores[l], &add5, 1, false, c.now, NULL, NULL) ==
          CRAFT_ECONFCHANGE);
    settle(&c, 5);
    CHECK(c.n_caught_up == 1 && c.caught_up[0] == 4);
    struct craft_core_status s4;
    status(&c, 3, &s4);
    CHECK(s4.commit >= index && has_id(s4.conf.learners, s4.conf.n_learners, 4));
    CHECK(c.applied_count[3] == 20); /* the learner received the log */

    /* Documented refusals. */
    struct craft_conf_change bad[2] = {{CRAFT_CONF_REMOVE, 9}, {CRAFT_CONF_ADD_VOTER, 1}};
    CHECK(craft_core_propose_conf_change(c.cores[l], &bad[0], 1, false, c.now, NULL, NULL) ==
          CRAFT_EINVAL);
    CHECK(craft_core_propose_conf_change(c.cores[l], &bad[1], 1, false, c.now, NULL, NULL) ==
          CRAFT_EINVAL);
    CHECK(craft_core_propose_conf_change(c.cores[l], bad, 0, false, c.now, NULL, NULL) ==
          CRAFT_EINVAL);
    CHECK(craft_core_transfer_leadership(c.cores[l], 4, c.now) == CRAFT_EINVAL);
    CHECK(craft_core_transfer_leadership(c.cores[l], 9, c.now) == CRAFT_EUNKNOWNPEER);
    CHECK(craft_core_leave_joint(c.cores[l], c.now, NULL, NULL) == CRAFT_ECONFCHANGE);
    CHECK(craft_core_propose_conf_change(c.cores[(l + 1) % 3], &add5, 1, false, c.now, NULL,
                                         NULL) == CRAFT_ENOTLEADER);

    struct craft_conf_change promote = {.type = CRAFT_CONF_ADD_VOTER, .id = 4};
    CHECK(craft_core_propose_conf_change(c.cores[l], &promote, 1, false, c.now, NULL, NULL) == 0);
    settle(&c, 3);
    status(&c, l, &s);
    CHECK(s.conf.n_voters == 4 && s.conf.n_learners == 0);

    /* Remove the leader: it replicates the change, then steps down once committed. */
    struct craft_conf_change rm = {.type = CRAFT_CONF_REMOVE, .id = (uint64_t)l + 1};
    CHECK(craft_core_propose_conf_change(c.cores[l], &rm, 1, false, c.now, NULL, NULL) == 0);
    lockstep_deliver_all(&c);
    status(&c, l, &s);
    CHECK(s.role == CRAFT_FOLLOWER);
    c.down[l] = true;
    int l2 = lockstep_elect(&c, 100);
    CHECK(l2 >= 0 && l2 != l);
    status(&c, l2, &s);
    CHECK(s.conf.n_voters == 3 && !has_id(s.conf.voters, 3, (uint64_t)l + 1));
    CHECK(propose_value(&c, l2, 99) == CRAFT_OK);
    lockstep_deliver_all(&c);
    lockstep_advance(&c);
    for (int i = 0; i < 4; i++) {
        if (i != l) {
            CHECK(c.applied_count[i] == 21);
        }
    }
    CHECK(c.step_errors == 0);
    lockstep_free(&c);
}

/* Replace two of three voters and demote the third through one joint entry. */
static void test_joint_change(void)
{
    struct lockstep c;
    lockstep_init_voters(&c, 5, 3, 2);
    int l = lockstep_elect(&c, 100);
    CHECK(l >= 0);
    uint64_t keep = (uint64_t)l + 1, a = (uint64_t)((l + 1) % 3) + 1, b = (uint64_t)((l + 2) % 3) + 1;
    struct craft_conf_change ch[4] = {
        {CRAFT_CONF_ADD_VOTER, 4}, {CRAFT_CONF_ADD_VOTER, 5},
        {CRAFT_CONF_REMOVE, a}, {CRAFT_CONF_ADD_LEARNER, b},
    };
    uint64_t index = 0;
    CHECK(craft_core_propose_conf_change(c.cores[l], ch, 4, true, c.now, &index, NULL) == 0);
    struct craft_core_status s;
    status(&c, l, &s);
    CHECK(s.conf.n_voters == 3 && s.conf.n_voters_outgoing == 3);
    CHECK(s.conf.n_learners_next == 1 && s.conf.learners_next[0] == b);
    CHECK(has_id(s.conf.voters, 3, keep) && has_id(s.conf.voters, 3, 4) && has_id(s.conf.voters, 3, 5));
    /* Joint: no new change until it is left. */
    struct craft_conf_change more = {CRAFT_CONF_REMOVE, 4};
    CHECK(craft_core_propose_conf_change(c.cores[l], &more, 1, false, c.now, NULL, NULL) ==
          CRAFT_ECONFCHANGE);
    settle(&c, 10);
    status(&c, l, &s);
    /* Left automatically once the joint entry committed. */
    CHECK(s.role == CRAFT_LEADER);
    CHECK(s.conf.n_voters_outgoing == 0 && s.conf.n_voters == 3 && s.conf_index > index);
    CHECK(s.conf.n_learners == 1 && s.conf.learners[0] == b);
    CHECK(s.commit >= s.conf_index);
    /* The removed node is in no configuration: it must not campaign. */
    status(&c, (int)a - 1, &s);
    CHECK(s.role == CRAFT_FOLLOWER);
    CHECK(propose_value(&c, l, 7) == CRAFT_OK);
    lockstep_deliver_all(&c);
    lockstep_advance(&c);
    CHECK(c.applied_count[3] == 1 && c.applied_count[4] == 1 && c.applied_count[b - 1] == 1);
    lockstep_free(&c);
}

static void test_transfer(void)
{
    struct lockstep c;
    lockstep_init(&c, 3, 3);
    int l = lockstep_elect(&c, 100);
    CHECK(l >= 0);
    int t = (l + 1) % 3;
    for (uint64_t v = 1; v <= 5; v++) {
        propose_value(&c, l, v);
    }
    CHECK(craft_core_transfer_leadership(c.cores[l], (uint64_t)t + 1, c.now) == CRAFT_OK);
    CHECK(craft_core_transfer_leadership(c.cores[l], (uint64_t)t + 1, c.now) == CRAFT_ETRANSFER);
    CHECK(propose_value(&c, l, 6) == CRAFT_ETRANSFER);
    lockstep_deliver_all(&c);
    struct craft_core_status s;
    status(&c, t, &s);
    CHECK(s.role == CRAFT_LEADER);
    status(&c, l, &s);
    CHECK(s.role == CRAFT_FOLLOWER && s.leader == (uint64_t)t + 1);
    CHECK(propose_value(&c, t, 6) == CRAFT_OK);
    lockstep_deliver_all(&c);
    lockstep_advance(&c);
    CHECK(c.applied_count[l] == 6);

    /* A transfer to a node that never answers is abandoned after an election timeout. */
    c.down[l] = true;
    CHECK(craft_core_transfer_leadership(c.cores[t], (uint64_t)l + 1, c.now) == CRAFT_OK);
    uint64_t start = c.now;
    while (c.now - start < 2100) {
        lockstep_advance(&c);
    }
    status(&c, t, &s);
    CHECK(s.role == CRAFT_LEADER && s.transfer_target == CRAFT_NONE);
    CHECK(propose_value(&c, t, 7) == CRAFT_OK);
    lockstep_free(&c);
}

/* craft_core_step_down: a leader becomes a follower of its own term at once (the runtime
 * uses it when its disk fails), keeping its term, and the others elect; a follower's call
 * changes nothing. */
static void test_step_down(void)
{
    struct lockstep c;
    lockstep_init(&c, 3, 7);
    int l = lockstep_elect(&c, 100);
    CHECK(l >= 0);
    struct craft_core_status before, s;
    status(&c, l, &before);
    int f = (l + 1) % 3;
    craft_core_step_down(c.cores[f], c.now);
    status(&c, f, &s);
    CHECK(s.role == CRAFT_FOLLOWER);
    craft_core_step_down(c.cores[l], c.now);
    status(&c, l, &s);
    CHECK(s.role == CRAFT_FOLLOWER && s.term == before.term && s.leader == CRAFT_NONE);
    CHECK(propose_value(&c, l, 1) == CRAFT_ENOTLEADER);
    lockstep_deliver_all(&c);
    CHECK(lockstep_elect(&c, 200) >= 0);
    lockstep_free(&c);
}

static const struct craft_read_state *find_read(struct lockstep *c, uint64_t ctx)
{
    for (size_t i = 0; i < c->n_reads; i++) {
        if (c->reads[i].r.ctx == ctx) {
            return &c->reads[i].r;
        }
    }
    return NULL;
}

static void test_reads(void)
{
    struct lockstep c;
    lockstep_init(&c, 3, 4);
    int l = lockstep_elect(&c, 100);
    CHECK(l >= 0);
    lockstep_deliver_all(&c);
    for (uint64_t v = 1; v <= 3; v++) {
        propose_value(&c, l, v);
    }
    lockstep_deliver_all(&c);
    struct craft_core_status s;
    status(&c, l, &s);

    /* ReadIndex on the leader: one heartbeat round confirms both reads. */
    uint64_t msgs = c.msgs_sent;
    CHECK(craft_core_read_index(c.cores[l], 11, c.now) == CRAFT_OK);
    CHECK(craft_core_read_index(c.cores[l], 12, c.now) == CRAFT_OK);
    CHECK(craft_core_read_index(c.cores[l], 0, c.now) == CRAFT_EINVAL);
    lockstep_deliver_all(&c);
    const struct craft_read_state *r = find_read(&c, 11);
    CHECK(r != NULL && r->err == 0 && r->index == s.commit);
    CHECK(find_read(&c, 12) != NULL);
    CHECK(c.msgs_sent - msgs == 4); /* 2 heartbeats, 2 answers */

    /* Follower read. */
    int f = (l + 1) % 3;
    CHECK(craft_core_read_index(c.cores[f], 21, c.now) == CRAFT_OK);
    lockstep_deliver_all(&c);
    r = find_read(&c, 21);
    CHECK(r != NULL && r->err == 0 && r->index == s.commit);

    /* Lease read: valid after an acknowledged round, for less than an election timeout. */
    uint64_t index = 0;
    CHECK(craft_core_read_lease(c.cores[l], c.now, &index) == CRAFT_OK && index == s.commit);
    CHECK(craft_core_read_lease(c.cores[f], c.now, &index) == CRAFT_ENOTLEADER);
    status(&c, l, &s);
    CHECK(s.lease_until > c.now && s.lease_until <= c.now + 1000);

    /* A leader cut off from everyone loses its lease and its pending reads. */
    c.down[(l + 1) % 3] = true;
    c.down[(l + 2) % 3] = true;
    CHECK(craft_core_read_index(c.cores[l], 31, c.now) == CRAFT_OK);
    uint64_t start = c.now;
    while (c.now - start < 2500) {
        lockstep_advance(&c);
    }
    CHECK(craft_core_read_lease(c.cores[l], c.now, &index) != CRAFT_OK);
    r = find_read(&c, 31);
    CHECK(r != NULL && r->err != 0);
    lockstep_free(&c);
}


int main(void)
{
    craft_trace_setup_from_env(); /* CRAFT_TRACE=all to see what happens */
    run_case("single_server_changes", test_single_server_changes);
    run_case("joint_change", test_joint_change);
    run_case("transfer", test_transfer);
    run_case("reads", test_reads);
    run_case("step_down", test_step_down);
    return unit_finish();
}
