"""Sharding on the schedulers users have: --shard K/N, else the launcher's
environment (Bazel/GoogleTest, Kubernetes Indexed Job, Slurm array), one
rule in C (engine/tools/toolbase.c, CTest unit.shard) that pcsweep, pcfaults
and the driver use (`pcsweep shard --json`).  Bad values are usage errors
(exit status 2) before any work; the shard and its source are printed and
stored in the summary."""
import json
import os
import subprocess

import pytest

from pclib.common import PYTHON, ROOT

POWERCUT = os.path.join(ROOT, "scripts", "powercut")
LAUNCHER_VARS = ("TEST_SHARD_INDEX", "TEST_TOTAL_SHARDS", "TEST_SHARD_STATUS_FILE", "JOB_COMPLETION_INDEX",
                 "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN")


def env_with(**kw):
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    env.update({k: str(v) for k, v in kw.items()})
    return env


def shard(built, *args, **env):
    cp = subprocess.run([built("pcsweep"), "shard", "--json"] + list(args), stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True, env=env_with(**env), timeout=30)
    return cp.returncode, (json.loads(cp.stdout) if cp.returncode == 0 else cp.stderr)


@pytest.mark.parametrize("args,env,want", [
    ([], {}, (0, 1, "none")),
    (["--shard", "2/5"], {}, (2, 5, "--shard")),
    ([], {"TEST_SHARD_INDEX": 1, "TEST_TOTAL_SHARDS": 3}, (1, 3, "TEST_SHARD_INDEX")),
    (["--shard", "0/2"], {"TEST_SHARD_INDEX": 1, "TEST_TOTAL_SHARDS": 3}, (0, 2, "--shard")),   # the flag wins
    (["--shards", "8"], {"JOB_COMPLETION_INDEX": 7}, (7, 8, "JOB_COMPLETION_INDEX")),
    ([], {"SLURM_ARRAY_TASK_ID": 3, "SLURM_ARRAY_TASK_COUNT": 4}, (3, 4, "SLURM_ARRAY_TASK_ID")),
    ([], {"SLURM_ARRAY_TASK_ID": 12, "SLURM_ARRAY_TASK_COUNT": 4, "SLURM_ARRAY_TASK_MIN": 10},
     (2, 4, "SLURM_ARRAY_TASK_ID")),                                                          # --array=10-13
    # precedence: Bazel's variables before Kubernetes' before Slurm's
    ([], {"TEST_SHARD_INDEX": 0, "TEST_TOTAL_SHARDS": 2, "SLURM_ARRAY_TASK_ID": 1, "SLURM_ARRAY_TASK_COUNT": 2},
     (0, 2, "TEST_SHARD_INDEX")),
])
def test_the_rule(built, args, env, want):
    rc, got = shard(built, *args, **env)
    assert rc == 0, got
    assert (got["k"], got["n"], got["source"]) == want and got["shard"] == f"{want[0]}/{want[1]}"


@pytest.mark.parametrize("args,env,msg", [
    (["--shard", "4/4"], {}, "--shard takes K/N"),
    ([], {"TEST_SHARD_INDEX": 3, "TEST_TOTAL_SHARDS": 3}, "expected 0 <= index < total"),       # index >= count
    ([], {"TEST_SHARD_INDEX": "one", "TEST_TOTAL_SHARDS": 3}, "expected 0 <= index < total"),   # not a number
    ([], {"TEST_SHARD_INDEX": 1}, "go together"),                                            # half a pair
    ([], {"JOB_COMPLETION_INDEX": 2}, "needs --shards N"),
    (["--shards", "2"], {"JOB_COMPLETION_INDEX": 2}, "expected 0 <= index < shards"),
    (["--shards", "x"], {"JOB_COMPLETION_INDEX": 0}, "expected 0 <= index < shards"),
    (["--shards", "4"], {}, "needs JOB_COMPLETION_INDEX"),
    ([], {"SLURM_ARRAY_TASK_ID": 4, "SLURM_ARRAY_TASK_COUNT": 4}, "SLURM_ARRAY_TASK_COUNT=4"),
    ([], {"SLURM_ARRAY_TASK_ID": 9, "SLURM_ARRAY_TASK_COUNT": 4, "SLURM_ARRAY_TASK_MIN": 10}, "SLURM_ARRAY_TASK_MIN"),
    ([], {"SLURM_ARRAY_TASK_ID": "1a", "SLURM_ARRAY_TASK_COUNT": 4}, "SLURM_ARRAY_TASK_ID=1a"),
])
def test_bad_values_are_usage_errors(built, args, env, msg):
    rc, err = shard(built, *args, **env)
    assert rc == 2 and msg in err, err


