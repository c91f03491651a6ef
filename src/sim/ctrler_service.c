/* The shardctrler service on the simulator (ctrler_service.h): shard controllers on the
 * nodes, clerks with client ids over the replicated-service plumbing (rsm.h). */
#include "sim/ctrler_service.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/bytes.h"
#include "base/err.h"
#include "sim/clock.h"
#include "sim/rsm.h"
#include "sim/sim_internal.h"
#include "sim/world.h"

/* A reply: u8 status (0 OK, 1 EINVAL, 2 ESTALE) | u64 num | a query's configuration. */
#define REPLY_HEADER_BYTES 9u

struct server {
    struct craft_shard_ctrler *ctl;
    struct craft_shard_ctrler_result last; /* the answer to the entry applied last */
    uint8_t *snap;
    size_t snap_len;
};

struct sim_ctl_clerk {
    struct sim_ctl *s;
    struct sim_rsm_clerk *rc;
    uint64_t client, seq; /* client 0: not registered yet */
    bool busy;
    bool registering; /* the call under way is the REGISTER ahead of req */
    struct craft_shard_request req;
    struct craft_shard_config config;
    sim_ctl_done_fn done;
    void *arg;
    struct sim_ctl_answer answer; /* the last call's */
};

struct sim_ctl {
    int n;
    struct sim_rsm *rsm;
    struct sim_cluster *c;
    struct server *servers;
    struct sim_ctl_clerk **clerks;
    size_t n_clerks;
};

/* ---- the servers' state machines ---- */

static void svc_start(void *ctx, int i)
{
    struct sim_ctl *s = ctx;
    struct server *sv = &s->servers[i];
    craft_shard_ctrler_close(sv->ctl);
    CRAFT_ASSERT(craft_shard_ctrler_open(&sv->ctl) == CRAFT_OK);
}

static void svc_apply(void *ctx, int i, const struct craft_entry *e)
{
    struct sim_ctl *s = ctx;
    struct server *sv = &s->servers[i];
    int err = craft_shard_ctrler_apply(sv->ctl, e->index, e->data, e->len, &sv->last);
    if (err != CRAFT_OK) {
        sim_fail(s->c, "server %d: controller apply at %llu: %s", i,
                 (unsigned long long)e->index, craft_strerror(err));
    }
}

static void svc_reply(void *ctx, int i, void *ck_arg, const struct craft_entry *e,
                      uint8_t **reply, size_t *len)
{
    struct sim_ctl *s = ctx;
    const struct craft_shard_ctrler_result *r = &s->servers[i].last;
    (void)ck_arg;
    (void)e;
    *len = REPLY_HEADER_BYTES + r->config_len;
    *reply = sim_xrealloc(NULL, *len);
    (*reply)[0] = r->status == CRAFT_OK ? 0 : r->status == CRAFT_EINVAL ? 1 : 2;
    craft_put_u64(*reply + 1, r->num);
    if (r->config_len > 0) {
        memcpy(*reply + REPLY_HEADER_BYTES, r->config, r->config_len);
    }
}

static const uint8_t *svc_snapshot(void *ctx, int i, size_t *len)
{
    struct sim_ctl *s = ctx;
    struct server *sv = &s->servers[i];
    free(sv->snap);
    sv->snap = NULL;
    CRAFT_ASSERT(craft_shard_ctrler_snapshot(sv->ctl, &sv->snap, &sv->snap_len) == CRAFT_OK);
    *len = sv->snap_len;
    return sv->snap;
}

static void svc_restore(void *ctx, int i, const uint8_t *blob, size_t len, uint64_t index)
{
    struct sim_ctl *s = ctx;
    int err = craft_shard_ctrler_restore(s->servers[i].ctl, blob, len, index);
    if (err != CRAFT_OK) {
        sim_fail(s->c, "server %d: controller snapshot %llu does not restore: %s", i,
                 (unsigned long long)index, craft_strerror(err));
    }
}

/* ---- the service ---- */

struct sim_ctl *sim_ctl_create(int n, int maxraftstate)
{
    struct sim_ctl *s = sim_xrealloc(NULL, sizeof *s);
    *s = (struct sim_ctl){.n = n};
    s->servers = sim_xrealloc(NULL, (size_t)n * sizeof *s->servers);
    memset(s->servers, 0, (size_t)n * sizeof *s->servers);
    struct sim_rsm_service svc = {.ctx = s, .start = svc_start, .apply = svc_apply,
                                  .reply = svc_reply, .snapshot = svc_snapshot,
                                  .restore = svc_restore};
    s->rsm = sim_rsm_create(n, maxraftstate, &svc);
    return s;
}

