"""`powercut evaluate`: mutation testing of the harness itself.

    powercut evaluate [--mutants DIR] [--budget S] [--methods LIST] [--json PATH]

Each planted bug (a patch file: harness/mutants/*.patch by default, or a
directory of your own) is applied to a scratch copy of the source tree
(build/evaluate/src; the real tree is never modified), the presets the
methods need are built there (incrementally: only the files the patch
touches recompile), and every method gets the same fixed budget to find it:

  sweep   pcsweep, every scenario and crash model, stops at the first violation
  faults  pcfaults' fault sweep, stops at the first violation
  fuzz    every libFuzzer target side by side from the committed seeds
          (-seed=1), stops at the first crash

First the unpatched tree runs through the same methods: a method that fails
on the clean engine would make its kills meaningless, so evaluate stops
there (exit 2).  The result is a kill matrix, bug x method, with the time
each method took to detect the bug (wall clock from the start of the
method), printed and written as JSON:

  {"budget_s": S, "methods": [...], "kill_rate": k/n,
   "kill_rate_by_method": {method: rate},
   "mutants": [{"name", "killed", "by": [methods], "seconds": fastest or null,
                "times": {method: seconds or null}, "detail": {method: what it saw}}]}

Writing your own mutant: change the engine in a checkout, `git diff >
my-mutants/name.patch` (paths a/engine/..., b/engine/...; apply with
patch -p1 from the top of the tree), optionally add name.json with a
"description".  Then `powercut evaluate --mutants my-mutants`.

Exit status: 0 evaluated; 2 usage or infrastructure error (a patch that
does not apply, a build that fails, a method that fails on the clean engine).
"""
import argparse
import glob
import os
import shutil
import signal
import subprocess
import time

from . import fuzz, mutants, setup
from .common import (BUILD, EXIT_OK, ROOT, InfraError, UsageError, run, say, write_json)

METHODS = ["sweep", "faults", "fuzz"]
PRESET = {"sweep": "default", "faults": "fiu", "fuzz": "fuzz"}
BINARIES = {"sweep": ["pcsweep"], "faults": ["pcfaults"], "fuzz": list(fuzz.TARGETS)}
SCRATCH = os.path.join(BUILD, "evaluate")


