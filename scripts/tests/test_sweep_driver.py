"""`powercut sweep` (in-process and with external checkers): honest
verdicts.  Arguments and outputs are checked before any work and before a
run directory exists; a sweep cut short says how much of its planned work
it did ("20 of 192 states") in the console, the JSON and the JUnit file;
violations are grouped by signature, one reproducer each.

The violating trace is a recorded qemu-io run: our engine refuses the crash
states QEMU's write order leaves between its header update and its first
log entry (docs/qemu-crash.md), so the in-process sweep finds violations
without a planted bug.
"""
import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from pclib.common import PYTHON, ROOT

POWERCUT = os.path.join(ROOT, "scripts", "powercut")
RUNS = os.path.join(ROOT, "reports", "runs")
needs_qemu = pytest.mark.skipif(not shutil.which("qemu-img") or not shutil.which("qemu-io"),
                                reason="qemu-utils not installed")


def powercut(*args, timeout=900):
    return subprocess.run([PYTHON, POWERCUT] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


def runs_listing():
    return set(os.listdir(RUNS)) if os.path.isdir(RUNS) else set()


@pytest.fixture(scope="module")
def qtrace(tmp_path_factory, built):
    from pclib.record import ensure_tools, record
    t = ensure_tools("default", quiet=True)
    d = tmp_path_factory.mktemp("qt")
    img = d / "q.vhdx"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M,log_size=1M", str(img), "4M"],
                   check=True)
    trace = d / "q.pctrace"
    status, _ = record(t, str(img), str(trace), ["qemu-io", "-f", "vhdx", "-c", "write -P 0x11 0 64k",
                                                 "-c", "flush", "-c", "write -P 0x22 1M 4k", str(img)], quiet=True)
    assert status == 0
    count = json.loads(subprocess.run([t("pcsweep"), "export", "--trace", str(trace), "--count"],
                                      stdout=subprocess.PIPE, text=True, check=True).stdout)["states"]
    return trace, count


@pytest.mark.parametrize("argv,msg", [
    (["--scenario", "bogus"], "unknown scenario"),
    (["--scenario", "fill,nope"], "unknown scenario"),
    (["--models", "prefix,bogus"], "unknown model"),
    (["--shard", "3/2"], "--shard takes K/N"),
    (["--shard", "x"], "--shard takes K/N"),
    (["--checker", "vhdxtool"], "give --trace FILE"),
    (["--jobs", "4"], "belongs to the external-checker sweep"),
])
def test_bad_arguments_refused_before_a_run_directory_exists(built, argv, msg):
    before = runs_listing()
    cp = powercut("sweep", *argv)
    assert cp.returncode == 2, cp.stdout + cp.stderr
    assert msg in cp.stderr
    assert "pcsweep: engine" not in cp.stderr          # no sweep ran
    assert runs_listing() == before                    # no (empty) run directory was left


def test_trace_that_is_a_directory(built, tmp_path):
    for extra in ([], ["--checker", "vhdxtool"]):
        cp = powercut("sweep", "--trace", tmp_path, *extra)
        assert cp.returncode == 2 and "is a directory" in cp.stderr, cp.stderr


def test_damaged_trace_is_a_usage_error(built, qtrace, tmp_path):
    trace, _ = qtrace
    bad = tmp_path / "cut.pctrace"
    bad.write_bytes(open(trace, "rb").read()[:500])
    for extra in ([], ["--checker", "vhdxtool"]):
        cp = powercut("sweep", "--trace", bad, "--out", tmp_path / "o", *extra)
        assert cp.returncode == 2, cp.stdout + cp.stderr
        assert "Traceback" not in cp.stderr and str(bad) in cp.stderr


@pytest.mark.parametrize("opt", ["--json", "--junit", "--out"])
def test_unwritable_output_is_refused_before_the_work(built, qtrace, tmp_path, opt):
    trace, _ = qtrace
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    target = blocker / "sub" / ("s.json" if opt != "--out" else "")
    cp = powercut("sweep", "--trace", trace, opt, target)
    assert cp.returncode == 2, cp.stdout + cp.stderr
    assert str(blocker) in cp.stderr and "Traceback" not in cp.stderr
    assert "pcsweep: engine" not in cp.stderr          # refused before the sweep


