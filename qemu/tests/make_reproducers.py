#!/usr/bin/python3
"""make_reproducers.py - the minimal inputs of the QEMU findings
(docs/qemu-findings.md), built by hand from MS-VHDX so that each shows one
behaviour and nothing else.  Writes corpus/regressions/qemu-*/ (the input
and meta.json); CTest (fuzz.regressions) replays them with the QEMU fuzz
targets: "open" cases must run clean normally and fail with
POWERCUT_FUZZ_STRICT=1 while QEMU keeps the behaviour.

Inputs of fuzz_qemu_log_replay (fuzz_common.h, the log-input format): a
32-byte prefix (flags, ring start, file size change in MiB, header sequence
bias, LogGuid) then 4 KiB log sectors placed in the 1 MiB ring of the base
image FUZZ_IMG_REPLAY (8 MiB disk, 1 MiB blocks at 4, 5 and 6 MiB of the
file, metadata at 2 MiB, BAT at 3 MiB, file 7 MiB).  Inputs of
fuzz_qemu_image_open: 2 bytes (flags, seed) then byte edits of
FUZZ_IMG_CLEAN (header copy 2 at 128 KiB is current).

Usage: make_reproducers.py [--out corpus/regressions] [--check BUILD] [--build BUILD]
  --check BUILD  also run each input through BUILD/fuzz/<target> (clean)
                 and with POWERCUT_FUZZ_STRICT=1 (must fail), and each
                 pcsweep reproducer through BUILD's `pcsweep repro` (must
                 exit 1)
  --build BUILD  also make the cases whose log fills the whole ring (more
                 than the fuzz input's 64 sectors): pcsweep reproducers of a
                 crash state judged by the QEMU subject (sweep_cases)
"""
import argparse
import datetime
import json
import os
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "tests"))
from forge import crc32c  # noqa: E402  (bytewise CRC-32C, the tests' forger)

MiB = 1 << 20
LRF_GUID = 1
GUID = bytes.fromhex("f15f003be7ce7b43ae2235551184051e")  # any non-zero LogGuid
FILE_SIZE = 7 * MiB           # FUZZ_IMG_REPLAY's file
BLOCK0 = 4 * MiB              # file offset of the first payload block (virtual 0)


def prefix(flags=LRF_GUID, start=0, delta_mb=0, guid=GUID):
    return struct.pack("<BBhI8s16s", flags, start, delta_mb, 0, bytes(8), guid)


def entry(seq, tail, descs, ffo=FILE_SIZE, lfo=FILE_SIZE, guid=GUID, corrupt_crc=False):
    """One log entry as bytes.  descs: ("zero", file offset, length) or
    ("data", file offset, 4096 bytes)."""
    n = len(descs)
    desc_sectors = (n + 2 + 127) // 128
    datas = [d for d in descs if d[0] == "data"]
    total = (desc_sectors + len(datas)) * 4096
    body = bytearray(desc_sectors * 4096)
    struct.pack_into("<4sIIIQII16sQQ", body, 0, b"loge", 0, total, tail, seq, n, 0, guid, ffo, lfo)
    data_sectors = b""
    for i, d in enumerate(descs):
        off = 64 + 32 * i
        if d[0] == "zero":
            struct.pack_into("<4sIQQQ", body, off, b"zero", 0, d[2], d[1], seq)
        else:
            u = d[2]
            struct.pack_into("<4sIQQQ", body, off, b"desc", struct.unpack_from("<I", u, 4092)[0],
                             struct.unpack_from("<Q", u, 0)[0], d[1], seq)
            data_sectors += b"data" + struct.pack("<I", seq >> 32) + u[8:4092] + struct.pack("<I", seq & 0xFFFFFFFF)
    whole = bytearray(bytes(body) + data_sectors)
    crc = crc32c(bytes(whole))
    struct.pack_into("<I", whole, 4, crc ^ (1 if corrupt_crc else 0))
    return bytes(whole)


def ring(placed):
    """Log sectors from ring offset 0: placed = [(ring offset, entry bytes)]."""
    end = max(off + len(e) for off, e in placed)
    buf = bytearray(end)
    for off, e in placed:
        buf[off:off + len(e)] = e
    return bytes(buf)


def page(byte):
    return bytes([byte]) * 4096


