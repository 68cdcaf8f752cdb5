"""`powercut campaign`: the nightly job, and `powercut report`.

    powercut campaign --time 1h --jobs 2 --out reports/nightly

Splits the wall-clock budget (--time; builds happen before the clock
starts) into phases that run one after the other, each using --jobs
processes:

  (bench)        before the clock, after the builds: the speed of the build
                 the campaign runs -- `powercut bench --only sweep,fuzz
                 --quick` (crash states/s of the default sweep; execs/s of
                 each fuzz target with and without sanitizers), in
                 DIR/bench.json and the report's "Build and speed" section
                 (5 to 15 s on 2 cores; --no-bench skips it)

  sweep   (30%)  pcsweep over every scenario under every crash model of
                 one workload seed, sharded over the jobs (--shard k/N);
                 the phase's time is shared among the scenarios not yet
                 finished, each resumed at the epoch it stopped in
                 (--first-epoch), so later scenarios are reached too
  faults  (15%)  pcfaults: the deterministic fault sweep of one workload
                 seed, shared among its scenarios the same way (resumed at
                 the plan it stopped at, --first-plan); once a seed is
                 finished, random fault plans (campaign seeds) for the rest
  fuzz    (45%)  every fuzz target in turn, libFuzzer (-fork, crashes do not
                 stop it) and AFL++ (-M main, -F syncing libFuzzer's corpus,
                 CMPLOG) side by side, each on half the jobs; a target's
                 share includes AFL++'s start-up (it is not started when the
                 share is shorter than that, and the report says so)
  diff     (5%)  powercut diff over the image-building fuzz corpora
                 (fuzz_log_replay, fuzz_image_open: seeds and new units):
                 our engine against QEMU; a disagreement class where our
                 engine departs from MS-VHDX is a failure, QEMU's departures
                 are listed (needs qemu-img/qemu-io)
  final    (5%, at least 30% of budgets under about 3 minutes, at most a
                 minute; 5 s when that is under 15 s: coverage cannot fit)
                 corpora merged and minimized (libFuzzer -merge=1
                 into corpus/<target>/.work), failures triaged (grouped by
                 signature, minimized, stored under corpus/regressions/),
                 engine coverage measured from the corpora (llvm-cov), and
                 the report written; what does not fit in the budget is
                 skipped and said

--split changes the shares.  Everything random derives from the campaign
seed (--seed, default from the clock), which is printed and stored.
Workload seeds (the input of the sweeps' workloads) come from the resume
state; pcsweep's own "sweep seed" (sampling) stays 1.

Coverage of the planned work: every phase reports what it did of what it
planned (sweep: scenarios and epochs of the workload seed; faults: plans;
fuzz: targets and engines that ran for their share; diff: images) in the
console, summary.json, junit.xml (a phase that did not finish is a skipped
test case, a failed one with --require-complete) and index.html.

Resuming: the corpora (corpus/<target>/.work/) and the position of the
deterministic parts (per scenario the next epoch of the sweep and the next
plan of the fault sweep, the workload seeds, the next campaign seed) are
kept in corpus/.state/campaign.json, so the next campaign -- whatever its
--out -- continues where this one stopped (--fresh starts over; a damaged
state file is an error, exit status 2).

Ctrl-C stops the running phase (the tools stop after the current state and
write their summaries), skips minimization and coverage, and writes a
partial report (summary.json "partial", junit.xml and index.html marked);
a second Ctrl-C stops at once.

Output in DIR: summary.json (per method and target: states, execs,
coverage, failures, the coverage of the planned work; the time series; the
bench figures of the build under "bench"), junit.xml, index.html (one
self-contained page), bench.json (with bench-fuzz/, the bench's libFuzzer
logs), coverage/ (llvm-cov HTML), and the raw results of every tool
(sweep/, faults/, fuzz/, diff/).
`powercut report DIR` rewrites junit.xml and index.html from
DIR/summary.json.

Several machines: --shard K/N (or the launcher's environment:
TEST_SHARD_INDEX/TEST_TOTAL_SHARDS, JOB_COMPLETION_INDEX with --shards N,
SLURM_ARRAY_TASK_ID/COUNT; `pcsweep shard --help`) runs machine K's part
with the same --seed: job k sweeps shard K*jobs+k of N*jobs of the states
and fault plans, random fault plans and fuzzing get seeds of their own, the
diff compares input K of every N.  Give each machine its own --state (or
--fresh) and join the reports with `powercut merge DIR... --out DIR`
(docs/scale-out.md).

History: each campaign appends one JSON line to --history (default
history.jsonl beside the report directory): commit, build, seed, shard,
counts, states/s and execs/s, coverage, failures by signature.  Every
failure is classified new / known / flaky against the history and the
regressions corpus, and the previous run's failures not seen now are listed
as fixed (console, summary.json, index.html with the trends of the last
runs).  sarif.json (SARIF 2.1.0) beside summary.json lists the failures for
code-scanning views.  --fail-on new|any decides which failures make the exit
status 1 (default new when the environment sets CI, any otherwise).

The phases are one module each under scripts/pclib/phases/; this module
parses the options, keeps the resume state and runs them in order.

Exit status: 0 no failure found (under --fail-on); 1 failures found (or, with
--require-complete, a phase that did not do all its planned work); 2 usage
or infrastructure error; 130 interrupted (the partial report is written).
"""
import argparse
import json
import os
import re
import shutil
import signal
import sys
import time

