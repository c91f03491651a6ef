/* Little-endian byte order for every on-disk and on-wire integer: byte by byte, so no
 * alignment or host-order assumption. */
#ifndef CRAFT_BASE_BYTES_H
#define CRAFT_BASE_BYTES_H

#include <stddef.h>
#include <stdint.h>

static inline void craft_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline void craft_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint32_t craft_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        v |= (uint32_t)p[i] << (8 * i);
    }
    return v;
}

static inline uint64_t craft_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

/* A bounded reader over untrusted bytes p[0..left): every take checks what is left, so a
 * decoder cannot read past its input. */
struct craft_reader {
    const uint8_t *p;
    size_t left;
};

/* The next n bytes, consumed; NULL (nothing consumed) if fewer than n are left. */
static inline const uint8_t *craft_take(struct craft_reader *r, size_t n)
{
    if (r->left < n) {
        return NULL;
    }
    const uint8_t *b = r->p;
    r->p += n;
    r->left -= n;
    return b;
}

#endif
