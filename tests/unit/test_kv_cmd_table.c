/* craftkv's command table (src/kv/server_cmd.c) without a server, a socket or a thread:
 * lookup and arity as Redis has them, Redis's error texts, the replicated command each write
 * builds from its arguments (what the leader proposes), and each read's reply from a read
 * transaction of an in-memory state machine. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "kv/kv_sm.h"
#include "kv/kv_store.h"
#include "kv/server_internal.h"
#include "unit.h"

#define MAX_ARGS 16

struct args {
    size_t argc;
    struct craft_resp_arg argv[MAX_ARGS];
};

/* Splits a space-separated command line into arguments (no quoting: tests only). */
static struct args split(const char *line)
{
    struct args a = {0};
    const char *p = line;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, ' ');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        CRAFT_ASSERT(a.argc < MAX_ARGS);
        a.argv[a.argc++] = (struct craft_resp_arg){p, n};
        p += n;
    }
    return a;
}

static const struct craftkv_cmd_def *def_of(const struct args *a)
{
    return craftkv_cmd_find(a->argv[0].data, a->argv[0].len);
}

static bool reply_is(const struct craft_resp_buf *b, const char *want)
{
    bool ok = b->len == strlen(want) && memcmp(b->data, want, b->len) == 0;
    if (!ok)
        printf("  reply '%.*s', want '%s'\n", (int)b->len, b->data, want);
    return ok;
}

static bool bytes_are(struct craft_kv_bytes b, const char *want)
{
    return b.len == strlen(want) && memcmp(b.p, want, b.len) == 0;
}

/* Builds the write's command at now; true if built, else out holds the error. */
static bool build(const char *line, uint64_t now, struct craft_kv_cmd *c,
                  struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    struct args a = split(line);
    const struct craftkv_cmd_def *d = def_of(&a);
    CRAFT_ASSERT(d && d->kind == CRAFTKV_WRITE && craftkv_cmd_arity_ok(d, a.argc));
    *c = (struct craft_kv_cmd){0};
    out->len = 0;
    return d->write(a.argc, a.argv, now, c, items, out);
}

static void table_shape(void)
{
    size_t n = 0;
    for (const struct craftkv_cmd_def *d; (d = craftkv_cmd_at(n)) != NULL; n++) {
        CHECK(d->name && d->name[0] && d->arity != 0);
        /* one handler, the one its kind runs */
        CHECK((d->local != NULL) == (d->kind == CRAFTKV_LOCAL));
        /* WATCH: a read whose effect is on the connection (server_multi.c), not a reply */
        CHECK((d->read != NULL) == (d->kind == CRAFTKV_READ && strcmp(d->name, "watch") != 0));
        CHECK((d->write != NULL) == (d->kind == CRAFTKV_WRITE));
        CHECK((d->admin != NULL) == (d->kind == CRAFTKV_ADMIN));
        CHECK(craftkv_cmd_find(d->name, strlen(d->name)) == d); /* names are unique */
        for (const char *p = d->name; *p; p++)
            CHECK(!(*p >= 'A' && *p <= 'Z')); /* lower case: lookup folds case */
        /* Key positions (COMMAND, what cluster clients route by) fit the arity: a keyed
         * command has room for its key, key/value pairs need -3, and only reads and
         * writes of the state machine have keys. */
        unsigned min_args = (unsigned)(d->arity < 0 ? -d->arity : d->arity);
        CHECK(d->keys <= K_TWO);
        CHECK(d->keys != K_TWO || min_args >= 3);
        CHECK(d->keys == K_NONE || d->kind == CRAFTKV_READ || d->kind == CRAFTKV_WRITE);
        CHECK(d->keys == K_NONE || min_args >= 2);
        CHECK(d->keys != K_PAIRS || d->arity == -3);
        CHECK(d->keys != K_ALL || d->arity < 0);
    }
    CHECK(craftkv_cmd_find("get", 3)->keys == K_ONE);
    CHECK(craftkv_cmd_find("mget", 4)->keys == K_ALL);
    CHECK(craftkv_cmd_find("del", 3)->keys == K_ALL);
    CHECK(craftkv_cmd_find("mset", 4)->keys == K_PAIRS);
    CHECK(craftkv_cmd_find("rename", 6)->keys == K_TWO &&
          craftkv_cmd_find("lmove", 5)->keys == K_TWO);
    CHECK(craftkv_cmd_find("scan", 4)->keys == K_NONE);
    CHECK(craftkv_cmd_find("cluster", 7)->keys == K_NONE);
    CHECK(n >= 40);
    CHECK(craftkv_cmd_find("GeT", 3) == craftkv_cmd_find("get", 3));
    CHECK(craftkv_cmd_find("getx", 4) == NULL);
    CHECK(craftkv_cmd_find("ge", 2) == NULL);
    CHECK(craftkv_cmd_find("", 0) == NULL);
}

