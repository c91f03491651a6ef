/* Client histories of the read scenarios (see reads.h): issuing writes and reads on a
 * key/value cluster, following them to completion through the apply and read ports,
 * giving up on timeouts, and checking the history at the end. */
#include "sim/reads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/trace.h"
#include "sim/clock.h"
#include "sim/kvreg.h"
#include "sim/linearize.h"
#include "sim/sim_internal.h"
#include "sim/world.h"

#define DESC_CAP 8192

struct rop {
    uint64_t id;
    int client;
    uint8_t kind;   /* enum sim_lin_kind */
    uint8_t mode;   /* reads: enum sim_read_mode */
    uint8_t status; /* enum sim_op_status */
    bool lease_wait; /* lease read waiting for the node to apply through lease_index */
    bool fell_back;  /* lease read that went to ReadIndex */
    bool watched;
    int node;
    uint64_t incarnation;
    uint8_t key_len;
    char key[SIM_KV_KEY_MAX + 1];
    uint8_t *value; /* write: input; read: output once served */
    size_t value_len;
    uint64_t call, ret, deadline;
    uint64_t log_index; /* write */
    uint64_t lease_index;
};

struct client {
    struct sim_cluster *c;
    int id;
    uint64_t op; /* pending op id, or 0 */
    uint64_t seq;
    bool stop;
};

struct sim_reads {
    struct rop *ops; /* by id - 1 */
    size_t n_ops, cap_ops;
    uint64_t *watch; /* pending ops and unknown writes not yet resolved */
    size_t n_watch, cap_watch;
    struct client **clients;
    size_t n_clients;
    struct sim_reads_opts o;
    uint64_t refused, lease_fallbacks, lin_steps;
};

static struct sim_reads *reads_of(const struct sim_cluster *c)
{
    CRAFT_ASSERT(c->reads != NULL);
    return c->reads;
}

void sim_reads_attach(struct sim_cluster *c)
{
    CRAFT_ASSERT(c->opts.kv);
    if (c->reads == NULL) {
        c->reads = calloc(1, sizeof *c->reads);
        CRAFT_ASSERT(c->reads != NULL);
    }
}

static struct rop *op_get(const struct sim_reads *R, uint64_t id)
{
    CRAFT_ASSERT(id >= 1 && id <= R->n_ops);
    return &R->ops[id - 1];
}

static struct rop *op_new(struct sim_cluster *c, int client, uint8_t kind, const char *key)
{
    struct sim_reads *R = reads_of(c);
    if (R->n_ops == R->cap_ops) {
        R->cap_ops = R->cap_ops ? R->cap_ops * 2 : 256;
        R->ops = sim_xrealloc(R->ops, R->cap_ops * sizeof *R->ops);
    }
    struct rop *op = &R->ops[R->n_ops++];
    size_t key_len = strlen(key);
    CRAFT_ASSERT(key_len <= SIM_KV_KEY_MAX);
    *op = (struct rop){.id = R->n_ops, .client = client, .kind = kind,
                       .key_len = (uint8_t)key_len, .call = c->w->now};
    memcpy(op->key, key, key_len + 1);
    return op;
}

/* Forgets the newest op (refused at once: it never happened). */
static void op_drop_last(struct sim_reads *R, struct rop *op)
{
    CRAFT_ASSERT(op->id == R->n_ops && !op->watched);
    free(op->value);
    R->n_ops--;
    R->refused++;
}

static void watch(struct sim_reads *R, struct rop *op)
{
    CRAFT_ASSERT(!op->watched);
    if (R->n_watch == R->cap_watch) {
        R->cap_watch = R->cap_watch ? R->cap_watch * 2 : 32;
        R->watch = sim_xrealloc(R->watch, R->cap_watch * sizeof *R->watch);
    }
    R->watch[R->n_watch++] = op->id;
    op->watched = true;
}

static void unwatch(struct sim_reads *R, struct rop *op)
{
    for (size_t k = 0; k < R->n_watch; k++) {
        if (R->watch[k] == op->id) {
            R->watch[k] = R->watch[--R->n_watch];
            op->watched = false;
            return;
        }
    }
    CRAFT_ASSERT(false);
}

