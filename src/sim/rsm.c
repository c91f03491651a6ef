/* The replicated-service plumbing of the simulator (rsm.h): handlers waiting for their
 * entries, the client network, and clerks that retry until a server answers OK. */
#include "sim/rsm.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "sim/clock.h"
#include "sim/sim_internal.h"
#include "sim/world.h"

#define HANDLER_TIMEOUT_MS 800u /* a server gives up waiting for its entry to apply */
#define CYCLE_PAUSE_MS 10u      /* a clerk that tried every server pauses this long */

enum outcome { RPC_FAILED = 0, RPC_WRONG_LEADER, RPC_OK };

struct rpc {
    struct rpc *prev, *next; /* the service's live list (freed at destroy if still live) */
    int refs;
    struct sim_rsm_clerk *ck;
    uint64_t attempt;
    int server;
    uint64_t incarnation;
    uint64_t index; /* log index proposed at (0: not proposed) */
    bool pending;   /* in the server's pending list */
    bool resolved;
    enum outcome out;
    uint8_t *reply;
    size_t reply_len;
};

struct server {
    struct rpc **pending;
    size_t n_pending, cap_pending;
};

struct sim_rsm_clerk {
    struct sim_rsm *s;
    void *arg; /* the service's, for reply() */
    int order[CRAFT_CONF_NODES_MAX];
    bool link[CRAFT_CONF_NODES_MAX];
    int leader; /* position in order */
    int tried;  /* failed attempts in a row */
    bool busy;
    uint8_t *cmd;
    size_t len;
    uint64_t attempt;
    bool one_cycle; /* give up once every server failed once in a row */
    sim_rsm_done_fn done;
    void *done_arg;
};

struct sim_rsm {
    int n;
    int maxraftstate;
    struct sim_rsm_service svc;
    struct sim_cluster *c;
    struct sim_app app;
    struct server *servers;
    struct sim_rsm_clerk **clerks;
    size_t n_clerks, cap_clerks;
    struct rpc live; /* list head */
    uint64_t attempts;
};

/* ---- handlers ---- */

static void rpc_unref(struct rpc *r)
{
    CRAFT_ASSERT(r->refs > 0);
    if (--r->refs > 0) {
        return;
    }
    r->prev->next = r->next;
    r->next->prev = r->prev;
    free(r->reply);
    free(r);
}

static void pending_remove(struct sim_rsm *s, struct rpc *r)
{
    struct server *sv = &s->servers[r->server];
    for (size_t k = 0; k < sv->n_pending; k++) {
        if (sv->pending[k] == r) {
            sv->pending[k] = sv->pending[--sv->n_pending];
            r->pending = false;
            return;
        }
    }
    CRAFT_ASSERT(false);
}

static void clerk_reply(struct sim_rsm_clerk *ck, struct rpc *r);

static void reply_event(struct sim_cluster *c, void *arg)
{
    struct rpc *r = arg;
    (void)c;
    clerk_reply(r->ck, r);
    rpc_unref(r);
}

/* The handler returns: the reply travels back (and may be lost). */
static void resolve(struct sim_rsm *s, struct rpc *r, enum outcome out)
{
    CRAFT_ASSERT(!r->resolved);
    if (r->pending) {
        pending_remove(s, r);
    }
    r->resolved = true;
    r->out = out;
    uint64_t delay = sim_rand(s->c, 0, 2);
    if (out != RPC_FAILED && !s->c->net->reliable && sim_rand(s->c, 0, 1000) < 100) {
        r->out = RPC_FAILED;
    }
    sim_task_at(s->c, delay, reply_event, r);
}

/* ---- the nodes' application ---- */

static void app_start(void *ctx, int i)
{
    struct sim_rsm *s = ctx;
    s->svc.start(s->svc.ctx, i);
    /* Handlers of the old incarnation died with it (labrpc: the call fails). */
    struct server *sv = &s->servers[i];
    while (sv->n_pending > 0) {
        resolve(s, sv->pending[0], RPC_FAILED);
    }
}

