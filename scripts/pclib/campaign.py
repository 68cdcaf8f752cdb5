"""`powercut campaign`: the nightly job, and `powercut report`.

    powercut campaign --time 1h --jobs 2 --out reports/nightly

Splits the wall-clock budget (--time; builds happen before the clock
starts) into phases that run one after the other, each using --jobs
processes:

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
coverage, failures, the coverage of the planned work; the time series),
junit.xml, index.html (one self-contained page), coverage/ (llvm-cov HTML),
and the raw results of every tool (sweep/, faults/, fuzz/, diff/).
`powercut report DIR` rewrites junit.xml and index.html from
DIR/summary.json.

Exit status: 0 no failure found; 1 failures found (or, with
--require-complete, a phase that did not do all its planned work); 2 usage
or infrastructure error; 130 interrupted (the partial report is written).
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

from . import build, fuzz, registry, report, setup, triage
from .common import (EXIT_FAIL, EXIT_OK, EXIT_USAGE, ROOT, UsageError, build_dir, check_output_dir, fallback_path,
                     say, show_cmd, tool, write_json)

DEFAULT_SPLIT = {"sweep": 30, "faults": 15, "fuzz": 45, "diff": 5}
DIFF_TARGETS = ("fuzz_log_replay", "fuzz_image_open")  # corpora that describe whole images
FINAL_SHARE = 5
STATE_FILE = os.path.join(ROOT, "corpus", ".state", "campaign.json")
STATE_VERSION = 2
AFL_MAX_FILE = 1 << 20  # afl-fuzz refuses larger seeds
AFL_MIN_SECONDS = 15    # AFL++ spends about this long starting (fork server, calibrating the seeds)
SLICE_MIN = 2.0         # the least time a scenario is given in the sweep and fault phases
DIFF_MIN = 4.0          # below this the diff phase would compare nothing: it is not started
LF_FORK_MIN = 30        # libFuzzer's fork mode for shares this long; shorter ones fuzz in-process
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
        for k in ("sweep", "faults"):
            if k in st:
                out[k] = st[k]
        out["fault_campaign_seed"] = st.get("fault_campaign_seed")
        why = _state_problem(out)
        st = out
    if why:
        raise UsageError(f"{path}: a damaged campaign state: {why}; repair or delete it, or run with --fresh "
                         f"(which starts over at workload seed 1)")
    return st


def _state_problem(st):
    for k, unit in (("sweep", "next_epoch"), ("faults", "next_plan")):
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
    p.add_argument("--no-afl", action="store_true", help="fuzz with libFuzzer only")
    p.add_argument("--no-coverage", action="store_true", help="skip the llvm-cov report")
    p.add_argument("--require-complete", action="store_true",
                   help="a phase that did not do all its planned work is a failure (JUnit failure, exit status 1) "
                        "instead of a skipped test case")
    p.add_argument("--fresh", action="store_true", help="ignore the kept resume state (workload seeds start at 1)")
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


def share_text(done, planned, unit):
    if planned is None:
        return f"{done:,} {unit} (of ? planned)"
    pct = 100.0 * done / planned if planned else 100.0
    return f"{done:,} of {planned:,} {unit} ({pct:.0f}%)"


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
        self.build_seconds = round(time.time() - t, 1)
        self.scenarios = registry.scenarios(tool("default", "pcsweep"))

    # ---- phases ---------------------------------------------------------------------------
    def _read_json(self, path, what):
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            self.notes.append(f"{what} wrote an unreadable summary {path}: {e}")
            return None

    def _slices(self, part, budget, unit, run_slice):
        """Shares budget among the scenarios of part's workload seed that
        are not finished (what one leaves goes to the next), calling
        run_slice(seed, scenario, seconds) for each, and moves on to the
        next workload seed when all are finished.  The turn starts where
        the last campaign's ended (part["cursor"]), so short campaigns that
        cannot give every scenario its minimum slice take turns.  Returns
        the workload seeds finished."""
        deadline = time.time() + budget
        finished = []
        visited = set()
        while not self.interrupts:
            left = deadline - time.time()
            seed = part["workload_seed"]
            cur = part.get("cursor", 0) % len(self.scenarios)
            order = self.scenarios[cur:] + self.scenarios[:cur]
            todo = [s for s in order if not part["scenarios"].get(s, {}).get("done")]
            if not todo:
                finished.append(seed)
                part["workload_seed"] = seed + 1
                part["scenarios"] = {}
                visited = set()
                continue
            pending = [s for s in todo if (seed, s) not in visited] or todo
            if left < SLICE_MIN:
                break
            x = pending[0]
            visited.add((seed, x))
            part["cursor"] = (self.scenarios.index(x) + 1) % len(self.scenarios)
            secs = max(SLICE_MIN, left / len(pending))
            if not run_slice(seed, x, min(secs, left)):
                break  # the tool failed (see the notes): no point in going on
        return finished

    def phase_sweep(self, budget):
        pcsweep = tool("default", "pcsweep")
        d = os.path.join(self.out, "sweep")
        os.makedirs(d, exist_ok=True)
        m = self.methods.setdefault("sweep", {"seconds": 0.0, "budget_s": 0.0, "targets": {}, "seeds": []})
        part = self.state["sweep"]
        start_seed = part["workload_seed"]
        t_start = time.time()
        totals = {"states": 0, "violations": 0}

        def run_slice(seed, x, secs):
            pos = part["scenarios"].setdefault(x, {"next_epoch": 0, "done": False})
            first = pos["next_epoch"]
            procs, outs = [], []
            for k in range(self.jobs):
                j = os.path.join(d, f"seed{seed}-{x}-e{first}-shard{k}.json")
                outs.append(j)
                procs.append(self.start([pcsweep, "sweep", "--quiet", "--no-count", "--scenario", x, "--models", "all",
                                         "--seed", seed, "--seeds", 1, "--shard", f"{k}/{self.jobs}",
                                         "--first-epoch", first, "--max-seconds", f"{secs:.1f}", "--json", j,
                                         "--repro-dir", os.path.join(d, "repro")], j[:-5] + ".log"))
            self.wait(procs, time.time() + secs, lambda: self.progress(
                f"sweep workload seed {seed} {x} from epoch {first}: {totals['states']:,} states, "
                f"{totals['violations']} violations so far"))
            nexts, complete = [], True
            t = m["targets"].setdefault(x, {"states": 0, "execs": 0, "failures": 0, "seconds": 0.0})
            for j, p in zip(outs, procs):
                s = self._read_json(j, f"pcsweep ({x}, workload seed {seed})") if os.path.exists(j) else None
                if s is None:
                    complete = False
                    nexts.append(first)
                    if not os.path.exists(j):
                        self.notes.append(f"pcsweep {x} workload seed {seed} wrote no summary (status {p.returncode}); "
                                          f"see {j[:-5]}.log")
                    continue
                complete &= bool(s.get("complete"))
                totals["states"] += s.get("states", 0)
                totals["violations"] += s.get("violations", 0)
                for r in s.get("runs", []):
                    t["states"] += r["states"]
                    t["execs"] += r.get("opens", 0)
                    t["seconds"] += r.get("wall_s", 0)
                    nexts.append(r.get("next_epoch", first) if not r.get("complete") else r.get("epochs_total", 0))
                    pos["epochs"] = r.get("epochs_total", pos.get("epochs"))
                for g in s.get("signatures", []):
                    self.raw_failures.append({
                        "state": triage.violation_state("sweep", g["invariant"],
                                                        [g["model_class"], g["scenario"], g["structure"]]),
                        "method": "sweep", "target": g["scenario"], "count": g["count"],
                        "what": f"{g['invariant']} ({g['structure']}): {g['examples'][0]['detail']}"[:300],
                        "seed": g["examples"][0]["seed"], "artifact": g.get("reproducer"), "kind": "pctrace"})
            pos["next_epoch"] = min(nexts) if nexts else first
            pos["done"] = complete
            t["workload_seed"] = seed
            t["epochs_done"], t["epochs_total"] = pos["next_epoch"], pos.get("epochs")
            t["complete"] = complete
            self.sample(method="sweep", target="all", states=totals["states"], violations=totals["violations"])
            return all(os.path.exists(j) for j in outs)

        m["budget_s"] += budget
        m["seeds"] += self._slices(part, budget, "epochs", run_slice)
        m["seconds"] += time.time() - t_start
        m["states"] = m.get("states", 0) + totals["states"]
        m["violations"] = m.get("violations", 0) + totals["violations"]
        # The planned work: every scenario of the workload seed the phase
        # began with, under every model.
        m["coverage"] = self.seed_coverage(part, "epochs", start_seed, m["seeds"], "next_epoch", "epochs")
        self.progress(f"sweep: {m['coverage']['text']}", force=True)

    def seed_coverage(self, part, unit, start_seed, finished, done_key, total_key):
        """Coverage of a phase whose planned work is one workload seed: all
        scenarios.  Complete when the seed it began with was finished."""
        if start_seed in finished:
            later = part["workload_seed"]
            text = f"workload seed {start_seed} finished: every scenario" + \
                (f" (and seeds up to {later - 1})" if later - 1 > start_seed else "") + \
                f"; workload seed {later} begun"
            return {"complete": True, "done": len(self.scenarios), "planned": len(self.scenarios),
                    "unit": "scenarios", "text": text, "workload_seed": start_seed}
        sc = part["scenarios"]
        done = sum(1 for s in self.scenarios if sc.get(s, {}).get("done"))
        started = [s for s in self.scenarios if s in sc]
        a = sum(sc[s].get(done_key, 0) for s in started if sc[s].get(total_key))
        b = sum(sc[s][total_key] for s in started if sc[s].get(total_key))
        per = ", ".join(f"{s} {'done' if sc[s].get('done') else share_text(sc[s].get(done_key, 0), sc[s].get(total_key), unit)}"
                        for s in started)
        text = (f"workload seed {part['workload_seed']} not finished: {done} of {len(self.scenarios)} scenarios "
                f"complete, {len(self.scenarios) - len(started)} not started" +
                (f"; {share_text(a, b, unit)} of the started ones" if b else "") + (f" ({per})" if per else ""))
        return {"complete": False, "done": done, "planned": len(self.scenarios), "unit": "scenarios",
                "fraction": round(a / b, 4) if b else 0.0, "text": text, "workload_seed": part["workload_seed"]}

    def phase_faults(self, budget):
        pcfaults = tool("fiu", "pcfaults")
        d = os.path.join(self.out, "faults")
        os.makedirs(d, exist_ok=True)
        m = self.methods.setdefault("faults", {"seconds": 0.0, "budget_s": 0.0, "targets": {}, "seeds": [],
                                               "campaign_seeds": []})
        part = self.state["faults"]
        start_seed = part["workload_seed"]
        t_start = time.time()
        deadline = t_start + budget
        totals = {"faults": 0, "violations": 0}

        def collect(s, where):
            totals["faults"] += s.get("injected", 0)
            totals["violations"] += s.get("violations", 0)
            for kind, v in (s.get("kinds") or {}).items():
                t = m["targets"].setdefault(kind, {"states": 0, "execs": 0, "failures": 0, "seconds": 0.0})
                t["states"] += v.get("states", 0)
                t["execs"] += v.get("injected", 0)
                t["failures"] += v.get("violations", 0)
                t["seconds"] += v.get("seconds", 0)
            for g in s.get("signatures", []):
                ex = g["examples"][0]
                self.raw_failures.append({
                    "state": triage.violation_state("faults", g["invariant"],
                                                    [f"{g['phase']}/{g['kind']}", g["scenario"], g["structure"]]),
                    "method": "faults", "target": g["kind"], "count": g["count"],
                    "what": f"{g['invariant']} ({ex['plan']}, {g['phase']}): {ex['detail']}"[:300],
                    "seed": ex["seed"], "artifact": g.get("reproducer"), "kind": "fault"})

        def run_slice(seed, x, secs):
            pos = part["scenarios"].setdefault(x, {"next_plan": 0, "done": False})
            first = pos["next_plan"]
            procs, outs = [], []
            for k in range(self.jobs):
                j = os.path.join(d, f"sweep-seed{seed}-{x}-p{first}-shard{k}.json")
                outs.append(j)
                # The first slice of a scenario also counts its plans when it
                # stops (a few tenths of a second): it stops a little earlier.
                run_for = secs if pos.get("plans") is not None else max(1.0, secs * 0.8)
                cmd = [pcfaults, "sweep", "--quiet", "--scenario", x, "--seed", seed, "--shard", f"{k}/{self.jobs}",
                       "--first-plan", first, "--max-seconds", f"{run_for:.1f}", "--json", j,
                       "--repro-dir", os.path.join(d, "repro")]
                if pos.get("plans") is not None:
                    cmd.append("--no-count")  # known from an earlier slice
                procs.append(self.start(cmd, j[:-5] + ".log"))
            self.wait(procs, time.time() + secs, lambda: self.progress(
                f"faults: workload seed {seed} {x} from plan {first}: {totals['faults']:,} faults injected, "
                f"{totals['violations']} violations so far"))
            nexts, complete = [], True
            for j, p in zip(outs, procs):
                s = self._read_json(j, f"pcfaults ({x}, workload seed {seed})") if os.path.exists(j) else None
                if s is None:
                    complete = False
                    nexts.append(first)
                    if not os.path.exists(j):
                        self.notes.append(f"pcfaults {x} workload seed {seed} wrote no summary (status "
                                          f"{p.returncode}); see {j[:-5]}.log")
                    continue
                collect(s, x)
                complete &= bool(s.get("complete"))
                nexts.append(s.get("next_plan", first))
                if s.get("plans_total") is not None:
                    pos["plans"] = s["plans_total"]
            pos["next_plan"] = min(nexts) if nexts else first
            pos["done"] = complete
            self.sample(method="faults", target="all", execs=totals["faults"], violations=totals["violations"])
            return all(os.path.exists(j) for j in outs)

        m["budget_s"] += budget
        m["seeds"] += self._slices(part, budget, "plans", run_slice)
        # A finished seed leaves time for random plans, one campaign seed per job.
        while not self.interrupts and deadline - time.time() > SLICE_MIN and m["seeds"]:
            rem = deadline - time.time()
            cs = self.state["fault_campaign_seed"]
            procs, outs = [], []
            for k in range(self.jobs):
                j = os.path.join(d, f"campaign-{cs + k}.json")
                outs.append(j)
                procs.append(self.start([pcfaults, "campaign", "--quiet", "--campaign-seed", cs + k, "--runs", 100000,
                                         "--max-seconds", f"{min(rem, 60):.1f}", "--json", j,
                                         "--repro-dir", os.path.join(d, "repro")], j[:-5] + ".log"))
            self.wait(procs, time.time() + min(rem, 60), lambda: self.progress(
                f"faults: campaign seeds {cs}..{cs + self.jobs - 1}: {totals['faults']:,} faults injected"))
            for j in outs:
                s = self._read_json(j, "pcfaults campaign") if os.path.exists(j) else None
                if s:
                    collect(s, "campaign")
            m["campaign_seeds"] += list(range(cs, cs + self.jobs))
            self.state["fault_campaign_seed"] = cs + self.jobs
            self.sample(method="faults", target="all", execs=totals["faults"], violations=totals["violations"])
        m["seconds"] += time.time() - t_start
        m["faults"] = m.get("faults", 0) + totals["faults"]
        m["violations"] = m.get("violations", 0) + totals["violations"]
        m["coverage"] = self.seed_coverage(part, "plans", start_seed, m["seeds"], "next_plan", "plans")
        self.progress(f"faults: {m['coverage']['text']}", force=True)

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
        m = self.methods.setdefault("fuzz", {"seconds": 0.0, "budget_s": 0.0, "targets": {}})
        t_start = time.time()
        phase_end = t_start + budget
        lf_jobs = max(1, self.jobs // 2) if self.use_afl else self.jobs
        afl_jobs = max(1, self.jobs - lf_jobs) if self.use_afl else 0
        # With one job the engines take turns instead of running side by side.
        turns = [("libfuzzer", "afl")] if self.jobs > 1 or not self.use_afl else [("libfuzzer",), ("afl",)]
        planned_engines = ["libfuzzer"] + (["afl"] if self.use_afl else [])
        missing = []  # (target, engine, why) that did not fuzz
        for i, t in enumerate(self.targets):
            if self.interrupts:
                break
            # What is left of the phase, shared by the targets left: one
            # that ends early leaves its time to the next.
            per_target = (phase_end - time.time()) / (len(self.targets) - i)
            td = os.path.join(d, t)
            crashes = os.path.join(td, "crashes")
            os.makedirs(crashes, exist_ok=True)
            work = os.path.join(fuzz.CORPUS, t, ".work")
            os.makedirs(work, exist_ok=True)
            tv = m["targets"].setdefault(t, {"states": None, "execs": 0, "failures": 0, "seconds": 0.0,
                                             "budget_s": 0.0, "engines": {}})
            tv["budget_s"] += max(0.0, per_target)
            t_begin = time.time()
            t_deadline = t_begin + per_target
            seed = (self.seed + 7919 * i) % 4294967291
            for turn in turns:
                if self.interrupts:
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
                    cmd = [binary] + fuzz.read_options(t) + mode + [
                        f"-max_total_time={max(1, int(secs) - 1)}", f"-seed={seed}",
                        f"-artifact_prefix={crashes}/",
                        "-print_final_stats=1", work, os.path.join(fuzz.CORPUS, t)]
                    procs.append(self.start(cmd, log, cwd=td))
                    watchers.append(("libfuzzer", lambda log=log: lf_figures(log)))
                if "afl" in turn and self.use_afl:
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
                        if fuzz.TARGETS[t]["mutator"] and os.path.exists(mutlib):
                            env["AFL_CUSTOM_MUTATOR_LIBRARY"] = mutlib
                        indir = self.afl_input_dir(t, td)
                        dict_path = os.path.join(fuzz.FUZZ_DIR, t + ".dict")
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
                            procs.append(self.start(cmd, os.path.join(td, f"afl-{j}.log"), env=env))
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
                        self.sample(method="fuzz", target=t, engine=eng, execs=fig["execs"],
                                    coverage=fig["coverage"])
                        parts.append(f"{eng} {fig['execs']:,} execs cov {fig['coverage']}")
                    ncr = len(crash_files(os.path.join(d, t)))
                    self.progress(f"fuzz {t} ({i + 1}/{len(self.targets)}): " + " | ".join(parts) +
                                  f" | {ncr} crash files")
                run_start = time.time()
                over = self.wait(procs, run_start + secs, tick, grace=0, kill_after=2)
                if over > 3:
                    self.notes.append(f"fuzz {t}: the engines took {over:.0f} s past their {secs:.0f} s share to stop")
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
                self.raw_failures.append({"method": "fuzz", "target": t, "artifact": cf, "kind": "fuzz",
                                          "engine": eng, "seed": seed})
        m["budget_s"] += budget
        m["seconds"] += time.time() - t_start
        planned = len(self.targets) * len(planned_engines)
        done = sum(1 for t in self.targets for e in planned_engines
                   if m["targets"].get(t, {}).get("engines", {}).get(e, {}).get("execs", 0) > 0)
        m["coverage"] = {"complete": done == planned, "done": done, "planned": planned, "unit": "target x engine",
                         "text": f"{done} of {planned} target x engine runs fuzzed for their share"
                                 + (" (" + "; ".join(f"{t} {e}: not fuzzed, {why}" for t, e, why in missing) + ")"
                                    if missing else "")}
        for t, e, why in missing:
            self.notes.append(f"fuzz {t}: {e} did not fuzz: {why}")

    def phase_diff(self, budget):
        """powercut diff (our engine vs QEMU) over the image-building fuzz
        corpora: committed seeds first, then the kept new units."""
        d = os.path.join(self.out, "diff")
        os.makedirs(d, exist_ok=True)
        m = self.methods.setdefault("diff", {"seconds": 0.0, "budget_s": 0.0, "targets": {}})
        m["budget_s"] += budget
        paths = []
        for t in DIFF_TARGETS:
            for p in (os.path.join(fuzz.CORPUS, t), os.path.join(fuzz.CORPUS, t, ".work")):
                if os.path.isdir(p) and os.listdir(p):
                    paths.append(p)
        files = sum(fuzz.count_files(p) for p in paths)
        if not (shutil.which("qemu-img") and shutil.which("qemu-io")):
            m["coverage"] = {"complete": False, "done": 0, "planned": files, "unit": "images",
                             "text": f"not run: qemu-img/qemu-io are not installed (0 of {files} images)"}
            self.notes.append("diff: qemu-img/qemu-io are not installed: no differential replay")
            return
        if not paths:
            m["coverage"] = {"complete": True, "done": 0, "planned": 0, "unit": "images", "text": "no corpus to compare"}
            return
        # Start-up (python, qemu's version) and minimization come out of the
        # budget; the comparisons get the rest.
        minimize_total = min(10.0, budget * 0.15)
        compare = budget - minimize_total - 2.0
        if compare < DIFF_MIN:
            m["coverage"] = {"complete": False, "done": 0, "planned": files, "unit": "images",
                             "text": f"not run: its share ({budget:.1f} s) leaves {max(compare, 0):.1f} s to compare, "
                                     f"less than the {DIFF_MIN:.0f} s the first images take (0 of {files} images; "
                                     f"give a longer --time or a larger --split diff=N)"}
            self.notes.append(f"diff: {m['coverage']['text']}")
            return
        t_start = time.time()
        out_json = os.path.join(d, "diff.json")
        cmd = [sys.executable, os.path.join(ROOT, "scripts", "powercut"), "diff", "--no-build", "--json", out_json,
               "--jobs", self.jobs, "--max-seconds", f"{compare:.1f}", "--minimize-seconds", 5,
               "--minimize-total", f"{minimize_total:.1f}"] + paths
        p = self.start(cmd, os.path.join(d, "diff.log"))
        self.wait([p], t_start + budget, lambda: self.progress("diff: our engine vs QEMU on the fuzz corpora"))
        m["seconds"] += time.time() - t_start
        r = self._read_json(out_json, "diff") if os.path.exists(out_json) else None
        if r is None:
            if not os.path.exists(out_json):
                self.notes.append(f"diff wrote no report (status {p.returncode}); see {d}/diff.log")
            m["coverage"] = {"complete": False, "done": 0, "planned": files, "unit": "images",
                             "text": f"no report (status {p.returncode}; see {d}/diff.log)"}
            return
        ours = [c for c in r.get("classes", []) if str(c.get("departs", "")).startswith("ours")]
        n, planned = r.get("images", 0), r.get("planned", files)
        tv = m["targets"].setdefault("corpora", {"states": 0, "execs": 0, "failures": 0, "seconds": 0.0})
        tv["states"] += n
        tv["failures"] += sum(c["count"] for c in ours)
        tv["seconds"] += r.get("wall_s", 0)
        tv["complete"] = bool(r.get("complete"))
        tv["coverage_text"] = share_text(n, planned, "images")
        m["images"] = m.get("images", 0) + n
        m["planned"] = planned
        m["complete"] = bool(r.get("complete"))
        m["disagreements"] = m.get("disagreements", 0) + len(r.get("disagreements", []))
        m["classes"] = [{k: c.get(k) for k in ("name", "departs", "count", "rule", "reproducer")}
                        for c in r.get("classes", [])]
        m["coverage"] = {"complete": bool(r.get("complete")), "done": n, "planned": planned, "unit": "images",
                         "text": share_text(n, planned, "images compared") +
                                 ("" if r.get("complete") else f" (stopped by {r.get('stopped_by') or 'the budget'})")}
        self.diff_failures += [f"diff: our engine departs: {c['name']} ({c['count']}x; {c.get('rule', '')}); "
                               f"reproduce: {c.get('reproduce')}" for c in ours]
        for c in r.get("classes", []):
            if c not in ours:
                self.notes.append(f"diff: {c['name']} ({c['count']} images; departs: {c['departs']}); "
                                  f"reproducer {c.get('reproducer')}")
        self.sample(method="diff", target="corpora", states=n, violations=len(ours))

    # ---- final ----------------------------------------------------------------------------
    def merge_corpora(self, deadline):
        """libFuzzer -merge=1: the kept corpus becomes a minimal set covering
        everything both engines found.  Within the deadline; a target left
        out keeps its corpus as it was (said in the notes)."""
        left_out = []
        for t in self.targets:
            if self.interrupts:
                break
            work = os.path.join(fuzz.CORPUS, t, ".work")
            sources = [work] + sorted(glob.glob(os.path.join(self.out, "fuzz", t, "afl", "*", "queue")))
            if not any(os.path.isdir(s) and os.listdir(s) for s in sources):
                continue
            if deadline - time.time() < 2:
                left_out.append(t)
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
            self.wait([p], deadline, grace=0)
            if p.returncode == 0 and fuzz.count_files(new):
                shutil.rmtree(work)
                os.replace(new, work)
                after = fuzz.count_files(work)
                self.methods["fuzz"]["targets"].setdefault(t, {}).update(corpus_before=before, corpus=after)
                say(f"campaign: {t}: corpus merged: {before} kept + AFL++ queue -> {after} units")
            else:
                shutil.rmtree(new, ignore_errors=True)
                left_out.append(t)
                self.notes.append(f"{t}: corpus merge failed or ran out of time (status {p.returncode}); "
                                  f"the corpus is kept as it was (see {log})")
            for f in glob.glob(new + ".ctl*"):
                os.remove(f)
        self.final["merge"] = "done" if not left_out else f"not done for {', '.join(left_out)} (budget)"

    def triage_failures(self, deadline):
        """Crash states, grouping, minimization, storage.  Returns the unique
        list.  A fuzz crash that cannot be reproduced within the budget is
        still a failure, kept apart (by its file) and said to be untriaged."""
        untriaged = 0
        for f in self.raw_failures:
            if f["kind"] == "fuzz" and "state" not in f:
                left = deadline - time.time()
                if left < 3 or self.interrupts:
                    untriaged += 1
                    f["state"] = ("untriaged fuzz crash (no time left to reproduce it)",
                                  [os.path.basename(f["artifact"])])
                    f["what"] = f"untriaged: {f['artifact']}"
                    continue
                rc, text = reproduce_fuzz(f["target"], f["artifact"], f["engine"], timeout=min(120, left))
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
            if not self.interrupts and deadline - time.time() > 10:
                minimized = minimize(u, art, self.out, min(120, max(10, deadline - time.time()))) or art
            u["minimized"] = minimized != art
            try:
                d = triage.store_regression(u, minimized, root=self.args.regressions, extra=regression_fields(u))
            except triage.DamagedRegression as e:
                self.damaged.append(f"a damaged stored regression: {e}; failure {u['id']} was not stored there "
                                    f"(repair or delete the file)")
                u["command"] = f"scripts/powercut repro {art}"
                out.append(u)
                continue
            u["regression"] = os.path.relpath(d, ROOT) if d.startswith(ROOT) else d
            u["command"] = f"scripts/powercut repro {os.path.join(u['regression'], os.path.basename(minimized))}"
            out.append(u)
        self.final["triage"] = "done" if not untriaged else f"{untriaged} fuzz crash file(s) not reproduced (budget)"
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
            self.wait([p], deadline, grace=0)
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
        sw, fa = self.state["sweep"], self.state["faults"]

        def where(part, unit, key):
            open_ = [f"{s} at {unit} {v.get(key, 0)}" for s, v in part["scenarios"].items() if not v.get("done")]
            done = [s for s, v in part["scenarios"].items() if v.get("done")]
            text = ", ".join(([f"{', '.join(done)} done"] if done else []) + open_)
            return f" ({text})" if text else ""
        say(f"campaign: seed {self.seed}, budget {self.budget} s, {self.jobs} job(s), split "
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
            for phase, fn in (("sweep", self.phase_sweep), ("faults", self.phase_faults), ("fuzz", self.phase_fuzz),
                              ("diff", self.phase_diff)):
                if self.split[phase] and not self.interrupts:
                    share = self.budget * self.split[phase] / 100 * min(1.0, scale)
                    fn(max(0.0, min(share, end - reserve - time.time())))
                    self.end_progress()
            final_deadline = end
            if self.split["fuzz"] and not self.interrupts:
                # merging is worth a third of what is left at most
                self.merge_corpora(time.time() + max(0.0, (final_deadline - time.time()) / 3))
            unique = self.triage_failures(final_deadline - 3)
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
                cov = self.coverage(final_deadline - 2)
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
        self.budget_notes()
        data = self.data(started, unique, cov)
        lost = None
        try:
            path = report.write_report(self.out, data)
        except OSError as e:
            alt = fallback_path(self.out)
            path = report.write_report(alt, data)
            lost = f"--out {self.out}: the report could not be written ({e.strerror or e}); it was saved to {alt}"
        self.print_summary(data)
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
        if unique or self.diff_failures or (self.args.require_complete and incomplete):
            return EXIT_FAIL
        return EXIT_OK

    def budget_notes(self):
        """Says where the budget went when the campaign ran over it by more
        than a tenth (what took longer than its share, and why)."""
        el = self.elapsed()
        self.overrun = el > self.budget * 1.1
        if not self.overrun:
            return
        parts = [f"{m} took {v['seconds']:.0f} s of its {v.get('budget_s', 0):.0f} s share"
                 for m, v in self.methods.items() if v.get("seconds", 0) > v.get("budget_s", 0) * 1.1 + 1]
        final = el - sum(v.get("seconds", 0) for v in self.methods.values())
        parts.append(f"the final step (merge, triage, coverage, report) took {final:.0f} s")
        self.notes.append(f"the campaign took {el:.0f} s of its {self.budget} s budget: " + "; ".join(parts))

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
            if self.interrupts and mv.get("coverage"):
                mv["coverage"]["complete"] = False
                mv["coverage"]["text"] += " (interrupted)"
        return {
            "campaign": {"seed": self.seed, "started": started, "elapsed_s": round(self.elapsed(), 1),
                         "budget_s": self.budget, "build_s": getattr(self, "build_seconds", None),
                         "jobs": self.jobs, "split": self.split,
                         "partial": bool(self.interrupts), "require_complete": bool(self.args.require_complete),
                         "command": " ".join(sys.argv),
                         "engine": engine_id(), "state": self.state, "final": self.final,
                         "notes": self.notes + self.diff_failures + self.damaged,
                         "afl": self.use_afl},
            "methods": self.methods,
            "coverage": cov,
            "failures": unique,
            "series": self.series,
        }

    def print_summary(self, data):
        rows = report.table_rows(data)
        print(f"\n{'method':8s} {'target':22s} {'states':>10s} {'execs':>12s} {'coverage':>9s} {'failures':>9s}  "
              f"planned work")
        for r in rows:
            print(f"{r['method']:8s} {r['target']:22s} {fmt_num(r['states']):>10s} {fmt_num(r['execs']):>12s} "
                  f"{fmt_num(r['coverage']):>9s} {r['failures']:>9d}  {r.get('done') or ''}")
        print("\nplanned work done, per phase:")
        for mname, mv in self.methods.items():
            c = mv.get("coverage") or {}
            print(f"  {mname:7s} {'complete' if c.get('complete') else 'INCOMPLETE'}: {c.get('text', '?')}")
        for k, v in self.final.items():
            print(f"  {k:7s} {v}")
        c = data["campaign"]
        print(f"time: {c['elapsed_s']:.0f} s of the {c['budget_s']} s budget"
              + (f" (builds before the clock: {c['build_s']:.0f} s)" if c.get("build_s") else ""))
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


def reproduce_fuzz(target, path, engine, timeout=120):
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
        cp = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=timeout)
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
