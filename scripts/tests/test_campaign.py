"""Campaign driver: argument handling, and the report written from canned data
(summary.json, junit.xml, index.html), loaded in headless Chromium."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import pytest

from pclib import campaign, report
from pclib.common import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POWERCUT = os.path.join(ROOT, "scripts", "powercut")


def test_parse_duration():
    assert campaign.parse_duration("90") == 90
    assert campaign.parse_duration("90s") == 90
    assert campaign.parse_duration("5m") == 300
    assert campaign.parse_duration("1h30m") == 5400
    assert campaign.parse_duration("2h") == 7200
    for bad in ("0", "-5", "5x", "", "m", "1.5h"):
        with pytest.raises(UsageError):
            campaign.parse_duration(bad)


def test_parse_split():
    assert campaign.parse_split(None) == {"sweep": 30, "faults": 15, "fuzz": 45, "diff": 5}
    assert campaign.parse_split("fuzz=90") == {"sweep": 0, "faults": 0, "fuzz": 90, "diff": 0}
    for bad in ("fuzz=96", "fuzz=0", "bogus=10", "sweep", "sweep=x"):
        with pytest.raises(UsageError):
            campaign.parse_split(bad)


@pytest.mark.parametrize("argv,msg", [
    (["--time", "0"], "must be positive"),
    (["--time", "soon"], "duration"),
    (["--jobs", "0"], "--jobs"),
    (["--split", "fuzz=200"], "--split"),
    (["--targets", "nosuch"], "unknown target"),
])
def test_bad_arguments_exit_2_before_building(argv, msg):
    cp = subprocess.run([sys.executable, POWERCUT, "campaign"] + argv, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True, timeout=60)
    assert cp.returncode == 2
    assert msg in cp.stderr
    assert "building" not in cp.stderr


def test_report_of_missing_summary_is_a_usage_error(tmp_path):
    cp = subprocess.run([sys.executable, POWERCUT, "report", str(tmp_path)], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True, timeout=60)
    assert cp.returncode == 2 and "not a campaign summary" in cp.stderr


def canned():
    series = []
    for t in range(0, 60, 5):
        series.append({"t": t, "method": "fuzz", "target": "fuzz_log_replay", "engine": "libfuzzer",
                       "execs": t * 1000, "coverage": 800 + t})
        series.append({"t": t, "method": "fuzz", "target": "fuzz_log_replay", "engine": "afl",
                       "execs": t * 400, "coverage": 1100 + 2 * t})
    series += [{"t": 10, "method": "sweep", "target": "all", "states": 150000, "violations": 0},
               {"t": 20, "method": "sweep", "target": "all", "states": 290000, "violations": 1}]
    return {
        "campaign": {"seed": 42, "started": "2026-11-22T01:00:00", "elapsed_s": 61.0, "budget_s": 60, "jobs": 2,
                     "partial": False, "command": "scripts/powercut campaign --time 60", "engine": "libvhdx test",
                     "state": {"sweep_seed": 3, "fault_seed": 2}},
        "methods": {
            "sweep": {"seconds": 20.0, "targets": {
                "fill": {"states": 150000, "execs": 120000, "failures": 0, "seconds": 10.0},
                "torn<&>": {"states": 140000, "execs": 100000, "failures": 1, "seconds": 10.0}}},
            "fuzz": {"seconds": 30.0, "targets": {
                "fuzz_log_replay": {"states": None, "execs": 79000, "coverage": 67.7, "failures": 0,
                                    "seconds": 30.0}}},
        },
        "coverage": {"lines": {"covered": 2336, "count": 3150, "percent": 74.2},
                     "regions": {"covered": 2039, "count": 2729, "percent": 74.7},
                     "functions": {"covered": 144, "count": 171, "percent": 84.2},
                     "html": "coverage/index.html",
                     "per_target": {"fuzz_log_replay": {"lines": {"covered": 2133, "count": 3150, "percent": 67.7}}}},
        "failures": [{"id": "abc123def456", "method": "sweep", "target": "torn<&>", "count": 3,
                      "what": "data:acked-data-lost: sector 7 <script>alert(1)</script>",
                      "command": "scripts/powercut repro corpus/regressions/abc123def456/x.pctrace"}],
        "series": series,
    }


def test_report_files(tmp_path):
    page = report.write_report(str(tmp_path), canned())
    s = json.loads((tmp_path / "summary.json").read_text())
    rows = {(r["method"], r["target"]): r for r in s["table"]}
    assert rows[("sweep", "fill")]["states"] == 150000
    assert rows[("fuzz", "fuzz_log_replay")]["execs"] == 79000
    assert rows[("fuzz", "fuzz_log_replay")]["coverage"] == 67.7
    assert [r["method"] for r in s["table"]] == ["sweep", "sweep", "fuzz"]  # method order, then target
    ju = ET.parse(tmp_path / "junit.xml").getroot()
    assert ju.get("tests") == "3" and ju.get("failures") == "1"
    failed = [c for c in ju.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["torn<&>"]
    assert "repro corpus/regressions/abc123def456" in failed[0].find("failure").text
    html = open(page).read()
    assert html.count("<tr") >= 3 + 1
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html  # escaped
    assert 'href="coverage/index.html"' in html
    # self-contained: no network references, plots embedded
    assert not re.search(r"(src|href)=\"https?:", html)
    assert html.count("data:image/png;base64,") == 3  # coverage, execs, sweep states


def test_report_command_regenerates(tmp_path):
    report.write_report(str(tmp_path), canned())
    os.remove(tmp_path / "index.html")
    cp = subprocess.run([sys.executable, POWERCUT, "report", str(tmp_path)], stdout=subprocess.PIPE, text=True,
                        timeout=120)
    assert cp.returncode == 0 and (tmp_path / "index.html").exists()


def chromium():
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("chromium is missing: scripts/powercut setup installs it")


def test_report_renders_in_headless_chromium(tmp_path):
    page = report.write_report(str(tmp_path), canned())
    with tempfile.TemporaryDirectory() as profile:
        cp = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                             "--disable-background-networking", "--disable-component-update", "--no-first-run",
                             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                             "--virtual-time-budget=5000", "--dump-dom", "file://" + page],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr[-2000:]
    dom = cp.stdout
    # the inline script ran to its end without an error and counted the rows
    assert 'data-rendered="3"' in dom, dom[:2000]
    assert "Uncaught" not in cp.stderr and "CONSOLE" not in cp.stderr, cp.stderr[-2000:]
    table = re.search(r'<table id="summary".*?</table>', dom, re.S).group(0)
    assert table.count("<tr") == 4 and "fuzz_log_replay" in table and "150,000" in table


def _campaign(tmp_path, *extra, timeout=600, bench=False):
    """A campaign process; without bench=True it runs with --no-bench (the
    bench step has its own tests below; the others need not pay for it)."""
    cmd = [sys.executable, POWERCUT, "campaign", "--jobs", "2", "--no-coverage", "--out", str(tmp_path / "c"),
           "--state", str(tmp_path / "state.json"), "--regressions", str(tmp_path / "reg")] + \
        ([] if bench else ["--no-bench"]) + list(extra)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_campaign_sweeps_faults_and_resumes(tmp_path):
    """A short real campaign (sweeps and fault sweeps; fuzzing has its own
    tests): it writes the report, stores its resume state, and the next
    campaign starts where that state says."""
    p = _campaign(tmp_path, "--time", "45", "--split", "sweep=40,faults=20", "--seed", "5")
    out, _ = p.communicate(timeout=900)
    assert p.returncode == 0, out[-3000:]
    s = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert s["campaign"]["seed"] == 5 and not s["campaign"]["partial"]
    assert s["methods"]["sweep"]["states"] > 1000
    assert s["methods"]["faults"]["faults"] > 100
    assert s["failures"] == []
    assert {r["method"] for r in s["table"]} == {"sweep", "faults"}
    assert ET.parse(tmp_path / "c" / "junit.xml").getroot().get("failures") == "0"
    assert out.rstrip().splitlines()[-1] == f"report: {tmp_path / 'c' / 'index.html'}"
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["sweep"]["workload_seed"] >= 1 and state["fault_campaign_seed"] >= 5
    # every phase says what it did of its planned work
    for m in ("sweep", "faults"):
        cov = s["methods"][m]["coverage"]
        assert cov["text"] and isinstance(cov["complete"], bool), cov
    assert "planned work done, per phase:" in out and "workload seed" in out
    assert "sweep seed" not in out.replace("sweep seed 1 (sampling)", "")   # one meaning only
    p = _campaign(tmp_path, "--time", "20", "--split", "sweep=50", "--seed", "6")
    out, _ = p.communicate(timeout=900)
    assert p.returncode == 0, out[-3000:]
    assert f"resuming at workload seed {state['sweep']['workload_seed']} of the sweep" in out


def test_campaign_ctrl_c_writes_a_partial_report(tmp_path):
    import signal
    import time
    p = _campaign(tmp_path, "--time", "300", "--split", "sweep=90", "--seed", "9")
    lines = []
    t0 = time.time()
    for line in p.stdout:  # wait until the clock started
        lines.append(line)
        if "resuming at" in line:
            break
        assert time.time() - t0 < 600, "".join(lines)
    time.sleep(5)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 130, "".join(lines) + out
    s = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert s["campaign"]["partial"] is True and s["campaign"]["elapsed_s"] < 120
    assert s["methods"]["sweep"]["states"] > 0
    assert "partial report" in (tmp_path / "c" / "index.html").read_text()


def test_campaign_fuzzes_with_both_engines_and_merges(tmp_path):
    """Fuzzing phase end to end on one target: libFuzzer and AFL++ side by
    side, figures over time, the merged corpus kept for the next run."""
    work = os.path.join(ROOT, "corpus", "fuzz_log_parse", ".work")
    p = _campaign(tmp_path, "--time", "70", "--split", "fuzz=60", "--targets", "log_parse", "--seed", "3")
    out, _ = p.communicate(timeout=1800)
    assert p.returncode == 0, out[-3000:]
    s = json.loads((tmp_path / "c" / "summary.json").read_text())
    t = s["methods"]["fuzz"]["targets"]["fuzz_log_parse"]
    assert set(t["engines"]) == {"libfuzzer", "afl"}, t
    assert t["engines"]["libfuzzer"]["execs"] > 0 and t["engines"]["afl"]["execs"] > 0
    assert t["corpus"] > 0 and os.path.isdir(work) and len(os.listdir(work)) == t["corpus"]
    engines = {x["engine"] for x in s["series"] if x["method"] == "fuzz"}
    assert engines == {"libfuzzer", "afl"}
    assert s["failures"] == []


def epochs_done(state):
    sc = state["sweep"]["scenarios"]
    return (state["sweep"]["workload_seed"], sum(1 for v in sc.values() if v.get("done")),
            sum(v.get("next_epoch", 0) for v in sc.values()))


def test_campaign_resumes_inside_a_workload_seed_and_reaches_every_scenario(tmp_path):
    """Short sweep phases share their time among the scenarios not finished
    and resume each at the epoch it stopped in: consecutive short campaigns
    make progress through one workload seed instead of starting it over,
    and later scenarios (mixed, wide, churn) are reached."""
    seen, visited = [], set()
    for i in range(2):
        p = _campaign(tmp_path, "--time", "25", "--split", "sweep=90", "--seed", str(20 + i))
        out, _ = p.communicate(timeout=900)
        assert p.returncode in (0, 1), out[-3000:]
        state = json.loads((tmp_path / "state.json").read_text())
        seen.append(epochs_done(state))
        s = json.loads((tmp_path / "c" / "summary.json").read_text())
        visited |= set(s["methods"]["sweep"]["targets"])
    scenarios = {x["name"] for x in json.loads(subprocess.run(
        [os.path.join(ROOT, "build", "default", "harness", "pcsweep"), "scenarios"], stdout=subprocess.PIPE).stdout)}
    assert visited == scenarios, sorted(scenarios - visited)           # mixed, wide, churn too
    assert seen[1] > seen[0], seen                                    # progress, not the same seed again
    cov = s["methods"]["sweep"]["coverage"]
    if not cov["complete"]:
        assert "not finished" in cov["text"] and "epochs" in cov["text"]
        ju = ET.parse(tmp_path / "c" / "junit.xml").getroot()
        case = [c for c in ju.iter("testcase") if c.get("classname") == "campaign.sweep"
                and c.get("name") == "planned work"][0]
        assert case.find("skipped") is not None
        assert "INCOMPLETE" in (tmp_path / "c" / "index.html").read_text()


def test_damaged_state_is_an_error_before_any_work(tmp_path):
    bad = tmp_path / "state.json"
    for text in ("{not json", "[1, 2]", json.dumps({"sweep": {"workload_seed": "x", "scenarios": {}}})):
        bad.write_text(text)
        cp = subprocess.run([sys.executable, POWERCUT, "campaign", "--time", "5", "--state", str(bad),
                             "--out", str(tmp_path / "c")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, timeout=60)
        assert cp.returncode == 2, cp.stderr
        assert "damaged campaign state" in cp.stderr and str(bad) in cp.stderr and "--fresh" in cp.stderr
        assert "building" not in cp.stderr and "Traceback" not in cp.stderr


def test_state_of_older_campaigns_is_taken_over(tmp_path):
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"sweep_seed": 4, "fault_seed": 2, "fault_campaign_seed": 77}))
    st = campaign.load_state(str(f))
    assert st["sweep"]["workload_seed"] == 4 and st["faults"]["workload_seed"] == 2
    assert st["fault_campaign_seed"] == 77 and st["sweep"]["scenarios"] == {}


def test_unwritable_out_is_an_error_before_any_work(tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    cp = subprocess.run([sys.executable, POWERCUT, "campaign", "--time", "5", "--out", str(blocker / "c"),
                         "--state", str(tmp_path / "s.json")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True, timeout=60)
    assert cp.returncode == 2 and str(blocker) in cp.stderr and "building" not in cp.stderr


def incomplete():
    d = canned()
    d["methods"]["sweep"]["coverage"] = {"complete": False, "done": 3, "planned": 8, "unit": "scenarios",
                                         "text": "workload seed 1 not finished: 3 of 8 scenarios complete"}
    d["methods"]["diff"] = {"seconds": 1.0, "images": 10, "planned": 450, "disagreements": 0, "classes": [],
                            "coverage": {"complete": False, "done": 10, "planned": 450, "unit": "images",
                                         "text": "10 of 450 images compared (2%)"},
                            "targets": {"corpora": {"states": 10, "complete": False,
                                                    "coverage_text": "10 of 450 images (2%)"}}}
    return d


def test_report_shows_incomplete_phases(tmp_path):
    page = report.write_report(str(tmp_path), incomplete())
    html = open(page).read()
    assert "INCOMPLETE" in html and "3 of 8 scenarios complete" in html
    assert "agree on every image" not in html
    assert "agree on the 10 images compared; 440 were not compared" in html
    ju = ET.parse(tmp_path / "junit.xml").getroot()
    planned = {c.get("classname"): c for c in ju.iter("testcase") if c.get("name") == "planned work"}
    assert planned["campaign.sweep"].find("skipped") is not None
    assert planned["campaign.diff"].find("skipped") is not None
    assert ju.get("skipped") == "3"     # sweep and diff planned work, the diff corpora case
    d = incomplete()
    d["campaign"]["require_complete"] = True
    report.write_report(str(tmp_path), d)
    ju = ET.parse(tmp_path / "junit.xml").getroot()
    planned = {c.get("classname"): c for c in ju.iter("testcase") if c.get("name") == "planned work"}
    assert planned["campaign.sweep"].find("failure").get("type") == "incomplete"


def test_partial_report_is_marked_partial(tmp_path):
    d = canned()
    d["campaign"]["partial"] = True
    page = report.write_report(str(tmp_path), d)
    ju = ET.parse(tmp_path / "junit.xml").getroot()
    assert "PARTIAL" in ju.get("name")
    for suite in ju.iter("testsuite"):
        assert "(partial)" in suite.get("name")
        assert suite.find("properties/property[@name='partial']").get("value") == "true"
    passing = [c for c in ju.iter("testcase") if c.find("failure") is None and c.find("skipped") is None]
    assert passing == []                 # nothing of an interrupted campaign reads as passed
    assert "partial report" in open(page).read()


def test_report_of_a_damaged_summary_is_a_usage_error(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"campaign": {}, "methods": {"sweep": 5}}))
    cp = subprocess.run([sys.executable, POWERCUT, "report", str(tmp_path)], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True, timeout=60)
    assert cp.returncode == 2 and "damaged campaign summary" in cp.stderr and "Traceback" not in cp.stderr


def test_run_of_30_seconds_keeps_its_budget_and_reports_every_phase(tmp_path):
    """The whole main job with a 30 s budget (builds before the clock):
    within 10% of it, and every phase says how much of its planned work it
    did, or why it did not run."""
    cmd = [sys.executable, POWERCUT, "run", "--time", "30s", "--jobs", "2", "--out", str(tmp_path / "c"),
           "--state", str(tmp_path / "state.json"), "--regressions", str(tmp_path / "reg")]
    cp = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800)
    assert cp.returncode in (0, 1), cp.stdout[-3000:]
    s = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert s["campaign"]["elapsed_s"] <= 33, (s["campaign"]["elapsed_s"], s["campaign"]["notes"])
    for m in ("sweep", "faults", "fuzz", "diff"):
        cov = s["methods"][m]["coverage"]
        assert cov["text"] and "planned" in cov and "complete" in cov, (m, cov)
        assert f"  {m:7s} " in cp.stdout


def test_report_has_a_section_per_subject(tmp_path):
    """campaign --subjects: each subject's methods ("sweep:qemu") sort with
    their phase, and the page has a section per subject with its known
    departures and the workloads it cannot run; a libvhdx-only campaign
    has no such section."""
    d = canned()
    page = report.write_report(str(tmp_path / "one"), d)
    assert "<h2>Subjects</h2>" not in open(page).read()
    d["campaign"]["subjects"] = ["libvhdx", "qemu"]
    d["methods"]["sweep:qemu"] = {
        "subject": "qemu", "seconds": 10.0, "violations": 0, "known": 1234,
        "known_departures": {"protocol:header-before-entry: Q1 (docs/qemu-findings.md)": 1200,
                             "open-refused: Q9 <x>": 34},
        "left_out": {"fill": "QEMU's vhdx driver has no discard"},
        "coverage": {"complete": True, "text": "workload seed 1 finished"},
        "targets": {"batch": {"states": 5000, "execs": 4000, "failures": 0, "seconds": 10.0}}}
    d["methods"]["faults:qemu"] = {"subject": "qemu", "seconds": 5.0, "faults": 777, "violations": 2, "known": 9,
                                   "known_departures": {"fault-not-reported: Q8": 9},
                                   "targets": {"eio": {"states": 10, "execs": 777, "failures": 2, "seconds": 5.0}}}
    page = report.write_report(str(tmp_path / "two"), d)
    h = open(page).read()
    sec = h[h.index("<h2>Subjects</h2>"):h.index("<h2>Summary</h2>")]
    assert 'id="subject-libvhdx"' in sec and 'id="subject-qemu"' in sec
    q = sec[sec.index('id="subject-qemu"'):]
    assert "sweep:qemu" in q and "faults:qemu" in q and "1,234" in q and "777" in q
    assert "Q1 (docs/qemu-findings.md): 1,200" in q and "Q9 &lt;x&gt;" in q and "Q8: 9" in q
    assert "fill: QEMU&#x27;s vhdx driver has no discard" in q
    s = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert [r["method"] for r in s["table"]] == ["sweep", "sweep", "sweep:qemu", "faults:qemu", "fuzz"]


def test_state_keeps_each_subjects_resume_point(tmp_path):
    st = campaign.new_state()
    st["sweep:qemu"] = {"workload_seed": 3, "scenarios": {"batch": {"next_epoch": 7, "done": False}}}
    st["faults:qemu"] = {"workload_seed": 2, "scenarios": {}}
    p = tmp_path / "state.json"
    p.write_text(json.dumps(st))
    back = campaign.load_state(str(p))
    assert back["sweep:qemu"]["scenarios"]["batch"]["next_epoch"] == 7 and back["faults:qemu"]["workload_seed"] == 2
    st["sweep:qemu"]["scenarios"]["batch"]["next_epoch"] = -1
    p.write_text(json.dumps(st))
    with pytest.raises(UsageError, match="sweep:qemu"):
        campaign.load_state(str(p))
    assert campaign.part_key("sweep", "libvhdx") == "sweep" and campaign.part_key("faults", "qemu") == "faults:qemu"


def _qemu_built():
    pcsweep = os.path.join(ROOT, "build", "default", "harness", "pcsweep")
    if not os.path.exists(pcsweep):
        return False
    cp = subprocess.run([pcsweep, "subjects"], stdout=subprocess.PIPE, text=True)
    return cp.returncode == 0 and any(x["name"] == "qemu" for x in json.loads(cp.stdout))


def test_campaign_with_the_qemu_subject(tmp_path):
    """campaign --subjects libvhdx,qemu: the sweep and fault phases run on
    both, each with its own method, resume state and report section; the
    QEMU sweeps' filed departures are counted apart."""
    if not _qemu_built():
        pytest.skip("the QEMU subject is not built (qemu/fetch_source.py fetches its source)")
    p = _campaign(tmp_path, "--time", "60", "--split", "sweep=50,faults=25", "--seed", "11",
                  "--subjects", "libvhdx,qemu")
    out, _ = p.communicate(timeout=900)
    assert p.returncode in (0, 1), out[-3000:]
    s = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert s["campaign"]["subjects"] == ["libvhdx", "qemu"]
    for m in ("sweep", "sweep:qemu", "faults", "faults:qemu"):
        assert m in s["methods"], (m, list(s["methods"]))
    assert s["methods"]["sweep:qemu"]["subject"] == "qemu"
    assert sum(t["states"] for t in s["methods"]["sweep:qemu"]["targets"].values()) > 0
    assert s["methods"]["faults:qemu"]["faults"] > 0
    assert s["methods"]["sweep:qemu"]["known"] + s["methods"]["faults:qemu"]["known"] > 0
    for f in s["failures"]:
        assert f["method"] in ("sweep", "faults", "sweep:qemu", "faults:qemu"), f
    state = json.loads((tmp_path / "state.json").read_text())
    assert "sweep:qemu" in state and "faults:qemu" in state
    assert 'id="subject-qemu"' in (tmp_path / "c" / "index.html").read_text()


