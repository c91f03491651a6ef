/* The encoding of a configuration: the payload of CONF entries (which the core writes) and
 * part of snapshot metadata (which the codec embeds in messages).
 *
 * Layout (little-endian): u8 n_voters, u8 n_voters_outgoing, u8 n_learners,
 * u8 n_learners_next, then the u64 ids list by list. Canonical: a successful decode
 * re-encodes to its input. */
#include <string.h>

#include "base/assert.h"
#include "core/core.h"

enum { CONF_HEADER_BYTES = 4 };

static bool id_in(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

static bool ids_valid(const uint64_t *ids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == CRAFT_NONE || id_in(ids, i, ids[i])) {
            return false;
        }
    }
    return true;
}

bool craft_conf_valid(const struct craft_conf *c)
{
    if (c->n_voters > CRAFT_CONF_NODES_MAX || c->n_voters_outgoing > CRAFT_CONF_NODES_MAX ||
        c->n_learners > CRAFT_CONF_NODES_MAX || c->n_learners_next > CRAFT_CONF_NODES_MAX) {
        return false;
    }
    if (!ids_valid(c->voters, c->n_voters) ||
        !ids_valid(c->voters_outgoing, c->n_voters_outgoing) ||
        !ids_valid(c->learners, c->n_learners) ||
        !ids_valid(c->learners_next, c->n_learners_next)) {
        return false;
    }
    /* learners_next: outgoing voters only, and only while joint. */
    for (uint32_t i = 0; i < c->n_learners_next; i++) {
        uint64_t id = c->learners_next[i];
        if (!id_in(c->voters_outgoing, c->n_voters_outgoing, id) ||
            id_in(c->voters, c->n_voters, id) || id_in(c->learners, c->n_learners, id)) {
            return false;
        }
    }
    uint32_t distinct = c->n_voters + c->n_learners;
    for (uint32_t i = 0; i < c->n_voters_outgoing; i++) {
        if (!id_in(c->voters, c->n_voters, c->voters_outgoing[i])) {
            distinct++;
        }
    }
    for (uint32_t i = 0; i < c->n_learners; i++) {
        if (id_in(c->voters, c->n_voters, c->learners[i]) ||
            id_in(c->voters_outgoing, c->n_voters_outgoing, c->learners[i])) {
            return false;
        }
    }
    return distinct <= CRAFT_CONF_NODES_MAX;
}

size_t craft_conf_encoded_size(const struct craft_conf *conf)
{
    return CONF_HEADER_BYTES + 8 * ((size_t)conf->n_voters + conf->n_voters_outgoing +
                                    conf->n_learners + conf->n_learners_next);
}

static uint8_t *put_ids(uint8_t *p, const uint64_t *ids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        for (int b = 0; b < 8; b++) {
            *p++ = (uint8_t)(ids[i] >> (8 * b));
        }
    }
    return p;
}

size_t craft_conf_encode(const struct craft_conf *conf, uint8_t *buf)
{
    CRAFT_ASSERT(craft_conf_valid(conf));
    uint8_t *p = buf;
    *p++ = (uint8_t)conf->n_voters;
    *p++ = (uint8_t)conf->n_voters_outgoing;
    *p++ = (uint8_t)conf->n_learners;
    *p++ = (uint8_t)conf->n_learners_next;
    p = put_ids(p, conf->voters, conf->n_voters);
    p = put_ids(p, conf->voters_outgoing, conf->n_voters_outgoing);
    p = put_ids(p, conf->learners, conf->n_learners);
    p = put_ids(p, conf->learners_next, conf->n_learners_next);
    size_t n = (size_t)(p - buf);
    CRAFT_ASSERT(n == craft_conf_encoded_size(conf));
    return n;
}

static const uint8_t *get_ids(const uint8_t *p, uint64_t *ids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint64_t x = 0;
        for (int b = 0; b < 8; b++) {
            x |= (uint64_t)p[b] << (8 * b);
        }
        ids[i] = x;
        p += 8;
    }
    return p;
}

int craft_conf_decode(const uint8_t *buf, size_t len, struct craft_conf *out)
{
    if (len < CONF_HEADER_BYTES) {
        return CRAFT_EMALFORMED;
    }
    uint8_t nv = buf[0], no = buf[1], nl = buf[2], nn = buf[3];
    if (nv > CRAFT_CONF_NODES_MAX || no > CRAFT_CONF_NODES_MAX || nl > CRAFT_CONF_NODES_MAX ||
        nn > CRAFT_CONF_NODES_MAX) {
        return CRAFT_EMALFORMED;
    }
    /* Exact length: counts are checked above, so this cannot overflow. */
    if (len != CONF_HEADER_BYTES + 8 * ((size_t)nv + no + nl + nn)) {
        return CRAFT_EMALFORMED;
    }
    memset(out, 0, sizeof *out);
    out->n_voters = nv;
    out->n_voters_outgoing = no;
    out->n_learners = nl;
    out->n_learners_next = nn;
    const uint8_t *p = buf + CONF_HEADER_BYTES;
    p = get_ids(p, out->voters, nv);
    p = get_ids(p, out->voters_outgoing, no);
    p = get_ids(p, out->learners, nl);
    p = get_ids(p, out->learners_next, nn);
    CRAFT_ASSERT(p == buf + len);
    return craft_conf_valid(out) ? CRAFT_OK : CRAFT_EMALFORMED;
}
