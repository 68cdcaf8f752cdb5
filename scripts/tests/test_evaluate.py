"""evaluate and the planted bugs: the scratch build matches its sources,
equivalent mutants, the methods wired by command-line contracts (with fake
tools), and the sidecars of harness/mutants."""
import argparse
import json
import os
import shutil
import stat
import subprocess
import textwrap

import pytest

from pclib import evaluate, mutants
from pclib.common import ROOT

# ---- the scratch build matches its sources ----------------------------------------------------
PRESETS = {"version": 6, "cmakeMinimumRequired": {"major": 3, "minor": 25, "patch": 0},
           "configurePresets": [{"name": "default", "generator": "Ninja",
                                 "binaryDir": "${sourceDir}/build/${presetName}",
                                 "cacheVariables": {"CMAKE_C_COMPILER": "clang-14"}}]}


def make_tree(top, word):
    os.makedirs(top)
    with open(os.path.join(top, "CMakePresets.json"), "w") as f:
        json.dump(PRESETS, f)
    with open(os.path.join(top, "CMakeLists.txt"), "w") as f:
        f.write("cmake_minimum_required(VERSION 3.25)\nproject(t C)\nadd_executable(prog prog.c)\n")
    with open(os.path.join(top, "prog.c"), "w") as f:
        f.write(f'#include <stdio.h>\nint main(void) {{ puts("{word}"); return 0; }}\n')
    old = 978307200  # 2001: the tree's files are older than any build
    for fn in os.listdir(top):
        os.utime(os.path.join(top, fn), (old, old))


def prog_says(scratch):
    bdir = scratch.build("default", ["prog"])
    return subprocess.run([os.path.join(bdir, "prog")], stdout=subprocess.PIPE, text=True, check=True).stdout.strip()


needs_tools = pytest.mark.skipif(not (shutil.which("cmake") and shutil.which("ninja") and shutil.which("clang-14")
                                      and shutil.which("patch")), reason="cmake, ninja, clang-14 and patch needed")


@needs_tools
def test_second_run_does_not_judge_the_last_mutants_binaries(tmp_path):
    """The bug: a second evaluate copied the tree (old mtimes) over objects
    built from the last mutant, ninja saw nothing newer and the clean
    baseline ran the mutant's binary."""
    root, scr = str(tmp_path / "tree"), str(tmp_path / "scratch")
    make_tree(root, "clean")
    patch = str(tmp_path / "m.patch")
    with open(patch, "w") as f:
        f.write(textwrap.dedent("""\
            --- a/prog.c
            +++ b/prog.c
            @@ -1,2 +1,2 @@
             #include <stdio.h>
            -int main(void) { puts("clean"); return 0; }
            +int main(void) { puts("mutant"); return 0; }
            """))
    first = evaluate.Scratch({"default"}, root=root, scratch=scr)
    assert prog_says(first) == "clean"
    first.apply(patch)
    assert prog_says(first) == "mutant"
    first.apply(patch, reverse=True)   # the end of a run: reverted, not rebuilt
    second = evaluate.Scratch({"default"}, root=root, scratch=scr)
    assert prog_says(second) == "clean"


@needs_tools
def test_sources_changed_behind_the_copy_are_rebuilt(tmp_path):
    """A scratch source edited with an old mtime (a restored file, a copy
    that keeps mtimes) is rebuilt: the build tree remembers content hashes."""
    root, scr = str(tmp_path / "tree"), str(tmp_path / "scratch")
    make_tree(root, "clean")
    s = evaluate.Scratch({"default"}, root=root, scratch=scr)
    assert prog_says(s) == "clean"
    p = os.path.join(s.src, "prog.c")
    with open(p) as f:
        text = f.read()
    with open(p, "w") as f:
        f.write(text.replace("clean", "edited"))
    os.utime(p, (978307200, 978307200))
    assert prog_says(s) == "edited"


@needs_tools
def test_build_tree_from_another_source_dir_is_configured_again(tmp_path):
    root, other, scr = str(tmp_path / "tree"), str(tmp_path / "other"), str(tmp_path / "scratch")
    make_tree(root, "clean")
    make_tree(other, "other")
    subprocess.run(["cmake", "--preset", "default"], cwd=other, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", os.path.join(other, "build", "default")], check=True,
                   stdout=subprocess.DEVNULL)
    s = evaluate.Scratch({"default"}, root=root, scratch=scr)
    os.makedirs(os.path.join(s.src, "build"))
    shutil.copytree(os.path.join(other, "build", "default"), os.path.join(s.src, "build", "default"), symlinks=True)
    assert prog_says(s) == "clean"


