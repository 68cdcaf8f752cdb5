"""ClusterFuzzLite: .clusterfuzzlite/build.sh run by hand with the OSS-Fuzz
variables ($CC $CXX $CFLAGS $CXXFLAGS $LIB_FUZZING_ENGINE $OUT $SRC $WORK)
must leave every target, its dictionary, its options and its seed-corpus
zip in $OUT; the binaries then run under `powercut fuzz --bin-dir`, which
writes the per-target JSON figures."""
import json
import os
import subprocess
import zipfile

import pytest

from pclib import fuzz
from pclib.common import PYTHON, ROOT


@pytest.fixture(scope="module")
def cflite_out(tmp_path_factory):
    base = tmp_path_factory.mktemp("cflite")
    src, out, work = base / "src", base / "out", base / "work"
    for d in (src, out, work):
        d.mkdir()
    os.symlink(ROOT, src / "powercut")
    flags = "-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fsanitize=fuzzer-no-link"
    env = dict(os.environ, CC="clang-14", CXX="clang++-14", CFLAGS=flags, CXXFLAGS=flags,
               LIB_FUZZING_ENGINE="-fsanitize=fuzzer", OUT=str(out), SRC=str(src), WORK=str(work))
    cp = subprocess.run(["bash", os.path.join(ROOT, ".clusterfuzzlite", "build.sh")], env=env,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    assert cp.returncode == 0, cp.stdout[-4000:]
    return out


def test_build_sh_fills_out(cflite_out):
    for t in fuzz.TARGETS:
        b = cflite_out / t
        assert b.exists() and os.access(b, os.X_OK), t
        assert (cflite_out / f"{t}.dict").exists()
        opts = (cflite_out / f"{t}.options").read_text()
        assert "[libfuzzer]" in opts and f"dict = {t}.dict" in opts
        z = cflite_out / f"{t}_seed_corpus.zip"
        with zipfile.ZipFile(z) as zf:
            names = zf.namelist()
        seeds = [n for n in os.listdir(os.path.join(ROOT, "corpus", t)) if not n.startswith(".")]
        assert sorted(names) == sorted(seeds)


def test_build_sh_refuses_missing_variables(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "LIB_FUZZING_ENGINE")}
    env.update(CC="clang-14", CXX="clang++-14", CFLAGS="", SRC=str(tmp_path), WORK=str(tmp_path))
    cp = subprocess.run(["bash", os.path.join(ROOT, ".clusterfuzzlite", "build.sh")], env=env,
                        stderr=subprocess.PIPE, text=True)
    assert cp.returncode == 2 and "is not set" in cp.stderr


def test_fuzz_command_runs_all_targets_and_writes_json(cflite_out, tmp_path):
    j = tmp_path / "fuzz.json"
    cp = subprocess.run([PYTHON, os.path.join(ROOT, "scripts", "powercut"), "fuzz", "--engine", "libfuzzer",
                         "--target", "all", "--time", "2", "--bin-dir", str(cflite_out), "--json", str(j),
                         "--out", str(tmp_path / "run"), "--work-root", str(tmp_path / "work"), "-seed=7"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    assert cp.returncode == 0, cp.stderr[-4000:]
    assert "+ " in cp.stderr and "-seed=7" in cp.stderr  # printed first, extra flag passed through
    figs = json.loads(j.read_text())
    assert set(figs) == set(fuzz.TARGETS)
    for t, f in figs.items():
        assert f["execs"] > 0 and f["execs_per_sec"] > 0 and f["crashes"] == 0, (t, f)
