/* The threaded runtime's internals, shared by its files (design: docs/design/runtime.md).
 *
 * Threads and what each owns:
 *   loop   the driver and core, the pending-future lists, the loop's address book;
 *   disk   one per host: every group's log and stable stores, and the host's shared log
 *          (and snapshot receive through snap_mu);
 *   fsm    the user's state machine, its applied index and configuration, its address book;
 *   snap   one snapshot write at a time;
 * They talk through queues (struct rt_queue); nothing else is shared except the snapshot
 * store (snap_mu, held for one store call at a time, try-locked by the loop) and the
 * published fields (atomics, pub_mu). */
#ifndef CRAFT_RUNTIME_RT_H
#define CRAFT_RUNTIME_RT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "craft.h"
#include "runtime/driver.h"
#include "runtime/quiesce.h"
#include "storage/glog.h"
#include "storage/mem_store.h"
#include "storage/snapshot_store.h"
#include "storage/stable.h"
#include "storage/wal.h"
#include "transport/transport.h"

uint64_t rt_now_ms(void);

/* The public calls' error line: the caller's buffer (emptied), or scratch when errbuf is
 * NULL. */
static inline void rt_errbuf_init(char **errbuf, size_t *cap, char *scratch, size_t scratch_cap)
{
    if (*errbuf == NULL) {
        *errbuf = scratch;
        *cap = scratch_cap;
    }
    (*errbuf)[0] = '\0';
}
/* A condition variable whose timed waits use CLOCK_MONOTONIC (rt_now_ms's clock). */
void rt_cond_init_mono(pthread_cond_t *cv);

/* ---- futures ---- */
enum fut_kind { FUT_APPLY = 1, FUT_CONF, FUT_BARRIER, FUT_VERIFY, FUT_READ, FUT_TRANSFER,
                FUT_SNAPSHOT, FUT_STATS };

struct craft_future {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int refs; /* the caller's and the node's */
    bool done;
    int err;
    uint64_t index;
    void *result;
    void (*result_free)(void *ctx, void *result);
    void *result_ctx;
    void (*notify)(void *ctx); /* craft_future_notify */
    void *notify_ctx;
    /* Loop-thread bookkeeping. */
    uint8_t kind;
    uint64_t term;     /* FUT_APPLY/FUT_CONF: the entry's term */
    uint64_t ctx;      /* reads: the core's read ctx */
    struct craft_future *next;
};

struct craft_future *rt_future_new(uint8_t kind);
/* Completes f (once) and drops the node's reference. */
void rt_future_complete(struct craft_future *f, int err, uint64_t index, void *result);
void rt_future_unref(struct craft_future *f);
/* A future that is already complete (an immediate error). */
struct craft_future *rt_future_failed(int err);
/* craft_batch_begin/_end: hands this thread's held requests to their node now (before a
 * wait, and before a request that is not batched, so order is kept). */
void rt_batch_flush(void);

/* ---- queues: a mutex, a condition variable and a linked list of items ---- */
struct rt_item {
    struct rt_item *next;
};

struct rt_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* consumer waits for items */
    pthread_cond_t room; /* producers wait for room (bounded queues) */
    struct rt_item *head, *tail;
    size_t len;
    /* Items pushed with a bound (the callers' requests): what max limits. The loop's own
     * messages and completions are pushed unbounded and take no room from requests, so
     * a burst of peer messages never makes a request fail as if the queue were full. */
    size_t bounded_len;
    size_t max;        /* 0: unbounded */
    bool waiting;      /* the consumer sleeps */
    /* Optional, for a consumer of many queues (the host's loop): it sleeps on its own flag,
     * not per queue. A producer that makes the queue non-empty reads *consumer_sleeping
     * after publishing the item (`filled`), the consumer sets the flag before re-reading
     * every queue's `filled`: both sequentially consistent, so either the consumer sees
     * the item or the producer sees it asleep and calls notify. */
    const atomic_bool *consumer_sleeping;
    /* Holds items (set under mu, read without it): &filled_own, or a flag the consumer
     * keeps densely with its other queues' (the host's slots), set before any push. */
    atomic_bool *filled;
    atomic_bool filled_own;
    bool closed;
    /* Optional: how to wake a consumer that sleeps elsewhere than on cv (the raft loop in
     * its transport's poll). Called without the mutex, on the producer's thread. */
    void (*notify)(void *ctx);
    void *notify_ctx;
};