def test_sync_removes_files_gone_from_the_tree_and_keeps_identical_ones(tmp_path):
    root, scr = str(tmp_path / "tree"), str(tmp_path / "scratch")
    os.makedirs(os.path.join(root, "a"))
    for name in ("a/keep.c", "a/gone.c"):
        with open(os.path.join(root, name), "w") as f:
            f.write(name)
    s = evaluate.Scratch(set(), root=root, scratch=scr)
    keep = os.path.join(s.src, "a", "keep.c")
    os.utime(keep, (1000, 1000))
    os.remove(os.path.join(root, "a", "gone.c"))
    os.makedirs(os.path.join(s.src, "build", "x"))
    with open(os.path.join(s.src, "build", "x", "obj.o"), "w") as f:
        f.write("object")
    evaluate.Scratch(set(), root=root, scratch=scr)
    assert not os.path.exists(os.path.join(s.src, "a", "gone.c"))
    assert os.path.getmtime(keep) == 1000            # identical: untouched, builds stay incremental
    assert os.path.exists(os.path.join(s.src, "build", "x", "obj.o"))  # build trees are not sources


# ---- equivalent mutants -----------------------------------------------------------------------
class FakeScratch:
    def __init__(self):
        self.src = "/nonexistent"
        self.applied = None

    def build(self, preset, targets):
        return "/nonexistent/build/" + preset

    def apply(self, patch, reverse=False):
        self.applied = None if reverse else os.path.basename(patch)[:-len(".patch")]


def write_mutant(d, name, **side):
    with open(os.path.join(d, name + ".patch"), "w") as f:
        f.write("--- a/x\n+++ b/x\n")
    with open(os.path.join(d, name + ".json"), "w") as f:
        json.dump(dict(description=f"bug {name}", **side), f)


def run_evaluate(tmp_path, monkeypatch, kills, names=None, equivalent_only=False):
    d = str(tmp_path / "mutants")
    os.makedirs(d, exist_ok=True)
    write_mutant(d, "real-bug", category="reader")
    write_mutant(d, "missed", category="ordering")
    write_mutant(d, "equiv-ok", equivalent="order inside one epoch is invisible")
    write_mutant(d, "equiv-wrong", equivalent="a wrong reason")
    fake = FakeScratch()
    monkeypatch.setattr(evaluate, "make_scratch", lambda methods: fake)
    monkeypatch.setattr(evaluate.setup, "ensure", lambda **kw: [])

    def runner(method):
        def run(ctx, bdir, budget, work):
            if fake.applied in kills.get(method, ()):
                return evaluate.killed(1.5, f"{method} saw it")
            return evaluate.survived()
        return run
    monkeypatch.setattr(evaluate, "RUNNERS", {"sweep": runner("sweep"), "fuzz": runner("fuzz")})
    out = str(tmp_path / "out" / "evaluate.json")
    args = argparse.Namespace(mutants=d, names=names, budget=5, methods="sweep,fuzz", json=out, no_baseline=False,
                              equivalent_only=equivalent_only)
    rc = evaluate.cmd_evaluate(args)
    with open(out) as f:
        return rc, json.load(f)


def test_equivalent_mutant_is_reported_as_equivalent_not_survivor(tmp_path, monkeypatch, capsys):
    rc, rep = run_evaluate(tmp_path, monkeypatch, {"sweep": {"real-bug"}}, names="real-bug,missed,equiv-ok")
    assert rc == 0
    st = {m["name"]: m["status"] for m in rep["mutants"]}
    assert st == {"real-bug": "killed", "missed": "survived", "equiv-ok": "equivalent"}
    assert rep["total"] == 2 and rep["killed"] == 1 and rep["kill_rate"] == 0.5 and rep["equivalent"] == 1
    assert rep["by_method"]["sweep"]["killed"] == 1 and rep["by_method"]["fuzz"]["killed"] == 0
    res = {m["name"]: m for m in rep["mutants"]}["real-bug"]["results"]
    assert res["sweep"]["result"] == "killed" and res["sweep"]["seconds"] == 1.5
    assert res["fuzz"]["result"] == "survived"
    out = capsys.readouterr().out
    assert "survived: missed" in out and "survived: equiv-ok" not in out
    assert "equivalent" in [line.split()[-1] for line in out.splitlines() if line.startswith("equiv-ok")]


