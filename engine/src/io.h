/*
 * io.h - the single funnel for every device call and every allocation the
 * engine makes.  Internal to libvhdx.
 *
 * Each wrapper checks its arguments (offset + length within
 * BDEV_MAX_OFFSET, no NULL buffers) and hosts one fault point.  Fault
 * points are libfiu points named hierarchically (catalogue:
 * faults/points.md); they exist only when the library is built with
 * -DFIU_ENABLE (the `fiu` preset) and compile to nothing otherwise.
 *
 * A fault point that fires makes the wrapper return the error carried in
 * the point's failinfo (see faults/points.md for the encoding; default
 * -EIO).  A "short" write fault writes the first half of the range and then
 * fails, as a device that lost power mid-transfer; a "lose" flush fault
 * fails the flush and tells the device to drop what is pending, as Linux
 * does with dirty pages after a failed fsync (needs a device that
 * implements the "fault.drop_pending" mark).
 */
#ifndef VHDX_IO_H
#define VHDX_IO_H

#include <stdint.h>
#include <stdlib.h>

#include "vhdx/bdev.h"
#include "vhdx/errors.h"

#ifdef FIU_ENABLE
#include <fiu.h>
#define VHDX_FAULT(name) fiu_fail(name)
#define VHDX_FAULT_INFO() fiu_failinfo()
#else
#define VHDX_FAULT(name) 0
#define VHDX_FAULT_INFO() ((void *)0)
#endif

/* failinfo encoding (an integer smuggled through the void pointer):
 *   low 16 bits: errno to return (0 means EIO)
 *   bit 16: short transfer (write half, then fail)
 *   bit 17: lose pending writes (flush) */
#define VHDX_FAULT_SHORT (1u << 16)
#define VHDX_FAULT_LOSE (1u << 17)

static inline int vhdx_fault_rc(void)
{
    uintptr_t info = (uintptr_t)VHDX_FAULT_INFO();
    int e = (int)(info & 0xFFFF);
    return e ? -e : -5 /* EIO */;
}

static inline int vhdx_io_range_ok(size_t len, uint64_t off)
{
    return off <= BDEV_MAX_OFFSET && (uint64_t)len <= BDEV_MAX_OFFSET - off;
}

static inline int vhdx_io_read(struct bdev *d, void *buf, size_t len, uint64_t off)
{
    if ((!buf && len) || !vhdx_io_range_ok(len, off))
        return VHDX_E_INVAL;
    if (VHDX_FAULT("vhdx/io/read"))
        return vhdx_fault_rc();
    return d->ops->read(d, buf, len, off);
}

/* Bytes [off, off+len) without a copy when the device can lend them, else
 * read into buf.  Returns the pointer to use, or NULL with *rc set.  The
 * read fault point applies either way. */
static inline const uint8_t *vhdx_io_view(struct bdev *d, void *buf, size_t len, uint64_t off, int *rc)
{
    if (!vhdx_io_range_ok(len, off)) {
        *rc = VHDX_E_INVAL;
        return NULL;
    }
    if (VHDX_FAULT("vhdx/io/read")) {
        *rc = vhdx_fault_rc();
        return NULL;
    }
    if (d->ops->map) {
        const void *p = d->ops->map(d, off, len);
        if (p) {
            *rc = 0;
            return p;
        }
    }
    *rc = d->ops->read(d, buf, len, off);
    return *rc ? NULL : buf;
}

static inline int vhdx_io_write(struct bdev *d, const void *buf, size_t len, uint64_t off)
{
    if ((!buf && len) || !vhdx_io_range_ok(len, off))
        return VHDX_E_INVAL;
    if (VHDX_FAULT("vhdx/io/write")) {
        uintptr_t info = (uintptr_t)VHDX_FAULT_INFO();
        if ((info & VHDX_FAULT_SHORT) && len > 1)
            (void)d->ops->write(d, buf, len / 2, off);
        return vhdx_fault_rc();
    }
    return d->ops->write(d, buf, len, off);
}

static inline int vhdx_io_flush(struct bdev *d)
{
    if (VHDX_FAULT("vhdx/io/flush")) {
        uintptr_t info = (uintptr_t)VHDX_FAULT_INFO();
        if ((info & VHDX_FAULT_LOSE) && d->ops->mark)
            d->ops->mark(d, "fault.drop_pending", 0);
        return vhdx_fault_rc();
    }
    return d->ops->flush(d);
}

static inline int vhdx_io_size(struct bdev *d, uint64_t *size)
{
    if (VHDX_FAULT("vhdx/io/size"))
        return vhdx_fault_rc();
    return d->ops->size(d, size);
}

static inline int vhdx_io_truncate(struct bdev *d, uint64_t size)
{
    if (size > BDEV_MAX_OFFSET)
        return VHDX_E_INVAL;
    if (VHDX_FAULT("vhdx/io/truncate"))
        return vhdx_fault_rc();
    return d->ops->truncate(d, size);
}

static inline void vhdx_io_mark(struct bdev *d, const char *name, uint64_t arg)
{
    if (d->ops->mark)
        d->ops->mark(d, name, arg);
}

/* Allocation funnel: fault point "vhdx/alloc".  Callers check for NULL. */
static inline void *vhdx_malloc(size_t n)
{
    if (VHDX_FAULT("vhdx/alloc"))
        return NULL;
    return malloc(n ? n : 1);
}

static inline void *vhdx_calloc(size_t count, size_t size)
{
    if (VHDX_FAULT("vhdx/alloc"))
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

static inline void *vhdx_realloc(void *p, size_t n)
{
    if (VHDX_FAULT("vhdx/alloc"))
        return NULL;
    return realloc(p, n ? n : 1);
}

#endif /* VHDX_IO_H */
