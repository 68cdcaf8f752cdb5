"""`powercut diff PATH... [--json OUT]`: differential replay, powercut's engine
against QEMU, on crash images.

PATHs are image files or directories (searched recursively, sorted): crash
images exported from traces (`pcsweep export`, `powercut sweep --trace`
failures), fuzz corpora (corpus/<target>/), anything.  A harness trace
(.pctrace) is expanded into its crash states first (`pcsweep export`,
--trace-states per trace).  An input of the fuzz targets that build an
image (fuzz_log_replay: base image + log window + headers; fuzz_image_open:
byte edits of a small image; recognised by a corpus/<target>/ directory in
its path or a meta.json naming the target) is turned into that image first
(the target's standalone binary with POWERCUT_FUZZ_EXPORT).  Any other file
that does not start with the "vhdxfile" signature is skipped and counted.

For each image, each implementation gets its own copy and opens it
read-write, which replays a pending log:
  ours  `vhdxtool replay COPY`            then `vhdxtool export COPY RAW`
  qemu  `qemu-io -f vhdx -c quit COPY`    then `qemu-img convert -f vhdx -O raw COPY RAW`
and three things are compared: the verdict (opened or refused), the file
bytes from 192 KiB on after the replay (headers are excluded: each side
writes its own GUIDs there), and the virtual-disk contents.

Every disagreement is classified by which side departs from the MS-VHDX
text (the rule is quoted), deduplicated by class, and for each class one
example is minimized (4 KiB pages zeroed by delta debugging while the class
stays the same) and saved as a reproducer next to the report.  The report
(--json, default reports/runs/diff-<time>/diff.json) has at least `images`,
`disagreements` and `classes` (each with name, rule, departs, count,
example, reproducer).  Exit status: 0 the implementations agree on every
image, 1 disagreements, 2 usage or infrastructure error.
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import tempfile
import threading
import time

from . import ask, registry
from .common import (EXIT_FAIL, EXIT_OK, ROOT, InfraError, LostOutput, OnceRunner, UsageError, check_output_file,
                     is_pctrace, is_vhdx, run, save_json, say, sparse_copy, tool, work_tmpdir)

REPLAY_FROM = 192 * 1024
PAGE = 4096

# MS-VHDX text quoted by the classes (section, sentence), from the
# specification as published (awakecoding/openspecs MS-VHDX/MS-VHDX.md).
RULES = {
    "no-sequence": ("2.3.3 Log Replay",
                    "If the candidate active sequence is empty, then there are no valid log sequences, the file "
                    "is corrupt, and the implementation MUST fail to open it."),
    "truncated": ("2.3.3 Log Replay",
                  "If the file's size is less than the FlushedFileOffset field of the head entry of the candidate "
                  "active sequence, then the file has been truncated, and the implementation MUST fail to open it."),
    "last-file-offset": ("2.3.3 Log Replay",
                         "After all the entries have been replayed, the implementation MUST expand the file size to "
                         "be at least as large as the LastFileOffset field of the head entry of the active "
                         "sequence."),
    "active-sequence": ("2.3.3 Log Replay",
                        "When an implementation needs to perform a log replay, it must find the newest valid and "
                        "complete log sequence, called the active sequence, and then replay all entries from it and "
                        "no others."),
    "sequence-valid": ("2.3.2 Log Sequence",
                       "To check that the entries contained within a sequence were actually written as a sequence, "
                       "each non-tail entry in a valid sequence MUST have a sequence number one greater than the "
                       "previous entry, and each entry log guid matches the LogGuid field in the file header."),
    "region-copies": ("2.2.3 Region Table",
                      "There are two copies of the region table, stored at file offset 192 KB and file offset "
                      "256 KB. Updates to the region table structures must be made through the log."),
    "header-current": ("2.2.2 Headers",
                       "A header is current if it is the only valid header or if it is valid and its SequenceNumber "
                       "field is greater than the other header's SequenceNumber field. The implementation MUST only "
                       "use data from the current header. If there is no current header, then the VHDX file is "
                       "corrupt."),
    "first-64k": ("2.2.1 File Type Identifier",
                  "The implementation MUST NOT overwrite any data in the first 64 KB of the file after the file has "
                  "been created."),
    "headers-not-logged": ("2.2.2 Headers",
                           "Since the header is used to locate the log, updates to the headers cannot be made "
                           "through the log."),
    "log-no-overlap": ("2.2.2 Headers", "The log MUST NOT overlap any other structures."),
    "entry-reserved": ("2.3.1.1 Entry Header", "Reserved (4 bytes): This field MUST be set to 0."),
    "entry-offsets": ("2.3.1.1 Entry Header",
                      "FlushedFileOffset ... The value MUST be a multiple of 1 MB. LastFileOffset ... The value "
                      "MUST be a multiple of 1 MB."),
    "bat-placement": ("2.5.1 BAT Entry",
                      "The payload or sector bitmap block must reside after the header section and must not overlap "
                      "any other structure. The FileOffsetMB field value must be unique across all the BAT entries "
                      "when it is other than zero."),
    "bat-reserved": ("2.5.1 BAT Entry", "Reserved (17 bits): This field MUST be set to 0."),
    "regions-no-overlap": ("2.2.3.2 Region Table Entry",
                           "All objects within the table must be non-overlapping, not only with respect to each "
                           "other but with respect to the log (defined in the headers) and the payload and sector "
                           "bitmap blocks (defined in the BAT)."),
    "log-version": ("2.2.2 Headers",
                    "LogVersion (2 bytes): Specifies the version of the log format used within the VHDX file. This "
                    "field MUST be set to zero. If it is not, the implementation MUST NOT continue to process the "
                    "file unless the LogGuid field is zero, indicating that there is no log to replay."),
    "required-region": ("2.2 Header Section",
                        "Implementations MUST fail to open a VHDX file that contains a region that is marked as "
                        "required but is not understood."),
    "zero-state": ("2.5.1.1 Payload BAT Entry States",
                   "PAYLOAD_BLOCK_ZERO ... For reads from the blocks in this state, implementations MUST return "
                   "zeros."),
    "undefined-reads": ("2.5.1.1 Payload BAT Entry States",
                        "PAYLOAD_BLOCK_NOT_PRESENT / UNDEFINED / UNMAPPED: for reads from blocks in this state, "
                        "implement one of the following behaviors: Return arbitrary data ... Return zero data ... "
                        "Return the contents of the block immediately before it was moved to this state."),
    "fully-present": ("2.5.1.1 Payload BAT Entry States",
                      "PAYLOAD_BLOCK_FULLY_PRESENT ... For reads from the blocks in this state, parsers should "
                      "return the block contents defined in the file at the location specified by the FileOffsetMB "
                      "field."),
    "tail-contained": ("2.3.3 Log Replay",
                       "If the current sequence's head entry's tail is contained within the current sequence, then "
                       "the current sequence is valid."),
    "must-replay": ("2.3.3 Log Replay",
                    "If the log is non-empty when the VHDX file is opened, the implementation MUST replay the log "
                    "before performing any I/O to the file other than reading the VHDX header and the log."),
    "search-terminates": ("2.3.3 Log Replay",
                          "If the current tail is less than the old tail, then the log has been completely scanned. "
                          "Stop."),
    "none": ("-", "(no MS-VHDX rule decides this case; recorded for review)"),
}

# Our refusal codes -> (class suffix, rule key, which side departs).
OURS_REFUSES = {
    "VHDX_E_LOG_NO_SEQUENCE": ("logguid-without-valid-sequence", "no-sequence", "qemu"),
    "VHDX_E_LOG_TRUNCATED": ("file-shorter-than-flushed-file-offset", "truncated", "qemu"),
    "VHDX_E_HEADER_AMBIGUOUS": ("no-current-header-equal-sequence-numbers", "header-current", "qemu"),
    "VHDX_E_NO_HEADER": ("no-valid-header", "header-current", "qemu"),
    "VHDX_E_LOG_VERSION": ("log-version-nonzero-with-log", "log-version", "qemu"),
    "VHDX_E_REQUIRED_REGION": ("unknown-required-region", "required-region", "qemu"),
    "VHDX_E_OVERLAP": ("overlapping-structures", "regions-no-overlap", "qemu (opens a file the text declares invalid)"),
    "VHDX_E_BAT": ("invalid-bat-entry", "bat-placement", "qemu (opens a file the text declares invalid)"),
    "VHDX_E_LOG_AMBIGUOUS": ("two-log-heads-same-sequence", "active-sequence",
                             "neither (the text does not order two heads with equal sequence numbers)"),
    "VHDX_E_LOG_TARGET": ("log-descriptor-targets-protected-range", "first-64k",
                          "qemu (replays a descriptor into a range the log must not write)"),
}


# ---- image facts (vhdxtool layout), used to classify ------------------------------------
def region_of(lay, off):
    """Which structure a file offset lies in (for naming a difference),
    from the image's layout (`vhdxtool layout`)."""
    if off < 256 * 1024:
        return "region-table-1"
    if off < 320 * 1024:
        return "region-table-2"
    if off < 1024 * 1024:
        return "header-section"
    lg = ask.log_range(lay)
    if lg and lg[0] <= off < lg[0] + lg[1]:
        return "log"
    for name in ("bat", "metadata"):
        r = ask.region_range(lay, name)
        if r and r[0] <= off < r[0] + r[1]:
            return name
    return "payload"