void rt_queue_init(struct rt_queue *q, size_t max);
void rt_queue_destroy(struct rt_queue *q);
/* Appends it. Bounded queues wait for room until deadline_ms (0: never wait); returns
 * false if there was no room in time or the queue is closed (it is not appended). */
bool rt_queue_push(struct rt_queue *q, struct rt_item *it, bool bounded, uint64_t deadline_ms);
/* Takes every item (oldest first, as a list), waiting until one arrives, the queue is
 * closed, or wake_at_ms passes (0: no timeout). */
struct rt_item *rt_queue_take_all(struct rt_queue *q, uint64_t wake_at_ms);
void rt_queue_close(struct rt_queue *q);
/* Appends the list head (count items, linked by next) with one lock and at most one wake-up.
 * bounded: only as many as leave the queue within its max; returns the first item not
 * appended (the rest of the list, still linked), NULL if all were. */
struct rt_item *rt_queue_push_list(struct rt_queue *q, struct rt_item *head, bool bounded);
/* For a consumer that sleeps elsewhere (notify set): takes every item without waiting. */
struct rt_item *rt_queue_take_nowait(struct rt_queue *q);
size_t rt_queue_len(struct rt_queue *q);
/* The items pushed with a bound, what max limits (see bounded_len). */
size_t rt_queue_bounded_len(struct rt_queue *q);

/* ---- requests to the loop ---- */
enum req_kind {
    REQ_MSG = 1,   /* a message from the network: from, data */
    REQ_APPLY,     /* a command: data, f, deadline */
    REQ_CONF,      /* a configuration change: conf, f */
    REQ_BARRIER,
    REQ_VERIFY,
    REQ_READ_INDEX,
    REQ_READ_LEASE,
    REQ_TRANSFER,  /* a = target */
    REQ_SNAPSHOT,  /* user asked for a snapshot */
    REQ_STATS,     /* stats: out */
    REQ_PERSISTED, /* disk: a = seq through which batches are durable, b = error */
    REQ_SNAP_DONE, /* snapshot thread: a = index (0: failed), b = error, f */
    REQ_FAILED,    /* a thread failed: b = error */
};

struct rt_conf_req {
    struct craft_conf_change changes[CRAFT_CONF_NODES_MAX];
    size_t n;
    bool joint;
    uint64_t prev_index;
    struct craft_server addrs[CRAFT_CONF_NODES_MAX]; /* addresses recorded with the change */
    size_t n_addrs;
    bool demote;
};

struct rt_req {
    struct rt_item item;
    uint8_t kind;
    uint64_t a, b;
    uint64_t deadline;
    struct craft_future *f;
    struct craft_stats *stats;
    struct rt_conf_req *conf;
    uint32_t len;
    uint8_t data[];
};

struct rt_req *rt_req_new(uint8_t kind, const void *data, uint32_t len);

/* ---- the payload of NORMAL entries: a tag byte, then the body ---- */
enum { TAG_USER = 0, TAG_ADDRS = 1 };

/* ---- the address book ---- */
struct rt_book {
    size_t n;
    struct craft_server s[2 * CRAFT_CONF_NODES_MAX];
};
void rt_book_set(struct rt_book *b, uint64_t id, const char *addr);
const char *rt_book_get(const struct rt_book *b, uint64_t id);
/* TAG_ADDRS body: u8 count, then per server u64 id, u8 len, addr bytes. */
size_t rt_addrs_encode(const struct craft_server *s, size_t n, uint8_t *buf, size_t cap);
/* Applies a TAG_ADDRS body to b; false if malformed. */
bool rt_addrs_apply(struct rt_book *b, const uint8_t *body, size_t len);
/* Splits "host:port" (numeric host); false if malformed. */
bool rt_addr_split(const char *addr, char *host, size_t host_cap, uint16_t *port);

/* ---- disk jobs ---- */
enum disk_kind { DISK_BATCH = 1, DISK_COMPACT };
struct rt_disk_job {
    struct rt_item item;
    struct craft_node *node; /* the group whose job it is */
    uint8_t kind;
    uint64_t seq;
    bool has_hs;
    struct craft_hard_state hs;
    uint64_t truncate_from;
    struct craft_entry *entries;
    size_t n_entries;
    bool has_chunk, install, keep_log;
    struct craft_snapshot_meta meta;
    uint64_t chunk_off;
    uint32_t chunk_len;
    uint8_t *chunk;
    uint64_t compact_through;
    uint8_t *buf; /* one allocation holding entries' data and the chunk */
};

