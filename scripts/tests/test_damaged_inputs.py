"""The harness's own inputs, damaged: traces, reproducers (also with a
checksum made right, so the damage reaches the records behind it),
meta.json next to corpus inputs.  Every command that reads them says what
is wrong and exits 2 -- never a traceback (exit 1, "violations") and never
a crash.  (Campaign state and summaries: test_campaign.py; regression
meta.json: test_repro.py; the fuzz target fuzz_trace_load does the same
to the C loaders at scale.)"""
import json
import os
import shutil
import struct
import subprocess

import pytest

from pclib.common import PYTHON, ROOT
from forge import crc32c

POWERCUT = os.path.join(ROOT, "scripts", "powercut")
needs_qemu = pytest.mark.skipif(not shutil.which("qemu-img") or not shutil.which("qemu-io"),
                                reason="qemu-utils not installed")


def powercut(*args, timeout=600):
    return subprocess.run([PYTHON, POWERCUT] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


def with_trailer(data):
    """The trace bytes with the trailer's length and CRC-32C recomputed."""
    body = len(data) - 20
    return data[:body] + struct.pack("<QI", body, crc32c(data[:body])) + b"PCEND\0\0\0"


@pytest.fixture(scope="module")
def traces(tmp_path_factory, built):
    d = tmp_path_factory.mktemp("dmg")
    pcsweep = built("pcsweep")
    small = ["--scenario", "batch", "--ops", "4", "--virtual-size", "16M", "--block-size", "1M"]
    subprocess.run([pcsweep, "record"] + small + [d / "w.pctrace"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([pcsweep, "export", "--trace", d / "w.pctrace", "--models", "torn", "--only", "2",
                    "--with-repro", "--out", d / "x"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    [rep] = [d / "x" / n for n in os.listdir(d / "x") if n.endswith(".pctrace")]
    good = (d / "w.pctrace").read_bytes()
    repro = rep.read_bytes()
    bad = {}
    bad["truncated"] = good[:500]
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x40
    bad["bit-flipped"] = bytes(flipped)
    bad["magic-only"] = b"PCTRACE1" + b"\0" * 100
    # Behind a right checksum: an operation count far beyond the data, a
    # crash choice naming no model, a record of an unknown kind.
    n = bytearray(good)
    struct.pack_into("<Q", n, 32, 1 << 40)
    bad["huge-op-count"] = with_trailer(bytes(n))
    i = repro.rfind(b"torn")
    assert i > 0
    bad["unknown-model"] = with_trailer(repro[:i] + b"tXrn" + repro[i + 4:])
    cut = good[:len(good) * 2 // 3] + bytes(20)
    bad["cut-in-a-record"] = with_trailer(cut)
    paths = {}
    for name, data in bad.items():
        p = d / f"{name}.pctrace"
        p.write_bytes(data)
        paths[name] = p
    return paths


CASES = ["truncated", "bit-flipped", "magic-only", "huge-op-count", "unknown-model", "cut-in-a-record"]
TRACE_CASES = [c for c in CASES if c != "unknown-model"]  # the sweep reads no crash choice


@pytest.mark.parametrize("name", CASES)
def test_repro_of_a_damaged_trace(traces, name, tmp_path):
    cp = powercut("repro", traces[name], "--json", tmp_path / "v.json")
    assert cp.returncode == 2, (name, cp.stdout, cp.stderr)
    assert "Traceback" not in cp.stderr and str(traces[name]) in cp.stderr


@pytest.mark.parametrize("name", TRACE_CASES)
def test_sweep_of_a_damaged_trace(traces, name, tmp_path):
    cp = powercut("sweep", "--trace", traces[name], "--out", tmp_path / "o")
    assert cp.returncode == 2, (name, cp.stdout, cp.stderr)
    assert "Traceback" not in cp.stderr


@needs_qemu
@pytest.mark.parametrize("name", ["truncated", "huge-op-count", "cut-in-a-record"])
def test_external_sweep_and_diff_of_a_damaged_trace(traces, name, tmp_path):
    for cmd in (["sweep", "--trace", traces[name], "--checker", "vhdxtool", "--json", tmp_path / "e.json"],
                ["diff", traces[name], "--json", tmp_path / "d.json"]):
        cp = powercut(*cmd)
        assert cp.returncode == 2, (cmd, cp.stdout, cp.stderr)
        assert "Traceback" not in cp.stderr and str(traces[name]) in cp.stderr


@needs_qemu
def test_damaged_meta_json_next_to_corpus_inputs(tmp_path):
    d = tmp_path / "case"
    d.mkdir()
    (d / "input").write_bytes(b"\0" * 64)
    (d / "meta.json").write_text("{not json")
    cp = powercut("diff", d, "--json", tmp_path / "d.json")
    assert cp.returncode == 2 and "meta.json" in cp.stderr and "Traceback" not in cp.stderr


def test_unwritable_outputs_of_record_and_repro_are_refused_before_the_work(tmp_path, traces):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    marker = tmp_path / "ran"
    img = tmp_path / "i.img"
    img.write_bytes(b"\0" * 4096)
    cp = powercut("record", "--file", img, "--out", blocker / "t.pctrace", "--", "touch", marker)
    assert cp.returncode == 2 and str(blocker) in cp.stderr and "Traceback" not in cp.stderr
    assert not marker.exists()                                   # the program was not run
    for art in (traces["unknown-model"].parent / "w.pctrace",):
        cp = powercut("repro", art, "--json", blocker / "v.json")
        assert cp.returncode == 2 and str(blocker) in cp.stderr and "Traceback" not in cp.stderr
