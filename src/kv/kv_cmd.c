/* craftkv command encoding: see kv_cmd.h for the layout. */
#include "kv/kv_cmd.h"

#include <string.h>

#include "base/assert.h"
#include "base/bytes.h"

/* What an op carries, so that size, encode and decode share one description. */
enum shape {
    SHAPE_NONE,      /* FLUSHALL NOOP SESSION_* */
    SHAPE_KEY,       /* GETDEL PERSIST */
    SHAPE_KEY_VALUE, /* SETNX GETSET APPEND */
    SHAPE_SET,
    SHAPE_INCRBY,
    SHAPE_KEYS,  /* DEL */
    SHAPE_PAIRS, /* MSET MSETNX */
    SHAPE_EXPIRE,
    SHAPE_MEMBER_SET,
    SHAPE_MEMBER_DEL,
    SHAPE_SHARD,
    SHAPE_MULTI,
    SHAPE_ARGS, /* the collection ops: key | u32 n | n (u32 len | bytes) */
};

static enum shape op_shape(uint8_t op)
{
    switch (op) {
    case CRAFT_KV_OP_SET:
        return SHAPE_SET;
    case CRAFT_KV_OP_SETNX:
    case CRAFT_KV_OP_GETSET:
    case CRAFT_KV_OP_APPEND:
        return SHAPE_KEY_VALUE;
    case CRAFT_KV_OP_GETDEL:
    case CRAFT_KV_OP_PERSIST:
    case CRAFT_KV_OP_GET:
    case CRAFT_KV_OP_STRLEN:
    case CRAFT_KV_OP_TYPE:
    case CRAFT_KV_OP_TTL:
    case CRAFT_KV_OP_PTTL:
        return SHAPE_KEY;
    case CRAFT_KV_OP_INCRBY:
    case CRAFT_KV_OP_WATCH: /* key | u64 digest, in delta */
        return SHAPE_INCRBY;
    case CRAFT_KV_OP_DEL:
    case CRAFT_KV_OP_MGET:
    case CRAFT_KV_OP_EXISTS:
        return SHAPE_KEYS;
    case CRAFT_KV_OP_MULTI:
        return SHAPE_MULTI;
    case CRAFT_KV_OP_MSET:
    case CRAFT_KV_OP_MSETNX:
        return SHAPE_PAIRS;
    case CRAFT_KV_OP_EXPIRE:
        return SHAPE_EXPIRE;
    case CRAFT_KV_OP_MEMBER_SET:
        return SHAPE_MEMBER_SET;
    case CRAFT_KV_OP_MEMBER_DEL:
        return SHAPE_MEMBER_DEL;
    case CRAFT_KV_OP_SHARD_CONFIG:
    case CRAFT_KV_OP_SHARD_INSTALL:
    case CRAFT_KV_OP_SHARD_DELETE:
    case CRAFT_KV_OP_SHARD_CONFIRM:
        return SHAPE_SHARD;
    default:
        return craft_kv_op_is_coll(op) ? SHAPE_ARGS : SHAPE_NONE;
    }
}

bool craft_kv_op_is_coll(uint8_t op)
{
    return op >= CRAFT_KV_OP_COLL_FIRST_ && op <= CRAFT_KV_OP_COLL_LAST_;
}

/* The arguments that are keys too: every one (SINTER SUNION SDIFF and the *STORE forms,
 * whose key is the destination), or the first (RENAME RENAMENX LMOVE SMOVE: the
 * destination), or none. */
static uint32_t args_keys(const struct craft_kv_cmd *c)
{
    switch (c->op) {
    case CRAFT_KV_OP_SINTER:
    case CRAFT_KV_OP_SUNION:
    case CRAFT_KV_OP_SDIFF:
    case CRAFT_KV_OP_SINTERSTORE:
    case CRAFT_KV_OP_SUNIONSTORE:
    case CRAFT_KV_OP_SDIFFSTORE:
        return c->n;
    case CRAFT_KV_OP_RENAME:
    case CRAFT_KV_OP_RENAMENX:
    case CRAFT_KV_OP_LMOVE:
    case CRAFT_KV_OP_SMOVE:
        return c->n > 0 ? 1 : 0;
    default:
        return 0;
    }
}

