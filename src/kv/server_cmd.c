/* craftkv: the command table, Redis syntax for each command, and the connection-local
 * commands answered on the loop thread.
 *
 * Writes are validated here, before anything is proposed (kv.md: the proposer's duties):
 * Redis's argument errors, relative expiry turned absolute with the proposing leader's
 * clock, DECR/DECRBY/INCR turned into INCRBY. Reads run after their barrier (server_read.c). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/assert.h"
#include "kv/server_admin.h"
#include "kv/server_internal.h"

#define ERR_INT    "ERR value is not an integer or out of range"
#define ERR_SYNTAX "ERR syntax error"

bool craftkv_arg_is(const struct craft_resp_arg *a, const char *s)
{
    size_t n = strlen(s);
    return a->len == n && strncasecmp(a->data, s, n) == 0;
}

bool craftkv_arg_u64(const struct craft_resp_arg *a, uint64_t max, uint64_t *v)
{
    if (a->len == 0 || a->len > 20)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < a->len; i++) {
        if (a->data[i] < '0' || a->data[i] > '9')
            return false;
        unsigned d = (unsigned)(a->data[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false; /* past UINT64_MAX */
        x = x * 10 + d;
    }
    if (x > max)
        return false;
    *v = x;
    return true;
}

/* Redis's string2ll (craft_kv_parse_i64): 0, or -1 for anything else. */
static int parse_i64(const struct craft_resp_arg *a, int64_t *v)
{
    return craft_kv_parse_i64((const uint8_t *)a->data, a->len, v) ? 0 : -1;
}

static struct craft_kv_bytes B(const struct craft_resp_arg *a)
{
    return (struct craft_kv_bytes){(const uint8_t *)a->data, (uint32_t)a->len};
}

/* ---- writes ---- */

static int w_set(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                 struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)items;
    c->op = CRAFT_KV_OP_SET;
    c->key = B(&argv[1]);
    c->value = B(&argv[2]);
    bool have_exp = false;
    for (size_t i = 3; i < argc; i++) {
        const struct craft_resp_arg *a = &argv[i];
        if (craftkv_arg_is(a, "NX") && !(c->flags & CRAFT_KV_SET_XX)) {
            c->flags |= CRAFT_KV_SET_NX;
        } else if (craftkv_arg_is(a, "XX") && !(c->flags & CRAFT_KV_SET_NX)) {
            c->flags |= CRAFT_KV_SET_XX;
        } else if (craftkv_arg_is(a, "GET")) {
            c->flags |= CRAFT_KV_SET_GET;
        } else if (craftkv_arg_is(a, "KEEPTTL") && !have_exp) {
            c->flags |= CRAFT_KV_SET_KEEPTTL;
        } else if ((craftkv_arg_is(a, "EX") || craftkv_arg_is(a, "PX") || craftkv_arg_is(a, "EXAT") || craftkv_arg_is(a, "PXAT")) && !have_exp &&
                   !(c->flags & CRAFT_KV_SET_KEEPTTL) && i + 1 < argc) {
            int64_t v;
            if (parse_i64(&argv[i + 1], &v)) {
                craft_resp_append_error(out, ERR_INT);
                return 0;
            }
            bool secs = craftkv_arg_is(a, "EX") || craftkv_arg_is(a, "EXAT");
            bool abs = craftkv_arg_is(a, "EXAT") || craftkv_arg_is(a, "PXAT");
            if (v <= 0 || craft_kv_deadline(abs ? 0 : now, v, secs, &c->expire_at) != 0) {
                craft_resp_append_error(out, "ERR invalid expire time in 'set' command");
                return 0;
            }
            c->flags |= CRAFT_KV_SET_EXPIRE;
            have_exp = true;
            i++;
        } else {
            craft_resp_append_error(out, ERR_SYNTAX);
            return 0;
        }
    }
    return 1;
}

/* SETEX key seconds value, PSETEX key ms value: SET key value EX/PX (Redis's texts). */
static int setex_common(const char *name, bool secs, const struct craft_resp_arg *argv,
                        uint64_t now, struct craft_kv_cmd *c, struct craft_resp_buf *out)
{
    int64_t v;
    if (parse_i64(&argv[2], &v)) {
        craft_resp_append_error(out, ERR_INT);
        return 0;
    }
    if (v <= 0 || craft_kv_deadline(now, v, secs, &c->expire_at) != 0) {
        craft_resp_append_errorf(out, "ERR invalid expire time in '%s' command", name);
        return 0;
    }
    c->op = CRAFT_KV_OP_SET;
    c->flags = CRAFT_KV_SET_EXPIRE;
    c->key = B(&argv[1]);
    c->value = B(&argv[3]);
    return 1;
}

static int w_setex(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                   struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)argc, (void)items;
    return setex_common("setex", true, argv, now, c, out);
}

static int w_psetex(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                    struct craft_kv_cmd *c, struct craft_kv_bytes *items,
                    struct craft_resp_buf *out)
{
    (void)argc, (void)items;
    return setex_common("psetex", false, argv, now, c, out);
}

static int w_keyval(uint8_t op, const struct craft_resp_arg *argv, struct craft_kv_cmd *c)
{
    c->op = op;
    c->key = B(&argv[1]);
    c->value = B(&argv[2]);
    return 1;
}

static int w_setnx(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                   struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)argc, (void)now, (void)items, (void)out;
    return w_keyval(CRAFT_KV_OP_SETNX, argv, c);
}

static int w_getset(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                    struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)argc, (void)now, (void)items, (void)out;
    return w_keyval(CRAFT_KV_OP_GETSET, argv, c);
}

static int w_append(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                    struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)argc, (void)now, (void)items, (void)out;
    return w_keyval(CRAFT_KV_OP_APPEND, argv, c);
}

static int w_getdel(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                    struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)argc, (void)now, (void)items, (void)out;
    c->op = CRAFT_KV_OP_GETDEL;
    c->key = B(&argv[1]);
    return 1;
}

static int w_persist(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                     struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)argc, (void)now, (void)items, (void)out;
    c->op = CRAFT_KV_OP_PERSIST;
    c->key = B(&argv[1]);
    return 1;
}

static int w_del(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                 struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)now;
    if (argc - 1 > CRAFT_KV_ITEMS_MAX) {
        craft_resp_append_error(out, "ERR too many keys in one command");
        return 0;
    }
    c->op = CRAFT_KV_OP_DEL;
    c->n = (uint32_t)(argc - 1);
    for (size_t i = 1; i < argc; i++)
        items[i - 1] = B(&argv[i]);
    c->keys = items;
    return 1;
}

