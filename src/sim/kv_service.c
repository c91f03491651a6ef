/* The kvraft service on the simulator: craftkv state machines on the nodes, clerks with
 * sessions over a labrpc-like client network, and the history (kv_service.h). */
#include "sim/kv_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/trace.h"
#include "kv/kv_cmd.h"
#include "kv/kv_sm.h"
#include "kv/kv_store.h"
#include "sim/clock.h"
#include "sim/linearize.h"
#include "sim/sim_internal.h"

#define HANDLER_TIMEOUT_MS 800u /* a server gives up waiting for its entry to apply */
#define CYCLE_PAUSE_MS 10u      /* a clerk that tried every server pauses this long */
#define KEY_MAX 32u

enum outcome { RPC_FAILED = 0, RPC_WRONG_LEADER, RPC_OK };

struct rpc {
    struct rpc *prev, *next; /* the service's live list (freed at destroy if still live) */
    int refs;
    struct sim_kvs_clerk *ck;
    uint64_t attempt;
    int server;
    uint64_t incarnation;
    uint64_t index; /* log index proposed at (0: not proposed) */
    bool pending;   /* in the server's pending list */
    bool resolved;
    enum outcome out;
    uint8_t *cmd;
    size_t len;
    char *val; /* a get's value */
    size_t val_len;
};

struct hist_op {
    uint64_t client;
    uint8_t kind;
    char *key, *input, *output;
    size_t input_len, output_len;
    uint64_t call, ret;
};

struct server {
    struct craft_kv_store *store;
    struct craft_kv_sm *sm;
    struct rpc **pending;
    size_t n_pending, cap_pending;
    uint8_t *snap;
    size_t snap_len, snap_cap;
};

struct sim_kvs_clerk {
    struct sim_kvs *s;
    uint64_t client;
    uint64_t session, seq;
    bool opened;
    int order[CRAFT_CONF_NODES_MAX];
    bool link[CRAFT_CONF_NODES_MAX];
    int leader; /* position in order */
    int tried;  /* failed attempts in a row */
    /* the current op */
    bool busy, opening;
    uint8_t kind;
    char key[KEY_MAX];
    char *value;
    size_t value_len;
    uint64_t call;
    uint64_t attempt;
    sim_kvs_done_fn done;
    void *arg;
    char *res;
    size_t res_len, res_cap;
};

struct sim_kvs {
    int n;
    int maxraftstate;
    struct sim_cluster *c;
    struct sim_app app;
    struct server *servers;
    struct sim_kvs_clerk **clerks;
    size_t n_clerks, cap_clerks;
    uint64_t next_session;
    struct rpc live; /* list head */
    struct hist_op *hist;
    size_t n_hist, cap_hist;
    uint64_t attempts;
};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    CRAFT_ASSERT(q != NULL);
    return q;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = xrealloc(NULL, n + 1);
    if (n > 0) {
        memcpy(p, s, n);
    }
    p[n] = '\0';
    return p;
}

/* ---- the nodes' application ---- */

static void server_close(struct server *sv)
{
    if (sv->sm != NULL) {
        craft_kv_sm_close(sv->sm);
        sv->sm = NULL;
    }
    if (sv->store != NULL) {
        sv->store->ops->close(sv->store);
        sv->store = NULL;
    }
}

static void rpc_unref(struct sim_kvs *s, struct rpc *r)
{
    CRAFT_ASSERT(r->refs > 0);
    if (--r->refs > 0) {
        return;
    }
    (void)s;
    r->prev->next = r->next;
    r->next->prev = r->prev;
    free(r->cmd);
    free(r->val);
    free(r);
}

static void pending_remove(struct sim_kvs *s, struct rpc *r)
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

static void clerk_reply(struct sim_kvs_clerk *ck, struct rpc *r);

static void reply_event(struct sim_cluster *c, void *arg)
{
    struct rpc *r = arg;
    struct sim_kvs *s = r->ck->s;
    (void)c;
    clerk_reply(r->ck, r);
    rpc_unref(s, r);
}

