"""Fuzzing commands: `powercut fuzz`, `powercut fuzz-seeds`, `powercut fuzz-mutant`.

fuzz        builds the fuzz preset (libFuzzer + ASan + UBSan) or the afl preset
            (AFL++ persistent mode; afl-cmplog too when present) and runs each
            target for --time seconds on its corpus (corpus/<target>/ seeds,
            new units under corpus/<target>/.work/, ignored by git).  Crashes
            go to the run directory (reports/runs/fuzz-<time>/<target>/crashes).
            Unknown flags are passed to the fuzzing engine unchanged.  Prints
            execs, execs/s, coverage, new units and crashes per target; with
            --json writes them (keys per target: execs, execs_per_sec,
            crashes, timeouts, coverage, new_units, seconds, command).
fuzz-seeds  runs the seed generator (fuzz_gen_corpus, real engine runs) and
            stores every seed as corpus/<target>/<sha1 of its content>.
fuzz-mutant applies a planted-bug patch (harness/mutants/*.patch) to a
            scratch copy of the tree, builds the fuzz preset there and measures
            how long fuzzing alone takes to find it (median of --seeds runs,
            capped at --cap seconds).

Exit status: 0 no crash found (timeouts are reported, not counted: replay
them; fuzz-mutant: ran); 1 crashes found; 2 usage or infrastructure error.
"""
import glob
import hashlib
import os
import re
import shutil
import statistics
import tempfile
import time

from . import build, setup
from .common import (DEVNULL, EXIT_FAIL, EXIT_OK, ROOT, STDOUT, InfraError, TimeoutExpired, UsageError, build_dir,
                     check_output_file, popen, run, save_json, say, write_json)

# The single registry of fuzz targets: name -> properties.
TARGETS = {
    "fuzz_log_replay": {"mutator": True, "what": "log search + replay over a fixed base image, differential vs. harness/ref/ref_log.c"},
    "fuzz_image_open": {"mutator": False, "what": "byte edits to a small image: open, read, write, discard, close, reopen"},
    "fuzz_crash_schedule": {"mutator": False, "replay_preset": "fiu-asan",
                            "what": "workload, cut point, crash choice and an optional fault schedule, "
                                    "judged by the harness (or fault) oracle"},
    "fuzz_log_parse": {"mutator": True, "what": "codecs and entry validation on raw bytes, differential vs. harness/ref/ref_log.c"},
    "fuzz_trace_load": {"mutator": False, "gen_corpus": False,  # seeds: trace_seeds(), not fuzz_gen_corpus
                        "what": "the harness's own inputs: trace parsing (trailer and CRC recomputed so mutations "
                                "reach the records), the reproducer loaders (crash choice, workload, fault plan), "
                                "rebuilding a small reproducer's state, serialize/parse round trip"},
}
FUZZ_DIR = os.path.join(ROOT, "fuzz")
CORPUS = os.path.join(ROOT, "corpus")
MUTANTS = os.path.join(ROOT, "harness", "mutants")


def replay_preset(target):
    """The sanitizer preset whose standalone binary replays one input of
    target outside the fuzzing engine: asan, or fiu-asan where inputs may
    carry a fault schedule that fires only with fault points compiled in
    (the fuzz and afl presets have them)."""
    return TARGETS[target].get("replay_preset", "asan")


def resolve_targets(name):
    if name in (None, "all"):
        return list(TARGETS)
    full = name if name.startswith("fuzz_") else "fuzz_" + name
    if full not in TARGETS:
        raise UsageError(f"unknown target '{name}' (targets: {', '.join(TARGETS)}, all)")
    return [full]


def parse_options(path):
    """A fuzz/<target>.options file as {section: {key: value}} ({} when
    there is none).  The [libfuzzer] section holds libFuzzer's flags (the
    OSS-Fuzz / ClusterFuzzLite contract: those engines read only their own
    sections); [bench] holds `powercut bench`'s run counts (runs,
    quick_runs).  Lines outside a section, comments (#) and lines without
    '=' are ignored."""
    out, section = {}, None
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line.strip("[]").strip()
                out.setdefault(section, {})
                continue
            if section is None or "=" not in line:
                continue
            k, v = (x.strip() for x in line.split("=", 1))
            out[section][k] = v
    return out


