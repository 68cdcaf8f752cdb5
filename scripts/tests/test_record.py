"""`powercut record`: any program's writes to an image become a harness trace.

A small Python program (pwrite, os.write at the file position, ftruncate,
fsync) and Debian's qemu-io are recorded; the traces must load in
`pcsweep info`, sweep with `pcsweep sweep --trace`, export, and re-run a
saved state with `pcsweep repro`.  A program that maps the file shared and
writable makes the recording incomplete (exit 2, said in the trace); a
failing command needs --allow-fail.  The tools come from the preset named by
POWERCUT_TEST_PRESET (default: default, which CI builds).
"""
import json
import os
import shutil
import subprocess

import pytest

from pclib.common import PYTHON, ROOT

PRESET = os.environ.get("POWERCUT_TEST_PRESET", "default")
POWERCUT = os.path.join(ROOT, "scripts", "powercut")
needs_qemu = pytest.mark.skipif(not shutil.which("qemu-img") or not shutil.which("qemu-io"),
                                reason="qemu-utils not installed")


@pytest.fixture(scope="session")
def rtools():
    from pclib.record import ensure_tools
    return ensure_tools(PRESET, quiet=True)


def powercut(*args, ok=None):
    cp = subprocess.run([PYTHON, POWERCUT] + [str(a) for a in args], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
    if ok is not None:
        assert cp.returncode == ok, f"status {cp.returncode}\n{cp.stdout}\n{cp.stderr}"
    return cp


def info(rtools, trace):
    cp = subprocess.run([rtools("pcsweep"), "info", str(trace)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True)
    assert cp.returncode == 0, cp.stderr
    meta = {}
    for line in cp.stdout.splitlines():
        if line.startswith("meta "):
            k, _, v = line[5:].partition(" = ")
            meta[k] = v
    return cp.stdout, meta


WRITER = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.pwrite(fd, b"A" * 4096, 8192)
os.lseek(fd, 100, 0)
os.write(fd, b"0123456789")
os.fsync(fd)
os.ftruncate(fd, 1 << 20)
os.pwrite(fd, b"B" * 512, 65536)
os.fdatasync(fd)
os.close(fd)
"""


def test_record_python_program(rtools, tmp_path):
    img = tmp_path / "f.bin"
    img.write_bytes(bytes(range(256)) * 64)
    trace = tmp_path / "f.pctrace"
    powercut("record", "--preset", PRESET, "--file", img, "--out", trace, "--", PYTHON, "-c", WRITER, img, ok=0)
    out, meta = info(rtools, trace)
    assert "flags 0x2" in out                      # TRACE_F_EXTERNAL
    assert "base: 16384 bytes" in out
    assert "writes 3," in out and "flushes 2;" in out and "truncates 1;" in out
    assert meta["record.complete"] == "yes"
    assert meta["record.verified"] == "yes"
    assert json.loads(meta["record.command"])[0] == PYTHON
    assert meta["record.exit_status"] == "0"


def test_record_usage_errors(tmp_path):
    assert powercut("record", "--preset", PRESET, "--file", tmp_path / "x", "--out", tmp_path / "t").returncode == 2
    assert powercut("record", "--preset", PRESET, "--out", tmp_path / "t", "--", "true").returncode == 2
    cp = powercut("record", "--preset", PRESET, "--file", tmp_path / "x", "--out", tmp_path / "t", "--",
                  "/nonexistent/program")
    assert cp.returncode == 2 and "cannot run" in cp.stderr


def test_record_failing_command_and_incomplete_recording(rtools, tmp_path):
    img = tmp_path / "g.bin"
    img.write_bytes(bytes(8192))
    trace = tmp_path / "g.pctrace"
    prog = "import os,sys; fd=os.open(sys.argv[1], os.O_RDWR); os.pwrite(fd, b'x'*512, 0); sys.exit(3)"
    cp = powercut("record", "--preset", PRESET, "--file", img, "--out", trace, "--", PYTHON, "-c", prog, img)
    assert cp.returncode == 2 and "command failed" in cp.stderr
    powercut("record", "--preset", PRESET, "--allow-fail", "--file", img, "--out", trace, "--", PYTHON, "-c", prog,
             img, ok=0)
    assert info(rtools, trace)[1]["record.exit_status"] == "3"
    # Writes through a shared writable mapping cannot be recorded.
    prog = ("import mmap,os,sys; fd=os.open(sys.argv[1], os.O_RDWR); os.pwrite(fd, b'y'*512, 512); "
            "m=mmap.mmap(fd, 8192); m[0:4]=b'MMAP'; m.flush(); m.close(); os.pwrite(fd, b'z'*512, 1024)")
    cp = powercut("record", "--preset", PRESET, "--file", img, "--out", trace, "--", PYTHON, "-c", prog, img)
    assert cp.returncode == 2 and "incomplete" in cp.stderr
    _, meta = info(rtools, trace)
    assert meta["record.complete"] == "no"
    assert "maps the file" in meta["record.stopped"]
    assert meta["record.verified"].startswith("no")


@needs_qemu
def test_record_qemu_io_trace_sweeps_and_repros(rtools, tmp_path):
    img = tmp_path / "q.vhdx"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M,log_size=1M", str(img), "8M"],
                   check=True)
    trace = tmp_path / "q.pctrace"
    powercut("record", "--preset", PRESET, "--file", img, "--out", trace, "--", "qemu-io", "-f", "vhdx",
             "-c", "write -P 0x11 0 64k", "-c", "flush", "-c", "write -P 0x22 1M 4k", img, ok=0)
    out, meta = info(rtools, trace)
    assert meta["record.verified"] == "yes" and meta["record.complete"] == "yes"
    assert int(meta["record.threads"]) >= 1
    # The in-process sweep judges every state with our engine (QEMU's header-before-entry
    # order leaves states our engine refuses: violations, status 1).
    rdir = tmp_path / "repro"
    cp = subprocess.run([rtools("pcsweep"), "sweep", "--trace", str(trace), "--repro-dir", str(rdir),
                         "--max-violations", "1", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True)
    assert cp.returncode in (0, 1), cp.stderr
    if cp.returncode == 1:
        repro = sorted(rdir.iterdir())[0]
        cp = subprocess.run([rtools("pcsweep"), "repro", str(repro)], stdout=subprocess.PIPE, text=True)
        # a crash state's violation, or the protocol judge's finding on the trace itself
        assert cp.returncode == 1 and ("VIOLATION" in cp.stdout or "protocol:header-before-entry" in cp.stdout)
    cp = subprocess.run([rtools("pcsweep"), "export", "--trace", str(trace), "--out", str(tmp_path / "ex"),
                         "--models", "prefix,drop", "--with-repro"], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
    assert cp.returncode == 0, cp.stderr
    rows = [json.loads(x) for x in (tmp_path / "ex" / "manifest.jsonl").read_text().splitlines()]
    assert rows and all(os.path.exists(r["image"]) for r in rows)
    cp = subprocess.run([rtools("pcsweep"), "repro", rows[-1]["reproducer"]], stdout=subprocess.PIPE, text=True)
    assert cp.returncode in (0, 1) and "state:" in cp.stdout