static void expire_task(struct sim_cluster *c, void *arg)
{
    (void)arg;
    sim_reads_expire(c);
}

static void pending(struct sim_cluster *c, struct rop *op, uint64_t timeout_ms)
{
    op->status = SIM_OP_PENDING;
    op->deadline = c->w->now + timeout_ms;
    watch(reads_of(c), op);
    sim_task_at(c, timeout_ms, expire_task, NULL);
}

static void finish(struct sim_cluster *c, struct rop *op, uint8_t status)
{
    op->status = status;
    op->ret = status == SIM_OP_UNKNOWN ? UINT64_MAX : c->w->now;
    op->lease_wait = false;
    bool keep_watching = status == SIM_OP_UNKNOWN;
    if (!keep_watching) {
        unwatch(reads_of(c), op);
    }
    CRAFT_TRACE(CRAFT_T_CLIENT, c->w->now, (uint64_t)op->node + 1, 0,
                "client %d op %llu (%s %s) %s", op->client, (unsigned long long)op->id,
                op->kind == SIM_LIN_GET ? "get" : op->kind == SIM_LIN_PUT ? "put" : "append",
                op->key,
                status == SIM_OP_OK ? "ok" : status == SIM_OP_FAILED ? "failed" : "unknown");
}

/* Serves read op from node's map. */
static void serve(struct sim_node *node, struct rop *op)
{
    size_t len;
    const uint8_t *v = sim_kv_get(node->kv, op->key, op->key_len, &len);
    op->value = sim_xrealloc(op->value, len);
    if (len > 0) {
        memcpy(op->value, v, len);
    }
    op->value_len = len;
    finish(node->c, op, SIM_OP_OK);
}

static bool node_up(const struct sim_cluster *c, int i)
{
    return i >= 0 && i < c->n && c->nodes[i].alive;
}

uint64_t sim_reads_write(struct sim_cluster *c, int client, int i, uint8_t kind, const char *key,
                         const char *value, uint64_t timeout_ms)
{
    CRAFT_ASSERT(kind == SIM_LIN_PUT || kind == SIM_LIN_APPEND);
    struct sim_reads *R = reads_of(c);
    if (!node_up(c, i)) {
        R->refused++;
        return 0;
    }
    struct sim_node *node = &c->nodes[i];
    struct rop *op = op_new(c, client, kind, key);
    size_t vlen = strlen(value);
    CRAFT_ASSERT(vlen <= SIM_KV_VALUE_MAX);
    op->value = sim_xrealloc(NULL, vlen);
    memcpy(op->value, value, vlen);
    op->value_len = vlen;
    op->node = i;
    op->incarnation = node->incarnation;

    struct sim_kv_op kop = {.client = (uint64_t)client, .op = op->id, .kind = kind,
                            .key_len = op->key_len, .value = op->value,
                            .value_len = (uint32_t)vlen};
    memcpy(kop.key, op->key, op->key_len + 1);
    uint8_t buf[SIM_KV_OP_BYTES_MAX];
    size_t len = sim_kv_encode(&kop, buf, sizeof buf);
    uint64_t index = 0, term = 0;
    sim_node_work(node);
    int err = craft_driver_propose(node->d, buf, (uint32_t)len, sim_node_now(node), &index, &term);
    sim_node_after(node);
    if (err != CRAFT_OK) {
        op_drop_last(R, op);
        return 0;
    }
    op->log_index = index;
    CRAFT_TRACE(CRAFT_T_CLIENT, c->w->now, (uint64_t)i + 1, term,
                "client %d op %llu: %s %s += \"%s\" proposed at %llu", client,
                (unsigned long long)op->id, kind == SIM_LIN_PUT ? "put" : "append", key, value,
                (unsigned long long)index);
    uint64_t id = op->id;
    pending(c, op, timeout_ms);
    return id;
}

