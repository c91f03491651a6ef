/* 2C: persistence and adversarial schedules (TestPersist12C .. TestUnreliableChurn2C).
 *
 * The Go tests' goroutines (UnreliableAgree's concurrent one() calls, the churn clients)
 * are tasks: state machines that run while the scenario sleeps and reschedule themselves
 * where the goroutine would have slept. */
#include <stdlib.h>

#include "base/assert.h"
#include "raft_scenarios.h"

void sim_raft_persist1_2c(void)
{
    const int n = 3;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(n, false, false, "Test (2C): basic persistence", &t0);

    sim_one_int(c, 11, n, true);

    /* Crash and restart all. */
    for (int i = 0; i < n; i++) {
        sim_start(c, i);
    }
    for (int i = 0; i < n; i++) {
        sim_disconnect(c, i);
        sim_connect(c, i);
    }

    sim_one_int(c, 12, n, true);

    int leader1 = sim_check_one_leader(c);
    sim_disconnect(c, leader1);
    sim_start(c, leader1);
    sim_connect(c, leader1);

    sim_one_int(c, 13, n, true);

    int leader2 = sim_check_one_leader(c);
    sim_disconnect(c, leader2);
    sim_one_int(c, 14, n - 1, true);
    sim_start(c, leader2);
    sim_connect(c, leader2);

    sim_wait(c, 4, n, -1); /* wait for leader2 to join before killing i3 */

    int i3 = (sim_check_one_leader(c) + 1) % n;
    sim_disconnect(c, i3);
    sim_one_int(c, 15, n - 1, true);
    sim_start(c, i3);
    sim_connect(c, i3);

    sim_one_int(c, 16, n, true);

    sim_raft_end(c, t0);
}

void sim_raft_persist2_rounds(struct sim_cluster *c, int n, int iterations)
{
    CRAFT_ASSERT(n >= 5);
    uint64_t index = 1;
    for (int iter = 0; iter < iterations; iter++) {
        sim_one_int(c, 10 + index, n, true);
        index++;

        int leader1 = sim_check_one_leader(c);

        sim_disconnect(c, (leader1 + 1) % n);
        sim_disconnect(c, (leader1 + 2) % n);

        sim_one_int(c, 10 + index, n - 2, true);
        index++;

        sim_disconnect(c, (leader1 + 0) % n);
        sim_disconnect(c, (leader1 + 3) % n);
        sim_disconnect(c, (leader1 + 4) % n);

        /* The two stale peers restart and can talk to each other only. */
        sim_start(c, (leader1 + 1) % n);
        sim_start(c, (leader1 + 2) % n);
        sim_connect(c, (leader1 + 1) % n);
        sim_connect(c, (leader1 + 2) % n);

        sim_sleep(c, SIM_RAFT_ELECTION_TIMEOUT_MS);

        /* L+3 holds the newest entry: the election restriction makes it the leader. */
        sim_start(c, (leader1 + 3) % n);
        sim_connect(c, (leader1 + 3) % n);

        sim_one_int(c, 10 + index, n - 2, true);
        index++;

        sim_connect(c, (leader1 + 4) % n);
        sim_connect(c, (leader1 + 0) % n);
    }

    sim_one_int(c, 1000, n, true);
}

void sim_raft_persist2_2c(void)
{
    const int n = 5;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(n, false, false, "Test (2C): more persistence", &t0);
    sim_raft_persist2_rounds(c, n, 5);
    sim_raft_end(c, t0);
}

void sim_raft_persist3_2c(void)
{
    const int n = 3;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(
        n, false, false, "Test (2C): partitioned leader and one follower crash, leader restarts", &t0);

    sim_one_int(c, 101, 3, true);

    int leader = sim_check_one_leader(c);
    sim_disconnect(c, (leader + 2) % n);

    sim_one_int(c, 102, 2, true);

    sim_crash(c, (leader + 0) % n);
    sim_crash(c, (leader + 1) % n);
    sim_connect(c, (leader + 2) % n);
    sim_start(c, (leader + 0) % n);
    sim_connect(c, (leader + 0) % n);

    sim_one_int(c, 103, 2, true);

    sim_start(c, (leader + 1) % n);
    sim_connect(c, (leader + 1) % n);

    sim_one_int(c, 104, n, true);

    sim_raft_end(c, t0);
}

/* The Figure 8 tests' sleep: usually short, sometimes up to half an election timeout. */
static void figure8_sleep(struct sim_cluster *c)
{
    if (sim_rand(c, 0, 1000) < 100) {
        sim_sleep(c, sim_rand(c, 0, SIM_RAFT_ELECTION_TIMEOUT_MS / 2));
    } else {
        sim_sleep(c, sim_rand(c, 0, 13));
    }
}

