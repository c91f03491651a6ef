/* The deterministic PRNG (src/base/prng.c): reproducible streams pinned to reference
 * values, range bounds, rough uniformity, and the edges of craft_prng_chance. */
#include <inttypes.h>
#include <stdio.h>

#include "base/prng.h"
#include "unit.h"




static const uint64_t seeds[] = {0, 1, 42, 0xdeadbeefULL, UINT64_MAX, 123456789};
#define N_SEEDS (sizeof(seeds) / sizeof(seeds[0]))

/* Seeds printed by the simulator must replay on every platform and every future build, so
 * the stream is pinned: these values come from an independent implementation of splitmix64
 * seeding + xoshiro256** (a few lines of Python), not from this C code. */
static void test_reference_stream(void)
{
    static const struct {
        uint64_t seed;
        uint64_t out[4];
    } ref[] = {
        {0,
         {0x99ec5f36cb75f2b4ULL, 0xbf6e1f784956452aULL, 0x1a5f849d4933e6e0ULL,
          0x6aa594f1262d2d2cULL}},
        {42,
         {0x15780b2e0c2ec716ULL, 0x6104d9866d113a7eULL, 0xae17533239e499a1ULL,
          0xecb8ad4703b360a1ULL}},
        {0xdeadbeefULL,
         {0xc5555444a74d7e83ULL, 0x65c30d37b4b16e38ULL, 0x54f773200a4efa23ULL,
          0x429aed75fb958af7ULL}},
    };
    for (size_t i = 0; i < sizeof(ref) / sizeof(ref[0]); i++) {
        cur_seed = ref[i].seed;
        struct craft_prng p;
        craft_prng_seed(&p, cur_seed);
        for (int k = 0; k < 4; k++) {
            CHECK(craft_prng_next(&p) == ref[i].out[k]);
        }
    }
}

static void test_same_seed_same_stream(void)
{
    for (size_t s = 0; s < N_SEEDS; s++) {
        cur_seed = seeds[s];
        struct craft_prng a, b, c;
        craft_prng_seed(&a, cur_seed);
        craft_prng_seed(&b, cur_seed);
        craft_prng_seed(&c, cur_seed + 1);
        int same_as_other = 0;
        for (int i = 0; i < 10000; i++) {
            uint64_t x = craft_prng_next(&a);
            CHECK(x == craft_prng_next(&b));
            same_as_other += x == craft_prng_next(&c);
        }
        CHECK(same_as_other == 0);
        /* Re-seeding restarts the stream. */
        craft_prng_seed(&a, cur_seed);
        craft_prng_seed(&b, cur_seed);
        for (int i = 0; i < 100; i++) {
            CHECK(craft_prng_range(&a, 0, 1000) == craft_prng_range(&b, 0, 1000));
        }
    }
}

static void test_range_bounds(void)
{
    static const struct {
        uint64_t lo, hi;
    } spans[] = {
        {0, 1},
        {0, 2},
        {5, 6},
        {10, 17},
        {0, 1000},
        {UINT64_MAX - 1, UINT64_MAX},
        {UINT64_MAX - 3, UINT64_MAX},
        {0, UINT64_MAX},
        {1, UINT64_MAX},
        {0, (UINT64_MAX / 2) + 2}, /* just above half: rejection sampling's worst case */
        {1000, 1000 + (1ULL << 63)},
    };
    for (size_t s = 0; s < N_SEEDS; s++) {
        cur_seed = seeds[s];
        struct craft_prng p;
        craft_prng_seed(&p, cur_seed);
        for (size_t i = 0; i < sizeof(spans) / sizeof(spans[0]); i++) {
            uint64_t lo = spans[i].lo, hi = spans[i].hi;
            bool saw_lo = false, saw_top = false;
            for (int k = 0; k < 2000; k++) {
                uint64_t x = craft_prng_range(&p, lo, hi);
                CHECK(x >= lo && x < hi);
                saw_lo |= x == lo;
                saw_top |= x == hi - 1;
            }
            if (hi - lo <= 8) {
                CHECK(saw_lo && saw_top);
            }
        }
        /* Random bounds. */
        for (int k = 0; k < 10000; k++) {
            uint64_t a = craft_prng_next(&p), b = craft_prng_next(&p);
            if (craft_prng_range(&p, 0, 2) == 0) {
                b = a + craft_prng_range(&p, 1, 100); /* small spans too */
            }
            if (a == b) {
                continue;
            }
            uint64_t lo = a < b ? a : b, hi = a < b ? b : a;
            uint64_t x = craft_prng_range(&p, lo, hi);
            CHECK(x >= lo && x < hi);
        }
    }
}