@needs_qemu
def test_violations_are_grouped_by_signature(qtrace, tmp_path):
    trace, _ = qtrace
    out = tmp_path / "run"
    # The protocol judge's finding on the trace itself (QEMU writes its header's LogGuid
    # before the first entry: protocol:header-before-entry, a known departure) is a signature
    # of its own; this test is about the crash states' violations, so that judge stays out.
    cp = powercut("sweep", "--trace", trace, "--out", out, "--junit", tmp_path / "j.xml",
                  "--judges", "oracle,reference,view,unwritten")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    s = json.loads((out / "sweep.json").read_text())
    assert s["violations"] > 10                         # many states trip the same bug
    assert len(s["signatures"]) == 1
    g = s["signatures"][0]
    assert g["count"] == s["violations"] and g["invariant"] == "ref:invalid-crash-state"
    assert g["structure"] == "-" and "no valid sequence" in g["examples"][0]["detail"] and g["model_class"] == "power"
    assert 1 <= len(g["examples"]) <= 5
    assert os.listdir(out / "repro") == [os.path.basename(g["reproducer"])]    # one reproducer, not one per state
    assert len(s["failures"]) == 1 and s["failures"][0]["count"] == g["count"]
    ju = ET.parse(tmp_path / "j.xml").getroot()
    failing = [c for c in ju.iter("testcase") if c.find("failure") is not None]
    assert len(failing) == 1 and len(failing[0].findall("failure")) == 1
    assert f"{g['count']} crash state(s)" in failing[0].find("failure").get("message")
    assert f"{g['count']}  ref:invalid-crash-state|power|" in cp.stdout


@needs_qemu
def test_a_truncated_sweep_says_how_much_it_did(qtrace, tmp_path):
    trace, planned = qtrace
    out = tmp_path / "run"
    # QEMU writes its header's LogGuid before the first entry (protocol:header-before-entry,
    # a known departure): this test is about truncation, so the protocol judge stays out.
    judges = ("--judges", "oracle,reference,view,unwritten")
    cp = powercut("sweep", "--trace", trace, "--max-states", 20, "--models", "prefix,drop,torn", "--out", out, *judges)
    assert cp.returncode in (0, 1), cp.stderr
    s = json.loads((out / "sweep.json").read_text())
    assert not s["complete"] and s["coverage"]["stopped_by"] == "--max-states"
    n = s["coverage"]["states_planned"]
    assert s["states"] == 20 and n > 20
    assert f"20 of {n} " in cp.stdout and "INCOMPLETE" in cp.stdout
    assert f"20 of {n} " in cp.stderr                    # pcsweep's own last line says it too
    case = ET.parse(out / "junit.xml").getroot().find(".//testcase")
    assert case.find("skipped") is not None and f"20 of {n}" in case.find("skipped").get("message")
    cp = powercut("sweep", "--trace", trace, "--max-states", 20, "--models", "prefix,drop,torn", "--out", out,
                  "--require-complete", *judges)
    s = json.loads((out / "sweep.json").read_text())
    assert cp.returncode == 1 and s["violations"] == 0, cp.stdout
    case = ET.parse(out / "junit.xml").getroot().find(".//testcase")
    assert case.find("failure") is not None and case.find("failure").get("type") == "incomplete"


