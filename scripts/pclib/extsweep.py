"""External-checker sweep: `powercut sweep --trace T --checker vhdxtool|qemu|both`.

Every crash state of the trace, under every exportable model (all but
`recovery`, which needs the checker's own replay), comes from the harness's
generator (`pcsweep export --only ...`, in batches of --batch states so the
temporary directory stays small), is materialized as an image file and handed
to the checkers, each on its own copy:

  vhdxtool  `vhdxtool replay` (must open: opened / replayed / refused),
            `vhdxtool check --json` (no errors), `vhdxtool export` + read-back
  qemu      `qemu-img check -r all -f vhdx` (opens? repairs?),
            `qemu-img convert -f vhdx -O raw` + read-back, then an allocation
            probe: `qemu-io -c 'write -P 0xa5 PROBE 64k'` into a block the
            workload never touched, `qemu-img check` and a second convert:
            the probe must read back and nothing else may change

Read-back ("where known"): when the recorded command is qemu-io, its -c
commands say what the virtual disk should hold.  Judging (docs/external.md):
  * every sector reads a value it legitimately held: its base value or the
    pattern of a write that covered it ("old or new, never garbage");
  * a write is *acknowledged durable* once a guest flush after it is proven
    complete inside the durable part of the state: the trace shows a payload
    write of a later command (qemu-io runs commands one after the other)
    before the flush that begins the state's epoch.  Such a sector must hold
    the acknowledged value or a later one, never an older one ("lost");
  * the state equal to the end of the run must hold exactly the final data.
Other commands (read, discard, unknown ones) make the affected sectors
unchecked; an unknown command or a non-qemu-io program turns the read-back
off (the structural checks still run).

Outcomes per state and checker go to a JSON report (states/s, per model and
per crash point, N of M planned states, violations grouped by signature
with their states and kept images); exit status 1 when a checker violated
an invariant (refused a power-loss state, check errors, lost or garbage
data, a failed or corrupting allocation) or, with --require-complete, when
not every planned state was checked; 0 otherwise; 2 on usage or
infrastructure errors (checked before any work).

Hook (for scripts/pclib/sweep.py): call add_arguments(parser) on the sweep
parser (or only the options it lacks) and dispatch to
run_external_sweep(args) when args.trace and args.checker are set.
Standalone: `/usr/bin/python3 -m pclib.extsweep --trace T --checker both`
from scripts/.
"""
import argparse
import concurrent.futures
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time

from . import ask, registry
from .common import (EXIT_FAIL, EXIT_OK, EXIT_USAGE, ROOT, InfraError, LostOutput, OnceRunner, UsageError,
                     check_output_dir, check_output_file, fallback_path, file_sha256, run, save_json, say,
                     sparse_copy, tool, work_tmpdir)

CHECKERS = ("vhdxtool", "qemu", "both")
PROBE_PATTERN = 0xA5
PROBE_LEN = 64 * 1024
SECTOR = 512


# ---- small helpers ------------------------------------------------------------------
def parse_size(s):
    """qemu-io style numbers: 4096, 64k, 1M, 0x1000, 1.5M is not accepted."""
    m = re.fullmatch(r"(0x[0-9a-fA-F]+|\d+)([kKmMgGtTpPeEbB]?)", s.strip())
    if not m:
        raise ValueError(s)
    v = int(m.group(1), 0)
    mul = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50, "e": 1 << 60}
    return v * mul[m.group(2).lower()]


# ---- the trace (pcsweep info --json --ops) ---------------------------------------------
def read_trace(path, pcsweep=None):
    """Operations, metadata and epochs of a trace, as `pcsweep info --json
    --ops` gives them (the harness's reader: CRC, bounds, the sweep's epoch
    rule): {"flags", "seed", "base_size", "meta", "ops", "epochs"} with ops
    as tuples (kind, offset or size, length, fill byte or mark name;
    ask.trace_ops).  A trace that does not load is a UsageError naming the
    file."""
    info = ask.trace_info(pcsweep or tool("default", "pcsweep"), path, ops=True)
    return {"flags": info["flags"], "seed": info["seed"], "base_size": info["base_size"], "meta": info["meta"],
            "ops": ask.trace_ops(info), "epochs": info["epochs"], "starts": ask.epoch_starts(info)}


def region_name(off, layout):
    """Which VHDX structure a file offset falls in (layout from vhdxtool info --json)."""
    fixed = [(0, "file-id"), (64 << 10, "header1"), (128 << 10, "header2"), (192 << 10, "region1"),
             (256 << 10, "region2"), (320 << 10, "header-section")]
    if off < 1 << 20:
        return [n for o, n in fixed if off >= o][-1]
    for name in ("log", "bat", "metadata"):
        r = layout.get(name)
        if r and r["offset"] <= off < r["offset"] + r["length"]:
            return name
    return "payload"


def describe_epochs(ops, starts, layout):
    """Per epoch, its operations in words: 'W log 8K, W bat 4K, T 10M' (the
    pending writes a crash in that epoch chooses from)."""
    def size(n):
        return f"{n >> 20}M" if n and n % (1 << 20) == 0 else f"{n >> 10}K" if n and n % 1024 == 0 else f"{n}B"
    out = []
    bounds = starts[1:] + [len(ops)]
    for e, end in enumerate(bounds):
        first = 0 if e == 0 else starts[e] + 1
        words = []
        for op in ops[first:end]:
            if op[0] == "W":
                words.append(f"W {region_name(op[1], layout)}@{op[1]:#x} {size(op[2])}")
            elif op[0] == "T":
                words.append(f"T {size(op[1])}")
            elif op[0] == "M":
                words.append(f"mark {op[3]}")
        out.append(", ".join(words) if words else "(nothing pending)")
    return out


