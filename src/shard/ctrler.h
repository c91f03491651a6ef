/* The shard controller's replicated state machine (design: docs/design/sharding.md, "The
 * controller"): the history of shard configurations and the sessions of the clients that
 * change it, driven by the entries of the controller group's log.
 *
 * Requests: Join (new groups with their servers), Leave (gids), Move (a slot range to a
 * gid) and Query (configuration num, or the latest). Every replica applies the same
 * entries in the same order and so holds the same history: no clock, no randomness, no
 * hash order. A change request carries its client's id and sequence number; the
 * controller remembers, per client, the last change it applied and its answer, so a retried
 * request (a lost reply, a new leader) is answered again rather than applied twice.
 *
 * Sessions: a client first registers (a REGISTER entry; its id is the index of that entry,
 * so ids are unique and every replica hands out the same one), then numbers its changes 1,
 * 2, ... with no gap; queries need no session (they change nothing, and go through the log
 * only to be linearizable). A change is refused with CRAFT_ESTALE, and changes nothing, if
 * its client is unknown (never registered, or forgotten), if it is older than the client's
 * last, or if it skips a number: it never applies out of order or twice. At most
 * CRAFT_SHARD_CTRLER_SESSIONS_MAX sessions are kept; a registration beyond that forgets the
 * least recently used. A client that sees CRAFT_ESTALE registers again; whether its
 * pending change was applied is then unknown to it (a query tells), but it was applied at
 * most once.
 *
 * Thread: none of its own; one thread at a time per controller. Errors are return codes;
 * an allocation failure leaves the state machine as it was. */
#ifndef CRAFT_SHARD_CTRLER_H
#define CRAFT_SHARD_CTRLER_H

#include <stddef.h>
#include <stdint.h>

#include "shard/config.h"

#define CRAFT_SHARD_CTRLER_SESSIONS_MAX 1024u
#define CRAFT_SHARD_CTRLER_ERR_BYTES    128u /* a refusal's text, NUL included */
#define CRAFT_SHARD_QUERY_LATEST        UINT64_MAX

enum craft_shard_op {
    CRAFT_SHARD_OP_JOIN = 1,
    CRAFT_SHARD_OP_LEAVE = 2,
    CRAFT_SHARD_OP_MOVE = 3,
    CRAFT_SHARD_OP_QUERY = 4,
    CRAFT_SHARD_OP_REGISTER = 5, /* a new client: the answer's num is its id */
};

/* One request, as a plain value (about 34 KiB: allocate it, or keep one). */
struct craft_shard_request {
    uint8_t op;      /* enum craft_shard_op */
    uint64_t client; /* changes: != 0 (the id REGISTER gave); register: 0; query: any */
    uint64_t seq;    /* changes: 1, 2, ... per client; register and query: 0 */
    uint32_t n;      /* join: groups[0..n); leave: gids[0..n); 1..CRAFT_SHARD_GROUPS_MAX */
    struct craft_shard_group groups[CRAFT_SHARD_GROUPS_MAX];
    uint64_t gids[CRAFT_SHARD_GROUPS_MAX];
    uint16_t first, last; /* move: slots [first, last] */
    uint64_t gid;         /* move: to this group */
    uint64_t num;         /* query: a configuration number, or CRAFT_SHARD_QUERY_LATEST */
};

/* The encoding, a log entry's payload (little-endian):
 *   u8 version (1) | u8 op | u64 client | u64 seq | then per op:
 *   join:  u8 n | per group: u64 gid | u8 n_servers | per server: u8 len | len bytes
 *   leave: u8 n | n x u64 gid
 *   move:  u16 first | u16 last | u64 gid
 *   query: u64 num
 *   register: nothing */
#define CRAFT_SHARD_REQUEST_VERSION 1u
#define CRAFT_SHARD_REQUEST_BYTES_MAX                                                      \
    (1u + 1u + 8u + 8u + 1u +                                                              \
     CRAFT_SHARD_GROUPS_MAX * (8u + 1u + CRAFT_SHARD_SERVERS_MAX * CRAFT_SHARD_ADDR_BYTES))

