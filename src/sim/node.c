/* One simulated node: its driver and ports, and the MIT tester's appliers.
 *
 * The ports are the production driver's (src/runtime/driver.c), wired to the simulated
 * network and disk, so the simulator exercises the same glue as the runtime. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/trace.h"
#include "sim/clock.h"
#include "sim/kvreg.h"
#include "sim/real_disk.h"
#include "sim/reads.h"
#include "sim/sim_internal.h"

#define SNAPSHOT_INTERVAL 10 /* config.go SnapShotInterval */

static struct sim_node *node_of(void *ctx)
{
    return ctx;
}

const char *sim_fmt_cmd(char *buf, size_t cap, const void *cmd, size_t len)
{
    uint64_t v;
    if (sim_cmd_as_int(cmd, len, &v)) {
        snprintf(buf, cap, "%llu", (unsigned long long)v);
    } else {
        int shown = len > 24 ? 24 : (int)len;
        snprintf(buf, cap, "\"%.*s\"%s", shown, (const char *)cmd, len > 24 ? "..." : "");
    }
    return buf;
}

const uint8_t *sim_committed_data(const struct sim_cluster *c, uint64_t log_index,
                                  uint32_t *len)
{
    const struct sim_committed *g = sim_check_committed(&c->ch, log_index);
    if (g == NULL) {
        *len = 0;
        return NULL;
    }
    *len = g->len;
    return c->ch.data + g->off;
}

/* ---- snapshot blobs: the MIT blob is the snapshot index plus every command through it ----
 * Layout (little-endian): u64 index, u64 n_cmds, then per command u64 log index, u32 len,
 * bytes. */

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int k = 0; k < 8; k++) {
        p[k] = (uint8_t)(v >> (8 * k));
    }
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++) {
        p[k] = (uint8_t)(v >> (8 * k));
    }
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) {
        v |= (uint64_t)p[k] << (8 * k);
    }
    return v;
}

static void blob_reserve(struct sim_cluster *c, size_t need)
{
    if (need <= c->blob_cap) {
        return;
    }
    size_t cap = c->blob_cap ? c->blob_cap : 4096;
    while (cap < need) {
        cap *= 2;
    }
    uint8_t *p = realloc(c->blob, cap);
    CRAFT_ASSERT(p != NULL);
    c->blob = p;
    c->blob_cap = cap;
}

static size_t blob_build(struct sim_node *node, uint64_t index)
{
    struct sim_cluster *c = node->c;
    size_t len = 16;
    blob_reserve(c, len);
    put_u64(c->blob, index);
    put_u64(c->blob + 8, node->n_cmds);
    for (uint64_t k = 0; k < node->n_cmds; k++) {
        uint32_t dlen;
        const uint8_t *data = sim_committed_data(c, node->cmds[k], &dlen);
        CRAFT_ASSERT(data != NULL || dlen == 0);
        blob_reserve(c, len + 12 + dlen);
        put_u64(c->blob + len, node->cmds[k]);
        put_u32(c->blob + len + 8, dlen);
        if (dlen > 0) {
            memcpy(c->blob + len + 12, data, dlen);
        }
        len += 12 + dlen;
    }
    return len;
}

static void cmds_reserve(struct sim_node *node, size_t need)
{
    if (need <= node->cap_cmds) {
        return;
    }
    size_t cap = node->cap_cmds ? node->cap_cmds * 2 : 64;
    while (cap < need) {
        cap *= 2;
    }
    uint64_t *p = realloc(node->cmds, cap * sizeof *p);
    CRAFT_ASSERT(p != NULL);
    node->cmds = p;
    node->cap_cmds = cap;
}

/* The application's blob holds no command list: the command count through index comes
 * from the cluster's committed record (some node applied index before snapshotting). */
static void app_ingest(struct sim_node *node, const uint8_t *blob, size_t len, uint64_t index)
{
    const struct sim_app *app = node->c->opts.app;
    const struct sim_committed *g = sim_check_committed(&node->c->ch, index);
    if (g == NULL) {
        sim_fail(node->c, "server %d snapshot at %llu was never committed", node->i,
                 (unsigned long long)index);
    }
    app->ingest(app->ctx, node->i, blob, len, index);
    node->n_cmds = g->cmds_through;
    node->last_applied = index;
}

