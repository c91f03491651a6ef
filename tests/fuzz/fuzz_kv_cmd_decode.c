/* libFuzzer target: craftkv's command decoder on arbitrary bytes, then the state machine.
 *
 * The decoder must refuse with one of its documented errors or accept a command whose
 * every byte string (keys, values, member addresses) lies inside the input, within its
 * limit, and that re-encodes to exactly the input (the encoding is canonical; version 1
 * exactly when ack is 0, version 3 exactly when refusal_final). Any input, accepted or
 * not, is then applied to an in-memory state machine holding a few keys, a hash, a set, a
 * list and a sorted set, a member record
 * and two sessions, session 1 with seqs 1-3 applied and unacknowledged (a window of three
 * results): apply answers every input (a malformed one with an error result), never
 * fails, and a retry of the same bytes in a session answers the same. In session 1, a seq
 * of the window answers its saved result whatever the command; a new seq runs, and
 * afterwards the retry of seq 3 answers from the window exactly when the command's ack was
 * 1 to 3 (ack 0 keeps only the newest).
 * The same bytes are also opened as a migration payload (kv_shard.h): refused with
 * CRAFT_ECORRUPT / CRAFT_EVERSION, or accepted with every key and session walked inside the
 * input, in order, each key of a slot in the payload's set, each session record valid,
 * a part (version 2) with keys and no session, a collection's elements as many as it says.
 * ASan/UBSan catch any read outside the input. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "kv/kv_shard.h"
#include "kv/kv_sm.h"
#include "shard/slots.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool inside(const uint8_t *data, size_t size, struct craft_kv_bytes b)
{
    return b.len == 0 || (b.p >= data && b.p + b.len <= data + size);
}

static void check_roundtrip(const uint8_t *data, size_t size, struct craft_kv_cmd *c)
{
    CRAFT_ASSERT(inside(data, size, c->key) && inside(data, size, c->value));
    CRAFT_ASSERT(inside(data, size, c->peer_addr) && inside(data, size, c->client_addr));
    if (c->op == CRAFT_KV_OP_MEMBER_SET) {
        CRAFT_ASSERT(c->member_id != 0 && craft_kv_addr_ok(c->peer_addr.p, c->peer_addr.len) &&
                     craft_kv_addr_ok(c->client_addr.p, c->client_addr.len));
    }
    CRAFT_ASSERT(c->key.len <= CRAFT_KV_KEY_BYTES_MAX);
    CRAFT_ASSERT(c->value.len <= CRAFT_KV_VALUE_BYTES_MAX);
    struct craft_kv_bytes *keys = NULL, *vals = NULL;
    if (c->op == CRAFT_KV_OP_MULTI) {
        /* Its commands: inside the input, each a command a MULTI may hold, n of them. */
        CRAFT_ASSERT(c->n >= 1 && c->n <= CRAFT_KV_ITEMS_MAX && c->items == c->blob.p &&
                     c->items_len == c->blob.len && inside(data, size, c->blob));
        struct craft_kv_cmd s;
        size_t off = 0;
        uint32_t n = 0;
        while (craft_kv_cmd_next_sub(c, &off, &s)) {
            CRAFT_ASSERT(s.op != CRAFT_KV_OP_MULTI && s.session == 0 && s.seq == 0 &&
                         s.now_ms == 0 && s.ack == 0);
            CRAFT_ASSERT(inside(data, size, s.key) && inside(data, size, s.value));
            CRAFT_ASSERT(s.items == NULL ||
                         (s.items >= data && s.items + s.items_len <= data + size));
            struct craft_kv_bytes k;
            size_t koff = 0;
            while (craft_kv_cmd_next_key(&s, &koff, &k)) {
                CRAFT_ASSERT(inside(data, size, k) && k.len <= CRAFT_KV_KEY_BYTES_MAX);
            }
            n++;
        }
        CRAFT_ASSERT(n == c->n && off == c->items_len);
    } else if (craft_kv_op_is_coll(c->op)) {
        /* A collection op: its arguments inside the input, each within the value limit. */
        CRAFT_ASSERT(c->n <= CRAFT_KV_ARGS_MAX && c->items >= data &&
                     c->items + c->items_len <= data + size);
        keys = calloc(c->n + 1, sizeof *keys);
        CRAFT_ASSERT(keys != NULL);
        size_t off = 0;
        uint32_t n = 0;
        while (craft_kv_cmd_next(c, &off, &keys[n], NULL)) {
            CRAFT_ASSERT(inside(data, size, keys[n]) && keys[n].len <= CRAFT_KV_VALUE_BYTES_MAX);
            n++;
            CRAFT_ASSERT(n <= c->n);
        }
        CRAFT_ASSERT(n == c->n && off == c->items_len);
        c->args = keys;
    } else if (c->items != NULL) {
        CRAFT_ASSERT(c->n >= 1 && c->n <= CRAFT_KV_ITEMS_MAX);
        CRAFT_ASSERT(c->items >= data && c->items + c->items_len <= data + size);
        keys = calloc(c->n, sizeof *keys);
        vals = calloc(c->n, sizeof *vals);
        CRAFT_ASSERT(keys != NULL && vals != NULL);
        size_t off = 0;
        uint32_t n = 0;
        while (craft_kv_cmd_next(c, &off, &keys[n], &vals[n])) {
            CRAFT_ASSERT(inside(data, size, keys[n]) && inside(data, size, vals[n]));
            CRAFT_ASSERT(keys[n].len <= CRAFT_KV_KEY_BYTES_MAX);
            n++;
            CRAFT_ASSERT(n <= c->n);
        }
        CRAFT_ASSERT(n == c->n && off == c->items_len);
        c->keys = keys;
        c->values = vals;
    }
    /* Its keys: inside the input, each within its limit; a list's as many as its items. */
    struct craft_kv_bytes k;
    size_t koff = 0;
    uint32_t n_keys = 0;
    while (craft_kv_cmd_next_key(c, &koff, &k)) {
        /* An op's further keys (SINTER, RENAME ...) are arguments: the value limit. */
        CRAFT_ASSERT(inside(data, size, k) &&
                     k.len <= (n_keys == 0 ? CRAFT_KV_KEY_BYTES_MAX : CRAFT_KV_VALUE_BYTES_MAX));
        n_keys++;
    }
    uint32_t args_keys = 0;
    switch (c->op) {
    case CRAFT_KV_OP_SINTER:
    case CRAFT_KV_OP_SUNION:
    case CRAFT_KV_OP_SDIFF:
    case CRAFT_KV_OP_SINTERSTORE:
    case CRAFT_KV_OP_SUNIONSTORE:
    case CRAFT_KV_OP_SDIFFSTORE:
        args_keys = c->n;
        break;
    case CRAFT_KV_OP_RENAME:
    case CRAFT_KV_OP_RENAMENX:
    case CRAFT_KV_OP_LMOVE:
    case CRAFT_KV_OP_SMOVE:
        args_keys = c->n > 0 ? 1 : 0;
        break;
    default:
        break;
    }
    CRAFT_ASSERT(c->op == CRAFT_KV_OP_MULTI   ? n_keys == 0
                 : craft_kv_op_is_coll(c->op) ? n_keys == 1 + args_keys
                 : c->items != NULL           ? n_keys == c->n
                                              : n_keys <= 1);
    CRAFT_ASSERT(craft_kv_cmd_size(c) == size);
    CRAFT_ASSERT(data[0] == (c->ack == 0        ? CRAFT_KV_CMD_VERSION
                             : c->refusal_final ? CRAFT_KV_CMD_VERSION_FINAL
                                                : CRAFT_KV_CMD_VERSION_ACK));
    CRAFT_ASSERT(!c->refusal_final || c->ack != 0);
    CRAFT_ASSERT(c->ack == 0 || (c->session != 0 && c->ack <= c->seq));
    uint8_t *again = malloc(size);
    CRAFT_ASSERT(again != NULL);
    size_t len = 0;
    CRAFT_ASSERT(craft_kv_cmd_encode(c, again, size, &len) == CRAFT_OK);
    CRAFT_ASSERT(len == size && memcmp(again, data, size) == 0);
    free(again);
    free(keys);
    free(vals);
}

