/* The key/value register state machine (see kvreg.h). Keys are few and short, so the map
 * is an array searched linearly: simple, and its order (first write) is deterministic. */
#include "sim/kvreg.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/trace.h"
#include "sim/linearize.h"
#include "sim/reads.h"
#include "sim/sim_internal.h"
#include "sim/world.h"

#define OP_MAGIC 0x4b      /* 'K' */
#define SNAP_MAGIC 0x3153564bu /* "KVS1" */

struct kv_entry {
    uint8_t key_len;
    char key[SIM_KV_KEY_MAX + 1];
    uint8_t *val;
    size_t len, cap;
};

struct sim_kv {
    struct kv_entry *e;
    size_t n, cap;
    uint64_t applied;
    uint8_t *blob; /* snapshot scratch */
    size_t blob_cap;
};

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

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) {
        v |= (uint64_t)p[k] << (8 * k);
    }
    return v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- ops: u8 magic, u64 client, u64 op, u8 kind, u8 key_len, key, u32 value_len, value */

size_t sim_kv_encode(const struct sim_kv_op *op, uint8_t *buf, size_t cap)
{
    CRAFT_ASSERT(op->kind == SIM_LIN_PUT || op->kind == SIM_LIN_APPEND);
    CRAFT_ASSERT(op->key_len <= SIM_KV_KEY_MAX && op->value_len <= SIM_KV_VALUE_MAX);
    size_t len = 1 + 8 + 8 + 1 + 1 + op->key_len + 4 + op->value_len;
    CRAFT_ASSERT(len <= cap);
    uint8_t *p = buf;
    *p++ = OP_MAGIC;
    put_u64(p, op->client);
    p += 8;
    put_u64(p, op->op);
    p += 8;
    *p++ = op->kind;
    *p++ = op->key_len;
    memcpy(p, op->key, op->key_len);
    p += op->key_len;
    put_u32(p, op->value_len);
    p += 4;
    if (op->value_len > 0) {
        memcpy(p, op->value, op->value_len);
    }
    p += op->value_len;
    CRAFT_ASSERT((size_t)(p - buf) == len);
    return len;
}

bool sim_kv_decode(const uint8_t *bytes, size_t len, struct sim_kv_op *op)
{
    if (len < 1 + 8 + 8 + 1 + 1 + 4 || bytes[0] != OP_MAGIC) {
        return false;
    }
    *op = (struct sim_kv_op){0};
    op->client = get_u64(bytes + 1);
    op->op = get_u64(bytes + 9);
    op->kind = bytes[17];
    op->key_len = bytes[18];
    if ((op->kind != SIM_LIN_PUT && op->kind != SIM_LIN_APPEND) ||
        op->key_len > SIM_KV_KEY_MAX || len < 19u + op->key_len + 4) {
        return false;
    }
    memcpy(op->key, bytes + 19, op->key_len);
    op->key[op->key_len] = '\0';
    op->value_len = get_u32(bytes + 19 + op->key_len);
    size_t off = 19u + op->key_len + 4;
    if (op->value_len > SIM_KV_VALUE_MAX || len != off + op->value_len) {
        return false;
    }
    op->value = op->value_len > 0 ? bytes + off : NULL;
    return true;
}

/* ---- the map ---- */

struct sim_kv *sim_kv_create(void)
{
    struct sim_kv *kv = calloc(1, sizeof *kv);
    CRAFT_ASSERT(kv != NULL);
    return kv;
}

void sim_kv_clear(struct sim_kv *kv)
{
    for (size_t i = 0; i < kv->n; i++) {
        free(kv->e[i].val);
    }
    kv->n = 0;
    kv->applied = 0;
}

void sim_kv_destroy(struct sim_kv *kv)
{
    if (kv == NULL) {
        return;
    }
    sim_kv_clear(kv);
    free(kv->e);
    free(kv->blob);
    free(kv);
}

static struct kv_entry *find(const struct sim_kv *kv, const char *key, size_t key_len)
{
    for (size_t i = 0; i < kv->n; i++) {
        if (kv->e[i].key_len == key_len && memcmp(kv->e[i].key, key, key_len) == 0) {
            return &kv->e[i];
        }
    }
    return NULL;
}

