#include "codec/msg_codec.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

/* The byte layout is documented in msg_codec.h and docs/design/codec.md. */

enum {
    HEADER_BYTES = 3 + 3 * 8, /* version, type, flags; from, to, term */
    ENTRY_HEADER_BYTES = 8 + 1 + 4,
    SNAP_ID_BYTES = 8 + 8, /* snap index, snap term */
    SNAP_FIXED_BYTES = SNAP_ID_BYTES + 4, /* + chunk_len (around the conf) */
};

enum {
    FLAG_REJECT = 1u << 0,
    FLAG_LAST = 1u << 1,
    FLAG_TRANSFER = 1u << 2,
};

/* The optional u64 scalars, in wire order when present. */
enum field {
    F_LOG_INDEX,
    F_LOG_TERM,
    F_COMMIT,
    F_INDEX,
    F_REJECT_HINT,
    F_REJECT_TERM,
    F_CTX,
    F_OFFSET,
    F_COUNT_
};

#define BIT(f) (1u << (f))

struct type_layout {
    uint8_t flags;   /* flags allowed for the type */
    uint16_t fields; /* BIT(enum field) set: scalars present, in enum order */
};

/* Which fields each type carries. A field outside this table must be zero on encode and is
 * zero after decode. */
static const struct type_layout layouts[CRAFT_MSG_TYPE_COUNT_] = {
    [CRAFT_MSG_APPEND] = {0, BIT(F_LOG_INDEX) | BIT(F_LOG_TERM) | BIT(F_COMMIT)},
    [CRAFT_MSG_APPEND_RESP] = {FLAG_REJECT, BIT(F_COMMIT) | BIT(F_INDEX) | BIT(F_REJECT_HINT) |
                                                BIT(F_REJECT_TERM)},
    [CRAFT_MSG_HEARTBEAT] = {0, BIT(F_COMMIT) | BIT(F_CTX)},
    [CRAFT_MSG_HEARTBEAT_RESP] = {FLAG_REJECT, BIT(F_CTX)},
    [CRAFT_MSG_VOTE] = {FLAG_TRANSFER, BIT(F_LOG_INDEX) | BIT(F_LOG_TERM)},
    [CRAFT_MSG_VOTE_RESP] = {FLAG_REJECT, 0},
    [CRAFT_MSG_PREVOTE] = {FLAG_TRANSFER, BIT(F_LOG_INDEX) | BIT(F_LOG_TERM)},
    [CRAFT_MSG_PREVOTE_RESP] = {FLAG_REJECT, 0},
    [CRAFT_MSG_SNAPSHOT] = {FLAG_LAST, BIT(F_OFFSET)},
    [CRAFT_MSG_SNAPSHOT_RESP] = {FLAG_REJECT, BIT(F_INDEX) | BIT(F_OFFSET)},
    [CRAFT_MSG_TIMEOUT_NOW] = {0, 0},
    [CRAFT_MSG_READ_INDEX] = {0, BIT(F_CTX)},
    [CRAFT_MSG_READ_INDEX_RESP] = {FLAG_REJECT, BIT(F_INDEX) | BIT(F_CTX)},
};

static bool type_known(unsigned type)
{
    return type >= CRAFT_MSG_APPEND && type < CRAFT_MSG_TYPE_COUNT_;
}

/* Where each field lives in struct craft_msg, so one table drives encode and decode. */
static const size_t field_offsets[F_COUNT_] = {
    [F_LOG_INDEX] = offsetof(struct craft_msg, log_index),
    [F_LOG_TERM] = offsetof(struct craft_msg, log_term),
    [F_COMMIT] = offsetof(struct craft_msg, commit),
    [F_INDEX] = offsetof(struct craft_msg, index),
    [F_REJECT_HINT] = offsetof(struct craft_msg, reject_hint),
    [F_REJECT_TERM] = offsetof(struct craft_msg, reject_term),
    [F_CTX] = offsetof(struct craft_msg, ctx),
    [F_OFFSET] = offsetof(struct craft_msg, offset),
};

static uint64_t field_get(const struct craft_msg *m, enum field f)
{
    uint64_t v;
    memcpy(&v, (const char *)m + field_offsets[f], sizeof(v));
    return v;
}

static void field_set(struct craft_msg *m, enum field f, uint64_t v)
{
    memcpy((char *)m + field_offsets[f], &v, sizeof(v));
}

static size_t fields_count(uint16_t fields)
{
    size_t n = 0;
    for (int f = 0; f < F_COUNT_; f++) {
        n += (fields & BIT(f)) != 0;
    }
    return n;
}

static uint8_t msg_flags(const struct craft_msg *m)
{
    return (uint8_t)((m->reject ? FLAG_REJECT : 0) | (m->last ? FLAG_LAST : 0) |
                     (m->transfer ? FLAG_TRANSFER : 0));
}

