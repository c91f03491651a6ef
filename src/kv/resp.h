/* RESP2, the Redis protocol, as pure functions over buffers: no sockets, no threads, no
 * globals. Fuzzed by tests/fuzz/fuzz_resp_parse.c; design note: docs/design/resp.md.
 *
 * Requests. A connection owns one struct craft_resp_parser and one input buffer holding the
 * bytes received and not yet consumed. craft_resp_parse() looks at the start of that buffer
 * for the next complete command, either
 *   multibulk  *<argc>\r\n then argc times $<len>\r\n<len bytes>\r\n   (what clients send)
 *   inline     one line ended by \n or \r\n, split on whitespace with Redis's quoting
 *              ("..." with \n \r \t \b \a \xHH \<c> escapes, '...' with \' ), as typed
 *              into telnet; a request whose first byte is not '*' is inline.
 * It returns one of
 *   CRAFT_OK              a command: out->argc, out->argv, out->consumed > 0. argc may be 0
 *                         (an empty line, *0, *-1): Redis ignores those, send no reply.
 *                         The caller drops out->consumed bytes from the front of its buffer
 *                         before the next call (pipelining: one command per call).
 *   CRAFT_RESP_NEED_MORE  the buffer holds no complete command yet: nothing is consumed;
 *                         call again with the same bytes plus whatever arrives next.
 *   CRAFT_EMALFORMED      a protocol error: out->error holds the exact Redis reply text
 *   CRAFT_ETOOBIG         a limit of struct craft_resp_limits is exceeded: out->error too.
 *                         After either, reply with out->error and close the connection, as
 *                         Redis does: the stream cannot be resynchronised.
 *   CRAFT_ENOMEM          an allocation failed; nothing consumed, the parser is reset (the
 *                         connection can retry later or be closed; out->error says so).
 *
 * Incremental: the parser remembers how far it got through an incomplete multibulk
 * command (offsets, not pointers), so a command arriving in many pieces is scanned once,
 * not once per piece. Hence, between a NEED_MORE and the next call, the buffer's existing
 * bytes must stay the same (they may move: realloc is fine; only appending is allowed). To
 * start over on other bytes, call craft_resp_parser_reset().
 *
 * Where argv points, and for how long:
 *   multibulk: argv[i].data points into the caller's buffer (the bulk payload, which is
 *              followed by "\r\n", so never NUL-terminated);
 *   inline:    argv[i].data points into the parser's own storage (the unescaped words).
 *   Either way the argv array and the bytes stay valid until the next call of
 *   craft_resp_parse(), craft_resp_parser_reset() or craft_resp_parser_free() on this
 *   parser, and for multibulk only while the caller's buffer is not moved, freed or
 *   overwritten (dropping the consumed prefix with memmove overwrites it: copy first).
 *
 * Memory: the parser allocates only in proportion to bytes actually received (argv grows
 * with the arguments parsed, never to an announced argc; a bulk is never preallocated).
 *
 * Replies. struct craft_resp_buf is a growable output buffer; every craft_resp_append_*
 * appends one complete RESP2 value or nothing at all: CRAFT_OK, or CRAFT_ENOMEM with the
 * buffer unchanged (never an abort).
 *
 * Threads: none of this is shared; one parser or buffer per thread at a time. */
#ifndef CRAFT_KV_RESP_H
#define CRAFT_KV_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Not an error: more bytes are needed. Negative, so it never collides with enum craft_err. */
#define CRAFT_RESP_NEED_MORE (-1)

/* Defaults for struct craft_resp_limits (docs/design/resp.md says why these values). */
#define CRAFT_RESP_ARGC_MAX_DEFAULT          65536u
#define CRAFT_RESP_BULK_BYTES_MAX_DEFAULT    (16u * 1024u * 1024u)
#define CRAFT_RESP_INLINE_BYTES_MAX_DEFAULT  (64u * 1024u)
#define CRAFT_RESP_REQUEST_BYTES_MAX_DEFAULT (32u * 1024u * 1024u)

/* Hard limits on one request. A field left 0 takes its default. */
struct craft_resp_limits {
    size_t argc_max;          /* arguments of one command, multibulk or inline */
    size_t bulk_bytes_max;    /* payload of one bulk string */
    size_t inline_bytes_max;  /* one inline line, not counting its \n or \r\n */
    size_t request_bytes_max; /* one multibulk command, headers and CRLFs included */
};

/* One argument: len bytes at data, binary-safe, not NUL-terminated. */
struct craft_resp_arg {
    const char *data;
    size_t len;
};

