/* Per-node clocks for the simulator: each node's clock runs at its own rate.
 *
 * Node i's clock reads node_now = v * (1e6 + ppm_i) / 1e6 (integer, rounded down) at
 * virtual time v (virtual time starts at 0 when the cluster is made), where ppm_i is drawn
 * per node from the run's seed within [-clock_drift_ppm_max, +clock_drift_ppm_max]. Every
 * call into a node's driver passes its node_now; the driver's next timeout is in node time
 * and is converted back to the first virtual time at which the node's clock reaches it.
 * With a zero bound every clock equals virtual time (the MIT scenarios).
 *
 * A lease stays safe if the core's clock_drift_bound_ms covers how far two clocks can
 * disagree over an election timeout E: the leader's lease of E - B (its clock) must end,
 * in real time, before a follower's E (its clock) of refusing votes ends. With rates
 * 1 - p (leader) and 1 + p (follower) that needs B >= E * 2p / (1 + p). We take twice that,
 * plus 2 ms for the rounding of the integer clocks: sim_clock_drift_bound_ms. */
#ifndef CRAFT_SIM_CLOCK_H
#define CRAFT_SIM_CLOCK_H

#include <stdint.h>

struct sim_cluster;
struct sim_node;

/* The largest drift a run may ask for: 50% (beyond that the integer math would still
 * work, but the scenarios' timings would not mean much). */
#define SIM_CLOCK_DRIFT_PPM_LIMIT 500000u

/* Node i's rate error in ppm, drawn from the run's seed (its own stream, so the scenario's
 * other choices do not shift): 0 if max_ppm is 0; else for half the seeds each node gets
 * -max_ppm or +max_ppm (the worst case for leases), for the other half a uniform value in
 * [-max_ppm, +max_ppm]. max_ppm <= SIM_CLOCK_DRIFT_PPM_LIMIT. */
int64_t sim_clock_draw_drift(uint64_t seed, int i, uint32_t max_ppm);

/* Node's clock at the current virtual time. node must belong to a live cluster. */
uint64_t sim_node_now(const struct sim_node *node);

/* The node clock at virtual time v for a node with drift ppm. Monotonic in v. */
uint64_t sim_clock_node_time(int64_t ppm, uint64_t v);

/* The first virtual time at which the clock of a node with drift ppm reads >= t.
 * UINT64_MAX stays UINT64_MAX (no timer); times too large for the math saturate to it. */
uint64_t sim_clock_virtual_time(int64_t ppm, uint64_t t);

/* The clock_drift_bound_ms the nodes need for drift up to ppm_max and a base election
 * timeout of election_timeout_ms (see the relation above): ceil(4 * ppm_max * E / 1e6) + 2. */
uint32_t sim_clock_drift_bound_ms(uint32_t ppm_max, uint32_t election_timeout_ms);

#endif