def add_parser(sub):
    p = sub.add_parser("evaluate", help="mutation testing: can sweeps, fault sweeps and fuzzing find planted bugs?",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mutants", default=mutants.MUTANT_DIR, help="directory of .patch files (default: harness/mutants)")
    p.add_argument("--names", help="only these mutants (comma list)")
    p.add_argument("--budget", type=int, default=60, help="seconds per method and mutant (default: %(default)s)")
    p.add_argument("--methods", default=",".join(METHODS), help="comma list of " + ", ".join(METHODS))
    p.add_argument("--json", help="write the kill matrix here (default: reports/runs/evaluate-<time>/evaluate.json)")
    p.add_argument("--no-baseline", action="store_true", help="skip the clean-engine run (not recommended)")
    p.set_defaults(func=cmd_evaluate)


# ---- the scratch tree -----------------------------------------------------------------------
class Scratch:
    """A copy of the tree where patches are applied and presets built."""

    def __init__(self, presets):
        self.src = os.path.join(SCRATCH, "src")
        self.marker = os.path.join(SCRATCH, "applied-patch")
        self.presets = presets
        if os.path.exists(self.marker):
            # an earlier run died with a patch applied: its objects may be stale
            say("evaluate: an earlier run was interrupted with a patch applied; rebuilding the scratch tree")
            shutil.rmtree(SCRATCH)
        os.makedirs(SCRATCH, exist_ok=True)
        ignore = shutil.ignore_patterns("build", ".git", "reports", "corpus", "__pycache__", ".pytest_cache")
        shutil.copytree(ROOT, self.src, ignore=ignore, dirs_exist_ok=True)

    def build(self, preset, targets):
        bdir = os.path.join(self.src, "build", preset)
        cache = os.path.join(bdir, "CMakeCache.txt")
        if not os.path.exists(cache) or \
                os.path.getmtime(os.path.join(self.src, "CMakePresets.json")) > os.path.getmtime(cache):
            # a planted bug may leave a variable unused: no -Werror here
            run(["cmake", "--preset", preset, "-DPOWERCUT_WERROR=OFF", "-DPOWERCUT_SKIP_RECORD=ON"], cwd=self.src,
                capture=True, quiet=True)
        cp = run(["cmake", "--build", bdir, "--target"] + targets, cwd=self.src, capture=True, quiet=True,
                 check=False)
        if cp.returncode != 0:
            raise InfraError(f"scratch build of {preset} failed:\n{cp.stdout.decode(errors='replace')[-3000:]}")
        return bdir

    def apply(self, patch, reverse=False):
        cmd = ["patch", "-p1", "--batch", "--silent", "-d", self.src, "-i", patch] + (["-R"] if reverse else [])
        cp = run(cmd, check=False, capture=True, quiet=True)
        if cp.returncode != 0:
            raise InfraError(f"{patch}: does not {'revert' if reverse else 'apply'} cleanly: "
                             f"{cp.stdout.decode(errors='replace').strip()[:400]}")
        if reverse:
            os.remove(self.marker)
        else:
            with open(self.marker, "w") as f:
                f.write(patch)


# ---- methods ----------------------------------------------------------------------------------
def _run_until(cmds, budget, found, logs):
    """Starts cmds side by side; returns (seconds to the first found(), index)
    or (None, None) when the budget ends first."""
    t0 = time.time()
    procs = []
    for cmd, log in zip(cmds, logs):
        procs.append(subprocess.Popen([str(c) for c in cmd], stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                                      start_new_session=True))
    hit = (None, None)
    try:
        while time.time() - t0 < budget + 60:
            for i, p in enumerate(procs):
                if p.poll() is not None and found(i):
                    hit = (round(time.time() - t0, 1), i)
                    return hit
            if all(p.poll() is not None for p in procs):
                return hit
            time.sleep(0.2)
        return hit
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def method_sweep(bdir, budget, work):
    out = os.path.join(work, "sweep.json")
    cmd = [os.path.join(bdir, "harness", "pcsweep"), "sweep", "--quiet", "--scenario", "all", "--models", "all",
           "--max-violations", "1", "--max-seconds", budget, "--json", out]
    secs, _ = _run_until([cmd], budget, lambda i: _first_failure(out) is not None, [out + ".log"])
    f = _first_failure(out)
    return secs, (f"[{f['invariant']}] {f['scenario']} seed {f['seed']}: {f['choice']}" if f else "")


def method_faults(bdir, budget, work):
    out = os.path.join(work, "faults.json")
    cmd = [os.path.join(bdir, "faults", "pcfaults"), "sweep", "--quiet", "--max-violations", "1",
           "--max-seconds", budget, "--json", out]
    secs, _ = _run_until([cmd], budget, lambda i: _first_failure(out) is not None, [out + ".log"])
    f = _first_failure(out)
    return secs, (f"[{f['invariant']}] {f['scenario']} {f.get('phase')} {f.get('plan')}" if f else "")


def method_fuzz(bdir, budget, work):
    cmds, logs, arts = [], [], []
    for t in fuzz.TARGETS:
        d = os.path.join(work, t)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "corpus"))
        cmds.append([os.path.join(bdir, "fuzz", t)] + fuzz.read_options(t) +
                    ["-seed=1", f"-max_total_time={budget}", f"-artifact_prefix={d}/", os.path.join(d, "corpus"),
                     os.path.join(fuzz.CORPUS, t)])
        logs.append(os.path.join(d, "log"))
        arts.append(d)

    def found(i):
        return bool(glob.glob(os.path.join(arts[i], "crash-*")) + glob.glob(os.path.join(arts[i], "leak-*")) +
                    glob.glob(os.path.join(arts[i], "timeout-*")))
    secs, i = _run_until(cmds, budget, found, logs)
    if secs is None:
        return None, ""
    with open(logs[i], errors="replace") as f:
        text = f.read()
    from . import triage
    kind, frames = triage.crash_state(text)
    return secs, f"{list(fuzz.TARGETS)[i]}: {kind}" + (f" in {' > '.join(frames)}" if frames else "")


RUNNERS = {"sweep": method_sweep, "faults": method_faults, "fuzz": method_fuzz}


def _first_failure(path):
    import json
    try:
        with open(path) as f:
            fs = json.load(f).get("failures", [])
        return fs[0] if fs else None
    except (OSError, ValueError):
        return None