static int w_mset_op(uint8_t op, size_t argc, const struct craft_resp_arg *argv,
                     struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    if ((argc - 1) % 2 != 0) {
        craft_resp_append_errorf(out, "ERR wrong number of arguments for '%s' command",
                                 op == CRAFT_KV_OP_MSET ? "mset" : "msetnx");
        return 0;
    }
    size_t n = (argc - 1) / 2;
    if (n > CRAFT_KV_ITEMS_MAX) {
        craft_resp_append_error(out, "ERR too many keys in one command");
        return 0;
    }
    c->op = op;
    c->n = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        items[i] = B(&argv[1 + 2 * i]);
        items[n + i] = B(&argv[2 + 2 * i]);
    }
    c->keys = items;
    c->values = items + n;
    return 1;
}

static int w_mset(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                  struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)now;
    return w_mset_op(CRAFT_KV_OP_MSET, argc, argv, c, items, out);
}

static int w_msetnx(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                    struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)now;
    return w_mset_op(CRAFT_KV_OP_MSETNX, argc, argv, c, items, out);
}

static int incr_common(const struct craft_resp_arg *argv, int64_t delta, struct craft_kv_cmd *c)
{
    c->op = CRAFT_KV_OP_INCRBY;
    c->key = B(&argv[1]);
    c->delta = delta;
    return 1;
}

static int w_incr(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                  struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)argc, (void)now, (void)items, (void)out;
    return incr_common(argv, 1, c);
}

static int w_decr(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                  struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)argc, (void)now, (void)items, (void)out;
    return incr_common(argv, -1, c);
}

static int w_incrby(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                    struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)argc, (void)now, (void)items;
    int64_t d;
    if (parse_i64(&argv[2], &d)) {
        craft_resp_append_error(out, ERR_INT);
        return 0;
    }
    return incr_common(argv, d, c);
}

static int w_decrby(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                    struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)argc, (void)now, (void)items;
    int64_t d;
    if (parse_i64(&argv[2], &d)) {
        craft_resp_append_error(out, ERR_INT);
        return 0;
    }
    if (d == INT64_MIN) {
        craft_resp_append_error(out, "ERR decrement would overflow");
        return 0;
    }
    return incr_common(argv, -d, c);
}

static int expire_common(const char *name, bool secs, bool abs, size_t argc,
                         const struct craft_resp_arg *argv, uint64_t now, struct craft_kv_cmd *c,
                         struct craft_resp_buf *out)
{
    int64_t v;
    if (parse_i64(&argv[2], &v)) {
        craft_resp_append_error(out, ERR_INT);
        return 0;
    }
    c->op = CRAFT_KV_OP_EXPIRE;
    c->key = B(&argv[1]);
    for (size_t i = 3; i < argc; i++) {
        if (craftkv_arg_is(&argv[i], "NX"))
            c->flags |= CRAFT_KV_EXPIRE_NX;
        else if (craftkv_arg_is(&argv[i], "XX"))
            c->flags |= CRAFT_KV_EXPIRE_XX;
        else if (craftkv_arg_is(&argv[i], "GT"))
            c->flags |= CRAFT_KV_EXPIRE_GT;
        else if (craftkv_arg_is(&argv[i], "LT"))
            c->flags |= CRAFT_KV_EXPIRE_LT;
        else {
            craft_resp_append_errorf(out, "ERR Unsupported option %.*s", (int)argv[i].len,
                                     argv[i].data);
            return 0;
        }
    }
    if ((c->flags & CRAFT_KV_EXPIRE_NX) && (c->flags & ~CRAFT_KV_EXPIRE_NX)) {
        craft_resp_append_error(out, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return 0;
    }
    if ((c->flags & CRAFT_KV_EXPIRE_GT) && (c->flags & CRAFT_KV_EXPIRE_LT)) {
        craft_resp_append_error(out, "ERR GT and LT options at the same time are not compatible");
        return 0;
    }
    if (craft_kv_deadline(abs ? 0 : now, v, secs, &c->expire_at) != 0) {
        craft_resp_append_errorf(out, "ERR invalid expire time in '%s' command", name);
        return 0;
    }
    return 1;
}

static int w_expire(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                    struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)items;
    return expire_common("expire", true, false, argc, argv, now, c, out);
}

static int w_pexpire(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                     struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)items;
    return expire_common("pexpire", false, false, argc, argv, now, c, out);
}

static int w_expireat(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                      struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)items;
    return expire_common("expireat", true, true, argc, argv, now, c, out);
}

static int w_pexpireat(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                       struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)items;
    return expire_common("pexpireat", false, true, argc, argv, now, c, out);
}

static int w_flushall(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                      struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)now, (void)items;
    if (argc > 2 || (argc == 2 && !craftkv_arg_is(&argv[1], "SYNC") && !craftkv_arg_is(&argv[1], "ASYNC"))) {
        craft_resp_append_error(out, ERR_SYNTAX);
        return 0;
    }
    c->op = CRAFT_KV_OP_FLUSHALL;
    return 1;
}

/* ---- reads ---- */

static void store_err(struct craft_resp_buf *out, int rc)
{
    craft_resp_append_errorf(out, "ERR storage error: %s", craft_strerror(rc));
}

/* After a string read found no string: true (answered) if the key holds another type. */
static bool wrong_type(struct craft_kv_read *r, const struct craft_resp_arg *key,
                       struct craft_resp_buf *out)
{
    const char *type;
    int rc = craft_kv_read_type(r, (const uint8_t *)key->data, key->len, &type);
    if (rc != CRAFT_OK) {
        store_err(out, rc);
        return true;
    }
    if (strcmp(type, "none") != 0) {
        craft_resp_append_error(out, CRAFT_KV_ERR_WRONGTYPE);
        return true;
    }
    return false;
}

static void r_get(struct craft_kv_read *r, size_t argc,
                  const struct craft_resp_arg *argv, struct craft_resp_buf *out)
{
    (void)argc;
    const uint8_t *v;
    size_t n;
    int rc = craft_kv_read_get(r, (const uint8_t *)argv[1].data, argv[1].len, &v, &n);
    if (rc == CRAFT_OK)
        craft_resp_append_bulk(out, v, n);
    else if (rc == CRAFT_ENOTFOUND && !wrong_type(r, &argv[1], out))
        craft_resp_append_null_bulk(out);
    else if (rc != CRAFT_ENOTFOUND)
        store_err(out, rc);
}

static void r_mget(struct craft_kv_read *r, size_t argc,
                   const struct craft_resp_arg *argv, struct craft_resp_buf *out)
{
    craft_resp_append_array(out, argc - 1);
    for (size_t i = 1; i < argc; i++) {
        const uint8_t *v;
        size_t n;
        if (craft_kv_read_get(r, (const uint8_t *)argv[i].data, argv[i].len, &v, &n) == CRAFT_OK)
            craft_resp_append_bulk(out, v, n);
        else
            craft_resp_append_null_bulk(out); /* as Redis: nil for anything not a string */
    }
}

static void r_exists(struct craft_kv_read *r, size_t argc,
                     const struct craft_resp_arg *argv, struct craft_resp_buf *out)
{
    int64_t n = 0;
    for (size_t i = 1; i < argc; i++) {
        const char *type;
        int rc = craft_kv_read_type(r, (const uint8_t *)argv[i].data, argv[i].len, &type);
        if (rc != CRAFT_OK) {
            store_err(out, rc);
            return;
        }
        n += strcmp(type, "none") != 0;
    }
    craft_resp_append_int(out, n);
}

