/* craft_kv_client: a small blocking client for craftkv with leader tracking and
 * exactly-once writes (design: docs/design/kv-client.md).
 *
 * A client holds one 64-bit session id and numbers its writes 1, 2, 3, ... Every write
 * (the commands listed under craft_kv_client_command) is sent as
 *     CRAFT.FWD <session> <seq> <command> <args...>
 * to the node it believes leads, and resent with the SAME seq after a connection error, a
 * timeout, -CRAFTNOTLEADER (following the leader address it names, else asking INFO, else
 * trying the next node) or -TRYAGAIN, until the operation's deadline. The leader applies a
 * session's seq at most once and answers a resend with the saved result, so a write that
 * returns is applied exactly once; one that times out was applied at most once (it is "in
 * doubt": it may have been applied or not, and it will never be applied after a later
 * write of the same client). Other commands (reads: GET MGET EXISTS ..., and PING, INFO)
 * are sent as they are to the current node, linearizable on any node, and resent to the
 * next node after a connection error or -TRYAGAIN: so they must be idempotent.
 *
 * Blocking: every call returns within the client's timeout_ms (plus a name lookup of a
 * node's host, which getaddrinfo performs without a deadline: prefer numeric addresses).
 * Connections are opened lazily, one at a time, and kept between calls.
 *
 * Threads: a client is not thread-safe; use it from one thread at a time (one client per
 * thread is the intended pattern). Distinct clients share nothing and may run in parallel.
 * Two clients must never use the same session id at the same time: one session keeps one
 * saved result, so the second client's writes would be refused ("ERR stale request") or,
 * worse, answered with the other's result.
 *
 * Errors: functions return CRAFT_OK (0), an enum craft_err (base/err.h) or
 * CRAFT_KV_CLIENT_EREPLY; craft_kv_client_strerror() names any of them and
 * craft_kv_client_errmsg() gives the detail of the client's last failure. SIGPIPE is never
 * raised (sends use MSG_NOSIGNAL). */
#ifndef CRAFT_KV_CLIENT_H
#define CRAFT_KV_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "craft_base.h" /* enum craft_err, craft_strerror */

/* Returned by the typed helpers (get, set, del, incrby) when the server answered with an
 * error reply (e.g. WRONGTYPE, "ERR value is not an integer"); its text is in
 * craft_kv_client_errmsg(). Outside enum craft_err's range. */
#define CRAFT_KV_CLIENT_EREPLY 64

/* Node addresses a client keeps: the configured ones plus leaders learned from replies. */
#define CRAFT_KV_CLIENT_NODES_MAX 32
/* The largest "host:port" kept, NUL included (same as CRAFT_ADDR_BYTES_MAX). */
#define CRAFT_KV_CLIENT_ADDR_BYTES_MAX 64
#define CRAFT_KV_CLIENT_TIMEOUT_MS_DEFAULT 10000u
/* One whole reply, RESP framing included (craftkv values are at most 1 MiB; MGET and SCAN
 * replies hold many). */
#define CRAFT_KV_CLIENT_REPLY_BYTES_MAX_DEFAULT (64u * 1024u * 1024u)
/* Arrays nested deeper than this are malformed (craftkv sends at most 2 levels). */
#define CRAFT_KV_CLIENT_REPLY_DEPTH_MAX 8

struct craft_kv_client_opts {
    /* n_addrs node client addresses, "host:port" ("127.0.0.1:7001", "[::1]:7001"; the
     * port is the last ':'), 1 <= n_addrs <= 16, each shorter than
     * CRAFT_KV_CLIENT_ADDR_BYTES_MAX. Any one node is enough: the others are found through
     * leader addresses in replies. Copied by open. */
    const char *const *addrs;
    size_t n_addrs;
    /* Deadline of one operation, all retries included (0: CRAFT_KV_CLIENT_TIMEOUT_MS_DEFAULT).
     * Keep it above the servers' --timeout-ms so that a server's own wait for a quorum is
     * not cut short. */
    uint32_t timeout_ms;
    /* Bound on one attempt (connect, send, and wait for the reply) on one node before the
     * client gives up on that node and tries again (0: timeout_ms, i.e. only the
     * operation's deadline). Lower it to leave a node that hangs sooner. */
    uint32_t attempt_timeout_ms;
    /* The session id. 0: a fresh random one (getrandom). Non-zero: continue a session
     * saved with craft_kv_client_session(), then last_seq must be the seq it returned
     * (a smaller one makes writes fail with "ERR stale request" or return an old result).
     * last_seq is ignored when session is 0. */
    uint64_t session;
    uint64_t last_seq;
    /* Largest reply accepted, in bytes (0: CRAFT_KV_CLIENT_REPLY_BYTES_MAX_DEFAULT). A larger
     * reply closes the connection and counts as a connection error. */
    size_t reply_bytes_max;
};

struct craft_kv_client;

/* Creates a client from o (copied; o and its strings are borrowed for the call only). No
 * connection is made yet. On success *out is the client, to be closed with
 * craft_kv_client_close(). Errors: CRAFT_EINVAL (no address, more than 16, one too long or
 * without ':'), CRAFT_ENOMEM, CRAFT_EIO (getrandom failed). */
int craft_kv_client_open(const struct craft_kv_client_opts *o, struct craft_kv_client **out);