static void arity_and_texts(void)
{
    const struct craftkv_cmd_def *get = craftkv_cmd_find("get", 3);
    const struct craftkv_cmd_def *set = craftkv_cmd_find("set", 3);
    CHECK(craftkv_cmd_arity_ok(get, 2) && !craftkv_cmd_arity_ok(get, 1) &&
          !craftkv_cmd_arity_ok(get, 3));
    CHECK(craftkv_cmd_arity_ok(set, 3) && craftkv_cmd_arity_ok(set, 7) &&
          !craftkv_cmd_arity_ok(set, 2));
    struct craft_resp_buf out = {0};
    struct args a = split("SeT");
    craftkv_reply_arity(&out, &a.argv[0]);
    CHECK(reply_is(&out, "-ERR wrong number of arguments for 'set' command\r\n"));
    out.len = 0;
    a = split("FOO bar baz");
    craftkv_reply_unknown(&out, a.argc, a.argv);
    CHECK(reply_is(&out, "-ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' \r\n"));
    craft_resp_buf_free(&out);
}

static void writes(void)
{
    struct craft_kv_cmd c;
    struct craft_kv_bytes items[MAX_ARGS];
    struct craft_resp_buf out = {0};
    const uint64_t now = 1000000;

    CHECK(build("SET k v", now, &c, items, &out));
    CHECK(c.op == CRAFT_KV_OP_SET && c.flags == 0 && bytes_are(c.key, "k") &&
          bytes_are(c.value, "v"));
    /* expiry becomes an absolute instant from the proposer's clock */
    CHECK(build("set k v EX 10", now, &c, items, &out));
    CHECK(c.flags == CRAFT_KV_SET_EXPIRE && c.expire_at == now + 10000);
    CHECK(build("SET k v px 5 NX GET", now, &c, items, &out));
    CHECK(c.flags == (CRAFT_KV_SET_EXPIRE | CRAFT_KV_SET_NX | CRAFT_KV_SET_GET) &&
          c.expire_at == now + 5);
    CHECK(!build("SET k v NX XX", now, &c, items, &out));
    CHECK(reply_is(&out, "-ERR syntax error\r\n"));
    CHECK(!build("SET k v EX ten", now, &c, items, &out));
    CHECK(reply_is(&out, "-ERR value is not an integer or out of range\r\n"));
    /* INCR, DECR, DECRBY are one replicated op */
    CHECK(build("INCR n", now, &c, items, &out) && c.op == CRAFT_KV_OP_INCRBY && c.delta == 1);
    CHECK(build("DECR n", now, &c, items, &out) && c.op == CRAFT_KV_OP_INCRBY && c.delta == -1);
    CHECK(build("DECRBY n 5", now, &c, items, &out) && c.delta == -5);
    CHECK(build("INCRBY n -7", now, &c, items, &out) && c.delta == -7);
    CHECK(!build("INCRBY n seven", now, &c, items, &out));
    CHECK(reply_is(&out, "-ERR value is not an integer or out of range\r\n"));
    /* lists of keys and pairs go through items */
    CHECK(build("DEL a b c", now, &c, items, &out));
    CHECK(c.op == CRAFT_KV_OP_DEL && c.n == 3 && bytes_are(c.keys[2], "c"));
    CHECK(build("MSET a 1 b 2", now, &c, items, &out));
    CHECK(c.op == CRAFT_KV_OP_MSET && c.n == 2 && bytes_are(c.keys[1], "b") &&
          bytes_are(c.values[1], "2"));
    CHECK(!build("MSET a 1 b", now, &c, items, &out));
    CHECK(reply_is(&out, "-ERR wrong number of arguments for 'mset' command\r\n"));
    CHECK(build("EXPIRE k 10", now, &c, items, &out));
    CHECK(c.op == CRAFT_KV_OP_EXPIRE && c.expire_at == now + 10000);
    CHECK(build("PEXPIREAT k 123456789", now, &c, items, &out) && c.expire_at == 123456789);
    CHECK(build("EXPIRE k 10 GT", now, &c, items, &out) && c.flags == CRAFT_KV_EXPIRE_GT);
    CHECK(build("FLUSHALL", now, &c, items, &out) && c.op == CRAFT_KV_OP_FLUSHALL);
    craft_resp_buf_free(&out);
}

