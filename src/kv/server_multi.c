/* craftkv transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis's semantics, with the
 * differences docs/design/craftkv.md "Transactions" lists).
 *
 * Between MULTI and EXEC a connection's commands are checked (name, arity, syntax) and
 * queued, each answered +QUEUED; a command that fails the check is answered with its
 * error and dooms the transaction (EXEC answers EXECABORT). EXEC turns the queue into one
 * command, CRAFT.EXEC, which the write pipeline proposes as one MULTI entry (kv_cmd.h):
 * every replica applies the commands in order in one step, and the reply is the array
 * of their replies. Loop thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/assert.h"
#include "kv/server_internal.h"

/* One argument of the flattened CRAFT.EXEC, by offset (the bytes move as they grow). */
struct multi_arg {
    size_t off, len;
};

/* The keys a connection watches (WATCH ... until EXEC, DISCARD or UNWATCH), each with the
 * digest of its state when WATCH read it (craft_kv_watch_digest), as CRAFT.EXEC arguments:
 * key, then the digest in decimal. */
struct craftkv_watch {
    uint32_t n;
    struct craft_resp_buf bytes;
    struct multi_arg *args; /* 2 per key */
    size_t n_args, cap_args;
};

struct craftkv_multi {
    bool dirty;   /* a queuing error: EXEC discards */
    uint32_t n;   /* commands queued */
    struct craft_resp_buf bytes; /* every argument's bytes, one after another */
    struct multi_arg *args;
    size_t n_args, cap_args;
    struct craft_resp_arg *argv; /* built by craftkv_multi_exec_args */
    char count[24], watched[24]; /* n and the watched keys' count, as CRAFT.EXEC arguments */
};

/* Bounds of a queue: a transaction is one log entry. */
#define MULTI_BYTES_MAX CRAFT_KV_CMD_BYTES_MAX

/* Appends one argument to a list of them (bytes, and their offsets). */
static int push_to(struct craft_resp_buf *bytes, struct multi_arg **args, size_t *n_args,
                   size_t *cap_args, const char *p, size_t n)
{
    if (*n_args == *cap_args) {
        size_t cap = *cap_args ? *cap_args * 2 : 16;
        struct multi_arg *a = realloc(*args, cap * sizeof *a);
        if (!a)
            return -1;
        *args = a;
        *cap_args = cap;
    }
    size_t off = bytes->len;
    if (craftkv_buf_append_raw(bytes, p, n) != 0)
        return -1;
    (*args)[(*n_args)++] = (struct multi_arg){off, n};
    return 0;
}

static int push_arg(struct craftkv_multi *m, const char *p, size_t n)
{
    return push_to(&m->bytes, &m->args, &m->n_args, &m->cap_args, p, n);
}

/* Queues argv as "<argc> <args...>"; -1 if out of memory (the queue keeps what it had). */
static int queue(struct craftkv_multi *m, size_t argc, const struct craft_resp_arg *argv)
{
    size_t len = m->bytes.len, n_args = m->n_args;
    char num[24];
    int k = snprintf(num, sizeof num, "%zu", argc);
    int rc = push_arg(m, num, (size_t)k);
    for (size_t i = 0; rc == 0 && i < argc; i++)
        rc = push_arg(m, argv[i].data, argv[i].len);
    if (rc != 0) {
        m->bytes.len = len;
        m->n_args = n_args;
        return -1;
    }
    m->n++;
    return 0;
}

static void watch_clear(struct craftkv_conn *c)
{
    struct craftkv_watch *w = c->watch;
    if (!w)
        return;
    craft_resp_buf_free(&w->bytes);
    free(w->args);
    free(w);
    c->watch = NULL;
}

void craftkv_multi_end(struct craftkv_conn *c)
{
    watch_clear(c); /* EXEC and DISCARD unwatch everything, as in Redis */
    struct craftkv_multi *m = c->multi;
    if (!m)
        return;
    craft_resp_buf_free(&m->bytes);
    free(m->args);
    free(m->argv);
    free(m);
    c->multi = NULL;
}

