"""`powercut bench`: run the benchmarks and record their figures.

engine   vhdx_bench: CRC-32C per implementation, open + replay + close of a
         full 1 MiB log on a file, open of 1 GiB / 1 TiB images (its JSON:
         every printed figure with its unit and note, the CRC dispatch and
         the file system of the replay).
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
extsweep the external-checker sweep with QEMU as checker on the committed
         trace record/traces/qemu-io-4cmd.pctrace (every exportable state):
         states/s with one qemu-img/qemu-io process per check
         (--qemu-mode processes, 2 jobs) and with long-lived qemu-io
         sessions (--qemu-mode session, 1 job and 2 jobs), distinct images
         judged, and whether all three give the same outcomes.
fuzz     executions per second of every libFuzzer target (the registry's,
         scripts/pclib/fuzz.py TARGETS, and those the build adds: fuzz_qemu_*
         when the QEMU subject is built), one process each, with sanitizers
         (preset fuzz: ASan + UBSan + libfiu points) and without (preset
         fuzz-nosan).  Each run: the target's fuzz/<target>.options
         [libfuzzer] flags, -seed=1, a fresh empty work directory, the
         committed seed corpus corpus/<target>, -runs=N (N: the [bench]
         section's runs, quick_runs with --quick).  Recorded per target and
         preset: libFuzzer's own exec/s (its DONE line: executions over the
         whole seconds since the start), the wall time and executions per
         wall second measured by the driver (to the millisecond, start-up
         included), executions per CPU second of the process (user + sys,
         less sensitive to a loaded machine), N, the seeds, coverage and
         features at the end, the exact command (WORK: the fresh work
         directory) and the log (bench-fuzz/<preset>/<target>.log beside the
         JSON).  A run that stops before N (a crash or a timeout: a finding;
         its artifact is kept beside the log) has no figures: the section
         says why and the exit status is 1.
Figures go to a JSON file (default reports/runs/bench-<time>/bench.json) and
one line per figure group on stderr.  --only picks sections; --quick
shortens every one.  The JSON's "build" record says what was measured: the
git commit and whether the tracked files differed from it (dirty), the
presets, the compiler (first line of its --version), the time of the run
and how long it took.  `powercut campaign` runs the sweep and fuzz sections
(--quick) on the build it uses and shows them in its report.

Exit status: 0 measured; 1 a fuzz run stopped before its runs (a crash or
a timeout; its figures are missing); 2 usage or infrastructure error (an
unknown section, a build or a tool that failed).
"""
import argparse
import glob
import json
import os
import re
import resource
import shlex
import shutil
import tempfile
import time

from . import build, fuzz, history, setup
from .common import (BUILD, DEVNULL, EXIT_FAIL, EXIT_OK, PYTHON, ROOT, STDOUT, InfraError, TimeoutExpired, UsageError,
                     build_dir, check_output_file, run, say, tool, write_json)

SECTIONS = ["engine", "sweep", "rss", "scaling", "naive", "sweepcov", "extsweep", "fuzz"]
EXT_TRACE = os.path.join("record", "traces", "qemu-io-4cmd.pctrace")
COV_KINDS = ("lines", "branches", "regions", "functions")
SMALL = ["--virtual-size", "64M", "--block-size", "1M", "--log-size", "1M"]


