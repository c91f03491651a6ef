/* Helpers over the filesystem port (fs.h) that more than one store needs. */
#ifndef CRAFT_STORAGE_FS_UTIL_H
#define CRAFT_STORAGE_FS_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "storage/fs.h"

/* Creates file `path` in directory dir durably, preallocated to size bytes and starting
 * with hdr[0..hdr_len): it is prepared under the name tmp (created or emptied), written,
 * synced, renamed to path, and the rename synced, so a crash at any point leaves either no
 * file at path or a complete one (and perhaps a leftover tmp to remove). On success *fd is
 * the open file. On failure *what names the step that failed and the file is closed.
 * Errors: the port's. */
int craft_fs_create_durable(struct craft_fs *fs, const char *dir, const char *tmp,
                            const char *path, uint64_t size, const uint8_t *hdr, size_t hdr_len,
                            int *fd, const char **what);

#endif
