/* Quiescence in the simulator (opts.quiesce on a root): each replica runs the runtime's
 * rules (runtime/quiesce.h) over its driver, and each process pings the others every
 * heartbeat interval (the core's default), as the runtime's hosts do (runtime.md, "Hosts and groups"): a
 * process that hears nothing from another for an election timeout wakes the quiesced
 * groups whose leader is there, and one that sees another restart (a new incarnation in
 * its pings) wakes its quiesced groups. Pings are messages of the simulated network, so
 * they are lost, delayed and cut by partitions like any other. */
#include <stdlib.h>

#include "base/assert.h"
#include "base/trace.h"
#include "sim/clock.h"
#include "sim/sim_internal.h"

/* The core's default timing, which the simulator's nodes keep (but for the election
 * timeout opts may set): pings every heartbeat, a process unheard for an election timeout
 * is down, as the runtime host's defaults. */
static struct craft_core_config core_defaults(void)
{
    struct craft_core_config cfg;
    craft_core_config_default(&cfg, 1);
    return cfg;
}

static void send_msg(void *ctx, uint64_t to, const struct host_msg *m)
{
    struct sim_node *node = ctx;
    CRAFT_ASSERT(to >= 1 && to <= (uint64_t)node->c->n);
    uint8_t buf[HOST_MSG_BYTES_MAX];
    size_t len = host_msg_encode(m, buf);
    sim_net_send(node->c->net, node->i, (int)to - 1, node->c->group, buf, len);
}

static struct craft_quiesce_io io_of(struct sim_node *node)
{
    return (struct craft_quiesce_io){.ctx = node, .self = (uint64_t)node->i + 1,
                                     .send = send_msg};
}

static bool enabled(const struct sim_node *node)
{
    return node->c->root->opts.quiesce;
}

/* In flight outside the core: nothing the core does not see (it knows its log's
 * durability; the disk model's writes of batches with nothing to persist are no work). */
#define BUSY_HERE false

void sim_quiesce_wake(struct sim_node *node, bool tell_others)
{
    struct craft_quiesce_io io = io_of(node);
    if (craft_quiesce_wake(&node->quiet, node->d, &io, tell_others, sim_node_now(node))) {
        CRAFT_TRACE(CRAFT_T_ELECT, node->c->w->now, node->i + 1, 0, "group %llu wakes%s",
                    (unsigned long long)node->c->group, tell_others ? " (tells the others)" : "");
    }
}

void sim_node_work(struct sim_node *node)
{
    if (node->alive) {
        sim_quiesce_wake(node, true);
    }
}

void sim_quiesce_check(struct sim_node *node)
{
    if (!enabled(node) || !node->alive) {
        return;
    }
    struct craft_quiesce_io io = io_of(node);
    if (craft_quiesce_check(&node->quiet, node->d, &io, BUSY_HERE, core_defaults().heartbeat_ms,
                            sim_node_now(node))) {
        CRAFT_TRACE(CRAFT_T_ELECT, node->c->w->now, node->i + 1, 0, "group %llu quiesces",
                    (unsigned long long)node->c->group);
    }
}

/* A Raft message for the node: steps it (waking a quiesced replica for real work first). */
void sim_quiesce_receive(struct sim_node *node, int from, const uint8_t *bytes, size_t len)
{
    struct craft_quiesce_io io = io_of(node);
    uint64_t now = sim_node_now(node);
    if (host_msg_is(bytes, len)) {
        struct host_msg m;
        if (host_msg_decode(bytes, len, &m) && m.kind != HOST_MSG_PING) {
            int r = craft_quiesce_recv(&node->quiet, node->d, &io, (uint64_t)from + 1, &m,
                                       BUSY_HERE, enabled(node), now);
            if (r != 0) {
                CRAFT_TRACE(CRAFT_T_ELECT, node->c->w->now, node->i + 1, 0, "group %llu %s",
                            (unsigned long long)node->c->group,
                            r > 0 ? "quiesces (follower)" : "wakes (told)");
            }
        }
        return;
    }
    if (craft_quiesce_msg_wakes(&node->quiet, bytes, len)) {
        sim_quiesce_wake(node, false);
    }
    int err = craft_driver_receive(node->d, bytes, len, now);
    if (err != CRAFT_OK) {
        CRAFT_TRACE(CRAFT_T_NET, node->c->w->now, 0, 0, "n%d rejected a message from n%d: %s",
                    node->i + 1, from + 1, craft_strerror(err));
    }
    (void)craft_quiesce_settle(&node->quiet, node->d, &io, sim_node_now(node));
}