/* Pearson's chi-squared over `buckets` equal cells; the bound is the 0.999 quantile for the
 * degrees of freedom, so a fixed seed list never flakes and a biased generator fails. */
static double chi2(const uint32_t *counts, uint32_t buckets, uint32_t draws)
{
    double expect = (double)draws / buckets, x = 0;
    for (uint32_t i = 0; i < buckets; i++) {
        double d = counts[i] - expect;
        x += d * d / expect;
    }
    return x;
}

static void test_range_uniform(void)
{
    static const struct {
        uint32_t buckets;
        double bound; /* chi-squared 0.999 quantile, buckets - 1 degrees of freedom */
    } cases[] = {{2, 10.83}, {6, 20.52}, {10, 27.88}, {37, 67.99}, {100, 148.23}};
    for (size_t s = 0; s < N_SEEDS; s++) {
        cur_seed = seeds[s];
        struct craft_prng p;
        craft_prng_seed(&p, cur_seed);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            uint32_t counts[100] = {0};
            uint32_t n = cases[i].buckets, draws = 1000 * n;
            for (uint32_t k = 0; k < draws; k++) {
                counts[craft_prng_range(&p, 0, n)]++;
            }
            double x = chi2(counts, n, draws);
            CHECK(x < cases[i].bound);
            if (x >= cases[i].bound) {
                printf("  %u buckets: chi2 %.2f\n", n, x);
            }
        }
        /* A span that does not divide 2^64: the high half of [0, 3 * 2^62) must not be
         * favoured (plain modulo would give the low third twice the mass). */
        uint64_t span = 3ULL << 62;
        uint32_t low = 0, draws = 30000;
        for (uint32_t k = 0; k < draws; k++) {
            low += craft_prng_range(&p, 0, span) < span / 3;
        }
        CHECK(low > draws / 3 - 600 && low < draws / 3 + 600);
    }
}

static void test_chance_edges(void)
{
    for (size_t s = 0; s < N_SEEDS; s++) {
        cur_seed = seeds[s];
        struct craft_prng p;
        craft_prng_seed(&p, cur_seed);
        uint32_t yes_0 = 0, yes_1000 = 0, yes_1 = 0, yes_500 = 0, yes_999 = 0;
        for (int k = 0; k < 100000; k++) {
            yes_0 += craft_prng_chance(&p, 0);
            yes_1000 += craft_prng_chance(&p, 1000);
            yes_1 += craft_prng_chance(&p, 1);
            yes_500 += craft_prng_chance(&p, 500);
            yes_999 += craft_prng_chance(&p, 999);
        }
        CHECK(yes_0 == 0);
        CHECK(yes_1000 == 100000);
        CHECK(yes_1 > 40 && yes_1 < 170);               /* mean 100 */
        CHECK(yes_500 > 49000 && yes_500 < 51000);      /* mean 50000, sd 158 */
        CHECK(yes_999 > 100000 - 170 && yes_999 < 100000 - 40);
        /* Above 1000 is "always" too. */
        CHECK(craft_prng_chance(&p, 5000));
    }
}

int main(void)
{
    run_case("reference_stream", test_reference_stream);
    run_case("same_seed_same_stream", test_same_seed_same_stream);
    run_case("range_bounds", test_range_bounds);
    run_case("range_uniform", test_range_uniform);
    run_case("chance_edges", test_chance_edges);
    return unit_finish();
}
