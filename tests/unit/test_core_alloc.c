/* Out of memory in the protocol core (docs/design/core.md, "Out of memory"): with the
 * allocation hook (src/base/alloc.h) failing the Nth allocation the cores make, for every N
 * a workload reaches, a 3-node lockstep cluster never asserts; the node whose step could
 * not allocate stops cleanly (craft_core_error is CRAFT_ENOMEM, it hands out no batch,
 * refuses every call), or the call that could not allocate refuses (a proposal); and the
 * other two go on electing and committing. Then a random failure rate over longer runs. */
#include <string.h>

#include "base/alloc.h"
#include "core/core.h"
#include "sim/lockstep.h"
#include "unit.h"

static uint64_t countdown; /* allocations until the failing one (0: none fails) */
static uint64_t rate_seed; /* else: each fails with probability 1/rate */
static uint32_t rate;
static uint64_t n_alloc_failed, n_allocs;

static bool fail_hook(void *ctx)
{
    (void)ctx;
    bool fail = false;
    n_allocs++;
    if (countdown != 0) {
        fail = --countdown == 0;
    } else if (rate != 0) {
        rate_seed = rate_seed * 6364136223846793005ULL + 1442695040888963407ULL;
        fail = (rate_seed >> 33) % rate == 0;
    }
    n_alloc_failed += fail;
    return fail;
}

/* A stopped core keeps refusing, and hands nothing out. */
static void check_stopped(struct craft_core *core)
{
    CHECK(craft_core_error(core) == CRAFT_ENOMEM);
    CHECK(!craft_core_has_ready(core));
    struct craft_batch b;
    CHECK(!craft_core_ready(core, &b));
    uint64_t index, term;
    CHECK(craft_core_propose(core, (const uint8_t *)"x", 1, 1, &index, &term) == CRAFT_ENOMEM);
    struct craft_msg m = {.type = CRAFT_MSG_HEARTBEAT, .from = 2, .to = 1, .term = 1};
    CHECK(craft_core_step(core, &m, 1) == CRAFT_ENOMEM);
    CHECK(craft_core_read_index(core, 1, 1) == CRAFT_ENOMEM);
    struct craft_core_status st;
    craft_core_status(core, &st);
    CHECK(st.role == CRAFT_FOLLOWER && st.leader == CRAFT_NONE);
    CHECK(craft_core_next_timeout(core) == UINT64_MAX);
}

/* Elects and proposes `n` commands through whoever leads, `rounds` at most. Returns how many
 * proposals were accepted. */
static uint64_t workload(struct lockstep *ls, int n, int rounds)
{
    uint64_t accepted = 0;
    for (int r = 0; r < rounds && (int)accepted < n; r++) {
        int l = lockstep_leader(ls);
        if (l < 0) {
            lockstep_advance(ls);
            continue;
        }
        uint64_t v = accepted + 1, index, term;
        if (craft_core_propose(ls->cores[l], (const uint8_t *)&v, sizeof v, ls->now, &index,
                               &term) == CRAFT_OK) {
            accepted++;
        }
        lockstep_deliver_all(ls);
        if (r % 8 == 7) {
            lockstep_advance(ls);
        }
    }
    return accepted;
}

static int live(const struct lockstep *ls)
{
    int k = 0;
    for (int i = 0; i < ls->n; i++) {
        k += !ls->down[i];
    }
    return k;
}

static void test_every_allocation(void)
{
    /* How many allocations the workload makes (the same run for every N up to the one that
     * fails: lockstep is deterministic). */
    struct lockstep ls;
    lockstep_init(&ls, 3, 7);
    n_allocs = 0;
    craft_alloc_set_hook(fail_hook, NULL);
    CHECK(workload(&ls, 40, 400) == 40);
    craft_alloc_set_hook(NULL, NULL);
    lockstep_free(&ls);
    uint64_t total = n_allocs, stopped = 0, sweeps = 0;
    CHECK(total > 20);
    for (uint64_t nth = 1; nth <= total; nth++) {
        cur_seed = nth; /* a failure names the allocation that failed */
        lockstep_init(&ls, 3, 7);
        n_alloc_failed = 0;
        countdown = nth;
        craft_alloc_set_hook(fail_hook, NULL);
        (void)workload(&ls, 40, 400);
        craft_alloc_set_hook(NULL, NULL);
        countdown = 0;
        sweeps += n_alloc_failed > 0;
        for (int i = 0; i < ls.n; i++) {
            if (ls.down[i]) {
                stopped++;
                check_stopped(ls.cores[i]);
            }
        }
        /* At most the one node that met the failure stopped; the others go on. */
        CHECK(live(&ls) >= 2);
        int l = lockstep_elect(&ls, 200);
        CHECK(l >= 0);
        if (l >= 0) {
            uint64_t before = ls.applied_count[l];
            CHECK(workload(&ls, 5, 200) == 5);
            for (int r = 0; r < 20; r++) {
                lockstep_advance(&ls);
            }
            l = lockstep_leader(&ls);
            CHECK(l >= 0 && ls.applied_count[l] >= before + 5);
        }
        lockstep_free(&ls);
    }
    /* The sweep reached failures, and some of them stopped a node (others refused a
     * proposal: the caller's error). */
    CHECK(sweeps == total);
    CHECK(stopped > total / 4);
    printf("every_allocation: %llu allocations failed one at a time, %llu nodes stopped "
           "cleanly, the others refused a call\n", (unsigned long long)total,
           (unsigned long long)stopped);
}

/* Random failures at a low rate over longer runs, 5 nodes: whatever stops, the cluster
 * never asserts, and keeps committing while 3 are live. */
static void test_random_rate(void)
{
    n_alloc_failed = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        cur_seed = seed;
        struct lockstep ls;
        lockstep_init(&ls, 5, seed);
        rate_seed = seed;
        rate = 3000;
        craft_alloc_set_hook(fail_hook, NULL);
        (void)workload(&ls, 300, 3000);
        craft_alloc_set_hook(NULL, NULL);
        rate = 0;
        for (int i = 0; i < ls.n; i++) {
            if (ls.down[i]) {
                check_stopped(ls.cores[i]);
            }
        }
        if (live(&ls) >= 3) {
            CHECK(lockstep_elect(&ls, 200) >= 0);
            CHECK(workload(&ls, 3, 200) == 3);
        }
        lockstep_free(&ls);
    }
    CHECK(n_alloc_failed > 10); /* the rate met the runs */
}

int main(void)
{
    run_case("every_allocation", test_every_allocation);
    run_case("random_rate", test_random_rate);
    return unit_finish();
}