# ---- the cases --------------------------------------------------------------------------
def cases():
    out = []
    # Q1: the header names a LogGuid and the log holds nothing under it (the
    # state a power cut leaves between QEMU's header update and its entry).
    out.append(("qemu-q1-logguid-without-entry", "fuzz_qemu_log_replay", prefix(),
                "the current header names a LogGuid; the ring holds no entry with it",
                "qemu-opens-logguid-without-valid-sequence"))
    # Q1's consequence and Q7: the same header state on a clean image; the
    # session's allocating writes fail (ENOTSUP), their retries succeed and
    # are gone after a reopen.
    out.append(("qemu-q7-acknowledged-write-lost-after-failed-allocation", "fuzz_qemu_image_open", q1_image_edit(),
                "FUZZ_IMG_CLEAN with the current header (128 KiB) naming a LogGuid, checksum fixed; the session "
                "(seed 2) writes into an unallocated block (ENOTSUP), retries (acknowledged), closes, reopens",
                "qemu-loses-acknowledged-write-after-failed-allocation"))
    # Q2: any allocating write of QEMU (seed 1 writes three ranges of the clean image).
    out.append(("qemu-q2-uninitialized-log-bytes", "fuzz_qemu_image_open", bytes([0, 2]),
                "FUZZ_IMG_CLEAN unchanged; the session's writes allocate blocks",
                "qemu-writes-uninitialized-bytes-to-log"))
    # Q3: a valid entry whose LastFileOffset (8 MiB, a 1 MiB multiple) is past
    # the 7 MiB file: the file must grow to 8 MiB.
    out.append(("qemu-q3-lastfileoffset-not-extended", "fuzz_qemu_log_replay",
                prefix() + entry(1, 0, [("zero", BLOCK0, 4096)], lfo=8 * MiB),
                "one entry (seq 1, a zero descriptor in block 0), FlushedFileOffset 7 MiB = the file, "
                "LastFileOffset 8 MiB", "qemu-does-not-extend-file-to-LastFileOffset"))
    # Q4: a zero descriptor over the file type identifier.
    out.append(("qemu-q4-replay-overwrites-file-identifier", "fuzz_qemu_log_replay",
                prefix() + entry(1, 0, [("zero", 0, 4096)]),
                "one entry (seq 1) with a zero descriptor at file offset 0, 4 KiB",
                "qemu-opens-log-descriptor-targets-protected-range"))
    # Q4, its cost: a zero descriptor of 64 TiB past LastFileOffset is
    # replayed 4 KiB and a flush at a time.
    out.append(("qemu-q4-zero-descriptor-without-bound", "fuzz_qemu_log_replay",
                prefix() + entry(1, 0, [("zero", BLOCK0, 64 << 40)]),
                "one entry (seq 1, LastFileOffset 7 MiB) with a zero descriptor at 4 MiB, 64 TiB long",
                "qemu-replay-writes-without-bound"))
    # Q5: an entry with 127 descriptors needs two descriptor sectors.
    out.append(("qemu-q5-entry-with-127-descriptors", "fuzz_qemu_log_replay",
                prefix() + entry(1, 0, [("zero", BLOCK0 + 4096 * i, 4096) for i in range(127)]),
                "one entry (seq 1) with 127 zero descriptors (block 0's first 127 pages): two descriptor sectors",
                "qemu-cannot-replay-a-valid-log"))
    # Q7a: an older entry's span hides a newer entry that starts inside it.
    e1 = entry(1, 0, [("data", BLOCK0, page(0x11))])                 # 0x0000..0x2000
    e2 = entry(2, 0, [("data", BLOCK0, page(0x22))])                 # 0x2000..0x4000 (claimed)
    e3 = entry(3, 0x3000, [("data", BLOCK0, page(0x33))])            # 0x3000..0x5000: overwrites e2's data sector
    out.append(("qemu-q6-search-skips-entry-inside-rejected-span", "fuzz_qemu_log_replay",
                prefix() + ring([(0, e1), (0x2000, e2), (0x3000, e3)]),
                "entries seq 1 at 0, seq 2 at 8 KiB (8 KiB long; its data sector was overwritten), seq 3 at "
                "12 KiB (tail itself), each writing one page of block 0 with 0x11, 0x22, 0x33",
                "qemu-search-skips-positions-inside-an-invalid-entry"))
    # Q7b: the second entry of a run is not checked against the first.
    e7 = entry(7, 0, [("data", BLOCK0, page(0x77))])
    e3b = entry(3, 0x2000, [("data", BLOCK0, page(0x33))])
    out.append(("qemu-q6-sequence-gap-after-first-entry", "fuzz_qemu_log_replay",
                prefix() + ring([(0, e7), (0x2000, e3b)]),
                "entry seq 7 at 0 (tail itself) then entry seq 3 at 8 KiB (tail itself), both writing a page of "
                "block 0 (0x77, then 0x33)", "qemu-accepts-sequence-gap-after-first-entry"))
    # Q7c: an entry before the head's Tail is replayed.
    e1c = entry(1, 0, [("data", BLOCK0, page(0x11))])
    e2c = entry(2, 0x2000, [("data", BLOCK0 + 4096, page(0x22))])
    out.append(("qemu-q6-replays-entry-before-tail", "fuzz_qemu_log_replay",
                prefix() + ring([(0, e1c), (0x2000, e2c)]),
                "entry seq 1 at 0 (writes 0x11 to block 0's first page) and entry seq 2 at 8 KiB whose Tail is "
                "itself (writes 0x22 to the second page)", "qemu-replays-entry-whose-tail-is-outside-its-sequence"))
    # Q7d: a sequence that wraps around the end of the ring (tail at 1000 KiB,
    # head at 0): QEMU meets the head first and ranks runs by their first
    # entry, so only the head is replayed.
    L = MiB
    tail = L - 0x6000
    wrapped = b"".join(entry(126 + k, tail, [("data", BLOCK0 + 4096 * k, page(0x26 + k))]) for k in range(3))
    wrapped += entry(129, tail, [("data", BLOCK0 + 4096 * 3, page(0x29))])
    out.append(("qemu-q6-wrapped-sequence-replayed-partly", "fuzz_qemu_log_replay",
                prefix(start=tail // 4096) + wrapped,
                "entries seq 126, 127, 128 at ring offsets 1000, 1008, 1016 KiB and seq 129 at 0 (the ring wraps), "
                "all with Tail 1000 KiB, each writing one page of block 0 (0x26, 0x27, 0x28, 0x29)",
                "qemu-replays-only-the-part-of-a-wrapped-sequence-after-the-ring-end"))
    # Q6e: runs ranked by their first entry without any wrap: the active
    # sequence seq 1..3 (Tail 0) and, past a free page, a stale entry seq 2
    # (Tail itself): QEMU's run from it starts at 2 > 1 and wins, so QEMU
    # replays only the stale entry (found by bench's fuzz run, -seed=1).
    act = [entry(1 + k, 0, [("data", BLOCK0, page(0x11 + k))]) for k in range(3)]
    stale = entry(2, 0x8000, [("data", BLOCK0, page(0x22))])
    out.append(("qemu-q6-stale-run-outranks-active-sequence", "fuzz_qemu_log_replay",
                prefix() + ring([(0, act[0]), (0x2000, act[1]), (0x4000, act[2]), (0x8000, stale)]),
                "entries seq 1, 2, 3 at 0, 8, 16 KiB (Tail 0) writing 0x11, 0x12, 0x13 to block 0's first page, "
                "a free page at 24 KiB, and a stale entry seq 2 at 32 KiB (Tail itself) writing 0x22 there",
                "qemu-ranks-runs-by-their-first-entry"))
    # Q9: an entry whose EntryLength is the whole ring and whose checksum is
    # wrong: QEMU's search steps over it back to where it started, forever.
    out.append(("qemu-q9-log-search-never-ends", "fuzz_qemu_log_replay", prefix() + whole_ring_entry(),
                "one entry header at ring offset 0: EntryLength 1 MiB (the ring), sequence 1, no descriptors, "
                "a wrong checksum", "qemu-log-search-does-not-terminate"))
    # Q13: one damaged entry (its header fine, its descriptor's sequence
    # number not its own, as a torn or stale sector leaves it) after a valid
    # one: QEMU's search stops with EINVAL at the descriptor instead of
    # rejecting the entry.
    e1d = entry(1, 0, [("data", BLOCK0, page(0x11))])
    e2d = bytearray(entry(2, 0, [("data", BLOCK0, page(0x22))]))
    struct.pack_into("<Q", e2d, 64 + 24, 1)
    out.append(("qemu-q13-damaged-entry-stops-search", "fuzz_qemu_log_replay",
                prefix() + ring([(0, e1d), (0x2000, bytes(e2d))]),
                "entry seq 1 at 0 (Tail itself, writes 0x11 to block 0's first page), then at 8 KiB an entry whose "
                "header says seq 2 and whose descriptor says seq 1", "qemu-cannot-replay-a-valid-log"))
    # Q10: VirtualDiskSize 4 PiB + 4 MiB on the clean 4 MiB image: QEMU counts
    # BAT entries in 32 bits (4 + 0), so the open passes its BAT-size check
    # and any I/O past 128 GiB indexes past its 1 MiB BAT array.
    out.append(("qemu-q10-virtual-size-beyond-bat", "fuzz_qemu_image_open", q10_image_edit(),
                "FUZZ_IMG_CLEAN with its Virtual Disk Size item set to 2^52 + 4 MiB bytes (4 PiB + 4 MiB)",
                "qemu-opens-virtual-disk-size-out-of-range"))
    return out


# ---- cases that need a whole ring: crash states of a sweep -------------------------------
# The fuzz targets' log input holds at most 64 ring sectors (fuzz_common.h),
# and these need the whole 1 MiB ring full of valid entries, the steady state
# of a writer that batches its log (the cross-subject sweep met them in
# libvhdx's crash states).  Each becomes an image (FUZZ_IMG_REPLAY, exported
# by fuzz_qemu_log_replay for a prefix without sectors, with the ring
# written over its log), a trace with that image as its base and no
# operation (`powercut record -- true`), and the reproducer of its one
# crash state (model drop, epoch 0: the image itself) judged by the QEMU
# subject (`pcsweep export --subject qemu --with-repro`), replayed by
# `pcsweep repro` (CTest sweep.regressions: status "open" exits 1).
def sweep_cases():
    out = []
    # Q9 on a valid log: the ring full of consecutive entries except one
    # sector that holds no entry header, right before the first of them.
    # QEMU's run from there wraps around the ring, stops at that sector and
    # steps to where it began: the search starts again, for ever.
    full = [(0x1000 + 0x1000 * k, entry(100 + k, 0x1000 + 0x1000 * k, [("zero", BLOCK0, 4096)])) for k in range(255)]
    out.append(("qemu-q9-valid-full-ring-never-ends", prefix(), "drop", full,
                "FUZZ_IMG_REPLAY with a full ring: 255 entries of one sector (seq 100..354, each its own Tail, a "
                "zero descriptor over block 0's first page) at ring offsets 4 KiB .. 1020 KiB; ring offset 0 holds "
                "no entry", "qemu-log-search-does-not-terminate",
                "timeout 20 qemu-img info IMG (status 124: never returns; vhdxtool info IMG at once: the active "
                "sequence is the head, seq 354)"))
    # Q6 on a valid log: the ring full of consecutive entries of two sectors
    # (a descriptor and a data sector, as libvhdx writes them), the newest
    # followed by the oldest, the one before the newest spanning the ring's
    # end.  QEMU's run from the newest does not check the second entry's
    # sequence number, goes round the ring back to the newest and counts 128
    # entries between two positions 8 KiB apart; its replay stops with
    # EINVAL after the first and the open is refused.
    ring_ = [(0x3000 + 0x2000 * k, entry(100 + k, 0x3000 + 0x2000 * k, [("data", BLOCK0 + 4096 * k, page(k))]))
             for k in range(126)]
    ring_.append((0xFF000, entry(226, 0xFF000, [("data", BLOCK0 + 4096 * 126, page(0xE2))])))  # data: ring offset 0
    ring_.append((0x1000, entry(227, 0x1000, [("data", BLOCK0 + 4096 * 127, page(0xE3))])))
    out.append(("qemu-q6-full-ring-run-circles-refused", prefix(), "drop", ring_,
                "FUZZ_IMG_REPLAY with a full ring of two-sector entries (each its own Tail, each writing one page "
                "of block 0): seq 100..225 at ring offsets 12 KiB .. 1012 KiB, seq 226 at 1020 KiB (its data sector "
                "is ring offset 0), the head seq 227 at 4 KiB (writes 0xe3 to block 0's page 127)",
                "qemu-refuses-valid-image",
                "qemu-io -f vhdx -c quit IMG (Could not open 'IMG': Invalid argument; vhdxtool replay IMG replays "
                "the head, seq 227)"))
    # Q12: the header copies differ (the current one names the log, the
    # other names none: libvhdx updates its copies in turn, and MS-VHDX asks
    # only the current copy to be right).  QEMU's replay first rewrites the
    # non-current copy from its own stale fields, which makes "no log"
    # current; a cut there leaves a file whose pending entry is never
    # replayed: the recovery model cuts QEMU's replay after each write.
    out.append(("qemu-q12-cut-in-replay-loses-log", prefix(), "recovery",
                [(0, entry(1, 0, [("data", BLOCK0, page(0x12))]))],
                "FUZZ_IMG_REPLAY whose current header (64 KiB) names the log and whose other copy (128 KiB, a lower "
                "sequence number) names none; one entry (seq 1) writes 0x12 to block 0's first page",
                "qemu-builds-header-update-from-non-current-copy",
                "scripts/powercut record --file IMG --out R.pctrace -- qemu-io -f vhdx -c quit IMG; pcsweep export "
                "--trace R.pctrace --models prefix --out S (S/state-000000-prefix-e0.vhdx: QEMU's first write, the "
                "non-current header copy, now current with no LogGuid); qemu-io -f vhdx -r -c 'read -P 0x12 0 4k' "
                "passes on the fully replayed image and fails on that state (zeros): the entry is never replayed"))
    return out


# How the cross-subject sweep met each (docs/qemu-findings.md).
SWEEP_FOUND_BY = {
    "qemu-q9-valid-full-ring-never-ends":
        "pcsweep sweep --subject libvhdx --replay-subject qemu --scenario batch --models prefix (libvhdx's crash "
        "states once its log ring is full: the sweep hung until the subject got its watchdog)",
    "qemu-q6-full-ring-run-circles-refused":
        "pcsweep sweep --subject libvhdx --replay-subject qemu --scenario batch --models prefix (libvhdx's crash "
        "states once its log ring is full: open-refused, EINVAL)",
    "qemu-q12-cut-in-replay-loses-log":
        "pcsweep sweep --subject libvhdx --replay-subject qemu --scenario overwrite,batch --models recovery "
        "(replay-not-idempotent: libvhdx writes its header copies in turn, so they differ while a log is pending)",
}


def ring_image(build, pre, placed, path, case_zero_other_logguid=False):
    """FUZZ_IMG_REPLAY (its headers naming GUID, an empty ring) with the
    entries written into its 1 MiB log at 1 MiB, wrapping at the ring's end."""
    with open(path + ".prefix", "wb") as f:
        f.write(pre)
    subprocess.run([os.path.join(build, "fuzz", "fuzz_qemu_log_replay"), "--quiet", path + ".prefix"], check=True,
                   capture_output=True, env=dict(os.environ, POWERCUT_FUZZ_EXPORT=path))
    os.remove(path + ".prefix")
    img = bytearray(open(path, "rb").read())
    if case_zero_other_logguid:
        # the copy at 128 KiB (not current in FUZZ_IMG_REPLAY) names no log
        h = 128 * 1024
        img[h + 48:h + 64] = bytes(16)
        img[h + 4:h + 8] = bytes(4)
        struct.pack_into("<I", img, h + 4, crc32c(bytes(img[h:h + 4096])))
    for off, e in placed:
        for i in range(0, len(e), 4096):
            pos = (off + i) % MiB
            img[MiB + pos:MiB + pos + 4096] = e[i:i + 4096]
    with open(path, "wb") as f:
        f.write(img)


def make_sweep_case(build, d, pre, model, placed, name):
    """The image, its trace and the reproducer of its crash state in d:
    model drop is the image itself (exported with its reproducer), model
    recovery the first state a strict sweep of QEMU's replay finds."""
    import shutil
    import tempfile
    tmp = tempfile.mkdtemp(prefix="qemu-repro-")
    try:
        img = os.path.join(tmp, "state.vhdx")
        ring_image(build, pre, placed, img, case_zero_other_logguid=model == "recovery")
        trace = os.path.join(tmp, "state.pctrace")
        subprocess.run([os.path.join(ROOT, "scripts", "powercut"), "record", "--file", img, "--out", trace, "--",
                        "true"], check=True, capture_output=True)
        pcsweep = os.path.join(build, "harness", "pcsweep")
        x = os.path.join(tmp, "x")
        if model == "drop":
            subprocess.run([pcsweep, "export", "--trace", trace, "--subject", "qemu", "--models", "drop",
                            "--with-repro", "--out", x], check=True, capture_output=True)
            shutil.copy(os.path.join(x, "state-000000-drop-e0.pctrace"), os.path.join(d, name))
        else:
            subprocess.run([pcsweep, "sweep", "--quiet", "--trace", trace, "--subject", "qemu", "--models", model,
                            "--strict", "--max-violations", "1", "--repro-dir", x], capture_output=True)
            found = sorted(f for f in os.listdir(x) if f.endswith(".pctrace")) if os.path.isdir(x) else []
            if not found:
                raise SystemExit(f"{d}: the {model} sweep of the image found no violation")
            shutil.copy(os.path.join(x, found[0]), os.path.join(d, name))
    finally:
        shutil.rmtree(tmp)


def clean_base():
    base = os.environ.get("QEMU_REPRO_CLEAN_BASE")
    if not base:
        raise SystemExit("set QEMU_REPRO_CLEAN_BASE to FUZZ_IMG_CLEAN exported by a fuzz target "
                         "(POWERCUT_FUZZ_EXPORT=FILE fuzz_qemu_image_open <2-byte input>)")
    with open(base, "rb") as f:
        return f.read()


def q10_image_edit():
    """Edit of the Virtual Disk Size item (found through the region table and
    the metadata table of the clean base image)."""
    img = clean_base()
    rt = img[192 * 1024:256 * 1024]
    meta = None
    for i in range(struct.unpack_from("<I", rt, 8)[0]):
        e = rt[16 + 32 * i:48 + 32 * i]
        if e[:16] == bytes.fromhex("06a27c8b90479a4bb8fe575f050f886e"):
            meta = struct.unpack_from("<Q", e, 16)[0]
    tab = img[meta:meta + 65536]
    for i in range(struct.unpack_from("<H", tab, 10)[0]):
        e = tab[32 + 32 * i:64 + 32 * i]
        if e[:16] == bytes.fromhex("2442a52f1bcd7648b2115dbed83bf4b8"):
            item = meta + struct.unpack_from("<I", e, 16)[0]
            return bytes([0, 1]) + struct.pack("<IH", item, 8) + struct.pack("<Q", (1 << 52) + 4 * MiB)
    raise SystemExit("no Virtual Disk Size item in the clean base image")


def whole_ring_entry():
    """The first sector of an entry that claims the whole 1 MiB ring, with a wrong checksum."""
    h = bytearray(4096)
    struct.pack_into("<4sIIIQII16sQQ", h, 0, b"loge", 0xDEADBEEF, MiB, 0, 1, 0, 0, GUID, FILE_SIZE, FILE_SIZE)
    return bytes(h)


# What POWERCUT_FUZZ_STRICT=1 makes both QEMU targets report on any known
# class: one crash state for every finding (so a case is named after its
# finding, not after the campaign's failure id of that state).
STRICT_CHECK = "check failed: QEMU agrees with libvhdx and the reference"
SWEEP_CHECK = "pcsweep repro: a violation of the crash state judged by the qemu subject"

# What each case shows with the real tools, for meta.json (the full
# reports: docs/qemu-findings.md).
QEMU_IO = {
    "qemu-q6-stale-run-outranks-active-sequence": "qemu-io -f vhdx -c 'read -P 0x22 0 4k' IMG (QEMU replayed the "
                                                  "stale entry only; vhdxtool replay IMG, then vhdxtool read IMG 0 "
                                                  "4k: 0x13)",
    "qemu-q1-logguid-without-entry": "qemu-io -f vhdx -c quit IMG  (opens; vhdxtool replay IMG refuses: "
                                     "VHDX_E_LOG_NO_SEQUENCE); qemu-io -f vhdx -c 'write -P 0xaa 1M 4k' IMG "
                                     "(write failed: Operation not supported)",
    "qemu-q7-acknowledged-write-lost-after-failed-allocation":
        "on the image of qemu-q1-logguid-without-entry: qemu-io -f vhdx -c 'write -P 0xaa 3M 4k' -c 'write -P 0xbb "
        "3M 4k' -c flush -c 'read -P 0xbb 3M 4k' IMG (first write fails, second succeeds, read verifies); then "
        "qemu-io -f vhdx -r -c 'read -P 0xbb 3M 4k' IMG (Pattern verification failed: zeros)",
    "qemu-q2-uninitialized-log-bytes": "valgrind qemu-io -t writeback -f vhdx -c 'write -P 0xcd 5M 512' NEW.vhdx "
                                       "(Syscall param pwrite64(buf) points to uninitialised byte(s), 96 bytes "
                                       "inside a block of size 8,192 alloc'd in vhdx_log_write_and_flush)",
    "qemu-q3-lastfileoffset-not-extended": "qemu-io -f vhdx -c quit IMG; stat -c %s IMG (7340032; vhdxtool replay "
                                           "leaves 8388608, the head's LastFileOffset)",
    "qemu-q4-replay-overwrites-file-identifier": "qemu-io -f vhdx -c quit IMG (opens, replays); head -c 8 IMG "
                                                 "(zeros); qemu-io -f vhdx -c quit IMG (Could not open: Invalid "
                                                 "argument); qemu-img info IMG (file format: raw)",
    "qemu-q4-zero-descriptor-without-bound": "timeout 20 qemu-io -f vhdx -c quit IMG (status 124: still writing "
                                             "zeros 4 KiB and one fdatasync at a time; the file grows about 2 MB/s "
                                             "towards 64 TiB; vhdxtool replay refuses VHDX_E_LOG_TARGET)",
    "qemu-q5-entry-with-127-descriptors": "qemu-io -f vhdx -c quit IMG (Could not open 'IMG': Invalid argument; "
                                          "vhdxtool replay IMG replays the entry)",
    "qemu-q6-search-skips-entry-inside-rejected-span": "qemu-io -f vhdx -c 'read -v 0 8' IMG (11 11 ...; vhdxtool "
                                                       "replays seq 3: 33 33 ...)",
    "qemu-q6-sequence-gap-after-first-entry": "qemu-io -f vhdx -c 'read -v 0 8' IMG (33 33 ...; vhdxtool replays "
                                              "seq 7: 77 77 ...)",
    "qemu-q6-replays-entry-before-tail": "qemu-io -f vhdx -c 'read -v 0 8' IMG (11 11 ...: entry seq 1, before the "
                                         "head's Tail, was replayed; vhdxtool leaves the old bytes fa 89 46 5d ...)",
    "qemu-q9-log-search-never-ends": "timeout 20 qemu-img info IMG (status 124: qemu-img never returns; "
                                     "the same for qemu-io, qemu-img check and a guest's open)",
    "qemu-q9-valid-full-ring-never-ends": "timeout 20 qemu-img info IMG (status 124: never returns; vhdxtool info "
                                         "IMG at once: the active sequence is the head, seq 354)",
    "qemu-q6-full-ring-run-circles-refused": "qemu-io -f vhdx -c quit IMG (Could not open 'IMG': Invalid argument; "
                                             "vhdxtool replay IMG replays the head, seq 354)",
    "qemu-q13-damaged-entry-stops-search": "qemu-io -f vhdx -c quit IMG (Could not open 'IMG': Invalid argument; "
                                           "vhdxtool replay IMG replays seq 1: 11 11 ... at virtual 0)",
    "qemu-q10-virtual-size-beyond-bat": "qemu-io -f vhdx -c 'read 128G 4k' IMG (Segmentation fault; under ASan: "
                                        "heap-buffer-overflow READ of size 8 in vhdx_block_translate, 0 bytes to "
                                        "the right of the 1048576-byte BAT); qemu-io -f vhdx -c 'write -P 0x41 "
                                        "300P 4k' IMG succeeds after writing past the BAT array",
    "qemu-q6-wrapped-sequence-replayed-partly": "qemu-io -f vhdx -c 'read -v 0 16k' IMG (only the 4th page is 29 29 "
                                                "...; vhdxtool replays all four entries: 26, 27, 28, 29)",
}


def q1_image_edit():
    """fuzz_qemu_image_open edits: LogGuid and checksum of the current header
    of FUZZ_IMG_CLEAN (copy 2, 128 KiB), computed from the base image the
    target exports for an input without edits."""
    h = bytearray(clean_base()[128 * 1024:132 * 1024])
    assert h[:4] == b"head"
    h[48:64] = GUID
    h[4:8] = bytes(4)
    struct.pack_into("<I", h, 4, crc32c(bytes(h)))
    edits = struct.pack("<IH", 128 * 1024 + 4, 4) + bytes(h[4:8])
    edits += struct.pack("<IH", 128 * 1024 + 48, 16) + bytes(h[48:64])
    return bytes([0, 2]) + edits


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "corpus", "regressions"))
    ap.add_argument("--check", metavar="BUILD")
    ap.add_argument("--build", metavar="BUILD",
                    help="also make the cases that need a whole ring (pcsweep reproducers: fuzz_qemu_log_replay, "
                         "pcsweep and the recorder of BUILD)")
    a = ap.parse_args(argv)
    bad = 0
    for cid, pre, model, placed, what, cls, qemu_io in sweep_cases() if a.build else []:
        d = os.path.join(a.out, cid)
        os.makedirs(d, exist_ok=True)
        name = "state.pctrace"
        make_sweep_case(a.build, d, pre, model, placed, name)
        rel = os.path.relpath(d, ROOT)
        old = {}
        if os.path.exists(os.path.join(d, "meta.json")):
            with open(os.path.join(d, "meta.json")) as f:
                old = json.load(f)
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        finding = "Q" + cid.split("-")[1][1:]
        # every field of a stored regression (docs/campaign.md); sightings 0: built by hand, never a campaign's
        meta = {"id": cid, "what": f"QEMU departs from MS-VHDX ({finding}): {cls}", "crash_type": SWEEP_CHECK,
                "frames": [], "where": "pcsweep", "seed": None, "command": f"build/default/harness/pcsweep repro "
                f"{rel}/{name}", "first_seen": old.get("first_seen", now), "last_seen": old.get("last_seen", now),
                "sightings": old.get("sightings", 0),
                "target": "pcsweep", "requires_subject": "qemu", "status": "open", "method": "sweep",
                "file": name, "class": cls, "finding": "docs/qemu-findings.md Q" + cid.split("-")[1][1:],
                "input": what, "qemu": "QEMU 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18), block/vhdx*.c",
                "found_by": SWEEP_FOUND_BY[cid] + "; rebuilt by hand from MS-VHDX",
                "reproduce": f"build/default/harness/pcsweep repro {rel}/{name} (judged by the qemu subject, as the "
                             f"reproducer says; exit 1 while QEMU keeps the behaviour); the image: "
                             f"build/default/harness/pcsweep repro {rel}/{name} --save-image IMG",
                "qemu_io": qemu_io,
                "made_by": "qemu/tests/make_reproducers.py --build BUILD (hand-built from MS-VHDX; see "
                           "docs/qemu-findings.md)"}
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
            f.write("\n")
        if a.check:
            r = subprocess.run([os.path.join(a.check, "harness", "pcsweep"), "repro", os.path.join(d, name)],
                               capture_output=True, text=True)
            ok = r.returncode == 1
            bad += not ok
            verdict = [x for x in r.stdout.splitlines() if x.startswith("verdict") or x.startswith("  ")]
            print(f"{'ok  ' if ok else 'FAIL'} {cid}: pcsweep repro {r.returncode}; {' '.join(verdict)[:300]}")
    for cid, target, data, what, cls in cases():
        d = os.path.join(a.out, cid)
        os.makedirs(d, exist_ok=True)
        name = "input"
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        meta_path = os.path.join(d, "meta.json")
        meta = {}
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                meta = json.load(f)
        finding = "Q" + cid.split("-")[1][1:]
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        rel = f"{os.path.relpath(d, ROOT)}/{name}"
        # every field of a stored regression (docs/campaign.md); sightings 0: built by hand, never a campaign's
        meta.update({"id": cid, "what": f"QEMU departs from MS-VHDX ({finding}): {cls}",
                     "crash_type": STRICT_CHECK, "frames": [], "where": target, "seed": None,
                     "command": f"POWERCUT_FUZZ_STRICT=1 build/default/fuzz/{target} {rel}",
                     "first_seen": meta.get("first_seen", now), "last_seen": meta.get("last_seen", now),
                     "sightings": meta.get("sightings", 0),
                     "target": target, "status": meta.get("status", "open"), "method": "fuzz",
                     "file": name, "class": cls, "finding": f"docs/qemu-findings.md {finding}", "input": what,
                     "qemu": "QEMU 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18), block/vhdx*.c",
                     "reproduce": f"build/default/fuzz/{target} {os.path.relpath(d, ROOT)}/{name} "
                                  f"(POWERCUT_FUZZ_VERBOSE=1: the classes; POWERCUT_FUZZ_STRICT=1 aborts on it); "
                                  f"the image: POWERCUT_FUZZ_EXPORT=IMG build/default/fuzz/{target} "
                                  f"{os.path.relpath(d, ROOT)}/{name}",
                     "qemu_io": QEMU_IO.get(cid, ""),
                     "made_by": "qemu/tests/make_reproducers.py (hand-built from MS-VHDX; see docs/qemu-findings.md)"})
        with open(meta_path, "w") as f:
            json.dump(meta, f, indent=1)
            f.write("\n")
        if a.check:
            binary = os.path.join(a.check, "fuzz", target)
            p = os.path.join(d, name)
            loose = subprocess.run([binary, "--quiet", p], capture_output=True, text=True,
                                   env=dict(os.environ, POWERCUT_FUZZ_VERBOSE="1"))
            strict = subprocess.run([binary, "--quiet", p], capture_output=True, text=True,
                                    env=dict(os.environ, POWERCUT_FUZZ_STRICT="1"))
            seen = [x for x in loose.stderr.splitlines() if "classes seen" in x]
            ok = loose.returncode == 0 and strict.returncode != 0 and seen and cls in seen[-1]
            bad += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {cid}: clean {loose.returncode}, strict {strict.returncode}; "
                  f"{seen[-1].split(': ', 1)[-1][:200] if seen else loose.stderr.strip()[-300:]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
