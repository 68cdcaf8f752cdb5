"""`powercut bench`: the section list, the coverage figures parsed from
llvm-cov's export, and the sweepcov section end to end (quick: a bounded
sweep with the coverage preset's pcsweep)."""
import json
import os
import shutil
import subprocess

import pytest

from pclib import bench
from pclib.common import PYTHON, ROOT

POWERCUT = os.path.join(ROOT, "scripts", "powercut")


def test_unknown_section_is_a_usage_error():
    cp = subprocess.run([PYTHON, POWERCUT, "bench", "--only", "nope"], capture_output=True, text=True)
    assert cp.returncode == 2 and "sweepcov" in cp.stderr


def test_coverage_figures_per_file_and_totals():
    def summary(lc, ln, bc, bn):
        return {"lines": {"covered": lc, "count": ln, "percent": 100.0 * lc / ln},
                "branches": {"covered": bc, "count": bn, "percent": 100.0 * bc / bn},
                "instantiations": {"covered": 1, "count": 1, "percent": 100.0}}
    export = {"data": [{"files": [
        {"filename": os.path.join(ROOT, "engine", "src", "vdisk.c"), "summary": summary(90, 100, 30, 40)},
        {"filename": os.path.join(ROOT, "engine", "src", "log_write.c"), "summary": summary(2, 3, 1, 3)}],
        "totals": summary(92, 103, 31, 43)}]}
    fig = bench.coverage_figures(export, ROOT)
    assert list(fig["files"]) == ["engine/src/log_write.c", "engine/src/vdisk.c"]
    assert fig["files"]["engine/src/log_write.c"]["lines"] == {"covered": 2, "count": 3, "percent": 66.67}
    assert fig["totals"]["branches"]["covered"] == 31 and "instantiations" not in fig["totals"]


@pytest.mark.skipif(not shutil.which("llvm-cov-14") or not shutil.which("llvm-profdata-14"),
                    reason="llvm-14 not installed")
def test_sweepcov_section_writes_coverage_and_speed(tmp_path, built):
    out = tmp_path / "bench.json"
    subprocess.run([PYTHON, POWERCUT, "bench", "--only", "sweepcov", "--quick", "--json", str(out)], check=True)
    c = json.loads(out.read_text())["sweepcov"]
    assert c["violations"] == 0 and c["states"] > 0 and os.path.exists(c["profdata"])
    assert set(c["totals"]) == {"lines", "branches", "regions", "functions"}
    assert all(p.startswith("engine/src/") and p.endswith(".c") for p in c["files"])
    w = c["files"]["engine/src/log_write.c"]
    assert 0 < w["lines"]["covered"] <= w["lines"]["count"]
    assert c["speed"]["states"] > 0 and c["speed"]["states_per_sec"] > 0


@pytest.mark.skipif(not shutil.which("qemu-io"), reason="qemu-utils not installed")
def test_extsweep_section_compares_the_qemu_paths(tmp_path, built):
    out = tmp_path / "bench.json"
    cp = subprocess.run([PYTHON, POWERCUT, "bench", "--only", "extsweep", "--quick", "--json", str(out)],
                        capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr[-2000:]
    e = json.loads(out.read_text())["extsweep"]
    assert [(r["mode"], r["jobs"]) for r in e["runs"]] == [("processes", 2), ("session", 1), ("session", 2)]
    assert all(r["states"] == 40 and r["states_per_sec"] > 0 for r in e["runs"])
    assert e["runs"][1]["qemu_mode"]["session_states"] > 0 and e["runs"][0]["qemu_mode"]["session_states"] == 0
    assert e["same_outcomes"] is True and set(e["speedup"]) == {"session-1j", "session-2j"}
    assert "--qemu-mode processes" in e["runs"][0]["command"]