/* The handler returns: the reply travels back (and may be lost). */
static void resolve(struct sim_kvs *s, struct rpc *r, enum outcome out)
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

static void app_start(void *ctx, int i)
{
    struct sim_kvs *s = ctx;
    struct server *sv = &s->servers[i];
    server_close(sv);
    CRAFT_ASSERT(craft_kv_store_mem_open(&sv->store) == CRAFT_OK);
    CRAFT_ASSERT(craft_kv_sm_open(sv->store, NULL, &sv->sm) == CRAFT_OK);
    /* Handlers of the old incarnation died with it (labrpc: the call fails). */
    while (sv->n_pending > 0) {
        resolve(s, sv->pending[0], RPC_FAILED);
    }
}

static void answer_get(struct server *sv, struct rpc *r)
{
    struct craft_kv_cmd cmd;
    CRAFT_ASSERT(craft_kv_cmd_decode(r->cmd, r->len, &cmd) == CRAFT_OK);
    if (cmd.op != CRAFT_KV_OP_NOOP) {
        return;
    }
    const struct sim_kvs_clerk *ck = r->ck;
    struct craft_kv_read *rd;
    CRAFT_ASSERT(craft_kv_read_begin(sv->sm, &rd) == CRAFT_OK);
    const uint8_t *v = NULL;
    size_t vlen = 0;
    int err = craft_kv_read_get(rd, (const uint8_t *)ck->key, strlen(ck->key), &v, &vlen);
    CRAFT_ASSERT(err == CRAFT_OK || err == CRAFT_ENOTFOUND);
    if (err != CRAFT_OK) {
        vlen = 0;
    }
    r->val = xstrndup((const char *)v, vlen);
    r->val_len = vlen;
    craft_kv_read_end(rd);
}

static void app_apply(void *ctx, int i, const struct craft_entry *e)
{
    struct sim_kvs *s = ctx;
    struct server *sv = &s->servers[i];
    if (e->type == CRAFT_ENTRY_NORMAL) {
        struct craft_kv_result *res = NULL;
        int err = craft_kv_sm_apply(sv->sm, e->index, e->data, e->len, &res);
        if (err != CRAFT_OK) {
            sim_fail(s->c, "server %d: kv apply at %llu: %s", i, (unsigned long long)e->index,
                     craft_strerror(err));
        }
        if (res != NULL && res->type == CRAFT_KV_RES_ERR &&
            strcmp((const char *)res->data, CRAFT_KV_ERR_STALE) != 0) {
            sim_fail(s->c, "server %d: kv command at %llu answered %s", i,
                     (unsigned long long)e->index, (const char *)res->data);
        }
        craft_kv_result_free(res);
    }
    for (size_t k = 0; k < sv->n_pending;) {
        struct rpc *r = sv->pending[k];
        if (r->index > e->index) {
            k++;
            continue;
        }
        bool same = r->index == e->index && e->type == CRAFT_ENTRY_NORMAL && e->len == r->len &&
                    memcmp(e->data, r->cmd, r->len) == 0;
        if (same && r->ck->kind == SIM_LIN_GET) {
            answer_get(sv, r);
        }
        resolve(s, r, same ? RPC_OK : RPC_WRONG_LEADER); /* removes r from pending */
    }
}

static bool app_want_snapshot(void *ctx, int i, size_t bytes)
{
    struct sim_kvs *s = ctx;
    (void)i;
    return s->maxraftstate > 0 && bytes >= (size_t)s->maxraftstate;
}

static int snap_write(void *ctx, const void *buf, size_t len)
{
    struct server *sv = ctx;
    if (sv->snap_len + len > sv->snap_cap) {
        size_t cap = sv->snap_cap ? sv->snap_cap : 1024;
        while (cap < sv->snap_len + len) {
            cap *= 2;
        }
        sv->snap = xrealloc(sv->snap, cap);
        sv->snap_cap = cap;
    }
    memcpy(sv->snap + sv->snap_len, buf, len);
    sv->snap_len += len;
    return CRAFT_OK;
}

