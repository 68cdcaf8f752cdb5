"""The fuzz phase: every target in turn, libFuzzer and AFL++ side by side
(or taking turns with one job); and the final merge of the corpora."""
import glob
import os
import shutil
import time

from .. import fuzz as fuzzing
from ..common import build_dir, say

AFL_MAX_FILE = 1 << 20  # afl-fuzz refuses larger seeds
AFL_MIN_SECONDS = 15    # AFL++ spends about this long starting (fork server, calibrating the seeds)
LF_FORK_MIN = 30        # libFuzzer's fork mode for shares this long; shorter ones fuzz in-process


def afl_input_dir(target, d):
    """afl-fuzz wants one flat directory: the committed seeds and the
    kept (merged) corpus, each file below AFL's size limit."""
    indir = os.path.join(d, "afl-in")
    os.makedirs(indir, exist_ok=True)
    n = 0
    for src in (os.path.join(fuzzing.CORPUS, target), os.path.join(fuzzing.CORPUS, target, ".work")):
        if not os.path.isdir(src):
            continue
        for name in sorted(os.listdir(src)):
            p = os.path.join(src, name)
            if name.startswith(".") or not os.path.isfile(p) or os.path.getsize(p) > AFL_MAX_FILE:
                continue
            shutil.copyfile(p, os.path.join(indir, f"{n:06d}"))
            n += 1
    return indir


