/* The encoding of a shard configuration (config.h). Canonical: one configuration, one
 * byte string, so replicas that encode the same configuration write the same bytes, and
 * the decoder refuses any other spelling of it. */
#include <string.h>

#include "base/assert.h"
#include "base/bytes.h"
#include "base/err.h"
#include "shard/config.h"
#include "shard/runs.h"

_Static_assert(CRAFT_SHARD_ADDR_BYTES - 1 <= UINT8_MAX, "a server's length fits u8");

size_t craft_shard_config_size(const struct craft_shard_config *c)
{
    size_t n = 1 + 8 + 1;
    for (uint32_t i = 0; i < c->n_groups; i++) {
        n += 8 + 1;
        for (uint32_t j = 0; j < c->groups[i].n_servers; j++) {
            n += 1 + strlen(c->groups[i].servers[j]);
        }
    }
    return n + craft_slot_runs_size(c->owner);
}

size_t craft_shard_config_encode(const struct craft_shard_config *c, uint8_t *buf, size_t cap)
{
    CRAFT_ASSERT(craft_shard_config_valid(c));
    size_t need = craft_shard_config_size(c);
    CRAFT_ASSERT(cap >= need && need <= CRAFT_SHARD_CONFIG_BYTES_MAX);
    uint8_t *p = buf;
    *p++ = CRAFT_SHARD_CONFIG_VERSION;
    craft_put_u64(p, c->num);
    p += 8;
    *p++ = (uint8_t)c->n_groups;
    for (uint32_t i = 0; i < c->n_groups; i++) {
        const struct craft_shard_group *g = &c->groups[i];
        craft_put_u64(p, g->gid);
        p += 8;
        *p++ = (uint8_t)g->n_servers;
        for (uint32_t j = 0; j < g->n_servers; j++) {
            size_t len = strlen(g->servers[j]);
            *p++ = (uint8_t)len;
            memcpy(p, g->servers[j], len);
            p += len;
        }
    }
    p += craft_slot_runs_encode(c->owner, p);
    CRAFT_ASSERT((size_t)(p - buf) == need);
    return need;
}

int craft_shard_config_decode(const uint8_t *p, size_t len, struct craft_shard_config *c)
{
    struct craft_reader r = {p, len};
    const uint8_t *b;
    if ((b = craft_take(&r, 1)) == NULL) {
        return CRAFT_ECORRUPT;
    }
    if (b[0] != CRAFT_SHARD_CONFIG_VERSION) {
        return CRAFT_EVERSION;
    }
    memset(c, 0, sizeof *c);
    if ((b = craft_take(&r, 9)) == NULL || b[8] > CRAFT_SHARD_GROUPS_MAX) {
        return CRAFT_ECORRUPT;
    }
    c->num = craft_get_u64(b);
    c->n_groups = b[8];
    for (uint32_t i = 0; i < c->n_groups; i++) {
        struct craft_shard_group *g = &c->groups[i];
        if ((b = craft_take(&r, 9)) == NULL || b[8] == 0 || b[8] > CRAFT_SHARD_SERVERS_MAX) {
            return CRAFT_ECORRUPT;
        }
        g->gid = craft_get_u64(b);
        g->n_servers = b[8];
        for (uint32_t j = 0; j < g->n_servers; j++) {
            const uint8_t *s;
            if ((b = craft_take(&r, 1)) == NULL || b[0] == 0 || b[0] >= CRAFT_SHARD_ADDR_BYTES ||
                (s = craft_take(&r, b[0])) == NULL || memchr(s, '\0', b[0]) != NULL) {
                return CRAFT_ECORRUPT;
            }
            memcpy(g->servers[j], s, b[0]); /* the rest of the array is zero: NUL-ended */
        }
    }
    if (craft_slot_runs_decode(&r, c->owner) != CRAFT_OK || r.left != 0 ||
        !craft_shard_config_valid(c)) {
        return CRAFT_ECORRUPT;
    }
    return CRAFT_OK;
}