static void r_strlen(struct craft_kv_read *r, size_t argc,
                     const struct craft_resp_arg *argv, struct craft_resp_buf *out)
{
    (void)argc;
    const uint8_t *v;
    size_t n = 0;
    int rc = craft_kv_read_get(r, (const uint8_t *)argv[1].data, argv[1].len, &v, &n);
    if (rc == CRAFT_OK)
        craft_resp_append_int(out, (int64_t)n);
    else if (rc == CRAFT_ENOTFOUND && !wrong_type(r, &argv[1], out))
        craft_resp_append_int(out, 0);
    else if (rc != CRAFT_ENOTFOUND)
        store_err(out, rc);
}

static void r_type(struct craft_kv_read *r, size_t argc,
                   const struct craft_resp_arg *argv, struct craft_resp_buf *out)
{
    (void)argc;
    const char *type;
    int rc = craft_kv_read_type(r, (const uint8_t *)argv[1].data, argv[1].len, &type);
    if (rc == CRAFT_OK)
        craft_resp_append_simple(out, type);
    else
        store_err(out, rc);
}

static void r_ttl(struct craft_kv_read *r, size_t argc,
                  const struct craft_resp_arg *argv, struct craft_resp_buf *out)
{
    (void)argc;
    int64_t v;
    int rc = craft_kv_read_ttl(r, (const uint8_t *)argv[1].data, argv[1].len, &v);
    if (rc == CRAFT_OK)
        craft_resp_append_int(out, v);
    else
        store_err(out, rc);
}

static void r_pttl(struct craft_kv_read *r, size_t argc,
                   const struct craft_resp_arg *argv, struct craft_resp_buf *out)
{
    (void)argc;
    int64_t v;
    int rc = craft_kv_read_pttl(r, (const uint8_t *)argv[1].data, argv[1].len, &v);
    if (rc == CRAFT_OK)
        craft_resp_append_int(out, v);
    else
        store_err(out, rc);
}

/* EXPIRETIME / PEXPIRETIME: the absolute instant, -1 without one, -2 absent. */
static void r_expiretime(struct craft_kv_read *r, size_t argc, const struct craft_resp_arg *argv,
                         struct craft_resp_buf *out)
{
    (void)argc;
    int64_t at;
    int rc = craft_kv_read_expire_at(r, (const uint8_t *)argv[1].data, argv[1].len, &at);
    if (rc != CRAFT_OK)
        store_err(out, rc);
    else if (at < 0 || (argv[0].len > 0 && (argv[0].data[0] == 'p' || argv[0].data[0] == 'P')))
        craft_resp_append_int(out, at);
    else
        craft_resp_append_int(out, at / 1000); /* seconds, truncated as Redis does */
}

static void r_dbsize(struct craft_kv_read *r, size_t argc,
                     const struct craft_resp_arg *argv, struct craft_resp_buf *out)
{
    (void)argc, (void)argv;
    uint64_t n;
    int rc = craft_kv_read_dbsize(r, &n);
    if (rc == CRAFT_OK)
        craft_resp_append_int(out, (int64_t)n);
    else
        store_err(out, rc);
}

struct scan_ctx {
    struct craft_resp_buf keys;
    size_t n;
};

static int scan_emit(void *ctx, const uint8_t *key, size_t klen)
{
    struct scan_ctx *sc = ctx;
    if (craft_resp_append_bulk(&sc->keys, key, klen) != CRAFT_OK)
        return CRAFT_ENOMEM;
    sc->n++;
    return CRAFT_OK;
}

/* KEYS pattern: every live key matching, through SCAN's walk (this node's replica: in a
 * sharded cluster the keys of the groups it hosts, as Redis Cluster's KEYS is per node). */
static void r_keys(struct craft_kv_read *r, size_t argc, const struct craft_resp_arg *argv,
                   struct craft_resp_buf *out)
{
    (void)argc;
    struct scan_ctx sc = {0};
    uint64_t cursor = 0;
    int rc;
    do {
        rc = craft_kv_read_scan(r, cursor, (const uint8_t *)argv[1].data, argv[1].len, 1024,
                                scan_emit, &sc, &cursor);
    } while (rc == CRAFT_OK && cursor != 0);
    size_t mark = out->len;
    if (rc != CRAFT_OK) {
        store_err(out, rc);
    } else if (craft_resp_append_array(out, sc.n) != CRAFT_OK ||
               craftkv_buf_append_raw(out, sc.keys.data, sc.keys.len) != 0) {
        out->len = mark; /* never a header without its elements */
        craft_resp_append_error(out, "ERR out of memory");
    }
    craft_resp_buf_free(&sc.keys);
}

static void l_time(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                   const struct craft_resp_arg *argv)
{
    (void)s, (void)argc, (void)argv;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char sec[24], usec[24];
    int n1 = snprintf(sec, sizeof sec, "%lld", (long long)ts.tv_sec);
    int n2 = snprintf(usec, sizeof usec, "%ld", ts.tv_nsec / 1000);
    craft_resp_append_array(&c->out, 2);
    craft_resp_append_bulk(&c->out, sec, (size_t)n1);
    craft_resp_append_bulk(&c->out, usec, (size_t)n2);
}

static void r_scan(struct craft_kv_read *r, size_t argc,
                   const struct craft_resp_arg *argv, struct craft_resp_buf *out)
{
    int64_t count = 10;
    uint64_t ucur;
    {
        char buf[24];
        size_t n = argv[1].len < sizeof buf - 1 ? argv[1].len : sizeof buf - 1;
        memcpy(buf, argv[1].data, n);
        buf[n] = '\0';
        char *end;
        errno = 0;
        ucur = strtoull(buf, &end, 10);
        if (errno || *end || n == 0 || buf[0] == '-') {
            craft_resp_append_error(out, "ERR invalid cursor");
            return;
        }
    }
    const struct craft_resp_arg *pat = NULL;
    const char *type = NULL;
    struct scan_ctx sc = {0};
    for (size_t i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) {
            craft_resp_append_error(out, ERR_SYNTAX);
            return;
        }
        if (craftkv_arg_is(&argv[i], "MATCH")) {
            pat = &argv[i + 1];
        } else if (craftkv_arg_is(&argv[i], "COUNT")) {
            if (parse_i64(&argv[i + 1], &count)) {
                craft_resp_append_error(out, ERR_INT);
                return;
            }
            if (count < 1) {
                craft_resp_append_error(out, ERR_SYNTAX);
                return;
            }
        } else if (craftkv_arg_is(&argv[i], "TYPE")) {
            /* Redis's names; a type craftkv does not have (stream) matches no key. */
            static const char *const types[] = {"string", "hash", "set", "list", "zset"};
            type = "-";
            for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
                if (craftkv_arg_is(&argv[i + 1], types[t]))
                    type = types[t];
        } else {
            craft_resp_append_error(out, ERR_SYNTAX);
            return;
        }
    }
    uint64_t next = 0;
    int rc =
        craft_kv_read_scan_type(r, ucur, pat ? (const uint8_t *)pat->data : NULL,
                                pat ? pat->len : 0, (size_t)count, type, scan_emit, &sc, &next);
    if (rc != CRAFT_OK) {
        store_err(out, rc);
    } else {
        char cur[24];
        int n = snprintf(cur, sizeof cur, "%" PRIu64, next);
        size_t mark = out->len;
        if (craft_resp_append_array(out, 2) != CRAFT_OK ||
            craft_resp_append_bulk(out, cur, (size_t)n) != CRAFT_OK ||
            craft_resp_append_array(out, sc.n) != CRAFT_OK ||
            craftkv_buf_append_raw(out, sc.keys.data, sc.keys.len) != 0) {
            out->len = mark; /* never a header without its elements */
            craft_resp_append_error(out, "ERR out of memory");
        }
    }
    craft_resp_buf_free(&sc.keys);
}