/* ---- little-endian primitives ------------------------------------------------------- */

static uint8_t *put_u8(uint8_t *p, uint8_t v)
{
    *p = v;
    return p + 1;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
    return p + 4;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
    return p + 8;
}

static uint8_t *put_bytes(uint8_t *p, const uint8_t *src, size_t n)
{
    if (n > 0) {
        memcpy(p, src, n);
    }
    return p + n;
}

/* A read cursor: every get checks the remaining length first, so no input can make a read
 * leave [p, end). */
struct cursor {
    const uint8_t *p;
    const uint8_t *end;
};

/* buf may be NULL when len is 0; pointer arithmetic on NULL is undefined even by zero. */
static struct cursor cursor_make(const uint8_t *buf, size_t len)
{
    struct cursor c = {buf, len > 0 ? buf + len : buf};
    return c;
}

static size_t cur_left(const struct cursor *c)
{
    return (size_t)(c->end - c->p);
}

static bool get_u8(struct cursor *c, uint8_t *v)
{
    if (cur_left(c) < 1) {
        return false;
    }
    *v = *c->p++;
    return true;
}

static bool get_u32(struct cursor *c, uint32_t *v)
{
    if (cur_left(c) < 4) {
        return false;
    }
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        x |= (uint32_t)c->p[i] << (8 * i);
    }
    c->p += 4;
    *v = x;
    return true;
}

static bool get_u64(struct cursor *c, uint64_t *v)
{
    if (cur_left(c) < 8) {
        return false;
    }
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) {
        x |= (uint64_t)c->p[i] << (8 * i);
    }
    c->p += 8;
    *v = x;
    return true;
}

/* Borrows n bytes of the input (NULL when n is 0, as struct craft_entry documents). */
static bool get_bytes(struct cursor *c, uint32_t n, const uint8_t **out)
{
    if (cur_left(c) < n) {
        return false;
    }
    if (n == 0) {
        *out = NULL;
        return true;
    }
    *out = c->p;
    c->p += n;
    return true;
}

/* ---- configurations ----------------------------------------------------------------- */

/* The configuration encoding belongs to the core (it is the payload of CONF entries, which
 * the core writes); here it is embedded in snapshot messages. Its four count bytes say how
 * long it is. */
static int conf_read(struct cursor *c, struct craft_conf *out)
{
    if (cur_left(c) < 4) {
        return CRAFT_EMALFORMED;
    }
    size_t len = 4 + 8 * ((size_t)c->p[0] + c->p[1] + c->p[2] + c->p[3]);
    if (cur_left(c) < len) {
        return CRAFT_EMALFORMED;
    }
    int rv = craft_conf_decode(c->p, len, out);
    if (rv == CRAFT_OK) {
        c->p += len;
    }
    return rv;
}

/* ---- entries ------------------------------------------------------------------------ */

static bool entry_type_known(unsigned type)
{
    return type >= CRAFT_ENTRY_NORMAL && type <= CRAFT_ENTRY_CONF;
}

/* Payload rules: a no-op carries nothing, a configuration entry carries a valid conf. */
static bool entry_payload_valid(uint8_t type, const uint8_t *data, uint32_t len)
{
    if (type == CRAFT_ENTRY_NOOP) {
        return len == 0;
    }
    if (type == CRAFT_ENTRY_CONF) {
        struct craft_conf conf;
        return craft_conf_decode(data, len, &conf) == CRAFT_OK;
    }
    return true;
}

/* ---- messages ----------------------------------------------------------------------- */

static bool conf_is_empty(const struct craft_conf *c)
{
    return c->n_voters == 0 && c->n_voters_outgoing == 0 && c->n_learners == 0 &&
           c->n_learners_next == 0;
}

