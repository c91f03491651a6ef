/* Membership scenarios (member/...): growing, shrinking, joint changes, random changes under
 * faults, removing the leader, a removed server that keeps campaigning, replacing every
 * member. docs/design/membership-scenarios.md says what each one checks. */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "membership_scenarios.h"
#include "raft_scenarios.h"
#include "sim/scenario.h"

#define LIMIT_MS 120000u
#define CLIENTS 2

static uint64_t id_of(int i)
{
    return (uint64_t)i + 1;
}

static uint64_t change(struct sim_cluster *c, uint8_t type, int i)
{
    struct craft_conf_change ch = {.type = type, .id = id_of(i)};
    return sim_change_conf_on_leader(c, &ch, 1, false);
}

/* Thesis 4.2.1: a new server joins as a learner and is promoted once it has caught up. */
static void add_server(struct sim_cluster *c, int n, int j)
{
    sim_clear_caught_up(c, j);
    change(c, CRAFT_CONF_ADD_LEARNER, j);
    bool reported = mb_wait_caught_up(c, n, j);
    sim_note(c, "learner %d caught up (%s)", j, reported ? "reported" : "by match");
    struct craft_conf conf;
    sim_committed_conf(c, &conf);
    if (!sim_conf_is_learner(&conf, id_of(j)) || sim_conf_is_voter(&conf, id_of(j))) {
        char a[256];
        sim_fail(c, "server %d should be a learner of %s", j, sim_conf_fmt(a, sizeof a, &conf));
    }
    change(c, CRAFT_CONF_ADD_VOTER, j);
}

static void expect_voters(struct sim_cluster *c, const struct craft_conf *conf, uint64_t voters,
                          uint64_t learners)
{
    uint64_t v = 0, l = 0;
    for (uint32_t k = 0; k < conf->n_voters; k++) {
        v |= 1ULL << (conf->voters[k] - 1);
    }
    for (uint32_t k = 0; k < conf->n_learners; k++) {
        l |= 1ULL << (conf->learners[k] - 1);
    }
    if (v != voters || l != learners || conf->n_voters_outgoing != 0) {
        char a[256];
        sim_fail(c, "final configuration %s: expected voters mask %#llx, learners mask %#llx",
                 sim_conf_fmt(a, sizeof a, conf), (unsigned long long)voters,
                 (unsigned long long)learners);
    }
}

static uint64_t mask_range(int lo, int hi)
{
    uint64_t m = 0;
    for (int i = lo; i < hi; i++) {
        m |= 1ULL << i;
    }
    return m;
}

static void finish(struct sim_cluster *c, struct mb_client *cl, uint64_t voters,
                   uint64_t learners)
{
    mb_clients_stop(c, cl, CLIENTS);
    struct craft_conf conf;
    mb_converge(c, &conf);
    expect_voters(c, &conf, voters, learners);
    mb_check_acked(c, cl, CLIENTS, mb_conf_members(&conf));
    sim_note(c, "%llu + %llu proposals accepted", (unsigned long long)cl[0].n_accepted,
             (unsigned long long)cl[1].n_accepted);
    mb_end(c, LIMIT_MS);
}

void sim_member_grow_3_to_5(void)
{
    bool snapshot = sim_seed() % 2 == 0;
    struct sim_cluster *c = mb_begin(5, 3, false, snapshot, "grow a cluster from 3 to 5 voters");
    struct mb_client cl[CLIENTS];
    mb_clients_start(c, 5, cl, CLIENTS);
    sim_sleep(c, sim_rand(c, 500, 2000));
    for (int j = 3; j < 5; j++) {
        add_server(c, 5, j);
        sim_sleep(c, sim_rand(c, 0, 1000));
    }
    finish(c, cl, mask_range(0, 5), 0);
}

/* Picks a voter of the committed configuration: the leader half of the time. */
static int pick_voter(struct sim_cluster *c, uint64_t voters_mask)
{
    if (sim_rand(c, 0, 2) == 0) {
        int l = mb_leader(c);
        if (voters_mask >> l & 1) {
            return l;
        }
    }
    int k = (int)sim_rand(c, 0, (uint64_t)__builtin_popcountll(voters_mask));
    for (int i = 0; i < 64; i++) {
        if ((voters_mask >> i & 1) && k-- == 0) {
            return i;
        }
    }
    CRAFT_ASSERT(false);
    return -1;
}

