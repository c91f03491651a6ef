/* craftkv server internals: the types and calls the server_*.c files share (a map of the
 * files and who calls whom: docs/design/craftkv.md, "Files"). */
#ifndef CRAFT_KV_SERVER_INTERNAL_H
#define CRAFT_KV_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "craft.h"
#include "kv/kv_sm.h"
#include "kv/resp.h"
#include "kv/server.h"
#include "shard/config.h"
#include "shard/view.h"

struct craftkv_conn;
struct craftkv_group;

/* What an epoll event's data.ptr points to, besides the listener and the eventfd: the
 * first member of both structs, so the loop tells them apart. */
enum craftkv_ep_kind {
    CRAFTKV_EP_CONN = 1,
    CRAFTKV_EP_FWD,
};

/* The kinds of error replies counted (craftkv_error_kinds: the first word of the error;
 * the last, OTHER, for the rest). */
#define CRAFTKV_ERROR_KINDS 11
extern const char *const craftkv_error_kinds[CRAFTKV_ERROR_KINDS];

/* How a connection's reads are served (CRAFT.CONSISTENCY, READONLY/READWRITE). */
enum craftkv_read_mode {
    CRAFTKV_READ_LINEARIZABLE = 0, /* ReadIndex: a quorum round (shared by concurrent reads) */
    CRAFTKV_READ_LEASE,            /* the leader's lease; ReadIndex when no lease holds */
    CRAFTKV_READ_STALE,            /* this node's state machine as it is: no round at all */
};

/* Where a batch stands. Writes (server_write.c) and reads (server_read.c) each move
 * through their own stages; admin commands run on a worker and come back DONE. */
enum craftkv_stage {
    CRAFTKV_STAGE_NEW = 0,     /* parsed, not started */
    CRAFTKV_STAGE_PROPOSED,    /* writes: proposed here, waiting for their futures */
    CRAFTKV_STAGE_FORWARDED,   /* writes: sent to the leader, waiting for its replies */
    CRAFTKV_STAGE_BARRIER,     /* reads: waiting for the loop's ReadIndex round */
    CRAFTKV_STAGE_LEASE,       /* reads: waiting for the leader's lease check */
    CRAFTKV_STAGE_BACKOFF,     /* waiting to be routed again (no leader, a full queue) */
    CRAFTKV_STAGE_WORKER,      /* admin: on a worker thread */
    CRAFTKV_STAGE_DONE,        /* every command has its reply */
    /* writes: answered TRYAGAIN at the deadline while still PROPOSED or FORWARDED; the
     * replies went to the connection, the batch waits only for its futures or the
     * leader's replies to come back, then is freed (conn is NULL) */
    CRAFTKV_STAGE_ORPHANED,
};

/* A command and the batch it belongs to. One batch per connection out at a time: a run of
 * consecutive pipelined reads, or of writes, of one group (the connection's round has a
 * batch per group: server_conn.c), chained through `chain`; the head is what
 * travels on the queues and carries the batch's stage. The arguments are copied (the
 * connection's buffer moves on). Replies go out in request order. */
struct craftkv_task {
    struct craftkv_task *next;  /* on a queue (heads only: server_queue.c) */
    struct craftkv_task *chain; /* the next command of the same batch */
    struct craftkv_conn *conn;
    const struct craftkv_cmd_def *def;
    size_t argc;
    struct craft_resp_arg *argv; /* into args; both in the task's own block */
    char *args;
    uint64_t session, seq; /* writes: the client's session and this command's number */
    /* writes: the lowest seq of the session not yet answered (kv_cmd.h: the state machine
     * keeps the results from there on, so every write of a pipelined batch can be retried
     * and answered); 0: none (keep only the last result) */
    uint64_t ack;
    bool forwarded;    /* arrived as CRAFT.FWD: apply here or refuse, never forward on */
    /* writes, sharded: a group's refusal closes the seq (kv_cmd.h). This server's own
     * writes and CRAFT.FWDG's, which renumber refused commands; not a client library's
     * plain CRAFT.FWD, which retries a refused seq as it is (kv-client.md). */
    bool refusal_final;
    bool keyless;      /* sharded, a command without keys: on a worker (server_keyless.c) */
    bool open_session; /* writes: propose SESSION_OPEN for session just ahead of this one */
    bool needs_seq;    /* a write of this connection's session: numbered when its batch starts */
    uint32_t round_pos; /* its place in the connection's round (request order) */
    bool answered;     /* out holds this command's reply: it is never sent again */
    uint8_t read_mode; /* enum craftkv_read_mode, the connection's at submission */
    /* sharded: craftkv_cmd_slot of the command, once known (craftkv_task_slot); else
     * CRAFTKV_SLOT_UNKNOWN */
    int32_t slot;
    uint64_t arrived_ms; /* head: craftkv_mono_ms() when its round was parsed (the round's
                            first batch) or when it started (the others) */
    struct craft_resp_buf out;
    struct craft_future *fut;      /* this command's proposal (PROPOSED) */
    struct craftkv_task *head;     /* the batch this command belongs to (forwarding) */
    struct craftkv_group *grp;     /* the Raft group that serves the batch (server_route.c) */
    struct craftkv_task *fwd_next; /* waiting for the leader's reply (server_fwd.c) */
    /* head only */
    struct craftkv_server *srv; /* for completion callbacks on node threads */
    uint8_t stage;              /* enum craftkv_stage */
    atomic_int pending;         /* PROPOSED, FORWARDED: commands not yet settled, plus one */
    uint64_t deadline_ms;       /* monotonic: past it, what is unanswered gets TRYAGAIN */
    uint64_t due_ms;            /* BACKOFF: when to route again */
    /* writes: attempts routed so far, the unanswered commands the last one sent, and the
     * leader it went to (this node's id: proposed here; 0: none was known) */
    uint32_t attempts;
    size_t sent;
    uint64_t tried_leader;
    bool close_conn; /* close the connection once these replies are out (server_write.c) */
    /* writes, PROPOSED or FORWARDED: on the server's list of batches waiting for a reply,
     * by deadline (server_write.c), so that a leader cut off from its followers, whose
     * futures complete only once it learns the outcome, cannot hold a client forever */
    struct craftkv_task *wait_prev, *wait_next;
};