def test_unknown_subject_is_a_usage_error(tmp_path):
    p = _campaign(tmp_path, "--time", "5", "--subjects", "libvhdx,nosuch")
    out, _ = p.communicate(timeout=900)
    assert p.returncode == 2 and "nosuch not in this build" in out, out[-2000:]


# ---- the build's speed (the bench step) ------------------------------------------------------
def canned_bench():
    rec = {"runs": 2000, "seeds": 24, "seed": 1, "execs": 2000, "wall_s": 1.5, "cpu_s": 1.4,
           "wall_execs_per_s": 1333.3, "execs_per_cpu_s": 1428.6, "libfuzzer_execs_per_s": 2000, "libfuzzer_s": 1,
           "command": "build/fuzz/fuzz/fuzz_log_replay -seed=1 -runs=2000 WORK corpus/fuzz_log_replay"}
    return {"build": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": True, "preset": "default",
                      "presets": ["default", "fuzz", "fuzz-nosan"], "compiler": "Debian clang version 14.0.6",
                      "time": "2026-12-06T01:59:00+0000", "elapsed_s": 9.5},
            "quick": True, "file": "bench.json",
            "sweep": {"config": "64 MiB disk, all scenarios, all models", "states": 20000,
                      "states_per_sec_judging": 10531.9, "states_per_sec_overall": 7800.7, "violations": 0},
            "fuzz": {"seed": 1, "presets": {"fuzz": "ASan + UBSan + libfiu points", "fuzz-nosan": "no sanitizers"},
                     "targets": {"fuzz_log_replay": {"fuzz": rec, "fuzz-nosan": dict(rec, execs_per_cpu_s=4087.2)},
                                 "fuzz_image_open": {"fuzz": dict(rec, runs=400, execs_per_cpu_s=270.4),
                                                     "fuzz-nosan": {"runs": 400, "error": "stopped with status 77 "
                                                                    "after about 390 executions: check <failed>"}}},
                     "stopped": ["fuzz_image_open (fuzz-nosan): stopped"]}}