void sim_member_shrink_5_to_3(void)
{
    bool snapshot = sim_seed() % 2 == 0;
    struct sim_cluster *c = mb_begin(5, 5, false, snapshot, "shrink a cluster from 5 to 3 voters");
    struct mb_client cl[CLIENTS];
    mb_clients_start(c, 5, cl, CLIENTS);
    sim_sleep(c, sim_rand(c, 500, 2000));
    uint64_t voters = mask_range(0, 5);
    for (int k = 0; k < 2; k++) {
        int r = pick_voter(c, voters);
        sim_note(c, "removing server %d", r);
        change(c, CRAFT_CONF_REMOVE, r);
        voters &= ~(1ULL << r);
        sim_sleep(c, sim_rand(c, 0, 1000));
    }
    /* The removed servers keep running: none may lead again. */
    sim_sleep(c, 2000);
    for (int i = 0; i < 5; i++) {
        bool leader;
        sim_get_state(c, i, NULL, &leader);
        if (!(voters >> i & 1) && leader) {
            sim_fail(c, "removed server %d is leader", i);
        }
    }
    finish(c, cl, voters, 0);
}

void sim_member_remove_leader(void)
{
    int n = sim_seed() % 2 == 0 ? 3 : 5;
    struct sim_cluster *c = mb_begin(n, n, false, false, "remove the leader");
    struct mb_client cl[CLIENTS];
    mb_clients_start(c, n, cl, CLIENTS);
    sim_sleep(c, sim_rand(c, 500, 2000));
    int leader = -1;
    uint64_t index = 0;
    struct craft_conf_change ch;
    for (int tries = 0; leader < 0; tries++) {
        if (tries > 50) {
            sim_fail(c, "the leader did not accept its own removal");
        }
        int l = mb_leader(c);
        ch = (struct craft_conf_change){.type = CRAFT_CONF_REMOVE, .id = id_of(l)};
        int err = sim_conf_change(c, l, &ch, 1, false, &index);
        if (err == CRAFT_OK) {
            leader = l;
        } else {
            sim_sleep(c, 50);
        }
    }
    sim_note(c, "leader %d proposed its own removal at %llu", leader, (unsigned long long)index);
    /* Thesis 4.2.2: it manages the cluster until the entry commits, then steps down. */
    struct craft_conf conf;
    uint64_t t0 = sim_now(c);
    for (;;) {
        struct craft_core_status st;
        sim_status(c, leader, &st);
        if (st.commit >= index) {
            break;
        }
        if (st.role != CRAFT_LEADER) {
            sim_fail(c, "removed leader %d stopped leading before its removal committed", leader);
        }
        if (sim_now(c) - t0 > 10000) {
            sim_fail(c, "the removal of leader %d did not commit", leader);
        }
        sim_sleep(c, 1);
    }
    while (sim_committed_conf(c, &conf) < index) {
        if (sim_now(c) - t0 > 10000) {
            sim_fail(c, "the removal of leader %d was not applied", leader);
        }
        sim_sleep(c, 5);
    }
    if (sim_conf_is_voter(&conf, id_of(leader))) {
        sim_fail(c, "committed configuration at %llu still holds the removed leader",
                 (unsigned long long)index);
    }
    bool is_leader;
    sim_get_state(c, leader, NULL, &is_leader);
    if (is_leader) {
        sim_fail(c, "removed leader %d still leads after its removal committed", leader);
    }
    int next = mb_leader(c);
    if (next == leader || !sim_conf_is_voter(&conf, id_of(next))) {
        sim_fail(c, "new leader %d is not among the remaining voters", next);
    }
    sim_sleep(c, 2000);
    sim_get_state(c, leader, NULL, &is_leader);
    if (is_leader) {
        sim_fail(c, "removed leader %d leads again", leader);
    }
    finish(c, cl, mask_range(0, n) & ~(1ULL << leader), 0);
}