def target_options(target):
    """parse_options() of fuzz/<target>.options."""
    return parse_options(os.path.join(FUZZ_DIR, target + ".options"))


def read_options(target):
    """The [libfuzzer] section of fuzz/<target>.options as -key=value flags
    (dict resolved to fuzz/)."""
    flags = []
    for k, v in target_options(target).get("libfuzzer", {}).items():
        if k == "dict":
            v = os.path.join(FUZZ_DIR, v)
        flags.append(f"-{k}={v}")
    return flags


def built_targets(preset):
    """The fuzz targets a configured preset's tree defines, registry order
    first: TARGETS, then the ones CMake adds for that build (FUZZ_TARGETS in
    fuzz/CMakeLists.txt: fuzz_qemu_* when the QEMU subject is built), found
    by asking the build tool for its targets and keeping those with a
    fuzz/<name>.options (every fuzz target has one; fuzz_log_replay_nomut
    and the helper targets do not)."""
    cp = run(["cmake", "--build", build_dir(preset), "--target", "help"], check=False, capture=True, quiet=True)
    if cp.returncode != 0:
        raise InfraError(f"cannot list the targets of {build_dir(preset)} (is it configured? "
                         f"scripts/powercut build --preset {preset})")
    # Ninja prints "name: phony", Makefiles "... name"
    names = set(re.findall(r"^(?:\.\.\. )?(fuzz_\w+)(?::|\s*$)", cp.stdout.decode(errors="replace"), re.M))
    extra = sorted(n for n in names if n not in TARGETS and os.path.exists(os.path.join(FUZZ_DIR, n + ".options")))
    return list(TARGETS) + extra


def count_files(d):
    if not os.path.isdir(d):
        return 0
    return sum(1 for n in os.listdir(d) if os.path.isfile(os.path.join(d, n)))


# ---- libFuzzer -------------------------------------------------------------------
STAT_RE = re.compile(r"^#(\d+)\s+(?:\w+\s+)?cov: (\d+) ft: (\d+)(?: corp: (\d+)/\S+)?.*?exec/s: (\d+)")
FORK_RE = re.compile(r"^#(\d+): cov: (\d+) ft: (\d+) corp: (\d+) exec/s:? (\d+) oom/timeout/crash: (\d+)/(\d+)/(\d+)")
FINAL_RE = re.compile(r"^stat::(\w+):\s+(\d+)")


def parse_libfuzzer(text):
    """Figures from libFuzzer's output (plain or -fork mode)."""
    out = {"execs": 0, "execs_per_sec": 0, "coverage": 0, "features": 0, "corpus": 0, "new_units": None}
    for line in text.splitlines():
        m = FORK_RE.match(line)
        if m:
            out.update(execs=int(m.group(1)), coverage=int(m.group(2)), features=int(m.group(3)),
                       corpus=int(m.group(4)), execs_per_sec=int(m.group(5)))
            continue
        m = STAT_RE.match(line)
        if m:
            out.update(execs=int(m.group(1)), coverage=int(m.group(2)), features=int(m.group(3)),
                       execs_per_sec=int(m.group(5)))
            if m.group(4):
                out["corpus"] = int(m.group(4))
            continue
        m = FINAL_RE.match(line)
        if m:
            k, v = m.group(1), int(m.group(2))
            if k == "number_of_executed_units":
                out["execs"] = v
            elif k == "average_exec_per_sec":
                out["final_execs_per_sec"] = v
            elif k == "new_units_added":
                out["new_units"] = v
    return out


def libfuzzer_command(binary, target, seconds, jobs, work, crashes, extra):
    cmd = [binary] + read_options(target) + [
        f"-max_total_time={seconds}", f"-artifact_prefix={crashes}/", "-print_final_stats=1"]
    if jobs > 1:
        cmd.append(f"-fork={jobs}")
    cmd += list(extra) + [work, os.path.join(CORPUS, target)]
    return cmd


