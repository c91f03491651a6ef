/* Recovery helpers shared by the segmented logs (see segfile.h). */
#include "storage/segfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool craft_seg_parse_hex16(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else {
            return false;
        }
        x = (x << 4) | (uint64_t)d;
    }
    *v = x;
    return true;
}

bool craft_seg_all_zero(const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

int craft_seg_read_all(struct craft_fs *fs, int fd, uint64_t min_size, uint8_t **buf,
                       uint64_t *size)
{
    uint64_t sz;
    int err = fs->file_size(fs, fd, &sz);
    if (err != 0) {
        return err;
    }
    if (sz < min_size || sz > UINT32_MAX) {
        return CRAFT_ECORRUPT;
    }
    uint8_t *b = malloc((size_t)sz);
    if (b == NULL) {
        return CRAFT_ENOMEM;
    }
    size_t got;
    err = fs->pread(fs, fd, b, (size_t)sz, 0, &got);
    if (err != 0 || got != sz) {
        free(b);
        return err ? err : CRAFT_EIO;
    }
    *buf = b;
    *size = sz;
    return CRAFT_OK;
}

int craft_seg_cut_tail(struct craft_fs *fs, int fd, const uint8_t *buf, uint64_t size,
                       uint64_t off, uint64_t *cut)
{
    uint64_t nz = size;
    while (nz > off && buf[nz - 1] == 0) {
        nz--;
    }
    *cut = 0;
    if (nz == off) {
        return CRAFT_OK;
    }
    uint8_t *zeros = calloc(1, (size_t)(nz - off));
    if (zeros == NULL) {
        return CRAFT_ENOMEM;
    }
    int err = fs->pwrite(fs, fd, zeros, (size_t)(nz - off), off);
    free(zeros);
    if (err == 0) {
        err = fs->fdatasync(fs, fd);
    }
    if (err == 0) {
        *cut = nz - off;
    }
    return err;
}

void craft_seg_parent_dir(const char *path, char *buf, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(buf, cap, ".");
    } else if (slash == path) {
        snprintf(buf, cap, "/");
    } else {
        snprintf(buf, cap, "%.*s", (int)(slash - path), path);
    }
}

int craft_seg_end(struct craft_fs *fs, int fd, const uint8_t *buf, uint64_t size, uint64_t off,
                  bool is_last, bool (*valid)(const uint8_t *p, uint64_t avail),
                  uint64_t header_bytes, uint64_t *cut, uint64_t *valid_at)
{
    *cut = 0;
    *valid_at = 0;
    if (off >= size || craft_seg_all_zero(buf + off, size - off)) {
        return CRAFT_OK;
    }
    if (!is_last) {
        return CRAFT_ECORRUPT;
    }
    for (uint64_t o = off + 8; o + header_bytes <= size; o += 8) {
        if (valid(buf + o, size - o)) {
            *valid_at = o;
            return CRAFT_ECORRUPT;
        }
    }
    return craft_seg_cut_tail(fs, fd, buf, size, off, cut);
}