void sim_member_removed_keeps_campaigning(void)
{
    int n = sim_seed() % 2 == 0 ? 3 : 5;
    struct sim_cluster *c =
        mb_begin(n + 1, n + 1, false, false, "a removed server keeps campaigning");
    int slots = n + 1;
    struct mb_client cl[CLIENTS];
    mb_clients_start(c, slots, cl, CLIENTS);
    sim_sleep(c, sim_rand(c, 500, 2000));
    int leader = mb_leader(c);
    int r = (leader + 1 + (int)sim_rand(c, 0, (uint64_t)n)) % slots;
    CRAFT_ASSERT(r != leader);
    sim_note(c, "isolating server %d, then removing it", r);
    sim_disconnect(c, r);
    change(c, CRAFT_CONF_REMOVE, r);
    sim_sleep(c, sim_rand(c, 0, 3000)); /* it times out alone */
    sim_connect(c, r);
    leader = mb_leader(c);
    uint64_t term;
    sim_get_state(c, leader, &term, NULL);
    sim_note(c, "server %d reconnected; cluster leader %d in term %llu", r, leader,
             (unsigned long long)term);
    uint64_t t0 = sim_now(c);
    while (sim_now(c) - t0 < 6000) {
        sim_campaign(c, r);
        sim_sleep(c, sim_rand(c, 50, 400));
        for (int i = 0; i < slots; i++) {
            if (i == r) {
                continue;
            }
            uint64_t t;
            bool l;
            sim_get_state(c, i, &t, &l);
            if (t != term) {
                sim_fail(c, "removed server %d disrupted the cluster: server %d moved from term "
                            "%llu to %llu",
                         r, i, (unsigned long long)term, (unsigned long long)t);
            }
            if (l != (i == leader)) {
                sim_fail(c, "removed server %d disrupted the cluster: leadership moved", r);
            }
        }
        bool rl;
        sim_get_state(c, r, NULL, &rl);
        if (rl) {
            sim_fail(c, "removed server %d became leader", r);
        }
    }
    /* Writes went on meanwhile. */
    uint64_t before = cl[0].n_acked + cl[1].n_acked;
    sim_one_int(c, sim_raft_rand_cmd(c), n, true);
    sim_sleep(c, 1000);
    if (cl[0].n_acked + cl[1].n_acked <= before) {
        sim_fail(c, "no client write was acknowledged while the removed server campaigned");
    }
    mb_clients_stop(c, cl, CLIENTS);
    struct craft_conf conf;
    mb_converge(c, &conf);
    expect_voters(c, &conf, mask_range(0, slots) & ~(1ULL << r), 0);
    mb_check_acked(c, cl, CLIENTS, mb_conf_members(&conf));
    mb_end(c, LIMIT_MS);
}

void sim_member_replace_all(void)
{
    bool snapshot = sim_seed() % 2 == 0;
    struct sim_cluster *c =
        mb_begin(6, 3, false, snapshot, "replace every member of a 3-node cluster");
    struct mb_client cl[CLIENTS];
    mb_clients_start(c, 6, cl, CLIENTS);
    sim_sleep(c, sim_rand(c, 500, 2000));
    for (int k = 0; k < 3; k++) {
        add_server(c, 6, 3 + k);
        sim_sleep(c, sim_rand(c, 0, 500));
        sim_note(c, "removing original server %d", k);
        change(c, CRAFT_CONF_REMOVE, k);
        sim_sleep(c, sim_rand(c, 0, 500));
    }
    struct craft_conf conf;
    sim_committed_conf(c, &conf);
    for (int k = 0; k < 3; k++) {
        if (mb_conf_members(&conf) >> k & 1) {
            sim_fail(c, "original server %d is still in the configuration", k);
        }
    }
    finish(c, cl, mask_range(3, 6), 0);
}

/* Recovery from a lost quorum (docs/design/core.md): five voters under two writing
 * clients, three lost for good at once, most seeds after one survivor was cut off for a
 * while (the survivors' logs then differ). The two survivors elect nobody (no quorum of five);
 * forced onto {survivors} (the one that knew the most committed appends it), they lead again,
 * keep every write either of them had applied (the checks' committed record up to there
 * stays binding: any other value at those indexes is an apply error), take new writes,
 * and agree on the forced configuration. Writes only the lost nodes had applied may go:
 * that is what losing a majority means. */
