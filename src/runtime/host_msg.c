/* The host's own messages: encoding and decoding (host_msg.h). */
#include "runtime/host_msg.h"

#include <string.h>

#include "base/bytes.h"

static size_t kind_len(uint8_t kind)
{
    switch (kind) {
    case HOST_MSG_PING:
        return 10;
    case HOST_MSG_QUIESCE:
        return 18;
    case HOST_MSG_WAKE:
        return 10;
    default:
        return 0;
    }
}

size_t host_msg_encode(const struct host_msg *m, uint8_t *buf)
{
    size_t len = kind_len(m->kind);
    buf[0] = HOST_MSG_MAGIC;
    buf[1] = m->kind;
    if (len >= 10) {
        craft_put_u64(buf + 2, m->term);
    }
    if (len >= 18) {
        craft_put_u64(buf + 10, m->index);
    }
    return len;
}

bool host_msg_decode(const uint8_t *buf, size_t len, struct host_msg *m)
{
    if (len < 2 || buf[0] != HOST_MSG_MAGIC || kind_len(buf[1]) != len) {
        return false;
    }
    memset(m, 0, sizeof *m);
    m->kind = buf[1];
    if (len >= 10) {
        m->term = craft_get_u64(buf + 2);
    }
    if (len >= 18) {
        m->index = craft_get_u64(buf + 10);
    }
    return true;
}
