/* 2B: log agreement (TestBasicAgree2B .. TestCount2B, with the 2023 FollowerFailure and
 * LeaderFailure). Indexes are MIT indexes: the harness hides the leaders' no-op entries. */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "raft_scenarios.h"

/* nCommitted(index) when only the count matters. */
static int n_committed(struct sim_cluster *c, uint64_t index)
{
    uint64_t value;
    size_t len;
    return sim_n_committed(c, index, &value, sizeof value, &len);
}

void sim_raft_basic_agree_2b(void)
{
    const int n = 3;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(n, false, false, "Test (2B): basic agreement", &t0);

    for (uint64_t index = 1; index <= 3; index++) {
        if (n_committed(c, index) > 0) {
            sim_fail(c, "some have committed before Start()");
        }
        uint64_t xindex = sim_one_int(c, index * 100, n, false);
        if (xindex != index) {
            sim_fail(c, "got index %llu but expected %llu", (unsigned long long)xindex,
                     (unsigned long long)index);
        }
    }

    sim_raft_end(c, t0);
}

/* randstring(n): n characters of the base64 URL alphabet. */
static void rand_string(struct sim_cluster *c, char *out, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < n; i++) {
        out[i] = alphabet[sim_rand(c, 0, sizeof alphabet - 1)];
    }
}

/* Checks, by counting RPC bytes, that each command is sent to each peer about once. */
void sim_raft_rpc_bytes_2b(void)
{
    enum { cmd_bytes = 5000, iters = 10 };
    const int n = 3;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin_counted(n, "Test (2B): RPC byte count", &t0);

    sim_one_int(c, 99, n, false);
    uint64_t bytes0 = sim_bytes_total(c);

    static char cmd[cmd_bytes];
    uint64_t sent = 0;
    for (uint64_t index = 2; index < iters + 2; index++) {
        rand_string(c, cmd, sizeof cmd);
        uint64_t xindex = sim_one(c, cmd, sizeof cmd, n, false);
        if (xindex != index) {
            sim_fail(c, "got index %llu but expected %llu", (unsigned long long)xindex,
                     (unsigned long long)index);
        }
        sent += sizeof cmd;
    }

    uint64_t got = sim_bytes_total(c) - bytes0;
    uint64_t expected = (uint64_t)n * sent;
    if (got > expected + 50000) {
        sim_fail(c, "too many RPC bytes; got %llu, expected %llu", (unsigned long long)got,
                 (unsigned long long)expected);
    }

    sim_raft_end(c, t0);
}

/* Progressive failure of followers. */
void sim_raft_follower_failure_2b(void)
{
    const int n = 3;
    uint64_t t0;
    struct sim_cluster *c =
        sim_raft_begin(n, false, false, "Test (2B): test progressive failure of followers", &t0);

    sim_one_int(c, 101, n, false);

    /* Disconnect one follower: the leader and the other follower still agree. */
    int leader1 = sim_check_one_leader(c);
    sim_disconnect(c, (leader1 + 1) % n);
    sim_one_int(c, 102, n - 1, false);
    sim_sleep(c, SIM_RAFT_ELECTION_TIMEOUT_MS);
    sim_one_int(c, 103, n - 1, false);

    /* Disconnect the remaining follower. */
    int leader2 = sim_check_one_leader(c);
    sim_disconnect(c, (leader2 + 1) % n);
    sim_disconnect(c, (leader2 + 2) % n);

    uint64_t index = 0, term = 0;
    if (!sim_start_int(c, leader2, 104, &index, &term)) {
        sim_fail(c, "leader rejected Start()");
    }
    if (index != 4) {
        sim_fail(c, "expected index 4, got %llu", (unsigned long long)index);
    }

    sim_sleep(c, 2 * SIM_RAFT_ELECTION_TIMEOUT_MS);

    /* 104 must not commit without a majority. */
    int nd = n_committed(c, index);
    if (nd > 0) {
        sim_fail(c, "%d committed but no majority", nd);
    }

    sim_raft_end(c, t0);
}

/* Failure of leaders. */
void sim_raft_leader_failure_2b(void)
{
    const int n = 3;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(n, false, false, "Test (2B): test failure of leaders", &t0);

    sim_one_int(c, 101, n, false);

    /* Disconnect the first leader: the followers elect a new one. */
    int leader1 = sim_check_one_leader(c);
    sim_disconnect(c, leader1);
    sim_one_int(c, 102, n - 1, false);
    sim_sleep(c, SIM_RAFT_ELECTION_TIMEOUT_MS);
    sim_one_int(c, 103, n - 1, false);

    /* Disconnect the new leader, then submit a command to every server. */
    int leader2 = sim_check_one_leader(c);
    sim_disconnect(c, leader2);
    for (int i = 0; i < n; i++) {
        uint64_t index, term;
        (void)sim_start_int(c, i, 104, &index, &term);
    }

    sim_sleep(c, 2 * SIM_RAFT_ELECTION_TIMEOUT_MS);

    int nd = n_committed(c, 4);
    if (nd > 0) {
        sim_fail(c, "%d committed but no majority", nd);
    }

    sim_raft_end(c, t0);
}