void sim_member_lost_quorum(void)
{
    bool snapshot = sim_seed() % 2 == 0;
    struct sim_cluster *c = mb_begin(5, 5, false, snapshot,
                                     "3 of 5 voters lost for good, survivors forced");
    struct mb_client cl[CLIENTS];
    mb_clients_start(c, 5, cl, CLIENTS);
    sim_sleep(c, sim_rand(c, 1000, 3000));
    /* Writes committed before the loss, for the check to hold on to. */
    for (int k = 0; cl[0].n_acked + cl[1].n_acked < 10; k++) {
        if (k == 200) {
            sim_fail(c, "no write committed in 20 s before the loss");
        }
        sim_sleep(c, 100);
    }
    uint64_t lost = 0;
    while (__builtin_popcountll(lost) < 3) {
        lost |= 1ULL << sim_rand(c, 0, 5);
    }
    uint64_t survivors = mask_range(0, 5) & ~lost;
    /* Most seeds: one survivor was cut off for a while before, so the survivors' logs
     * differ and only one of them holds every write either applied (the recovery must
     * force that one). */
    if (sim_rand(c, 0, 4) != 0) {
        int lag = __builtin_ctzll(survivors);
        if (sim_rand(c, 0, 2) != 0) {
            lag = 63 - __builtin_clzll(survivors);
        }
        sim_note(c, "n%d cut off before the loss", lag + 1);
        sim_disconnect(c, lag);
        sim_sleep(c, sim_rand(c, 500, 2000));
        for (int i = 0; i < 5; i++) {
            if (lost >> i & 1) {
                sim_crash(c, i);
            }
        }
        sim_connect(c, lag);
    }
    for (int i = 0; i < 5; i++) {
        if (lost >> i & 1) {
            sim_crash(c, i);
        }
    }
    sim_note(c, "lost for good: %s%s%s%s%s", lost & 1 ? "n1 " : "", lost & 2 ? "n2 " : "",
             lost & 4 ? "n3 " : "", lost & 8 ? "n4 " : "", lost & 16 ? "n5" : "");
    /* Three election timeouts and more: a leader among the survivors steps down (check
     * quorum), and no survivor can win. */
    sim_sleep(c, 4000);
    uint64_t before = 0;
    for (int i = 0; i < 5; i++) {
        if (survivors >> i & 1) {
            bool leader;
            sim_get_state(c, i, NULL, &leader);
            if (leader) {
                sim_fail(c, "server %d leads without a quorum of the five", i);
            }
            uint64_t k = sim_last_applied(c, i);
            before = k > before ? k : before;
        }
    }
    uint64_t forced_index, forced_term;
    int f = sim_recover_lost_quorum(c, lost, &forced_index, &forced_term);
    (void)mb_leader(c); /* fails if the survivors elect nobody */
    sim_sleep(c, sim_rand(c, 1000, 3000));
    mb_clients_stop(c, cl, CLIENTS);
    struct craft_conf conf;
    mb_converge(c, &conf);
    expect_voters(c, &conf, survivors, 0);
    if (sim_committed_conf(c, &conf) < forced_index) {
        sim_fail(c, "the forced configuration (index %llu) was not committed",
                 (unsigned long long)forced_index);
    }
    /* Every write a survivor had applied is still there, on both. */
    uint64_t kept = 0, after = 0;
    for (int j = 0; j < CLIENTS; j++) {
        for (uint64_t q = 0; q < cl[j].n_accepted; q++) {
            if (!cl[j].p[q].acked) {
                continue;
            }
            /* Accepted by a leader of the recovered cluster (a term past the forced entry's),
             * or applied by a survivor before the loss: both must be on both survivors.
             * Others (applied by lost nodes only) may be gone. */
            bool recovered = cl[j].p[q].term > forced_term;
            if (cl[j].p[q].index > before && !recovered) {
                continue;
            }
            if (recovered) {
                after++;
            } else {
                kept++;
            }
            for (int i = 0; i < 5; i++) {
                uint8_t buf[8];
                size_t len = 0;
                uint64_t v = 0;
                if (!(survivors >> i & 1)) {
                    continue;
                }
                if (!sim_node_cmd(c, i, cl[j].p[q].index, buf, sizeof buf, &len) ||
                    !sim_cmd_as_int(buf, len, &v) || v != cl[j].p[q].value) {
                    sim_fail(c, "recovery lost write %llu at command %llu on server %d",
                             (unsigned long long)cl[j].p[q].value,
                             (unsigned long long)cl[j].p[q].index, i);
                }
            }
        }
    }
    sim_note(c, "n%d forced; %llu acknowledged writes through command %llu kept, %llu "
                "acknowledged by the recovered cluster", f + 1, (unsigned long long)kept,
             (unsigned long long)before, (unsigned long long)after);
    if (kept == 0 || after == 0) {
        sim_fail(c,
                 "nothing to check: %llu writes acknowledged before the loss, %llu after the "
                 "recovery",
                 (unsigned long long)kept, (unsigned long long)after);
    }
    mb_end(c, LIMIT_MS);
}

