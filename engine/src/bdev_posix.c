/*
 * bdev_posix.c - the block-device vtable over a POSIX file.
 *
 * Guarantees: reads and writes transfer the whole range or fail (partial
 * transfers and EINTR are retried); a read that reaches end of file returns
 * VHDX_E_SHORT_IO; flush is fdatasync(), which also makes a size change
 * durable; the descriptor is closed by destroy().
 */
#define _GNU_SOURCE
#include "vhdx/bdev.h"
#include "vhdx/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct bdev_posix {
    struct bdev base; /* must be first */
    int fd;           /* open descriptor, owned */
};

static int posix_fd(struct bdev *d)
{
    return ((struct bdev_posix *)d)->fd;
}

static int posix_read(struct bdev *d, void *buf, size_t len, uint64_t off)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = pread(posix_fd(d), p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return VHDX_E_SHORT_IO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int posix_write(struct bdev *d, const void *buf, size_t len, uint64_t off)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(posix_fd(d), p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return VHDX_E_SHORT_IO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int posix_flush(struct bdev *d)
{
    while (fdatasync(posix_fd(d)) != 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

static int posix_size(struct bdev *d, uint64_t *size)
{
    struct stat st;
    if (fstat(posix_fd(d), &st) != 0)
        return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

static int posix_truncate(struct bdev *d, uint64_t size)
{
    while (ftruncate(posix_fd(d), (off_t)size) != 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

static void posix_destroy(struct bdev *d)
{
    close(posix_fd(d));
    free(d);
}

static const struct bdev_ops posix_ops = {
    .read = posix_read,
    .write = posix_write,
    .flush = posix_flush,
    .size = posix_size,
    .truncate = posix_truncate,
    .mark = NULL,
    .destroy = posix_destroy,
};

int bdev_posix_open(const char *path, unsigned flags, struct bdev **out)
{
    int oflags = O_CLOEXEC;
    oflags |= (flags & BDEV_RDONLY) ? O_RDONLY : O_RDWR;
    if (flags & BDEV_CREATE)
        oflags |= O_CREAT;
    if (flags & BDEV_EXCL)
        oflags |= O_EXCL;
    if (flags & BDEV_TRUNCATE)
        oflags |= O_TRUNC;
    int fd = open(path, oflags, 0644);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) != 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : 0;
    if (rc != 0) {
        close(fd);
        return rc;
    }
    struct bdev_posix *p = calloc(1, sizeof *p);
    if (!p) {
        close(fd);
        return -ENOMEM;
    }
    p->base.ops = &posix_ops;
    p->fd = fd;
    *out = &p->base;
    return 0;
}

void bdev_destroy(struct bdev *d)
{
    if (d && d->ops->destroy)
        d->ops->destroy(d);
}
