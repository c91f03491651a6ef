/* libFuzzer target: craft_conf_decode on arbitrary bytes.
 *
 * Any input must either fail cleanly or decode to a configuration that re-encodes to exactly
 * the input (craft_conf_encode asserts the configuration rules: non-zero unique ids, learners
 * apart from voters, at most CRAFT_CONF_NODES_MAX nodes) and decodes again to the same. */
#include <string.h>

#include "base/assert.h"
#include "codec/msg_codec.h"
#include "../msg_equal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct craft_conf c1, c2;
    int rv = craft_conf_decode(data, size, &c1);
    if (rv != CRAFT_OK) {
        CRAFT_ASSERT(rv == CRAFT_EMALFORMED);
        return 0;
    }
    uint8_t buf[4 + 4 * 8 * CRAFT_CONF_NODES_MAX];
    size_t n = craft_conf_encoded_size(&c1);
    CRAFT_ASSERT(n == size && n <= sizeof(buf));
    CRAFT_ASSERT(craft_conf_encode(&c1, buf) == n);
    CRAFT_ASSERT(memcmp(buf, data, n) == 0);
    CRAFT_ASSERT(craft_conf_decode(buf, n, &c2) == CRAFT_OK);
    CRAFT_ASSERT(conf_equal(&c1, &c2));
    return 0;
}
