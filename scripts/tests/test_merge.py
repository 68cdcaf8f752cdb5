"""`powercut merge`: N shards run as separate processes, merged, equal the
unsharded run (states, failures by signature and their counts, working
reproducers); a missing, doubled or damaged shard is named (exit status 2);
the SARIF beside the summary has the structure code-scanning views read.

The failures come from a recorded qemu-io trace (as in
test_sweep_driver.py): our engine refuses the crash states QEMU's write
order leaves, and the protocol judge flags the order itself, so the sweep
finds violations without a planted bug."""
import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from pclib.common import PYTHON, ROOT

POWERCUT = os.path.join(ROOT, "scripts", "powercut")
needs_qemu = pytest.mark.skipif(not shutil.which("qemu-img") or not shutil.which("qemu-io"),
                                reason="qemu-utils not installed")
N = 4
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if k not in ("TEST_SHARD_INDEX", "TEST_TOTAL_SHARDS", "JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID",
                          "SLURM_ARRAY_TASK_COUNT", "CI")}


def start(*args):
    return subprocess.Popen([PYTHON, POWERCUT] + [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=CLEAN_ENV)


def powercut(*args):
    p = start(*args)
    out, err = p.communicate(timeout=900)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def run_shards(base, sweep_args):
    """The unsharded sweep and N shards, each its own process, two at a time."""
    runs = [("all", [])] + [(f"s{k}", ["--shard", f"{k}/{N}"]) for k in range(N)]
    for i in range(0, len(runs), 2):
        procs = [(name, start("sweep", *sweep_args, *extra, "--minimize-seconds", 0, "--out", base / name))
                 for name, extra in runs[i:i + 2]]
        for name, p in procs:
            out, err = p.communicate(timeout=900)
            assert p.returncode in (0, 1), err
    return base / "all", [base / f"s{k}" for k in range(N)]


@pytest.fixture(scope="module")
def qtrace(tmp_path_factory, built):
    if not shutil.which("qemu-img") or not shutil.which("qemu-io"):
        pytest.skip("qemu-utils not installed")
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
    return trace


@pytest.fixture(scope="module")
def failing(tmp_path_factory, qtrace):
    base = tmp_path_factory.mktemp("merge")
    whole, shards = run_shards(base, ["--trace", qtrace])
    return base, whole, shards


def merged(out, *dirs, history=None):
    cp = powercut("merge", *dirs, "--out", out, "--history", history or (out.parent / f"{out.name}.history"),
                  "--fail-on", "any")
    s = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else None
    return cp, s


def states(s):
    return {t: v["states"] for m in s["methods"].values() for t, v in m["targets"].items()}


def test_merge_of_shards_equals_the_unsharded_run(failing, built):
    base, whole, shards = failing
    cp1, one = merged(base / "m1", whole)
    cpn, many = merged(base / "mN", *shards)
    assert cp1.returncode == 1 and cpn.returncode == 1, cpn.stderr   # failures, --fail-on any
    raw = json.loads((whole / "sweep.json").read_text())
    assert states(many) == states(one) and sum(states(many).values()) == raw["states"]
    assert sum(json.loads((s / "sweep.json").read_text())["states"] for s in shards) == raw["states"]
    # the same failures by signature, counted the same
    assert {f["id"]: f["count"] for f in many["failures"]} == {f["id"]: f["count"] for f in one["failures"]}
    assert {f["id"]: f["count"] for f in one["failures"]} == \
        {f["id"]: g["count"] for f, g in zip(one["failures"], raw["signatures"])}
    assert len(many["failures"]) == 2            # open-refused and the protocol order
    # every kept reproducer is in the merged report and reproduces its invariant
    for f in many["failures"]:
        assert f["reproducer"].startswith(str(base / "mN" / "repro"))
        same = next(g for g in one["failures"] if g["id"] == f["id"])
        # the smallest of the shards' reproducers: never larger than the unsharded run's first
        assert os.path.getsize(f["reproducer"]) <= os.path.getsize(same["reproducer"])
        assert f["reproducer_bytes"] == min(os.path.getsize(g["reproducer"]) for s in shards
                                            for g in json.loads((s / "sweep.json").read_text())["signatures"]
                                            if g["invariant"] == f["invariant"])
        r = subprocess.run([built("pcsweep"), "repro", f["reproducer"]], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120)
        assert r.returncode == 1 and f["invariant"] in r.stdout, r.stdout
    assert [p["shard"] for p in many["campaign"]["shards"]] == [f"{k}/{N}" for k in range(N)]
    assert {p["source"] for p in many["campaign"]["shards"]} == {"--shard"}
    # junit.xml and index.html of the merged report
    ju = ET.parse(base / "mN" / "junit.xml").getroot()
    assert ju.tag == "testsuites"
    page = (base / "mN" / "index.html").read_text()
    assert "Merged parts" in page and all(f["id"] in page for f in many["failures"])


def test_merge_of_workload_shards_adds_up(tmp_path, built):
    whole, shards = run_shards(tmp_path, ["--scenario", "overwrite,discard", "--models", "prefix,drop,torn"])
    cp1, one = merged(tmp_path / "m1", whole)
    cpn, many = merged(tmp_path / "mN", *shards)
    assert cp1.returncode == 0 and cpn.returncode == 0, cpn.stdout + cpn.stderr
    assert states(many) == states(one) and set(states(one)) == {"overwrite", "discard"}
    assert many["failures"] == [] and many["methods"]["sweep"]["coverage"]["complete"]


def test_missing_doubled_and_damaged_shards_are_named(failing):
    base, whole, shards = failing
    cp, s = merged(base / "miss", shards[0], shards[1], shards[3])
    assert cp.returncode == 2 and "shard(s) 2/4 missing" in cp.stderr
    assert any("2/4 missing" in n for n in s["campaign"]["notes"])     # the report of the rest is written
    cp, s = merged(base / "twice", *shards, shards[1])
    assert cp.returncode == 2 and "shard 1/4 given 2 times" in cp.stderr
    bad = base / "damaged"
    bad.mkdir()
    (bad / "sweep.json").write_text("{not json")
    cp, s = merged(base / "dam", *shards, bad, base / "no-such-dir")
    assert cp.returncode == 2 and f"{bad}/sweep.json: not JSON" in cp.stderr
    assert "no-such-dir: no such report directory" in cp.stderr and "Traceback" not in cp.stderr
    cp, s = merged(base / "none", base / "no-such-dir")
    assert cp.returncode == 2 and "nothing to merge" in cp.stderr and s is None


def test_sarif_structure(failing):
    base, whole, shards = failing
    merged(base / "sarif", *shards)
    doc = json.loads((base / "sarif" / "sarif.json").read_text())
    assert doc["version"] == "2.1.0" and "sarif-2.1.0" in doc["$schema"]
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "powercut"
    ids = {r["id"] for r in rules}
    assert ids == {"ref:invalid-crash-state", "protocol:header-before-entry"}
    inv = {i["name"]: i for i in json.loads(subprocess.run(
        [os.path.join(ROOT, "build", "default", "harness", "pcsweep"), "invariants", "--json"],
        stdout=subprocess.PIPE, text=True, check=True).stdout)}
    assert all(r["shortDescription"]["text"] == inv[r["id"]]["about"] for r in rules)   # from the registry
    assert len(run["results"]) == 2
    for res in run["results"]:
        assert res["ruleId"] in ids and res["level"] in ("error", "warning", "note")
        assert res["message"]["text"]
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        loc = res["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"]
    # QEMU's crash states with no valid sequence are the writer's (ref:invalid-crash-state): no engine
    # line to point at; the location is the reproducer
    broken = next(r for r in run["results"] if r["ruleId"] == "ref:invalid-crash-state")
    assert broken["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    # a refusal's structure names the engine line that refuses: VHDX_E_LOG_NO_SEQUENCE on header.LogGuid
    from pclib import history
    uri, line_no = history.engine_location("VHDX_E_LOG_NO_SEQUENCE header.LogGuid")[:2]
    line = open(os.path.join(ROOT, uri)).read().splitlines()[line_no - 1]
    assert uri.startswith("engine/src/") and "VHDX_E_LOG_NO_SEQUENCE" in line


def test_campaign_shards_run_disjoint_parts_and_merge(tmp_path, built):
    """campaign --shard K/2 with one job: its pcsweep runs are shard K of 2;
    the same seed; the merge names both parts and adds their states."""
    outs = []
    for k in range(2):
        out = tmp_path / f"c{k}"
        cp = powercut("campaign", "--shard", f"{k}/2", "--seed", 11, "--time", 8, "--split", "sweep=90",
                      "--jobs", 1, "--no-coverage", "--fresh", "--state", tmp_path / f"st{k}.json",
                      "--regressions", tmp_path / "reg", "--history", tmp_path / "h.jsonl", "--out", out)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert f"campaign: shard {k}/2 (from --shard), seed 11" in cp.stderr
        s = json.loads((out / "summary.json").read_text())
        assert s["campaign"]["shard"] == f"{k}/2" and s["campaign"]["seed"] == 11
        runs = [json.loads(p.read_text()) for p in (out / "sweep").glob("*.json")]
        assert runs and {r["shard"] for r in runs} == {f"{k}/2"}
        outs.append((out, s))
    cp, m = merged(tmp_path / "m", *[o for o, _ in outs])
    assert cp.returncode == 0, cp.stderr
    assert [p["shard"] for p in m["campaign"]["shards"]] == ["0/2", "1/2"] and m["campaign"]["seed"] == 11
    assert sum(states(m).values()) == sum(sum(states(s).values()) for _, s in outs)


def test_fault_sweep_shards_merge(tmp_path):
    if not os.path.exists(os.path.join(ROOT, "build", "fiu", "faults", "pcfaults")):
        pytest.skip("the fiu preset is not built (scripts/powercut build --preset fiu)")
    parts = []
    for k in range(2):
        out = tmp_path / f"f{k}"
        cp = powercut("faults", "--scenario", "overwrite", "--kinds", "eio", "--max-faults", 20, "--shard", f"{k}/2",
                      "--out", out)
        assert cp.returncode == 0, cp.stderr
        parts.append(json.loads((out / "faults.json").read_text()))
    cp, m = merged(tmp_path / "m", tmp_path / "f0", tmp_path / "f1")
    assert cp.returncode == 0, cp.stderr
    t = m["methods"]["faults"]["targets"]["eio"]
    assert t["execs"] == sum(p["kinds"]["eio"]["injected"] for p in parts) == 40
    assert t["states"] == sum(p["kinds"]["eio"]["states"] for p in parts)
    assert not m["methods"]["faults"]["coverage"]["complete"]       # stopped by --max-faults: said, not hidden


def test_external_checker_sweep_takes_the_shard_from_the_environment(qtrace, tmp_path):
    env = dict(CLEAN_ENV, TEST_SHARD_INDEX="1", TEST_TOTAL_SHARDS="3")
    cp = subprocess.run([PYTHON, POWERCUT, "sweep", "--trace", str(qtrace), "--checker", "vhdxtool",
                         "--max-states", "5", "--no-compare", "--out", str(tmp_path / "x")],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=600)
    assert cp.returncode in (0, 1), cp.stderr
    s = json.loads((tmp_path / "x" / "extsweep.json").read_text())
    assert s["shard"] == "1/3" and s["shard_source"] == "TEST_SHARD_INDEX"


def canned_campaign(d, shard, percent, failures, bench=None):
    from pclib import report
    data = {"campaign": {"seed": 5, "started": "2026-12-06T02:00:00", "elapsed_s": 10, "budget_s": 10,
                         "jobs": 2, "shard": shard, "shard_source": "--shard"},
            "methods": {"fuzz": {"seconds": 10, "targets": {"fuzz_log_replay": {"states": None, "execs": 1000,
                                                                                "coverage": percent}},
                                 "coverage": {"complete": True, "text": "1 of 1"}}},
            "coverage": {"lines": {"covered": int(percent * 10), "count": 1000, "percent": percent}},
            "failures": failures, "series": [{"t": 1, "method": "fuzz", "target": "fuzz_log_replay", "execs": 5}]}
    if bench is not None:
        data["bench"] = bench
    report.write_report(str(d), data)


def test_merged_report_lists_each_shards_bench_figures(tmp_path):
    """Each machine measured its own build: the merged report lists the
    parts' bench figures per shard, not a sum."""
    def bench(commit, rate):
        return {"build": {"commit": commit, "dirty": False, "presets": ["default"], "compiler": "clang 14"},
                "quick": True, "sweep": {"states": 20000, "states_per_sec_judging": rate,
                                         "states_per_sec_overall": rate / 2}}
    canned_campaign(tmp_path / "c0", "0/2", 41.5, [], bench("a" * 40, 9000.5))
    canned_campaign(tmp_path / "c1", "1/2", 44.0, [], bench("b" * 40, 7000.5))
    cp, m = merged(tmp_path / "m", tmp_path / "c0", tmp_path / "c1")
    assert cp.returncode == 0, cp.stderr
    sh = m["bench"]["shards"]
    assert [(x["shard"], x["sweep"]["states_per_sec_judging"]) for x in sh] == [("0/2", 9000.5), ("1/2", 7000.5)]
    assert sh[0]["dir"] == str(tmp_path / "c0")
    page = (tmp_path / "m" / "index.html").read_text()
    sec = page[page.index('<h2 id="bench">'):]
    assert "<h3>shard 0/2" in sec and "<h3>shard 1/2" in sec and "aaaaaaaaaaaa" in sec and "7,000.5" in sec
    canned_campaign(tmp_path / "c2", "0/1", 40.0, [])                    # no bench figures: no section
    cp, m = merged(tmp_path / "m2", tmp_path / "c2")
    assert "bench" not in m and "Build and speed" not in (tmp_path / "m2" / "index.html").read_text()


def test_campaign_parts_dedupe_keep_the_smallest_and_say_coverage_is_percentages(tmp_path):
    arts = {}
    for k, size in ((0, 300), (1, 100)):
        arts[k] = tmp_path / f"crash-{k}"
        arts[k].write_bytes(b"x" * size)
    same = {"id": "0123456789ab", "signature": "heap-buffer-overflow READ 4 | f > g > h", "method": "fuzz",
            "target": "fuzz_log_replay", "what": "heap-buffer-overflow READ 4"}
    canned_campaign(tmp_path / "c0", "0/2", 41.5, [dict(same, count=2, artifact=str(arts[0]),
                                                        command=f"scripts/powercut repro {arts[0]}")])
    canned_campaign(tmp_path / "c1", "1/2", 44.0, [dict(same, count=3, artifact=str(arts[1]),
                                                        command=f"scripts/powercut repro {arts[1]}")])
    cp, m = merged(tmp_path / "m", tmp_path / "c0", tmp_path / "c1")
    assert cp.returncode == 1, cp.stderr                           # a failure, --fail-on any
    assert len(m["failures"]) == 1
    f = m["failures"][0]
    assert f["count"] == 5 and f["reproducer_bytes"] == 100 and f["artifact"] == str(arts[1])
    assert m["coverage"]["lines"]["percent"] == 44.0 and "not a union" in m["coverage"]["merged"]
    assert any("only percentages are available" in n for n in m["campaign"]["notes"])
    assert m["methods"]["fuzz"]["targets"]["fuzz_log_replay"]["execs"] == 2000
    assert {x["shard"] for x in m["series"]} == {"0/2", "1/2"}
    sarif = json.loads((tmp_path / "m" / "sarif.json").read_text())
    res = sarif["runs"][0]["results"][0]
    assert res["ruleId"] == "crash: heap-buffer-overflow READ 4"
    assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(
        "0123456789ab-crash-1")                                    # no frame with a file: the reproducer


def test_rerun_marks_what_does_not_reproduce_flaky(failing, built, tmp_path):
    base, whole, shards = failing
    clean = tmp_path / "clean.vhdx"
    subprocess.run([built("vhdxtool"), "create", str(clean), "8M"], check=True, stdout=subprocess.DEVNULL)
    canned_campaign(tmp_path / "c", "0/1", 40.0, [{"id": "feedfacecafe", "signature": "sweep: open-refused | x",
                                                  "method": "sweep", "target": "overwrite", "count": 1,
                                                  "what": "open-refused (once)", "artifact": str(clean),
                                                  "command": f"scripts/powercut repro {clean}"}])
    cp = powercut("merge", tmp_path / "c", "--out", tmp_path / "m", "--history", tmp_path / "h.jsonl", "--rerun",
                  "--fail-on", "new")
    assert cp.returncode == 0 and "flaky 1" in cp.stdout, cp.stdout + cp.stderr   # only a flaky failure
    sarif = json.loads((tmp_path / "m" / "sarif.json").read_text())
    assert sarif["runs"][0]["results"][0]["level"] == "note"
    cp = powercut("merge", whole, "--out", tmp_path / "w", "--history", tmp_path / "h2.jsonl", "--rerun")
    s = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert cp.returncode == 1 and all(f["reproduced"] and f["triage"] == "new" for f in s["failures"]), cp.stdout


def test_coverage_profiles_of_the_parts_are_merged(tmp_path):
    """Parts that kept their llvm profiles: one merged profile (counts of
    both parts); without the coverage build here the report says it shows
    the highest part's percentages."""
    if not (shutil.which("clang-14") and shutil.which("llvm-profdata-14")):
        pytest.skip("clang-14 / llvm-profdata-14 not installed")
    from pclib import merge as merging
    src = tmp_path / "p.c"
    src.write_text("int main(int c, char **v) { (void)v; return c > 1 ? 1 : 0; }\n")
    exe = tmp_path / "p"
    subprocess.run(["clang-14", "-fprofile-instr-generate", "-fcoverage-mapping", "-o", str(exe), str(src)],
                   check=True)
    parts = []
    for k, argv in ((0, []), (1, ["x"])):
        d = tmp_path / f"c{k}"
        prof = d / "coverage" / "prof"
        prof.mkdir(parents=True)
        subprocess.run([str(exe)] + argv, env=dict(os.environ, LLVM_PROFILE_FILE=str(prof / "r.profraw")))
        subprocess.run(["llvm-profdata-14", "merge", "-o", str(prof / "all.profdata"), str(prof / "r.profraw")],
                       check=True)
        parts.append({"dir": str(d), "data": {"coverage": {"lines": {"covered": 1, "count": 2, "percent": 50.0 + k},
                                                           "per_target": {"no_such_target": {}}}}})
    out = tmp_path / "m"
    cov, note = merging.merge_coverage(parts, str(out))
    merged_pd = out / "coverage" / "prof" / "all.profdata"
    assert merged_pd.exists()
    shown = subprocess.run(["llvm-profdata-14", "show", "--all-functions", "--counts", str(merged_pd)],
                           stdout=subprocess.PIPE, text=True, check=True).stdout
    assert "Function count: 2" in shown                  # main ran once in each part
    assert "were merged into" in note and "not a union" in note and cov["lines"]["percent"] == 51.0
