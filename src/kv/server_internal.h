/* craftkv server internals shared by server_conn.c, server_cmd.c and server_fwd.c. */
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

struct craftkv_conn;

/* How a connection's reads are served (CRAFT.CONSISTENCY, READONLY/READWRITE). */
enum craftkv_read_mode {
    CRAFTKV_READ_LINEARIZABLE = 0, /* ReadIndex: a quorum round (shared by concurrent reads) */
    CRAFTKV_READ_LEASE,            /* the leader's lease; ReadIndex when no lease holds */
    CRAFTKV_READ_STALE,            /* this node's state machine as it is: no round at all */
};

/* A command handed to a worker. The arguments are copied (the connection's buffer moves
 * on). One batch per connection at a time: a run of consecutive pipelined reads, or of
 * writes, chained through `chain` (the head is what travels on the queues). Replies go out
 * in request order; the writes of a batch are proposed in order by one worker, so a later
 * write of the session never commits ahead of an earlier one (server_exec.c). */
struct craftkv_task {
    struct craftkv_task *next;  /* on the todo or done queue (heads only) */
    struct craftkv_task *chain; /* the next command of the same batch */
    struct craftkv_conn *conn;
    const struct craftkv_cmd_def *def;
    size_t argc;
    struct craft_resp_arg *argv; /* into args */
    char *args;
    uint64_t session, seq; /* writes: the client's session and this command's number */
    /* writes: the lowest seq of the session not yet answered (kv_cmd.h: the state machine
     * keeps the results from there on, so every write of a pipelined batch can be retried
     * and answered); 0: none (keep only the last result) */
    uint64_t ack;
    bool forwarded;        /* arrived as CRAFT.FWD: apply here or refuse, never forward on */
    bool open_session;     /* the session is known to be new: open it before the write */
    uint8_t read_mode;     /* enum craftkv_read_mode, the connection's at submission */
    uint64_t arrived_ms;   /* craftkv_mono_ms() when parsed: retries count from here */
    struct craft_resp_buf out;
    /* The loop's own path (server_async.c): writes proposed from the loop thread and
     * collected when their futures complete; reads answered after a shared barrier. */
    struct craftkv_server *srv;
    struct craft_future *fut; /* this command's proposal */
    bool retry;               /* to be run again by a worker (exec_write), in order */
    uint8_t phase;            /* head: 0 worker, 1 async in flight, 2 worker retries */
    atomic_int pending;       /* head, phase 1: futures not yet complete, plus one */
    struct craftkv_task *head;     /* the batch this command belongs to (forwarding) */
    struct craftkv_task *fwd_next; /* waiting for the leader's reply (server_fwd_async.c) */
};

/* The loop's pipelined connection to the leader's client port, for a follower's writes
 * (server_fwd_async.c). Loop thread only. */
struct craftkv_fwd {
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
    void (*read)(struct craftkv_server *s, struct craft_kv_read *r, size_t argc,
                 const struct craft_resp_arg *argv, struct craft_resp_buf *out);
    int (*write)(size_t argc, const struct craft_resp_arg *argv, uint64_t now_ms,
                 struct craft_kv_cmd *cmd, struct craft_kv_bytes *items,
                 struct craft_resp_buf *out);
    /* CRAFTKV_ADMIN: runs on a worker (may block on futures until deadline, a monotonic
     * instant in ms) and writes its reply into t->out. */
    void (*admin)(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline);
};

struct craftkv_conn {
    struct craftkv_conn *prev, *next; /* every connection not yet freed */
    int fd;
    uint64_t id;
    struct craft_resp_parser parser;
    char *in;
    size_t in_off, in_len, in_cap;
    struct craft_resp_buf out;
    bool busy;    /* a batch is out */
    struct craftkv_task *batch_head, *batch_tail; /* being built from pipelined input */
    size_t batch_n;
    uint8_t read_mode; /* enum craftkv_read_mode */
    bool closing; /* close once out is flushed */
    bool dead;    /* closed while busy: free when the task returns */
    bool buried;  /* on the graveyard: freed after the current round of events */
    struct craftkv_conn *grave_next;
    uint32_t events;
    uint64_t session, seq;
    bool session_opened;
    char name[64];
};

