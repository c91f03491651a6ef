/* libFuzzer target: the shard configuration decoder (src/shard/config_codec.c) and a shard
 * group's view decoder (src/shard/view.c, two configurations and slot states) on arbitrary
 * bytes. A view is refused likewise, or is valid and re-encodes to exactly the input, and
 * takes the next configuration (a Join of a new group) as the transitions allow.
 * The configuration decoder It refuses with CRAFT_ECORRUPT or CRAFT_EVERSION, or accepts a configuration that
 * is valid, whose size is what it read, and which re-encodes to exactly the input (the
 * encoding is canonical); accepted configurations then take a Join, a Leave and a Move,
 * whose results are valid and round-trip too. ASan/UBSan catch any read outside the input. */
#include <string.h>

#include "base/assert.h"
#include "base/err.h"
#include "shard/config.h"
#include "shard/view.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct craft_shard_config c, n, d;
static uint8_t buf[CRAFT_SHARD_VIEW_BYTES_MAX];
static struct craft_shard_view v;

static void view(const uint8_t *data, size_t size)
{
    int rc = craft_shard_view_decode(data, size, &v);
    if (rc != CRAFT_OK) {
        CRAFT_ASSERT(rc == CRAFT_ECORRUPT || rc == CRAFT_EVERSION);
        return;
    }
    CRAFT_ASSERT(craft_shard_view_valid(&v) && craft_shard_view_size(&v) == size);
    CRAFT_ASSERT(craft_shard_view_encode(&v, buf, sizeof buf) == size &&
                 memcmp(buf, data, size) == 0);
    struct craft_shard_group g = {.gid = v.gid + 1, .n_servers = 1};
    memcpy(g.servers[0], "127.0.0.1:7000", 15);
    bool changed, settled = craft_shard_view_settled(&v);
    if (g.gid != 0 && craft_shard_join(&v.cur, &g, 1, &n, NULL, 0) == CRAFT_OK) {
        rc = craft_shard_view_config(&v, &n, &changed, NULL, 0);
        CRAFT_ASSERT(rc == (settled ? CRAFT_OK : CRAFT_EBUSY) && changed == settled);
        CRAFT_ASSERT(craft_shard_view_valid(&v));
    }
}

static void roundtrip(const struct craft_shard_config *x)
{
    size_t len = craft_shard_config_encode(x, buf, sizeof buf);
    CRAFT_ASSERT(len == craft_shard_config_size(x));
    CRAFT_ASSERT(craft_shard_config_decode(buf, len, &d) == CRAFT_OK);
    CRAFT_ASSERT(memcmp(x, &d, sizeof d) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    view(data, size);
    int rc = craft_shard_config_decode(data, size, &c);
    if (rc != CRAFT_OK) {
        CRAFT_ASSERT(rc == CRAFT_ECORRUPT || rc == CRAFT_EVERSION);
        return 0;
    }
    CRAFT_ASSERT(craft_shard_config_valid(&c));
    CRAFT_ASSERT(craft_shard_config_size(&c) == size);
    size_t len = craft_shard_config_encode(&c, buf, sizeof buf);
    CRAFT_ASSERT(len == size && memcmp(buf, data, size) == 0);
    struct craft_shard_group g = {.gid = c.n_groups ? c.groups[c.n_groups - 1].gid + 1 : 1,
                                  .n_servers = 1};
    memcpy(g.servers[0], "127.0.0.1:7000", 15);
    if (g.gid != 0 && craft_shard_join(&c, &g, 1, &n, NULL, 0) == CRAFT_OK) {
        roundtrip(&n);
    }
    if (c.n_groups > 1) {
        CRAFT_ASSERT(craft_shard_leave(&c, &c.groups[0].gid, 1, &n, NULL, 0) == CRAFT_OK);
        roundtrip(&n);
    }
    if (c.n_groups > 0) {
        CRAFT_ASSERT(craft_shard_move(&c, 0, CRAFT_SLOTS - 1, c.groups[0].gid, &n, NULL, 0) ==
                     CRAFT_OK);
        roundtrip(&n);
    }
    return 0;
}