/* Asserts what craft_msg_encode requires of m (see msg_codec.h). */
static void msg_check(const struct craft_msg *m)
{
    CRAFT_ASSERT(type_known(m->type));
    const struct type_layout *l = &layouts[m->type];
    CRAFT_ASSERT(m->from != CRAFT_NONE && m->to != CRAFT_NONE);
    CRAFT_ASSERT((msg_flags(m) & ~l->flags) == 0);
    for (int f = 0; f < F_COUNT_; f++) {
        CRAFT_ASSERT((l->fields & BIT(f)) != 0 || field_get(m, (enum field)f) == 0);
    }
    if (m->type == CRAFT_MSG_APPEND) {
        CRAFT_ASSERT(m->n_entries <= CRAFT_MSG_ENTRIES_MAX);
        CRAFT_ASSERT(m->n_entries == 0 || m->entries != NULL);
        CRAFT_ASSERT(m->log_index <= UINT64_MAX - m->n_entries);
        for (uint32_t i = 0; i < m->n_entries; i++) {
            const struct craft_entry *e = &m->entries[i];
            CRAFT_ASSERT(e->index == m->log_index + 1 + i);
            CRAFT_ASSERT(entry_type_known(e->type));
            CRAFT_ASSERT(e->len == 0 || e->data != NULL);
            CRAFT_ASSERT(entry_payload_valid(e->type, e->data, e->len));
        }
    } else {
        CRAFT_ASSERT(m->n_entries == 0);
    }
    if (m->type == CRAFT_MSG_SNAPSHOT) {
        CRAFT_ASSERT(craft_conf_valid(&m->snap.conf));
        CRAFT_ASSERT(m->chunk_len == 0 || m->chunk != NULL);
    } else {
        /* SNAPSHOT_RESP names the snapshot it answers, without its configuration. */
        CRAFT_ASSERT(conf_is_empty(&m->snap.conf));
        CRAFT_ASSERT(m->type == CRAFT_MSG_SNAPSHOT_RESP ||
                     (m->snap.index == 0 && m->snap.term == 0));
        CRAFT_ASSERT(m->chunk_len == 0);
    }
}

static size_t msg_size(const struct craft_msg *m)
{
    const struct type_layout *l = &layouts[m->type];
    size_t n = HEADER_BYTES + 8 * fields_count(l->fields);
    if (m->type == CRAFT_MSG_APPEND) {
        n += 4;
        for (uint32_t i = 0; i < m->n_entries; i++) {
            n += ENTRY_HEADER_BYTES + (size_t)m->entries[i].len;
        }
    } else if (m->type == CRAFT_MSG_SNAPSHOT) {
        n += SNAP_FIXED_BYTES + craft_conf_encoded_size(&m->snap.conf) + m->chunk_len;
    } else if (m->type == CRAFT_MSG_SNAPSHOT_RESP) {
        n += SNAP_ID_BYTES;
    }
    return n;
}

size_t craft_msg_encoded_size(const struct craft_msg *m)
{
    CRAFT_ASSERT(type_known(m->type));
    return msg_size(m);
}

size_t craft_msg_encode(const struct craft_msg *m, uint8_t *buf)
{
    msg_check(m);
    size_t size = msg_size(m);
    CRAFT_ASSERT(size <= CRAFT_MSG_BYTES_MAX);
    const struct type_layout *l = &layouts[m->type];
    uint8_t *p = buf;
    p = put_u8(p, CRAFT_CODEC_VERSION);
    p = put_u8(p, m->type);
    p = put_u8(p, msg_flags(m));
    p = put_u64(p, m->from);
    p = put_u64(p, m->to);
    p = put_u64(p, m->term);
    for (int f = 0; f < F_COUNT_; f++) {
        if (l->fields & BIT(f)) {
            p = put_u64(p, field_get(m, (enum field)f));
        }
    }
    if (m->type == CRAFT_MSG_APPEND) {
        p = put_u32(p, m->n_entries);
        for (uint32_t i = 0; i < m->n_entries; i++) {
            const struct craft_entry *e = &m->entries[i];
            p = put_u64(p, e->term);
            p = put_u8(p, e->type);
            p = put_u32(p, e->len);
            p = put_bytes(p, e->data, e->len);
        }
    } else if (m->type == CRAFT_MSG_SNAPSHOT) {
        p = put_u64(p, m->snap.index);
        p = put_u64(p, m->snap.term);
        p += craft_conf_encode(&m->snap.conf, p);
        p = put_u32(p, m->chunk_len);
        p = put_bytes(p, m->chunk, m->chunk_len);
    } else if (m->type == CRAFT_MSG_SNAPSHOT_RESP) {
        p = put_u64(p, m->snap.index);
        p = put_u64(p, m->snap.term);
    }
    CRAFT_ASSERT((size_t)(p - buf) == size);
    return size;
}

void craft_msg_decoder_init(struct craft_msg_decoder *d)
{
    d->entries = NULL;
    d->entries_cap = 0;
}

void craft_msg_decoder_free(struct craft_msg_decoder *d)
{
    free(d->entries);
    d->entries = NULL;
    d->entries_cap = 0;
}

static int decoder_reserve(struct craft_msg_decoder *d, uint32_t n)
{
    if (n <= d->entries_cap) {
        return CRAFT_OK;
    }
    /* Doubling keeps a stream of growing batches at amortised O(1) reallocations. */
    uint32_t cap = d->entries_cap > 0 ? d->entries_cap : 16;
    while (cap < n) {
        cap *= 2;
    }
    struct craft_entry *e = realloc(d->entries, (size_t)cap * sizeof(*e));
    if (e == NULL) {
        return CRAFT_ENOMEM;
    }
    d->entries = e;
    d->entries_cap = cap;
    return CRAFT_OK;
}

