/* The simulated cluster's insides, shared by the files of src/sim (not a public header).
 *
 * cluster.c  the config.go helpers and the run loop
 * node.c     one node: driver, ports, the MIT appliers, start and crash
 * checks.c   the invariant checkers, fed incrementally where state changes
 * run.c      the run context: seed, scenario name, sim_fail, the assertion hook */
#ifndef CRAFT_SIM_INTERNAL_H
#define CRAFT_SIM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/msg_codec.h"
#include "core/core.h"
#include "runtime/driver.h"
#include "sim/cluster.h"
#include "sim/disk.h"
#include "sim/net.h"
#include "sim/scenario.h"
#include "runtime/quiesce.h"
#include "sim/world.h"

struct sim_node {
    struct sim_cluster *c;
    int i;              /* 0-based; the Raft id is i + 1 */
    bool alive;
    uint64_t incarnation; /* bumped at every crash and start: stale events are ignored */
    bool gone; /* lost for good (recover.c): never started again, not even by the final
                * liveness check (its old log under the old configuration would elect a
                * second cluster: why a lost node must not come back with its data) */
    struct craft_driver *d;
    uint64_t next_timeout; /* cached craft_driver_next_timeout; UINT64_MAX when down */
    struct sim_disk disk;
    struct sim_real_disk *rd; /* opts.real_storage only (real_disk.h), else NULL */

    /* The tester's applier (config.go applier/applierSnap). The MIT "index" is a command
     * index: the count of NORMAL entries through a log index (see docs/design/simulator.md).
     * cmds[k - 1] is the log index of command k; like config.go's logs[i] map it survives a
     * restart and is replaced only when a snapshot is ingested. */
    uint64_t last_applied; /* log index */
    uint64_t n_cmds;       /* commands applied in this incarnation, snapshot included */
    uint64_t *cmds;
    size_t n_known, cap_cmds;

    /* Checker state for this incarnation. */
    uint64_t last_commit;
    uint64_t leader_term_checked;

    /* Membership (membership.c): the configuration as of last_applied, which snapshots
     * record; and whether a leader reported this node, a learner, caught up. */
    struct craft_conf applied_conf;
    bool caught_up;

    /* Reads (clock.c, kvreg.c): the clock's rate error, and the key/value register state
     * machine when opts.kv (NULL otherwise). */
    int64_t drift_ppm;
    struct sim_kv *kv;

    /* Quiescence (opts.quiesce on the root: the runtime's rules, runtime/quiesce.h): not
     * ticked while quiet.quiesced. */
    struct craft_quiesce quiet;
};

/* What the cluster knows was committed at one log index (filled by the appliers). */
struct sim_committed {
    bool present;
    uint8_t type;
    int server;           /* first node that applied it */
    uint64_t term;
    uint64_t cmds_through; /* NORMAL entries at indexes <= this one */
    size_t off;           /* data in sim_checks.data */
    uint32_t len;
};

struct sim_lm_slot; /* log matching table slot (checks.c) */

struct sim_checks {
    uint8_t *term_leader; /* term -> Raft id of its leader (0: none seen) */
    size_t cap_terms;
    uint64_t **votes;     /* per node: term -> durable vote */
    size_t *cap_votes;
    struct sim_lm_slot *lm;
    size_t lm_cap, lm_n;
    struct sim_committed *gc; /* by log index */
    size_t gc_cap;
    uint64_t gc_max;
    uint8_t *data;
    size_t data_len, data_cap;
    /* The latest committed configuration the appliers saw, and its index (0: bootstrap). */
    struct craft_conf conf;
    uint64_t conf_index;
    struct craft_msg_decoder dec; /* sim_check_send's */
    /* A configuration forced by recovery from a lost quorum (recover.c) at this log index
     * (0: none): its commit is the operator's override, not a membership change, so the
     * overlap rule does not apply to it. */
    uint64_t forced_index;
};

struct sim_cluster {
    struct sim_cluster_opts opts;
    int n;
    /* On a root: the cores' allocations fail at alloc_fail_ppm per million
     * (sim_set_alloc_failures), drawn from their own stream; a node whose core stopped is
     * restarted later, as a supervised process (node.c port_failed). */
    uint32_t alloc_fail_ppm;
    uint64_t alloc_rng;
    uint64_t n_allocs_failed, n_cores_stopped;
    /* The world and the network: the root's own, shared by the groups added to it
     * (sim_cluster_add_group), as one process's replicas share its clock and its sockets. */
    struct sim_world *w;
    struct sim_net *net;
    struct sim_world w_store;
    struct sim_net net_store;
    /* Many groups per process: group 0 is the root; the root lists every group (itself
     * first), each group points at the root. */
    struct sim_cluster *root;
    uint64_t group;
    struct sim_cluster **groups;
    int n_groups;
    /* The root, with opts.quiesce: what each process knows of the others (liveness.c):
     * [i * n + j] is process i's view of process j. */
    uint64_t *heard_at;          /* when i last heard from j (any message) */
    uint64_t *incarnation_seen;  /* the incarnation j's last ping named */
    uint64_t *incarnation_acted; /* ... and the one i last acted on */
    bool *peer_down;
    struct sim_node *nodes;
    bool *connected; /* the root's: links are between processes */
    struct sim_checks ch;
    struct craft_conf conf; /* the bootstrap configuration: nodes 0..n_initial-1 */
    int n_initial;
    int last_start_err;     /* sim_last_start_err */
    uint8_t *blob;          /* scratch for snapshot blobs */
    size_t blob_cap;
    bool in_task;
    uint64_t t0;
    struct sim_reads *reads; /* client histories of the read scenarios (reads.c), or NULL */
};

