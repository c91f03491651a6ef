/* Server addresses: the book each thread keeps, and their replicated form (TAG_ADDRS
 * entries, snapshot headers). Addresses travel through the log so that every node, and a
 * node restarted from disk, knows where each member listens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "runtime/rt.h"

void rt_book_set(struct rt_book *b, uint64_t id, const char *addr)
{
    for (size_t i = 0; i < b->n; i++) {
        if (b->s[i].id == id) {
            snprintf(b->s[i].addr, sizeof b->s[i].addr, "%s", addr);
            return;
        }
    }
    if (b->n == sizeof b->s / sizeof b->s[0]) {
        /* Full: forget the oldest entry (a long-gone server, most likely). */
        memmove(&b->s[0], &b->s[1], (b->n - 1) * sizeof b->s[0]);
        b->n--;
    }
    b->s[b->n].id = id;
    b->s[b->n].voter = false;
    snprintf(b->s[b->n].addr, sizeof b->s[b->n].addr, "%s", addr);
    b->n++;
}

const char *rt_book_get(const struct rt_book *b, uint64_t id)
{
    for (size_t i = 0; i < b->n; i++) {
        if (b->s[i].id == id) {
            return b->s[i].addr;
        }
    }
    return NULL;
}

size_t rt_addrs_encode(const struct craft_server *s, size_t n, uint8_t *buf, size_t cap)
{
    size_t need = 1;
    for (size_t i = 0; i < n; i++) {
        need += 9 + strnlen(s[i].addr, CRAFT_ADDR_BYTES_MAX - 1);
    }
    if (n > 255 || need > cap) {
        return 0;
    }
    size_t off = 0;
    buf[off++] = (uint8_t)n;
    for (size_t i = 0; i < n; i++) {
        size_t len = strnlen(s[i].addr, CRAFT_ADDR_BYTES_MAX - 1);
        craft_put_u64(buf + off, s[i].id);
        buf[off + 8] = (uint8_t)len;
        memcpy(buf + off + 9, s[i].addr, len);
        off += 9 + len;
    }
    return off;
}

bool rt_addrs_apply(struct rt_book *b, const uint8_t *body, size_t len)
{
    /* Parse everything first: a malformed record changes nothing. */
    struct craft_server parsed[255];
    if (len < 1) {
        return false;
    }
    size_t n = body[0], off = 1;
    for (size_t i = 0; i < n; i++) {
        if (len - off < 9) {
            return false;
        }
        uint64_t id = craft_get_u64(body + off);
        size_t alen = body[off + 8];
        off += 9;
        if (alen >= CRAFT_ADDR_BYTES_MAX || len - off < alen || id == 0 ||
            memchr(body + off, '\0', alen) != NULL) {
            return false;
        }
        parsed[i].id = id;
        memcpy(parsed[i].addr, body + off, alen);
        parsed[i].addr[alen] = '\0';
        off += alen;
    }
    if (off != len) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        rt_book_set(b, parsed[i].id, parsed[i].addr);
    }
    return true;
}

bool rt_addr_split(const char *addr, char *host, size_t host_cap, uint16_t *port)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr) {
        return false;
    }
    size_t hlen = (size_t)(colon - addr);
    const char *h = addr;
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') { /* [::1]:7001 */
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= host_cap) {
        return false;
    }
    char *end = NULL;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p > 65535) {
        return false;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)p;
    return true;
}
