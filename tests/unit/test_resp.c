/* RESP2 parser and encoder (src/kv/resp.c): multibulk and inline commands, every protocol
 * error text, limits (and that announced sizes allocate nothing), pipelining, fragmentation
 * at every byte (with the buffer moving between calls), inline quoting, allocation
 * failures, exact encoder bytes, and random round trips through the encoder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/prng.h"
#include "kv/resp.h"
#include "unit.h"

#define S(lit) (lit), (sizeof(lit) - 1) /* a literal as (bytes, length), NULs included */

/* ---- helpers ------------------------------------------------------------------------ */

static bool arg_is(const struct craft_resp_arg *a, const char *bytes, size_t len)
{
    return a->len == len && (len == 0 || memcmp(a->data, bytes, len) == 0);
}

/* Parses buf as one whole command with default limits; checks it is exactly one command
 * and the argv matches the n expected NUL-terminated words. */
static bool parses_to(const char *buf, size_t len, size_t n, const char *const *words)
{
    struct craft_resp_parser p;
    struct craft_resp_cmd c;
    craft_resp_parser_init(&p, NULL);
    int rc = craft_resp_parse(&p, buf, len, &c);
    bool ok = rc == CRAFT_OK && c.consumed == len && c.argc == n && c.error == NULL;
    for (size_t i = 0; ok && i < n; i++) {
        ok = arg_is(&c.argv[i], words[i], strlen(words[i]));
    }
    if (!ok) {
        printf("  parses_to: rc %d consumed %zu/%zu argc %zu/%zu error %s\n", rc, c.consumed, len,
               c.argc, n, c.error != NULL ? c.error : "-");
    }
    craft_resp_parser_free(&p);
    return ok;
}

/* Parses buf whole with limits (NULL: defaults); checks the error code and exact text. */
static bool fails_with(const struct craft_resp_limits *lim, const char *buf, size_t len, int want,
                       const char *text)
{
    struct craft_resp_parser p;
    struct craft_resp_cmd c;
    craft_resp_parser_init(&p, lim);
    int rc = craft_resp_parse(&p, buf, len, &c);
    bool ok = rc == want && c.error != NULL && strcmp(c.error, text) == 0 && c.consumed == 0 &&
              c.argc == 0;
    if (!ok) {
        printf("  fails_with: rc %d (want %d) error '%s' (want '%s')\n", rc, want,
               c.error != NULL ? c.error : "(null)", text);
    }
    craft_resp_parser_free(&p);
    return ok;
}

static bool needs_more(const char *buf, size_t len)
{
    struct craft_resp_parser p;
    struct craft_resp_cmd c;
    craft_resp_parser_init(&p, NULL);
    int rc = craft_resp_parse(&p, buf, len, &c);
    craft_resp_parser_free(&p);
    return rc == CRAFT_RESP_NEED_MORE && c.consumed == 0 && c.error == NULL && c.want > len;
}

/* A connection as a server holds it: an input buffer that grows by appending and shrinks by
 * dropping consumed bytes. Every append copies into a fresh allocation, so the parser must
 * cope with the bytes moving between calls. Each command (or the error that ends the
 * stream) is written to a transcript in RESP form, which tests compare as bytes. */
struct conn {
    struct craft_resp_parser p;
    char *in;
    size_t in_len;
    struct craft_resp_buf transcript;
    bool closed;
    size_t n_cmds;
};

static void conn_init(struct conn *c, const struct craft_resp_limits *lim)
{
    memset(c, 0, sizeof(*c));
    craft_resp_parser_init(&c->p, lim);
}

static void conn_free(struct conn *c)
{
    craft_resp_parser_free(&c->p);
    free(c->in);
    craft_resp_buf_free(&c->transcript);
}

static void record(struct craft_resp_buf *t, int rc, const struct craft_resp_cmd *cmd)
{
    if (rc == CRAFT_OK) {
        CHECK(craft_resp_append_simple(t, cmd->is_inline ? "inline" : "multibulk") == CRAFT_OK);
        CHECK(craft_resp_append_command(t, cmd->argc, cmd->argv) == CRAFT_OK);
    } else {
        CHECK(craft_resp_append_int(t, rc) == CRAFT_OK);
        CHECK(craft_resp_append_error(t, cmd->error) == CRAFT_OK);
    }
}

/* Parses every complete command now in c->in. */
static void conn_drain(struct conn *c)
{
    while (!c->closed) {
        struct craft_resp_cmd cmd;
        int rc = craft_resp_parse(&c->p, c->in, c->in_len, &cmd);
        if (rc == CRAFT_RESP_NEED_MORE) {
            CHECK(cmd.consumed == 0 && cmd.want > c->in_len && cmd.error == NULL);
            return;
        }
        record(&c->transcript, rc, &cmd);
        if (rc != CRAFT_OK) {
            CHECK(cmd.consumed == 0 && cmd.error != NULL);
            CHECK(strchr(cmd.error, '\r') == NULL && strchr(cmd.error, '\n') == NULL);
            c->closed = true;
            return;
        }
        CHECK(cmd.consumed > 0 && cmd.consumed <= c->in_len);
        for (size_t i = 0; i < cmd.argc; i++) {
            const struct craft_resp_arg *a = &cmd.argv[i];
            if (!cmd.is_inline) { /* multibulk argv points into the input */
                CHECK(a->data >= c->in && a->data + a->len <= c->in + cmd.consumed);
            }
        }
        c->n_cmds++;
        memmove(c->in, c->in + cmd.consumed, c->in_len - cmd.consumed);
        c->in_len -= cmd.consumed;
    }
}

static void conn_feed(struct conn *c, const char *bytes, size_t n)
{
    char *in = malloc(c->in_len + n + 1);
    CHECK(in != NULL);
    if (in == NULL) {
        return;
    }
    if (c->in_len != 0) {
        memcpy(in, c->in, c->in_len);
    }
    memcpy(in + c->in_len, bytes, n);
    if (c->in != NULL) { /* stale pointers into the old copy would read junk */
        memset(c->in, 0xee, c->in_len);
        free(c->in);
    }
    c->in = in;
    c->in_len += n;
    conn_drain(c);
}