/* What craft_resp_parse() found. */
struct craft_resp_cmd {
    size_t argc;
    const struct craft_resp_arg *argv; /* argc entries; NULL when argc == 0 */
    size_t consumed;                   /* CRAFT_OK: bytes of this command; else 0 */
    bool is_inline;                    /* CRAFT_OK: it was an inline command */
    /* NEED_MORE: the buffer length from which the next call can make progress (a hint for
     * sizing the next read: inside a large bulk it is the end of that bulk). Else 0. */
    size_t want;
    /* On an error return: the reply text, e.g. "ERR Protocol error: invalid bulk length",
     * without the leading '-' and CRLF, never containing CR or LF. Static or the parser's;
     * valid until the next call on the parser. NULL on CRAFT_OK and NEED_MORE. */
    const char *error;
};

/* Resume state of a command in progress and the storage behind argv. Fields are private:
 * embed the struct (no allocation at init), use only the functions below. */
struct craft_resp_span {
    size_t off;
    size_t len;
};

struct craft_resp_parser {
    struct craft_resp_limits limits;
    /* realloc-compatible allocator (NULL: realloc); tests inject failures here. */
    void *(*realloc_fn)(void *ptr, size_t size);
    /* multibulk resume state */
    bool in_multibulk;             /* the *<argc> header has been parsed */
    size_t argc;                   /* announced argc */
    size_t n_args;                 /* arguments complete so far */
    size_t pos;                    /* offset of the next byte to parse */
    bool in_bulk;                  /* the $<len> header at pos has been parsed; pos is its data */
    size_t bulk_len;               /* in_bulk: the bulk's length */
    size_t inline_scanned;         /* inline: bytes already searched for \n */
    struct craft_resp_span *spans; /* argument offsets, relative to the buffer start */
    struct craft_resp_arg *argv;
    size_t args_cap; /* entries in spans and in argv */
    char *scratch;   /* inline: the unescaped words */
    size_t scratch_cap;
    char error[48]; /* room for the one formatted error text */
};

/* Initialises p with limits (NULL: all defaults; a 0 field: its default). Allocates
 * nothing; cannot fail. */
void craft_resp_parser_init(struct craft_resp_parser *p, const struct craft_resp_limits *limits);

/* Frees what p allocated; p may be initialised again. */
void craft_resp_parser_free(struct craft_resp_parser *p);

/* Forgets any command in progress (keeps the limits and storage): for when the buffer's
 * bytes were discarded or replaced. */
void craft_resp_parser_reset(struct craft_resp_parser *p);

/* Parses the next command at the start of buf[0..len) into *out; see the top of this file
 * for returns, validity of argv and the incremental contract. buf may be NULL when len is
 * 0. Reads nothing outside buf[0..len); consumed <= len. */
int craft_resp_parse(struct craft_resp_parser *p, const char *buf, size_t len,
                     struct craft_resp_cmd *out);

/* A growable output buffer. Zero-initialise it (realloc_fn NULL means realloc); the
 * appenders allocate as needed. data holds len bytes, not NUL-terminated. */
struct craft_resp_buf {
    char *data;
    size_t len;
    size_t cap;
    void *(*realloc_fn)(void *ptr, size_t size);
};

/* Frees the bytes; the buffer is empty and usable again. */
void craft_resp_buf_free(struct craft_resp_buf *b);
/* Makes room for extra more bytes after len. Errors: CRAFT_ENOMEM. */
int craft_resp_buf_reserve(struct craft_resp_buf *b, size_t extra);

/* Drops the first n bytes (n <= len), e.g. those a write() has sent; keeps the capacity. */
void craft_resp_buf_drop(struct craft_resp_buf *b, size_t n);

/* Each appends one value and returns CRAFT_OK, or CRAFT_ENOMEM with b unchanged.
 *
 * simple and error write s (NUL-terminated) after '+' or '-', with every CR or LF in it
 * replaced by a space so a reply can never break the framing. Errors by convention start
 * with a code word: craft_resp_append_error(b, "ERR unknown command") -> "-ERR unknown
 * command\r\n". errorf formats first (printf rules), then does the same. */
int craft_resp_append_simple(struct craft_resp_buf *b, const char *s);
int craft_resp_append_error(struct craft_resp_buf *b, const char *s);
int craft_resp_append_errorf(struct craft_resp_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int craft_resp_append_int(struct craft_resp_buf *b, int64_t v); /* :<v>\r\n */
int craft_resp_append_bulk(struct craft_resp_buf *b, const void *data, size_t len);
int craft_resp_append_null_bulk(struct craft_resp_buf *b);       /* $-1\r\n */
int craft_resp_append_array(struct craft_resp_buf *b, size_t n); /* *<n>\r\n */
int craft_resp_append_null_array(struct craft_resp_buf *b);      /* *-1\r\n */

/* A whole command as a client sends it: *argc then argc bulk strings (argv may be NULL
 * when argc is 0). What craft_resp_parse() reads back as the same argv. */
int craft_resp_append_command(struct craft_resp_buf *b, size_t argc,
                              const struct craft_resp_arg *argv);

#endif