/* Applies a write through the state machine, as a committed log entry would be. */
static void apply(struct craft_kv_sm *sm, uint64_t *index, const char *line, uint64_t now)
{
    struct craft_kv_cmd c;
    struct craft_kv_bytes items[MAX_ARGS];
    struct craft_resp_buf out = {0};
    CRAFT_ASSERT(build(line, now, &c, items, &out));
    c.now_ms = now;
    uint8_t buf[1024];
    size_t len;
    CRAFT_ASSERT(craft_kv_cmd_encode(&c, buf, sizeof buf, &len) == CRAFT_OK);
    struct craft_kv_result *r = NULL;
    CHECK(craft_kv_sm_apply(sm, ++*index, buf, len, &r) == CRAFT_OK);
    craft_kv_result_free(r);
    craft_resp_buf_free(&out);
}

static bool read_is(struct craft_kv_sm *sm, const char *line, const char *want)
{
    struct args a = split(line);
    const struct craftkv_cmd_def *d = def_of(&a);
    CRAFT_ASSERT(d && d->kind == CRAFTKV_READ && craftkv_cmd_arity_ok(d, a.argc));
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(sm, &r) == CRAFT_OK);
    struct craft_resp_buf out = {0};
    d->read(r, a.argc, a.argv, &out);
    craft_kv_read_end(r);
    bool ok = reply_is(&out, want);
    craft_resp_buf_free(&out);
    return ok;
}

static void reads(void)
{
    struct craft_kv_store *st;
    struct craft_kv_sm *sm;
    CRAFT_ASSERT(craft_kv_store_mem_open(&st) == CRAFT_OK);
    CRAFT_ASSERT(craft_kv_sm_open(st, NULL, &sm) == CRAFT_OK);
    uint64_t index = 0, now = 1000000;
    apply(sm, &index, "SET a hello", now);
    apply(sm, &index, "SET b x EX 100", now);
    apply(sm, &index, "INCRBY n 41", now);
    apply(sm, &index, "INCR n", now);
    CHECK(read_is(sm, "GET a", "$5\r\nhello\r\n"));
    CHECK(read_is(sm, "get nope", "$-1\r\n"));
    CHECK(read_is(sm, "GET n", "$2\r\n42\r\n"));
    CHECK(read_is(sm, "MGET a nope n", "*3\r\n$5\r\nhello\r\n$-1\r\n$2\r\n42\r\n"));
    CHECK(read_is(sm, "EXISTS a b nope a", ":3\r\n"));
    CHECK(read_is(sm, "STRLEN a", ":5\r\n"));
    CHECK(read_is(sm, "STRLEN nope", ":0\r\n"));
    CHECK(read_is(sm, "TYPE a", "+string\r\n"));
    CHECK(read_is(sm, "TYPE nope", "+none\r\n"));
    CHECK(read_is(sm, "TTL a", ":-1\r\n"));
    CHECK(read_is(sm, "TTL nope", ":-2\r\n"));
    CHECK(read_is(sm, "PTTL b", ":100000\r\n")); /* logical time: the last applied stamp */
    CHECK(read_is(sm, "DBSIZE", ":3\r\n"));
    craft_kv_sm_close(sm);
    st->ops->close(st);
}

/* INFO's section names: case-insensitive, several at once, aliases for all of them. */
/* What MULTI may queue (reads with a state-machine op, writes of keys) and what it refuses
 * at once; CRAFT.EXEC's MULTI entry holds the queued commands built as if alone (the
 * leader's clock for expiries); an argument list that does not add up is EXECABORT. */
