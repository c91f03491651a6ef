/* libFuzzer target: the TCP transport's frame and handshake decoding on arbitrary bytes.
 *
 * The input is treated as a received byte stream, as the transport's receive path does:
 * the first frame is the handshake (its own size limit), later frames are group-addressed
 * messages. Every decoded frame must lie inside the input and respect the limit; a decoded
 * handshake and a message frame's header must re-encode to the same bytes; a message that
 * decodes as a host message (runtime/host_msg.h) must re-encode to its bytes. ASan/UBSan
 * catch any read outside the input. */
#include <stdbool.h>
#include <string.h>

#include "base/assert.h"
#include "base/err.h"
#include "runtime/host_msg.h"
#include "transport/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_FRAME_MAX 1024u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    bool handshaken = false;
    for (;;) {
        uint32_t max = handshaken ? FUZZ_FRAME_MAX : CRAFT_HANDSHAKE_BYTES;
        struct craft_frame f;
        int rc = craft_frame_decode(data + off, size - off, max, &f);
        if (rc != CRAFT_OK) {
            CRAFT_ASSERT(rc == CRAFT_ETOOBIG || rc == CRAFT_EMALFORMED);
            CRAFT_ASSERT(size - off >= CRAFT_FRAME_HEADER_BYTES);
            break;
        }
        if (f.consumed == 0) {
            CRAFT_ASSERT(f.payload == NULL && f.payload_len == 0);
            break;
        }
        CRAFT_ASSERT(f.payload == data + off + CRAFT_FRAME_HEADER_BYTES);
        CRAFT_ASSERT(f.payload_len >= 1 && f.payload_len <= max);
        CRAFT_ASSERT(f.consumed == CRAFT_FRAME_HEADER_BYTES + f.payload_len);
        CRAFT_ASSERT(off + f.consumed <= size);
        uint8_t hdr[CRAFT_FRAME_HEADER_BYTES];
        craft_frame_header_encode(hdr, f.payload_len);
        CRAFT_ASSERT(memcmp(hdr, data + off, sizeof(hdr)) == 0);
        if (!handshaken) {
            struct craft_handshake hs;
            rc = craft_handshake_decode(f.payload, f.payload_len, &hs);
            if (rc != CRAFT_OK) {
                CRAFT_ASSERT(rc == CRAFT_EMALFORMED || rc == CRAFT_EVERSION);
                break; /* the transport closes the connection here */
            }
            uint8_t again[CRAFT_FRAME_HEADER_BYTES + CRAFT_HANDSHAKE_BYTES];
            size_t n = craft_handshake_encode(&hs, again);
            CRAFT_ASSERT(n == f.consumed && memcmp(again, data + off, n) == 0);
            handshaken = true;
        } else {
            uint64_t group;
            const uint8_t *msg;
            size_t msg_len;
            rc = craft_message_frame_split(f.payload, f.payload_len, &group, &msg, &msg_len);
            if (rc != CRAFT_OK) {
                CRAFT_ASSERT(rc == CRAFT_EMALFORMED && f.payload_len <= CRAFT_GROUP_ID_BYTES);
                break; /* the transport closes the connection here */
            }
            CRAFT_ASSERT(msg == f.payload + CRAFT_GROUP_ID_BYTES && msg_len >= 1);
            CRAFT_ASSERT(msg_len == f.payload_len - CRAFT_GROUP_ID_BYTES);
            uint8_t mhdr[CRAFT_MESSAGE_HEADER_BYTES];
            craft_message_header_encode(mhdr, group, (uint32_t)msg_len);
            CRAFT_ASSERT(memcmp(mhdr, data + off, sizeof(mhdr)) == 0);
            struct host_msg hm;
            if (host_msg_decode(msg, msg_len, &hm)) {
                uint8_t again[HOST_MSG_BYTES_MAX];
                size_t n = host_msg_encode(&hm, again);
                CRAFT_ASSERT(host_msg_is(msg, msg_len) && n == msg_len &&
                             memcmp(again, msg, n) == 0);
            }
            /* The Raft message is opaque here: touch every byte for ASan. */
            volatile uint8_t sum = 0;
            for (size_t i = 0; i < msg_len; i++) {
                sum = (uint8_t)(sum + msg[i]);
            }
            (void)sum;
        }
        off += f.consumed;
    }
    return 0;
}