static void app_apply(void *ctx, int i, const struct craft_entry *e)
{
    struct sim_rsm *s = ctx;
    struct server *sv = &s->servers[i];
    if (e->type == CRAFT_ENTRY_NORMAL) {
        s->svc.apply(s->svc.ctx, i, e);
    }
    for (size_t k = 0; k < sv->n_pending;) {
        struct rpc *r = sv->pending[k];
        if (r->index > e->index) {
            k++;
            continue;
        }
        /* Only the clerk's current attempt can be answered: an older one's command may
         * not be the clerk's command any more. */
        const struct sim_rsm_clerk *ck = r->ck;
        bool same = r->index == e->index && e->type == CRAFT_ENTRY_NORMAL && ck->busy &&
                    r->attempt == ck->attempt && e->len == ck->len &&
                    memcmp(e->data, ck->cmd, e->len) == 0;
        if (same) {
            s->svc.reply(s->svc.ctx, i, r->ck->arg, e, &r->reply, &r->reply_len);
        }
        resolve(s, r, same ? RPC_OK : RPC_WRONG_LEADER); /* removes r from pending */
    }
}

static bool app_want_snapshot(void *ctx, int i, size_t bytes)
{
    struct sim_rsm *s = ctx;
    (void)i;
    return s->maxraftstate > 0 && bytes >= (size_t)s->maxraftstate;
}

static const uint8_t *app_snapshot(void *ctx, int i, uint64_t index, size_t *len)
{
    struct sim_rsm *s = ctx;
    (void)index;
    return s->svc.snapshot(s->svc.ctx, i, len);
}

static void app_ingest(void *ctx, int i, const uint8_t *blob, size_t len, uint64_t index)
{
    struct sim_rsm *s = ctx;
    s->svc.restore(s->svc.ctx, i, blob, len, index);
    /* Entries the handlers wait for are inside the snapshot: they can't be matched. */
    struct server *sv = &s->servers[i];
    for (size_t k = 0; k < sv->n_pending;) {
        if (sv->pending[k]->index <= index) {
            resolve(s, sv->pending[k], RPC_WRONG_LEADER);
        } else {
            k++;
        }
    }
}

/* ---- the service ---- */

struct sim_rsm *sim_rsm_create(int n, int maxraftstate, const struct sim_rsm_service *svc)
{
    CRAFT_ASSERT(n >= 1 && n <= CRAFT_CONF_NODES_MAX);
    struct sim_rsm *s = sim_xrealloc(NULL, sizeof *s);
    *s = (struct sim_rsm){.n = n, .maxraftstate = maxraftstate, .svc = *svc};
    s->servers = sim_xrealloc(NULL, (size_t)n * sizeof *s->servers);
    memset(s->servers, 0, (size_t)n * sizeof *s->servers);
    s->live.next = s->live.prev = &s->live;
    s->app = (struct sim_app){.ctx = s, .start = app_start, .apply = app_apply,
                              .want_snapshot = app_want_snapshot, .snapshot = app_snapshot,
                              .ingest = app_ingest};
    return s;
}

void sim_rsm_set_opts(struct sim_rsm *s, struct sim_cluster_opts *opts)
{
    CRAFT_ASSERT(opts->n == s->n && !opts->kv && !opts->snapshot);
    opts->app = &s->app;
}

void sim_rsm_bind(struct sim_rsm *s, struct sim_cluster *c)
{
    s->c = c;
}

void sim_rsm_destroy(struct sim_rsm *s)
{
    while (s->live.next != &s->live) {
        struct rpc *r = s->live.next;
        r->refs = 1;
        rpc_unref(r);
    }
    for (int i = 0; i < s->n; i++) {
        free(s->servers[i].pending);
    }
    free(s->servers);
    for (size_t k = 0; k < s->n_clerks; k++) {
        free(s->clerks[k]->cmd);
        free(s->clerks[k]);
    }
    free(s->clerks);
    free(s);
}

struct sim_cluster *sim_rsm_cluster(const struct sim_rsm *s)
{
    return s->c;
}