/* The loop's pipelined connection to the leader's client port, for a follower's writes
 * (server_fwd.c). Loop thread only. */
struct craftkv_fwd {
    uint8_t ep_kind; /* CRAFTKV_EP_FWD */
    struct craftkv_group *grp;
    int fd;          /* -1: none */
    uint64_t gen;    /* counts connections: an fd number may be reused by the next */
    bool connecting; /* a non-blocking connect in progress */
    uint32_t events;
    char addr[CRAFTKV_ADDR_MAX];
    struct craft_resp_buf out;
    size_t out_off;
    char *in;
    size_t in_len, in_cap;
    struct craftkv_task *q_head, *q_tail; /* sent or queued, in order, awaiting replies */
    uint64_t progress_ms; /* last reply, or when the queue last became non-empty */
    bool auth_pending;    /* the AUTH sent first on this connection has not been answered */
    uint64_t auth_warned_ms; /* last log line about a refused password (one per 10 s) */
};

enum craftkv_cmd_kind {
    CRAFTKV_LOCAL = 1, /* answered on the loop thread */
    CRAFTKV_READ,      /* ReadIndex, then the local state machine (a worker) */
    CRAFTKV_WRITE,     /* proposed through the leader (a worker) */
    CRAFTKV_ADMIN,     /* cluster administration (RAFT.*): run by admin() on a worker */
};

struct craftkv_server;
typedef void (*craftkv_local_fn)(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                                 const struct craft_resp_arg *argv);
/* Reads: fill out from the read transaction. Writes: return 1 with *cmd built (keys and
 * values point into argv, items a scratch array for DEL/MSET lists), or 0 with out holding an error. */
struct craftkv_cmd_def {
    const char *name;
    int arity; /* Redis's: n exact, -n at least n (the name counts) */
    uint8_t kind;
    craftkv_local_fn local;
    void (*read)(struct craft_kv_read *r, size_t argc, const struct craft_resp_arg *argv,
                 struct craft_resp_buf *out);
    /* items: argc + 1 entries. CRAFT.EXEC also uses out for the bytes its cmd points to
     * (the MULTI's list): the caller empties out once the command is encoded. */
    int (*write)(size_t argc, const struct craft_resp_arg *argv, uint64_t now_ms,
                 struct craft_kv_cmd *cmd, struct craft_kv_bytes *items,
                 struct craft_resp_buf *out);
    /* CRAFTKV_ADMIN: runs on a worker (may block on futures until deadline, a monotonic
     * instant in ms) and writes its reply into t->out. */
    void (*admin)(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline);
    /* Where its keys are, as COMMAND reports them (first, last, step): cluster-aware
     * clients route by them. */
    uint8_t keys;
    /* READ commands a transaction may hold: the state machine's read op (kv_cmd.h) that
     * answers it inside a MULTI; 0: not inside a MULTI. */
    uint8_t multi_op;
};

enum craftkv_cmd_keys {
    K_NONE = 0, /* no key: 0, 0, 0 */
    K_ONE,      /* the first argument: 1, 1, 1 */
    K_ALL,      /* every argument: 1, -1, 1 */
    K_PAIRS,    /* key value pairs: 1, -1, 2 */
    K_TWO,      /* the first two arguments (RENAME, LMOVE, SMOVE): 1, 2, 1 */
};

/* A connection's session in one group: writes to different groups never share a session
 * (each group sees one client with contiguous seqs, as with a single group). */
struct craftkv_session {
    uint64_t id, seq;
    bool opened; /* a write went out with it */
    bool closed; /* its SESSION_CLOSE went out (the connection ended) */
};

struct craftkv_conn {
    uint8_t ep_kind;                  /* CRAFTKV_EP_CONN */
    struct craftkv_conn *prev, *next; /* every connection not yet freed */
    int fd;
    uint64_t id;
    struct craft_resp_parser parser;
    char *in;
    size_t in_off, in_len, in_cap;
    struct craft_resp_buf out;
    bool busy;    /* a batch of the round is out */
    /* The round (server_conn.c): the commands parsed from pipelined input and not yet
     * answered, one batch per group (pend_head/pend_tail by group index, each in request
     * order), started one after the other in the order the groups first appear
     * (round_order); the replies leave in request order once every batch is answered
     * (through round_replies, by position, when the round has more than one batch). */
    struct craftkv_task **pend_head, **pend_tail;
    uint8_t *round_order;
    size_t round_n, round_groups, round_next;
    struct craftkv_task *round_first, *round_last; /* the first and last commands parsed */
    const struct craftkv_route *round_route;       /* sharded: the table it was routed by */
    struct craft_resp_buf *round_replies;          /* BATCH_MAX, allocated on first use */
    uint8_t read_mode; /* enum craftkv_read_mode */
    bool closing; /* close once out is flushed */
    bool dead;    /* closed while busy: free when the task returns */
    bool buried;  /* on the graveyard: freed after the current round of events */
    struct craftkv_conn *grave_next;
    uint32_t events;
    struct craftkv_session *sessions; /* one per group of the server, by group index */
    bool ending; /* closed: its sessions' SESSION_CLOSEs are going out (then freed) */
    bool authed; /* AUTH passed, or no password is required (server_auth.c) */
    char name[64];
    struct craftkv_multi *multi; /* MULTI ... EXEC under way (server_multi.c); NULL: none */
    struct craftkv_watch *watch; /* WATCHed keys (server_multi.c); NULL: none */
};