uint64_t sim_reads_read(struct sim_cluster *c, int client, int i, enum sim_read_mode mode,
                        const char *key, uint64_t timeout_ms)
{
    CRAFT_ASSERT(mode >= 0 && mode < SIM_READ_MODES_);
    struct sim_reads *R = reads_of(c);
    if (!node_up(c, i)) {
        R->refused++;
        return 0;
    }
    struct sim_node *node = &c->nodes[i];
    struct rop *op = op_new(c, client, SIM_LIN_GET, key);
    op->mode = (uint8_t)mode;
    op->node = i;
    op->incarnation = node->incarnation;
    uint64_t id = op->id;
    int err;
    sim_node_work(node);
    if (mode == SIM_READ_LEASE) {
        uint64_t index = 0;
        err = craft_driver_read_lease(node->d, sim_node_now(node), &index);
        sim_node_after(node);
        if (err == CRAFT_OK) {
            pending(c, op, timeout_ms);
            if (sim_kv_applied(node->kv) >= index) {
                serve(node, op);
            } else {
                op->lease_wait = true;
                op->lease_index = index;
            }
            return id;
        }
        if (err != CRAFT_ESTALE) {
            op_drop_last(R, op);
            return 0;
        }
        op->fell_back = true;
        R->lease_fallbacks++;
    }
    /* The read port may answer inside the call: be pending before it. */
    pending(c, op, timeout_ms);
    err = craft_driver_read_index(node->d, id, sim_node_now(node));
    sim_node_after(node);
    op = op_get(R, id);
    if (err != CRAFT_OK) {
        CRAFT_ASSERT(op->status == SIM_OP_PENDING);
        unwatch(R, op);
        op_drop_last(R, op);
        return 0;
    }
    return id;
}

void sim_reads_expire(struct sim_cluster *c)
{
    struct sim_reads *R = reads_of(c);
    for (size_t k = 0; k < R->n_watch;) {
        struct rop *op = op_get(R, R->watch[k]);
        if (op->status != SIM_OP_PENDING || c->w->now < op->deadline) {
            k++;
            continue;
        }
        /* finish() may remove watch[k]: look at k again. */
        finish(c, op, op->kind == SIM_LIN_GET ? SIM_OP_FAILED : SIM_OP_UNKNOWN);
        if (op->watched) {
            k++;
        }
    }
}

enum sim_op_status sim_reads_status(const struct sim_cluster *c, uint64_t id)
{
    return (enum sim_op_status)op_get(reads_of(c), id)->status;
}

const uint8_t *sim_reads_value(const struct sim_cluster *c, uint64_t id, size_t *len)
{
    const struct rop *op = op_get(reads_of(c), id);
    *len = op->value_len;
    return op->value;
}

size_t sim_reads_pending(const struct sim_cluster *c)
{
    const struct sim_reads *R = reads_of(c);
    size_t n = 0;
    for (size_t k = 0; k < R->n_watch; k++) {
        n += op_get(R, R->watch[k])->status == SIM_OP_PENDING;
    }
    return n;
}

/* ---- hooks ---- */

void sim_reads_on_apply(struct sim_node *node, const struct craft_entry *e,
                        const struct sim_kv_op *kop)
{
    struct sim_cluster *c = node->c;
    struct sim_reads *R = c->reads;
    if (R == NULL) {
        return;
    }
    for (size_t k = 0; k < R->n_watch;) {
        struct rop *op = op_get(R, R->watch[k]);
        if (op->kind != SIM_LIN_GET && op->log_index == e->index) {
            bool ours = kop != NULL && kop->op == op->id && kop->client == (uint64_t)op->client;
            if (!ours) {
                finish(c, op, SIM_OP_FAILED); /* another entry holds its index */
                op->ret = 0;
                continue;
            }
            if (op->status == SIM_OP_UNKNOWN) {
                unwatch(R, op); /* it took effect; its return stays unknown */
                continue;
            }
            if (op->node == node->i && op->incarnation == node->incarnation) {
                finish(c, op, SIM_OP_OK);
                continue;
            }
        } else if (op->lease_wait && op->node == node->i &&
                   op->incarnation == node->incarnation && op->lease_index <= e->index) {
            serve(node, op);
            continue;
        }
        k++;
    }
}