def test_status_file_is_touched(built, tmp_path):
    status = tmp_path / "shard-status"
    rc, got = shard(built, TEST_SHARD_INDEX=0, TEST_TOTAL_SHARDS=2, TEST_SHARD_STATUS_FILE=status)
    assert rc == 0 and status.exists()


def powercut(*args, env=None):
    return subprocess.run([PYTHON, POWERCUT] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env, timeout=600)


def test_sweep_takes_the_shard_from_slurm_and_stores_it(built, tmp_path):
    env = env_with(SLURM_ARRAY_TASK_ID=5, SLURM_ARRAY_TASK_COUNT=4, SLURM_ARRAY_TASK_MIN=4)
    cp = powercut("sweep", "--scenario", "overwrite", "--models", "prefix,drop", "--minimize-seconds", 0,
                  "--out", tmp_path / "s", env=env)
    assert cp.returncode == 0, cp.stderr
    assert "shard 1/4 (from SLURM_ARRAY_TASK_ID)" in cp.stderr
    s = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert s["shard"] == "1/4" and s["shard_source"] == "SLURM_ARRAY_TASK_ID"


def test_sweep_takes_the_shard_of_a_kubernetes_indexed_job(built, tmp_path):
    env = env_with(JOB_COMPLETION_INDEX=2)
    cp = powercut("sweep", "--scenario", "overwrite", "--models", "prefix", "--shards", 3, "--minimize-seconds", 0,
                  "--out", tmp_path / "s", env=env)
    assert cp.returncode == 0, cp.stderr
    s = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert s["shard"] == "2/3" and s["shard_source"] == "JOB_COMPLETION_INDEX"


@pytest.mark.parametrize("cmd", [["sweep", "--scenario", "overwrite"], ["campaign", "--time", "5", "--split",
                                                                         "sweep=50", "--no-coverage", "--fresh"]])
@pytest.mark.parametrize("env", [{"TEST_SHARD_INDEX": 2, "TEST_TOTAL_SHARDS": 2},
                                 {"TEST_SHARD_INDEX": "x", "TEST_TOTAL_SHARDS": 2},
                                 {"JOB_COMPLETION_INDEX": 1}])
def test_bad_environment_is_exit_2_before_any_work(built, tmp_path, cmd, env):
    extra = ["--state", tmp_path / "state.json"] if cmd[0] == "campaign" else []
    cp = powercut(*cmd, *extra, "--out", tmp_path / "o", env=env_with(**env))
    assert cp.returncode == 2, cp.stdout + cp.stderr
    assert "Traceback" not in cp.stderr and ("expected 0 <=" in cp.stderr or "needs --shards" in cp.stderr)
    assert "pcsweep: engine" not in cp.stderr            # no sweep ran


def test_pcfaults_uses_the_same_rule(tmp_path):
    pcfaults = os.path.join(ROOT, "build", "fiu", "faults", "pcfaults")
    if not os.path.exists(pcfaults):
        pytest.skip("the fiu preset is not built (scripts/powercut build --preset fiu)")
    j = tmp_path / "f.json"
    cp = subprocess.run([pcfaults, "sweep", "--scenario", "overwrite", "--max-faults", "3", "--shards", "3",
                         "--json", str(j)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        env=env_with(JOB_COMPLETION_INDEX=2), timeout=120)
    assert cp.returncode in (0, 1), cp.stderr
    assert "shard 2/3 (from JOB_COMPLETION_INDEX)" in cp.stderr
    s = json.loads(j.read_text())
    assert s["shard"] == "2/3" and s["shard_source"] == "JOB_COMPLETION_INDEX"
    cp = subprocess.run([pcfaults, "sweep", "--scenario", "overwrite", "--max-faults", "3"], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True, env=env_with(SLURM_ARRAY_TASK_ID=3,
                                                                        SLURM_ARRAY_TASK_COUNT=3), timeout=120)
    assert cp.returncode == 2 and "SLURM_ARRAY_TASK_COUNT=3" in cp.stderr
