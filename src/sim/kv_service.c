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
#include "sim/kv_history.h"
#include "sim/kv_replica.h"
#include "sim/clock.h"
#include "sim/linearize.h"
#include "sim/rsm.h"
#include "sim/sim_internal.h"
#include "sim/world.h"

#define KEY_MAX 32u

struct server {
    struct sim_kv_replica r;
};

struct sim_kvs_clerk {
    struct sim_kvs *s;
    struct sim_rsm_clerk *rc;
    uint64_t client;
    uint64_t session, seq;
    bool opened;
    /* the current op */
    bool busy;
    uint8_t kind;
    char key[KEY_MAX];
    char *value;
    size_t value_len;
    uint64_t call;
    sim_kvs_done_fn done;
    void *arg;
    char *res;
    size_t res_len, res_cap;
};

struct sim_kvs {
    int n;
    struct sim_rsm *rsm;
    struct sim_cluster *c;
    struct server *servers;
    struct sim_kvs_clerk **clerks;
    size_t n_clerks, cap_clerks;
    uint64_t next_session;
    struct sim_kv_history *hist;
};

static char *xstrndup(const char *s, size_t n)
{
    char *p = sim_xrealloc(NULL, n + 1);
    if (n > 0) {
        memcpy(p, s, n);
    }
    p[n] = '\0';
    return p;
}

/* ---- the servers' state machines (sim_rsm_service) ---- */

static void svc_start(void *ctx, int i)
{
    struct sim_kvs *s = ctx;
    sim_kv_replica_open(&s->servers[i].r, 0);
}

