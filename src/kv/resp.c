/* RESP2 request parser and reply encoder (see resp.h for the contract and
 * docs/design/resp.md for the limits and error texts). */
#include "kv/resp.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/err.h"

/* The longest valid length line after its '*' or '$': "-9223372036854775808". Anything
 * longer cannot be a valid length, so we refuse it without waiting for its CR. */
#define LEN_DIGITS_MAX 20u

/* Storage kept between commands; above this a finished command's arrays are freed so one
 * huge command does not pin memory for the connection's lifetime. */
#define ARGS_KEEP_MAX    1024u
#define SCRATCH_KEEP_MAX 4096u

static const char ERR_MBULK_LEN[] = "ERR Protocol error: invalid multibulk length";
static const char ERR_BULK_LEN[] = "ERR Protocol error: invalid bulk length";
static const char ERR_BULK_CRLF[] = "ERR Protocol error: expected CRLF after bulk data";
static const char ERR_TOO_BIG_REQUEST[] = "ERR Protocol error: too big request";
static const char ERR_TOO_BIG_INLINE[] = "ERR Protocol error: too big inline request";
static const char ERR_INLINE_ARGC[] = "ERR Protocol error: too many arguments in inline request";
static const char ERR_QUOTES[] = "ERR Protocol error: unbalanced quotes in request";
static const char ERR_OOM[] = "ERR out of memory";

static size_t sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static void *resp_realloc(void *(*fn)(void *, size_t), void *ptr, size_t size)
{
    return fn != NULL ? fn(ptr, size) : realloc(ptr, size);
}

static void resp_free(void *(*fn)(void *, size_t), void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    if (fn != NULL) {
        (void)fn(ptr, 0); /* realloc(p, 0) frees in every allocator we accept */
    } else {
        free(ptr);
    }
}

/* ---------------------------------------------------------------- parser state */

void craft_resp_parser_init(struct craft_resp_parser *p, const struct craft_resp_limits *limits)
{
    memset(p, 0, sizeof(*p));
    if (limits != NULL) {
        p->limits = *limits;
    }
    if (p->limits.argc_max == 0) {
        p->limits.argc_max = CRAFT_RESP_ARGC_MAX_DEFAULT;
    }
    if (p->limits.bulk_bytes_max == 0) {
        p->limits.bulk_bytes_max = CRAFT_RESP_BULK_BYTES_MAX_DEFAULT;
    }
    if (p->limits.inline_bytes_max == 0) {
        p->limits.inline_bytes_max = CRAFT_RESP_INLINE_BYTES_MAX_DEFAULT;
    }
    if (p->limits.request_bytes_max == 0) {
        p->limits.request_bytes_max = CRAFT_RESP_REQUEST_BYTES_MAX_DEFAULT;
    }
}

static void parser_free_args(struct craft_resp_parser *p)
{
    resp_free(p->realloc_fn, p->spans);
    resp_free(p->realloc_fn, p->argv);
    p->spans = NULL;
    p->argv = NULL;
    p->args_cap = 0;
}

static void parser_free_scratch(struct craft_resp_parser *p)
{
    resp_free(p->realloc_fn, p->scratch);
    p->scratch = NULL;
    p->scratch_cap = 0;
}

void craft_resp_parser_free(struct craft_resp_parser *p)
{
    parser_free_args(p);
    parser_free_scratch(p);
    craft_resp_parser_reset(p);
}

void craft_resp_parser_reset(struct craft_resp_parser *p)
{
    p->in_multibulk = false;
    p->argc = 0;
    p->n_args = 0;
    p->pos = 0;
    p->in_bulk = false;
    p->bulk_len = 0;
    p->inline_scanned = 0;
}

static bool parser_idle(const struct craft_resp_parser *p)
{
    return !p->in_multibulk && p->inline_scanned == 0;
}

/* Makes room for n arguments. Growth follows arguments actually parsed, so an announced
 * *1000000 costs nothing until its bytes arrive. */