static bool op_known(uint8_t op)
{
    return op >= CRAFT_KV_OP_SET && op < CRAFT_KV_OP_COUNT_;
}

static bool is_session_op(uint8_t op)
{
    return op == CRAFT_KV_OP_SESSION_OPEN || op == CRAFT_KV_OP_SESSION_CLOSE;
}

bool craft_kv_op_is_read(uint8_t op)
{
    /* An explicit list, not a range: ops are appended at the end of the enum (their numbers
     * are in logs), whatever they are. */
    switch (op) {
    case CRAFT_KV_OP_GET:
    case CRAFT_KV_OP_STRLEN:
    case CRAFT_KV_OP_TYPE:
    case CRAFT_KV_OP_TTL:
    case CRAFT_KV_OP_PTTL:
    case CRAFT_KV_OP_MGET:
    case CRAFT_KV_OP_EXISTS:
    case CRAFT_KV_OP_HGET:
    case CRAFT_KV_OP_HMGET:
    case CRAFT_KV_OP_HGETALL:
    case CRAFT_KV_OP_HKEYS:
    case CRAFT_KV_OP_HVALS:
    case CRAFT_KV_OP_HLEN:
    case CRAFT_KV_OP_HEXISTS:
    case CRAFT_KV_OP_HSTRLEN:
    case CRAFT_KV_OP_HSCAN:
    case CRAFT_KV_OP_SISMEMBER:
    case CRAFT_KV_OP_SMISMEMBER:
    case CRAFT_KV_OP_SMEMBERS:
    case CRAFT_KV_OP_SCARD:
    case CRAFT_KV_OP_SRANDMEMBER:
    case CRAFT_KV_OP_SSCAN:
    case CRAFT_KV_OP_SINTER:
    case CRAFT_KV_OP_SUNION:
    case CRAFT_KV_OP_SDIFF:
    case CRAFT_KV_OP_LLEN:
    case CRAFT_KV_OP_LRANGE:
    case CRAFT_KV_OP_LINDEX:
    case CRAFT_KV_OP_ZSCORE:
    case CRAFT_KV_OP_ZMSCORE:
    case CRAFT_KV_OP_ZCARD:
    case CRAFT_KV_OP_ZCOUNT:
    case CRAFT_KV_OP_ZRANGE:
    case CRAFT_KV_OP_ZRANGEBYSCORE:
    case CRAFT_KV_OP_ZREVRANGE:
    case CRAFT_KV_OP_ZREVRANGEBYSCORE:
    case CRAFT_KV_OP_ZRANK:
    case CRAFT_KV_OP_ZREVRANK:
    case CRAFT_KV_OP_ZSCAN:
    case CRAFT_KV_OP_GETRANGE:
    case CRAFT_KV_OP_LPOS:
        return true;
    default:
        return false;
    }
}

/* What a MULTI may hold: the data commands and the reads. */
static bool op_in_multi(uint8_t op)
{
    return (op >= CRAFT_KV_OP_SET && op <= CRAFT_KV_OP_FLUSHALL) || craft_kv_op_is_read(op) ||
           op == CRAFT_KV_OP_WATCH || craft_kv_op_is_coll(op);
}

/* Ops that stand only inside a MULTI. */
static bool only_in_multi(uint8_t op)
{
    return craft_kv_op_is_read(op) || op == CRAFT_KV_OP_WATCH;
}

uint64_t craft_kv_watch_digest(bool found, uint64_t expire_at, const uint8_t *val, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    uint8_t head[9];
    head[0] = found;
    craft_put_u64(head + 1, found ? expire_at : 0);
    for (size_t i = 0; i < sizeof head; i++) {
        h = (h ^ head[i]) * 0x100000001b3ULL;
    }
    for (size_t i = 0; found && i < len; i++) {
        h = (h ^ val[i]) * 0x100000001b3ULL;
    }
    return h;
}

/* A MULTI's command: no session of its own, no time (the MULTI's header has both). */
static bool multi_sub_ok(const struct craft_kv_cmd *s)
{
    return op_in_multi(s->op) && s->session == 0 && s->seq == 0 && s->ack == 0 &&
           s->now_ms == 0;
}

