/* The runtime's side of quiescence (the rules: quiesce.h): what a group has in flight
 * outside the core, the host messages sent through the host's transport, and the host's
 * count of quiesced groups. On the loop thread. */
#include "runtime/quiesce.h"
#include "runtime/rt.h"

static void send_msg(void *ctx, uint64_t to, const struct host_msg *m)
{
    struct craft_node *n = ctx;
    rt_host_send_msg(n->host, to, n->group, m);
}

static struct craft_quiesce_io io_of(struct craft_node *n)
{
    return (struct craft_quiesce_io){.ctx = n, .self = n->cfg.id, .send = send_msg};
}

/* Anything in flight in the runtime's part of the group. */
static bool busy_here(const struct craft_node *n)
{
    return n->futs_head != NULL || n->reads != NULL || n->lease_reads != NULL ||
           n->blocked_head != NULL || n->transfer_f != NULL || n->snapshot_running ||
           n->snapshot_waiters != NULL || n->n_promote > 0 ||
           n->disk_done_seq != n->disk_submitted_seq || n->failed_seen;
}

static void counted(struct craft_node *n, int delta)
{
    if (delta > 0) {
        atomic_fetch_add(&n->host->groups_quiesced, 1);
    } else if (delta < 0) {
        atomic_fetch_sub(&n->host->groups_quiesced, 1);
    }
}

void rt_quiesce_wake(struct craft_node *n, bool local, uint64_t now)
{
    struct craft_quiesce_io io = io_of(n);
    if (craft_quiesce_wake(&n->quiet, n->driver, &io, local, now)) {
        counted(n, -1);
    }
}

void rt_quiesce_check(struct craft_node *n, uint64_t now)
{
    if (!n->host->quiesce || atomic_load(&n->stopping)) {
        return;
    }
    struct craft_quiesce_io io = io_of(n);
    if (craft_quiesce_check(&n->quiet, n->driver, &io, busy_here(n), n->cfg.heartbeat_ms, now)) {
        counted(n, +1);
    }
}

void rt_quiesce_recv(struct craft_node *n, uint64_t from, const struct host_msg *m, uint64_t now)
{
    if (atomic_load(&n->stopping)) {
        return;
    }
    struct craft_quiesce_io io = io_of(n);
    counted(n, craft_quiesce_recv(&n->quiet, n->driver, &io, from, m, busy_here(n),
                                  n->host->quiesce, now));
}

bool rt_quiesce_msg_wakes(const struct craft_node *n, const uint8_t *bytes, size_t len)
{
    return craft_quiesce_msg_wakes(&n->quiet, bytes, len);
}

void rt_quiesce_settle(struct craft_node *n, uint64_t now)
{
    struct craft_quiesce_io io = io_of(n);
    if (craft_quiesce_settle(&n->quiet, n->driver, &io, now)) {
        counted(n, -1);
    }
}

void rt_quiesce_leave(struct craft_node *n)
{
    struct craft_quiesce_io io = io_of(n);
    if (craft_quiesce_leave(&n->quiet, n->driver, &io)) {
        counted(n, -1);
    }
}
