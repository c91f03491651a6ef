/* craftkv: one replicated write as it travels in the Raft log (design: docs/design/kv.md).
 *
 * Encoding, every integer little-endian, byte by byte:
 *   header   version 1 (ack == 0):
 *              u8 1 | u64 session | u64 seq | u64 now_ms | u8 op           (26 bytes)
 *            version 2 (ack != 0):
 *              u8 2 | u64 session | u64 seq | u64 ack | u64 now_ms | u8 op (34 bytes)
 *            version 3 (ack != 0, refusal_final): as version 2, with u8 3  (34 bytes)
 *   bytes    u32 len | len bytes                                   (a key or a value)
 *   args     per op, in this order:
 *     SET           u8 flags | [u64 expire_at if CRAFT_KV_SET_EXPIRE] | key | value
 *     SETNX GETSET APPEND                                            key | value
 *     GETDEL PERSIST                                                 key
 *     INCRBY        key | i64 delta (two's complement)
 *     DEL           u32 n | n keys
 *     MSET MSETNX   u32 n | n (key | value)
 *     EXPIRE        u8 flags | u64 expire_at | key
 *     MEMBER_SET    u64 member_id | peer_addr | client_addr          (addresses as bytes)
 *     MEMBER_DEL    u64 member_id
 *     SHARD_CONFIG SHARD_INSTALL SHARD_DELETE SHARD_CONFIRM          u64 num | blob
 *                   (blob: u32 len | len bytes, up to the command's limit; see below)
 *     FLUSHALL NOOP SESSION_OPEN SESSION_CLOSE                       nothing
 *     GET STRLEN TYPE TTL PTTL                                       key
 *     MGET EXISTS   u32 n | n keys
 *     MULTI         u32 n | n (u32 len | a command)
 *     WATCH         key | u64 digest                               (inside a MULTI only)
 *
 * MULTI (a Redis transaction: MULTI ... EXEC) carries its commands, each a complete
 * version-1 encoding with session 0, seq 0 and now_ms 0 (the MULTI's own header says who
 * and when), applied in order as one entry. The read ops (GET ... EXISTS) exist only
 * inside a MULTI, where they read the state the commands before them left; a MULTI holds
 * no MULTI, no session, member, shard or NOOP op, and at least one command.
 *
 * The encoding is canonical: a decoded command re-encodes to the same bytes (the decoder
 * refuses unknown flag bits, trailing bytes, seq without a session, ...).
 *
 * Time: now_ms is the proposing leader's clock. Every expiry instant in a command is
 * absolute (expire_at, ms since the epoch), computed by the proposer from the same now_ms
 * (craft_kv_deadline): replicas never read a clock, they compare against the logical time
 * of the state machine (the largest now_ms applied so far).
 *
 * Sessions: session 0 means none (no deduplication, seq must be 0). Otherwise seq >= 1
 * numbers the session's commands; SESSION_OPEN / SESSION_CLOSE carry seq 0.
 * ack (thesis 6.3) is the lowest seq of the session whose reply the client has not yet
 * received: every seq < ack was answered, so the state machine may drop its saved result.
 * 0 means "not given" (the state machine then keeps only the newest result, as version 1
 * always did); otherwise 1 <= ack <= seq, in a session. The version follows from ack, so
 * the encoding stays canonical: a version 2 header with ack 0 is refused.
 * refusal_final (version 3, which needs an ack): a shard group's refusal of this seq (its
 * slot not served there: MOVED, TRYAGAIN) is the seq's final answer, recorded in its
 * session like a result, so the seq never runs in that group and every copy of it gets
 * the same answer; the sender runs the command again under a new seq (kv_sm.h). Without
 * it a refusal is not recorded and the same seq may run later, in that group or in the
 * one its session moves to with the slot (the simulator's clerks, one session for all
 * groups).
 *
 * Pure functions, no allocation; safe from any thread. */
#ifndef CRAFT_KV_CMD_H
#define CRAFT_KV_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define CRAFT_KV_CMD_VERSION          1u  /* ack == 0 */
#define CRAFT_KV_CMD_VERSION_ACK      2u  /* ack != 0 */
#define CRAFT_KV_CMD_VERSION_FINAL    3u  /* ack != 0, refusal_final */
#define CRAFT_KV_CMD_HEADER_BYTES     26u /* version 1 */
#define CRAFT_KV_CMD_HEADER_ACK_BYTES 34u /* versions 2 and 3 */