/* Figure 8 of the extended Raft paper: a leader, if there is one, gets a command and then
 * crashes, quickly (likely before committing it) or after a while (likely after). A new
 * leader may try to finish replicating entries of earlier terms; it must not commit them
 * by counting replicas. */
void sim_raft_figure8_rounds(struct sim_cluster *c, int n, int iterations)
{
    int nup = n;
    for (int iter = 0; iter < iterations; iter++) {
        int leader = -1;
        for (int i = 0; i < n; i++) {
            if (sim_is_alive(c, i)) {
                uint64_t index, term;
                if (sim_start_int(c, i, sim_raft_rand_cmd(c), &index, &term)) {
                    leader = i;
                }
            }
        }

        figure8_sleep(c);

        if (leader != -1) {
            sim_crash(c, leader);
            nup--;
        }

        if (nup < 3) {
            int s = (int)sim_rand(c, 0, (uint64_t)n);
            if (!sim_is_alive(c, s)) {
                sim_start(c, s);
                sim_connect(c, s);
                nup++;
            }
        }
    }

    for (int i = 0; i < n; i++) {
        if (!sim_is_alive(c, i)) {
            sim_start(c, i);
            sim_connect(c, i);
        }
    }
}

void sim_raft_figure8_2c(void)
{
    const int n = 5;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(n, false, false, "Test (2C): Figure 8", &t0);

    sim_one_int(c, sim_raft_rand_cmd(c), 1, true);
    sim_raft_figure8_rounds(c, n, 1000);
    sim_one_int(c, sim_raft_rand_cmd(c), n, true);

    sim_raft_end(c, t0);
}

/* ---- one(cmd, expected, retry=true) as a task: config.go's one() as a state machine ---- */

struct one_task {
    uint64_t cmd;
    int expected;
    int n;
    uint64_t t0;     /* start of the 10 s budget */
    int starts;      /* round-robin cursor over the peers */
    bool polling;    /* a peer accepted cmd at index; waiting for agreement */
    uint64_t index;
    uint64_t t1;     /* start of the 2 s agreement wait */
    bool done;
    bool failed;     /* the 10 s budget ran out */
};

static void one_task_step(struct sim_cluster *c, void *arg);

/* Returns true when cmd is committed at t->index on at least t->expected peers. */
static bool one_task_agreed(struct sim_cluster *c, const struct one_task *t)
{
    uint64_t value = 0;
    size_t len = 0;
    uint64_t got;
    int nd = sim_n_committed(c, t->index, &value, sizeof value, &len);
    return nd > 0 && nd >= t->expected && sim_cmd_as_int(&value, len, &got) && got == t->cmd;
}

static void one_task_step(struct sim_cluster *c, void *arg)
{
    struct one_task *t = arg;
    CRAFT_ASSERT(!t->done);
    uint64_t now = sim_now(c);

    if (t->polling) {
        if (now - t->t1 < 2000) {
            if (one_task_agreed(c, t)) {
                t->done = true;
                return;
            }
            sim_task_at(c, 20, one_task_step, t);
            return;
        }
        t->polling = false; /* retry: Start again */
    }

    if (now - t->t0 >= 10000) {
        t->failed = true;
        t->done = true;
        return;
    }

    /* Try all the servers, maybe one is the leader. */
    for (int si = 0; si < t->n; si++) {
        t->starts = (t->starts + 1) % t->n;
        if (!sim_is_connected(c, t->starts) || !sim_is_alive(c, t->starts)) {
            continue;
        }
        uint64_t index, term;
        if (sim_start_int(c, t->starts, t->cmd, &index, &term)) {
            t->polling = true;
            t->index = index;
            t->t1 = now;
            if (one_task_agreed(c, t)) {
                t->done = true;
                return;
            }
            sim_task_at(c, 20, one_task_step, t);
            return;
        }
    }
    sim_task_at(c, 50, one_task_step, t);
}

static void one_task_launch(struct sim_cluster *c, struct one_task *t, uint64_t cmd, int expected,
                            int n)
{
    *t = (struct one_task){ .cmd = cmd, .expected = expected, .n = n, .t0 = sim_now(c) };
    sim_task_at(c, 0, one_task_step, t);
}

/* A concurrent one() that gave up is fatal, as its t.Fatalf would be. */
static void one_tasks_check(struct sim_cluster *c, const struct one_task *ts, size_t n_tasks)
{
    for (size_t i = 0; i < n_tasks; i++) {
        if (ts[i].failed) {
            sim_fail(c, "one(%llu) failed to reach agreement", (unsigned long long)ts[i].cmd);
        }
    }
}

