/*
 * qdiff.h - what it means when QEMU (the in-process subject) and libvhdx /
 * the independent reference disagree about an image: the disagreement's
 * class, the MS-VHDX rule it touches and which side departs from it.  The
 * in-process form of `powercut diff` (scripts/pclib/diff.py: the same class
 * names and rules), for the QEMU fuzz targets and the cross-subject sweeps.
 *
 * One registry (QDIFF_CLASSES below).  A class is "known" when it is one of
 * QEMU's departures documented with a reproducer in docs/qemu-findings.md
 * (the last field names the entry), or a difference that is no QEMU bug
 * ("neither", "ours-stricter"): the fuzz targets count those and go on.
 * Every other class is a finding to triage and aborts the input
 * (POWERCUT_FUZZ_STRICT=1 aborts on known ones too).  Classes diff.py saw
 * but nobody has reproduced in process yet stay unknown on purpose.
 */
#ifndef QEMU_QDIFF_H
#define QEMU_QDIFF_H

#include <stddef.h>
#include <stdint.h>

#include "ref/ref.h"
#include "vhdx/bdev.h"

/*  X(id, name, section, rule, departs, known, finding) */
#define QDIFF_CLASSES                                                                                               \
    X(QD_NO_SEQUENCE, "qemu-opens-logguid-without-valid-sequence", "2.3.3",                                         \
      "if the candidate active sequence is empty, the file is corrupt and the implementation MUST fail to open it", \
      "qemu", 1, "Q1")                                                                                              \
    X(QD_TRUNCATED, "qemu-opens-file-shorter-than-flushed-file-offset", "2.3.3",                                    \
      "if the file is shorter than the head's FlushedFileOffset, the implementation MUST fail to open it", "qemu", \
      1, "Q14")                                                                                                     \
    X(QD_HEADER_AMBIGUOUS, "qemu-opens-no-current-header-equal-sequence-numbers", "2.2.2",                          \
      "if there is no current header, the VHDX file is corrupt", "qemu", 0, NULL)                                   \
    X(QD_NO_HEADER, "qemu-opens-no-valid-header", "2.2.2", "if there is no current header, the file is corrupt",    \
      "qemu", 0, NULL)                                                                                              \
    X(QD_LOG_VERSION, "qemu-opens-log-version-nonzero-with-log", "2.2.2",                                           \
      "LogVersion MUST be zero; if not, the implementation MUST NOT continue unless LogGuid is zero", "qemu", 0,   \
      NULL)                                                                                                         \
    X(QD_REQUIRED_REGION, "qemu-opens-unknown-required-region", "2.2",                                              \
      "implementations MUST fail to open a file with a required region they do not understand", "qemu", 0, NULL)    \
    X(QD_OVERLAP, "qemu-opens-overlapping-structures", "2.2.3.2",                                                   \
      "all objects within the table must be non-overlapping; FileOffsetMB must be unique across BAT entries",      \
      "qemu", 1, "Q11")                                      \
    X(QD_BAT, "qemu-opens-invalid-bat-entry", "2.5.1",                                                              \
      "a block must reside after the header section and not overlap any other structure (and PARTIALLY_PRESENT "  \
      "belongs to differencing disks)", "qemu", 1, "Q11")         \
    X(QD_LOG_AMBIGUOUS, "qemu-opens-two-log-heads-same-sequence", "2.3.3",                                          \
      "the text does not order two heads with equal sequence numbers", "neither", 1, NULL)                          \
    X(QD_LOG_TARGET, "qemu-opens-log-descriptor-targets-protected-range", "2.2.1/2.2.2",                            \
      "the first 64 KB MUST NOT be overwritten; headers are not updated through the log", "qemu", 1, "Q4")          \
    X(QD_OURS_FIELD, "ours-refuses-log-entry-with-field-out-of-range", "2.3.1.1",                                   \
      "writers MUST zero reserved fields and align offsets to 1 MB; readers are not told to reject", "ours-stricter", \
      1, NULL)                                                                                                      \
    X(QD_VSIZE, "qemu-opens-virtual-disk-size-out-of-range", "2.6.2.2",                                            \
      "VirtualDiskSize MUST be a multiple of the logical sector size and at most 64 TB (QEMU checks neither and "  \
      "counts BAT entries in 32 bits: a disk larger than its BAT, whose I/O indexes past the BAT array)", "qemu",  \
      1, "Q10")                                                                                                     \
    X(QD_DUP_ITEM, "qemu-opens-metadata-table-with-duplicate-items", "2.6.1.2",                                     \
      "the ItemId and IsUser pair MUST be unique within the metadata table", "qemu", 1, "Q11")                      \
    X(QD_META_INVALID, "qemu-opens-invalid-metadata-table", "2.6.1",                                                 \
      "metadata table entries MUST lie inside the metadata region (QEMU reads each known item at its offset with " \
      "its own size, whatever the entry's length)", "qemu", 1, "Q11")                                               \
    X(QD_OURS_OTHER, "ours-refuses-qemu-opens", "-", "no class yet: review the engine's code and QEMU's acceptance",  \
      "undetermined", 0, NULL)                                                                                      \
    X(QD_REGION1, "qemu-refuses-damaged-region-table-1", "2.2.3",                                                   \
      "two copies are kept; the text does not say a reader falls back to the second", "neither", 1, NULL)           \
    X(QD_CANNOT_REPLAY, "qemu-cannot-replay-a-valid-log", "2.3.3",                                                  \
      "the implementation must find the newest valid and complete sequence and replay it", "qemu", 1, "Q5")         \
    X(QD_QEMU_LOGVER, "qemu-refuses-log-version-nonzero-without-log", "2.2.2",                                      \
      "a nonzero LogVersion stops processing only when LogGuid is not zero (QEMU refuses it always)", "qemu", 1,   \
      "Q11")                                                                                                        \
    X(QD_QEMU_REFUSES_VALID, "qemu-refuses-valid-image", "-",                                                       \
      "QEMU refuses an image the reference reads as valid and libvhdx opens", "qemu", 0, NULL)                      \
    X(QD_QEMU_REFUSES_OTHER, "qemu-refuses-image-ours-opens", "-",                                                  \
      "QEMU refuses an image libvhdx opens; the reference does not call it valid", "undetermined", 0, NULL)         \
    X(QD_NO_EXTEND, "qemu-does-not-extend-file-to-LastFileOffset", "2.3.3",                                         \
      "after replay the implementation MUST expand the file to at least the head's LastFileOffset", "qemu", 1, "Q3") \
    X(QD_OURS_SMALLER, "ours-file-smaller-after-replay", "2.3.3",                                                   \
      "libvhdx leaves a smaller file than QEMU after the same replay", "ours", 0, NULL)                             \
    X(QD_TAIL_OUTSIDE, "qemu-replays-entry-whose-tail-is-outside-its-sequence", "2.3.3",                            \
      "a sequence is valid only if its head's tail is contained in it, and is replayed from that tail (QEMU never " \
      "reads Tail)", "qemu", 1, "Q6")                            \
    X(QD_SEARCH_SKIPS, "qemu-search-skips-positions-inside-an-invalid-entry", "2.3.3",                             \
      "scan every 4 KiB position of the ring (QEMU resumes after the whole span an invalid entry claims)", "qemu",  \
      1, "Q6")                                                                                                      \
    X(QD_SEQ_GAP, "qemu-accepts-sequence-gap-after-first-entry", "2.3.2",                                           \
      "each non-tail entry MUST have a sequence number one greater than the previous entry (QEMU does not check "   \
      "the second entry)", "qemu", 1, "Q6")                                                                         \
    X(QD_WRAP_PARTIAL, "qemu-replays-only-the-part-of-a-wrapped-sequence-after-the-ring-end", "2.3.3",            \
      "replay every entry from tail to head (QEMU ranks runs by their first entry, so the part of a sequence "      \
      "after the wrap outranks the whole sequence)", "qemu", 1, "Q6")                                              \
    X(QD_RANK_FIRST, "qemu-ranks-runs-by-their-first-entry", "2.3.3",                                               \
      "keep the valid sequence whose head has the greatest sequence number (QEMU compares runs by their first "     \
      "entry, so an older run whose first entry's number exceeds the active tail's outranks the active sequence)", \
      "qemu", 1, "Q6")                                                                                              \
    X(QD_OURS_FIELD_REPLAY, "ours-rejects-newer-entry-qemu-replays-it", "2.3.1.1",                                 \
      "writers MUST zero reserved fields and align offsets to 1 MB, and libvhdx wants EntryLength to be the "       \
      "descriptor and data sectors (the text is silent); libvhdx rejects such an entry, QEMU replays it",          \
      "ours-stricter", 1, NULL)                                                                                     \
    X(QD_REPLAY_DIFFERS, "replay-writes-differ", "2.3.3",                                                           \
      "both replayed, and the bytes they wrote differ (compare vhdxtool dump-log with what QEMU wrote)",            \
      "undetermined", 0, NULL)                                                                                      \
    X(QD_READ_UNDEFINED, "virtual-read-differs-in-undefined-block", "2.5.1.1",                                      \
      "NOT_PRESENT/UNDEFINED/UNMAPPED blocks may read as anything", "neither", 1, NULL)                             \
    X(QD_READ_ZERO, "virtual-read-differs-in-zero-block", "2.5.1.1",                                                \
      "PAYLOAD_BLOCK_ZERO: implementations MUST return zeros", "the side that does not return zeros", 0, NULL)      \
    X(QD_READ_PRESENT, "virtual-read-differs-in-fully-present-block", "2.5.1.1",                                    \
      "FULLY_PRESENT: reads return the block contents at FileOffsetMB", "undetermined", 0, NULL)                    \
    X(QD_READ_FAILS, "qemu-read-fails-on-opened-image", "-",                                                        \
      "a read inside the disk of an image QEMU opened fails", "qemu", 0, NULL)                                      \
    X(QD_WRITE_ENOTSUP, "qemu-cannot-write-after-opening-without-replay", "2.3.3",                                  \
      "QEMU opened a file whose header names a log it did not replay, and refuses every write", "qemu", 1, "Q1")    \
    X(QD_WRITE_FAILS, "qemu-write-fails-on-opened-image", "-",                                                      \
      "a write inside the disk of an image QEMU opened read-write fails", "qemu", 0, NULL)                          \
    X(QD_LOST_WRITE, "qemu-loses-acknowledged-data", "-",                                                           \
      "data QEMU acknowledged reads back differently (same session or after reopen)", "qemu", 0, NULL)              \
    X(QD_LOST_AFTER_FAILED, "qemu-loses-acknowledged-write-after-failed-allocation", "-",                           \
      "a write QEMU acknowledged (and flushed) is gone after a reopen: an earlier allocating write into the same "   \
      "block failed after the block was put in the in-memory BAT", "qemu", 1, "Q7")                                 \
    X(QD_CHECK_AFTER, "qemu-check-fails-on-image-it-wrote", "-",                                                    \
      "QEMU's own check finds errors in an image QEMU replayed or wrote and closed", "qemu", 0, NULL)               \
    X(QD_UNINIT_BYTES, "qemu-writes-uninitialized-bytes-to-log", "2.3.1",                                           \
      "bytes of a log entry's descriptor sector after its descriptors come from uninitialized memory", "qemu", 1,   \
      "Q2")                                                                                                         \
    X(QD_REOPEN_WRITES, "qemu-second-open-writes", "2.3.3",                                                         \
      "an image QEMU replayed and closed is written again by the next open", "qemu", 0, NULL)                      \
    X(QD_READS_UNBOUNDED, "qemu-log-search-does-not-terminate", "2.3.3",                                           \
      "the search stops after one pass over the ring (QEMU's never ends when an entry it rejects spans the whole "  \
      "ring); seen as an open that reads more than 64 rings", "qemu", 1, "Q9")                        \
    X(QD_WRITES_UNBOUNDED, "qemu-replay-writes-without-bound", "2.2.1/2.3.3",                                       \
      "a descriptor may not target the header section nor past LastFileOffset (QEMU replays a zero descriptor of "  \
      "any length, 4 KiB and a flush at a time); seen as an open that writes more than 64 rings", "qemu", 1, "Q4")  \
    X(QD_BOTH_VS_REF, "both-disagree-with-reference", "-",                                                          \
      "QEMU and libvhdx agree and the reference disagrees (an engine or reference matter)", "undetermined", 0, NULL) \
    X(QD_HEADER_STALE, "qemu-builds-header-update-from-non-current-copy", "2.2.2.1",                                \
      "a header update sets the new header's fields to the current header's values (QEMU starts from the "         \
      "non-current copy: its LogGuid, LogOffset, LogLength and versions become current); seen when the two valid "  \
      "copies differ in those fields", "qemu", 1, "Q12")                                                          \
    X(QD_DESC_ABORT, "qemu-log-search-fails-on-an-invalid-descriptor", "2.3.3",                                     \
      "an entry that fails validation belongs to no sequence and the search goes on (QEMU's search stops with an " \
      "error when an entry's descriptor fails its checks, before the checksum: the open is refused)", "qemu", 1,   \
      "Q13")

