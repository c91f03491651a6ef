/* Wire codec: random round trips of every message type, malformed input (truncation, byte
 * flips, trailing bytes, bad version, bad lengths), configuration encoding (including the
 * rules of learners_next), and the names of core enums. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/prng.h"
#include "codec/msg_codec.h"
#include "unit.h"
#include "../msg_equal.h"

static uint64_t cur_seed; /* printed with every failure of a random case */



static const uint64_t seeds[] = {1, 2, 3, 42, 1234567, 0xdeadbeefULL, 99991, 777};
#define N_SEEDS (sizeof(seeds) / sizeof(seeds[0]))

/* ---- random generators ------------------------------------------------------------- */

/* Values biased towards the edges, where encoding bugs live. */
static uint64_t rand_u64(struct craft_prng *r)
{
    switch (craft_prng_range(r, 0, 6)) {
    case 0: return 0;
    case 1: return UINT64_MAX;
    case 2: return craft_prng_range(r, 0, 16);
    case 3: return (uint64_t)1 << craft_prng_range(r, 0, 64);
    default: return craft_prng_next(r);
    }
}

static uint64_t rand_id(struct craft_prng *r)
{
    return craft_prng_chance(r, 500) ? craft_prng_range(r, 1, 64) : (craft_prng_next(r) | 1);
}

static bool in_list(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

/* Largest conf encoding: every node counted twice at most (an incoming voter that is also
 * outgoing, or an outgoing-only voter that is also in learners_next). */
#define CONF_BYTES_MAX (4 + 2 * 8 * CRAFT_CONF_NODES_MAX)

/* A valid configuration: outgoing voters overlap the incoming ones at random, learners are
 * disjoint from both, at most CRAFT_CONF_NODES_MAX distinct nodes. In about half the joint
 * ones, some outgoing-only voters are also in learners_next (demoted on leaving joint). */
static void rand_conf(struct craft_prng *r, struct craft_conf *c)
{
    memset(c, 0, sizeof(*c));
    uint64_t pool[CRAFT_CONF_NODES_MAX];
    uint32_t n_pool = (uint32_t)craft_prng_range(r, 0, CRAFT_CONF_NODES_MAX + 1);
    for (uint32_t i = 0; i < n_pool; i++) {
        uint64_t id;
        do {
            id = rand_id(r);
        } while (in_list(pool, i, id));
        pool[i] = id;
    }
    for (uint32_t i = 0; i < n_pool; i++) {
        switch (craft_prng_range(r, 0, 4)) {
        case 0: c->voters[c->n_voters++] = pool[i]; break;
        case 1: c->voters_outgoing[c->n_voters_outgoing++] = pool[i]; break;
        case 2:
            c->voters[c->n_voters++] = pool[i];
            c->voters_outgoing[c->n_voters_outgoing++] = pool[i];
            break;
        default: c->learners[c->n_learners++] = pool[i]; break;
        }
    }
    if (c->n_voters_outgoing == 0 || !craft_prng_chance(r, 500)) {
        return;
    }
    for (uint32_t i = 0; i < c->n_voters_outgoing; i++) {
        uint64_t id = c->voters_outgoing[i];
        if (!in_list(c->voters, c->n_voters, id) && craft_prng_chance(r, 500)) {
            c->learners_next[c->n_learners_next++] = id;
        }
    }
}

/* Owns the memory a random message points to. */
struct msg_store {
    struct craft_entry entries[64];
    uint8_t data[64 * 300];
    uint8_t chunk[2048];
};

static void rand_bytes(struct craft_prng *r, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)craft_prng_next(r);
    }
}

static void rand_entries(struct craft_prng *r, struct craft_msg *m, struct msg_store *s)
{
    uint32_t n = (uint32_t)craft_prng_range(r, 0, 64);
    if (craft_prng_chance(r, 300)) {
        n = 0;
    }
    if (m->log_index > UINT64_MAX - n) {
        m->log_index = UINT64_MAX - n;
    }
    uint8_t *data = s->data;
    for (uint32_t i = 0; i < n; i++) {
        struct craft_entry *e = &s->entries[i];
        e->term = rand_u64(r);
        e->index = m->log_index + 1 + i;
        e->type = (uint8_t)craft_prng_range(r, CRAFT_ENTRY_NORMAL, CRAFT_ENTRY_CONF + 1);
        e->len = 0;
        e->data = NULL;
        if (e->type == CRAFT_ENTRY_NORMAL) {
            e->len = (uint32_t)craft_prng_range(r, 0, 300);
            rand_bytes(r, data, e->len);
        } else if (e->type == CRAFT_ENTRY_CONF) {
            struct craft_conf conf;
            rand_conf(r, &conf);
            /* The largest conf (CONF_BYTES_MAX) does not fit the 300 bytes kept per entry.
             * Leaving the joint configuration drops learners_next with it (rule of
             * struct craft_conf); dropping incoming voters or learners keeps it valid. */
            while (craft_conf_encoded_size(&conf) > 300) {
                conf.n_voters_outgoing = 0;
                conf.n_learners_next = 0;
                conf.n_learners /= 2;
                conf.n_voters /= 2;
            }
            e->len = (uint32_t)craft_conf_encode(&conf, data);
        }
        if (e->len > 0) {
            e->data = data;
            data += e->len;
        }
    }
    m->n_entries = n;
    m->entries = n > 0 ? s->entries : NULL;
}

