#include "base/trace.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

uint32_t craft_trace_mask;
static craft_trace_sink trace_sink;
static void *trace_sink_ctx;

static const char *const topic_names[CRAFT_T_COUNT_] = {
    [CRAFT_T_ELECT] = "ELECT",   [CRAFT_T_VOTE] = "VOTE",   [CRAFT_T_APPEND] = "APPEND",
    [CRAFT_T_COMMIT] = "COMMIT", [CRAFT_T_APPLY] = "APPLY", [CRAFT_T_SNAP] = "SNAP",
    [CRAFT_T_CONF] = "CONF",     [CRAFT_T_READ] = "READ",   [CRAFT_T_PERSIST] = "PERSIST",
    [CRAFT_T_NET] = "NET",       [CRAFT_T_TIMER] = "TIMER", [CRAFT_T_CLIENT] = "CLIENT",
    [CRAFT_T_FAULT] = "FAULT",   [CRAFT_T_TEST] = "TEST",
};

const char *craft_topic_name(enum craft_topic topic)
{
    if ((unsigned)topic >= CRAFT_T_COUNT_) {
        return "?";
    }
    return topic_names[topic];
}

uint32_t craft_trace_parse(const char *spec)
{
    uint32_t mask = 0;
    if (spec == NULL) {
        return 0;
    }
    const char *p = spec;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 3 && strncmp(p, "all", 3) == 0) {
            mask = (1u << CRAFT_T_COUNT_) - 1;
        }
        for (int t = 0; t < CRAFT_T_COUNT_; t++) {
            if (strlen(topic_names[t]) == len && strncasecmp(p, topic_names[t], len) == 0) {
                mask |= 1u << t;
            }
        }
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return mask;
}

void craft_trace_setup(uint32_t mask, craft_trace_sink sink, void *ctx)
{
    craft_trace_mask = mask;
    trace_sink = sink;
    trace_sink_ctx = ctx;
}

void craft_trace_setup_from_env(void)
{
    const char *spec = getenv("CRAFT_TRACE");
    if (spec != NULL) {
        craft_trace_setup(craft_trace_parse(spec), NULL, NULL);
    }
}

void craft_trace_emit(enum craft_topic topic, uint64_t now_ms, uint64_t node, uint64_t term,
                      const char *fmt, ...)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "%8llu n%llu %s t%llu ", (unsigned long long)now_ms,
                     (unsigned long long)node, craft_topic_name(topic), (unsigned long long)term);
    if (n < 0 || (size_t)n >= sizeof line) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (trace_sink != NULL) {
        trace_sink(trace_sink_ctx, line);
    } else {
        fprintf(stderr, "%s\n", line);
    }
}