/* Limits. They are part of the replicated format: every replica applies the same ones.
 * Keys: LMDB's default key limit is 511 bytes and a stored key carries a 16-byte prefix
 * in the expiry index (kv.md); values: APPEND cannot grow a value past the limit. */
#define CRAFT_KV_KEY_BYTES_MAX   480u
#define CRAFT_KV_VALUE_BYTES_MAX (1u << 20)
#define CRAFT_KV_ITEMS_MAX       65536u      /* keys of one DEL, pairs of one MSET */
#define CRAFT_KV_CMD_BYTES_MAX   (64u << 20) /* one encoded command */
/* A member's address ("host:port"), NUL not counted: fits craft's CRAFT_ADDR_BYTES_MAX. */
#define CRAFT_KV_ADDR_BYTES_MAX 63u

enum craft_kv_op {
    CRAFT_KV_OP_SET = 1,
    CRAFT_KV_OP_SETNX,
    CRAFT_KV_OP_GETSET,
    CRAFT_KV_OP_GETDEL,
    CRAFT_KV_OP_DEL,
    CRAFT_KV_OP_APPEND,
    CRAFT_KV_OP_INCRBY, /* INCR, DECR, DECRBY: delta 1, -1, -n (the proposer negates) */
    CRAFT_KV_OP_MSET,
    CRAFT_KV_OP_MSETNX,
    CRAFT_KV_OP_EXPIRE, /* EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: absolute expire_at */
    CRAFT_KV_OP_PERSIST,
    CRAFT_KV_OP_FLUSHALL,
    CRAFT_KV_OP_NOOP, /* advances logical time and sweeps expired keys and sessions */
    CRAFT_KV_OP_SESSION_OPEN,
    CRAFT_KV_OP_SESSION_CLOSE,
    /* The cluster's member table (the server's, invisible to user commands: kv.md): a
     * member's Raft and client addresses, written by the leader when a node joins (and for
     * the initial members), removed when it leaves. */
    CRAFT_KV_OP_MEMBER_SET,
    CRAFT_KV_OP_MEMBER_DEL,
    /* A shard group's migrations (kv_sm.h "Shard groups", docs/design/sharding.md), proposed
     * by the group's leader, never by a client; no session. num is a configuration number;
     * blob: CONFIG the configuration's encoding (shard/config.h), INSTALL a migration
     * payload (kv_sm.h), DELETE and CONFIRM a slot set (CRAFT_SLOT_SET_BYTES bytes). The
     * codec checks only the shape; the state machine checks the contents (an answer, not a
     * failure, for a bad one). */
    CRAFT_KV_OP_SHARD_CONFIG,
    CRAFT_KV_OP_SHARD_INSTALL,
    CRAFT_KV_OP_SHARD_DELETE,
    CRAFT_KV_OP_SHARD_CONFIRM,
    /* Reads, inside a MULTI only (above). TTL and PTTL answer as Redis does: -2 absent,
     * -1 no expiry, else the time left (TTL rounds to the nearest second). */
    CRAFT_KV_OP_GET,
    CRAFT_KV_OP_STRLEN,
    CRAFT_KV_OP_TYPE,
    CRAFT_KV_OP_TTL,
    CRAFT_KV_OP_PTTL,
    CRAFT_KV_OP_MGET,
    CRAFT_KV_OP_EXISTS,
    /* A transaction: its commands in blob (craft_kv_cmd_multi_add builds it), n of them. */
    CRAFT_KV_OP_MULTI,
    /* Inside a MULTI only, ahead of its commands: the transaction runs only if key's state
     * (absent, or its value and expiry) still hashes to delta (craft_kv_watch_digest) when
     * the MULTI is applied; otherwise nothing of it runs (Redis's WATCH). */
    CRAFT_KV_OP_WATCH,
    /* Collections (kv.md "Data types"): hashes, sets, lists, sorted sets. Each carries its key and
     * the Redis arguments after it as they came (args, below), which the state machine checks as
     * the proposer did (craft_kv_coll_check) and runs; SPOP and SRANDMEMBER carry a 64-bit seed the
     * proposer adds last, so every replica picks the same members. */
    CRAFT_KV_OP_HSET,
    CRAFT_KV_OP_HMSET, /* HSET answering OK */
    CRAFT_KV_OP_HSETNX,
    CRAFT_KV_OP_HDEL,
    CRAFT_KV_OP_HINCRBY,
    CRAFT_KV_OP_SADD,
    CRAFT_KV_OP_SREM,
    CRAFT_KV_OP_SPOP,
    CRAFT_KV_OP_LPUSH,
    CRAFT_KV_OP_RPUSH,
    CRAFT_KV_OP_LPUSHX,
    CRAFT_KV_OP_RPUSHX,
    CRAFT_KV_OP_LPOP,
    CRAFT_KV_OP_RPOP,
    CRAFT_KV_OP_LSET,
    CRAFT_KV_OP_LREM,
    CRAFT_KV_OP_LTRIM,
    CRAFT_KV_OP_ZADD,
    CRAFT_KV_OP_ZINCRBY,
    CRAFT_KV_OP_ZREM,
    CRAFT_KV_OP_ZPOPMIN,
    CRAFT_KV_OP_ZPOPMAX,
    /* String and keyspace commands of the same shape (kv_str.c), and more collection ones. */
    CRAFT_KV_OP_INCRBYFLOAT,
    CRAFT_KV_OP_SETRANGE,
    CRAFT_KV_OP_GETEX, /* the proposer turns EX/PX/EXAT into PXAT <absolute ms> */
    CRAFT_KV_OP_RENAME,
    CRAFT_KV_OP_RENAMENX,
    CRAFT_KV_OP_HINCRBYFLOAT,
    CRAFT_KV_OP_LINSERT,
    CRAFT_KV_OP_LMOVE, /* RPOPLPUSH is LMOVE src dst RIGHT LEFT */
    CRAFT_KV_OP_SMOVE,
    CRAFT_KV_OP_SINTERSTORE,
    CRAFT_KV_OP_SUNIONSTORE,
    CRAFT_KV_OP_SDIFFSTORE,
    /* Collection reads: outside a MULTI they run on a read (craft_kv_read_exec), never
     * through the log; inside one, as the other reads. */
    CRAFT_KV_OP_HGET,
    CRAFT_KV_OP_HMGET,
    CRAFT_KV_OP_HGETALL,
    CRAFT_KV_OP_HKEYS,
    CRAFT_KV_OP_HVALS,
    CRAFT_KV_OP_HLEN,
    CRAFT_KV_OP_HEXISTS,
    CRAFT_KV_OP_HSTRLEN,
    CRAFT_KV_OP_HSCAN,
    CRAFT_KV_OP_SISMEMBER,
    CRAFT_KV_OP_SMISMEMBER,
    CRAFT_KV_OP_SMEMBERS,
    CRAFT_KV_OP_SCARD,
    CRAFT_KV_OP_SRANDMEMBER,
    CRAFT_KV_OP_SSCAN,
    CRAFT_KV_OP_SINTER, /* SINTER SUNION SDIFF: args are more keys */
    CRAFT_KV_OP_SUNION,
    CRAFT_KV_OP_SDIFF,
    CRAFT_KV_OP_LLEN,
    CRAFT_KV_OP_LRANGE,
    CRAFT_KV_OP_LINDEX,
    CRAFT_KV_OP_ZSCORE,
    CRAFT_KV_OP_ZMSCORE,
    CRAFT_KV_OP_ZCARD,
    CRAFT_KV_OP_ZCOUNT,
    CRAFT_KV_OP_ZRANGE,
    CRAFT_KV_OP_ZRANGEBYSCORE,
    CRAFT_KV_OP_ZREVRANGE,
    CRAFT_KV_OP_ZREVRANGEBYSCORE,
    CRAFT_KV_OP_ZRANK,
    CRAFT_KV_OP_ZREVRANK,
    CRAFT_KV_OP_ZSCAN,
    CRAFT_KV_OP_GETRANGE,
    CRAFT_KV_OP_LPOS,
    CRAFT_KV_OP_COUNT_
};