/* apply_on_loop: larger batches go to the state machine thread, so that under a heavy
 * pipelined load apply runs beside the loop (SET -P 16 lost 9 % of its throughput when
 * the loop applied batches of ~300 commands itself). */
#define RT_APPLY_ON_LOOP_ENTRIES_MAX 64

/* ---- state machine jobs ---- */
enum fsm_kind { FSM_APPLY = 1, FSM_RESTORE, FSM_READ, FSM_SNAPSHOT };
struct rt_fsm_job {
    struct rt_item item;
    uint8_t kind;
    struct craft_entry *entries;
    struct craft_future **futs; /* per entry, or NULL */
    size_t n;
    struct craft_snapshot_meta meta; /* FSM_RESTORE */
    struct craft_future *f;          /* FSM_READ, FSM_SNAPSHOT */
    uint64_t index;                  /* FSM_READ */
    uint8_t *buf;
};

/* ---- the node ---- */
/* A latency histogram (craft_histogram's buckets, not yet cumulative). */
struct rt_hist {
    atomic_uint_fast64_t buckets[CRAFT_HISTOGRAM_BUCKETS];
    atomic_uint_fast64_t sum_us;
};

struct craft_node {
    struct craft_config cfg;
    struct craft_fsm fsm;
    char *data_dir;

    /* Storage (disk thread, after start): the group's own WAL and stable file (data_dir),
     * or its share of the host's log (glog, borrowed: the host's, under host->glog_mu), or
     * memory. */
    struct craft_fs fs;
    struct craft_glog *glog;
    struct craft_wal *wal;
    struct craft_mem_log *mem_log;
    struct craft_stable *stable;
    struct craft_mem_stable *mem_stable;
    struct craft_snapshot_store *snaps;
    pthread_mutex_t snap_mu;
    struct craft_snapshot_sink *recv_sink; /* disk thread: a snapshot being received */
    struct craft_snapshot_reader *send_reader; /* loop thread, under snap_mu */
    struct craft_snapshot_info send_info;

    /* The host whose loop thread steps this group and whose transport carries its
     * messages (host.c); own_host: created by craft_node_create for this group alone. */
    struct craft_host *host;
    uint64_t group;
    bool own_host;
    bool detached; /* under host->mu: the loop let go of the group (removal) */
    /* Loop thread, per round: stepped this round (its driver held), the items taken from
     * its inbox, and when it needs a round at the latest (cached after each round it was
     * stepped in: nothing changes its timers without a step). */
    bool in_round;
    struct rt_item *round_items;
    uint64_t next_wake;
    size_t loop_index; /* its entry in host->loop, set at each refresh */
    /* Quiescence (quiesce.h, loop_quiesce.c), loop thread: not ticked while
     * quiet.quiesced. */
    struct craft_quiesce quiet;
    uint32_t slot;     /* its inbox's filled flag in the host's slots */

    /* Loop thread. */
    struct craft_driver *driver;
    struct rt_queue inbox;
    struct rt_req *blocked_head, *blocked_tail; /* proposals refused with EBUSY, retried */
    struct craft_future *futs_head, *futs_tail; /* apply/conf futures by index */
    struct craft_future *reads;                 /* pending ReadIndex futures */
    struct craft_future *lease_reads;
    uint64_t next_read_ctx;
    struct craft_future *transfer_f;
    struct craft_future *snapshot_waiters;
    bool snapshot_running;
    uint64_t since_snap_entries, since_snap_bytes;
    uint64_t disk_submitted_seq, disk_done_seq;
    /* Jobs the loop queued for the host's disk thread, and jobs that thread finished (its
     * last touch of the group for them, stores and inbox, happens before the release
     * increment): equal means the disk thread holds none of the group's stores, and the
     * loop may write a batch itself (own stores only); a removed group waits for it. */
    uint64_t disk_jobs_pushed;
    atomic_uint_fast64_t disk_jobs_finished;
    uint64_t disk_oldest_ms; /* submit time of the oldest unfinished disk job (0: none) */
    /* A leader with stores of its own writes its batches on the loop, after the round's
     * messages left (rt_group_after_send), while the disk thread has none of its jobs:
     * the jobs of this round, in order; every job of the group queued meanwhile joins them
     * (loop.c, submit_job). */
    struct rt_disk_job *deferred_head, *deferred_tail;
    enum craft_role last_role;
    uint64_t last_leader;
    struct craft_conf last_conf;
    uint8_t *scratch;
    size_t scratch_cap;
    struct rt_book loop_book;
    uint64_t promote[CRAFT_CONF_NODES_MAX]; /* learners to promote after the batch */
    size_t n_promote;
    struct craft_future *snapshot_next; /* asked while a snapshot was running */
    bool failed_seen;

