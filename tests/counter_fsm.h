/* A counter state machine for the runtime tests and benchmarks: each command's first 8
 * bytes are a little-endian u64 increment (a shorter command counts but adds nothing), the
 * result is the new total, and a snapshot is the two numbers (total, commands applied).
 * The counter's mutex guards it against readers on other threads than the apply thread. */
#ifndef CRAFT_TESTS_COUNTER_FSM_H
#define CRAFT_TESTS_COUNTER_FSM_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "craft.h"

struct counter {
    pthread_mutex_t mu;
    uint64_t total, applied, n_cmds, restores;
};

static inline int counter_apply(void *ctx, const struct craft_command *cmds, size_t n,
                                void **results)
{
    struct counter *c = ctx;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        if (cmds[i].len >= 8) {
            uint64_t v;
            memcpy(&v, cmds[i].data, 8);
            c->total += v;
        }
        c->n_cmds++;
        c->applied = cmds[i].index;
        results[i] = (void *)(uintptr_t)c->total;
    }
    pthread_mutex_unlock(&c->mu);
    return 0;
}

static inline int counter_snapshot(void *ctx, void **snap)
{
    struct counter *c = ctx;
    uint64_t *s = malloc(2 * sizeof *s);
    if (s == NULL) {
        return CRAFT_ENOMEM;
    }
    pthread_mutex_lock(&c->mu);
    s[0] = c->total;
    s[1] = c->n_cmds;
    pthread_mutex_unlock(&c->mu);
    *snap = s;
    return CRAFT_OK;
}

static inline int counter_snapshot_write(void *ctx, void *snap, struct craft_sink *sink)
{
    (void)ctx;
    return craft_sink_write(sink, snap, 2 * sizeof(uint64_t));
}

static inline void counter_snapshot_release(void *ctx, void *snap)
{
    (void)ctx;
    free(snap);
}

static inline int counter_restore(void *ctx, struct craft_source *src)
{
    struct counter *c = ctx;
    uint64_t s[2];
    size_t got = 0;
    while (got < sizeof s) {
        size_t k;
        int rc = craft_source_read(src, (uint8_t *)s + got, sizeof s - got, &k);
        if (rc != CRAFT_OK) {
            return rc;
        }
        if (k == 0) {
            return CRAFT_ECORRUPT;
        }
        got += k;
    }
    pthread_mutex_lock(&c->mu);
    c->total = s[0];
    c->n_cmds = s[1];
    c->restores++;
    pthread_mutex_unlock(&c->mu);
    return CRAFT_OK;
}

static inline struct craft_fsm counter_fsm(struct counter *c)
{
    return (struct craft_fsm){.ctx = c,
                              .apply = counter_apply,
                              .snapshot = counter_snapshot,
                              .snapshot_write = counter_snapshot_write,
                              .snapshot_release = counter_snapshot_release,
                              .restore = counter_restore};
}

/* A consistent view of a counter. */
struct counter_view {
    uint64_t total, applied, n_cmds, restores;
};

static inline struct counter_view counter_view(struct counter *c)
{
    pthread_mutex_lock(&c->mu);
    struct counter_view v = {c->total, c->applied, c->n_cmds, c->restores};
    pthread_mutex_unlock(&c->mu);
    return v;
}

static inline uint64_t counter_total(struct counter *c)
{
    return counter_view(c).total;
}

#endif
