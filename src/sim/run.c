/* The run context: one scenario with one seed. Each run is its own process (craft-sim forks
 * a worker per run), so this file-level state is per run, not shared. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/trace.h"
#include "sim/scenario.h"
#include "sim/sim_internal.h"

static struct {
    bool active;
    uint64_t seed;
    const char *name;
    struct sim_cluster *cluster; /* the attached cluster, if any */
    uint64_t now, events;        /* of the last detached cluster */
    uint64_t max_virtual_ms, max_events, max_rss_bytes; /* 0: no limit */
    char context[512]; /* sim_run_context: printed with a failure (a swarm run's mix) */
    jmp_buf fail_jump;
} run;

void sim_run_context(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(run.context, sizeof run.context, fmt, ap);
    va_end(ap);
}

uint64_t sim_seed(void)
{
    return run.seed;
}

const char *sim_scenario_name(void)
{
    return run.name ? run.name : "unnamed";
}

void sim_run_attach(struct sim_cluster *c)
{
    run.cluster = c;
}

void sim_run_detach(struct sim_cluster *c)
{
    if (run.cluster == c) {
        run.now = c->w->now;
        run.events += c->w->events;
        run.cluster = NULL;
    }
}

static uint64_t cur_now(void)
{
    return run.cluster ? run.cluster->w->now : run.now;
}

static uint64_t cur_events(void)
{
    return run.events + (run.cluster ? run.cluster->w->events : 0);
}

/* A budget from the environment (0: none), or its default. */
static uint64_t budget(const char *var, uint64_t dflt)
{
    const char *v = getenv(var);
    if (v == NULL || *v == '\0') {
        return dflt;
    }
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end != '\0') {
        fprintf(stderr, "craft-sim: %s=%s is not a number: using %llu\n", var, v,
                (unsigned long long)dflt);
        return dflt;
    }
    return (uint64_t)x;
}

/* The resident set of this process in bytes (0 if /proc cannot tell). */
static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f == NULL) {
        return 0;
    }
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 && page > 0 ? (uint64_t)resident * (uint64_t)page : 0;
}

#define RSS_CHECK_EVERY 65536u

void sim_run_budget_check(struct sim_cluster *c)
{
    uint64_t events = cur_events();
    if (run.max_virtual_ms != 0 && c->w->now > run.max_virtual_ms) {
        sim_fail(c, "run away: virtual time passed %llu s (CRAFT_SIM_MAX_VIRTUAL_S)",
                 (unsigned long long)(run.max_virtual_ms / 1000));
    }
    if (run.max_events != 0 && events > run.max_events) {
        sim_fail(c, "run away: more than %llu events (CRAFT_SIM_MAX_EVENTS)",
                 (unsigned long long)run.max_events);
    }
    if (run.max_rss_bytes != 0 && events % RSS_CHECK_EVERY == 0) {
        uint64_t rss = rss_bytes();
        if (rss > run.max_rss_bytes) {
            sim_fail(c, "run away: %llu MiB resident, over %llu MiB (CRAFT_SIM_MAX_RSS_MB)",
                     (unsigned long long)(rss >> 20),
                     (unsigned long long)(run.max_rss_bytes >> 20));
        }
    }
}

static void print_replay(void)
{
    if (run.context[0]) {
        fprintf(stderr, "%s\n", run.context);
    }
    fprintf(stderr, "replay: build/bin/craft-sim run %s --seed %llu --trace\n",
            sim_scenario_name(), (unsigned long long)run.seed);
}

static void assert_hook(void *ctx)
{
    (void)ctx;
    fprintf(stderr, "FAIL %s seed=%llu event=%llu t=%llu: assertion failed (above)\n",
            sim_scenario_name(), (unsigned long long)run.seed,
            (unsigned long long)cur_events(), (unsigned long long)cur_now());
    print_replay();
}

_Noreturn void sim_fail(struct sim_cluster *c, const char *fmt, ...)
{
    (void)c; /* the attached cluster is the current one */
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    CRAFT_TRACE(CRAFT_T_TEST, cur_now(), 0, 0, "FAIL: %s", msg);
    fflush(stdout);
    fprintf(stderr, "FAIL %s seed=%llu event=%llu t=%llu: %s\n", sim_scenario_name(),
            (unsigned long long)run.seed, (unsigned long long)cur_events(),
            (unsigned long long)cur_now(), msg);
    print_replay();
    fflush(stderr);
    if (run.active) {
        longjmp(run.fail_jump, 1);
    }
    exit(1);
}

void sim_note(struct sim_cluster *c, const char *fmt, ...)
{
    if (!CRAFT_TRACE_ON(CRAFT_T_TEST)) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    craft_trace_emit(CRAFT_T_TEST, c ? c->w->now : cur_now(), 0, 0, "%s", msg);
}

static void stdout_sink(void *ctx, const char *line)
{
    (void)ctx;
    fputs(line, stdout);
    fputc('\n', stdout);
}

struct sim_run_result sim_run_scenario(const struct sim_scenario *s, uint64_t seed, bool trace)
{
    CRAFT_ASSERT(s != NULL && s->run != NULL);
    CRAFT_ASSERT(!run.active);
    run.active = true;
    run.seed = seed;
    run.name = s->name;
    run.cluster = NULL;
    run.now = 0;
    run.events = 0;
    run.context[0] = '\0';
    run.max_virtual_ms = budget("CRAFT_SIM_MAX_VIRTUAL_S", SIM_BUDGET_VIRTUAL_S_DEFAULT) * 1000;
    run.max_events = budget("CRAFT_SIM_MAX_EVENTS", SIM_BUDGET_EVENTS_DEFAULT);
    run.max_rss_bytes = budget("CRAFT_SIM_MAX_RSS_MB", SIM_BUDGET_RSS_MB_DEFAULT) << 20;
    craft_assert_set_hook(assert_hook, NULL);
    if (trace) {
        craft_trace_setup((1u << CRAFT_T_COUNT_) - 1, stdout_sink, NULL);
    } else {
        craft_trace_setup(0, NULL, NULL);
    }
    volatile bool passed = false;
    if (setjmp(run.fail_jump) == 0) {
        s->run();
        passed = true;
    } else if (run.cluster != NULL) {
        /* A failure can unwind from inside a driver call, so its state is not safe to tear
         * down; the run's process exits soon, which reclaims it. */
        sim_run_detach(run.cluster);
    }
    struct sim_run_result r = {.passed = passed, .virtual_ms = cur_now(),
                               .events = cur_events()};
    fflush(stdout);
    craft_assert_set_hook(NULL, NULL);
    run.active = false;
    return r;
}