static void transactions(void)
{
    const char *refused[] = {"ping", "dbsize", "scan 0", "info", "raft.info", "craft.exec 1 1 get", "craft.endsession",
                             "multi"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        struct args a = split(refused[i]);
        struct craft_resp_buf out = {0};
        CHECK(craftkv_cmd_check_queued(def_of(&a), a.argc, a.argv, 1000, &out) == -1 &&
              out.len > 0 && out.data[0] == '-');
        craft_resp_buf_free(&out);
    }
    const char *queued[] = {"get k", "mget a b", "exists a", "strlen k", "type k", "ttl k",
                            "pttl k", "set k v ex 10", "incr n", "del a b", "flushall"};
    for (size_t i = 0; i < sizeof queued / sizeof queued[0]; i++) {
        struct args a = split(queued[i]);
        struct craft_resp_buf out = {0};
        CHECK(craftkv_cmd_check_queued(def_of(&a), a.argc, a.argv, 1000, &out) == 0 && out.len == 0);
        craft_resp_buf_free(&out);
    }
    struct args bad = split("set k v ex nope");
    struct craft_resp_buf out = {0};
    CHECK(craftkv_cmd_check_queued(def_of(&bad), bad.argc, bad.argv, 1000, &out) == -1);
    CHECK(reply_is(&out, "-ERR value is not an integer or out of range\r\n"));
    craft_resp_buf_free(&out);

    struct craft_kv_cmd c;
    struct craft_kv_bytes items[MAX_ARGS];
    out = (struct craft_resp_buf){0};
    CHECK(build("craft.exec 0 3 5 set k v ex 10 2 get k 3 mget k j", 5000, &c, items, &out));
    CHECK(c.op == CRAFT_KV_OP_MULTI && c.n == 3 && c.blob.p == (const uint8_t *)out.data);
    c.now_ms = 5000;
    uint8_t buf[1024];
    size_t len = 0;
    CHECK(craft_kv_cmd_encode(&c, buf, sizeof buf, &len) == CRAFT_OK);
    struct craft_kv_cmd d, s;
    CHECK(craft_kv_cmd_decode(buf, len, &d) == CRAFT_OK);
    size_t off = 0;
    CHECK(craft_kv_cmd_next_sub(&d, &off, &s) && s.op == CRAFT_KV_OP_SET &&
          s.expire_at == 15000 && bytes_are(s.key, "k"));
    CHECK(craft_kv_cmd_next_sub(&d, &off, &s) && s.op == CRAFT_KV_OP_GET && bytes_are(s.key, "k"));
    CHECK(craft_kv_cmd_next_sub(&d, &off, &s) && s.op == CRAFT_KV_OP_MGET && s.n == 2);
    CHECK(!craft_kv_cmd_next_sub(&d, &off, &s));
    /* WATCHes go first, and a transaction of WATCHes alone is one too. */
    CHECK(build("craft.exec 2 a 12345 b 18446744073709551615 1 2 get a", 5000, &c, items, &out));
    CHECK(c.op == CRAFT_KV_OP_MULTI && c.n == 3);
    c.now_ms = 5000;
    CHECK(craft_kv_cmd_encode(&c, buf, sizeof buf, &len) == CRAFT_OK);
    CHECK(craft_kv_cmd_decode(buf, len, &d) == CRAFT_OK);
    off = 0;
    CHECK(craft_kv_cmd_next_sub(&d, &off, &s) && s.op == CRAFT_KV_OP_WATCH && s.delta == 12345 &&
          bytes_are(s.key, "a"));
    CHECK(craft_kv_cmd_next_sub(&d, &off, &s) && s.op == CRAFT_KV_OP_WATCH &&
          (uint64_t)s.delta == UINT64_MAX);
    CHECK(craft_kv_cmd_next_sub(&d, &off, &s) && s.op == CRAFT_KV_OP_GET);
    CHECK(build("craft.exec 1 a 7 0", 5000, &c, items, &out) && c.n == 1);
    const char *broken[] = {"craft.exec 0 2 1 get", "craft.exec 0 1 5 get k",
                            "craft.exec 0 1 2 get k extra", "craft.exec 0 0 1 dbsize",
                            "craft.exec 0 1 1 ping", "craft.exec 0 x 2 get k",
                            "craft.exec 1 k notanumber 0", "craft.exec 2 k 1 0",
                            "craft.exec x 1 2 get k", "craft.exec 1 k 5 9223372036854775807",
                            "craft.exec 1 k -5 0", "craft.exec 1 k 5x 0",
                            "craft.exec 1 k 99999999999999999999 0"};
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        CHECK(!build(broken[i], 5000, &c, items, &out));
        CHECK(reply_is(&out, "-" CRAFTKV_ERR_EXECABORT "\r\n"));
    }
    craft_resp_buf_free(&out);
}