/* config.go ingestSnap: the node's applied map becomes the snapshot's commands. */
static void ingest(struct sim_node *node, const uint8_t *blob, size_t len, uint64_t index)
{
    struct sim_cluster *c = node->c;
    if (c->opts.kv) {
        sim_kv_node_ingest(node, blob, len, index);
        return;
    }
    if (c->opts.app != NULL) {
        app_ingest(node, blob, len, index);
        return;
    }
    if (len < 16) {
        sim_fail(c, "server %d snapshot decode error", node->i);
    }
    uint64_t k = get_u64(blob);
    uint64_t n = get_u64(blob + 8);
    if (k != index) {
        sim_fail(c, "server %d snapshot doesn't match m.SnapshotIndex", node->i);
    }
    cmds_reserve(node, (size_t)n);
    size_t off = 16;
    for (uint64_t j = 0; j < n; j++) {
        if (len - off < 12) {
            sim_fail(c, "server %d snapshot decode error", node->i);
        }
        uint64_t li = get_u64(blob + off);
        uint32_t dlen = get_u32(blob + off + 8);
        if (len - off - 12 < dlen) {
            sim_fail(c, "server %d snapshot decode error", node->i);
        }
        sim_check_ingest(node, li, blob + off + 12, dlen, j + 1);
        node->cmds[j] = li;
        off += 12 + dlen;
    }
    node->n_known = (size_t)n;
    node->n_cmds = n;
    node->last_applied = k;
}

/* ---- ports ---- */

static void port_send(void *ctx, uint64_t to, const uint8_t *bytes, size_t len)
{
    struct sim_node *node = node_of(ctx);
    CRAFT_ASSERT(to >= 1 && to <= (uint64_t)node->c->n);
    sim_check_send(node, bytes, len);
    sim_net_send(node->c->net, node->i, (int)to - 1, node->c->group, bytes, len);
}

static void complete_head(struct sim_node *node)
{
    struct sim_write *w = sim_disk_apply_head(&node->disk);
    sim_check_persisted(node, w);
    uint64_t seq = w->seq;
    CRAFT_TRACE(CRAFT_T_PERSIST, node->c->w->now, node->i + 1, 0,
                "durable seq %llu (%zu entries%s%s)", (unsigned long long)seq, w->n_entries,
                w->has_hs ? ", hard state" : "", w->snap_install ? ", snapshot" : "");
    sim_disk_release(&node->disk, w);
    if (node->rd != NULL) {
        sim_real_disk_sync(node); /* the deferred fdatasync, at the write's completion */
    }
    craft_driver_persisted(node->d, seq, sim_node_now(node));
}

static void disk_event(void *ctx, void *arg, uint64_t incarnation)
{
    (void)arg;
    struct sim_node *node = node_of(ctx);
    if (!node->alive || node->incarnation != incarnation) {
        return; /* the write died with the incarnation that issued it */
    }
    complete_head(node);
    sim_node_after(node);
}

/* A core that stopped (out of memory in a step) takes its node down, as a process that
 * exits; a supervisor restarts it from its disk a while later. Not from inside the driver's
 * call: a task right after it. */
struct restart_later {
    int i;
    uint64_t incarnation;
    bool connected; /* as the scenario had it: a partition it set stays */
};

static void failed_restart(struct sim_cluster *c, void *arg)
{
    struct restart_later *r = arg;
    if (!c->nodes[r->i].alive && c->nodes[r->i].incarnation == r->incarnation &&
        !c->nodes[r->i].gone) {
        sim_start(c, r->i);
        if (!c->nodes[r->i].alive) {
            /* out of memory again while it recovered: try again later */
            r->incarnation = c->nodes[r->i].incarnation;
            sim_task_at(c, sim_rand(c, 100, 1000), failed_restart, r);
            return;
        }
        if (r->connected) {
            sim_connect(c, r->i);
        }
    }
    free(r);
}

static void failed_crash(struct sim_cluster *c, void *arg)
{
    struct restart_later *r = arg;
    if (c->nodes[r->i].alive && c->nodes[r->i].incarnation == r->incarnation) {
        r->connected = sim_is_connected(c, r->i);
        sim_crash(c, r->i);
        r->incarnation = c->nodes[r->i].incarnation;
        sim_task_at(c, sim_rand(c, 100, 1000), failed_restart, r);
        return;
    }
    free(r);
}

static void port_failed(void *ctx, int err)
{
    struct sim_node *node = ctx;
    CRAFT_TRACE(CRAFT_T_FAULT, node->c->w->now, 0, 0, "n%d stopped: %s", node->i + 1,
                craft_strerror(err));
    node->c->root->n_cores_stopped++;
    struct restart_later *r = sim_xrealloc(NULL, sizeof *r);
    *r = (struct restart_later){.i = node->i, .incarnation = node->incarnation};
    sim_task_at(node->c, 0, failed_crash, r);
}

