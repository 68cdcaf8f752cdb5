/*
 * fuzz_target.h - the entry points every fuzz target defines or uses, with
 * prototypes so the targets build under -Wmissing-prototypes.
 *
 * A target defines LLVMFuzzerTestOneInput (and optionally
 * LLVMFuzzerInitialize); the same object links against libFuzzer (preset
 * fuzz), the AFL++ persistent driver (presets afl, afl-cmplog) or the
 * standalone replay main (every other build, used by CTest).  The log
 * targets also define the structure-aware mutator hooks, but only in a
 * libFuzzer build (FUZZ_LIBFUZZER) and not in the comparison build
 * (FUZZ_NO_CUSTOM_MUTATOR).
 */
#ifndef FUZZ_TARGET_H
#define FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomCrossOver(const uint8_t *data1, size_t size1, const uint8_t *data2, size_t size2,
                                 uint8_t *out, size_t max_out_size, unsigned int seed);

#if defined(FUZZ_LIBFUZZER) && !defined(FUZZ_NO_CUSTOM_MUTATOR)
#include "mutator.h"
/* The log targets' hooks: the structure-aware mutator, with libFuzzer's own
 * byte-level mutator as its fallback for a share of the mutations. */
#define FUZZ_LOG_MUTATOR_HOOKS()                                                                          \
    size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)        \
    {                                                                                                     \
        return fuzz_log_mutate(data, size, max_size, seed, LLVMFuzzerMutate);                             \
    }                                                                                                     \
    size_t LLVMFuzzerCustomCrossOver(const uint8_t *data1, size_t size1, const uint8_t *data2, size_t size2, \
                                     uint8_t *out, size_t max_out_size, unsigned int seed)                \
    {                                                                                                     \
        return fuzz_log_crossover(data1, size1, data2, size2, out, max_out_size, seed);                   \
    }
#else
#define FUZZ_LOG_MUTATOR_HOOKS()
#endif

#endif /* FUZZ_TARGET_H */