/* ---- joint and random changes ---- */

struct plan {
    struct craft_conf_change ch[CRAFT_CONF_NODES_MAX];
    size_t n;
    uint64_t voters, learners; /* the configuration once the change is done (and left) */
};

static void conf_masks(const struct craft_conf *conf, uint64_t *voters, uint64_t *learners)
{
    *voters = 0;
    *learners = 0;
    for (uint32_t k = 0; k < conf->n_voters; k++) {
        *voters |= 1ULL << (conf->voters[k] - 1);
    }
    for (uint32_t k = 0; k < conf->n_learners; k++) {
        *learners |= 1ULL << (conf->learners[k] - 1);
    }
    for (uint32_t k = 0; k < conf->n_learners_next; k++) {
        *learners |= 1ULL << (conf->learners_next[k] - 1);
    }
}

/* Draws changes to the non-joint conf, each slot changed with probability 1/p; keeps at
 * least min_voters voters. */
static void draw_plan(struct sim_cluster *c, int slots, const struct craft_conf *conf, int p,
                      int min_voters, size_t max_changes, struct plan *out)
{
    for (;;) {
        memset(out, 0, sizeof *out);
        conf_masks(conf, &out->voters, &out->learners);
        for (int i = 0; i < slots && out->n < max_changes; i++) {
            if (sim_rand(c, 0, (uint64_t)p) != 0) {
                continue;
            }
            uint64_t bit = 1ULL << i;
            bool voter = out->voters & bit, learner = out->learners & bit;
            bool other = sim_rand(c, 0, 2) == 0;
            uint8_t type;
            if (voter) {
                type = other ? CRAFT_CONF_REMOVE : CRAFT_CONF_ADD_LEARNER;
            } else if (learner) {
                type = other ? CRAFT_CONF_REMOVE : CRAFT_CONF_ADD_VOTER;
            } else {
                type = other ? CRAFT_CONF_ADD_LEARNER : CRAFT_CONF_ADD_VOTER;
            }
            out->ch[out->n++] = (struct craft_conf_change){.type = type, .id = id_of(i)};
            out->voters &= ~bit;
            out->learners &= ~bit;
            if (type == CRAFT_CONF_ADD_VOTER) {
                out->voters |= bit;
            } else if (type == CRAFT_CONF_ADD_LEARNER) {
                out->learners |= bit;
            }
        }
        if (out->n > 0 && __builtin_popcountll(out->voters) >= min_voters) {
            return;
        }
    }
}

void sim_member_joint_change(void)
{
    int slots = 7;
    int n_initial = 3 + 2 * (int)(sim_seed() % 2);
    bool snapshot = sim_seed() / 2 % 2 == 0;
    struct sim_cluster *c =
        mb_begin(slots, n_initial, false, snapshot, "joint changes under faults");
    struct mb_client cl[CLIENTS];
    mb_clients_start(c, slots, cl, CLIENTS);
    struct mb_faults f;
    mb_faults_start(c, &f, slots);
    sim_sleep(c, sim_rand(c, 500, 2000));
    struct plan plan = {0};
    int rounds = 1 + (int)sim_rand(c, 0, 3);
    for (int r = 0; r < rounds; r++) {
        struct craft_conf conf;
        sim_committed_conf(c, &conf);
        CRAFT_ASSERT(conf.n_voters_outgoing == 0);
        draw_plan(c, slots, &conf, 2, 3, CRAFT_CONF_NODES_MAX, &plan);
        char a[256];
        sim_note(c, "joint change %d: %zu changes from %s", r, plan.n,
                 sim_conf_fmt(a, sizeof a, &conf));
        sim_change_conf_on_leader(c, plan.ch, plan.n, true);
        sim_committed_conf(c, &conf);
        uint64_t v, l;
        conf_masks(&conf, &v, &l);
        if (v != plan.voters || l != plan.learners) {
            sim_fail(c, "after joint change %d the committed configuration is %s, expected "
                        "voters %#llx learners %#llx",
                     r, sim_conf_fmt(a, sizeof a, &conf), (unsigned long long)plan.voters,
                     (unsigned long long)plan.learners);
        }
        sim_sleep(c, sim_rand(c, 0, 1000));
    }
    mb_faults_stop(c, &f);
    finish(c, cl, plan.voters, plan.learners);
}

