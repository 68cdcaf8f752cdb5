"""`powercut sweep` and `powercut repro`: the crash-point sweep and its reproducers.

sweep runs the C program pcsweep: deterministic workloads on a simulated
disk, the power cut at every point under every crash model, each state
judged by the oracle.  Results go to a run directory (default
reports/runs/<id>/): sweep.json (summary), junit.xml, repro/ (one
reproducer per violation), and a summary table on stdout.  Options not
listed here are passed to pcsweep unchanged (see `pcsweep --help`).

repro re-runs a saved artifact and prints the verdict (REPRO_DOC): sweep
reproducers are handled here; other artifact kinds (fault reproducers,
fuzz crashes, images, regressions) register themselves in REPRO_HANDLERS
(faults.py, repro.py).

Exit status: 0 no violation; 1 violations (or the reproducer still fails);
2 usage or infrastructure error.
"""
import argparse
import os
import time

from . import build, setup
from .common import ROOT, UsageError, is_pctrace, run, run_summarized, tool

MODELS = ["prefix", "drop", "reorder", "torn", "stale", "recovery", "misdirect", "lost", "bitflip"]


def new_run_dir(prefix, seed=None):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{prefix}-{stamp}" + (f"-s{seed}" if seed is not None else "")
    d = os.path.join(ROOT, "reports", "runs", name)
    n = 1
    while os.path.exists(d):
        n += 1
        d = os.path.join(ROOT, "reports", "runs", f"{name}-{n}")
    os.makedirs(d)
    return d


def add_sweep_args(p):
    p.add_argument("--scenario", default="all", help="comma list of scenarios (the registry: `pcsweep scenarios`) or all")
    p.add_argument("--seed", type=int, default=1, help="first workload seed (default 1)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per scenario (default 1)")
    p.add_argument("--models", default="all", help="comma list of " + ",".join(MODELS) + ", all, power, corruption")
    p.add_argument("--shard", help="K/N: judge only this shard of the states")
    p.add_argument("--max-states", type=int, help="stop after this many states")
    p.add_argument("--max-seconds", type=int, help="stop after this long")
    p.add_argument("--json", help="also write the summary here")
    p.add_argument("--junit", help="also write JUnit XML here")
    p.add_argument("--out", help="run directory (default reports/runs/sweep-<time>-s<seed>/)")
    p.add_argument("--trace", help="sweep a saved trace instead of running workloads")
    p.add_argument("--checker", choices=["inprocess", "vhdxtool", "qemu", "both"], default="inprocess",
                   help="with --trace: judge states in-process (default) or with external checkers")
    p.add_argument("--preset", default="default", help="build preset of pcsweep (default: default)")


REPRO_DOC = """\
Re-runs a saved artifact with this build and prints the verdict and an
explanation.  What runs depends on the artifact:

  sweep reproducer   .pctrace with a crash choice (a run's repro/): the crash
                     state is rebuilt and judged by the oracle; --minimize
                     shrinks it, --rerun re-runs its workload with this build,
                     --save-image writes the crash image
  fault reproducer   .pctrace with a fault plan: pcfaults repro (fiu preset)
  external plan      JSON from `faults --exec`: the program under the same plan
  fuzz crash         crash-*, leak-*, timeout-*, oom-*, AFL++ id:* under a path
                     naming a fuzz target (or any file with --target): the
                     asan preset's standalone target; the crash state
  VHDX image         examined on a copy with the asan vhdxtool: info, the log
                     (dump-log --descriptors), check, replay, the sectors the
                     replay changed and the entries that wrote them, check;
                     CLEAN, RECOVERED, REFUSED, INCONSISTENT or ENGINE BUG
  regression         corpus/regressions/<id>/: each input, by the tool its
                     meta.json names

Exit status: 0 passes (clean, recovered, does not reproduce); 1 the failure is
there (violation, crash, refused or inconsistent image); 2 usage error.
"""