static int parser_reserve_args(struct craft_resp_parser *p, size_t n)
{
    if (n <= p->args_cap) {
        return CRAFT_OK;
    }
    size_t cap = p->args_cap != 0 ? p->args_cap : 8;
    while (cap < n) {
        cap = cap > SIZE_MAX / 2 ? n : cap * 2;
    }
    if (cap > SIZE_MAX / sizeof(struct craft_resp_arg)) {
        return CRAFT_ENOMEM;
    }
    struct craft_resp_span *spans =
        resp_realloc(p->realloc_fn, p->spans, cap * sizeof(struct craft_resp_span));
    if (spans == NULL) {
        return CRAFT_ENOMEM;
    }
    p->spans = spans;
    struct craft_resp_arg *argv =
        resp_realloc(p->realloc_fn, p->argv, cap * sizeof(struct craft_resp_arg));
    if (argv == NULL) {
        return CRAFT_ENOMEM; /* spans is larger than args_cap says: harmless */
    }
    p->argv = argv;
    p->args_cap = cap;
    return CRAFT_OK;
}

static int parser_reserve_scratch(struct craft_resp_parser *p, size_t n)
{
    if (n <= p->scratch_cap) {
        return CRAFT_OK;
    }
    char *s = resp_realloc(p->realloc_fn, p->scratch, n);
    if (s == NULL) {
        return CRAFT_ENOMEM;
    }
    p->scratch = s;
    p->scratch_cap = n;
    return CRAFT_OK;
}

/* Fills out for a complete command of argc spans relative to base, and resets the resume
 * state for the next one. */
static int parse_done(struct craft_resp_parser *p, const char *base, size_t argc, size_t consumed,
                      bool is_inline, struct craft_resp_cmd *out)
{
    for (size_t i = 0; i < argc; i++) {
        p->argv[i].data = base + p->spans[i].off;
        p->argv[i].len = p->spans[i].len;
    }
    out->argc = argc;
    out->argv = argc != 0 ? p->argv : NULL;
    out->consumed = consumed;
    out->is_inline = is_inline;
    craft_resp_parser_reset(p);
    return CRAFT_OK;
}

static int parse_fail(struct craft_resp_parser *p, int rc, const char *text,
                      struct craft_resp_cmd *out)
{
    CRAFT_ASSERT(strchr(text, '\r') == NULL && strchr(text, '\n') == NULL);
    out->error = text;
    craft_resp_parser_reset(p);
    return rc;
}

static int need_more(size_t want, struct craft_resp_cmd *out)
{
    out->want = want;
    return CRAFT_RESP_NEED_MORE;
}

/* ---------------------------------------------------------------- multibulk */

/* Redis's integer syntax for lengths: optional '-', then "0" or a digit string without a
 * leading zero, fitting in a signed 64-bit integer. */
static bool parse_ll(const char *s, size_t n, long long *v)
{
    size_t i = 0;
    bool neg = false;
    if (n == 1 && s[0] == '0') {
        *v = 0;
        return true;
    }
    if (n > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == n || s[i] < '1' || s[i] > '9') {
        return false;
    }
    unsigned long long u = 0;
    const unsigned long long lim = neg ? (unsigned long long)LLONG_MAX + 1u : LLONG_MAX;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        unsigned d = (unsigned)(s[i] - '0');
        if (u > (lim - d) / 10u) {
            return false;
        }
        u = u * 10u + d;
    }
    *v = neg ? (u == (unsigned long long)LLONG_MAX + 1u ? LLONG_MIN : -(long long)u) : (long long)u;
    return true;
}

/* Reads the length line whose type byte ('*' or '$') is buf[start]. Returns 1 with *v and
 * *end (offset after its \r\n), 0 if more bytes are needed, -1 if it is not a valid line. */