static struct kv_entry *find_or_add(struct sim_kv *kv, const char *key, size_t key_len)
{
    CRAFT_ASSERT(key_len <= SIM_KV_KEY_MAX);
    struct kv_entry *e = find(kv, key, key_len);
    if (e != NULL) {
        return e;
    }
    if (kv->n == kv->cap) {
        kv->cap = kv->cap ? kv->cap * 2 : 8;
        kv->e = sim_xrealloc(kv->e, kv->cap * sizeof *kv->e);
    }
    e = &kv->e[kv->n++];
    *e = (struct kv_entry){.key_len = (uint8_t)key_len};
    memcpy(e->key, key, key_len);
    e->key[key_len] = '\0';
    return e;
}

static void set_value(struct kv_entry *e, size_t keep, const uint8_t *v, size_t len)
{
    size_t need = keep + len;
    if (need > e->cap) {
        size_t cap = e->cap ? e->cap : 32;
        while (cap < need) {
            cap *= 2;
        }
        e->val = sim_xrealloc(e->val, cap);
        e->cap = cap;
    }
    if (len > 0) {
        memcpy(e->val + keep, v, len);
    }
    e->len = need;
}

void sim_kv_apply(struct sim_kv *kv, const struct sim_kv_op *op)
{
    struct kv_entry *e = find_or_add(kv, op->key, op->key_len);
    set_value(e, op->kind == SIM_LIN_APPEND ? e->len : 0, op->value, op->value_len);
}

const uint8_t *sim_kv_get(const struct sim_kv *kv, const char *key, size_t key_len, size_t *len)
{
    const struct kv_entry *e = find(kv, key, key_len);
    *len = e != NULL ? e->len : 0;
    return e != NULL ? e->val : NULL;
}

uint64_t sim_kv_applied(const struct sim_kv *kv)
{
    return kv->applied;
}

bool sim_kv_equal(const struct sim_kv *a, const struct sim_kv *b)
{
    /* An absent key equals an empty value (the model's initial state). */
    for (int pass = 0; pass < 2; pass++) {
        const struct sim_kv *x = pass == 0 ? a : b;
        const struct sim_kv *y = pass == 0 ? b : a;
        for (size_t i = 0; i < x->n; i++) {
            size_t ylen;
            const uint8_t *yv = sim_kv_get(y, x->e[i].key, x->e[i].key_len, &ylen);
            if (ylen != x->e[i].len || (ylen > 0 && memcmp(yv, x->e[i].val, ylen) != 0)) {
                return false;
            }
        }
    }
    return true;
}

/* ---- node glue ---- */

void sim_kv_node_start(struct sim_node *node)
{
    if (node->kv == NULL) {
        node->kv = sim_kv_create();
    }
    sim_kv_clear(node->kv); /* the map is in memory: a restart loses it */
}

void sim_kv_node_apply(struct sim_node *node, const struct craft_entry *e)
{
    struct sim_kv *kv = node->kv;
    CRAFT_ASSERT(kv != NULL);
    CRAFT_ASSERT(e->index == kv->applied + 1);
    struct sim_kv_op op;
    bool is_op = false;
    if (e->type == CRAFT_ENTRY_NORMAL) {
        if (!sim_kv_decode(e->data, e->len, &op)) {
            sim_fail(node->c, "server %d: entry %llu is not a key/value op", node->i,
                     (unsigned long long)e->index);
        }
        sim_kv_apply(kv, &op);
        is_op = true;
        CRAFT_TRACE(CRAFT_T_APPLY, node->c->w->now, node->i + 1, e->term,
                    "kv %s %s (client %llu op %llu) at %llu",
                    op.kind == SIM_LIN_PUT ? "put" : "append", op.key,
                    (unsigned long long)op.client, (unsigned long long)op.op,
                    (unsigned long long)e->index);
    }
    kv->applied = e->index;
    sim_reads_on_apply(node, e, is_op ? &op : NULL);
}

static void blob_reserve(struct sim_kv *kv, size_t need)
{
    if (need <= kv->blob_cap) {
        return;
    }
    size_t cap = kv->blob_cap ? kv->blob_cap : 1024;
    while (cap < need) {
        cap *= 2;
    }
    kv->blob = sim_xrealloc(kv->blob, cap);
    kv->blob_cap = cap;
}

/* Layout (little-endian): u32 magic, u64 index, u64 n_cmds, n_cmds x u64 log index, u32
 * n_keys, then per key: u8 key_len, key, u32 value_len, value. */