/* The list of a MULTI (u32 len | encoding, n times, nothing else) is well formed. */
static bool multi_list_ok(const uint8_t *p, size_t len, uint32_t n);

/* An expiry instant is at most INT64_MAX (craft_kv_deadline never makes a larger one): the
 * stored expiry word keeps its top bit for the collections (kv.md "Data types"). */
#define EXPIRE_AT_MAX ((uint64_t)INT64_MAX)

/* A shard op's blob may fill the command, less the header and its own fields. */
#define SHARD_BLOB_BYTES_MAX (CRAFT_KV_CMD_BYTES_MAX - CRAFT_KV_CMD_HEADER_BYTES - 12u)

/* Session, seq and ack rules shared by encode and decode (kv_cmd.h: Sessions). */
static bool session_ok(uint8_t op, uint64_t session, uint64_t seq, uint64_t ack, bool final)
{
    if (final && ack == 0) {
        return false; /* version 3 extends version 2 */
    }
    if (ack != 0 && (session == 0 || ack > seq)) {
        return false; /* also refuses ack on SESSION_OPEN / _CLOSE: their seq is 0 */
    }
    if (is_session_op(op)) {
        return session != 0 && seq == 0;
    }
    if (op_shape(op) == SHAPE_SHARD) {
        return session == 0 && seq == 0;
    }
    return session == 0 ? seq == 0 : seq != 0;
}

static size_t header_bytes(uint64_t ack)
{
    return ack == 0 ? CRAFT_KV_CMD_HEADER_BYTES : CRAFT_KV_CMD_HEADER_ACK_BYTES;
}

static bool set_flags_ok(uint8_t f)
{
    const uint8_t known = CRAFT_KV_SET_NX | CRAFT_KV_SET_XX | CRAFT_KV_SET_GET |
                          CRAFT_KV_SET_KEEPTTL | CRAFT_KV_SET_EXPIRE;
    if ((f & ~known) != 0) {
        return false;
    }
    if ((f & CRAFT_KV_SET_NX) && (f & CRAFT_KV_SET_XX)) {
        return false;
    }
    return !((f & CRAFT_KV_SET_KEEPTTL) && (f & CRAFT_KV_SET_EXPIRE));
}

static bool expire_flags_ok(uint8_t f)
{
    const uint8_t known =
        CRAFT_KV_EXPIRE_NX | CRAFT_KV_EXPIRE_XX | CRAFT_KV_EXPIRE_GT | CRAFT_KV_EXPIRE_LT;
    if ((f & ~known) != 0) {
        return false;
    }
    if ((f & CRAFT_KV_EXPIRE_NX) && f != CRAFT_KV_EXPIRE_NX) {
        return false;
    }
    return !((f & CRAFT_KV_EXPIRE_GT) && (f & CRAFT_KV_EXPIRE_LT));
}

bool craft_kv_addr_ok(const uint8_t *p, size_t len)
{
    if (len == 0 || len > CRAFT_KV_ADDR_BYTES_MAX || p == NULL) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] <= ' ' || p[i] > '~') {
            return false;
        }
    }
    return true;
}

static bool addr_bytes_ok(struct craft_kv_bytes b)
{
    return craft_kv_addr_ok(b.p, b.len);
}

/* ---- size ---- */

static bool bytes_ok(struct craft_kv_bytes b, uint32_t max)
{
    return b.len <= max && (b.len == 0 || b.p != NULL);
}