/* The first and last ops that carry their Redis arguments. New ops go at the end of the
 * enum, never between (an op's number is in logs and snapshots of sessions); which ones read
 * is craft_kv_op_is_read's explicit list. */
#define CRAFT_KV_OP_COLL_FIRST_ CRAFT_KV_OP_HSET
#define CRAFT_KV_OP_COLL_LAST_  CRAFT_KV_OP_LPOS

/* A collection op's arguments after its key: at most this many (HSET's field value pairs,
 * a seed), each at most CRAFT_KV_VALUE_BYTES_MAX bytes. */
#define CRAFT_KV_ARGS_MAX (2u * CRAFT_KV_ITEMS_MAX + 2u)
/* A hash's field or a set's member: it is part of the element's store key (kv.md). */
#define CRAFT_KV_FIELD_BYTES_MAX 480u

/* SET flags. NX and XX exclude each other, so do KEEPTTL and EXPIRE. */
#define CRAFT_KV_SET_NX      0x01u
#define CRAFT_KV_SET_XX      0x02u
#define CRAFT_KV_SET_GET     0x04u /* reply with the old value (or nil) */
#define CRAFT_KV_SET_KEEPTTL 0x08u
#define CRAFT_KV_SET_EXPIRE  0x10u /* EX/PX/EXAT/PXAT: expire_at follows */

