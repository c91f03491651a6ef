/* craftkv sharded: the controller group, the shard groups on one host, and the driver that
 * moves every shard group led here through the controller's configurations
 * (docs/design/sharding.md, "Shard groups in craftkv").
 *
 * A sharded server hosts, on one craft_host (one raft loop, one transport, one shared log
 * and fsync for every group), the shard controller as group 0 (every member a replica) and
 * each shard group placed here as group <gid> (opts.shard_replicas members host each:
 * craftkv_shard_hosts). The driver thread, every DRIVE_MS:
 *   - publishes the latest configuration its controller replica applied, for routing;
 *   - on the controller's leader, while no configuration exists, proposes the Join of the
 *     groups the cluster starts with (the operator's later Join, Leave and Move come
 *     through CRAFT.SHARD, server_shard_admin.c);
 *   - for each shard group it leads: settled, it proposes the next configuration; PULLING,
 *     it exports the slots from a replica of the previous owner (any replica that applied
 *     the configuration holds the frozen copy) and proposes INSTALL; GIVING, once a replica
 *     of the next owner shows the slots installed, it proposes DELETE; NOTIFYING, once a
 *     replica of the previous owner shows them deleted, CONFIRM. The replica read is this
 *     process's own when it hosts that group, else another process's, asked over its
 *     client port (server_shard_peer.c);
 *   - every HINT_MS, asks a host of each group placed elsewhere who leads it (redirects
 *     and the cluster views name that leader).
 * Every fact read from another group's replica is one its log committed, so a lagging
 * replica only delays a step, never makes a wrong one; every step is idempotent at the
 * state machine, so a step proposed twice (a leader change) changes nothing the second
 * time. */
#include <errno.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/assert.h"
#include "kv/kv_store.h"
#include "kv/server_internal.h"
#include "shard/ctrler.h"
#include "shard/view.h"

/* How often the driver looks at the groups it leads. */
#define DRIVE_MS 50
/* How long the driver waits for one of its proposals to commit. */
#define PROPOSE_WAIT_MS 2000
/* How often the driver learns the leaders of the groups placed elsewhere. */
#define HINT_MS 1000

/* ---- routing: the latest configuration, published for the loop ---- */

/* Publishes cfg for routing if it is newer than what is published. From the controller's
 * apply (at once) and the driver (after a restore, which applies nothing). */
static void publish(struct craftkv_server *s, const struct craft_shard_config *cfg)
{
    pthread_mutex_lock(&s->route_mu);
    const struct craftkv_route *cur = craftkv_route_now(s);
    struct craftkv_route *r = cur && cur->cfg.num >= cfg->num ? NULL : calloc(1, sizeof *r);
    if (!r) {
        pthread_mutex_unlock(&s->route_mu); /* not newer; or no memory: the driver retries */
        return;
    }
    r->cfg = *cfg;
    for (uint32_t k = 0; k < CRAFT_SHARD_GROUPS_MAX; k++) {
        struct craftkv_group *g = k < cfg->n_groups ? craftkv_group_of(s, cfg->groups[k].gid) : NULL;
        r->local[k] = g ? (int8_t)g->index : -1;
    }
    /* Readers hold no reference: every published route lives until the server goes
     * (configurations change a few times in a cluster's life; each is about 50 KiB). */
    r->older = (struct craftkv_route *)craftkv_route_now(s);
    atomic_store_explicit(&s->route, r, memory_order_release);
    pthread_mutex_unlock(&s->route_mu);
}

/* ---- the controller as a craft state machine ---- */

/* The controller replica of this process: applied on the group's apply thread, read by the
 * driver and the admin commands, hence the lock (held for memory work only). */
struct craftkv_ctrler {
    pthread_mutex_t mu;
    struct craft_shard_ctrler *c;
    struct craftkv_server *srv; /* routes by its configurations */
};

/* A proposer's answer (the future's result). */
struct craftkv_ctrler_answer {
    int status;
    uint64_t num;
    char err[CRAFT_SHARD_CTRLER_ERR_BYTES];
};

static int ctrler_apply(void *ctx, const struct craft_command *cmds, size_t n, void **results)
{
    struct craftkv_ctrler *k = ctx;
    int rc = CRAFT_OK;
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < n && rc == CRAFT_OK; i++) {
        struct craft_shard_ctrler_result res;
        rc = craft_shard_ctrler_apply(k->c, cmds[i].index, cmds[i].data, cmds[i].len, &res);
        if (rc == CRAFT_EMALFORMED || rc == CRAFT_EVERSION) {
            /* Skipped the same way on every replica; the proposer learns why. */
            res = (struct craft_shard_ctrler_result){.status = rc};
            snprintf(res.err, sizeof res.err, "malformed request: %s", craft_strerror(rc));
            rc = CRAFT_OK;
        }
        if (rc != CRAFT_OK)
            break; /* no memory: the node stops; a restart rebuilds it from snapshot and log */
        struct craftkv_ctrler_answer *a = malloc(sizeof *a);
        if (a) {
            a->status = res.status;
            a->num = res.num;
            snprintf(a->err, sizeof a->err, "%s", res.err);
        }
        results[i] = a; /* NULL: the proposer sees no result and retries */
    }
    /* A new configuration routes this server's commands from now on, not from the
     * driver's next pass: the groups may apply it before that. */
    const struct craft_shard_config *latest = craft_shard_ctrler_latest(k->c);
    const struct craftkv_route *cur = craftkv_route_now(k->srv);
    if (!cur || cur->cfg.num < latest->num)
        publish(k->srv, latest);
    pthread_mutex_unlock(&k->mu);
    if (rc != CRAFT_OK)
        fprintf(stderr, "craftkv: the shard controller failed to apply: %s\n", craft_strerror(rc));
    return rc;
}