/* The size of c wherever it may stand (reads too: craft_kv_cmd_size refuses them). */
static size_t size_of(const struct craft_kv_cmd *c)
{
    if (!op_known(c->op) || !session_ok(c->op, c->session, c->seq, c->ack, c->refusal_final)) {
        return 0;
    }
    uint64_t size = header_bytes(c->ack);
    const uint64_t key = 4, val = 4;
    switch (op_shape(c->op)) {
    case SHAPE_NONE:
        break;
    case SHAPE_KEY:
        if (!bytes_ok(c->key, CRAFT_KV_KEY_BYTES_MAX)) {
            return 0;
        }
        size += key + c->key.len;
        break;
    case SHAPE_KEY_VALUE:
    case SHAPE_SET:
        if (!bytes_ok(c->key, CRAFT_KV_KEY_BYTES_MAX) ||
            !bytes_ok(c->value, CRAFT_KV_VALUE_BYTES_MAX)) {
            return 0;
        }
        size += key + c->key.len + val + c->value.len;
        if (c->op == CRAFT_KV_OP_SET) {
            if (!set_flags_ok(c->flags) ||
                ((c->flags & CRAFT_KV_SET_EXPIRE) && c->expire_at > EXPIRE_AT_MAX)) {
                return 0;
            }
            size += 1 + ((c->flags & CRAFT_KV_SET_EXPIRE) ? 8 : 0);
        }
        break;
    case SHAPE_INCRBY:
        if (!bytes_ok(c->key, CRAFT_KV_KEY_BYTES_MAX)) {
            return 0;
        }
        size += key + c->key.len + 8;
        break;
    case SHAPE_EXPIRE:
        if (!bytes_ok(c->key, CRAFT_KV_KEY_BYTES_MAX) || !expire_flags_ok(c->flags) ||
            c->expire_at > EXPIRE_AT_MAX) {
            return 0;
        }
        size += 1 + 8 + key + c->key.len;
        break;
    case SHAPE_MEMBER_SET:
        if (c->member_id == 0 || !addr_bytes_ok(c->peer_addr) || !addr_bytes_ok(c->client_addr)) {
            return 0;
        }
        size += 8 + 4 + c->peer_addr.len + 4 + c->client_addr.len;
        break;
    case SHAPE_MEMBER_DEL:
        if (c->member_id == 0) {
            return 0;
        }
        size += 8;
        break;
    case SHAPE_SHARD:
        if (!bytes_ok(c->blob, SHARD_BLOB_BYTES_MAX)) {
            return 0;
        }
        size += 8 + 4 + c->blob.len;
        break;
    case SHAPE_MULTI:
        if (c->n == 0 || c->n > CRAFT_KV_ITEMS_MAX || !bytes_ok(c->blob, CRAFT_KV_CMD_BYTES_MAX) ||
            !multi_list_ok(c->blob.p, c->blob.len, c->n)) {
            return 0;
        }
        size += 4 + c->blob.len;
        break;
    case SHAPE_ARGS:
        if (!bytes_ok(c->key, CRAFT_KV_KEY_BYTES_MAX) || c->n > CRAFT_KV_ARGS_MAX ||
            (c->n > 0 && c->args == NULL)) {
            return 0;
        }
        size += key + c->key.len + 4;
        for (uint32_t i = 0; i < c->n; i++) {
            if (!bytes_ok(c->args[i], CRAFT_KV_VALUE_BYTES_MAX)) {
                return 0;
            }
            size += val + c->args[i].len;
        }
        break;
    case SHAPE_KEYS:
    case SHAPE_PAIRS: {
        bool pairs = op_shape(c->op) == SHAPE_PAIRS;
        if (c->n == 0 || c->n > CRAFT_KV_ITEMS_MAX || c->keys == NULL ||
            (pairs && c->values == NULL)) {
            return 0;
        }
        size += 4;
        for (uint32_t i = 0; i < c->n; i++) {
            if (!bytes_ok(c->keys[i], CRAFT_KV_KEY_BYTES_MAX)) {
                return 0;
            }
            size += key + c->keys[i].len;
            if (pairs) {
                if (!bytes_ok(c->values[i], CRAFT_KV_VALUE_BYTES_MAX)) {
                    return 0;
                }
                size += val + c->values[i].len;
            }
        }
        break;
    }
    }
    /* Both limits together keep size far from overflowing: 131074 * (1 MiB + 4). */
    return size;
}

size_t craft_kv_cmd_size(const struct craft_kv_cmd *c)
{
    return only_in_multi(c->op) ? 0 : size_of(c); /* reads and WATCH stand in a MULTI only */
}

/* ---- encode ---- */

struct wbuf {
    uint8_t *p;
    size_t off;
};

static void w_u8(struct wbuf *w, uint8_t v)
{
    w->p[w->off++] = v;
}

static void w_u64(struct wbuf *w, uint64_t v)
{
    craft_put_u64(w->p + w->off, v);
    w->off += 8;
}

