/* craftkv: the server's clocks. CLOCK_REALTIME stamps writes on the leader (expiry is
 * wall-clock time, kv.md); CLOCK_MONOTONIC measures deadlines and back-offs, which must not
 * jump with the wall clock. */
#include <time.h>

#include "kv/server_internal.h"

uint64_t craftkv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t craftkv_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int craftkv_ms_until(uint64_t due_ms, int max_ms)
{
    uint64_t now = craftkv_mono_ms();
    if (due_ms <= now)
        return 0;
    return due_ms - now < (uint64_t)max_ms ? (int)(due_ms - now) : max_ms;
}

void craftkv_nap(uint32_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}
