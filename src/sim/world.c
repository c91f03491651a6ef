#include "sim/world.h"

#include <stdlib.h>

#include "base/assert.h"

void sim_world_init(struct sim_world *w, uint64_t seed)
{
    *w = (struct sim_world){0};
    craft_prng_seed(&w->prng, seed);
}

void sim_world_free(struct sim_world *w)
{
    free(w->heap);
    w->heap = NULL;
    w->n = w->cap = 0;
}

static bool before(const struct sim_event *x, const struct sim_event *y)
{
    return x->time < y->time || (x->time == y->time && x->seq < y->seq);
}

void sim_world_at(struct sim_world *w, uint64_t time, sim_event_fn fn, void *ctx, void *arg,
                  uint64_t a)
{
    CRAFT_ASSERT(fn != NULL);
    CRAFT_ASSERT(time >= w->now);
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        struct sim_event *h = realloc(w->heap, cap * sizeof *h);
        CRAFT_ASSERT(h != NULL);
        w->heap = h;
        w->cap = cap;
    }
    struct sim_event ev = {.time = time, .seq = w->seq++, .fn = fn, .ctx = ctx, .arg = arg,
                           .a = a};
    size_t i = w->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&ev, &w->heap[parent])) {
            break;
        }
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = ev;
}

bool sim_world_peek(const struct sim_world *w, uint64_t *time)
{
    if (w->n == 0) {
        return false;
    }
    *time = w->heap[0].time;
    return true;
}

bool sim_world_pop(struct sim_world *w, struct sim_event *ev)
{
    if (w->n == 0) {
        return false;
    }
    *ev = w->heap[0];
    struct sim_event last = w->heap[--w->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= w->n) {
            break;
        }
        size_t m = l;
        if (l + 1 < w->n && before(&w->heap[l + 1], &w->heap[l])) {
            m = l + 1;
        }
        if (!before(&w->heap[m], &last)) {
            break;
        }
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (w->n > 0) {
        w->heap[i] = last;
    }
    return true;
}

uint64_t sim_world_rand(struct sim_world *w, uint64_t lo, uint64_t hi)
{
    if (hi <= lo) {
        return lo;
    }
    return craft_prng_range(&w->prng, lo, hi);
}

bool sim_world_chance(struct sim_world *w, uint32_t per_mille)
{
    return craft_prng_chance(&w->prng, per_mille);
}

void *sim_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    CRAFT_ASSERT(q != NULL);
    return q;
}

uint64_t sim_mix64(uint64_t x)
{
    uint64_t z = x + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