struct ctrler_snap {
    uint8_t *p;
    size_t len;
};

static int ctrler_snapshot(void *ctx, void **snap)
{
    struct craftkv_ctrler *k = ctx;
    struct ctrler_snap *s = calloc(1, sizeof *s);
    if (!s)
        return CRAFT_ENOMEM;
    pthread_mutex_lock(&k->mu);
    int rc = craft_shard_ctrler_snapshot(k->c, &s->p, &s->len);
    pthread_mutex_unlock(&k->mu);
    if (rc != CRAFT_OK) {
        free(s);
        return rc;
    }
    *snap = s;
    return CRAFT_OK;
}

static int ctrler_snapshot_write(void *ctx, void *snap, struct craft_sink *sink)
{
    (void)ctx;
    struct ctrler_snap *s = snap;
    return craft_sink_write(sink, s->p, s->len);
}

static void ctrler_snapshot_release(void *ctx, void *snap)
{
    (void)ctx;
    struct ctrler_snap *s = snap;
    free(s->p);
    free(s);
}

/* The controller's snapshot is small (its history, a few hundred bytes per configuration):
 * read whole, then handed to the controller, which checks every field. */
#define CTRLER_SNAPSHOT_MAX (256u << 20)

static int ctrler_restore(void *ctx, struct craft_source *src)
{
    struct craftkv_ctrler *k = ctx;
    uint8_t *p = NULL;
    size_t len = 0, cap = 0;
    int rc = CRAFT_OK;
    for (;;) {
        if (cap - len < 65536) {
            size_t ncap = cap ? cap * 2 : 65536;
            uint8_t *q = ncap <= CTRLER_SNAPSHOT_MAX ? realloc(p, ncap) : NULL;
            if (!q) {
                rc = ncap <= CTRLER_SNAPSHOT_MAX ? CRAFT_ENOMEM : CRAFT_ECORRUPT;
                break;
            }
            p = q;
            cap = ncap;
        }
        size_t n = 0;
        rc = craft_source_read(src, p + len, cap - len, &n);
        if (rc != CRAFT_OK || n == 0)
            break;
        len += n;
    }
    if (rc == CRAFT_OK && len < 9)
        rc = CRAFT_ECORRUPT;
    if (rc == CRAFT_OK) {
        /* The snapshot covers the log through its own last applied index (u64 after the
         * version byte: ctrler.h); the next entry applied comes after it. */
        uint64_t index = 0;
        for (int i = 7; i >= 0; i--)
            index = index << 8 | p[1 + i];
        pthread_mutex_lock(&k->mu);
        rc = craft_shard_ctrler_restore(k->c, p, len, index);
        pthread_mutex_unlock(&k->mu);
    }
    free(p);
    return rc;
}

static void ctrler_result_free(void *ctx, void *result)
{
    (void)ctx;
    free(result);
}

/* Configuration num of this replica's history into *out: CRAFT_OK, CRAFT_ENOTFOUND (not
 * applied here yet), CRAFT_ECORRUPT. */
static int ctrler_config(struct craftkv_ctrler *k, uint64_t num, struct craft_shard_config *out)
{
    pthread_mutex_lock(&k->mu);
    const uint8_t *p;
    size_t len;
    int rc = craft_shard_ctrler_config(k->c, num, &p, &len);
    if (rc == CRAFT_OK)
        rc = craft_shard_config_decode(p, len, out) == CRAFT_OK ? CRAFT_OK : CRAFT_ECORRUPT;
    pthread_mutex_unlock(&k->mu);
    return rc;
}

static uint64_t ctrler_latest_num(struct craftkv_ctrler *k)
{
    pthread_mutex_lock(&k->mu);
    uint64_t num = craft_shard_ctrler_latest(k->c)->num;
    pthread_mutex_unlock(&k->mu);
    return num;
}

/* ---- proposals (the driver's and the admin commands': they block) ---- */

/* Proposes p[0..len) on node and waits for it to apply: CRAFT_OK with *result (the state
 * machine's, may be NULL; the caller releases *fut), or the proposal's error. */
static int propose_wait(struct craft_node *node, const uint8_t *p, size_t len,
                        struct craft_future **fut, void **result)
{
    *result = NULL;
    *fut = craft_apply(node, p, (uint32_t)len, PROPOSE_WAIT_MS);
    if (!*fut)
        return CRAFT_ENOMEM;
    int rc = craft_future_wait(*fut, PROPOSE_WAIT_MS);
    *result = rc == CRAFT_OK ? craft_future_result(*fut) : NULL;
    return rc;
}