/* The transcript of stream fed in pieces of the given sizes (cycled; 0 = all at once). */
static void transcript_of(const char *stream, size_t len, const struct craft_resp_limits *lim,
                          const size_t *pieces, size_t n_pieces, struct craft_resp_buf *out)
{
    struct conn c;
    conn_init(&c, lim);
    size_t off = 0, k = 0;
    while (off < len && !c.closed) {
        size_t n = n_pieces == 0 ? len : pieces[k++ % n_pieces];
        if (n > len - off) {
            n = len - off;
        }
        conn_feed(&c, stream + off, n);
        off += n;
    }
    *out = c.transcript;
    c.transcript = (struct craft_resp_buf){0};
    conn_free(&c);
}

static bool same_bytes(const struct craft_resp_buf *a, const struct craft_resp_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* ---- multibulk ---------------------------------------------------------------------- */

static void test_multibulk_basic(void)
{
    static const char req[] = "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$5\r\nhello\r\n";
    struct craft_resp_parser p;
    struct craft_resp_cmd c;
    craft_resp_parser_init(&p, NULL);
    CHECK(craft_resp_parse(&p, S(req), &c) == CRAFT_OK);
    CHECK(c.consumed == sizeof(req) - 1 && c.argc == 3 && !c.is_inline && c.error == NULL);
    CHECK(arg_is(&c.argv[0], S("SET")) && arg_is(&c.argv[1], S("a")));
    CHECK(arg_is(&c.argv[2], S("hello")));
    /* argv points into the input, right after each length line */
    CHECK(c.argv[0].data == req + 8 && c.argv[1].data == req + 17 && c.argv[2].data == req + 24);
    craft_resp_parser_free(&p);

    /* binary-safe payloads: CR, LF, NUL, '$' and '*' inside */
    CHECK(parses_to(S("*2\r\n$4\r\na\r\nb\r\n$0\r\n\r\n"), 2, (const char *[]){"a\r\nb", ""}));
    static const char bin[] = "*1\r\n$3\r\n\0*$\r\n";
    craft_resp_parser_init(&p, NULL);
    CHECK(craft_resp_parse(&p, S(bin), &c) == CRAFT_OK && c.argc == 1);
    CHECK(arg_is(&c.argv[0], S("\0*$")));
    craft_resp_parser_free(&p);

    /* "*0" and "*-1" (any count <= 0) are commands of no argument: Redis ignores them */
    CHECK(parses_to(S("*0\r\n"), 0, NULL));
    CHECK(parses_to(S("*-1\r\n"), 0, NULL));
    CHECK(parses_to(S("*-9223372036854775808\r\n"), 0, NULL));
    craft_resp_parser_init(&p, NULL);
    CHECK(craft_resp_parse(&p, S("*0\r\n"), &c) == CRAFT_OK && c.argv == NULL && c.argc == 0);
    craft_resp_parser_free(&p);
}

static void test_multibulk_need_more(void)
{
    static const char req[] = "*2\r\n$4\r\nPING\r\n$10\r\n0123456789\r\n";
    for (size_t n = 0; n < sizeof(req) - 1; n++) {
        CHECK(needs_more(req, n));
    }
    /* the hint: inside a bulk it is the end of that bulk */
    struct craft_resp_parser p;
    struct craft_resp_cmd c;
    craft_resp_parser_init(&p, NULL);
    CHECK(craft_resp_parse(&p, req, 20, &c) == CRAFT_RESP_NEED_MORE);
    CHECK(c.want == sizeof(req) - 1);
    craft_resp_parser_free(&p);
    /* a fresh parser, header only */
    craft_resp_parser_init(&p, NULL);
    CHECK(craft_resp_parse(&p, req, 3, &c) == CRAFT_RESP_NEED_MORE && c.want == 4);
    CHECK(craft_resp_parse(&p, NULL, 0, &c) == CRAFT_RESP_NEED_MORE && c.want == 1);
    craft_resp_parser_free(&p);
}

static void test_multibulk_errors(void)
{
    const char *mb = "ERR Protocol error: invalid multibulk length";
    const char *bl = "ERR Protocol error: invalid bulk length";
    const int M = CRAFT_EMALFORMED;
    CHECK(fails_with(NULL, S("*x\r\n"), M, mb));
    CHECK(fails_with(NULL, S("*\r\n"), M, mb));
    CHECK(fails_with(NULL, S("*01\r\n"), M, mb));
    CHECK(fails_with(NULL, S("*+1\r\n"), M, mb));
    CHECK(fails_with(NULL, S("*-0\r\n"), M, mb));
    CHECK(fails_with(NULL, S("*1 \r\n"), M, mb));
    CHECK(fails_with(NULL, S("*1\rx"), M, mb));                    /* CR without LF */
    CHECK(fails_with(NULL, S("*1\n$1\r\na\r\n"), M, mb));          /* LF without CR */
    CHECK(fails_with(NULL, S("*9223372036854775808\r\n"), M, mb)); /* overflow */
    CHECK(fails_with(NULL, S("*123456789012345678901"), M, mb));   /* 21 chars, no CR yet */
    CHECK(needs_more(S("*12345678901234567890")));                 /* 20 chars: maybe valid */
    CHECK(fails_with(NULL, S("*65537\r\n"), CRAFT_ETOOBIG, mb));
    CHECK(fails_with(NULL, S("*2147483648\r\n"), CRAFT_ETOOBIG, mb));

    CHECK(fails_with(NULL, S("*1\r\nx"), M, "ERR Protocol error: expected '$', got 'x'"));
    CHECK(fails_with(NULL, S("*2\r\n$1\r\na\r\n:1\r\n"), M,
                     "ERR Protocol error: expected '$', got ':'"));
    CHECK(fails_with(NULL, S("*1\r\n\x01"), M, "ERR Protocol error: expected '$', got '\\x01'"));
    CHECK(fails_with(NULL, S("*1\r\n\r\n"), M, "ERR Protocol error: expected '$', got '\\x0d'"));
    CHECK(fails_with(NULL, S("*1\r\n\n"), M, "ERR Protocol error: expected '$', got '\\x0a'"));
    CHECK(fails_with(NULL, S("*1\r\n\xff"), M, "ERR Protocol error: expected '$', got '\\xff'"));

    CHECK(fails_with(NULL, S("*1\r\n$x\r\n"), M, bl));
    CHECK(fails_with(NULL, S("*1\r\n$\r\n"), M, bl));
    CHECK(fails_with(NULL, S("*1\r\n$-1\r\n"), M, bl));
    CHECK(fails_with(NULL, S("*1\r\n$01\r\n"), M, bl));
    CHECK(fails_with(NULL, S("*1\r\n$1\rx"), M, bl));
    CHECK(fails_with(NULL, S("*1\r\n$123456789012345678901"), M, bl));
    CHECK(fails_with(NULL, S("*1\r\n$16777217\r\n"), CRAFT_ETOOBIG, bl));
    CHECK(fails_with(NULL, S("*1\r\n$99999999999999999999\r\n"), M, bl));

    const char *crlf = "ERR Protocol error: expected CRLF after bulk data";
    CHECK(fails_with(NULL, S("*1\r\n$1\r\nab\r\n"), M, crlf));
    CHECK(needs_more(S("*1\r\n$1\r\na")));
    CHECK(needs_more(S("*1\r\n$1\r\na\r")));
    CHECK(fails_with(NULL, S("*1\r\n$1\r\na\rx"), M, crlf));
    CHECK(fails_with(NULL, S("*1\r\n$1\r\na\n\r"), M, crlf));
    CHECK(fails_with(NULL, S("*1\r\n$1\r\nax"), M, crlf)); /* known as soon as 'x' is in */

    /* the largest bulk is fine */
    struct craft_resp_limits lim = {.bulk_bytes_max = 5};
    CHECK(fails_with(&lim, S("*1\r\n$6\r\n"), CRAFT_ETOOBIG, bl));
    struct craft_resp_parser p;
    struct craft_resp_cmd c;
    craft_resp_parser_init(&p, &lim);
    CHECK(craft_resp_parse(&p, S("*1\r\n$5\r\nabcde\r\n"), &c) == CRAFT_OK && c.argc == 1);
    craft_resp_parser_free(&p);
}

static void test_request_limit(void)
{
    const char *big = "ERR Protocol error: too big request";
    /* "*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n" is 22 bytes */
    struct craft_resp_limits lim = {.request_bytes_max = 22};
    struct craft_resp_parser p;
    struct craft_resp_cmd c;
    craft_resp_parser_init(&p, &lim);
    CHECK(craft_resp_parse(&p, S("*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n"), &c) == CRAFT_OK);
    CHECK(c.consumed == 22 && c.argc == 2);
    craft_resp_parser_free(&p);
    lim.request_bytes_max = 21;
    /* refused as soon as the second length line says the command cannot fit */
    CHECK(fails_with(&lim, S("*2\r\n$3\r\nabc\r\n$3\r\n"), CRAFT_ETOOBIG, big));
    lim.request_bytes_max = 10;
    CHECK(fails_with(&lim, S("*1\r\n$3\r\n"), CRAFT_ETOOBIG, big));
    /* default: 32 MiB; two 16 MiB bulks do not fit with their headers */
    CHECK(needs_more(S("*2\r\n$16777216\r\n")));
    static const char two[] = "*2\r\n$16777216\r\n";
    char *buf = malloc(sizeof(two) - 1 + 16777216 + 2 + 14);
    CHECK(buf != NULL);
    if (buf != NULL) {
        size_t n = 0;
        memcpy(buf, two, sizeof(two) - 1);
        n += sizeof(two) - 1;
        memset(buf + n, 'v', 16777216);
        n += 16777216;
        memcpy(buf + n, "\r\n$16777216\r\n", 13);
        n += 13;
        CHECK(fails_with(NULL, buf, n, CRAFT_ETOOBIG, big));
        free(buf);
    }
}

/* An announced argc or bulk length allocates nothing: memory follows received bytes. */
static size_t alloc_bytes_total;
static size_t alloc_calls;
static size_t alloc_fail_at; /* fail the Nth call (1-based); 0: never */

static void *counting_realloc(void *ptr, size_t size)
{
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    alloc_calls++;
    if (alloc_fail_at != 0 && alloc_calls == alloc_fail_at) {
        return NULL;
    }
    alloc_bytes_total += size;
    return realloc(ptr, size);
}

static void test_no_allocation_up_front(void)
{
    struct craft_resp_parser p;
    struct craft_resp_cmd c;
    craft_resp_parser_init(&p, NULL);
    p.realloc_fn = counting_realloc;
    alloc_bytes_total = alloc_calls = alloc_fail_at = 0;
    CHECK(craft_resp_parse(&p, S("*65536\r\n"), &c) == CRAFT_RESP_NEED_MORE);
    CHECK(alloc_calls == 0);
    CHECK(craft_resp_parse(&p, S("*65536\r\n$16777216\r\n"), &c) == CRAFT_RESP_NEED_MORE);
    CHECK(alloc_bytes_total <= 1024); /* room for a few arguments, not 65536 nor 16 MiB */
    CHECK(c.want == 19 + 16777216 + 2);
    craft_resp_parser_free(&p);

    /* many arguments: allocation grows with them and is released after a large command */
    size_t argc = 5000;
    struct craft_resp_buf req = {0};
    CHECK(craft_resp_append_array(&req, argc) == CRAFT_OK);
    for (size_t i = 0; i < argc; i++) {
        CHECK(craft_resp_append_bulk(&req, "k", 1) == CRAFT_OK);
    }
    CHECK(craft_resp_append_command(&req, 1, &(struct craft_resp_arg){"PING", 4}) == CRAFT_OK);
    craft_resp_parser_init(&p, NULL);
    CHECK(craft_resp_parse(&p, req.data, req.len, &c) == CRAFT_OK && c.argc == argc);
    CHECK(c.argv[argc - 1].data[0] == 'k');
    CHECK(p.args_cap >= argc && p.args_cap < 2 * argc);
    size_t off = c.consumed;
    CHECK(craft_resp_parse(&p, req.data + off, req.len - off, &c) == CRAFT_OK && c.argc == 1);
    CHECK(p.args_cap <= 1024); /* the big arrays were given back */
    craft_resp_parser_free(&p);
    craft_resp_buf_free(&req);
}

static void test_argc_limit(void)
{
    struct craft_resp_limits lim = {.argc_max = 3};
    CHECK(fails_with(&lim, S("*4\r\n"), CRAFT_ETOOBIG,
                     "ERR Protocol error: invalid multibulk length"));
    CHECK(fails_with(&lim, S("a b c d\r\n"), CRAFT_ETOOBIG,
                     "ERR Protocol error: too many arguments in inline request"));
    struct craft_resp_parser p;
    struct craft_resp_cmd c;
    craft_resp_parser_init(&p, &lim);
    CHECK(craft_resp_parse(&p, S("a b c  \r\n"), &c) == CRAFT_OK && c.argc == 3);
    CHECK(craft_resp_parse(&p, S("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"), &c) == CRAFT_OK);
    CHECK(c.argc == 3);
    craft_resp_parser_free(&p);
    /* defaults */
    craft_resp_parser_init(&p, NULL);
    CHECK(p.limits.argc_max == 65536 && p.limits.bulk_bytes_max == 16u << 20);
    CHECK(p.limits.inline_bytes_max == 64u << 10 && p.limits.request_bytes_max == 32u << 20);
    craft_resp_parser_free(&p);
}

/* ---- inline ------------------------------------------------------------------------- */

static void test_inline_basic(void)
{
    CHECK(parses_to(S("PING\r\n"), 1, (const char *[]){"PING"}));
    CHECK(parses_to(S("PING\n"), 1, (const char *[]){"PING"}));
    CHECK(parses_to(S("SET a b\n"), 3, (const char *[]){"SET", "a", "b"}));
    CHECK(parses_to(S("  SET \t a\t\tb   \r\n"), 3, (const char *[]){"SET", "a", "b"}));
    CHECK(parses_to(S("\r\n"), 0, NULL));
    CHECK(parses_to(S("\n"), 0, NULL));
    CHECK(parses_to(S(" \t \v\f \r\n"), 0, NULL));
    /* a CR inside the line ends a word; \v and \f separate words only between them */
    CHECK(parses_to(S("a\rb\r\n"), 2, (const char *[]){"a", "b"}));
    CHECK(parses_to(S("a\vb \fc\n"), 2, (const char *[]){"a\vb", "c"}));
    CHECK(parses_to(S("get $1 *2\n"), 3, (const char *[]){"get", "$1", "*2"}));
    /* NUL is an ordinary byte (Redis would end the line there) */
    static const char nul[] = "a\0b c\n";
    struct craft_resp_parser p;
    struct craft_resp_cmd c;
    craft_resp_parser_init(&p, NULL);
    CHECK(craft_resp_parse(&p, S(nul), &c) == CRAFT_OK && c.argc == 2 && c.is_inline);
    CHECK(arg_is(&c.argv[0], S("a\0b")) && arg_is(&c.argv[1], S("c")));
    /* words live in the parser, not in the input */
    CHECK(c.argv[0].data < nul || c.argv[0].data >= nul + sizeof(nul));
    craft_resp_parser_free(&p);
    for (size_t n = 0; n < 9; n++) {
        CHECK(needs_more("SET a b\r\n", n));
    }
}

static void test_inline_quoting(void)
{
    CHECK(parses_to(S("SET \"a b\" 'c d'\r\n"), 3, (const char *[]){"SET", "a b", "c d"}));
    CHECK(parses_to(S("\"\" ''\n"), 2, (const char *[]){"", ""}));
    CHECK(parses_to(S("\"\\n\\r\\t\\b\\a\\\"\\\\\\q\"\n"), 1, (const char *[]){"\n\r\t\b\a\"\\q"}));
    static const char hex[] = "\"\\x41\\x7a\\xfF\\x00\"\n";
    struct craft_resp_parser p;
    struct craft_resp_cmd c;
    craft_resp_parser_init(&p, NULL);
    CHECK(craft_resp_parse(&p, S(hex), &c) == CRAFT_OK && c.argc == 1);
    CHECK(arg_is(&c.argv[0], S("Az\xff\0")));
    craft_resp_parser_free(&p);
    /* \x without two hex digits is the letter x */
    CHECK(parses_to(S("\"\\x4\" \"\\xg1\" \"\\x\"\n"), 3, (const char *[]){"x4", "xg1", "x"}));
    /* single quotes: only \' is an escape */
    CHECK(parses_to(S("'it\\'s' 'a\\nb' '\"'\n"), 3, (const char *[]){"it's", "a\\nb", "\""}));
    /* a quote may open inside a word; the closing one must end it */
    CHECK(parses_to(S("ab\"c d\" e'f g'\n"), 2, (const char *[]){"abc d", "ef g"}));
    CHECK(parses_to(S("\"a\"\t'b'\v\"c\"\n"), 3, (const char *[]){"a", "b", "c"}));
    /* quoted CR and LF come from escapes only: a raw CR inside quotes is kept */
    CHECK(parses_to(S("\"a\rb\"\r\n"), 1, (const char *[]){"a\rb"}));

    const char *uq = "ERR Protocol error: unbalanced quotes in request";
    const int M = CRAFT_EMALFORMED;
    CHECK(fails_with(NULL, S("SET \"a b\r\n"), M, uq));
    CHECK(fails_with(NULL, S("SET 'a b\n"), M, uq));
    CHECK(fails_with(NULL, S("\"a\"b\n"), M, uq));
    CHECK(fails_with(NULL, S("'a'b\n"), M, uq));
    CHECK(fails_with(NULL, S("\"abc\\\"\n"), M, uq)); /* \" escapes: still open */
    CHECK(fails_with(NULL, S("\"abc\\\n"), M, uq));   /* a lone trailing backslash */
    CHECK(fails_with(NULL, S("'abc\\'\n"), M, uq));
    CHECK(fails_with(NULL, S("\"\n"), M, uq));
    CHECK(fails_with(NULL, S("ok \"a\"\"b\"\n"), M, uq));
}

static void test_inline_limit(void)
{
    const char *big = "ERR Protocol error: too big inline request";
    size_t max = 64 * 1024;
    char *buf = malloc(max + 8);
    CHECK(buf != NULL);
    if (buf == NULL) {
        return;
    }
    memset(buf, 'a', max + 8);
    /* exactly max bytes, with either terminator */
    memcpy(buf + max, "\r\n", 2);
    struct craft_resp_parser p;
    struct craft_resp_cmd c;
    craft_resp_parser_init(&p, NULL);
    CHECK(craft_resp_parse(&p, buf, max + 2, &c) == CRAFT_OK && c.argc == 1);
    CHECK(c.argv[0].len == max && c.consumed == max + 2);
    buf[max] = '\n';
    CHECK(craft_resp_parse(&p, buf, max + 1, &c) == CRAFT_OK && c.argv[0].len == max);
    /* max + 1 bytes without a newline may still end in "\r" + "\n" */
    buf[max] = '\r';
    CHECK(craft_resp_parse(&p, buf, max + 1, &c) == CRAFT_RESP_NEED_MORE);
    craft_resp_parser_reset(&p);
    buf[max] = 'a';
    CHECK(craft_resp_parse(&p, buf, max + 1, &c) == CRAFT_RESP_NEED_MORE);
    craft_resp_parser_free(&p);
    /* max + 1 bytes of line */
    buf[max + 1] = '\n';
    CHECK(fails_with(NULL, buf, max + 2, CRAFT_ETOOBIG, big));
    buf[max + 1] = '\r';
    buf[max + 2] = '\n';
    CHECK(fails_with(NULL, buf, max + 3, CRAFT_ETOOBIG, big));
    /* no newline in max + 2 bytes: refused without waiting */
    buf[max + 1] = 'a';
    CHECK(fails_with(NULL, buf, max + 2, CRAFT_ETOOBIG, big));
    free(buf);
    /* a small limit, to see the boundary exactly */
    struct craft_resp_limits lim = {.inline_bytes_max = 4};
    CHECK(fails_with(&lim, S("abcde\n"), CRAFT_ETOOBIG, big));
    CHECK(fails_with(&lim, S("abcdef"), CRAFT_ETOOBIG, big));
    craft_resp_parser_init(&p, &lim);
    CHECK(craft_resp_parse(&p, S("abcd\r\n"), &c) == CRAFT_OK);
    CHECK(craft_resp_parse(&p, S("abcd\r"), &c) == CRAFT_RESP_NEED_MORE);
    craft_resp_parser_reset(&p);
    CHECK(craft_resp_parse(&p, S("ab\"\"\n"), &c) == CRAFT_OK && c.argc == 1);
    craft_resp_parser_free(&p);
}

/* ---- streams: pipelining and fragmentation ------------------------------------------ */

/* Commands of every kind back to back, as a pipelining client or a telnet user sends. */
static const char pipeline[] = "*1\r\n$4\r\nPING\r\n"
                               "PING\r\n"
                               "*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$0\r\n\r\n"
                               "\r\n"
                               "*0\r\n"
                               "set \"a\\x00b\" 'it\\'s' x\n"
                               "*-1\r\n"
                               "*2\r\n$3\r\nGET\r\n$3\r\n$*\n\r\n"
                               "   \n"
                               "*1\r\n$12\r\n0123456789ab\r\n"
                               "ECHO \"\\r\\n\"\r\n";

#define A(lit)                                                                                     \
    {                                                                                              \
        (lit), sizeof(lit) - 1                                                                     \
    }

static void test_pipeline_whole(void)
{
    static const struct {
        bool is_inline;
        size_t argc;
        struct craft_resp_arg argv[4];
    } want[] = {
        {false, 1, {A("PING")}},
        {true, 1, {A("PING")}},
        {false, 3, {A("SET"), A("k\r\n"), A("")}},
        {true, 0, {{NULL, 0}}},
        {false, 0, {{NULL, 0}}},
        {true, 4, {A("set"), A("a\0b"), A("it's"), A("x")}},
        {false, 0, {{NULL, 0}}},
        {false, 2, {A("GET"), A("$*\n")}},
        {true, 0, {{NULL, 0}}},
        {false, 1, {A("0123456789ab")}},
        {true, 2, {A("ECHO"), A("\r\n")}},
    };
    const size_t n_want = sizeof(want) / sizeof(want[0]);
    struct craft_resp_parser p;
    struct craft_resp_cmd c;
    craft_resp_parser_init(&p, NULL);
    const char *s = pipeline;
    size_t left = sizeof(pipeline) - 1, n = 0;
    while (left > 0 && n < n_want) {
        int rc = craft_resp_parse(&p, s, left, &c);
        CHECK(rc == CRAFT_OK);
        if (rc != CRAFT_OK) {
            break;
        }
        CHECK(c.is_inline == want[n].is_inline && c.argc == want[n].argc);
        for (size_t i = 0; i < c.argc && i < want[n].argc; i++) {
            CHECK(arg_is(&c.argv[i], want[n].argv[i].data, want[n].argv[i].len));
        }
        n++;
        s += c.consumed;
        left -= c.consumed;
    }
    CHECK(n == n_want && left == 0);
    craft_resp_parser_free(&p);
}

/* Feeding a stream in any pieces gives the same commands as feeding it whole. */
static void check_fragmentation(const char *stream, size_t len, const struct craft_resp_limits *lim)
{
    struct craft_resp_buf whole = {0}, got = {0};
    transcript_of(stream, len, lim, NULL, 0, &whole);
    size_t one = 1;
    transcript_of(stream, len, lim, &one, 1, &got); /* byte by byte */
    CHECK(same_bytes(&whole, &got));
    craft_resp_buf_free(&got);
    for (size_t cut = 1; cut < len; cut++) { /* two pieces, cut at every byte */
        size_t pieces[2] = {cut, len};
        transcript_of(stream, len, lim, pieces, 2, &got);
        CHECK(same_bytes(&whole, &got));
        craft_resp_buf_free(&got);
    }
    struct craft_prng r;
    craft_prng_seed(&r, cur_seed);
    for (int round = 0; round < 50; round++) { /* random pieces */
        size_t pieces[8];
        for (size_t i = 0; i < 8; i++) {
            pieces[i] = (size_t)craft_prng_range(&r, 1, 12);
        }
        transcript_of(stream, len, lim, pieces, 8, &got);
        CHECK(same_bytes(&whole, &got));
        craft_resp_buf_free(&got);
    }
    craft_resp_buf_free(&whole);
}

static void test_fragmentation_pipeline(void)
{
    cur_seed = 7;
    check_fragmentation(S(pipeline), NULL);
    struct craft_resp_buf whole = {0};
    transcript_of(S(pipeline), NULL, NULL, 0, &whole);
    CHECK(whole.len > 0 && memmem(whole.data, whole.len, "-ERR", 4) == NULL);
    craft_resp_buf_free(&whole);
}

/* Streams that end in each protocol error: split anywhere, the error is the same and no
 * command after it is ever delivered. */
static void test_fragmentation_errors(void)
{
    static const char *const streams[] = {
        "PING\r\n*1\r\n$1\r\na\r\n*x\r\nPING\r\n",
        "*1\r\n$4\r\nPING\r\n*2\r\n$1\r\na\r\n%1\r\n\r\nPING\r\n",
        "*1\r\n$4\r\nPING\r\n*1\r\n$-5\r\n",
        "*1\r\n$4\r\nPING\r\n*1\r\n$2\r\nabc\r\n",
        "GET a\r\nSET 'a\r\nPING\r\n",
        "*1\r\n$1\r\na\r\n*70000\r\n",
        "*1\r\n$1\r\na\r\n*1\r\n$1234567890123456789012345\r\n",
    };
    cur_seed = 11;
    for (size_t i = 0; i < sizeof(streams) / sizeof(streams[0]); i++) {
        check_fragmentation(streams[i], strlen(streams[i]), NULL);
        struct craft_resp_buf t = {0};
        transcript_of(streams[i], strlen(streams[i]), NULL, NULL, 0, &t);
        CHECK(t.len > 0 && t.data[t.len - 1] == '\n');
        /* the transcript ends in the error: "-ERR Protocol error: ...\r\n" */
        CHECK(memmem(t.data, t.len, "-ERR Protocol error: ", 21) != NULL);
        craft_resp_buf_free(&t);
    }
    struct craft_resp_limits lim = {.inline_bytes_max = 6, .request_bytes_max = 30};
    static const char limited[] = "PING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nabcdefg\r\n";
    check_fragmentation(S(limited), &lim);
    static const char limited2[] = "PING\r\n*2\r\n$3\r\nGET\r\n$9\r\nk12345678\r\n";
    check_fragmentation(S(limited2), &lim);
}

/* Random commands (binary arguments, some huge counts of tiny ones) through the encoder,
 * then parsed back in random pieces: the same argv in the same order. */
static void test_roundtrip_random(void)
{
    static const uint64_t seeds[] = {1, 2, 3, 42, 4242};
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        cur_seed = seeds[s];
        struct craft_prng r;
        craft_prng_seed(&r, cur_seed);
        struct craft_resp_buf stream = {0}, expect = {0};
        size_t n_cmds = 40;
        for (size_t k = 0; k < n_cmds; k++) {
            size_t argc = (size_t)craft_prng_range(&r, 0, craft_prng_chance(&r, 100) ? 300 : 6);
            struct craft_resp_arg *argv = calloc(argc + 1, sizeof(*argv));
            char *bytes = malloc(argc * 40 + 1);
            CHECK(argv != NULL && bytes != NULL);
            if (argv == NULL || bytes == NULL) {
                free(argv);
                free(bytes);
                break;
            }
            size_t used = 0;
            for (size_t i = 0; i < argc; i++) {
                size_t len = (size_t)craft_prng_range(&r, 0, 40);
                for (size_t j = 0; j < len; j++) {
                    /* bias towards the bytes that matter to the framing */
                    static const char special[] = "\r\n$*\0 \"'";
                    bytes[used + j] = craft_prng_chance(&r, 300)
                                          ? special[craft_prng_range(&r, 0, 8)]
                                          : (char)craft_prng_range(&r, 0, 256);
                }
                argv[i].data = bytes + used;
                argv[i].len = len;
                used += len;
            }
            CHECK(craft_resp_append_command(&stream, argc, argv) == CRAFT_OK);
            struct craft_resp_cmd c = {.argc = argc, .argv = argv};
            record(&expect, CRAFT_OK, &c);
            free(argv);
            free(bytes);
        }
        struct craft_resp_buf got = {0};
        size_t pieces[6];
        for (size_t i = 0; i < 6; i++) {
            pieces[i] = (size_t)craft_prng_range(&r, 1, 200);
        }
        transcript_of(stream.data, stream.len, NULL, pieces, 6, &got);
        CHECK(same_bytes(&expect, &got));
        craft_resp_buf_free(&got);
        transcript_of(stream.data, stream.len, NULL, NULL, 0, &got);
        CHECK(same_bytes(&expect, &got));
        craft_resp_buf_free(&got);
        craft_resp_buf_free(&stream);
        craft_resp_buf_free(&expect);
    }
}

