/* Helpers over the filesystem port (see fs_util.h). */
#include "storage/fs_util.h"

int craft_fs_create_durable(struct craft_fs *fs, const char *dir, const char *tmp,
                            const char *path, uint64_t size, const uint8_t *hdr, size_t hdr_len,
                            int *fd, const char **what)
{
    *what = "create";
    int err = fs->open(fs, tmp, CRAFT_FS_CREATE, fd);
    if (err != 0) {
        return err;
    }
    *what = "truncate";
    err = fs->ftruncate(fs, *fd, 0);
    if (err == 0) {
        *what = "preallocate";
        err = fs->fallocate(fs, *fd, 0, size);
    }
    if (err == 0) {
        *what = "write header";
        err = fs->pwrite(fs, *fd, hdr, hdr_len, 0);
    }
    if (err == 0) {
        *what = "fdatasync";
        err = fs->fdatasync(fs, *fd);
    }
    if (err == 0) {
        *what = "rename";
        err = fs->rename(fs, tmp, path);
    }
    if (err == 0) {
        *what = "fsync_dir";
        err = fs->fsync_dir(fs, dir);
    }
    if (err != 0) {
        (void)fs->close(fs, *fd);
        *fd = -1;
    }
    return err;
}
