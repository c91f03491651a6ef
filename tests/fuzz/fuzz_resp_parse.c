/* libFuzzer target: the RESP request parser (src/kv/resp.c) on arbitrary bytes in arbitrary
 * fragments.
 *
 * Input: byte 0 picks the limits (bit 0: small limits drawn from bytes 1-4, so the limit
 * paths are reached with short inputs; else the defaults), byte 5 seeds the fragment
 * sizes; the rest is the byte stream a connection receives. The stream is parsed twice:
 * whole, one command per call as a server with everything buffered does, then fed in
 * fragments into a buffer that moves on every append and drops what each command consumed,
 * as a server reading a socket does. Both must give the same commands and the same final
 * error. Every command must lie inside the input, respect the limits, and survive a
 * re-encode: a multibulk command's bytes are exactly its re-encoding (the parser accepts
 * only canonical lengths and CRLFs), and any command re-encoded parses back to the same
 * argv. ASan/UBSan catch any read outside the input. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/err.h"
#include "kv/resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER_BYTES 6u

static bool argv_equal(const struct craft_resp_cmd *a, const struct craft_resp_cmd *b)
{
    if (a->argc != b->argc) {
        return false;
    }
    for (size_t i = 0; i < a->argc; i++) {
        if (a->argv[i].len != b->argv[i].len ||
            (a->argv[i].len != 0 &&
             memcmp(a->argv[i].data, b->argv[i].data, a->argv[i].len) != 0)) {
            return false;
        }
    }
    return true;
}

/* Checks one parse result on buf[0..len) and appends it to the transcript. */
static void check_result(const struct craft_resp_parser *p, const char *buf, size_t len, int rc,
                         const struct craft_resp_cmd *c, struct craft_resp_buf *transcript)
{
    const struct craft_resp_limits *lim = &p->limits;
    if (rc == CRAFT_RESP_NEED_MORE) {
        CRAFT_ASSERT(c->consumed == 0 && c->error == NULL && c->want > len);
        return;
    }
    if (rc != CRAFT_OK) {
        CRAFT_ASSERT(rc == CRAFT_EMALFORMED || rc == CRAFT_ETOOBIG);
        CRAFT_ASSERT(c->consumed == 0 && c->argc == 0 && c->error != NULL);
        CRAFT_ASSERT(strchr(c->error, '\r') == NULL && strchr(c->error, '\n') == NULL);
        CRAFT_ASSERT(strncmp(c->error, "ERR Protocol error: ", 20) == 0);
        CRAFT_ASSERT(craft_resp_append_int(transcript, rc) == CRAFT_OK);
        CRAFT_ASSERT(craft_resp_append_error(transcript, c->error) == CRAFT_OK);
        return;
    }
    CRAFT_ASSERT(c->consumed > 0 && c->consumed <= len && c->error == NULL);
    CRAFT_ASSERT(c->argc <= lim->argc_max);
    CRAFT_ASSERT((c->argc == 0) == (c->argv == NULL));
    CRAFT_ASSERT(c->is_inline == (buf[0] != '*'));
    for (size_t i = 0; i < c->argc; i++) {
        const struct craft_resp_arg *a = &c->argv[i];
        if (c->is_inline) {
            CRAFT_ASSERT(a->len <= lim->inline_bytes_max);
            CRAFT_ASSERT(a->data >= p->scratch && a->data + a->len <= p->scratch + p->scratch_cap);
        } else {
            CRAFT_ASSERT(a->len <= lim->bulk_bytes_max);
            CRAFT_ASSERT(a->data >= buf && a->data + a->len <= buf + c->consumed);
            CRAFT_ASSERT(a->data[a->len] == '\r' && a->data[a->len + 1] == '\n');
        }
        volatile char sum = 0; /* touch every byte for ASan */
        for (size_t j = 0; j < a->len; j++) {
            sum = (char)(sum + a->data[j]);
        }
        (void)sum;
    }
    if (c->is_inline) {
        CRAFT_ASSERT(c->consumed <= lim->inline_bytes_max + 2);
        CRAFT_ASSERT(buf[c->consumed - 1] == '\n');
    } else {
        CRAFT_ASSERT(c->consumed <= lim->request_bytes_max || c->argc == 0);
    }

    /* Re-encode and parse back, with default limits (an inline word may exceed a small
     * bulk limit). */
    struct craft_resp_buf enc = {0};
    CRAFT_ASSERT(craft_resp_append_command(&enc, c->argc, c->argv) == CRAFT_OK);
    if (!c->is_inline && c->argc != 0) {
        CRAFT_ASSERT(enc.len == c->consumed && memcmp(enc.data, buf, enc.len) == 0);
    }
    struct craft_resp_parser again;
    struct craft_resp_cmd c2;
    craft_resp_parser_init(&again, NULL);
    CRAFT_ASSERT(craft_resp_parse(&again, enc.data, enc.len, &c2) == CRAFT_OK);
    CRAFT_ASSERT(c2.consumed == enc.len && !c2.is_inline && argv_equal(c, &c2));
    craft_resp_parser_free(&again);
    craft_resp_buf_free(&enc);

    CRAFT_ASSERT(craft_resp_append_simple(transcript, c->is_inline ? "inline" : "mb") == CRAFT_OK);
    CRAFT_ASSERT(craft_resp_append_command(transcript, c->argc, c->argv) == CRAFT_OK);
}