void sim_ctl_set_opts(struct sim_ctl *s, struct sim_cluster_opts *opts)
{
    sim_rsm_set_opts(s->rsm, opts);
}

void sim_ctl_bind(struct sim_ctl *s, struct sim_cluster *c)
{
    s->c = c;
    sim_rsm_bind(s->rsm, c);
}

void sim_ctl_destroy(struct sim_ctl *s)
{
    sim_rsm_destroy(s->rsm);
    for (int i = 0; i < s->n; i++) {
        craft_shard_ctrler_close(s->servers[i].ctl);
        free(s->servers[i].snap);
    }
    free(s->servers);
    for (size_t k = 0; k < s->n_clerks; k++) {
        free(s->clerks[k]);
    }
    free(s->clerks);
    free(s);
}

int sim_ctl_leader(struct sim_ctl *s)
{
    return sim_rsm_leader(s->rsm);
}

uint64_t sim_ctl_server_latest(const struct sim_ctl *s, int i)
{
    CRAFT_ASSERT(i >= 0 && i < s->n && s->servers[i].ctl != NULL);
    return craft_shard_ctrler_latest(s->servers[i].ctl)->num;
}

/* ---- clerks ---- */

struct sim_ctl_clerk *sim_ctl_clerk(struct sim_ctl *s)
{
    struct sim_ctl_clerk *ck = sim_xrealloc(NULL, sizeof *ck);
    memset(ck, 0, sizeof *ck);
    ck->s = s;
    ck->rc = sim_rsm_clerk(s->rsm, ck);
    s->clerks = sim_xrealloc(s->clerks, (s->n_clerks + 1) * sizeof *s->clerks);
    s->clerks[s->n_clerks++] = ck;
    return ck;
}

static void send_req(struct sim_ctl_clerk *ck);

static void call_done(struct sim_rsm_clerk *rc, void *arg, const uint8_t *reply, size_t len)
{
    struct sim_ctl_clerk *ck = arg;
    struct sim_cluster *c = ck->s->c;
    (void)rc;
    if (len < REPLY_HEADER_BYTES || reply[0] > 2) {
        sim_fail(c, "controller clerk %llu: a reply of %zu bytes", (unsigned long long)ck->client,
                 len);
    }
    static const int status[] = {CRAFT_OK, CRAFT_EINVAL, CRAFT_ESTALE};
    ck->answer = (struct sim_ctl_answer){.status = status[reply[0]],
                                         .num = craft_get_u64(reply + 1)};
    if (ck->registering) {
        if (ck->answer.status != CRAFT_OK || ck->answer.num == 0) {
            sim_fail(c, "a controller clerk's registration answered %s",
                     craft_strerror(ck->answer.status));
        }
        ck->registering = false;
        ck->client = ck->answer.num;
        ck->seq = 0;
        send_req(ck);
        return;
    }
    if (ck->answer.status == CRAFT_ESTALE) {
        /* This simulator's clerks never give up a change nor skip a number, and 1024
         * sessions are never reached here: a refusal means the controller lost a session. */
        sim_fail(c, "controller clerk %llu: change %llu refused as stale",
                 (unsigned long long)ck->client, (unsigned long long)ck->req.seq);
    }
    if (ck->req.op == CRAFT_SHARD_OP_QUERY) {
        int err = craft_shard_config_decode(reply + REPLY_HEADER_BYTES, len - REPLY_HEADER_BYTES,
                                            &ck->config);
        if (err != CRAFT_OK || ck->config.num != ck->answer.num) {
            sim_fail(c, "controller clerk %llu: query %llu answered a configuration that does "
                     "not decode (%s)", (unsigned long long)ck->client,
                     (unsigned long long)ck->req.num, craft_strerror(err));
        }
        ck->answer.config = &ck->config;
    }
    ck->busy = false;
    if (ck->done != NULL) {
        ck->done(ck, ck->arg, &ck->answer);
    }
}