/* Closes the connection and frees c. c may be NULL. A write in doubt stays in doubt. */
void craft_kv_client_close(struct craft_kv_client *c);

/* The session id and the last seq used so far (0 before the first write): what a program
 * saves to continue the session later through opts.session and opts.last_seq. Either
 * pointer may be NULL. */
void craft_kv_client_session(const struct craft_kv_client *c, uint64_t *session,
                             uint64_t *last_seq);

/* The address the next command goes to first (after a write: the leader as last seen).
 * Points into c: valid until the next call on c. */
const char *craft_kv_client_node(const struct craft_kv_client *c);

/* A NUL-terminated description of c's last failure (the server's error text after
 * CRAFT_KV_CLIENT_EREPLY; the last node's fault after CRAFT_ETIMEOUT), "" if none.
 * Points into c: valid until the next call on c. */
const char *craft_kv_client_errmsg(const struct craft_kv_client *c);

/* A static string for err: enum craft_err's texts, and CRAFT_KV_CLIENT_EREPLY's. */
const char *craft_kv_client_strerror(int err);

/* ---- replies ---- */

enum craft_kv_reply_type {
    CRAFT_KV_REPLY_STATUS = 1, /* +OK         str, len */
    CRAFT_KV_REPLY_ERROR,      /* -ERR ...    str, len (without the '-') */
    CRAFT_KV_REPLY_INTEGER,    /* :42         integer */
    CRAFT_KV_REPLY_BULK,       /* $3 abc      str, len (binary-safe) */
    CRAFT_KV_REPLY_NIL,        /* $-1 or *-1 */
    CRAFT_KV_REPLY_ARRAY,      /* *2 ...      elements[0..n_elements) */
};

/* One parsed RESP2 reply. str, when set, is followed by a NUL (not counted in len), so
 * status and error texts are C strings. The whole tree (elements, strings) is one
 * allocation owned by the top-level reply: free only that, with craft_kv_reply_free(). */
struct craft_kv_reply {
    enum craft_kv_reply_type type;
    int64_t integer;
    char *str;
    size_t len;
    struct craft_kv_reply *elements;
    size_t n_elements;
};

/* Frees a reply returned by craft_kv_client_command (NULL is fine). Never pass an element. */
void craft_kv_reply_free(struct craft_kv_reply *r);

/* ---- commands ---- */

/* Runs one command: argc arguments, argv[i] of lens[i] bytes (lens NULL: each argv[i] is
 * NUL-terminated). argv is borrowed for the call. The command name decides the routing:
 * SET SETNX GETSET GETDEL DEL UNLINK APPEND INCR INCRBY DECR DECRBY MSET MSETNX EXPIRE
 * PEXPIRE EXPIREAT PEXPIREAT PERSIST FLUSHALL FLUSHDB (any case) are writes, sent as
 * CRAFT.FWD with the next seq as described at the top; a CRAFT.FWD given by the caller is
 * sent unchanged with the same leader following and resends (its seq is the caller's
 * affair); anything else is sent as it is and resent after connection errors.
 *
 * Returns CRAFT_OK with *reply set (owned by the caller: craft_kv_reply_free), which may be
 * an error reply: the server's answer (WRONGTYPE, a syntax error, "ERR stale request", ...),
 * never retried. Otherwise *reply is NULL and the code is:
 *   CRAFT_ETIMEOUT  no usable reply before the deadline (every node down or unreachable,
 *                   no leader, malformed replies, ...; errmsg says the last cause). A write
 *                   is then in doubt; the next write uses the next seq.
 *   CRAFT_EINVAL    argc == 0, or c, argv, an argv[i] or reply NULL
 *   CRAFT_ENOMEM    an allocation failed (the connection is closed; a write is in doubt) */
int craft_kv_client_command(struct craft_kv_client *c, size_t argc, const char *const *argv,
                            const size_t *lens, struct craft_kv_reply **reply);

/* GET key. CRAFT_OK with *value (malloc'd, followed by a NUL not counted in *value_len;
 * the caller frees it) or CRAFT_ENOTFOUND if the key does not exist (*value NULL). value
 * and value_len must not be NULL; key is borrowed for the call (as in all helpers). Errors:
 * those of craft_kv_client_command, CRAFT_KV_CLIENT_EREPLY (an error reply),
 * CRAFT_EMALFORMED (a reply of the wrong type). */
int craft_kv_client_get(struct craft_kv_client *c, const void *key, size_t key_len,
                        void **value, size_t *value_len);

/* SET key value (no options). CRAFT_OK once applied; errors as for get. */
int craft_kv_client_set(struct craft_kv_client *c, const void *key, size_t key_len,
                        const void *value, size_t value_len);

/* DEL key. CRAFT_OK with *n_deleted (may be NULL) 0 or 1; errors as for get. */
int craft_kv_client_del(struct craft_kv_client *c, const void *key, size_t key_len,
                        int64_t *n_deleted);

/* INCRBY key delta. CRAFT_OK with the new value in *value (may be NULL); errors as for get
 * (CRAFT_KV_CLIENT_EREPLY when the value is not an integer or would overflow). */
int craft_kv_client_incrby(struct craft_kv_client *c, const void *key, size_t key_len,
                           int64_t delta, int64_t *value);

#endif