/* One Raft group this server holds a replica of, with its craftkv state machine: the
 * only group of an unsharded server, or a shard group (docs/design/craftkv.md, "Groups").
 * Its read barrier and its forwarding connection belong to the loop thread. */
struct craftkv_group {
    struct craftkv_server *srv;
    size_t index; /* in srv->groups */
    uint64_t gid; /* 0: an unsharded server's group; else the shard group's id */
    struct craft_node *node;
    struct craft_kv_store *store;
    struct craft_kv_sm *sm;
    /* The loop's read barrier (server_read.c): batches waiting for the round in flight
     * (cur) and for the next one (next), linked through `next`. Loop thread only, except
     * ar_flag, set by the barrier's completion. */
    struct craftkv_task *ar_cur, *ar_next, *ar_next_tail;
    struct craft_future *ar_fut;
    atomic_bool ar_flag;
    struct craftkv_fwd fwd; /* to this group's leader */
};

/* The configuration a sharded server routes by (server_route.c), published by the shard
 * driver (server_shard.c) and never changed once published. */
struct craftkv_route {
    struct craft_shard_config cfg;
    int8_t local[CRAFT_SHARD_GROUPS_MAX]; /* cfg.groups[k]'s index in srv->groups; -1: not here */
    struct craftkv_route *older;          /* the one published before (freed at shutdown) */
};

/* The largest entry of a shard group: a hand-over payload and its command header. */
#define CRAFTKV_SHARD_ENTRY_MAX (CRAFTKV_HANDOVER_BYTES_MAX + 4096u)

struct craftkv_ctrler;

struct craftkv_server {
    struct craftkv_opts opts;
    char data_dir[4096];
    /* The groups: one (gid 0) unsharded; every shard group hosted here when sharded. */
    struct craftkv_group *groups;
    size_t n_groups;
    /* Sharded (opts.shard_groups > 0): the host of every group, the controller group and
     * its state machine, the latest configuration, the driver thread (server_shard.c). */
    bool sharded;
    struct craft_host *host;
    struct craft_node *ctrl_node;
    struct craftkv_ctrler *ctrl;
    _Atomic(struct craftkv_route *) route;
    pthread_mutex_t route_mu; /* publishers of route (the controller's apply, the driver) */
    pthread_t shard_thread;
    bool shard_started;
    int listen_fd, epfd, evfd;
    uint64_t next_conn_id;
    struct craftkv_conn *conns;
    _Atomic size_t n_conns; /* written by the loop, read by the metrics thread too */
    /* Write commands sent again after a first attempt failed (a leader change, a full
     * queue, an unknown session, a lost forwarding connection): INFO writes_retried. */
    atomic_uint_fast64_t n_retried;
    /* Sessions ended because their connection closed (proposed; INFO sessions_ended). */
    atomic_uint_fast64_t n_sessions_ended;
    atomic_uint_fast64_t n_auth_failures; /* AUTH with a wrong password (INFO auth_failures) */
    /* Sharded: hand-over entries this process's driver proposed and applied (parts
     * included) and their payloads' bytes (INFO craft_handover_entries / _bytes). */
    atomic_uint_fast64_t n_handover_entries, n_handover_bytes;
    /* Sharded: the leader of each shard group hosted elsewhere, by gid, as a host of it
     * last told the driver (server_shard_peer.c; 0: unknown). For redirects and the
     * cluster views. */
    _Atomic uint64_t leader_hint[CRAFTKV_SHARD_GROUPS_MAX + 1];
    /* Metrics (server_metrics.c): commands received per entry of the command table, error
     * replies by kind, the scrape thread and its socket (-1: none), the start time. */
    atomic_uint_fast64_t *cmd_calls;
    atomic_uint_fast64_t n_errors[CRAFTKV_ERROR_KINDS];
    int metrics_fd;
    pthread_t metrics_thread;
    bool metrics_started;
    uint64_t started_wall_ms;
    /* Connections closed during a round of epoll events: a later event of the same round
     * may still name them, so they are freed once the round is over (server_conn.c). */
    struct craftkv_conn *graveyard;

    /* The queues (server_queue.c). todo (admin commands for the workers) and done
     * (batches completed on other threads, for the loop) are shared under mu; ready
     * (batches to be stepped this round) and later (BACKOFF, by due time) belong to the
     * loop thread. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct craftkv_task *todo_head, *todo_tail;
    struct craftkv_task *done_head, *done_tail;
    struct craftkv_task *ready_head, *ready_tail;
    struct craftkv_task *later;
    struct craftkv_task *waiting_head, *waiting_tail; /* server_write.c: by deadline */
    _Atomic bool stopping; /* read by workers and the ticker without the lock */
    atomic_bool loop_stop; /* craftkv_server_stop */
    pthread_t *workers;
    size_t n_workers;
    pthread_t ticker;
    bool ticker_started;
};

/* The group an unsharded server's admin, INFO and cluster commands speak of: its only one. */
static inline struct craftkv_group *craftkv_main_group(const struct craftkv_server *s)
{
    return &s->groups[0];
}

/* ---- server_clock.c ---- */
/* CLOCK_REALTIME in ms (the leader's stamp on a write: kv.md); CLOCK_MONOTONIC in ms
 * (deadlines); a sleep (workers only). */
uint64_t craftkv_now_ms(void);
uint64_t craftkv_mono_ms(void);
void craftkv_nap(uint32_t ms);
/* Milliseconds from now to the monotonic instant due_ms: 0 if it passed, at most max_ms
 * (an epoll timeout). */
