"""`powercut faults`: the engine fault sweep through the driver (JSON, JUnit,
reproducers, `powercut repro` dispatch), usage errors, and --exec on qemu-io.
Skipped when libfiu (libfiu-dev, fiu-utils) is not installed."""
import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
POWERCUT = os.path.join(ROOT, "scripts", "powercut")
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from pclib import faults, registry  # noqa: E402

pytestmark = pytest.mark.skipif(not faults.fiu_available() or not shutil.which("fiu-run"),
                                reason="libfiu / fiu-run not installed")


def pc(*args, timeout=600):
    return subprocess.run([sys.executable, POWERCUT] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def fiu_tools():
    return faults.ensure_fiu_tools("fiu", quiet=True)


def test_sweep_json_junit_and_kept_repro(fiu_tools, tmp_path):
    out = tmp_path / "run"
    cp = pc("faults", "--scenario", "overwrite", "--ops", "6", "--stride", "3", "--out", out,
            "--json", tmp_path / "s.json", "--junit", tmp_path / "s.xml", "--keep-repro", "1",
            "--replay-states", "1")
    assert cp.returncode == 0, cp.stderr[-2000:]
    s = json.loads((tmp_path / "s.json").read_text())
    for key in ("injected", "violations", "kinds", "modes", "phases", "points_reached", "points_catalogue",
                "faults_per_sec", "failures"):
        assert key in s
    assert s["violations"] == 0 and s["injected"] > 0
    kinds = registry.fault_kinds(fiu_tools("pcfaults"))
    assert set(s["kinds"]) == set(kinds)
    assert all(s["kinds"][k]["injected"] > 0 for k in kinds)
    assert "<testsuites" in (tmp_path / "s.xml").read_text()
    assert (out / "faults.json").exists() and (out / "junit.xml").exists()
    kept = sorted((out / "repro").glob("*.pctrace"))
    assert kept, "a passing reproducer was kept"
    assert faults.is_fault_repro(str(kept[0]))
    # `powercut repro` dispatches fault reproducers to pcfaults.
    rp = pc("repro", kept[0], "--json", tmp_path / "r.json")
    assert rp.returncode == 0, rp.stdout + rp.stderr
    assert "pcfaults" in rp.stderr and ("verdict" in rp.stdout or "live:" in rp.stdout)
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is True


def test_campaign_prints_and_repeats_its_seed(fiu_tools, tmp_path):
    a = pc("faults", "--campaign", "--runs", "6", "--campaign-seed", "4242", "--scenario", "reopen", "--ops", "6",
           "--out", tmp_path / "a")
    b = pc("faults", "--campaign", "--runs", "6", "--campaign-seed", "4242", "--scenario", "reopen", "--ops", "6",
           "--out", tmp_path / "b")
    assert a.returncode == 0 and b.returncode == 0, a.stderr[-2000:]
    assert "campaign seed 4242" in a.stderr
    ja = json.loads((tmp_path / "a" / "faults.json").read_text())
    jb = json.loads((tmp_path / "b" / "faults.json").read_text())
    assert ja["campaign_seed"] == 4242
    for k in ("injected", "injections", "plans", "crash_states"):
        assert ja[k] == jb[k], k


def test_points_catalogue(fiu_tools, tmp_path):
    cp = pc("faults", "--points", "--scenario", "reopen", "--ops", "20", "--json", tmp_path / "p.json",
            "--out", tmp_path / "p")
    assert cp.returncode == 0, cp.stderr[-2000:]
    p = json.loads((tmp_path / "p.json").read_text())
    assert p["points_catalogue"] == 6 and p["points_reached"] == 6
    catalogue = open(os.path.join(ROOT, "faults", "points.md")).read()
    for name in p["points"]:
        assert f"`{name}`" in catalogue


def test_usage_errors(fiu_tools, tmp_path):
    assert pc("faults", "--kinds", "bogus", "--out", tmp_path / "x").returncode == 2
    assert pc("faults", "--exec", "--", "true").returncode == 2               # no --image
    assert pc("faults", "--exec", "--image", tmp_path / "none.vhdx", "--", "true").returncode == 2
    assert pc("faults", "--", "true").returncode == 2                          # a program without --exec
    img = tmp_path / "i.vhdx"
    img.write_bytes(b"x")
    assert pc("faults", "--exec", "--image", img, "--kinds", "nope", "--", "true").returncode == 2
    assert pc("faults", "--exec", "--image", img, "--verify", "zz", "--", "true").returncode == 2
    bad = tmp_path / "bad.pctrace"
    bad.write_bytes(b"PCTRACE1" + b"\0" * 100)
    assert pc("repro", bad).returncode == 2


@pytest.mark.skipif(not shutil.which("qemu-io"), reason="qemu-io not installed")
def test_exec_qemu_io(fiu_tools, tmp_path):
    img = tmp_path / "q.vhdx"
    subprocess.run([fiu_tools("vhdxtool"), "create", img, "16M", "--block-size", "1M"], check=True,
                   stdout=subprocess.DEVNULL)
    out = tmp_path / "run"
    cp = pc("faults", "--exec", "--image", img, "--kinds", "flush,write", "--modes", "transient", "--max-faults",
            "12", "--verify", "0:1M:ab", "--out", out, "--", "qemu-io", "-f", "vhdx", "-c", "write -P 0xab 0 1M",
            "-c", "flush", img)
    assert cp.returncode in (0, 1), cp.stderr[-2000:]
    s = json.loads((out / "faults.json").read_text())
    assert s["injected"] > 0 and s["plans"] == 12
    assert "LD_PRELOAD=" in cp.stderr and "fiu_posix_preload.so" in cp.stderr   # the command is printed
    for f in s["failures"]:
        assert f["reproducer"] and os.path.exists(f["reproducer"])
    if s["failures"]:
        rp = pc("repro", s["failures"][0]["reproducer"])
        assert rp.returncode in (0, 1) and "verdict" in rp.stdout


@pytest.mark.skipif(not shutil.which("qemu-io"), reason="qemu-io not installed")
def test_exec_violations_are_grouped_by_signature(fiu_tools, tmp_path):
    # qemu-io under failed writes leaves images whose LogGuid names no valid
    # log sequence, plan after plan: one bug, one signature, one reproducer.
    img = tmp_path / "q.vhdx"
    subprocess.run([fiu_tools("vhdxtool"), "create", img, "16M", "--block-size", "1M"], check=True,
                   stdout=subprocess.DEVNULL)
    out = tmp_path / "run"
    cp = pc("faults", "--exec", "--image", img, "--kinds", "write", "--max-faults", "16", "--out", out,
            "--junit", tmp_path / "j.xml", "--", "qemu-io", "-f", "vhdx", "-c", "write -P 0xab 0 1M", "-c", "flush",
            img)
    assert cp.returncode == 1, cp.stdout + cp.stderr[-2000:]
    s = json.loads((out / "faults.json").read_text())
    assert s["violations"] >= 3
    by_sig = {g["signature"]: g for g in s["signatures"]}
    assert len(by_sig) < s["violations"]
    g = by_sig["image-invalid|write|VHDX_E_LOG_NO_SEQUENCE header.LogGuid"]
    assert g["count"] >= 2 and os.path.exists(g["reproducer"])
    assert sum(x["count"] for x in s["signatures"]) == s["violations"]
    assert len(os.listdir(out / "repro")) == len(s["signatures"])           # one reproducer per signature
    import xml.etree.ElementTree as ET
    failing = [c for c in ET.parse(tmp_path / "j.xml").getroot().iter("testcase") if c.find("failure") is not None]
    assert len(failing) == len(s["signatures"])


def test_sweep_says_how_many_planned_plans_ran_and_resumes(fiu_tools, tmp_path):
    a = tmp_path / "a"
    cp = pc("faults", "--scenario", "batch", "--max-faults", "40", "--out", a, "--junit", tmp_path / "a.xml")
    assert cp.returncode == 0, cp.stderr[-2000:]
    s = json.loads((a / "faults.json").read_text())
    assert not s["complete"] and s["coverage"]["done"] == 40
    planned = s["plans_planned"]
    assert planned > 40 and f"40 of {planned} plans" in cp.stdout and "INCOMPLETE" in cp.stdout
    assert f"40 of {planned} plans" in cp.stderr          # pcfaults' own summary line
    import xml.etree.ElementTree as ET
    case = ET.parse(tmp_path / "a.xml").getroot().find(".//testcase")
    assert case.get("name") == "planned plans" and case.find("skipped") is not None
    # resume where it stopped: the next 40 plans, not the first 40 again
    b = tmp_path / "b"
    cp = pc("faults", "--scenario", "batch", "--max-faults", "40", "--out", b, "--first-plan", s["next_plan"],
            "--require-complete")
    assert cp.returncode == 1, cp.stderr[-2000:]       # incomplete and --require-complete
    t = json.loads((b / "faults.json").read_text())
    assert t["first_plan"] == s["next_plan"] and t["next_plan"] > s["next_plan"]
    assert t["plans_planned"] == planned - s["next_plan"]


def test_unwritable_outputs_are_refused_before_the_work(fiu_tools, tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    for opt in ("--json", "--junit"):
        cp = pc("faults", "--scenario", "batch", "--max-faults", "5", opt, blocker / "x")
        assert cp.returncode == 2 and str(blocker) in cp.stderr and "Traceback" not in cp.stderr
        assert "pcfaults: subject" not in cp.stderr and "pcfaults: engine" not in cp.stderr


def test_damaged_exec_plan_is_a_usage_error(tmp_path):
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps({"kind": "powercut-fault-exec", "cmd": "not a list"}))
    cp = pc("repro", bad)
    assert cp.returncode == 2 and "damaged fault plan" in cp.stderr and "Traceback" not in cp.stderr
