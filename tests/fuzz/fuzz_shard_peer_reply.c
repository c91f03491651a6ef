/* libFuzzer target: the replies a sharded craftkv's driver reads from another process
 * (src/kv/server_shard_peer.c): CRAFT.SHARD STATE's and EXPORT's, any bytes.
 *
 * Input: byte 0 picks the decoder (even: STATE, odd: EXPORT), the rest is the reply. The
 * slot set an export is asked for is every slot, so that a valid payload can pass. A
 * decoder must return one of its codes, never read outside the reply (ASan), and what it
 * accepts must be consistent: a state with every byte a slot state, a payload inside the
 * reply that kv_payload_open accepts, a cursor that fits. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "kv/kv_shard.h"
#include "kv/server_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* A copy of its own: ASan sees the reply's exact bounds. */
    size_t len = size - 1;
    char *b = malloc(len ? len : 1);
    if (!b)
        return 0;
    memcpy(b, data + 1, len);
    int rc;
    if ((data[0] & 1) == 0) {
        static struct craftkv_peer_state st;
        rc = craftkv_peer_state_decode(b, len, &st);
        if (rc == CRAFT_OK)
            for (size_t k = 0; k < CRAFT_SLOTS; k++)
                CRAFT_ASSERT(st.state[k] < CRAFT_SLOT_STATES);
    } else {
        struct craft_slot_set all;
        memset(all.bits, 0xff, sizeof all.bits);
        const uint8_t *payload = NULL;
        size_t plen = 0;
        bool part = false;
        struct craft_kv_export_cursor cur = {0};
        rc = craftkv_peer_export_decode(b, len, &all, &payload, &plen, &part, &cur);
        if (rc == CRAFT_OK) {
            struct kv_payload pl;
            CRAFT_ASSERT(payload >= (const uint8_t *)b && plen <= len &&
                         payload + plen <= (const uint8_t *)b + len);
            CRAFT_ASSERT(kv_payload_open(payload, plen, &pl) == CRAFT_OK && pl.part == part);
            CRAFT_ASSERT(cur.len <= sizeof cur.key);
        }
    }
    CRAFT_ASSERT(rc == CRAFT_OK || rc == CRAFT_EBUSY || rc == CRAFT_EIO || rc == CRAFT_ECORRUPT);
    free(b);
    return 0;
}