/* ---- the processes' pings ---- */

static size_t at(const struct sim_cluster *root, int i, int j)
{
    return (size_t)i * (size_t)root->n + (size_t)j;
}

void sim_liveness_heard(struct sim_cluster *root, int from, int to, const uint8_t *bytes,
                        size_t len, bool ping)
{
    if (root->heard_at == NULL) {
        return;
    }
    root->heard_at[at(root, to, from)] = root->w->now;
    struct host_msg m;
    if (ping && host_msg_decode(bytes, len, &m) && m.kind == HOST_MSG_PING) {
        root->incarnation_seen[at(root, to, from)] = m.term;
    }
}

/* Process i wakes its quiesced replicas: of groups led by process j (leader_only), or all
 * of them (j restarted). */
static void wake_for(struct sim_cluster *root, int i, int j, bool leader_only)
{
    for (int g = 0; g < root->n_groups; g++) {
        struct sim_node *node = &root->groups[g]->nodes[i];
        if (!node->alive || !node->quiet.quiesced) {
            continue;
        }
        struct craft_core_status st;
        craft_core_status(craft_driver_core(node->d), &st);
        if (!leader_only || st.leader == (uint64_t)j + 1) {
            sim_quiesce_wake(node, false);
            sim_node_after(node);
        }
    }
}

static void ping_event(void *ctx, void *arg, uint64_t a)
{
    (void)arg;
    (void)a;
    struct sim_cluster *root = ctx;
    uint64_t now = root->w->now;
    struct craft_core_config def = core_defaults();
    uint64_t timeout = root->opts.election_timeout_ms ? root->opts.election_timeout_ms
                                                      : def.election_timeout_ms;
    for (int i = 0; i < root->n; i++) {
        struct sim_node *self = &root->nodes[i];
        if (!self->alive) {
            continue;
        }
        uint8_t buf[HOST_MSG_BYTES_MAX];
        struct host_msg ping = {.kind = HOST_MSG_PING, .term = self->incarnation};
        size_t len = host_msg_encode(&ping, buf);
        for (int j = 0; j < root->n; j++) {
            if (j == i) {
                continue;
            }
            sim_net_send(root->net, i, j, HOST_MSG_GROUP, buf, len);
            size_t k = at(root, i, j);
            bool down = now - root->heard_at[k] > timeout;
            if (down && !root->peer_down[k]) {
                CRAFT_TRACE(CRAFT_T_FAULT, now, i + 1, 0, "process %d unheard: wakes its groups",
                            j + 1);
                wake_for(root, i, j, true);
            }
            root->peer_down[k] = down;
            if (root->incarnation_seen[k] != root->incarnation_acted[k]) {
                root->incarnation_acted[k] = root->incarnation_seen[k];
                wake_for(root, i, j, false);
            }
        }
    }
    sim_world_at(root->w, now + def.heartbeat_ms, ping_event, root, NULL, 0);
}

void sim_liveness_start(struct sim_cluster *root)
{
    size_t nn = (size_t)root->n * (size_t)root->n;
    root->heard_at = calloc(nn, sizeof *root->heard_at);
    root->incarnation_seen = calloc(nn, sizeof *root->incarnation_seen);
    root->incarnation_acted = calloc(nn, sizeof *root->incarnation_acted);
    root->peer_down = calloc(nn, sizeof *root->peer_down);
    CRAFT_ASSERT(root->heard_at != NULL && root->incarnation_seen != NULL &&
                 root->incarnation_acted != NULL && root->peer_down != NULL);
    sim_world_at(root->w, root->w->now + core_defaults().heartbeat_ms, ping_event, root, NULL, 0);
}

void sim_liveness_free(struct sim_cluster *root)
{
    free(root->heard_at);
    free(root->incarnation_seen);
    free(root->incarnation_acted);
    free(root->peer_down);
    root->heard_at = NULL;
}
