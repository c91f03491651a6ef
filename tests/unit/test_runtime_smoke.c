/* Smoke test of the threaded runtime: 3 nodes elect and replicate. */
#include "unit.h"
#include "runtime_cluster.h"
#include "runtime/rt.h"

static void run_basic(bool tcp, bool disk)
{
    struct rcluster c;
    rc_init(&c, 3, tcp, disk);
    uint64_t leader = rc_start_all(&c, 10000);
    if (leader != 0) {
        enum { N = 2000 };
        static struct craft_future *fs[N];
        uint64_t one = 1;
        for (int i = 0; i < N; i++) {
            fs[i] = craft_apply(c.nodes[leader], &one, 8, 1000);
        }
        int ok = 0;
        for (int i = 0; i < N; i++) {
            int rc = craft_future_wait(fs[i], 10000);
            if (rc == CRAFT_OK) {
                ok++;
                CHECK((uint64_t)(uintptr_t)craft_future_result(fs[i]) == (uint64_t)i + 1);
            }
            craft_future_release(fs[i]);
        }
        CHECK(ok == N);
        CHECK(rc_wait_total(&c, N, 10000));
    }
    rc_destroy(&c);
}

static void test_mem(void) { run_basic(false, false); }
static void test_tcp_disk(void) { run_basic(true, true); }

/* The queue's bound counts the callers' requests only: the loop's own messages (pushed
 * unbounded) never make a request fail as if the queue were full (a batch of applies on a
 * leader whose inbox held a few peer messages failed at craft_batch_end). */
static void test_queue_bound(void)
{
    enum { MAX = 4 };
    struct rt_queue q;
    rt_queue_init(&q, MAX);
    struct rt_item msgs[3 * MAX], reqs[MAX + 2];
    for (int i = 0; i < 3 * MAX; i++) {
        CHECK(rt_queue_push(&q, &msgs[i], false, 0));
    }
    CHECK(rt_queue_len(&q) == 3 * MAX);
    CHECK(rt_queue_bounded_len(&q) == 0);
    CHECK(rt_queue_push(&q, &reqs[0], true, 0));
    for (int i = 1; i < MAX + 2; i++) {
        reqs[i].next = i + 1 < MAX + 2 ? &reqs[i + 1] : NULL;
    }
    struct rt_item *rest = rt_queue_push_list(&q, &reqs[1], true);
    CHECK(rest == &reqs[MAX]); /* MAX requests in: the first one alone, then MAX - 1 */
    CHECK(rt_queue_bounded_len(&q) == MAX);
    CHECK(!rt_queue_push(&q, &reqs[MAX], true, 0)); /* full: no wait asked for */
    CHECK(rt_queue_push(&q, &reqs[MAX], false, 0)); /* messages still go in */
    size_t taken = 0;
    for (struct rt_item *it = rt_queue_take_nowait(&q); it != NULL; it = it->next) {
        taken++;
    }
    CHECK(taken == 3 * MAX + MAX + 1);
    CHECK(rt_queue_len(&q) == 0 && rt_queue_bounded_len(&q) == 0);
    CHECK(rt_queue_push(&q, &reqs[MAX + 1], true, 0)); /* room again after the take */
    CHECK(rt_queue_take_nowait(&q) == &reqs[MAX + 1]);
    rt_queue_destroy(&q);
}

int main(void)
{
    run_case("queue_bound", test_queue_bound);
    run_case("mem", test_mem);
    run_case("tcp_disk", test_tcp_disk);
    return unit_finish();
}
