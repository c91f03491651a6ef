/* Simulator speed: events per second and virtual seconds per wall second, over a few
 * scenarios and seeds run back to back in this process (no fork, no trace).
 *
 * Usage: sim_speed [seeds-per-scenario] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sim/scenario.h"

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    uint64_t seeds = argc > 1 ? strtoull(argv[1], NULL, 10) : 20;
    if (seeds == 0) {
        fprintf(stderr, "usage: sim_speed [seeds-per-scenario > 0]\n");
        return 2;
    }
    static const char *const names[] = {
        "raft/figure8-unreliable-2c", "raft/reliable-churn-2c",
        "raft/snapshot-install-uncrash-2d", "raft/chaos",
    };
    printf("sim_speed: %llu seeds per scenario, one process, no trace\n",
           (unsigned long long)seeds);
    printf("%-34s %12s %14s %14s\n", "scenario", "events", "events/s", "virtual x");
    uint64_t all_events = 0;
    double all_wall = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const struct sim_scenario *s = sim_scenario_find(names[k]);
        if (s == NULL) {
            fprintf(stderr, "sim_speed: no scenario %s\n", names[k]);
            return 1;
        }
        uint64_t events = 0, virtual_ms = 0;
        double start = seconds_now();
        for (uint64_t seed = 1; seed <= seeds; seed++) {
            struct sim_run_result r = sim_run_scenario(s, seed, false);
            if (!r.passed) {
                fprintf(stderr, "sim_speed: %s seed %llu failed\n", names[k],
                        (unsigned long long)seed);
                return 1;
            }
            events += r.events;
            virtual_ms += r.virtual_ms;
        }
        double wall = seconds_now() - start;
        all_events += events;
        all_wall += wall;
        printf("%-34s %12llu %14.0f %14.0f\n", names[k], (unsigned long long)events,
               (double)events / wall, (double)virtual_ms / 1000.0 / wall);
    }
    printf("%-34s %12llu %14.0f\n", "all", (unsigned long long)all_events,
           (double)all_events / all_wall);
    return 0;
}