/* A random well-formed message of the given type, filling exactly the fields the type
 * carries on the wire (the table in msg_codec.h, restated here on purpose). */
static void rand_msg(struct craft_prng *r, uint8_t type, struct craft_msg *m, struct msg_store *s)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = rand_id(r);
    m->to = rand_id(r);
    m->term = rand_u64(r);
    bool is_resp = craft_msg_type_is_response(type);
    if (is_resp) {
        m->reject = craft_prng_chance(r, 500);
    }
    switch (type) {
    case CRAFT_MSG_APPEND:
        m->log_index = rand_u64(r);
        m->log_term = rand_u64(r);
        m->commit = rand_u64(r);
        rand_entries(r, m, s);
        break;
    case CRAFT_MSG_APPEND_RESP:
        m->commit = rand_u64(r);
        m->index = rand_u64(r);
        m->reject_hint = rand_u64(r);
        m->reject_term = rand_u64(r);
        break;
    case CRAFT_MSG_HEARTBEAT:
        m->commit = rand_u64(r);
        m->ctx = rand_u64(r);
        break;
    case CRAFT_MSG_HEARTBEAT_RESP:
    case CRAFT_MSG_READ_INDEX:
        m->ctx = rand_u64(r);
        break;
    case CRAFT_MSG_VOTE:
    case CRAFT_MSG_PREVOTE:
        m->log_index = rand_u64(r);
        m->log_term = rand_u64(r);
        m->transfer = craft_prng_chance(r, 500);
        break;
    case CRAFT_MSG_SNAPSHOT:
        m->offset = rand_u64(r);
        m->last = craft_prng_chance(r, 500);
        m->snap.index = rand_u64(r);
        m->snap.term = rand_u64(r);
        rand_conf(r, &m->snap.conf);
        m->chunk_len = (uint32_t)craft_prng_range(r, 0, sizeof(s->chunk) + 1);
        if (craft_prng_chance(r, 200)) {
            m->chunk_len = 0;
        }
        rand_bytes(r, s->chunk, m->chunk_len);
        m->chunk = m->chunk_len > 0 ? s->chunk : NULL;
        break;
    case CRAFT_MSG_SNAPSHOT_RESP:
        m->offset = rand_u64(r);
        m->index = rand_u64(r);
        m->snap.index = rand_u64(r);
        m->snap.term = rand_u64(r);
        break;
    case CRAFT_MSG_READ_INDEX_RESP:
        m->index = rand_u64(r);
        m->ctx = rand_u64(r);
        break;
    default: break;
    }
}

static uint8_t rand_type(struct craft_prng *r)
{
    return (uint8_t)craft_prng_range(r, CRAFT_MSG_APPEND, CRAFT_MSG_TYPE_COUNT_);
}

/* ---- comparison -------------------------------------------------------------------- */

static bool points_into(const uint8_t *p, uint32_t n, const uint8_t *buf, size_t len)
{
    return n == 0 || (p >= buf && p + n <= buf + len);
}

/* ---- helpers ----------------------------------------------------------------------- */

static uint8_t *encode_alloc(const struct craft_msg *m, size_t *len)
{
    *len = craft_msg_encoded_size(m);
    uint8_t *buf = malloc(*len + 64); /* slack for the trailing-garbage tests */
    size_t n = craft_msg_encode(m, buf);
    CHECK(n == *len);
    return buf;
}

/* Decodes buf; if it succeeds, the message must re-encode to exactly buf (the encoding is
 * canonical). Returns the decode result. */