    /* Host's disk thread: the group's entry in its accumulators of one pass (SIZE_MAX:
     * none). */
    size_t disk_acc;

    /* State machine jobs, run by the host's apply thread apply_thread (apply_pool.c): the
     * loop queues them (and counts them, apply_pushed), the thread runs them (and counts
     * them, apply_finished, after its last touch of the group). */
    struct rt_queue fsm_q;
    struct rt_apply_thread *apply_thread;
    struct rt_item apply_ticket; /* in apply_thread's ready queue while apply_scheduled */
    atomic_bool apply_scheduled;
    uint64_t apply_pushed;
    atomic_uint_fast64_t apply_finished;
    /* Tickets queued (loop) and done with (the thread's last touch of the group, also for
     * a ticket that found no job: an earlier take ran them): a removed group is freed only
     * once both counts meet (rt_apply_release), or a thread still holding a ticket would
     * take from a freed queue. */
    uint64_t apply_tickets_pushed;
    atomic_uint_fast64_t apply_tickets_done;
    uint64_t fsm_applied, fsm_applied_term;
    struct craft_conf fsm_conf;
    struct rt_book fsm_book;
    uint64_t fsm_snap_index;

    /* Snapshot thread: one job at a time (snapshot_running on the loop). */
    pthread_t snap_thread;
    bool snap_thread_started;

    atomic_bool stopping;

    /* Published for any thread. */
    pthread_mutex_t pub_mu;
    struct rt_book pub_book;
    atomic_uint_fast64_t pub_leader, pub_term;
    /* The state machine thread's applied index, stored once apply (or restore) through it
     * returned: a read at or below it needs no trip through that thread's queue. */
    atomic_uint_fast64_t pub_applied;
    atomic_int pub_role;
    atomic_int failed;
    atomic_uint_fast64_t n_disk_writes, n_disk_syncs, n_entries_written, n_entries_applied,
        n_snapshots_taken, n_snapshots_installed, n_apply_jobs;
    struct rt_hist disk_write_us, apply_us; /* craft_stats' histograms */
};

/* node.c: histograms written by one thread at a time per histogram, read by any. */
void rt_hist_observe(struct rt_hist *h, uint64_t us);
void rt_hist_read(const struct rt_hist *h, struct craft_histogram *out);
/* CLOCK_MONOTONIC in microseconds (latencies). */
uint64_t rt_mono_us(void);

/* storage.c */
int rt_storage_open(struct craft_node *n, char *errbuf, size_t cap);
/* Reads the durable state into *r (entries owned by *hold) and restores the state machine
 * from the newest snapshot; bootstraps an empty storage if asked. */
int rt_storage_recover(struct craft_node *n, struct craft_core_restore *r,
                       struct craft_wal_entries *hold, char *errbuf, size_t cap);
void rt_storage_close(struct craft_node *n);
/* Forgets group's storage in host h's shared log and its snapshot directory (the group
 * claimed, not hosted). Returns 0 or the error, with a line in errbuf. */
int rt_storage_drop(struct craft_host *h, uint64_t group, char *errbuf, size_t cap);
/* The host's disk thread (arg: the host): takes every queued job of every group, writes
 * them with one craft_glog_write (one fdatasync) for the groups in the shared log and one
 * write per group with stores of its own, and acknowledges each group. */
void *rt_disk_main(void *arg);
/* Tells group n (its next round) that its batches through seq are durable. */
void rt_post_persisted(struct craft_node *n, uint64_t seq);
/* Queues job j (j->node set) for the host's disk thread: loop thread. */
void rt_disk_push(struct craft_node *n, struct rt_disk_job *j);
/* Waits until the disk thread finished every job of n (n detached: none is queued any
 * more). */