int craftkv_ms_until(uint64_t due_ms, int max_ms);

/* ---- server_queue.c: tasks and the queues that carry batches between stages ---- */
/* Frees a batch: t and every task chained after it (releasing their futures). */
void craftkv_batch_free(struct craftkv_task *t);
/* Any thread: the batch is ready to be stepped by the loop (a completion callback); NULL
 * only wakes the loop. One eventfd write per drain, not per batch. */
void craftkv_done_push(struct craftkv_server *s, struct craftkv_task *head);
/* Loop thread: the batch is ready to be stepped at the end of this round. */
void craftkv_ready_push(struct craftkv_server *s, struct craftkv_task *head);
/* Loop thread: steps head again at due_ms (its stage is BACKOFF). */
void craftkv_later_push(struct craftkv_server *s, struct craftkv_task *head, uint64_t due_ms);
/* Loop thread: moves the done queue and every batch now due onto the ready list, and
 * returns the ready list (linked through next), emptied. woken: the eventfd fired this
 * round (it is read only then: no system call per round otherwise). */
struct craftkv_task *craftkv_ready_take(struct craftkv_server *s, bool woken);
/* Loop thread: ms until the first later batch is due (capped at max_ms). */
int craftkv_later_wait_ms(struct craftkv_server *s, int max_ms);
/* Hands an admin batch to the workers; a worker pops it (NULL once stopping). */
void craftkv_todo_push(struct craftkv_server *s, struct craftkv_task *head);
struct craftkv_task *craftkv_todo_pop(struct craftkv_server *s);
/* Shutdown, after the node and the loop stopped: frees every batch still queued. */
void craftkv_queues_free(struct craftkv_server *s);

/* ---- server_write.c: the write pipeline ---- */
/* Starts a batch of writes on the loop thread: ROUTE -> PROPOSE here | FORWARD to the
 * leader -> AWAIT -> DONE, or BACKOFF -> ROUTE again for what failed, until every command
 * has its reply or the batch's deadline passed (then TRYAGAIN). Returns true if the batch
 * is DONE now (deliver it); false if it is out: it comes back through the queues, and
 * craftkv_write_step moves it on. */
bool craftkv_write_start(struct craftkv_server *s, struct craftkv_task *head);
bool craftkv_write_step(struct craftkv_server *s, struct craftkv_task *head);
/* Loop thread, every round: the next batch whose deadline passed while it waited for its
 * futures or the leader's replies, its unanswered commands now answered TRYAGAIN, its stage
 * ORPHANED (the caller delivers its replies and leaves it to come back and be freed), or
 * NULL. */
struct craftkv_task *craftkv_write_expired(struct craftkv_server *s);
/* Loop thread: ms until the first waiting batch's deadline (capped at max_ms). */
int craftkv_write_wait_ms(struct craftkv_server *s, int max_ms);
/* The leader's client address if another node leads, else NULL; *leader (if not NULL) its
 * id, 0 if none is known. */
const char *craftkv_leader_addr(struct craftkv_group *g, uint64_t *leader);
/* Appends -CRAFTNOTLEADER <leader client address> ("?" if none is known): the answer of
 * a node that does not lead to a forwarded write or admin command. */
void craftkv_reply_notleader(struct craftkv_group *g, struct craft_resp_buf *out);
/* Appends the reply a client gets once its deadline passed: TRYAGAIN (or a shutdown). */
void craftkv_reply_timeout(struct craftkv_server *s, struct craft_resp_buf *out);
/* Answers every unanswered command of the batch so (its deadline passed, or the server is
 * stopping) and sets the batch's stage (DONE, or ORPHANED for one still referenced). */
void craftkv_batch_timeout(struct craftkv_server *s, struct craftkv_task *head, uint8_t stage);

/* ---- server_read.c: reads ---- */
/* Starts a batch of reads on the loop thread: stale at once; lease on the leader through
 * its lease check; else (and when no lease holds) the loop's shared ReadIndex round;
 * BACKOFF and again when a round fails, until the deadline. Returns true if DONE now. */
bool craftkv_read_start(struct craftkv_server *s, struct craftkv_task *head);
bool craftkv_read_step(struct craftkv_server *s, struct craftkv_task *head);
/* Every round of the loop: finishes the ReadIndex round if it completed (its batches go
 * to the ready list), issues the next one for the batches waiting. */
void craftkv_read_poll(struct craftkv_group *g);
/* Releases the round (shutdown, after the node is destroyed). */
void craftkv_read_free(struct craftkv_group *g);

/* ---- server_fwd.c: the loop's pipelined connection to the leader ---- */
/* Sends head's unanswered writes to the leader at addr as CRAFT.FWD. Returns false if the
 * connection cannot be opened (nothing sent). Once true, every command settles (answered,
 * or left unanswered for a retry) and the batch goes to the ready list. */
bool craftkv_fwd_submit(struct craftkv_group *g, struct craftkv_task *head, const char *addr);
void craftkv_fwd_event(struct craftkv_fwd *f, uint32_t events);
/* Called by the loop every round (at least every 200 ms): gives up on a forwarding
 * connection whose commands wait on a node that no longer leads, or on a leader that has
 * answered nothing for half the command timeout (paused, hung, failed): its commands are
 * settled unanswered, and the write pipeline routes them again. */
void craftkv_fwd_tick(struct craftkv_group *g);
void craftkv_fwd_free(struct craftkv_group *g);

/* ---- server_conn.c: connections ---- */
void craftkv_conn_accept(struct craftkv_server *s);
void craftkv_conn_event(struct craftkv_server *s, struct craftkv_conn *c, uint32_t events);
/* Steps every ready batch (writes, reads) and delivers the finished ones (woken: as
 * craftkv_ready_take). */