static int decode_canonical(struct craft_msg_decoder *d, const uint8_t *buf, size_t len)
{
    struct craft_msg m;
    int rv = craft_msg_decode(d, buf, len, &m);
    if (rv == CRAFT_OK) {
        size_t n = craft_msg_encoded_size(&m);
        CHECK(n == len);
        if (n == len) {
            uint8_t *again = malloc(n);
            CHECK(craft_msg_encode(&m, again) == n);
            CHECK(memcmp(again, buf, n) == 0);
            free(again);
        }
    }
    return rv;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* Byte offsets of the fixed layout (msg_codec.h). */
enum {
    OFF_VERSION = 0,
    OFF_TYPE = 1,
    OFF_FLAGS = 2,
    OFF_FROM = 3,
    OFF_TO = 11,
    OFF_TERM = 19,
    OFF_FIELDS = 27,
    OFF_APPEND_N = OFF_FIELDS + 3 * 8,
    OFF_APPEND_E0 = OFF_APPEND_N + 4,
    OFF_SNAP_INDEX = OFF_FIELDS + 8,
    OFF_SNAP_CONF = OFF_SNAP_INDEX + 16,
    CONF_HEADER = 4, /* n_voters, n_voters_outgoing, n_learners, n_learners_next */
};

/* A small APPEND with one NORMAL entry of 3 bytes. */
static void one_entry_append(struct craft_msg *m, struct craft_entry *e, const uint8_t *data)
{
    memset(m, 0, sizeof(*m));
    m->type = CRAFT_MSG_APPEND;
    m->from = 1;
    m->to = 2;
    m->term = 5;
    m->log_index = 10;
    m->log_term = 4;
    m->commit = 9;
    e->term = 5;
    e->index = 11;
    e->type = CRAFT_ENTRY_NORMAL;
    e->len = 3;
    e->data = data;
    m->n_entries = 1;
    m->entries = e;
}

/* ---- cases ------------------------------------------------------------------------- */

static void test_roundtrip_random(void)
{
    static struct msg_store store;
    struct craft_msg_decoder d;
    craft_msg_decoder_init(&d);
    uint32_t per_type[CRAFT_MSG_TYPE_COUNT_] = {0};
    for (size_t s = 0; s < N_SEEDS; s++) {
        cur_seed = seeds[s];
        struct craft_prng r;
        craft_prng_seed(&r, cur_seed);
        for (int i = 0; i < 250; i++) {
            struct craft_msg m, out;
            rand_msg(&r, rand_type(&r), &m, &store);
            per_type[m.type]++;
            size_t len;
            uint8_t *buf = encode_alloc(&m, &len);
            CHECK(craft_msg_peek_type(buf, len) == m.type);
            int rv = craft_msg_decode(&d, buf, len, &out);
            CHECK(rv == CRAFT_OK);
            if (rv == CRAFT_OK) {
                CHECK(msg_equal(&m, &out));
                /* Zero copy: payloads point into the input. */
                CHECK(points_into(out.chunk, out.chunk_len, buf, len));
                for (uint32_t k = 0; k < out.n_entries; k++) {
                    CHECK(points_into(out.entries[k].data, out.entries[k].len, buf, len));
                }
                CHECK(decode_canonical(&d, buf, len) == CRAFT_OK);
            }
            free(buf);
        }
    }
    cur_seed = 0;
    for (int t = CRAFT_MSG_APPEND; t < CRAFT_MSG_TYPE_COUNT_; t++) {
        CHECK(per_type[t] > 50);
    }
    craft_msg_decoder_free(&d);
}

static void test_roundtrip_each_type_minimal(void)
{
    struct craft_msg_decoder d;
    craft_msg_decoder_init(&d);
    for (int t = CRAFT_MSG_APPEND; t < CRAFT_MSG_TYPE_COUNT_; t++) {
        struct craft_msg m = {0}, out;
        m.type = (uint8_t)t;
        m.from = 1;
        m.to = 2;
        size_t len;
        uint8_t *buf = encode_alloc(&m, &len);
        CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_OK);
        CHECK(msg_equal(&m, &out));
        CHECK(out.entries == NULL && out.chunk == NULL);
        free(buf);
    }
    craft_msg_decoder_free(&d);
}

/* Several valid encodings of each type, used by the malformed-input cases. */
#define N_SAMPLES (3 * (CRAFT_MSG_TYPE_COUNT_ - 1))

static void for_each_sample(void (*fn)(struct craft_msg_decoder *d, uint8_t *buf, size_t len))
{
    static struct msg_store store;
    struct craft_msg_decoder d;
    craft_msg_decoder_init(&d);
    cur_seed = 77;
    struct craft_prng r;
    craft_prng_seed(&r, cur_seed);
    for (int i = 0; i < N_SAMPLES; i++) {
        struct craft_msg m;
        rand_msg(&r, (uint8_t)(CRAFT_MSG_APPEND + i % (CRAFT_MSG_TYPE_COUNT_ - 1)), &m, &store);
        if (m.type == CRAFT_MSG_APPEND && m.n_entries > 8) {
            m.n_entries = 8; /* keeps the quadratic cases fast */
        }
        size_t len;
        uint8_t *buf = encode_alloc(&m, &len);
        fn(&d, buf, len);
        free(buf);
    }
    craft_msg_decoder_free(&d);
}

static void truncations(struct craft_msg_decoder *d, uint8_t *buf, size_t len)
{
    struct craft_msg out;
    for (size_t n = 0; n < len; n++) {
        int rv = craft_msg_decode(d, buf, n, &out);
        CHECK(rv == CRAFT_EMALFORMED);
        if (rv != CRAFT_EMALFORMED) {
            printf("  type %u len %zu truncated to %zu decoded (%d)\n", buf[1], len, n, rv);
            return;
        }
    }
}

static void test_every_truncation_fails(void)
{
    for_each_sample(truncations);
}

static void flips(struct craft_msg_decoder *d, uint8_t *buf, size_t len)
{
    static const uint8_t masks[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff, 0x5a};
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof(masks); k++) {
            buf[i] ^= masks[k];
            (void)decode_canonical(d, buf, len);
            buf[i] ^= masks[k];
        }
    }
}

static void test_byte_flips_fail_or_reencode(void)
{
    for_each_sample(flips);
}

static void trailing(struct craft_msg_decoder *d, uint8_t *buf, size_t len)
{
    struct craft_msg out;
    /* encode_alloc left 64 bytes of slack. */
    for (size_t extra = 1; extra <= 64; extra *= 2) {
        memset(buf + len, 0, extra);
        CHECK(craft_msg_decode(d, buf, len + extra, &out) == CRAFT_EMALFORMED);
    }
}

static void test_trailing_bytes_fail(void)
{
    for_each_sample(trailing);
}

