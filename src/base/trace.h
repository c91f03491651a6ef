/* Topic-tagged debug trace.
 *
 * One line per event:  <time_ms> n<node> <TOPIC> t<term> <text>
 * (node 0 is the simulator itself). craft-log renders such a trace as one column per node.
 *
 * Tracing is off by default. A disabled topic costs one predictable branch on a bitmask.
 * The enabled topics and the sink are process-wide: set them once at start-up. */
#ifndef CRAFT_BASE_TRACE_H
#define CRAFT_BASE_TRACE_H

#include <stdint.h>

enum craft_topic {
    CRAFT_T_ELECT,   /* timeouts, role changes */
    CRAFT_T_VOTE,    /* vote and pre-vote requests and answers */
    CRAFT_T_APPEND,  /* append requests and answers, progress */
    CRAFT_T_COMMIT,  /* commit index movement */
    CRAFT_T_APPLY,   /* entries handed to the state machine */
    CRAFT_T_SNAP,    /* snapshots: taken, sent, installed */
    CRAFT_T_CONF,    /* configuration */
    CRAFT_T_READ,    /* read index, lease */
    CRAFT_T_PERSIST, /* durable writes and their completion */
    CRAFT_T_NET,     /* simulated network: send, drop, deliver */
    CRAFT_T_TIMER,   /* heartbeats, ticks */
    CRAFT_T_CLIENT,  /* proposals, client operations */
    CRAFT_T_FAULT,   /* injected faults: crash, restart, partition */
    CRAFT_T_TEST,    /* scenario steps */
    CRAFT_T_COUNT_
};

extern uint32_t craft_trace_mask; /* bit i set: topic i enabled */

typedef void (*craft_trace_sink)(void *ctx, const char *line);

/* Returns the topic's name, e.g. "ELECT". */
const char *craft_topic_name(enum craft_topic topic);

/* Parses a comma-separated topic list ("ELECT,VOTE", "all", "" for none) into a mask.
 * Unknown names are ignored. */
uint32_t craft_trace_parse(const char *spec);

/* Enables the topics of mask and sends lines to sink (NULL: standard error). */
void craft_trace_setup(uint32_t mask, craft_trace_sink sink, void *ctx);

/* Enables from the CRAFT_TRACE environment variable, if set. */
void craft_trace_setup_from_env(void);

void craft_trace_emit(enum craft_topic topic, uint64_t now_ms, uint64_t node, uint64_t term,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define CRAFT_TRACE_ON(topic) (__builtin_expect((craft_trace_mask >> (topic)) & 1u, 0))

#define CRAFT_TRACE(topic, now_ms, node, term, ...)                       \
    do {                                                                  \
        if (CRAFT_TRACE_ON(topic)) {                                      \
            craft_trace_emit((topic), (now_ms), (node), (term), __VA_ARGS__); \
        }                                                                 \
    } while (0)

#endif
