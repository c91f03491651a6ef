/* craftkv: the replicated state machine (design: docs/design/kv.md).
 *
 * Deterministic: the state after applying a sequence of commands depends only on those
 * commands and the configuration (no clock, no randomness, no threads). Time is logical:
 * the largest now_ms of the commands applied so far ("now"). A key whose expire_at <= now
 * is absent for every write and read; it is physically removed when touched, or by a
 * bounded sweep (in expiry order) during each apply, and NOOP sweeps more.
 *
 * Exactly once (thesis 6.3): a session (id != 0) remembers the highest seq it ran (last)
 * and a window of saved results. A command with seq > last runs; its result joins the
 * window, which then drops the results of seqs below the command's ack (ack 0: every older
 * one), and the oldest beyond CRAFT_KV_SESSION_RESULTS_MAX results or
 * CRAFT_KV_SESSION_RESULT_BYTES_MAX bytes of them (the newest always stays). A command with
 * seq <= last gets its saved result back without running again, or "ERR stale request" if
 * the window no longer holds it. So a client may keep several commands of a session in
 * doubt, as long as each carries as ack the lowest seq it has no reply for.
 * A session idle (no command) for session_idle_ms of logical time is gone, on every
 * replica at the same command. Commands for an unknown or expired session get
 * "ERR unknown or expired session" without running; open it (again) with SESSION_OPEN.
 *
 * Threads: apply, snapshot capture and restore on one thread (the state machine thread);
 * reads (craft_kv_read_*) and snapshot writes on any thread, concurrently with apply: each
 * works on a read transaction of the store, a consistent committed state. */
#ifndef CRAFT_KV_SM_H
#define CRAFT_KV_SM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "craft.h"
#include "kv/kv_cmd.h"
#include "kv/kv_store.h"

/* ---- results ---- */

enum craft_kv_result_type {
    CRAFT_KV_RES_OK = 1, /* +OK */
    CRAFT_KV_RES_NIL,    /* a null bulk string */
    CRAFT_KV_RES_INT,    /* integer */
    CRAFT_KV_RES_BULK,   /* data[0..len) */
    CRAFT_KV_RES_ERR,    /* data: Redis's error text without the '-', e.g. "ERR value is not
                          * an integer or out of range" */
    CRAFT_KV_RES_ARRAY,  /* integer elements, encoded one after another in data[0..len):
                          * walk them with craft_kv_result_next (a MULTI's replies; an
                          * element is itself an array for MGET) */
    CRAFT_KV_RES_STATUS, /* a simple string other than OK: data[0..len), e.g. "string" */
};

/* One allocation (free with craft_kv_result_free). data is NUL-terminated (not counted in
 * len), so an error's text is a C string. */
struct craft_kv_result {
    uint8_t type;
    int64_t integer;
    size_t len;
    uint8_t data[];
};

void craft_kv_result_free(struct craft_kv_result *r);

/* An element of an ARRAY result, read in place: data borrowed from the array. */
struct craft_kv_result_view {
    uint8_t type;
    int64_t integer; /* INT; ARRAY: its number of elements */
    size_t len;
    const uint8_t *data;
};

/* Walks the elements of an ARRAY's data[0..len) (or of an ARRAY element's): start with
 * *off = 0; false after the last. The encoding was checked where it was made or loaded. */
bool craft_kv_result_next(const uint8_t *data, size_t len, size_t *off,
                          struct craft_kv_result_view *el);

/* The error texts the state machine produces besides Redis's own. */
#define CRAFT_KV_ERR_STALE     "ERR stale request"
#define CRAFT_KV_ERR_SESSION   "ERR unknown or expired session"
#define CRAFT_KV_ERR_MALFORMED "ERR malformed command"
#define CRAFT_KV_ERR_VERSION   "ERR unsupported command version"
#define CRAFT_KV_ERR_MEMBERS   "ERR too many members"
#define CRAFT_KV_ERR_WRONGTYPE "WRONGTYPE Operation against a key holding the wrong kind of value"
/* craft_kv_coll_check's for a wrong count of arguments (the server names the command, as
 * Redis's text does: "... for 'hset' command"). */
#define CRAFT_KV_ERR_ARGS "ERR wrong number of arguments"
/* Shard groups: "MOVED <slot>" for a key of a slot the group does not own (the server adds
 * the owner's address, Redis style); TRYAGAIN while the slot's keys are on their way. */