def test_killed_equivalent_mutant_fails_the_run(tmp_path, monkeypatch, capsys):
    rc, rep = run_evaluate(tmp_path, monkeypatch, {"fuzz": {"equiv-wrong"}}, equivalent_only=True)
    assert rc == 1
    assert [m["name"] for m in rep["mutants"]] == ["equiv-ok", "equiv-wrong"]
    assert rep["equivalent_killed"] == ["equiv-wrong"]
    assert {m["name"]: m["status"] for m in rep["mutants"]}["equiv-wrong"] == "equivalent-killed"
    assert "EQUIVALENT KILLED: equiv-wrong" in capsys.readouterr().out


def test_a_method_failing_on_the_clean_engine_stops_the_run(tmp_path, monkeypatch):
    with pytest.raises(evaluate.InfraError, match="fails on the clean engine"):
        run_evaluate(tmp_path, monkeypatch, {"sweep": {None}})


# ---- methods wired by command-line contracts, with fake tools ---------------------------------
FAKE_PCSWEEP = r'''#!/usr/bin/python3
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(" ".join(args) + "\n")
support = os.environ.get("FAKE_SUPPORT", "").split(",")
if "--help" in args:
    print("usage: pcsweep COMMAND [options]\n\n  sweep    run workloads\n  repro FILE   re-run")
    if "protocol" in support:
        print("  protocol     prove the log's ordering rules on every scenario's trace")
    if "refgen" in support:
        print("  refgen       images written by the reference writer")
    print("\nsweep options:\n  --scenario LIST\n  --models LIST\n  --json PATH")
    if "judges" in support:
        print("  --judges LIST        oracle,reference")
    sys.exit(0)
cmd = args[0]
if cmd == "sweep":
    if "--judges" in args and "judges" not in support:
        print("pcsweep: unknown option --judges", file=sys.stderr)
        sys.exit(2)
    out = args[args.index("--json") + 1]
    judge = args[args.index("--judges") + 1] if "--judges" in args else "oracle"
    fail = os.environ.get("FAKE_FAIL_JUDGE") == judge
    with open(out, "w") as f:
        json.dump({"failures": [{"invariant": "ref:disagree", "scenario": "batch", "seed": 1,
                                 "choice": "drop epoch 3"}] if fail else []}, f)
    sys.exit(1 if fail else 0)
if cmd == "protocol":
    print("protocol: rule log-before-final violated at ops 12, 15", file=sys.stderr)
    sys.exit(int(os.environ.get("FAKE_PROTOCOL_RC", "0")))
if cmd == "refgen":
    out = args[args.index("--out") + 1]
    os.makedirs(out)
    for i in range(int(args[args.index("--count") + 1])):
        open(os.path.join(out, f"ref-{i}.vhdx"), "w").close()
    sys.exit(0)
print("pcsweep: unknown command " + cmd, file=sys.stderr)
sys.exit(2)
'''

FAKE_POWERCUT = r'''#!/usr/bin/python3
import json, os, sys
args = sys.argv[1:]
assert args[0] == "diff"
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write("powercut " + " ".join(args) + "\n")
out = args[args.index("--json") + 1]
dis = json.loads(os.environ.get("FAKE_DIFF", "[]"))
with open(out, "w") as f:
    json.dump({"images": 3, "disagreements": [{"status": "disagree", "source": "/x/" + s, "class": c}
                                              for s, c in dis]}, f)
sys.exit(1 if dis else 0)
'''