/* The chaos of chaos.c, one node or link at a time, for the safety phase. */
static void random_fault(struct sim_cluster *c, int slots)
{
    int i = (int)sim_rand(c, 0, (uint64_t)slots);
    int j = (int)sim_rand(c, 0, (uint64_t)slots);
    switch (sim_rand(c, 0, 9)) {
    case 0:
        if (sim_is_alive(c, i)) {
            sim_crash(c, i);
        }
        break;
    case 1:
        if (!sim_is_alive(c, i)) {
            sim_start(c, i);
            sim_connect(c, i);
        }
        break;
    case 2:
        if (sim_is_alive(c, i)) {
            sim_disconnect(c, i);
        }
        break;
    case 3:
        if (sim_is_alive(c, i)) {
            sim_connect(c, i);
        }
        break;
    case 4:
        if (i != j) {
            sim_set_link(c, j, i, false);
        }
        break;
    case 5:
        mb_heal_all(c, slots);
        break;
    case 6:
        sim_set_reliable(c, sim_rand(c, 0, 2) == 0);
        break;
    default:
        break;
    }
}

static void random_change(struct sim_cluster *c, int slots)
{
    for (int i = 0; i < slots; i++) {
        bool leader;
        if (!sim_is_alive(c, i)) {
            continue;
        }
        sim_get_state(c, i, NULL, &leader);
        if (!leader) {
            continue;
        }
        struct craft_conf conf;
        sim_conf_of(c, i, &conf);
        if (conf.n_voters_outgoing > 0) {
            return; /* auto-leave will move on */
        }
        bool joint = sim_rand(c, 0, 2) == 0;
        struct plan plan;
        draw_plan(c, slots, &conf, joint ? 3 : slots, 1, joint ? CRAFT_CONF_NODES_MAX : 1,
                  &plan);
        int err = sim_conf_change(c, i, plan.ch, plan.n, joint, NULL);
        char a[256], b[256];
        struct craft_conf after;
        sim_conf_of(c, i, &after);
        sim_note(c, "random %s change of %zu node(s) on leader %d: %s (%s -> %s)",
                 joint ? "joint" : "single", plan.n, i, craft_strerror(err),
                 sim_conf_fmt(a, sizeof a, &conf), sim_conf_fmt(b, sizeof b, &after));
        if (err != CRAFT_OK && err != CRAFT_ECONFCHANGE && err != CRAFT_ENOTLEADER &&
            err != CRAFT_EBUSY && err != CRAFT_ETRANSFER) {
            sim_fail(c, "leader %d refused a valid change: %s", i, craft_strerror(err));
        }
        return;
    }
}

void sim_member_random_changes(void)
{
    int slots = 7;
    int n_initial = 3 + 2 * (int)(sim_seed() % 2);
    bool snapshot = sim_seed() / 2 % 2 == 0;
    struct sim_cluster *c =
        mb_begin(slots, n_initial, false, snapshot, "random changes under faults, then converge");
    struct mb_client cl[CLIENTS];
    mb_clients_start(c, slots, cl, CLIENTS);
    uint64_t safety_ms = sim_rand(c, 5000, 20000);
    uint64_t t0 = sim_now(c);
    while (sim_now(c) - t0 < safety_ms) {
        sim_sleep(c, sim_rand(c, 50, 600));
        if (sim_rand(c, 0, 2) == 0) {
            random_fault(c, slots);
        } else {
            random_change(c, slots);
        }
    }
    sim_note(c, "heal and converge");
    mb_heal_all(c, slots);
    mb_clients_stop(c, cl, CLIENTS);
    struct craft_conf conf;
    mb_converge(c, &conf);
    mb_check_acked(c, cl, CLIENTS, mb_conf_members(&conf));
    mb_end(c, LIMIT_MS);
}
