"""`powercut bench`: run the benchmarks and record their figures.

engine   vhdx_bench: CRC-32C per implementation, open + replay + close of a
         full 1 MiB log on a file, open of 1 GiB / 1 TiB images.
sweep    crash states judged per second, per model, on the default scenarios
         with a 64 MiB disk, 1 MiB blocks and a 1 MiB log (the rates count
         judging time per model; the workload runs are reported apart).
rss      peak RSS of a sweep over a 100 GiB disk with ~200 MiB written.
scaling  states per second for traces of ~1k, 10k and 100k operations
         (every state of each trace; median of 3 runs per point).
naive    the same states materialized as files and judged by vhdxtool
         processes (replay + check), on a sample, and the speed-up of the
         in-process sweep over it.
sweepcov what the default crash sweep itself executes of the engine: the
         sweep with its defaults (`pcsweep sweep`: every scenario, every
         model, seed 1) run by the coverage preset's pcsweep (llvm-cov
         instrumentation), then line, branch, region and function coverage
         of engine/src/*.c, in total and per file (llvm-cov-14 export); the
         profile is kept beside the JSON for `llvm-cov-14 show`.  Also the
         same sweep's states/s and wall time with the measured preset's
         (uninstrumented) pcsweep.  The fuzz corpora's coverage is the
         campaign's (powercut campaign); this is the sweep's own.
Figures go to a JSON file (default reports/runs/bench-<time>/bench.json) and
a table on stdout.  --only picks sections; --quick shortens every one.
"""
import glob
import json
import os
import shutil
import tempfile
import time

from . import build, setup
from .common import BUILD, DEVNULL, ROOT, InfraError, UsageError, run, say, tool, write_json

SECTIONS = ["engine", "sweep", "rss", "scaling", "naive", "sweepcov"]
COV_KINDS = ("lines", "branches", "regions", "functions")
SMALL = ["--virtual-size", "64M", "--block-size", "1M", "--log-size", "1M"]


def add_parser(sub):
    p = sub.add_parser("bench", help="run the benchmarks and record figures", description=__doc__)
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--quick", action="store_true", help="short runs (a smoke test of the benchmarks)")
    p.add_argument("--only", help="comma list of sections: " + ",".join(SECTIONS))
    p.add_argument("--dir", help="directory for benchmark files (default: build/bench-tmp)")
    p.add_argument("--preset", default="default", help="build preset to measure (default: default)")
    p.set_defaults(func=cmd_bench)


def _sweep_json(pcsweep, args, quiet=True):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "s.json")
        cp = run([pcsweep, "sweep", "--quiet", "--json", out] + args, check=False, capture=True, quiet=quiet)
        if cp.returncode not in (0, 1):
            raise UsageError(f"pcsweep failed: {cp.stderr.decode(errors='replace')[-400:]}")
        with open(out) as f:
            return json.load(f)


def bench_engine(preset, workdir, quick):
    with tempfile.TemporaryDirectory() as d:
        j = os.path.join(d, "engine.json")
        cmd = [tool(preset, "vhdx_bench"), "--dir", workdir, "--json", j] + (["--quick"] if quick else [])
        run(cmd)
        with open(j) as f:
            return json.load(f)


def bench_sweep(pcsweep, quick):
    args = SMALL + ["--scenario", "all", "--models", "all"]
    if quick:
        args += ["--max-states", "20000"]
    s = _sweep_json(pcsweep, args, quiet=False)
    judged = sum(r["wall_s"] for r in s["runs"])
    return {"config": "64 MiB disk, 1 MiB blocks, 1 MiB log, all scenarios, all models, seed 1",
            "command": "pcsweep sweep " + " ".join(args),
            "states": s["states"], "wall_s": s["wall_s"], "states_per_sec_overall": s["states_per_sec"],
            "states_per_sec_judging": round(s["states"] / judged, 1) if judged else 0,
            "states_per_sec_per_model": s["states_per_sec_per_model"], "models": s["models"],
            "violations": s["violations"]}


def bench_rss(pcsweep, quick):
    ops = "150" if quick else "700"
    args = ["sweep", "--quiet", "--scenario", "fill", "--virtual-size", "100G", "--ops", ops,
            "--models", "prefix,drop,torn,recovery", "--max-seconds", "20" if quick else "120"]
    with tempfile.TemporaryDirectory() as d:
        rec = os.path.join(d, "t.pctrace")
        cp = run([pcsweep, "record", rec, "--scenario", "fill", "--virtual-size", "100G", "--ops", ops],
                 capture=True)
        written = cp.stdout.decode().split(" bytes written")[0].rsplit(" ", 1)[-1]
        tf = os.path.join(d, "time")
        out = os.path.join(d, "s.json")
        run(["/usr/bin/time", "-f", "%M", "-o", tf, pcsweep] + args + ["--json", out], check=False, capture=True)
        with open(tf) as f:
            kib = int(f.read().strip().splitlines()[-1])
        with open(out) as f:
            s = json.load(f)
    return {"config": f"fill, 100 GiB disk, {ops} ops", "bytes_written": int(written),
            "peak_rss_mib": round(kib / 1024, 1), "states": s["states"],
            "command": "/usr/bin/time -f %M pcsweep " + " ".join(args)}