# ---- what the program wrote (qemu-io) ---------------------------------------------------------
class Workload:
    """The virtual-disk writes a recorded qemu-io command line makes, and the
    expectations they give for a crash state (see the module docstring)."""

    def __init__(self, cmds, base_raw):
        self.cmds = cmds            # [(kind, off, len, byte)] kinds: write, flush, discard, read
        self.base = base_raw        # virtual disk before the run
        self.unchecked = set()      # sectors no judgement is made on
        self.touch = {}             # sector -> [(cmd index, byte or None for 'old or zero')]
        self.proof = {}             # flush cmd index -> trace index proving it complete
        nsec = len(base_raw) // SECTOR
        for i, (kind, off, ln, byte) in enumerate(cmds):
            if kind not in ("write", "discard"):
                continue
            first, last = off // SECTOR, (off + ln + SECTOR - 1) // SECTOR
            for s in range(first, min(last, nsec)):
                if kind == "discard" or off % SECTOR or (off + ln) % SECTOR:
                    self.unchecked.add(s)
                else:
                    self.touch.setdefault(s, []).append((i, byte))
        self.nsec = nsec
        self.concurrent = False     # aio_* commands or cache=unsafe: no acknowledgement proofs
        self.cache = "writethrough"  # qemu-io cache mode

    @staticmethod
    def from_trace(meta, base_raw):
        """A Workload when record.command is qemu-io with understood -c
        commands, else None (and the reason)."""
        try:
            argv = json.loads(meta.get("record.command", "null"))
        except ValueError:
            return None, "record.command is not JSON"
        if not argv or os.path.basename(argv[0]) != "qemu-io":
            return None, "the recorded program is not qemu-io"
        cmds = []
        cache = "writethrough"  # qemu-io's default cache mode (-t)
        i = 1
        while i < len(argv):
            a = argv[i]
            if a in ("-c", "--cmd") and i + 1 < len(argv):
                c, why = parse_qemu_io_command(argv[i + 1])
                if c is None:
                    return None, why
                cmds.append(c)
                i += 2
            elif a.startswith("--cmd="):
                c, why = parse_qemu_io_command(a[6:])
                if c is None:
                    return None, why
                cmds.append(c)
                i += 1
            elif a in ("-t", "--cache") and i + 1 < len(argv):
                cache = argv[i + 1]
                i += 2
            elif a.startswith("--cache="):
                cache = a[8:]
                i += 1
            elif a in ("-n", "--nocache"):
                cache = "none"
                i += 1
            else:
                i += 1
        if not cmds:
            return None, "no -c commands"
        if cache in ("writethrough", "directsync"):
            # Every write returns after a flush: an implicit flush follows it.
            cmds = [x for c in cmds for x in ([c, ("flush", 0, 0, None)] if c[0] == "write" else [c])]
        w = Workload(cmds, base_raw)
        w.cache = cache
        # aio_* commands: completion order is not command order; unsafe: flushes are ignored.
        w.concurrent = cache == "unsafe" or any(a.split()[0].startswith("aio_") for a in _commands(argv) if a.split())
        return w, None

    def locate(self, ops):
        """Finds, for each guest flush, a trace index that proves it done."""
        first_w = {}
        if self.concurrent:
            return first_w
        start = 0
        for i, (kind, off, ln, byte) in enumerate(self.cmds):
            if kind != "write" or byte in (None, 0):
                continue
            for j in range(start, len(ops)):
                op = ops[j]
                if op[0] == "W" and op[3] == byte and op[2] >= SECTOR and op[2] % SECTOR == 0:
                    first_w[i] = j
                    start = j + 1
                    break
        for i, (kind, *_rest) in enumerate(self.cmds):
            if kind != "flush":
                continue
            later = [first_w[k] for k in range(i + 1, len(self.cmds)) if k in first_w]
            if later:
                self.proof[i] = later[0]
        return first_w

    def acked(self, durable_before):
        """Index of the last guest flush proven complete before trace index
        durable_before (commands before it are acknowledged durable), or -1."""
        best = -1
        for i, p in self.proof.items():
            if p < durable_before and i > best:
                best = i
        return best

    def judge(self, raw, acked_flush, terminal):
        """('ok'|'lost'|'garbage'|'size', detail) for a raw export."""
        if len(raw) != len(self.base):
            return "size", f"virtual disk is {len(raw)} bytes, expected {len(self.base)}"
        if terminal:
            acked_flush = len(self.cmds)
        worst, detail = "ok", ""
        # Untouched, checked sectors: the base value, in bulk between touched runs.
        touched = sorted(set(self.touch) | self.unchecked)
        prev = 0
        for s in touched + [self.nsec]:
            a, b = prev * SECTOR, s * SECTOR
            if a < b and raw[a:b] != self.base[a:b]:
                for k in range(prev, s):
                    if raw[k * SECTOR:(k + 1) * SECTOR] != self.base[k * SECTOR:(k + 1) * SECTOR]:
                        return "garbage", f"virtual sector {k} (offset {k * SECTOR}) was never written but " \
                                          f"differs from the base: {raw[k * SECTOR:k * SECTOR + 16].hex()}"
            prev = s + 1
        for s, writes in self.touch.items():
            if s in self.unchecked:
                continue
            got = raw[s * SECTOR:(s + 1) * SECTOR]
            base = self.base[s * SECTOR:(s + 1) * SECTOR]

            def is_val(v):
                return got == base if v == "base" else got == bytes([v]) * SECTOR

            older = ["base"]
            cur = "base"
            later = []
            for ci, byte in writes:
                if ci < acked_flush:
                    older.append(cur)
                    cur = byte
                else:
                    later.append(byte)
            if terminal:
                if is_val(cur):
                    continue
            elif is_val(cur) or any(is_val(v) for v in later):
                continue
            if any(is_val(v) for v in older):
                if worst == "ok":
                    worst = "lost"
                    detail = (f"virtual sector {s} (offset {s * SECTOR}) holds an older value; expected "
                              f"{'pattern 0x%02x' % cur if cur != 'base' else 'its base value'}"
                              f"{' or a later write' if later and not terminal else ''}")
            else:
                return "garbage", (f"virtual sector {s} (offset {s * SECTOR}) holds bytes no write put there: "
                                   f"{got[:16].hex()}...")
        return worst, detail