int craftkv_ctrler_request(struct craftkv_server *s, const struct craft_shard_request *req,
                           int *status, uint64_t *num, char *err, size_t cap)
{
    size_t size = CRAFT_SHARD_REQUEST_BYTES_MAX;
    uint8_t *buf = malloc(size);
    if (!buf)
        return CRAFT_ENOMEM;
    size_t len;
    int rc = craft_shard_request_encode(req, buf, size, &len);
    if (rc == CRAFT_OK) {
        struct craft_future *f;
        void *result;
        rc = propose_wait(s->ctrl_node, buf, len, &f, &result);
        struct craftkv_ctrler_answer *a = result;
        if (rc == CRAFT_OK && !a)
            rc = CRAFT_ENOMEM;
        if (rc == CRAFT_OK) {
            *status = a->status;
            *num = a->num;
            snprintf(err, cap, "%s", a->err);
        }
        free(a); /* ours once taken from the future */
        if (f)
            craft_future_release(f);
    }
    free(buf);
    return rc;
}

int craftkv_ctrler_change(struct craftkv_server *s, struct craft_shard_request *req, uint64_t *num,
                          char *err, size_t cap)
{
    /* A session per change: registering costs one entry, and an attempt whose outcome is
     * unknown (a timeout) is sent again with the same session and seq, which the
     * controller answers from the session rather than applying twice (ctrler.h). */
    struct craft_shard_request reg = {.op = CRAFT_SHARD_OP_REGISTER};
    int status;
    uint64_t client;
    int rc = craftkv_ctrler_request(s, &reg, &status, &client, err, cap);
    if (rc != CRAFT_OK)
        return rc; /* nothing of the change was proposed */
    req->client = client;
    req->seq = 1;
    bool doubt = false;
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = craftkv_ctrler_request(s, req, &status, num, err, cap);
        if (rc == CRAFT_OK)
            return status;
        if (rc != CRAFT_ETIMEOUT && rc != CRAFT_ENOMEM)
            break;
        doubt |= rc == CRAFT_ETIMEOUT;
    }
    /* Lost leadership (or stopping) after an attempt in doubt: the change may have been
     * applied, so the caller must not start it over as a new one. */
    return doubt ? CRAFT_ETIMEOUT : rc;
}

/* ---- the driver ---- */

struct driver {
    struct craftkv_server *s;
    struct craft_shard_view *view, *peer;
    struct craftkv_peer_state *pstate; /* a peer group's replica, read here or asked */
    struct craftkv_peers *peers;       /* connections to the other processes */
    struct craft_shard_config *cfg;
    uint32_t turn; /* which peer group goes first: a peer that lags does not hold up others */
    /* Per group and peer group (g->index * PEERS + peer's gid): how far a hand-over
     * in parts went (sharding.md, "Hand-overs in parts"): its configuration, its slots
     * and the last key installed; gen changes when it starts over. Only this driver's
     * memory: another process's driver that takes over starts from the first key (an
     * install of keys already there changes nothing). */
    struct pull {
        uint64_t num, gen;
        struct craft_slot_set slots;
        struct craft_kv_export_cursor cur;
    } *pulls;
    /* Per group (by index): a step proposed and not applied within PROPOSE_WAIT_MS, and
     * what its being applied means (step_applied); the group proposes nothing else until
     * it completes (an INSTALL is up to CRAFTKV_SHARD_ENTRY_MAX bytes: one copy in the
     * log, not one per pass). */
    struct step *pending;
};

#define PEERS (CRAFTKV_SHARD_GROUPS_MAX + 1u) /* pulls per group, by the peer's gid */

/* What a step's being applied means beyond the group's own state: an install's payload
 * bytes (INFO), and for a part the cursor its pull goes on from. */
struct step {
    struct craft_future *fut; /* pending: the proposal */
    size_t install_bytes;     /* 0: not an install */
    struct pull *pull;        /* a part's, with the gen it was exported at */
    uint64_t pull_gen;
    struct craft_kv_export_cursor next;
};

static void step_applied(struct driver *d, const struct step *st)
{
    if (st->install_bytes > 0) {
        atomic_fetch_add(&d->s->n_handover_entries, 1);
        atomic_fetch_add(&d->s->n_handover_bytes, st->install_bytes);
    }
    if (st->pull && st->pull->gen == st->pull_gen)
        st->pull->cur = st->next; /* the part went in: the next one goes on from there */
}

static bool leads(struct craft_node *node)
{
    return craft_state(node) == CRAFT_LEADER;
}

int craftkv_shard_read_view(struct craftkv_group *g, struct craft_shard_view *v)
{
    struct craft_kv_read *r;
    int rc = craft_kv_read_begin(g->sm, &r);
    if (rc != CRAFT_OK)
        return rc;
    rc = craft_kv_read_view(r, v);
    craft_kv_read_end(r);
    return rc;
}

/* Proposes one shard step in g and waits up to PROPOSE_WAIT_MS; once it is applied without
 * a refusal, now or later (step_idle), `after` is (step_applied; NULL: nothing more). */
