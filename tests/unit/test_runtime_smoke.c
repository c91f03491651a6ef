/* Smoke test of the threaded runtime: 3 nodes elect and replicate. */
#include "unit.h"
#include "runtime_cluster.h"

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

int main(void)
{
    run_case("mem", test_mem);
    run_case("tcp_disk", test_tcp_disk);
    return unit_finish();
}