/* ---- connection-local commands ---- */

static void l_ping(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                   const struct craft_resp_arg *argv)
{
    (void)s;
    if (argc > 2)
        craft_resp_append_error(&c->out, "ERR wrong number of arguments for 'ping' command");
    else if (argc == 2)
        craft_resp_append_bulk(&c->out, argv[1].data, argv[1].len);
    else
        craft_resp_append_simple(&c->out, "PONG");
}

static void l_echo(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                   const struct craft_resp_arg *argv)
{
    (void)s, (void)argc;
    craft_resp_append_bulk(&c->out, argv[1].data, argv[1].len);
}

/* Redis Cluster's ASKING: craftkv never answers -ASK (a slot's owner changes with the
 * configuration, and its new group serves it once the keys are in: sharding.md), so there
 * is nothing to allow; a client that sends it anyway gets Redis's +OK. */
static void l_asking(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                     const struct craft_resp_arg *argv)
{
    (void)s, (void)argc, (void)argv;
    craft_resp_append_simple(&c->out, "OK");
}

static void l_select(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                     const struct craft_resp_arg *argv)
{
    (void)s, (void)argc;
    int64_t db;
    if (parse_i64(&argv[1], &db))
        craft_resp_append_error(&c->out, ERR_INT);
    else if (db != 0)
        craft_resp_append_error(&c->out, "ERR DB index is out of range");
    else
        craft_resp_append_simple(&c->out, "OK");
}

static void l_quit(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                   const struct craft_resp_arg *argv)
{
    (void)s, (void)argc, (void)argv;
    craft_resp_append_simple(&c->out, "OK");
    c->closing = true;
}

static void l_client(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                     const struct craft_resp_arg *argv)
{
    (void)s;
    if (craftkv_arg_is(&argv[1], "ID") && argc == 2) {
        craft_resp_append_int(&c->out, (int64_t)c->id);
    } else if (craftkv_arg_is(&argv[1], "GETNAME") && argc == 2) {
        if (c->name[0])
            craft_resp_append_bulk(&c->out, c->name, strlen(c->name));
        else
            craft_resp_append_null_bulk(&c->out);
    } else if (craftkv_arg_is(&argv[1], "SETNAME") && argc == 3) {
        for (size_t i = 0; i < argv[2].len; i++)
            if (argv[2].data[i] <= ' ' || argv[2].data[i] > '~') {
                craft_resp_append_error(&c->out, "ERR Client names cannot contain spaces, newlines or special characters.");
                return;
            }
        size_t n = argv[2].len < sizeof c->name - 1 ? argv[2].len : sizeof c->name - 1;
        memcpy(c->name, argv[2].data, n);
        c->name[n] = '\0';
        craft_resp_append_simple(&c->out, "OK");
    } else if (craftkv_arg_is(&argv[1], "SETINFO") && argc == 4) {
        craft_resp_append_simple(&c->out, "OK");
    } else {
        craft_resp_append_errorf(&c->out, "ERR unknown subcommand '%.*s'. Try CLIENT HELP.",
                                 (int)(argv[1].len > 64 ? 64 : argv[1].len), argv[1].data);
    }
}

/* One command as Redis 7's COMMAND describes it: name, arity, flags, first key, last key,
 * step, ACL categories, tips, key specs, subcommands (the last three empty). redis-py's
 * cluster client routes each command by the key positions. */
static void command_info(struct craft_resp_buf *out, const struct craftkv_cmd_def *d)
{
    static const char *const flags[][2] = {
        [CRAFTKV_LOCAL] = {"fast", "stale"},  [CRAFTKV_READ] = {"readonly", "fast"},
        [CRAFTKV_WRITE] = {"write", "denyoom"}, [CRAFTKV_ADMIN] = {"admin", "noscript"}};
    static const char *const acl[] = {[CRAFTKV_LOCAL] = "@connection", [CRAFTKV_READ] = "@read",
                                      [CRAFTKV_WRITE] = "@write", [CRAFTKV_ADMIN] = "@admin"};
    static const int64_t pos[][3] = {[K_NONE] = {0, 0, 0},
                                     [K_ONE] = {1, 1, 1},
                                     [K_ALL] = {1, -1, 1},
                                     [K_PAIRS] = {1, -1, 2},
                                     [K_TWO] = {1, 2, 1}};
    craft_resp_append_array(out, 10);
    craft_resp_append_bulk(out, d->name, strlen(d->name));
    craft_resp_append_int(out, d->arity);
    craft_resp_append_array(out, 2);
    for (int i = 0; i < 2; i++)
        craft_resp_append_simple(out, flags[d->kind][i]);
    for (int i = 0; i < 3; i++)
        craft_resp_append_int(out, pos[d->keys][i]);
    craft_resp_append_array(out, 1);
    craft_resp_append_simple(out, acl[d->kind]);
    for (int i = 0; i < 3; i++)
        craft_resp_append_array(out, 0);
}

static void l_command(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                      const struct craft_resp_arg *argv)
{
    (void)s;
    size_t n = 0;
    while (craftkv_cmd_at(n))
        n++;
    if (argc == 1 || (craftkv_arg_is(&argv[1], "INFO") && argc == 2)) { /* Redis 7: every command */
        craft_resp_append_array(&c->out, n);
        for (size_t i = 0; i < n; i++)
            command_info(&c->out, craftkv_cmd_at(i));
    } else if (craftkv_arg_is(&argv[1], "COUNT")) {
        if (argc == 2)
            craft_resp_append_int(&c->out, (int64_t)n);
        else
            craft_resp_append_error(&c->out, "ERR wrong number of arguments for 'command|count' command");
    } else if (craftkv_arg_is(&argv[1], "INFO")) {
        craft_resp_append_array(&c->out, argc - 2);
        for (size_t i = 2; i < argc; i++) {
            const struct craftkv_cmd_def *d = craftkv_cmd_find(argv[i].data, argv[i].len);
            if (d)
                command_info(&c->out, d);
            else
                craft_resp_append_null_bulk(&c->out);
        }
    } else if (craftkv_arg_is(&argv[1], "DOCS")) {
        /* No documentation to give: an empty map is enough for redis-cli (it then offers
         * no hints). */
        craft_resp_append_array(&c->out, 0);
    } else {
        craft_resp_append_errorf(&c->out, "ERR unknown subcommand '%.*s'. Try COMMAND HELP.",
                                 (int)(argv[1].len > 64 ? 64 : argv[1].len), argv[1].data);
    }
}