static void w_bytes(struct wbuf *w, struct craft_kv_bytes b)
{
    craft_put_u32(w->p + w->off, b.len);
    w->off += 4;
    if (b.len > 0) {
        memcpy(w->p + w->off, b.p, b.len);
        w->off += b.len;
    }
}

static void encode(const struct craft_kv_cmd *c, size_t size, uint8_t *buf);

int craft_kv_cmd_encode(const struct craft_kv_cmd *c, uint8_t *buf, size_t cap, size_t *len)
{
    size_t size = craft_kv_cmd_size(c);
    if (size == 0) {
        return CRAFT_EINVAL;
    }
    if (size > CRAFT_KV_CMD_BYTES_MAX || size > cap) {
        return CRAFT_ETOOBIG;
    }
    encode(c, size, buf);
    *len = size;
    return CRAFT_OK;
}

/* c is valid (size_of(c) == size) and buf holds size bytes. */
static void encode(const struct craft_kv_cmd *c, size_t size, uint8_t *buf)
{
    struct wbuf w = {.p = buf, .off = 0};
    /* Version 1 whenever it can say it: its bytes stay exactly as before ack existed. */
    w_u8(&w, c->ack == 0        ? CRAFT_KV_CMD_VERSION
             : c->refusal_final ? CRAFT_KV_CMD_VERSION_FINAL
                                : CRAFT_KV_CMD_VERSION_ACK);
    w_u64(&w, c->session);
    w_u64(&w, c->seq);
    if (c->ack != 0) {
        w_u64(&w, c->ack);
    }
    w_u64(&w, c->now_ms);
    w_u8(&w, c->op);
    switch (op_shape(c->op)) {
    case SHAPE_NONE:
        break;
    case SHAPE_KEY:
        w_bytes(&w, c->key);
        break;
    case SHAPE_KEY_VALUE:
        w_bytes(&w, c->key);
        w_bytes(&w, c->value);
        break;
    case SHAPE_SET:
        w_u8(&w, c->flags);
        if (c->flags & CRAFT_KV_SET_EXPIRE) {
            w_u64(&w, c->expire_at);
        }
        w_bytes(&w, c->key);
        w_bytes(&w, c->value);
        break;
    case SHAPE_INCRBY:
        w_bytes(&w, c->key);
        w_u64(&w, (uint64_t)c->delta);
        break;
    case SHAPE_EXPIRE:
        w_u8(&w, c->flags);
        w_u64(&w, c->expire_at);
        w_bytes(&w, c->key);
        break;
    case SHAPE_MEMBER_SET:
        w_u64(&w, c->member_id);
        w_bytes(&w, c->peer_addr);
        w_bytes(&w, c->client_addr);
        break;
    case SHAPE_MEMBER_DEL:
        w_u64(&w, c->member_id);
        break;
    case SHAPE_SHARD:
        w_u64(&w, c->shard_num);
        w_bytes(&w, c->blob);
        break;
    case SHAPE_MULTI:
        craft_put_u32(w.p + w.off, c->n);
        w.off += 4;
        if (c->blob.len > 0) {
            memcpy(w.p + w.off, c->blob.p, c->blob.len);
            w.off += c->blob.len;
        }
        break;
    case SHAPE_ARGS:
        w_bytes(&w, c->key);
        craft_put_u32(w.p + w.off, c->n);
        w.off += 4;
        for (uint32_t i = 0; i < c->n; i++) {
            w_bytes(&w, c->args[i]);
        }
        break;
    case SHAPE_KEYS:
    case SHAPE_PAIRS:
        craft_put_u32(w.p + w.off, c->n);
        w.off += 4;
        for (uint32_t i = 0; i < c->n; i++) {
            w_bytes(&w, c->keys[i]);
            if (op_shape(c->op) == SHAPE_PAIRS) {
                w_bytes(&w, c->values[i]);
            }
        }
        break;
    }
    CRAFT_ASSERT(w.off == size);
}

/* ---- decode ---- */

struct rbuf {
    const uint8_t *p;
    size_t len, off;
};

static bool r_u8(struct rbuf *r, uint8_t *v)
{
    if (r->len - r->off < 1) {
        return false;
    }
    *v = r->p[r->off++];
    return true;
}