# ---- running the two implementations -----------------------------------------------------
MESSAGE_MAX = 4000  # a runaway output is cut here, and says so


def clean_message(text, copy, raw=None):
    """A side's message as the report keeps it: every line (whitespace
    runs folded), the scratch copy's path as IMG and its raw export's as RAW
    (they are deleted after the comparison, and they are not the user's
    file), cut only past MESSAGE_MAX characters, with a mark."""
    msg = " ".join(text.split())
    for path, name in ((raw, "RAW"), (copy, "IMG")):
        if path:
            msg = msg.replace(path, name)
    if len(msg) > MESSAGE_MAX:
        msg = msg[:MESSAGE_MAX] + f" ... [{len(msg) - MESSAGE_MAX} more characters]"
    return msg
class Runner(OnceRunner):
    def __init__(self, t, verbose=False, timeout=60.0):
        super().__init__(verbose, timeout)  # timeout: past it, the side "hangs"
        self.t = t

    def ours(self, img, work):
        a = os.path.join(work, "ours.vhdx")
        sparse_copy(img, a)
        cp = self.run([self.t("vhdxtool"), "replay", a])
        out = (cp.stdout + cp.stderr).decode(errors="replace")
        r = {"path": a}
        if cp.returncode == -9:
            r["verdict"] = "hang"
            r["message"] = out.strip()
            return r
        if cp.returncode == 0:
            r["verdict"] = "opened"
            r["replayed"] = "replayed" in cp.stdout.decode(errors="replace")
        else:
            m = re.search(r"\[(VHDX_E_\w+|E[A-Z0-9]+)\]", out)
            r["verdict"] = "refused" if cp.returncode == 1 else "error"
            r["code"] = m.group(1) if m else "?"
            r["message"] = clean_message(out, a)
            return r
        raw = os.path.join(work, "ours.raw")
        cp = self.run([self.t("vhdxtool"), "export", a, raw])
        r["raw"] = raw if cp.returncode == 0 else None
        if cp.returncode != 0:
            r["export_error"] = clean_message((cp.stdout + cp.stderr).decode(errors="replace"), a, raw)
        return r

    def qemu(self, img, work):
        b = os.path.join(work, "qemu.vhdx")
        sparse_copy(img, b)
        cp = self.run(["qemu-io", "-f", "vhdx", "-c", "quit", b])
        out = (cp.stdout + cp.stderr).decode(errors="replace")
        r = {"path": b}
        if cp.returncode == -9:
            r["verdict"] = "hang"
            r["message"] = f"qemu-io did not finish opening the image within {self.timeout:g} s"
            return r
        if cp.returncode != 0:
            r["verdict"] = "refused"
            r["message"] = clean_message(out, b) or f"status {cp.returncode}"
            return r
        r["verdict"] = "opened"
        raw = os.path.join(work, "qemu.raw")
        cp = self.run(["qemu-img", "convert", "-f", "vhdx", "-O", "raw", b, raw])
        r["raw"] = raw if cp.returncode == 0 else None
        if cp.returncode != 0:
            r["export_error"] = clean_message((cp.stdout + cp.stderr).decode(errors="replace"), b, raw)
        return r