static int parse_len_line(const char *buf, size_t len, size_t start, long long *v, size_t *end)
{
    size_t from = start + 1;
    size_t avail = len > from ? len - from : 0;
    size_t window = avail < LEN_DIGITS_MAX + 1 ? avail : LEN_DIGITS_MAX + 1;
    const char *cr = window != 0 ? memchr(buf + from, '\r', window) : NULL;
    if (cr == NULL) {
        return avail > LEN_DIGITS_MAX ? -1 : 0;
    }
    size_t k = (size_t)(cr - (buf + from));
    if (k + 1 >= avail) {
        return 0; /* the \n is not here yet */
    }
    if (buf[from + k + 1] != '\n' || !parse_ll(buf + from, k, v)) {
        return -1;
    }
    *end = from + k + 2;
    return 1;
}

static int fail_expected_dollar(struct craft_resp_parser *p, unsigned char got,
                                struct craft_resp_cmd *out)
{
    if (got >= 0x20 && got < 0x7f) {
        snprintf(p->error, sizeof(p->error), "ERR Protocol error: expected '$', got '%c'", got);
    } else {
        /* Redis prints the raw byte; a control byte (CR, LF, NUL) would break the reply. */
        snprintf(p->error, sizeof(p->error), "ERR Protocol error: expected '$', got '\\x%02x'",
                 got);
    }
    return parse_fail(p, CRAFT_EMALFORMED, p->error, out);
}

static int parse_multibulk(struct craft_resp_parser *p, const char *buf, size_t len,
                           struct craft_resp_cmd *out)
{
    const struct craft_resp_limits *lim = &p->limits;
    long long v;
    size_t end;
    if (!p->in_multibulk) {
        int r = parse_len_line(buf, len, 0, &v, &end);
        if (r == 0) {
            return need_more(len + 1, out);
        }
        if (r < 0) {
            return parse_fail(p, CRAFT_EMALFORMED, ERR_MBULK_LEN, out);
        }
        if (v <= 0) {
            return parse_done(p, buf, 0, end, false, out); /* *0, *-1: Redis skips them */
        }
        if ((unsigned long long)v > lim->argc_max) {
            return parse_fail(p, CRAFT_ETOOBIG, ERR_MBULK_LEN, out);
        }
        p->in_multibulk = true;
        p->argc = (size_t)v;
        p->n_args = 0;
        p->pos = end;
        p->in_bulk = false;
    }
    CRAFT_ASSERT(p->pos <= len); /* else the caller changed the buffer between calls */
    while (p->n_args < p->argc) {
        if (!p->in_bulk) {
            if (p->pos == len) {
                return need_more(len + 1, out);
            }
            if (buf[p->pos] != '$') {
                return fail_expected_dollar(p, (unsigned char)buf[p->pos], out);
            }
            int r = parse_len_line(buf, len, p->pos, &v, &end);
            if (r == 0) {
                return need_more(len + 1, out);
            }
            if (r < 0 || v < 0) {
                return parse_fail(p, CRAFT_EMALFORMED, ERR_BULK_LEN, out);
            }
            if ((unsigned long long)v > lim->bulk_bytes_max) {
                return parse_fail(p, CRAFT_ETOOBIG, ERR_BULK_LEN, out);
            }
            /* The whole command would end at least at end + v + 2. */
            if (sat_add(sat_add(end, (size_t)v), 2) > lim->request_bytes_max) {
                return parse_fail(p, CRAFT_ETOOBIG, ERR_TOO_BIG_REQUEST, out);
            }
            if (parser_reserve_args(p, p->n_args + 1) != CRAFT_OK) {
                return parse_fail(p, CRAFT_ENOMEM, ERR_OOM, out);
            }
            p->in_bulk = true;
            p->bulk_len = (size_t)v;
            p->pos = end;
        }
        size_t data_end = p->pos + p->bulk_len; /* no overflow: bounded by the request max */
        if (len > data_end && buf[data_end] != '\r') {
            return parse_fail(p, CRAFT_EMALFORMED, ERR_BULK_CRLF, out);
        }
        if (len < data_end + 2) {
            return need_more(data_end + 2, out);
        }
        if (buf[data_end + 1] != '\n') {
            return parse_fail(p, CRAFT_EMALFORMED, ERR_BULK_CRLF, out);
        }
        p->spans[p->n_args].off = p->pos;
        p->spans[p->n_args].len = p->bulk_len;
        p->n_args++;
        p->pos = data_end + 2;
        p->in_bulk = false;
    }
    return parse_done(p, buf, p->argc, p->pos, false, out);
}

