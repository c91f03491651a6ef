/* libFuzzer target: craft_msg_decode on arbitrary bytes.
 *
 * Any input must either fail cleanly or decode to a message whose encoding is exactly the
 * input (the encoding is canonical) and decodes again to an equal message, field by field.
 * ASan/UBSan catch any read outside the input. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "codec/msg_codec.h"
#include "../msg_equal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Kept across inputs so that scratch reuse and growth are fuzzed too; still reachable at
     * exit, so LeakSanitizer does not report it. */
    static struct craft_msg_decoder d1, d2;
    struct craft_msg m1, m2;
    int rv = craft_msg_decode(&d1, data, size, &m1);
    if (rv != CRAFT_OK) {
        CRAFT_ASSERT(rv == CRAFT_EMALFORMED || rv == CRAFT_EVERSION || rv == CRAFT_ETOOBIG);
        return 0;
    }
    CRAFT_ASSERT(craft_msg_peek_type(data, size) == m1.type);
    size_t n = craft_msg_encoded_size(&m1);
    CRAFT_ASSERT(n == size);
    uint8_t *buf = malloc(n);
    CRAFT_ASSERT(buf != NULL);
    CRAFT_ASSERT(craft_msg_encode(&m1, buf) == n);
    CRAFT_ASSERT(memcmp(buf, data, n) == 0);
    CRAFT_ASSERT(craft_msg_decode(&d2, buf, n, &m2) == CRAFT_OK);
    CRAFT_ASSERT(msg_equal(&m1, &m2));
    free(buf);
    return 0;
}