#define CRAFT_KV_ERR_MOVED     "MOVED"
#define CRAFT_KV_ERR_TRYAGAIN  "TRYAGAIN slot being received"
#define CRAFT_KV_ERR_NOT_SHARD "ERR not a shard group"
/* A MULTI's replies, encoded, are at most this many bytes on every replica: an element
 * that would pass it (a value read, an MGET, a value a write returns) is replaced by
 * CRAFT_KV_ERR_REPLY_LARGE, the command having run. Replicated behaviour: part of the format.
 * Below the forwarding connection's limit, so a follower relays any EXEC reply. */
#define CRAFT_KV_MULTI_REPLY_BYTES_MAX (32u << 20)
#define CRAFT_KV_ERR_REPLY_LARGE "ERR EXEC reply too large: this element is left out (the command ran)"
/* A pop (SPOP, LPOP, RPOP, ZPOPMIN, ZPOPMAX with a count) whose answer would pass its
 * bound (CRAFT_KV_MULTI_REPLY_BYTES_MAX, or what is left of a MULTI's) pops nothing: the
 * members would be lost with the answer. */
#define CRAFT_KV_ERR_POP_LARGE "ERR too many elements to pop in one reply (nothing was popped)"
/* A read's answer outside a MULTI is at most this many bytes encoded (past it:
 * CRAFT_KV_ERR_REPLY_LARGE; Redis's proto-max-bulk-len is the same 512 MB), and
 * SRANDMEMBER's repeated picks at most this many (past it: "ERR value is out of range"). */
#define CRAFT_KV_READ_REPLY_BYTES_MAX (512u << 20)
#define CRAFT_KV_RANDOM_PICKS_MAX     (1u << 20)
/* A MULTI whose replies are too large to keep for a retry ran, and answered in full; a
 * retry of it (a leader change) gets this instead. */
#define CRAFT_KV_ERR_EXEC_LARGE "ERR EXEC reply too large to keep for a retry (the transaction ran)"

/* A session's window of saved results (above). Replicated behaviour: part of the format. */
#define CRAFT_KV_SESSION_RESULTS_MAX      256u
#define CRAFT_KV_SESSION_RESULT_BYTES_MAX (256u * 1024u) /* saved results' encodings, summed */

/* ---- the state machine ---- */

struct craft_kv_sm_config {
    /* Sessions idle longer than this (logical ms) are dropped. Default (0): one hour.
     * Replicated behaviour: every replica must use the same value. */
    uint64_t session_idle_ms;
    /* Sessions one apply batch holds in memory before it writes them (kv_sm.c, SESS_SLOTS_MAX
     * and the default; fewer only to test the overflow). Local: replicas may differ. */
    uint32_t batch_sessions_max;
    /* Non-zero: the state machine is shard group shard_gid's (below). Replicated behaviour,
     * and the store's: every replica of the group opens its store with the same gid. */
    uint64_t shard_gid;
};

struct craft_kv_sm;

/* Opens a state machine over store (borrowed: close the state machine first, then the
 * store), reading its applied index, logical time and key count. cfg may be NULL
 * (defaults). Errors: CRAFT_ENOMEM, CRAFT_EVERSION (a store written by another format),
 * CRAFT_ECORRUPT, the store's. */
int craft_kv_sm_open(struct craft_kv_store *store, const struct craft_kv_sm_config *cfg,
                     struct craft_kv_sm **out);
/* Every read and snapshot must have been released. */
void craft_kv_sm_close(struct craft_kv_sm *sm);

/* The log index of the last command applied (0: none; log indexes start at 1) and the
 * logical time: as of the last commit, on the state machine thread (or before the node
 * starts: a restarted server learns here how far its store got). */
uint64_t craft_kv_sm_applied(const struct craft_kv_sm *sm);
uint64_t craft_kv_sm_now(const struct craft_kv_sm *sm);

/* Applies cmds[0..n) in one store write transaction, with the applied index (the last
 * command's index), the sessions and the data: a crash leaves all of them as of before or
 * after the batch. Commands with index <= the applied index are skipped (a restarted node
 * replays its log over a store that has them already; results[i] stays NULL). For the
 * others results[i] receives a struct craft_kv_result * (owned by the caller), including
 * for a command that does not decode (CRAFT_KV_ERR_MALFORMED / _VERSION: deterministic,
 * every replica answers the same). results must hold n pointers; the same shape as struct
 * craft_fsm's apply.
 * Errors (the store's: CRAFT_ENOMEM, CRAFT_ENOSPACE, CRAFT_EIO, CRAFT_ECORRUPT): nothing of
 * the batch is applied, every results[i] is NULL; the state is as before the call. */