def test_report_shows_the_build_and_its_speed(tmp_path):
    d = canned()
    d["bench"] = canned_bench()
    page = open(report.write_report(str(tmp_path), d)).read()
    sec = re.search(r'<h2 id="bench">Build and speed</h2>(.*?)<h2>', page, re.S).group(1)
    assert "0123456789ab (dirty" in sec and "default, fuzz, fuzz-nosan" in sec and "clang version 14.0.6" in sec
    assert "10,531.9</b> states/s judging" in sec
    fz = re.search(r'<table id="bench-fuzz">.*?</table>', sec, re.S).group(0)
    assert "no sanitizers (<code>fuzz-nosan</code>)" in fz and "1,428.6" in fz and "4,087.2" in fz
    row = re.search(r"<tr[^>]*><td>fuzz_image_open</td>.*?</tr>", fz, re.S).group(0)
    assert row.startswith('<tr class="bad">') and "check &lt;failed&gt;" in row and "270.4" in row
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["bench"]["fuzz"]["targets"]["fuzz_log_replay"]["fuzz"]["execs_per_cpu_s"] == 1428.6
    assert report.summary_problem(s) is None
    lines = report.bench_lines(s["bench"])
    assert lines[0].startswith("build and speed: commit 0123456789ab") and any("10,532 states/s" in x for x in lines)
    assert any(x.startswith("  fuzz_image_open: fuzz 1,333/s wall, 270/CPU-s; fuzz-nosan stopped") for x in lines)
    d["bench"] = {"skipped": "--no-bench"}
    page = open(report.write_report(str(tmp_path), d)).read()
    assert '<h2 id="bench">Build and speed</h2>' in page and "not measured: --no-bench" in page
    del d["bench"]          # a summary from before the bench step: no section
    assert "Build and speed" not in open(report.write_report(str(tmp_path), d)).read()
    d["bench"] = ["not", "an", "object"]
    assert "bench" in report.summary_problem(d)


