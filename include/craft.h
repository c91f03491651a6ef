/* libcraft: the embeddable Raft runtime (design: docs/design/runtime.md).
 *
 * A node is created from a config, a state machine (struct craft_fsm) and its storage and
 * transport choices, and runs on threads it owns:
 *   - the raft loop: the protocol core, timers, proposals, the network's messages;
 *   - the disk thread: group commit of the log and hard state (one fdatasync per group);
 *   - the state machine thread: apply, restore, and completion of futures, in commit order;
 *   - a snapshot thread: writes a captured state machine snapshot while apply goes on;
 *   - the transport's own threads (TCP: one epoll loop).
 * No lock is held across disk or network I/O on the hot path; the leader sends its appends
 * before its own disk write completes (the write runs in parallel).
 *
 * Threads: every craft_node_* / craft_* call below may be made from any thread, except from
 * inside a state machine or observer callback (those run on the node's threads: calling
 * back into the node from there would wait on itself), unless a function says otherwise.
 * Memory: pointers passed in are borrowed for the call; the node copies what it keeps.
 * Errors: functions return 0 (CRAFT_OK) or an enum craft_err; craft_strerror() names it. */
#ifndef CRAFT_H
#define CRAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "craft_base.h" /* enum craft_err, roles, struct craft_conf, peer progress */

/* ---- servers and addresses ---- */

/* The largest "host:port" string kept for a server, NUL included. */
#define CRAFT_ADDR_BYTES_MAX 64

struct craft_server {
    uint64_t id;                      /* non-zero */
    char addr[CRAFT_ADDR_BYTES_MAX];  /* "127.0.0.1:7001" (numeric host); "" with the mem transport */
    bool voter;                       /* false: a learner (non-voter) */
};

/* ---- the state machine ---- */

/* One committed command, as the state machine sees it. data is borrowed for the call. */
struct craft_command {
    uint64_t index, term;
    const uint8_t *data;
    uint32_t len;
};

/* A snapshot is written to a sink and read back from a source. Both are only valid inside
 * the callback that receives them. */
struct craft_sink;
struct craft_source;
/* Appends len bytes to the snapshot. Errors: the store's (CRAFT_EIO, CRAFT_ENOSPACE,
 * CRAFT_ENOMEM); after an error, return it from snapshot_write. */
int craft_sink_write(struct craft_sink *sink, const void *buf, size_t len);
/* Reads up to cap bytes; *n == 0 means the end. Errors: CRAFT_EIO, CRAFT_ECORRUPT. */
int craft_source_read(struct craft_source *src, void *buf, size_t cap, size_t *n);

struct craft_fsm {
    void *ctx;
    /* Applies committed commands in index order, on the state machine thread (or the raft
     * loop's: apply_on_loop; never two at a time). results[i]
     * may be set to a value for cmds[i] (it starts NULL): the future of the command's
     * proposer receives it (craft_future_result), otherwise result_free is called on it.
     * Returns 0, or an error when the batch could not be applied (the state machine's
     * storage failed: a full disk, an I/O error): it must then hold none of the batch, as
     * if apply had not been called. The node stops (CRAFT_EVENT_FAILED, craft_stats'
     * `failed`, futures complete with CRAFT_ESHUTDOWN); results set before the error are
     * freed with result_free. Skipping a command instead would make this replica diverge. */
    int (*apply)(void *ctx, const struct craft_command *cmds, size_t n, void **results);
    /* Captures the state as of the last applied command, on the state machine thread, and
     * returns it in *snap (keep it cheap: copy-on-write or a read transaction). Then
     * snapshot_write runs on the snapshot thread while apply continues, followed by
     * snapshot_release (also on the snapshot thread, whatever the outcome). Return 0 or an
     * error (the snapshot is abandoned). May be NULL: the node never snapshots (its log
     * grows without bound). */
    int (*snapshot)(void *ctx, void **snap);
    int (*snapshot_write)(void *ctx, void *snap, struct craft_sink *sink);
    void (*snapshot_release)(void *ctx, void *snap);
    /* Replaces the whole state with the snapshot read from src, on the state machine thread.
     * An error here is fatal for the node (it stops: its state is unknown). */
    int (*restore)(void *ctx, struct craft_source *src);
    /* Frees a result no future claimed. Optional (NULL: results are not freed). */
    void (*result_free)(void *ctx, void *result);
};

