"""`powercut bench`: the section list, the coverage figures parsed from
llvm-cov's export, the sweepcov section end to end (quick: a bounded
sweep with the coverage preset's pcsweep), and the fuzz section: libFuzzer's
DONE line, the [bench] runs of the options files, a run that stops early,
and `--only fuzz --quick` end to end (every target, both presets)."""
import json
import os
import shutil
import subprocess

import pytest

from pclib import bench, fuzz
from pclib.common import PYTHON, ROOT, InfraError

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


# ---- the fuzz section ------------------------------------------------------------------
DONE_LOG = """INFO: Seed: 1
#2\tINITED cov: 10 ft: 11 corp: 3/12b exec/s: 0 rss: 30Mb
#4096\tpulse  cov: 700 ft: 2000 corp: 140/5Mb lim: 65568 exec/s: 4096 rss: 80Mb
#40000\tDONE   cov: 725 ft: 2081 corp: 160/6Mb lim: 65568 exec/s: 6666 rss: 90Mb
###### Recommended dictionary. ######
"caeh" # Uses: 1
###### End of recommended dictionary. ######
Done 40000 runs in 6 second(s)
"""

CRASH_LOG = """#25\tINITED cov: 767 ft: 1412 corp: 20/548Kb exec/s: 0 rss: 35Mb
#790\tNEW    cov: 910 ft: 1981 corp: 141/5032Kb lim: 65568 exec/s: 0 rss: 39Mb L: 20512/65568 MS: 3 Custom-
==powercut-fuzz== /src/fuzz/fuzz_x.c:149: check failed: QEMU agrees with libvhdx and the reference
==19071== ERROR: libFuzzer: deadly signal
    #0 0x5604bce870b4 in __sanitizer_print_stack_trace
SUMMARY: libFuzzer: deadly signal
artifact_prefix='/out/fuzz_x-'; Test unit written to /out/fuzz_x-crash-fdaa3f
"""


def test_parse_done_reads_libfuzzers_final_line():
    d = bench.parse_done(DONE_LOG)
    assert d == {"execs": 40000, "coverage": 725, "features": 2081, "execs_per_s": 6666, "seconds": 6}
    assert bench.parse_done(CRASH_LOG) is None          # no DONE line: the run did not finish
    assert bench.parse_done(DONE_LOG.replace("Done 40000 runs in 6 second(s)\n", ""))["seconds"] is None


def test_stop_reason_names_the_check_and_the_artifact():
    why, art = bench.stop_reason(CRASH_LOG, 77)
    assert why.startswith("stopped with status 77 after about 790 executions: ")
    assert "check failed: QEMU agrees" in why and "deadly signal" in why
    assert art == "/out/fuzz_x-crash-fdaa3f"
    why, art = bench.stop_reason("", None)
    assert "before its first status line" in why and art is None


def test_options_file_sections_and_bench_runs(tmp_path):
    f = tmp_path / "fuzz_x.options"
    f.write_text("# a comment\n[libfuzzer]\nmax_len = 4096\ndict = fuzz_x.dict\n\n"
                 "[bench]\n# runs of the measurement\nruns = 8000\nquick_runs = 400\n")
    opts = fuzz.parse_options(str(f))
    assert opts == {"libfuzzer": {"max_len": "4096", "dict": "fuzz_x.dict"},
                    "bench": {"runs": "8000", "quick_runs": "400"}}
    assert bench.fuzz_runs("fuzz_x", False, opts) == 8000 and bench.fuzz_runs("fuzz_x", True, opts) == 400
    for bad in ({}, {"bench": {"runs": "0", "quick_runs": "x"}}):
        with pytest.raises(InfraError, match=r"fuzz/fuzz_x.options: the \[bench\] section needs"):
            bench.fuzz_runs("fuzz_x", True, bad)
    assert fuzz.parse_options(str(tmp_path / "none.options")) == {}
    # the [bench] section is not passed to libFuzzer
    assert not any("runs" in x for x in fuzz.read_options("fuzz_log_replay"))