static void bad_version(struct craft_msg_decoder *d, uint8_t *buf, size_t len)
{
    struct craft_msg out;
    static const uint8_t versions[] = {0, 2, 3, 0x81, 0xff};
    for (size_t i = 0; i < sizeof(versions); i++) {
        buf[OFF_VERSION] = versions[i];
        CHECK(craft_msg_decode(d, buf, len, &out) == CRAFT_EVERSION);
        CHECK(craft_msg_peek_type(buf, len) == 0);
    }
    buf[OFF_VERSION] = CRAFT_CODEC_VERSION;
    CHECK(craft_msg_decode(d, buf, len, &out) == CRAFT_OK);
}

static void test_bad_version(void)
{
    for_each_sample(bad_version);
}

static void test_bad_type_and_flags(void)
{
    struct craft_msg_decoder d;
    craft_msg_decoder_init(&d);
    struct craft_msg m = {0}, out;
    m.type = CRAFT_MSG_TIMEOUT_NOW;
    m.from = 1;
    m.to = 2;
    size_t len;
    uint8_t *buf = encode_alloc(&m, &len);
    CHECK(len == OFF_FIELDS);
    static const uint8_t types[] = {0, CRAFT_MSG_TYPE_COUNT_, 0x80, 0xff};
    for (size_t i = 0; i < sizeof(types); i++) {
        buf[OFF_TYPE] = types[i];
        CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
        CHECK(craft_msg_peek_type(buf, len) == 0);
    }
    buf[OFF_TYPE] = CRAFT_MSG_TIMEOUT_NOW;
    CHECK(craft_msg_peek_type(buf, len) == CRAFT_MSG_TIMEOUT_NOW);
    CHECK(craft_msg_peek_type(buf, 1) == 0);
    /* TIMEOUT_NOW carries no flag; no type knows bits 3..7. */
    for (int bit = 0; bit < 8; bit++) {
        buf[OFF_FLAGS] = (uint8_t)(1u << bit);
        CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
    }
    buf[OFF_FLAGS] = 0;
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_OK);
    /* Zero ids mean "none": never on the wire. */
    put_le64(buf + OFF_FROM, 0);
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
    put_le64(buf + OFF_FROM, 1);
    put_le64(buf + OFF_TO, 0);
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
    free(buf);

    /* Each flag on a type that allows it decodes, on one that does not fails. */
    struct {
        uint8_t type, flags;
        int want;
    } cases[] = {
        {CRAFT_MSG_VOTE, 4, CRAFT_OK},          {CRAFT_MSG_VOTE, 1, CRAFT_EMALFORMED},
        {CRAFT_MSG_PREVOTE, 4, CRAFT_OK},       {CRAFT_MSG_VOTE_RESP, 1, CRAFT_OK},
        {CRAFT_MSG_VOTE_RESP, 2, CRAFT_EMALFORMED}, {CRAFT_MSG_APPEND_RESP, 1, CRAFT_OK},
        {CRAFT_MSG_APPEND, 1, CRAFT_EMALFORMED}, {CRAFT_MSG_SNAPSHOT, 2, CRAFT_OK},
        {CRAFT_MSG_SNAPSHOT, 4, CRAFT_EMALFORMED}, {CRAFT_MSG_HEARTBEAT, 1, CRAFT_EMALFORMED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&m, 0, sizeof(m));
        m.type = cases[i].type;
        m.from = 1;
        m.to = 2;
        buf = encode_alloc(&m, &len);
        buf[OFF_FLAGS] = cases[i].flags;
        CHECK(craft_msg_decode(&d, buf, len, &out) == cases[i].want);
        free(buf);
    }
    craft_msg_decoder_free(&d);
}

static void test_bad_entries(void)
{
    struct craft_msg_decoder d;
    craft_msg_decoder_init(&d);
    static const uint8_t payload[3] = {7, 8, 9};
    struct craft_msg m, out;
    struct craft_entry e;
    one_entry_append(&m, &e, payload);
    size_t len;
    uint8_t *buf = encode_alloc(&m, &len);
    CHECK(len == OFF_APPEND_E0 + 13 + 3);
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_OK);
    CHECK(out.n_entries == 1 && out.entries[0].index == 11 && out.entries[0].data == buf + len - 3);

    /* Entry types outside {1, 2, 3}. */
    static const uint8_t etypes[] = {0, 4, 0xff};
    for (size_t i = 0; i < sizeof(etypes); i++) {
        buf[OFF_APPEND_E0 + 8] = etypes[i];
        CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
    }
    /* A no-op entry with a payload. */
    buf[OFF_APPEND_E0 + 8] = CRAFT_ENTRY_NOOP;
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
    /* A configuration entry whose payload is not a configuration (3 counts, then nothing:
     * {7, 8, 9} claims 7 voters). */
    buf[OFF_APPEND_E0 + 8] = CRAFT_ENTRY_CONF;
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
    buf[OFF_APPEND_E0 + 8] = CRAFT_ENTRY_NORMAL;
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_OK);

    /* Entry length beyond the buffer, and its u32 wrap-around. */
    static const uint32_t lens[] = {4, 1000, UINT32_MAX, UINT32_MAX - 2};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        put_le32(buf + OFF_APPEND_E0 + 9, lens[i]);
        CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
    }
    /* A shorter length leaves trailing bytes. */
    put_le32(buf + OFF_APPEND_E0 + 9, 2);
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
    put_le32(buf + OFF_APPEND_E0 + 9, 3);

    /* Entry counts: more than the bytes hold, more than the limit. */
    put_le32(buf + OFF_APPEND_N, 2);
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
    put_le32(buf + OFF_APPEND_N, CRAFT_MSG_ENTRIES_MAX);
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
    CHECK(d.entries_cap < 1024); /* no allocation for entries that are not there */
    put_le32(buf + OFF_APPEND_N, CRAFT_MSG_ENTRIES_MAX + 1);
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_ETOOBIG);
    put_le32(buf + OFF_APPEND_N, UINT32_MAX);
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_ETOOBIG);
    put_le32(buf + OFF_APPEND_N, 0);
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED); /* trailing entry */
    put_le32(buf + OFF_APPEND_N, 1);

    /* Entry indexes past UINT64_MAX. */
    put_le64(buf + OFF_FIELDS, UINT64_MAX);
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
    put_le64(buf + OFF_FIELDS, UINT64_MAX - 1);
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_OK);
    CHECK(out.entries[0].index == UINT64_MAX);
    free(buf);

    /* The whole message above the byte limit, checked before anything is read. */
    static const uint8_t tiny[1] = {CRAFT_CODEC_VERSION};
    CHECK(craft_msg_decode(&d, tiny, (size_t)CRAFT_MSG_BYTES_MAX + 1, &out) == CRAFT_ETOOBIG);
    CHECK(craft_msg_decode(&d, tiny, 0, &out) == CRAFT_EMALFORMED);
    craft_msg_decoder_free(&d);
}