/* Everything buffered at once: one command per call until an error or the end. */
static void parse_whole(const struct craft_resp_limits *lim, const char *s, size_t n,
                        struct craft_resp_buf *transcript)
{
    struct craft_resp_parser p;
    craft_resp_parser_init(&p, lim);
    size_t off = 0;
    for (;;) {
        struct craft_resp_cmd c;
        int rc = craft_resp_parse(&p, s + off, n - off, &c);
        check_result(&p, s + off, n - off, rc, &c, transcript);
        if (rc != CRAFT_OK) {
            break;
        }
        off += c.consumed;
    }
    craft_resp_parser_free(&p);
}

/* Fed in fragments into a buffer that moves on every append. */
static void parse_fragments(const struct craft_resp_limits *lim, const char *s, size_t n,
                            uint32_t seed, struct craft_resp_buf *transcript)
{
    struct craft_resp_parser p;
    craft_resp_parser_init(&p, lim);
    char *in = NULL;
    size_t in_len = 0, off = 0;
    bool closed = false;
    uint32_t x = seed * 2654435761u + 1u;
    while (!closed && off < n) {
        x = x * 1103515245u + 12345u;
        size_t piece = 1 + (x >> 16) % ((x & 0x100) ? 3u : 64u);
        if (piece > n - off) {
            piece = n - off;
        }
        char *moved = malloc(in_len + piece);
        CRAFT_ASSERT(moved != NULL);
        if (in_len != 0) {
            memcpy(moved, in, in_len);
        }
        memcpy(moved + in_len, s + off, piece);
        free(in);
        in = moved;
        in_len += piece;
        off += piece;
        for (;;) {
            struct craft_resp_cmd c;
            int rc = craft_resp_parse(&p, in, in_len, &c);
            check_result(&p, in, in_len, rc, &c, transcript);
            if (rc == CRAFT_RESP_NEED_MORE) {
                break;
            }
            if (rc != CRAFT_OK) {
                closed = true;
                break;
            }
            memmove(in, in + c.consumed, in_len - c.consumed);
            in_len -= c.consumed;
        }
    }
    if (!closed) { /* the whole stream parsed ends in NEED_MORE: record it the same way */
        struct craft_resp_cmd c;
        int rc = craft_resp_parse(&p, in, in_len, &c);
        CRAFT_ASSERT(rc == CRAFT_RESP_NEED_MORE);
    }
    free(in);
    craft_resp_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HEADER_BYTES) {
        return 0;
    }
    struct craft_resp_limits lim = {0};
    if (data[0] & 1u) {
        lim.argc_max = 1u + data[1] % 16u;
        lim.bulk_bytes_max = 1u + data[2] % 64u;
        lim.inline_bytes_max = 1u + data[3] % 64u;
        lim.request_bytes_max = 8u + data[4] * 2u;
    }
    const char *s = (const char *)data + HEADER_BYTES;
    size_t n = size - HEADER_BYTES;
    struct craft_resp_buf whole = {0}, pieces = {0};
    parse_whole(&lim, s, n, &whole);
    parse_fragments(&lim, s, n, data[5], &pieces);
    CRAFT_ASSERT(whole.len == pieces.len &&
                 (whole.len == 0 || memcmp(whole.data, pieces.data, whole.len) == 0));
    craft_resp_buf_free(&whole);
    craft_resp_buf_free(&pieces);
    return 0;
}