static int entries_read(struct craft_msg_decoder *d, struct cursor *c, struct craft_msg *m)
{
    uint32_t n;
    if (!get_u32(c, &n)) {
        return CRAFT_EMALFORMED;
    }
    if (n > CRAFT_MSG_ENTRIES_MAX) {
        return CRAFT_ETOOBIG;
    }
    /* Bound the count by the bytes present before allocating, so a short input cannot make
     * the decoder allocate for entries it does not hold. */
    if ((size_t)n > cur_left(c) / ENTRY_HEADER_BYTES) {
        return CRAFT_EMALFORMED;
    }
    if (m->log_index > UINT64_MAX - n) {
        return CRAFT_EMALFORMED;
    }
    int rv = decoder_reserve(d, n);
    if (rv != CRAFT_OK) {
        return rv;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct craft_entry *e = &d->entries[i];
        if (!get_u64(c, &e->term) || !get_u8(c, &e->type) || !get_u32(c, &e->len) ||
            !get_bytes(c, e->len, &e->data)) {
            return CRAFT_EMALFORMED;
        }
        if (!entry_type_known(e->type) || !entry_payload_valid(e->type, e->data, e->len)) {
            return CRAFT_EMALFORMED;
        }
        e->index = m->log_index + 1 + i;
    }
    m->n_entries = n;
    m->entries = n > 0 ? d->entries : NULL;
    return CRAFT_OK;
}

static int snapshot_read(struct cursor *c, struct craft_msg *m)
{
    if (!get_u64(c, &m->snap.index) || !get_u64(c, &m->snap.term)) {
        return CRAFT_EMALFORMED;
    }
    int rv = conf_read(c, &m->snap.conf);
    if (rv != CRAFT_OK) {
        return rv;
    }
    if (!get_u32(c, &m->chunk_len) || !get_bytes(c, m->chunk_len, &m->chunk)) {
        return CRAFT_EMALFORMED;
    }
    return CRAFT_OK;
}

int craft_msg_decode(struct craft_msg_decoder *d, const uint8_t *buf, size_t len,
                     struct craft_msg *out)
{
    if (len > CRAFT_MSG_BYTES_MAX) {
        return CRAFT_ETOOBIG;
    }
    struct cursor c = cursor_make(buf, len);
    uint8_t version, type, flags;
    if (!get_u8(&c, &version)) {
        return CRAFT_EMALFORMED;
    }
    if (version != CRAFT_CODEC_VERSION) {
        return CRAFT_EVERSION;
    }
    if (!get_u8(&c, &type) || !get_u8(&c, &flags)) {
        return CRAFT_EMALFORMED;
    }
    if (!type_known(type)) {
        return CRAFT_EMALFORMED;
    }
    const struct type_layout *l = &layouts[type];
    if ((flags & ~l->flags) != 0) {
        return CRAFT_EMALFORMED;
    }
    memset(out, 0, sizeof(*out));
    out->type = type;
    out->reject = (flags & FLAG_REJECT) != 0;
    out->last = (flags & FLAG_LAST) != 0;
    out->transfer = (flags & FLAG_TRANSFER) != 0;
    if (!get_u64(&c, &out->from) || !get_u64(&c, &out->to) || !get_u64(&c, &out->term)) {
        return CRAFT_EMALFORMED;
    }
    if (out->from == CRAFT_NONE || out->to == CRAFT_NONE) {
        return CRAFT_EMALFORMED;
    }
    for (int f = 0; f < F_COUNT_; f++) {
        uint64_t v;
        if (l->fields & BIT(f)) {
            if (!get_u64(&c, &v)) {
                return CRAFT_EMALFORMED;
            }
            field_set(out, (enum field)f, v);
        }
    }
    int rv = CRAFT_OK;
    if (type == CRAFT_MSG_APPEND) {
        rv = entries_read(d, &c, out);
    } else if (type == CRAFT_MSG_SNAPSHOT) {
        rv = snapshot_read(&c, out);
    } else if (type == CRAFT_MSG_SNAPSHOT_RESP) {
        if (!get_u64(&c, &out->snap.index) || !get_u64(&c, &out->snap.term)) {
            rv = CRAFT_EMALFORMED;
        }
    }
    if (rv != CRAFT_OK) {
        return rv;
    }
    if (cur_left(&c) != 0) {
        return CRAFT_EMALFORMED;
    }
    return CRAFT_OK;
}

int craft_msg_peek_type(const uint8_t *buf, size_t len)
{
    if (len < 2 || buf[0] != CRAFT_CODEC_VERSION || !type_known(buf[1])) {
        return 0;
    }
    return buf[1];
}
