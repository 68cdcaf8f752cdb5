/*
 * models.h - the list of crash models: the one place that names them.
 * Each has its generator and formatter in harness/src/models/<name>.c
 * (the contract of each model: simdisk.h's worked example and sweep.h).
 * The order is the order the sweep visits them in every epoch; a new model
 * goes at the end, so earlier states keep their indices.
 *
 *   X(ID, sym, name, power): ID makes M_ID; sym names the model's
 *   definition (model_<sym>, in models/<name>.c); name is what --models
 *   and reproducers say; power is 1 for a power-loss model (the image
 *   must open and hold every acknowledged write), 0 for a corruption model
 *   (a refusal is allowed, returning bytes nobody wrote is not).
 */
#ifndef HARNESS_MODELS_H
#define HARNESS_MODELS_H

#define CRASH_MODEL_LIST(X)                                        \
    X(PREFIX, prefix, "prefix", 1)                                 \
    X(DROP, drop, "drop", 1)                                       \
    X(REORDER, reorder, "reorder", 1)                              \
    X(TORN, torn, "torn", 1)                                       \
    X(STALE, stale, "stale", 1)                                    \
    X(RECOVERY, recovery, "recovery", 1)                           \
    X(MISDIRECT, misdirect, "misdirect", 0)                        \
    X(LOST, lost, "lost", 0)                                       \
    X(BITFLIP, bitflip, "bitflip", 0)                              \
    X(SECTOR_TORN_BYTES, sector_torn_bytes, "sector-torn-bytes", 1)

#endif /* HARNESS_MODELS_H */