static bool r_u32(struct rbuf *r, uint32_t *v)
{
    if (r->len - r->off < 4) {
        return false;
    }
    *v = craft_get_u32(r->p + r->off);
    r->off += 4;
    return true;
}

static bool r_u64(struct rbuf *r, uint64_t *v)
{
    if (r->len - r->off < 8) {
        return false;
    }
    *v = craft_get_u64(r->p + r->off);
    r->off += 8;
    return true;
}

static bool r_bytes(struct rbuf *r, uint32_t max, struct craft_kv_bytes *b)
{
    uint32_t n;
    if (!r_u32(r, &n) || n > max || r->len - r->off < n) {
        return false;
    }
    b->p = n > 0 ? r->p + r->off : NULL;
    b->len = n;
    r->off += n;
    return true;
}

static int decode_at(const uint8_t *buf, size_t len, bool in_multi, struct craft_kv_cmd *out);

static bool multi_list_ok(const uint8_t *p, size_t len, uint32_t n)
{
    struct rbuf r = {.p = p, .len = len, .off = 0};
    for (uint32_t i = 0; i < n; i++) {
        struct craft_kv_bytes b;
        struct craft_kv_cmd s;
        if (!r_bytes(&r, CRAFT_KV_CMD_BYTES_MAX, &b) || b.len == 0 ||
            decode_at(b.p, b.len, true, &s) != CRAFT_OK) {
            return false;
        }
    }
    return r.off == len;
}

int craft_kv_cmd_decode(const uint8_t *buf, size_t len, struct craft_kv_cmd *out)
{
    return decode_at(buf, len, false, out);
}