static void l_config(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                     const struct craft_resp_arg *argv)
{
    (void)s;
    if (craftkv_arg_is(&argv[1], "GET") && argc == 3) {
        static const char *const known[][2] = {{"save", ""}, {"appendonly", "no"},
                                               {"databases", "1"}};
        size_t n = 0;
        bool hit[3] = {false, false, false};
        for (size_t i = 0; i < 3; i++)
            if (craft_kv_glob_match((const uint8_t *)argv[2].data, argv[2].len,
                                    (const uint8_t *)known[i][0], strlen(known[i][0]))) {
                hit[i] = true;
                n++;
            }
        craft_resp_append_array(&c->out, 2 * n);
        for (size_t i = 0; i < 3; i++)
            if (hit[i]) {
                craft_resp_append_bulk(&c->out, known[i][0], strlen(known[i][0]));
                craft_resp_append_bulk(&c->out, known[i][1], strlen(known[i][1]));
            }
    } else if (craftkv_arg_is(&argv[1], "RESETSTAT") && argc == 2) {
        craft_resp_append_simple(&c->out, "OK");
    } else if (craftkv_arg_is(&argv[1], "SET")) {
        craft_resp_append_error(&c->out, "ERR CONFIG SET is not supported by craftkv");
    } else {
        craft_resp_append_errorf(&c->out, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.",
                                 (int)(argv[1].len > 64 ? 64 : argv[1].len), argv[1].data);
    }
}

static void l_info(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                   const struct craft_resp_arg *argv)
{
    craftkv_info(s, craftkv_info_sections(argc - 1, argv + 1), &c->out);
}

/* ---- transactions: the MULTI entry of a CRAFT.EXEC ---- */

/* A queued read as the state machine's read op (its keys: argv[1], or argv[1..argc)). */
static void build_read(const struct craftkv_cmd_def *d, size_t argc,
                       const struct craft_resp_arg *argv, struct craft_kv_cmd *c,
                       struct craft_kv_bytes *items)
{
    if (craft_kv_op_is_coll(d->multi_op)) {
        static _Thread_local uint8_t seed_buf[8]; /* SRANDMEMBER's, until encoded */
        craftkv_coll_build_read(d->multi_op, argc, argv, c, items, seed_buf);
        return;
    }
    c->op = d->multi_op;
    if (d->keys == K_ALL) {
        c->n = (uint32_t)(argc - 1);
        for (size_t i = 1; i < argc; i++)
            items[i - 1] = B(&argv[i]);
        c->keys = items;
    } else {
        c->key = B(&argv[1]);
    }
}

/* Builds a command a transaction may hold into *c (zeroed; items: argc + 1 entries), as
 * queuing checks it and EXEC encodes it: 0, or -1 with the error in out. */
static int build_queued(const struct craftkv_cmd_def *d, size_t argc,
                        const struct craft_resp_arg *argv, uint64_t now_ms,
                        struct craft_kv_cmd *c, struct craft_kv_bytes *items,
                        struct craft_resp_buf *out)
{
    if (d->kind == CRAFTKV_READ && d->multi_op != 0) {
        if (argc - 1 > CRAFT_KV_ITEMS_MAX) {
            craft_resp_append_error(out, "ERR too many keys in one command");
            return -1;
        }
        if (craft_kv_op_is_coll(d->multi_op)) {
            uint8_t seed_buf[8];
            struct craft_kv_cmd cc = {0};
            craftkv_coll_build_read(d->multi_op, argc, argv, &cc, items, seed_buf);
            const char *err = craft_kv_coll_check(cc.op, cc.n, cc.args);
            if (err != NULL) {
                craftkv_coll_reply_error(out, &argv[0], err);
                return -1;
            }
            /* Outside a transaction such a read answers as for a missing element; inside
             * one it carries its arguments in the log, within the format's limits. */
            bool too_long = argv[1].len > CRAFT_KV_KEY_BYTES_MAX;
            for (size_t i = 2; i < argc; i++)
                too_long = too_long || argv[i].len > CRAFT_KV_VALUE_BYTES_MAX;
            if (too_long) {
                craft_resp_append_errorf(out,
                                         "ERR key or value too long for a transaction "
                                         "(keys up to %u bytes, values up to %u)",
                                         CRAFT_KV_KEY_BYTES_MAX, CRAFT_KV_VALUE_BYTES_MAX);
                return -1;
            }
        }
        for (size_t i = 1; i < argc && !craft_kv_op_is_coll(d->multi_op); i++) {
            if (argv[i].len > CRAFT_KV_KEY_BYTES_MAX) {
                /* No such key can exist, but a MULTI's read carries its key in the log. */
                craft_resp_append_errorf(out, "ERR key too long for a transaction (keys up "
                                         "to %u bytes)", CRAFT_KV_KEY_BYTES_MAX);
                return -1;
            }
        }
        build_read(d, argc, argv, c, items);
        return 0;
    }
    if (d->kind != CRAFTKV_WRITE || d->write == NULL || strncmp(d->name, "craft.", 6) == 0) {
        craft_resp_append_errorf(out, "ERR '%s' cannot be part of a craftkv transaction "
                                 "(reads, writes of keys only)", d->name);
        return -1;
    }
    if (!d->write(argc, argv, now_ms, c, items, out))
        return -1;
    if (craft_kv_cmd_size(c) == 0) {
        /* As the pipeline answers it outside a transaction (server_write.c). */
        craft_resp_append_errorf(out, "ERR key or value too long (keys up to %u bytes, values "
                                 "up to %u)", CRAFT_KV_KEY_BYTES_MAX, CRAFT_KV_VALUE_BYTES_MAX);
        return -1;
    }
    return 0;
}

int craftkv_cmd_check_queued(const struct craftkv_cmd_def *d, size_t argc,
                             const struct craft_resp_arg *argv, uint64_t now_ms,
                             struct craft_resp_buf *out)
{
    struct craft_kv_bytes *items = malloc((argc + 1) * sizeof *items);
    if (!items) {
        craft_resp_append_error(out, "ERR out of memory");
        return -1;
    }
    struct craft_kv_cmd c = {0};
    int rc = build_queued(d, argc, argv, now_ms, &c, items, out);
    free(items);
    return rc;
}