void sim_reads_port_read(void *ctx, const struct craft_read_state *r)
{
    struct sim_node *node = ctx;
    struct sim_cluster *c = node->c;
    struct sim_reads *R = c->reads;
    if (R == NULL || r->ctx == 0 || r->ctx > R->n_ops) {
        return;
    }
    struct rop *op = op_get(R, r->ctx);
    if (op->status != SIM_OP_PENDING || op->node != node->i ||
        op->incarnation != node->incarnation || op->kind != SIM_LIN_GET) {
        return; /* given up already */
    }
    if (r->err != CRAFT_OK) {
        finish(c, op, SIM_OP_FAILED);
        return;
    }
    if (sim_kv_applied(node->kv) < r->index) {
        sim_fail(c, "server %d: read %llu may be served at index %llu but applied is %llu",
                 node->i, (unsigned long long)r->ctx, (unsigned long long)r->index,
                 (unsigned long long)sim_kv_applied(node->kv));
    }
    serve(node, op);
}

/* ---- random clients ---- */

static int pick_node(struct sim_cluster *c, bool want_leader)
{
    int cand[CRAFT_CONF_NODES_MAX], n_cand = 0, alive[CRAFT_CONF_NODES_MAX], n_alive = 0;
    for (int i = 0; i < c->n; i++) {
        if (!c->nodes[i].alive) {
            continue;
        }
        alive[n_alive++] = i;
        uint64_t term;
        bool leader;
        sim_get_state(c, i, &term, &leader);
        if (leader == want_leader) {
            cand[n_cand++] = i;
        }
    }
    if (n_cand > 0) {
        return cand[sim_rand(c, 0, (uint64_t)n_cand)];
    }
    return n_alive > 0 ? alive[sim_rand(c, 0, (uint64_t)n_alive)] : -1;
}

static void client_loop(struct sim_cluster *c, void *arg)
{
    struct client *cl = arg;
    struct sim_reads *R = reads_of(c);
    const struct sim_reads_opts *o = &R->o;
    if (cl->op != 0 && op_get(R, cl->op)->status == SIM_OP_PENDING) {
        sim_task_at(c, 5, client_loop, cl);
        return;
    }
    cl->op = 0;
    if (cl->stop) {
        return;
    }
    char key[SIM_KV_KEY_MAX + 1];
    snprintf(key, sizeof key, "k%d", (int)sim_rand(c, 0, (uint64_t)o->n_keys));
    uint64_t r = sim_rand(c, 0, 100);
    if (r < o->put_pct + o->append_pct) {
        uint8_t kind = r < o->put_pct ? SIM_LIN_PUT : SIM_LIN_APPEND;
        char value[32];
        snprintf(value, sizeof value, "c%d.%llu;", cl->id, (unsigned long long)++cl->seq);
        cl->op = sim_reads_write(c, cl->id, pick_node(c, true), kind, key, value,
                                 o->op_timeout_ms);
    } else {
        int modes[SIM_READ_MODES_], n_modes = 0;
        for (int m = 0; m < SIM_READ_MODES_; m++) {
            if (o->modes[m]) {
                modes[n_modes++] = m;
            }
        }
        CRAFT_ASSERT(n_modes > 0);
        int mode = modes[sim_rand(c, 0, (uint64_t)n_modes)];
        int i = pick_node(c, mode != SIM_READ_FOLLOWER);
        cl->op = sim_reads_read(c, cl->id, i, (enum sim_read_mode)mode, key, o->op_timeout_ms);
    }
    sim_task_at(c, sim_rand(c, 1, o->think_ms_max + 1), client_loop, cl);
}

void sim_reads_start(struct sim_cluster *c, const struct sim_reads_opts *o)
{
    sim_reads_attach(c);
    struct sim_reads *R = c->reads;
    CRAFT_ASSERT(o->n_clients > 0 && o->n_keys > 0 && o->put_pct + o->append_pct <= 100);
    CRAFT_ASSERT(o->op_timeout_ms > 0 && o->think_ms_max > 0);
    R->o = *o;
    R->clients = sim_xrealloc(R->clients, (R->n_clients + (size_t)o->n_clients) * sizeof *R->clients);
    for (int k = 0; k < o->n_clients; k++) {
        struct client *cl = calloc(1, sizeof *cl);
        CRAFT_ASSERT(cl != NULL);
        cl->c = c;
        cl->id = (int)R->n_clients + 1;
        R->clients[R->n_clients++] = cl;
        sim_task_at(c, (uint64_t)k, client_loop, cl);
    }
}

