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

Usage: make_reproducers.py [--out corpus/regressions] [--check BUILD]
  --check BUILD  also run each input through BUILD/fuzz/<target> (clean)
                 and with POWERCUT_FUZZ_STRICT=1 (must fail)
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
    # Q9: an entry whose EntryLength is the whole ring and whose checksum is
    # wrong: QEMU's search steps over it back to where it started, forever.
    out.append(("qemu-q9-log-search-never-ends", "fuzz_qemu_log_replay", prefix() + whole_ring_entry(),
                "one entry header at ring offset 0: EntryLength 1 MiB (the ring), sequence 1, no descriptors, "
                "a wrong checksum", "qemu-log-search-does-not-terminate"))
    # Q10: VirtualDiskSize 4 PiB + 4 MiB on the clean 4 MiB image: QEMU counts
    # BAT entries in 32 bits (4 + 0), so the open passes its BAT-size check
    # and any I/O past 128 GiB indexes past its 1 MiB BAT array.
    out.append(("qemu-q10-virtual-size-beyond-bat", "fuzz_qemu_image_open", q10_image_edit(),
                "FUZZ_IMG_CLEAN with its Virtual Disk Size item set to 2^52 + 4 MiB bytes (4 PiB + 4 MiB)",
                "qemu-opens-virtual-disk-size-out-of-range"))
    return out


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

# What each case shows with the real tools, for meta.json (the full
# reports: docs/qemu-findings.md).
QEMU_IO = {
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
    a = ap.parse_args(argv)
    bad = 0
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
