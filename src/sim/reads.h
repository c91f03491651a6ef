/* Client histories for the read scenarios: clients write through the log and read through
 * the core's three read paths on a key/value cluster (opts.kv), every completed operation
 * is recorded, and at the end the history goes through the linearizability checker
 * (linearize.h).
 *
 * Writes: propose on a node that believes it is the leader. The write completes when that
 * node (same incarnation) applies the same op at the returned log index (return time =
 * then). If any node applies a different entry at that index, the write certainly failed
 * and is dropped. If the client gives up first (timeout), the outcome is unknown: it is
 * recorded with return time UINT64_MAX (it may take effect at any later time), unless a
 * different entry is later seen at its index.
 *
 * Reads (never through the log):
 *   SIM_READ_INDEX     craft_driver_read_index on the node (meant for the leader); served
 *                      from the node's map when the read port reports success;
 *   SIM_READ_LEASE     craft_driver_read_lease; served once the node applied through the
 *                      returned index; CRAFT_ESTALE falls back to ReadIndex on that node;
 *   SIM_READ_FOLLOWER  craft_driver_read_index on a follower.
 * A read that fails (error, timeout, crash) has no effect and is not recorded.
 *
 * Operations are identified by non-zero ids (also the read ctx), unique in a run. */
#ifndef CRAFT_SIM_READS_H
#define CRAFT_SIM_READS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct sim_cluster;
struct sim_node;
struct sim_kv_op;

enum sim_read_mode {
    SIM_READ_INDEX = 0,
    SIM_READ_LEASE = 1,
    SIM_READ_FOLLOWER = 2,
    SIM_READ_MODES_ = 3,
};

enum sim_op_status {
    SIM_OP_PENDING = 0,
    SIM_OP_OK,      /* completed; recorded */
    SIM_OP_FAILED,  /* certainly without effect; not recorded */
    SIM_OP_UNKNOWN, /* write whose client gave up: recorded with return time UINT64_MAX */
};

/* Random clients (sim_reads_start). */
struct sim_reads_opts {
    int n_clients;
    int n_keys;             /* keys "k0" .. */
    uint32_t put_pct;       /* op mix, percent; the rest are gets */
    uint32_t append_pct;
    bool modes[SIM_READ_MODES_]; /* read modes the clients draw from (at least one) */
    uint64_t op_timeout_ms; /* a client gives up on an op after this */
    uint64_t think_ms_max;  /* pause between ops: U[1, think_ms_max] */
};

/* Attaches an empty history to c (opts.kv must be set). Idempotent. */
void sim_reads_attach(struct sim_cluster *c);

/* Starts o->n_clients client tasks issuing random ops until sim_reads_stop. Attaches. */
void sim_reads_start(struct sim_cluster *c, const struct sim_reads_opts *o);
/* Clients issue no new op; pending ones still complete or time out. */
void sim_reads_stop(struct sim_cluster *c);
/* Number of ops not yet completed, failed or given up. */
size_t sim_reads_pending(const struct sim_cluster *c);

/* ---- single ops (scenario body or tasks) ---- */
/* Issues a write of kind SIM_LIN_PUT / SIM_LIN_APPEND of value (copied, at most
 * SIM_KV_VALUE_MAX bytes) to key on node i for client `client`, given up after timeout_ms.
 * Returns the op id, or 0 if node i is down or refused it (not leader: nothing recorded). */
uint64_t sim_reads_write(struct sim_cluster *c, int client, int i, uint8_t kind, const char *key,
                         const char *value, uint64_t timeout_ms);
/* Issues a read of key on node i in mode. Returns the op id, or 0 if refused. */
uint64_t sim_reads_read(struct sim_cluster *c, int client, int i, enum sim_read_mode mode,
                        const char *key, uint64_t timeout_ms);
/* Gives up pending ops whose timeout passed (the clients call it; so may a scenario). */
void sim_reads_expire(struct sim_cluster *c);
enum sim_op_status sim_reads_status(const struct sim_cluster *c, uint64_t id);
/* A completed read's value (borrowed until the history is freed). */
const uint8_t *sim_reads_value(const struct sim_cluster *c, uint64_t id, size_t *len);
/* Whether node i (alive) would serve a lease read now (craft_driver_read_lease says OK);
 * records nothing. */
bool sim_reads_has_lease(struct sim_cluster *c, int i);
/* Blocking (scenario body only): a ReadIndex read of key on the current leader, retried
 * until it succeeds or budget_ms passes (fails the run then). Recorded like any read. */
void sim_reads_final_read(struct sim_cluster *c, const char *key, uint64_t budget_ms);

/* ---- the end ---- */
/* Resolves unknown writes against what was committed, checks that no completed read of an
 * append-only key missed an append completed before the read began, then runs the
 * linearizability checker with budget_steps; fails the run on ILLEGAL (with the checker's
 * description) or UNKNOWN. Keeps the history (for stats) until sim_reads_free. */
void sim_reads_check(struct sim_cluster *c, uint64_t budget_steps);

struct sim_reads_stats {
    uint64_t writes_ok, writes_failed, writes_unknown;
    uint64_t reads_ok[SIM_READ_MODES_], reads_failed[SIM_READ_MODES_];
    uint64_t lease_fallbacks;           /* lease reads that went to ReadIndex (ESTALE) */
    uint64_t refused;                   /* ops a node refused at once */
    double lat_mean[SIM_READ_MODES_];   /* completed reads: call to return, virtual ms */
    uint64_t lat_p99[SIM_READ_MODES_];
    uint64_t lat_max[SIM_READ_MODES_];
    uint64_t lin_steps;                 /* the checker's steps (after sim_reads_check) */
};
void sim_reads_get_stats(const struct sim_cluster *c, struct sim_reads_stats *out);
/* Notes the stats in the trace. */
void sim_reads_note_stats(struct sim_cluster *c);
/* Frees the history and the clients: called by sim_cluster_destroy once no task can run. */
void sim_reads_free(struct sim_cluster *c);

/* ---- hooks from the nodes (node.c, kvreg.c) ---- */
/* node applied e (op: e decoded, or NULL if e is not an op); its map reflects e. */
void sim_reads_on_apply(struct sim_node *node, const struct craft_entry *e,
                        const struct sim_kv_op *op);
/* The driver's read port (ctx is the node). */
void sim_reads_port_read(void *ctx, const struct craft_read_state *r);

#endif