/* ---- observation ---- */

enum craft_event_type {
    CRAFT_EVENT_ROLE = 1,      /* this node's role changed: role */
    CRAFT_EVENT_LEADER,        /* the known leader changed: id (0: none known), term */
    CRAFT_EVENT_PEER_ADDED,    /* the configuration in force gained node id */
    CRAFT_EVENT_PEER_REMOVED,  /* the configuration in force lost node id */
    CRAFT_EVENT_PROMOTED,      /* learner id was promoted to voter by auto-promotion */
    CRAFT_EVENT_DISK_STALL,    /* the leader stepped down: a disk write took longer than the bound */
    CRAFT_EVENT_FAILED,        /* the node stopped after a storage or state machine error: err */
};

struct craft_event {
    uint8_t type; /* enum craft_event_type */
    enum craft_role role;
    uint64_t id, term;
    int err;
};

/* Called on the raft loop thread; must return quickly and must not call into the node. */
typedef void (*craft_observer_fn)(void *ctx, const struct craft_event *ev);

/* ---- configuration ---- */

enum craft_transport_kind {
    CRAFT_TRANSPORT_TCP = 1, /* TCP, listening on listen_addr */
    CRAFT_TRANSPORT_MEM,     /* in-process, through mem_net (tests, single-process use) */
};

struct craft_mem_net; /* an in-process network of nodes (craft_mem_net_create) */

struct craft_config {
    uint64_t id;          /* this node, non-zero */
    uint64_t cluster_id;  /* TCP handshakes refuse other clusters (default 1) */
    /* Storage. data_dir non-NULL: a write-ahead log ("wal/"), the hard state ("state") and
     * file snapshots ("snapshots/") in that directory, created if missing. NULL: everything
     * in memory (nothing survives the node). */
    const char *data_dir;
    uint32_t snapshots_retained;   /* snapshots kept on disk (default 2) */
    uint64_t wal_segment_bytes;    /* default 64 MiB */

    /* Transport. */
    uint8_t transport;                       /* enum craft_transport_kind (default TCP) */
    char listen_addr[CRAFT_ADDR_BYTES_MAX];  /* TCP: "host:port" (numeric host; port 0: ephemeral) */
    struct craft_mem_net *mem_net;           /* MEM: the network to attach to */
    /* Addresses of the other servers, known up front (TCP). Servers added later through
     * craft_add_* bring their address with them (it is replicated in the log). */
    const struct craft_server *peers;
    size_t n_peers;

    /* A brand-new cluster: if the node's storage is empty, it writes this configuration as
     * log entry 1 (every initial server must be given the same list). Ignored when the
     * storage holds state (a restart). Empty: the node waits to be added by a leader. */
    const struct craft_server *initial_servers;
    size_t n_initial_servers;

    /* Recovery from a lost quorum (docs/design/core.md, "Recovery from a lost quorum"): when
     * a majority of the voters is gone for good, one survivor (the one whose log is the most
     * complete) starts once with the configuration to force: force_servers (voters and
     * learners; every other survivor should be among them). Before anything else runs, the
     * node appends that configuration to its log in a term above every term it has seen and
     * above force_min_term (give the highest term the other survivors report), durably, then
     * runs as usual: the servers listed form its quorums, and once it leads it commits its
     * whole log (writes the old majority never committed included). Give it to one node,
     * once: a later start without it keeps the forced configuration. Nodes left out must
     * never come back with their data. Needs a storage that holds a log or a snapshot
     * (craft_node_create: CRAFT_EINVAL otherwise). The entry is the log's record of what was
     * done; the node also reports it through errbuf's caller: craft_stats.conf_index. */
    const struct craft_server *force_servers;
    size_t n_force_servers;
    uint64_t force_min_term;

