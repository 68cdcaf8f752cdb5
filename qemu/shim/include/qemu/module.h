/*
 * qemu/module.h (powercut shim) - block_init(): QEMU runs a driver's init
 * function from a constructor; the shim turns it into a named function,
 * qshim_block_init_<function>(), that qshim.c calls once, explicitly, so
 * the driver's table is captured (bdrv_register) in a known order and the
 * static library's object is always linked.
 */
#ifndef QSHIM_QEMU_MODULE_H
#define QSHIM_QEMU_MODULE_H

#define block_init(function)                       \
    void qshim_block_init_##function(void);        \
    void qshim_block_init_##function(void)         \
    {                                              \
        function();                                \
    }                                              \
    extern int qshim_block_init_done_##function

#endif
