/* A replica's craftkv state machine on the simulator (kv_replica.h). */
#include "sim/kv_replica.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "sim/sim_internal.h"

static void close_sm(struct sim_kv_replica *r)
{
    if (r->sm != NULL) {
        craft_kv_sm_close(r->sm);
        r->sm = NULL;
    }
    if (r->store != NULL) {
        r->store->ops->close(r->store);
        r->store = NULL;
    }
}

void sim_kv_replica_open(struct sim_kv_replica *r, uint64_t gid)
{
    close_sm(r);
    r->gid = gid;
    struct craft_kv_sm_config cfg = {.shard_gid = gid};
    CRAFT_ASSERT(craft_kv_store_mem_open(&r->store) == CRAFT_OK);
    CRAFT_ASSERT(craft_kv_sm_open(r->store, &cfg, &r->sm) == CRAFT_OK);
}

void sim_kv_replica_free(struct sim_kv_replica *r)
{
    close_sm(r);
    free(r->snap);
    r->snap = NULL;
    r->snap_len = r->snap_cap = 0;
}

int sim_kv_replica_apply(struct sim_kv_replica *r, uint64_t index, const uint8_t *data,
                         size_t len, struct craft_kv_result **res)
{
    return craft_kv_sm_apply(r->sm, index, data, len, res);
}

static int snap_write(void *ctx, const void *buf, size_t len)
{
    struct sim_kv_replica *r = ctx;
    if (r->snap_len + len > r->snap_cap) {
        size_t cap = r->snap_cap ? r->snap_cap : 1024;
        while (cap < r->snap_len + len) {
            cap *= 2;
        }
        r->snap = sim_xrealloc(r->snap, cap);
        r->snap_cap = cap;
    }
    memcpy(r->snap + r->snap_len, buf, len);
    r->snap_len += len;
    return CRAFT_OK;
}

const uint8_t *sim_kv_replica_snapshot(struct sim_kv_replica *r, size_t *len)
{
    struct craft_kv_snap *snap;
    CRAFT_ASSERT(craft_kv_sm_snapshot(r->sm, &snap) == CRAFT_OK);
    r->snap_len = 0;
    CRAFT_ASSERT(craft_kv_snap_write(snap, snap_write, r) == CRAFT_OK);
    craft_kv_snap_release(snap);
    *len = r->snap_len;
    return r->snap;
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

int sim_kv_replica_restore(struct sim_kv_replica *r, const uint8_t *blob, size_t len)
{
    struct snap_src src = {.p = blob, .left = len};
    return craft_kv_sm_restore(r->sm, snap_read, &src);
}
