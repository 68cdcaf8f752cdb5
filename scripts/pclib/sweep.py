"""`powercut sweep`: the crash-point sweep.

sweep runs the C program pcsweep: deterministic workloads on a simulated
disk, the power cut at every point under every crash model, each state
judged by the oracle.  Violations are grouped by signature (invariant,
model class, scenario, structure): one reproducer each, minimized
(--minimize-seconds), with a count and example states.  A sweep stopped by
a limit says how many of its planned states it judged ("20 of 106").
Results go to a run directory (default reports/runs/<id>/): sweep.json
(summary), junit.xml (one test case per run -- skipped when the run did not
finish, failed with --require-complete -- and one failed case per
signature), repro/, and a summary table on stdout.  Arguments and outputs
are checked before anything runs or is created.  Options not listed here
are passed to pcsweep unchanged (see `pcsweep --help`).  With --trace and
--checker vhdxtool|qemu|both|'CMD {image}' the crash states of a recorded
trace go to external checkers instead (docs/external.md; the options of the group
"external checkers").

Its reproducers are re-run by `powercut repro` (repro.py).

Exit status: 0 no violation; 1 violations (or an incomplete sweep with
--require-complete); 2 usage or infrastructure error.
"""
import os
import re
import time

from . import build, junit, registry, setup
from .common import (EXIT_USAGE, ROOT, LostOutput, TimeoutExpired, UsageError, check_output_dir, check_output_file,
                     run, run_summarized, say, tool, write_json)


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
    p.add_argument("--models", default="all", help="comma list of crash models (the registry: `pcsweep models`), "
                                                   "all, or a class: power, corruption (default all)")
    p.add_argument("--shard", help="K/N: judge only this shard of the states (default: from the launcher's "
                                   "environment: TEST_SHARD_INDEX/TEST_TOTAL_SHARDS, JOB_COMPLETION_INDEX with "
                                   "--shards, SLURM_ARRAY_TASK_ID/COUNT; else 0/1; `pcsweep shard --help`)")
    p.add_argument("--shards", type=int, help="N: the shards of a Kubernetes Indexed Job (the index comes from "
                                              "JOB_COMPLETION_INDEX)")
    p.add_argument("--judges", help="comma list of oracle,reference,view,unwritten,protocol or all (default: "
                                    "pcsweep's, all; `pcsweep sweep --help` says what each checks)")
    p.add_argument("--max-states", type=int, help="stop after this many states (the summary says how many of the "
                                                  "planned states were judged)")
    p.add_argument("--max-seconds", type=int, help="stop after this long")
    p.add_argument("--json", help="also write the summary here")
    p.add_argument("--junit", help="also write JUnit XML here")
    p.add_argument("--out", help="run directory (default reports/runs/sweep-<time>-s<seed>/)")
    p.add_argument("--require-complete", action="store_true",
                   help="a sweep that did not judge every planned state fails (JUnit failure, exit status 1) "
                        "instead of being reported as skipped")
    p.add_argument("--minimize-seconds", type=float, default=20.0,
                   help="time to shrink the reproducer of each violation signature (`pcsweep repro --minimize`; "
                        "workload sweeps only; default 20, 0 = keep the first state's reproducer as it is)")
    p.add_argument("--trace", help="sweep a saved trace instead of running workloads")
    from . import extsweep
    p.add_argument("--checker", default="inprocess",
                   help="with --trace: judge states in-process (inprocess, the default) or with external checkers: "
                        + extsweep.CHECKER_HELP)
    p.add_argument("--preset", default="default", help="build preset of pcsweep (default: default)")
    p.add_argument("--mutant", help="sweep a planted bug's build instead of the engine (harness/mutants/NAME.patch, "
                                    "`powercut mutants --list`): what the bug looks like in a report, and the "
                                    "history's new/known/fixed cycle")
    g = p.add_argument_group("external checkers (with --trace and --checker vhdxtool|qemu|both|'CMD {image}'; "
                             "docs/external.md)")
    extsweep.add_arguments(g, only_extra=True)


def add_parser(sub):
    p = sub.add_parser("sweep", help="cut the power at every point of workloads and judge each crash state",
                       description=__doc__)
    add_sweep_args(p)
    p.set_defaults(func=cmd_sweep, passthrough=True)


def pcsweep_path(preset):
    setup.ensure(quiet=True)
    build.ensure_built(preset, quiet=True)
    path = tool(preset, "pcsweep")
    if not os.path.exists(path):
        raise UsageError(f"pcsweep was not built in preset {preset}")
    return path


