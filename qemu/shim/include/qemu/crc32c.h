/* qemu/crc32c.h (powercut shim) - the CRC-32C of QEMU's util/crc32c.c
 * (fetched with the driver and compiled beside it). */
#ifndef QSHIM_QEMU_CRC32C_H
#define QSHIM_QEMU_CRC32C_H

#include <stdint.h>

uint32_t crc32c(uint32_t crc, const uint8_t *data, unsigned int length);

#endif
