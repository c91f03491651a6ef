/* The MIT 6.5840 shardctrler service on the simulator: every node runs the shard
 * controller's state machine (src/shard/ctrler.h) as its application, and clerks call the
 * servers through the replicated-service plumbing (rsm.h: Start on the leader, answer once
 * applied, labrpc-like client network, retry forever).
 *
 * Every request goes through the log, queries included (so a query is linearizable). A
 * clerk registers before its first change (the controller hands out its client id) and
 * numbers its changes 1, 2, ...; a retried change reuses its number, so the controller
 * applies it once however often the network makes the clerk send it; a change refused as
 * stale fails the run (these clerks never give one up). A reply carries the answer's status, the configuration number, and for a query
 * the configuration itself. */
#ifndef CRAFT_SIM_CTRLER_SERVICE_H
#define CRAFT_SIM_CTRLER_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shard/ctrler.h"
#include "sim/cluster.h"

struct sim_ctl;
struct sim_ctl_clerk;

/* A service for n servers; maxraftstate in bytes (-1: no snapshots). */
struct sim_ctl *sim_ctl_create(int n, int maxraftstate);
void sim_ctl_set_opts(struct sim_ctl *s, struct sim_cluster_opts *opts);
void sim_ctl_bind(struct sim_ctl *s, struct sim_cluster *c);
void sim_ctl_destroy(struct sim_ctl *s); /* after sim_cluster_destroy */
int sim_ctl_leader(struct sim_ctl *s);
/* Changes applied by server i's controller so far (its latest configuration's number). */
uint64_t sim_ctl_server_latest(const struct sim_ctl *s, int i);

struct sim_ctl_answer {
    int status;   /* CRAFT_OK, CRAFT_EINVAL (refused), CRAFT_ESTALE */
    uint64_t num; /* the configuration made or returned */
    const struct craft_shard_config *config; /* a query's; borrowed for the callback */
};

typedef void (*sim_ctl_done_fn)(struct sim_ctl_clerk *ck, void *arg, const struct sim_ctl_answer *a);

/* A clerk with links to every server (it registers with its first change). */
struct sim_ctl_clerk *sim_ctl_clerk(struct sim_ctl *s);
/* Starts r (Join, Leave, Move or Query; its client and seq are the clerk's, filled in
 * here; r is copied); done is
 * called once a server answers. The clerk must be idle. From a task or the scenario body. */
void sim_ctl_start(struct sim_ctl_clerk *ck, const struct craft_shard_request *r,
                   sim_ctl_done_fn done, void *arg);
bool sim_ctl_busy(const struct sim_ctl_clerk *ck);

/* Scenario body, blocking: r's answer (borrowed until the clerk's next call), whatever its
 * status; fails the run if the call takes more than budget_ms. */
const struct sim_ctl_answer *sim_ctl_call(struct sim_ctl_clerk *ck,
                                          const struct craft_shard_request *r, uint64_t budget_ms);
/* Scenario body, blocking: fail the run if the call takes more than budget_ms or the
 * change is refused. Return the configuration number made. */
uint64_t sim_ctl_join(struct sim_ctl_clerk *ck, const struct craft_shard_group *g, size_t n,
                      uint64_t budget_ms);
uint64_t sim_ctl_leave(struct sim_ctl_clerk *ck, const uint64_t *gids, size_t n,
                       uint64_t budget_ms);
uint64_t sim_ctl_move(struct sim_ctl_clerk *ck, uint16_t first, uint16_t last, uint64_t gid,
                      uint64_t budget_ms);
/* Query(num) (CRAFT_SHARD_QUERY_LATEST: the latest); borrowed until the clerk's next call. */
const struct craft_shard_config *sim_ctl_query(struct sim_ctl_clerk *ck, uint64_t num,
                                               uint64_t budget_ms);

#endif