/* A large bulk fed in 4 KiB reads: each call makes progress without rescanning, and the
 * want hint points to the end of the bulk. */
static void test_large_bulk_incremental(void)
{
    size_t big = 1u << 20;
    struct craft_resp_buf req = {0};
    char *payload = malloc(big);
    CHECK(payload != NULL);
    if (payload == NULL) {
        return;
    }
    for (size_t i = 0; i < big; i++) {
        payload[i] = (char)(i * 31u);
    }
    struct craft_resp_arg argv[3] = {{"SET", 3}, {"key", 3}, {payload, big}};
    CHECK(craft_resp_append_command(&req, 3, argv) == CRAFT_OK);
    struct craft_resp_parser p;
    struct craft_resp_cmd c;
    craft_resp_parser_init(&p, NULL);
    size_t have = 0;
    int rc = CRAFT_RESP_NEED_MORE;
    while (rc == CRAFT_RESP_NEED_MORE && have < req.len) {
        have += 4096;
        if (have > req.len) {
            have = req.len;
        }
        rc = craft_resp_parse(&p, req.data, have, &c);
        if (rc == CRAFT_RESP_NEED_MORE && have > 40) {
            CHECK(c.want == req.len);
        }
    }
    CHECK(rc == CRAFT_OK && c.argc == 3 && c.consumed == req.len);
    CHECK(rc == CRAFT_OK && arg_is(&c.argv[2], payload, big));
    craft_resp_parser_free(&p);
    craft_resp_buf_free(&req);
    free(payload);
}