/* EXPIRE flags (Redis 7): NX excludes the others; GT excludes LT. */
#define CRAFT_KV_EXPIRE_NX 0x01u
#define CRAFT_KV_EXPIRE_XX 0x02u
#define CRAFT_KV_EXPIRE_GT 0x04u
#define CRAFT_KV_EXPIRE_LT 0x08u

struct craft_kv_bytes {
    const uint8_t *p;
    uint32_t len;
};

struct craft_kv_cmd {
    uint8_t op;       /* enum craft_kv_op */
    uint8_t flags;    /* SET, EXPIRE */
    uint64_t session; /* 0: none */
    uint64_t seq;
    uint64_t ack;       /* 0: none (version 1); else 1 <= ack <= seq (version 2 or 3) */
    bool refusal_final; /* version 3: a refusal closes this seq (needs ack != 0) */
    uint64_t now_ms;
    uint64_t expire_at;               /* SET with CRAFT_KV_SET_EXPIRE, EXPIRE */
    int64_t delta;                    /* INCRBY */
    struct craft_kv_bytes key, value; /* single-key ops (value: SET SETNX GETSET APPEND) */
    /* DEL, MSET, MSETNX: n keys or pairs (1 <= n <= CRAFT_KV_ITEMS_MAX).
     * Encoding reads keys[0..n) and, for MSET/MSETNX, values[0..n).
     * Decoding sets items / items_len to the encoded list inside the input (keys and
     * values are NULL): walk it with craft_kv_cmd_next. */
    uint32_t n;
    const struct craft_kv_bytes *keys, *values;
    const uint8_t *items;
    size_t items_len;
    /* MEMBER_SET, MEMBER_DEL: member_id != 0; MEMBER_SET: both addresses valid
     * (craft_kv_addr_ok). */
    uint64_t member_id;
    struct craft_kv_bytes peer_addr, client_addr;
    /* SHARD_*: session 0, seq 0. MULTI: blob holds its n commands, each as u32 len |
     * encoding (craft_kv_cmd_multi_add); decoding sets items / items_len to them too:
     * walk them with craft_kv_cmd_next_sub. */
    uint64_t shard_num;
    struct craft_kv_bytes blob;
    /* Collection ops: key and n arguments (0 <= n <= CRAFT_KV_ARGS_MAX). Encoding reads
     * args[0..n); decoding sets items / items_len to them (args NULL): walk them with
     * craft_kv_cmd_next. */
    const struct craft_kv_bytes *args;
};

/* True for the ops that carry their Redis arguments (CRAFT_KV_OP_HSET ... CRAFT_KV_OP_LPOS:
 * the collections' and the string commands of kv_str.c). */
bool craft_kv_op_is_coll(uint8_t op);

/* True if p[0..len) may be stored as a member's address: 1 to CRAFT_KV_ADDR_BYTES_MAX
 * printable ASCII characters, no space (the codec does not parse host:port further). */