def test_every_fuzz_target_has_bench_runs():
    names = sorted(n[:-len(".options")] for n in os.listdir(os.path.join(ROOT, "fuzz")) if n.endswith(".options"))
    assert set(fuzz.TARGETS) <= set(names) and "fuzz_qemu_log_replay" in names
    for t in names:
        assert 0 < bench.fuzz_runs(t, True) < bench.fuzz_runs(t, False), t


def test_a_run_that_stops_early_has_no_figures_and_says_why(tmp_path, monkeypatch):
    """A target that crashes before its runs (here a stand-in script that
    prints libFuzzer's crash output and exits 77) gives an error and the
    artifact, not figures; the time and the command are kept."""
    bdir = tmp_path / "build"
    (bdir / "fuzz").mkdir(parents=True)
    fake = bdir / "fuzz" / "fuzz_log_parse"
    fake.write_text("#!/bin/sh\ncat <<'X'\n" + CRASH_LOG + "X\nexit 77\n")
    fake.chmod(0o755)
    monkeypatch.setattr(bench, "build_dir", lambda preset: str(bdir))
    rec = bench.fuzz_one("fuzz", "fuzz_log_parse", 123, str(tmp_path / "logs"), True)
    assert rec["error"].startswith("stopped with status 77") and rec["artifact"] == "/out/fuzz_x-crash-fdaa3f"
    assert "execs" not in rec and "execs_per_cpu_s" not in rec
    assert "-runs=123" in rec["command"] and "-seed=1" in rec["command"] and " WORK " in rec["command"]
    assert rec["wall_s"] > 0 and os.path.exists(rec["log"])
    assert bench.fuzz_cell(rec).startswith("STOPPED: ")


def test_fuzz_section_quick_writes_per_target_figures(tmp_path):
    """`bench --only fuzz --quick --json F`: every fuzz target of both
    presets measured with its quick_runs, libFuzzer's and the driver's
    figures, the command, and the build record."""
    out = tmp_path / "bench.json"
    cp = subprocess.run([PYTHON, POWERCUT, "bench", "--only", "fuzz", "--quick", "--json", str(out)],
                        capture_output=True, text=True, timeout=1800)
    assert cp.returncode == 0, cp.stderr[-3000:]
    res = json.loads(out.read_text())
    b = res["build"]
    assert len(b["commit"]) == 40 and isinstance(b["dirty"], bool) and b["presets"] == ["fuzz", "fuzz-nosan"]
    assert b["compiler"] and "clang" in b["compiler"] and b["time"] and b["elapsed_s"] > 0
    f = res["fuzz"]
    assert list(f["presets"]) == ["fuzz", "fuzz-nosan"] and f["seed"] == 1 and f["stopped"] == []
    assert set(fuzz.TARGETS) <= set(f["targets"]) == set(fuzz.built_targets("fuzz"))   # fuzz_qemu_* when built
    for t, row in f["targets"].items():
        n = bench.fuzz_runs(t, True)
        seeds = fuzz.count_files(os.path.join(ROOT, "corpus", t))
        for preset in ("fuzz", "fuzz-nosan"):
            r = row[preset]
            assert r["runs"] == n and r["execs"] == n and r["seeds"] == seeds, (t, preset, r)
            assert r["wall_execs_per_s"] > 0 and r["execs_per_cpu_s"] > 0 and r["cpu_s"] > 0, (t, preset, r)
            assert r["libfuzzer_execs_per_s"] >= 0 and r["coverage"] > 0
            assert r["execs_per_cpu_s"] == pytest.approx(n / r["cpu_s"], rel=0.01)
            assert f"build/{preset}/fuzz/{t} " in r["command"] and f"-runs={n}" in r["command"]
            assert "-seed=1" in r["command"] and "-max_len=" in r["command"] and f"corpus/{t}" in r["command"]
            assert os.path.exists(r["log"]) and str(tmp_path) in r["log"]
        assert f"fuzz: {t} " in cp.stderr