void sim_raft_unreliable_agree_2c(void)
{
    enum { iters = 50, per_iter = 4 };
    const int n = 5;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(n, true, false, "Test (2C): unreliable agreement", &t0);

    static struct one_task tasks[(iters - 1) * per_iter];
    size_t n_tasks = 0;
    for (uint64_t iter = 1; iter < iters; iter++) {
        for (uint64_t j = 0; j < per_iter; j++) {
            CRAFT_ASSERT(n_tasks < sizeof tasks / sizeof tasks[0]);
            one_task_launch(c, &tasks[n_tasks++], 100 * iter + j, 1, n);
        }
        sim_one_int(c, iter, 1, true);
        one_tasks_check(c, tasks, n_tasks);
    }

    sim_set_reliable(c, true);

    /* wg.Wait() */
    for (;;) {
        size_t n_done = 0;
        for (size_t i = 0; i < n_tasks; i++) {
            n_done += tasks[i].done;
        }
        one_tasks_check(c, tasks, n_tasks);
        if (n_done == n_tasks) {
            break;
        }
        sim_sleep(c, 1);
    }

    sim_one_int(c, 100, n, true);

    sim_raft_end(c, t0);
}

void sim_raft_figure8_unreliable_2c(void)
{
    const int n = 5;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(n, true, false, "Test (2C): Figure 8 (unreliable)", &t0);

    sim_one_int(c, sim_rand(c, 0, 10000), 1, true);

    int nup = n;
    for (int iter = 0; iter < 1000; iter++) {
        if (iter == 200) {
            sim_set_long_reordering(c, true);
        }
        int leader = -1;
        for (int i = 0; i < n; i++) {
            uint64_t index, term;
            bool ok = sim_start_int(c, i, sim_rand(c, 0, 10000), &index, &term);
            if (ok && sim_is_connected(c, i)) {
                leader = i;
            }
        }

        figure8_sleep(c);

        if (leader != -1 && sim_rand(c, 0, 1000) < SIM_RAFT_ELECTION_TIMEOUT_MS / 2) {
            sim_disconnect(c, leader);
            nup--;
        }

        if (nup < 3) {
            int s = (int)sim_rand(c, 0, (uint64_t)n);
            if (!sim_is_connected(c, s)) {
                sim_connect(c, s);
                nup++;
            }
        }
    }

    for (int i = 0; i < n; i++) {
        if (!sim_is_connected(c, i)) {
            sim_connect(c, i);
        }
    }

    /* The network stays unreliable, with long reordering, for the final agreement. */
    sim_one_int(c, sim_rand(c, 0, 10000), n, true);

    sim_raft_end(c, t0);
}

/* ---- churn: 3 clients propose while peers disconnect, crash and restart ---- */

enum { churn_clients = 3 };

struct churn_client {
    int me;
    int n;
    const bool *stop;
    bool done;
    bool wrong_type;   /* "wrong command type" */
    uint64_t x;        /* the value being proposed */
    uint64_t index;    /* where a peer accepted it */
    int poll_step;     /* next entry of the poll schedule */
    uint64_t *values;  /* values this client saw committed */
    size_t n_values;
    size_t values_cap;
};

/* The poll schedule after a Start: check, then sleep this many ms, up to 5 times. */
static const uint64_t churn_poll_ms[] = { 10, 20, 50, 100, 200 };

static void churn_client_loop(struct sim_cluster *c, void *arg);

static void churn_client_record(struct churn_client *cl, uint64_t x)
{
    if (cl->n_values == cl->values_cap) {
        cl->values_cap = cl->values_cap ? 2 * cl->values_cap : 64;
        cl->values = realloc(cl->values, cl->values_cap * sizeof *cl->values);
        CRAFT_ASSERT(cl->values != NULL);
    }
    cl->values[cl->n_values++] = x;
}

/* Maybe the leader commits our value, maybe not; don't wait forever. */
static void churn_client_poll(struct sim_cluster *c, void *arg)
{
    struct churn_client *cl = arg;
    uint64_t value = 0;
    size_t len = 0;
    int nd = sim_n_committed(c, cl->index, &value, sizeof value, &len);
    if (nd > 0) {
        uint64_t got;
        if (!sim_cmd_as_int(&value, len, &got)) {
            cl->wrong_type = true;
            cl->done = true;
            return;
        }
        if (got == cl->x) {
            churn_client_record(cl, cl->x);
        }
        /* A task rather than a call: keeps the stack flat if many polls succeed at once. */
        sim_task_at(c, 0, churn_client_loop, cl);
        return;
    }
    uint64_t sleep_ms = churn_poll_ms[cl->poll_step++];
    bool last = cl->poll_step == (int)(sizeof churn_poll_ms / sizeof churn_poll_ms[0]);
    sim_task_at(c, sleep_ms, last ? churn_client_loop : churn_client_poll, cl);
}

