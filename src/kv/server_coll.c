/* craftkv: the hash and set commands' Redis syntax (kv.md "Data types"). Each is the state
 * machine's collection op with the Redis arguments after its key, checked here as the
 * state machine checks them (craft_kv_coll_check) before a write is proposed; SPOP's and
 * SRANDMEMBER's random choice is a seed drawn here, so replicas pick the same members.
 * Writes go through the write pipeline, reads run on a read after their barrier. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "kv/server_internal.h"

/* The op of the table entry named argv[0] (its multi_op). */
static uint8_t op_of(const struct craft_resp_arg *name)
{
    const struct craftkv_cmd_def *d = craftkv_cmd_find(name->data, name->len);
    return d != NULL ? d->multi_op : 0;
}

static uint64_t seed_draw(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != sizeof seed) {
        seed = (uint64_t)(uintptr_t)&seed ^ craftkv_now_ms(); /* still a position */
    }
    return seed;
}

/* op's command from argv into *c, its arguments in items (argc - 1 entries at least) and
 * the seed in seed_buf when op draws one: NULL, or the error to answer. */
static const char *build(uint8_t op, size_t argc, const struct craft_resp_arg *argv,
                         struct craft_kv_cmd *c, struct craft_kv_bytes *items, uint8_t seed_buf[8])
{
    c->op = op;
    c->key = (struct craft_kv_bytes){(const uint8_t *)argv[1].data, (uint32_t)argv[1].len};
    size_t n = argc - 2;
    for (size_t i = 0; i < n; i++)
        items[i] =
            (struct craft_kv_bytes){(const uint8_t *)argv[i + 2].data, (uint32_t)argv[i + 2].len};
    if (op == CRAFT_KV_OP_SPOP || op == CRAFT_KV_OP_SRANDMEMBER) {
        uint64_t seed = seed_draw();
        memcpy(seed_buf, &seed, 8);
        items[n++] = (struct craft_kv_bytes){seed_buf, 8};
    }
    if (n > CRAFT_KV_ARGS_MAX)
        return "ERR too many arguments in one command";
    c->n = (uint32_t)n;
    c->args = items;
    return craft_kv_coll_check(op, n, items);
}

void craftkv_coll_reply_error(struct craft_resp_buf *out, const struct craft_resp_arg *name,
                              const char *err)
{
    if (strcmp(err, CRAFT_KV_ERR_ARGS) == 0)
        craftkv_reply_arity(out, name); /* Redis's text names the command */
    else
        craft_resp_append_error(out, err);
}

int craftkv_w_coll(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                   struct craft_kv_cmd *c, struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    (void)now;
    /* c points at the seed until it is encoded, which every caller does before it builds
     * another command on this thread (server_write.c, CRAFT.EXEC's list). */
    static _Thread_local uint8_t seed_buf[8];
    const char *err = build(op_of(&argv[0]), argc, argv, c, items, seed_buf);
    if (err != NULL) {
        craftkv_coll_reply_error(out, &argv[0], err);
        return 0;
    }
    return 1;
}

/* GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST]: the expiry made absolute here,
 * with this leader's clock, as SET's (kv.md "Time"): the op carries PXAT <ms> or PERSIST. */