/* ---- node.c ---- */
void sim_node_init(struct sim_cluster *c, int i);
void sim_node_free(struct sim_node *node);
void sim_node_start(struct sim_cluster *c, int i); /* from durable state; not connected */
void sim_node_crash(struct sim_cluster *c, int i); /* no-op if down */
void sim_node_tick(struct sim_node *node);
/* The network's delivery callback (ctx is the root cluster; group picks its group). */
void sim_node_deliver(void *ctx, int from, int to, uint64_t group, const uint8_t *bytes,
                      size_t len);
/* After any call into node's driver: refreshes the timer and runs the status checks. */
void sim_node_after(struct sim_node *node);
/* Work of the node's own process for it (a proposal, a read, a configuration change): a
 * quiesced replica wakes and tells the others. */
void sim_node_work(struct sim_node *node);

/* liveness.c: quiescence (opts.quiesce) and the processes' pings. */
void sim_quiesce_wake(struct sim_node *node, bool tell_others);
/* After the node was stepped: a quiet leader quiesces. */
void sim_quiesce_check(struct sim_node *node);
/* A message for the node: a host message (QUIESCE, WAKE), or a Raft message stepped. */
void sim_quiesce_receive(struct sim_node *node, int from, const uint8_t *bytes, size_t len);
/* Process `to` heard from process `from` (ping: a PING, whose incarnation it notes). */
void sim_liveness_heard(struct sim_cluster *root, int from, int to, const uint8_t *bytes,
                        size_t len, bool ping);
void sim_liveness_start(struct sim_cluster *root);
void sim_liveness_free(struct sim_cluster *root);
/* The command bytes applied at log index (from the committed record); NULL if unknown. */
const uint8_t *sim_committed_data(const struct sim_cluster *c, uint64_t log_index,
                                  uint32_t *len);
/* Formats a command the way the Go tests print it (%v): an 8-byte command as an integer. */
const char *sim_fmt_cmd(char *buf, size_t cap, const void *cmd, size_t len);

/* ---- checks.c ---- */
void sim_checks_init(struct sim_checks *ch, int n);
void sim_checks_free(struct sim_checks *ch, int n);
/* Election safety, leader completeness, monotonic commit: after each event on node. */
void sim_check_status(struct sim_node *node);
/* Vote uniqueness and log matching: when write w became durable on node's disk. */
void sim_check_persisted(struct sim_node *node, const struct sim_write *w);
/* A message node hands to the network (bytes encoded): its term, and a vote it grants,
 * must already be durable. */
void sim_check_send(struct sim_node *node, const uint8_t *bytes, size_t len);
/* State machine safety: node applies entry e with cmds_through NORMAL entries through it.
 * Records the committed entry. */
void sim_check_apply(struct sim_node *node, const struct craft_entry *e, uint64_t cmds_through);
/* A command ingested from a snapshot blob at log_index: must match what was committed. */
void sim_check_ingest(struct sim_node *node, uint64_t log_index, const uint8_t *data,
                      uint32_t len, uint64_t cmds_through);
const struct sim_committed *sim_check_committed(const struct sim_checks *ch, uint64_t index);
/* Recovery from a lost quorum (recover.c): the nodes of `lost` are gone for good with
 * whatever only they held. The checks forget it: committed records above `keep` (the
 * survivors applied no further), log-matching records (rebuilt from the survivors' disks),
 * leaders of terms above max_term (no survivor saw them). */
void sim_checks_lost(struct sim_cluster *c, uint64_t lost, uint64_t keep, uint64_t max_term);

/* ---- membership.c ---- */
/* The bootstrap configuration node i starts from (empty for a node that joins later). */
void sim_member_bootstrap_conf(const struct sim_cluster *c, int i, struct craft_conf *out);
/* The applier saw a CONF entry: tracks node's applied configuration. */
void sim_member_applied(struct sim_node *node, const struct craft_entry *e);
/* The driver's caught_up port (ctx is the reporting node). */
void sim_member_port_caught_up(void *ctx, uint64_t id);
/* Checks a newly committed CONF entry against the previous committed configuration: the
 * change must keep old and new quorums overlapping. */
void sim_member_check_committed(struct sim_cluster *c, const struct craft_entry *e);
/* node just became leader (observed first in this term): it must be a voter. */
void sim_member_check_new_leader(struct sim_node *node, const struct craft_core_status *st);

/* ---- run.c ---- */
void sim_run_attach(struct sim_cluster *c);
void sim_run_detach(struct sim_cluster *c);
/* Called by the event loop after each event: fails the run (sim_fail: seed and replay
 * line) once it passes a budget (scenario.h, "Budgets"). */
void sim_run_budget_check(struct sim_cluster *c);

#endif