int craft_kv_sm_apply_batch(struct craft_kv_sm *sm, const struct craft_command *cmds, size_t n,
                            void **results);
/* One command (a batch of one). */
int craft_kv_sm_apply(struct craft_kv_sm *sm, uint64_t index, const uint8_t *data, size_t len,
                      struct craft_kv_result **result);

/* ---- reads (not replicated: call after craft_read_index / craft_read_lease) ----
 *
 * A read sees one committed state and its logical time. Any thread; several at once. */
struct craft_kv_read;

/* Errors: CRAFT_ENOMEM, CRAFT_EBUSY (LMDB: all reader slots taken), CRAFT_EIO. */
int craft_kv_read_begin(struct craft_kv_sm *sm, struct craft_kv_read **out);
void craft_kv_read_end(struct craft_kv_read *r);
/* The applied index and logical time of the state the read sees. */
uint64_t craft_kv_read_applied(const struct craft_kv_read *r);
uint64_t craft_kv_read_now(const struct craft_kv_read *r);

/* GET (and EXISTS, STRLEN through it): CRAFT_OK with a string's value (borrowed until
 * craft_kv_read_end), or CRAFT_ENOTFOUND (absent, expired, or not a string: a hash or a set,
 * which craft_kv_read_type tells). Other errors: the store's. */
int craft_kv_read_get(struct craft_kv_read *r, const uint8_t *key, size_t klen, const uint8_t **val,
                      size_t *vlen);
/* TYPE: *name is "none", "string", "hash" or "set" (static). Errors: the store's. */
int craft_kv_read_type(struct craft_kv_read *r, const uint8_t *key, size_t klen, const char **name);
/* WATCH: the digest of the key's state (craft_kv_watch_digest of its presence, expiry and
 * stored value: a string, or a collection's header, which counts its changes), as apply
 * computes it for the MULTI's check. Errors: the store's. */
int craft_kv_read_watch(struct craft_kv_read *r, const uint8_t *key, size_t klen, uint64_t *digest);
/* PTTL: -2 absent, -1 no expiry, else ms left (against the logical time). */
int craft_kv_read_pttl(struct craft_kv_read *r, const uint8_t *key, size_t klen, int64_t *ms);
/* TTL: as PTTL in seconds, rounded as Redis does ((ms + 500) / 1000). */
int craft_kv_read_ttl(struct craft_kv_read *r, const uint8_t *key, size_t klen, int64_t *s);
/* PEXPIRETIME: -2 absent, -1 no expiry, else the absolute expire_at in ms. */
int craft_kv_read_expire_at(struct craft_kv_read *r, const uint8_t *key, size_t klen, int64_t *at);
/* DBSIZE, exact: stored keys minus those expired and not yet swept (counting those costs
 * one index step per such key). */
int craft_kv_read_dbsize(struct craft_kv_read *r, uint64_t *n);

/* SCAN cursor [MATCH pattern] [COUNT count]. The key space is ordered by a fixed 64-bit
 * hash of the key; the cursor is a position in it (0: start; *next == 0: done). Looks at
 * about count keys (at least 1; more when keys share a hash, so the cursor always moves
 * on), calls emit for each live key matching pattern (NULL: all; Redis glob syntax). The
 * key passed to emit is borrowed for the call. Redis's guarantee holds: a key present for
 * the whole iteration is returned (here exactly once). emit returns CRAFT_OK or an enum
 * craft_err, which stops the scan and is returned (*next is then unset). Errors: the
 * store's, or emit's. */
typedef int (*craft_kv_emit_fn)(void *ctx, const uint8_t *key, size_t klen);
int craft_kv_read_scan(struct craft_kv_read *r, uint64_t cursor, const uint8_t *pattern,
                       size_t plen, size_t count, craft_kv_emit_fn emit, void *ctx, uint64_t *next);
/* SCAN ... TYPE type: as craft_kv_read_scan, emitting only keys of that type (a name as
 * craft_kv_read_type gives; NULL: any). */