/* CRAFT.EXEC <w> (<key> <digest>){w} <n> (<argc> <name> <args...>){n}: one MULTI entry
 * holding w WATCH checks, then the n commands,
 * each built as if it came alone (the proposing leader's clock for every expiry). Any
 * command that does not build (checked when queued, so only a clock at the edge of the
 * expiry range can do it now) aborts the whole transaction, as a queuing error does. */
static int w_exec(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                  struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    out->len = 0;
    int64_t n = 0, nw = 0;
    size_t i = 2;
    bool ok = parse_i64(&argv[1], &nw) == 0 && nw >= 0 && nw <= CRAFT_KV_ITEMS_MAX / 2 &&
              argc - 2 > 2 * (uint64_t)nw;
    struct craft_resp_buf err = {0};
    /* The WATCHes first: the state machine checks them all before running anything. */
    for (int64_t k = 0; ok && k < nw; k++, i += 2) {
        char digits[24];
        const struct craft_resp_arg *key = &argv[i], *dig = &argv[i + 1];
        ok = key->len <= CRAFT_KV_KEY_BYTES_MAX && dig->len > 0 && dig->len < sizeof digits;
        if (!ok)
            break;
        /* The arguments are not NUL-terminated: parse a copy, every byte a digit. */
        memcpy(digits, dig->data, dig->len);
        digits[dig->len] = '\0';
        char *end = NULL;
        errno = 0;
        unsigned long long d = strtoull(digits, &end, 10);
        ok = errno == 0 && end == digits + dig->len && digits[0] >= '0' && digits[0] <= '9';
        struct craft_kv_cmd w = {.op = CRAFT_KV_OP_WATCH, .key = B(key), .delta = (int64_t)d};
        size_t len = out->len;
        ok = ok && craft_resp_buf_reserve(out, 64 + key->len) == CRAFT_OK &&
             craft_kv_cmd_multi_add(&w, (uint8_t *)out->data, out->cap, &len) == CRAFT_OK;
        if (ok)
            out->len = len;
    }
    ok = ok && i < argc && parse_i64(&argv[i], &n) == 0 && n >= 0 && n <= CRAFT_KV_ITEMS_MAX &&
         n + nw >= 1 && n + nw <= CRAFT_KV_ITEMS_MAX;
    i++;
    for (int64_t k = 0; ok && k < n; k++) {
        int64_t sub_argc;
        ok = i < argc && parse_i64(&argv[i], &sub_argc) == 0 && sub_argc >= 1 &&
             (uint64_t)sub_argc <= argc - i - 1;
        if (!ok)
            break;
        const struct craft_resp_arg *sub = &argv[i + 1];
        size_t sn = (size_t)sub_argc;
        i += 1 + sn;
        const struct craftkv_cmd_def *d = craftkv_cmd_find(sub[0].data, sub[0].len);
        struct craft_kv_cmd sc = {0};
        ok = d && craftkv_cmd_arity_ok(d, sn) &&
             build_queued(d, sn, sub, now, &sc, items, &err) == 0;
        if (!ok)
            break;
        sc.session = sc.seq = sc.ack = sc.now_ms = 0; /* the MULTI's header carries them */
        /* Room for the encoding and its length (an upper bound: the arguments' bytes plus
         * each argument's framing and the command's header and fields). */
        size_t need = 64;
        for (size_t a = 0; a < sn; a++)
            need += sub[a].len + 16;
        size_t len = out->len;
        ok = craft_resp_buf_reserve(out, need) == CRAFT_OK &&
             craft_kv_cmd_multi_add(&sc, (uint8_t *)out->data, out->cap, &len) == CRAFT_OK;
        if (ok)
            out->len = len;
    }
    craft_resp_buf_free(&err);
    if (!ok || i != argc) {
        out->len = 0;
        craft_resp_append_error(out, CRAFTKV_ERR_EXECABORT);
        return 0;
    }
    c->op = CRAFT_KV_OP_MULTI;
    c->n = (uint32_t)(n + nw);
    c->blob = (struct craft_kv_bytes){(const uint8_t *)out->data, (uint32_t)out->len};
    if (out->len > CRAFT_KV_CMD_BYTES_MAX) {
        out->len = 0;
        craft_resp_append_error(out, "ERR command too large");
        return 0;
    }
    return 1;
}

/* CRAFT.ENDSESSION: the connection's session ends with it (server_conn.c). */
static int w_endsession(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                        struct craft_kv_cmd *c, struct craft_kv_bytes *items,
                        struct craft_resp_buf *out)
{
    (void)argc, (void)argv, (void)now, (void)items, (void)out;
    c->op = CRAFT_KV_OP_SESSION_CLOSE;
    return 1;
}

/* ---- the table ---- */

#define LOCAL(n, a, f)    {n, a, CRAFTKV_LOCAL, f, NULL, NULL, NULL, K_NONE, 0}
#define READ(n, a, f, k)  {n, a, CRAFTKV_READ, NULL, f, NULL, NULL, k, 0}
#define MREAD(n, a, f, k, op) {n, a, CRAFTKV_READ, NULL, f, NULL, NULL, k, op}
#define WRITE(n, a, f, k) {n, a, CRAFTKV_WRITE, NULL, NULL, f, NULL, k, 0}
#define ADMIN(n, a, f)    {n, a, CRAFTKV_ADMIN, NULL, NULL, NULL, f, K_NONE, 0}
/* The hashes and sets (server_coll.c): the state machine's op in multi_op. */
#define CWRITE(n, a, op)                                                                           \
    {                                                                                              \
        n, a, CRAFTKV_WRITE, NULL, NULL, craftkv_w_coll, NULL, K_ONE, op                           \
    }
#define CWRITEK(n, a, k, op)                                                                       \
    {                                                                                              \
        n, a, CRAFTKV_WRITE, NULL, NULL, craftkv_w_coll, NULL, k, op                               \
    }
#define CREAD(n, a, k, op)                                                                         \
    {                                                                                              \
        n, a, CRAFTKV_READ, NULL, craftkv_r_coll, NULL, NULL, k, op                                \
    }