static void port_persist(void *ctx, const struct craft_batch *b)
{
    struct sim_node *node = node_of(ctx);
    struct sim_cluster *c = node->c;
    uint32_t max = c->opts.disk_latency_max_ms;
    uint64_t latency = max ? sim_world_rand(c->w, 0, (uint64_t)max + 1) : 0;
    if (node->rd != NULL) {
        sim_real_disk_persist(node, b);
    }
    struct sim_write *w = sim_disk_begin(&node->disk, b, c->w->now + latency);
    if (max == 0) {
        /* The MIT persister is synchronous. The driver defers this re-entrant call. */
        complete_head(node);
        return;
    }
    sim_world_at(c->w, w->complete_at, disk_event, node, NULL, node->incarnation);
}

static void take_snapshot(struct sim_node *node, const struct craft_entry *e)
{
    struct sim_cluster *c = node->c;
    size_t len;
    const uint8_t *blob = c->blob;
    if (c->opts.kv) {
        blob = sim_kv_node_snapshot(node, e->index, &len);
    } else if (c->opts.app != NULL) {
        blob = c->opts.app->snapshot(c->opts.app->ctx, node->i, e->index, &len);
    } else {
        len = blob_build(node, e->index);
        blob = c->blob; /* blob_build may move it */
    }
    /* The configuration as of the snapshot's index, from the CONF entries applied. */
    struct craft_snapshot_meta meta = {.index = e->index, .term = e->term,
                                       .conf = node->applied_conf};
    sim_disk_save_snapshot(&node->disk, &meta, blob, len);
    if (node->rd != NULL) {
        sim_real_disk_snapshot(node, &meta, blob, len);
    }
    CRAFT_TRACE(CRAFT_T_SNAP, c->w->now, node->i + 1, e->term,
                "tester snapshot through %llu (%llu commands, %zu bytes)",
                (unsigned long long)e->index, (unsigned long long)node->n_cmds, len);
    craft_driver_snapshot_taken(node->d, e->index, 0);
}

/* config.go applier / applierSnap. */
static void port_apply(void *ctx, const struct craft_entry *entries, size_t n)
{
    struct sim_node *node = node_of(ctx);
    struct sim_cluster *c = node->c;
    for (size_t k = 0; k < n; k++) {
        const struct craft_entry *e = &entries[k];
        if (e->index != node->last_applied + 1) {
            sim_fail(c, "apply error: server %d apply out of order, expected index %llu, got %llu",
                     node->i, (unsigned long long)node->last_applied + 1,
                     (unsigned long long)e->index);
        }
        bool is_cmd = e->type == CRAFT_ENTRY_NORMAL;
        uint64_t cmds_through = node->n_cmds + (is_cmd ? 1 : 0);
        sim_check_apply(node, e, cmds_through);
        node->last_applied = e->index;
        if (c->opts.kv) {
            sim_kv_node_apply(node, e);
        }
        if (c->opts.app != NULL) {
            c->opts.app->apply(c->opts.app->ctx, node->i, e);
        }
        if (!is_cmd) {
            if (e->type == CRAFT_ENTRY_CONF) {
                sim_member_applied(node, e);
            }
            continue; /* the MIT API hides no-ops and configurations */
        }
        uint64_t ci = cmds_through;
        node->n_cmds = ci;
        cmds_reserve(node, (size_t)ci);
        node->cmds[ci - 1] = e->index;
        if (ci > node->n_known) {
            node->n_known = (size_t)ci;
        }
        if (CRAFT_TRACE_ON(CRAFT_T_APPLY)) {
            char buf[64];
            CRAFT_TRACE(CRAFT_T_APPLY, c->w->now, node->i + 1, e->term,
                        "tester applied command %llu = %s at index %llu",
                        (unsigned long long)ci, sim_fmt_cmd(buf, sizeof buf, e->data, e->len),
                        (unsigned long long)e->index);
        }
        if (c->opts.snapshot && (ci + 1) % SNAPSHOT_INTERVAL == 0) {
            take_snapshot(node, e);
        } else if (c->opts.app != NULL &&
                   c->opts.app->want_snapshot(c->opts.app->ctx, node->i,
                                              sim_disk_log_size(&node->disk))) {
            take_snapshot(node, e);
        }
    }
}