def work_dir(target, work_root=None):
    """Where new units go: corpus/<target>/.work (ignored by git), or
    WORK_ROOT/<target> with --work-root."""
    return os.path.join(work_root, target) if work_root else os.path.join(CORPUS, target, ".work")


def run_libfuzzer(binary, target, seconds, jobs, outdir, extra, log_path, work_root=None):
    work = work_dir(target, work_root)
    crashes = os.path.join(outdir, target, "crashes")
    os.makedirs(work, exist_ok=True)
    os.makedirs(crashes, exist_ok=True)
    before = count_files(work)
    cmd = libfuzzer_command(binary, target, seconds, jobs, work, crashes, extra)
    t0 = time.time()
    with open(log_path, "w") as log:
        p = popen(cmd, stdout=log, stderr=STDOUT, cwd=outdir)
        try:
            p.wait(timeout=seconds * 3 + 120)
        except TimeoutExpired:
            p.kill()
            p.wait()
    elapsed = time.time() - t0
    with open(log_path, errors="replace") as f:
        text = f.read()
    fig = parse_libfuzzer(text)
    if fig["new_units"] is None:
        fig["new_units"] = max(0, count_files(work) - before)
    if not fig["execs_per_sec"] and elapsed > 0:
        fig["execs_per_sec"] = int(fig["execs"] / elapsed)
    crash_files = sorted(glob.glob(os.path.join(crashes, "crash-*")) + glob.glob(os.path.join(crashes, "leak-*")) +
                         glob.glob(os.path.join(crashes, "oom-*")))
    # Timeouts are kept apart: on a loaded machine a stalled process times
    # out on an input that runs in milliseconds (replay it to tell).
    timeout_files = sorted(glob.glob(os.path.join(crashes, "timeout-*")) + glob.glob(os.path.join(crashes, "slow-unit-*")))
    fig.update(crashes=len(crash_files), crash_files=crash_files, timeouts=len(timeout_files),
               timeout_files=timeout_files, seconds=round(elapsed, 1), status=p.returncode,
               command=" ".join(cmd), log=log_path)
    return fig


# ---- AFL++ ----------------------------------------------------------------------
def parse_afl_stats(path):
    st = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if ":" in line:
                    k, v = line.split(":", 1)
                    st[k.strip()] = v.strip()
    return st


def run_afl(target, seconds, jobs, outdir, extra, log_path, work_root=None):
    binary = os.path.join(build_dir("afl"), "fuzz", target)
    cmplog = os.path.join(build_dir("afl-cmplog"), "fuzz", target)
    mutlib = os.path.join(build_dir("afl"), "fuzz", "libpcmutator.so")
    # afl-fuzz wants a flat input directory: the committed seeds only.
    indir = os.path.join(outdir, target, "afl-in")
    os.makedirs(indir, exist_ok=True)
    for n in os.listdir(os.path.join(CORPUS, target)):
        p = os.path.join(CORPUS, target, n)
        if os.path.isfile(p) and not n.startswith("."):
            shutil.copy(p, indir)
    # Beside the libFuzzer corpus, not inside it: libFuzzer reads corpus
    # directories recursively and would load (and die on) AFL++'s crashes.
    afl_out = work_dir(target, work_root) + ".afl"
    os.makedirs(afl_out, exist_ok=True)
    env = dict(os.environ, AFL_NO_UI="1", AFL_SKIP_CPUFREQ="1", AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES="1",
               AFL_AUTORESUME="1", AFL_NO_AFFINITY="1")
    if TARGETS[target]["mutator"] and os.path.exists(mutlib):
        env["AFL_CUSTOM_MUTATOR_LIBRARY"] = mutlib
    dict_path = os.path.join(FUZZ_DIR, target + ".dict")
    procs, t0 = [], time.time()
    for j in range(jobs):
        role = ["-M", "main"] if j == 0 else ["-S", f"sec{j}"]
        cmd = ["afl-fuzz", "-i", indir, "-o", afl_out, "-V", str(seconds), "-t", "10000"] + role
        if os.path.exists(dict_path):
            cmd += ["-x", dict_path]
        if j == 0 and os.path.exists(cmplog):
            cmd += ["-c", cmplog]
        cmd += list(extra) + ["--", binary]
        log = open(log_path if j == 0 else f"{log_path}.{j}", "w")
        procs.append((popen(cmd, stdout=log, stderr=STDOUT, env=env), log, cmd))
    for p, log, _ in procs:
        try:
            p.wait(timeout=seconds * 3 + 120)
        except TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
    elapsed = time.time() - t0
    execs = eps = edges = new_units = crashes = 0
    crash_files = []
    for j in range(jobs):
        name = "main" if j == 0 else f"sec{j}"
        st = parse_afl_stats(os.path.join(afl_out, name, "fuzzer_stats"))
        execs += int(st.get("execs_done", 0))
        eps += float(st.get("execs_per_sec", 0))
        edges = max(edges, int(st.get("edges_found", 0)))
        new_units += max(0, int(st.get("corpus_found", 0)))
        crashes += int(st.get("saved_crashes", st.get("unique_crashes", 0)))
        cdir = os.path.join(afl_out, name, "crashes")
        if os.path.isdir(cdir):
            dest = os.path.join(outdir, target, "crashes")
            os.makedirs(dest, exist_ok=True)
            for n in os.listdir(cdir):
                if n.startswith("id:"):
                    shutil.copy(os.path.join(cdir, n), dest)
                    crash_files.append(os.path.join(dest, n))
    return {"execs": execs, "execs_per_sec": int(eps), "coverage": edges, "new_units": new_units,
            "crashes": crashes, "crash_files": crash_files, "seconds": round(elapsed, 1),
            "status": procs[0][0].returncode, "command": " ".join(procs[0][2]), "log": log_path}


