/* The filesystem port over POSIX calls. errno is translated here, and nowhere else. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/assert.h"
#include "storage/fs.h"

static int err_from_errno(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return CRAFT_ENOTFOUND;
    case ENOSPC:
    case EDQUOT:
        return CRAFT_ENOSPACE;
    case ENOMEM:
        return CRAFT_ENOMEM;
    case EBADF:
    case EINVAL:
        return CRAFT_EINVAL;
    default:
        return CRAFT_EIO;
    }
}

static int posix_open(struct craft_fs *fs, const char *path, int flags, int *fd)
{
    (void)fs;
    int oflags = O_RDWR | O_CLOEXEC;
    if (flags & CRAFT_FS_CREATE) {
        oflags |= O_CREAT;
    }
    int r;
    do {
        r = open(path, oflags, 0644);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        return err_from_errno(errno);
    }
    *fd = r;
    return CRAFT_OK;
}

static int posix_close(struct craft_fs *fs, int fd)
{
    (void)fs;
    /* Linux releases the descriptor even when close fails; retrying would be wrong. */
    return close(fd) == 0 ? CRAFT_OK : err_from_errno(errno);
}

static int posix_pread(struct craft_fs *fs, int fd, void *buf, size_t len, uint64_t off,
                       size_t *n_read)
{
    (void)fs;
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return err_from_errno(errno);
        }
        if (r == 0) {
            break;
        }
        done += (size_t)r;
    }
    *n_read = done;
    return CRAFT_OK;
}

static int posix_pwrite(struct craft_fs *fs, int fd, const void *buf, size_t len, uint64_t off)
{
    (void)fs;
    size_t done = 0;
    while (done < len) {
        ssize_t r = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return err_from_errno(errno);
        }
        done += (size_t)r;
    }
    return CRAFT_OK;
}

static int posix_fdatasync(struct craft_fs *fs, int fd)
{
    (void)fs;
    /* No retry on failure: after a failed fdatasync the kernel may have dropped the dirty
     * pages, so the caller must treat the file as lost (the WAL fails). */
    return fdatasync(fd) == 0 ? CRAFT_OK : err_from_errno(errno);
}

static int posix_fsync_dir(struct craft_fs *fs, const char *dir)
{
    (void)fs;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return err_from_errno(errno);
    }
    int err = fsync(fd) == 0 ? CRAFT_OK : err_from_errno(errno);
    close(fd);
    return err;
}

static int posix_rename(struct craft_fs *fs, const char *from, const char *to)
{
    (void)fs;
    return rename(from, to) == 0 ? CRAFT_OK : err_from_errno(errno);
}

static int posix_unlink(struct craft_fs *fs, const char *path)
{
    (void)fs;
    return unlink(path) == 0 ? CRAFT_OK : err_from_errno(errno);
}

static int posix_ftruncate(struct craft_fs *fs, int fd, uint64_t size)
{
    (void)fs;
    int r;
    do {
        r = ftruncate(fd, (off_t)size);
    } while (r < 0 && errno == EINTR);
    return r == 0 ? CRAFT_OK : err_from_errno(errno);
}

static int posix_fallocate_(struct craft_fs *fs, int fd, uint64_t off, uint64_t len)
{
    (void)fs;
    /* posix_fallocate returns the error instead of setting errno. */
    int e = posix_fallocate(fd, (off_t)off, (off_t)len);
    return e == 0 ? CRAFT_OK : err_from_errno(e);
}

static int posix_list_dir(struct craft_fs *fs, const char *dir, craft_fs_list_fn fn, void *arg)
{
    (void)fs;
    DIR *d = opendir(dir);
    if (d == NULL) {
        return err_from_errno(errno);
    }
    int err = CRAFT_OK;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (de == NULL) {
            if (errno != 0) {
                err = err_from_errno(errno);
            }
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        err = fn(arg, de->d_name);
        if (err != 0) {
            break;
        }
    }
    closedir(d);
    return err;
}

static int posix_mkdir(struct craft_fs *fs, const char *path)
{
    (void)fs;
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        return CRAFT_OK;
    }
    return err_from_errno(errno);
}

static int posix_file_size(struct craft_fs *fs, int fd, uint64_t *size)
{
    (void)fs;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return err_from_errno(errno);
    }
    CRAFT_ASSERT(st.st_size >= 0);
    *size = (uint64_t)st.st_size;
    return CRAFT_OK;
}

void craft_fs_posix_init(struct craft_fs *fs)
{
    fs->open = posix_open;
    fs->close = posix_close;
    fs->pread = posix_pread;
    fs->pwrite = posix_pwrite;
    fs->fdatasync = posix_fdatasync;
    fs->fsync_dir = posix_fsync_dir;
    fs->rename = posix_rename;
    fs->unlink = posix_unlink;
    fs->ftruncate = posix_ftruncate;
    fs->fallocate = posix_fallocate_;
    fs->list_dir = posix_list_dir;
    fs->mkdir = posix_mkdir;
    fs->file_size = posix_file_size;
}