/* A follower participates after disconnect and reconnect. */
void sim_raft_fail_agree_2b(void)
{
    const int n = 3;
    uint64_t t0;
    struct sim_cluster *c =
        sim_raft_begin(n, false, false, "Test (2B): agreement after follower reconnects", &t0);

    sim_one_int(c, 101, n, false);

    int leader = sim_check_one_leader(c);
    sim_disconnect(c, (leader + 1) % n);

    sim_one_int(c, 102, n - 1, false);
    sim_one_int(c, 103, n - 1, false);
    sim_sleep(c, SIM_RAFT_ELECTION_TIMEOUT_MS);
    sim_one_int(c, 104, n - 1, false);
    sim_one_int(c, 105, n - 1, false);

    sim_connect(c, (leader + 1) % n);

    /* The full set keeps the earlier agreements and agrees on new commands. */
    sim_one_int(c, 106, n, true);
    sim_sleep(c, SIM_RAFT_ELECTION_TIMEOUT_MS);
    sim_one_int(c, 107, n, true);

    sim_raft_end(c, t0);
}

void sim_raft_fail_no_agree_2b(void)
{
    const int n = 5;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(
        n, false, false, "Test (2B): no agreement if too many followers disconnect", &t0);

    sim_one_int(c, 10, n, false);

    /* 3 of 5 followers disconnect. */
    int leader = sim_check_one_leader(c);
    sim_disconnect(c, (leader + 1) % n);
    sim_disconnect(c, (leader + 2) % n);
    sim_disconnect(c, (leader + 3) % n);

    uint64_t index = 0, term = 0;
    if (!sim_start_int(c, leader, 20, &index, &term)) {
        sim_fail(c, "leader rejected Start()");
    }
    if (index != 2) {
        sim_fail(c, "expected index 2, got %llu", (unsigned long long)index);
    }

    sim_sleep(c, 2 * SIM_RAFT_ELECTION_TIMEOUT_MS);

    int nd = n_committed(c, index);
    if (nd > 0) {
        sim_fail(c, "%d committed but no majority", nd);
    }

    /* Repair. The disconnected majority may have elected a leader of its own, forgetting
     * index 2, so the next command lands at 2 or 3. */
    sim_connect(c, (leader + 1) % n);
    sim_connect(c, (leader + 2) % n);
    sim_connect(c, (leader + 3) % n);

    int leader2 = sim_check_one_leader(c);
    uint64_t index2 = 0;
    if (!sim_start_int(c, leader2, 30, &index2, &term)) {
        sim_fail(c, "leader2 rejected Start()");
    }
    if (index2 < 2 || index2 > 3) {
        sim_fail(c, "unexpected index %llu", (unsigned long long)index2);
    }

    sim_one_int(c, 1000, n, true);

    sim_raft_end(c, t0);
}

/* ---- TestConcurrentStarts2B: 5 goroutines call Start on the leader at once ---- */

enum { concurrent_starts = 5 };

struct starts_round {
    int leader;
    uint64_t term;
    int n_done;                            /* goroutines finished (wg) */
    int n_indexes;                         /* indexes sent on the channel */
    uint64_t indexes[concurrent_starts];   /* in completion order */
};

struct starts_goroutine {
    struct starts_round *round;
    uint64_t i;
};

static void starts_goroutine_run(struct sim_cluster *c, void *arg)
{
    struct starts_goroutine *g = arg;
    struct starts_round *r = g->round;
    uint64_t index = 0, term1 = 0;
    bool ok = sim_start_int(c, r->leader, 100 + g->i, &index, &term1);
    if (ok && term1 == r->term) {
        CRAFT_ASSERT(r->n_indexes < concurrent_starts);
        r->indexes[r->n_indexes++] = index;
    }
    r->n_done++;
}