int sim_rsm_servers(const struct sim_rsm *s)
{
    return s->n;
}

int sim_rsm_leader(struct sim_rsm *s)
{
    for (int i = 0; i < s->n; i++) {
        if (!sim_is_alive(s->c, i)) {
            continue;
        }
        uint64_t term;
        bool leader;
        sim_get_state(s->c, i, &term, &leader);
        if (leader) {
            return i;
        }
    }
    return -1;
}

size_t sim_rsm_snapshot_size(const struct sim_rsm *s)
{
    size_t max = 0;
    for (int i = 0; i < s->n; i++) {
        size_t len = s->c->nodes[i].disk.snap_len;
        max = len > max ? len : max;
    }
    return max;
}

uint64_t sim_rsm_attempts(const struct sim_rsm *s)
{
    return s->attempts;
}

/* ---- the client network ---- */

static void handler_timeout(struct sim_cluster *c, void *arg)
{
    struct rpc *r = arg;
    struct sim_rsm *s = r->ck->s;
    (void)c;
    if (!r->resolved) {
        const struct sim_node *node = &s->c->nodes[r->server];
        bool same = node->alive && node->incarnation == r->incarnation;
        resolve(s, r, same ? RPC_WRONG_LEADER : RPC_FAILED);
    }
    rpc_unref(r);
}

/* The request reaches server r->server: Start() it if that server leads. */
static void handle(struct sim_cluster *c, void *arg)
{
    struct rpc *r = arg;
    struct sim_rsm *s = r->ck->s;
    struct sim_node *node = &c->nodes[r->server];
    /* The command proposed is the clerk's: only its current attempt may be in flight (a
     * clerk sends the next only once this one is resolved). */
    CRAFT_ASSERT(r->ck->busy && r->attempt == r->ck->attempt);
    if (!node->alive || !r->ck->link[r->server]) {
        resolve(s, r, RPC_FAILED);
        return;
    }
    uint64_t index = 0, term = 0;
    sim_node_work(node);
    int err = craft_driver_propose(node->d, r->ck->cmd, (uint32_t)r->ck->len,
                                   sim_node_now(node), &index, &term);
    sim_node_after(node);
    if (err != CRAFT_OK) {
        resolve(s, r, RPC_WRONG_LEADER);
        return;
    }
    r->index = index;
    r->incarnation = node->incarnation;
    struct server *sv = &s->servers[r->server];
    if (sv->n_pending == sv->cap_pending) {
        sv->cap_pending = sv->cap_pending ? sv->cap_pending * 2 : 16;
        sv->pending = sim_xrealloc(sv->pending, sv->cap_pending * sizeof *sv->pending);
    }
    sv->pending[sv->n_pending++] = r;
    r->pending = true;
    r->refs++;
    sim_task_at(c, HANDLER_TIMEOUT_MS, handler_timeout, r);
}

static void send_attempt(struct sim_rsm_clerk *ck)
{
    struct sim_rsm *s = ck->s;
    struct sim_cluster *c = s->c;
    struct rpc *r = sim_xrealloc(NULL, sizeof *r);
    *r = (struct rpc){.refs = 1, .ck = ck, .attempt = ++ck->attempt,
                      .server = ck->order[ck->leader]};
    r->next = s->live.next;
    r->prev = &s->live;
    s->live.next->prev = r;
    s->live.next = r;
    s->attempts++;
    if (!ck->link[r->server] || !sim_is_alive(c, r->server)) {
        r->resolved = true;
        r->out = RPC_FAILED;
        sim_task_at(c, sim_rand(c, 0, 100), reply_event, r);
        return;
    }
    uint64_t delay = sim_rand(c, 0, 2);
    if (!c->net->reliable) {
        delay += sim_rand(c, 0, 27);
        if (sim_rand(c, 0, 1000) < 100) {
            r->resolved = true;
            r->out = RPC_FAILED;
            sim_task_at(c, delay, reply_event, r);
            return;
        }
    }
    sim_task_at(c, delay, handle, r);
}

