/* craftkv's collections, the parts kv_coll.c (hashes, sets, the dispatch), kv_list.c and
 * kv_zset.c share: argument parsing, array answers, a collection's key and its elements in
 * one key space (kv_internal.h). Internal to the state machine. */
#ifndef CRAFT_KV_COLL_H
#define CRAFT_KV_COLL_H

#include "kv/kv_internal.h"

/* Redis's texts. */
#define KV_ERR_SYNTAX     "ERR syntax error"
#define KV_ERR_NOT_INT    "ERR value is not an integer or out of range"
#define KV_ERR_NOT_FLOAT  "ERR value is not a valid float"
#define KV_ERR_ARGS       CRAFT_KV_ERR_ARGS
#define KV_ERR_POSITIVE   "ERR value is out of range, must be positive"
#define KV_ERR_FIELD_LONG "ERR field or member too long (up to 480 bytes)"
#define KV_ERR_RANGE      "ERR value is out of range"
#define KV_ERR_KEY_LONG   "ERR key too long (keys up to 480 bytes)"

/* ---- arguments ---- */

/* Redis's string2ll: an optional '-', digits without a leading zero, no overflow. */
bool kv_arg_i64(struct craft_kv_bytes b, int64_t *out);
/* b is s, ignoring the case of letters (s in capitals). */
bool kv_arg_is(struct craft_kv_bytes b, const char *s);

/* HSCAN / SSCAN's arguments: cursor [MATCH pattern] [COUNT count] [NOVALUES (HSCAN)]. */
struct kv_scan_args {
    uint64_t cursor;
    struct craft_kv_bytes pattern; /* len 0 and p NULL: none */
    bool has_pattern, novalues;
    uint64_t count;
};

/* A number as Redis reads a float (strtod: "1.5", "-inf", "1e3"; no spaces, not NaN, at
 * most KV_HUMAN_TEXT_MAX characters); strict (a value to store): not out of a double's
 * range either ("1e400", "1e-400"), as Redis's string2d, but a denormal is fine. */
#define KV_HUMAN_TEXT_MAX 400
bool kv_arg_double(struct craft_kv_bytes b, bool strict, double *out);
/* A finite double as INCRBYFLOAT prints it: at most 15 significant digits (the shortest
 * that read back, else rounded to 15: 0.1 + 0.2 prints "0.3", as Redis's long double does),
 * never in scientific notation ("10.6", "3000", "0.0001"). Returns its length. */
size_t kv_double_human(double d, char out[KV_HUMAN_TEXT_MAX]);

/* HSCAN / SSCAN / ZSCAN's arguments: NULL, or the error to answer. */
const char *kv_scan_parse(uint8_t op, size_t n, const struct craft_kv_bytes *a,
                          struct kv_scan_args *out);

/* ---- answers ---- */

/* An array answer being built: elements encoded as kv_sm.c's results, at most max bytes
 * (past it: over, and nothing more is added). */
struct kv_arr {
    uint8_t *buf;
    size_t len, cap, max;
    int64_t n;
    bool over;
    int rc; /* CRAFT_ENOMEM once an append failed */
};

void kv_arr_bytes(struct kv_arr *a, uint8_t type, const uint8_t *p, size_t len);
void kv_arr_nil(struct kv_arr *a);
void kv_arr_int(struct kv_arr *a, int64_t v);
/* The array as the answer (freeing its buffer), or the error that stopped it (rc, an
 * append's CRAFT_ENOMEM; past max: CRAFT_KV_ERR_REPLY_LARGE). */
int kv_arr_done(struct kv_arr *a, int rc, struct craft_kv_result **res);
/* *res = r: CRAFT_ENOMEM if r is NULL. */
int kv_reply(struct craft_kv_result **res, struct craft_kv_result *r);
int kv_res_err(struct craft_kv_result **res, const char *text);
int kv_res_int(struct craft_kv_result **res, int64_t v);

/* ---- elements keyed by a field (hashes, sets, sorted sets) ---- */

int kv_elem_get(struct kv_space *ks, uint64_t id, struct craft_kv_bytes f, const uint8_t **v,
                size_t *vlen);