static void propose_step(struct driver *d, struct craftkv_group *g, uint8_t op, uint64_t num,
                         const uint8_t *blob, size_t len, const struct step *after)
{
    struct craft_kv_cmd c = {.op = op, .now_ms = craftkv_now_ms(), .shard_num = num,
                             .blob = {blob, (uint32_t)len}};
    size_t size = craft_kv_cmd_size(&c);
    uint8_t *buf = size ? malloc(size) : NULL;
    size_t n;
    if (buf && craft_kv_cmd_encode(&c, buf, size, &n) == CRAFT_OK) {
        struct craft_future *f;
        void *result;
        int rc = propose_wait(g->node, buf, n, &f, &result);
        struct craft_kv_result *res = result;
        if (rc == CRAFT_OK && res && res->type == CRAFT_KV_RES_ERR)
            fprintf(stderr, "craftkv: group %" PRIu64 " refused a shard step (op %u, "
                            "configuration %" PRIu64 "): %.*s\n",
                    g->gid, (unsigned)op, num, (int)res->len, (const char *)res->data);
        if (rc == CRAFT_OK && res && res->type != CRAFT_KV_RES_ERR && after)
            step_applied(d, after);
        if (res)
            craft_kv_result_free(res); /* ours once taken from the future */
        if (f && rc == CRAFT_ETIMEOUT && !craft_future_done(f)) {
            /* still on its way: wait for it, not a copy */
            struct step *st = &d->pending[g->index];
            if (after)
                *st = *after;
            else
                *st = (struct step){0};
            st->fut = f;
        } else if (f) {
            craft_future_release(f);
        }
    }
    free(buf);
}

/* Whether group g has no step of ours in flight (releasing the one that completed). */
static bool step_idle(struct driver *d, struct craftkv_group *g)
{
    struct step *st = &d->pending[g->index];
    struct craft_future **f = &st->fut;
    if (*f && !craft_future_done(*f))
        return false;
    if (*f) {
        struct craft_kv_result *res =
            craft_future_wait(*f, 0) == CRAFT_OK ? craft_future_result(*f) : NULL;
        if (res && res->type != CRAFT_KV_RES_ERR)
            step_applied(d, st);
        if (res)
            craft_kv_result_free(res);
        craft_future_release(*f);
        *st = (struct step){0};
    }
    return true;
}

/* The peers of g's slots in state st (their owner in the previous configuration, or in the
 * current one for GIVING), one per call in turn, with the slots of that peer. */
static bool next_peer(struct driver *d, uint8_t st, uint64_t *gid, struct craft_slot_set *slots)
{
    const struct craft_shard_view *v = d->view;
    uint64_t peers[CRAFT_SHARD_GROUPS_MAX];
    size_t n = 0;
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        if (v->state[s] != st)
            continue;
        const struct craft_shard_config *c = st == CRAFT_SLOT_GIVING ? &v->cur : &v->prev;
        uint64_t g = craft_shard_slot_gid(c, (uint16_t)s);
        size_t k = 0;
        while (k < n && peers[k] != g)
            k++;
        if (k == n && n < CRAFT_SHARD_GROUPS_MAX)
            peers[n++] = g;
    }
    if (n == 0)
        return false;
    *gid = peers[d->turn++ % n];
    craft_shard_view_slots(v, st, *gid, slots, NULL);
    return true;
}

/* Whether every slot of `slots` is, in the peer's view, past configuration num's step
 * (installed there: NOTIFYING or SERVING at num; deleted there: ABSENT at num), or the
 * peer is past num altogether. */
static bool peer_past(const struct craftkv_peer_state *p, uint64_t num,
                      const struct craft_slot_set *slots, bool installed)
{
    if (p->num > num)
        return true;
    if (p->num < num)
        return false;
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        if (!craft_slot_set_has(slots, (uint16_t)s))
            continue;
        uint8_t st = p->state[s];
        bool ok = installed ? (st == CRAFT_SLOT_NOTIFYING || st == CRAFT_SLOT_SERVING)
                            : st == CRAFT_SLOT_ABSENT;
        if (!ok)
            return false;
    }
    return true;
}

/* What a host of a group placed elsewhere says of its leader, none included (a hint that
 * outlived its leader would point redirects and the cluster views at a dead process). */
static void hint_leader(struct craftkv_server *s, uint64_t gid, uint64_t leader)
{
    if (gid <= CRAFTKV_SHARD_GROUPS_MAX)
        atomic_store(&s->leader_hint[gid], leader);
}

/* Group gid's state as a replica of it applied it: this process's own when it hosts one,
 * else one a host of it tells (server_shard_peer.c). */
static int peer_state(struct driver *d, uint64_t gid, struct craftkv_peer_state *out)
{
    struct craftkv_group *pg = craftkv_group_of(d->s, gid);
    int rc;
    if (!pg) {
        rc = craftkv_peers_state(d->peers, gid, out);
        if (rc == CRAFT_OK)
            hint_leader(d->s, gid, out->leader);
        return rc;
    }
    rc = craftkv_shard_read_view(pg, d->peer);
    if (rc == CRAFT_OK) {
        out->leader = craft_leader(pg->node, NULL, 0);
        out->num = d->peer->cur.num;
        memcpy(out->state, d->peer->state, sizeof out->state);
    }
    return rc;
}

/* The next part of slots at configuration num from a replica of group gid, as
 * craft_kv_read_export: this process's own when it hosts one, else a host's. */
static int export_from(struct driver *d, uint64_t gid, uint64_t num,
                       const struct craft_slot_set *slots, struct craft_kv_export_cursor *cur,
                       uint8_t **payload, size_t *len, bool *part)
{
    size_t max = d->s->opts.shard_handover_bytes;
    struct craftkv_group *pg = craftkv_group_of(d->s, gid);
    if (!pg)
        return craftkv_peers_export(d->peers, gid, num, slots, max, cur, payload, len, part);
    return craftkv_shard_read_export(pg, num, slots, max, cur, payload, len, part);
}