# ---- commands ---------------------------------------------------------------------
def add_parser(sub):
    p = sub.add_parser("fuzz", help="run the fuzz targets (libFuzzer or AFL++); unknown flags go to the engine",
                       description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--engine", choices=["libfuzzer", "afl"], default="libfuzzer")
    p.add_argument("--target", default="all", help=f"one of {', '.join(TARGETS)}, or all (default)")
    p.add_argument("--time", type=int, default=60, help="seconds per target (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=1, help="parallel fuzzing processes per target (default: 1)")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--no-build", action="store_true", help="use the binaries already built")
    p.add_argument("--nomut", action="store_true",
                   help="libFuzzer: fuzz_log_replay without the structure-aware mutator (for comparison)")
    p.add_argument("--out", help="run directory (default: reports/runs/fuzz-<time>)")
    p.add_argument("--work-root", help="new units under WORK_ROOT/<target> instead of corpus/<target>/.work")
    p.add_argument("--bin-dir", help="libFuzzer binaries from this directory (e.g. a ClusterFuzzLite $OUT); "
                                     "implies --no-build")
    p.set_defaults(func=cmd_fuzz, passthrough=True)

    s = sub.add_parser("fuzz-seeds", help="regenerate the seed corpora from real engine runs",
                       description="Runs fuzz_gen_corpus and stores each seed as corpus/<target>/<sha1>.")
    s.add_argument("--preset", default="default", help="preset whose fuzz_gen_corpus to build and run")
    s.add_argument("--generator", help="use this fuzz_gen_corpus binary instead of building one")
    s.add_argument("--clean", action="store_true", help="remove committed seeds the generator no longer makes")
    s.set_defaults(func=cmd_seeds)

    m = sub.add_parser("fuzz-mutant", help="time for fuzzing alone to find a planted bug",
                       description="Applies harness/mutants/NAME.patch to a scratch copy of the tree, builds the "
                                   "fuzz preset there, and fuzzes until the first crash (median over seeds).")
    m.add_argument("--mutant", action="append", help="mutant name or .patch path (default: every *.patch)")
    m.add_argument("--target", action="append", help="fuzz targets to race (default: log_replay, crash_schedule)")
    m.add_argument("--seeds", type=int, default=3, help="runs with seeds 1..N (default: 3)")
    m.add_argument("--cap", type=int, default=600, help="seconds per run before giving up (default: 600)")
    m.add_argument("--json", help="write the figures here")
    m.set_defaults(func=cmd_mutant, passthrough=True)


def cmd_fuzz(args):
    targets = resolve_targets(args.target)
    if args.time <= 0 or args.jobs <= 0:
        raise UsageError("--time and --jobs must be positive")
    check_output_file(args.json, "--json")
    setup.ensure(quiet=True)
    if args.bin_dir:
        if args.engine != "libfuzzer":
            raise UsageError("--bin-dir holds libFuzzer binaries: use it with --engine libfuzzer")
        if not os.path.isdir(args.bin_dir):
            raise UsageError(f"--bin-dir {args.bin_dir} is not a directory")
        args.no_build = True
    if args.engine == "libfuzzer":
        if not args.no_build:
            build.ensure_built("fuzz")
    else:
        if not shutil.which("afl-fuzz"):
            raise InfraError("afl-fuzz is not installed (scripts/powercut setup installs afl++)")
        if not args.no_build:
            build.ensure_built("afl")
            build.ensure_built("afl-cmplog")
    outdir = args.out or os.path.join(ROOT, "reports", "runs", time.strftime("fuzz-%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)
    say(f"fuzz: engine {args.engine}, {len(targets)} target(s), {args.time} s each, {args.jobs} job(s); "
        f"run directory {outdir}")
    results = {}
    for t in targets:
        if not os.path.isdir(os.path.join(CORPUS, t)):
            raise UsageError(f"no seed corpus corpus/{t}/ (scripts/powercut fuzz-seeds makes it)")
        log = os.path.join(outdir, f"{t}.log")
        os.makedirs(os.path.join(outdir, t), exist_ok=True)
        if args.engine == "libfuzzer":
            name = t + ("_nomut" if args.nomut and t == "fuzz_log_replay" else "")
            binary = os.path.join(args.bin_dir or os.path.join(build_dir("fuzz"), "fuzz"), name)
            if not os.path.exists(binary):
                raise InfraError(f"{binary} is not built (scripts/powercut build --preset fuzz)")
            fig = run_libfuzzer(binary, t, args.time, args.jobs, outdir, args.extra, log, args.work_root)
        else:
            fig = run_afl(t, args.time, args.jobs, outdir, args.extra, log, args.work_root)
        results[t] = fig
        say(f"fuzz: {t}: {fig['execs']} execs, {fig['execs_per_sec']} execs/s, coverage {fig['coverage']}, "
            f"{fig['new_units']} new units, {fig['crashes']} crashes, {fig.get('timeouts', 0)} timeouts "
            f"({fig['seconds']} s; log {log})")
        for c in fig["crash_files"]:
            say(f"fuzz:   crash: {c}  (reproduce: build/default/fuzz/{t} {c})")
        for c in fig.get("timeout_files", []):
            say(f"fuzz:   timeout (replay it: a loaded machine stalls processes too): build/default/fuzz/{t} {c}")
    summary = {"engine": args.engine, "time": args.time, "jobs": args.jobs, "targets": results}
    write_json(os.path.join(outdir, "fuzz.json"), summary)
    if args.json:
        save_json(args.json, results)
    total = sum(r["crashes"] for r in results.values())
    say(f"fuzz: {total} crashes in total; figures in {args.json or os.path.join(outdir, 'fuzz.json')}")
    return EXIT_FAIL if total else EXIT_OK


def trace_seeds(out, preset):
    """Seeds of fuzz_trace_load: small real traces -- a workload trace, a
    reproducer (its crash choice) and, where the tools are there, a fault
    reproducer (fault.plan) and a recorded qemu-io run (external)."""
    from .common import tool
    os.makedirs(out, exist_ok=True)
    build.ensure_built(preset, ["pcsweep"], quiet=True)
    pcsweep = tool(preset, "pcsweep")
    small = ["--scenario", "batch", "--ops", "2", "--virtual-size", "16M", "--block-size", "1M", "--log-size", "1M"]
    run([pcsweep, "record"] + small + [os.path.join(out, "workload.pctrace")])
    ex = os.path.join(out, "ex")
    run([pcsweep, "export", "--trace", os.path.join(out, "workload.pctrace"), "--models", "torn", "--only", "1",
         "--with-repro", "--out", ex])
    for n in os.listdir(ex):
        if n.endswith(".pctrace"):
            shutil.move(os.path.join(ex, n), os.path.join(out, "reproducer.pctrace"))
    shutil.rmtree(ex)
    pcfaults = tool("fiu", "pcfaults")
    if os.path.exists(pcfaults):
        fr = os.path.join(out, "fr")
        run([pcfaults, "sweep", "--quiet"] + small[:2] + ["--ops", "4", "--virtual-size", "16M", "--block-size", "1M",
                                                           "--kinds", "eio", "--keep-repro", "1", "--replay-states",
                                                           "1", "--max-faults", "60", "--repro-dir", fr], check=False)
        for n in sorted(os.listdir(fr)) if os.path.isdir(fr) else []:
            shutil.move(os.path.join(fr, n), os.path.join(out, "fault-" + n))
        shutil.rmtree(fr, ignore_errors=True)
    if shutil.which("qemu-img") and shutil.which("qemu-io"):
        from .record import ensure_tools, record
        img = os.path.join(out, "q.vhdx")
        run(["qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M,log_size=1M", img, "4M"])
        record(ensure_tools(preset, quiet=True), img, os.path.join(out, "external.pctrace"),
               ["qemu-io", "-f", "vhdx", "-c", "write -P 0x11 0 4k", img], quiet=True)
        os.remove(img)


def cmd_seeds(args):
    gen = args.generator
    if not gen:
        setup.ensure(quiet=True)
        build.ensure_built(args.preset, ["fuzz_gen_corpus"])
        gen = os.path.join(build_dir(args.preset), "fuzz", "fuzz_gen_corpus")
    if not os.path.exists(gen):
        raise UsageError(f"no seed generator at {gen}")
    with tempfile.TemporaryDirectory() as tmp:
        run([gen, tmp])
        trace_seeds(os.path.join(tmp, "fuzz_trace_load"), args.preset)
        made = {}
        for t in TARGETS:
            src = os.path.join(tmp, t)
            if not os.path.isdir(src):
                continue
            dest = os.path.join(CORPUS, t)
            os.makedirs(dest, exist_ok=True)
            made[t] = set()
            for n in sorted(os.listdir(src)):
                with open(os.path.join(src, n), "rb") as f:
                    data = f.read()
                h = hashlib.sha1(data).hexdigest()
                made[t].add(h)
                path = os.path.join(dest, h)
                if not os.path.exists(path):
                    with open(path, "wb") as f:
                        f.write(data)
            removed = 0
            if args.clean:
                for n in os.listdir(dest):
                    p = os.path.join(dest, n)
                    if os.path.isfile(p) and re.fullmatch(r"[0-9a-f]{40}", n) and n not in made[t]:
                        os.remove(p)
                        removed += 1
            say(f"fuzz-seeds: corpus/{t}: {len(made[t])} seeds" + (f", {removed} removed" if removed else ""))
    return EXIT_OK


# ---- planted bugs -----------------------------------------------------------------
def list_patches(names):
    if names:
        out = []
        for n in names:
            p = n if os.path.exists(n) else os.path.join(MUTANTS, n if n.endswith(".patch") else n + ".patch")
            if not os.path.exists(p):
                raise UsageError(f"no mutant patch {n} (looked for {p})")
            out.append(p)
        return out
    return sorted(glob.glob(os.path.join(MUTANTS, "*.patch")))


def scratch_tree():
    """One copy of the sources (no build/, .git, reports, corpus) under
    build/fuzz/mutants/src, built incrementally in build/fuzz/mutants/build:
    each mutant is applied with patch, built (only the files it touches
    recompile) and reverted with patch -R."""
    base = os.path.join(build_dir("fuzz"), "mutants")
    src = os.path.join(base, "src")
    if os.path.exists(src):
        shutil.rmtree(src)
    os.makedirs(base, exist_ok=True)
    ignore = shutil.ignore_patterns("build", ".git", "reports", "corpus", "__pycache__", ".pytest_cache")
    shutil.copytree(ROOT, src, ignore=ignore)
    return base, src


def start_run(binary, target, seed, cap, workdir, extra):
    work = os.path.join(workdir, f"{target}-seed{seed}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    cmd = [binary] + read_options(target) + [f"-seed={seed}", f"-max_total_time={cap}",
                                             f"-artifact_prefix={work}/"] + list(extra) + \
        [work, os.path.join(CORPUS, target)]
    err = open(os.path.join(work, "log"), "w+")
    return {"p": popen(cmd, stdout=DEVNULL, stderr=err), "err": err, "work": work,
            "t0": time.time(), "seed": seed}


def finish_run(r, cap):
    try:
        r["p"].wait(timeout=cap * 3 + 120)
    except TimeoutExpired:
        r["p"].kill()
        r["p"].wait()
    dt = time.time() - r["t0"]
    r["err"].seek(0)
    text = r["err"].read()
    r["err"].close()
    found = glob.glob(os.path.join(r["work"], "crash-*")) + glob.glob(os.path.join(r["work"], "leak-*"))
    if r["p"].returncode != 0 and found:
        why = next((ln for ln in text.splitlines() if "check failed" in ln or "ERROR:" in ln), "")
        nxt = text.splitlines()
        if "check failed" in why:  # the reason is on the next line
            k = nxt.index(why)
            why = (why + " | " + nxt[k + 1]) if k + 1 < len(nxt) else why
        return round(dt, 1), found[0], why.replace("==powercut-fuzz==", "").strip()
    return None, None, ""


def cmd_mutant(args):
    check_output_file(getattr(args, "json", None), "--json")
    patches = list_patches(args.mutant)
    if not patches:
        say(f"fuzz-mutant: no planted-bug patches in {MUTANTS} (expected *.patch)")
        return EXIT_OK
    if not shutil.which("patch"):
        raise InfraError("the patch program is missing (scripts/powercut setup installs it)")
    targets = [resolve_targets(t)[0] for t in (args.target or ["log_replay", "crash_schedule"])]
    base, src = scratch_tree()
    bdir = os.path.join(base, "build")
    run(["cmake", "-S", src, "-B", bdir, "-G", "Ninja", "-DCMAKE_C_COMPILER=clang-14",
         "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DPOWERCUT_SANITIZE=address,undefined",
         "-DPOWERCUT_FUZZ_ENGINE=libfuzzer", "-DPOWERCUT_WERROR=OFF",  # a planted bug may leave a variable unused
         "-DCMAKE_C_FLAGS=-O2 -g -fsanitize=fuzzer-no-link -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"],
        capture=True)
    results = {}
    for patch in patches:
        name = os.path.basename(patch)[:-len(".patch")]
        run(["patch", "-p1", "-s", "-d", src, "-i", patch])
        try:
            run(["cmake", "--build", bdir, "-j2", "--target"] + targets, capture=True)
            per_target = {}
            for t in targets:
                # The seeds run side by side; the target order is the race order:
                # a later target runs only when the earlier ones found nothing.
                runs = [start_run(os.path.join(bdir, "fuzz", t), t, seed, args.cap, os.path.join(base, name),
                                  args.extra) for seed in range(1, args.seeds + 1)]
                times, first = [], None
                for r in runs:
                    secs, crash, why = finish_run(r, args.cap)
                    times.append(secs)
                    if crash and not first:
                        first = {"input": crash, "why": why}
                    say(f"fuzz-mutant: {name} / {t} / seed {r['seed']}: " +
                        (f"found in {secs} s ({why[:160]})" if secs is not None else f"not found in {args.cap} s"))
                capped = [x if x is not None else float(args.cap) for x in times]
                per_target[t] = {"seconds": times, "median": statistics.median(capped),
                                 "found": sum(x is not None for x in times), "first": first}
                if per_target[t]["found"] == len(times):
                    break
            results[name] = per_target
        finally:
            run(["patch", "-R", "-p1", "-s", "-d", src, "-i", patch])
    if args.json:
        save_json(args.json, {"cap_seconds": args.cap, "seeds": args.seeds, "mutants": results})
    for name, per in results.items():
        say(f"fuzz-mutant: {name}: " + ", ".join(
            f"{t} median {v['median']:.0f} s ({v['found']}/{len(v['seconds'])} found)" for t, v in per.items()))
    return EXIT_OK