/* in_multi: buf is one of a MULTI's commands (multi_sub_ok); else reads are refused. */
static int decode_at(const uint8_t *buf, size_t len, bool in_multi, struct craft_kv_cmd *out)
{
    memset(out, 0, sizeof *out);
    if (len > CRAFT_KV_CMD_BYTES_MAX) {
        return CRAFT_ETOOBIG;
    }
    struct rbuf r = {.p = buf, .len = len, .off = 0};
    uint8_t version;
    if (!r_u8(&r, &version)) {
        return CRAFT_EMALFORMED;
    }
    if (version != CRAFT_KV_CMD_VERSION && version != CRAFT_KV_CMD_VERSION_ACK &&
        version != CRAFT_KV_CMD_VERSION_FINAL) {
        return CRAFT_EVERSION;
    }
    struct craft_kv_cmd c = {0};
    bool has_ack = version != CRAFT_KV_CMD_VERSION;
    c.refusal_final = version == CRAFT_KV_CMD_VERSION_FINAL;
    if (!r_u64(&r, &c.session) || !r_u64(&r, &c.seq) || (has_ack && !r_u64(&r, &c.ack)) ||
        (has_ack && c.ack == 0) || !r_u64(&r, &c.now_ms) || !r_u8(&r, &c.op) || !op_known(c.op) ||
        !session_ok(c.op, c.session, c.seq, c.ack, c.refusal_final) ||
        (in_multi ? !multi_sub_ok(&c) : only_in_multi(c.op))) {
        return CRAFT_EMALFORMED;
    }
    bool ok = true;
    uint64_t u = 0;
    switch (op_shape(c.op)) {
    case SHAPE_NONE:
        break;
    case SHAPE_KEY:
        ok = r_bytes(&r, CRAFT_KV_KEY_BYTES_MAX, &c.key);
        break;
    case SHAPE_KEY_VALUE:
        ok = r_bytes(&r, CRAFT_KV_KEY_BYTES_MAX, &c.key) &&
             r_bytes(&r, CRAFT_KV_VALUE_BYTES_MAX, &c.value);
        break;
    case SHAPE_SET:
        ok = r_u8(&r, &c.flags) && set_flags_ok(c.flags) &&
             (!(c.flags & CRAFT_KV_SET_EXPIRE) ||
              (r_u64(&r, &c.expire_at) && c.expire_at <= EXPIRE_AT_MAX)) &&
             r_bytes(&r, CRAFT_KV_KEY_BYTES_MAX, &c.key) &&
             r_bytes(&r, CRAFT_KV_VALUE_BYTES_MAX, &c.value);
        break;
    case SHAPE_INCRBY:
        ok = r_bytes(&r, CRAFT_KV_KEY_BYTES_MAX, &c.key) && r_u64(&r, &u);
        c.delta = (int64_t)u;
        break;
    case SHAPE_EXPIRE:
        ok = r_u8(&r, &c.flags) && expire_flags_ok(c.flags) && r_u64(&r, &c.expire_at) &&
             c.expire_at <= EXPIRE_AT_MAX && r_bytes(&r, CRAFT_KV_KEY_BYTES_MAX, &c.key);
        break;
    case SHAPE_MEMBER_SET:
        ok = r_u64(&r, &c.member_id) && c.member_id != 0 &&
             r_bytes(&r, CRAFT_KV_ADDR_BYTES_MAX, &c.peer_addr) && addr_bytes_ok(c.peer_addr) &&
             r_bytes(&r, CRAFT_KV_ADDR_BYTES_MAX, &c.client_addr) && addr_bytes_ok(c.client_addr);
        break;
    case SHAPE_MEMBER_DEL:
        ok = r_u64(&r, &c.member_id) && c.member_id != 0;
        break;
    case SHAPE_SHARD:
        ok = r_u64(&r, &c.shard_num) && r_bytes(&r, SHARD_BLOB_BYTES_MAX, &c.blob);
        break;
    case SHAPE_MULTI:
        /* Nested once at most: a MULTI's commands are never MULTIs (multi_sub_ok). */
        ok = r_u32(&r, &c.n) && c.n >= 1 && c.n <= CRAFT_KV_ITEMS_MAX &&
             multi_list_ok(buf + r.off, len - r.off, c.n);
        if (ok) {
            c.items = c.blob.p = buf + r.off;
            c.items_len = c.blob.len = (uint32_t)(len - r.off);
            r.off = len;
        }
        break;
    case SHAPE_ARGS: {
        ok = r_bytes(&r, CRAFT_KV_KEY_BYTES_MAX, &c.key) && r_u32(&r, &c.n) &&
             c.n <= CRAFT_KV_ARGS_MAX;
        size_t start = r.off;
        for (uint32_t i = 0; ok && i < c.n; i++) {
            struct craft_kv_bytes b;
            ok = r_bytes(&r, CRAFT_KV_VALUE_BYTES_MAX, &b);
        }
        c.items = buf + start;
        c.items_len = r.off - start;
        break;
    }
    case SHAPE_KEYS:
    case SHAPE_PAIRS: {
        bool pairs = op_shape(c.op) == SHAPE_PAIRS;
        ok = r_u32(&r, &c.n) && c.n >= 1 && c.n <= CRAFT_KV_ITEMS_MAX;
        size_t start = r.off;
        for (uint32_t i = 0; ok && i < c.n; i++) {
            struct craft_kv_bytes b;
            ok = r_bytes(&r, CRAFT_KV_KEY_BYTES_MAX, &b) &&
                 (!pairs || r_bytes(&r, CRAFT_KV_VALUE_BYTES_MAX, &b));
        }
        c.items = buf + start;
        c.items_len = r.off - start;
        break;
    }
    }
    if (!ok || r.off != len) {
        return CRAFT_EMALFORMED;
    }
    *out = c;
    return CRAFT_OK;
}

bool craft_kv_cmd_next(const struct craft_kv_cmd *c, size_t *off, struct craft_kv_bytes *key,
                       struct craft_kv_bytes *val)
{
    /* The list was validated by the decoder: these reads cannot fail. */
    struct rbuf r = {.p = c->items, .len = c->items_len, .off = *off};
    if (r.off >= r.len) {
        return false;
    }
    struct craft_kv_bytes v = {0};
    bool ok = r_bytes(
        &r, op_shape(c->op) == SHAPE_ARGS ? CRAFT_KV_VALUE_BYTES_MAX : CRAFT_KV_KEY_BYTES_MAX, key);
    if (op_shape(c->op) == SHAPE_PAIRS) {
        ok = ok && r_bytes(&r, CRAFT_KV_VALUE_BYTES_MAX, &v);
    }
    CRAFT_ASSERT(ok);
    if (val != NULL) {
        *val = v;
    }
    *off = r.off;
    return true;
}