@needs_qemu
def test_external_sweep_says_n_of_m_and_lists_the_failing_states(qtrace, tmp_path):
    trace, planned = qtrace
    cp = powercut("sweep", "--trace", trace, "--checker", "vhdxtool", "--max-states", 6, "--json", tmp_path / "a.json",
                  "--no-compare")
    assert cp.returncode in (0, 1), cp.stderr
    r = json.loads((tmp_path / "a.json").read_text())
    assert r["states"] == 6 and r["states_planned"] == planned and not r["complete"]
    assert f"6 of {planned} crash states" in cp.stderr and "INCOMPLETE" in cp.stderr
    cp = powercut("sweep", "--trace", trace, "--checker", "vhdxtool", "--max-states", 6, "--json", tmp_path / "a.json",
                  "--no-compare", "--require-complete")
    assert cp.returncode == 1
    # The whole trace: our engine refuses the states between QEMU's header
    # update and its first log entry -- grouped, listed, with images.
    cp = powercut("sweep", "--trace", trace, "--checker", "vhdxtool", "--json", tmp_path / "all.json",
                  "--no-compare", "--keep-failures", 2)
    assert cp.returncode == 1, cp.stderr
    r = json.loads((tmp_path / "all.json").read_text())
    assert r["complete"] and r["states"] == planned
    [g] = r["signatures"]
    assert g["signature"] == "vhdxtool|refused|power|VHDX_E_LOG_NO_SEQUENCE"
    assert g["count"] == r["violating_states"]["vhdxtool"] and len(g["images"]) == 2
    assert all(os.path.exists(p) for p in g["images"])
    first = g["states"][0]
    assert f"{first['index']} ({first['choice']})" in cp.stderr
    assert g["images"][0] in cp.stderr and "docs/qemu-crash.md" in cp.stderr


def test_sweep_help_lists_the_external_options():
    cp = powercut("sweep", "--help")
    for opt in ("--markdown", "--jobs", "--keep-failures", "--no-probe", "--timeout", "--require-complete",
                "--minimize-seconds", "--sweep-seed"):
        assert opt in cp.stdout, opt


@pytest.mark.parametrize("tool,src,preset", [("pcsweep", "harness/tools/pcsweep.c", "default"),
                                             ("pcfaults", "faults/tools/pcfaults.c", "fiu")])
def test_c_tools_help_lists_every_option(tool, src, preset):
    import re
    from pclib.common import tool as tool_path
    text = open(os.path.join(ROOT, src)).read()
    opts = set(re.findall(r'(?:OPT\(|strcmp\(a, )"(--[a-z0-9-]+)"', text)) - {"--help"}
    exe = tool_path(preset, tool)
    if not os.path.exists(exe):
        pytest.skip(f"{tool} is not built in preset {preset}")
    helptext = subprocess.run([exe, "--help"], stdout=subprocess.PIPE, text=True).stdout
    missing = sorted(o for o in opts if o not in helptext)
    assert not missing, missing


def test_a_finished_sweeps_results_are_never_lost(qtrace, tmp_path):
    """An output that passes the check but cannot be written at the end
    (here /dev/full: every write fails with ENOSPC) is saved to $TMPDIR,
    the message says where, and the exit status is 2, not 1."""
    trace, _ = qtrace
    env = dict(os.environ, TMPDIR=str(tmp_path))
    pcsweep = os.path.join(ROOT, "build", "default", "harness", "pcsweep")
    cp = subprocess.run([pcsweep, "sweep", "--trace", str(trace), "--quiet", "--json", "/dev/full"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert cp.returncode == 2, cp.stderr
    [saved] = [p for p in os.listdir(tmp_path) if p.startswith("pcsweep-") and p.endswith("-full")]
    assert f"--json /dev/full: cannot be written" in cp.stderr and saved in cp.stderr
    s = json.loads((tmp_path / saved).read_text())
    assert s["states"] > 0 and s["violations"] > 0
    # the driver: the same promise for its copies
    cp = subprocess.run([PYTHON, POWERCUT, "sweep", "--trace", str(trace), "--out", str(tmp_path / "run"),
                         "--json", "/dev/full"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert cp.returncode == 2 and "Traceback" not in cp.stderr, cp.stderr
    assert "--json /dev/full: cannot be written" in cp.stderr and "the results were saved to" in cp.stderr
    assert json.loads((tmp_path / "run" / "sweep.json").read_text())["violations"] > 0