def data_ranges(path):
    """[(start, end)] of the parts of a file that are not holes."""
    out = []
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        off = 0
        while off < size:
            try:
                a = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break  # ENXIO: only a hole remains
            b = os.lseek(fd, a, os.SEEK_HOLE)
            out.append((a, b))
            off = b
    except OSError:
        return [(0, size)]  # no SEEK_DATA here: read everything
    finally:
        os.close(fd)
    return out


def first_diff(pa, pb, start=0):
    """First differing offset of two files from start (None if equal), and
    the two sizes.  Only ranges where either file holds data are read:
    holes read as zeros in both."""
    sa, sb = os.path.getsize(pa), os.path.getsize(pb)
    ranges = sorted(data_ranges(pa) + data_ranges(pb))
    merged = []
    for a, b in ranges:
        a = max(a, start)
        if a >= b:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    chunk = 1 << 20
    with open(pa, "rb") as fa, open(pb, "rb") as fb:
        for a, b in merged:
            off = a
            while off < b:
                n = min(chunk, b - off)
                fa.seek(off)
                fb.seek(off)
                x, y = fa.read(n), fb.read(n)
                if len(x) < n:
                    x += bytes(n - len(x)) if off + n <= sa or off >= sa else b""
                if x != y:
                    m = min(len(x), len(y))
                    for k in range(m):
                        if x[k] != y[k]:
                            return off + k, sa, sb
                    return off + m, sa, sb
                off += n
    if sa != sb:
        return min(sa, sb), sa, sb
    return None, sa, sb