static void port_restore(void *ctx, const struct craft_snapshot_meta *meta)
{
    struct sim_node *node = node_of(ctx);
    if (node->disk.snap.index != meta->index) {
        sim_fail(node->c, "server %d restore of snapshot %llu but disk holds %llu", node->i,
                 (unsigned long long)meta->index, (unsigned long long)node->disk.snap.index);
    }
    ingest(node, node->disk.snap_data, node->disk.snap_len, meta->index);
    node->applied_conf = meta->conf;
    CRAFT_TRACE(CRAFT_T_SNAP, node->c->w->now, node->i + 1, meta->term,
                "tester ingested snapshot through %llu", (unsigned long long)meta->index);
}

static int port_snapshot_read(void *ctx, const struct craft_snapshot_meta *meta,
                              uint64_t offset, uint8_t *buf, uint32_t cap, uint32_t *len,
                              bool *last)
{
    struct sim_node *node = node_of(ctx);
    const struct sim_disk *disk = &node->disk;
    if (disk->snap.index == 0 || disk->snap.index != meta->index ||
        disk->snap.term != meta->term || offset > disk->snap_len) {
        return CRAFT_ENOTFOUND;
    }
    size_t left = disk->snap_len - (size_t)offset;
    size_t n = left < cap ? left : cap;
    if (n > 0) {
        memcpy(buf, disk->snap_data + offset, n);
    }
    *len = (uint32_t)n;
    *last = n == left;
    return CRAFT_OK;
}

/* ---- life cycle ---- */

void sim_node_init(struct sim_cluster *c, int i)
{
    struct sim_node *node = &c->nodes[i];
    *node = (struct sim_node){.c = c, .i = i, .next_timeout = UINT64_MAX};
    node->drift_ppm = sim_clock_draw_drift(sim_seed(), i, c->opts.clock_drift_ppm_max);
    sim_disk_init(&node->disk);
    if (c->opts.real_storage) {
        sim_real_disk_init(node);
    }
}

void sim_node_free(struct sim_node *node)
{
    if (node->d != NULL) {
        craft_driver_destroy(node->d);
        node->d = NULL;
    }
    sim_disk_free(&node->disk);
    sim_real_disk_free(node);
    free(node->cmds);
    node->cmds = NULL;
    sim_kv_node_free(node);
}

void sim_node_crash(struct sim_cluster *c, int i)
{
    struct sim_node *node = &c->nodes[i];
    if (!node->alive) {
        return;
    }
    CRAFT_TRACE(CRAFT_T_FAULT, c->w->now, 0, 0, "crash n%d (%zu unsynced writes lost)", i + 1,
                node->disk.n_pending);
    craft_driver_destroy(node->d);
    node->d = NULL;
    sim_disk_crash(&node->disk);
    if (node->rd != NULL) {
        sim_real_disk_crash(node);
    }
    node->alive = false;
    node->incarnation++;
    node->next_timeout = UINT64_MAX;
    /* The process's network goes down with its last replica: a replica crashed alone in a
     * process that stays up only misses its own group's messages (sim_node_deliver). */
    for (int g = 0; g < c->root->n_groups; g++) {
        if (c->root->groups[g]->nodes[i].alive) {
            return;
        }
    }
    sim_net_node_down(c->net, i);
}