bool craft_kv_cmd_next_key(const struct craft_kv_cmd *c, size_t *off, struct craft_kv_bytes *key)
{
    switch (op_shape(c->op)) {
    case SHAPE_KEY:
    case SHAPE_KEY_VALUE:
    case SHAPE_SET:
    case SHAPE_INCRBY:
    case SHAPE_EXPIRE:
        if (*off != 0) {
            return false;
        }
        *key = c->key;
        *off = 1;
        return true;
    case SHAPE_KEYS:
    case SHAPE_PAIRS:
        return craft_kv_cmd_next(c, off, key, NULL);
    case SHAPE_ARGS:
        /* *off: 0 before the key, then 1 + the offset in the arguments (keys for SINTER
         * SUNION SDIFF). */
        /* *off: 0 before the key; then 1 + (arguments walked << 32 | the next one's offset
         * in items: under 64 MiB); the arguments that are keys come first (args_keys). */
        if (*off == 0) {
            *key = c->key;
            *off = 1;
            return true;
        } else {
            uint64_t walked = (uint64_t)(*off - 1) >> 32;
            size_t o = (size_t)((*off - 1) & 0xffffffffu);
            if (walked >= args_keys(c) || !craft_kv_cmd_next(c, &o, key, NULL)) {
                return false;
            }
            CRAFT_ASSERT(o <= 0xffffffffu);
            *off = 1 + (size_t)(((walked + 1) << 32) | o);
            return true;
        }
    default:
        return false;
    }
}

int craft_kv_cmd_multi_add(const struct craft_kv_cmd *sub, uint8_t *buf, size_t cap, size_t *len)
{
    if (!multi_sub_ok(sub)) {
        return CRAFT_EINVAL;
    }
    size_t size = size_of(sub);
    if (size == 0) {
        return CRAFT_EINVAL;
    }
    if (*len > cap || cap - *len < 4 || cap - *len - 4 < size || size > CRAFT_KV_CMD_BYTES_MAX) {
        return CRAFT_ETOOBIG;
    }
    encode(sub, size, buf + *len + 4);
    craft_put_u32(buf + *len, (uint32_t)size);
    *len += 4 + size;
    return CRAFT_OK;
}

bool craft_kv_cmd_next_sub(const struct craft_kv_cmd *c, size_t *off, struct craft_kv_cmd *sub)
{
    CRAFT_ASSERT(c->op == CRAFT_KV_OP_MULTI);
    struct rbuf r = {.p = c->items, .len = c->items_len, .off = *off};
    if (r.off >= r.len) {
        return false;
    }
    struct craft_kv_bytes b;
    bool ok = r_bytes(&r, CRAFT_KV_CMD_BYTES_MAX, &b) && decode_at(b.p, b.len, true, sub) == CRAFT_OK;
    CRAFT_ASSERT(ok); /* validated by the decoder */
    *off = r.off;
    return true;
}

bool craft_kv_parse_i64(const uint8_t *p, size_t len, int64_t *out)
{
    if (len == 0 || len > 20) {
        return false;
    }
    if (len == 1 && p[0] == '0') {
        *out = 0;
        return true;
    }
    bool neg = p[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i >= len || p[i] < '1' || p[i] > '9') {
        return false;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) {
            return false;
        }
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) {
            return false;
        }
        *out = (int64_t)v;
    }
    return true;
}

int craft_kv_deadline(uint64_t base_ms, int64_t amount, bool seconds, uint64_t *at)
{
    int64_t ms = amount;
    if (seconds) {
        if (amount > INT64_MAX / 1000 || amount < INT64_MIN / 1000) {
            return CRAFT_EINVAL;
        }
        ms = amount * 1000;
    }
    if (base_ms > (uint64_t)INT64_MAX) {
        return CRAFT_EINVAL;
    }
    int64_t base = (int64_t)base_ms;
    if (ms > 0 && base > INT64_MAX - ms) {
        return CRAFT_EINVAL;
    }
    int64_t sum = base + ms; /* ms <= 0 cannot overflow: base >= 0 */
    *at = sum < 0 ? 0 : (uint64_t)sum;
    return CRAFT_OK;
}