void sim_raft_concurrent_starts_2b(void)
{
    const int n = 3;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(n, false, false, "Test (2B): concurrent Start()s", &t0);

    bool success = false;
    for (int attempt = 0; attempt < 5 && !success; attempt++) {
        if (attempt > 0) {
            sim_sleep(c, 3000); /* give the solution some time to settle */
        }

        struct starts_round round = { 0 };
        round.leader = sim_check_one_leader(c);
        uint64_t index0;
        if (!sim_start_int(c, round.leader, 1, &index0, &round.term)) {
            continue; /* the leader moved on really quickly */
        }

        struct starts_goroutine gs[concurrent_starts];
        for (int i = 0; i < concurrent_starts; i++) {
            gs[i] = (struct starts_goroutine){ .round = &round, .i = (uint64_t)i };
            sim_task_at(c, 0, starts_goroutine_run, &gs[i]);
        }
        /* wg.Wait(): the tasks run while the scenario sleeps. */
        while (round.n_done < concurrent_starts) {
            sim_sleep(c, 1);
        }

        bool term_changed = false;
        for (int j = 0; j < n; j++) {
            uint64_t t;
            bool is_leader;
            sim_get_state(c, j, &t, &is_leader);
            if (t != round.term) {
                term_changed = true;
            }
        }
        if (term_changed) {
            continue;
        }

        bool failed = false;
        uint64_t cmds[concurrent_starts];
        size_t n_cmds = 0;
        for (int k = 0; k < round.n_indexes; k++) {
            int64_t ix = sim_wait(c, round.indexes[k], n, (int64_t)round.term);
            if (ix == -1) {
                /* Peers moved on to later terms: not every Start() can have succeeded. */
                failed = true;
                break;
            }
            cmds[n_cmds++] = (uint64_t)ix;
        }
        if (failed) {
            continue;
        }

        for (uint64_t ii = 0; ii < concurrent_starts; ii++) {
            uint64_t x = 100 + ii;
            bool found = false;
            for (size_t j = 0; j < n_cmds; j++) {
                found = found || cmds[j] == x;
            }
            if (!found) {
                char buf[256];
                sim_fail(c, "cmd %llu missing in %s", (unsigned long long)x,
                         sim_raft_fmt_ints(buf, sizeof buf, cmds, n_cmds));
            }
        }
        success = true;
    }

    if (!success) {
        sim_fail(c, "term changed too often");
    }

    sim_raft_end(c, t0);
}

/* A partitioned leader rejoins. */
void sim_raft_rejoin_2b(void)
{
    const int n = 3;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(n, false, false, "Test (2B): rejoin of partitioned leader", &t0);

    sim_one_int(c, 101, n, true);

    /* Leader network failure. */
    int leader1 = sim_check_one_leader(c);
    sim_disconnect(c, leader1);

    /* The old leader tries to agree on some entries. */
    uint64_t index, term;
    (void)sim_start_int(c, leader1, 102, &index, &term);
    (void)sim_start_int(c, leader1, 103, &index, &term);
    (void)sim_start_int(c, leader1, 104, &index, &term);

    /* The new leader commits, also for index 2. */
    sim_one_int(c, 103, 2, true);

    /* New leader network failure; the old leader comes back. */
    int leader2 = sim_check_one_leader(c);
    sim_disconnect(c, leader2);
    sim_connect(c, leader1);

    sim_one_int(c, 104, 2, true);

    /* All together now. */
    sim_connect(c, leader2);
    sim_one_int(c, 105, n, true);

    sim_raft_end(c, t0);
}

/* The leader backs up quickly over incorrect follower logs. */
void sim_raft_backup_2b(void)
{
    const int n = 5;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(
        n, false, false, "Test (2B): leader backs up quickly over incorrect follower logs", &t0);

    sim_one_int(c, sim_raft_rand_cmd(c), n, true);

    /* Put the leader and one follower in a partition. */
    int leader1 = sim_check_one_leader(c);
    sim_disconnect(c, (leader1 + 2) % n);
    sim_disconnect(c, (leader1 + 3) % n);
    sim_disconnect(c, (leader1 + 4) % n);

    /* Lots of commands that won't commit. */
    uint64_t index, term;
    for (int i = 0; i < 50; i++) {
        (void)sim_start_int(c, leader1, sim_raft_rand_cmd(c), &index, &term);
    }

    sim_sleep(c, SIM_RAFT_ELECTION_TIMEOUT_MS / 2);

    sim_disconnect(c, (leader1 + 0) % n);
    sim_disconnect(c, (leader1 + 1) % n);

    /* Allow the other partition to recover. */
    sim_connect(c, (leader1 + 2) % n);
    sim_connect(c, (leader1 + 3) % n);
    sim_connect(c, (leader1 + 4) % n);

    /* Lots of successful commands to the new group. */
    for (int i = 0; i < 50; i++) {
        sim_one_int(c, sim_raft_rand_cmd(c), 3, true);
    }

    /* Now another partitioned leader and one follower. */
    int leader2 = sim_check_one_leader(c);
    int other = (leader1 + 2) % n;
    if (leader2 == other) {
        other = (leader2 + 1) % n;
    }
    sim_disconnect(c, other);

    /* Lots more commands that won't commit. */
    for (int i = 0; i < 50; i++) {
        (void)sim_start_int(c, leader2, sim_raft_rand_cmd(c), &index, &term);
    }

    sim_sleep(c, SIM_RAFT_ELECTION_TIMEOUT_MS / 2);

    /* Bring the original leader back to life. */
    for (int i = 0; i < n; i++) {
        sim_disconnect(c, i);
    }
    sim_connect(c, (leader1 + 0) % n);
    sim_connect(c, (leader1 + 1) % n);
    sim_connect(c, other);

    /* Lots of successful commands to the new group. */
    for (int i = 0; i < 50; i++) {
        sim_one_int(c, sim_raft_rand_cmd(c), 3, true);
    }

    /* Now everyone. */
    for (int i = 0; i < n; i++) {
        sim_connect(c, i);
    }
    sim_one_int(c, sim_raft_rand_cmd(c), n, true);

    sim_raft_end(c, t0);
}