def bench_scaling(pcsweep, quick):
    """~1k, 10k, 100k trace operations, every state of each trace judged
    (the incremental advance is paid once per trace either way); each point
    is the median of 3 runs (1 with --quick, which also skips 100k)."""
    import statistics
    points = [200, 2600, 28000] if not quick else [200, 2600]
    reps = 1 if quick else 3
    out = []
    for ops in points:
        args = SMALL + ["--scenario", "batch", "--ops", str(ops), "--models", "prefix,drop,torn"]
        runs = [_sweep_json(pcsweep, args)["runs"][0] for _ in range(reps)]
        rates = sorted(r["states"] / r["wall_s"] for r in runs)
        r = runs[0]
        out.append({"trace_ops": r["trace_ops"], "states": r["states"], "runs": reps,
                    "sweep_s": round(statistics.median(x["wall_s"] for x in runs), 3),
                    "states_per_sec": round(statistics.median(rates), 1),
                    "command": "pcsweep sweep --quiet " + " ".join(args)})
    rates = [p["states_per_sec"] for p in out]
    return {"points": out, "max_over_min": round(max(rates) / min(rates), 2)}


def bench_naive(pcsweep, vhdxtool, workdir, quick):
    """Materialize a sample of states and judge each with processes."""
    sample = 40 if quick else 200
    d = os.path.join(workdir, "naive")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    tr = os.path.join(d, "t.pctrace")
    run([pcsweep, "record", tr, "--scenario", "batch"] + SMALL, capture=True)
    inproc = _sweep_json(pcsweep, ["--trace", tr, "--models", "prefix,drop,torn,reorder"])
    run([pcsweep, "export", "--trace", tr, "--out", os.path.join(d, "states"), "--models", "prefix,drop,torn,reorder",
         "--max-states", str(sample)], capture=True)
    images = []
    with open(os.path.join(d, "states", "manifest.jsonl")) as f:
        for line in f:
            images.append(json.loads(line)["image"])
    t0 = time.time()
    bad = 0
    for img in images:
        work = img + ".work"
        shutil.copyfile(img, work)
        # printed once each: the loop is timed
        r1 = run([vhdxtool, "replay", work], check=False, stdout=DEVNULL, stderr=DEVNULL, quiet=img != images[0])
        r2 = run([vhdxtool, "check", work], check=False, stdout=DEVNULL, stderr=DEVNULL, quiet=img != images[0])
        bad += r1.returncode != 0 or r2.returncode != 0
        os.remove(work)
    naive_rate = len(images) / (time.time() - t0)
    shutil.rmtree(d, ignore_errors=True)
    rate = inproc["states"] / inproc["wall_s"]
    return {"sample": len(images), "naive_states_per_sec": round(naive_rate, 1), "naive_failures": bad,
            "inprocess_states_per_sec": round(rate, 1), "speedup": round(rate / naive_rate, 1),
            "note": "naive = copy the image, vhdxtool replay, vhdxtool check (no data oracle); "
                    "in-process = full oracle, same trace and models"}


def coverage_figures(export, root):
    """Per-file and total figures from `llvm-cov export -summary-only` JSON:
    {"totals": {kind: {covered, count, percent}}, "files": {path: {...}}},
    paths relative to root, only the COV_KINDS."""
    def pick(summary):
        return {k: {"covered": v.get("covered", 0), "count": v.get("count", 0),
                    "percent": round(v.get("percent", 0.0), 2)}
                for k, v in summary.items() if k in COV_KINDS}
    data = export["data"][0]
    files = {os.path.relpath(f["filename"], root): pick(f["summary"]) for f in data.get("files", [])}
    return {"totals": pick(data["totals"]), "files": dict(sorted(files.items()))}


def default_sweep_speed(pcsweep, quick):
    """The default sweep (`pcsweep sweep --quiet --json J`): states, wall time, states/s."""
    args = ["--max-states", "30000"] if quick else []
    s = _sweep_json(pcsweep, args, quiet=False)
    return {"command": "pcsweep sweep --quiet --json J" + (" " + " ".join(args) if args else ""),
            "states": s["states"], "wall_s": s["wall_s"], "states_per_sec": s["states_per_sec"],
            "violations": s["violations"],
            "runs": [{"scenario": r["scenario"], "states": r["states"], "wall_s": r["wall_s"]} for r in s["runs"]]}