const uint8_t *sim_kv_node_snapshot(struct sim_node *node, uint64_t index, size_t *len)
{
    struct sim_kv *kv = node->kv;
    CRAFT_ASSERT(kv != NULL && kv->applied == index);
    size_t need = 4 + 8 + 8 + 8 * (size_t)node->n_cmds + 4;
    for (size_t i = 0; i < kv->n; i++) {
        need += 1 + kv->e[i].key_len + 4 + kv->e[i].len;
    }
    blob_reserve(kv, need);
    uint8_t *p = kv->blob;
    put_u32(p, SNAP_MAGIC);
    put_u64(p + 4, index);
    put_u64(p + 12, node->n_cmds);
    p += 20;
    for (uint64_t k = 0; k < node->n_cmds; k++) {
        put_u64(p, node->cmds[k]);
        p += 8;
    }
    put_u32(p, (uint32_t)kv->n);
    p += 4;
    for (size_t i = 0; i < kv->n; i++) {
        const struct kv_entry *e = &kv->e[i];
        *p++ = e->key_len;
        memcpy(p, e->key, e->key_len);
        p += e->key_len;
        put_u32(p, (uint32_t)e->len);
        p += 4;
        if (e->len > 0) {
            memcpy(p, e->val, e->len);
        }
        p += e->len;
    }
    CRAFT_ASSERT((size_t)(p - kv->blob) == need);
    *len = need;
    return kv->blob;
}

static _Noreturn void bad_blob(struct sim_node *node, const char *why)
{
    sim_fail(node->c, "server %d kv snapshot decode error: %s", node->i, why);
}

void sim_kv_node_ingest(struct sim_node *node, const uint8_t *blob, size_t len, uint64_t index)
{
    struct sim_cluster *c = node->c;
    if (node->kv == NULL) {
        node->kv = sim_kv_create();
    }
    struct sim_kv *kv = node->kv;
    if (len < 24 || get_u32(blob) != SNAP_MAGIC) {
        bad_blob(node, "header");
    }
    if (get_u64(blob + 4) != index) {
        sim_fail(c, "server %d snapshot doesn't match m.SnapshotIndex", node->i);
    }
    uint64_t n_cmds = get_u64(blob + 12);
    if (n_cmds > (len - 24) / 8) {
        bad_blob(node, "command count");
    }
    if (node->cap_cmds < n_cmds) {
        node->cmds = sim_xrealloc(node->cmds, (size_t)n_cmds * sizeof *node->cmds);
        node->cap_cmds = (size_t)n_cmds;
    }
    /* The reference: the committed commands the snapshot lists, replayed. */
    struct sim_kv *ref = sim_kv_create();
    size_t off = 20;
    for (uint64_t k = 0; k < n_cmds; k++) {
        uint64_t li = get_u64(blob + off);
        off += 8;
        if (li > index || (k > 0 && li <= node->cmds[k - 1])) {
            bad_blob(node, "command list");
        }
        node->cmds[k] = li;
        uint32_t dlen;
        const uint8_t *data = sim_committed_data(c, li, &dlen);
        struct sim_kv_op op;
        if (data == NULL || !sim_kv_decode(data, dlen, &op)) {
            sim_fail(c, "server %d snapshot lists index %llu, not a committed op", node->i,
                     (unsigned long long)li);
        }
        sim_kv_apply(ref, &op);
    }
    sim_kv_clear(kv);
    uint32_t n_keys = get_u32(blob + off);
    off += 4;
    for (uint32_t k = 0; k < n_keys; k++) {
        if (len - off < 1) {
            bad_blob(node, "key");
        }
        uint8_t klen = blob[off++];
        if (klen > SIM_KV_KEY_MAX || len - off < (size_t)klen + 4) {
            bad_blob(node, "key");
        }
        const char *key = (const char *)blob + off;
        off += klen;
        uint32_t vlen = get_u32(blob + off);
        off += 4;
        if (len - off < vlen) {
            bad_blob(node, "value");
        }
        struct kv_entry *e = find_or_add(kv, key, klen);
        set_value(e, 0, blob + off, vlen);
        off += vlen;
    }
    if (off != len) {
        bad_blob(node, "trailing bytes");
    }
    bool same = sim_kv_equal(kv, ref);
    sim_kv_destroy(ref);
    if (!same) {
        sim_fail(c, "server %d snapshot %llu: map differs from the committed commands",
                 node->i, (unsigned long long)index);
    }
    kv->applied = index;
    node->n_known = (size_t)n_cmds;
    node->n_cmds = n_cmds;
    node->last_applied = index;
}

void sim_kv_node_free(struct sim_node *node)
{
    sim_kv_destroy(node->kv);
    node->kv = NULL;
}
