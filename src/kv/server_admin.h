/* craftkv: cluster administration commands and the member-table keeper (server_admin.c;
 * design: docs/design/craftkv.md, "Commands").
 *
 * The commands run on a worker thread (CRAFTKV_ADMIN entries of the command table): each
 * may block on craft futures until deadline (a CLOCK_MONOTONIC instant in ms) and writes
 * its RESP reply into t->out.
 *
 *   RAFT.INFO                     this node's view: role, term, leader, indexes, members
 *   RAFT.ADDNODE id peer client [VOTER|LEARNER]
 *   RAFT.REMOVENODE id
 *   RAFT.TRANSFER [id]
 *   RAFT.SNAPSHOT                 a snapshot of this node now; replies its index
 *   CRAFT.ADMIN cmd args...       runs ADDNODE/REMOVENODE/TRANSFER here if this node leads,
 *                                 else -CRAFTNOTLEADER: how followers forward them
 *
 * ADDNODE, REMOVENODE and TRANSFER change the cluster: a follower forwards them to the
 * leader's client address as CRAFT.ADMIN and relays the reply. */
#ifndef CRAFT_KV_SERVER_ADMIN_H
#define CRAFT_KV_SERVER_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "craft.h"
#include "kv/kv_sm.h"
#include "kv/resp.h"

struct craftkv_server;
struct craftkv_task;

/* A member of the current configuration as the admin and CLUSTER commands show it. */
struct craftkv_member_view {
    struct craft_kv_member m; /* addresses: the replicated record, else this node's settings,
                                 else empty */
    bool voter;               /* a voter of either half of a joint configuration */
};
#define CRAFTKV_VIEW_MEMBERS_MAX (4 * CRAFT_CONF_NODES_MAX)

/* Every node of st's configuration (from craft_stats), ascending id, once each, into
 * out[0..*n) (room for CRAFTKV_VIEW_MEMBERS_MAX). Reads the state machine's member table;
 * a worker thread. CRAFT_ENOMEM. */
int craftkv_members_view(struct craftkv_server *s, const struct craft_stats *st,
                         struct craftkv_member_view *out, size_t *n);

/* Commands that run on a group's leader (server_admin.c forwards them there). check
 * validates the arguments (an error reply and false if bad); lead runs the command on this
 * node, the leader: 0 with the reply in out, or 1 if this node does not lead (any more)
 * and the command should start over on the leader (out empty). */
typedef bool (*craftkv_admin_check_fn)(size_t argc, const struct craft_resp_arg *argv,
                                       struct craft_resp_buf *out);
typedef int (*craftkv_admin_lead_fn)(struct craftkv_server *s, size_t argc,
                                     const struct craft_resp_arg *argv, uint64_t deadline,
                                     struct craft_resp_buf *out);

/* CRAFT.SHARD JOIN gid... | LEAVE gid... | MOVE first last gid (server_shard_admin.c): a
 * change of the shard configuration, run on the controller's leader; the reply comes once
 * every group hosted here reached the new configuration and settled (or TRYAGAIN when
 * that takes longer than the wait: the change stands and goes on). */
#define CRAFTKV_SHARD_WAIT_MS 60000 /* then TRYAGAIN: the migration goes on regardless */
bool craftkv_shard_check(size_t argc, const struct craft_resp_arg *argv,
                         struct craft_resp_buf *out);
int craftkv_shard_lead(struct craftkv_server *s, size_t argc, const struct craft_resp_arg *argv,
                       uint64_t deadline, struct craft_resp_buf *out);
/* CRAFT.SHARD INFO: the latest configuration and each group's slots, leader and
 * migration state, as this process sees them. */
void craftkv_shard_info(struct craftkv_server *s, struct craft_resp_buf *out);
void craftkv_a_shard(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline);

void craftkv_a_info(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline);
void craftkv_a_addnode(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline);
void craftkv_a_removenode(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline);
void craftkv_a_transfer(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline);
void craftkv_a_snapshot(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline);
void craftkv_a_admin(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline);
/* CLUSTER SLOTS | SHARDS | NODES | INFO | MYID | MYSHARDID | KEYSLOT key |
 * COUNTKEYSINSLOT slot | GETKEYSINSLOT slot count | HELP: server_cluster.c. */
void craftkv_a_cluster(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline);

/* The member-table keeper thread, craftkv_admin_main, is declared in server.h (the
 * server's startup starts it). */

#endif
