/* The encoding of the shard controller's requests (ctrler.h): one log entry each. The
 * encoder and the decoder share one shape check, so whatever decodes would also encode. */
#include <string.h>

#include "base/bytes.h"
#include "base/err.h"
#include "shard/ctrler.h"

static bool group_shape_ok(const struct craft_shard_group *g)
{
    if (g->n_servers == 0 || g->n_servers > CRAFT_SHARD_SERVERS_MAX) {
        return false;
    }
    for (uint32_t j = 0; j < g->n_servers; j++) {
        size_t len = strnlen(g->servers[j], CRAFT_SHARD_ADDR_BYTES);
        if (len == 0 || len >= CRAFT_SHARD_ADDR_BYTES) {
            return false;
        }
    }
    return true;
}

static bool shape_ok(const struct craft_shard_request *r)
{
    bool change = r->op != CRAFT_SHARD_OP_QUERY && r->op != CRAFT_SHARD_OP_REGISTER;
    if (change != (r->seq != 0) || (change && r->client == 0) ||
        (r->op == CRAFT_SHARD_OP_REGISTER && r->client != 0)) {
        return false;
    }
    switch (r->op) {
    case CRAFT_SHARD_OP_JOIN:
        if (r->n == 0 || r->n > CRAFT_SHARD_GROUPS_MAX) {
            return false;
        }
        for (uint32_t i = 0; i < r->n; i++) {
            if (!group_shape_ok(&r->groups[i])) {
                return false;
            }
        }
        return true;
    case CRAFT_SHARD_OP_LEAVE:
        return r->n >= 1 && r->n <= CRAFT_SHARD_GROUPS_MAX;
    case CRAFT_SHARD_OP_MOVE:
    case CRAFT_SHARD_OP_QUERY:
    case CRAFT_SHARD_OP_REGISTER:
        return true;
    default:
        return false;
    }
}

static size_t request_size(const struct craft_shard_request *r)
{
    size_t n = 1 + 1 + 8 + 8;
    switch (r->op) {
    case CRAFT_SHARD_OP_JOIN:
        n += 1;
        for (uint32_t i = 0; i < r->n; i++) {
            n += 8 + 1;
            for (uint32_t j = 0; j < r->groups[i].n_servers; j++) {
                n += 1 + strlen(r->groups[i].servers[j]);
            }
        }
        return n;
    case CRAFT_SHARD_OP_LEAVE:
        return n + 1 + 8 * (size_t)r->n;
    case CRAFT_SHARD_OP_MOVE:
        return n + 2 + 2 + 8;
    case CRAFT_SHARD_OP_REGISTER:
        return n;
    default:
        return n + 8;
    }
}

static uint8_t *put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    craft_put_u64(p, v);
    return p + 8;
}

int craft_shard_request_encode(const struct craft_shard_request *r, uint8_t *buf, size_t cap,
                               size_t *len)
{
    if (!shape_ok(r)) {
        return CRAFT_EINVAL;
    }
    size_t need = request_size(r);
    if (need > cap) {
        return CRAFT_ETOOBIG;
    }
    uint8_t *p = buf;
    *p++ = CRAFT_SHARD_REQUEST_VERSION;
    *p++ = r->op;
    p = put_u64(p, r->client);
    p = put_u64(p, r->seq);
    switch (r->op) {
    case CRAFT_SHARD_OP_JOIN:
        *p++ = (uint8_t)r->n;
        for (uint32_t i = 0; i < r->n; i++) {
            const struct craft_shard_group *g = &r->groups[i];
            p = put_u64(p, g->gid);
            *p++ = (uint8_t)g->n_servers;
            for (uint32_t j = 0; j < g->n_servers; j++) {
                size_t l = strlen(g->servers[j]);
                *p++ = (uint8_t)l;
                memcpy(p, g->servers[j], l);
                p += l;
            }
        }
        break;
    case CRAFT_SHARD_OP_LEAVE:
        *p++ = (uint8_t)r->n;
        for (uint32_t i = 0; i < r->n; i++) {
            p = put_u64(p, r->gids[i]);
        }
        break;
    case CRAFT_SHARD_OP_MOVE:
        p = put_u16(p, r->first);
        p = put_u16(p, r->last);
        p = put_u64(p, r->gid);
        break;
    case CRAFT_SHARD_OP_REGISTER:
        break;
    default:
        p = put_u64(p, r->num);
        break;
    }
    *len = (size_t)(p - buf);
    return CRAFT_OK;
}

static bool take_u64(struct craft_reader *r, uint64_t *v)
{
    const uint8_t *b = craft_take(r, 8);
    if (b != NULL) {
        *v = craft_get_u64(b);
    }
    return b != NULL;
}

static bool take_u16(struct craft_reader *r, uint16_t *v)
{
    const uint8_t *b = craft_take(r, 2);
    if (b != NULL) {
        *v = (uint16_t)(b[0] | b[1] << 8);
    }
    return b != NULL;
}

static bool take_group(struct craft_reader *r, struct craft_shard_group *g)
{
    const uint8_t *b;
    if (!take_u64(r, &g->gid) || (b = craft_take(r, 1)) == NULL) {
        return false;
    }
    g->n_servers = b[0];
    if (g->n_servers > CRAFT_SHARD_SERVERS_MAX) {
        return false;
    }
    for (uint32_t j = 0; j < g->n_servers; j++) {
        const uint8_t *l = craft_take(r, 1), *s;
        if (l == NULL || l[0] >= CRAFT_SHARD_ADDR_BYTES || (s = craft_take(r, l[0])) == NULL ||
            memchr(s, '\0', l[0]) != NULL) {
            return false;
        }
        memcpy(g->servers[j], s, l[0]); /* the rest is zero: NUL-ended */
    }
    return true;
}

int craft_shard_request_decode(const uint8_t *p, size_t len, struct craft_shard_request *r)
{
    struct craft_reader rd = {p, len};
    const uint8_t *b = craft_take(&rd, 1);
    if (b == NULL) {
        return CRAFT_EMALFORMED;
    }
    if (b[0] != CRAFT_SHARD_REQUEST_VERSION) {
        return CRAFT_EVERSION;
    }
    memset(r, 0, sizeof *r);
    if ((b = craft_take(&rd, 1)) == NULL || !take_u64(&rd, &r->client) || !take_u64(&rd, &r->seq)) {
        return CRAFT_EMALFORMED;
    }
    r->op = b[0];
    bool ok;
    switch (r->op) {
    case CRAFT_SHARD_OP_JOIN:
    case CRAFT_SHARD_OP_LEAVE:
        ok = (b = craft_take(&rd, 1)) != NULL && b[0] <= CRAFT_SHARD_GROUPS_MAX;
        if (ok) {
            r->n = b[0];
        }
        for (uint32_t i = 0; ok && i < r->n; i++) {
            ok = r->op == CRAFT_SHARD_OP_JOIN ? take_group(&rd, &r->groups[i])
                                              : take_u64(&rd, &r->gids[i]);
        }
        break;
    case CRAFT_SHARD_OP_MOVE:
        ok = take_u16(&rd, &r->first) && take_u16(&rd, &r->last) && take_u64(&rd, &r->gid);
        break;
    case CRAFT_SHARD_OP_QUERY:
        ok = take_u64(&rd, &r->num);
        break;
    case CRAFT_SHARD_OP_REGISTER:
        ok = true;
        break;
    default:
        ok = false;
        break;
    }
    return ok && rd.left == 0 && shape_ok(r) ? CRAFT_OK : CRAFT_EMALFORMED;
}
