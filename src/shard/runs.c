/* Slot tables as runs (runs.h). */
#include <string.h>

#include "base/err.h"
#include "shard/runs.h"

_Static_assert(CRAFT_SLOTS <= UINT16_MAX, "a run's count fits u16");

size_t craft_slot_runs_size(const uint8_t *t)
{
    size_t n = 1;
    for (uint32_t s = 1; s < CRAFT_SLOTS; s++) {
        n += t[s] != t[s - 1];
    }
    return 2 + n * 3;
}

size_t craft_slot_runs_encode(const uint8_t *t, uint8_t *p)
{
    size_t n_runs = (craft_slot_runs_size(t) - 2) / 3;
    uint8_t *start = p;
    p[0] = (uint8_t)n_runs;
    p[1] = (uint8_t)(n_runs >> 8);
    p += 2;
    for (uint32_t s = 0; s < CRAFT_SLOTS;) {
        uint32_t e = s + 1;
        while (e < CRAFT_SLOTS && t[e] == t[s]) {
            e++;
        }
        p[0] = (uint8_t)(e - s);
        p[1] = (uint8_t)((e - s) >> 8);
        p[2] = t[s];
        p += 3;
        s = e;
    }
    return (size_t)(p - start);
}

int craft_slot_runs_decode(struct craft_reader *r, uint8_t *t)
{
    const uint8_t *b;
    if ((b = craft_take(r, 2)) == NULL) {
        return CRAFT_ECORRUPT;
    }
    uint32_t n_runs = (uint32_t)b[0] | (uint32_t)b[1] << 8, s = 0;
    for (uint32_t k = 0; k < n_runs; k++) {
        if ((b = craft_take(r, 3)) == NULL) {
            return CRAFT_ECORRUPT;
        }
        uint32_t count = (uint32_t)b[0] | (uint32_t)b[1] << 8;
        uint8_t value = b[2];
        if (count == 0 || count > CRAFT_SLOTS - s || (k > 0 && t[s - 1] == value)) {
            return CRAFT_ECORRUPT; /* empty, past the last slot, or not canonical */
        }
        memset(t + s, value, count);
        s += count;
    }
    return s == CRAFT_SLOTS ? CRAFT_OK : CRAFT_ECORRUPT;
}