def log_facts(runner, img):
    """What our engine sees in the log of the original image (dump-log):
    the active sequence, the greatest valid sequence number, whether a
    valid entry crosses the end of the ring."""
    cp = runner.run([runner.t("vhdxtool"), "dump-log", img, "--json"])
    try:
        d = json.loads(cp.stdout.decode(errors="replace"))
    except ValueError:
        return {}
    valid = [e for e in d.get("entries", []) if e.get("valid")]
    act = d.get("active") or {}
    length = d.get("log_length") or 0
    return {"pending": d.get("pending"), "active_found": bool(act.get("found")),
            "active_head_sequence": act.get("head_sequence"), "active_tail": act.get("tail"),
            "valid_entries": len(valid), "max_valid_sequence": max((e["sequence"] for e in valid), default=None),
            "entry_crosses_ring_end": any(e["position"] + e["length"] > length for e in valid) if length else None}


def compare(runner, img, work):
    """Runs both sides on img; returns the comparison record."""
    o = runner.ours(img, work)
    q = runner.qemu(img, work)
    rec = {"ours": {k: v for k, v in o.items() if k not in ("path", "raw")},
           "qemu": {k: v for k, v in q.items() if k not in ("path", "raw")}}
    if o["verdict"] == "error":
        rec["status"] = "error"
        return rec
    if o["verdict"] != q["verdict"]:
        rec["status"] = "disagree"
        rec["aspect"] = "verdict"
    elif o["verdict"] in ("refused", "hang"):
        rec["status"] = "agree"
    else:
        d, sa, sb = first_diff(o["path"], q["path"], REPLAY_FROM)
        if d is not None:
            rec["status"] = "disagree"
            rec["aspect"] = "replayed-bytes"
            rec["first_diff"] = d
            rec["sizes"] = [sa, sb]
            rec["region"] = (region_of(ask.layout(runner.t("vhdxtool"), o["path"], runner=runner), d)
                             if d < min(sa, sb) else "file-size")
        elif not o.get("raw") or not q.get("raw"):
            rec["status"] = "disagree"
            rec["aspect"] = "virtual-read"
            rec["region"] = "export-failed-" + ("ours" if not o.get("raw") else "qemu")
        else:
            d, sa, sb = first_diff(o["raw"], q["raw"])
            if d is not None:
                rec["status"] = "disagree"
                rec["aspect"] = "virtual-contents"
                rec["first_diff"] = d
                rec["sizes"] = [sa, sb]
            else:
                rec["status"] = "agree"
    if rec["status"] == "disagree":
        rec["log"] = log_facts(runner, img)
        classify(runner, rec, img, o, q)
    return rec