static void info_sections(void)
{
    struct args a;
    unsigned all = craftkv_info_sections(0, NULL);
    CHECK(all != 0);
    a = split("raft");
    unsigned raft = craftkv_info_sections(a.argc, a.argv);
    CHECK(raft != 0 && (raft & (raft - 1)) == 0 && (raft & all) == raft);
    a = split("RaFt");
    CHECK(craftkv_info_sections(a.argc, a.argv) == raft);
    a = split("raft server");
    unsigned two = craftkv_info_sections(a.argc, a.argv);
    CHECK((two & raft) == raft && two != raft && (two & ~all) == 0);
    a = split("everything");
    CHECK(craftkv_info_sections(a.argc, a.argv) == all);
    a = split("default");
    CHECK(craftkv_info_sections(a.argc, a.argv) == all);
    a = split("nosuch");
    CHECK(craftkv_info_sections(a.argc, a.argv) == 0);
    a = split("nosuch raft");
    CHECK(craftkv_info_sections(a.argc, a.argv) == raft);
}

/* The slot a sharded server routes a command by (server_route.c): Redis Cluster's rule,
 * every key of a command (of a transaction: every watched and queued key) in one slot. */
static int slot_of(const char *line)
{
    struct args a = split(line);
    return craftkv_cmd_slot(def_of(&a), a.argc, a.argv);
}

static void command_slots(void)
{
    CHECK(slot_of("get foo") == 12182); /* redis-server 7's CLUSTER KEYSLOT foo */
    CHECK(slot_of("set foo bar EX 10") == 12182); /* options are no keys */
    CHECK(slot_of("mget {user1000}.a {user1000}.b") == 3443);
    CHECK(slot_of("mget a b") == -2);
    CHECK(slot_of("mset {t}a 1 {t}b 2") == slot_of("get {t}"));
    CHECK(slot_of("mset a 1 b 2") == -2);
    CHECK(slot_of("mset {t}a foo {t}b bar") != -2); /* values are no keys */
    CHECK(slot_of("del {t}a {t}b {t}c") == slot_of("get {t}"));
    CHECK(slot_of("dbsize") == -1);
    CHECK(slot_of("scan 0") == -1);
    /* CRAFT.EXEC <watches> (<key> <digest>)... <n> (<argc> <name> <args>...)... */
    CHECK(slot_of("craft.exec 0 2 3 set {u}a 1 2 get {u}b") == slot_of("get {u}"));
    CHECK(slot_of("craft.exec 1 {u}w 77 1 2 get {u}b") == slot_of("get {u}"));
    CHECK(slot_of("craft.exec 1 {v}w 77 1 2 get {u}b") == -2);
    CHECK(slot_of("craft.exec 0 2 3 set {u}a 1 3 set {v}a 1") == -2);
    CHECK(slot_of("craft.exec 0 1 2 dbsize") == -1);
    /* Malformed lists fold what they can and never read past the arguments. */
    CHECK(slot_of("craft.exec x 1 2 get a") == -1);
    CHECK(slot_of("craft.exec 5 {u}w 1") == slot_of("get {u}w"));
    CHECK(slot_of("craft.exec 5 {u}w") == -1); /* a watch without its digest */
    CHECK(slot_of("craft.exec 0 3 9 get a") == -1);
    CHECK(slot_of("craft.exec 0 1 2 nosuch a") == -1);
}

int main(void)
{
    run_case("table_shape", table_shape);
    run_case("arity_and_texts", arity_and_texts);
    run_case("writes", writes);
    run_case("reads", reads);
    run_case("transactions", transactions);
    run_case("info_sections", info_sections);
    run_case("command_slots", command_slots);
    return unit_finish();
}