enum qdiff_id {
#define X(id, name, section, rule, departs, known, finding) id,
    QDIFF_CLASSES
#undef X
        QD_COUNT
};

struct qdiff_class {
    enum qdiff_id id;
    const char *name;    /* diff.py's class name */
    const char *section; /* MS-VHDX section */
    const char *rule;    /* the rule in a few words */
    const char *departs; /* "qemu", "ours", "neither", "undetermined", ... */
    int known;           /* a documented QEMU departure: counted, not a new finding */
    const char *finding; /* docs/qemu-findings.md entry, or NULL */
};

const struct qdiff_class *qdiff_class(enum qdiff_id id);
const struct qdiff_class *qdiff_find(const char *name);

/* Both sides' verdicts on the same image (read-write opens).  ours_rc is
 * libvhdx's result (0 or VHDX_E_*), qemu_rc the subject's (0 or -errno).
 * Returns the class, or NULL when they agree.  ref may be NULL. */
const struct qdiff_class *qdiff_verdict(int ours_rc, int ours_replayed, int qemu_rc, const struct ref_image *ref);

/* Both replayed and their files differ at file offset off (sizes given):
 * the class (file size, tail outside the sequence, or undetermined).
 * before: the image before either replay (for the log facts). */
const struct qdiff_class *qdiff_replay(struct bdev *before, uint64_t ours_size, uint64_t qemu_size);