int craftkv_w_getex(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                    struct craft_kv_cmd *c, struct craft_kv_bytes *items,
                    struct craft_resp_buf *out)
{
    static _Thread_local char digits[24]; /* until encoded, as the seed (above) */
    c->op = CRAFT_KV_OP_GETEX;
    c->key = (struct craft_kv_bytes){(const uint8_t *)argv[1].data, (uint32_t)argv[1].len};
    c->args = items;
    c->n = 0;
    if (argc == 2)
        return 1;
    if (argc == 3 && craftkv_arg_is(&argv[2], "PERSIST")) {
        items[0] = (struct craft_kv_bytes){(const uint8_t *)"PERSIST", 7};
        c->n = 1;
        return 1;
    }
    bool secs = craftkv_arg_is(&argv[2], "EX") || craftkv_arg_is(&argv[2], "EXAT");
    bool abs = craftkv_arg_is(&argv[2], "EXAT") || craftkv_arg_is(&argv[2], "PXAT");
    if (argc != 4 || !(secs || abs || craftkv_arg_is(&argv[2], "PX"))) {
        craft_resp_append_error(out, "ERR syntax error");
        return 0;
    }
    int64_t v;
    if (!craft_kv_parse_i64((const uint8_t *)argv[3].data, argv[3].len, &v)) {
        craft_resp_append_error(out, "ERR value is not an integer or out of range");
        return 0;
    }
    uint64_t at;
    if (v <= 0 || craft_kv_deadline(abs ? 0 : now, v, secs, &at) != 0) {
        craft_resp_append_error(out, "ERR invalid expire time in 'getex' command");
        return 0;
    }
    int dn = snprintf(digits, sizeof digits, "%llu", (unsigned long long)at);
    items[0] = (struct craft_kv_bytes){(const uint8_t *)"PXAT", 4};
    items[1] = (struct craft_kv_bytes){(const uint8_t *)digits, (uint32_t)dn};
    c->n = 2;
    return 1;
}

/* RPOPLPUSH src dst: LMOVE src dst RIGHT LEFT. */
int craftkv_w_rpoplpush(size_t argc, const struct craft_resp_arg *argv, uint64_t now,
                        struct craft_kv_cmd *c, struct craft_kv_bytes *items,
                        struct craft_resp_buf *out)
{
    (void)argc, (void)now;
    c->op = CRAFT_KV_OP_LMOVE;
    c->key = (struct craft_kv_bytes){(const uint8_t *)argv[1].data, (uint32_t)argv[1].len};
    items[0] = (struct craft_kv_bytes){(const uint8_t *)argv[2].data, (uint32_t)argv[2].len};
    items[1] = (struct craft_kv_bytes){(const uint8_t *)"RIGHT", 5};
    items[2] = (struct craft_kv_bytes){(const uint8_t *)"LEFT", 4};
    c->n = 3;
    c->args = items;
    const char *err = craft_kv_coll_check(c->op, c->n, items);
    if (err != NULL) {
        craftkv_coll_reply_error(out, &argv[0], err);
        return 0;
    }
    return 1;
}

void craftkv_r_coll(struct craft_kv_read *r, size_t argc, const struct craft_resp_arg *argv,
                    struct craft_resp_buf *out)
{
    /* Room for the arguments and a seed: on the stack for the usual few, no allocation per
     * read. */
    struct craft_kv_bytes few[16];
    struct craft_kv_bytes *items = argc + 1 <= 16 ? few : malloc((argc + 1) * sizeof *items);
    if (items == NULL) {
        craft_resp_append_error(out, "ERR out of memory");
        return;
    }
    struct craft_kv_cmd c = {0};
    uint8_t seed_buf[8];
    const char *err = build(op_of(&argv[0]), argc, argv, &c, items, seed_buf);
    if (err != NULL) {
        craftkv_coll_reply_error(out, &argv[0], err);
        if (items != few)
            free(items);
        return;
    }
    struct craft_kv_result *res = NULL;
    int rc = craft_kv_read_exec(r, &c, &res);
    if (items != few)
        free(items);
    if (rc != CRAFT_OK) {
        craft_resp_append_errorf(out, "ERR storage error: %s", craft_strerror(rc));
        return;
    }
    craftkv_put_result(out, res);
    craft_kv_result_free(res);
}

void craftkv_coll_build_read(uint8_t op, size_t argc, const struct craft_resp_arg *argv,
                             struct craft_kv_cmd *c, struct craft_kv_bytes *items,
                             uint8_t seed_buf[8])
{
    (void)build(op, argc, argv, c, items, seed_buf); /* checked when it was queued */
}