def validate_sweep_args(args, pcsweep):
    """Every argument is checked before anything is created (a bad one is
    exit status 2, and no empty run directory is left behind); the names
    come from pcsweep's registries."""
    if args.seeds < 1:
        raise UsageError("--seeds must be at least 1")
    for opt in ("max_states", "max_seconds", "seed"):
        v = getattr(args, opt, None)
        if v is not None and v < 0:
            raise UsageError(f"--{opt.replace('_', '-')} must not be negative")
    # --shard, else the launcher's environment: one rule, pcsweep's (exit 2
    # on a bad value); the sweep is then run with the resolved shard.
    sh = registry.shard(pcsweep, args.shard, getattr(args, "shards", None))
    args.shard = sh["shard"]
    args.shard_source = sh["source"]
    args.shards = None
    models = set(registry.model_names(pcsweep)) | set(registry.model_groups(pcsweep))
    bad = [m for m in args.models.split(",") if m.strip() not in models]
    if bad or not args.models:
        raise UsageError(f"--models: unknown model(s) {', '.join(bad) or repr(args.models)} "
                         f"(known: {', '.join(sorted(models))})")
    if not args.trace:
        scen = registry.scenarios(pcsweep)
        names = [x.strip() for x in args.scenario.split(",")]
        bad = [x for x in names if x not in scen and x != "all"]
        if bad or not names:
            raise UsageError(f"--scenario: unknown scenario(s) {', '.join(bad) or repr(args.scenario)} "
                             f"(known: {', '.join(scen)}, all)")


def print_summary(summary, out=None):
    """The summary table of a sweep.json (stdout): runs, models, coverage of
    the planned work, and one line per violation signature."""
    runs = summary.get("runs", [])
    print(f"\n{'scenario':10s} {'seed':>5s} {'trace ops':>9s} {'epochs':>13s} {'states':>9s} {'planned':>9s} "
          f"{'violations':>10s} {'states/s':>9s}")
    for r in runs:
        rate = r["states"] / r["wall_s"] if r.get("wall_s") else 0
        ep = f"{r.get('next_epoch', r['epochs'])}/{r.get('epochs_total', r['epochs'])}"
        planned = r.get("states_planned")
        print(f"{r['scenario']:10s} {r['seed']:>5d} {r['trace_ops']:>9d} {ep:>13s} {r['states']:>9d} "
              f"{planned if planned is not None else '?':>9} {r['violations']:>10d} {rate:>9.0f}"
              + ("" if r.get("complete", True) else "  INCOMPLETE"))
    print(f"\n{'model':10s} {'states':>9s} {'violations':>10s} {'states/s':>9s}")
    vpm = summary.get("violations_per_model", {})
    rates = summary.get("states_per_sec_per_model", {})
    for m, n in summary.get("models", {}).items():
        print(f"{m:10s} {n:>9d} {vpm.get(m, 0):>10d} {rates.get(m, 0):>9.0f}")
    cov = summary.get("coverage") or {}
    if summary.get("shard") and summary.get("shard") != "0/1":
        print(f"\nshard {summary['shard']} (from {summary.get('shard_source', '?')})")
    print(f"\ntotal: {summary['states']} states, {summary['violations']} violations, "
          f"{summary['states_per_sec']:.0f} states/s, {summary['wall_s']:.1f} s  ({summary['engine']})")
    print(f"coverage: {cov.get('text', '?')}" + ("" if summary.get("complete", True) else
                                                 f"; INCOMPLETE (stopped by {cov.get('stopped_by') or '?'}): "
                                                 f"states not judged may hold violations"))
    sigs = summary.get("signatures", [])
    if sigs:
        print(f"\n{summary['violations']} violations in {len(sigs)} signature(s) "
              f"(invariant | model class | scenario | structure):")
    for g in sigs:
        ex = g["examples"][0]
        print(f"  {g['count']:6d}  {g['signature']}\n          first: seed {ex['seed']} {ex['choice']}")
        for e in g["examples"][1:]:
            print(f"          also:  seed {e['seed']} {e['choice']}")
        rep = g.get("minimized") or g.get("reproducer")
        if rep:
            print(f"          reproduce: scripts/powercut repro {rep}"
                  + (f" (minimized from {g['reproducer']})" if g.get("minimized") else ""))
        elif g.get("no_reproducer"):
            print(f"          no reproducer: {g['no_reproducer']}")


def minimize_signatures(pcsweep, summary, seconds, summary_path):
    """Shrinks each signature's reproducer (workload traces only) with
    `pcsweep repro --minimize`; the smaller one is recorded as
    "minimized" next to "reproducer" in the summary."""
    if seconds <= 0:
        return
    changed = False
    for g in summary.get("signatures", []):
        rep = g.get("reproducer")
        if not rep or g.get("scenario") == "external" or g.get("invariant") == "workload-failed":
            continue
        dest = os.path.splitext(rep)[0] + ".min.pctrace"
        cmd = [pcsweep, "repro", rep, "--minimize", dest, "--minimize-seconds", str(int(max(1, seconds)))]
        try:
            cp = run(cmd, check=False, capture=True, timeout=seconds + 120)
        except TimeoutExpired:
            continue
        out = cp.stdout.decode(errors="replace")
        if cp.returncode == 1 and os.path.exists(dest):
            g["minimized"] = dest
            m = re.search(r"minimized: (\d+) of (\d+) workload ops", out)
            if m:
                g["minimized_ops"] = [int(m.group(1)), int(m.group(2))]
            changed = True
    if changed:
        write_json(summary_path, summary)


