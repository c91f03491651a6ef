/* The host's own messages: encoding and decoding (host_msg.h). */
#include "runtime/host_msg.h"

#include <string.h>

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

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
        put_u64(buf + 2, m->term);
    }
    if (len >= 18) {
        put_u64(buf + 10, m->index);
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
        m->term = get_u64(buf + 2);
    }
    if (len >= 18) {
        m->index = get_u64(buf + 10);
    }
    return true;
}
