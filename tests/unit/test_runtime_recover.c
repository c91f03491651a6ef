/* Recovery from a lost quorum through the runtime (craft_config.force_servers,
 * src/runtime/storage.c force_conf): three nodes on disk commit, two are lost for good;
 * the survivor cannot elect itself under the old configuration, and started once with the
 * forced configuration it leads again with every write it had, takes new ones, and keeps
 * the configuration over a plain restart. Bad forced configurations are refused. */
#include "unit.h"
#include "runtime_cluster.h"

static struct craft_server force_one[1];
static size_t n_force;

static void tweak_force(struct craft_config *cfg, void *ctx)
{
    (void)ctx;
    cfg->force_servers = force_one;
    cfg->n_force_servers = n_force;
}

/* snapshots: the survivor's log mostly compacted into a snapshot (the forced entry goes
 * after what is left, or right after the snapshot). */
static void survivor_leads_again(bool snapshots)
{
    struct rcluster c;
    rc_init(&c, 3, false, true);
    if (snapshots) {
        c.snapshot_threshold = 10;
        c.trailing = 2;
    }
    uint64_t leader = rc_start_all(&c, RC_WAIT_MS);
    for (int i = 0; leader != 0 && i < 50; i++) {
        CHECK(rc_apply(&c, 1, RC_WAIT_MS) == CRAFT_OK);
    }
    CHECK(rc_wait_total(&c, 50, RC_WAIT_MS));
    for (uint64_t id = 1; id <= 3; id++) {
        rc_stop(&c, id);
    }

    /* Nodes 2 and 3 are gone: node 1 alone holds the log, and no quorum of {1, 2, 3}. */
    CHECK(rc_restart(&c, 1) == CRAFT_OK);
    CHECK(rc_wait_leader(&c, 4 * (uint64_t)c.election_timeout_ms) == 0);
    CHECK(counter_total(&c.fsms[1]) <= 50);
    rc_stop(&c, 1);

    /* Forced: {1}. */
    rc_server(&c, 1, &force_one[0]);
    n_force = 1;
    c.tweak = tweak_force;
    rc_reset_counter(&c, 1);
    CHECK(rc_start(&c, 1, false) == CRAFT_OK);
    c.tweak = NULL;
    CHECK(rc_wait_leader(&c, RC_WAIT_MS) == 1);
    CHECK(rc_wait_total(&c, 50, RC_WAIT_MS)); /* every write it had */
    for (int i = 0; i < 10; i++) {
        CHECK(rc_apply(&c, 1, RC_WAIT_MS) == CRAFT_OK);
    }
    CHECK(rc_wait_total(&c, 60, RC_WAIT_MS));
    struct craft_stats st;
    craft_stats(c.nodes[1], &st);
    CHECK(st.conf.n_voters == 1 && st.conf.voters[0] == 1);
    uint64_t forced_at = st.conf_index;
    CHECK(forced_at > 50);

    /* A plain restart keeps it (the log holds it): no second forced entry. */
    rc_stop(&c, 1);
    CHECK(rc_restart(&c, 1) == CRAFT_OK);
    CHECK(rc_wait_leader(&c, RC_WAIT_MS) == 1);
    CHECK(rc_wait_total(&c, 60, RC_WAIT_MS));
    craft_stats(c.nodes[1], &st);
    /* (conf_index 0: compacted into a snapshot since) */
    CHECK(st.conf.n_voters == 1 && st.conf_index <= forced_at);
    uint64_t term = st.term;
    /* Nor does a start given the same configuration again: it is in force already (forcing
     * again, above the terms of a cluster that went on without this node, could overwrite
     * what that cluster committed). */
    rc_stop(&c, 1);
    c.tweak = tweak_force;
    rc_reset_counter(&c, 1);
    CHECK(rc_start(&c, 1, false) == CRAFT_OK);
    c.tweak = NULL;
    CHECK(rc_wait_leader(&c, RC_WAIT_MS) == 1);
    CHECK(rc_wait_total(&c, 60, RC_WAIT_MS));
    craft_stats(c.nodes[1], &st);
    CHECK(st.conf.n_voters == 1 && st.conf_index <= forced_at);
    CHECK(st.term <= term + 1); /* an election, no forced term */
    rc_destroy(&c);
}

static void test_survivor_leads_again(void) { survivor_leads_again(false); }
static void test_survivor_from_snapshot(void) { survivor_leads_again(true); }

static void test_refusals(void)
{
    struct rcluster c;
    rc_init(&c, 3, false, true);
    char err[512];
    /* An empty storage has nothing to recover, also when bootstrap servers are given (no
     * bootstrap then). */
    rc_server(&c, 1, &force_one[0]);
    n_force = 1;
    c.tweak = tweak_force;
    CHECK(rc_start_err(&c, 1, false, err, sizeof err) == CRAFT_EINVAL);
    CHECK(strstr(err, "no log to recover") != NULL);
    CHECK(rc_start_err(&c, 1, true, err, sizeof err) == CRAFT_EINVAL);
    CHECK(strstr(err, "no log to recover") != NULL);
    /* A configuration without this node. */
    rc_server(&c, 2, &force_one[0]);
    CHECK(rc_start_err(&c, 1, false, err, sizeof err) == CRAFT_EINVAL);
    CHECK(strstr(err, "force_servers") != NULL);
    /* This node only a learner of it. */
    rc_server(&c, 1, &force_one[0]);
    force_one[0].voter = false;
    CHECK(rc_start_err(&c, 1, false, err, sizeof err) == CRAFT_EINVAL);
    CHECK(strstr(err, "force_servers") != NULL);
    c.tweak = NULL;
    rc_destroy(&c);
}

int main(void)
{
    run_case("refusals", test_refusals);
    run_case("survivor_leads_again", test_survivor_leads_again);
    run_case("survivor_from_snapshot", test_survivor_from_snapshot);
    return unit_finish();
}