int craftkv_shard_read_export(struct craftkv_group *g, uint64_t num,
                              const struct craft_slot_set *slots, size_t max,
                              struct craft_kv_export_cursor *cur, uint8_t **payload, size_t *len,
                              bool *part)
{
    struct craft_kv_read *r;
    int rc = craft_kv_read_begin(g->sm, &r);
    if (rc != CRAFT_OK)
        return rc;
    rc = craft_kv_read_export(r, num, slots, max, cur, payload, len, part);
    craft_kv_read_end(r);
    return rc;
}

static void drive_group(struct driver *d, struct craftkv_group *g)
{
    struct craftkv_server *s = d->s;
    if (craftkv_shard_read_view(g, d->view) != CRAFT_OK)
        return;
    const struct craft_shard_view *v = d->view;
    uint64_t num = v->cur.num;
    if (craft_shard_view_settled(v)) {
        if (ctrler_config(s->ctrl, num + 1, d->cfg) != CRAFT_OK)
            return; /* no newer configuration (here yet) */
        uint8_t *buf = malloc(CRAFT_SHARD_CONFIG_BYTES_MAX);
        if (!buf)
            return;
        size_t len = craft_shard_config_encode(d->cfg, buf, CRAFT_SHARD_CONFIG_BYTES_MAX);
        propose_step(d, g, CRAFT_KV_OP_SHARD_CONFIG, num + 1, buf, len, NULL);
        free(buf);
        return;
    }
    uint64_t peer;
    struct craft_slot_set slots;
    if (next_peer(d, CRAFT_SLOT_PULLING, &peer, &slots) && peer < PEERS) {
        /* Any replica of the previous owner that applied num holds the frozen copy; one
         * entry of it per pass, in parts when it does not fit one. */
        struct pull *p = &d->pulls[g->index * PEERS + peer];
        if (p->num != num || memcmp(&p->slots, &slots, sizeof slots) != 0) {
            uint64_t gen = p->gen + 1;
            memset(p, 0, sizeof *p);
            p->num = num;
            p->slots = slots;
            p->gen = gen; /* a part of the hand-over before, still pending, moves nothing */
        }
        uint8_t *payload = NULL;
        size_t len = 0;
        bool part = false;
        struct step after = {.pull = p, .pull_gen = p->gen, .next = p->cur};
        int rc = export_from(d, peer, num, &slots, &after.next, &payload, &len, &part);
        if (rc == CRAFT_OK) {
            after.install_bytes = len;
            if (!part)
                after.pull = NULL; /* the last: the view says the rest */
            propose_step(d, g, CRAFT_KV_OP_SHARD_INSTALL, num, payload, len, &after);
        } else if (rc != CRAFT_EBUSY && rc != CRAFT_ESTALE && rc != CRAFT_EIO) {
            /* (EIO: a host elsewhere did not answer; the next pass asks another) */
            fprintf(stderr, "craftkv: group %" PRIu64 " cannot take its slots from group "
                            "%" PRIu64 " (configuration %" PRIu64 "): %s\n",
                    g->gid, peer, num, craft_strerror(rc));
        }
        free(payload);
    }
    if (d->pending[g->index].fut)
        return; /* one step in flight at a time */
    if (next_peer(d, CRAFT_SLOT_GIVING, &peer, &slots) &&
        peer_state(d, peer, d->pstate) == CRAFT_OK && peer_past(d->pstate, num, &slots, true))
        propose_step(d, g, CRAFT_KV_OP_SHARD_DELETE, num, slots.bits, sizeof slots.bits, NULL);
    if (d->pending[g->index].fut)
        return;
    if (next_peer(d, CRAFT_SLOT_NOTIFYING, &peer, &slots) &&
        peer_state(d, peer, d->pstate) == CRAFT_OK && peer_past(d->pstate, num, &slots, false))
        propose_step(d, g, CRAFT_KV_OP_SHARD_CONFIRM, num, slots.bits, sizeof slots.bits, NULL);
}

/* Spreads the groups' leaders over the processes: a process that leads more than its share
 * (ceil(groups hosted here / replicas of each)) hands one group to the live, caught-up member leading the
 * fewest, then waits BALANCE_MS before the next. Writes of a group go through its leader,
 * so leaders piled on one process would make it do the work of all (every group's first
 * election tends to be won by the process that started first). A transfer stops the
 * group's proposals until it ends (up to an election timeout), hence the care: never to a
 * member the leader does not hear from or that lags, never back to back. */
#define BALANCE_MS 5000
#define BALANCE_LAG_MAX 64 /* entries a target may lack */

