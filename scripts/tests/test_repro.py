"""`powercut repro` on a plain VHDX image (pending log, damaged, clean), on a
fuzz input, on a stored regression, and on something it does not know."""
import hashlib
import json
import os
import subprocess
import sys

import pytest

from pclib.common import tool

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POWERCUT = os.path.join(ROOT, "scripts", "powercut")


def powercut(*args, timeout=600):
    return subprocess.run([sys.executable, POWERCUT] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


def sha(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Crash images of a real workload: one with a pending log, one without."""
    d = tmp_path_factory.mktemp("imgs")
    pcsweep, vt = tool("default", "pcsweep"), tool("default", "vhdxtool")
    if not os.path.exists(pcsweep):
        pytest.fail("pcsweep is not built (scripts/powercut build)")
    subprocess.run([pcsweep, "record", "--scenario", "mixed", d / "t.pctrace"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([pcsweep, "export", "--trace", d / "t.pctrace", "--models", "prefix", "--max-states", "60",
                    "--out", d / "x"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pending = clean = None
    for line in open(d / "x" / "manifest.jsonl"):
        img = json.loads(line)["image"]
        img = img if os.path.isabs(img) else os.path.join(d, "x", os.path.basename(img))
        info = json.loads(subprocess.run([vt, "info", img, "--json"], stdout=subprocess.PIPE, text=True).stdout)
        if info["log"]["pending"] and not pending:
            pending = img
        elif not info["log"]["pending"] and info["blocks_allocated"] and not clean:
            clean = img
    assert pending and clean
    return {"pending": pending, "clean": clean, "dir": d}


def test_image_with_pending_log_recovers_on_a_copy(images, tmp_path):
    img = images["pending"]
    before = sha(img)
    cp = powercut("repro", img, "--json", tmp_path / "v.json")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    out = cp.stdout
    assert "vhdxtool dump-log --descriptors" in out and "(replay pending)" in out
    assert "data file offset" in out  # the entry's updates
    assert "== sectors the replay changed ==" in out and "written by entry seq" in out
    assert "verdict:   RECOVERED" in out
    assert sha(img) == before
    v = json.loads((tmp_path / "v.json").read_text())
    assert v["verdict"] == "RECOVERED" and v["pending"] and v["changed"]
    assert any(c["entry_sequence"] for c in v["changed"])


def test_clean_image(images):
    cp = powercut("repro", images["clean"])
    assert cp.returncode == 0 and "verdict:   CLEAN" in cp.stdout, cp.stdout + cp.stderr


def test_damaged_image_is_refused_and_left_alone(images, tmp_path):
    bad = tmp_path / "bad.vhdx"
    data = bytearray(open(images["pending"], "rb").read())
    for off in (64 << 10, 128 << 10):  # both headers
        data[off:off + 4] = b"XXXX"
    bad.write_bytes(bytes(data))
    before = sha(bad)
    cp = powercut("repro", bad)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert "verdict:   REFUSED" in cp.stdout and "header" in cp.stdout
    assert sha(bad) == before


def test_fuzz_input_that_does_not_crash(tmp_path):
    f = tmp_path / "input"
    f.write_bytes(b"\x00" * 64)
    cp = powercut("repro", f, "--target", "log_parse")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "does not reproduce" in cp.stdout


def test_stored_regression_directory():
    d = os.path.join(ROOT, "corpus", "regressions", "fuzz-kd1-zero-descriptor-past-eof")
    cp = powercut("repro", d)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "regression fuzz-kd1-zero-descriptor-past-eof" in cp.stdout and "status fixed" in cp.stdout


def test_unknown_artifact_is_a_usage_error(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    cp = powercut("repro", f)
    assert cp.returncode == 2 and "not an artifact this build knows" in cp.stderr
    cp = powercut("repro", tmp_path / "missing")
    assert cp.returncode == 2 and "no such file" in cp.stderr
    cp = powercut("repro", f, "--target", "nosuch")
    assert cp.returncode == 2 and "unknown fuzz target" in cp.stderr