static void retry_event(struct sim_cluster *c, void *arg)
{
    (void)c;
    send_attempt(arg);
}

static void clerk_reply(struct sim_rsm_clerk *ck, struct rpc *r)
{
    if (!ck->busy || r->attempt != ck->attempt) {
        return; /* an old attempt's late answer */
    }
    struct sim_cluster *c = ck->s->c;
    bool ok = r->out == RPC_OK;
    if (!ok) {
        ck->leader = (ck->leader + 1) % ck->s->n;
        ck->tried++;
        if (!ck->one_cycle || ck->tried < ck->s->n) {
            sim_task_at(c, ck->tried % ck->s->n == 0 ? CYCLE_PAUSE_MS : 0, retry_event, ck);
            return;
        }
    }
    ck->tried = 0;
    ck->busy = false;
    free(ck->cmd);
    ck->cmd = NULL;
    ck->len = 0;
    if (ck->done != NULL) {
        ck->done(ck, ck->done_arg, ok ? r->reply : NULL, ok ? r->reply_len : 0);
    }
}

/* ---- clerks ---- */

struct sim_rsm_clerk *sim_rsm_clerk(struct sim_rsm *s, void *arg)
{
    struct sim_rsm_clerk *ck = sim_xrealloc(NULL, sizeof *ck);
    *ck = (struct sim_rsm_clerk){.s = s, .arg = arg};
    for (int i = 0; i < s->n; i++) {
        ck->order[i] = i;
        ck->link[i] = true;
    }
    for (int i = s->n - 1; i > 0; i--) { /* config.go hands the ends over shuffled */
        int j = (int)sim_rand(s->c, 0, (uint64_t)i + 1);
        int t = ck->order[i];
        ck->order[i] = ck->order[j];
        ck->order[j] = t;
    }
    if (s->n_clerks == s->cap_clerks) {
        s->cap_clerks = s->cap_clerks ? s->cap_clerks * 2 : 16;
        s->clerks = sim_xrealloc(s->clerks, s->cap_clerks * sizeof *s->clerks);
    }
    s->clerks[s->n_clerks++] = ck;
    return ck;
}

void sim_rsm_clerk_link(struct sim_rsm_clerk *ck, int i, bool on)
{
    CRAFT_ASSERT(i >= 0 && i < ck->s->n);
    ck->link[i] = on;
}

void sim_rsm_clerk_only(struct sim_rsm_clerk *ck, const int *servers, int n)
{
    for (int i = 0; i < ck->s->n; i++) {
        ck->link[i] = false;
    }
    for (int k = 0; k < n; k++) {
        sim_rsm_clerk_link(ck, servers[k], true);
    }
}

static void call(struct sim_rsm_clerk *ck, uint8_t *cmd, size_t len, bool one_cycle,
                 sim_rsm_done_fn done, void *arg)
{
    CRAFT_ASSERT(!ck->busy && cmd != NULL && len > 0);
    ck->busy = true;
    ck->one_cycle = one_cycle;
    ck->cmd = cmd;
    ck->len = len;
    ck->done = done;
    ck->done_arg = arg;
    send_attempt(ck);
}

void sim_rsm_call(struct sim_rsm_clerk *ck, uint8_t *cmd, size_t len, sim_rsm_done_fn done,
                  void *arg)
{
    call(ck, cmd, len, false, done, arg);
}

void sim_rsm_call_cycle(struct sim_rsm_clerk *ck, uint8_t *cmd, size_t len, sim_rsm_done_fn done,
                        void *arg)
{
    call(ck, cmd, len, true, done, arg);
}

bool sim_rsm_busy(const struct sim_rsm_clerk *ck)
{
    return ck->busy;
}

bool sim_rsm_wait(struct sim_rsm_clerk *ck, uint64_t budget_ms)
{
    struct sim_cluster *c = ck->s->c;
    uint64_t start = sim_now(c);
    while (ck->busy && sim_now(c) - start < budget_ms) {
        sim_sleep(c, 1);
    }
    return !ck->busy;
}