static void test_reset(void)
{
    struct craft_resp_parser p;
    struct craft_resp_cmd c;
    craft_resp_parser_init(&p, NULL);
    CHECK(craft_resp_parse(&p, S("*2\r\n$3\r\nGET\r\n"), &c) == CRAFT_RESP_NEED_MORE);
    craft_resp_parser_reset(&p); /* the connection threw those bytes away */
    CHECK(craft_resp_parse(&p, S("PING\r\n"), &c) == CRAFT_OK && c.argc == 1 && c.is_inline);
    /* after an error the parser starts over too */
    CHECK(craft_resp_parse(&p, S("*x\r\n"), &c) == CRAFT_EMALFORMED);
    CHECK(craft_resp_parse(&p, S("*1\r\n$1\r\na\r\n"), &c) == CRAFT_OK && c.argc == 1);
    craft_resp_parser_free(&p);
    craft_resp_parser_free(&p); /* twice is harmless */
}

/* ---- allocation failures ------------------------------------------------------------ */

static void test_parser_alloc_failures(void)
{
    static const char req[] = "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\nSET 'a b' c\r\n";
    for (size_t fail = 1; fail < 8; fail++) {
        struct craft_resp_parser p;
        struct craft_resp_cmd c;
        craft_resp_parser_init(&p, NULL);
        p.realloc_fn = counting_realloc;
        alloc_calls = 0;
        alloc_fail_at = fail;
        size_t off = 0, n_ok = 0;
        int guard = 0;
        while (off < sizeof(req) - 1 && guard++ < 10) {
            int rc = craft_resp_parse(&p, req + off, sizeof(req) - 1 - off, &c);
            if (rc == CRAFT_ENOMEM) {
                CHECK(c.consumed == 0 && c.error != NULL &&
                      strcmp(c.error, "ERR out of memory") == 0);
                continue; /* the next call allocates again and succeeds */
            }
            CHECK(rc == CRAFT_OK);
            if (rc != CRAFT_OK) {
                break;
            }
            CHECK(c.argc == 3 && arg_is(&c.argv[0], S("SET")));
            off += c.consumed;
            n_ok++;
        }
        CHECK(n_ok == 2);
        craft_resp_parser_free(&p);
    }
    alloc_fail_at = 0;
}