def sweep_args(args):
    """pcsweep arguments for the common options."""
    a = ["--scenario", args.scenario, "--seed", str(args.seed), "--seeds", str(args.seeds),
         "--models", args.models]
    if args.shard:
        a += ["--shard", args.shard]
    if getattr(args, "judges", None):
        a += ["--judges", args.judges]
    if args.max_states:
        a += ["--max-states", str(args.max_states)]
    if args.max_seconds:
        a += ["--max-seconds", str(args.max_seconds)]
    if getattr(args, "sweep_seed", None) is not None:
        a += ["--sweep-seed", str(args.sweep_seed)]
    if getattr(args, "require_complete", False):
        a.append("--require-complete")
    return a


EXTERNAL_ONLY = ("jobs", "batch", "markdown", "keep_failures", "no_probe", "no_compare", "timeout", "verbose",
                 "qemu_mode")


def run_sweep(args, quiet_table=False):
    """Runs one sweep; returns (status, summary, run_dir)."""
    pcsweep = pcsweep_path(args.preset)
    if getattr(args, "mutant", None):
        from . import mutants
        found = [m for m in mutants.list_mutants() if m["name"] == args.mutant]
        if not found:
            raise UsageError(f"--mutant {args.mutant}: no such planted bug in harness/mutants "
                             f"(powercut mutants --list)")
        pcsweep = mutants.build_mutant(found[0], quiet=True)
    validate_sweep_args(args, pcsweep)
    if args.trace:
        from .extsweep import check_trace_arg
        check_trace_arg(args.trace)
    # Outputs before any work: a path that cannot be written is exit 2 now,
    # not a traceback after the sweep.
    check_output_file(args.json, "--json")
    check_output_file(args.junit, "--junit")
    if args.out:
        check_output_dir(args.out, "--out")
    out = args.out or new_run_dir("sweep", args.seed)
    sj, ju = os.path.join(out, "sweep.json"), os.path.join(out, "junit.xml")
    if args.trace:
        cmd = [pcsweep, "sweep", "--trace", args.trace, "--models", args.models]
        if args.shard:
            cmd += ["--shard", args.shard]
        if getattr(args, "judges", None):
            cmd += ["--judges", args.judges]
        if args.max_states:
            cmd += ["--max-states", str(args.max_states)]
        if args.max_seconds:
            cmd += ["--max-seconds", str(args.max_seconds)]
        if getattr(args, "sweep_seed", None) is not None:
            cmd += ["--sweep-seed", str(args.sweep_seed)]
        if args.require_complete:
            cmd.append("--require-complete")
    else:
        cmd = [pcsweep, "sweep"] + sweep_args(args)
    cmd += ["--json", sj, "--repro-dir", os.path.join(out, "repro")]
    cmd += list(getattr(args, "extra", []) or [])
    say(f"sweep: shard {args.shard} (from {args.shard_source})")
    status, summary = run_summarized(cmd, "pcsweep", sj, ju, out,
                                     junit_of=lambda s: junit.sweep(s, args.seed, args.require_complete))
    # pcsweep was given the resolved shard: the source is the driver's
    summary["shard_source"] = args.shard_source
    write_json(sj, summary)
    if summary.get("signatures"):
        minimize_signatures(pcsweep, summary, args.minimize_seconds, sj)
    lost = []
    for src, dst, what in ((sj, args.json, "--json"), (ju, args.junit, "--junit")):
        if dst:
            try:
                from .common import save_copy
                save_copy(src, dst, what)
            except LostOutput as e:
                lost.append(str(e))
    if not quiet_table:
        print_summary(summary, sj)
        print(f"\nrun directory: {out}")
    for m in lost:
        say(f"sweep: {m}")
    return (EXIT_USAGE if lost else status), summary, out


def cmd_sweep(args):
    if args.checker != "inprocess":
        from . import extsweep
        extsweep.parse_checker(args.checker)   # a bad --checker is a usage error before anything else
        if not args.trace:
            raise UsageError(f"--checker {args.checker} judges the crash states of a recorded trace: give --trace FILE "
                             f"(from `powercut record` or `pcsweep --save-trace`); without --trace the sweep runs "
                             f"the workloads in-process")
        from . import extsweep
        return extsweep.run_external_sweep(args)
    used = [o for o in EXTERNAL_ONLY if hasattr(args, o)]
    if used:
        raise UsageError(f"--{used[0].replace('_', '-')} belongs to the external-checker sweep "
                         f"(--trace FILE --checker vhdxtool|qemu|both|'CMD {{image}}')")
    status, _, _ = run_sweep(args)
    return status