/* Sends the clerk's request (or its registration first: a change needs a client id). */
static void send_req(struct sim_ctl_clerk *ck)
{
    static struct craft_shard_request reg;
    const struct craft_shard_request *r = &ck->req;
    if (ck->client == 0 && r->op != CRAFT_SHARD_OP_QUERY) {
        memset(&reg, 0, sizeof reg);
        reg.op = CRAFT_SHARD_OP_REGISTER;
        r = &reg;
        ck->registering = true;
    } else {
        ck->req.client = ck->client;
        ck->req.seq = r->op == CRAFT_SHARD_OP_QUERY ? 0 : ++ck->seq;
    }
    uint8_t *buf = sim_xrealloc(NULL, CRAFT_SHARD_REQUEST_BYTES_MAX);
    size_t len;
    CRAFT_ASSERT(craft_shard_request_encode(r, buf, CRAFT_SHARD_REQUEST_BYTES_MAX, &len) ==
                 CRAFT_OK);
    sim_rsm_call(ck->rc, buf, len, call_done, ck);
}

void sim_ctl_start(struct sim_ctl_clerk *ck, const struct craft_shard_request *r,
                   sim_ctl_done_fn done, void *arg)
{
    CRAFT_ASSERT(!ck->busy && r->op >= CRAFT_SHARD_OP_JOIN && r->op <= CRAFT_SHARD_OP_QUERY);
    ck->req = *r;
    ck->busy = true;
    ck->done = done;
    ck->arg = arg;
    send_req(ck);
}

bool sim_ctl_busy(const struct sim_ctl_clerk *ck)
{
    return ck->busy;
}

static const char *const op_names[] = {"?", "Join", "Leave", "Move", "Query"};

const struct sim_ctl_answer *sim_ctl_call(struct sim_ctl_clerk *ck,
                                          const struct craft_shard_request *r, uint64_t budget_ms)
{
    sim_ctl_start(ck, r, NULL, NULL);
    if (!sim_rsm_wait(ck->rc, budget_ms)) {
        sim_fail(ck->s->c, "%s did not complete within %llu ms", op_names[r->op],
                 (unsigned long long)budget_ms);
    }
    return &ck->answer;
}

static const struct sim_ctl_answer *blocking(struct sim_ctl_clerk *ck,
                                             const struct craft_shard_request *r,
                                             uint64_t budget_ms)
{
    sim_ctl_call(ck, r, budget_ms);
    if (ck->answer.status != CRAFT_OK) {
        sim_fail(ck->s->c, "%s refused: %s", op_names[r->op], craft_strerror(ck->answer.status));
    }
    return &ck->answer;
}

static struct craft_shard_request scratch;

uint64_t sim_ctl_join(struct sim_ctl_clerk *ck, const struct craft_shard_group *g, size_t n,
                      uint64_t budget_ms)
{
    CRAFT_ASSERT(n >= 1 && n <= CRAFT_SHARD_GROUPS_MAX);
    memset(&scratch, 0, sizeof scratch);
    scratch.op = CRAFT_SHARD_OP_JOIN;
    scratch.n = (uint32_t)n;
    memcpy(scratch.groups, g, n * sizeof *g);
    return blocking(ck, &scratch, budget_ms)->num;
}

uint64_t sim_ctl_leave(struct sim_ctl_clerk *ck, const uint64_t *gids, size_t n,
                       uint64_t budget_ms)
{
    CRAFT_ASSERT(n >= 1 && n <= CRAFT_SHARD_GROUPS_MAX);
    memset(&scratch, 0, sizeof scratch);
    scratch.op = CRAFT_SHARD_OP_LEAVE;
    scratch.n = (uint32_t)n;
    memcpy(scratch.gids, gids, n * sizeof *gids);
    return blocking(ck, &scratch, budget_ms)->num;
}

uint64_t sim_ctl_move(struct sim_ctl_clerk *ck, uint16_t first, uint16_t last, uint64_t gid,
                      uint64_t budget_ms)
{
    memset(&scratch, 0, sizeof scratch);
    scratch.op = CRAFT_SHARD_OP_MOVE;
    scratch.first = first;
    scratch.last = last;
    scratch.gid = gid;
    return blocking(ck, &scratch, budget_ms)->num;
}

const struct craft_shard_config *sim_ctl_query(struct sim_ctl_clerk *ck, uint64_t num,
                                               uint64_t budget_ms)
{
    memset(&scratch, 0, sizeof scratch);
    scratch.op = CRAFT_SHARD_OP_QUERY;
    scratch.num = num;
    return blocking(ck, &scratch, budget_ms)->config;
}