def write_exec(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


@pytest.fixture
def fake_tools(tmp_path, monkeypatch):
    bdir = str(tmp_path / "build")
    write_exec(os.path.join(bdir, "harness", "pcsweep"), FAKE_PCSWEEP)
    src = str(tmp_path / "src")
    write_exec(os.path.join(src, "scripts", "powercut"), FAKE_POWERCUT)
    log = str(tmp_path / "calls.log")
    monkeypatch.setenv("FAKE_LOG", log)
    work = str(tmp_path / "work")
    os.makedirs(work)

    def calls():
        with open(log) as f:
            return [line.split() for line in f if "--help" not in line]
    return argparse.Namespace(bdir=bdir, src=src, work=work, calls=calls,
                              ctx=lambda: evaluate.Context(src, str(tmp_path / "root")))


def test_new_methods_skip_clearly_when_the_tools_lack_them(fake_tools, monkeypatch):
    monkeypatch.setenv("FAKE_SUPPORT", "")
    monkeypatch.setattr(evaluate.shutil, "which", lambda name: None)
    ctx = fake_tools.ctx()
    r = evaluate.method_reference(ctx, fake_tools.bdir, 5, fake_tools.work)
    assert r["result"] == "skipped" and "--judges" in r["detail"]
    r = evaluate.method_protocol(ctx, fake_tools.bdir, 5, fake_tools.work)
    assert r["result"] == "skipped" and "protocol" in r["detail"]
    r = evaluate.method_diff(ctx, fake_tools.bdir, 5, fake_tools.work)
    assert r["result"] == "skipped" and "qemu-img" in r["detail"] and "refgen" in r["detail"]
    # the sweep runs as it always did, without --judges
    r = evaluate.method_sweep(ctx, fake_tools.bdir, 5, fake_tools.work)
    assert r["result"] == "survived"
    assert [c for c in fake_tools.calls() if c[0] == "sweep"] and \
        all("--judges" not in c for c in fake_tools.calls())


def test_sweep_uses_the_oracle_judge_and_reference_its_own(fake_tools, monkeypatch):
    monkeypatch.setenv("FAKE_SUPPORT", "judges")
    monkeypatch.setenv("FAKE_FAIL_JUDGE", "reference")
    ctx = fake_tools.ctx()
    assert evaluate.method_sweep(ctx, fake_tools.bdir, 5, fake_tools.work)["result"] == "survived"
    r = evaluate.method_reference(ctx, fake_tools.bdir, 5, fake_tools.work)
    assert r["result"] == "killed" and "ref:disagree" in r["detail"] and r["seconds"] is not None
    sweeps = [c for c in fake_tools.calls() if c[0] == "sweep"]
    assert sweeps[0][sweeps[0].index("--judges") + 1] == "oracle"
    assert sweeps[1][sweeps[1].index("--judges") + 1] == "reference"
    assert "--scenario" in sweeps[1] and "--max-violations" in sweeps[1]


@pytest.mark.parametrize("rc,result", [(0, "survived"), (1, "killed"), (2, "error")])
def test_protocol_method_reads_the_exit_status(fake_tools, monkeypatch, rc, result):
    monkeypatch.setenv("FAKE_SUPPORT", "protocol")
    monkeypatch.setenv("FAKE_PROTOCOL_RC", str(rc))
    r = evaluate.method_protocol(fake_tools.ctx(), fake_tools.bdir, 5, fake_tools.work)
    assert r["result"] == result
    if result == "killed":
        assert "log-before-final" in r["detail"]
    assert ["protocol", "--scenario", "all"] == [c for c in fake_tools.calls() if c[0] == "protocol"][0][:3]


def test_diff_method_kills_only_on_disagreements_the_clean_engine_lacks(fake_tools, monkeypatch):
    monkeypatch.setenv("FAKE_SUPPORT", "refgen")
    monkeypatch.setattr(evaluate.shutil, "which", lambda name: "/usr/bin/" + name)
    made = []

    def qemu_images(d):
        os.makedirs(d)
        made.append(d)
        return 2
    monkeypatch.setattr(evaluate, "make_qemu_images", qemu_images)
    ctx = fake_tools.ctx()
    ctx.diff_known = {("ref-1.vhdx", "header-current")}
    monkeypatch.setenv("FAKE_DIFF", json.dumps([["ref-1.vhdx", "header-current"]]))
    r = evaluate.method_diff(ctx, fake_tools.bdir, 5, fake_tools.work)
    assert r["result"] == "survived" and "clean engine" in r["detail"]
    monkeypatch.setenv("FAKE_DIFF", json.dumps([["ref-1.vhdx", "header-current"], ["small.vhdx", "no-sequence"]]))
    r = evaluate.method_diff(ctx, fake_tools.bdir, 5, fake_tools.work)
    assert r["result"] == "killed" and "no-sequence on small.vhdx" in r["detail"]
    assert len(made) == 1   # the images are made once per run
    diffs = [c for c in fake_tools.calls() if c[0] == "powercut"]
    assert len(diffs) == 2 and any(a.endswith("qemu") for a in diffs[0]) and any(a.endswith("refgen") for a in diffs[0])
    assert [c for c in fake_tools.calls() if c[0] == "refgen"][0][1:] == \
        ["--out", os.path.join(ctx.work_root, "diff-images", "refgen"), "--count", str(evaluate.REFGEN_COUNT)]


def test_diff_new_weighs_sources_the_clean_run_never_reached():
    """A budgeted diff compares a different number of images each run: a
    known class on an image the clean run did not reach is not the
    mutant's; a new class anywhere is, and so is a known class on an image
    the clean run compared without disagreeing."""
    ctx = evaluate.Context("/nonexistent", "/nonexistent")
    ctx.diff_known = {("a.vhdx", "qemu-cannot-replay-a-valid-log")}
    ctx.diff_compared = {"a.vhdx", "b.vhdx"}
    assert not evaluate._diff_new(ctx, ("a.vhdx", "qemu-cannot-replay-a-valid-log"))
    assert not evaluate._diff_new(ctx, ("z.vhdx", "qemu-cannot-replay-a-valid-log"))   # not reached before
    assert evaluate._diff_new(ctx, ("b.vhdx", "qemu-cannot-replay-a-valid-log"))       # agreed before
    assert evaluate._diff_new(ctx, ("z.vhdx", "no-sequence"))                          # a new class
    ctx.diff_compared = None                                                           # an older report
    assert evaluate._diff_new(ctx, ("z.vhdx", "qemu-cannot-replay-a-valid-log"))


def test_a_crashing_judge_counts_as_a_kill_and_status_2_as_an_error(tmp_path):
    log = str(tmp_path / "log")
    with open(log, "w") as f:
        f.write("AddressSanitizer: heap-buffer-overflow")
    assert evaluate._judge_status(-6, None, log, "pcsweep")["result"] == "killed"
    assert evaluate._judge_status(2, None, log, "pcsweep")["result"] == "error"
    assert evaluate._judge_status(0, None, log, "pcsweep")["result"] == "survived"


# ---- powercut mutants: what the sweep must do with each kind of sidecar -----------------------
def test_mutants_verdicts():
    r_kill = {"killed": True, "invariant": "open-refused", "expected_ok": True}
    r_miss = {"killed": False, "invariant": "", "expected_ok": False}
    kills = {"sweep_kills": True}
    blind = {"sweep_kills": False, "sweep_blind": "why"}
    equiv = {"sweep_kills": False, "equivalent": "why"}
    assert mutants.verdict(kills, r_kill)[0] and not mutants.verdict(kills, r_miss)[0]
    assert mutants.verdict(blind, r_kill)[0] and mutants.verdict(blind, r_miss)[0]
    assert "blind spot is closed" in mutants.verdict(blind, r_kill)[1]
    assert not mutants.verdict(equiv, r_kill)[0] and mutants.verdict(equiv, r_miss)[0]


# ---- the project's planted bugs ---------------------------------------------------------------
CATEGORIES = {"reader", "checksum-geometry", "ordering", "error-path", "allocation", "discard",
              "header-region-choice", "writer"}


def test_every_planted_bug_has_a_complete_sidecar():
    ms = mutants.list_mutants()
    assert len(ms) >= 60
    for m in ms:
        assert m["description"] and m["expose"], m["name"]
        assert m["category"] in CATEGORIES, m["name"]
        assert not (m.get("equivalent") and m.get("sweep_blind")), m["name"]
        if m.get("equivalent") or m.get("sweep_blind") or m.get("why_the_sweep_cannot_kill_it"):
            assert m["sweep_kills"] is False, m["name"]
    assert {m["category"] for m in ms} == CATEGORIES


@pytest.mark.skipif(not shutil.which("patch"), reason="patch needed")
def test_every_planted_bug_applies_to_the_engine():
    for m in mutants.list_mutants():
        cp = subprocess.run(["patch", "-p1", "--dry-run", "--batch", "--silent", "-d", ROOT, "-i", m["patch"]],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert cp.returncode == 0, f"{m['name']}: {cp.stdout}"
