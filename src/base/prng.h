/* A deterministic PRNG (xoshiro256**, seeded through splitmix64). Same seed, same stream,
 * on every platform: the simulator's reproducibility rests on it. */
#ifndef CRAFT_BASE_PRNG_H
#define CRAFT_BASE_PRNG_H

#include <stdbool.h>
#include <stdint.h>

struct craft_prng {
    uint64_t s[4];
};

void craft_prng_seed(struct craft_prng *p, uint64_t seed);
uint64_t craft_prng_next(struct craft_prng *p);
/* Uniform in [lo, hi). Requires lo < hi. */
uint64_t craft_prng_range(struct craft_prng *p, uint64_t lo, uint64_t hi);
/* True with probability per_mille / 1000. */
bool craft_prng_chance(struct craft_prng *p, uint32_t per_mille);

#endif