def test_campaign_measures_its_build_before_the_clock(tmp_path):
    """The bench step: sweep and fuzz --quick on the build the campaign
    runs, before the clock; bench.json beside summary.json, the figures in
    summary.json and the report's "Build and speed" section."""
    p = _campaign(tmp_path, "--time", "15", "--split", "sweep=40,fuzz=40", "--targets", "log_parse", "--no-afl",
                  "--seed", "4", bench=True)
    out, _ = p.communicate(timeout=1800)
    assert p.returncode == 0, out[-3000:]
    d = tmp_path / "c"
    s = json.loads((d / "summary.json").read_text())
    b = s["bench"]
    assert b["file"] == "bench.json" and json.loads((d / "bench.json").read_text())["build"] == b["build"]
    assert len(b["build"]["commit"]) == 40 and b["build"]["presets"] == ["default", "fuzz", "fuzz-nosan"]
    assert b["quick"] is True and b["sweep"]["states"] == 20000 and b["sweep"]["states_per_sec_judging"] > 0
    assert list(b["fuzz"]["targets"]) == ["fuzz_log_parse"]          # the campaign's targets
    for preset in ("fuzz", "fuzz-nosan"):
        r = b["fuzz"]["targets"]["fuzz_log_parse"][preset]
        assert r["execs"] == r["runs"] > 0 and r["execs_per_cpu_s"] > 0 and r["wall_execs_per_s"] > 0
    c = s["campaign"]
    assert c["bench_s"] > 0 and c["elapsed_s"] <= 15 * 1.1, c      # before the clock: the budget holds
    assert out.index("measuring the build before the clock starts") < out.index("resuming at")
    assert f"build and speed: commit {b['build']['commit'][:12]}" in out
    page = (d / "index.html").read_text()
    sec = re.search(r'<h2 id="bench">Build and speed</h2>(.*?)<h2>', page, re.S).group(1)
    assert b["build"]["commit"][:12] in sec and f"{b['sweep']['states_per_sec_judging']:,.1f}</b> states/s" in sec
    assert "<td>fuzz_log_parse</td>" in sec and "fuzz-nosan" in sec


def test_campaign_no_bench_says_it_was_skipped(tmp_path):
    p = _campaign(tmp_path, "--time", "8", "--split", "sweep=90", "--seed", "7")   # --no-bench (the default here)
    out, _ = p.communicate(timeout=900)
    assert p.returncode == 0, out[-3000:]
    d = tmp_path / "c"
    s = json.loads((d / "summary.json").read_text())
    assert s["bench"] == {"skipped": "--no-bench"} and s["campaign"]["bench_s"] is None
    assert not (d / "bench.json").exists() and "measuring the build" not in out
    assert "not measured: --no-bench" in (d / "index.html").read_text()
    assert "build and speed: not measured (--no-bench)" in out