static void balance_leaders(struct craftkv_server *s, uint64_t *last_ms, struct craft_stats *st)
{
    uint64_t now = craftkv_mono_ms();
    if (now - *last_ms < BALANCE_MS || s->opts.n_members < 2)
        return;
    size_t count[CRAFTKV_NODES_MAX] = {0}, mine = 0;
    struct craftkv_group *give = NULL;
    for (size_t i = 0; i < s->n_groups; i++) {
        uint64_t l = craft_leader(s->groups[i].node, NULL, 0);
        if (l == 0)
            return; /* an election under way: let it settle first */
        for (size_t m = 0; m < s->opts.n_members; m++)
            count[m] += s->opts.members[m].id == l;
        if (l == s->opts.id) {
            mine++;
            give = &s->groups[i];
        }
    }
    size_t share = (s->n_groups + s->opts.shard_replicas - 1) / s->opts.shard_replicas;
    if (mine <= share || !give)
        return;
    craft_stats(give->node, st);
    if (st->role != CRAFT_LEADER)
        return;
    size_t to = SIZE_MAX;
    for (size_t m = 0; m < s->opts.n_members; m++) {
        uint64_t id = s->opts.members[m].id;
        bool fit = false;
        for (size_t k = 0; k < st->n_peers; k++)
            /* (match > 0: acknowledged in this term; a new leader marks every peer active
             * and matched at 0 until it hears from it) */
            fit |= st->peers[k].id == id && st->peers[k].recent_active && !st->peers[k].is_learner &&
                   st->peers[k].match > 0 && st->peers[k].match + BALANCE_LAG_MAX >= st->commit;
        if (id != s->opts.id && fit && (to == SIZE_MAX || count[m] < count[to]))
            to = m;
    }
    if (to == SIZE_MAX || count[to] + 1 >= mine)
        return;
    *last_ms = now;
    struct craft_future *f = craft_transfer_leadership(give->node, s->opts.members[to].id);
    if (f)
        craft_future_release(f); /* the next pass sees where leadership went */
}

/* Placement (sharding.md, "Placement"): consecutive runs of shard_replicas members, group
 * after group, wrapping around the member list, so that every member hosts
 * groups * replicas / members groups (give or take one) and a group's replicas are
 * different processes. It depends only on the member list and the counts, fixed at the
 * first start, so every process computes the same and nothing needs storing. */
size_t craftkv_shard_hosts(const struct craftkv_opts *o, uint64_t gid, size_t *idx)
{
    CRAFT_ASSERT(o->shard_replicas >= 1 && o->shard_replicas <= o->n_members &&
                 o->shard_replicas <= CRAFTKV_SHARD_REPLICAS_MAX);
    CRAFT_ASSERT(gid >= 1);
    size_t first = (size_t)((gid - 1) * o->shard_replicas % o->n_members);
    for (size_t i = 0; i < o->shard_replicas; i++)
        idx[i] = (first + i) % o->n_members;
    return o->shard_replicas;
}

bool craftkv_shard_hosts_here(const struct craftkv_opts *o, uint64_t gid)
{
    size_t idx[CRAFTKV_SHARD_REPLICAS_MAX], n = craftkv_shard_hosts(o, gid, idx);
    for (size_t i = 0; i < n; i++)
        if (o->members[idx[i]].id == o->id)
            return true;
    return false;
}

void craftkv_shard_group_placed(const struct craftkv_server *s, uint64_t gid,
                                struct craft_shard_group *out)
{
    memset(out, 0, sizeof *out);
    out->gid = gid;
    size_t idx[CRAFTKV_SHARD_REPLICAS_MAX], n = craftkv_shard_hosts(&s->opts, gid, idx);
    /* A configuration names up to CRAFT_SHARD_SERVERS_MAX of a group's hosts (clients need
     * one that answers; a cluster from before placement has every member, up to 16, in
     * each group). */
    for (size_t i = 0; i < n && i < CRAFT_SHARD_SERVERS_MAX; i++)
        snprintf(out->servers[out->n_servers++], CRAFT_SHARD_ADDR_BYTES, "%s",
                 s->opts.members[idx[i]].client_addr);
}

uint64_t craftkv_shard_leader(struct craftkv_server *s, const struct craftkv_route *r, uint32_t k)
{
    if (r->local[k] >= 0)
        return craft_leader(s->groups[r->local[k]].node, NULL, 0);
    uint64_t gid = r->cfg.groups[k].gid;
    return gid <= CRAFTKV_SHARD_GROUPS_MAX ? atomic_load(&s->leader_hint[gid]) : 0;
}

/* Asks a host of each group of the latest configuration placed elsewhere who leads it. */
static void learn_leaders(struct driver *d)
{
    const struct craftkv_route *r = craftkv_route_now(d->s);
    for (uint32_t k = 0; r && k < r->cfg.n_groups && !d->s->stopping; k++)
        if (r->local[k] < 0)
            peer_state(d, r->cfg.groups[k].gid, d->pstate); /* records the leader */
}

/* The cluster's first configuration: the groups it starts with (--shard-groups), each
 * served by its hosts at their client addresses. */
static void bootstrap(struct craftkv_server *s)
{
    struct craft_shard_request *req = calloc(1, sizeof *req);
    if (!req)
        return;
    req->op = CRAFT_SHARD_OP_JOIN;
    for (uint64_t gid = 1; gid <= s->opts.shard_groups_initial; gid++)
        craftkv_shard_group_placed(s, gid, &req->groups[req->n++]);
    uint64_t num = 0;
    char err[CRAFT_SHARD_CTRLER_ERR_BYTES] = "";
    int rc = craftkv_ctrler_change(s, req, &num, err, sizeof err);
    if (rc == CRAFT_OK)
        fprintf(stderr, "craftkv: configuration %" PRIu64 ": %u shard groups joined\n", num,
                req->n);
    else if (rc == CRAFT_EINVAL && ctrler_latest_num(s->ctrl) == 0)
        fprintf(stderr, "craftkv: the first configuration was refused: %s\n", err);
    free(req);
}