bool craft_kv_addr_ok(const uint8_t *p, size_t len);

/* The encoded size of c, or 0 if c is invalid (as craft_kv_cmd_encode would refuse it). */
size_t craft_kv_cmd_size(const struct craft_kv_cmd *c);

/* Encodes c into buf (cap bytes); *len receives the size. Errors: CRAFT_EINVAL (an unknown
 * op or flag, conflicting flags, n out of range, seq without a session, ack without a
 * session or outside 1..seq, a key or value over its limit, a member id 0 or a bad address:
 * the proposer validates first), CRAFT_ETOOBIG (over CRAFT_KV_CMD_BYTES_MAX or
 * over cap; nothing useful is written then). */
int craft_kv_cmd_encode(const struct craft_kv_cmd *c, uint8_t *buf, size_t cap, size_t *len);

/* Decodes and validates buf[0..len) completely: lengths are checked against the input and
 * the limits, never trusted. On success *out points into buf (borrowed: valid while buf
 * is). Both versions decode (ack 0 from version 1). Errors: CRAFT_EVERSION (a version
 * other than 1 and 2), CRAFT_ETOOBIG (len over
 * CRAFT_KV_CMD_BYTES_MAX), CRAFT_EMALFORMED (anything else). */
int craft_kv_cmd_decode(const uint8_t *buf, size_t len, struct craft_kv_cmd *out);

/* Walks a decoded DEL/MSET/MSETNX list (or a collection op's arguments): start with *off = 0; each
 * call yields the next key (and value for MSET/MSETNX; val may be NULL for DEL) and returns false
 * after the last. */
bool craft_kv_cmd_next(const struct craft_kv_cmd *c, size_t *off, struct craft_kv_bytes *key,
                       struct craft_kv_bytes *val);

/* Walks the keys a decoded command touches, whatever its op (none for FLUSHALL, NOOP, the
 * session, member and shard ops, and MULTI, whose keys are its commands': walk them with
 * craft_kv_cmd_next_sub): start with *off = 0; false after the last. */
bool craft_kv_cmd_next_key(const struct craft_kv_cmd *c, size_t *off, struct craft_kv_bytes *key);

/* Appends sub (a command a MULTI may hold: session, seq, ack and now_ms 0) to a MULTI's
 * list in buf[*len..cap), as u32 len | encoding. Errors: CRAFT_EINVAL (sub is invalid or
 * not allowed in a MULTI), CRAFT_ETOOBIG (no room; nothing written). */
int craft_kv_cmd_multi_add(const struct craft_kv_cmd *sub, uint8_t *buf, size_t cap, size_t *len);

/* Walks a decoded MULTI's commands: start with *off = 0; each call decodes the next into
 * *sub (pointing into the MULTI's input) and returns false after the last. */
bool craft_kv_cmd_next_sub(const struct craft_kv_cmd *c, size_t *off, struct craft_kv_cmd *sub);

/* True if op reads only (GET ... EXISTS and the collection reads: in the log inside a
 * MULTI only). */
bool craft_kv_op_is_read(uint8_t op);

/* The digest WATCH compares: of a key's state as a read sees it (found, its expiry instant,
 * its value). Deterministic (FNV-1a, 64 bits): the server computes it at WATCH, every
 * replica again when it applies the MULTI. */
uint64_t craft_kv_watch_digest(bool found, uint64_t expire_at, const uint8_t *val, size_t len);

/* Redis's string2ll: an optional '-', then digits without a leading zero ("0" alone), no
 * sign '+', no space, no overflow: true with *out, else false. The one integer parser of
 * the state machine and the server (arguments and stored values alike). */
bool craft_kv_parse_i64(const uint8_t *p, size_t len, int64_t *out);

/* The proposer's expiry arithmetic, as Redis does it: the absolute instant `amount`
 * seconds (seconds true) or milliseconds after base_ms (base_ms 0 with an absolute amount:
 * EXPIREAT/PXAT). Negative results are clamped to 0 (in the past: the key is deleted).
 * Errors: CRAFT_EINVAL when the arithmetic overflows (Redis replies "ERR invalid expire
 * time in '<cmd>' command"). */
int craft_kv_deadline(uint64_t base_ms, int64_t amount, bool seconds, uint64_t *at);

#endif