void sim_node_start(struct sim_cluster *c, int i)
{
    struct sim_node *node = &c->nodes[i];
    CRAFT_ASSERT(!node->alive && !node->gone);
    node->incarnation++;
    if (node->rd != NULL) {
        sim_real_disk_open(node); /* node->disk becomes what the stores recovered */
    }
    const struct sim_disk *disk = &node->disk;

    struct craft_core_config cfg;
    craft_core_config_default(&cfg, (uint64_t)i + 1);
    cfg.seed = sim_mix64(sim_seed() ^ sim_mix64(((uint64_t)i + 1) << 32 ^ node->incarnation));
    if (c->group != 0) {
        cfg.seed = sim_mix64(cfg.seed ^ c->group); /* groups of a process draw their own */
    }
    if (c->opts.election_timeout_ms != 0) {
        cfg.election_timeout_ms = c->opts.election_timeout_ms;
    }
    if (c->opts.snapshot_chunk_bytes != 0) {
        cfg.snapshot_chunk_bytes_max = c->opts.snapshot_chunk_bytes;
    }
    if (c->opts.clock_drift_bound_ms != 0) {
        cfg.clock_drift_bound_ms = c->opts.clock_drift_bound_ms;
    }

    struct craft_core_restore restore = {
        .hs = disk->hs,
        .snap = disk->snap,
        .entries = disk->log,
        .n_entries = disk->n_log,
    };
    sim_member_bootstrap_conf(c, i, &restore.bootstrap_conf);

    /* config.go start1: lastApplied restarts at 0, or at the snapshot it ingests. */
    node->last_applied = 0;
    node->n_cmds = 0;
    /* Entries before the first CONF entry are under the cluster's bootstrap configuration,
     * also for a node that joined later (its own bootstrap is empty). */
    node->applied_conf = disk->snap.index > 0 ? disk->snap.conf : c->conf;
    if (c->opts.kv) {
        sim_kv_node_start(node);
    }
    if (c->opts.app != NULL) {
        c->opts.app->start(c->opts.app->ctx, i);
    }
    if (disk->snap.index > 0) {
        ingest(node, disk->snap_data, disk->snap_len, disk->snap.index);
    }
    node->last_commit = 0;
    node->leader_term_checked = 0;

    struct craft_driver_ports ports = {
        .ctx = node,
        .send = port_send,
        .persist = port_persist,
        .apply = port_apply,
        .restore = port_restore,
        .snapshot_read = port_snapshot_read,
        .caught_up = sim_member_port_caught_up,
        .failed = port_failed,
        .read = c->opts.kv ? sim_reads_port_read : NULL,
    };
    node->d = craft_driver_create(&cfg, &restore, &ports, sim_node_now(node));
    if (node->d == NULL && c->root->alloc_fail_ppm != 0 && !c->opts.kv && c->opts.app == NULL &&
        node->rd == NULL) {
        /* Out of memory while recovering (sim_set_alloc_failures): the process exits at
         * start, and stays down until started again (the supervisor's task retries; the
         * run's end restarts every node with memory to spare). */
        CRAFT_TRACE(CRAFT_T_FAULT, c->w->now, 0, 0, "start n%d: out of memory", i + 1);
        c->root->n_cores_stopped++;
        return;
    }
    CRAFT_ASSERT(node->d != NULL);
    node->quiet = (struct craft_quiesce){0};
    node->alive = true;
    if (!sim_net_is_up(c->net, i)) {
        sim_net_node_up(c->net, i); /* the process's first replica up */
    }
    CRAFT_TRACE(CRAFT_T_FAULT, c->w->now, 0, 0,
                "start n%d: term %llu vote %llu, snapshot %llu, %zu log entries", i + 1,
                (unsigned long long)disk->hs.term, (unsigned long long)disk->hs.vote,
                (unsigned long long)disk->snap.index, disk->n_log);
    sim_node_after(node);
}

void sim_node_tick(struct sim_node *node)
{
    CRAFT_ASSERT(!node->quiet.quiesced);
    craft_driver_tick(node->d, sim_node_now(node));
    sim_node_after(node);
}

void sim_node_deliver(void *ctx, int from, int to, uint64_t group, const uint8_t *bytes,
                      size_t len)
{
    struct sim_cluster *root = ctx;
    sim_liveness_heard(root, from, to, bytes, len, group == HOST_MSG_GROUP);
    if (group == HOST_MSG_GROUP) {
        return; /* a process's ping */
    }
    CRAFT_ASSERT(root->root == root && group < (uint64_t)root->n_groups);
    struct sim_cluster *c = root->groups[group];
    struct sim_node *node = &c->nodes[to];
    /* The network delivers only to a process that is up, and a process's replicas go down
     * and come up together (sim_proc_crash, sim_proc_start); a replica crashed on its own
     * in a process that stays up loses the message. */
    if (!node->alive) {
        CRAFT_ASSERT(group != 0 || root->n_groups > 1);
        return;
    }
    sim_quiesce_receive(node, from, bytes, len);
    sim_node_after(node);
}

void sim_node_after(struct sim_node *node)
{
    if (!node->alive) {
        return;
    }
    uint64_t now = node->c->w->now;
    sim_quiesce_check(node);
    if (node->quiet.quiesced) {
        node->next_timeout = UINT64_MAX; /* nothing in flight: only work wakes it */
        sim_check_status(node);
        return;
    }
    /* The driver's timers are in node time: wake at the first virtual time its clock
     * reaches them. */
    uint64_t t = sim_clock_virtual_time(node->drift_ppm, craft_driver_next_timeout(node->d));
    /* A timer that is already due would fire again at the same instant forever. */
    node->next_timeout = t > now ? t : now + 1;
    sim_check_status(node);
}
