/* Kept apart from run.c so that programs using the simulator without the scenario registry
 * (unit tests) do not need sim_scenarios[] to link. */
#include <string.h>

#include "sim/scenario.h"

const struct sim_scenario *sim_scenario_find(const char *name)
{
    for (size_t i = 0; i < sim_n_scenarios; i++) {
        if (strcmp(sim_scenarios[i].name, name) == 0) {
            return &sim_scenarios[i];
        }
    }
    return NULL;
}