    /* Protocol timing and limits (see struct craft_core_config for each). */
    uint32_t heartbeat_ms;          /* default 100 */
    uint32_t election_timeout_ms;   /* default 1000 */
    bool pre_vote, check_quorum;    /* default true */
    uint32_t inflight_msgs_max;     /* default 64 */
    uint64_t append_bytes_max;      /* default 1 MiB */
    uint64_t entry_bytes_max;       /* default 1 MiB */
    uint32_t snapshot_chunk_bytes_max; /* default 1 MiB */
    uint32_t clock_drift_bound_ms;  /* default 100 */

    /* Snapshots and log retention: snapshot once this many entries or bytes were applied
     * since the last one (0: never automatically), then keep the trailing_entries entries
     * before the snapshot's index in the log (but no more than trailing_bytes of them, so
     * that large entries do not pin memory), so that slightly lagging followers catch up
     * from the log, not from a snapshot. */
    uint64_t snapshot_threshold_entries; /* default 8192 */
    uint64_t snapshot_threshold_bytes;   /* default 64 MiB */
    uint64_t trailing_entries;           /* default 10240 */
    uint64_t trailing_bytes;             /* default 16 MiB */

    /* Apply on the raft loop (default false): a batch of committed commands (up to 64) is
     * applied on the raft loop thread itself when the state machine thread has nothing of
     * this node queued (then in the same order, never concurrently with it), saving a thread
     * hand-off per batch. Only for a state machine whose apply is fast (microseconds per
     * command, no fsync): while it runs the node steps nothing else. Snapshots and
     * restores stay on the state machine thread. */
    bool apply_on_loop;

    /* A leader whose disk write has not completed within this bound steps down (the rest of
     * the cluster elects a leader with a working disk). 0: never. Default 5000 ms. */
    uint32_t disk_stall_ms;
    /* Promote a learner to voter once it caught up (default false). */
    bool auto_promote;
    /* Proposals queued inside the node before craft_apply waits (default 65536). */
    uint32_t queue_max;

    craft_observer_fn observer; /* optional */
    void *observer_ctx;
    uint64_t seed; /* seeds the election timer and reconnection jitter (default: from id) */
};

/* Fills cfg with the defaults above for node id. */
void craft_config_default(struct craft_config *cfg, uint64_t id);

/* CRAFT_OK or CRAFT_EINVAL, with *field (if not NULL) naming the first bad field, e.g.
 * "election_timeout_ms" or "initial_servers[1].addr". */
int craft_config_validate(const struct craft_config *cfg, const char **field);

/* ---- in-process network ---- */

/* A network connecting nodes of one process (CRAFT_TRANSPORT_MEM): a send puts the message
 * straight into the receiving node's inbox. Thread-safe. Destroy it after every node on it. */
struct craft_mem_net *craft_mem_net_create(void);
void craft_mem_net_destroy(struct craft_mem_net *net);
/* Cuts (connected false) or restores the link between a and b, both directions: messages
 * between them are dropped. For tests. */
void craft_mem_net_set_link(struct craft_mem_net *net, uint64_t a, uint64_t b, bool connected);

/* ---- node lifetime ---- */

struct craft_node;

/* Validates cfg, opens (and recovers) the storage, bootstraps if asked and the storage is
 * empty, starts the transport and the threads. fsm is copied; fsm->ctx must outlive the
 * node. On failure returns an error and, if errbuf is not NULL, a line naming the cause
 * (the bad field, the corrupt file and offset, the address in use): CRAFT_EINVAL (config),
 * CRAFT_ECORRUPT, CRAFT_EIO, CRAFT_ENOSPACE (storage), CRAFT_ENOMEM. Nothing on disk is
 * destroyed by a failed create. */