void craftkv_conn_resume(struct craftkv_server *s, bool woken);
/* Frees the connections closed this round (after the round: see graveyard). */
void craftkv_conn_sweep(struct craftkv_server *s);
void craftkv_conn_free_all(struct craftkv_server *s);
/* Appends n raw bytes (already RESP); -1 if out of memory. */
int craftkv_buf_append_raw(struct craft_resp_buf *b, const char *p, size_t n);
/* CRAFT.CONSISTENCY [LINEARIZABLE|LEASE|STALE] (no argument: the current mode), READONLY
 * (stale reads, as a Redis Cluster replica serves them), READWRITE (back to
 * linearizable). */
void craftkv_l_consistency(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                           const struct craft_resp_arg *argv);
void craftkv_l_readonly(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                        const struct craft_resp_arg *argv);
void craftkv_l_readwrite(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                         const struct craft_resp_arg *argv);

/* ---- server_cmd.c: the command table (pure: no sockets, no threads) ---- */
/* True if argument a is name, compared as Redis compares command and option names
 * (case-insensitive). */
bool craftkv_arg_is(const struct craft_resp_arg *a, const char *name);
/* True if argument a is a decimal number (digits only: no sign, no space) of at most max,
 * stored in *v; false otherwise (*v unchanged). */
bool craftkv_arg_u64(const struct craft_resp_arg *a, uint64_t max, uint64_t *v);
/* The entry named name (case-insensitive), or NULL; the i-th entry, or NULL past the end. */
const struct craftkv_cmd_def *craftkv_cmd_find(const char *name, size_t len);
const struct craftkv_cmd_def *craftkv_cmd_at(size_t i);
/* d's position in the table (d from craftkv_cmd_find or craftkv_cmd_at). */
size_t craftkv_cmd_index(const struct craftkv_cmd_def *d);
/* Redis's arity rule: argc (the name counts) fits d->arity. */
bool craftkv_cmd_arity_ok(const struct craftkv_cmd_def *d, size_t argc);
/* Redis's texts: "ERR unknown command 'x', with args beginning with: ..." and "ERR wrong
 * number of arguments for 'x' command" (the name in lower case). */
void craftkv_reply_unknown(struct craft_resp_buf *out, size_t argc, const struct craft_resp_arg *argv);
void craftkv_reply_arity(struct craft_resp_buf *out, const struct craft_resp_arg *name);

/* Inside a MULTI, checks a command as Redis does when it queues one: 0 if it may be
 * queued, else -1 with the error in out (an unknown command or a wrong arity were caught
 * before). now_ms: the clock, for the syntax of relative expiries. */
int craftkv_cmd_check_queued(const struct craftkv_cmd_def *d, size_t argc,
                             const struct craft_resp_arg *argv, uint64_t now_ms,
                             struct craft_resp_buf *out);
/* The name of the internal command that carries a transaction's queued commands through
 * the write pipeline (and to the leader in CRAFT.FWD): CRAFT.EXEC <n> then, for each
 * command, <argc> <name> <args...>, after <watched> (<key> <digest>)... . Its write builds
 * one MULTI entry (kv_cmd.h), the WATCHes first. */
#define CRAFTKV_EXEC_CMD "craft.exec"
/* The internal write that ends a connection's session when the connection ends
 * (SESSION_CLOSE, seq 0): proposed by the node the client was connected to, forwarded to
 * the leader as CRAFT.FWD <session> 0 CRAFT.ENDSESSION; refused from clients. */
#define CRAFTKV_ENDSESSION_CMD "craft.endsession"
/* Redis's reply to EXEC after a queuing error, and to a CRAFT.EXEC that does not build. */
#define CRAFTKV_ERR_EXECABORT "EXECABORT Transaction discarded because of previous errors."

/* ---- server_coll.c: the hash and set commands ---- */
/* The table's write and read functions of every collection command (its op: the entry's
 * multi_op). */
int craftkv_w_coll(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                   struct craft_kv_cmd *c, struct craft_kv_bytes *items,
                   struct craft_resp_buf *out);
void craftkv_r_coll(struct craft_kv_read *r, size_t argc, const struct craft_resp_arg *argv,
                    struct craft_resp_buf *out);
/* GETEX (its expiry made absolute with this leader's clock) and RPOPLPUSH (LMOVE). */
int craftkv_w_getex(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                    struct craft_kv_cmd *c, struct craft_kv_bytes *items,
                    struct craft_resp_buf *out);
int craftkv_w_rpoplpush(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                        struct craft_kv_cmd *c, struct craft_kv_bytes *items,
                        struct craft_resp_buf *out);
/* A collection command's argument error as RESP (a wrong count: Redis's text with the
 * command's name). */
void craftkv_coll_reply_error(struct craft_resp_buf *out, const struct craft_resp_arg *name,
                              const char *err);
/* A queued collection read as the MULTI's read op: c points into argv, items (argc
 * entries) and seed_buf, until encoded. */
void craftkv_coll_build_read(uint8_t op, size_t argc, const struct craft_resp_arg *argv,
                             struct craft_kv_cmd *c, struct craft_kv_bytes *items,
                             uint8_t seed_buf[8]);

/* A state machine's answer as RESP (server_write.c). */
void craftkv_put_result(struct craft_resp_buf *out, const struct craft_kv_result *res);

/* ---- server_multi.c: MULTI, EXEC, DISCARD, WATCH, UNWATCH ---- */
/* What the connection's transaction did with a command (the loop thread). */
enum craftkv_multi_step {
    CRAFTKV_MULTI_PASS = 0, /* not in a transaction: dispatch it as usual */
    CRAFTKV_MULTI_ANSWERED, /* queued, refused or a transaction command: its reply is in c->out */
    CRAFTKV_MULTI_EXEC,     /* EXEC of a valid transaction: submit craftkv_multi_exec_args */
};
/* Feeds one command to c's transaction state; d is argv[0]'s table entry (NULL: none). */
enum craftkv_multi_step craftkv_multi_feed(struct craftkv_conn *c,
                                           const struct craftkv_cmd_def *d, size_t argc,
                                           const struct craft_resp_arg *argv);
