/* Shared by the log-recovery fuzz targets: turning a fuzz input into one segment file in an
 * in-memory filesystem. The first input byte picks how:
 *   0: the raw bytes;
 *   1: a valid segment header (hdr), then the raw bytes;
 *   2: the header, then records the target builds from the input (build), then the rest raw.
 * Returns the filesystem holding dir/name, durably. */
#ifndef CRAFT_TESTS_FUZZ_SEGMENT_H
#define CRAFT_TESTS_FUZZ_SEGMENT_H

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "storage/fs_mem.h"

#define FUZZ_SEGMENT_BYTES (1u << 16)

typedef size_t (*fuzz_build_fn)(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

static inline struct craft_fs_mem *fuzz_segment(const uint8_t *data, size_t size, const char *dir,
                                                const char *path, const uint8_t *hdr,
                                                size_t hdr_len, fuzz_build_fn build)
{
    CRAFT_ASSERT(size >= 1);
    int mode = data[0] % 3;
    data++;
    size--;
    uint8_t *file = calloc(1, FUZZ_SEGMENT_BYTES);
    CRAFT_ASSERT(file != NULL);
    size_t len;
    if (mode == 0) {
        len = size < FUZZ_SEGMENT_BYTES ? size : FUZZ_SEGMENT_BYTES;
        memcpy(file, data, len);
    } else {
        memcpy(file, hdr, hdr_len);
        size_t body_cap = FUZZ_SEGMENT_BYTES - hdr_len;
        if (mode == 1) {
            size_t n = size < body_cap ? size : body_cap;
            memcpy(file + hdr_len, data, n);
            len = hdr_len + n;
        } else {
            len = hdr_len + build(data, size, file + hdr_len, body_cap);
        }
    }
    struct craft_fs_mem *m = craft_fs_mem_create(1);
    CRAFT_ASSERT(m != NULL);
    struct craft_fs *fs = craft_fs_mem_fs(m);
    int fd;
    CRAFT_ASSERT(fs->mkdir(fs, dir) == CRAFT_OK);
    CRAFT_ASSERT(fs->open(fs, path, CRAFT_FS_CREATE, &fd) == CRAFT_OK);
    CRAFT_ASSERT(fs->pwrite(fs, fd, file, len, 0) == CRAFT_OK);
    CRAFT_ASSERT(fs->fdatasync(fs, fd) == CRAFT_OK);
    CRAFT_ASSERT(fs->close(fs, fd) == CRAFT_OK);
    CRAFT_ASSERT(fs->fsync_dir(fs, dir) == CRAFT_OK);
    free(file);
    return m;
}

#endif
