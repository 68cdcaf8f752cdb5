"""Tests of the fuzzing subsystem that need no fuzzing engine: the driver's
registry, options and output parsing, its usage errors, the seed
generator's content-hash naming, and the standalone replay main of every
target (default preset, or POWERCUT_FUZZ_BUILD_DIR)."""
import hashlib
import json
import os
import subprocess
import sys

import pytest

from pclib import fuzz
from pclib.common import PYTHON, ROOT

POWERCUT = os.path.join(ROOT, "scripts", "powercut")


@pytest.fixture(scope="module")
def fuzzbin(request):
    """Directory of the standalone fuzz binaries."""
    d = os.environ.get("POWERCUT_FUZZ_BUILD_DIR")
    if d:
        return os.path.join(os.path.abspath(d), "fuzz")
    built = request.getfixturevalue("built")
    return os.path.dirname(built("fuzz_log_replay"))


def test_registry_and_names():
    assert set(fuzz.TARGETS) == {"fuzz_log_replay", "fuzz_image_open", "fuzz_crash_schedule", "fuzz_log_parse",
                                 "fuzz_trace_load"}
    assert fuzz.resolve_targets("all") == list(fuzz.TARGETS)
    assert fuzz.resolve_targets("log_replay") == ["fuzz_log_replay"]
    with pytest.raises(fuzz.UsageError):
        fuzz.resolve_targets("nope")


def test_every_target_has_source_dict_options_and_seeds():
    for t in fuzz.TARGETS:
        src = os.path.join(ROOT, "fuzz", t + ".c")
        assert os.path.exists(src)
        with open(src) as f:
            head = f.read(400)
        assert "PROPERTY" in head, f"{t}.c must open with the property it checks"
        assert os.path.exists(os.path.join(ROOT, "fuzz", t + ".dict"))
        flags = fuzz.read_options(t)
        assert any(f.startswith("-max_len=") for f in flags)
        assert any(f.startswith("-dict=") and os.path.exists(f.split("=", 1)[1]) for f in flags)
        seeds = [n for n in os.listdir(os.path.join(ROOT, "corpus", t)) if not n.startswith(".")]
        assert seeds, f"corpus/{t} has no seeds"
        for n in seeds:  # content-hash names
            with open(os.path.join(ROOT, "corpus", t, n), "rb") as f:
                assert hashlib.sha1(f.read()).hexdigest() == n


def test_parse_libfuzzer_output():
    text = "\n".join([
        "#2\tINITED cov: 10 ft: 11 corp: 3/12b exec/s: 0 rss: 30Mb",
        "#4096\tpulse  cov: 800 ft: 2300 corp: 250/8Mb lim: 4096 exec/s: 2048 rss: 400Mb",
        "#9000\tDONE   cov: 812 ft: 2400 corp: 260/9Mb lim: 4096 exec/s: 3000 rss: 410Mb",
        "stat::number_of_executed_units: 9001",
        "stat::average_exec_per_sec:     3000",
        "stat::new_units_added:          17",
    ])
    f = fuzz.parse_libfuzzer(text)
    assert f["execs"] == 9001 and f["execs_per_sec"] == 3000 and f["coverage"] == 812 and f["new_units"] == 17
    fork = "#30000: cov: 900 ft: 3000 corp: 400 exec/s: 2500 oom/timeout/crash: 0/0/1 time: 12s job: 3 dft_time: 0"
    f = fuzz.parse_libfuzzer(fork)
    assert f["execs"] == 30000 and f["coverage"] == 900 and f["execs_per_sec"] == 2500


def test_command_passes_unknown_flags_and_orders_corpora(tmp_path):
    cmd = fuzz.libfuzzer_command("/bin/x", "fuzz_log_replay", 7, 2, "/w", "/c", ["-seed=5", "-only_ascii=1"])
    assert "-max_total_time=7" in cmd and "-fork=2" in cmd and "-artifact_prefix=/c/" in cmd
    assert cmd.index("-seed=5") < cmd.index("/w")
    assert cmd[-2:] == ["/w", os.path.join(ROOT, "corpus", "fuzz_log_replay")]  # new units go to .work


def run_cli(*args):
    return subprocess.run([PYTHON, POWERCUT] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=120)


def test_cli_usage_errors():
    cp = run_cli("fuzz", "--target", "nope", "--no-build")
    assert cp.returncode == 2 and "unknown target" in cp.stderr
    cp = run_cli("fuzz", "--time", "0", "--no-build")
    assert cp.returncode == 2
    cp = run_cli("fuzz", "--engine", "afl", "--bin-dir", "/tmp")
    assert cp.returncode == 2 and "--bin-dir" in cp.stderr
    cp = run_cli("fuzz-mutant", "--mutant", "no-such-mutant")
    assert cp.returncode == 2 and "no mutant patch" in cp.stderr


