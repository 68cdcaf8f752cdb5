"""History and triage across runs (history.py): each run appends one record;
every failure is new, known or flaky against the history and the
regressions corpus; the last run's failures gone now are fixed; --fail-on
new|any decides the exit status; a damaged history is a usage error before
any work.

Synthetic summaries go through the classification (seconds), then real
runs: a failing sweep appears (new), fails again (known), and is gone
(fixed) in three `powercut merge` runs sharing one history file."""
import json
import os
import shutil
import subprocess

import pytest

from pclib import history, report
from pclib.common import PYTHON, ROOT, UsageError

POWERCUT = os.path.join(ROOT, "scripts", "powercut")


def fail(fid, what="open-refused (X)", **kw):
    return dict({"id": fid, "signature": f"sweep: open-refused | power > {fid}", "method": "sweep",
                 "target": "overwrite", "what": what, "count": 3, "command": "scripts/powercut repro x"}, **kw)


def data(failures, started="2026-12-06T10:00:00", states=1000, seconds=10.0, incomplete=False):
    return {"campaign": {"seed": 7, "started": started, "engine": "libvhdx test", "commit": "abc123"},
            "methods": {"sweep": {"seconds": seconds, "targets": {"overwrite": {"states": states, "execs": 10,
                                                                                "seconds": seconds}},
                                  "coverage": {"complete": not incomplete, "text": "t"}}},
            "coverage": {"lines": {"covered": 50, "count": 100, "percent": 50.0}},
            "failures": failures, "series": []}


def test_new_known_fixed_across_three_runs(tmp_path):
    h = tmp_path / "history.jsonl"
    d1 = data([fail("aaa")], started="2026-12-01T02:00:00")
    history.finish(str(tmp_path / "r1"), d1, str(h))
    assert d1["failures"][0]["triage"] == "new" and d1["fixed"] == []
    d2 = data([fail("aaa"), fail("bbb")], started="2026-12-02T02:00:00")
    history.finish(str(tmp_path / "r2"), d2, str(h))
    assert {f["id"]: f["triage"] for f in d2["failures"]} == {"aaa": "known", "bbb": "new"}
    d3 = data([fail("bbb")], started="2026-12-03T02:00:00")
    history.finish(str(tmp_path / "r3"), d3, str(h))
    assert d3["failures"][0]["triage"] == "known"
    assert [f["id"] for f in d3["fixed"]] == ["aaa"] and d3["fixed"][0]["note"] is None
    recs = history.read(str(h))
    assert len(recs) == 3 and list(recs[1]["failures"]) == ["aaa", "bbb"]
    r = recs[0]
    assert r["commit"] == "abc123" and r["build"] == "libvhdx test" and r["seed"] == 7
    assert r["counts"]["sweep"]["states"] == 1000 and r["rates"]["states_per_s"] == 100.0 and r["coverage"] == 50.0
    assert len(d3["history"]) == 3                    # the trends of index.html
    # fail-on: the third run has only known failures
    assert history.fail_status(d3["failures"], "new") is False
    assert history.fail_status(d3["failures"], "any") is True
    assert history.fail_status(d2["failures"], "new") is True


def test_fixed_while_the_work_was_incomplete_is_said(tmp_path):
    h = tmp_path / "h.jsonl"
    history.finish(str(tmp_path / "a"), data([fail("aaa")]), str(h))
    d = data([], incomplete=True)
    history.finish(str(tmp_path / "b"), d, str(h))
    assert d["fixed"][0]["id"] == "aaa" and "may not have been reached" in d["fixed"][0]["note"]


def test_flaky_and_the_regressions_corpus(tmp_path):
    reg = tmp_path / "regressions"
    for fid, status, first in (("open1", "open", "2026-11-01T00:00:00"), ("back1", "fixed", "2026-11-01T00:00:00"),
                               ("mine1", "new", "2026-12-06T10:00:05")):
        (reg / fid).mkdir(parents=True)
        (reg / fid / "meta.json").write_text(json.dumps({"id": fid, "status": status, "first_seen": first}))
    fs = [fail("open1"), fail("back1"), fail("mine1"), fail("fz", what="does not reproduce")]
    history.classify(fs, [], str(reg), started="2026-12-06T10:00:00")
    got = {f["id"]: f["triage"] for f in fs}
    # stored before this run and open: known; stored as fixed and back: new (a regression);
    # stored by this very run: says nothing, new; a crash that did not reproduce on rerun: flaky
    assert got == {"open1": "known", "back1": "new", "mine1": "new", "fz": "flaky"}
    assert history.fail_status([fail("fz", what="does not reproduce", triage="flaky")], "new") is False


