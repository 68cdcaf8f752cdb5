/*
 * qemu/memalign.h (powercut shim) - aligned buffers.  qemu_blockalign()
 * and qemu_memalign() abort when out of memory, as QEMU's do;
 * qemu_try_blockalign() may return NULL and is the "qemu/alloc" fault
 * point.  New buffers are filled with the byte QSHIM_POISON (0xA5), not
 * left as the allocator found them: runs are deterministic, and a buffer
 * the driver writes to disk without initializing shows up as 0xA5 bytes.
 */
#ifndef QSHIM_QEMU_MEMALIGN_H
#define QSHIM_QEMU_MEMALIGN_H

#include <stddef.h>

#define QSHIM_POISON 0xA5

void *qemu_memalign(size_t alignment, size_t size);
void *qemu_try_memalign(size_t alignment, size_t size);
void qemu_vfree(void *ptr);

#endif