static void test_encoder_alloc_failures(void)
{
    struct craft_resp_buf b = {.realloc_fn = counting_realloc};
    alloc_calls = 0;
    alloc_fail_at = 1;
    CHECK(craft_resp_append_simple(&b, "OK") == CRAFT_ENOMEM && b.len == 0 && b.data == NULL);
    CHECK(craft_resp_append_simple(&b, "OK") == CRAFT_OK && b.len == 5);
    /* a growth that fails leaves what was there */
    char big[200];
    memset(big, 'x', sizeof(big));
    alloc_fail_at = alloc_calls + 1;
    CHECK(craft_resp_append_bulk(&b, big, sizeof(big)) == CRAFT_ENOMEM);
    CHECK(b.len == 5 && memcmp(b.data, "+OK\r\n", 5) == 0);
    alloc_fail_at = alloc_calls + 1;
    struct craft_resp_arg argv[2] = {{big, 100}, {big, 100}};
    CHECK(craft_resp_append_command(&b, 2, argv) == CRAFT_ENOMEM && b.len == 5);
    alloc_fail_at = alloc_calls + 1;
    big[sizeof(big) - 1] = '\0';
    CHECK(craft_resp_append_errorf(&b, "ERR %s", big) == CRAFT_ENOMEM && b.len == 5);
    alloc_fail_at = 0;
    CHECK(craft_resp_append_bulk(&b, big, sizeof(big)) == CRAFT_OK);
    craft_resp_buf_free(&b);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
}