int craft_kv_read_scan_type(struct craft_kv_read *r, uint64_t cursor, const uint8_t *pattern,
                            size_t plen, size_t count, const char *type, craft_kv_emit_fn emit,
                            void *ctx, uint64_t *next);

/* A collection read (craft_kv_op_is_coll and craft_kv_op_is_read: HGET ... SDIFF) on the
 * read's state: c needs op, key and its n arguments in args (the Redis arguments after the
 * key; SRANDMEMBER's seed last). *res: the answer (owned by the caller; an error answer for
 * a wrong type or bad arguments), or NULL with a store error returned. */
int craft_kv_read_exec(struct craft_kv_read *r, const struct craft_kv_cmd *c,
                       struct craft_kv_result **res);

/* Checks a collection op's arguments (the Redis arguments after the key, SPOP's and
 * SRANDMEMBER's seed last) as the state machine will: NULL if they are good, else the
 * error to answer (Redis's text where Redis has one). Pure; any thread. */
const char *craft_kv_coll_check(uint8_t op, size_t n, const struct craft_kv_bytes *args);

/* ---- the member table ----
 *
 * The cluster's members as MEMBER_SET / MEMBER_DEL left them: each member's Raft (peer) and
 * client address. It lives beside the data, not in it: no user command (GET, SCAN,
 * DBSIZE, FLUSHALL, ...) sees or changes it. Snapshots carry it. MEMBER_SET of a new id
 * when CRAFT_KV_MEMBERS_MAX members are recorded answers CRAFT_KV_ERR_MEMBERS. */
#define CRAFT_KV_MEMBERS_MAX 64u

struct craft_kv_member {
    uint64_t id;
    char peer_addr[CRAFT_KV_ADDR_BYTES_MAX + 1];   /* NUL-terminated */
    char client_addr[CRAFT_KV_ADDR_BYTES_MAX + 1]; /* NUL-terminated */
};

/* Member id's record: CRAFT_OK with *out filled, CRAFT_ENOTFOUND, or the store's error
 * (CRAFT_ECORRUPT for a bad record). */
int craft_kv_read_member(struct craft_kv_read *r, uint64_t id, struct craft_kv_member *out);
/* Every recorded member in id order: the first cap into out[], *n the number recorded
 * (which may exceed cap). Errors: as craft_kv_read_member. */
int craft_kv_read_members(struct craft_kv_read *r, struct craft_kv_member *out, size_t cap,
                          size_t *n);

/* Redis's glob (KEYS, SCAN MATCH): * ? [abc] [^a] [a-z] and \ escapes. */
bool craft_kv_glob_match(const uint8_t *pat, size_t plen, const uint8_t *s, size_t slen);

/* ---- shard groups ----
 *
 * A state machine opened with a shard_gid is one replica group of a sharded cluster
 * (docs/design/sharding.md, "Shard groups"). It keeps the group's view of the slots
 * (shard/view.h) in its store, changed only by the SHARD_* commands its leader proposes,
 * and runs a key's command only if the group serves the key's slot at that point of its
 * log; otherwise the command does not run and its result is an error, "MOVED <slot>" or
 * CRAFT_KV_ERR_TRYAGAIN. Such a command is not recorded in its session either: a
 * client's seq that one group refused may run in the group that owns the slot; unless it
 * carries refusal_final (kv_cmd.h: craftkv's server, whose sessions are per group): then
 * the refusal is recorded as the seq's result, and the seq never runs here. A retry
 * of a seq that did run is answered from the session first, whatever the slot's owner is
 * now (the session check comes before the ownership check), so exactly-once survives a
 * migration. FLUSHALL empties only the slots served.
 *
 *   SHARD_CONFIG (config)      the next configuration (shard/view.h: one at a time)
 *   SHARD_INSTALL (num, payload) the keys of slots received from their previous owner,
 *                              and that group's sessions, merged with ours (kv_shard.h);
 *                              a part (payload version 2) only keys, of its slots still
 *                              PULLING at num, the view unchanged; a key already there
 *                              with the same value and expiry is skipped (a part sent
 *                              again), with another is a damaged store (CRAFT_ECORRUPT)
 *   SHARD_DELETE (num, slots)  the next owner has them: their keys go
 *   SHARD_CONFIRM (num, slots) the previous owner has deleted them
 * Each answers OK (applied, or done already) or an error naming what is wrong with it
 * (the same on every replica; nothing changes then). A plain state machine answers them
 * CRAFT_KV_ERR_NOT_SHARD. */