def add_parser(sub):
    p = sub.add_parser("sweep", help="cut the power at every point of workloads and judge each crash state",
                       description=__doc__)
    add_sweep_args(p)
    p.set_defaults(func=cmd_sweep, passthrough=True)
    r = sub.add_parser("repro", help="re-run any saved artifact (sweep or fault reproducer, fuzz crash, VHDX image, "
                                     "stored regression) and print its verdict", description=REPRO_DOC,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("file", help="a sweep or fault reproducer (.pctrace), a fuzz crash, a VHDX image, "
                                "or a stored regression (corpus/regressions/<id>/)")
    r.add_argument("--target", help="the fuzz target of an input whose path does not name one")
    r.add_argument("--minimize", nargs="?", const="", metavar="OUT",
                   help="shrink the workload and crash choice; save to OUT (default: next to FILE)")
    r.add_argument("--rerun", action="store_true", help="re-run the recorded workload with this build")
    r.add_argument("--save-image", help="write the crash image (before replay) here")
    r.add_argument("--json", help="write the verdict here")
    r.add_argument("--preset", default="default", help="build preset to run with (default: default)")
    r.set_defaults(func=cmd_repro, passthrough=True)


def pcsweep_path(preset):
    setup.ensure(quiet=True)
    build.ensure_built(preset, quiet=True)
    path = tool(preset, "pcsweep")
    if not os.path.exists(path):
        raise UsageError(f"pcsweep was not built in preset {preset}")
    return path


def print_summary(summary, out=None):
    """The summary table of a sweep.json (stdout)."""
    runs = summary.get("runs", [])
    print(f"\n{'scenario':10s} {'seed':>5s} {'trace ops':>9s} {'epochs':>7s} {'states':>9s} {'violations':>10s} "
          f"{'states/s':>9s}")
    for r in runs:
        rate = r["states"] / r["wall_s"] if r.get("wall_s") else 0
        print(f"{r['scenario']:10s} {r['seed']:>5d} {r['trace_ops']:>9d} {r['epochs']:>7d} {r['states']:>9d} "
              f"{r['violations']:>10d} {rate:>9.0f}")
    print(f"\n{'model':10s} {'states':>9s} {'violations':>10s} {'states/s':>9s}")
    vpm = summary.get("violations_per_model", {})
    rates = summary.get("states_per_sec_per_model", {})
    for m, n in summary.get("models", {}).items():
        print(f"{m:10s} {n:>9d} {vpm.get(m, 0):>10d} {rates.get(m, 0):>9.0f}")
    print(f"\ntotal: {summary['states']} states, {summary['violations']} violations, "
          f"{summary['states_per_sec']:.0f} states/s, {summary['wall_s']:.1f} s  ({summary['engine']})")
    for f in summary.get("failures", [])[:10]:
        print(f"  VIOLATION [{f['invariant']}] {f['scenario']} seed {f['seed']}: {f['choice']}")
        if f.get("reproducer"):
            print(f"    reproduce: scripts/powercut repro {f['reproducer']}")
    if len(summary.get("failures", [])) > 10:
        print(f"  ... and {len(summary['failures']) - 10} more (see {out or 'the JSON'})")


def sweep_args(args):
    """pcsweep arguments for the common options."""
    a = ["--scenario", args.scenario, "--seed", str(args.seed), "--seeds", str(args.seeds),
         "--models", args.models]
    if args.shard:
        a += ["--shard", args.shard]
    if args.max_states:
        a += ["--max-states", str(args.max_states)]
    if args.max_seconds:
        a += ["--max-seconds", str(args.max_seconds)]
    return a


def run_sweep(args, quiet_table=False):
    """Runs one sweep; returns (status, summary, run_dir)."""
    pcsweep = pcsweep_path(args.preset)
    out = args.out or new_run_dir("sweep", args.seed)
    os.makedirs(out, exist_ok=True)
    sj, ju = os.path.join(out, "sweep.json"), os.path.join(out, "junit.xml")
    cmd = [pcsweep, "sweep"] + sweep_args(args) + ["--json", sj, "--junit", ju,
                                                   "--repro-dir", os.path.join(out, "repro")]
    if args.trace:
        cmd = [pcsweep, "sweep", "--trace", args.trace, "--models", args.models, "--json", sj, "--junit", ju,
               "--repro-dir", os.path.join(out, "repro")]
        if args.shard:
            cmd += ["--shard", args.shard]
        if args.max_states:
            cmd += ["--max-states", str(args.max_states)]
        if args.max_seconds:
            cmd += ["--max-seconds", str(args.max_seconds)]
    cmd += list(getattr(args, "extra", []) or [])
    status, summary = run_summarized(cmd, "pcsweep", sj, ju, out, args.json, args.junit)
    if not quiet_table:
        print_summary(summary, sj)
        print(f"\nrun directory: {out}")
    return status, summary, out


def cmd_sweep(args):
    if args.trace and args.checker != "inprocess":
        try:
            from . import extsweep
        except ImportError as e:
            raise UsageError("external checkers are not available in this build") from e
        return extsweep.run_external_sweep(args)
    if args.seeds < 1:
        raise UsageError("--seeds must be at least 1")
    status, _, _ = run_sweep(args)
    return status


# ---- repro ---------------------------------------------------------------------
def repro_pctrace(args):
    cmd = [pcsweep_path(args.preset), "repro", args.file]
    if args.minimize is not None:
        outp = args.minimize or os.path.splitext(args.file)[0] + ".min.pctrace"
        cmd += ["--minimize", outp]
    if args.rerun:
        cmd.append("--rerun")
    if args.save_image:
        cmd += ["--save-image", args.save_image]
    if args.json:
        cmd += ["--json", args.json]
    cmd += list(args.extra or [])
    rc = run(cmd, check=False).returncode
    if rc == 1 and args.minimize is None:
        from . import repro  # the log entries and the replay's sector diff of the failing state
        repro.explain_pctrace(args, cmd[0])
    return rc


# (predicate, handler) pairs; the first whose predicate accepts the file runs.
REPRO_HANDLERS = [(is_pctrace, repro_pctrace)]


def cmd_repro(args):
    if not os.path.exists(args.file):
        raise UsageError(f"{args.file}: no such file")
    if getattr(args, "target", None):
        from . import repro  # any file is an input of the named fuzz target
        return repro.repro_fuzz(args)
    for accepts, handler in REPRO_HANDLERS:
        try:
            ok = accepts(args.file)
        except OSError as e:
            raise UsageError(f"{args.file}: {e}") from e
        if ok:
            return handler(args)
    raise UsageError(f"{args.file}: not an artifact this build knows (a .pctrace reproducer, a fault reproducer, "
                     f"a VHDX image, a fuzz crash -- give --target when its path names no fuzz target -- or a "
                     f"regression directory with meta.json)")