def _commands(argv):
    out = []
    for i, a in enumerate(argv):
        if a in ("-c", "--cmd") and i + 1 < len(argv):
            out.append(argv[i + 1] or " ")
        elif a.startswith("--cmd="):
            out.append(a[6:] or " ")
    return out


def parse_qemu_io_command(text):
    """(kind, off, len, byte) for a qemu-io command, or (None, why)."""
    try:
        w = shlex.split(text)
    except ValueError:
        return None, f"cannot parse qemu-io command {text!r}"
    if not w:
        return None, "empty qemu-io command"
    name, args = w[0], w[1:]
    try:
        if name in ("write", "aio_write", "writev"):
            byte, zero = 0xCD, False
            pos = []
            i = 0
            while i < len(args):
                a = args[i]
                if a == "-P":
                    byte = int(args[i + 1], 0) & 0xFF
                    i += 2
                elif a == "-z":
                    zero = True
                    i += 1
                elif a in ("-q", "-C", "-f", "-u", "-c", "-n", "-p", "-b"):
                    i += 1
                elif a.startswith("-"):
                    return None, f"qemu-io option {a} in {text!r} is not understood"
                else:
                    pos.append(a)
                    i += 1
            if len(pos) < 2:
                return None, f"qemu-io command {text!r}: offset and length expected"
            off = parse_size(pos[0])
            ln = sum(parse_size(p) for p in pos[1:]) if name == "writev" else parse_size(pos[1])
            return ("write", off, ln, 0 if zero else byte), None
        if name in ("flush", "aio_flush"):
            return ("flush", 0, 0, None), None
        if name in ("discard", "aio_discard"):
            pos = [a for a in args if not a.startswith("-")]
            return ("discard", parse_size(pos[0]), parse_size(pos[1]), None), None
        if name in ("read", "readv", "aio_read", "map", "info", "length", "help", "quit", "sleep", "wait_break"):
            return ("read", 0, 0, None), None
    except (ValueError, IndexError):
        return None, f"qemu-io command {text!r}: bad number"
    return None, f"qemu-io command {name!r} is not understood"