static const struct craftkv_cmd_def table[] = {
    LOCAL("ping", -1, l_ping),
    LOCAL("echo", 2, l_echo),
    LOCAL("select", 2, l_select),
    LOCAL("quit", -1, l_quit),
    LOCAL("client", -2, l_client),
    LOCAL("command", -1, l_command),
    LOCAL("config", -2, l_config),
    LOCAL("info", -1, l_info),
    LOCAL("craft.consistency", -1, craftkv_l_consistency),
    LOCAL("readonly", 1, craftkv_l_readonly),
    LOCAL("readwrite", 1, craftkv_l_readwrite),
    LOCAL("asking", 1, l_asking),
    LOCAL("auth", -2, craftkv_l_auth), /* server_auth.c */
    LOCAL("hello", -1, craftkv_l_hello),
    LOCAL("multi", 1, craftkv_l_multi), /* server_multi.c */
    LOCAL("exec", 1, craftkv_l_exec),
    LOCAL("discard", 1, craftkv_l_discard),
    READ("watch", -2, NULL, K_ALL), /* read NULL: server_read.c hands it to server_multi.c */
    LOCAL("unwatch", 1, craftkv_l_unwatch),
    MREAD("get", 2, r_get, K_ONE, CRAFT_KV_OP_GET),
    MREAD("mget", -2, r_mget, K_ALL, CRAFT_KV_OP_MGET),
    MREAD("exists", -2, r_exists, K_ALL, CRAFT_KV_OP_EXISTS),
    MREAD("strlen", 2, r_strlen, K_ONE, CRAFT_KV_OP_STRLEN),
    MREAD("type", 2, r_type, K_ONE, CRAFT_KV_OP_TYPE),
    MREAD("ttl", 2, r_ttl, K_ONE, CRAFT_KV_OP_TTL),
    MREAD("pttl", 2, r_pttl, K_ONE, CRAFT_KV_OP_PTTL),
    READ("dbsize", 1, r_dbsize, K_NONE),
    READ("keys", 2, r_keys, K_NONE),
    READ("touch", -2, r_exists, K_ALL),
    READ("expiretime", 2, r_expiretime, K_ONE),
    READ("pexpiretime", 2, r_expiretime, K_ONE),
    LOCAL("time", 1, l_time),
    READ("scan", -2, r_scan, K_NONE),
    WRITE("set", -3, w_set, K_ONE),
    WRITE("setnx", 3, w_setnx, K_ONE),
    WRITE("setex", 4, w_setex, K_ONE),
    WRITE("psetex", 4, w_psetex, K_ONE),
    WRITE("getset", 3, w_getset, K_ONE),
    WRITE("getdel", 2, w_getdel, K_ONE),
    WRITE("del", -2, w_del, K_ALL),
    WRITE("unlink", -2, w_del, K_ALL),
    WRITE("append", 3, w_append, K_ONE),
    WRITE("incr", 2, w_incr, K_ONE),
    WRITE("decr", 2, w_decr, K_ONE),
    WRITE("incrby", 3, w_incrby, K_ONE),
    WRITE("decrby", 3, w_decrby, K_ONE),
    WRITE("mset", -3, w_mset, K_PAIRS),
    WRITE("msetnx", -3, w_msetnx, K_PAIRS),
    WRITE("expire", -3, w_expire, K_ONE),
    WRITE("pexpire", -3, w_pexpire, K_ONE),
    WRITE("expireat", -3, w_expireat, K_ONE),
    WRITE("pexpireat", -3, w_pexpireat, K_ONE),
    WRITE("persist", 2, w_persist, K_ONE),
    WRITE("flushall", -1, w_flushall, K_NONE),
    WRITE("flushdb", -1, w_flushall, K_NONE),
    CWRITE("hset", -4, CRAFT_KV_OP_HSET),
    CWRITE("hmset", -4, CRAFT_KV_OP_HMSET),
    CWRITE("hsetnx", 4, CRAFT_KV_OP_HSETNX),
    CWRITE("hdel", -3, CRAFT_KV_OP_HDEL),
    CWRITE("hincrby", 4, CRAFT_KV_OP_HINCRBY),
    CREAD("hget", 3, K_ONE, CRAFT_KV_OP_HGET),
    CREAD("hmget", -3, K_ONE, CRAFT_KV_OP_HMGET),
    CREAD("hgetall", 2, K_ONE, CRAFT_KV_OP_HGETALL),
    CREAD("hkeys", 2, K_ONE, CRAFT_KV_OP_HKEYS),
    CREAD("hvals", 2, K_ONE, CRAFT_KV_OP_HVALS),
    CREAD("hlen", 2, K_ONE, CRAFT_KV_OP_HLEN),
    CREAD("hexists", 3, K_ONE, CRAFT_KV_OP_HEXISTS),
    CREAD("hstrlen", 3, K_ONE, CRAFT_KV_OP_HSTRLEN),
    CREAD("hscan", -3, K_ONE, CRAFT_KV_OP_HSCAN),
    CWRITE("sadd", -3, CRAFT_KV_OP_SADD),
    CWRITE("srem", -3, CRAFT_KV_OP_SREM),
    CWRITE("spop", -2, CRAFT_KV_OP_SPOP),
    CREAD("sismember", 3, K_ONE, CRAFT_KV_OP_SISMEMBER),
    CREAD("smismember", -3, K_ONE, CRAFT_KV_OP_SMISMEMBER),
    CREAD("smembers", 2, K_ONE, CRAFT_KV_OP_SMEMBERS),
    CREAD("scard", 2, K_ONE, CRAFT_KV_OP_SCARD),
    CREAD("srandmember", -2, K_ONE, CRAFT_KV_OP_SRANDMEMBER),
    CREAD("sscan", -3, K_ONE, CRAFT_KV_OP_SSCAN),
    CREAD("sinter", -2, K_ALL, CRAFT_KV_OP_SINTER),
    CREAD("sunion", -2, K_ALL, CRAFT_KV_OP_SUNION),
    CREAD("sdiff", -2, K_ALL, CRAFT_KV_OP_SDIFF),
    CWRITE("lpush", -3, CRAFT_KV_OP_LPUSH),
    CWRITE("rpush", -3, CRAFT_KV_OP_RPUSH),
    CWRITE("lpushx", -3, CRAFT_KV_OP_LPUSHX),
    CWRITE("rpushx", -3, CRAFT_KV_OP_RPUSHX),
    CWRITE("lpop", -2, CRAFT_KV_OP_LPOP),
    CWRITE("rpop", -2, CRAFT_KV_OP_RPOP),
    CWRITE("lset", 4, CRAFT_KV_OP_LSET),
    CWRITE("lrem", 4, CRAFT_KV_OP_LREM),
    CWRITE("ltrim", 4, CRAFT_KV_OP_LTRIM),
    CREAD("llen", 2, K_ONE, CRAFT_KV_OP_LLEN),
    CREAD("lrange", 4, K_ONE, CRAFT_KV_OP_LRANGE),
    CREAD("lindex", 3, K_ONE, CRAFT_KV_OP_LINDEX),
    CWRITE("zadd", -4, CRAFT_KV_OP_ZADD),
    CWRITE("zincrby", 4, CRAFT_KV_OP_ZINCRBY),
    CWRITE("zrem", -3, CRAFT_KV_OP_ZREM),
    CWRITE("zpopmin", -2, CRAFT_KV_OP_ZPOPMIN),
    CWRITE("zpopmax", -2, CRAFT_KV_OP_ZPOPMAX),
    CREAD("zscore", 3, K_ONE, CRAFT_KV_OP_ZSCORE),
    CREAD("zmscore", -3, K_ONE, CRAFT_KV_OP_ZMSCORE),
    CREAD("zcard", 2, K_ONE, CRAFT_KV_OP_ZCARD),
    CREAD("zcount", 4, K_ONE, CRAFT_KV_OP_ZCOUNT),
    CREAD("zrange", -4, K_ONE, CRAFT_KV_OP_ZRANGE),
    CREAD("zrangebyscore", -4, K_ONE, CRAFT_KV_OP_ZRANGEBYSCORE),
    CREAD("zrevrange", -4, K_ONE, CRAFT_KV_OP_ZREVRANGE),
    CREAD("zrevrangebyscore", -4, K_ONE, CRAFT_KV_OP_ZREVRANGEBYSCORE),
    CREAD("zrank", 3, K_ONE, CRAFT_KV_OP_ZRANK),
    CREAD("zrevrank", 3, K_ONE, CRAFT_KV_OP_ZREVRANK),
    CREAD("zscan", -3, K_ONE, CRAFT_KV_OP_ZSCAN),
    CWRITE("incrbyfloat", 3, CRAFT_KV_OP_INCRBYFLOAT),
    CWRITE("setrange", 4, CRAFT_KV_OP_SETRANGE),
    CREAD("getrange", 4, K_ONE, CRAFT_KV_OP_GETRANGE),
    CREAD("substr", 4, K_ONE, CRAFT_KV_OP_GETRANGE),
    {"getex", -2, CRAFTKV_WRITE, NULL, NULL, craftkv_w_getex, NULL, K_ONE, CRAFT_KV_OP_GETEX},
    CWRITEK("rename", 3, K_TWO, CRAFT_KV_OP_RENAME),
    CWRITEK("renamenx", 3, K_TWO, CRAFT_KV_OP_RENAMENX),
    CWRITE("hincrbyfloat", 4, CRAFT_KV_OP_HINCRBYFLOAT),
    CWRITE("linsert", 5, CRAFT_KV_OP_LINSERT),
    CWRITEK("lmove", 5, K_TWO, CRAFT_KV_OP_LMOVE),
    {"rpoplpush", 3, CRAFTKV_WRITE, NULL, NULL, craftkv_w_rpoplpush, NULL, K_TWO,
     CRAFT_KV_OP_LMOVE},
    CREAD("lpos", -3, K_ONE, CRAFT_KV_OP_LPOS),
    CWRITEK("smove", 4, K_TWO, CRAFT_KV_OP_SMOVE),
    CWRITEK("sinterstore", -3, K_ALL, CRAFT_KV_OP_SINTERSTORE),
    CWRITEK("sunionstore", -3, K_ALL, CRAFT_KV_OP_SUNIONSTORE),
    CWRITEK("sdiffstore", -3, K_ALL, CRAFT_KV_OP_SDIFFSTORE),
    WRITE(CRAFTKV_EXEC_CMD, -4, w_exec, K_NONE), /* a transaction's commands (server_multi.c) */
    WRITE(CRAFTKV_ENDSESSION_CMD, 1, w_endsession, K_NONE), /* a closed connection's session */
    /* cluster administration: server_admin.c */
    ADMIN("raft.info", 1, craftkv_a_info),
    ADMIN("raft.addnode", -4, craftkv_a_addnode),
    ADMIN("raft.removenode", 2, craftkv_a_removenode),
    ADMIN("raft.transfer", -1, craftkv_a_transfer),
    ADMIN("raft.snapshot", 1, craftkv_a_snapshot),
    ADMIN("craft.admin", -2, craftkv_a_admin),
    ADMIN("cluster", -2, craftkv_a_cluster),   /* server_cluster.c */
    ADMIN("craft.shard", -2, craftkv_a_shard), /* server_shard_admin.c */
};