static void test_snapshot_lengths(void)
{
    struct craft_msg_decoder d;
    craft_msg_decoder_init(&d);
    static const uint8_t chunk[5] = {1, 2, 3, 4, 5};
    struct craft_msg m = {0}, out;
    m.type = CRAFT_MSG_SNAPSHOT;
    m.from = 3;
    m.to = 4;
    m.term = 2;
    m.offset = 100;
    m.last = true;
    m.snap.index = 50;
    m.snap.term = 2;
    m.snap.conf.n_voters = 2;
    m.snap.conf.voters[0] = 3;
    m.snap.conf.voters[1] = 4;
    m.chunk = chunk;
    m.chunk_len = 5;
    size_t len;
    uint8_t *buf = encode_alloc(&m, &len);
    size_t off_chunk_len = OFF_SNAP_CONF + CONF_HEADER + 16;
    CHECK(len == off_chunk_len + 4 + 5);
    CHECK(buf[OFF_SNAP_CONF] == 2 && buf[OFF_SNAP_CONF + 1] == 0 &&
          buf[OFF_SNAP_CONF + 2] == 0 && buf[OFF_SNAP_CONF + 3] == 0);
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_OK);
    CHECK(msg_equal(&m, &out) && out.chunk == buf + len - 5);

    static const uint32_t bad[] = {4, 6, 1000, UINT32_MAX, 0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        put_le32(buf + off_chunk_len, bad[i]);
        CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
    }
    put_le32(buf + off_chunk_len, 5);
    /* A duplicate voter in the snapshot's configuration. */
    put_le64(buf + OFF_SNAP_CONF + CONF_HEADER + 8, 3);
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
    put_le64(buf + OFF_SNAP_CONF + CONF_HEADER + 8, 4);
    /* A voter count above the limit. */
    buf[OFF_SNAP_CONF] = CRAFT_CONF_NODES_MAX + 1;
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
    buf[OFF_SNAP_CONF] = 2;
    /* The second voter read as learners_next instead: not a joint configuration. */
    buf[OFF_SNAP_CONF] = 1;
    buf[OFF_SNAP_CONF + 3] = 1;
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
    buf[OFF_SNAP_CONF] = 2;
    buf[OFF_SNAP_CONF + 3] = 0;
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_OK);
    free(buf);

    /* A joint configuration with every list: voters {3, 4}, outgoing {3, 5}, learners {6},
     * learners_next {5}; the chunk length follows the four lists. */
    m.snap.conf.n_voters_outgoing = 2;
    m.snap.conf.voters_outgoing[0] = 3;
    m.snap.conf.voters_outgoing[1] = 5;
    m.snap.conf.n_learners = 1;
    m.snap.conf.learners[0] = 6;
    m.snap.conf.n_learners_next = 1;
    m.snap.conf.learners_next[0] = 5;
    buf = encode_alloc(&m, &len);
    off_chunk_len = OFF_SNAP_CONF + CONF_HEADER + 6 * 8;
    CHECK(len == off_chunk_len + 4 + 5);
    CHECK(buf[OFF_SNAP_CONF] == 2 && buf[OFF_SNAP_CONF + 1] == 2 &&
          buf[OFF_SNAP_CONF + 2] == 1 && buf[OFF_SNAP_CONF + 3] == 1);
    size_t off_next = OFF_SNAP_CONF + CONF_HEADER + 5 * 8; /* learners_next[0] */
    CHECK(buf[off_next] == 5 && buf[off_next - 8] == 6);
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_OK);
    CHECK(msg_equal(&m, &out) && out.chunk == buf + len - 5);
    /* learners_next naming an incoming voter, a learner, a stranger, zero. */
    static const uint64_t bad_next[] = {3, 4, 6, 7, 0};
    for (size_t i = 0; i < sizeof(bad_next) / sizeof(bad_next[0]); i++) {
        put_le64(buf + off_next, bad_next[i]);
        CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_EMALFORMED);
    }
    put_le64(buf + off_next, 5);
    CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_OK);
    free(buf);
    craft_msg_decoder_free(&d);
}