# ---- checkers ---------------------------------------------------------------------------------------
class Checkers(OnceRunner):
    def __init__(self, t, work, workload, probe_off, virtual_size, verbose=False):
        super().__init__(verbose, 60.0)
        self.t = t
        self.work = work
        self.workload = workload
        self.probe_off = probe_off
        self.virtual_size = virtual_size

    def log_pending(self, img):
        """Does the image's current header name a log (vhdxtool layout)?"""
        return ask.log_pending(ask.layout(self.t("vhdxtool"), img, runner=self))

    def judge_raw(self, raw_path, st):
        if not self.workload:
            return "unknown", "no read-back (" + (st.get("why_no_readback") or "unknown workload") + ")"
        with open(raw_path, "rb") as f:
            raw = f.read()
        return self.workload.judge(raw, st["acked"], st["terminal"])

    def vhdxtool(self, img, st, tag):
        t = self.t
        r = {}
        cp = self.run([t("vhdxtool"), "replay", img])
        out = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
        if cp.returncode == -9:
            r["open"] = "hang"
            r["message"] = out.strip()
            return r
        if cp.returncode == 0:
            r["open"] = "replayed" if "replayed" in cp.stdout.decode(errors="replace") else "opened"
        elif cp.returncode == 1:
            m = re.search(r"\[(VHDX_E_\w+|E\w+)\]", out)
            r["open"] = "refused"
            r["error"] = m.group(1) if m else "?"
            r["message"] = out.strip().splitlines()[0][:300] if out.strip() else ""
        else:
            r["open"] = "error"
            r["message"] = out.strip()[:300]
            return r
        if r["open"] == "refused":
            return r
        cp = self.run([t("vhdxtool"), "check", img, "--json"])
        try:
            rep = json.loads(cp.stdout.decode(errors="replace"))
            r["check_errors"] = rep.get("errors", 0)
            if rep.get("errors"):
                first = [p for p in rep.get("problems", []) if p.get("severity") == "error"][:1]
                r["check_first"] = (first[0]["field"] + ": " + first[0]["message"])[:300] if first else ""
        except ValueError:
            r["check_errors"] = -1
        raw = os.path.join(self.work, f"{tag}.v.raw")
        cp = self.run([t("vhdxtool"), "export", img, raw])
        if cp.returncode != 0:
            r["data"] = "export-failed"
            r["data_detail"] = cp.stderr.decode(errors="replace").strip()[:300]
        else:
            r["data"], r["data_detail"] = self.judge_raw(raw, st)
            os.unlink(raw)
        return r

    def qemu(self, img, st, tag):
        r = {}
        cp = self.run(["qemu-img", "check", "-r", "all", "-f", "vhdx", img])
        out = (cp.stdout + cp.stderr).decode(errors="replace")
        if cp.returncode == -9:
            r["open"] = "hang"
            r["message"] = out.strip()
            return r
        if "Could not open" in out or (cp.returncode == 1 and "No errors" not in out):
            r["open"] = "refused"
            r["message"] = out.strip().splitlines()[-1][:300] if out.strip() else f"status {cp.returncode}"
            return r
        was = st["log_pending"]
        now = self.log_pending(img)
        r["open"] = ("replayed" if was and not now else "opened-log-not-replayed" if was else "opened")
        r["check_status"] = cp.returncode
        if "repaired" in out or "Repairing" in out:
            r["check_repaired"] = out.strip()[:300]
        if cp.returncode not in (0,):
            r["check_errors"] = out.strip()[:300]
        raw = os.path.join(self.work, f"{tag}.q.raw")
        cp = self.run(["qemu-img", "convert", "-f", "vhdx", "-O", "raw", img, raw])
        if cp.returncode != 0:
            r["data"] = "convert-failed"
            r["data_detail"] = cp.stderr.decode(errors="replace").strip()[:300]
            return r
        r["data"], r["data_detail"] = self.judge_raw(raw, st)
        if self.probe_off is None:
            os.unlink(raw)
            return r
        # The allocation probe.
        po = self.probe_off
        cp = self.run(["qemu-io", "-f", "vhdx", "-c", f"write -P 0x{PROBE_PATTERN:02x} {po} {PROBE_LEN}", img])
        pout = (cp.stdout + cp.stderr).decode(errors="replace")
        if cp.returncode != 0 or "failed" in pout:
            m = re.search(r"(write failed: .*|can't open.*)", pout)
            r["probe"] = "cannot-allocate"
            r["probe_detail"] = (m.group(1) if m else pout.strip())[:300]
            os.unlink(raw)
            return r
        cp = self.run(["qemu-img", "check", "-f", "vhdx", img])
        cout = (cp.stdout + cp.stderr).decode(errors="replace")
        raw2 = os.path.join(self.work, f"{tag}.q2.raw")
        cp2 = self.run(["qemu-img", "convert", "-f", "vhdx", "-O", "raw", img, raw2])
        if cp.returncode != 0:
            r["probe"] = "allocation-corrupts"
            r["probe_detail"] = ("qemu-img check after the probe write: " + cout.strip())[:300]
        elif cp2.returncode != 0:
            r["probe"] = "allocation-corrupts"
            r["probe_detail"] = "convert after the probe write failed: " + cp2.stderr.decode(errors="replace")[:200]
        else:
            with open(raw, "rb") as f1, open(raw2, "rb") as f2:
                a, b = f1.read(), f2.read()
            probe_ok = b[po:po + PROBE_LEN] == bytes([PROBE_PATTERN]) * PROBE_LEN
            rest_ok = len(a) == len(b) and a[:po] == b[:po] and a[po + PROBE_LEN:] == b[po + PROBE_LEN:]
            if probe_ok and rest_ok:
                r["probe"] = "ok"
            else:
                r["probe"] = "allocation-corrupts"
                r["probe_detail"] = ("the probe did not read back" if not probe_ok else
                                     "writing the probe changed other virtual data")
        for p in (raw, raw2):
            if os.path.exists(p):
                os.unlink(p)
        return r


def violations_of(r, cls, checker):
    """Invariant failures of one checker's result on a state of a model of
    class cls (power, corruption; empty list = fine)."""
    v = []
    corruption = cls == "corruption"
    if r.get("open") == "error":
        v.append("checker-error")
    if r.get("open") == "hang":
        v.append("hang")
    if r.get("open") == "refused" and not corruption:
        v.append("refused")
    if r.get("check_errors"):
        v.append("check-errors")
    if r.get("data") in ("garbage", "size", "export-failed", "convert-failed"):
        v.append("data-" + r["data"])
    if r.get("data") == "lost" and not corruption:
        v.append("data-lost")
    if r.get("probe") in ("cannot-allocate", "allocation-corrupts"):
        v.append("probe-" + r["probe"])
    return v


def outcome_label(r):
    """One-line outcome of a checker on a state, for tables."""
    if not r:
        return "-"
    o = r.get("open", "?")
    if o == "hang":
        return "does not finish (timeout)"
    if o == "refused":
        return "refuses" + (f" ({r['error']})" if r.get("error") else "")
    parts = [{"replayed": "replays", "opened": "opens", "opened-log-not-replayed":
              "opens (log not replayed)"}.get(o, o)]
    if r.get("check_errors"):
        parts.append("check errors")
    d = r.get("data")
    if d in ("lost", "garbage", "size"):
        parts.append({"lost": "loses data", "garbage": "garbage data", "size": "wrong size"}[d])
    p = r.get("probe")
    if p == "cannot-allocate":
        parts.append("unable to allocate")
    elif p == "allocation-corrupts":
        parts.append("allocation corrupts")
    return ", ".join(parts)


