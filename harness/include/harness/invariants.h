/*
 * invariants.h - the registry of invariants: every property a judge of the
 * harness checks, named once.  A violation carries one of these names (a
 * data violation appends the oracle's kind: "data:lost"); tools print the
 * table (`pcsweep invariants --json`) and the driver reads it from there.
 *
 * Columns: C identifier, name in reports, class, what a violation means.
 * Classes: "image" (the image after reopen), "data" (virtual-disk
 * contents), "reference" (the independent reference disagrees with the
 * subject), "view" (two ways the subject presents one image disagree),
 * "live" (a running session under faults), "protocol" (the write-ahead
 * protocol on a trace, before any crash state is built).
 */
#ifndef HARNESS_INVARIANTS_H
#define HARNESS_INVARIANTS_H

#define INVARIANT_LIST(X)                                                                                        \
    X(OPEN_REFUSED, "open-refused", "image", "a crash image of a correct writer did not open")                   \
    X(LOG_GUID_NOT_CLEARED, "log-guid-not-cleared", "image", "after the open replayed, a header still names a log") \
    X(CHECK_FAILED, "check-failed", "image", "the checker found errors in the replayed image")                    \
    X(CLOSE_FAILED, "close-failed", "image", "closing a replayed, unmodified session failed or wrote")            \
    X(READ_FAILED, "read-failed", "image", "a read of the opened image failed")                                   \
    X(REPLAY_NOT_IDEMPOTENT, "replay-not-idempotent", "image",                                                   \
      "a replay cut part-way and replayed again differs from the uninterrupted replay")                          \
    X(REFUSED_OPEN_WROTE, "refused-open-wrote", "image", "an open that refused the image changed it")             \
    X(CREATE_IMAGE_INVALID, "create-image-invalid", "image", "a completed create left an image that does not open") \
    X(DATA, "data", "data", "a sector holds a value the acknowledged writes do not allow (data:<kind>)")          \
    X(UNWRITTEN_NOT_ZERO, "data:unwritten-not-zero", "data",                                                      \
      "a sector no operation ever wrote, in an allocated block, does not read as zeros")                          \
    X(REF_REFUSED_RECOVERABLE, "ref:refused-recoverable", "reference",                                            \
      "the subject refused an image the reference opens by MS-VHDX (an intact header, region table copy, sequence)") \
    X(REF_ACCEPTED_INVALID, "ref:accepted-invalid", "reference",                                                  \
      "the subject opened an image that breaks a MUST of MS-VHDX")                                                \
    X(REF_INVALID_CRASH_STATE, "ref:invalid-crash-state", "reference",                                            \
      "a power cut left an image that breaks a MUST of MS-VHDX: the writer is wrong")                              \
    X(REF_LOG_MISMATCH, "ref:log-mismatch", "reference",                                                          \
      "the subject replayed a different sequence (or none) than the reference")                                   \
    X(REF_GEOMETRY_MISMATCH, "ref:geometry-mismatch", "reference",                                                \
      "the subject's disk size, block size, sectors or region places differ from the reference's")               \
    X(REF_REPLAYED_BYTES, "ref:replayed-bytes", "reference",                                                      \
      "after the subject's replay, metadata bytes differ from the reference's replay")                            \
    X(REF_REPLAYED_INVALID, "ref:replayed-image-invalid", "reference",                                            \
      "the image the subject's replay left breaks MS-VHDX or still needs a replay")                               \
    X(REF_FILE_SIZE, "ref:file-size", "reference", "the replayed file is smaller than the log requires")          \
    X(REF_VIRTUAL_BYTES, "ref:virtual-bytes", "reference",                                                        \
      "the subject reads other virtual-disk bytes than the reference at the same offset")                         \
    X(VIEW_RO_RW, "view:ro-rw-mismatch", "view",                                                                  \
      "a read-only open (replay in memory) and a read-write open (replay on disk) show different bytes")          \
    X(FAULT_NOT_REPORTED, "fault-not-reported", "live", "an operation during which a fault fired returned success") \
    X(POISONED_HANDLE_SUCCEEDED, "poisoned-handle-succeeded", "live", "a poisoned handle served a call")          \
    X(FAILED_WITHOUT_FAULT, "failed-without-fault", "live", "an operation failed before any fault fired")          \
    X(LIVE_DATA, "live-data", "live", "a live read returned a value the in-session model does not allow")      \
    X(PROTO_APPLY_BEFORE_LOG, "protocol:apply-before-log-durable", "protocol",                                   \
      "MS-VHDX 2.3: a write into a region table, the metadata region or the BAT was issued before a flush made "  \
      "durable a log entry holding those bytes under the LogGuid of the durable header")                         \
    X(PROTO_LOGGUID_CLEARED_EARLY, "protocol:logguid-cleared-early", "protocol",                                 \
      "MS-VHDX 2.3, 2.2.2: a header write cleared or replaced a LogGuid before a flush made the final-place "     \
      "writes of that log's entries durable")                                                                    \
    X(PROTO_CLEAR_UNAPPLIED, "protocol:clear-unapplied", "protocol",                                             \
      "MS-VHDX 2.3, 2.3.3: a header write cleared or replaced a LogGuid while an update of its active "           \
      "sequence was never written to its final place")                                                           \
    X(PROTO_HEADER_BEFORE_ENTRY, "protocol:header-before-entry", "protocol",                                     \
      "MS-VHDX 2.3.3, 2.2.2: a header naming a new LogGuid was written before a flush made a valid entry "        \
      "under it durable (a cut leaves a LogGuid with no valid sequence: the file is corrupt)")                   \
    X(PROTO_HEADER_COPIES_ONE_EPOCH, "protocol:header-copies-one-epoch", "protocol",                             \
      "MS-VHDX 2.2.2.1: both header copies were written between the same two flushes")                           \
    X(PROTO_FIRST_64K, "protocol:first-64k-written", "protocol",                                                 \
      "MS-VHDX 2.2.1: a write into the first 64 KiB of the file after it was created")                           \
    X(PROTO_PAYLOAD_BEFORE_BAT, "protocol:payload-before-bat", "protocol",                                       \
      "MS-VHDX 2.5.1.1, 2.3: a log entry maps a block at a file offset whose earlier writes or file extension "   \
      "were not yet durable")                                                                                    \
    X(PROTO_TAIL_PAST_UNAPPLIED, "protocol:tail-past-unapplied", "protocol",                                     \
      "MS-VHDX 2.3.2: an entry's Tail skips an earlier entry of its log whose updates are not durably in "        \
      "their final place, or does not lead to the entry")                                                        \
    X(PROTO_OVERWRITE_LIVE_ENTRY, "protocol:overwrite-live-entry", "protocol",                                   \
      "MS-VHDX 2.3.1: a write into the ring over an entry of the active sequence of the durable log")           \
    X(PROTO_FLUSHED_OFFSET, "protocol:flushed-offset", "protocol",                                               \
      "MS-VHDX 2.3.1.1: an entry's FlushedFileOffset exceeds the file size that was durable when it was "         \
      "written")                                                                                                 \
    X(PROTO_LAST_OFFSET, "protocol:last-offset", "protocol",                                                     \
      "MS-VHDX 2.3.1.1: an entry's LastFileOffset does not cover every structure (log, regions, mapped blocks)")   \
    X(PROTO_FLUSH_ACK, "protocol:flush-ack-before-durable", "protocol",                                          \
      "the virtual-disk flush contract (not MS-VHDX): a flush or close the subject reported done left a write "   \
      "that no device flush followed")

enum invariant {
#define X(id, name, cls, about) INV_##id,
    INVARIANT_LIST(X)
#undef X
        INV_COUNT
};

/* The report name, class and description of an invariant. */
const char *invariant_name(enum invariant i);
const char *invariant_class(enum invariant i);
const char *invariant_about(enum invariant i);

#endif /* HARNESS_INVARIANTS_H */