/* ---- encoder bytes ------------------------------------------------------------------ */

static bool buf_is(const struct craft_resp_buf *b, const char *bytes, size_t len)
{
    bool ok = b->len == len && memcmp(b->data, bytes, len) == 0;
    if (!ok) {
        printf("  got '%.*s'\n", (int)b->len, b->data);
    }
    return ok;
}

static void test_encoder_bytes(void)
{
    struct craft_resp_buf b = {0};
    CHECK(craft_resp_append_simple(&b, "OK") == CRAFT_OK && buf_is(&b, S("+OK\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_simple(&b, "") == CRAFT_OK && buf_is(&b, S("+\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_simple(&b, "a\r\nb") == CRAFT_OK && buf_is(&b, S("+a  b\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_error(&b, "ERR unknown command") == CRAFT_OK);
    CHECK(buf_is(&b, S("-ERR unknown command\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_error(&b, "ERR bad\r\n+OK\r\n") == CRAFT_OK);
    CHECK(buf_is(&b, S("-ERR bad  +OK  \r\n")));
    b.len = 0;
    CHECK(craft_resp_append_errorf(&b, "ERR unknown command '%s', with %d args", "fo\no", 2) ==
          CRAFT_OK);
    CHECK(buf_is(&b, S("-ERR unknown command 'fo o', with 2 args\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_int(&b, 0) == CRAFT_OK && buf_is(&b, S(":0\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_int(&b, -1) == CRAFT_OK && buf_is(&b, S(":-1\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_int(&b, 1234567) == CRAFT_OK && buf_is(&b, S(":1234567\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_int(&b, INT64_MAX) == CRAFT_OK);
    CHECK(buf_is(&b, S(":9223372036854775807\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_int(&b, INT64_MIN) == CRAFT_OK);
    CHECK(buf_is(&b, S(":-9223372036854775808\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_bulk(&b, "hello", 5) == CRAFT_OK && buf_is(&b, S("$5\r\nhello\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_bulk(&b, NULL, 0) == CRAFT_OK && buf_is(&b, S("$0\r\n\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_bulk(&b, "a\r\n\0", 4) == CRAFT_OK);
    CHECK(buf_is(&b, S("$4\r\na\r\n\0\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_null_bulk(&b) == CRAFT_OK && buf_is(&b, S("$-1\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_array(&b, 0) == CRAFT_OK && buf_is(&b, S("*0\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_array(&b, 12) == CRAFT_OK && buf_is(&b, S("*12\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_null_array(&b) == CRAFT_OK && buf_is(&b, S("*-1\r\n")));
    b.len = 0;
    struct craft_resp_arg argv[2] = {{"GET", 3}, {"k", 1}};
    CHECK(craft_resp_append_command(&b, 2, argv) == CRAFT_OK);
    CHECK(buf_is(&b, S("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")));
    b.len = 0;
    CHECK(craft_resp_append_command(&b, 0, NULL) == CRAFT_OK && buf_is(&b, S("*0\r\n")));
    b.len = 0;
    /* a reply of several values, then dropping what a write sent */
    CHECK(craft_resp_append_array(&b, 2) == CRAFT_OK);
    CHECK(craft_resp_append_bulk(&b, "v", 1) == CRAFT_OK);
    CHECK(craft_resp_append_null_bulk(&b) == CRAFT_OK);
    CHECK(buf_is(&b, S("*2\r\n$1\r\nv\r\n$-1\r\n")));
    craft_resp_buf_drop(&b, 4);
    CHECK(buf_is(&b, S("$1\r\nv\r\n$-1\r\n")));
    craft_resp_buf_drop(&b, b.len);
    CHECK(b.len == 0);
    craft_resp_buf_drop(&b, 0);
    /* growth across many appends keeps every byte */
    for (int i = 0; i < 1000; i++) {
        CHECK(craft_resp_append_int(&b, i) == CRAFT_OK);
    }
    CHECK(b.len > 1000 && memcmp(b.data, ":0\r\n:1\r\n", 8) == 0);
    CHECK(memcmp(b.data + b.len - 6, ":999\r\n", 6) == 0);
    craft_resp_buf_free(&b);
}

/* Parser error texts as replies: the encoder writes them as Redis would. */
static void test_error_reply_roundtrip(void)
{
    struct craft_resp_parser p;
    struct craft_resp_cmd c;
    struct craft_resp_buf b = {0};
    craft_resp_parser_init(&p, NULL);
    CHECK(craft_resp_parse(&p, S("*1\r\n\r\n"), &c) == CRAFT_EMALFORMED);
    CHECK(craft_resp_append_error(&b, c.error) == CRAFT_OK);
    CHECK(buf_is(&b, S("-ERR Protocol error: expected '$', got '\\x0d'\r\n")));
    craft_resp_parser_free(&p);
    craft_resp_buf_free(&b);
}

int main(void)
{
    run_case("multibulk_basic", test_multibulk_basic);
    run_case("multibulk_need_more", test_multibulk_need_more);
    run_case("multibulk_errors", test_multibulk_errors);
    run_case("request_limit", test_request_limit);
    run_case("no_allocation_up_front", test_no_allocation_up_front);
    run_case("argc_limit", test_argc_limit);
    run_case("inline_basic", test_inline_basic);
    run_case("inline_quoting", test_inline_quoting);
    run_case("inline_limit", test_inline_limit);
    run_case("pipeline_whole", test_pipeline_whole);
    run_case("fragmentation_pipeline", test_fragmentation_pipeline);
    run_case("fragmentation_errors", test_fragmentation_errors);
    run_case("roundtrip_random", test_roundtrip_random);
    run_case("large_bulk_incremental", test_large_bulk_incremental);
    run_case("reset", test_reset);
    run_case("parser_alloc_failures", test_parser_alloc_failures);
    run_case("encoder_alloc_failures", test_encoder_alloc_failures);
    run_case("encoder_bytes", test_encoder_bytes);
    run_case("error_reply_roundtrip", test_error_reply_roundtrip);
    return unit_finish();
}