def bench_sweepcov(pcsweep, outdir, quick):
    """Engine coverage of the default sweep (see the module doc)."""
    build.ensure_built("coverage", targets=["pcsweep"])
    cov_sweep = tool("coverage", "pcsweep")
    sources = sorted(glob.glob(os.path.join(ROOT, "engine", "src", "*.c")))
    args = ["--max-states", "30000"] if quick else []
    os.makedirs(outdir, exist_ok=True)
    profdata = os.path.join(outdir, "sweepcov.profdata")
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, LLVM_PROFILE_FILE=os.path.join(d, "sweep-%p.profraw"))
        out = os.path.join(d, "s.json")
        t0 = time.time()
        cp = run([cov_sweep, "sweep", "--quiet", "--json", out] + args, check=False, env=env)
        if cp.returncode not in (0, 1) or not os.path.exists(out):
            raise InfraError(f"the instrumented sweep failed (status {cp.returncode})")
        wall = time.time() - t0
        with open(out) as f:
            s = json.load(f)
        raws = glob.glob(os.path.join(d, "sweep-*.profraw"))
        if not raws:
            raise InfraError("the instrumented sweep wrote no profile")
        run(["llvm-profdata-14", "merge", "-sparse", "-o", profdata] + raws)
    cp = run(["llvm-cov-14", "export", "-summary-only", "-instr-profile", profdata, cov_sweep] + sources,
             capture=True)
    fig = coverage_figures(json.loads(cp.stdout), ROOT)
    fig.update({
        "command": "LLVM_PROFILE_FILE=... build/coverage/harness/pcsweep sweep --quiet" +
                   (" " + " ".join(args) if args else ""),
        "report": f"llvm-cov-14 report -show-branch-summary -instr-profile {os.path.relpath(profdata, ROOT)} "
                  f"{os.path.relpath(cov_sweep, ROOT)} engine/src/*.c",
        "show": f"llvm-cov-14 show -show-branches=count -instr-profile {os.path.relpath(profdata, ROOT)} "
                f"{os.path.relpath(cov_sweep, ROOT)} engine/src/FILE.c",
        "profdata": profdata, "states": s["states"], "violations": s["violations"],
        "instrumented_wall_s": round(wall, 1), "scenarios": sorted({r["scenario"] for r in s["runs"]}),
        "speed": default_sweep_speed(pcsweep, quick),
    })
    return fig


def cmd_bench(args):
    sections = args.only.split(",") if args.only else SECTIONS
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise UsageError(f"unknown bench section(s): {', '.join(unknown)} (choose from {', '.join(SECTIONS)})")
    setup.ensure(quiet=True)
    build.ensure_built(args.preset)
    out = args.json or os.path.join(ROOT, "reports", "runs", time.strftime("bench-%Y%m%d-%H%M%S"), "bench.json")
    workdir = args.dir or os.path.join(BUILD, "bench-tmp")
    os.makedirs(workdir, exist_ok=True)
    pcsweep = tool(args.preset, "pcsweep")
    res = {"preset": args.preset, "quick": args.quick, "cpus": os.cpu_count()}
    if "engine" in sections:
        res["engine"] = bench_engine(args.preset, workdir, args.quick)
    if "sweep" in sections:
        res["sweep"] = bench_sweep(pcsweep, args.quick)
        say(f"sweep: {res['sweep']['states_per_sec_judging']} states/s judging "
            f"({res['sweep']['states_per_sec_overall']} overall); per model {res['sweep']['states_per_sec_per_model']}")
    if "rss" in sections:
        res["rss"] = bench_rss(pcsweep, args.quick)
        say(f"rss: {res['rss']['peak_rss_mib']} MiB peak for {res['rss']['bytes_written']} bytes written")
    if "scaling" in sections:
        res["scaling"] = bench_scaling(pcsweep, args.quick)
        say("scaling: " + ", ".join(f"{p['trace_ops']} ops {p['states_per_sec']}/s" for p in res["scaling"]["points"])
            + f" (max/min {res['scaling']['max_over_min']})")
    if "sweepcov" in sections:
        res["sweepcov"] = c = bench_sweepcov(pcsweep, os.path.dirname(os.path.abspath(out)), args.quick)
        t = c["totals"]
        say(f"sweepcov: the default sweep executes {t['lines']['percent']}% of engine lines, "
            f"{t['branches']['percent']}% of branches ({c['states']} states); "
            f"{c['speed']['states_per_sec']} states/s, {c['speed']['wall_s']} s with {args.preset}")
        for path in ("engine/src/log_write.c", "engine/src/vdisk.c", "engine/src/log_replay.c",
                     "engine/src/log_search.c", "engine/src/log_entry.c"):
            f = c["files"].get(path)
            if f:
                say(f"  {path:26s} lines {f['lines']['percent']:6.2f}%  branches {f['branches']['percent']:6.2f}%")
    if "naive" in sections:
        res["naive"] = bench_naive(pcsweep, tool(args.preset, "vhdxtool"), workdir, args.quick)
        say(f"naive: {res['naive']['naive_states_per_sec']} states/s with processes vs "
            f"{res['naive']['inprocess_states_per_sec']} in process: speed-up {res['naive']['speedup']}x")
    write_json(out, res)
    say(f"bench: figures written to {out}")
    return 0
