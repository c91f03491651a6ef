/* libFuzzer target: the runtime's address records (TAG_ADDRS log entries and snapshot
 * headers) and "host:port" parsing, on arbitrary bytes. A record that decodes must change
 * the book exactly as its re-encoding does; one that does not must change nothing. */
#include <string.h>

#include "base/assert.h"
#include "runtime/rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct rt_book a, b, before;
    memset(&a, 0, sizeof a);
    rt_book_set(&a, 7, "10.0.0.7:7007");
    before = a;
    bool ok = rt_addrs_apply(&a, data, size);
    if (!ok) {
        CRAFT_ASSERT(memcmp(&a, &before, sizeof a) == 0);
    } else {
        for (size_t i = 0; i < a.n; i++) {
            CRAFT_ASSERT(a.s[i].id != 0);
            CRAFT_ASSERT(memchr(a.s[i].addr, '\0', sizeof a.s[i].addr) != NULL);
        }
        /* Round trip: the book re-encoded and applied to an empty book is the same book. */
        uint8_t buf[1 + 2 * CRAFT_CONF_NODES_MAX * (9 + CRAFT_ADDR_BYTES_MAX)];
        size_t len = rt_addrs_encode(a.s, a.n, buf, sizeof buf);
        CRAFT_ASSERT(len > 0);
        memset(&b, 0, sizeof b);
        CRAFT_ASSERT(rt_addrs_apply(&b, buf, len));
        CRAFT_ASSERT(b.n == a.n);
        for (size_t i = 0; i < a.n; i++) {
            CRAFT_ASSERT(b.s[i].id == a.s[i].id && strcmp(b.s[i].addr, a.s[i].addr) == 0);
        }
    }
    /* The address parser on the input as a string. */
    char str[CRAFT_ADDR_BYTES_MAX * 2];
    size_t n = size < sizeof str - 1 ? size : sizeof str - 1;
    memcpy(str, data, n);
    str[n] = '\0';
    char host[CRAFT_ADDR_BYTES_MAX];
    uint16_t port;
    if (rt_addr_split(str, host, sizeof host, &port)) {
        CRAFT_ASSERT(strlen(host) > 0 && strlen(host) < sizeof host);
    }
    return 0;
}