static void test_decoder_reuse_and_growth(void)
{
    static struct msg_store store;
    struct craft_msg_decoder d;
    craft_msg_decoder_init(&d);
    CHECK(d.entries == NULL && d.entries_cap == 0);
    cur_seed = 5;
    struct craft_prng r;
    craft_prng_seed(&r, cur_seed);
    uint32_t max_seen = 0;
    for (int i = 0; i < 200; i++) {
        struct craft_msg m, out;
        rand_msg(&r, CRAFT_MSG_APPEND, &m, &store);
        size_t len;
        uint8_t *buf = encode_alloc(&m, &len);
        CHECK(craft_msg_decode(&d, buf, len, &out) == CRAFT_OK);
        CHECK(msg_equal(&m, &out));
        if (m.n_entries > max_seen) {
            max_seen = m.n_entries;
        }
        CHECK(d.entries_cap >= max_seen);
        CHECK(d.entries_cap <= 2 * max_seen + 16);
        free(buf);
    }
    craft_msg_decoder_free(&d);
    CHECK(d.entries == NULL && d.entries_cap == 0);
    craft_msg_decoder_free(&d); /* freeing twice is harmless */
}

/* ---- configurations ---------------------------------------------------------------- */

static void test_conf_roundtrip_random(void)
{
    uint32_t n_joint = 0, n_with_next = 0;
    for (size_t s = 0; s < N_SEEDS; s++) {
        cur_seed = seeds[s];
        struct craft_prng r;
        craft_prng_seed(&r, cur_seed);
        for (int i = 0; i < 250; i++) {
            struct craft_conf c, out;
            rand_conf(&r, &c);
            n_joint += c.n_voters_outgoing > 0;
            n_with_next += c.n_learners_next > 0;
            uint8_t buf[CONF_BYTES_MAX + 8];
            size_t len = craft_conf_encoded_size(&c);
            CHECK(len <= CONF_BYTES_MAX);
            CHECK(craft_conf_encode(&c, buf) == len);
            CHECK(craft_conf_decode(buf, len, &out) == CRAFT_OK);
            CHECK(conf_equal(&c, &out));
            for (size_t n = 0; n < len; n++) {
                CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);
            }
            buf[len] = 0;
            CHECK(craft_conf_decode(buf, len + 1, &out) == CRAFT_EMALFORMED);
        }
    }
    cur_seed = 0;
    /* The generator must exercise what it claims to. */
    CHECK(n_joint > 500);
    CHECK(n_with_next > 200);
}

/* The lists of a configuration, for encoding bad input by hand. */
struct id_list {
    const uint64_t *ids;
    uint8_t n;
};
struct raw_lists {
    struct id_list v, o, l, next; /* voters, outgoing, learners, learners_next */
};

static size_t put_ids(uint8_t *buf, size_t p, const uint64_t *ids, uint8_t n)
{
    for (uint8_t i = 0; i < n; i++, p += 8) {
        put_le64(buf + p, ids[i]);
    }
    return p;
}

/* Encodes a configuration without the encoder's validity assertion, to build bad input. */
static size_t raw_conf(uint8_t *buf, struct raw_lists x)
{
    buf[0] = x.v.n;
    buf[1] = x.o.n;
    buf[2] = x.l.n;
    buf[3] = x.next.n;
    size_t p = CONF_HEADER;
    p = put_ids(buf, p, x.v.ids, x.v.n);
    p = put_ids(buf, p, x.o.ids, x.o.n);
    p = put_ids(buf, p, x.l.ids, x.l.n);
    p = put_ids(buf, p, x.next.ids, x.next.n);
    return p;
}

#define IDS(a) {a, (uint8_t)(sizeof(a) / sizeof(a[0]))}
#define IDS_N(a, k) {a, k}
#define NO_IDS {NULL, 0}