/* After CRAFTKV_MULTI_EXEC: the CRAFT.EXEC command (valid until craftkv_multi_end). */
void craftkv_multi_exec_args(struct craftkv_conn *c, size_t *argc,
                             const struct craft_resp_arg **argv);
/* Ends c's transaction (EXEC submitted, or the connection closes): frees its queue. */
void craftkv_multi_end(struct craftkv_conn *c);
/* The transaction commands outside a transaction (MULTI starts one; the others answer as
 * Redis does without one). */
void craftkv_l_multi(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                     const struct craft_resp_arg *argv);
void craftkv_l_exec(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                    const struct craft_resp_arg *argv);
void craftkv_l_discard(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                       const struct craft_resp_arg *argv);
/* WATCH key...: after the connection's read barrier, records each key's state digest
 * (craft_kv_watch_digest) for the next EXEC and answers OK (the read path, server_read.c,
 * calls it for the table's WATCH entry, whose read is NULL). */
void craftkv_multi_watch(struct craftkv_conn *c, struct craft_kv_read *r, size_t argc,
                         const struct craft_resp_arg *argv, struct craft_resp_buf *out);
void craftkv_l_unwatch(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                       const struct craft_resp_arg *argv);

/* ---- server_auth.c: AUTH and the gate before it ---- */
/* True if c may not run argv[0] yet (a password is required and c has not passed AUTH):
 * the NOAUTH error is in c->out. AUTH and QUIT always pass. */
/* HELLO [protover [AUTH user pass] [SETNAME name]]: RESP2 only. */
void craftkv_l_hello(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                     const struct craft_resp_arg *argv);
bool craftkv_auth_refuses(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                          const struct craft_resp_arg *argv);
/* AUTH <password> | AUTH default <password> (Redis's texts for every refusal). */
void craftkv_l_auth(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                    const struct craft_resp_arg *argv);

/* ---- server_metrics.c: Prometheus metrics over HTTP ---- */
/* Starts the scrape thread on a listening socket (owned from now on). */
int craftkv_metrics_start(struct craftkv_server *s, int listen_fd);
/* Joins it (the server is stopping) and closes the socket. */
void craftkv_metrics_join(struct craftkv_server *s);
/* Appends every metric in the text format (any thread). */
void craftkv_metrics_render(struct craftkv_server *s, struct craft_resp_buf *out);
/* Counts reply[0..len) if it is an error reply, by its first word (the loop thread). */
void craftkv_count_error(struct craftkv_server *s, const char *reply, size_t len);

/* ---- server_info.c ---- */
/* INFO's sections named by argv[0..argc) (INFO's arguments; none: every section; "all",
 * "everything", "default": every section; unknown names: none), as a bit set for
 * craftkv_info. */
unsigned craftkv_info_sections(size_t argc, const struct craft_resp_arg *argv);
/* Appends INFO's reply with the given sections (Server, Clients, Stats, Raft, Cluster,
 * Keyspace, in that order). The loop thread. */
void craftkv_info(struct craftkv_server *s, unsigned sections, struct craft_resp_buf *out);
/* INFO's name of a role: "leader", "follower", "precandidate", "candidate" (lower case). */
const char *craftkv_role_name(enum craft_role role);
/* A leader's progress state of a peer: "probe", "replicate", "snapshot" or "?". */
const char *craftkv_peer_state_name(uint8_t state);

/* ---- server_route.c: the group of a command ---- */
#define CRAFTKV_SLOT_UNKNOWN (-3)
/* t's craftkv_cmd_slot, computed once (a read's is asked for up to four times). */
int craftkv_task_slot(struct craftkv_task *t);
/* The slot of a command's keys: -1 if it has none, -2 if they span slots (CRAFT.EXEC: the
 * keys of its watches and of every queued command). */
int craftkv_cmd_slot(const struct craftkv_cmd_def *d, size_t argc,
                     const struct craft_resp_arg *argv);
/* The group that serves a command: the only one unsharded; sharded, this process's replica
 * of the owner of the command's slot, or NULL with the reply in out (MOVED to a server of
 * an owner hosted elsewhere, CROSSSLOT, CLUSTERDOWN, a command without keys), by the
 * routing table r (sharded: craftkv_route_now's, read by the caller). *slot: the command's
 * craftkv_cmd_slot when sharded, else CRAFTKV_SLOT_UNKNOWN. */
struct craftkv_group *craftkv_route_cmd(struct craftkv_server *s, const struct craftkv_route *r,
                                        const struct craftkv_cmd_def *d, size_t argc,
                                        const struct craft_resp_arg *argv,
                                        struct craft_resp_buf *out, int *slot);
/* How every TRYAGAIN that refuses a key's slot begins (the state machine's included:
 * kv_sm.h), told apart from the TRYAGAIN of a deadline, whose outcome is unknown. */
#define CRAFTKV_SLOT_TRYAGAIN "TRYAGAIN slot "
_Static_assert(sizeof CRAFT_KV_ERR_TRYAGAIN > sizeof CRAFTKV_SLOT_TRYAGAIN, "the prefix fits");
/* The group with that gid here, or NULL. */
struct craftkv_group *craftkv_group_of(struct craftkv_server *s, uint64_t gid);
/* The latest configuration published (NULL: none yet, or unsharded). Any thread. */
const struct craftkv_route *craftkv_route_now(struct craftkv_server *s);
/* The reply for a key of `slot` that group g (NULL: none here) does not serve, its state
 * there being `state`: TRYAGAIN while it is on its way to g (PULLING) or the latest
 * configuration gives it to g already; MOVED <slot> <a server of the owner>; CLUSTERDOWN
 * if nobody owns it. */