static void svc_apply(void *ctx, int i, const struct craft_entry *e)
{
    struct sim_kvs *s = ctx;
    struct server *sv = &s->servers[i];
    struct craft_kv_result *res = NULL;
    int err = sim_kv_replica_apply(&sv->r, e->index, e->data, e->len, &res);
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

/* A get is a NOOP of the clerk's session: the value is read right after it applies, so
 * the read is linearized at that entry. Other commands reply nothing. */
static void svc_reply(void *ctx, int i, void *ck_arg, const struct craft_entry *e,
                      uint8_t **reply, size_t *len)
{
    struct sim_kvs *s = ctx;
    const struct sim_kvs_clerk *ck = ck_arg;
    struct server *sv = &s->servers[i];
    *reply = NULL;
    *len = 0;
    struct craft_kv_cmd cmd;
    CRAFT_ASSERT(craft_kv_cmd_decode(e->data, e->len, &cmd) == CRAFT_OK);
    if (ck->kind != SIM_LIN_GET || cmd.op != CRAFT_KV_OP_NOOP) {
        return;
    }
    struct craft_kv_read *rd;
    CRAFT_ASSERT(craft_kv_read_begin(sv->r.sm, &rd) == CRAFT_OK);
    const uint8_t *v = NULL;
    size_t vlen = 0;
    int err = craft_kv_read_get(rd, (const uint8_t *)ck->key, strlen(ck->key), &v, &vlen);
    CRAFT_ASSERT(err == CRAFT_OK || err == CRAFT_ENOTFOUND);
    if (err != CRAFT_OK) {
        vlen = 0;
    }
    *reply = (uint8_t *)xstrndup((const char *)v, vlen);
    *len = vlen;
    craft_kv_read_end(rd);
}

static const uint8_t *svc_snapshot(void *ctx, int i, size_t *len)
{
    struct sim_kvs *s = ctx;
    return sim_kv_replica_snapshot(&s->servers[i].r, len);
}

static void svc_restore(void *ctx, int i, const uint8_t *blob, size_t len, uint64_t index)
{
    struct sim_kvs *s = ctx;
    int err = sim_kv_replica_restore(&s->servers[i].r, blob, len);
    if (err != CRAFT_OK) {
        sim_fail(s->c, "server %d: kv snapshot %llu does not restore: %s", i,
                 (unsigned long long)index, craft_strerror(err));
    }
}

/* ---- the service ---- */

struct sim_kvs *sim_kvs_create(int n, int maxraftstate)
{
    CRAFT_ASSERT(n >= 1 && n <= CRAFT_CONF_NODES_MAX);
    struct sim_kvs *s = sim_xrealloc(NULL, sizeof *s);
    *s = (struct sim_kvs){.n = n, .next_session = 1, .hist = sim_kv_history_new()};
    s->servers = sim_xrealloc(NULL, (size_t)n * sizeof *s->servers);
    memset(s->servers, 0, (size_t)n * sizeof *s->servers);
    struct sim_rsm_service svc = {.ctx = s, .start = svc_start, .apply = svc_apply,
                                  .reply = svc_reply, .snapshot = svc_snapshot,
                                  .restore = svc_restore};
    s->rsm = sim_rsm_create(n, maxraftstate, &svc);
    return s;
}

void sim_kvs_set_opts(struct sim_kvs *s, struct sim_cluster_opts *opts)
{
    sim_rsm_set_opts(s->rsm, opts);
}

void sim_kvs_bind(struct sim_kvs *s, struct sim_cluster *c)
{
    s->c = c;
    sim_rsm_bind(s->rsm, c);
}

void sim_kvs_destroy(struct sim_kvs *s)
{
    sim_rsm_destroy(s->rsm);
    for (int i = 0; i < s->n; i++) {
        sim_kv_replica_free(&s->servers[i].r);
    }
    free(s->servers);
    for (size_t k = 0; k < s->n_clerks; k++) {
        free(s->clerks[k]->value);
        free(s->clerks[k]->res);
        free(s->clerks[k]);
    }
    free(s->clerks);
    sim_kv_history_free(s->hist);
    free(s);
}

int sim_kvs_leader(struct sim_kvs *s)
{
    return sim_rsm_leader(s->rsm);
}

size_t sim_kvs_snapshot_size(const struct sim_kvs *s)
{
    return sim_rsm_snapshot_size(s->rsm);
}

uint64_t sim_kvs_ops(const struct sim_kvs *s)
{
    return sim_kv_history_len(s->hist);
}

uint64_t sim_kvs_attempts(const struct sim_kvs *s)
{
    return sim_rsm_attempts(s->rsm);
}

/* ---- an op: the session's opening if it has none yet, then the command ---- */

static uint8_t *encode(struct sim_kvs_clerk *ck, bool opening, size_t *len)
{
    struct craft_kv_cmd cmd = {.session = ck->session, .now_ms = sim_now(ck->s->c)};
    if (opening) {
        cmd.op = CRAFT_KV_OP_SESSION_OPEN;
    } else {
        cmd.seq = ck->seq;
        cmd.op = ck->kind == SIM_LIN_GET   ? CRAFT_KV_OP_NOOP
                 : ck->kind == SIM_LIN_PUT ? CRAFT_KV_OP_SET
                                           : CRAFT_KV_OP_APPEND;
        if (cmd.op != CRAFT_KV_OP_NOOP) {
            cmd.key = (struct craft_kv_bytes){(const uint8_t *)ck->key, (uint32_t)strlen(ck->key)};
            cmd.value = (struct craft_kv_bytes){(const uint8_t *)ck->value,
                                                (uint32_t)ck->value_len};
        }
    }
    size_t size = craft_kv_cmd_size(&cmd);
    CRAFT_ASSERT(size > 0);
    uint8_t *buf = sim_xrealloc(NULL, size);
    CRAFT_ASSERT(craft_kv_cmd_encode(&cmd, buf, size, len) == CRAFT_OK);
    return buf;
}

static void record(struct sim_kvs_clerk *ck)
{
    sim_kv_history_add(ck->s->hist, ck->client, ck->kind, ck->key, ck->value, ck->value_len,
                       ck->res, ck->res_len, ck->call, sim_now(ck->s->c));
}

static void op_done(struct sim_rsm_clerk *rc, void *arg, const uint8_t *reply, size_t len)
{
    struct sim_kvs_clerk *ck = arg;
    (void)rc;
    if (ck->kind == SIM_LIN_GET) {
        if (len + 1 > ck->res_cap) {
            ck->res_cap = len + 1;
            ck->res = sim_xrealloc(ck->res, ck->res_cap);
        }
        if (len > 0) {
            memcpy(ck->res, reply, len);
        }
        ck->res[len] = '\0';
        ck->res_len = len;
    }
    record(ck);
    ck->busy = false;
    if (ck->done != NULL) {
        ck->done(ck, ck->arg, ck->res, ck->res_len);
    }
}

static void send_op(struct sim_kvs_clerk *ck)
{
    size_t len;
    uint8_t *cmd = encode(ck, false, &len);
    sim_rsm_call(ck->rc, cmd, len, op_done, ck);
}

static void opened(struct sim_rsm_clerk *rc, void *arg, const uint8_t *reply, size_t len)
{
    struct sim_kvs_clerk *ck = arg;
    (void)rc;
    (void)reply;
    (void)len;
    ck->opened = true;
    send_op(ck);
}

/* ---- clerks ---- */

struct sim_kvs_clerk *sim_kvs_clerk(struct sim_kvs *s, uint64_t client)
{
    struct sim_kvs_clerk *ck = sim_xrealloc(NULL, sizeof *ck);
    *ck = (struct sim_kvs_clerk){.s = s, .client = client, .session = s->next_session++};
    ck->rc = sim_rsm_clerk(s->rsm, ck);
    ck->res = xstrndup("", 0);
    ck->res_cap = 1;
    if (s->n_clerks == s->cap_clerks) {
        s->cap_clerks = s->cap_clerks ? s->cap_clerks * 2 : 16;
        s->clerks = sim_xrealloc(s->clerks, s->cap_clerks * sizeof *s->clerks);
    }
    s->clerks[s->n_clerks++] = ck;
    return ck;
}

void sim_kvs_clerk_link(struct sim_kvs_clerk *ck, int i, bool on)
{
    sim_rsm_clerk_link(ck->rc, i, on);
}

void sim_kvs_clerk_only(struct sim_kvs_clerk *ck, const int *servers, int n)
{
    sim_rsm_clerk_only(ck->rc, servers, n);
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
    ck->seq++;
    if (ck->opened) {
        send_op(ck);
    } else {
        size_t len;
        uint8_t *cmd = encode(ck, true, &len);
        sim_rsm_call(ck->rc, cmd, len, opened, ck);
    }
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
    sim_kv_history_check(s->hist, s->c, budget_steps);
}