/* Encodes r into buf (cap bytes); *len receives the size. CRAFT_EINVAL if r breaks the
 * shape above (unknown op, client 0 on a change or not 0 on a register, seq 0 on a
 * change or not 0 on a register or query, n out of
 * range, a group with no server or too many, an empty or over-long server name),
 * CRAFT_ETOOBIG if cap is short. Checks shape only: whether a Join's gid is new is the
 * state machine's answer. */
int craft_shard_request_encode(const struct craft_shard_request *r, uint8_t *buf, size_t cap,
                               size_t *len);
/* Decodes p[0..len) into *r: CRAFT_OK, CRAFT_EVERSION, or CRAFT_EMALFORMED (truncated,
 * trailing bytes, or a shape the encoder refuses). *r is garbage on error. */
int craft_shard_request_decode(const uint8_t *p, size_t len, struct craft_shard_request *r);

struct craft_shard_ctrler;

/* The answer to one applied request. */
struct craft_shard_ctrler_result {
    /* CRAFT_OK; CRAFT_EINVAL: the change is refused and changed nothing (err says why:
     * an unknown gid, the last group leaving, ...); CRAFT_ESTALE: an old or out-of-order
     * change of its client (see Sessions), nothing done. */
    int status;
    uint64_t num; /* the configuration the change made, the one a query returns, or a
                     registered client's id */
    char err[CRAFT_SHARD_CTRLER_ERR_BYTES];
    /* A query's configuration, encoded (config.h); borrowed until the next call on the
     * controller. NULL for changes. */
    const uint8_t *config;
    size_t config_len;
};

/* A controller holding configuration 0 and no session. CRAFT_ENOMEM. */
int craft_shard_ctrler_open(struct craft_shard_ctrler **out);
void craft_shard_ctrler_close(struct craft_shard_ctrler *c); /* NULL is allowed */

/* Applies the log entry at index (increasing from call to call) holding p[0..len).
 * CRAFT_OK with *res filled in (whatever the request's own answer), CRAFT_EMALFORMED or
 * CRAFT_EVERSION if the entry does not decode (nothing changes: a replica skips it the
 * same way as every other), CRAFT_ENOMEM (nothing changes; the caller must not apply
 * later entries before this one). */
int craft_shard_ctrler_apply(struct craft_shard_ctrler *c, uint64_t index, const uint8_t *p,
                             size_t len, struct craft_shard_ctrler_result *res);

/* The latest configuration (borrowed until the next call). */
const struct craft_shard_config *craft_shard_ctrler_latest(const struct craft_shard_ctrler *c);

/* Configuration num of the history, encoded (config.h; borrowed until the next call that
 * changes c): CRAFT_OK, or CRAFT_ENOTFOUND past the latest. A read of this replica's state,
 * not through the log: what a driver of shard groups needs, since a configuration, once in
 * the history, never changes. */
int craft_shard_ctrler_config(const struct craft_shard_ctrler *c, uint64_t num,
                              const uint8_t **p, size_t *len);

/* Snapshot: the whole history and every session, as bytes (*buf, *len: the caller frees
 * *buf). Format (little-endian):
 *   u8 version (1) | u64 last applied index | u32 n_configs | per configuration
 *   (num 0, 1, ... in order): u32 len | encoding | u32 n_sessions | per session (ascending
 *   client): u64 client | u64 seq | u64 index | u8 status (0: OK, 1: EINVAL) | u64 num |
 *   u8 err_len | err bytes
 * CRAFT_ENOMEM. */
#define CRAFT_SHARD_CTRLER_SNAPSHOT_VERSION 1u
int craft_shard_ctrler_snapshot(const struct craft_shard_ctrler *c, uint8_t **buf, size_t *len);
/* Replaces c's state with a snapshot's, one that covers the log through index (the next
 * entry applied is index + 1). CRAFT_EVERSION, CRAFT_ECORRUPT (anything that does not
 * check: truncation, trailing bytes, a last applied index above `index`, a configuration
 * that does not decode or is not numbered in order, sessions out of order or out of
 * range), CRAFT_ENOMEM; on error c is unchanged. */
int craft_shard_ctrler_restore(struct craft_shard_ctrler *c, const uint8_t *p, size_t len,
                               uint64_t index);

/* The last applied index (0 for a new controller). */
uint64_t craft_shard_ctrler_applied(const struct craft_shard_ctrler *c);

#endif