def classify(runner, rec, img, o, q):
    """Sets rec['class'], ['rule_key'], ['departs'] from what differs (the
    structures involved from `vhdxtool layout`)."""
    ov, qv = o["verdict"], q["verdict"]
    name, rule, departs = None, "none", "undetermined"
    if rec["aspect"] == "verdict" and "hang" in (ov, qv):
        side = "qemu" if qv == "hang" else "ours"
        name, rule, departs = (f"{side}-does-not-finish-opening", "search-terminates",
                               f"{side} (the search the text describes stops after one pass over the ring)")
    elif rec["aspect"] == "verdict" and ov == "refused":
        code = o.get("code", "?")
        if code in OURS_REFUSES:
            suffix, rule, departs = OURS_REFUSES[code]
            name = "qemu-opens-" + suffix
        elif code == "VHDX_E_LOG_FIELD" or code == "VHDX_E_LOG_DESC_FIELD":
            name, rule, departs = ("ours-refuses-log-entry-with-field-out-of-range", "entry-reserved",
                                   "ours is stricter (the text says the writer MUST set it; readers are not told "
                                   "to reject)")
        else:
            name = "ours-refuses-" + code.lower().replace("vhdx_e_", "").replace("_", "-") + "-qemu-opens"
    elif rec["aspect"] == "verdict":
        if ask.region_tables_valid(ask.layout(runner.t("vhdxtool"), img, runner=runner)) == [False, True]:
            name, rule, departs = ("qemu-refuses-damaged-region-table-1", "region-copies",
                                   "neither by the letter (the text keeps two copies but does not say a reader "
                                   "falls back to the second); QEMU reads only copy 1")
        elif o.get("replayed"):
            name, rule, departs = ("qemu-cannot-replay-a-valid-log", "must-replay",
                                   "qemu (fails on a log whose active sequence powercut finds and replays)")
        else:
            msg = q.get("message", "").replace("IMG", "").strip()
            msg = re.sub(r"\d+", "N", msg)
            name = "qemu-refuses: " + msg[-80:]
    elif rec["aspect"] == "replayed-bytes":
        sa, sb = rec["sizes"]
        if rec["region"] == "file-size":
            name = "replayed-file-size-differs"
            rule = "last-file-offset"
            departs = "qemu (smaller file than LastFileOffset)" if sb < sa else "ours (smaller file)"
            if sb < sa:
                name = "qemu-does-not-extend-file-to-LastFileOffset"
        else:
            lf = rec.get("log") or {}
            head, top = lf.get("active_head_sequence"), lf.get("max_valid_sequence")
            if head is not None and top is not None and top > head:
                name, rule, departs = ("qemu-replays-entry-whose-tail-is-outside-its-sequence", "tail-contained",
                                       "qemu (replays a valid entry with a greater sequence number whose Tail "
                                       "lies outside its run)")
            else:
                name = f"replay-writes-differ-in-{rec['region']}"
                rule = "active-sequence"
                departs = "undetermined (compare `vhdxtool dump-log` with the bytes QEMU wrote)"
    elif rec["aspect"] == "virtual-contents":
        state = ask.bat_state_at(ask.layout(runner.t("vhdxtool"), o["path"], bat_at=rec["first_diff"], runner=runner))
        rec["bat_state"] = state
        if state in ("NOT_PRESENT", "UNDEFINED", "UNMAPPED"):
            name, rule, departs = (f"virtual-read-differs-in-{state.lower().replace('_', '-')}-block",
                                   "undefined-reads", "neither (the text allows either reading)")
        elif state == "ZERO":
            name, rule, departs = ("virtual-read-differs-in-zero-block", "zero-state",
                                   "the side that does not return zeros")
        else:
            name, rule, departs = (f"virtual-read-differs-in-{(state or 'unknown').lower()}-block",
                                   "fully-present", "undetermined")
    else:
        name = f"{rec['aspect']}-{rec.get('region', '')}"
    rec["class"] = name
    rec["rule_key"] = rule
    rec["departs"] = departs