from . import build, fuzz, history, phases, registry, report, setup, triage
from .common import (EXIT_FAIL, EXIT_OK, EXIT_USAGE, ROOT, STDOUT, UsageError, check_output_dir, fallback_path, popen,
                     say, tool, write_json)
from .phases import bench as bench_phase
from .phases import coverage as coverage_phase
from .phases import fuzz as fuzz_phase
from .phases import report as report_phase
from .phases import triage as triage_phase

DEFAULT_SPLIT = {"sweep": 30, "faults": 15, "fuzz": 45, "diff": 5}
FINAL_SHARE = 5
STATE_FILE = os.path.join(ROOT, "corpus", ".state", "campaign.json")
STATE_VERSION = 2
STOP_GRACE = 2          # seconds past a deadline before SIGINT; SIGKILL 5 s later


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


# The resume state of another subject's sweep or fault sweep (--subjects):
# "sweep:qemu", "faults:qemu"; libvhdx's are "sweep" and "faults".
SUBJECT_PART = re.compile(r"^(sweep|faults):[A-Za-z0-9_-]+$")


def part_key(phase, subject):
    """The method, resume-state and directory key of a phase for a subject:
    "sweep" for libvhdx, "sweep:qemu" for another."""
    return phase if subject == "libvhdx" else f"{phase}:{subject}"


def new_state():
    return {"version": STATE_VERSION,
            "sweep": {"workload_seed": 1, "scenarios": {}},
            "faults": {"workload_seed": 1, "scenarios": {}},
            "fault_campaign_seed": None}


def _positive_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def load_state(path=STATE_FILE):
    """The resume state (new_state() when there is none).  A file that is
    there but damaged is a UsageError naming it -- starting over silently
    would redo finished work and hide the damage.  The state of older
    campaigns (sweep_seed, fault_seed) is taken over."""
    if not os.path.exists(path):
        return new_state()
    why = None
    try:
        with open(path) as f:
            st = json.load(f)
    except ValueError as e:
        st, why = None, f"not JSON ({e})"
    except OSError as e:
        raise UsageError(f"{path}: the campaign state cannot be read: {e.strerror or e}") from e
    if why is None and not isinstance(st, dict):
        why = "not a JSON object"
    if why is None:
        out = new_state()
        if "sweep_seed" in st or "fault_seed" in st:  # version 1: whole seeds only
            out["sweep"]["workload_seed"] = st.get("sweep_seed", 1)
            out["faults"]["workload_seed"] = st.get("fault_seed", 1)
        for k in st:
            if k in ("sweep", "faults") or SUBJECT_PART.match(k):
                out[k] = st[k]
        out["fault_campaign_seed"] = st.get("fault_campaign_seed")
        why = _state_problem(out)
        st = out
    if why:
        raise UsageError(f"{path}: a damaged campaign state: {why}; repair or delete it, or run with --fresh "
                         f"(which starts over at workload seed 1)")
    return st