struct craftkv_server {
    struct craftkv_opts opts;
    char data_dir[4096];
    struct craft_node *node;
    struct craft_kv_store *store;
    struct craft_kv_sm *sm;
    int listen_fd, epfd, evfd;
    uint64_t next_conn_id;
    struct craftkv_conn *conns;
    size_t n_conns;
    /* Commands the loop's own path handed to a worker for a retry, one by one (INFO
     * writes_retried): leader changes, full queues, unknown sessions. */
    atomic_uint_fast64_t n_retried;
    /* Connections closed during a round of epoll events: a later event of the same round
     * may still name them, so they are freed once the round is over (server_conn.c). */
    struct craftkv_conn *graveyard;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct craftkv_task *todo_head, *todo_tail; /* for workers */
    struct craftkv_task *done_head, *done_tail; /* for the loop */
    _Atomic bool stopping; /* read by workers and the ticker without the lock */
    atomic_bool loop_stop; /* craftkv_server_stop */
    pthread_t *workers;
    size_t n_workers;
    pthread_t ticker;
    bool ticker_started;

    /* Read barrier sharing (server_exec.c): one ReadIndex round at a time serves every
     * linearizable read that arrived before it was issued. Generations count rounds. */
    pthread_mutex_t rmu;
    pthread_cond_t rcv;
    uint64_t r_issued, r_ok, r_failed; /* last issued / succeeded / failed generation */
    int r_failed_rc;
    bool r_inflight;

    /* The loop's read barrier (server_async.c): batches waiting for the round in flight
     * (cur) and for the next one (next), linked through `next`. Loop thread only, except
     * ar_flag, set by the barrier's completion. */
    struct craftkv_task *ar_cur, *ar_next, *ar_next_tail;
    struct craft_future *ar_fut;
    atomic_bool ar_flag;

    struct craftkv_fwd fwd;
};

/* server_exec.c: CLOCK_MONOTONIC in ms; a sleep; a wait for f until deadline (a monotonic
 * instant) in slices, so that shutdown is not held up: the future's code, CRAFT_ETIMEOUT
 * (the deadline passed, or the operation itself timed out: craft_future_done tells) or
 * CRAFT_ESHUTDOWN (the server is stopping). */
uint64_t craftkv_mono_ms(void);
void craftkv_nap(uint32_t ms);
int craftkv_wait_future(struct craftkv_server *s, struct craft_future *f, uint64_t deadline);
/* server_exec.c: a command's result as a RESP reply. */
void craftkv_put_result(struct craft_resp_buf *out, const struct craft_kv_result *res);
/* server_write.c, the steps every write path shares:
 * craftkv_task_command builds t's command (session, seq, ack, time) into *c, items its
 * scratch (argc + 1 entries); false on a syntax error, answered in out (nothing to propose).
 * craftkv_propose_start encodes c and craft_apply's it (waiting up to queue_timeout_ms for
 * room in the node's queue): 0 with *f, or an error (nothing proposed).
 * craftkv_propose_session_open proposes SESSION_OPEN for session (idempotent: reopening a
 * live session changes nothing), as craftkv_propose_start.
 * craftkv_is_session_error: the state machine's "unknown session" answer (a new or expired
 * session: open it and send the write again with the same seq).
 * craftkv_leader_addr: the leader's client address if another node leads, else NULL;
 * *leader (if not NULL) its id, 0 if none is known.
 * craftkv_reply_notleader: -CRAFTNOTLEADER with the leader's client address ("?" if none). */
bool craftkv_task_command(const struct craftkv_task *t, uint64_t now, struct craft_kv_cmd *c,
                          struct craft_kv_bytes *items, struct craft_resp_buf *out);
int craftkv_propose_start(struct craftkv_server *s, const struct craft_kv_cmd *c,
                          uint32_t queue_timeout_ms, struct craft_future **f);
int craftkv_propose_session_open(struct craftkv_server *s, uint64_t session,
                                 uint32_t queue_timeout_ms, struct craft_future **f);
bool craftkv_is_session_error(const struct craft_kv_result *res);
const char *craftkv_leader_addr(struct craftkv_server *s, uint64_t *leader);

/* server_async.c */
enum craftkv_async_outcome {
    CRAFTKV_ASYNC_DECLINED = 0, /* not for the loop's path: give the batch to a worker */
    CRAFTKV_ASYNC_TAKEN,        /* in flight; it comes back through the done queue */
    CRAFTKV_ASYNC_SERVED,       /* answered now (replies in the tasks' out): deliver it */
};
int craftkv_async_submit(struct craftkv_server *s, struct craftkv_task *head);
/* A phase-1 batch came back: fills the replies. Returns false if some commands must be
 * retried by a worker (their `retry` set; the batch moved to phase 2). */