static const uint8_t *app_snapshot(void *ctx, int i, uint64_t index, size_t *len)
{
    struct sim_kvs *s = ctx;
    struct server *sv = &s->servers[i];
    (void)index;
    struct craft_kv_snap *snap;
    CRAFT_ASSERT(craft_kv_sm_snapshot(sv->sm, &snap) == CRAFT_OK);
    sv->snap_len = 0;
    CRAFT_ASSERT(craft_kv_snap_write(snap, snap_write, sv) == CRAFT_OK);
    craft_kv_snap_release(snap);
    *len = sv->snap_len;
    return sv->snap;
}

struct snap_src {
    const uint8_t *p;
    size_t left;
};

static int snap_read(void *ctx, void *buf, size_t cap, size_t *n)
{
    struct snap_src *src = ctx;
    size_t k = src->left < cap ? src->left : cap;
    if (k > 0) {
        memcpy(buf, src->p, k);
    }
    src->p += k;
    src->left -= k;
    *n = k;
    return CRAFT_OK;
}

static void app_ingest(void *ctx, int i, const uint8_t *blob, size_t len, uint64_t index)
{
    struct sim_kvs *s = ctx;
    struct server *sv = &s->servers[i];
    struct snap_src src = {.p = blob, .left = len};
    int err = craft_kv_sm_restore(sv->sm, snap_read, &src);
    if (err != CRAFT_OK) {
        sim_fail(s->c, "server %d: kv snapshot %llu does not restore: %s", i,
                 (unsigned long long)index, craft_strerror(err));
    }
    /* Entries the handlers wait for are inside the snapshot: they can't be matched. */
    for (size_t k = 0; k < sv->n_pending;) {
        if (sv->pending[k]->index <= index) {
            resolve(s, sv->pending[k], RPC_WRONG_LEADER);
        } else {
            k++;
        }
    }
}

/* ---- the service ---- */

struct sim_kvs *sim_kvs_create(int n, int maxraftstate)
{
    CRAFT_ASSERT(n >= 1 && n <= CRAFT_CONF_NODES_MAX);
    struct sim_kvs *s = xrealloc(NULL, sizeof *s);
    *s = (struct sim_kvs){.n = n, .maxraftstate = maxraftstate, .next_session = 1};
    s->servers = xrealloc(NULL, (size_t)n * sizeof *s->servers);
    memset(s->servers, 0, (size_t)n * sizeof *s->servers);
    s->live.next = s->live.prev = &s->live;
    s->app = (struct sim_app){.ctx = s, .start = app_start, .apply = app_apply,
                              .want_snapshot = app_want_snapshot, .snapshot = app_snapshot,
                              .ingest = app_ingest};
    return s;
}

void sim_kvs_set_opts(struct sim_kvs *s, struct sim_cluster_opts *opts)
{
    CRAFT_ASSERT(opts->n == s->n && !opts->kv && !opts->snapshot);
    opts->app = &s->app;
}

void sim_kvs_bind(struct sim_kvs *s, struct sim_cluster *c)
{
    s->c = c;
}

void sim_kvs_destroy(struct sim_kvs *s)
{
    while (s->live.next != &s->live) {
        struct rpc *r = s->live.next;
        r->refs = 1;
        rpc_unref(s, r);
    }
    for (int i = 0; i < s->n; i++) {
        server_close(&s->servers[i]);
        free(s->servers[i].pending);
        free(s->servers[i].snap);
    }
    free(s->servers);
    for (size_t k = 0; k < s->n_clerks; k++) {
        free(s->clerks[k]->value);
        free(s->clerks[k]->res);
        free(s->clerks[k]);
    }
    free(s->clerks);
    for (size_t k = 0; k < s->n_hist; k++) {
        free(s->hist[k].key);
        free(s->hist[k].input);
        free(s->hist[k].output);
    }
    free(s->hist);
    free(s);
}