int craft_node_create(const struct craft_config *cfg, const struct craft_fsm *fsm,
                      struct craft_node **out, char *errbuf, size_t errbuf_cap);

/* Stops the node: stops taking work, fails every pending future with CRAFT_ESHUTDOWN,
 * waits for the disk thread to finish the write in progress (everything acknowledged is
 * durable already), joins every thread, closes storage and transport, frees the node. On
 * a group of a host (craft_host_add_group): the same for the group alone; the host, its
 * loop and its transport go on. Not from a callback. */
void craft_node_destroy(struct craft_node *node);

/* ---- hosts: many Raft groups in one process ---- */

/* A host runs the replicas of many Raft groups that one process holds, on one raft loop
 * thread and one transport (one connection per pair of processes carries every group's
 * messages, tagged with the group id), whatever the number of groups. Each group is a
 * struct craft_node: every call above and below works on it. craft_node_create is a host
 * with the single group 0. Each group still has its own storage directory and its own disk
 * and state machine threads (docs/design/multiraft.md: the shared log and the apply pool
 * are the next steps). */
struct craft_host;

struct craft_host_config {
    uint64_t id;         /* this process's node id, its replica id in every group; non-zero */
    uint64_t cluster_id; /* TCP handshakes refuse other clusters (default 1) */
    uint8_t transport;   /* enum craft_transport_kind (default TCP) */
    char listen_addr[CRAFT_ADDR_BYTES_MAX]; /* TCP (default "127.0.0.1:0") */
    struct craft_mem_net *mem_net;          /* MEM: the network to attach to */
    /* Addresses of the other processes known up front (TCP); groups add the addresses
     * their configurations replicate. */
    const struct craft_server *peers;
    size_t n_peers;
    uint32_t frame_bytes_max; /* largest message (TCP; 0: 64 MiB) */
    uint64_t seed;            /* reconnection jitter (default: id) */
    /* The host's storage (default NULL: none). With it, a group added without a data_dir of
     * its own keeps its log and hard state in one write-ahead log shared by all such
     * groups (<data_dir>/log: one write and one fdatasync per round for all of them) and
     * its snapshots in <data_dir>/groups/<group id, 16 hex digits>/snapshots. Without it,
     * such groups keep everything in memory. Copied. */
    const char *data_dir;
    uint64_t log_segment_bytes; /* the shared log's segments (default 64 MiB, >= 4 MiB) */
    uint64_t entry_bytes_max;   /* the largest entry of a group in the shared log (1 MiB) */
    /* Quiescence (default on): a group whose leader saw nothing in flight for three
     * heartbeats, and whose followers agree, stops ticking on every replica (no heartbeats,
     * no elections) until any work for it arrives. The processes ping each other every
     * heartbeat_ms (default 100); when one is unheard for peer_timeout_ms (default 1000,
     * more than heartbeat_ms), the quiesced groups it led wake here and elect. A quiet
     * leader's lease runs out: craft_read_lease then fails with CRAFT_ESTALE (use
     * craft_read_index, which wakes the group) until a heartbeat round renews it. */
    bool quiesce;
    uint32_t heartbeat_ms, peer_timeout_ms;
    /* Threads that run the groups' state machines (default 2, at most
     * CRAFT_HOST_APPLY_THREADS_MAX). A group's applies run in order on one of them; a slow
     * state machine delays the groups sharing its thread, so a state machine's callbacks
     * must not wait for another group's futures. */
    uint32_t apply_threads;
};
#define CRAFT_HOST_APPLY_THREADS_MAX 64

/* Fills cfg with the defaults above for process id. */
void craft_host_config_default(struct craft_host_config *cfg, uint64_t id);