int kv_elem_put(struct kv_space *ks, uint64_t id, struct craft_kv_bytes f, struct craft_kv_bytes v);
/* CRAFT_OK (removed) or CRAFT_ENOTFOUND. */
int kv_elem_del(struct kv_space *ks, uint64_t id, struct craft_kv_bytes f);

/* Walks collection id's elements from hash position `from`, in order: fn gets each field
 * (borrowed for the call) and returns CRAFT_OK, CRAFT_KV_ITER_STOP or an error. */
typedef int (*kv_elem_fn)(void *ctx, uint64_t hash, struct craft_kv_bytes field,
                          struct craft_kv_bytes val);
/* Walks table's entries of collection id from position `from` (the u64 after the id: a
 * field's hash, a list position, a sortable score), in order; fn gets the rest of the key
 * as field (a ZINDEX key: the member) and the value. kv_elems_walk: ELEMS. */
int kv_table_walk(struct kv_space *ks, int table, uint64_t id, uint64_t from, kv_elem_fn fn,
                  void *ctx);
int kv_elems_walk(struct kv_space *ks, uint64_t id, uint64_t from, kv_elem_fn fn, void *ctx);

/* ---- the key ---- */

/* The collection of type at key: *k looked up; *wrong if a key of another type is there. */
int kv_coll_find(struct kv_space *ks, struct craft_kv_bytes key, uint8_t type, struct kv_keyed *k,
                 bool *wrong);
/* kv_coll_find, answering WRONGTYPE: CRAFT_OK with *res NULL to go on, CRAFT_OK with the
 * answer in *res (a key of another type: KV_TYPE_STRING for the string ops), or a store
 * error. *res must be NULL on entry. */
int kv_coll_key(struct kv_space *ks, struct craft_kv_bytes key, uint8_t type, struct kv_keyed *k,
                struct craft_kv_result **res);
/* The collection a write works on: the key's, or a new empty one. */
struct kv_coll kv_coll_open(struct kv_space *ks, const struct kv_keyed *k, uint8_t type);
/* After a write's element changes: the header with c's count (and a new version), or the
 * key gone at count 0. */
int kv_coll_commit(struct kv_space *ks, struct kv_keyed *k, struct kv_coll *c);

/* HSCAN / SSCAN / ZSCAN of collection id (0: none): [cursor, [field, value...]] (values:
 * a hash's values, or with scores a sorted set's scores as text). */
int kv_coll_scan(struct kv_space *ks, uint64_t id, const struct kv_scan_args *sa, bool values,
                 bool scores, size_t budget, struct craft_kv_result **res);

/* Redis's range of indexes (LRANGE, LTRIM, ZRANGE): negative from the end, clamped;
 * [*from, *to] inside [0, count), or false if empty. */
bool kv_range_of(int64_t start, int64_t stop, uint64_t count, uint64_t *from, uint64_t *to);

/* A score as Redis prints it: the shortest text that reads back as the same double ("1",
 * "0.1", "inf", "-inf"). Returns its length. */
#define KV_SCORE_TEXT_MAX 32
size_t kv_score_format(double d, char out[KV_SCORE_TEXT_MAX]);

/* ---- the other types: kv_list.c, kv_zset.c ---- */

/* Each: whether op is its, the argument check (craft_kv_coll_check's) and the run. */
bool kv_op_is_list(uint8_t op);
const char *kv_list_check(uint8_t op, size_t n, const struct craft_kv_bytes *a);
int kv_list_exec(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                 const struct craft_kv_bytes *a, size_t budget, struct craft_kv_result **res);
bool kv_op_is_zset(uint8_t op);
const char *kv_zset_check(uint8_t op, size_t n, const struct craft_kv_bytes *a);
int kv_zset_exec(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                 const struct craft_kv_bytes *a, size_t budget, struct craft_kv_result **res);
/* kv_str.c: INCRBYFLOAT SETRANGE GETEX RENAME RENAMENX GETRANGE. */
bool kv_op_is_str(uint8_t op);
const char *kv_str_check(uint8_t op, size_t n, const struct craft_kv_bytes *a);
int kv_str_exec(struct kv_space *ks, const struct craft_kv_cmd *c, size_t n,
                const struct craft_kv_bytes *a, struct craft_kv_result **res);

#endif