void rt_disk_wait(struct craft_node *n);
/* The loop thread writes batch b (no snapshot chunk) itself, durably, while the disk
 * thread is idle (disk_jobs_pushed == disk_jobs_finished). Returns 0 or the store's error. */
int rt_disk_write_now(struct craft_node *n, const struct craft_batch *b);
/* The loop thread runs job j (a batch or a compaction) of a group with stores of its own
 * itself, durably, as the disk thread would, while that thread holds none of its jobs.
 * Returns 0 or the store's error. */
int rt_disk_run_job(struct craft_node *n, const struct rt_disk_job *j);
void rt_disk_job_free(struct rt_disk_job *j);

/* fsm.c: a group's state machine jobs, on its apply thread. */
struct rt_apply_scratch;
struct rt_apply_scratch *rt_apply_scratch_new(void); /* NULL: out of memory */
void rt_apply_scratch_free(struct rt_apply_scratch *s);
/* Runs the jobs (a list) in order and frees them; returns how many there were. */
size_t rt_fsm_run(struct craft_node *n, struct rt_item *jobs, struct rt_apply_scratch *s);
/* Applies entries[0..count) (borrowed: no copy) on the caller's thread, which holds the
 * state machine (apply_on_loop), completing futs[i] (NULL, or per entry; freed). */
void rt_fsm_apply_now(struct craft_node *n, const struct craft_entry *entries, size_t count,
                      struct craft_future **futs, struct rt_apply_scratch *s);
/* Waits for the group's snapshot thread, if one ran. */
void rt_fsm_join_snapshot(struct craft_node *n);

/* apply_pool.c: the host's apply threads. */
struct rt_apply_thread {
    struct craft_host *host;
    pthread_t thread;
    struct rt_queue ready; /* the tickets of groups with jobs */
    size_t groups;         /* under host->mu: groups assigned */
};
/* Starts `threads` apply threads (at least 1). CRAFT_ENOMEM (no memory, or a thread that
 * cannot start: those that started are stopped by rt_apply_pool_stop). */
int rt_apply_pool_start(struct craft_host *h, size_t threads);
/* Stops them (every group gone). */
void rt_apply_pool_stop(struct craft_host *h);
/* Assigns group n the thread with the fewest groups: under h->mu. */
void rt_apply_assign(struct craft_host *h, struct craft_node *n);
/* Queues job j of group n: loop thread. */
void rt_fsm_push(struct craft_node *n, struct rt_fsm_job *j);
/* For a removed group (no job queued any more): waits until its thread ran every job and
 * its snapshot thread ended, and gives its place on the thread back. */
void rt_apply_release(struct craft_node *n);
void rt_fsm_job_free(struct rt_fsm_job *j);
/* Restores the state machine from the newest snapshot, which must match meta. */
int rt_fsm_restore(struct craft_node *n, const struct craft_snapshot_meta *meta);

/* loop.c: one group's share of the host's rounds, on the loop thread. */
/* A message for the group from another thread (the in-memory network): queued. */
void rt_loop_recv(struct craft_node *n, uint64_t from, const uint8_t *bytes, size_t len);
/* A message read by the driven TCP transport on the loop thread: stepped at once, in the
 * round that read it (the group's driver is held). */
void rt_loop_recv_direct(struct craft_node *n, uint64_t from, const uint8_t *bytes, size_t len);
/* When the group needs its next round at the latest (its timers, blocked proposals' retry,
 * the disk-stall check). */
uint64_t rt_group_wake(struct craft_node *n, uint64_t now);
/* A round: hold the driver (before the transport's poll steps messages into it), then
 * step the items taken from the inbox, tick, retry blocked proposals and release (the
 * driver's sends and writes go out); after the host flushed the transport, the round's
 * completions (lease reads, events, transfers, automatic snapshots). */
void rt_group_hold(struct craft_node *n);
void rt_group_step(struct craft_node *n, struct rt_item *items, uint64_t now);
void rt_group_after_send(struct craft_node *n);
/* The group leaves the loop: every future the loop holds fails with CRAFT_ESHUTDOWN. */
void rt_group_shutdown(struct craft_node *n);

/* ---- the host: one loop thread and one transport for many groups (host.c) ---- */