/* Starts the transport and the loop thread, with no group yet. Errors (with a line in
 * errbuf if not NULL): CRAFT_EINVAL (config: id, transport, mem_net, listen_addr, a node
 * already on the in-memory network), CRAFT_ENOMEM (memory, or a thread that cannot start),
 * or the listen error. */
int craft_host_create(const struct craft_host_config *cfg, struct craft_host **out,
                      char *errbuf, size_t errbuf_cap);

/* Adds this process's replica of group `group`, as craft_node_create makes a node: cfg's
 * storage, bootstrap, timing and limits are the group's (a data_dir must be its own; none:
 * the host's shared log, or memory if the host has no data_dir);
 * cfg's id, cluster_id, transport, listen_addr, mem_net and seed are the host's (what cfg
 * says of them is ignored); cfg->peers adds addresses the group knows up front. The loop
 * steps the group from its next round. Errors as craft_node_create, and CRAFT_EINVAL when
 * the host already has the group or the group's message limits exceed the host's
 * frame_bytes_max or (in the shared log) its entry_bytes_max; CRAFT_ESHUTDOWN while the host stops. Thread-safe; not from a callback.
 * Messages for groups a host does not have are dropped and counted (craft_host_stats). */
int craft_host_add_group(struct craft_host *host, uint64_t group, const struct craft_config *cfg,
                         const struct craft_fsm *fsm, struct craft_node **out, char *errbuf,
                         size_t errbuf_cap);

/* Forgets the storage the host keeps for group `group` (its records in the shared log,
 * its snapshots), for a group this process no longer hosts and will not host again with
 * that state (a replica removed from the group's configuration). The log's segments that
 * held only its records go with later compactions. Errors (a line in errbuf if not NULL):
 * CRAFT_EINVAL (the host has no data_dir, or hosts the group, or is adding or removing
 * it), CRAFT_ESHUTDOWN, the storage errors (the shared log then fails: every group of the
 * host stops). Thread-safe; blocks for one write and fdatasync. */
int craft_host_drop_group(struct craft_host *host, uint64_t group, char *errbuf,
                          size_t errbuf_cap);

/* craft_node_destroy(group) removes a group from its host (its futures fail with
 * CRAFT_ESHUTDOWN, its storage stays on disk). craft_host_destroy removes the groups left,
 * then stops the loop and the transport, and frees the host. Not from a callback. */
void craft_host_destroy(struct craft_host *host);

/* The host's TCP listening port (useful with port 0); 0 with the mem transport. */
uint16_t craft_host_port(struct craft_host *host);

struct craft_host_stats {
    uint64_t groups;             /* groups hosted now */
    uint64_t rounds;             /* loop rounds since start */
    uint64_t msgs_unknown_group; /* messages dropped: for a group this host does not have */
    /* The shared log (host data_dir): writes (each covering every group with something to
     * write at the time), fdatasyncs, and entries written. */
    uint64_t log_writes, log_syncs, log_entries;
    uint64_t groups_quiesced; /* replicas here quiesced now */
};
void craft_host_stats(struct craft_host *host, struct craft_host_stats *stats);

/* ---- futures ---- */

/* A future completes once, with an error code, an index and maybe a result. Every future a
 * call returns must be released with craft_future_release (also before it completes: the
 * operation goes on and its outcome is dropped). Thread-safe. */
struct craft_future;

/* Waits up to timeout_ms (negative: forever) for completion. Returns the operation's
 * result (0 or its error) or CRAFT_ETIMEOUT if it has not completed yet (the operation
 * goes on: wait again or release it). */
int craft_future_wait(struct craft_future *f, int64_t timeout_ms);
/* True once the future completed (no waiting). */
bool craft_future_done(struct craft_future *f);
/* After completion: the log index of the operation (apply, membership changes, snapshot:
 * its index; barrier and reads: the index the state machine had reached), and the state
 * machine's result for an apply (ownership passes to the caller: the node will not free
 * it; NULL after the first call). */
