/* The simulated cluster: the MIT 6.5840 Raft tester (`config.go`) rebuilt on the
 * deterministic simulator. Scenario code reads like the Go tests: it calls these helpers in
 * sequence, and "sleeping" runs the simulation forward in virtual time.
 *
 * Everything is driven by one seed: the network's drops and delays, the nodes' election
 * timeouts, and the scenario's own choices (sim_rand). A check that fails calls sim_fail,
 * which prints the message, the scenario, the seed, the event number and the command that
 * replays the run with a full trace, then ends the run as failed.
 *
 * Node ids in this API are 0-based indexes i in [0, n); the Raft node id is i + 1. */
#ifndef CRAFT_SIM_CLUSTER_H
#define CRAFT_SIM_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct sim_cluster;

/* An application state machine run by every node in place of the MIT applier's snapshot
 * blob (e.g. src/sim/kv_service.h). The applier still counts commands and checks them; the
 * hook owns the snapshot bytes and decides when to snapshot (config.go's maxraftstate). */
struct sim_app {
    void *ctx;
    void (*start)(void *ctx, int i); /* node i (re)starts: empty state */
    void (*apply)(void *ctx, int i, const struct craft_entry *e); /* any entry type */
    /* After a command: whether to snapshot now, given node i's durable Raft state size. */
    bool (*want_snapshot)(void *ctx, int i, size_t raft_state_bytes);
    /* The state through index (the last applied); borrowed until the next call. */
    const uint8_t *(*snapshot)(void *ctx, int i, uint64_t index, size_t *len);
    void (*ingest)(void *ctx, int i, const uint8_t *blob, size_t len, uint64_t index);
};

struct sim_cluster_opts {
    int n;                /* nodes */
    bool unreliable;      /* labrpc unreliable: 10% requests and 10% replies dropped, 0-26 ms delays */
    bool snapshot;        /* the snapshot applier: snapshot after each index k with (k+1) % 10 == 0 */
    bool long_delays;     /* labrpc LongDelays (raft tests: true). Affects only what is counted
                             as failed calls; messages on dead links are always lost. */
    uint32_t disk_latency_max_ms; /* each durable write takes U[0, max] ms (0: immediate) */
    uint32_t dup_per_mille;       /* probability that a delivered message is delivered twice */
    /* The long tail, on an unreliable network: probability that a message of any kind (a
     * vote request, an append, an answer) arrives 200-3000 ms late and out of order, after
     * its sender may have been deposed or restarted. A reliable network (a TCP connection
     * per link: first in, first out) has no tail: a stall there is a partition. */
    uint32_t tail_per_mille;
    uint32_t election_timeout_ms; /* the nodes' base election timeout (0: core default) */
    uint32_t snapshot_chunk_bytes; /* snapshot chunk size (0: core default) */
    /* Nodes 0..n_initial-1 form the bootstrap configuration (all voters); the others start
     * in no configuration and join when a configuration names them (0: all n). */
    int n_initial;
    /* Reads (src/sim/clock.h, kvreg.h, reads.h). Each node's clock runs at a rate error
     * drawn from the seed within +-clock_drift_ppm_max (0: every clock is virtual time);
     * clock_drift_bound_ms is the core's (0: core default). kv: the nodes run the key/value
     * register state machine (commands from sim_kv_encode) next to the MIT applier. */
    uint32_t clock_drift_ppm_max;
    uint32_t clock_drift_bound_ms;
    bool kv;
    /* Persist through the production stores (WAL, stable store, file snapshot store) over
     * a faulty in-memory filesystem per node, instead of the disk model (src/sim/real_disk.h). */
    bool real_storage;
    /* With real_storage, on a root: each process keeps the logs and hard states of all its
     * groups' replicas in one group log on one filesystem (the runtime host's shared log:
     * docs/design/multiraft.md), each group's snapshots in a directory of its own; a
     * process crash loses what that filesystem had not synced, for every group at once.
     * The groups added to such a root must set real_storage too. */
    bool shared_log;
    /* On a root: idle groups quiesce (the runtime host's rules, runtime/quiesce.h), and
     * the processes ping each other every heartbeat interval so that the quiesced groups of
     * a process that went silent (for an election timeout) or restarted wake. */
    bool quiesce;
    /* The nodes' application (NULL: the MIT applier alone). Excludes kv and snapshot. */
    const struct sim_app *app;
};