def add_parser(sub):
    p = sub.add_parser("bench", help="run the benchmarks and record figures", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--quick", action="store_true", help="short runs (a smoke test of the benchmarks)")
    p.add_argument("--only", help="comma list of sections: " + ",".join(SECTIONS))
    p.add_argument("--dir", help="directory for benchmark files (default: build/bench-tmp)")
    p.add_argument("--preset", default="default",
                   help="build preset the sections other than fuzz measure (default: default; the fuzz section "
                        "measures the fuzz and fuzz-nosan presets)")
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


def bench_extsweep(preset, quick):
    """The external sweep with QEMU, per-process path vs session path (module doc)."""
    out = {"trace": EXT_TRACE, "runs": []}
    outcomes = []
    for mode, jobs in (("processes", 2), ("session", 1), ("session", 2)):
        args = ["--trace", EXT_TRACE, "--checker", "qemu", "--qemu-mode", mode, "--jobs", str(jobs),
                "--no-compare", "--keep-failures", "0", "--preset", preset] + (["--max-states", "40"] if quick else [])
        with tempfile.TemporaryDirectory() as d:
            j = os.path.join(d, "extsweep.json")
            cp = run([PYTHON, os.path.join(ROOT, "scripts", "powercut"), "sweep"] + args + ["--json", j], cwd=ROOT,
                     check=False, capture=True)
            if cp.returncode not in (0, 1) or not os.path.exists(j):
                raise InfraError(f"the external sweep failed (status {cp.returncode}): "
                                 f"{cp.stderr.decode(errors='replace')[-400:]}")
            with open(j) as f:
                r = json.load(f)
        outcomes.append(r["outcomes"])
        out["runs"].append({"mode": mode, "jobs": jobs, "states": r["states"], "wall_s": r["wall_s"],
                            "states_per_sec": r["states_per_sec"], "unique_images_checked": r["unique_images_checked"],
                            "unique_images_per_sec": r["unique_images_per_sec"],
                            "violating_states": r["violating_states"]["qemu"], "qemu_mode": r.get("qemu_mode"),
                            "command": "scripts/powercut sweep " + " ".join(args)})
    base = out["runs"][0]["states_per_sec"]
    out["speedup"] = {f"{r['mode']}-{r['jobs']}j": round(r["states_per_sec"] / base, 1) if base else None
                      for r in out["runs"][1:]}
    out["same_outcomes"] = all(o == outcomes[0] for o in outcomes)
    return out


# ---- fuzz: executions per second of the libFuzzer targets -----------------------------
FUZZ_PRESETS = {"fuzz": "ASan + UBSan + libfiu points", "fuzz-nosan": "no sanitizers"}
FUZZ_SEED = 1
FUZZ_RUN_TIMEOUT = {False: 900, True: 180}  # seconds per run (full, --quick): past it the run is stopped
DONE_RE = re.compile(r"^#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+)\b.*?\bexec/s: (\d+)", re.M)
DONE_SECONDS_RE = re.compile(r"^Done (\d+) runs in (\d+) second", re.M)
LAST_EXEC_RE = re.compile(r"^#(\d+)\s", re.M)
WHY_RE = re.compile(r"^(?:==\S+== .*(?:ERROR|check failed).*|SUMMARY: .*|ALARM: .*)$", re.M)
ARTIFACT_RE = re.compile(r"Test unit written to (\S+)")


def parse_done(text):
    """libFuzzer's final figures from its output: {"execs", "coverage",
    "features", "execs_per_s", "seconds"} of the DONE line (and the "Done N
    runs in S second(s)" line, seconds None without it), or None when the
    run did not finish (no DONE line: it crashed, timed out or was killed).
    libFuzzer's exec/s is executions over the whole seconds since it
    started (0 for runs under a second)."""
    m = None
    for m in DONE_RE.finditer(text):
        pass
    if not m:
        return None
    d = None
    for d in DONE_SECONDS_RE.finditer(text):
        pass
    return {"execs": int(m.group(1)), "coverage": int(m.group(2)), "features": int(m.group(3)),
            "execs_per_s": int(m.group(4)), "seconds": int(d.group(2)) if d else None}


def stop_reason(text, status):
    """Why a libFuzzer run ended without its DONE line, in one line, and the
    artifact it wrote (or None)."""
    last = [int(x) for x in LAST_EXEC_RE.findall(text)]
    why = [x.strip() for x in WHY_RE.findall(text)]
    art = ARTIFACT_RE.findall(text)
    where = f" after about {last[-1]:,} executions" if last else " before its first status line"
    text = f"stopped with status {status}{where}" + (f": {'; '.join(why[:2])}" if why else "")
    return text, (art[-1] if art else None)


def fuzz_runs(target, quick, options=None):
    """-runs of a target's measurement: the [bench] section of its
    fuzz/<target>.options (runs, or quick_runs with --quick).  A missing or
    bad value is an InfraError naming the file (a new target needs one)."""
    key = "quick_runs" if quick else "runs"
    opts = fuzz.target_options(target) if options is None else options
    v = opts.get("bench", {}).get(key)
    if v is None or not v.isdigit() or int(v) <= 0:
        raise InfraError(f"fuzz/{target}.options: the [bench] section needs {key} = N (a positive count of "
                         f"executions: about ten seconds of the target under ASan for runs), found "
                         f"{v!r}")
    return int(v)


def fuzz_one(preset, target, runs, logdir, quick):
    """One measured libFuzzer run (see the module doc): the figures, or
    "error" (and "artifact") when it stopped before its runs."""
    binary = os.path.join(build_dir(preset), "fuzz", target)
    corpus = os.path.join(fuzz.CORPUS, target)
    if not os.path.exists(binary):
        raise InfraError(f"{binary} is not built (scripts/powercut build --preset {preset} --target {target})")
    seeds = fuzz.count_files(corpus)
    os.makedirs(logdir, exist_ok=True)
    log = os.path.join(logdir, target + ".log")
    for old in glob.glob(os.path.join(logdir, target + "-*")):  # artifacts of an earlier run
        os.remove(old)
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as work:
        cmd = [binary] + fuzz.read_options(target) + [f"-seed={FUZZ_SEED}", f"-runs={runs}",
                                                      f"-artifact_prefix={os.path.join(logdir, target)}-",
                                                      work, corpus]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        with open(log, "w") as f:
            try:
                status = run(cmd, check=False, stdout=f, stderr=STDOUT, cwd=work,
                             timeout=FUZZ_RUN_TIMEOUT[quick]).returncode
            except TimeoutExpired:
                status = None
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        shown = " ".join(shlex.quote(c) for c in cmd).replace(shlex.quote(work), "WORK")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(log, errors="replace") as f:
        text = f.read()
    rec = {"runs": runs, "seeds": seeds, "seed": FUZZ_SEED, "command": shown, "log": log,
           "wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}
    done = parse_done(text)
    if status != 0 or not done:
        why, art = stop_reason(text, status if status is not None else
                               f"none (stopped after {FUZZ_RUN_TIMEOUT[quick]} s)")
        rec.update(error=why, artifact=art)
        return rec
    rec.update(execs=done["execs"], libfuzzer_execs_per_s=done["execs_per_s"], libfuzzer_s=done["seconds"],
               wall_execs_per_s=round(done["execs"] / wall, 1) if wall > 0 else None,
               execs_per_cpu_s=round(done["execs"] / cpu, 1) if cpu > 0 else None,
               coverage=done["coverage"], features=done["features"])
    return rec


LIBFUZZER_RATE_MIN_S = 5  # libFuzzer's exec/s is shown for runs this long (it divides by whole seconds)


def fuzz_cell(rec):
    """One preset's figures of a target, for the summary line: executions
    per wall second and per CPU second, and libFuzzer's own exec/s when its
    run lasted LIBFUZZER_RATE_MIN_S or more (under that its whole-second
    clock is too coarse; the JSON has it anyway)."""
    if rec is None:
        return "not built"
    if rec.get("error"):
        return "STOPPED: " + rec["error"]
    own = f" (libFuzzer {rec['libfuzzer_execs_per_s']:,})" if (rec.get("libfuzzer_s") or 0) >= LIBFUZZER_RATE_MIN_S \
        else ""
    return f"{rec['wall_execs_per_s']:,.0f} exec/s wall{own}, {rec['execs_per_cpu_s']:,.0f} per CPU-s"


def bench_fuzz(outdir, quick, targets=None, presets=tuple(FUZZ_PRESETS), quiet=False):
    """The fuzz section (module doc): every target of each preset's build
    (or only `targets`), built first through build.ensure_built.  Returns
    {"config", "seed", "quick", "presets", "targets": {target: {preset:
    record or None (not in that build)}}, "stopped": [...]}."""
    per_preset = {}
    for preset in presets:
        if targets:
            build.ensure_built(preset, list(targets), quiet=quiet)
            per_preset[preset] = list(targets)
        else:
            build.ensure_built(preset, quiet=quiet)     # configures; the preset's own targets
            names = fuzz.built_targets(preset)
            extra = [t for t in names if t not in (build.preset_targets(preset) or [])]
            if extra:                                   # fuzz_qemu_*: not in the build preset's list
                build.ensure_built(preset, extra, quiet=quiet)
            per_preset[preset] = names
    order = list(dict.fromkeys(t for p in presets for t in per_preset[p]))
    runs = {t: fuzz_runs(t, quick) for t in order}    # every count checked before the first run
    out = {"config": "one process per target and preset: build/<preset>/fuzz/<target> <fuzz/<target>.options "
                     "[libfuzzer] flags> -seed=1 -runs=N -artifact_prefix=... WORK corpus/<target> (WORK a fresh "
                     "empty directory; N from the options' [bench] section)",
           "seed": FUZZ_SEED, "quick": quick, "presets": {p: FUZZ_PRESETS.get(p, p) for p in presets},
           "targets": {}, "stopped": []}
    for t in order:
        row = out["targets"][t] = {}
        for preset in presets:
            if t not in per_preset[preset]:
                row[preset] = None
                continue
            row[preset] = rec = fuzz_one(preset, t, runs[t], os.path.join(outdir, "bench-fuzz", preset), quick)
            if rec.get("error"):
                out["stopped"].append(f"{t} ({preset}): {rec['error']}"
                                      + (f"; artifact {rec['artifact']}" if rec.get("artifact") else ""))
        seeds = next((r["seeds"] for r in row.values() if r), 0)
        say(f"fuzz: {t:22s} N={runs[t]:,} ({seeds} seeds)  "
            + " | ".join(f"{p}: {fuzz_cell(row[p])}" for p in presets))
    return out


# ---- the run ----------------------------------------------------------------------------
def compiler_version(preset):
    """First line of `<the preset's C compiler> --version` (CMakeCache.txt's
    CMAKE_C_COMPILER; clang-14, the presets' compiler, when the tree is not
    configured), or None when it cannot run."""
    cc = build.cache_values(build_dir(preset), ("CMAKE_C_COMPILER",)).get("CMAKE_C_COMPILER") or "clang-14"
    try:
        cp = run([cc, "--version"], check=False, capture=True, quiet=True, timeout=30)
    except (InfraError, TimeoutExpired):
        return None
    lines = cp.stdout.decode(errors="replace").splitlines()
    return lines[0].strip() if cp.returncode == 0 and lines else None


def build_record(preset, presets, started):
    """What a bench JSON measured: {"commit", "dirty", "preset" (the build
    the non-fuzz sections measured, None when only the fuzz section ran),
    "presets" (every build measured), "compiler", "time"}; measure() adds
    "elapsed_s"."""
    return {"commit": history.git_commit(), "dirty": history.git_dirty(), "preset": preset,
            "presets": list(presets), "compiler": compiler_version(presets[0] if presets else preset),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started))}


