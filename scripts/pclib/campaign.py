"""`powercut campaign`: the nightly job, and `powercut report`.

    powercut campaign --time 1h --jobs 2 --out reports/nightly

Splits the wall-clock budget (--time; builds happen before the clock
starts) into phases that run one after the other, each using --jobs
processes:

  sweep   (30%)  pcsweep over every scenario and crash model, sharded over
                 the jobs (--shard k/N), one workload seed after the other
  faults  (15%)  pcfaults: the deterministic fault sweep of one workload
                 seed, then random fault plans (campaign seeds) for the rest
  fuzz    (45%)  every fuzz target in turn, libFuzzer (-fork, crashes do not
                 stop it) and AFL++ (-M main, -F syncing libFuzzer's corpus,
                 CMPLOG) side by side, each on half the jobs
  diff     (5%)  powercut diff over the image-building fuzz corpora
                 (fuzz_log_replay, fuzz_image_open: seeds and new units):
                 our engine against QEMU; a disagreement class where our
                 engine departs from MS-VHDX is a failure, QEMU's departures
                 are listed (needs qemu-img/qemu-io)
  final    (5%)  corpora merged and minimized (libFuzzer -merge=1 into
                 corpus/<target>/.work), failures triaged (deduplicated by
                 crash state, minimized, stored under corpus/regressions/),
                 engine coverage measured from the corpora (llvm-cov), and
                 the report written

--split changes the shares.  Everything random derives from the campaign
seed (--seed, default from the clock), which is printed and stored.

Resuming: the corpora (corpus/<target>/.work/) and the position of the
deterministic parts (next sweep seed, next fault seed, next campaign seed)
are kept in corpus/.state/campaign.json, so the next campaign -- whatever
its --out -- continues where this one stopped (--fresh starts over).

Ctrl-C stops the running phase (the tools stop after the current state and
write their summaries), skips minimization and coverage, and writes a
partial report; a second Ctrl-C stops at once.

Output in DIR: summary.json (per method and target: states, execs,
coverage, failures; the time series), junit.xml, index.html (one
self-contained page), coverage/ (llvm-cov HTML), and the raw results of
every tool (sweep/, faults/, fuzz/).  `powercut report DIR` rewrites
junit.xml and index.html from DIR/summary.json.

Exit status: 0 no failure found; 1 failures found; 2 usage or
infrastructure error; 130 interrupted (the partial report is written).
"""
import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

from . import build, fuzz, report, setup, triage
from .common import (EXIT_FAIL, EXIT_OK, ROOT, UsageError, build_dir, say, show_cmd, tool,
                     write_json)

DEFAULT_SPLIT = {"sweep": 30, "faults": 15, "fuzz": 45, "diff": 5}
DIFF_TARGETS = ("fuzz_log_replay", "fuzz_image_open")  # corpora that describe whole images
FINAL_SHARE = 5
STATE_FILE = os.path.join(ROOT, "corpus", ".state", "campaign.json")
AFL_MAX_FILE = 1 << 20  # afl-fuzz refuses larger seeds


def parse_duration(text):
    """'90', '90s', '5m', '1h30m', '2h' -> seconds (int > 0)."""
    t = str(text).strip().lower()
    if re.fullmatch(r"\d+", t):
        secs = int(t)
    else:
        m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", t)
        if not m or not any(m.groups()):
            raise UsageError(f"--time {text!r}: give seconds or a duration like 90s, 5m, 1h30m")
        h, mi, s = (int(x) if x else 0 for x in m.groups())
        secs = h * 3600 + mi * 60 + s
    if secs <= 0:
        raise UsageError(f"--time {text!r}: must be positive")
    return secs


def parse_split(text):
    """'sweep=30,faults=15,fuzz=45,diff=5' -> {method: percent}; methods left out
    get 0 (do not run)."""
    if not text:
        return dict(DEFAULT_SPLIT)
    out = {m: 0 for m in DEFAULT_SPLIT}
    for part in text.split(","):
        k, sep, v = part.partition("=")
        k = k.strip()
        if not sep or k not in DEFAULT_SPLIT or not v.strip().isdigit():
            raise UsageError(f"--split {text!r}: expected e.g. sweep=30,faults=15,fuzz=45,diff=5 "
                             f"(methods: {', '.join(DEFAULT_SPLIT)})")
        out[k] = int(v)
    if sum(out.values()) <= 0 or sum(out.values()) > 100 - FINAL_SHARE:
        raise UsageError(f"--split {text!r}: the shares must add up to 1..{100 - FINAL_SHARE} "
                         f"({FINAL_SHARE}% is kept for triage and the report)")
    return out


def load_state(path=STATE_FILE):
    try:
        with open(path) as f:
            st = json.load(f)
        return st if isinstance(st, dict) else {}
    except (OSError, ValueError):
        return {}