void craftkv_multi_watch(struct craftkv_conn *c, struct craft_kv_read *r, size_t argc,
                         const struct craft_resp_arg *argv, struct craft_resp_buf *out)
{
    if (!c->watch && !(c->watch = calloc(1, sizeof *c->watch))) {
        craft_resp_append_error(out, "ERR out of memory");
        return;
    }
    struct craftkv_watch *w = c->watch;
    /* All or nothing: a failure part way leaves the watches as they were. */
    size_t bytes = w->bytes.len, n_args = w->n_args;
    uint32_t n = w->n;
    for (size_t i = 1; i < argc; i++) {
        if (argv[i].len > CRAFT_KV_KEY_BYTES_MAX) {
            craft_resp_append_errorf(out, "ERR key too long for WATCH (keys up to %u bytes)",
                                     CRAFT_KV_KEY_BYTES_MAX);
            return;
        }
    }
    if (w->n + argc - 1 > CRAFT_KV_ITEMS_MAX / 2) {
        craft_resp_append_error(out, "ERR too many watched keys");
        return;
    }
    for (size_t i = 1; i < argc; i++) {
        uint64_t d;
        int rc = craft_kv_read_watch(r, (const uint8_t *)argv[i].data, argv[i].len, &d);
        if (rc != CRAFT_OK) {
            w->bytes.len = bytes, w->n_args = n_args, w->n = n;
            craft_resp_append_errorf(out, "ERR storage error: %s", craft_strerror(rc));
            return;
        }
        char num[24];
        int k = snprintf(num, sizeof num, "%llu", (unsigned long long)d);
        if (push_to(&w->bytes, &w->args, &w->n_args, &w->cap_args, argv[i].data, argv[i].len) ||
            push_to(&w->bytes, &w->args, &w->n_args, &w->cap_args, num, (size_t)k)) {
            w->bytes.len = bytes, w->n_args = n_args, w->n = n;
            craft_resp_append_error(out, "ERR out of memory");
            return;
        }
        w->n++;
    }
    craft_resp_append_simple(out, "OK");
}

enum craftkv_multi_step craftkv_multi_feed(struct craftkv_conn *c,
                                           const struct craftkv_cmd_def *d, size_t argc,
                                           const struct craft_resp_arg *argv)
{
    struct craftkv_multi *m = c->multi;
    if (!m)
        return CRAFTKV_MULTI_PASS;
    struct craft_resp_buf *out = &c->out;
    if (craftkv_arg_is(&argv[0], "EXEC") || craftkv_arg_is(&argv[0], "DISCARD")) {
        if (argc != 1) {
            craftkv_reply_arity(out, &argv[0]);
            m->dirty = true;
            return CRAFTKV_MULTI_ANSWERED;
        }
        bool watching = c->watch && c->watch->n > 0;
        if (craftkv_arg_is(&argv[0], "DISCARD") || m->dirty || (m->n == 0 && !watching)) {
            if (craftkv_arg_is(&argv[0], "DISCARD"))
                craft_resp_append_simple(out, "OK");
            else if (m->dirty)
                craft_resp_append_error(out, CRAFTKV_ERR_EXECABORT);
            else
                craft_resp_append_array(out, 0); /* Redis: an empty transaction */
            craftkv_multi_end(c);
            return CRAFTKV_MULTI_ANSWERED;
        }
        return CRAFTKV_MULTI_EXEC;
    }
    if (craftkv_arg_is(&argv[0], "MULTI")) {
        craft_resp_append_error(out, "ERR MULTI calls can not be nested");
        return CRAFTKV_MULTI_ANSWERED;
    }
    if (craftkv_arg_is(&argv[0], "WATCH")) {
        craft_resp_append_error(out, "ERR WATCH inside MULTI is not allowed");
        return CRAFTKV_MULTI_ANSWERED;
    }
    if (craftkv_arg_is(&argv[0], "QUIT"))
        return CRAFTKV_MULTI_PASS; /* closes the connection, and the transaction with it */
    if (!d) {
        craftkv_reply_unknown(out, argc, argv);
        m->dirty = true;
    } else if (!craftkv_cmd_arity_ok(d, argc)) {
        craftkv_reply_arity(out, &argv[0]);
        m->dirty = true;
    } else if (craftkv_cmd_check_queued(d, argc, argv, craftkv_now_ms(), out) != 0) {
        m->dirty = true;
    } else if (m->n + (c->watch ? c->watch->n : 0) >= CRAFT_KV_ITEMS_MAX ||
               m->bytes.len + (c->watch ? c->watch->bytes.len : 0) > MULTI_BYTES_MAX) {
        /* (the watched keys go into the same entry) */
        craft_resp_append_errorf(out, "ERR transaction too large (at most %u commands and "
                                 "%u MiB in one transaction)", CRAFT_KV_ITEMS_MAX,
                                 MULTI_BYTES_MAX >> 20);
        m->dirty = true;
    } else if (queue(m, argc, argv) != 0) {
        craft_resp_append_error(out, "ERR out of memory");
        m->dirty = true;
    } else {
        craft_resp_append_simple(out, "QUEUED");
    }
    return CRAFTKV_MULTI_ANSWERED;
}