/* ---------------------------------------------------------------- inline */

/* isspace() in the C locale, which is what separates inline words. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* What ends an unquoted word: narrower than is_space (\v and \f stay inside a word). */
static bool ends_word(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* The byte that \c stands for inside double quotes: a few C escapes, else c itself. */
static char dquote_escape(char c)
{
    static const char from[] = "nrtba", to[] = "\n\r\t\b\a";
    const char *hit = memchr(from, c, sizeof(from) - 1);
    return hit != NULL ? to[hit - from] : c;
}

/* A closing quote must be followed by whitespace or the end of the line. */
static bool quote_closes(const char *s, size_t n, size_t i)
{
    return i + 1 == n || is_space(s[i + 1]);
}

/* Splits line s[0..n) into words in p->scratch (at most n bytes: unescaping only shrinks)
 * with spans in p->spans. Returns CRAFT_OK with *argc, or an error for out->error. */
static int split_inline(struct craft_resp_parser *p, const char *s, size_t n, size_t *argc,
                        const char **error)
{
    enum { PLAIN, DQUOTE, SQUOTE };
    char *w = p->scratch;
    size_t wi = 0, i = 0, count = 0;
    for (;;) {
        while (i < n && is_space(s[i])) {
            i++;
        }
        if (i == n) {
            break;
        }
        if (count == p->limits.argc_max) {
            *error = ERR_INLINE_ARGC;
            return CRAFT_ETOOBIG;
        }
        if (parser_reserve_args(p, count + 1) != CRAFT_OK) {
            *error = ERR_OOM;
            return CRAFT_ENOMEM;
        }
        size_t word = wi;
        int state = PLAIN;
        bool done = false;
        while (!done) {
            int hi, lo; /* a \xHH escape's digits */
            if (state == PLAIN) {
                if (i == n || ends_word(s[i])) {
                    done = true;
                } else if (s[i] == '"') {
                    state = DQUOTE;
                    i++;
                } else if (s[i] == '\'') {
                    state = SQUOTE;
                    i++;
                } else {
                    w[wi++] = s[i++];
                }
            } else if (i == n) {
                *error = ERR_QUOTES;
                return CRAFT_EMALFORMED;
            } else if (s[i] == (state == DQUOTE ? '"' : '\'')) {
                if (!quote_closes(s, n, i)) {
                    *error = ERR_QUOTES;
                    return CRAFT_EMALFORMED;
                }
                i++;
                done = true;
            } else if (state == DQUOTE && s[i] == '\\' && i + 3 < n && s[i + 1] == 'x' &&
                       (hi = hex_value(s[i + 2])) >= 0 && (lo = hex_value(s[i + 3])) >= 0) {
                w[wi++] = (char)(hi * 16 + lo);
                i += 4;
            } else if (state == DQUOTE && s[i] == '\\' && i + 1 < n) {
                w[wi++] = dquote_escape(s[i + 1]);
                i += 2;
            } else if (state == SQUOTE && s[i] == '\\' && i + 1 < n && s[i + 1] == '\'') {
                w[wi++] = '\''; /* the only escape inside single quotes */
                i += 2;
            } else {
                w[wi++] = s[i++];
            }
        }
        p->spans[count].off = word;
        p->spans[count].len = wi - word;
        count++;
    }
    CRAFT_ASSERT(wi <= n);
    *argc = count;
    return CRAFT_OK;
}

static int parse_inline(struct craft_resp_parser *p, const char *buf, size_t len,
                        struct craft_resp_cmd *out)
{
    size_t max = p->limits.inline_bytes_max;
    /* A line of max bytes ends at index max + 1 at the latest ("...\r\n"). */
    size_t window = sat_add(max, 2);
    size_t limit = len < window ? len : window;
    CRAFT_ASSERT(p->inline_scanned <= limit);
    const char *nl = memchr(buf + p->inline_scanned, '\n', limit - p->inline_scanned);
    if (nl == NULL) {
        if (len >= window) {
            return parse_fail(p, CRAFT_ETOOBIG, ERR_TOO_BIG_INLINE, out);
        }
        p->inline_scanned = limit;
        return need_more(len + 1, out);
    }
    size_t consumed = (size_t)(nl - buf) + 1;
    size_t n = consumed - 1;
    if (n > 0 && buf[n - 1] == '\r') {
        n--;
    }
    if (n > max) {
        return parse_fail(p, CRAFT_ETOOBIG, ERR_TOO_BIG_INLINE, out);
    }
    if (parser_reserve_scratch(p, n) != CRAFT_OK) {
        return parse_fail(p, CRAFT_ENOMEM, ERR_OOM, out);
    }
    size_t argc = 0;
    const char *error = NULL;
    int rc = split_inline(p, buf, n, &argc, &error);
    if (rc != CRAFT_OK) {
        return parse_fail(p, rc, error, out);
    }
    return parse_done(p, p->scratch, argc, consumed, true, out);
}

int craft_resp_parse(struct craft_resp_parser *p, const char *buf, size_t len,
                     struct craft_resp_cmd *out)
{
    CRAFT_ASSERT(buf != NULL || len == 0);
    memset(out, 0, sizeof(*out));
    if (parser_idle(p)) {
        if (p->args_cap > ARGS_KEEP_MAX) {
            parser_free_args(p);
        }
        if (p->scratch_cap > SCRATCH_KEEP_MAX) {
            parser_free_scratch(p);
        }
    }
    if (len == 0) {
        CRAFT_ASSERT(parser_idle(p));
        return need_more(1, out);
    }
    if (p->in_multibulk || buf[0] == '*') {
        return parse_multibulk(p, buf, len, out);
    }
    return parse_inline(p, buf, len, out);
}

/* ---------------------------------------------------------------- replies */

void craft_resp_buf_free(struct craft_resp_buf *b)
{
    resp_free(b->realloc_fn, b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void craft_resp_buf_drop(struct craft_resp_buf *b, size_t n)
{
    CRAFT_ASSERT(n <= b->len);
    if (n != 0) {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
}

static int buf_reserve(struct craft_resp_buf *b, size_t extra)
{
    if (extra <= b->cap - b->len) {
        return CRAFT_OK;
    }
    if (extra > SIZE_MAX - b->len) {
        return CRAFT_ENOMEM;
    }
    size_t need = b->len + extra;
    size_t cap = b->cap != 0 ? b->cap : 64;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    char *data = resp_realloc(b->realloc_fn, b->data, cap);
    if (data == NULL) {
        return CRAFT_ENOMEM;
    }
    b->data = data;
    b->cap = cap;
    return CRAFT_OK;
}

int craft_resp_buf_reserve(struct craft_resp_buf *b, size_t extra)
{
    return buf_reserve(b, extra);
}

/* Writes the decimal form of v at out (room for 20 digits); returns the digit count. */
static size_t fmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    for (size_t i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }
    return n;
}

/* type, optional '-', the magnitude, CRLF: at most 1 + 1 + 20 + 2 bytes. */
static int append_header(struct craft_resp_buf *b, char type, bool neg, uint64_t magnitude)
{
    char line[24];
    size_t n = 0;
    line[n++] = type;
    if (neg) {
        line[n++] = '-';
    }
    n += fmt_u64(line + n, magnitude);
    line[n++] = '\r';
    line[n++] = '\n';
    if (buf_reserve(b, n) != CRAFT_OK) {
        return CRAFT_ENOMEM;
    }
    memcpy(b->data + b->len, line, n);
    b->len += n;
    return CRAFT_OK;
}

static void blank_crlf(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r' || s[i] == '\n') {
            s[i] = ' ';
        }
    }
}

static int append_line(struct craft_resp_buf *b, char type, const char *s)
{
    size_t n = strlen(s);
    if (n > SIZE_MAX - 3 || buf_reserve(b, n + 3) != CRAFT_OK) {
        return CRAFT_ENOMEM;
    }
    char *w = b->data + b->len;
    w[0] = type;
    memcpy(w + 1, s, n);
    blank_crlf(w + 1, n);
    w[n + 1] = '\r';
    w[n + 2] = '\n';
    b->len += n + 3;
    return CRAFT_OK;
}

int craft_resp_append_simple(struct craft_resp_buf *b, const char *s)
{
    return append_line(b, '+', s);
}

int craft_resp_append_error(struct craft_resp_buf *b, const char *s)
{
    return append_line(b, '-', s);
}

int craft_resp_append_errorf(struct craft_resp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return CRAFT_EINVAL;
    }
    size_t sz = (size_t)n;
    if (sz > SIZE_MAX - 3 || buf_reserve(b, sz + 3) != CRAFT_OK) {
        return CRAFT_ENOMEM;
    }
    char *w = b->data + b->len;
    w[0] = '-';
    va_start(ap, fmt);
    int m = vsnprintf(w + 1, sz + 1, fmt, ap); /* its NUL lands where \r goes */
    va_end(ap);
    CRAFT_ASSERT(m == n);
    blank_crlf(w + 1, sz);
    w[sz + 1] = '\r';
    w[sz + 2] = '\n';
    b->len += sz + 3;
    return CRAFT_OK;
}