def add_campaign_args(p, default_time):
    p.add_argument("--time", default=default_time,
                   help="wall-clock budget: seconds or 90s/5m/1h30m (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=max(1, os.cpu_count() or 1),
                   help="parallel processes per phase (default: the number of CPUs)")
    p.add_argument("--out", help="report directory (default reports/runs/campaign-<time>/)")
    p.add_argument("--seed", type=int, help="campaign seed (default: from the clock; printed and stored)")
    p.add_argument("--split", help="shares of the budget in percent (default sweep=30,faults=15,fuzz=45,diff=5; "
                                   "a method left out does not run)")
    p.add_argument("--targets", help="fuzz targets, comma list (default: all)")
    p.add_argument("--no-afl", action="store_true", help="fuzz with libFuzzer only")
    p.add_argument("--no-coverage", action="store_true", help="skip the llvm-cov report")
    p.add_argument("--fresh", action="store_true", help="ignore the kept resume state (seeds start at 1)")
    p.add_argument("--state", default=STATE_FILE, help="resume state file (default: corpus/.state/campaign.json)")
    p.add_argument("--regressions", default=triage.REGRESSIONS,
                   help="where unique failures are stored (default: corpus/regressions)")


def add_parser(sub):
    p = sub.add_parser("campaign", help="nightly campaign: sweeps, fault sweeps and fuzzing, triage, report",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_campaign_args(p, "1h")
    p.set_defaults(func=cmd_campaign)
    r = sub.add_parser("report", help="rewrite a campaign's junit.xml and index.html from its summary.json",
                       description="Regenerates DIR/junit.xml and DIR/index.html from DIR/summary.json.")
    r.add_argument("dir", help="a campaign report directory")
    r.set_defaults(func=cmd_report)


def cmd_report(args):
    path = os.path.join(args.dir, "summary.json")
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: not a campaign summary ({e})") from e
    data.pop("table", None)
    print(report.write_report(args.dir, data))
    return EXIT_OK


def cmd_campaign(args):
    c = Campaign(args)
    return c.run()


# ---------------------------------------------------------------------------------------------
class Interrupted(Exception):
    pass


class Campaign:
    def __init__(self, args):
        self.budget = parse_duration(args.time)
        if args.jobs < 1:
            raise UsageError("--jobs must be at least 1")
        self.jobs = args.jobs
        self.split = parse_split(args.split)
        self.targets = fuzz.TARGETS if not args.targets else \
            [fuzz.resolve_targets(t.strip())[0] for t in args.targets.split(",") if t.strip()]
        self.args = args
        self.seed = args.seed if args.seed is not None else int(time.time() * 1000) % 1000000007
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.out = os.path.abspath(args.out or os.path.join(ROOT, "reports", "runs", f"campaign-{stamp}"))
        self.state_file = args.state
        self.state = {} if args.fresh else load_state(self.state_file)
        self.state.setdefault("sweep_seed", 1)
        self.state.setdefault("fault_seed", 1)
        self.state.setdefault("fault_campaign_seed", self.seed)
        self.interrupts = 0
        self.live = []  # running Popen objects
        self.series = []
        self.methods = {}
        self.raw_failures = []  # before dedupe
        self.notes = []
        self.diff_failures = []  # diff classes where our engine departs from MS-VHDX
        self.t0 = None
        self.last_line = 0
        self.tty = sys.stderr.isatty()

    # ---- infrastructure -------------------------------------------------------------------
    def elapsed(self):
        return time.time() - self.t0

    def on_sigint(self, signum, frame):
        self.interrupts += 1
        if self.interrupts == 1:
            say("\ncampaign: interrupted: stopping the running tools, then writing a partial report "
                "(Ctrl-C again to stop at once)")
            self.signal_all(signal.SIGINT)
        else:
            self.signal_all(signal.SIGKILL)
            raise Interrupted()

    def signal_all(self, sig):
        for p in self.live:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass

    def start(self, cmd, log, env=None, cwd=None):
        show_cmd(cmd, cwd)
        f = open(log, "a")
        p = subprocess.Popen([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                             start_new_session=True)  # Ctrl-C reaches the driver only; it forwards it
        p.log_file = f
        self.live.append(p)
        return p

    def wait(self, procs, deadline, tick=None, grace=30):
        """Waits for procs, calling tick() about every second; past the
        deadline (+grace) they get SIGINT, then SIGKILL."""
        sent_int = None
        while any(p.poll() is None for p in procs):
            time.sleep(1)
            if tick:
                tick()
            now = time.time()
            if sent_int is None and (now > deadline + grace or self.interrupts):
                sent_int = now
                for p in procs:
                    if p.poll() is None:
                        os.killpg(p.pid, signal.SIGINT)
            elif sent_int is not None and now > sent_int + 20:
                for p in procs:
                    if p.poll() is None:
                        os.killpg(p.pid, signal.SIGKILL)
        for p in procs:
            p.log_file.close()
            self.live.remove(p)

    def progress(self, text, force=False):
        now = time.time()
        line = f"[campaign {fmt_clock(self.elapsed())}/{fmt_clock(self.budget)}] {text}"
        if self.tty:
            print("\r" + line[:160].ljust(160), end="", file=sys.stderr, flush=True)
        elif force or now - self.last_line >= 30:
            print(line, file=sys.stderr, flush=True)
        else:
            return
        self.last_line = now

    def end_progress(self):
        if self.tty:
            print(file=sys.stderr, flush=True)

    def sample(self, **kw):
        kw["t"] = round(self.elapsed(), 1)
        self.series.append(kw)

    # ---- builds ---------------------------------------------------------------------------
    def prepare(self):
        setup.ensure(quiet=True)
        self.use_afl = not self.args.no_afl and bool(shutil.which("afl-fuzz"))
        if not self.args.no_afl and not self.use_afl:
            self.notes.append("AFL++ is not installed: fuzzing with libFuzzer only")
        say("campaign: building what the phases need (before the clock starts)")
        if self.split["sweep"]:
            build.ensure_built("default", quiet=True)
        if self.split["faults"]:
            build.ensure_built("fiu", quiet=True)
        if self.split["fuzz"]:
            build.ensure_built("fuzz", quiet=True)
            if self.use_afl:
                build.ensure_built("afl", quiet=True)
                build.ensure_built("afl-cmplog", quiet=True)
        if not self.args.no_coverage:
            build.ensure_built("coverage", quiet=True)

    # ---- phases ---------------------------------------------------------------------------
    def phase_sweep(self, budget):
        pcsweep = tool("default", "pcsweep")
        d = os.path.join(self.out, "sweep")
        os.makedirs(d, exist_ok=True)
        m = self.methods.setdefault("sweep", {"seconds": 0.0, "targets": {}, "seeds": []})
        t_start = time.time()
        deadline = t_start + budget
        total_states = total_viol = 0
        while not self.interrupts and deadline - time.time() > 3:
            seed = self.state["sweep_seed"]
            rem = max(1, int(deadline - time.time()))
            procs, outs = [], []
            for k in range(self.jobs):
                j = os.path.join(d, f"seed{seed}-shard{k}.json")
                outs.append(j)
                procs.append(self.start([pcsweep, "sweep", "--quiet", "--scenario", "all", "--models", "all",
                                         "--seed", seed, "--seeds", 1, "--shard", f"{k}/{self.jobs}",
                                         "--max-seconds", rem, "--json", j,
                                         "--repro-dir", os.path.join(d, "repro")],
                                        os.path.join(d, f"seed{seed}-shard{k}.log")))
            self.wait(procs, deadline, lambda: self.progress(
                f"sweep seed {seed}: {total_states:,} states, {total_viol} violations so far"))
            complete = True
            for j, p in zip(outs, procs):
                if not os.path.exists(j):
                    complete = False
                    self.notes.append(f"pcsweep seed {seed} wrote no summary (status {p.returncode}); "
                                      f"see {j[:-5]}.log")
                    continue
                with open(j) as f:
                    s = json.load(f)
                complete &= bool(s.get("complete", not s.get("interrupted")))
                total_states += s["states"]
                total_viol += s["violations"]
                for r in s.get("runs", []):
                    t = m["targets"].setdefault(r["scenario"], {"states": 0, "execs": 0, "failures": 0,
                                                                "seconds": 0.0})
                    t["states"] += r["states"]
                    t["execs"] += r.get("opens", 0)
                    t["failures"] += r["violations"]
                    t["seconds"] += r.get("wall_s", 0)
                for fl in s.get("failures", []):
                    model = (fl.get("choice") or "").split(" ")[0]
                    self.raw_failures.append({
                        "state": triage.violation_state("sweep", fl["invariant"], model), "method": "sweep",
                        "target": fl["scenario"], "what": f"{fl['invariant']}: {fl.get('detail', '')}"[:300],
                        "seed": fl["seed"], "artifact": fl.get("reproducer"), "kind": "pctrace"})
            if complete:
                m["seeds"].append(seed)
                self.state["sweep_seed"] = seed + 1
            self.sample(method="sweep", target="all", states=total_states, violations=total_viol)
            self.progress(f"sweep: seed {seed} {'done' if complete else 'stopped'}, {total_states:,} states, "
                          f"{total_viol} violations", force=True)
            if not complete:
                break
        m["seconds"] += time.time() - t_start
        m["states"] = m.get("states", 0) + total_states
        m["violations"] = m.get("violations", 0) + total_viol

    def phase_faults(self, budget):
        pcfaults = tool("fiu", "pcfaults")
        d = os.path.join(self.out, "faults")
        os.makedirs(d, exist_ok=True)
        m = self.methods.setdefault("faults", {"seconds": 0.0, "targets": {}, "seeds": [], "campaign_seeds": []})
        t_start = time.time()
        deadline = t_start + budget
        totals = {"faults": 0, "violations": 0}
        first = True
        while not self.interrupts and deadline - time.time() > 3:
            rem = max(1, int(deadline - time.time()))
            procs, outs = [], []
            if first:  # the systematic sweep of the next workload seed
                seed = self.state["fault_seed"]
                what = f"fault sweep seed {seed}"
                for k in range(self.jobs):
                    j = os.path.join(d, f"sweep-seed{seed}-shard{k}.json")
                    outs.append(j)
                    procs.append(self.start([pcfaults, "sweep", "--quiet", "--seed", seed, "--shard",
                                             f"{k}/{self.jobs}", "--max-seconds", rem, "--json", j,
                                             "--repro-dir", os.path.join(d, "repro")], j[:-5] + ".log"))
            else:  # random plans, one campaign seed per job, in chunks of a minute
                cs = self.state["fault_campaign_seed"]
                what = f"fault campaign seeds {cs}..{cs + self.jobs - 1}"
                for k in range(self.jobs):
                    j = os.path.join(d, f"campaign-{cs + k}.json")
                    outs.append(j)
                    procs.append(self.start([pcfaults, "campaign", "--quiet", "--campaign-seed", cs + k,
                                             "--runs", 100000, "--max-seconds", min(rem, 60), "--json", j,
                                             "--repro-dir", os.path.join(d, "repro")], j[:-5] + ".log"))
            self.wait(procs, deadline, lambda: self.progress(
                f"faults: {what}: {totals['faults']:,} faults injected, {totals['violations']} violations so far"))
            complete = True
            for j, p in zip(outs, procs):
                if not os.path.exists(j):
                    complete = False
                    self.notes.append(f"pcfaults wrote no summary (status {p.returncode}); see {j[:-5]}.log")
                    continue
                with open(j) as f:
                    s = json.load(f)
                complete &= not s.get("stopped_early") or not first
                totals["faults"] += s.get("injected", 0)
                totals["violations"] += s.get("violations", 0)
                for kind, v in (s.get("kinds") or {}).items():
                    t = m["targets"].setdefault(kind, {"states": 0, "execs": 0, "failures": 0, "seconds": 0.0})
                    t["states"] += v.get("states", 0)
                    t["execs"] += v.get("injected", 0)
                    t["failures"] += v.get("violations", 0)
                    t["seconds"] += v.get("seconds", 0)
                for fl in s.get("failures", []):
                    kind = (re.search(r"kind=(\S+)", fl.get("plan", "")) or [None, "?"])[1]
                    self.raw_failures.append({
                        "state": triage.violation_state("faults", fl["invariant"], f"{fl.get('phase')}/{kind}"),
                        "method": "faults", "target": kind,
                        "what": f"{fl['invariant']} ({fl.get('plan')}, {fl.get('phase')}): "
                                f"{fl.get('detail', '')}"[:300],
                        "seed": fl.get("seed"), "artifact": fl.get("reproducer"), "kind": "fault"})
            if first:
                if complete:
                    m["seeds"].append(self.state["fault_seed"])
                    self.state["fault_seed"] += 1
                first = False
            else:
                m["campaign_seeds"] += list(range(self.state["fault_campaign_seed"],
                                                  self.state["fault_campaign_seed"] + self.jobs))
                self.state["fault_campaign_seed"] += self.jobs
            self.sample(method="faults", target="all", execs=totals["faults"], violations=totals["violations"])
        m["seconds"] += time.time() - t_start
        m["faults"] = m.get("faults", 0) + totals["faults"]
        m["violations"] = m.get("violations", 0) + totals["violations"]

    def afl_input_dir(self, target, d):
        """afl-fuzz wants one flat directory: the committed seeds and the
        kept (merged) corpus, each file below AFL's size limit."""
        indir = os.path.join(d, "afl-in")
        os.makedirs(indir, exist_ok=True)
        n = 0
        for src in (os.path.join(fuzz.CORPUS, target), os.path.join(fuzz.CORPUS, target, ".work")):
            if not os.path.isdir(src):
                continue
            for name in sorted(os.listdir(src)):
                p = os.path.join(src, name)
                if name.startswith(".") or not os.path.isfile(p) or os.path.getsize(p) > AFL_MAX_FILE:
                    continue
                shutil.copyfile(p, os.path.join(indir, f"{n:06d}"))
                n += 1
        return indir

    def phase_fuzz(self, budget):
        d = os.path.join(self.out, "fuzz")
        m = self.methods.setdefault("fuzz", {"seconds": 0.0, "targets": {}})
        t_start = time.time()
        per_target = budget / max(1, len(self.targets))
        lf_jobs = max(1, self.jobs // 2) if self.use_afl else self.jobs
        afl_jobs = max(1, self.jobs - lf_jobs) if self.use_afl else 0
        # With one job the engines take turns instead of running side by side.
        turns = [("libfuzzer", "afl")] if self.jobs > 1 or not self.use_afl else [("libfuzzer",), ("afl",)]
        for i, t in enumerate(self.targets):
            if self.interrupts:
                break
            td = os.path.join(d, t)
            crashes = os.path.join(td, "crashes")
            os.makedirs(crashes, exist_ok=True)
            work = os.path.join(fuzz.CORPUS, t, ".work")
            os.makedirs(work, exist_ok=True)
            tv = m["targets"].setdefault(t, {"states": None, "execs": 0, "failures": 0, "seconds": 0.0,
                                             "engines": {}})
            t_deadline = time.time() + per_target
            for turn in turns:
                if self.interrupts:
                    break
                secs = max(1, int((t_deadline - time.time()) / (len(turns) - turns.index(turn))))
                procs, watchers = [], []
                seed = (self.seed + 7919 * i) % 4294967291
                if "libfuzzer" in turn:
                    binary = os.path.join(build_dir("fuzz"), "fuzz", t)
                    log = os.path.join(td, "libfuzzer.log")
                    cmd = [binary] + fuzz.read_options(t) + [
                        f"-fork={lf_jobs}", "-ignore_crashes=1", "-ignore_timeouts=1", "-ignore_ooms=1",
                        f"-max_total_time={secs}", f"-seed={seed}", f"-artifact_prefix={crashes}/",
                        "-print_final_stats=1", work, os.path.join(fuzz.CORPUS, t)]
                    procs.append(self.start(cmd, log, cwd=td))
                    watchers.append(("libfuzzer", lambda log=log: lf_figures(log)))
                if "afl" in turn and self.use_afl:
                    afl_out = os.path.join(td, "afl")
                    env = dict(os.environ, AFL_NO_UI="1", AFL_SKIP_CPUFREQ="1", AFL_NO_AFFINITY="1",
                               AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES="1", AFL_AUTORESUME="1",
                               AFL_SKIP_BIN_CHECK="1", AFL_QUIET="1")
                    mutlib = os.path.join(build_dir("afl"), "fuzz", "libpcmutator.so")
                    if fuzz.TARGETS[t]["mutator"] and os.path.exists(mutlib):
                        env["AFL_CUSTOM_MUTATOR_LIBRARY"] = mutlib
                    indir = self.afl_input_dir(t, td)
                    dict_path = os.path.join(fuzz.FUZZ_DIR, t + ".dict")
                    cmplog = os.path.join(build_dir("afl-cmplog"), "fuzz", t)
                    for j in range(afl_jobs):
                        role = ["-M", "main", "-F", work] if j == 0 else ["-S", f"sec{j}"]
                        cmd = ["afl-fuzz", "-i", indir, "-o", afl_out, "-V", secs, "-t", "10000", "-s", seed + j] + role
                        if os.path.exists(dict_path):
                            cmd += ["-x", dict_path]
                        if j == 0 and os.path.exists(cmplog):
                            cmd += ["-c", cmplog]
                        cmd += ["--", os.path.join(build_dir("afl"), "fuzz", t)]
                        procs.append(self.start(cmd, os.path.join(td, f"afl-{j}.log"), env=env))
                    watchers.append(("afl", lambda o=afl_out, n=afl_jobs: afl_figures(o, n)))
                last = [0.0]

                def tick(t=t, watchers=watchers, last=last):
                    if time.time() - last[0] < 5:
                        return
                    last[0] = time.time()
                    parts = []
                    for eng, fn in watchers:
                        fig = fn()
                        self.sample(method="fuzz", target=t, engine=eng, execs=fig["execs"],
                                    coverage=fig["coverage"])
                        parts.append(f"{eng} {fig['execs']:,} execs cov {fig['coverage']}")
                    ncr = len(crash_files(os.path.join(d, t)))
                    self.progress(f"fuzz {t} ({i + 1}/{len(self.targets)}): " + " | ".join(parts) +
                                  f" | {ncr} crash files")
                self.wait(procs, time.time() + secs, tick)
                last[0] = 0
                tick()
                for eng, fn in watchers:
                    fig = fn()
                    e = tv["engines"].setdefault(eng, {"execs": 0, "coverage": 0, "seconds": 0.0})
                    e["execs"] += fig["execs"]
                    e["coverage"] = max(e["coverage"], fig["coverage"])
                    e["seconds"] += secs
            tv["execs"] = sum(e["execs"] for e in tv["engines"].values())
            tv["seconds"] += per_target
            for cf in crash_files(td):
                eng = "afl" if os.sep + "afl" + os.sep in cf else "libfuzzer"
                self.raw_failures.append({"method": "fuzz", "target": t, "artifact": cf, "kind": "fuzz",
                                          "engine": eng, "seed": seed})
        m["seconds"] += time.time() - t_start

    def phase_diff(self, budget):
        """powercut diff (our engine vs QEMU) over the image-building fuzz
        corpora: committed seeds first, then the kept new units."""
        d = os.path.join(self.out, "diff")
        os.makedirs(d, exist_ok=True)
        m = self.methods.setdefault("diff", {"seconds": 0.0, "targets": {}})
        if not (shutil.which("qemu-img") and shutil.which("qemu-io")):
            self.notes.append("diff: qemu-img/qemu-io are not installed: no differential replay")
            return
        paths = []
        for t in DIFF_TARGETS:
            for p in (os.path.join(fuzz.CORPUS, t), os.path.join(fuzz.CORPUS, t, ".work")):
                if os.path.isdir(p) and os.listdir(p):
                    paths.append(p)
        if not paths:
            return
        t_start = time.time()
        out_json = os.path.join(d, "diff.json")
        cmd = [sys.executable, os.path.join(ROOT, "scripts", "powercut"), "diff", "--json", out_json,
               "--jobs", self.jobs, "--max-seconds", max(1, int(budget - 20)), "--minimize-seconds", 10] + paths
        p = self.start(cmd, os.path.join(d, "diff.log"))
        self.wait([p], t_start + budget, lambda: self.progress("diff: our engine vs QEMU on the fuzz corpora"))
        m["seconds"] += time.time() - t_start
        if not os.path.exists(out_json):
            self.notes.append(f"diff wrote no report (status {p.returncode}); see {d}/diff.log")
            return
        with open(out_json) as f:
            r = json.load(f)
        ours = [c for c in r.get("classes", []) if str(c.get("departs", "")).startswith("ours")]
        tv = m["targets"].setdefault("corpora", {"states": 0, "execs": 0, "failures": 0, "seconds": 0.0})
        tv["states"] += r.get("images", 0)
        tv["failures"] += sum(c["count"] for c in ours)
        tv["seconds"] += r.get("wall_s", 0)
        m["images"] = m.get("images", 0) + r.get("images", 0)
        m["disagreements"] = m.get("disagreements", 0) + len(r.get("disagreements", []))
        m["classes"] = [{k: c.get(k) for k in ("name", "departs", "count", "rule", "reproducer")}
                        for c in r.get("classes", [])]
        self.diff_failures += [f"diff: our engine departs: {c['name']} ({c['count']}x; {c.get('rule', '')}); "
                               f"reproduce: {c.get('reproduce')}" for c in ours]
        for c in r.get("classes", []):
            if c not in ours:
                self.notes.append(f"diff: {c['name']} ({c['count']} images; departs: {c['departs']}); "
                                  f"reproducer {c.get('reproducer')}")
        self.sample(method="diff", target="corpora", states=r.get("images", 0), violations=len(ours))

    # ---- final ----------------------------------------------------------------------------
    def merge_corpora(self, deadline):
        """libFuzzer -merge=1: the kept corpus becomes a minimal set covering
        everything both engines found."""
        for t in self.targets:
            if self.interrupts or time.time() > deadline:
                break
            work = os.path.join(fuzz.CORPUS, t, ".work")
            sources = [work] + sorted(glob.glob(os.path.join(self.out, "fuzz", t, "afl", "*", "queue")))
            if not any(os.path.isdir(s) and os.listdir(s) for s in sources):
                continue
            new = work + ".merge"
            shutil.rmtree(new, ignore_errors=True)
            os.makedirs(new)
            binary = os.path.join(build_dir("fuzz"), "fuzz", t)
            log = os.path.join(self.out, "fuzz", t, "merge.log")
            os.makedirs(os.path.dirname(log), exist_ok=True)
            before = fuzz.count_files(work)
            p = self.start([binary] + fuzz.read_options(t) + ["-merge=1", f"-merge_control_file={new}.ctl", new] +
                           [s for s in sources if os.path.isdir(s)], log)
            self.wait([p], min(deadline, time.time() + 300), grace=0)
            if p.returncode == 0 and fuzz.count_files(new):
                shutil.rmtree(work)
                os.replace(new, work)
                after = fuzz.count_files(work)
                self.methods["fuzz"]["targets"].setdefault(t, {}).update(corpus_before=before, corpus=after)
                say(f"campaign: {t}: corpus merged: {before} kept + AFL++ queue -> {after} units")
            else:
                shutil.rmtree(new, ignore_errors=True)
                self.notes.append(f"{t}: corpus merge failed or timed out (status {p.returncode}); "
                                  f"the corpus is kept as it was (see {log})")
            for f in glob.glob(new + ".ctl*"):
                os.remove(f)

    def triage_failures(self, deadline):
        """Crash states, dedupe, minimize, store.  Returns the unique list."""
        for f in self.raw_failures:
            if f["kind"] == "fuzz" and "state" not in f:
                rc, text = reproduce_fuzz(f["target"], f["artifact"], f["engine"])
                f["report"] = text[-4000:]
                f["state"] = triage.crash_state(text) if rc != 0 else ("does not reproduce", [])
                f["what"] = f["state"][0]
        unique = triage.dedupe([f for f in self.raw_failures if f.get("state")])
        out = []
        for u in unique:
            art = u.get("artifact")
            if not art or not os.path.exists(art):
                u["command"] = "(no reproducer saved)"
                out.append(u)
                continue
            minimized = art
            if not self.interrupts and time.time() < deadline:
                minimized = minimize(u, art, self.out, min(120, max(10, deadline - time.time()))) or art
            u["minimized"] = minimized != art
            d = triage.store_regression(u, minimized, root=self.args.regressions, extra=regression_fields(u))
            u["regression"] = os.path.relpath(d, ROOT) if d.startswith(ROOT) else d
            u["command"] = f"scripts/powercut repro {os.path.join(u['regression'], os.path.basename(minimized))}"
            out.append(u)
        return out

    def coverage(self, deadline):
        """Engine coverage from the kept corpora, with the coverage preset's
        standalone targets; llvm-cov HTML in DIR/coverage/."""
        cdir = os.path.join(self.out, "coverage")
        prof = os.path.join(cdir, "prof")
        os.makedirs(prof, exist_ok=True)
        objs, per_target = [], {}
        engine_src = [os.path.join(ROOT, "engine", "src"), os.path.join(ROOT, "engine", "include")]
        for t in self.targets:
            b = os.path.join(build_dir("coverage"), "fuzz", t)
            if not os.path.exists(b) or time.time() > deadline:
                continue
            objs.append(b)
            env = dict(os.environ, LLVM_PROFILE_FILE=os.path.join(prof, f"{t}-%p.profraw"))
            corp = [p for p in (os.path.join(fuzz.CORPUS, t), os.path.join(fuzz.CORPUS, t, ".work"))
                    if os.path.isdir(p)]
            p = self.start([b, "--quiet"] + corp, os.path.join(cdir, f"{t}.log"), env=env)
            self.wait([p], min(deadline, time.time() + 300), grace=0)
            raws = glob.glob(os.path.join(prof, f"{t}-*.profraw"))
            if not raws:
                continue
            pd = os.path.join(prof, f"{t}.profdata")
            subprocess.run(["llvm-profdata-14", "merge", "-sparse", "-o", pd] + raws, check=False)
            per_target[t] = llvm_cov_totals(pd, [b], engine_src)
        pds = glob.glob(os.path.join(prof, "*.profdata"))
        if not pds:
            return {}
        allpd = os.path.join(prof, "all.profdata")
        subprocess.run(["llvm-profdata-14", "merge", "-sparse", "-o", allpd] + pds, check=False)
        args = ["-instr-profile", allpd, objs[0]] + sum((["-object", o] for o in objs[1:]), [])
        subprocess.run(["llvm-cov-14", "show", "-format=html", "-output-dir", cdir, "-show-line-counts-or-regions",
                        "-project-title=powercut engine (campaign corpora)"] + args + engine_src,
                       check=False, stdout=subprocess.DEVNULL)
        cov = llvm_cov_totals(allpd, objs, engine_src)
        cov["html"] = "coverage/index.html" if os.path.exists(os.path.join(cdir, "index.html")) else None
        cov["per_target"] = per_target
        return cov

    # ---- the whole run ----------------------------------------------------------------------
    def run(self):
        self.prepare()
        os.makedirs(self.out, exist_ok=True)
        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        say(f"campaign: seed {self.seed}, budget {self.budget} s, {self.jobs} job(s), split "
            + ", ".join(f"{k} {v}%" for k, v in self.split.items()) + f"; resuming at sweep seed "
            f"{self.state['sweep_seed']}, fault seed {self.state['fault_seed']}; report in {self.out}")
        old = signal.signal(signal.SIGINT, self.on_sigint)
        self.t0 = time.time()
        end = self.t0 + self.budget
        # The final step (merge, triage, coverage) needs about a minute
        # whatever the budget: the phases share what is left after it.
        reserve = max(self.budget * FINAL_SHARE / 100, min(60, self.budget * 0.3))
        scale = (self.budget - reserve) / (self.budget * sum(self.split.values()) / 100)
        unique, cov = [], {}
        try:
            for phase, fn in (("sweep", self.phase_sweep), ("faults", self.phase_faults), ("fuzz", self.phase_fuzz),
                              ("diff", self.phase_diff)):
                if self.split[phase] and not self.interrupts:
                    share = self.budget * self.split[phase] / 100 * min(1.0, scale)
                    fn(min(share, max(1, end - reserve - time.time())))
                    self.end_progress()
            final_deadline = max(end, time.time() + 60)
            if self.split["fuzz"] and not self.interrupts:
                self.merge_corpora(final_deadline)
            unique = self.triage_failures(final_deadline)
            if not self.args.no_coverage and not self.interrupts:
                self.progress("measuring engine coverage over the corpora", force=True)
                cov = self.coverage(final_deadline + 120)
                self.end_progress()
        except Interrupted:
            self.notes.append("stopped at once by a second Ctrl-C")
        finally:
            signal.signal(signal.SIGINT, old)
            self.signal_all(signal.SIGKILL)
            write_json(self.state_file, self.state)
        for f in self.raw_failures:
            f.pop("report", None)
        data = self.data(started, unique, cov)
        path = report.write_report(self.out, data)
        self.print_summary(data)
        print(f"report: {path}")
        if self.interrupts:
            return 130
        return EXIT_FAIL if unique or self.diff_failures else EXIT_OK

    def data(self, started, unique, cov):
        for u in unique:
            u.pop("state", None)
            u.pop("report", None)
        fuzz_m = self.methods.get("fuzz")
        if fuzz_m and cov.get("per_target"):
            for t, v in fuzz_m["targets"].items():
                pt = cov["per_target"].get(t)
                if pt and "lines" in pt:
                    v["coverage"] = round(pt["lines"]["percent"], 2)
        for mname, mv in self.methods.items():
            for t, v in mv["targets"].items():
                v["failures"] = sum(1 for u in unique if u.get("method") == mname and u.get("target") == t) or \
                    v.get("failures", 0)
        return {
            "campaign": {"seed": self.seed, "started": started, "elapsed_s": round(self.elapsed(), 1),
                         "budget_s": self.budget, "jobs": self.jobs, "split": self.split,
                         "partial": bool(self.interrupts), "command": " ".join(sys.argv),
                         "engine": engine_id(), "state": dict(self.state),
                         "notes": self.notes + self.diff_failures,
                         "afl": self.use_afl},
            "methods": self.methods,
            "coverage": cov,
            "failures": unique,
            "series": self.series,
        }

    def print_summary(self, data):
        rows = report.table_rows(data)
        print(f"\n{'method':8s} {'target':22s} {'states':>10s} {'execs':>12s} {'coverage':>9s} {'failures':>9s}")
        for r in rows:
            print(f"{r['method']:8s} {r['target']:22s} {fmt_num(r['states']):>10s} {fmt_num(r['execs']):>12s} "
                  f"{fmt_num(r['coverage']):>9s} {r['failures']:>9d}")
        cov = data.get("coverage") or {}
        if cov.get("lines"):
            print(f"\nengine coverage from the corpora: lines {cov['lines']['percent']:.1f}%, "
                  f"regions {cov['regions']['percent']:.1f}%, functions {cov['functions']['percent']:.1f}%")
        for n in self.notes:
            print(f"note: {n}")
        for n in self.diff_failures:
            print(f"FAILURE {n}")
        for u in data["failures"]:
            print(f"FAILURE [{u['id']}] {u['method']} {u['target']}: {u.get('what')} (seen {u['count']}x)\n"
                  f"  reproduce: {u.get('command')}")


# ---- helpers ----------------------------------------------------------------------------------
def fmt_clock(s):
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def fmt_num(v):
    if v is None:
        return "-"
    return f"{v:,.1f}" if isinstance(v, float) else f"{v:,}"


def engine_id():
    vt = tool("default", "vhdxtool")
    try:
        cp = subprocess.run([vt, "--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            timeout=10)
        return cp.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


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
    fig = fuzz.parse_libfuzzer(tail(log))
    return {"execs": fig["execs"], "coverage": fig["coverage"]}


def afl_figures(out, jobs):
    execs = cov = 0
    for j in range(jobs):
        name = "main" if j == 0 else f"sec{j}"
        st = fuzz.parse_afl_stats(os.path.join(out, name, "fuzzer_stats"))
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


def reproduce_fuzz(target, path, engine):
    """Runs one input again; returns (status, output).  libFuzzer findings
    run with the libFuzzer binary (same sanitizers); AFL++ findings (from an
    uninstrumented build) with the standalone target of the target's replay
    preset (asan, fiu-asan for fault schedules), after
    the AFL++ post-processing for the targets with the custom mutator."""
    env = dict(os.environ, ASAN_OPTIONS="handle_abort=1:detect_leaks=1:symbolize=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    if engine == "afl":
        preset = fuzz.replay_preset(target)
        build.ensure_built(preset, [target], quiet=True)
        cmd = [os.path.join(build_dir(preset), "fuzz", target)]
        if fuzz.TARGETS[target]["mutator"]:
            cmd.append("--post-process")
        cmd.append(path)
    else:
        cmd = [os.path.join(build_dir("fuzz"), "fuzz", target)] + \
            [o for o in fuzz.read_options(target) if o.startswith(("-timeout", "-rss_limit_mb"))] + [path]
    try:
        cp = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=120)
        return cp.returncode, cp.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        return 124, (e.stdout or b"").decode(errors="replace") + "\nERROR: libFuzzer: timeout (reproduction)"


def minimize(u, art, out, seconds):
    """A smaller input with the same crash state, or None."""
    mdir = os.path.join(out, "minimized")
    os.makedirs(mdir, exist_ok=True)
    dest = os.path.join(mdir, f"{u['id']}-{os.path.basename(art).replace(':', '_')}")
    try:
        if u["kind"] == "pctrace":
            cp = subprocess.run([tool("default", "pcsweep"), "repro", art, "--minimize", dest],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds)
            return dest if cp.returncode in (0, 1) and os.path.exists(dest) else None
        if u["kind"] == "fuzz" and u.get("engine") == "libfuzzer":
            binary = os.path.join(build_dir("fuzz"), "fuzz", u["target"])
            subprocess.run([binary, "-minimize_crash=1", f"-max_total_time={int(seconds)}", "-runs=100000",
                            f"-exact_artifact_path={dest}", art], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=seconds + 30)
        elif u["kind"] == "fuzz" and not fuzz.TARGETS[u["target"]]["mutator"] and shutil.which("afl-tmin"):
            subprocess.run(["afl-tmin", "-i", art, "-o", dest, "-t", "10000", "--",
                            os.path.join(build_dir("afl"), "fuzz", u["target"])],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds,
                           env=dict(os.environ, AFL_QUIET="1"))
        else:
            return None  # fault plans are one call already; AFL++ post-processed inputs stay as saved
    except subprocess.TimeoutExpired:
        pass
    if not os.path.exists(dest) or os.path.getsize(dest) >= os.path.getsize(art):
        return None
    # keep the smaller input only if it still fails the same way
    rc, text = reproduce_fuzz(u["target"], dest, u.get("engine"))
    if rc != 0 and triage.signature(triage.crash_state(text)) == triage.signature(u["state"]):
        return dest
    return None


def regression_fields(u):
    """What the CTest replay needs in meta.json: the tool ("target") and
    how to run the input."""
    if u["kind"] == "pctrace":
        return {"target": "pcsweep", "status": "new"}
    if u["kind"] == "fault":
        return {"target": "pcfaults", "status": "new"}
    fields = {"target": u["target"], "status": "new"}
    if u.get("engine") == "afl" and fuzz.TARGETS[u["target"]]["mutator"]:
        fields["post_process"] = True
    return fields


def llvm_cov_totals(profdata, objs, sources):
    args = ["llvm-cov-14", "export", "-summary-only", "-instr-profile", profdata, objs[0]] + \
        sum((["-object", o] for o in objs[1:]), []) + sources
    try:
        cp = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=300)
        totals = json.loads(cp.stdout)["data"][0]["totals"]
    except (OSError, ValueError, KeyError, IndexError, subprocess.TimeoutExpired):
        return {}
    return {k: {"covered": v.get("covered", 0), "count": v.get("count", 0), "percent": round(v.get("percent", 0), 2)}
            for k, v in totals.items() if k in ("lines", "regions", "functions", "branches")}
