/*
 * mutator.h - the structure-aware mutator of VHDX log inputs (the format of
 * fuzz_common.h: a 32-byte prefix of header choices, then log sectors),
 * shared by libFuzzer (LLVMFuzzerCustomMutator/CustomCrossOver in the log
 * targets) and AFL++ (afl_mutator.c: afl_custom_fuzz/post_process).
 *
 * What it understands: entry headers (SequenceNumber, Tail, EntryLength,
 * DescriptorCount, LogGuid, FlushedFileOffset, LastFileOffset, Reserved),
 * descriptors (kind, FileOffset, ZeroLength, SequenceNumber), data sectors
 * (signature, split sequence number), whole entries (duplicate, drop, swap,
 * shift within the ring, wrap around its end, tear at 512 bytes, append a
 * new entry that continues the newest sequence), and the prefix's header
 * fields.  After mutating it recomputes the CRC-32C of every entry, except
 * in one mutation out of 16, so the rejection path stays exercised.
 *
 * Guarantees: the result never exceeds max_size; every choice comes from
 * the seed argument (same seed and input, same output); no allocation; no
 * global state except the name of the last mutation (for AFL++'s describe).
 */
#ifndef FUZZ_MUTATOR_H
#define FUZZ_MUTATOR_H

#include <stddef.h>
#include <stdint.h>

/* A byte-level mutator to fall back on (libFuzzer's LLVMFuzzerMutate), or NULL. */
typedef size_t (*fuzz_bytes_mutator)(uint8_t *data, size_t size, size_t max_size);

/* Mutates data (size bytes, room for max_size) in place; returns the new size. */
size_t fuzz_log_mutate(uint8_t *data, size_t size, size_t max_size, unsigned int seed, fuzz_bytes_mutator bytes);

/* Combines two inputs into out (room for max_out): a's prefix and leading
 * sectors, then sectors of b; b's entries adopt a's LogGuid half the time. */
size_t fuzz_log_crossover(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint8_t *out, size_t max_out,
                          unsigned int seed);

/* Recomputes the CRC of every whole entry in data.  Returns how many
 * checksums it changed. */
unsigned fuzz_log_fix_crcs(uint8_t *data, size_t size);

/* AFL++ post-processing, a pure function of the input: cut to the bounded
 * input size and repair entry checksums in 15 inputs of 16 (chosen by a hash
 * of the bytes).  Returns the new size (data modified in place).  The
 * standalone main's --post-process applies the same, to reproduce AFL++
 * findings from their saved (pre-processing) inputs. */
size_t fuzz_log_post_process(uint8_t *data, size_t size);

/* Name of the last mutation applied ("hdr.seq", "entry.dup", ...). */
const char *fuzz_log_last_mutation(void);

#endif /* FUZZ_MUTATOR_H */