static void test_conf_rejects(void)
{
    uint8_t buf[CONF_HEADER + 4 * 8 * 40];
    struct craft_conf out;
    const uint64_t ok3[] = {1, 2, 3}, dup[] = {1, 2, 1}, zero[] = {1, 0, 3}, four[] = {4},
                   two[] = {2};
    size_t n;

    n = raw_conf(buf, (struct raw_lists){IDS(ok3), IDS(two), IDS(four), NO_IDS});
    CHECK(n == CONF_HEADER + 5 * 8);
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_OK);
    CHECK(out.n_voters == 3 && out.n_voters_outgoing == 1 && out.n_learners == 1 &&
          out.n_learners_next == 0);
    n = raw_conf(buf, (struct raw_lists){NO_IDS, NO_IDS, NO_IDS, NO_IDS});
    CHECK(n == CONF_HEADER && craft_conf_decode(buf, n, &out) == CRAFT_OK);
    CHECK(out.n_voters == 0 && out.n_learners_next == 0);
    CHECK(craft_conf_decode(buf, 3, &out) == CRAFT_EMALFORMED); /* the old 3-byte header */

    /* Duplicates and zero ids, in each list. */
    n = raw_conf(buf, (struct raw_lists){IDS(dup), NO_IDS, NO_IDS, NO_IDS});
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);
    n = raw_conf(buf, (struct raw_lists){IDS(ok3), IDS(dup), NO_IDS, NO_IDS});
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);
    n = raw_conf(buf, (struct raw_lists){IDS(four), NO_IDS, IDS(dup), NO_IDS});
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);
    n = raw_conf(buf, (struct raw_lists){IDS(zero), NO_IDS, NO_IDS, NO_IDS});
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);
    n = raw_conf(buf, (struct raw_lists){IDS(ok3), IDS(zero), NO_IDS, NO_IDS});
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);
    n = raw_conf(buf, (struct raw_lists){IDS(four), NO_IDS, IDS(zero), NO_IDS});
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);
    /* A learner that is also a voter, incoming or outgoing. */
    n = raw_conf(buf, (struct raw_lists){IDS(ok3), NO_IDS, IDS(two), NO_IDS});
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);
    n = raw_conf(buf, (struct raw_lists){IDS(four), IDS(ok3), IDS(two), NO_IDS});
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);

    /* learners_next. Base: voters {1, 2}, outgoing {1, 2, 5, 6}, learners {4}: 5 and 6 are
     * the outgoing-only voters that may be demoted. */
    const uint64_t v12[] = {1, 2}, o1256[] = {1, 2, 5, 6}, o12[] = {1, 2}, l4[] = {4},
                   l5[] = {5}, n5[] = {5}, n56[] = {5, 6}, n65[] = {6, 5}, n565[] = {5, 6, 5},
                   n50[] = {5, 0}, n0[] = {0}, n1[] = {1}, n4[] = {4}, n7[] = {7},
                   n5_4[] = {5, 4}, n5_7[] = {5, 7}, n5_2[] = {5, 2};
    struct {
        struct raw_lists x;
        int want;
        const char *what;
    } next_cases[] = {
        {{IDS(v12), IDS(o1256), IDS(l4), IDS(n5)}, CRAFT_OK, "one demotion"},
        {{IDS(v12), IDS(o1256), IDS(l4), IDS(n56)}, CRAFT_OK, "two demotions"},
        {{IDS(v12), IDS(o1256), IDS(l4), IDS(n65)}, CRAFT_OK, "any order"},
        {{IDS(v12), IDS(o1256), NO_IDS, IDS(n56)}, CRAFT_OK, "no learners"},
        {{NO_IDS, IDS(o1256), NO_IDS, IDS(n56)}, CRAFT_OK, "no incoming voters"},
        {{IDS(v12), IDS(o1256), IDS(l4), IDS(n7)}, CRAFT_EMALFORMED, "a stranger"},
        {{IDS(v12), IDS(o1256), IDS(l4), IDS(n5_7)}, CRAFT_EMALFORMED, "a stranger second"},
        {{IDS(v12), IDS(o1256), IDS(l4), IDS(n1)}, CRAFT_EMALFORMED, "a voter in both"},
        {{IDS(v12), IDS(o1256), IDS(l4), IDS(n5_2)}, CRAFT_EMALFORMED, "a voter second"},
        {{IDS(v12), IDS(o12), IDS(l4), IDS(n4)}, CRAFT_EMALFORMED, "a learner"},
        {{IDS(v12), IDS(o1256), IDS(l4), IDS(n5_4)}, CRAFT_EMALFORMED, "a learner second"},
        {{IDS(v12), IDS(o1256), IDS(l5), IDS(n5)}, CRAFT_EMALFORMED, "outgoing and learner"},
        {{IDS(v12), IDS(o1256), IDS(l4), IDS(n565)}, CRAFT_EMALFORMED, "a duplicate"},
        {{IDS(v12), IDS(o1256), IDS(l4), IDS(n50)}, CRAFT_EMALFORMED, "a zero id"},
        {{IDS(v12), IDS(o1256), IDS(l4), IDS(n0)}, CRAFT_EMALFORMED, "only a zero id"},
        {{IDS(v12), NO_IDS, IDS(l4), IDS(n5)}, CRAFT_EMALFORMED, "not joint"},
        {{IDS(o1256), NO_IDS, NO_IDS, IDS(n5)}, CRAFT_EMALFORMED, "not joint, a voter"},
        {{NO_IDS, NO_IDS, NO_IDS, IDS(n5)}, CRAFT_EMALFORMED, "alone"},
    };
    for (size_t i = 0; i < sizeof(next_cases) / sizeof(next_cases[0]); i++) {
        struct raw_lists *x = &next_cases[i].x;
        n = raw_conf(buf, *x);
        int rv = craft_conf_decode(buf, n, &out);
        CHECK(rv == next_cases[i].want);
        if (rv != next_cases[i].want) {
            printf("  learners_next case %zu (%s): got %d\n", i, next_cases[i].what, rv);
            continue;
        }
        if (rv == CRAFT_OK) {
            /* The lists come back in order, and re-encode to the same bytes. */
            CHECK(out.n_learners_next == x->next.n &&
                  memcmp(out.learners_next, x->next.ids, x->next.n * sizeof(uint64_t)) == 0);
            CHECK(out.n_learners == x->l.n && out.n_voters_outgoing == x->o.n);
            uint8_t again[CONF_BYTES_MAX];
            CHECK(craft_conf_encoded_size(&out) == n);
            CHECK(craft_conf_encode(&out, again) == n && memcmp(again, buf, n) == 0);
            /* learners_next is the last list: cutting one id off fails. */
            CHECK(craft_conf_decode(buf, n - 8, &out) == CRAFT_EMALFORMED);
        }
    }
    /* A learners_next count with no ids behind it. */
    n = raw_conf(buf, (struct raw_lists){IDS(v12), IDS(o1256), IDS(l4), NO_IDS});
    buf[3] = 1;
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);
    buf[3] = 0;
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_OK);

    /* Counts: 32 per list is fine, 33 is not; 40 distinct nodes over two lists is not. */
    uint64_t many[40];
    for (int i = 0; i < 40; i++) {
        many[i] = (uint64_t)i + 1;
    }
    n = raw_conf(buf,
                 (struct raw_lists){IDS_N(many, CRAFT_CONF_NODES_MAX), NO_IDS, NO_IDS, NO_IDS});
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_OK);
    n = raw_conf(buf,
                 (struct raw_lists){IDS_N(many, CRAFT_CONF_NODES_MAX + 1), NO_IDS, NO_IDS, NO_IDS});
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);
    n = raw_conf(buf, (struct raw_lists){IDS_N(many, 20), IDS_N(many + 20, 20), NO_IDS, NO_IDS});
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);
    n = raw_conf(buf, (struct raw_lists){IDS_N(many, 20), IDS_N(many, 20), NO_IDS, NO_IDS});
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_OK); /* same 20 nodes twice: joint, fine */
    n = raw_conf(buf, (struct raw_lists){IDS_N(many, 20), NO_IDS, IDS_N(many + 20, 13), NO_IDS});
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);
    n = raw_conf(buf, (struct raw_lists){IDS_N(many, 20), NO_IDS, IDS_N(many + 20, 12), NO_IDS});
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_OK);
    /* The largest encoding: voters {1..16}, outgoing {1..32}, learners_next {17..32}; one
     * more demotion (33, a stranger) or learners_next count above the limit fails. */
    n = raw_conf(
        buf, (struct raw_lists){IDS_N(many, 16), IDS_N(many, 32), NO_IDS, IDS_N(many + 16, 16)});
    CHECK(n == CONF_BYTES_MAX);
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_OK);
    n = raw_conf(
        buf, (struct raw_lists){IDS_N(many, 16), IDS_N(many, 32), NO_IDS, IDS_N(many + 16, 17)});
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);
    n = raw_conf(buf, (struct raw_lists){NO_IDS, IDS_N(many, 33), NO_IDS, IDS_N(many, 33)});
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);
    buf[1] = 32;
    buf[3] = 33;
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);
    /* Counts claiming more ids than present. */
    buf[0] = 255;
    CHECK(craft_conf_decode(buf, n, &out) == CRAFT_EMALFORMED);
}