void craftkv_reply_unknown(struct craft_resp_buf *out, size_t argc, const struct craft_resp_arg *argv)
{
    /* Redis: ERR unknown command 'x', with args beginning with: 'a' 'b' */
    char msg[512];
    int n = snprintf(msg, sizeof msg, "ERR unknown command '%.*s', with args beginning with: ",
                     (int)(argv[0].len > 128 ? 128 : argv[0].len), argv[0].data);
    for (size_t i = 1; i < argc && n > 0 && (size_t)n < sizeof msg - 140; i++)
        n += snprintf(msg + n, sizeof msg - (size_t)n, "'%.*s' ",
                      (int)(argv[i].len > 128 ? 128 : argv[i].len), argv[i].data);
    craft_resp_append_error(out, msg);
}

bool craftkv_cmd_arity_ok(const struct craftkv_cmd_def *d, size_t argc)
{
    return d->arity >= 0 ? argc == (size_t)d->arity : argc >= (size_t)-d->arity;
}

void craftkv_reply_arity(struct craft_resp_buf *out, const struct craft_resp_arg *name)
{
    char lower[64];
    size_t n = name->len < sizeof lower - 1 ? name->len : sizeof lower - 1;
    for (size_t i = 0; i < n; i++)
        lower[i] = (char)(name->data[i] >= 'A' && name->data[i] <= 'Z' ? name->data[i] + 32
                                                                        : name->data[i]);
    lower[n] = '\0';
    craft_resp_append_errorf(out, "ERR wrong number of arguments for '%s' command", lower);
}

const struct craftkv_cmd_def *craftkv_cmd_at(size_t i)
{
    return i < sizeof table / sizeof table[0] ? &table[i] : NULL;
}

size_t craftkv_cmd_index(const struct craftkv_cmd_def *d)
{
    CRAFT_ASSERT(d >= table && d < table + sizeof table / sizeof table[0]);
    return (size_t)(d - table);
}

/* Lookup by a hash of the lower-cased name (open addressing): every command the server
 * parses is looked up, and a scan of the table cost a string compare per entry. */
#define CMD_INDEX_SLOTS 1024u /* a power of two, over four times the table */
_Static_assert(sizeof table / sizeof table[0] < CMD_INDEX_SLOTS / 4, "the index stays sparse");
static uint16_t cmd_index[CMD_INDEX_SLOTS]; /* position in table + 1; 0: empty */
static pthread_once_t cmd_index_once = PTHREAD_ONCE_INIT;

static uint32_t name_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        h = (h ^ (ch >= 'A' && ch <= 'Z' ? ch + 32u : ch)) * 16777619u;
    }
    return h;
}

static void cmd_index_build(void)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        uint32_t h = name_hash(table[i].name, strlen(table[i].name)) & (CMD_INDEX_SLOTS - 1);
        while (cmd_index[h] != 0)
            h = (h + 1) & (CMD_INDEX_SLOTS - 1);
        cmd_index[h] = (uint16_t)(i + 1);
    }
}

const struct craftkv_cmd_def *craftkv_cmd_find(const char *name, size_t len)
{
    pthread_once(&cmd_index_once, cmd_index_build);
    for (uint32_t h = name_hash(name, len) & (CMD_INDEX_SLOTS - 1); cmd_index[h] != 0;
         h = (h + 1) & (CMD_INDEX_SLOTS - 1)) {
        const struct craftkv_cmd_def *d = &table[cmd_index[h] - 1];
        if (strlen(d->name) == len && strncasecmp(d->name, name, len) == 0)
            return d;
    }
    return NULL;
}
