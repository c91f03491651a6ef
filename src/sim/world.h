/* The simulator's world: a virtual clock, one PRNG stream and an event queue.
 *
 * Events are ordered by (time, insertion sequence), so the order is total and the same seed
 * always replays the same history. The queue is a binary heap of plain structs: scheduling
 * allocates only when the heap grows. Internal to src/sim. */
#ifndef CRAFT_SIM_WORLD_H
#define CRAFT_SIM_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/prng.h"

typedef void (*sim_event_fn)(void *ctx, void *arg, uint64_t a);

struct sim_event {
    uint64_t time;
    uint64_t seq;
    sim_event_fn fn;
    void *ctx;
    void *arg;
    uint64_t a;
};

struct sim_world {
    uint64_t now;    /* virtual ms */
    uint64_t seq;    /* insertion counter: the tie-break */
    uint64_t events; /* events processed (for failure reports) */
    struct craft_prng prng;
    struct sim_event *heap;
    size_t n, cap;
};

/* Starts at time 0 with the PRNG seeded from seed. */
void sim_world_init(struct sim_world *w, uint64_t seed);
/* Frees the queue; pending events are dropped (their args are their owners' business). */
void sim_world_free(struct sim_world *w);

/* Schedules fn(ctx, arg, a) at time (>= now). */
void sim_world_at(struct sim_world *w, uint64_t time, sim_event_fn fn, void *ctx, void *arg,
                  uint64_t a);
/* The earliest pending event's time; false if the queue is empty. */
bool sim_world_peek(const struct sim_world *w, uint64_t *time);
/* Removes the earliest event into *ev; false if empty. Does not run it or move the clock. */
bool sim_world_pop(struct sim_world *w, struct sim_event *ev);

/* Uniform in [lo, hi); returns lo when the range is empty (hi <= lo). */
uint64_t sim_world_rand(struct sim_world *w, uint64_t lo, uint64_t hi);
/* True with probability per_mille / 1000. */
bool sim_world_chance(struct sim_world *w, uint32_t per_mille);

/* realloc that ends the run on failure (the simulator is a test harness: it has no use for
 * running on without memory); size 0 allocates one byte. The simulator's one allocator. */
void *sim_xrealloc(void *p, size_t size);

/* A well-mixed 64-bit hash of x (splitmix64 finalizer), for deriving per-node seeds. */
uint64_t sim_mix64(uint64_t x);

#endif