# ---- the sweep -------------------------------------------------------------------------------------------
def add_arguments(p, only_extra=False):
    """The external sweep's options.  only_extra: only those `powercut
    sweep` does not have itself (its parser adds them to its --help)."""
    if not only_extra:
        p.add_argument("--trace", help="trace to sweep (from powercut record or pcsweep --save-trace)")
        p.add_argument("--checker", choices=CHECKERS, help="external checker(s) for every crash state")
        p.add_argument("--models", default="all",
                       help="comma list of crash models, or all (default; recovery is not exportable)")
        p.add_argument("--max-states", type=int, default=0,
                       help="stop after N states (0 = all; the report says N of how many)")
        p.add_argument("--max-seconds", type=float, default=0,
                       help="stop exporting new states after S seconds (0 = none)")
        p.add_argument("--out", help="report directory (default reports/runs/extsweep-<time>/)")
        p.add_argument("--shard", default="0/1", help="K/N: only states with index %% N == K")
        p.add_argument("--json", dest="json_out", help="report path (default reports/runs/extsweep-*/extsweep.json)")
        p.add_argument("--preset", default="default", help="build tree of the tools (default: %(default)s)")
        p.add_argument("--require-complete", action="store_true",
                       help="a sweep that did not check every planned state exits 1")
    # In `powercut sweep`'s parser these are absent unless given (SUPPRESS),
    # so it can tell an external-only option given without --checker.
    def d(v):
        return argparse.SUPPRESS if only_extra else v
    p.add_argument("--sweep-seed", type=int, default=d(1), help="seed of sampled choices (default 1)")
    p.add_argument("--jobs", type=int, default=d(2), help="external: states checked in parallel (default 2)")
    p.add_argument("--batch", type=int, default=d(64), help="external: states exported at a time (default 64)")
    p.add_argument("--markdown", default=d(None),
                   help="external: also write the per-crash-point table as Markdown here")
    p.add_argument("--keep-failures", type=int, default=d(3),
                   help="external: copy up to N images of each violation signature into the report directory "
                        "(default 3)")
    p.add_argument("--no-probe", action="store_true", default=d(False), help="external: skip QEMU's allocation probe")
    p.add_argument("--no-compare", action="store_true", default=d(False),
                   help="external: skip the in-process sweep used for the speed ratio")
    p.add_argument("--timeout", type=float, default=d(60.0),
                   help="external: seconds one checker command may take before the state counts as a hang "
                        "(default 60)")
    p.add_argument("--verbose", action="store_true", default=d(False), help="external: print every checker command")


def _export_batch(t, trace, out, models, indices, args):
    return ask.export_states(t("pcsweep"), trace, out, models, indices, sweep_seed=args.sweep_seed,
                             shard=args.shard, quiet=indices[0] != 0, failed="pcsweep export failed: ")


def _state_meta(row, ops, starts, n_pending_last, workload):
    model, epoch = row["model"], row["epoch"]
    last_epoch = len(starts) - 1
    m = re.search(r"persisted=(\d+)", row.get("choice", ""))
    persisted = int(m.group(1)) if m else -1
    terminal = epoch == last_epoch and ((model == "drop" and n_pending_last == 0) or
                                         (model == "prefix" and persisted == n_pending_last))
    durable_before = starts[epoch] if epoch < len(starts) else len(ops)
    acked = workload.acked(durable_before) if workload else -1
    return {"terminal": terminal, "acked": acked}


def normalize_args(args):
    """The external sweep's options from any namespace: this module's own
    parser, or `powercut sweep`'s (whose --json, --out, --shard,
    --max-states, --max-seconds, --models, --preset, --trace and --checker
    mean the same; options only this module knows arrive in args.extra)."""
    p = argparse.ArgumentParser(prog="powercut sweep --trace T --checker C", add_help=False)
    add_arguments(p)
    ns = p.parse_args([])
    for k, v in vars(args).items():
        if v is not None and hasattr(ns, k):
            setattr(ns, k, v)
    if getattr(args, "json", None):
        ns.json_out = args.json
    extra = list(getattr(args, "extra", None) or [])
    if extra:
        try:
            ns, unknown = p.parse_known_args(extra, namespace=ns)
        except SystemExit as e:
            raise UsageError(f"bad option among {' '.join(extra)}") from e
        if unknown:
            raise UsageError(f"unknown option(s) for the external sweep: {' '.join(unknown)}")
    ns.shard = ns.shard or "0/1"
    ns.max_states = ns.max_states or 0
    ns.max_seconds = ns.max_seconds or 0
    return ns


DOCS_REFUSALS = "docs/qemu-crash.md"


def check_trace_arg(trace):
    """--trace must name a trace file: a clear usage error otherwise."""
    if not trace:
        raise UsageError("--trace FILE is needed")
    if os.path.isdir(trace):
        raise UsageError(f"--trace {trace}: is a directory; give one trace file (.pctrace, from `powercut record` "
                         f"or `pcsweep --save-trace`)")
    if not os.path.exists(trace):
        raise UsageError(f"--trace {trace}: no such file")
    if not os.path.isfile(trace):
        raise UsageError(f"--trace {trace}: not a regular file")


def select_models(spec, pcsweep):
    """The exportable models `--models` names, from pcsweep's registry: a
    model, all, or a class (power, corruption); models that cannot be
    exported (recovery) are left out, with a word when named."""
    exportable = registry.exportable_models(pcsweep)
    names = registry.model_names(pcsweep)
    groups = registry.model_groups(pcsweep)
    models = []
    for m in spec.split(","):
        m = m.strip()
        if m == "all":
            models += exportable
        elif m in groups:
            models += registry.models_of_class(pcsweep, m)
        elif m in exportable:
            models.append(m)
        elif m in names:
            say(f"sweep: the {m} model needs the checker's own replay and is not exportable; skipped")
        else:
            raise UsageError(f"--models: unknown model {m!r} ({', '.join(names)}, {', '.join(groups)})")
    models = [m for m in exportable if m in models]
    if not models:
        raise UsageError("--models selects no exportable model")
    return models