/* The loop's view of one group, contiguous so that a round's scans over every group read
 * one array and the dense filled flags, not each group's structure. */
struct rt_loop_entry {
    struct craft_node *g;
    atomic_bool *filled; /* g->inbox.filled */
    uint64_t wake;       /* g->next_wake */
    uint64_t group;      /* g->group, for lookups by binary search */
};

/* Peer processes a host pings (process liveness): more are not pinged, and the groups they
 * lead wake only through their own timers. */
#define HOST_PEERS_MAX 256

/* Inbox flags per chunk of the host's slots (one cache line). */
#define HOST_SLOTS_PER_CHUNK 64

struct craft_host {
    uint64_t id;
    uint8_t transport_kind;
    struct craft_transport *transport;
    struct craft_mem_net *mem_net;
    char listen_addr[CRAFT_ADDR_BYTES_MAX];
    uint32_t frame_bytes_max; /* 0: CRAFT_HOST_FRAME_BYTES_DEFAULT */
    uint64_t seed;
    pthread_t loop_thread;
    atomic_bool stopping;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* removal acknowledgements */
    /* Under mu: the groups, sorted by group id (lookups by binary search), and those
     * being removed, which the loop lets go of at the start of its next round. */
    struct craft_node **groups;
    size_t n_groups, cap_groups;
    struct craft_node **leaving;
    size_t n_leaving, cap_leaving;
    /* Under mu: groups being added (rt_host_claim), whose storage is being recovered. */
    uint64_t *adding;
    size_t n_adding, cap_adding;
    uint64_t gen; /* bumped on every change of groups */
    /* Bigger arrays for the loop, allocated by an attach that outgrew its copy. */
    struct rt_loop_entry *spare_loop;
    struct craft_node **spare_active;
    size_t cap_spare;
    /* Under mu: the groups' inbox flags, in chunks that never move (producers write their
     * flag without the host's lock), and the free slots. */
    atomic_bool **slot_chunks;
    size_t n_chunks, cap_chunks;
    uint32_t *free_slots;
    size_t n_free, cap_free;

    /* Set by the loop before it sleeps, read by producers that fill an empty inbox (the
     * inboxes' consumer_sleeping): they wake it only then. */
    atomic_bool sleeping;
    /* The bell the loop sleeps on with the in-memory transport (TCP: in its poll). */
    pthread_mutex_t bell_mu;
    pthread_cond_t bell_cv;
    bool rung;

    /* Loop thread: its copy of groups, refreshed when gen moved, and the groups stepped in
     * the current round (those with inbox items, messages or due timers: a round costs
     * what its active groups cost, not what the host holds). */
    struct rt_loop_entry *loop;
    size_t n_loop, cap_loop;
    uint64_t loop_gen;
    struct craft_node **active;
    size_t n_active;

    atomic_uint_fast64_t rounds, msgs_unknown_group;

    /* Quiescence and process liveness (quiesce.c; multiraft.md): the peer processes
     * (entries never move; added under mu, published by n_peers; `heard` written by the
     * receiving thread, the rest by the loop), pinged every heartbeat_ms; a peer unheard
     * for peer_timeout_ms is down, and the quiesced groups it led wake. */
    bool quiesce;
    uint32_t heartbeat_ms, peer_timeout_ms;
    struct host_peer {
        uint64_t id;
        atomic_uint_fast64_t heard;
        /* The incarnation its last PING named (receiving thread), and the one the loop
         * last acted on: a new one is a restart, whose replicas start awake. */
        atomic_uint_fast64_t incarnation;
        uint64_t incarnation_seen;
        bool down;
    } peers[HOST_PEERS_MAX];
    uint64_t incarnation; /* this host's, random */
    atomic_size_t n_peers;
    uint64_t next_ping;
    atomic_uint_fast64_t groups_quiesced;

    /* Storage: the shared log of the groups without a data directory of their own (NULL
     * without the host's data_dir), and the one disk thread of every group. glog_mu is held
     * for each call on the log: the disk thread's, and a group's recovery while it is
     * added (the only other user; the loop never writes the shared log). */
    char *data_dir;
    uint32_t entry_bytes_max;
    struct craft_fs fs;
    struct craft_glog *glog;
    pthread_mutex_t glog_mu;
    struct rt_queue disk_q;
    pthread_t disk_thread;
    bool disk_started;
    pthread_mutex_t disk_mu; /* with disk_cv: a removed group waits for its jobs */
    pthread_cond_t disk_cv;
    atomic_uint_fast64_t log_writes, log_syncs, log_entries;