static struct craft_kv_result *apply(struct craft_kv_sm *sm, uint64_t *index, const uint8_t *p,
                                     size_t len)
{
    struct craft_kv_result *r = NULL;
    CRAFT_ASSERT(craft_kv_sm_apply(sm, ++*index, p, len, &r) == CRAFT_OK);
    CRAFT_ASSERT(r != NULL);
    return r;
}

/* Session 1's window after seed_state: INCRBY n (41) by 1 as seqs 1, 2, 3. */
#define WINDOW_SEQS 3u

static struct craft_kv_result *apply_cmd(struct craft_kv_sm *sm, uint64_t *index,
                                         const struct craft_kv_cmd *c)
{
    uint8_t buf[64];
    size_t len;
    CRAFT_ASSERT(craft_kv_cmd_encode(c, buf, sizeof buf, &len) == CRAFT_OK);
    return apply(sm, index, buf, len);
}

static struct craft_kv_cmd incr_in_window(uint64_t seq, uint64_t now_ms)
{
    return (struct craft_kv_cmd){.op = CRAFT_KV_OP_INCRBY,
                                 .now_ms = now_ms,
                                 .session = 1,
                                 .seq = seq,
                                 .ack = 1,
                                 .key = {(const uint8_t *)"n", 1},
                                 .delta = 1};
}

