/* craftkv: the Redis-compatible server over craft (design: docs/design/craftkv.md).
 *
 * One process = one craft node + one LMDB state machine + a client listener; sharded
 * (opts.shard_groups), one craft host with the shard controller and a replica of each
 * shard group placed here (opts.shard_replicas), each with its LMDB state machine. Client connections, reads and writes are
 * served by one epoll thread (server_conn.c, server_read.c, server_write.c), which never
 * waits on a future: completions come back through queues and an eventfd. A follower
 * forwards writes to the leader's client port (server_fwd.c); admin commands run on worker
 * threads (server_admin.c). */
#ifndef CRAFT_KV_SERVER_H
#define CRAFT_KV_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/resp.h"

#define CRAFTKV_NODES_MAX 16
#define CRAFTKV_ADDR_MAX  64

struct craftkv_member {
    uint64_t id;
    char peer_addr[CRAFTKV_ADDR_MAX];   /* raft traffic */
    char client_addr[CRAFTKV_ADDR_MAX]; /* RESP clients; where followers forward writes */
};

/* A password's longest length, NUL not counted (Redis has no limit; ours keeps it in the
 * options and a RESP argument). */
#define CRAFTKV_PASS_MAX 256

struct craftkv_opts {
    uint64_t id;
    const char *data_dir; /* raft under DIR/raft, LMDB under DIR/kv */
    char listen_client[CRAFTKV_ADDR_MAX];
    char listen_peer[CRAFTKV_ADDR_MAX];
    struct craftkv_member members[CRAFTKV_NODES_MAX];
    size_t n_members;
    /* false: members is the initial cluster (bootstrapped on an empty data dir; this node
     * is one of them). true: this node joins a running cluster: it bootstraps nothing and
     * waits to be added (RAFT.ADDNODE); members are the cluster's nodes as known when it
     * joined (their peer addresses let it answer the leader; it is not one of them). */
    bool join;
    uint32_t timeout_ms; /* how long a command may wait for a leader and a quorum */
    /* Snapshots (craft_config's): after this many entries or bytes applied since the last
     * one, keeping trailing_entries of log behind it for slow followers. 0: the defaults
     * (100 000 entries, then craft's: 64 MiB, 10 240 entries kept). */
    uint64_t snapshot_entries, snapshot_bytes, trailing_entries;
    uint32_t workers;    /* threads for admin commands, which block (default 4) */
    /* The default user's password (Redis's requirepass; "": none). Clients AUTH before any
     * other command; the node authenticates its own connections to other members
     * (forwarded writes and admin commands) with it, so every member must have the same. */
    char requirepass[CRAFTKV_PASS_MAX];
    /* Recovery from a lost quorum (docs/design/core.md; craft_config.force_servers): this
     * start forces the configuration of the survivors force_survivors (ids of members, this
     * node among them) onto the log, once every other member it can reach reported no
     * leader (server_recover.c); n_force_survivors 0: a normal start. Unsharded only. */
    uint64_t force_survivors[CRAFTKV_NODES_MAX];
    size_t n_force_survivors;
    /* Prometheus metrics over HTTP (GET /metrics) on this address; "": none. */
    char listen_metrics[CRAFTKV_ADDR_MAX];
    /* Sharded (docs/design/sharding.md): shard groups 1..shard_groups and the shard
     * controller; 0: one group, unsharded. Fixed at the first start. shard_groups_initial
     * (1..shard_groups; 0: all) join the first configuration; the others wait for
     * CRAFT.SHARD JOIN. shard_replicas (1..members; 0: min(3, members)): how many members
     * host each group (sharding.md, "Placement"); with
     * fewer than the members, groups ride on different processes and more groups add
     * capacity. Every member must host a group: shard_groups * shard_replicas >= members.
     * Every member hosts the controller. */
    uint32_t shard_groups, shard_groups_initial, shard_replicas;
    /* Sharded: the largest payload of one hand-over entry, CRAFTKV_HANDOVER_BYTES_MIN to
     * _MAX (0: the largest); more goes in parts (sharding.md, "Hand-overs in parts"). Tests
     * set it small to move slots in parts; it must hold every live session of a group. */
    size_t shard_handover_bytes;
};
#define CRAFTKV_HANDOVER_BYTES_MIN (8u << 10)  /* the slot set alone is 2 KiB */
#define CRAFTKV_HANDOVER_BYTES_MAX ((32u << 20) - 4096u) /* with its command: one entry */
#define CRAFTKV_SHARD_GROUPS_MAX 16
#define CRAFTKV_SHARD_REPLICAS_MAX CRAFTKV_NODES_MAX /* the configuration lists 8 of them */

/* Parses "ID=HOST:PEERPORT/HOST:CLIENTPORT,..." into o->members. Returns 0, or -1 with
 * err naming the bad part. */
int craftkv_parse_cluster(const char *s, struct craftkv_opts *o, char *err, size_t cap);

struct craftkv_server;

/* Binds the client port, opens the store and the node, starts the threads. Returns 0, or
 * -1 with err naming the cause (occupied port, corrupt data dir, ...). */
int craftkv_server_start(const struct craftkv_opts *o, struct craftkv_server **out, char *err,
                         size_t cap);
/* Runs the client event loop on the calling thread until *stop becomes non-zero (set by a
 * signal handler of this thread: checked at least every 200 ms) or craftkv_server_stop. */
void craftkv_server_run(struct craftkv_server *s, volatile sig_atomic_t *stop);
/* Makes craftkv_server_run return soon. Thread-safe: for embedders stopping the loop from
 * another thread. */
void craftkv_server_stop(struct craftkv_server *s);
/* Stops every thread, the node and the store; frees s. */
void craftkv_server_destroy(struct craftkv_server *s);

/* The member-table keeper (server_admin.c), a thread craftkv_server_start starts with the
 * workers and craftkv_server_destroy joins with them: while this node leads, it records
 * every member of the configuration whose addresses it knows (--initial-cluster, or this
 * node's own) but the replicated member table lacks, and removes the records of nodes no
 * longer in the configuration. So the first leader completes the table for the initial
 * members, and a record lost to a leader change is repaired. Returns once the server is
 * stopping. arg: the struct craftkv_server. */
void *craftkv_admin_main(void *arg);

/* ---- a small blocking RESP client (admin forwarding, --join, the `local` supervisor) ---- */

/* Connects to "host:port" with send/receive timeouts and, if password is not empty, sends
 * AUTH with it; returns the fd or -1 (errno EACCES: the password was refused). */
int craftkv_client_connect(const char *addr, uint32_t timeout_ms, const char *password);
/* Sends one command and reads one complete reply into *reply (raw RESP bytes). Returns 0,
 * or -1 on an I/O error, a timeout or a malformed reply (close the fd then). */
int craftkv_client_call(int fd, size_t argc, const struct craft_resp_arg *argv,
                        struct craft_resp_buf *reply);
/* Length of the complete RESP2 reply at buf[0..len): > 0, 0 if incomplete, -1 if bad. */
long craftkv_reply_len(const char *buf, size_t len);

#endif
