/* libFuzzer target: craftkv snapshot restore on arbitrary bytes.
 *
 * Input: one control byte, then the snapshot. Control bit 0 set: the last 4 bytes are
 * replaced by the crc32 of the rest, so the fuzzer gets past the checksum and into the
 * record validation (where it would otherwise almost never arrive). Bits 1-3: the read
 * size, to vary how records straddle reads. Bit 4: restore into shard group 1's state
 * machines (whose baseline has a configuration: a version 4 snapshot with a SHARD record)
 * instead of plain ones.
 *
 * A restore either fails with CRAFT_ECORRUPT / CRAFT_EVERSION and leaves the old state
 * exactly as it was (same snapshot bytes), or succeeds; then a snapshot of the restored
 * state restores into a second state machine and gives the same bytes again (restore and
 * snapshot agree), and the input itself is that snapshot unless it held idle sessions or
 * was of an older version (rewritten as version 3: version 1 gains the END record's member
 * count, and versions 1 and 2 an entry header per saved result in a session's window). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/assert.h"
#include "base/bytes.h"
#include "kv/kv_sm.h"
#include "shard/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static int buf_write(void *ctx, const void *p, size_t n)
{
    struct buf *b = ctx;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        CRAFT_ASSERT(b->p != NULL);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return CRAFT_OK;
}

struct src {
    const uint8_t *p;
    size_t len, off, chunk;
};

static int src_read(void *ctx, void *out, size_t cap, size_t *n)
{
    struct src *s = ctx;
    size_t k = s->len - s->off;
    k = k < cap ? k : cap;
    k = k < s->chunk ? k : s->chunk;
    memcpy(out, s->p + s->off, k);
    s->off += k;
    *n = k;
    return CRAFT_OK;
}

static void snap(struct craft_kv_sm *sm, struct buf *out)
{
    struct craft_kv_snap *s;
    *out = (struct buf){0};
    CRAFT_ASSERT(craft_kv_sm_snapshot(sm, &s) == CRAFT_OK);
    CRAFT_ASSERT(craft_kv_snap_write(s, buf_write, out) == CRAFT_OK);
    craft_kv_snap_release(s);
}

static int restore(struct craft_kv_sm *sm, const uint8_t *p, size_t len, size_t chunk)
{
    struct src s = {.p = p, .len = len, .chunk = chunk};
    return craft_kv_sm_restore(sm, src_read, &s);
}

/* Two pairs of state machines kept across inputs, plain and shard group 1's; a's state is
 * reset to its baseline after each input. */
struct pair {
    struct craft_kv_store *st_a, *st_b;
    struct craft_kv_sm *sm_a, *sm_b;
    struct buf baseline;
};
static struct pair pairs[2];

static void apply_config(struct craft_kv_sm *sm, uint64_t index)
{
    static struct craft_shard_config c0, c1;
    craft_shard_config_init(&c0);
    struct craft_shard_group g = {.gid = 1, .n_servers = 1};
    memcpy(g.servers[0], "h:1", 4);
    CRAFT_ASSERT(craft_shard_join(&c0, &g, 1, &c1, NULL, 0) == CRAFT_OK);
    uint8_t enc[512], cmd[1024];
    size_t n = craft_shard_config_encode(&c1, enc, sizeof enc), len;
    struct craft_kv_cmd c = {.op = CRAFT_KV_OP_SHARD_CONFIG, .now_ms = 100, .shard_num = 1,
                             .blob = {enc, (uint32_t)n}};
    CRAFT_ASSERT(craft_kv_cmd_encode(&c, cmd, sizeof cmd, &len) == CRAFT_OK);
    struct craft_kv_result *r;
    CRAFT_ASSERT(craft_kv_sm_apply(sm, index, cmd, len, &r) == CRAFT_OK);
    CRAFT_ASSERT(r->type == CRAFT_KV_RES_OK);
    craft_kv_result_free(r);
}