uint64_t craft_future_index(struct craft_future *f);
void *craft_future_result(struct craft_future *f);
void craft_future_release(struct craft_future *f);
/* Asks for fn(ctx) once f completes, for event loops that cannot block in
 * craft_future_wait: fn runs on the node thread that completes f (so it must be quick, must
 * not block and must not call into the node or release f: wake your loop, then read the
 * outcome there with craft_future_wait(f, 0)), or at once on the calling thread if f is
 * complete already. At most one call per future, before it is released. */
void craft_future_notify(struct craft_future *f, void (*fn)(void *ctx), void *ctx);

/* ---- commands and reads ---- */

/* Proposes a command (len <= entry_bytes_max). The future completes, in commit order, once
 * the command is applied (with the state machine's result), or with an error:
 * CRAFT_ENOTLEADER (not the leader: craft_leader names it), CRAFT_ETRANSFER (a leadership
 * transfer is in progress), CRAFT_ETOOBIG, CRAFT_ETIMEOUT (no room in the node's queues within
 * timeout_ms; the command was not proposed), CRAFT_ESTALE (the leader lost its leadership
 * and a different entry was committed at the command's index: it was not applied),
 * CRAFT_ESHUTDOWN. Returns NULL only if out of memory. */
struct craft_future *craft_apply(struct craft_node *node, const void *data, uint32_t len,
                                 uint32_t timeout_ms);

/* Batching submissions, for event loops: between craft_batch_begin(node) and
 * craft_batch_end(node), the craft_apply, craft_read_index and craft_read_lease calls this
 * thread makes on node are held in a list of the thread's own and handed to the node at
 * craft_batch_end in one queue operation, with at most one wake-up of the node's loop for
 * all of them (instead of the first call waking the loop while the caller still has more
 * to submit). Order is kept: any other call on a node from this thread, and a
 * craft_future_wait that may wait (timeout_ms != 0) on any future, hands the held list over
 * first, so a wait can never deadlock on a held request. Queue room is checked at
 * craft_batch_end (never waited for), for reads too: the requests that do not fit complete
 * with CRAFT_ETIMEOUT, every one after the first of them included, so a command never
 * enters the log ahead of one the caller submitted before it. Futures of held requests are not complete before
 * craft_batch_end (craft_future_done is false). A thread may hold batches for several
 * nodes at once (the groups of a host: up to 64), one per node: craft_batch_begin on a
 * node whose batch is open is a programming error, and so is destroying a node while a
 * thread holds a batch for it (end it first). Never blocks. */
void craft_batch_begin(struct craft_node *node);
void craft_batch_end(struct craft_node *node);

/* Completes once every command committed before the call has been applied on this node
 * (the leader only: CRAFT_ENOTLEADER elsewhere). Index: the applied index reached. */
struct craft_future *craft_barrier(struct craft_node *node);
/* Completes with 0 once a quorum confirmed that this node is still the leader. */
struct craft_future *craft_verify_leader(struct craft_node *node);
/* A linearizable read barrier (ReadIndex): completes once this node's state machine
 * reflects every write committed before the call; then read the state machine directly.
 * Works on followers too (they ask the leader). Errors: CRAFT_ENOTLEADER (no leader
 * known), CRAFT_ETIMEOUT, CRAFT_EBUSY. */
struct craft_future *craft_read_index(struct craft_node *node);
/* As craft_read_index, served from the leader's lease without a round of messages when it
 * holds (check_quorum and bounded clock drift assumed); CRAFT_ESTALE if no lease holds now. */
struct craft_future *craft_read_lease(struct craft_node *node);

/* ---- membership (each: leader only; the future completes when the change commits) ----
 * prev_index: if non-zero, the change is refused with CRAFT_ESTALE unless the
 * configuration in force is the one at that log index (craft_stats.conf_index). Errors:
 * CRAFT_ENOTLEADER, CRAFT_ECONFCHANGE (another change is in progress), CRAFT_EINVAL (a
 * change that changes nothing, a bad address), CRAFT_EUNKNOWNPEER (remove/demote an
 * unknown node). */