/* The class of a virtual read difference in a block whose BAT state (after
 * the replay) is bat_state (REF_BAT_*). */
const struct qdiff_class *qdiff_read(unsigned bat_state);

/* Counts per class in this process (qdiff_note), and a one-line summary. */
void qdiff_note(const struct qdiff_class *c);
uint64_t qdiff_count(enum qdiff_id id);
void qdiff_summary(char *buf, size_t len);

/* QEMU's reading of an image it opened (subject_qemu's explain): every
 * documented departure whose precondition the image shows, before QEMU
 * touched it, as "Q6 <class>; Q12 <class>" (empty when none):
 *   Q6   the log facts of qdiff_replay (an entry past the head or right
 *        before its tail, a skipped position, a sequence gap, a wrap):
 *        QEMU may replay other entries than the active sequence;
 *   Q12  two valid header copies that differ in LogGuid, LogOffset,
 *        LogLength, LogVersion or Version: QEMU's next header update
 *        (the replay's first write, the first guest write, a log start)
 *        makes the non-current copy's values current;
 *   Q13  an entry whose header QEMU accepts (signature, length, sequence
 *        number, LogGuid, descriptor count) with a descriptor in its first
 *        sector that QEMU rejects (sequence number, signature, offset): a
 *        torn or damaged entry anywhere in the ring; QEMU's search stops
 *        with an error when it meets one;
 *   Q5   an entry under the current LogGuid with more than 126
 *        descriptors: QEMU reads them into the wrong place and refuses a
 *        log that holds one.
 * Q6's Tail fact also holds when the text finds no sequence at all but a
 * valid entry exists (QEMU replays it, Tail unread).
 * Returns the number of classes written. */
int qdiff_explain(struct bdev *before, char *buf, size_t len);

/* Scans the log ring of an image QEMU wrote for entries whose descriptor
 * sectors hold runs of the shim's allocation pattern after the last
 * descriptor (Q2).  Returns the number of such bytes. */
uint64_t qdiff_uninitialized_log_bytes(struct bdev *dev, uint64_t log_offset, uint32_t log_length);

#endif /* QEMU_QDIFF_H */