bool craftkv_async_collect(struct craftkv_server *s, struct craftkv_task *head);
/* Answers a batch of reads from one read transaction of the local state machine (the
 * barrier it needs is the caller's). */
void craftkv_serve_reads(struct craftkv_server *s, struct craftkv_task *head);
/* The loop's wake-up: finishes the read barrier if it completed, serving its batches. */
void craftkv_async_poll(struct craftkv_server *s);
/* Releases what the async path holds (shutdown, after the node is destroyed). */
void craftkv_async_free(struct craftkv_server *s);
/* server_fwd_async.c: forwards a follower's write batch over the loop's pipelined
 * connection to the leader (CRAFTKV_ASYNC_DECLINED if no leader address is known or it
 * cannot be reached); events on that connection; shutdown. */
int craftkv_fwd_submit(struct craftkv_server *s, struct craftkv_task *head);
void craftkv_fwd_event(struct craftkv_server *s, uint32_t events);
/* Called by the loop every round (at least every 200 ms): gives up on a forwarding
 * connection whose commands wait on a node that no longer leads, or on a leader that has
 * answered nothing for half the command timeout (paused, hung, failed): its commands go to
 * workers, which retry them with the same session and seq wherever the leader is now. */
void craftkv_fwd_tick(struct craftkv_server *s);
void craftkv_fwd_free(struct craftkv_server *s);
/* server_conn.c: a phase-1 batch is complete: deliver it, or hand its retries to a worker. */
void craftkv_batch_complete(struct craftkv_server *s, struct craftkv_task *head);
/* server_conn.c: marks the task list done (from a completion callback: any thread). */
void craftkv_done_push(struct craftkv_server *s, struct craftkv_task *head);
/* server_conn.c, loop thread: hands head's replies to its connection, frees the batch. */
void craftkv_deliver(struct craftkv_server *s, struct craftkv_task *head);
/* server_conn.c: hands a batch to the workers. */
void craftkv_todo_push(struct craftkv_server *s, struct craftkv_task *head);
void craftkv_batch_free(struct craftkv_task *t);

/* server_cmd.c */
const struct craftkv_cmd_def *craftkv_cmd_find(const char *name, size_t len);
const struct craftkv_cmd_def *craftkv_cmd_at(size_t i);
/* server_conn.c: appends n raw bytes (already RESP); -1 if out of memory. */
int craftkv_buf_append_raw(struct craft_resp_buf *b, const char *p, size_t n);
void craftkv_exec(struct craftkv_server *s, struct craftkv_task *t, int *fwd_fd,
                  char *fwd_addr, size_t fwd_addr_cap);
uint64_t craftkv_now_ms(void);
void craftkv_info(struct craftkv_server *s, struct craft_resp_buf *out);

/* server_fwd.c: forwards t (a write) to the leader at addr over *fd (opened/reused).
 * Returns 0 with the leader's reply in t->out, 1 if the leader refused (not leader any
 * more) or could not be reached (retry), -1 never. */
int craftkv_forward(struct craftkv_task *t, const char *addr, int *fd, uint32_t timeout_ms);
/* The client address of member id, or NULL. */
const char *craftkv_client_addr(const struct craftkv_server *s, uint64_t id);
/* INFO's name of a role: "leader", "follower", "precandidate", "candidate" (lower case). */
const char *craftkv_role_name(enum craft_role role);
/* A leader's progress state of a peer: "probe", "replicate", "snapshot" or "?". */
const char *craftkv_peer_state_name(uint8_t state);

/* A forwarded write or admin command reached a node that does not lead: the reply is
 * `-CRAFTNOTLEADER <leader client address>` or `-CRAFTNOTLEADER ?` if no leader is known. */
#define CRAFTKV_ERR_NOTLEADER "CRAFTNOTLEADER"
/* server_conn.c: CRAFT.CONSISTENCY [LINEARIZABLE|LEASE|STALE] (no argument: the current
 * mode), READONLY (stale reads, as a Redis Cluster replica serves them), READWRITE
 * (back to linearizable). */
void craftkv_l_consistency(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                           const struct craft_resp_arg *argv);
void craftkv_l_readonly(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                        const struct craft_resp_arg *argv);
void craftkv_l_readwrite(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                         const struct craft_resp_arg *argv);
/* server_exec.c: appends that error, naming the leader this node knows. */
void craftkv_reply_notleader(struct craftkv_server *s, struct craft_resp_buf *out);

#endif