def test_default_fail_on_follows_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert history.default_fail_on() == "new"
    monkeypatch.delenv("CI")
    assert history.default_fail_on() == "any"
    monkeypatch.setenv("CI", "false")
    assert history.default_fail_on() == "any"


def test_damaged_history_is_a_usage_error(tmp_path):
    h = tmp_path / "h.jsonl"
    h.write_text('{"failures": {}}\n{broken\n')
    with pytest.raises(UsageError, match=r"h.jsonl:2"):
        history.read(str(h))
    h.write_text('[1, 2]\n')
    with pytest.raises(UsageError, match="not a history record"):
        history.read(str(h))


def test_report_shows_trends_and_triage(tmp_path):
    h = tmp_path / "h.jsonl"
    for i, n in enumerate((1000, 1500, 1200)):
        d = data([fail("aaa")], started=f"2026-12-0{i + 1}T02:00:00", states=n)
        history.finish(str(tmp_path / "r"), d, str(h))
    page = report.render_html(d, {})
    assert "Over the last runs" in page and page.count("<polyline") >= 2
    assert ">known<" in page and "120.0" in page     # this run's states/s


@pytest.mark.parametrize("cmd", [["merge", "/nonexistent"], ["campaign", "--time", "5", "--split", "sweep=50",
                                                               "--no-coverage", "--fresh"]])
def test_damaged_history_stops_campaign_and_merge_before_any_work(tmp_path, cmd):
    h = tmp_path / "h.jsonl"
    h.write_text("not json\n")
    extra = ["--state", tmp_path / "st.json"] if cmd[0] == "campaign" else []
    cp = subprocess.run([PYTHON, POWERCUT] + cmd + [str(x) for x in extra] +
                        ["--out", str(tmp_path / "o"), "--history", str(h)],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert cp.returncode == 2 and f"{h}:1" in cp.stderr and "building" not in cp.stderr, cp.stderr


# ---- real runs -----------------------------------------------------------------------------
def powercut(*args, env=None):
    e = {k: v for k, v in os.environ.items() if k != "CI"}
    e.update(env or {})
    return subprocess.run([PYTHON, POWERCUT] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=e, timeout=600)


def test_a_bug_appears_stays_and_is_fixed(tmp_path, built):
    """Runs 1 and 2: a sweep of a planted bug (harness/mutants/wrong-tail:
    every entry names itself the Tail), run 3: the same sweep of the engine
    (the patch removed).  Under CI (--fail-on new by default) only run 1
    fails; run 3 lists the bug's failures as fixed."""
    args = ["--scenario", "batch", "--models", "drop,prefix", "--minimize-seconds", 0]
    bad = tmp_path / "bad"
    assert powercut("sweep", "--mutant", "wrong-tail", *args, "--out", bad).returncode == 1
    nbad = len(json.loads((bad / "sweep.json").read_text())["signatures"])
    assert nbad >= 1
    good = tmp_path / "good"
    assert powercut("sweep", *args, "--out", good).returncode == 0
    h = tmp_path / "history.jsonl"
    ci = {"CI": "true"}
    r1 = powercut("merge", bad, "--out", tmp_path / "n1", "--history", h, env=ci)
    assert r1.returncode == 1 and f"new {nbad}" in r1.stdout, r1.stdout + r1.stderr
    r2 = powercut("merge", bad, "--out", tmp_path / "n2", "--history", h, env=ci)
    assert r2.returncode == 0 and f"known {nbad}" in r2.stdout and "--fail-on new" in r2.stdout, r2.stdout
    assert f"({nbad} known)" in (tmp_path / "n2" / "junit.xml").read_text()
    r2any = powercut("merge", bad, "--out", tmp_path / "n2b", "--history", tmp_path / "other.jsonl",
                     "--fail-on", "any")
    assert r2any.returncode == 1
    r3 = powercut("merge", good, "--out", tmp_path / "n3", "--history", h, env=ci)
    assert r3.returncode == 0 and f"{nbad} fixed" in r3.stdout and "FIXED [" in r3.stdout, r3.stdout
    s3 = json.loads((tmp_path / "n3" / "summary.json").read_text())
    assert len(s3["fixed"]) == nbad
    assert [len(r["failures"]) for r in history.read(str(h))] == [nbad, nbad, 0]
    assert "Fixed since the last run" in (tmp_path / "n3" / "index.html").read_text()