/* Fills opts with the defaults of make_config(n, unreliable, snapshot), plus a fault mix
 * drawn from the run's seed (its own stream, so the scenario's choices do not shift):
 * disk latency (0 for a third of the seeds, else up to 1..8 ms per write), message
 * duplication (none for half of the seeds, else 1..20 per mille) and the election timeout
 * (the core default for half of the seeds, else a base of 300..999 ms) and the snapshot
 * chunk size (the default for half of the seeds, else 256..4095 bytes, so that snapshots
 * travel in many chunks). Scenarios whose
 * bounds count messages exactly (TestCount, TestRPCBytes) reset dup_per_mille and
 * election_timeout_ms to 0. */
void sim_cluster_opts_default(struct sim_cluster_opts *opts, int n, bool unreliable, bool snapshot);

/* make_config: creates n nodes, starts them and connects them all. The seed is the current
 * run's (sim_seed()). */
struct sim_cluster *sim_cluster_create(const struct sim_cluster_opts *opts);
/* end(): stops every node and checks that no invariant was broken; frees everything, the
 * groups added to c included. c must be a root (a cluster from sim_cluster_create). */
void sim_cluster_destroy(struct sim_cluster *c);

/* ---- many groups per process (docs/design/multiraft.md) ----
 * Node i of every group is a replica in process i: the groups added to a root share its
 * virtual clock, its network (links, loss and delays are between processes; each message
 * carries its group) and its processes' fate. Each group has its own nodes, log, applier
 * and invariant checks; every call above works on a group as on a cluster, and faults on
 * links (sim_connect, sim_disconnect, sim_set_link, reliability) act on the processes,
 * so on every group at once. */
/* Adds a Raft group of root->n replicas (opts->n must equal it; no kv;
 * real_storage exactly when the root has a shared log), started in every process that is
 * up. */
struct sim_cluster *sim_cluster_add_group(struct sim_cluster *root,
                                          const struct sim_cluster_opts *opts);
/* Group g of c's processes (0: the root) and how many there are. */
struct sim_cluster *sim_group_of(struct sim_cluster *c, int g);
int sim_n_groups(const struct sim_cluster *c);
/* Process i crashes (every group's replica loses its unsynced writes) / restarts (every
 * group's replica recovers from its disk; not connected). */
void sim_proc_crash(struct sim_cluster *c, int i);
void sim_proc_start(struct sim_cluster *c, int i);
/* Group c's replica in process i alone crashes (loses its unsynced writes) / restarts from
 * its disk (crashing first if up), the process and its links staying as they are (the MIT
 * shardkv tester's ShutdownServer / StartServer of one group's server). */
void sim_replica_crash(struct sim_cluster *c, int i);
void sim_replica_start(struct sim_cluster *c, int i);

/* ---- time ---- */
uint64_t sim_now(const struct sim_cluster *c);              /* virtual ms */
void sim_sleep(struct sim_cluster *c, uint64_t ms);         /* run the world for ms */
uint64_t sim_rand(struct sim_cluster *c, uint64_t lo, uint64_t hi); /* uniform [lo, hi) */

/* ---- faults (labrpc / config.go semantics) ---- */
void sim_connect(struct sim_cluster *c, int i);    /* enable links between i and connected peers */
void sim_disconnect(struct sim_cluster *c, int i); /* i keeps running, partitioned */
bool sim_is_connected(const struct sim_cluster *c, int i);
/* Partitions of any shape: whether messages from i to j are delivered (both directions are
 * independent). sim_connect/sim_disconnect set both directions for all of i's links. */