static void *driver_main(void *arg)
{
    pthread_setname_np(pthread_self(), "kv-shard"); /* top -H, perf, gdb */
    struct driver *d = arg;
    struct craftkv_server *s = d->s;
    uint64_t balanced_ms = 0, hinted_ms = 0;
    struct craft_stats *st = malloc(sizeof *st);
    while (!s->stopping) {
        struct timespec ts = {0, DRIVE_MS * 1000000L};
        nanosleep(&ts, NULL);
        uint64_t latest = ctrler_latest_num(s->ctrl);
        const struct craftkv_route *cur = craftkv_route_now(s);
        if ((!cur || cur->cfg.num < latest) && ctrler_config(s->ctrl, latest, d->cfg) == CRAFT_OK)
            publish(s, d->cfg); /* after a restore: the apply publishes the rest */
        if (latest == 0 && leads(s->ctrl_node))
            bootstrap(s);
        for (size_t i = 0; i < s->n_groups && !s->stopping; i++)
            if (step_idle(d, &s->groups[i]) && leads(s->groups[i].node))
                drive_group(d, &s->groups[i]);
        if (st)
            balance_leaders(s, &balanced_ms, st);
        if (craftkv_mono_ms() - hinted_ms >= HINT_MS) {
            hinted_ms = craftkv_mono_ms();
            learn_leaders(d);
        }
    }
    free(st);
    for (size_t i = 0; i < s->n_groups; i++)
        if (d->pending[i].fut)
            craft_future_release(d->pending[i].fut); /* its outcome does not matter now */
    free(d->pending);
    free(d->pulls);
    free(d->view);
    free(d->peer);
    free(d->pstate);
    craftkv_peers_free(d->peers);
    free(d->cfg);
    free(d);
    return NULL;
}

/* ---- lifetime ---- */

static void observer(void *ctx, const struct craft_event *ev)
{
    if (ev->type == CRAFT_EVENT_FAILED)
        fprintf(stderr, "craftkv: group %" PRIu64 " stopped: %s\n", *(const uint64_t *)ctx,
                craft_strerror(ev->err));
}

static const uint64_t ctrl_gid = 0;

/* A group's raft settings, as the unsharded server's node has them. */
static void group_config(const struct craftkv_server *s, struct craft_config *cfg,
                         const struct craft_server *servers, size_t n)
{
    const struct craftkv_opts *o = &s->opts;
    craft_config_default(cfg, o->id);
    cfg->peers = servers;
    cfg->n_peers = n;
    cfg->initial_servers = servers; /* bootstrapped on an empty shared log only */
    cfg->n_initial_servers = n;
    cfg->observer = observer;
    cfg->entry_bytes_max = CRAFTKV_SHARD_ENTRY_MAX; /* a hand-over of slots is one entry */
    cfg->snapshot_threshold_entries = o->snapshot_entries ? o->snapshot_entries : 100000;
    if (o->snapshot_bytes)
        cfg->snapshot_threshold_bytes = o->snapshot_bytes;
    if (o->trailing_entries)
        cfg->trailing_entries = o->trailing_entries;
}

