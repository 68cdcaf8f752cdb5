#!/usr/bin/python3
"""agree.py - the QEMU subject in process (pcqemu: QEMU's block/vhdx*.c over
the shim) must do what the real qemu-io / qemu-img processes do, image by
image.  A disagreement is a shim bug: the test fails (exit 1).

Images (made fresh in a scratch directory, /dev/shm when it has room):
  qemu-img     `qemu-img create -f vhdx` with several block/log sizes,
               subformat=fixed, block_state_zero=off, an odd size, a 1 GiB
               sparse image; then written by a qemu-io session
  vhdxtool     `vhdxtool create` (the project's engine) with several
               geometries, 4096-byte physical and logical sectors (QEMU
               refuses the latter), filled with `vhdxtool write`
  fuzz         every input of corpus/fuzz_log_replay, corpus/fuzz_image_open
               and corpus/regressions turned into its image by the target's
               standalone binary (POWERCUT_FUZZ_EXPORT): pending logs, damaged
               headers and logs
  crash        crash states of two traces, exported by `pcsweep export`: a
               workload of the project's engine (`pcsweep record`) and a
               qemu-io session recorded with `powercut record` (QEMU's own
               crash states)

For every image, each side gets its own copy:
  verdict      `qemu-io -f vhdx -c quit` vs `pcqemu replay` (read-write open:
               a pending log is replayed), and `qemu-io -r` vs `pcqemu open
               --rdonly` on the original: both open, or both refuse with the
               same message;
  file         after the read-write open the two files are equal: same size,
               same bytes everywhere but the header copies (compared field by
               field without the GUIDs and checksum, which hold each side's
               random or seeded GUIDs) and the LogGuid/checksum of log entry
               headers;
  virtual      `qemu-img convert -O raw` vs `pcqemu export`: equal bytes;
  check        `qemu-img check` vs `pcqemu check`: both clean or both not.
For the write sessions, also:
  ops          the writes, flushes and truncates of `qemu-io -t writeback -c
               ...` (recorded by record/libpcrecord.so) and of `pcqemu
               session` with the same commands (--trace-ops): the same
               sequence of (kind, offset, length).

Usage: agree.py --build DIR [--quick] [--jobs N] [--json OUT] [--keep DIR] [--bench]
  --quick   fewer images (the asan preset)
  --bench   also time in-process open+replay+close (pcqemu bench) against
            qemu-io processes on the same images (figures in the JSON)
Exit status: 0 agree; 1 a disagreement (listed); 2 infrastructure error;
77 skipped (qemu-img/qemu-io not installed, or the QEMU subject not built).
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
SKIP = 77
MiB = 1 << 20
# glibc fills every allocation with MALLOC_PERTURB_ ^ 0xFF: 0xA5, the byte
# the shim fills new buffers with (qemu/shim/include/qemu/memalign.h), so
# bytes QEMU writes without initializing them (docs/qemu-findings.md) are
# equal on both sides instead of whatever the heap held.
QEMU_ENV = dict(os.environ, MALLOC_PERTURB_=str(0xA5 ^ 0xFF))


class Infra(Exception):
    pass


def run(cmd, env=None, timeout=120):
    try:
        return subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Infra(f"timed out: {' '.join(map(str, cmd))}")


def must(cmd, env=None):
    cp = run(cmd, env)
    if cp.returncode != 0:
        raise Infra(f"{' '.join(map(str, cmd))} failed ({cp.returncode}): "
                    f"{(cp.stderr or cp.stdout).decode(errors='replace').strip()[-500:]}")
    return cp


def text(cp):
    return (cp.stdout + cp.stderr).decode(errors="replace")


def copy(src, dst):
    must(["cp", "--sparse=always", src, dst])


# ---- file comparison ----------------------------------------------------------------------
HEADER_SLOTS = (64 * 1024, 128 * 1024)


def header_fields(path, off):
    """The header copy at off without its checksum and GUIDs (None if unreadable)."""
    with open(path, "rb") as f:
        f.seek(off)
        h = f.read(4096)
    if len(h) < 80:
        return None
    sig, _crc, seq = struct.unpack_from("<4sIQ", h, 0)
    log_guid = h[48:64]
    log_version, version, log_length, log_offset = struct.unpack_from("<HHIQ", h, 64)
    return {"signature": sig, "sequence": seq, "log_guid_zero": log_guid == bytes(16), "log_version": log_version,
            "version": version, "log_length": log_length, "log_offset": log_offset, "rest": h[80:]}


def data_ranges(path):
    out, size = [], os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        off = 0
        while off < size:
            try:
                a = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            b = os.lseek(fd, a, os.SEEK_HOLE)
            out.append((a, b))
            off = b
    except OSError:
        return [(0, size)]
    finally:
        os.close(fd)
    return out


def masked(buf, base):
    """buf (bytes read at file offset base, a 4 KiB multiple) with the header
    slots and the LogGuid and checksum of log entry headers zeroed."""
    b = bytearray(buf)
    for i in range(0, len(b), 4096):
        off = base + i
        if off in HEADER_SLOTS:
            b[i:i + 4096] = bytes(min(4096, len(b) - i))
        elif b[i:i + 4] == b"loge":
            b[i + 4:i + 8] = bytes(4)
            b[i + 32:i + 48] = bytes(16)
    return bytes(b)


def first_file_difference(pa, pb, mask=True):
    """None when equal (with the masks), else a description."""
    sa, sb = os.path.getsize(pa), os.path.getsize(pb)
    if sa != sb:
        return f"file sizes differ: qemu-io {sa}, in process {sb}"
    if mask:
        for off in HEADER_SLOTS:
            ha, hb = header_fields(pa, off), header_fields(pb, off)
            if ha != hb:
                keys = [k for k in (ha or {}) if hb and ha[k] != hb[k]] if ha and hb else ["all"]
                return f"header copy at {off // 1024} KiB differs in {', '.join(keys)}"
    ranges = sorted(data_ranges(pa) + data_ranges(pb))
    merged = []
    for a, b in ranges:
        a -= a % 4096
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    with open(pa, "rb") as fa, open(pb, "rb") as fb:
        for a, b in merged:
            off = a
            while off < b:
                n = min(1 << 20, b - off)
                fa.seek(off)
                fb.seek(off)
                x, y = fa.read(n), fb.read(n)
                if x != y and (not mask or masked(x, off) != masked(y, off)):
                    xm, ym = (masked(x, off), masked(y, off)) if mask else (x, y)
                    k = next(i for i in range(min(len(xm), len(ym))) if xm[i] != ym[i])
                    return f"byte {off + k} differs: qemu-io {xm[k]:#04x}, in process {ym[k]:#04x}"
                off += n
    return None


# ---- the two sides -------------------------------------------------------------------------
class Sides:
    def __init__(self, build):
        self.build = build
        self.pcqemu = os.path.join(build, "qemu", "pcqemu")
        self.vhdxtool = os.path.join(build, "engine", "vhdxtool")

    def qemu_open(self, img, rdonly=False):
        cp = run(["qemu-io"] + (["-r"] if rdonly else []) + ["-f", "vhdx", "-c", "quit", img], env=QEMU_ENV)
        lines = [x for x in text(cp).strip().splitlines() if x.startswith("qemu-io: ")]
        msg = re.sub(r"^qemu-io: can't open device [^:]*: ", "", lines[-1]) if lines else ""
        return cp.returncode == 0, normalize(msg, img)

    def ours_open(self, img, rdonly=False):
        cp = run([self.pcqemu] + (["open", "--rdonly", img] if rdonly else ["replay", img]))
        if cp.returncode == 2:
            raise Infra(f"pcqemu failed on {img}: {text(cp).strip()}")
        m = re.search(r"QEMU: (.*?)(?: \(hint:.*)? \[E[A-Z]+ -?\d+\]", text(cp), re.S)
        return cp.returncode == 0, normalize(m.group(1) if m else "", img)

    def qemu_check(self, img):
        cp = run(["qemu-img", "check", "-f", "vhdx", img], env=QEMU_ENV)
        return cp.returncode == 0, text(cp).strip()

    def ours_check(self, img):
        cp = run([self.pcqemu, "check", img])
        if cp.returncode == 2:
            raise Infra(f"pcqemu check failed on {img}: {text(cp).strip()}")
        return cp.returncode == 0, text(cp).strip()


def normalize(msg, img):
    """QEMU's message with the image's name replaced by 'image' (pcqemu's name for it)."""
    msg = msg.replace(img, "image").replace(os.path.basename(img), "image")
    msg = re.sub(r"'[^']*(q|p)\.vhdx'", "'image'", msg)
    return msg.split(" (hint:")[0].split(" [reported: ")[0].strip()


def compare(sides, img, work, rec):
    """Fills rec with the aspects' results; returns the list of disagreements."""
    bad = []
    q, p = os.path.join(work, "q.vhdx"), os.path.join(work, "p.vhdx")
    # read-only verdict on the original
    qo, qm = sides.qemu_open(img, rdonly=True)
    po, pm = sides.ours_open(img, rdonly=True)
    rec["rdonly"] = {"qemu": "opened" if qo else f"refused: {qm}", "ours": "opened" if po else f"refused: {pm}"}
    if qo != po or (not qo and qm != pm):
        bad.append(f"read-only verdict: qemu-io -r {rec['rdonly']['qemu']!r}, pcqemu {rec['rdonly']['ours']!r}")
    copy(img, q)
    copy(img, p)
    qo, qm = sides.qemu_open(q)
    po, pm = sides.ours_open(p)
    rec["verdict"] = {"qemu": "opened" if qo else f"refused: {qm}", "ours": "opened" if po else f"refused: {pm}"}
    if qo != po or (not qo and qm != pm):
        bad.append(f"verdict: qemu-io {rec['verdict']['qemu']!r}, pcqemu {rec['verdict']['ours']!r}")
        return bad
    d = first_file_difference(q, p)
    rec["file"] = d or "equal"
    if d:
        bad.append(f"file after the read-write open: {d}")
    if not qo:
        return bad
    qr, pr = os.path.join(work, "q.raw"), os.path.join(work, "p.raw")
    cq = run(["qemu-img", "convert", "-f", "vhdx", "-O", "raw", q, qr], env=QEMU_ENV)
    cp = run([sides.pcqemu, "export", p, pr])
    if (cq.returncode == 0) != (cp.returncode == 0):
        bad.append(f"export: qemu-img convert {cq.returncode} ({text(cq).strip()[-200:]}), pcqemu export "
                   f"{cp.returncode} ({text(cp).strip()[-200:]})")
    elif cq.returncode == 0:
        d = first_file_difference(qr, pr, mask=False)
        rec["virtual"] = d or "equal"
        if d:
            bad.append(f"virtual disk: {d}")
    for f in (qr, pr):
        if os.path.exists(f):
            os.unlink(f)
    (qc, qt), (pc, pt) = sides.qemu_check(q), sides.ours_check(p)
    rec["check"] = {"qemu": "clean" if qc else qt[-200:], "ours": "clean" if pc else pt[-200:]}
    if qc != pc:
        bad.append(f"check: qemu-img check {rec['check']['qemu']!r}, pcqemu check {rec['check']['ours']!r}")
    return bad


# ---- images ----------------------------------------------------------------------------------
QEMU_IMAGES = [  # name, size, -o options
    ("q-64m-b1m-l1m", 64 * MiB, "block_size=1M,log_size=1M"),
    ("q-100m-default", 100 * MiB, ""),
    ("q-32m-b2m-l2m-fixed", 32 * MiB, "block_size=2M,log_size=2M,subformat=fixed"),
    ("q-40m-b4m-nozero", 40 * MiB, "block_size=4M,block_state_zero=off"),
    ("q-odd-size", 50000000, "block_size=1M"),
    ("q-1g-b32m-l4m", 1024 * MiB, "block_size=32M,log_size=4M"),
]
VHDX_IMAGES = [  # name, create args
    ("v-64m-b1m", ["64M", "--block-size", "1M", "--log-size", "1M", "--physical-sector", "512"]),
    ("v-48m-b8m-l4m-p4k", ["48M", "--block-size", "8M", "--log-size", "4M", "--physical-sector", "4096"]),
    ("v-96m-b32m", ["96M", "--block-size", "32M"]),
    ("v-16m-l4k", ["16M", "--logical-sector", "4096", "--physical-sector", "4096"]),
]


def session_cmds(size):
    """qemu-io commands for a disk of size bytes: aligned, unaligned, across
    blocks, rewrites, reads that verify."""
    s = size
    return [f"write -P 0x11 0 65536", f"write -P 0x22 {MiB + 512} 100000", "flush",
            f"write -P 0x33 {3 * MiB - 1000} 5000", f"write -P 0x44 0 512", f"write -P 0x55 {s // 2} {MiB}",
            f"read -P 0x44 0 512", f"read -P 0x55 {s // 2} {MiB}", "flush",
            f"write -P 0x66 {s - 4096} 4096", f"write -P 0x77 {s // 3 + 7} 1"]


def make_images(sides, build, work, quick, notes):
    """[(source, name, path)]; session images are written by both sides and
    compared on the way (their results in `sessions`)."""
    imgs, sessions = [], []
    d = os.path.join(work, "images")
    os.makedirs(d)
    for name, size, opts in (QEMU_IMAGES[:3] if quick else QEMU_IMAGES):
        path = os.path.join(d, name + ".vhdx")
        must(["qemu-img", "create", "-q", "-f", "vhdx"] + (["-o", opts] if opts else []) + [path, str(size)])
        imgs.append(("qemu-img", name, path))
        sessions.append(("qemu-img", name, path))
    for name, args in (VHDX_IMAGES[:2] if quick else VHDX_IMAGES):
        path = os.path.join(d, name + ".vhdx")
        must([sides.vhdxtool, "create", path] + args + ["--seed", "7"])
        data = os.path.join(work, "data.bin")
        with open(data, "wb") as f:
            f.write(bytes(range(256)) * 300)
        for off in ("0", "1M", "5M"):
            must([sides.vhdxtool, "write", path, off, data])
        imgs.append(("vhdxtool", name, path))
        sessions.append(("vhdxtool", name, path))
    # inputs of the image-building fuzz targets, as images
    n_fuzz = 0
    for target in ("fuzz_log_replay", "fuzz_image_open"):
        binary = os.path.join(build, "fuzz", target)
        cdir = os.path.join(SOURCE, "corpus", target)
        if not os.path.exists(binary):
            notes.append(f"{target} not built: its corpus is not in the set")
            continue
        inputs = sorted(os.listdir(cdir)) if os.path.isdir(cdir) else []
        regs = os.path.join(SOURCE, "corpus", "regressions")
        for r in sorted(os.listdir(regs)) if os.path.isdir(regs) else []:
            try:
                with open(os.path.join(regs, r, "meta.json")) as f:
                    meta = json.load(f)
            except (OSError, ValueError):
                continue
            if meta.get("target") == target:
                inputs += [os.path.join(regs, r, x) for x in sorted(os.listdir(os.path.join(regs, r)))
                           if x != "meta.json"]
        if quick:
            inputs = inputs[::3]
        for i, inp in enumerate(inputs):
            inp = inp if os.path.isabs(inp) else os.path.join(cdir, inp)
            out = os.path.join(d, f"{target}-{i:03d}.vhdx")
            env = dict(os.environ, POWERCUT_FUZZ_EXPORT=out)
            cp = run([binary, inp], env=env)
            if cp.returncode == 0 and os.path.exists(out):
                imgs.append(("fuzz", f"{target}/{os.path.basename(inp)}", out))
                n_fuzz += 1
    # crash states: the project's engine, and a qemu-io session
    pcsweep = os.path.join(build, "harness", "pcsweep")
    trace = os.path.join(work, "engine.pctrace")
    if os.path.exists(pcsweep):
        must([pcsweep, "record", trace, "--scenario", "batch", "--physical-sector", "512"])
        ex = os.path.join(work, "crash-engine")
        must([pcsweep, "export", "--trace", trace, "--out", ex, "--max-states", "10" if quick else "30",
              "--shard", "0/15"])
        for f in sorted(os.listdir(ex)):
            if f.endswith(".vhdx"):
                imgs.append(("crash:libvhdx", f, os.path.join(ex, f)))
        qt = record_qemu_session(build, work)
        if qt:
            ex = os.path.join(work, "crash-qemu")
            must([pcsweep, "export", "--trace", qt, "--out", ex, "--max-states", "10" if quick else "30",
                  "--shard", "0/7"])
            for f in sorted(os.listdir(ex)):
                if f.endswith(".vhdx"):
                    imgs.append(("crash:qemu-io", f, os.path.join(ex, f)))
        else:
            notes.append("the recorder is not built: no QEMU crash states")
    else:
        notes.append("pcsweep not built: no crash states")
    return imgs, sessions


def sanitized(build):
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            return bool(re.search(r"^POWERCUT_SANITIZE:STRING=\S", f.read(), re.M))
    except OSError:
        return False


def recorder(build):
    """(pcrecord-pack, libpcrecord.so) able to record qemu-io.  A sanitizer
    build's preload cannot go into an uninstrumented qemu-io: the default
    build's is used then, when it exists."""
    for b in ([build] if not sanitized(build) else []) + [os.path.join(os.path.dirname(build), "default")]:
        pack = os.path.join(b, "record", "pcrecord-pack")
        so = os.path.join(b, "record", "libpcrecord.so")
        if os.path.exists(pack) and os.path.exists(so) and not sanitized(b):
            return pack, so
    return None


def record(build, img, out, cmd):
    """cmd run under the recorder; the trace's (kind, offset, length) list."""
    sys.path.insert(0, os.path.join(SOURCE, "scripts"))
    from pclib import record as pcrecord
    from pclib.extsweep import read_trace
    r = recorder(build)
    tool = {"pcrecord-pack": r[0]}
    rec_dir = os.path.dirname(r[0])
    saved = dict(os.environ)
    os.environ.update(QEMU_ENV)  # record() passes its own environment on
    try:
        status, info = pcrecord.record(lambda n: tool.get(n, os.path.join(rec_dir, n)), img, out, cmd,
                                       allow_fail=True, quiet=True)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if status != 0 or info["pack_status"] != 0:
        raise Infra(f"recording {cmd} failed: {info}")
    # the trace as the build under test reads it (`pcsweep info --json --ops`)
    ops = read_trace(out, pcsweep=os.path.join(build, "harness", "pcsweep"))["ops"]
    return [(k, o, n) if k != "F" else ("F", 0, 0) for k, o, n, _ in ops if k in "WFT"]


def record_qemu_session(build, work):
    if not recorder(build):
        return None
    img = os.path.join(work, "qemu-session.vhdx")
    must(["qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M,log_size=1M", img, str(64 * MiB)])
    out = os.path.join(work, "qemu-session.pctrace")
    cmd = ["qemu-io", "-t", "writeback", "-f", "vhdx"]
    for c in session_cmds(64 * MiB):
        cmd += ["-c", c]
    record(build, img, out, cmd + [img])
    return out


def run_session(sides, build, work, src, name, path):
    """The same qemu-io commands on two copies; ops, file and disk compared."""
    if not sides.qemu_open(path, rdonly=True)[0]:
        return {"source": src, "image": name, "skipped": "QEMU refuses the image"}, []
    cmds = session_cmds(sizes_of(path))
    q, p = os.path.join(work, "sq.vhdx"), os.path.join(work, "sp.vhdx")
    copy(path, q)
    copy(path, p)
    rec = {"source": src, "image": name, "commands": cmds}
    bad = []
    qio = ["qemu-io", "-t", "writeback", "-f", "vhdx"] + [x for c in cmds for x in ("-c", c)] + [q]
    if recorder(build):
        qops = record(build, q, os.path.join(work, "s.pctrace"), qio)
    else:
        must(qio, env=QEMU_ENV)
        qops = None
    opsf = os.path.join(work, "ops.txt")
    cp = run([sides.pcqemu, "--trace-ops", opsf, "session", p] + cmds)
    rec["status"] = {"qemu": "ok", "ours": cp.returncode}
    if cp.returncode != 0:
        bad.append(f"pcqemu session failed ({cp.returncode}): {text(cp).strip()[-300:]}")
        return rec, bad
    pops = []
    with open(opsf) as f:
        for line in f:
            parts = line.split()
            pops.append(("W", int(parts[1]), int(parts[2])) if parts[0] == "W" else
                        ("T", int(parts[1]), 0) if parts[0] == "T" else ("F", 0, 0))
    if qops is not None:
        rec["ops"] = {"qemu": len(qops), "ours": len(pops)}
        if qops != pops:
            k = next((i for i in range(min(len(qops), len(pops))) if qops[i] != pops[i]), min(len(qops), len(pops)))
            bad.append(f"device operations differ at #{k}: qemu-io {qops[k] if k < len(qops) else 'end'}, "
                       f"pcqemu {pops[k] if k < len(pops) else 'end'} ({len(qops)} vs {len(pops)} ops)")
    d = first_file_difference(q, p)
    rec["file"] = d or "equal"
    if d:
        bad.append(f"file after the session: {d}")
    qr, pr = os.path.join(work, "sq.raw"), os.path.join(work, "sp.raw")
    must(["qemu-img", "convert", "-f", "vhdx", "-O", "raw", q, qr])
    must([sides.pcqemu, "export", p, pr])
    d = first_file_difference(qr, pr, mask=False)
    rec["virtual"] = d or "equal"
    if d:
        bad.append(f"virtual disk after the session: {d}")
    for f in (q, p, qr, pr):
        os.unlink(f)
    return rec, bad


def sizes_of(path):
    """Virtual size of an image (qemu-img info)."""
    cp = must(["qemu-img", "info", "--output=json", "-f", "vhdx", path])
    return json.loads(cp.stdout)["virtual-size"]


def bench(sides, imgs, work, seconds=3.0):
    """Opens (with replay) + closes per second: in process vs qemu-io processes."""
    paths = [p for _, _, p in imgs]
    cp = must([sides.pcqemu, "bench", "--seconds", str(seconds), "--json"] + paths)
    ours = json.loads(cp.stdout)
    scratch = os.path.join(work, "bench")
    os.makedirs(scratch)
    n, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        for i, p in enumerate(paths):
            c = os.path.join(scratch, f"{i}.vhdx")
            copy(p, c)  # a replay changes the file: each run on a fresh copy, as pcqemu bench does
            run(["qemu-io", "-f", "vhdx", "-c", "quit", c])
            n += 1
    dt = time.time() - t0
    shutil.rmtree(scratch, ignore_errors=True)
    qrate = n / dt
    return {"images": len(paths), "in_process_per_sec": ours["opens_per_sec"], "qemu_io_per_sec": round(qrate, 2),
            "ratio": round(ours["opens_per_sec"] / qrate, 1), "in_process": ours, "qemu_io_runs": n,
            "qemu_io_seconds": round(dt, 2)}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--keep")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--jobs", type=int, default=2, help="images compared in parallel (default 2)")
    a = ap.parse_args(argv)
    build = os.path.abspath(a.build)
    for t in ("qemu-img", "qemu-io"):
        if not shutil.which(t):
            print(f"SKIP: {t} is not installed (apt-get install qemu-utils)")
            return SKIP
    sides = Sides(build)
    if not os.path.exists(sides.pcqemu):
        print("SKIP: the QEMU subject is not built (qemu/fetch_source.py)")
        return SKIP
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    work = a.keep or tempfile.mkdtemp(prefix="pc-agree-", dir=base)
    os.makedirs(work, exist_ok=True)
    t0 = time.time()
    notes, results, failures = [], [], []
    try:
        imgs, sessions = make_images(sides, build, work, a.quick, notes)
        for src, name, path in sessions:
            rec, bad = run_session(sides, build, work, src, name, path)
            rec["kind"] = "session"
            rec["agree"] = not bad
            results.append(rec)
            failures += [f"session on {name}: {b}" for b in bad]
        def one(i):
            src, name, path = imgs[i]
            w = os.path.join(work, f"cmp{i}")
            os.makedirs(w, exist_ok=True)
            rec = {"kind": "image", "source": src, "image": name}
            bad = compare(sides, path, w, rec)
            rec["agree"] = not bad
            shutil.rmtree(w, ignore_errors=True)
            return rec, [f"{src} {name}: {b}" for b in bad]
        with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as ex:
            for rec, bad in ex.map(one, range(len(imgs))):
                results.append(rec)
                failures += bad
        figures = bench(sides, imgs, work) if a.bench else None
    except Infra as e:
        print(f"agree.py: {e}", file=sys.stderr)
        return 2
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    by = {}
    for r in results:
        k = (r["kind"], r["source"])
        by.setdefault(k, [0, 0])
        by[k][0] += 1
        by[k][1] += r["agree"]
    qemu_v = subprocess.run(["qemu-img", "--version"], stdout=subprocess.PIPE, text=True).stdout.splitlines()[0]
    print(f"agree.py: {qemu_v}; in process: {text(run([sides.pcqemu, 'version'])).strip()}")
    for (kind, src), (n, ok) in sorted(by.items()):
        print(f"  {kind:8s} {src:14s} {ok:4d}/{n:<4d} agree")
    verdicts = {}
    for r in results:
        if r["kind"] == "image":
            v = r["verdict"]["qemu"].split(":")[0]
            verdicts[v] = verdicts.get(v, 0) + 1
    print(f"  read-write verdicts (qemu-io): {verdicts}; {time.time() - t0:.1f} s")
    for n in notes:
        print(f"  note: {n}")
    if figures:
        print(f"  speed: in process {figures['in_process_per_sec']:.0f} opens(+replay)+closes/s, qemu-io "
              f"{figures['qemu_io_per_sec']:.1f}/s: {figures['ratio']:.0f}x")
    for f in failures:
        print(f"DISAGREE: {f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"qemu": qemu_v, "results": results, "failures": failures, "notes": notes,
                       "bench": figures, "seconds": round(time.time() - t0, 1)}, f, indent=1, default=str)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