void sim_set_link(struct sim_cluster *c, int from, int to, bool enabled);
void sim_crash(struct sim_cluster *c, int i);      /* crash1: unsynced writes are lost */
void sim_start(struct sim_cluster *c, int i);      /* start1: crash if alive, restart from disk; not connected */
bool sim_is_alive(const struct sim_cluster *c, int i);
/* Whether node i's replica is up and quiesced (opts.quiesce). */
bool sim_node_quiesced(const struct sim_cluster *c, int i);
void sim_set_reliable(struct sim_cluster *c, bool reliable);
/* Out of memory in the core (docs/design/core.md, "Out of memory"): from now on each
 * allocation the cores make fails with probability per_million / 10^6 (0: none; the end of
 * the run turns it off before its liveness check). A node whose step could not allocate
 * stops and is restarted from its disk 100-1000 ms later. The hook is the process's
 * (base/alloc.h): one cluster at a time. */
void sim_set_alloc_failures(struct sim_cluster *c, uint32_t per_million);
/* Allocations failed, and cores stopped by them, so far. */
void sim_alloc_failures(const struct sim_cluster *c, uint64_t *failed, uint64_t *stopped);
void sim_set_long_reordering(struct sim_cluster *c, bool on);

/* ---- the Raft API of one node (rf.Start, rf.GetState) ---- */
/* Start(cmd) on node i: returns true if i is alive and the leader and accepted it. */
bool sim_start_cmd(struct sim_cluster *c, int i, const void *cmd, size_t len, uint64_t *index,
                   uint64_t *term);
bool sim_start_int(struct sim_cluster *c, int i, uint64_t cmd, uint64_t *index, uint64_t *term);
/* GetState on node i (must be alive): its term and whether it thinks it is the leader. */
void sim_get_state(struct sim_cluster *c, int i, uint64_t *term, bool *is_leader);

/* ---- tester helpers (config.go) ---- */
int sim_check_one_leader(struct sim_cluster *c);    /* fails: "expected one leader, got none" */
uint64_t sim_check_terms(struct sim_cluster *c);    /* fails: "servers disagree on term" */
void sim_check_no_leader(struct sim_cluster *c);    /* fails if a connected node is leader */
/* How many nodes applied index, and the command there (copied into cmd, up to cap bytes;
 * *len set). Fails on an applier error or if values differ. */
int sim_n_committed(struct sim_cluster *c, uint64_t index, void *cmd, size_t cap, size_t *len);
/* one(cmd, expected, retry): returns the index; fails "one(%v) failed to reach agreement". */
uint64_t sim_one(struct sim_cluster *c, const void *cmd, size_t len, int expected, bool retry);
uint64_t sim_one_int(struct sim_cluster *c, uint64_t cmd, int expected, bool retry);
/* wait(index, n, startTerm): returns the command as an int (commands must be 8-byte ints),
 * or -1 if a node's term moved past start_term (when start_term >= 0). */
int64_t sim_wait(struct sim_cluster *c, uint64_t index, int n, int64_t start_term);
/* Decodes an applied command as an int; false if it is not an 8-byte int command. */
bool sim_cmd_as_int(const void *cmd, size_t len, uint64_t *out);

uint64_t sim_rpc_count(const struct sim_cluster *c, int i); /* requests delivered to i */
uint64_t sim_rpc_total(const struct sim_cluster *c);        /* requests sent, delivered or not */
uint64_t sim_bytes_total(const struct sim_cluster *c);      /* request bytes sent + reply bytes delivered */
/* The largest durable Raft state (hard state + log records, not the snapshot) over nodes. */
size_t sim_log_size(const struct sim_cluster *c);
/* Highest index applied by node i (from its snapshot or entries). */
uint64_t sim_last_applied(const struct sim_cluster *c, int i);

/* ---- tasks: concurrent clients (the Go tests' goroutines) ----
 * A task is a callback that runs at a virtual time and may reschedule itself. Tasks run
 * while the scenario sleeps; they must not call sim_sleep or the blocking helpers
 * (sim_one, sim_wait, sim_check_*). */
typedef void (*sim_task_fn)(struct sim_cluster *c, void *arg);
void sim_task_at(struct sim_cluster *c, uint64_t delay_ms, sim_task_fn fn, void *arg);