int craftkv_shard_start(struct craftkv_server *s, char *err, size_t cap)
{
    const struct craftkv_opts *o = &s->opts;
    struct craft_server servers[CRAFTKV_NODES_MAX];
    for (size_t i = 0; i < o->n_members; i++) {
        servers[i] = (struct craft_server){.id = o->members[i].id, .voter = true};
        snprintf(servers[i].addr, sizeof servers[i].addr, "%s", o->members[i].peer_addr);
    }
    char path[4200], e2[256] = "";
    snprintf(path, sizeof path, "%s/raft", s->data_dir);
    struct craft_host_config hc;
    craft_host_config_default(&hc, o->id);
    snprintf(hc.listen_addr, sizeof hc.listen_addr, "%s", o->listen_peer);
    hc.peers = servers;
    hc.n_peers = o->n_members;
    hc.data_dir = path;
    hc.entry_bytes_max = CRAFTKV_SHARD_ENTRY_MAX;
    int rc = craft_host_create(&hc, &s->host, e2, sizeof e2);
    if (rc != CRAFT_OK) {
        snprintf(err, cap, "cannot start the raft host: %s", e2[0] ? e2 : craft_strerror(rc));
        return -1;
    }

    s->ctrl = calloc(1, sizeof *s->ctrl);
    if (!s->ctrl || craft_shard_ctrler_open(&s->ctrl->c) != CRAFT_OK) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    pthread_mutex_init(&s->ctrl->mu, NULL);
    s->ctrl->srv = s;
    struct craft_fsm fsm = {.ctx = s->ctrl,
                            .apply = ctrler_apply,
                            .snapshot = ctrler_snapshot,
                            .snapshot_write = ctrler_snapshot_write,
                            .snapshot_release = ctrler_snapshot_release,
                            .restore = ctrler_restore,
                            .result_free = ctrler_result_free};
    struct craft_config cfg;
    group_config(s, &cfg, servers, o->n_members);
    cfg.observer_ctx = (void *)&ctrl_gid;
    rc = craft_host_add_group(s->host, 0, &cfg, &fsm, &s->ctrl_node, e2, sizeof e2);
    if (rc != CRAFT_OK) {
        snprintf(err, cap, "cannot start the shard controller group: %s",
                 e2[0] ? e2 : craft_strerror(rc));
        return -1;
    }

    for (size_t i = 0; i < s->n_groups; i++) {
        struct craftkv_group *g = &s->groups[i];
        snprintf(path, sizeof path, "%s/kv-%" PRIu64, s->data_dir, g->gid);
        struct craft_kv_lmdb_config lc = {.path = path, .no_sync = true};
        rc = craft_kv_store_lmdb_open(&lc, &g->store, e2, sizeof e2);
        if (rc != 0) {
            snprintf(err, cap, "cannot open the store %s: %s", path, e2[0] ? e2 : craft_strerror(rc));
            return -1;
        }
        if (craft_kv_store_lmdb_discarded(g->store))
            fprintf(stderr, "craftkv: %s held writes not yet synced when the machine went "
                            "down: dropped, rebuilding it from the raft snapshot and log\n", path);
        struct craft_kv_sm_config smc = {.shard_gid = g->gid};
        rc = craft_kv_sm_open(g->store, &smc, &g->sm);
        if (rc != 0) {
            snprintf(err, cap, "cannot open the state machine of group %" PRIu64 " in %s: %s",
                     g->gid, path, craft_strerror(rc));
            return -1;
        }
        /* Its hosts only (placement); the host's transport reaches every member. */
        struct craft_server hosts[CRAFTKV_SHARD_REPLICAS_MAX];
        size_t idx[CRAFTKV_SHARD_REPLICAS_MAX], n_hosts = craftkv_shard_hosts(o, g->gid, idx);
        for (size_t h = 0; h < n_hosts; h++)
            hosts[h] = servers[idx[h]];
        group_config(s, &cfg, hosts, n_hosts);
        cfg.observer_ctx = &g->gid;
        cfg.auto_promote = true;
        cfg.apply_on_loop = true; /* as the unsharded server's (server.c) */
        craft_kv_fsm_init(&fsm, g->sm);
        rc = craft_host_add_group(s->host, g->gid, &cfg, &fsm, &g->node, e2, sizeof e2);
        if (rc != CRAFT_OK) {
            snprintf(err, cap, "cannot start shard group %" PRIu64 ": %s", g->gid,
                     e2[0] ? e2 : craft_strerror(rc));
            return -1;
        }
    }

    struct driver *d = calloc(1, sizeof *d);
    if (d) {
        d->s = s;
        d->view = malloc(sizeof *d->view);
        d->peer = malloc(sizeof *d->peer);
        d->cfg = malloc(sizeof *d->cfg);
        d->pstate = malloc(sizeof *d->pstate);
        d->peers = craftkv_peers_new(s);
        d->pending = calloc(s->n_groups, sizeof *d->pending);
        d->pulls = calloc((size_t)s->n_groups * PEERS, sizeof *d->pulls);
    }
    if (!d || !d->view || !d->peer || !d->pstate || !d->peers || !d->cfg || !d->pending ||
        !d->pulls || pthread_create(&s->shard_thread, NULL, driver_main, d) != 0) {
        if (d) {
            free(d->view);
            free(d->peer);
            free(d->pstate);
            craftkv_peers_free(d->peers);
            free(d->cfg);
            free(d->pending);
            free(d->pulls);
        }
        free(d);
        snprintf(err, cap, "cannot start the shard driver");
        return -1;
    }
    s->shard_started = true;
    return 0;
}

void craftkv_shard_join(struct craftkv_server *s)
{
    if (s->shard_started)
        pthread_join(s->shard_thread, NULL);
    s->shard_started = false;
}

void craftkv_shard_destroy(struct craftkv_server *s)
{
    CRAFT_ASSERT(!s->shard_started);
    /* The groups' nodes are gone (server.c destroyed them); the controller's next. */
    if (s->ctrl_node)
        craft_node_destroy(s->ctrl_node);
    s->ctrl_node = NULL;
    if (s->host)
        craft_host_destroy(s->host);
    s->host = NULL;
    if (s->ctrl) {
        craft_shard_ctrler_close(s->ctrl->c);
        pthread_mutex_destroy(&s->ctrl->mu);
        free(s->ctrl);
        s->ctrl = NULL;
    }
    struct craftkv_route *r = (struct craftkv_route *)craftkv_route_now(s);
    while (r) {
        struct craftkv_route *older = r->older;
        free(r);
        r = older;
    }
    atomic_store(&s->route, NULL);
}

void craftkv_shard_state_count(uint64_t num, const uint8_t *state, struct craftkv_shard_state *out)
{
    memset(out, 0, sizeof *out);
    out->num = num;
    for (uint32_t k = 0; k < CRAFT_SLOTS; k++)
        out->slots[state[k] < CRAFT_SLOT_STATES ? state[k] : CRAFT_SLOT_ABSENT]++;
}

int craftkv_shard_group_state(struct craftkv_group *g, struct craftkv_shard_state *out)
{
    struct craft_shard_view *v = malloc(sizeof *v);
    if (!v)
        return CRAFT_ENOMEM;
    int rc = craftkv_shard_read_view(g, v);
    if (rc == CRAFT_OK)
        craftkv_shard_state_count(v->cur.num, v->state, out);
    free(v);
    return rc;
}

int craftkv_shard_latest(struct craftkv_server *s, struct craft_shard_config *out)
{
    return ctrler_config(s->ctrl, ctrler_latest_num(s->ctrl), out);
}
