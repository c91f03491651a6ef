/* craftkv storage: a few ordered byte maps ("tables") behind transactions.
 *
 * The state machine (kv_sm.c) needs little: get / put / del, ordered iteration from a key,
 * emptying a table, and transactions. A write transaction is all-or-nothing: everything it
 * did becomes visible at once on commit, nothing on abort (or on a crash before commit).
 * A read transaction sees the state of one commit for as long as it lives, whatever
 * commits later (snapshots and reads run on it while apply goes on).
 *
 * Keys order by memcmp over the shorter length, then the shorter first (LMDB's default).
 *
 * Two implementations: memory (a persistent treap, for tests and the simulator) and LMDB.
 *
 * Threads: one write transaction at a time, begun, used and ended on one thread (the state
 * machine thread). Read transactions may be begun on any thread, used from any one thread
 * at a time, and ended on any thread, concurrently with the writer and with each other.
 *
 * Pointers returned by get and passed to an iteration callback point into the store: valid
 * until the next put/del/drop in that transaction or its end, whichever comes first. */
#ifndef CRAFT_KV_STORE_H
#define CRAFT_KV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

enum craft_kv_table {
    CRAFT_KV_TABLE_DATA = 0, /* stored key -> u64 expire_at | value */
    CRAFT_KV_TABLE_EXPIRES,  /* u64be expire_at | stored key -> "" */
    CRAFT_KV_TABLE_SESSIONS, /* u64be session id -> record */
    CRAFT_KV_TABLE_IDLE,     /* u64be last_ms | u64be session id -> "" */
    CRAFT_KV_TABLE_META,     /* name -> u64 */
    CRAFT_KV_TABLE_ELEMS,    /* u64be collection id | element key -> element value */
    CRAFT_KV_TABLE_ZINDEX,   /* u64be id | u64be sortable score | member -> "" */
    CRAFT_KV_TABLES
};

/* Iteration callback: return CRAFT_OK to go on, CRAFT_KV_ITER_STOP to stop (the iteration
 * then returns CRAFT_OK), anything else to stop and have the iteration return it. It must
 * not modify the transaction. */
#define CRAFT_KV_ITER_STOP (-1)
typedef int (*craft_kv_iter_fn)(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
                                size_t vlen);

struct craft_kv_txn; /* the implementation's */
struct craft_kv_store;

struct craft_kv_store_ops {
    /* Begins a transaction. Errors: CRAFT_ENOMEM, CRAFT_EBUSY (LMDB's reader slots are all
     * taken), CRAFT_EIO. */
    int (*begin)(struct craft_kv_store *s, bool write, struct craft_kv_txn **out);
    /* CRAFT_OK with *val and *vlen set, CRAFT_ENOTFOUND, or a store error. */
    int (*get)(struct craft_kv_txn *t, int table, const uint8_t *key, size_t klen,
               const uint8_t **val, size_t *vlen);
    /* Write transactions only. Insert or replace. Errors: CRAFT_ENOMEM, CRAFT_ENOSPACE,
     * CRAFT_EINVAL (a key over the store's limit), CRAFT_EIO. */
    int (*put)(struct craft_kv_txn *t, int table, const uint8_t *key, size_t klen,
               const uint8_t *val, size_t vlen);
    /* CRAFT_OK, CRAFT_ENOTFOUND (nothing to delete) or a store error. */
    int (*del)(struct craft_kv_txn *t, int table, const uint8_t *key, size_t klen);
    /* Empties a table. */
    int (*drop)(struct craft_kv_txn *t, int table);
    /* Calls fn on each entry with key >= from (from NULL: from the first), in order. */
    int (*iter)(struct craft_kv_txn *t, int table, const uint8_t *from, size_t from_len,
                craft_kv_iter_fn fn, void *ctx);
    /* Ends a write transaction, making it durable as configured (LMDB). On error nothing
     * of it is visible. Errors: CRAFT_ENOSPACE, CRAFT_EIO, CRAFT_ENOMEM. */
    int (*commit)(struct craft_kv_txn *t);
    /* Ends a transaction without effect (the only way to end a read transaction). */
    void (*abort)(struct craft_kv_txn *t);
    /* Frees the store. Every transaction must have ended. */
    void (*close)(struct craft_kv_store *s);
};

/* Implementations start with this. */
struct craft_kv_store {
    const struct craft_kv_store_ops *ops;
};

/* An empty in-memory store. Errors: CRAFT_ENOMEM. */
int craft_kv_store_mem_open(struct craft_kv_store **out);

struct craft_kv_lmdb_config {
    const char *path;     /* a directory, created if missing (data.mdb and lock.mdb inside) */
    uint64_t map_bytes;   /* the map's size, the database's largest size (default 16 GiB).
                           * A restore holds the old and the new state at once: allow 2x. */
    uint32_t readers_max; /* concurrent read transactions (default 256) */
    /* false (default): every commit is durable (one fsync: MDB_NOMETASYNC, which keeps
     * atomicity, a system crash may only undo the last commit). true: no fsync (MDB_NOSYNC):
     * a process crash loses nothing; after an OS crash (a reboot while unsynced writes may
     * exist, told by a marker file holding the boot id) the open drops the files and the
     * store starts empty (craft_kv_store_lmdb_discarded): for a state machine rebuilt from a
     * Raft snapshot and log, which craft's runtime does at every start anyway. A clean close
     * syncs and removes the marker. no_sync stores run with MDB_WRITEMAP and keep the map
     * file allocated ahead of LMDB's pages (fallocate), so a full disk is CRAFT_ENOSPACE
     * from a put or a begin, never SIGBUS in the shared map. */
    bool no_sync;
};

/* Opens (or creates) an LMDB store. On failure errbuf (if not NULL) names the cause.
 * Errors: CRAFT_EIO, CRAFT_ENOMEM, CRAFT_ECORRUPT (not an LMDB file, or a bad one),
 * CRAFT_EVERSION (an LMDB version mismatch), CRAFT_EBUSY (the file is locked by another
 * process in an incompatible mode), CRAFT_EINVAL (no path, or an LMDB built with a key
 * limit below CRAFT_KV_STORE_KEY_BYTES_MAX). */
int craft_kv_store_lmdb_open(const struct craft_kv_lmdb_config *cfg, struct craft_kv_store **out,
                             char *errbuf, size_t errbuf_cap);

/* Whether the open dropped the files of an OS crash (no_sync only). s: an LMDB store. */
bool craft_kv_store_lmdb_discarded(const struct craft_kv_store *s);

/* The longest key the state machine stores: a 16-byte prefix and a user key. */
#define CRAFT_KV_STORE_KEY_BYTES_MAX (16u + 480u)

#endif