void craftkv_multi_exec_args(struct craftkv_conn *c, size_t *argc,
                             const struct craft_resp_arg **argv)
{
    struct craftkv_multi *m = c->multi;
    const struct craftkv_watch *w = c->watch;
    size_t nw = w ? w->n_args : 0;
    CRAFT_ASSERT(m && !m->dirty && (m->n > 0 || nw > 0));
    free(m->argv);
    m->argv = malloc((nw + m->n_args + 3) * sizeof *m->argv);
    if (!m->argv) {
        *argc = 0;
        *argv = NULL;
        return;
    }
    /* CRAFT.EXEC <watched> (<key> <digest>)... <n> (<argc> <name> <args...>)... */
    size_t a = 0;
    m->argv[a++] = (struct craft_resp_arg){CRAFTKV_EXEC_CMD, strlen(CRAFTKV_EXEC_CMD)};
    int k = snprintf(m->watched, sizeof m->watched, "%u", w ? w->n : 0);
    m->argv[a++] = (struct craft_resp_arg){m->watched, (size_t)k};
    for (size_t i = 0; i < nw; i++)
        m->argv[a++] = (struct craft_resp_arg){w->bytes.data + w->args[i].off, w->args[i].len};
    k = snprintf(m->count, sizeof m->count, "%u", m->n);
    m->argv[a++] = (struct craft_resp_arg){m->count, (size_t)k};
    for (size_t i = 0; i < m->n_args; i++)
        m->argv[a++] = (struct craft_resp_arg){m->bytes.data + m->args[i].off, m->args[i].len};
    *argc = a;
    *argv = m->argv;
}

void craftkv_l_multi(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                     const struct craft_resp_arg *argv)
{
    (void)s, (void)argc, (void)argv;
    CRAFT_ASSERT(c->multi == NULL); /* inside one, craftkv_multi_feed answers MULTI */
    c->multi = calloc(1, sizeof *c->multi);
    if (!c->multi) {
        craft_resp_append_error(&c->out, "ERR out of memory");
        return;
    }
    craft_resp_append_simple(&c->out, "OK");
}

void craftkv_l_exec(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                    const struct craft_resp_arg *argv)
{
    (void)s, (void)argc, (void)argv;
    craft_resp_append_error(&c->out, "ERR EXEC without MULTI");
}

void craftkv_l_discard(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                       const struct craft_resp_arg *argv)
{
    (void)s, (void)argc, (void)argv;
    craft_resp_append_error(&c->out, "ERR DISCARD without MULTI");
}

void craftkv_l_unwatch(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                       const struct craft_resp_arg *argv)
{
    (void)s, (void)argc, (void)argv;
    watch_clear(c);
    craft_resp_append_simple(&c->out, "OK");
}