# ---- minimization --------------------------------------------------------------------------------
def minimize(runner, img, cls, out_path, budget, tmp):
    """Zeroes 4 KiB pages of img (delta debugging, large chunks first) while
    the disagreement keeps its class; writes the result to out_path.
    Returns (tests run, nonzero pages before, after)."""
    with open(img, "rb") as f:
        data = bytearray(f.read())
    pages = [i for i in range(0, len(data), PAGE) if any(data[i:i + PAGE])]
    before = len(pages)
    t0 = time.time()
    tests = 0

    def still(candidate):
        nonlocal tests
        tests += 1
        p = os.path.join(tmp, "cand.vhdx")
        with open(p, "wb") as f:
            f.write(candidate)
        w = tempfile.mkdtemp(dir=tmp)
        try:
            r = compare(runner, p, w)
        finally:
            shutil.rmtree(w, ignore_errors=True)
        return r["status"] == "disagree" and r.get("class") == cls

    keep = list(pages)
    n = 2
    while len(keep) >= 1 and time.time() - t0 < budget:
        chunk = max(1, len(keep) // n)
        removed_any = False
        for start in range(0, len(keep), chunk):
            if time.time() - t0 >= budget:
                break
            drop = set(keep[start:start + chunk])
            cand = bytearray(data)
            for pg in drop:
                cand[pg:pg + PAGE] = bytes(min(PAGE, len(data) - pg))
            if still(bytes(cand)):
                data = cand
                keep = [pg for pg in keep if pg not in drop]
                removed_any = True
                break
        if not removed_any:
            if chunk == 1:
                break
            n = min(len(keep), n * 2)
        else:
            n = max(2, n - 1)
    with open(out_path, "wb") as f:
        f.write(data)
    return tests, before, len(keep)


# ---- the command ----------------------------------------------------------------------------------
def add_parser(sub):
    p = sub.add_parser("diff", help="differential replay: powercut's engine vs QEMU on crash images",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files, directories, or .pctrace traces")
    p.add_argument("--json", dest="json_out", help="report path (default reports/runs/diff-<time>/diff.json)")
    p.add_argument("--jobs", type=int, default=2, help="images compared in parallel (default 2)")
    p.add_argument("--max-images", type=int, default=0, help="compare at most N images (0 = all)")
    p.add_argument("--max-seconds", type=float, default=0,
                   help="start no new comparison after this long (0 = no limit; the report says complete: false)")
    p.add_argument("--trace-states", type=int, default=500,
                   help="crash states taken from each .pctrace given (default 500)")
    p.add_argument("--minimize-seconds", type=float, default=30.0,
                   help="time budget to minimize one example per class (default 30; 0 = do not minimize)")
    p.add_argument("--minimize-total", type=float, default=0,
                   help="time budget of all minimizations together (0 = no limit: --minimize-seconds per class); "
                        "the classes share it, each at most --minimize-seconds")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds one open may take before that side counts as hanging (default 60; "
                        "minimization uses at most 10)")
    p.add_argument("--verbose", action="store_true", help="print every command")
    p.add_argument("--no-build", action="store_true",
                   help="use the tools as built (a caller that just built them, e.g. the campaign, saves the time)")
    p.add_argument("--preset", default="default", help="build tree of vhdxtool/pcsweep (default: %(default)s)")
    p.set_defaults(func=cmd_diff)


BATCH = 32  # trace states exported at a time (bounded scratch space)


def trace_plan(t, path, limit, tmp):
    """(states in the sample, shard N) for a trace: every exportable state,
    or an even sample of about `limit` (every N-th: --shard 0/N).  A file
    that looks like a trace (its signature) but does not load is a
    UsageError: an input that cannot be read is not a skipped file."""
    total, why = ask.export_count(t("pcsweep"), path, registry.exportable_models(t("pcsweep")), quiet=False)
    if total is None:
        raise UsageError(f"{path}: a trace that cannot be read: {why[-1000:]}")
    n = max(1, -(-total // limit)) if limit else 1
    take = -(-total // n)
    say(f"diff: {path}: {take} of its {total} crash states" + (f" (every {n}th)" if n > 1 else ""))
    return take, n


def export_batch(t, path, shard_n, first, count, out):
    """Exports states first..first+count-1 of the sample; returns their images."""
    rows = ask.export_states(t("pcsweep"), path, out, registry.exportable_models(t("pcsweep")),
                             range(first, first + count), shard=f"0/{shard_n}", quiet=first != 0,
                             failed=f"{path}: cannot export its crash states: ", keep=300)
    return [r["image"] for r in rows]


# Fuzz targets whose inputs describe a whole image (fuzz_common.h,
# fuzz_export_image): their corpora are diffed as the images they build.
IMAGE_TARGETS = ("fuzz_log_replay", "fuzz_image_open")


def fuzz_image_target(path):
    """The image-building fuzz target an input belongs to, or None."""
    parts = os.path.abspath(path).split(os.sep)
    for t in IMAGE_TARGETS:
        if t in parts[:-1]:
            return t
    meta = os.path.join(os.path.dirname(os.path.abspath(path)), "meta.json")
    if os.path.exists(meta):
        try:
            with open(meta) as f:
                m = json.load(f)
        except (OSError, ValueError) as e:
            raise UsageError(f"{meta}: a damaged description of the input next to it: {e}") from e
        if not isinstance(m, dict):
            raise UsageError(f"{meta}: a damaged description of the input next to it: not a JSON object")
        t = m.get("target")
        return t if t in IMAGE_TARGETS else None
    return None


def export_fuzz_image(t, target, path, out, quiet=True):
    """Writes the image a fuzz input builds to out; True when it did."""
    cp = run([t(target), "--quiet", path], check=False, capture=True, quiet=quiet,
             env=dict(os.environ, POWERCUT_FUZZ_EXPORT=out), timeout=60)
    return cp.returncode == 0 and is_vhdx(out)


def collect(paths):
    """Image files, trace files and image-building fuzz inputs (target,
    path) under paths (sorted); the rest skipped."""
    images, traces, fuzz_inputs, skipped = [], [], [], []
    for p in paths:
        if not os.path.exists(p):
            raise UsageError(f"{p}: no such file or directory")
        files = []
        if os.path.isdir(p):
            for d, dirs, names in os.walk(p):
                dirs[:] = sorted(x for x in dirs if not x.startswith("."))
                files += [os.path.join(d, n) for n in sorted(names)]
        else:
            files.append(p)
        for f in files:
            if not os.path.isfile(f) or (os.path.basename(f) == "meta.json" and f not in paths):
                continue  # meta.json: a stored artifact's description, not an input
            if is_vhdx(f):
                images.append(f)
            elif is_pctrace(f):
                traces.append(f)
            elif (target := fuzz_image_target(f)):
                fuzz_inputs.append((target, f))
            else:
                skipped.append(f)
    return images, traces, fuzz_inputs, skipped


class Collector:
    """Results, and per class the smallest example so far (copied out of
    scratch space so batches can be deleted)."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.results = []
        self.classes = {}
        self.lock = threading.Lock()
        os.makedirs(os.path.join(tmp, "examples"), exist_ok=True)

    def add(self, r, source):
        with self.lock:
            self.results.append(r)
            if r["status"] != "disagree":
                return
            c = self.classes.setdefault(r["class"], {"count": 0, "departs": r["departs"], "rule_key": r["rule_key"],
                                                     "example": None, "example_size": None, "source": None})
            c["count"] += 1
            size = os.path.getsize(r["image"])
            if c["example"] is None or (size, source) < (c["example_size"], c["source"]):
                dst = os.path.join(self.tmp, "examples", f"{len(self.results)}.vhdx")
                sparse_copy(r["image"], dst)
                if c["example"]:
                    os.unlink(c["example"])
                c.update(example=dst, example_size=size, source=source)


def cmd_diff(args):
    from .record import ensure_tools
    if not shutil.which("qemu-img") or not shutil.which("qemu-io"):
        raise InfraError("qemu-img/qemu-io are not installed (powercut setup installs qemu-utils)")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if args.max_images < 0 or args.max_seconds < 0 or args.minimize_seconds < 0 or args.minimize_total < 0:
        raise UsageError("--max-images, --max-seconds and the minimize budgets must not be negative")
    images, traces, fuzz_inputs, skipped = collect(args.paths)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_json = args.json_out or os.path.join(ROOT, "reports", "runs", f"diff-{stamp}", "diff.json")
    check_output_file(out_json, "--json")
    if args.no_build:
        t = lambda name: tool(args.preset, name)  # noqa: E731
        missing = [n for n in ["vhdxtool", "pcsweep"] + sorted({tg for tg, _ in fuzz_inputs})
                   if not os.path.exists(t(n))]
        if missing:
            raise UsageError(f"--no-build: {', '.join(missing)} not built in preset {args.preset}")
    else:
        t = ensure_tools(args.preset)
        if fuzz_inputs:
            from . import build
            build.ensure_built(args.preset, sorted({tg for tg, _ in fuzz_inputs}), quiet=True)
    report_dir = os.path.dirname(os.path.abspath(out_json))
    os.makedirs(report_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="powercut-diff-", dir=work_tmpdir())
    runner = Runner(t, verbose=args.verbose, timeout=args.timeout)
    min_runner = Runner(t, verbose=args.verbose, timeout=min(args.timeout, 10.0))
    col = Collector(tmp)
    budget = [args.max_images or float("inf")]
    try:
        plans = [(tr, trace_plan(t, tr, args.trace_states, tmp)) for tr in traces]
        planned = len(images) + len(fuzz_inputs) + sum(take for _, (take, _n) in plans)
        say(f"diff: {planned} images planned: {len(images)} image files, {len(fuzz_inputs)} fuzz inputs and "
            f"{sum(take for _, (take, _n) in plans)} crash states of {len(plans)} traces; {len(skipped)} files skipped "
            f"(not VHDX images, fuzz inputs or traces)")
        t0 = time.time()
        seq = [0]
        timed_out = [False]
        unbuilt = []

        def one(item):
            img, source = item
            if args.max_seconds and time.time() - t0 > args.max_seconds:
                timed_out[0] = True
                return
            with col.lock:
                k = seq[0]
                seq[0] += 1
            w = os.path.join(tmp, f"w{k}")
            os.makedirs(w)
            try:
                r = compare(runner, img, w)
            finally:
                shutil.rmtree(w, ignore_errors=True)
            r["image"] = os.path.abspath(img)
            r["source"] = source
            col.add(r, source)

        def run_items(items):
            items = items[:int(min(len(items), budget[0]))]
            budget[0] -= len(items)
            with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
                list(ex.map(one, items))

        run_items([(p, os.path.abspath(p)) for p in images])
        for first in range(0, len(fuzz_inputs), BATCH):
            if budget[0] <= 0 or timed_out[0]:
                break
            bdir = os.path.join(tmp, f"fuzz-{first}")
            os.makedirs(bdir)
            items = []
            for i, (target, path) in enumerate(fuzz_inputs[first:first + BATCH]):
                img = os.path.join(bdir, f"{i}.vhdx")
                if export_fuzz_image(t, target, path, img, quiet=first + i != 0):
                    items.append((img, f"{os.path.abspath(path)} ({target} input)"))
                else:
                    skipped.append(path)
                    unbuilt.append(path)  # the target builds no image from it: not planned after all
            run_items(items)
            shutil.rmtree(bdir, ignore_errors=True)
        for tr, (take, n) in plans:
            for first in range(0, take, BATCH):
                if budget[0] <= 0 or timed_out[0]:
                    break
                bdir = os.path.join(tmp, f"batch-{first}")
                got = export_batch(t, tr, n, first, min(BATCH, take - first), bdir)
                run_items([(img, f"{os.path.abspath(tr)} state {first + i} (--shard 0/{n})")
                           for i, img in enumerate(got)])
                shutil.rmtree(bdir, ignore_errors=True)
        wall = time.time() - t0
        results = col.results
        dis = [r for r in results if r["status"] == "disagree"]
        errors = [r for r in results if r["status"] == "error"]
        out_classes = []
        repro_dir = os.path.join(report_dir, "reproducers")
        m_start = time.time()
        ordered = sorted(col.classes.items(), key=lambda kv: (-kv[1]["count"], kv[0]))
        for ci, (name, c) in enumerate(ordered):
            section, text = RULES[c["rule_key"]]
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]
            os.makedirs(repro_dir, exist_ok=True)
            orig = os.path.join(repro_dir, safe + ".orig.vhdx")
            sparse_copy(c["example"], orig)
            entry = {"name": name, "count": c["count"], "departs": c["departs"], "section": section,
                     "rule": f"MS-VHDX {section}: \"{text}\"" if section != "-" else text,
                     "example": orig, "example_source": c["source"]}
            budget = args.minimize_seconds
            if args.minimize_total:  # the classes left share what is left of the total
                left = args.minimize_total - (time.time() - m_start)
                budget = min(budget, left / (len(ordered) - ci))
            if budget >= 0.5:
                mdir = tempfile.mkdtemp(dir=tmp)
                mpath = os.path.join(repro_dir, safe + ".min.vhdx")
                tests, before, after = minimize(min_runner, orig, name, mpath, budget, mdir)
                entry["reproducer"] = mpath
                entry["minimized"] = {"tests": tests, "nonzero_pages_before": before, "nonzero_pages_after": after}
            else:
                entry["reproducer"] = orig
            entry["reproduce"] = f"scripts/powercut diff {entry['reproducer']}"
            out_classes.append(entry)
        planned -= len(unbuilt)
        complete = len(results) >= planned
        stopped_by = None if complete else (f"--max-seconds {args.max_seconds:g}" if timed_out[0] else
                                            f"--max-images {args.max_images}" if args.max_images else "?")
        report = {"images": len(results), "planned": planned, "skipped": len(skipped), "skipped_examples": skipped[:20],
                  "agree": sum(1 for r in results if r["status"] == "agree"),
                  "disagreements": dis, "errors": errors, "classes": out_classes,
                  "complete": complete, "stopped_by": stopped_by,
                  "coverage": {"images": len(results), "planned": planned,
                               "text": f"{len(results)} of {planned} images"},
                  "wall_s": round(wall, 3), "images_per_sec": round(len(results) / wall, 2) if wall > 0 else 0,
                  "paths": [os.path.abspath(p) for p in args.paths],
                  # what was compared, by the name evaluate and triage match disagreements on
                  "compared_sources": sorted({os.path.basename(str(r.get("source") or r.get("image") or ""))
                                              for r in results}),
                  "compared": "verdict (opened/refused), file bytes from 192 KiB on after replay, virtual contents",
                  "qemu": _qemu_version()}
        for r in dis + errors:
            if r["image"].startswith(tmp + os.sep):
                r["image"] = None  # scratch copy of a trace state: see "source"
        lost = None
        try:
            save_json(out_json, report)
        except LostOutput as e:
            lost = str(e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"diff: {len(results)} of {planned} images compared in {wall:.1f} s: {report['agree']} agree, {len(dis)} "
        f"disagree, {len(errors)} errors; {len(skipped)} files skipped")
    if not complete:
        say(f"diff: INCOMPLETE: {planned - len(results)} of {planned} images were not compared (stopped by "
            f"{stopped_by}); the agreement covers only the {len(results)} compared")
    for c in out_classes:
        say(f"  {c['count']:5d}  {c['name']}\n         departs: {c['departs']}\n         rule: {c['rule']}\n"
            f"         reproducer: {c['reproducer']}")
    say(f"diff: report {out_json}")
    if lost:
        say(f"diff: {lost}")
        return 2
    if errors and not dis:
        return 2
    return EXIT_FAIL if dis else EXIT_OK


def _qemu_version():
    cp = run(["qemu-img", "--version"], check=False, capture=True)
    out = cp.stdout.decode(errors="replace")
    return out.splitlines()[0] if out else "?"