int craft_resp_append_int(struct craft_resp_buf *b, int64_t v)
{
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    return append_header(b, ':', v < 0, mag);
}

int craft_resp_append_bulk(struct craft_resp_buf *b, const void *data, size_t len)
{
    CRAFT_ASSERT(data != NULL || len == 0);
    /* Reserve everything first so a failure leaves b unchanged. */
    if (len > SIZE_MAX - 26 || buf_reserve(b, len + 26) != CRAFT_OK) {
        return CRAFT_ENOMEM;
    }
    int rc = append_header(b, '$', false, len);
    CRAFT_ASSERT(rc == CRAFT_OK);
    if (len != 0) {
        memcpy(b->data + b->len, data, len);
    }
    b->data[b->len + len] = '\r';
    b->data[b->len + len + 1] = '\n';
    b->len += len + 2;
    return CRAFT_OK;
}

int craft_resp_append_null_bulk(struct craft_resp_buf *b)
{
    return append_header(b, '$', true, 1);
}

int craft_resp_append_array(struct craft_resp_buf *b, size_t n)
{
    return append_header(b, '*', false, n);
}

int craft_resp_append_null_array(struct craft_resp_buf *b)
{
    return append_header(b, '*', true, 1);
}

int craft_resp_append_command(struct craft_resp_buf *b, size_t argc,
                              const struct craft_resp_arg *argv)
{
    CRAFT_ASSERT(argv != NULL || argc == 0);
    /* Size it exactly first, so it is all or nothing. */
    size_t total = 24;
    for (size_t i = 0; i < argc; i++) {
        total = sat_add(total, sat_add(argv[i].len, 26));
    }
    if (total == SIZE_MAX || buf_reserve(b, total) != CRAFT_OK) {
        return CRAFT_ENOMEM;
    }
    int rc = craft_resp_append_array(b, argc);
    for (size_t i = 0; rc == CRAFT_OK && i < argc; i++) {
        rc = craft_resp_append_bulk(b, argv[i].data, argv[i].len);
    }
    CRAFT_ASSERT(rc == CRAFT_OK);
    return CRAFT_OK;
}