def check_sections(sections):
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise UsageError(f"unknown bench section(s): {', '.join(unknown)} (choose from {', '.join(SECTIONS)})")


def measure(sections, preset, quick, out, workdir=None, targets=None, quiet=False):
    """Runs the sections (each once, in a fixed order: the fuzz section
    last), writes the figures to out and returns them.  preset: the build
    the other sections measure; targets: the fuzz section's targets
    (default: every fuzz target of its builds); quiet: builds print
    nothing.  Builds what it measures first (build.ensure_built)."""
    check_sections(sections)
    started = time.time()
    uses_preset = any(s != "fuzz" for s in sections)
    if uses_preset:
        build.ensure_built(preset, quiet=quiet)
    presets = ([preset] if uses_preset else []) + (list(FUZZ_PRESETS) if "fuzz" in sections else [])
    workdir = workdir or os.path.join(BUILD, "bench-tmp")
    pcsweep = tool(preset, "pcsweep")
    res = {"build": build_record(preset if uses_preset else None, presets, started), "preset": preset, "quick": quick,
           "cpus": os.cpu_count()}
    if "engine" in sections:
        os.makedirs(workdir, exist_ok=True)
        res["engine"] = bench_engine(preset, workdir, quick)
    if "sweep" in sections:
        res["sweep"] = bench_sweep(pcsweep, quick)
        say(f"sweep: {res['sweep']['states_per_sec_judging']} states/s judging "
            f"({res['sweep']['states_per_sec_overall']} overall); per model {res['sweep']['states_per_sec_per_model']}")
    if "rss" in sections:
        res["rss"] = bench_rss(pcsweep, quick)
        say(f"rss: {res['rss']['peak_rss_mib']} MiB peak for {res['rss']['bytes_written']} bytes written")
    if "scaling" in sections:
        res["scaling"] = bench_scaling(pcsweep, quick)
        say("scaling: " + ", ".join(f"{p['trace_ops']} ops {p['states_per_sec']}/s" for p in res["scaling"]["points"])
            + f" (max/min {res['scaling']['max_over_min']})")
    if "sweepcov" in sections:
        res["sweepcov"] = c = bench_sweepcov(pcsweep, os.path.dirname(os.path.abspath(out)), quick)
        t = c["totals"]
        say(f"sweepcov: the default sweep executes {t['lines']['percent']}% of engine lines, "
            f"{t['branches']['percent']}% of branches ({c['states']} states); "
            f"{c['speed']['states_per_sec']} states/s, {c['speed']['wall_s']} s with {preset}")
        for path in ("engine/src/log_write.c", "engine/src/vdisk.c", "engine/src/log_replay.c",
                     "engine/src/log_search.c", "engine/src/log_entry.c"):
            f = c["files"].get(path)
            if f:
                say(f"  {path:26s} lines {f['lines']['percent']:6.2f}%  branches {f['branches']['percent']:6.2f}%")
    if "naive" in sections:
        os.makedirs(workdir, exist_ok=True)
        res["naive"] = bench_naive(pcsweep, tool(preset, "vhdxtool"), workdir, quick)
        say(f"naive: {res['naive']['naive_states_per_sec']} states/s with processes vs "
            f"{res['naive']['inprocess_states_per_sec']} in process: speed-up {res['naive']['speedup']}x")
    if "extsweep" in sections:
        res["extsweep"] = e = bench_extsweep(preset, quick)
        say("extsweep (qemu): " + ", ".join(f"{r['mode']} {r['jobs']} job(s) {r['states_per_sec']} states/s"
                                            for r in e["runs"]) + f"; same outcomes: {e['same_outcomes']}")
    if "fuzz" in sections:
        res["fuzz"] = bench_fuzz(os.path.dirname(os.path.abspath(out)), quick, targets, quiet=quiet)
    res["build"]["elapsed_s"] = round(time.time() - started, 1)
    write_json(out, res)
    return res


def cmd_bench(args):
    sections = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else SECTIONS
    check_sections(sections)
    setup.ensure(quiet=True)
    out = args.json or os.path.join(ROOT, "reports", "runs", time.strftime("bench-%Y%m%d-%H%M%S"), "bench.json")
    check_output_file(out, "--json")
    res = measure(sections, args.preset, args.quick, out, workdir=args.dir)
    b = res["build"]
    say(f"bench: figures of commit {(b['commit'] or '?')[:12]}{' (dirty)' if b['dirty'] else ''}, "
        f"{', '.join(b['presets'])}, {b['compiler'] or 'compiler unknown'}, written to {out}")
    stopped = (res.get("fuzz") or {}).get("stopped") or []
    for x in stopped:
        say(f"bench: fuzz run stopped before its runs, no figures: {x}")
    return EXIT_FAIL if stopped else EXIT_OK