void craftkv_reply_slot_elsewhere(struct craftkv_server *s, const struct craftkv_group *g,
                                  uint16_t slot, uint8_t state, struct craft_resp_buf *out);
/* Rewrites a state machine's "-MOVED <slot>" reply at out->data[from..] into Redis's
 * shape (craftkv_reply_slot_elsewhere); any other reply is left alone. */
void craftkv_route_result(struct craftkv_server *s, const struct craftkv_group *g,
                          struct craft_resp_buf *out, size_t from);

/* Gives t the next seq of connection c's session in group g (opening it on first use:
 * t->open_session). */
void craftkv_session_next(struct craftkv_conn *c, const struct craftkv_group *g,
                          struct craftkv_task *t);
/* What a client's write batch does with its commands that a shard group refused (did
 * not run; the refusal closed their seqs there: refusal_final, kv_cmd.h), once every
 * command of the batch is answered: those whose slot is on its way to the batch's group
 * (TRYAGAIN), or that this server routes there already, go again there under new seqs
 * after a back-off (WAIT); otherwise those refused with MOVED to one other group hosted
 * here go there under new seqs of the connection's session in that group, and so does
 * the batch (MOVED); one group per call, the rest in later calls. NONE: nothing to do
 * now (a command unanswered, no refusal, or MOVED to groups hosted elsewhere: the client
 * sees those). Loop thread, before the batch's deadline. */
enum craftkv_reroute { CRAFTKV_REROUTE_NONE, CRAFTKV_REROUTE_MOVED, CRAFTKV_REROUTE_WAIT };
enum craftkv_reroute craftkv_reroute_writes(struct craftkv_server *s, struct craftkv_task *head);
/* A read batch none of whose commands' slots the group serves at r's state, all owned now
 * by one other group hosted here: the batch moves to that group (true). Loop thread. */
bool craftkv_reroute_reads(struct craftkv_server *s, struct craftkv_task *head,
                           struct craft_kv_read *r);

/* ---- server_keyless.c: commands without keys on a sharded server ---- */
/* DBSIZE, SCAN, FLUSHALL, FLUSHDB: answered by a sharded server for the groups it leads. */
bool craftkv_keyless_cmd(const struct craftkv_cmd_def *d);
/* Runs one on a worker (blocks until deadline at most); the reply in t->out. */
void craftkv_keyless(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline);

/* ---- server_shard.c: the controller, the shard groups on one host, the driver ---- */
/* Starts the host, the controller group and every shard group of s->groups (their gids
 * set), then the driver thread. Returns 0, or -1 with err naming the cause (the caller
 * destroys what was started). */
int craftkv_shard_start(struct craftkv_server *s, char *err, size_t cap);
/* Joins the driver (s->stopping set). */
void craftkv_shard_join(struct craftkv_server *s);
/* After the shard groups' nodes: the controller's node, the host, the routes. */
void craftkv_shard_destroy(struct craftkv_server *s);
struct craft_shard_request;
/* Proposes a controller request through this process's controller replica (it must lead)
 * and waits for it: CRAFT_OK with the controller's *status, *num and refusal text, or the
 * proposal's error (CRAFT_ENOTLEADER, CRAFT_ETIMEOUT, ...). Blocks: not the loop thread. */
int craftkv_ctrler_request(struct craftkv_server *s, const struct craft_shard_request *req,
                           int *status, uint64_t *num, char *err, size_t cap);
/* A change (Join, Leave, Move) in a session of its own (registered first, so a retry
 * applies once): the controller's status (CRAFT_OK, CRAFT_EINVAL with err) or the
 * proposal's error. req's client and seq are set here. Blocks. */
int craftkv_ctrler_change(struct craftkv_server *s, struct craft_shard_request *req, uint64_t *num,
                          char *err, size_t cap);
/* A shard group's progress as this process's replica applied it: its configuration and
 * its slots by state (enum craft_slot_state). Any thread but the loop (a read of its
 * store). */
struct craftkv_shard_state {
    uint64_t num;
    uint32_t slots[CRAFT_SLOT_STATES];
};
/* Its slots on their way in or out (a migration in progress when not 0). */
static inline uint32_t craftkv_shard_moving(const struct craftkv_shard_state *st)
{
    return st->slots[CRAFT_SLOT_PULLING] + st->slots[CRAFT_SLOT_GIVING] +
           st->slots[CRAFT_SLOT_NOTIFYING];
}
int craftkv_shard_group_state(struct craftkv_group *g, struct craftkv_shard_state *out);
/* The same from a replica's slot states (one byte per slot) at configuration num: for a
 * group hosted elsewhere, as a host of it told (craftkv_peers_state). */
void craftkv_shard_state_count(uint64_t num, const uint8_t *state, struct craftkv_shard_state *out);
/* Group g's view as this process's replica applied it (a read of its store). Any thread
 * but the loop. */
int craftkv_shard_read_view(struct craftkv_group *g, struct craft_shard_view *v);
/* craft_kv_read_export on this process's replica of g (a read of its store). */
int craftkv_shard_read_export(struct craftkv_group *g, uint64_t num,
                              const struct craft_slot_set *slots, size_t max,
                              struct craft_kv_export_cursor *cur, uint8_t **payload, size_t *len,
                              bool *part);
/* The members hosting shard group gid (1..o->shard_groups), as indexes into o->members:
 * o->shard_replicas of them, consecutive from (gid - 1) * shard_replicas, modulo the member
 * count (sharding.md, "Placement"). Returns how many (idx has room for
 * CRAFTKV_SHARD_REPLICAS_MAX). o->shard_replicas must be set (craftkv_server_start). */