static uint64_t rpcs_delivered(struct sim_cluster *c, int n)
{
    uint64_t total = 0;
    for (int j = 0; j < n; j++) {
        total += sim_rpc_count(c, j);
    }
    return total;
}

/* RPC counts aren't too high: to elect, to agree on entries, and while idle. */
void sim_raft_count_2b(void)
{
    enum { iters = 10 };
    const int n = 3;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin_counted(n, "Test (2B): RPC counts aren't too high", &t0);

    int leader = sim_check_one_leader(c);
    uint64_t total1 = rpcs_delivered(c, n);
    if (total1 > 30 || total1 < 1) {
        sim_fail(c, "too many or few RPCs (%llu) to elect initial leader",
                 (unsigned long long)total1);
    }

    uint64_t total2 = 0;
    bool success = false;
    for (int attempt = 0; attempt < 5 && !success; attempt++) {
        if (attempt > 0) {
            sim_sleep(c, 3000); /* give the solution some time to settle */
        }

        leader = sim_check_one_leader(c);
        total1 = rpcs_delivered(c, n);

        uint64_t starti, term;
        if (!sim_start_int(c, leader, 1, &starti, &term)) {
            continue; /* the leader moved on really quickly */
        }
        uint64_t cmds[iters + 1];
        bool retry = false;
        for (uint64_t i = 1; i < iters + 2 && !retry; i++) {
            uint64_t x = sim_rand(c, 0, (uint64_t)1 << 31); /* rand.Int31() */
            cmds[i - 1] = x;
            uint64_t index1 = 0, term1 = 0;
            bool ok = sim_start_int(c, leader, x, &index1, &term1);
            if (!ok || term1 != term) {
                retry = true; /* no longer the leader: the term changed */
                break;
            }
            if (starti + i != index1) {
                sim_fail(c, "Start() failed");
            }
        }
        if (retry) {
            continue;
        }

        for (uint64_t i = 1; i < iters + 1 && !retry; i++) {
            int64_t ix = sim_wait(c, starti + i, n, (int64_t)term);
            if (ix != (int64_t)cmds[i - 1]) {
                if (ix == -1) {
                    retry = true; /* the term changed: try again */
                    break;
                }
                char buf[512];
                sim_fail(c, "wrong value %lld committed for index %llu; expected %s",
                         (long long)ix, (unsigned long long)(starti + i),
                         sim_raft_fmt_ints(buf, sizeof buf, cmds, iters + 1));
            }
        }
        if (retry) {
            continue;
        }

        bool term_changed = false;
        total2 = 0;
        for (int j = 0; j < n; j++) {
            uint64_t t;
            bool is_leader;
            sim_get_state(c, j, &t, &is_leader);
            if (t != term) {
                term_changed = true; /* can't expect low RPC counts */
            }
            total2 += sim_rpc_count(c, j);
        }
        if (term_changed) {
            continue;
        }

        if (total2 - total1 > (iters + 1 + 3) * 3) {
            sim_fail(c, "too many RPCs (%llu) for %d entries",
                     (unsigned long long)(total2 - total1), iters);
        }
        success = true;
    }

    if (!success) {
        sim_fail(c, "term changed too often");
    }

    sim_sleep(c, SIM_RAFT_ELECTION_TIMEOUT_MS);

    uint64_t total3 = rpcs_delivered(c, n);
    if (total3 - total2 > 3 * 20) {
        sim_fail(c, "too many RPCs (%llu) for 1 second of idleness",
                 (unsigned long long)(total3 - total2));
    }

    sim_raft_end(c, t0);
}