# ---- the command ------------------------------------------------------------------------------
def evaluate_one(scratch, methods, budget, work):
    times, detail = {}, {}
    for m in methods:
        bdir = scratch.build(PRESET[m], BINARIES[m])
        os.makedirs(work, exist_ok=True)
        secs, what = RUNNERS[m](bdir, budget, work)
        times[m], detail[m] = secs, what
    return times, detail


def matrix_line(name, methods, times, width):
    cells = [(f"{times[m]:.1f} s" if times.get(m) is not None else "-") for m in methods]
    return f"{name:{width}s} " + " ".join(f"{c:>10s}" for c in cells)


def cmd_evaluate(args):
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise UsageError(f"--methods: unknown {', '.join(bad) or '(none)'} (methods: {', '.join(METHODS)})")
    if args.budget < 1:
        raise UsageError("--budget must be at least 1 second")
    ms = mutants.list_mutants(args.mutants)
    if args.names:
        want = [n.strip() for n in args.names.split(",")]
        unknown = [n for n in want if n not in {m["name"] for m in ms}]
        if unknown:
            raise UsageError(f"unknown mutant(s) {', '.join(unknown)} in {args.mutants}")
        ms = [m for m in ms if m["name"] in want]
    if not ms:
        raise UsageError(f"{args.mutants}: no *.patch files")
    setup.ensure(quiet=True)
    if not shutil.which("patch"):
        raise InfraError("the patch program is missing (scripts/powercut setup installs it)")
    out = args.json or os.path.join(ROOT, "reports", "runs", time.strftime("evaluate-%Y%m%d-%H%M%S"),
                                    "evaluate.json")
    work_root = os.path.join(os.path.dirname(os.path.abspath(out)), "work")
    say(f"evaluate: {len(ms)} mutant(s) from {args.mutants}, methods {', '.join(methods)}, "
        f"budget {args.budget} s each; scratch tree {SCRATCH}")
    scratch = Scratch({PRESET[m] for m in methods})
    width = max(len(m["name"]) for m in ms) + 2
    baseline = None
    if not args.no_baseline:
        say("evaluate: the clean engine first (every method must come back empty)")
        times, detail = evaluate_one(scratch, methods, args.budget, os.path.join(work_root, "clean"))
        false = {m: detail[m] for m in methods if times[m] is not None}
        baseline = {"times": times, "detail": detail}
        if false:
            raise InfraError("a method fails on the clean engine, its kills would mean nothing: " +
                             "; ".join(f"{m}: {d}" for m, d in false.items()))
    print(f"\n{'mutant':{width}s} " + " ".join(f"{m:>10s}" for m in methods), flush=True)
    results = []
    for m in ms:
        scratch.apply(m["patch"])
        try:
            times, detail = evaluate_one(scratch, methods, args.budget, os.path.join(work_root, m["name"]))
        finally:
            scratch.apply(m["patch"], reverse=True)
        by = [k for k in methods if times[k] is not None]
        fastest = min((times[k] for k in by), default=None)
        results.append({"name": m["name"], "description": m.get("description", ""), "killed": bool(by), "by": by,
                        "seconds": fastest, "times": times, "detail": detail,
                        "sweep_kills_declared": m.get("sweep_kills", True)})
        print(matrix_line(m["name"], methods, times, width), flush=True)
    killed = sum(r["killed"] for r in results)
    summary = {
        "budget_s": args.budget, "methods": methods, "mutants_dir": os.path.abspath(args.mutants),
        "kill_rate": round(killed / len(results), 4), "killed": killed, "total": len(results),
        "kill_rate_by_method": {k: round(sum(r["times"][k] is not None for r in results) / len(results), 4)
                                for k in methods},
        "median_seconds_by_method": {k: _median([r["times"][k] for r in results if r["times"][k] is not None])
                                     for k in methods},
        "baseline": baseline, "mutants": results,
    }
    write_json(out, summary)
    print(f"\nkilled {killed}/{len(results)} (kill rate {summary['kill_rate']:.0%}); by method: " +
          ", ".join(f"{k} {v:.0%}" for k, v in summary["kill_rate_by_method"].items()))
    for r in results:
        if not r["killed"]:
            print(f"  survived: {r['name']}: {r['description']}")
    print(f"kill matrix: {out}")
    return EXIT_OK


def _median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else round((xs[n // 2 - 1] + xs[n // 2]) / 2, 1)