def violation_structure(checker, r, violation):
    """What a violation involves, without the numbers that differ from
    state to state: the engine's error code of a refusal, QEMU's message
    (digits and the image path taken out), the first check problem's field,
    the data outcome."""
    if violation == "refused":
        if checker == "vhdxtool":
            return r.get("error") or "?"
        msg = re.sub(r"'[^']*'", "IMG", r.get("message", ""))
        return re.sub(r"\d+", "N", msg).strip()[-120:] or "?"
    if violation == "check-errors":
        if checker == "vhdxtool":
            return (r.get("check_first") or "?").split(":", 1)[0]
        return "qemu-img check"
    if violation.startswith("data-"):
        return r.get("data", "?")
    if violation.startswith("probe-"):
        return r.get("probe", "?")
    return "-"


def signature_of(checker, r, cls, violation):
    structure = violation_structure(checker, r, violation)
    return f"{checker}|{violation}|{cls}|{structure}", cls, structure


def count_planned(t, trace, models, args):
    """States the sweep plans (`pcsweep export --count`), or None."""
    return ask.export_count(t("pcsweep"), trace, models, sweep_seed=args.sweep_seed, shard=args.shard)[0]


def run_external_sweep(args):
    from .record import ensure_tools
    args = normalize_args(args)
    if not args.checker:
        raise UsageError("the external sweep needs --trace FILE and --checker vhdxtool|qemu|both")
    check_trace_arg(args.trace)
    if args.checker in ("qemu", "both") and not shutil.which("qemu-img"):
        raise InfraError("qemu-img is not installed (powercut setup installs qemu-utils)")
    if args.jobs < 1 or args.batch < 1:
        raise UsageError("--jobs and --batch must be at least 1")
    if args.max_states < 0 or args.keep_failures < 0:
        raise UsageError("--max-states and --keep-failures must not be negative")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_json = args.json_out or os.path.join(args.out or os.path.join(ROOT, "reports", "runs", f"extsweep-{stamp}"),
                                             "extsweep.json")
    # Outputs are checked before any work (exit 2 naming the path).
    if args.out:
        check_output_dir(args.out, "--out")
    check_output_file(out_json, "--json")
    check_output_file(args.markdown, "--markdown")
    t = ensure_tools(args.preset)
    models = select_models(args.models, t("pcsweep"))
    classes = {m: registry.model_class(t("pcsweep"), m) for m in models}
    tr = read_trace(args.trace, t("pcsweep"))
    ops = tr["ops"]
    starts = tr["starts"]
    n_pending_last = tr["epochs"][-1]["pending"]
    report_dir = os.path.dirname(os.path.abspath(out_json))
    os.makedirs(report_dir, exist_ok=True)
    checkers = ["vhdxtool", "qemu"] if args.checker == "both" else [args.checker]
    planned = count_planned(t, args.trace, models, args)
    say(f"sweep: external checker(s) {', '.join(checkers)} on {args.trace}: {len(ops)} operations, "
        f"{len(starts)} epochs, {planned if planned is not None else '?'} crash states planned; models "
        f"{','.join(models)}; sweep seed {args.sweep_seed} (sampling)")
    work = tempfile.mkdtemp(prefix="powercut-extsweep-", dir=work_tmpdir())
    try:
        # The base image (state 0 of the drop model = the durable image of epoch 0).
        base_dir = os.path.join(work, "base")
        rows = _export_batch(t, args.trace, base_dir, ["drop"], [0], argparse.Namespace(
            sweep_seed=args.sweep_seed, shard="0/1"))
        base_img = rows[0]["image"]
        workload, why, probe, vsize = None, None, None, 0
        info = run([t("vhdxtool"), "info", base_img, "--json"], check=False, capture=True)
        try:
            geo = json.loads(info.stdout.decode()) if info.returncode == 0 else None
        except ValueError:
            geo = None
        layout = {}
        if geo:
            layout = {k: geo[k] for k in ("log", "bat", "metadata") if k in geo}
            vsize, bsize = geo["virtual_size"], geo["block_size"]
            base_raw_path = os.path.join(work, "base.raw")
            run([t("vhdxtool"), "export", base_img, base_raw_path], capture=True)
            with open(base_raw_path, "rb") as f:
                base_raw = f.read()
            workload, why = Workload.from_trace(tr["meta"], base_raw)
            if workload:
                workload.locate(ops)
            touched_blocks = set()
            if workload:
                for kind, off, ln, _b in workload.cmds:
                    if kind in ("write", "discard") and ln:
                        touched_blocks.update(range(off // bsize, (off + ln - 1) // bsize + 1))
            if not args.no_probe and "qemu" in checkers:
                for blk in range(vsize // bsize - 1, -1, -1):
                    if blk not in touched_blocks:
                        probe = blk * bsize
                        break
        else:
            why = "the base image does not open with vhdxtool: " + info.stderr.decode(errors="replace").strip()[:200]
        say(f"sweep: read-back {'on: ' + str(sum(1 for c in workload.cmds if c[0] == 'write')) + ' qemu-io writes' if workload else 'off (' + (why or '?') + ')'}"
            f"; allocation probe {'at virtual offset ' + str(probe) if probe is not None else 'off'}")
        chk = Checkers(t, work, workload, probe, vsize, verbose=args.verbose)
        chk.timeout = args.timeout
        results = []
        kept = {}
        cache = {}   # (image digest, acked flush, terminal) -> the first state's result
        unique = 0
        t0 = time.time()
        idx = 0
        done = False
        stopped_by = None
        while not done:
            want = args.batch
            if args.max_states:
                want = min(want, args.max_states - len(results))
            if want <= 0:
                stopped_by = f"--max-states {args.max_states}"
                break
            if args.max_seconds and time.time() - t0 >= args.max_seconds:
                stopped_by = f"--max-seconds {args.max_seconds:g}"
                break
            indices = list(range(idx, idx + want))
            bdir = os.path.join(work, f"batch-{idx}")
            rows = _export_batch(t, args.trace, bdir, models, indices, args)
            idx += want
            if len(rows) < want:
                done = True

            def check_one(row):
                st = {"index": row["index"], "model": row["model"], "epoch": row["epoch"], "cut": row["cut"],
                      "choice": row["choice"], "size": row["size"]}
                st.update(_state_meta(row, ops, starts, n_pending_last, workload))
                st["log_pending"] = chk.log_pending(row["image"])
                st["why_no_readback"] = why
                for c in checkers:
                    copy = os.path.join(bdir, f"{row['index']}.{c}.vhdx")
                    sparse_copy(row["image"], copy)
                    st[c] = getattr(chk, c)(copy, st, f"{row['index']}")
                    st[c]["violations"] = violations_of(st[c], classes[row["model"]], c)
                    if st[c]["violations"]:
                        key = signature_of(c, st[c], classes[row["model"]], st[c]["violations"][0])[0]
                        with chk.lock:
                            n = kept.get(key, 0)
                            kept[key] = n + 1
                        if n < args.keep_failures:
                            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[:100]
                            dst = os.path.join(report_dir, "failures", f"{safe}-state{row['index']:06d}.vhdx")
                            os.makedirs(os.path.dirname(dst), exist_ok=True)
                            sparse_copy(row["image"], dst)
                            st[c]["image"] = dst
                    os.unlink(copy)
                st.pop("why_no_readback", None)
                return st

            # States with the same bytes and the same expectation are checked once.
            todo, dup = [], []
            for row in rows:
                meta = _state_meta(row, ops, starts, n_pending_last, workload)
                key = (file_sha256(row["image"]), meta["acked"], meta["terminal"])
                if key in cache or key in [k for k, _ in todo]:
                    dup.append((key, row))
                else:
                    todo.append((key, row))
            with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
                for (key, _row), st in zip(todo, ex.map(check_one, [r for _, r in todo])):
                    cache[key] = st
                    results.append(st)
            for key, row in dup:
                first = cache[key]
                st = {"index": row["index"], "model": row["model"], "epoch": row["epoch"], "cut": row["cut"],
                      "choice": row["choice"], "size": row["size"], "same_as": first["index"]}
                for k in ("terminal", "acked", "log_pending"):
                    st[k] = first[k]
                for c in checkers:
                    st[c] = dict(first[c])
                    st[c]["violations"] = violations_of(st[c], classes[row["model"]], c)
                results.append(st)
            unique += len(todo)
            shutil.rmtree(bdir, ignore_errors=True)
            el = time.time() - t0
            if sys.stderr.isatty():
                sys.stderr.write(f"\r[sweep] {len(results)} of {planned if planned is not None else '?'} states, "
                                 f"{len(results) / el:.1f}/s   ")
                sys.stderr.flush()
        wall = time.time() - t0
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        # The in-process sweep over the same models, for the speed ratio.
        inproc = None
        if not args.no_compare:
            j = os.path.join(work, "inproc.json")
            cmd = [t("pcsweep"), "sweep", "--trace", args.trace, "--models", ",".join(models), "--quiet",
                   "--no-count", "--json", j, "--sweep-seed", str(args.sweep_seed)]
            if args.max_states:
                cmd += ["--max-states", str(args.max_states)]
            if args.shard != "0/1":
                cmd += ["--shard", args.shard]
            run(cmd, check=False, capture=True)
            if os.path.exists(j):
                try:
                    with open(j) as f:
                        inproc = json.load(f)
                except ValueError:
                    inproc = None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results.sort(key=lambda st: st["index"])
    if stopped_by is None and planned is not None and len(results) < planned:
        stopped_by = "the export ended early"
    return _report(args, results, checkers, models, classes, wall, unique, inproc, out_json, workload, why, probe,
                   tr, starts, describe_epochs(ops, starts, layout), planned, stopped_by)


def signatures(results, checkers, classes, cap_states=50):
    """Violations grouped by signature (checker, violation, model class,
    structure): count, the states (index and choice; the first cap_states),
    the kept images."""
    out = {}
    for st in results:
        for c in checkers:
            for v in st[c]["violations"]:
                key, cls, structure = signature_of(c, st[c], classes[st["model"]], v)
                g = out.setdefault(key, {"signature": key, "checker": c, "violation": v, "model_class": cls,
                                         "structure": structure, "count": 0, "states": [], "images": [],
                                         "example": None})
                g["count"] += 1
                if len(g["states"]) < cap_states:
                    g["states"].append({"index": st["index"], "choice": st["choice"]})
                if st[c].get("image") and v == st[c]["violations"][0] and st[c]["image"] not in g["images"]:
                    g["images"].append(st[c]["image"])
                if g["example"] is None:
                    g["example"] = {k: st[c].get(k) for k in ("open", "error", "message", "check_first", "data",
                                                              "data_detail", "probe", "probe_detail")
                                    if st[c].get(k) is not None}
    return sorted(out.values(), key=lambda g: (-g["count"], g["signature"]))


def _report(args, results, checkers, models, classes, wall, unique, inproc, out_json, workload, why, probe, tr,
            starts, epoch_ops, planned=None, stopped_by=None):
    n = len(results)
    rate = n / wall if wall > 0 else 0.0
    complete = planned is not None and n >= planned
    summary = {"trace": os.path.abspath(args.trace), "checkers": checkers, "models": models,
               "sweep_seed": args.sweep_seed, "shard": args.shard, "states": n, "wall_s": round(wall, 3),
               "states_planned": planned, "complete": complete, "stopped_by": None if complete else stopped_by,
               "coverage": {"states": n, "states_planned": planned,
                            "text": f"{n} of {planned if planned is not None else '?'} states"
                                    + ("" if complete else f" (stopped by {stopped_by or '?'})")},
               "states_per_sec": round(rate, 2), "jobs": args.jobs, "unique_images_checked": unique,
               "unique_images_per_sec": round(unique / wall, 2) if wall > 0 else 0.0,
               "readback": "qemu-io commands" if workload else f"off ({why})",
               "probe_offset": probe, "epochs": len(starts), "trace_ops": len(tr["ops"]),
               "record_command": tr["meta"].get("record.command")}
    if inproc:
        ip_rate = inproc.get("states_per_sec", 0.0)
        summary["inprocess"] = {"states": inproc.get("states"), "wall_s": inproc.get("wall_s"),
                                "states_per_sec": ip_rate, "violations": inproc.get("violations")}
        summary["inprocess_to_external_ratio"] = round(ip_rate / rate, 1) if rate > 0 else None
    per = {}
    viol = {}
    for c in checkers:
        per[c] = {}
        viol[c] = {}
        for st in results:
            lab = outcome_label(st.get(c))
            per[c].setdefault(st["model"], {}).setdefault(lab, 0)
            per[c][st["model"]][lab] += 1
            for v in st[c]["violations"]:
                viol[c][v] = viol[c].get(v, 0) + 1
    summary["outcomes"] = per
    summary["violations"] = viol
    summary["violating_states"] = {c: sum(1 for st in results if st[c]["violations"]) for c in checkers}
    sigs = signatures(results, checkers, classes)
    summary["signatures"] = sigs
    # Per crash point (epoch): the distinct outcomes.
    points = {}
    for st in results:
        e = st["epoch"]
        p = points.setdefault(e, {"epoch": e, "cut": st["cut"], "states": 0,
                                  "pending": epoch_ops[e] if e < len(epoch_ops) else "?"})
        p["states"] += 1
        for c in checkers:
            d = p.setdefault(c, {})
            lab = f"{st['model']}: {outcome_label(st.get(c))}"
            d[lab] = d.get(lab, 0) + 1
    summary["points"] = [points[e] for e in sorted(points)]
    summary["states_detail"] = results
    lost = []
    try:
        save_json(out_json, summary, "--json")
    except LostOutput as e:
        lost.append(str(e))
    if getattr(args, "markdown", None):
        try:
            write_markdown(args.markdown, summary, checkers, models)
        except OSError as e:
            alt = fallback_path(args.markdown)
            write_markdown(alt, summary, checkers, models)
            lost.append(f"--markdown {args.markdown}: cannot be written ({e.strerror or e}); saved to {alt}")
    say(f"sweep: {n} of {planned if planned is not None else '?'} crash states checked in {wall:.1f} s "
        f"({rate:.1f}/s with {'+'.join(checkers)}, {args.jobs} jobs; {unique} distinct images checked, "
        f"{unique / wall if wall > 0 else 0:.1f}/s)")
    if not complete:
        say(f"sweep: INCOMPLETE: {n} of {planned if planned is not None else '?'} states checked (stopped by "
            f"{stopped_by or '?'}); the states not checked may hold violations")
    if inproc and rate > 0:
        say(f"sweep: in-process sweep of the same trace and models: {inproc.get('states')} states, "
            f"{inproc.get('states_per_sec', 0):.0f}/s ({summary['inprocess_to_external_ratio']}x faster)")
    for c in checkers:
        say(f"  {c}:")
        for model in models:
            if model in per[c]:
                cells = ", ".join(f"{k} {v}" for k, v in sorted(per[c][model].items(), key=lambda kv: -kv[1]))
                say(f"    {model:10s} {cells}")
    if sigs:
        say(f"sweep: {sum(g['count'] for g in sigs)} violations in {len(sigs)} signature(s):")
        for g in sigs:
            states = ", ".join(f"{s['index']} ({s['choice']})" for s in g["states"][:5])
            more = f", ... ({g['count'] - 5} more in {out_json})" if g["count"] > 5 else ""
            say(f"  {g['count']:5d}  {g['signature']}\n         states: {states}{more}")
            if g["images"]:
                say("         images: " + ", ".join(g["images"]))
            if g["violation"] == "refused":
                say(f"         what a refusal means here, and QEMU's crash states: {DOCS_REFUSALS}")
    say(f"sweep: report {out_json}")
    for m in lost:
        say(f"sweep: {m}")
    if lost:
        return EXIT_USAGE
    bad = any(summary["violating_states"].values())
    return EXIT_FAIL if bad or (getattr(args, "require_complete", False) and not complete) else EXIT_OK


def write_markdown(path, summary, checkers, models):
    """Per crash point (epoch): what was pending, and per checker the
    outcome of every model's states (count x outcome)."""
    lines = [f"States: {summary['states']} ({summary['unique_images_checked']} distinct images), models "
             f"{', '.join(models)}; read-back: {summary['readback']}.", ""]
    head = "| epoch | pending operations (a crash chooses among these) | " + \
        " | ".join(checkers) + " |"
    lines += [head, "|" + "---|" * (2 + len(checkers))]
    for p in summary["points"]:
        cells = []
        for c in checkers:
            per_model = {}
            for lab, n in p.get(c, {}).items():
                model, _, outcome = lab.partition(": ")
                per_model.setdefault(model, []).append(f"{n}x {outcome}")
            cells.append("<br>".join(f"**{m}**: {', '.join(per_model[m])}" for m in models if m in per_model))
        lines.append(f"| {p['epoch']} | {p['pending']} | " + " | ".join(cells) + " |")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(prog="powercut sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run_external_sweep(args)
    except UsageError as e:
        print(f"powercut sweep: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except InfraError as e:
        print(f"powercut sweep: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