void sim_reads_stop(struct sim_cluster *c)
{
    struct sim_reads *R = reads_of(c);
    for (size_t k = 0; k < R->n_clients; k++) {
        R->clients[k]->stop = true;
    }
}

bool sim_reads_has_lease(struct sim_cluster *c, int i)
{
    struct sim_node *node = &c->nodes[i];
    CRAFT_ASSERT(node->alive);
    uint64_t index = 0;
    sim_node_work(node);
    int err = craft_driver_read_lease(node->d, sim_node_now(node), &index);
    sim_node_after(node);
    return err == CRAFT_OK;
}

void sim_reads_final_read(struct sim_cluster *c, const char *key, uint64_t budget_ms)
{
    CRAFT_ASSERT(!c->in_task);
    uint64_t t0 = c->w->now;
    while (c->w->now - t0 < budget_ms) {
        int i = -1;
        for (int j = 0; j < c->n; j++) {
            bool leader = false;
            if (c->nodes[j].alive) {
                sim_get_state(c, j, NULL, &leader);
            }
            if (leader && c->connected[j]) {
                i = j;
            }
        }
        uint64_t id = i >= 0 ? sim_reads_read(c, 0, i, SIM_READ_INDEX, key, 2000) : 0;
        while (id != 0 && sim_reads_status(c, id) == SIM_OP_PENDING) {
            sim_sleep(c, 5);
        }
        if (id != 0 && sim_reads_status(c, id) == SIM_OP_OK) {
            return;
        }
        sim_sleep(c, 20);
    }
    sim_fail(c, "final read of %s did not succeed within %llu ms", key,
             (unsigned long long)budget_ms);
}

/* ---- the end ---- */