/* ---- membership and leadership transfer (src/sim/membership.c) ----
 * Ids in struct craft_conf_change and struct craft_conf are Raft ids (node index + 1). Each
 * call on node i requires nothing of i: a node that is down answers CRAFT_ENOTLEADER. */
/* Proposes changes on node i (craft_driver_propose_conf_change; errors as core.h). *index
 * (may be NULL) is the log index of the configuration entry. */
int sim_conf_change(struct sim_cluster *c, int i, const struct craft_conf_change *changes,
                    size_t n, bool joint, uint64_t *index);
/* Proposes leaving the joint configuration on node i (errors as craft_core_leave_joint). */
int sim_leave_joint(struct sim_cluster *c, int i);
/* Starts a leadership transfer on node i to node `target` (-1: the core picks). Errors as
 * craft_core_transfer_leadership. */
int sim_transfer(struct sim_cluster *c, int i, int target);
/* Recovery from a lost quorum (src/sim/recover.c; docs/design/core.md): the nodes of
 * `lost` (a bitmask of node indexes, crashed) are gone for good. Stops the survivors, picks
 * the one that knew the highest commit index (the most complete log breaking ties),
 * appends to its disk the configuration of the
 * survivors (craft_core_force_conf, above every survivor's term), makes the checks forget
 * what only the lost nodes held, and restarts and connects the survivors. Returns the
 * forced node; *forced_index and *forced_term (each may be NULL) the entry's. */
int sim_recover_lost_quorum(struct sim_cluster *c, uint64_t lost, uint64_t *forced_index,
                            uint64_t *forced_term);
/* Node i's configuration (the latest in its log); i must be alive. */
void sim_conf_of(struct sim_cluster *c, int i, struct craft_conf *out);
/* The latest configuration the appliers saw committed, and its log index (0: bootstrap). */
uint64_t sim_committed_conf(const struct sim_cluster *c, struct craft_conf *out);
/* Whether Raft id `id` is a voter (incoming or outgoing) / a learner of conf. */
bool sim_conf_is_voter(const struct craft_conf *conf, uint64_t id);
bool sim_conf_is_learner(const struct craft_conf *conf, uint64_t id);
/* Formats conf as "{1 2 3 | out 1 2 4 | learners 5 | next 4}" into buf; returns buf. */
const char *sim_conf_fmt(char *buf, size_t cap, const struct craft_conf *conf);
/* Finds a leader, proposes the change there and waits until it commits and, for a joint
 * change, until a configuration that is not joint commits after it (auto-leave). Retries on
 * a new leader and after CRAFT_ECONFCHANGE; fails the run if it does not happen within its
 * budget (30 s of virtual time) or if the change is refused (CRAFT_EINVAL). Returns the log
 * index of the change's entry. Not from a task. */
uint64_t sim_change_conf_on_leader(struct sim_cluster *c, const struct craft_conf_change *changes,
                                   size_t n, bool joint);
/* Whether a leader reported learner i caught up (the caught_up port) since the last
 * sim_clear_caught_up(c, i). */
bool sim_caught_up(const struct sim_cluster *c, int i);
void sim_clear_caught_up(struct sim_cluster *c, int i);
/* Forces node i (if alive) to start an election now (craft_driver_campaign). */
void sim_campaign(struct sim_cluster *c, int i);
/* Node i's view of its peers (craft_core_peers: leader only, else 0); i must be alive. */
size_t sim_peers(struct sim_cluster *c, int i, struct craft_peer_status *peers, size_t cap);
/* Node i's core status; i must be alive. */
void sim_status(struct sim_cluster *c, int i, struct craft_core_status *out);
/* The error of the last sim_start_cmd that reached a live node (0 if accepted). */
int sim_last_start_err(const struct sim_cluster *c);
/* The command node i applied at command index k (1-based, the MIT index): copies up to cap
 * bytes into cmd and sets *len; false if i has not applied k. */
bool sim_node_cmd(const struct sim_cluster *c, int i, uint64_t k, void *cmd, size_t cap,
                  size_t *len);

/* ---- run control ---- */
_Noreturn void sim_fail(struct sim_cluster *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints a scenario note to the trace (topic TEST). */
void sim_note(struct sim_cluster *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