def _state_problem(st):
    parts = [(k, "next_epoch" if k.startswith("sweep") else "next_plan") for k in st
             if k in ("sweep", "faults") or SUBJECT_PART.match(k)]
    for k, unit in parts:
        part = st.get(k)
        if not isinstance(part, dict) or not _positive_int(part.get("workload_seed")) or \
                part.get("workload_seed") < 1 or not isinstance(part.get("scenarios"), dict):
            return f'"{k}" must hold "workload_seed" (>= 1) and "scenarios" (an object)'
        for name, v in part["scenarios"].items():
            if not isinstance(v, dict) or not _positive_int(v.get(unit, 0)) or not isinstance(v.get("done", False),
                                                                                             bool):
                return f'"{k}.scenarios.{name}" must hold "{unit}" (a count) and "done" (true or false)'
        if not _positive_int(part.get("cursor", 0)):
            return f'"{k}.cursor" must be a non-negative integer'
    cs = st.get("fault_campaign_seed")
    if cs is not None and not _positive_int(cs):
        return '"fault_campaign_seed" must be a non-negative integer'
    return None


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
    p.add_argument("--subjects", default="libvhdx",
                   help="implementations the sweep and fault phases test, comma list of `pcsweep subjects` "
                        "(libvhdx, qemu when built) or all (default libvhdx); the phases' time is shared "
                        "among them, each resumes on its own, and the report has a section per subject")
    p.add_argument("--no-afl", action="store_true", help="fuzz with libFuzzer only")
    p.add_argument("--no-coverage", action="store_true", help="skip the llvm-cov report")
    p.add_argument("--no-bench", action="store_true",
                   help="do not measure the build's speed before the clock (bench.json and the report's "
                        "\"Build and speed\" section; the report then says it was skipped)")
    p.add_argument("--require-complete", action="store_true",
                   help="a phase that did not do all its planned work is a failure (JUnit failure, exit status 1) "
                        "instead of a skipped test case")
    p.add_argument("--fresh", action="store_true", help="ignore the kept resume state (workload seeds start at 1)")
    p.add_argument("--state", default=STATE_FILE, help="resume state file (default: corpus/.state/campaign.json)")
    p.add_argument("--regressions", default=triage.REGRESSIONS,
                   help="where unique failures are stored (default: corpus/regressions)")
    p.add_argument("--shard", help="K/N: run machine K's part of an N-machine campaign: the same seed, disjoint "
                                   "work (sweep and fault-sweep states, random fault plans, fuzzing seeds, diff "
                                   "inputs); default: from the launcher's environment (TEST_SHARD_INDEX/"
                                   "TEST_TOTAL_SHARDS, JOB_COMPLETION_INDEX with --shards, SLURM_ARRAY_TASK_ID/"
                                   "COUNT), else 0/1; `powercut merge` joins the parts")
    p.add_argument("--shards", type=int, help="N: the shards of a Kubernetes Indexed Job (JOB_COMPLETION_INDEX)")
    from .merge import add_history_args
    add_history_args(p)


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
    problem = report.summary_problem(data)
    if problem:
        raise UsageError(f"{path}: a damaged campaign summary: {problem}")
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
    """One campaign: its budget, jobs, seeds and resume state, the tools it
    runs (start/wait: each in its own session, SIGINT and then SIGKILL past
    a deadline), the progress line, and what the phases collect (methods,
    notes, raw_failures, series, final).  The phases are the modules of
    phases/ (sweep, faults, fuzz, diff, then triage, coverage and report in
    the final step); run() orchestrates them and writes the report."""

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
        # Everything the campaign reads or writes is checked before any work.
        check_output_dir(self.out, "--out")
        self.state_file = args.state
        self.state = new_state() if args.fresh else load_state(self.state_file)
        check_output_dir(os.path.dirname(os.path.abspath(self.state_file)), "--state")
        if self.state.get("fault_campaign_seed") is None:
            self.state["fault_campaign_seed"] = self.seed
        self.interrupts = 0
        self.live = []  # running Popen objects
        self.series = []
        self.methods = {}
        self.raw_failures = []  # one per signature and tool run, before dedupe
        self.notes = []
        self.diff_failures = []  # diff classes where our engine departs from MS-VHDX
        self.t0 = None
        self.last_line = 0
        self.tty = sys.stderr.isatty()
        self.final = {}  # what the final step did: merge, triage, coverage
        self.damaged = []  # inputs the campaign found damaged (exit status 2, after the report)
        # the shard: resolved by pcsweep (one rule) once it is built, in prepare()
        self.shard, self.shard_source, self.shard_k, self.shard_n = "0/1", "none", 0, 1
        self.subjects = ["libvhdx"]  # --subjects, checked against the build in prepare()
        self.history = args.history or history.default_path(self.out)
        history.check(self.history)  # a damaged history is an error before any work
        self.fail_on = args.fail_on or history.default_fail_on()

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
        f = open(log, "a")
        # In its own session: Ctrl-C reaches the driver only; it forwards it.
        p = popen(cmd, stdout=f, stderr=STDOUT, env=env, cwd=cwd, new_session=True)
        p.log_file = f
        self.live.append(p)
        return p

    def wait(self, procs, deadline, tick=None, grace=STOP_GRACE, kill_after=5):
        """Waits for procs, calling tick() about every second; past the
        deadline (+grace) they get SIGINT (they stop and write what they
        have), kill_after seconds later SIGKILL.  Returns the seconds past
        the deadline."""
        sent_int = None
        while any(p.poll() is None for p in procs):
            time.sleep(0.2)
            if tick:
                tick()
            now = time.time()
            if sent_int is None and (now > deadline + grace or self.interrupts):
                sent_int = now
                for p in procs:
                    if p.poll() is None:
                        try:
                            os.killpg(p.pid, signal.SIGINT)
                        except ProcessLookupError:
                            pass
            elif sent_int is not None and now > sent_int + kill_after:
                for p in procs:
                    if p.poll() is None:
                        try:
                            os.killpg(p.pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
        for p in procs:
            p.log_file.close()
            self.live.remove(p)
        return max(0.0, time.time() - deadline)

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
        t = time.time()
        build.ensure_built("default", quiet=True)  # pcsweep's registries, vhdxtool, diff
        if self.split["faults"]:
            build.ensure_built("fiu", quiet=True)
        if self.split["fuzz"]:
            build.ensure_built("fuzz", quiet=True)
            if self.use_afl:
                build.ensure_built("afl", quiet=True)
                build.ensure_built("afl-cmplog", quiet=True)
                # triage replays AFL++ findings with these: built now, not on the clock
                for preset in sorted({fuzz.replay_preset(t) for t in self.targets}):
                    build.ensure_built(preset, [t for t in self.targets if fuzz.replay_preset(t) == preset],
                                       quiet=True)
        if not self.args.no_coverage:
            build.ensure_built("coverage", quiet=True)
        if not self.args.no_bench and self.split["fuzz"]:
            build.ensure_built("fuzz-nosan", quiet=True)  # the bench's fuzz section: execs/s without sanitizers
        self.build_seconds = round(time.time() - t, 1)
        self.scenarios = registry.scenarios(tool("default", "pcsweep"))
        have = [x["name"] for x in registry.subjects(tool("default", "pcsweep"))]
        want = have if self.args.subjects == "all" else [x.strip() for x in self.args.subjects.split(",") if x.strip()]
        bad = [x for x in want if x not in have]
        if bad or not want:
            raise UsageError(f"--subjects {self.args.subjects!r}: " +
                             (f"{', '.join(bad)} not in this build (it has {', '.join(have)}; the QEMU subject "
                              f"is built when its source was fetched: qemu/fetch_source.py)" if bad
                              else "no subject named"))
        self.subjects = list(dict.fromkeys(want))
        sh = registry.shard(tool("default", "pcsweep"), self.args.shard, self.args.shards)
        self.shard, self.shard_source, self.shard_k, self.shard_n = sh["shard"], sh["source"], sh["k"], sh["n"]

    def job_shard(self, k):
        """pcsweep/pcfaults --shard of job k: job k of campaign shard K/N
        is shard K*jobs+k of N*jobs (disjoint across machines)."""
        return f"{self.shard_k * self.jobs + k}/{self.shard_n * self.jobs}"

    # ---- phases ---------------------------------------------------------------------------
    def read_json(self, path, what):
        """A tool's JSON summary, or None (and a note saying why)."""
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            self.notes.append(f"{what} wrote an unreadable summary {path}: {e}")
            return None

    def run(self):
        self.prepare()
        os.makedirs(self.out, exist_ok=True)
        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        bench_phase.run(self)  # before the clock, like the builds (phases/bench.py says why)
        sw, fa = self.state["sweep"], self.state["faults"]

        def where(part, unit, key):
            open_ = [f"{s} at {unit} {v.get(key, 0)}" for s, v in part["scenarios"].items() if not v.get("done")]
            done = [s for s, v in part["scenarios"].items() if v.get("done")]
            text = ", ".join(([f"{', '.join(done)} done"] if done else []) + open_)
            return f" ({text})" if text else ""
        say(f"campaign: shard {self.shard} (from {self.shard_source}), seed {self.seed}, budget {self.budget} s, "
            f"{self.jobs} job(s), split "
            + ", ".join(f"{k} {v}%" for k, v in self.split.items()) +
            f"; resuming at workload seed {sw['workload_seed']} of the sweep{where(sw, 'epoch', 'next_epoch')}, "
            f"workload seed {fa['workload_seed']} of the fault sweep{where(fa, 'plan', 'next_plan')}; report in "
            f"{self.out}")
        old = signal.signal(signal.SIGINT, self.on_sigint)
        self.t0 = time.time()
        end = self.t0 + self.budget
        # The final step (merge, triage, coverage, report) gets its share
        # of the budget: 5%, but a short budget keeps up to 30% (at most a
        # minute) for it; the phases share the rest.
        reserve = max(self.budget * FINAL_SHARE / 100, min(60, self.budget * 0.3))
        if reserve < 15:  # coverage (10 s or more) cannot fit: keep what triage and the report need
            reserve = max(self.budget * FINAL_SHARE / 100, min(reserve, 5.0))
        scale = (self.budget - reserve) / (self.budget * sum(self.split.values()) / 100)
        unique, cov = [], {}
        try:
            for phase, fn in phases.PHASES:
                if self.split[phase] and not self.interrupts:
                    share = self.budget * self.split[phase] / 100 * min(1.0, scale)
                    fn(self, max(0.0, min(share, end - reserve - time.time())))
                    self.end_progress()
            final_deadline = end
            if self.split["fuzz"] and not self.interrupts:
                # merging is worth a third of what is left at most
                fuzz_phase.merge_corpora(self, time.time() + max(0.0, (final_deadline - time.time()) / 3))
            unique = triage_phase.run(self, final_deadline - 3)
            if self.args.no_coverage:
                self.final["coverage"] = "not measured (--no-coverage)"
            elif self.interrupts:
                self.final["coverage"] = "not measured (interrupted)"
            elif final_deadline - time.time() < 10:
                self.final["coverage"] = (f"not measured: {max(0, final_deadline - time.time()):.0f} s of the budget "
                                          f"were left, it needs about 10 s or more")
                self.notes.append(f"engine coverage {self.final['coverage']}")
            else:
                self.progress("measuring engine coverage over the corpora", force=True)
                cov = coverage_phase.run(self, final_deadline - 2)
                self.final["coverage"] = "measured" if cov else "not measured (no profile within the budget)"
                self.end_progress()
        except Interrupted:
            self.notes.append("stopped at once by a second Ctrl-C")
        finally:
            signal.signal(signal.SIGINT, old)
            self.signal_all(signal.SIGKILL)
            try:
                write_json(self.state_file, self.state)
            except OSError as e:
                alt = fallback_path(self.state_file)
                write_json(alt, self.state)
                self.notes.append(f"the resume state could not be written to {self.state_file} "
                                  f"({e.strerror or e}); it was saved to {alt}")
        for f in self.raw_failures:
            f.pop("report", None)
        report_phase.budget_notes(self)
        data = report_phase.data(self, started, unique, cov)
        data["campaign"]["fail_on"] = self.fail_on
        # new / known / fixed / flaky, the history record, sarif.json
        try:
            history.finish(self.out, data, self.history, self.args.regressions,
                           registry.invariants(tool("default", "pcsweep")))
        except OSError as e:
            self.damaged.append(f"--history {self.history}: the record could not be written ({e.strerror or e})")
        lost = None
        try:
            path = report.write_report(self.out, data)
        except OSError as e:
            alt = fallback_path(self.out)
            path = report.write_report(alt, data)
            lost = f"--out {self.out}: the report could not be written ({e.strerror or e}); it was saved to {alt}"
        report_phase.print_summary(self, data)
        if lost:
            say(f"campaign: {lost}")
        for d in self.damaged:
            say(f"campaign: error: {d}")
        print(f"report: {path}")
        if lost or self.damaged:
            return EXIT_USAGE
        if self.interrupts:
            return 130
        incomplete = [m for m, v in self.methods.items() if not (v.get("coverage") or {}).get("complete", True)]
        if history.fail_status(unique, self.fail_on) or self.diff_failures or \
                (self.args.require_complete and incomplete):
            return EXIT_FAIL
        return EXIT_OK


# ---- helpers ----------------------------------------------------------------------------------
def fmt_clock(s):
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"
