/* libFuzzer target: craft_conf_decode on arbitrary bytes.
 *
 * Any input must either fail cleanly or decode to a configuration that re-encodes to exactly
 * the input (craft_conf_encode asserts the configuration rules: non-zero unique ids, learners
 * apart from voters, at most CRAFT_CONF_NODES_MAX nodes) and decodes again to the same. */
#include <string.h>

#include "base/assert.h"
#include "codec/msg_codec.h"

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
    CRAFT_ASSERT(c1.n_voters == c2.n_voters && c1.n_voters_outgoing == c2.n_voters_outgoing &&
                 c1.n_learners == c2.n_learners && c1.n_learners_next == c2.n_learners_next);
    CRAFT_ASSERT(memcmp(c1.voters, c2.voters, c1.n_voters * sizeof(uint64_t)) == 0);
    CRAFT_ASSERT(memcmp(c1.voters_outgoing, c2.voters_outgoing,
                        c1.n_voters_outgoing * sizeof(uint64_t)) == 0);
    CRAFT_ASSERT(memcmp(c1.learners, c2.learners, c1.n_learners * sizeof(uint64_t)) == 0);
    CRAFT_ASSERT(memcmp(c1.learners_next, c2.learners_next,
                        c1.n_learners_next * sizeof(uint64_t)) == 0);
    return 0;
}