int sim_kvs_leader(struct sim_kvs *s)
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

size_t sim_kvs_snapshot_size(const struct sim_kvs *s)
{
    size_t max = 0;
    for (int i = 0; i < s->n; i++) {
        size_t len = s->c->nodes[i].disk.snap_len;
        max = len > max ? len : max;
    }
    return max;
}

uint64_t sim_kvs_ops(const struct sim_kvs *s)
{
    return s->n_hist;
}

uint64_t sim_kvs_attempts(const struct sim_kvs *s)
{
    return s->attempts;
}

/* ---- the client network and the handlers ---- */

static void handler_timeout(struct sim_cluster *c, void *arg)
{
    struct rpc *r = arg;
    struct sim_kvs *s = r->ck->s;
    (void)c;
    if (!r->resolved) {
        const struct sim_node *node = &s->c->nodes[r->server];
        bool same = node->alive && node->incarnation == r->incarnation;
        resolve(s, r, same ? RPC_WRONG_LEADER : RPC_FAILED);
    }
    rpc_unref(s, r);
}

/* The request reaches server r->server: Start() it if that server leads. */
static void handle(struct sim_cluster *c, void *arg)
{
    struct rpc *r = arg;
    struct sim_kvs *s = r->ck->s;
    struct sim_node *node = &c->nodes[r->server];
    if (!node->alive || !r->ck->link[r->server]) {
        resolve(s, r, RPC_FAILED);
        return;
    }
    uint64_t index = 0, term = 0;
    sim_node_work(node);
    int err = craft_driver_propose(node->d, r->cmd, (uint32_t)r->len, sim_node_now(node), &index,
                                   &term);
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
        sv->pending = xrealloc(sv->pending, sv->cap_pending * sizeof *sv->pending);
    }
    sv->pending[sv->n_pending++] = r;
    r->pending = true;
    r->refs++;
    sim_task_at(c, HANDLER_TIMEOUT_MS, handler_timeout, r);
}

static void encode(struct sim_kvs_clerk *ck, struct rpc *r)
{
    struct craft_kv_cmd cmd = {.session = ck->session, .now_ms = sim_now(ck->s->c)};
    if (ck->opening) {
        cmd.op = CRAFT_KV_OP_SESSION_OPEN;
    } else {
        cmd.seq = ck->seq;
        cmd.key = (struct craft_kv_bytes){(const uint8_t *)ck->key, (uint32_t)strlen(ck->key)};
        cmd.value = (struct craft_kv_bytes){(const uint8_t *)ck->value, (uint32_t)ck->value_len};
        cmd.op = ck->kind == SIM_LIN_GET   ? CRAFT_KV_OP_NOOP
                 : ck->kind == SIM_LIN_PUT ? CRAFT_KV_OP_SET
                                           : CRAFT_KV_OP_APPEND;
        if (cmd.op == CRAFT_KV_OP_NOOP) {
            cmd.key = (struct craft_kv_bytes){NULL, 0};
            cmd.value = (struct craft_kv_bytes){NULL, 0};
        }
    }
    size_t size = craft_kv_cmd_size(&cmd);
    CRAFT_ASSERT(size > 0);
    r->cmd = xrealloc(NULL, size);
    CRAFT_ASSERT(craft_kv_cmd_encode(&cmd, r->cmd, size, &r->len) == CRAFT_OK);
}