static bool is_err(const struct craft_kv_result *r, const char *text)
{
    return r->type == CRAFT_KV_RES_ERR && strcmp((const char *)r->data, text) == 0;
}

static void seed_state(struct craft_kv_sm *sm, uint64_t *index)
{
    static const char *const keys[] = {"a", "n", "k", ""};
    static const char *const vals[] = {"hello", "41", "v", "empty"};
    for (int i = 0; i < 4; i++) {
        struct craft_kv_cmd c = {.op = CRAFT_KV_OP_SET,
                                 .now_ms = 1000,
                                 .key = {(const uint8_t *)keys[i], (uint32_t)strlen(keys[i])},
                                 .value = {(const uint8_t *)vals[i], (uint32_t)strlen(vals[i])}};
        if (i == 2) {
            c.flags = CRAFT_KV_SET_EXPIRE;
            c.expire_at = 5000;
        }
        uint8_t buf[64];
        size_t len;
        CRAFT_ASSERT(craft_kv_cmd_encode(&c, buf, sizeof buf, &len) == CRAFT_OK);
        craft_kv_result_free(apply(sm, index, buf, len));
    }
    {
        struct craft_kv_cmd c = {.op = CRAFT_KV_OP_MEMBER_SET,
                                 .now_ms = 1000,
                                 .member_id = 2,
                                 .peer_addr = {(const uint8_t *)"h:1", 3},
                                 .client_addr = {(const uint8_t *)"h:2", 3}};
        uint8_t buf[64];
        size_t len;
        CRAFT_ASSERT(craft_kv_cmd_encode(&c, buf, sizeof buf, &len) == CRAFT_OK);
        craft_kv_result_free(apply(sm, index, buf, len));
    }
    /* A hash h {f: 1, g: x}, a set s {m, n}, a list l [f, 1, g, x] and a sorted set z
     * {x: 1}: the collection ops meet elements, and the string ops WRONGTYPE. */
    {
        struct craft_kv_bytes args[4] = {{(const uint8_t *)"f", 1},
                                         {(const uint8_t *)"1", 1},
                                         {(const uint8_t *)"g", 1},
                                         {(const uint8_t *)"x", 1}};
        struct craft_kv_cmd l = {.op = CRAFT_KV_OP_RPUSH,
                                 .now_ms = 1000,
                                 .key = {(const uint8_t *)"l", 1},
                                 .n = 4,
                                 .args = args};
        craft_kv_result_free(apply_cmd(sm, index, &l));
        struct craft_kv_cmd z = {.op = CRAFT_KV_OP_ZADD,
                                 .now_ms = 1000,
                                 .key = {(const uint8_t *)"z", 1},
                                 .n = 2,
                                 .args = args + 2};
        args[2] = (struct craft_kv_bytes){(const uint8_t *)"1", 1};
        craft_kv_result_free(apply_cmd(sm, index, &z));
    }
    for (int i = 0; i < 2; i++) {
        struct craft_kv_bytes args[4] = {{(const uint8_t *)"f", 1},
                                         {(const uint8_t *)"1", 1},
                                         {(const uint8_t *)"g", 1},
                                         {(const uint8_t *)"x", 1}};
        if (i == 1) {
            args[0] = (struct craft_kv_bytes){(const uint8_t *)"m", 1};
            args[1] = (struct craft_kv_bytes){(const uint8_t *)"n", 1};
        }
        struct craft_kv_cmd c = {.op = i == 0 ? CRAFT_KV_OP_HSET : CRAFT_KV_OP_SADD,
                                 .now_ms = 1000,
                                 .key = {(const uint8_t *)(i == 0 ? "h" : "s"), 1},
                                 .n = i == 0 ? 4 : 2,
                                 .args = args};
        craft_kv_result_free(apply_cmd(sm, index, &c));
    }
    for (uint64_t s = 1; s <= 2; s++) {
        struct craft_kv_cmd c = {.op = CRAFT_KV_OP_SESSION_OPEN, .now_ms = 1000, .session = s};
        uint8_t buf[64];
        size_t len;
        CRAFT_ASSERT(craft_kv_cmd_encode(&c, buf, sizeof buf, &len) == CRAFT_OK);
        craft_kv_result_free(apply(sm, index, buf, len));
    }
    for (uint64_t seq = 1; seq <= WINDOW_SEQS; seq++) {
        struct craft_kv_cmd c = incr_in_window(seq, 1000);
        struct craft_kv_result *r = apply_cmd(sm, index, &c);
        CRAFT_ASSERT(r->type == CRAFT_KV_RES_INT && r->integer == 41 + (int64_t)seq);
        craft_kv_result_free(r);
    }
}

