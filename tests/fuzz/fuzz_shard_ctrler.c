/* libFuzzer target: the shard controller's two decoders (src/shard/ctrler*.c) on arbitrary
 * bytes. The first byte chooses. Even: a log entry (a request). The decoder refuses with
 * CRAFT_EMALFORMED or CRAFT_EVERSION, or accepts a request that re-encodes to exactly the
 * input, and applying it to a controller with two groups leaves a valid configuration.
 * Odd: a snapshot. Restore refuses with CRAFT_ECORRUPT or CRAFT_EVERSION and leaves the
 * controller as it was, or accepts a state whose snapshot is exactly the input and which
 * takes a query and a change. ASan/UBSan catch any read outside the input. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/err.h"
#include "shard/ctrler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct craft_shard_request req;
static uint8_t buf[CRAFT_SHARD_REQUEST_BYTES_MAX];

static void apply_req(struct craft_shard_ctrler *c, uint64_t index)
{
    size_t len;
    CRAFT_ASSERT(craft_shard_request_encode(&req, buf, sizeof buf, &len) == CRAFT_OK);
    struct craft_shard_ctrler_result res;
    CRAFT_ASSERT(craft_shard_ctrler_apply(c, index, buf, len, &res) == CRAFT_OK);
    CRAFT_ASSERT(res.status == CRAFT_OK || res.status == CRAFT_EINVAL ||
                 res.status == CRAFT_ESTALE);
    CRAFT_ASSERT(craft_shard_config_valid(craft_shard_ctrler_latest(c)));
}

static void two_groups(struct craft_shard_ctrler *c)
{
    for (uint64_t gid = 1; gid <= 2; gid++) {
        memset(&req, 0, sizeof req);
        req = (struct craft_shard_request){.op = CRAFT_SHARD_OP_JOIN, .client = 1, .seq = gid,
                                           .n = 1};
        req.groups[0].gid = gid;
        req.groups[0].n_servers = 1;
        memcpy(req.groups[0].servers[0], "127.0.0.1:7000", 15);
        apply_req(c, gid);
    }
}

static void fuzz_request(const uint8_t *data, size_t size)
{
    int rc = craft_shard_request_decode(data, size, &req);
    if (rc != CRAFT_OK) {
        CRAFT_ASSERT(rc == CRAFT_EMALFORMED || rc == CRAFT_EVERSION);
        return;
    }
    size_t len;
    CRAFT_ASSERT(craft_shard_request_encode(&req, buf, sizeof buf, &len) == CRAFT_OK);
    CRAFT_ASSERT(len == size && memcmp(buf, data, size) == 0);
    struct craft_shard_ctrler *c;
    CRAFT_ASSERT(craft_shard_ctrler_open(&c) == CRAFT_OK);
    struct craft_shard_request keep = req;
    two_groups(c);
    req = keep;
    apply_req(c, 3);
    craft_shard_ctrler_close(c);
}

static void fuzz_snapshot(const uint8_t *data, size_t size)
{
    struct craft_shard_ctrler *c;
    CRAFT_ASSERT(craft_shard_ctrler_open(&c) == CRAFT_OK);
    two_groups(c);
    uint8_t *before, *after;
    size_t before_len, after_len;
    CRAFT_ASSERT(craft_shard_ctrler_snapshot(c, &before, &before_len) == CRAFT_OK);
    int rc = craft_shard_ctrler_restore(c, data, size);
    CRAFT_ASSERT(craft_shard_ctrler_snapshot(c, &after, &after_len) == CRAFT_OK);
    if (rc != CRAFT_OK) {
        CRAFT_ASSERT(rc == CRAFT_ECORRUPT || rc == CRAFT_EVERSION);
        CRAFT_ASSERT(after_len == before_len && memcmp(after, before, after_len) == 0);
    } else {
        CRAFT_ASSERT(after_len == size && memcmp(after, data, size) == 0);
        CRAFT_ASSERT(craft_shard_config_valid(craft_shard_ctrler_latest(c)));
        uint64_t at = craft_shard_ctrler_applied(c);
        if (at < UINT64_MAX - 2) {
            memset(&req, 0, sizeof req);
            req = (struct craft_shard_request){.op = CRAFT_SHARD_OP_QUERY, .client = 3,
                                               .num = 1};
            apply_req(c, at + 1);
            req = (struct craft_shard_request){.op = CRAFT_SHARD_OP_MOVE, .client = 3, .seq = 1,
                                               .first = 0, .last = 5, .gid = 1};
            apply_req(c, at + 2);
        }
    }
    free(before);
    free(after);
    craft_shard_ctrler_close(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    if (data[0] % 2 == 0) {
        fuzz_request(data + 1, size - 1);
    } else {
        fuzz_snapshot(data + 1, size - 1);
    }
    return 0;
}
