/*
 * qemu/uuid.h (powercut shim) - random (version 4) UUIDs, drawn from the
 * seed the current open was given (qshim.h): a run repeats exactly.
 */
#ifndef QSHIM_QEMU_UUID_H
#define QSHIM_QEMU_UUID_H

#include <stdint.h>

typedef struct {
    uint8_t data[16];
} QemuUUID;

void qemu_uuid_generate(QemuUUID *out);

#endif
