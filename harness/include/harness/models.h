/*
 * models.h - the list of crash models: the one place that names them.
 * Each has its generator and formatter in harness/src/models/<name>.c
 * (the contract of each model: simdisk.h's worked example and sweep.h).
 * The order is the order the sweep visits them in every epoch; a new model
 * goes at the end, so earlier states keep their indices.
 *
 *   X(ID, name, power): ID makes M_ID; name is what --models and
 *   reproducers say; power is 1 for a power-loss model (the image must
 *   open and hold every acknowledged write), 0 for a corruption model (a
 *   refusal is allowed, returning bytes nobody wrote is not).
 */
#ifndef HARNESS_MODELS_H
#define HARNESS_MODELS_H

#define CRASH_MODEL_LIST(X)         \
    X(PREFIX, prefix, 1)            \
    X(DROP, drop, 1)                \
    X(REORDER, reorder, 1)          \
    X(TORN, torn, 1)                \
    X(STALE, stale, 1)              \
    X(RECOVERY, recovery, 1)        \
    X(MISDIRECT, misdirect, 0)      \
    X(LOST, lost, 0)                \
    X(BITFLIP, bitflip, 0)

#endif /* HARNESS_MODELS_H */