static void setup_pair(struct pair *p, uint64_t gid)
{
    struct craft_kv_sm_config cfg = {.shard_gid = gid};
    CRAFT_ASSERT(craft_kv_store_mem_open(&p->st_a) == CRAFT_OK);
    CRAFT_ASSERT(craft_kv_store_mem_open(&p->st_b) == CRAFT_OK);
    CRAFT_ASSERT(craft_kv_sm_open(p->st_a, &cfg, &p->sm_a) == CRAFT_OK);
    CRAFT_ASSERT(craft_kv_sm_open(p->st_b, &cfg, &p->sm_b) == CRAFT_OK);
    struct craft_kv_sm *sm_a = p->sm_a;
    uint64_t index = 0;
    if (gid != 0) {
        apply_config(sm_a, ++index);
    }
    for (int i = 0; i < 8; i++) {
        char k[8];
        snprintf(k, sizeof k, "key%d", i);
        struct craft_kv_cmd c = {.op = CRAFT_KV_OP_SET,
                                 .now_ms = 100,
                                 .flags = i % 2 ? CRAFT_KV_SET_EXPIRE : 0,
                                 .expire_at = i % 2 ? 1000 : 0,
                                 .key = {(const uint8_t *)k, (uint32_t)strlen(k)},
                                 .value = {(const uint8_t *)"value", 5}};
        if (i == 0) {
            c = (struct craft_kv_cmd){.op = CRAFT_KV_OP_SESSION_OPEN, .now_ms = 100, .session = 9};
        } else if (i == 1) {
            c.session = 9;
            c.seq = 1;
        } else if (i == 4) {
            /* Session 9 with a window of two results (seqs 1 and 2: ack 1). */
            c.session = 9;
            c.seq = 2;
            c.ack = 1;
        } else if (i == 5) {
            c = (struct craft_kv_cmd){.op = CRAFT_KV_OP_SESSION_OPEN, .now_ms = 100, .session = 8};
        } else if (i == 6) {
            c = (struct craft_kv_cmd){.op = CRAFT_KV_OP_MEMBER_SET,
                                      .now_ms = 100,
                                      .member_id = 3,
                                      .peer_addr = {(const uint8_t *)"p:3", 3},
                                      .client_addr = {(const uint8_t *)"c:3", 3}};
        }
        uint8_t b[96];
        size_t len;
        CRAFT_ASSERT(craft_kv_cmd_encode(&c, b, sizeof b, &len) == CRAFT_OK);
        struct craft_kv_result *r;
        CRAFT_ASSERT(craft_kv_sm_apply(sm_a, ++index, b, len, &r) == CRAFT_OK);
        craft_kv_result_free(r);
    }
    snap(sm_a, &p->baseline);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (pairs[0].sm_a == NULL) {
        setup_pair(&pairs[0], 0);
        setup_pair(&pairs[1], 1);
    }
    if (size < 1) {
        return 0;
    }
    uint8_t ctl = data[0];
    struct pair *p = &pairs[(ctl >> 4) & 1];
    struct craft_kv_sm *sm_a = p->sm_a, *sm_b = p->sm_b;
    const struct buf baseline = p->baseline;
    size_t len = size - 1;
    uint8_t *in = malloc(len + 1);
    CRAFT_ASSERT(in != NULL);
    memcpy(in, data + 1, len);
    if ((ctl & 1) && len >= 4) {
        uLong crc = crc32(crc32(0L, Z_NULL, 0), in, (uInt)(len - 4));
        craft_put_u32(in + len - 4, (uint32_t)crc);
    }
    static const size_t chunks[8] = {1, 3, 7, 16, 100, 4096, 65536, 1 << 20};
    size_t chunk = chunks[(ctl >> 1) & 7];

    int rc = restore(sm_a, in, len, chunk);
    struct buf now;
    snap(sm_a, &now);
    if (rc != CRAFT_OK) {
        CRAFT_ASSERT(rc == CRAFT_ECORRUPT || rc == CRAFT_EVERSION);
        CRAFT_ASSERT(now.len == baseline.len && memcmp(now.p, baseline.p, now.len) == 0);
    } else {
        uint32_t version = len >= 12 ? craft_get_u32(in + 8) : 0;
        bool old = version < 3;
        /* A session record takes at least 29 bytes: each grows by at most 12. */
        CRAFT_ASSERT(now.len <= len + (old ? 8 + 12 * (len / 29) : 0));
        CRAFT_ASSERT(restore(sm_b, now.p, now.len, 4096) == CRAFT_OK);
        struct buf again;
        snap(sm_b, &again);
        CRAFT_ASSERT(again.len == now.len && memcmp(again.p, now.p, now.len) == 0);
        free(again.p);
        if (now.len == len && !old) {
            CRAFT_ASSERT(memcmp(now.p, in, len) == 0);
        }
        CRAFT_ASSERT(restore(sm_a, baseline.p, baseline.len, 65536) == CRAFT_OK);
    }
    free(now.p);
    free(in);
    return 0;
}