def run(camp, budget):
    d = os.path.join(camp.out, "fuzz")
    m = camp.methods.setdefault("fuzz", {"seconds": 0.0, "budget_s": 0.0, "targets": {}})
    t_start = time.time()
    phase_end = t_start + budget
    lf_jobs = max(1, camp.jobs // 2) if camp.use_afl else camp.jobs
    afl_jobs = max(1, camp.jobs - lf_jobs) if camp.use_afl else 0
    # With one job the engines take turns instead of running side by side.
    turns = [("libfuzzer", "afl")] if camp.jobs > 1 or not camp.use_afl else [("libfuzzer",), ("afl",)]
    planned_engines = ["libfuzzer"] + (["afl"] if camp.use_afl else [])
    missing = []  # (target, engine, why) that did not fuzz
    for i, t in enumerate(camp.targets):
        if camp.interrupts:
            break
        # What is left of the phase, shared by the targets left: one
        # that ends early leaves its time to the next.
        per_target = (phase_end - time.time()) / (len(camp.targets) - i)
        td = os.path.join(d, t)
        crashes = os.path.join(td, "crashes")
        os.makedirs(crashes, exist_ok=True)
        work = os.path.join(fuzzing.CORPUS, t, ".work")
        os.makedirs(work, exist_ok=True)
        tv = m["targets"].setdefault(t, {"states": None, "execs": 0, "failures": 0, "seconds": 0.0,
                                         "budget_s": 0.0, "engines": {}})
        tv["budget_s"] += max(0.0, per_target)
        t_begin = time.time()
        t_deadline = t_begin + per_target
        seed = (camp.seed + 7919 * i) % 4294967291
        for turn in turns:
            if camp.interrupts:
                break
            secs = (t_deadline - time.time()) / (len(turns) - turns.index(turn))
            if secs < 1:
                for eng in turn:
                    missing.append((t, eng, f"its share of {max(secs, 0):.1f} s is under a second"))
                continue
            procs, watchers = [], []
            if "libfuzzer" in turn:
                binary = os.path.join(build_dir("fuzz"), "fuzz", t)
                log = os.path.join(td, "libfuzzer.log")
                # Fork mode (a crash does not end the run) takes seconds to
                # start and to stop its jobs: short shares fuzz in-process.
                mode = [f"-fork={lf_jobs}", "-ignore_crashes=1", "-ignore_timeouts=1", "-ignore_ooms=1"] \
                    if secs >= LF_FORK_MIN else []
                cmd = [binary] + fuzzing.read_options(t) + mode + [
                    f"-max_total_time={max(1, int(secs) - 1)}", f"-seed={seed}",
                    f"-artifact_prefix={crashes}/",
                    "-print_final_stats=1", work, os.path.join(fuzzing.CORPUS, t)]
                procs.append(camp.start(cmd, log, cwd=td))
                watchers.append(("libfuzzer", lambda log=log: lf_figures(log)))
            if "afl" in turn and camp.use_afl:
                if secs < AFL_MIN_SECONDS:
                    missing.append((t, "afl", f"its share of {secs:.1f} s is shorter than AFL++'s start-up "
                                              f"(about {AFL_MIN_SECONDS} s to start its fork server and "
                                              f"calibrate the seeds)"))
                else:
                    afl_out = os.path.join(td, "afl")
                    env = dict(os.environ, AFL_NO_UI="1", AFL_SKIP_CPUFREQ="1", AFL_NO_AFFINITY="1",
                               AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES="1", AFL_AUTORESUME="1",
                               AFL_SKIP_BIN_CHECK="1", AFL_QUIET="1")
                    mutlib = os.path.join(build_dir("afl"), "fuzz", "libpcmutator.so")
                    if fuzzing.TARGETS[t]["mutator"] and os.path.exists(mutlib):
                        env["AFL_CUSTOM_MUTATOR_LIBRARY"] = mutlib
                    indir = afl_input_dir(t, td)
                    dict_path = os.path.join(fuzzing.FUZZ_DIR, t + ".dict")
                    cmplog = os.path.join(build_dir("afl-cmplog"), "fuzz", t)
                    # -V counts from the end of the start-up: the start-up
                    # comes out of the share (measured: AFL_MIN_SECONDS).
                    v = max(1, int(secs - AFL_MIN_SECONDS / 2))
                    for j in range(afl_jobs):
                        role = ["-M", "main", "-F", work] if j == 0 else ["-S", f"sec{j}"]
                        cmd = ["afl-fuzz", "-i", indir, "-o", afl_out, "-V", v, "-t", "10000",
                               "-s", seed + j] + role
                        if os.path.exists(dict_path):
                            cmd += ["-x", dict_path]
                        if j == 0 and os.path.exists(cmplog):
                            cmd += ["-c", cmplog]
                        cmd += ["--", os.path.join(build_dir("afl"), "fuzz", t)]
                        procs.append(camp.start(cmd, os.path.join(td, f"afl-{j}.log"), env=env))
                    watchers.append(("afl", lambda o=afl_out, n=afl_jobs: afl_figures(o, n)))
            if not procs:
                continue
            last = [0.0]

            def tick(t=t, watchers=watchers, last=last):
                if time.time() - last[0] < 5:
                    return
                last[0] = time.time()
                parts = []
                for eng, fn in watchers:
                    fig = fn()
                    camp.sample(method="fuzz", target=t, engine=eng, execs=fig["execs"],
                                coverage=fig["coverage"])
                    parts.append(f"{eng} {fig['execs']:,} execs cov {fig['coverage']}")
                ncr = len(crash_files(os.path.join(d, t)))
                camp.progress(f"fuzz {t} ({i + 1}/{len(camp.targets)}): " + " | ".join(parts) +
                              f" | {ncr} crash files")
            run_start = time.time()
            over = camp.wait(procs, run_start + secs, tick, grace=0, kill_after=2)
            if over > 3:
                camp.notes.append(f"fuzz {t}: the engines took {over:.0f} s past their {secs:.0f} s share to stop")
            last[0] = 0
            tick()
            for eng, fn in watchers:
                fig = fn()
                e = tv["engines"].setdefault(eng, {"execs": 0, "coverage": 0, "seconds": 0.0})
                e["execs"] += fig["execs"]
                e["coverage"] = max(e["coverage"], fig["coverage"])
                e["seconds"] += time.time() - run_start
                if fig["execs"] == 0:
                    missing.append((t, eng, f"it ran {time.time() - run_start:.0f} s without an execution "
                                            f"(still starting when its share ended)"))
        tv["execs"] = sum(e["execs"] for e in tv["engines"].values())
        tv["seconds"] += time.time() - t_begin
        done_engines = [e for e in planned_engines if tv["engines"].get(e, {}).get("execs", 0) > 0]
        tv["complete"] = len(done_engines) == len(planned_engines)
        tv["coverage_text"] = f"{len(done_engines)} of {len(planned_engines)} engines ran"
        for cf in crash_files(td):
            eng = "afl" if os.sep + "afl" + os.sep in cf else "libfuzzer"
            camp.raw_failures.append({"method": "fuzz", "target": t, "artifact": cf, "kind": "fuzz",
                                      "engine": eng, "seed": seed})
    m["budget_s"] += budget
    m["seconds"] += time.time() - t_start
    planned = len(camp.targets) * len(planned_engines)
    done = sum(1 for t in camp.targets for e in planned_engines
               if m["targets"].get(t, {}).get("engines", {}).get(e, {}).get("execs", 0) > 0)
    m["coverage"] = {"complete": done == planned, "done": done, "planned": planned, "unit": "target x engine",
                     "text": f"{done} of {planned} target x engine runs fuzzed for their share"
                             + (" (" + "; ".join(f"{t} {e}: not fuzzed, {why}" for t, e, why in missing) + ")"
                                if missing else "")}
    for t, e, why in missing:
        camp.notes.append(f"fuzz {t}: {e} did not fuzz: {why}")


def merge_corpora(camp, deadline):
    """libFuzzer -merge=1: the kept corpus becomes a minimal set covering
    everything both engines found.  Within the deadline; a target left
    out keeps its corpus as it was (said in the notes)."""
    left_out = []
    for t in camp.targets:
        if camp.interrupts:
            break
        work = os.path.join(fuzzing.CORPUS, t, ".work")
        sources = [work] + sorted(glob.glob(os.path.join(camp.out, "fuzz", t, "afl", "*", "queue")))
        if not any(os.path.isdir(s) and os.listdir(s) for s in sources):
            continue
        if deadline - time.time() < 2:
            left_out.append(t)
            continue
        new = work + ".merge"
        shutil.rmtree(new, ignore_errors=True)
        os.makedirs(new)
        binary = os.path.join(build_dir("fuzz"), "fuzz", t)
        log = os.path.join(camp.out, "fuzz", t, "merge.log")
        os.makedirs(os.path.dirname(log), exist_ok=True)
        before = fuzzing.count_files(work)
        p = camp.start([binary] + fuzzing.read_options(t) + ["-merge=1", f"-merge_control_file={new}.ctl", new] +
                       [s for s in sources if os.path.isdir(s)], log)
        camp.wait([p], deadline, grace=0)
        if p.returncode == 0 and fuzzing.count_files(new):
            shutil.rmtree(work)
            os.replace(new, work)
            after = fuzzing.count_files(work)
            camp.methods["fuzz"]["targets"].setdefault(t, {}).update(corpus_before=before, corpus=after)
            say(f"campaign: {t}: corpus merged: {before} kept + AFL++ queue -> {after} units")
        else:
            shutil.rmtree(new, ignore_errors=True)
            left_out.append(t)
            camp.notes.append(f"{t}: corpus merge failed or ran out of time (status {p.returncode}); "
                              f"the corpus is kept as it was (see {log})")
        for f in glob.glob(new + ".ctl*"):
            os.remove(f)
    camp.final["merge"] = "done" if not left_out else f"not done for {', '.join(left_out)} (budget)"


def tail(path, n=65536):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def lf_figures(log):
    fig = fuzzing.parse_libfuzzer(tail(log))
    return {"execs": fig["execs"], "coverage": fig["coverage"]}


def afl_figures(out, jobs):
    execs = cov = 0
    for j in range(jobs):
        name = "main" if j == 0 else f"sec{j}"
        st = fuzzing.parse_afl_stats(os.path.join(out, name, "fuzzer_stats"))
        e, c = int(st.get("execs_done", 0) or 0), int(st.get("edges_found", 0) or 0)
        plot = os.path.join(out, name, "plot_data")  # fresher than fuzzer_stats
        lines = tail(plot, 4096).strip().splitlines()
        if lines and not lines[-1].startswith("#"):
            cols = [x.strip() for x in lines[-1].split(",")]
            if len(cols) >= 13 and cols[11].isdigit():
                e, c = max(e, int(cols[11])), max(c, int(cols[12]) if cols[12].isdigit() else 0)
        execs += e
        cov = max(cov, c)
    return {"execs": execs, "coverage": cov}


def crash_files(d):
    pats = ["crashes/crash-*", "crashes/leak-*", "crashes/timeout-*", "crashes/oom-*",
            "afl/*/crashes/id:*"]
    return sorted(f for p in pats for f in glob.glob(os.path.join(d, p)))