struct craft_shard_view;
struct craft_slot_set;

/* The state of slot at the read's state (enum craft_slot_state): CRAFT_SLOT_SERVING for
 * every slot of a plain state machine. Errors: the store's, CRAFT_ECORRUPT. */
int craft_kv_read_slot_state(struct craft_kv_read *r, uint16_t slot, uint8_t *state);
/* The group's view at the read's state (*out: about 115 KiB). Errors: CRAFT_EINVAL (not a
 * shard group), CRAFT_ECORRUPT, the store's. */
int craft_kv_read_view(struct craft_kv_read *r, struct craft_shard_view *out);
/* The payload that hands slots over to their next owner (SHARD_INSTALL's, kv_shard.h):
 * every live key of those slots and every live session, as of the read's state, in a
 * malloc'd *out (the caller frees). The read's view must be at configuration num with
 * every slot of slots GIVING: CRAFT_ESTALE if the group is past num or deleted one of them
 * already (the receiver has them), CRAFT_EBUSY if it has not reached num yet, CRAFT_EINVAL
 * if a slot was not ours in the configuration before num or the state machine is plain.
 * With cur NULL, all of it in one payload, or CRAFT_ETOOBIG over max bytes. With cur, in
 * parts (kv_shard.h): the keys after cur->key (len 0: from the first); if those and the
 * sessions fit in max, the final payload (*part false); otherwise a part of as many keys as
 * fit (*part true). Either way cur->key becomes the last key's handed over (the next call
 * goes on from there); on an error it is unchanged. CRAFT_ETOOBIG if not even one key, or
 * the sessions alone, fit. CRAFT_ENOMEM, the store's. */
struct craft_kv_export_cursor {
    size_t len;
    uint8_t key[8u + CRAFT_KV_KEY_BYTES_MAX]; /* a stored key (kv.md: hash, then key) */
};
int craft_kv_read_export(struct craft_kv_read *r, uint64_t num, const struct craft_slot_set *slots,
                         size_t max, struct craft_kv_export_cursor *cur, uint8_t **out,
                         size_t *len, bool *part);

/* ---- snapshots ----
 *
 * Format: docs/design/kv.md (versioned, crc32-checked, canonical: equal states give equal
 * bytes). */
struct craft_kv_snap;

typedef int (*craft_kv_write_fn)(void *ctx, const void *buf, size_t len);
/* As craft_source_read: up to cap bytes into buf, *n == 0 at the end. */
typedef int (*craft_kv_read_fn)(void *ctx, void *buf, size_t cap, size_t *n);

/* Captures the state as of the last commit: O(1) (a store read transaction). On the state
 * machine thread. Errors: as craft_kv_read_begin. */
int craft_kv_sm_snapshot(struct craft_kv_sm *sm, struct craft_kv_snap **out);
/* Streams a captured snapshot through write; any thread, while apply goes on. Returns the
 * first error of write, or the store's. */
int craft_kv_snap_write(struct craft_kv_snap *snap, craft_kv_write_fn write, void *ctx);
/* Any thread, once per snapshot, before craft_kv_sm_close. */
void craft_kv_snap_release(struct craft_kv_snap *snap);

/* Replaces the whole state with a snapshot read through read, in one store transaction:
 * on any error the old state is intact. On the state machine thread. Errors: CRAFT_ECORRUPT
 * (a bad or truncated snapshot, a checksum mismatch), CRAFT_EVERSION (another format
 * version), read's own errors, the store's. */
int craft_kv_sm_restore(struct craft_kv_sm *sm, craft_kv_read_fn read, void *ctx);

/* ---- the craft_fsm adapter (kv_fsm.c) ----
 *
 * Fills fsm with callbacks over sm (borrowed: keep it until the node is destroyed). apply
 * runs craft_kv_sm_apply_batch and hands each result to the proposer's future (read it with
 * craft_future_result, free with craft_kv_result_free); a store error while applying is
 * fatal (the process aborts: the state machine cannot report it, and a restart recovers
 * from the store, snapshot and log). */
void craft_kv_fsm_init(struct craft_fsm *fsm, struct craft_kv_sm *sm);

#endif