static void send_attempt(struct sim_kvs_clerk *ck)
{
    struct sim_kvs *s = ck->s;
    struct sim_cluster *c = s->c;
    struct rpc *r = xrealloc(NULL, sizeof *r);
    *r = (struct rpc){.refs = 1, .ck = ck, .attempt = ++ck->attempt,
                      .server = ck->order[ck->leader]};
    r->next = s->live.next;
    r->prev = &s->live;
    s->live.next->prev = r;
    s->live.next = r;
    encode(ck, r);
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

static void record(struct sim_kvs_clerk *ck)
{
    struct sim_kvs *s = ck->s;
    if (s->n_hist == s->cap_hist) {
        s->cap_hist = s->cap_hist ? s->cap_hist * 2 : 1024;
        s->hist = xrealloc(s->hist, s->cap_hist * sizeof *s->hist);
    }
    struct hist_op *h = &s->hist[s->n_hist++];
    *h = (struct hist_op){.client = ck->client, .kind = ck->kind, .call = ck->call,
                          .ret = sim_now(s->c)};
    h->key = xstrndup(ck->key, strlen(ck->key));
    if (ck->kind == SIM_LIN_GET) {
        h->output = xstrndup(ck->res, ck->res_len);
        h->output_len = ck->res_len;
    } else {
        h->input = xstrndup(ck->value, ck->value_len);
        h->input_len = ck->value_len;
    }
}

static void clerk_reply(struct sim_kvs_clerk *ck, struct rpc *r)
{
    if (!ck->busy || r->attempt != ck->attempt) {
        return; /* an old attempt's late answer */
    }
    struct sim_cluster *c = ck->s->c;
    if (r->out != RPC_OK) {
        ck->leader = (ck->leader + 1) % ck->s->n;
        ck->tried++;
        sim_task_at(c, ck->tried % ck->s->n == 0 ? CYCLE_PAUSE_MS : 0, retry_event, ck);
        return;
    }
    ck->tried = 0;
    if (ck->opening) {
        ck->opening = false;
        ck->opened = true;
        send_attempt(ck);
        return;
    }
    if (ck->kind == SIM_LIN_GET) {
        if (r->val_len + 1 > ck->res_cap) {
            ck->res_cap = r->val_len + 1;
            ck->res = xrealloc(ck->res, ck->res_cap);
        }
        memcpy(ck->res, r->val, r->val_len + 1);
        ck->res_len = r->val_len;
    }
    record(ck);
    ck->busy = false;
    if (ck->done != NULL) {
        ck->done(ck, ck->arg, ck->res, ck->res_len);
    }
}

/* ---- clerks ---- */

struct sim_kvs_clerk *sim_kvs_clerk(struct sim_kvs *s, uint64_t client)
{
    struct sim_kvs_clerk *ck = xrealloc(NULL, sizeof *ck);
    *ck = (struct sim_kvs_clerk){.s = s, .client = client, .session = s->next_session++};
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
    ck->res = xstrndup("", 0);
    ck->res_cap = 1;
    if (s->n_clerks == s->cap_clerks) {
        s->cap_clerks = s->cap_clerks ? s->cap_clerks * 2 : 16;
        s->clerks = xrealloc(s->clerks, s->cap_clerks * sizeof *s->clerks);
    }
    s->clerks[s->n_clerks++] = ck;
    return ck;
}

void sim_kvs_clerk_link(struct sim_kvs_clerk *ck, int i, bool on)
{
    CRAFT_ASSERT(i >= 0 && i < ck->s->n);
    ck->link[i] = on;
}

void sim_kvs_clerk_only(struct sim_kvs_clerk *ck, const int *servers, int n)
{
    for (int i = 0; i < ck->s->n; i++) {
        ck->link[i] = false;
    }
    for (int k = 0; k < n; k++) {
        sim_kvs_clerk_link(ck, servers[k], true);
    }
}

void sim_kvs_op(struct sim_kvs_clerk *ck, uint8_t kind, const char *key, const char *value,
                sim_kvs_done_fn done, void *arg)
{
    CRAFT_ASSERT(!ck->busy && strlen(key) < KEY_MAX);
    ck->busy = true;
    ck->kind = kind;
    strcpy(ck->key, key);
    size_t vlen = kind == SIM_LIN_GET ? 0 : strlen(value);
    free(ck->value);
    ck->value = xstrndup(kind == SIM_LIN_GET ? "" : value, vlen);
    ck->value_len = vlen;
    ck->done = done;
    ck->arg = arg;
    ck->call = sim_now(ck->s->c);
    ck->opening = !ck->opened;
    ck->seq++;
    send_attempt(ck);
}

bool sim_kvs_busy(const struct sim_kvs_clerk *ck)
{
    return ck->busy;
}

const char *sim_kvs_value(const struct sim_kvs_clerk *ck, size_t *len)
{
    if (len != NULL) {
        *len = ck->res_len;
    }
    return ck->res;
}

bool sim_kvs_wait(struct sim_kvs_clerk *ck, uint64_t budget_ms)
{
    uint64_t start = sim_now(ck->s->c);
    while (ck->busy && sim_now(ck->s->c) - start < budget_ms) {
        sim_sleep(ck->s->c, 1);
    }
    return !ck->busy;
}

static void blocking(struct sim_kvs_clerk *ck, uint8_t kind, const char *key, const char *value,
                     uint64_t budget_ms)
{
    sim_kvs_op(ck, kind, key, value, NULL, NULL);
    if (!sim_kvs_wait(ck, budget_ms)) {
        sim_fail(ck->s->c, "%s(%s) did not complete within %llu ms",
                 kind == SIM_LIN_GET ? "Get" : kind == SIM_LIN_PUT ? "Put" : "Append", key,
                 (unsigned long long)budget_ms);
    }
}

const char *sim_kvs_get(struct sim_kvs_clerk *ck, const char *key, uint64_t budget_ms)
{
    blocking(ck, SIM_LIN_GET, key, NULL, budget_ms);
    return ck->res;
}

void sim_kvs_put(struct sim_kvs_clerk *ck, const char *key, const char *value, uint64_t budget_ms)
{
    blocking(ck, SIM_LIN_PUT, key, value, budget_ms);
}

void sim_kvs_append(struct sim_kvs_clerk *ck, const char *key, const char *value,
                    uint64_t budget_ms)
{
    blocking(ck, SIM_LIN_APPEND, key, value, budget_ms);
}

void sim_kvs_check(struct sim_kvs_clerk *ck, const char *key, const char *want, uint64_t budget_ms)
{
    const char *got = sim_kvs_get(ck, key, budget_ms);
    if (strcmp(got, want) != 0) {
        sim_fail(ck->s->c, "Get(%s): expected:\n%s\nreceived:\n%s", key, want, got);
    }
}

void sim_kvs_check_history(struct sim_kvs *s, uint64_t budget_steps)
{
    struct sim_lin_op *ops = xrealloc(NULL, (s->n_hist ? s->n_hist : 1) * sizeof *ops);
    for (size_t k = 0; k < s->n_hist; k++) {
        const struct hist_op *h = &s->hist[k];
        ops[k] = (struct sim_lin_op){
            .client = h->client, .kind = h->kind, .key = (const uint8_t *)h->key,
            .key_len = strlen(h->key), .input = (const uint8_t *)h->input,
            .input_len = h->input_len, .output = (const uint8_t *)h->output,
            .output_len = h->output_len, .call = h->call, .ret = h->ret};
    }
    static char desc[4096];
    struct sim_lin_result res = {.desc = desc, .desc_cap = sizeof desc};
    enum sim_lin_verdict v = sim_linearize_check(ops, s->n_hist, budget_steps, &res);
    free(ops);
    sim_note(s->c, "linearizability: %s (%zu ops, %llu steps, %zu keys)",
             sim_lin_verdict_name(v), s->n_hist, (unsigned long long)res.steps, res.n_keys);
    if (v == SIM_LIN_ILLEGAL) {
        sim_fail(s->c, "history is not linearizable: %s", desc);
    }
    if (v == SIM_LIN_UNKNOWN) {
        sim_note(s->c, "info: linearizability check timed out, assuming history is ok");
    }
}
