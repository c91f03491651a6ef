/* Per-node clocks: rate errors drawn from the seed, and the conversions between virtual
 * time and a node's time (see clock.h for the lease relation). */
#include "sim/clock.h"

#include "base/assert.h"
#include "base/prng.h"
#include "sim/sim_internal.h"

#define PPM 1000000u
/* Beyond this a node time times 1e6 could overflow 64 bits (about 580 years of ms). */
#define TIME_MATH_MAX (UINT64_C(1) << 43)

int64_t sim_clock_draw_drift(uint64_t seed, int i, uint32_t max_ppm)
{
    CRAFT_ASSERT(max_ppm <= SIM_CLOCK_DRIFT_PPM_LIMIT);
    if (max_ppm == 0) {
        return 0;
    }
    struct craft_prng shape, mine;
    craft_prng_seed(&shape, seed ^ 0x636c6f636b2d6d78ULL);
    bool extremes = craft_prng_range(&shape, 0, 2) == 0;
    craft_prng_seed(&mine, seed ^ 0x636c6f636b2d6e64ULL ^ ((uint64_t)i + 1) * 0x9e3779b97f4a7c15ULL);
    if (extremes) {
        return craft_prng_range(&mine, 0, 2) == 0 ? -(int64_t)max_ppm : (int64_t)max_ppm;
    }
    return (int64_t)craft_prng_range(&mine, 0, 2 * (uint64_t)max_ppm + 1) - (int64_t)max_ppm;
}

static uint64_t rate_of(int64_t ppm)
{
    CRAFT_ASSERT(ppm > -(int64_t)PPM && ppm <= (int64_t)SIM_CLOCK_DRIFT_PPM_LIMIT);
    return (uint64_t)((int64_t)PPM + ppm);
}

uint64_t sim_clock_node_time(int64_t ppm, uint64_t v)
{
    if (ppm == 0) {
        return v;
    }
    CRAFT_ASSERT(v < TIME_MATH_MAX);
    return v * rate_of(ppm) / PPM;
}

uint64_t sim_clock_virtual_time(int64_t ppm, uint64_t t)
{
    if (ppm == 0 || t == UINT64_MAX) {
        return t;
    }
    if (t >= TIME_MATH_MAX) {
        return UINT64_MAX;
    }
    uint64_t rate = rate_of(ppm);
    /* node_time(v) >= t  <=>  floor(v * rate / 1e6) >= t  <=>  v * rate >= t * 1e6. */
    uint64_t v = (t * PPM + rate - 1) / rate;
    CRAFT_ASSERT(sim_clock_node_time(ppm, v) >= t);
    CRAFT_ASSERT(v == 0 || sim_clock_node_time(ppm, v - 1) < t);
    return v;
}

uint64_t sim_node_now(const struct sim_node *node)
{
    return sim_clock_node_time(node->drift_ppm, node->c->w->now);
}

uint32_t sim_clock_drift_bound_ms(uint32_t ppm_max, uint32_t election_timeout_ms)
{
    uint64_t b = (4 * (uint64_t)ppm_max * election_timeout_ms + PPM - 1) / PPM + 2;
    CRAFT_ASSERT(b < election_timeout_ms); /* else the lease would be empty */
    return (uint32_t)b;
}