static bool same_key(const struct rop *a, const struct rop *b)
{
    return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

struct done_append {
    uint64_t ret;
    size_t end; /* where its token ends in the reference value (SIZE_MAX: absent) */
    const struct rop *w;
};

static int cmp_append(const void *a, const void *b)
{
    const struct done_append *x = a, *y = b;
    return x->ret < y->ret ? -1 : x->ret > y->ret;
}

/* Appends are unique tokens, so on a key without puts every state is a prefix of the
 * longest value read (the final read's), and a read that began after an append completed
 * must be at least as long as where that append's token ends. */
static void check_key_no_stale(struct sim_cluster *c, const struct rop *key_op)
{
    struct sim_reads *R = c->reads;
    const struct rop *ref = NULL;
    size_t n_app = 0;
    for (size_t k = 0; k < R->n_ops; k++) {
        const struct rop *op = &R->ops[k];
        if (!same_key(op, key_op) || (op->status != SIM_OP_OK && op->status != SIM_OP_UNKNOWN)) {
            continue;
        }
        if (op->kind == SIM_LIN_PUT) {
            return; /* a put may overwrite tokens legitimately */
        }
        if (op->kind == SIM_LIN_GET && (ref == NULL || op->value_len > ref->value_len)) {
            ref = op;
        }
        n_app += op->kind == SIM_LIN_APPEND && op->status == SIM_OP_OK;
    }
    if (ref == NULL) {
        return;
    }
    struct done_append *a = sim_xrealloc(NULL, n_app * sizeof *a);
    size_t m = 0;
    for (size_t k = 0; k < R->n_ops; k++) {
        const struct rop *w = &R->ops[k];
        if (w->kind != SIM_LIN_APPEND || w->status != SIM_OP_OK || !same_key(w, key_op)) {
            continue;
        }
        const uint8_t *at = memmem(ref->value, ref->value_len, w->value, w->value_len);
        a[m++] = (struct done_append){
            .ret = w->ret, .w = w,
            .end = at != NULL ? (size_t)(at - ref->value) + w->value_len : SIZE_MAX};
    }
    qsort(a, m, sizeof *a, cmp_append);
    /* a[j].end becomes the max over a[0..j]; a[j].w the append that reaches it. */
    for (size_t j = 1; j < m; j++) {
        if (a[j - 1].end > a[j].end) {
            a[j].end = a[j - 1].end;
            a[j].w = a[j - 1].w;
        }
    }
    for (size_t k = 0; k < R->n_ops; k++) {
        const struct rop *rd = &R->ops[k];
        if (rd->kind != SIM_LIN_GET || rd->status != SIM_OP_OK || !same_key(rd, key_op)) {
            continue;
        }
        if (rd->value_len > 0 && memcmp(rd->value, ref->value, rd->value_len) != 0) {
            sim_fail(c, "read op %llu of %s (server %d, mode %d) is not a prefix of op %llu's",
                     (unsigned long long)rd->id, rd->key, rd->node, rd->mode,
                     (unsigned long long)ref->id);
        }
        size_t lo = 0, hi = m; /* appends with ret < call: a[0..lo) */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (a[mid].ret < rd->call) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (lo > 0 && a[lo - 1].end > rd->value_len) {
            const struct rop *w = a[lo - 1].w;
            sim_fail(c,
                     "stale read: op %llu (get %s, mode %d, on server %d, [%llu, %llu]) "
                     "misses append op %llu (\"%.*s\", completed at %llu on server %d)",
                     (unsigned long long)rd->id, rd->key, rd->mode, rd->node,
                     (unsigned long long)rd->call, (unsigned long long)rd->ret,
                     (unsigned long long)w->id, (int)w->value_len, (const char *)w->value,
                     (unsigned long long)w->ret, w->node);
        }
    }
    free(a);
}

static void check_no_stale(struct sim_cluster *c)
{
    struct sim_reads *R = c->reads;
    for (size_t k = 0; k < R->n_ops; k++) {
        bool first = true;
        for (size_t j = 0; j < k && first; j++) {
            first = !same_key(&R->ops[j], &R->ops[k]);
        }
        if (first) {
            check_key_no_stale(c, &R->ops[k]);
        }
    }
}

static void resolve_unknown(struct sim_cluster *c)
{
    struct sim_reads *R = c->reads;
    for (size_t k = 0; k < R->n_watch;) {
        struct rop *op = op_get(R, R->watch[k]);
        if (op->status != SIM_OP_UNKNOWN) {
            k++;
            continue;
        }
        uint32_t len;
        const uint8_t *data = sim_committed_data(c, op->log_index, &len);
        struct sim_kv_op kop;
        if (data != NULL || sim_check_committed(&c->ch, op->log_index) != NULL) {
            bool ours = data != NULL && sim_kv_decode(data, len, &kop) && kop.op == op->id &&
                        kop.client == (uint64_t)op->client;
            if (!ours) {
                op->status = SIM_OP_FAILED;
            }
            unwatch(R, op);
            continue;
        }
        k++;
    }
}

void sim_reads_check(struct sim_cluster *c, uint64_t budget_steps)
{
    struct sim_reads *R = reads_of(c);
    resolve_unknown(c);
    check_no_stale(c);
    struct sim_lin_op *h = sim_xrealloc(NULL, R->n_ops * sizeof *h);
    size_t n = 0, unknown = 0;
    for (size_t k = 0; k < R->n_ops; k++) {
        const struct rop *op = &R->ops[k];
        if (op->status != SIM_OP_OK && op->status != SIM_OP_UNKNOWN) {
            continue;
        }
        unknown += op->status == SIM_OP_UNKNOWN;
        bool get = op->kind == SIM_LIN_GET;
        h[n++] = (struct sim_lin_op){
            .client = (uint64_t)op->client, .kind = op->kind,
            .key = (const uint8_t *)op->key, .key_len = op->key_len,
            .input = get ? NULL : op->value, .input_len = get ? 0 : op->value_len,
            .output = get ? op->value : NULL, .output_len = get ? op->value_len : 0,
            .call = op->call, .ret = op->ret};
    }
    char *desc = malloc(DESC_CAP);
    CRAFT_ASSERT(desc != NULL);
    struct sim_lin_result res = {.desc = desc, .desc_cap = DESC_CAP};
    enum sim_lin_verdict v = sim_linearize_check(h, n, budget_steps, &res);
    free(h);
    R->lin_steps = res.steps;
    sim_note(c, "linearizability: %s (%zu ops, %zu with unknown outcome, %zu keys, %llu steps)",
             sim_lin_verdict_name(v), n, unknown, res.n_keys, (unsigned long long)res.steps);
    if (v != SIM_LIN_OK) {
        /* sim_fail never returns: the description goes with it. */
        sim_fail(c, "history is %s (%zu ops, %llu steps):\n%s", sim_lin_verdict_name(v), n,
                 (unsigned long long)res.steps, desc);
    }
    free(desc);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void sim_reads_get_stats(const struct sim_cluster *c, struct sim_reads_stats *out)
{
    const struct sim_reads *R = reads_of(c);
    *out = (struct sim_reads_stats){.refused = R->refused, .lease_fallbacks = R->lease_fallbacks,
                                     .lin_steps = R->lin_steps};
    uint64_t *lat = sim_xrealloc(NULL, R->n_ops * sizeof *lat);
    for (int m = 0; m < SIM_READ_MODES_; m++) {
        size_t n = 0;
        uint64_t sum = 0;
        for (size_t k = 0; k < R->n_ops; k++) {
            const struct rop *op = &R->ops[k];
            if (op->kind != SIM_LIN_GET || op->mode != m) {
                continue;
            }
            if (op->status == SIM_OP_OK) {
                lat[n++] = op->ret - op->call;
                sum += op->ret - op->call;
            } else if (op->status == SIM_OP_FAILED) {
                out->reads_failed[m]++;
            }
        }
        out->reads_ok[m] = n;
        if (n > 0) {
            qsort(lat, n, sizeof *lat, cmp_u64);
            out->lat_mean[m] = (double)sum / (double)n;
            out->lat_p99[m] = lat[(n * 99 + 99) / 100 - 1];
            out->lat_max[m] = lat[n - 1];
        }
    }
    free(lat);
    for (size_t k = 0; k < R->n_ops; k++) {
        const struct rop *op = &R->ops[k];
        if (op->kind == SIM_LIN_GET) {
            continue;
        }
        out->writes_ok += op->status == SIM_OP_OK;
        out->writes_failed += op->status == SIM_OP_FAILED;
        out->writes_unknown += op->status == SIM_OP_UNKNOWN;
    }
}

void sim_reads_note_stats(struct sim_cluster *c)
{
    struct sim_reads_stats s;
    sim_reads_get_stats(c, &s);
    static const char *const names[SIM_READ_MODES_] = {"read-index", "lease", "follower"};
    sim_note(c, "writes: %llu ok, %llu failed, %llu unknown; %llu refused, %llu lease fallbacks",
             (unsigned long long)s.writes_ok, (unsigned long long)s.writes_failed,
             (unsigned long long)s.writes_unknown, (unsigned long long)s.refused,
             (unsigned long long)s.lease_fallbacks);
    for (int m = 0; m < SIM_READ_MODES_; m++) {
        sim_note(c, "%s reads: %llu ok, %llu failed, latency mean %.1f p99 %llu max %llu ms",
                 names[m], (unsigned long long)s.reads_ok[m],
                 (unsigned long long)s.reads_failed[m], s.lat_mean[m],
                 (unsigned long long)s.lat_p99[m], (unsigned long long)s.lat_max[m]);
    }
}

void sim_reads_free(struct sim_cluster *c)
{
    struct sim_reads *R = c->reads;
    if (R == NULL) {
        return;
    }
    for (size_t k = 0; k < R->n_ops; k++) {
        free(R->ops[k].value);
    }
    for (size_t k = 0; k < R->n_clients; k++) {
        free(R->clients[k]);
    }
    free(R->ops);
    free(R->watch);
    free(R->clients);
    free(R);
    c->reads = NULL;
}
