/* libFuzzer target: the shard controller's two decoders (src/shard/ctrler*.c) on arbitrary
 * bytes. The first byte chooses. Even: a log entry (a request). The decoder refuses with
 * CRAFT_EMALFORMED or CRAFT_EVERSION, or accepts a request that re-encodes to exactly the
 * input, and applying it to a controller with two groups leaves a valid configuration.
 * Odd: a snapshot, installed at the index it says it covers. Restore refuses with
 * CRAFT_ECORRUPT or CRAFT_EVERSION and leaves the controller as it was, or accepts a state
 * whose snapshot is exactly the input and which takes a query, a change and a
 * registration. ASan/UBSan catch any read outside the input. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/bytes.h"
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

/* Client 1 (registered at index 1) joins groups 1 and 2 (indexes 2 and 3). */
static void two_groups(struct craft_shard_ctrler *c)
{
    memset(&req, 0, sizeof req);
    req.op = CRAFT_SHARD_OP_REGISTER;
    apply_req(c, 1);
    for (uint64_t gid = 1; gid <= 2; gid++) {
        memset(&req, 0, sizeof req);
        req = (struct craft_shard_request){.op = CRAFT_SHARD_OP_JOIN, .client = 1, .seq = gid,
                                           .n = 1};
        req.groups[0].gid = gid;
        req.groups[0].n_servers = 1;
        memcpy(req.groups[0].servers[0], "127.0.0.1:7000", 15);
        apply_req(c, gid + 1);
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
    apply_req(c, 4);
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
    /* Installed at the index the snapshot says it covers (so a restored snapshot is the
     * input again), or at 3 when it is too short to say. */
    uint64_t index = size >= 9 ? craft_get_u64(data + 1) : 3;
    int rc = craft_shard_ctrler_restore(c, data, size, index);
    CRAFT_ASSERT(craft_shard_ctrler_snapshot(c, &after, &after_len) == CRAFT_OK);
    if (rc != CRAFT_OK) {
        CRAFT_ASSERT(rc == CRAFT_ECORRUPT || rc == CRAFT_EVERSION);
        CRAFT_ASSERT(after_len == before_len && memcmp(after, before, after_len) == 0);
    } else {
        CRAFT_ASSERT(after_len == size && memcmp(after, data, size) == 0);
        CRAFT_ASSERT(craft_shard_config_valid(craft_shard_ctrler_latest(c)));
        uint64_t at = craft_shard_ctrler_applied(c);
        CRAFT_ASSERT(at == index);
        /* Past the last index a log can hold, no entry can follow (check_msg refuses
         * indexes from 2^62 on). */
        if (at < UINT64_C(1) << 62) {
            memset(&req, 0, sizeof req);
            req = (struct craft_shard_request){.op = CRAFT_SHARD_OP_QUERY, .client = 3,
                                               .num = 1};
            apply_req(c, at + 1);
            req = (struct craft_shard_request){.op = CRAFT_SHARD_OP_MOVE, .client = 3, .seq = 1,
                                               .first = 0, .last = 5, .gid = 1};
            apply_req(c, at + 2);
            req = (struct craft_shard_request){.op = CRAFT_SHARD_OP_REGISTER};
            apply_req(c, at + 3);
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
