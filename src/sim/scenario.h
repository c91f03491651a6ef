/* Scenario registry and the per-run context of the simulator.
 *
 * One run = one scenario with one seed, in its own process (craft-sim forks a worker per
 * run), so a run's failure, an assertion or a crash ends only that run. */
#ifndef CRAFT_SIM_SCENARIO_H
#define CRAFT_SIM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sim_scenario {
    const char *name;        /* e.g. "raft/initial-election" */
    const char *description; /* the MIT begin() text or a one-line summary */
    void (*run)(void);       /* returns normally on success; sim_fail() ends a failed run */
};

/* All scenarios, in listing order (defined in tests/sim/registry.c). */
extern const struct sim_scenario sim_scenarios[];
extern const size_t sim_n_scenarios;

const struct sim_scenario *sim_scenario_find(const char *name);

/* Seed shares (defined in tests/sim/registry.c): a sweep runs a scenario whose name starts
 * with prefix on the first ceil(n * per_mille / 1000) seeds of a range of n (at least one),
 * so that costly scenarios (the kvraft ones: seconds per seed) fit the test command's
 * budget. craft-sim's --capped-share overrides per_mille for all of them (make soak). */
struct sim_seed_share {
    const char *prefix;
    unsigned per_mille;
};
extern const struct sim_seed_share sim_seed_shares[];
extern const size_t sim_n_seed_shares;

/* What a run reports back to the runner. */
struct sim_run_result {
    bool passed;
    uint64_t virtual_ms; /* virtual time at the end of the run */
    uint64_t events;     /* simulator events processed */
};

/* Budgets: a run that passes one fails like any other (its seed and replay line), so a
 * bug that makes a run spin or grow cannot hang or exhaust the test command:
 *   virtual time  CRAFT_SIM_MAX_VIRTUAL_S  (default 600 s: the longest scenario needs ~50)
 *   events        CRAFT_SIM_MAX_EVENTS     (default 100 million)
 *   memory        CRAFT_SIM_MAX_RSS_MB     (default 2048: the process's resident set,
 *                 read from /proc/self/statm every 65536 events)
 * The environment variables override the defaults (0: no limit). */
#define SIM_BUDGET_VIRTUAL_S_DEFAULT 600u
#define SIM_BUDGET_EVENTS_DEFAULT    100000000u
#define SIM_BUDGET_RSS_MB_DEFAULT    2048u

/* Runs one scenario with one seed in the current process. With trace, every topic is
 * written to standard output. Returns the result; a failed run has already printed its
 * message, seed and replay command to standard error. */
struct sim_run_result sim_run_scenario(const struct sim_scenario *s, uint64_t seed, bool trace);

/* The current run's seed and scenario name (valid inside sim_run_scenario). */
uint64_t sim_seed(void);
const char *sim_scenario_name(void);
/* A line printed with the run's failure, before its replay line (a swarm run's drawn mix). */
void sim_run_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
