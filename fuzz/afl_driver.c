/*
 * afl_driver.c - the AFL++ main of every fuzz target (presets afl and
 * afl-cmplog): persistent mode with shared-memory test cases, so one
 * process runs up to 10000 inputs without a fork or a read() per input.
 *
 * Guarantees: LLVMFuzzerInitialize runs once, before the fork server
 * starts (deferred initialisation after the base images are built); each
 * test case is handed to LLVMFuzzerTestOneInput exactly as AFL++ delivered
 * it.  Run outside afl-fuzz, the same binary reads one input from stdin
 * (or from the file named by its first argument, through afl++'s shim).
 */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "fuzz_target.h"

#pragma weak LLVMFuzzerInitialize

__AFL_FUZZ_INIT();

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
#ifdef __AFL_HAVE_MANUAL_CONTROL
    __AFL_INIT();
#endif
    unsigned char *buf = __AFL_FUZZ_TESTCASE_BUF;
    while (__AFL_LOOP(10000)) {
        int len = __AFL_FUZZ_TESTCASE_LEN;
        LLVMFuzzerTestOneInput(buf, (size_t)len);
    }
    return 0;
}