static bool same(const struct craft_kv_result *a, const struct craft_kv_result *b)
{
    return a->type == b->type && a->integer == b->integer && a->len == b->len &&
           memcmp(a->data, b->data, a->len) == 0;
}

static void payload(const uint8_t *data, size_t size)
{
    struct kv_payload pl;
    int rc = kv_payload_open(data, size, &pl);
    if (rc != CRAFT_OK) {
        CRAFT_ASSERT(rc == CRAFT_ECORRUPT || rc == CRAFT_EVERSION);
        return;
    }
    struct kv_payload_key k;
    size_t off = 0;
    uint32_t n = 0;
    while (kv_payload_next_key(&pl, &off, &k)) {
        CRAFT_ASSERT(k.key >= data && k.val + k.vlen <= data + size);
        CRAFT_ASSERT(craft_slot_set_has(&pl.slots, craft_key_slot(k.key, k.klen)));
        if (k.coll) {
            /* A hash or a set: its count of elements, each inside the value, in limits. */
            struct kv_coll cl;
            kv_payload_coll_header(k.val, &cl);
            struct craft_kv_bytes f, v;
            size_t eoff = KV_PAYLOAD_COLL_HEADER;
            uint64_t ne = 0;
            while (kv_payload_coll_next(k.val, k.vlen, &eoff, &f, &v)) {
                CRAFT_ASSERT(inside(data, size, f) && inside(data, size, v));
                CRAFT_ASSERT(f.len <= CRAFT_KV_FIELD_BYTES_MAX &&
                             v.len <= CRAFT_KV_VALUE_BYTES_MAX);
                CRAFT_ASSERT(cl.type == KV_TYPE_HASH || v.len == 0);
                ne++;
            }
            CRAFT_ASSERT(ne == cl.count && ne > 0 && eoff == k.vlen);
        }
        n++;
    }
    CRAFT_ASSERT(n == pl.n_keys);
    struct kv_payload_session ps;
    uint64_t prev = 0;
    off = 0;
    n = 0;
    while (kv_payload_next_session(&pl, &off, &ps)) {
        CRAFT_ASSERT(ps.id > prev && kv_session_valid(ps.rec, ps.len));
        prev = ps.id;
        n++;
    }
    CRAFT_ASSERT(n == pl.n_sessions);
    /* A part (version 2): keys only, at least one. */
    CRAFT_ASSERT(pl.part == (data[0] == KV_PAYLOAD_VERSION_PART));
    CRAFT_ASSERT(!pl.part || (pl.n_keys > 0 && pl.n_sessions == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    payload(data, size);
    struct craft_kv_cmd c;
    int rc = craft_kv_cmd_decode(data, size, &c);
    if (rc == CRAFT_OK) {
        check_roundtrip(data, size, &c);
    } else {
        CRAFT_ASSERT(rc == CRAFT_EMALFORMED || rc == CRAFT_EVERSION || rc == CRAFT_ETOOBIG);
    }

    struct craft_kv_store *st;
    struct craft_kv_sm *sm;
    CRAFT_ASSERT(craft_kv_store_mem_open(&st) == CRAFT_OK);
    CRAFT_ASSERT(craft_kv_sm_open(st, NULL, &sm) == CRAFT_OK);
    uint64_t index = 0;
    seed_state(sm, &index);
    struct craft_kv_result *r1 = apply(sm, &index, data, size);
    struct craft_kv_result *r2 = apply(sm, &index, data, size);
    if (rc != CRAFT_OK) {
        CRAFT_ASSERT(r1->type == CRAFT_KV_RES_ERR && same(r1, r2));
    } else if (c.session != 0 && c.op != CRAFT_KV_OP_SESSION_OPEN &&
               c.op != CRAFT_KV_OP_SESSION_CLOSE && c.op != CRAFT_KV_OP_NOOP) {
        /* The same seq twice: the second is a retry and answers the same, unless the
         * first found no session (or the time jump expired it). */
        CRAFT_ASSERT(same(r1, r2) || r1->type == CRAFT_KV_RES_ERR);
    }
    if (rc == CRAFT_OK && c.session == 1 && c.seq != 0 && c.op != CRAFT_KV_OP_NOOP) {
        /* (NOOP ignores its session: it only advances time.) */
        bool gone = is_err(r1, CRAFT_KV_ERR_SESSION); /* a time jump expired it */
        if (c.seq <= WINDOW_SEQS) {
            CRAFT_ASSERT(gone ||
                         (r1->type == CRAFT_KV_RES_INT && r1->integer == 41 + (int64_t)c.seq));
        } else if (!gone) {
            struct craft_kv_cmd retry = incr_in_window(WINDOW_SEQS, c.now_ms);
            struct craft_kv_result *r3 = apply_cmd(sm, &index, &retry);
            if (c.ack != 0 && c.ack <= WINDOW_SEQS) {
                CRAFT_ASSERT(r3->type == CRAFT_KV_RES_INT && r3->integer == 41 + WINDOW_SEQS);
            } else {
                CRAFT_ASSERT(is_err(r3, CRAFT_KV_ERR_STALE));
            }
            craft_kv_result_free(r3);
        }
    }
    craft_kv_result_free(r1);
    craft_kv_result_free(r2);
    craft_kv_sm_close(sm);
    st->ops->close(st);
    return 0;
}