static void churn_client_loop(struct sim_cluster *c, void *arg)
{
    struct churn_client *cl = arg;
    if (*cl->stop) {
        cl->done = true;
        return;
    }
    uint64_t x = sim_raft_rand_cmd(c);
    bool ok = false;
    uint64_t index = 0;
    /* Try them all, maybe one of them is a leader. */
    for (int i = 0; i < cl->n; i++) {
        if (!sim_is_alive(c, i)) {
            continue;
        }
        uint64_t index1, term1;
        if (sim_start_int(c, i, x, &index1, &term1)) {
            ok = true;
            index = index1;
        }
    }
    if (ok) {
        cl->x = x;
        cl->index = index;
        cl->poll_step = 0;
        churn_client_poll(c, cl);
    } else {
        sim_task_at(c, 79 + 17 * (uint64_t)cl->me, churn_client_loop, cl);
    }
}

static void churn_check_clients(struct sim_cluster *c, const struct churn_client *cls)
{
    for (int i = 0; i < churn_clients; i++) {
        if (cls[i].wrong_type) {
            sim_fail(c, "wrong command type");
        }
    }
}

static void churn(bool unreliable)
{
    const int n = 5;
    uint64_t t0;
    struct sim_cluster *c = sim_raft_begin(
        n, unreliable, false, unreliable ? "Test (2C): unreliable churn" : "Test (2C): churn", &t0);

    bool stop = false;
    struct churn_client cls[churn_clients];
    for (int i = 0; i < churn_clients; i++) {
        cls[i] = (struct churn_client){ .me = i, .n = n, .stop = &stop };
        sim_task_at(c, 0, churn_client_loop, &cls[i]);
    }

    for (int iter = 0; iter < 20; iter++) {
        if (sim_rand(c, 0, 1000) < 200) {
            int i = (int)sim_rand(c, 0, (uint64_t)n);
            sim_disconnect(c, i);
        }
        if (sim_rand(c, 0, 1000) < 500) {
            int i = (int)sim_rand(c, 0, (uint64_t)n);
            if (!sim_is_alive(c, i)) {
                sim_start(c, i);
            }
            sim_connect(c, i);
        }
        if (sim_rand(c, 0, 1000) < 200) {
            int i = (int)sim_rand(c, 0, (uint64_t)n);
            if (sim_is_alive(c, i)) {
                sim_crash(c, i);
            }
        }
        /* Often enough that the peers have not settled from one change to the next, rarely
         * enough that they can keep up: a bit below the election timeout. */
        sim_sleep(c, SIM_RAFT_ELECTION_TIMEOUT_MS * 7 / 10);
        churn_check_clients(c, cls);
    }

    sim_sleep(c, SIM_RAFT_ELECTION_TIMEOUT_MS);
    sim_set_reliable(c, true);
    for (int i = 0; i < n; i++) {
        if (!sim_is_alive(c, i)) {
            sim_start(c, i);
        }
        sim_connect(c, i);
    }

    /* Stop the clients and collect what they saw committed. */
    stop = true;
    for (;;) {
        int n_done = 0;
        for (int i = 0; i < churn_clients; i++) {
            n_done += cls[i].done;
        }
        if (n_done == churn_clients) {
            break;
        }
        sim_sleep(c, 1);
    }
    for (int i = 0; i < churn_clients; i++) {
        if (cls[i].wrong_type) {
            sim_fail(c, "client failed: wrong command type");
        }
    }

    sim_sleep(c, SIM_RAFT_ELECTION_TIMEOUT_MS);

    uint64_t last_index = sim_one_int(c, sim_raft_rand_cmd(c), n, true);

    uint64_t *really = malloc((size_t)last_index * sizeof *really);
    CRAFT_ASSERT(really != NULL);
    for (uint64_t index = 1; index <= last_index; index++) {
        /* sim_wait fails on a command that is not an int ("not an int"). */
        int64_t v = sim_wait(c, index, n, -1);
        really[index - 1] = (uint64_t)v;
    }

    for (int i = 0; i < churn_clients; i++) {
        sim_note(c, "client %d saw %zu of its values committed", i, cls[i].n_values);
        for (size_t k = 0; k < cls[i].n_values; k++) {
            bool found = false;
            for (uint64_t j = 0; j < last_index && !found; j++) {
                found = really[j] == cls[i].values[k];
            }
            if (!found) {
                sim_fail(c, "didn't find a value (%llu, seen committed by client %d)",
                         (unsigned long long)cls[i].values[k], i);
            }
        }
    }

    free(really);
    for (int i = 0; i < churn_clients; i++) {
        free(cls[i].values);
    }
    sim_raft_end(c, t0);
}

void sim_raft_reliable_churn_2c(void)
{
    churn(false);
}

void sim_raft_unreliable_churn_2c(void)
{
    churn(true);
}