size_t craftkv_shard_hosts(const struct craftkv_opts *o, uint64_t gid, size_t *idx);
/* Whether this process (o->id) hosts shard group gid. */
bool craftkv_shard_hosts_here(const struct craftkv_opts *o, uint64_t gid);
/* Group gid as a Join places it: its servers are its hosts' client addresses. */
void craftkv_shard_group_placed(const struct craftkv_server *s, uint64_t gid,
                                struct craft_shard_group *out);
/* The leader of group index k of route r as this process knows it: its replica's when the
 * group is hosted here, else the last one a host of the group told the driver (0: none
 * known). Any thread. */
uint64_t craftkv_shard_leader(struct craftkv_server *s, const struct craftkv_route *r, uint32_t k);
/* The latest configuration this process's controller replica applied. */
int craftkv_shard_latest(struct craftkv_server *s, struct craft_shard_config *out);

/* ---- server_shard_peer.c: the driver's calls to groups hosted elsewhere ---- */
/* Whether argv is CRAFT.SHARD EXPORT or STATE (asked by other processes' drivers). */
bool craftkv_shard_peer_cmd(size_t argc, const struct craft_resp_arg *argv);
/* Answers one from this process's replica of the group named (no leader needed). Workers. */
void craftkv_shard_peer_answer(struct craftkv_server *s, size_t argc,
                               const struct craft_resp_arg *argv, struct craft_resp_buf *out);
/* What a host of a shard group tells of its replica (CRAFT.SHARD STATE). */
struct craftkv_peer_state {
    uint64_t leader; /* the member it knows as the group's leader; 0: none */
    uint64_t num;    /* the configuration it applied */
    uint8_t state[CRAFT_SLOTS];
};
/* Connections to the other members (opened when first needed), for one thread at a time
 * (the driver's; an admin command's wait). NULL: no memory. */
struct craftkv_peers;
struct craftkv_peers *craftkv_peers_new(struct craftkv_server *s);
void craftkv_peers_free(struct craftkv_peers *p);
/* Asks one host of gid (not this process) for its state; the next call asks the next
 * host. CRAFT_OK; CRAFT_EIO (it did not answer, or answered an error); CRAFT_ECORRUPT (a bad
 * reply). Blocks: connect, AUTH, send and receive may each take up to 2 s. */
int craftkv_peers_state(struct craftkv_peers *p, uint64_t gid, struct craftkv_peer_state *out);
/* craft_kv_read_export across processes: asks one host of gid for the next part of slots
 * at configuration num from *cur. CRAFT_OK with *out (the caller frees it), *len, *part and
 * *cur moved on, the payload checked whole (kv_payload_open) and for these slots;
 * CRAFT_EBUSY (that host is before num, or past it: its slots deleted, the asker has
 * them); CRAFT_EIO, CRAFT_ECORRUPT, CRAFT_ENOMEM. Blocks as craftkv_peers_state, the
 * receive up to 30 s (the host walks its keys). */
int craftkv_peers_export(struct craftkv_peers *p, uint64_t gid, uint64_t num,
                         const struct craft_slot_set *slots, size_t max,
                         struct craft_kv_export_cursor *cur, uint8_t **out, size_t *len,
                         bool *part);

/* The two replies' decoders (fuzzed: tests/fuzz/fuzz_shard_peer_reply.c). b[0..len): one
 * reply as read. CRAFT_OK; CRAFT_EBUSY (a TRYAGAIN); CRAFT_EIO (another error reply);
 * CRAFT_ECORRUPT (anything else: not one complete reply, wrong shape, a state byte out of
 * range, a payload kv_payload_open refuses or for other slots, a cursor too long). The
 * export's *payload points into b; *part is the payload's; *cur the cursor after it. */
int craftkv_peer_state_decode(const char *b, size_t len, struct craftkv_peer_state *out);
int craftkv_peer_export_decode(const char *b, size_t len, const struct craft_slot_set *slots,
                               const uint8_t **payload, size_t *plen, bool *part,
                               struct craft_kv_export_cursor *cur);

/* ---- server_recover.c: before a start that forces the survivors' configuration ---- */
/* Refuses (-1, err saying why) while any member this node knows (its list and the member
 * table) reports a leader, refuses a password or answers nothing readable, or a named
 * survivor does not answer; else 0 with survivors[k] the addresses of
 * opts.force_survivors[k] and *min_term the highest term the others reported (their logs
 * included). Warns of a survivor whose commit index passes `applied` (this node's). Blocks
 * (1 s per member at most); the server's start only. */
int craftkv_recover_check(const struct craftkv_server *s, uint64_t applied,
                          struct craftkv_member *survivors, uint64_t *min_term, char *err,
                          size_t cap);

/* ---- server_client.c ---- */
struct addrinfo;
/* getaddrinfo for "HOST:PORT" (stream sockets, flags as getaddrinfo's ai_flags; with
 * AI_PASSIVE an empty HOST is any address): its code, EAI_NONAME for an address without
 * ':' or with a host too long; *res to freeaddrinfo on success. */
int craftkv_addr_resolve(const char *addr, int flags, struct addrinfo **res);
/* The client address of member id, or NULL (a per-thread buffer: valid until this
 * thread's next call). */
const char *craftkv_client_addr(const struct craftkv_server *s, uint64_t id);

/* A forwarded write or admin command reached a node that does not lead: the reply is
 * `-CRAFTNOTLEADER <leader client address>` or `-CRAFTNOTLEADER ?` if no leader is known. */
#define CRAFTKV_ERR_NOTLEADER "CRAFTNOTLEADER"

#endif