struct craft_future *craft_add_voter(struct craft_node *node, uint64_t id, const char *addr,
                                     uint64_t prev_index);
struct craft_future *craft_add_nonvoter(struct craft_node *node, uint64_t id, const char *addr,
                                        uint64_t prev_index);
struct craft_future *craft_demote_voter(struct craft_node *node, uint64_t id, uint64_t prev_index);
struct craft_future *craft_remove_server(struct craft_node *node, uint64_t id, uint64_t prev_index);
/* Several changes at once through a joint configuration (thesis 4.3); it is left
 * automatically. servers[i].voter says voter or learner; remove lists ids to remove. */
struct craft_future *craft_change_joint(struct craft_node *node, const struct craft_server *add,
                                        size_t n_add, const uint64_t *remove, size_t n_remove,
                                        uint64_t prev_index);

/* Hands leadership to server id (0: the most up-to-date voter). Completes with 0 once
 * another node leads, CRAFT_ETIMEOUT if the transfer was abandoned (this node leads on). */
struct craft_future *craft_transfer_leadership(struct craft_node *node, uint64_t id);

/* Takes a snapshot now. Completes with its index once it is durable and the log compacted
 * (CRAFT_ESTALE: nothing applied since the last snapshot). */
struct craft_future *craft_snapshot(struct craft_node *node);

/* ---- state ---- */

/* The leader this node knows (0 if none) and its address (copied into addr, cap bytes;
 * "" if unknown). */
uint64_t craft_leader(struct craft_node *node, char *addr, size_t cap);
enum craft_role craft_state(struct craft_node *node);
/* This node's TCP listening port (useful with port 0); 0 with the mem transport. A group
 * of a host: the host's port. */
uint16_t craft_node_port(struct craft_node *node);

#define CRAFT_STATS_PEERS_MAX CRAFT_CONF_NODES_MAX
/* A latency histogram in microseconds, as Prometheus keeps one: buckets[i] counts the
 * observations <= craft_histogram_bounds_us[i] (cumulative), buckets[CRAFT_HISTOGRAM_BUCKETS
 * - 1] all of them (+Inf); sum_us their total. */
#define CRAFT_HISTOGRAM_BUCKETS 14
extern const uint64_t craft_histogram_bounds_us[CRAFT_HISTOGRAM_BUCKETS - 1];
struct craft_histogram {
    uint64_t buckets[CRAFT_HISTOGRAM_BUCKETS];
    uint64_t sum_us;
};

struct craft_stats {
    uint64_t id, term, leader, vote;
    enum craft_role role;
    uint64_t commit, applied, last_index, last_term, first_index, snap_index;
    uint64_t persisted;         /* highest index durable on this node */
    uint64_t conf_index;        /* the entry holding the configuration in force */
    struct craft_conf conf;
    size_t n_peers;             /* leader only */
    struct craft_peer_status peers[CRAFT_STATS_PEERS_MAX];
    /* Queue depths at the time of the call. */
    uint64_t proposals_queued, disk_jobs_queued, apply_jobs_queued;
    /* Totals since the node started. */
    uint64_t disk_writes, disk_syncs, entries_written, entries_applied, snapshots_taken,
        snapshots_installed, msgs_sent, msgs_received, bad_msgs_received;
    uint64_t leader_changes; /* times this node learned of a new leader (itself included) */
    /* Latencies since the node started: each durable write of the log and hard state
     * (write and fdatasync; a host's shared-log write counts once per group in it), and
     * each batch handed to the state machine's apply. */
    struct craft_histogram disk_write_us, apply_us;
    int failed; /* 0, or the error that stopped the node */
    bool quiesced; /* a host's idle group that ticks no more until work comes */
};
/* A consistent copy of the loop thread's view (taken between two batches). */
void craft_stats(struct craft_node *node, struct craft_stats *stats);

#endif
