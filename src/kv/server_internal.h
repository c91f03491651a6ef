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

/* A command handed to a worker. The arguments are copied (the connection's buffer moves
 * on). One task per connection at a time: that keeps replies in request order and keeps a
 * session to one write in doubt, which is what its exactly-once table supports. */
struct craftkv_task {
    struct craftkv_task *next;
    struct craftkv_conn *conn;
    const struct craftkv_cmd_def *def;
    size_t argc;
    struct craft_resp_arg *argv; /* into args */
    char *args;
    uint64_t session, seq; /* writes: the client's session and this command's number */
    bool forwarded;        /* arrived as CRAFT.FWD: apply here or refuse, never forward on */
    bool open_session;     /* the session is known to be new: open it before the write */
    struct craft_resp_buf out;
};

enum craftkv_cmd_kind {
    CRAFTKV_LOCAL = 1, /* answered on the loop thread */
    CRAFTKV_READ,      /* ReadIndex, then the local state machine (a worker) */
    CRAFTKV_WRITE,     /* proposed through the leader (a worker) */
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
};

struct craftkv_conn {
    struct craftkv_conn *prev, *next; /* every connection not yet freed */
    int fd;
    uint64_t id;
    struct craft_resp_parser parser;
    char *in;
    size_t in_off, in_len, in_cap;
    struct craft_resp_buf out;
    bool busy;    /* a task is out */
    bool closing; /* close once out is flushed */
    bool dead;    /* closed while busy: free when the task returns */
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

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct craftkv_task *todo_head, *todo_tail; /* for workers */
    struct craftkv_task *done_head, *done_tail; /* for the loop */
    _Atomic bool stopping; /* read by workers and the ticker without the lock */
    pthread_t *workers;
    size_t n_workers;
    pthread_t ticker;
    bool ticker_started;
};

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

#define CRAFTKV_ERR_NOTLEADER "CRAFTNOTLEADER this node is not the leader"

#endif