def test_standalone_main_runs_corpora_and_reports(fuzzbin, tmp_path):
    for t in fuzz.TARGETS:
        cp = subprocess.run([os.path.join(fuzzbin, t), "--quiet", os.path.join(ROOT, "corpus", t)],
                            stderr=subprocess.PIPE, text=True, timeout=300)
        assert cp.returncode == 0, cp.stderr
        assert "execs/s" in cp.stderr


def test_standalone_main_exit_statuses(fuzzbin, tmp_path):
    b = os.path.join(fuzzbin, "fuzz_log_parse")
    cp = subprocess.run([b, "--bogus"], stderr=subprocess.PIPE, text=True)
    assert cp.returncode == 2 and "unknown option" in cp.stderr
    cp = subprocess.run([b, str(tmp_path / "missing")], stderr=subprocess.PIPE, text=True)
    assert cp.returncode == 2 and "cannot stat" in cp.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "meta.json").write_text("{}")
    cp = subprocess.run([b, str(empty)], stderr=subprocess.PIPE, text=True)
    assert cp.returncode == 3 and "no input" in cp.stderr
    cp = subprocess.run([b, "--repeat", "x", str(empty)], stderr=subprocess.PIPE, text=True)
    assert cp.returncode == 2
    one = tmp_path / "one"
    one.write_bytes(b"\x01" * 100)
    cp = subprocess.run([b, "--repeat", "3", "--post-process", str(one)], stderr=subprocess.PIPE, text=True)
    assert cp.returncode == 0 and "3 executions" in cp.stderr


def test_property_violation_aborts(fuzzbin):
    """A failed property is a crash (SIGABRT) naming file:line and the reason;
    the open KD1 regression shows it in strict mode and is tolerated otherwise."""
    case = os.path.join(ROOT, "corpus", "regressions", "8d74cf8dbabd")  # KD1
    b = os.path.join(fuzzbin, "fuzz_log_replay")
    cp = subprocess.run([b, "--quiet", case], stderr=subprocess.PIPE, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    with open(os.path.join(case, "meta.json")) as f:
        status = json.load(f)["status"]
    cp = subprocess.run([b, "--quiet", case], stderr=subprocess.PIPE, text=True, timeout=60,
                        env=dict(os.environ, POWERCUT_FUZZ_STRICT="1"))
    if status == "fixed":  # the engine was fixed: strict mode passes too
        assert cp.returncode == 0, cp.stderr
        return
    assert cp.returncode != 0
    assert "fuzz_log_replay.c:" in cp.stderr and "check failed" in cp.stderr and "KD1" in cp.stderr


def test_seed_generator_is_deterministic(fuzzbin, tmp_path):
    """Two runs of the generator write the same seeds for every target (the
    committed corpora are its output stored by SHA-1; an engine change may
    legitimately change them: scripts/powercut fuzz-seeds)."""
    gen = os.path.join(fuzzbin, "fuzz_gen_corpus")
    hashes = []
    for k in range(2):
        out = tmp_path / f"seeds{k}"
        cp = subprocess.run([gen, str(out)], stderr=subprocess.PIPE, text=True, timeout=300)
        assert cp.returncode == 0, cp.stderr
        got = {}
        for t in (t for t in fuzz.TARGETS if fuzz.TARGETS[t].get("gen_corpus", True)):
            files = sorted(os.listdir(out / t))
            assert files, t
            got[t] = {n: hashlib.sha1((out / t / n).read_bytes()).hexdigest() for n in files}
        hashes.append(got)
    assert hashes[0] == hashes[1]
    cp = subprocess.run([gen], stderr=subprocess.PIPE, text=True)
    assert cp.returncode == 2 and "usage" in cp.stderr


def test_cflite_workflow_uses_every_mode():
    # cflite.yml: code-change, prune, coverage; nightly.yml: batch, beside the shards it is merged with
    yaml = pytest.importorskip("yaml")
    modes = set()
    for name in ("cflite.yml", "nightly.yml"):
        with open(os.path.join(ROOT, ".github", "workflows", name)) as f:
            wf = yaml.safe_load(f)
        for job in wf["jobs"].values():
            for step in job["steps"]:
                if "run_fuzzers" in step.get("uses", ""):
                    modes.add(step["with"]["mode"])
    assert modes == {"code-change", "batch", "prune", "coverage"}
    with open(os.path.join(ROOT, ".clusterfuzzlite", "project.yaml")) as f:
        assert yaml.safe_load(f)["language"] == "c"