/* ---- names (src/core/names.c) ------------------------------------------------------ */

static void test_names(void)
{
    CHECK(strcmp(craft_role_name(CRAFT_LEADER), "LEADER") == 0);
    CHECK(strcmp(craft_role_name(CRAFT_PRECANDIDATE), "PRECANDIDATE") == 0);
    CHECK(strcmp(craft_role_name((enum craft_role)0), "UNKNOWN") == 0);
    CHECK(strcmp(craft_role_name((enum craft_role)99), "UNKNOWN") == 0);
    CHECK(strcmp(craft_msg_type_name(CRAFT_MSG_APPEND), "APPEND") == 0);
    CHECK(strcmp(craft_msg_type_name(CRAFT_MSG_READ_INDEX_RESP), "READ_INDEX_RESP") == 0);
    CHECK(strcmp(craft_msg_type_name(CRAFT_MSG_TYPE_COUNT_), "UNKNOWN") == 0);
    CHECK(strcmp(craft_msg_type_name((enum craft_msg_type)0), "UNKNOWN") == 0);
    int n_resp = 0;
    for (int t = CRAFT_MSG_APPEND; t < CRAFT_MSG_TYPE_COUNT_; t++) {
        const char *name = craft_msg_type_name((enum craft_msg_type)t);
        CHECK(strcmp(name, "UNKNOWN") != 0);
        bool resp = craft_msg_type_is_response((enum craft_msg_type)t);
        size_t nl = strlen(name);
        CHECK(resp == (nl > 5 && strcmp(name + nl - 5, "_RESP") == 0));
        n_resp += resp;
    }
    CHECK(n_resp == 6);
    CHECK(!craft_msg_type_is_response(CRAFT_MSG_TYPE_COUNT_));
}

int main(void)
{
    run_case("roundtrip_random", test_roundtrip_random);
    run_case("roundtrip_each_type_minimal", test_roundtrip_each_type_minimal);
    run_case("every_truncation_fails", test_every_truncation_fails);
    run_case("byte_flips_fail_or_reencode", test_byte_flips_fail_or_reencode);
    run_case("trailing_bytes_fail", test_trailing_bytes_fail);
    run_case("bad_version", test_bad_version);
    run_case("bad_type_and_flags", test_bad_type_and_flags);
    run_case("bad_entries", test_bad_entries);
    run_case("snapshot_lengths", test_snapshot_lengths);
    run_case("decoder_reuse_and_growth", test_decoder_reuse_and_growth);
    run_case("conf_roundtrip_random", test_conf_roundtrip_random);
    run_case("conf_rejects", test_conf_rejects);
    run_case("names", test_names);
    return unit_finish();
}