    /* The apply threads (apply_pool.c); a removed group waits on apply_cv for its jobs,
     * which its thread broadcasts only while someone waits (apply_waiters). */
    struct rt_apply_thread *apply;
    size_t n_apply;
    struct rt_apply_scratch *loop_scratch; /* loop thread: groups with apply_on_loop */
    pthread_mutex_t apply_mu;
    pthread_cond_t apply_cv;
    atomic_int apply_waiters;
};

/* The TCP transport's default largest message (tcp_transport.h), for groups' limits. */
#define CRAFT_HOST_FRAME_BYTES_DEFAULT (64u << 20)

/* Removed groups the loop lets go of per round (the rest wait for the next one). */
#define HOST_LEAVING_BATCH 64

/* Claims group id `group` on h before its storage is opened, so that no second replica
 * of it is ever opened on the host (its recovery would read, and could write, the live
 * replica's share of the shared log), and (removal) while a replica is being removed,
 * until its last write is done. Errors: CRAFT_EINVAL (hosted, being added or removed),
 * CRAFT_ESHUTDOWN (not for a removal), CRAFT_ENOMEM (a removal then goes on unclaimed).
 * rt_host_unclaim gives the claim back. */
int rt_host_claim(struct craft_host *h, uint64_t group, bool removal);
void rt_host_unclaim(struct craft_host *h, uint64_t group);
/* Attaches group n (storage recovered, driver made, n->group set) to host h and starts
 * its disk and state machine threads; the loop steps it from its next round. Errors:
 * CRAFT_EINVAL (h already hosts n->group), CRAFT_ENOMEM, CRAFT_ESHUTDOWN. */
int rt_host_attach(struct craft_host *h, struct craft_node *n);
/* Removes group n from its host: the loop lets go of it (its futures fail with
 * CRAFT_ESHUTDOWN) before this returns; the caller then stops its other threads. */
void rt_host_detach(struct craft_node *n);
/* A peer process's address, learnt from a group's book or log: the host's TCP transport
 * connects there (not this host itself; nothing for the in-memory network or an address
 * that is not numeric host:port). */
void rt_host_learn_peer(struct craft_host *h, uint64_t id, const char *addr);
/* Gives n's inbox flag slot back, once nothing can push to its inbox any more. */
void rt_host_release_slot(struct craft_node *n);
void rt_post(struct craft_node *n, struct rt_req *r);
void rt_fail(struct craft_node *n, int err, const char *what);

/* loop_quiesce.c: a group's quiescence, on the loop thread (the rules: quiesce.h). */
/* Work for group n (local: from this process, not a message of another replica): if it
 * was quiesced it ticks again, and (local) tells the other replicas to. */
void rt_quiesce_wake(struct craft_node *n, bool local, uint64_t now);
/* After a round n was stepped in: a leader with nothing in flight for a few heartbeat
 * intervals quiesces and tells its followers. */
void rt_quiesce_check(struct craft_node *n, uint64_t now);
/* Whether Raft message bytes for n wake it (it is quiesced, and the message is not an
 * answer to its last heartbeats); after stepping any message into a quiesced replica,
 * rt_quiesce_settle wakes it if its term or role changed. */
bool rt_quiesce_msg_wakes(const struct craft_node *n, const uint8_t *bytes, size_t len);
void rt_quiesce_settle(struct craft_node *n, uint64_t now);
/* A host message (QUIESCE or WAKE) for n from node `from`. */
void rt_quiesce_recv(struct craft_node *n, uint64_t from, const struct host_msg *m, uint64_t now);
/* n leaves the loop (removal): if quiesced, the other replicas are told to wake. */
void rt_quiesce_leave(struct craft_node *n);
/* Sends host message m for group (HOST_MSG_GROUP: the host itself) to process `to`: loop
 * thread. */
void rt_host_send_msg(struct craft_host *h, uint64_t to, uint64_t group, const struct host_msg *m);

/* mem_net.c */
struct craft_transport *rt_mem_net_attach(struct craft_mem_net *net, uint64_t id,
                                          craft_transport_recv_fn recv, void *ctx);

#endif
