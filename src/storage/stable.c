/* The stable store: write a temporary file, sync, rename, sync the directory. Two
 * alternating slots in one file would save the rename, but this store is written once per
 * term or vote change, and the rename is the simplest atomicity argument there is. */
#include "base/bytes.h"
#include "storage/stable.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/assert.h"

#define STABLE_MAGIC 0x54534643u /* "CFST" */
#define STABLE_VERSION 1u
#define STABLE_HEADER_BYTES 16u /* magic u32 | version u32 | len u32 | crc u32 */

struct craft_stable {
    struct craft_fs *fs;
    char *path;
    char *tmp;
    char *dir;
    bool has_value;
    size_t len;
    uint8_t value[CRAFT_STABLE_BYTES_MAX];
    int failed;
};

static uint32_t stable_crc(const uint8_t *hdr, const uint8_t *data, size_t len)
{
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, hdr, 12);
    if (len > 0) {
        c = crc32(c, data, (uInt)len);
    }
    return (uint32_t)c;
}

/* A new string: the first a_len bytes of a, then b. */
static char *str_cat(const char *a, size_t a_len, const char *b)
{
    size_t b_len = strlen(b);
    char *s = malloc(a_len + b_len + 1);
    if (s != NULL) {
        memcpy(s, a, a_len);
        memcpy(s + a_len, b, b_len + 1);
    }
    return s;
}

static void stable_free(struct craft_stable *st)
{
    free(st->path);
    free(st->tmp);
    free(st->dir);
    free(st);
}

/* Loads the value from st->path, if the file exists. */
static int stable_load(struct craft_stable *st)
{
    struct craft_fs *fs = st->fs;
    int fd;
    int err = fs->open(fs, st->path, 0, &fd);
    if (err == CRAFT_ENOTFOUND) {
        return CRAFT_OK;
    }
    if (err != 0) {
        return err;
    }
    uint8_t buf[STABLE_HEADER_BYTES + CRAFT_STABLE_BYTES_MAX + 1];
    size_t got = 0;
    err = fs->pread(fs, fd, buf, sizeof(buf), 0, &got);
    (void)fs->close(fs, fd);
    if (err != 0) {
        return err;
    }
    if (got < STABLE_HEADER_BYTES || craft_get_u32(buf) != STABLE_MAGIC ||
        craft_get_u32(buf + 4) != STABLE_VERSION) {
        return CRAFT_ECORRUPT;
    }
    uint32_t len = craft_get_u32(buf + 8);
    if (len > CRAFT_STABLE_BYTES_MAX || got != STABLE_HEADER_BYTES + len ||
        craft_get_u32(buf + 12) != stable_crc(buf, buf + STABLE_HEADER_BYTES, len)) {
        return CRAFT_ECORRUPT;
    }
    memcpy(st->value, buf + STABLE_HEADER_BYTES, len);
    st->len = len;
    st->has_value = true;
    return CRAFT_OK;
}

int craft_stable_open(struct craft_fs *fs, const char *path, struct craft_stable **out)
{
    struct craft_stable *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return CRAFT_ENOMEM;
    }
    st->fs = fs;
    const char *slash = strrchr(path, '/');
    st->path = str_cat(path, strlen(path), "");
    st->tmp = str_cat(path, strlen(path), ".tmp");
    if (slash == NULL) {
        st->dir = str_cat("", 0, ".");
    } else if (slash == path) {
        st->dir = str_cat("", 0, "/");
    } else {
        st->dir = str_cat(path, (size_t)(slash - path), "");
    }
    if (st->path == NULL || st->tmp == NULL || st->dir == NULL) {
        stable_free(st);
        return CRAFT_ENOMEM;
    }
    int err = fs->unlink(fs, st->tmp);
    if (err == CRAFT_ENOTFOUND) {
        err = CRAFT_OK;
    }
    if (err == 0) {
        err = stable_load(st);
    }
    if (err != 0) {
        stable_free(st);
        return err;
    }
    *out = st;
    return CRAFT_OK;
}

void craft_stable_close(struct craft_stable *st)
{
    if (st != NULL) {
        stable_free(st);
    }
}

int craft_stable_put(struct craft_stable *st, const void *data, size_t len)
{
    if (st->failed) {
        return CRAFT_ESHUTDOWN;
    }
    if (len > CRAFT_STABLE_BYTES_MAX) {
        return CRAFT_ETOOBIG;
    }
    uint8_t buf[STABLE_HEADER_BYTES + CRAFT_STABLE_BYTES_MAX];
    craft_put_u32(buf, STABLE_MAGIC);
    craft_put_u32(buf + 4, STABLE_VERSION);
    craft_put_u32(buf + 8, (uint32_t)len);
    if (len > 0) {
        memcpy(buf + STABLE_HEADER_BYTES, data, len);
    }
    craft_put_u32(buf + 12, stable_crc(buf, buf + STABLE_HEADER_BYTES, len));
    struct craft_fs *fs = st->fs;
    int fd;
    int err = fs->open(fs, st->tmp, CRAFT_FS_CREATE, &fd);
    if (err == 0) {
        err = fs->ftruncate(fs, fd, 0);
        if (err == 0) {
            err = fs->pwrite(fs, fd, buf, STABLE_HEADER_BYTES + len, 0);
        }
        if (err == 0) {
            err = fs->fdatasync(fs, fd);
        }
        (void)fs->close(fs, fd);
    }
    if (err == 0) {
        err = fs->rename(fs, st->tmp, st->path);
    }
    if (err == 0) {
        err = fs->fsync_dir(fs, st->dir);
    }
    if (err != 0) {
        st->failed = err;
        return err;
    }
    memcpy(st->value, buf + STABLE_HEADER_BYTES, len);
    st->len = len;
    st->has_value = true;
    return CRAFT_OK;
}

int craft_stable_get(const struct craft_stable *st, void *buf, size_t cap, size_t *len)
{
    if (st->failed) {
        return CRAFT_ESHUTDOWN;
    }
    if (!st->has_value) {
        return CRAFT_ENOTFOUND;
    }
    *len = st->len;
    if (cap < st->len) {
        return CRAFT_ETOOBIG;
    }
    if (st->len > 0) {
        memcpy(buf, st->value, st->len);
    }
    return CRAFT_OK;
}

int craft_stable_put_hard_state(struct craft_stable *st, const struct craft_hard_state *hs)
{
    uint8_t b[16];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(hs->term >> (8 * i));
        b[8 + i] = (uint8_t)(hs->vote >> (8 * i));
    }
    return craft_stable_put(st, b, sizeof(b));
}

int craft_stable_get_hard_state(const struct craft_stable *st, struct craft_hard_state *hs)
{
    uint8_t b[16];
    size_t len;
    int err = craft_stable_get(st, b, sizeof(b), &len);
    if (err == CRAFT_ETOOBIG || (err == 0 && len != sizeof(b))) {
        return CRAFT_ECORRUPT;
    }
    if (err != 0) {
        return err;
    }
    hs->term = 0;
    hs->vote = 0;
    for (int i = 0; i < 8; i++) {
        hs->term |= (uint64_t)b[i] << (8 * i);
        hs->vote |= (uint64_t)b[8 + i] << (8 * i);
    }
    return CRAFT_OK;
}
