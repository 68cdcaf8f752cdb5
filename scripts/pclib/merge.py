"""`powercut merge DIR... --out DIR`: one report from the reports of shards
or machines.

    powercut merge reports/shard-0 reports/shard-1 reports/shard-2 reports/shard-3 --out reports/nightly

Each DIR is a report directory of one of:

  powercut campaign   summary.json (a campaign, --shard K/N or a whole one)
  powercut sweep      sweep.json   (pcsweep's summary, --shard K/N or the
                                    launcher's environment)
  powercut faults     faults.json  (pcfaults' sweep)

The merge writes DIR/summary.json, junit.xml and index.html (the campaign
report: `powercut report` can rewrite them), sarif.json, and repro/ (the
kept reproducers, copied, so the merged report stands alone):

* counts add up (states, executions, seconds, violations); the planned
  work is complete when every part's is;
* failures are deduplicated by signature (the id: a hash of the crash
  state: invariant, crash-model class or fault phase/kind, scenario and
  structure for sweeps and fault sweeps; crash type and top frames for
  fuzz crashes, triage.py); their counts add up; the smallest reproducer
  is kept (file size, then path);
* engine coverage: when the parts kept their llvm profiles
  (coverage/prof/all.profdata) they are merged with llvm-profdata and the
  totals measured again with the coverage build's targets; when only
  percentages are there, the report says so and shows the highest part's
  (not a union);
* shards: every part says which shard K/N it was (and where that came
  from); a shard missing from 0..N-1, given twice, or a DIR without a
  readable report is named -- the report is still written from the rest,
  and the exit status is 2;
* the build's speed: each campaign part's bench figures (its "bench",
  measured on its own machine) are listed per shard under "bench":
  {"shards": [{shard, dir, ...}]}, not added up.

Then, as after a campaign (history.py): the failures are classified new /
known / fixed against --history and the regressions corpus -- and flaky
when --rerun ran the kept reproducer again (`powercut repro`) and it did not
reproduce --, this merge is appended to the history, and --fail-on decides
the exit status.

Exit status: 0 no failure (under --fail-on); 1 failures; 2 usage error, a
damaged or missing part (after writing the report of the others).
"""
import argparse
import json
import os
import shutil
import sys
import time

from . import history, report, triage
from .common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, ROOT, UsageError, check_output_dir, say, tool

SUMS = ("seconds", "budget_s", "states", "execs", "violations", "faults", "images", "disagreements")


def add_parser(sub):
    p = sub.add_parser("merge", help="merge shard or machine reports into one summary.json, junit.xml, index.html",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dirs", nargs="+", metavar="DIR", help="report directories (campaign, sweep or faults runs)")
    p.add_argument("--out", required=True, help="the merged report directory")
    add_history_args(p)
    p.add_argument("--rerun", action="store_true",
                   help="run every kept reproducer again (`powercut repro`, up to --rerun-timeout seconds each): "
                        "a failure that does not reproduce is flaky")
    p.add_argument("--rerun-timeout", type=float, default=300.0, help="seconds per rerun (default 300)")
    p.set_defaults(func=cmd_merge)


def add_history_args(p):
    p.add_argument("--history", help="history file, JSON lines, one record per run (default: history.jsonl "
                                     "beside the report directory)")
    p.add_argument("--fail-on", choices=history.FAIL_ON,
                   help="which failures fail the run (exit status 1): new ones only, or any (default: new when "
                        "the environment sets CI, any otherwise)")


class Damaged(Exception):
    """A part that cannot be read: named in the report, exit status 2."""


# ---- reading the parts -------------------------------------------------------------------
def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError as e:
        raise Damaged(f"{path}: not JSON ({e})") from e
    except OSError as e:
        raise Damaged(f"{path}: cannot be read ({e.strerror or e})") from e


def read_part(d):
    """A report directory as campaign-form data plus what the merge needs:
    {dir, kind, data, shard, source}.  Damaged when there is nothing
    readable."""
    if not os.path.isdir(d):
        raise Damaged(f"{d}: no such report directory (a shard that did not run or was not copied?)")
    for name, kind in (("summary.json", "campaign"), ("sweep.json", "sweep"), ("faults.json", "faults")):
        p = os.path.join(d, name)
        if os.path.exists(p):
            s = _load(p)
            try:
                if kind == "campaign":
                    problem = report.summary_problem(s)
                    if problem:
                        raise Damaged(f"{p}: a damaged campaign summary: {problem}")
                    s.pop("table", None)
                    data = s
                elif kind == "sweep":
                    data = from_sweep(s)
                else:
                    data = from_faults(s)
            except (KeyError, TypeError, IndexError, AttributeError) as e:
                raise Damaged(f"{p}: a damaged {kind} summary (missing or wrong field: {e})") from e
            c = data.get("campaign", {})
            return {"dir": d, "kind": kind, "data": data, "shard": c.get("shard") or "0/1",
                    "source": c.get("shard_source")}
    raise Damaged(f"{d}: no summary.json, sweep.json or faults.json (a failed shard?)")


def _failure(method, state, target, count, what, seed, rep, extra=None):
    f = {"id": triage.failure_id(state), "signature": triage.signature(state), "method": method, "target": target,
         "count": count, "what": what[:300], "seed": seed, "artifact": rep,
         "command": f"scripts/powercut repro {rep}" if rep else "(no reproducer saved)"}
    f.update(extra or {})
    return f


def from_sweep(s):
    """pcsweep's sweep.json in the campaign's form (phases/sweep.py's
    crash states: the failures' ids are the same as a campaign's)."""
    targets = {}
    for r in s.get("runs", []):
        t = targets.setdefault(r["scenario"], {"states": 0, "execs": 0, "failures": 0, "seconds": 0.0,
                                               "complete": True})
        t["states"] += r["states"]
        t["execs"] += r.get("opens", 0)
        t["seconds"] += r.get("wall_s", 0)
        t["complete"] &= bool(r.get("complete", True))
    failures = []
    for g in s.get("signatures", []):
        ex = g["examples"][0]
        state = triage.violation_state("sweep", g["invariant"], [g["model_class"], g["scenario"], g["structure"]])
        failures.append(_failure("sweep", state, g["scenario"], g["count"],
                                 f"{g['invariant']} ({g['structure']}): {ex.get('detail', '')}", ex.get("seed"),
                                 g.get("minimized") or g.get("reproducer"),
                                 {"invariant": g["invariant"], "structure": g["structure"]}))
    cov = s.get("coverage") or {}
    return {"campaign": {"seed": s.get("seeds"), "sweep_seed": s.get("sweep_seed"), "shard": s.get("shard"),
                         "shard_source": s.get("shard_source"), "engine": s.get("engine"),
                         "elapsed_s": s.get("wall_s"), "partial": bool(s.get("interrupted"))},
            "methods": {"sweep": {"seconds": s.get("wall_s", 0), "states": s.get("states", 0),
                                  "violations": s.get("violations", 0), "targets": targets,
                                  "coverage": {"complete": bool(s.get("complete", True)), "unit": "states",
                                               "done": s.get("states", 0), "planned": cov.get("states_planned"),
                                               "text": cov.get("text", "?")}}},
            "coverage": {}, "failures": failures, "series": []}


def from_faults(s):
    """pcfaults' faults.json (sweep or campaign) in the campaign's form."""
    targets = {}
    for kind, v in (s.get("kinds") or {}).items():
        targets[kind] = {"states": v.get("states", 0), "execs": v.get("injected", 0),
                         "failures": v.get("violations", 0), "seconds": v.get("seconds", 0)}
    failures = []
    for g in s.get("signatures", []):
        ex = g["examples"][0]
        state = triage.violation_state("faults", g["invariant"],
                                       [f"{g['phase']}/{g['kind']}", g["scenario"], g["structure"]])
        failures.append(_failure("faults", state, g["kind"], g["count"],
                                 f"{g['invariant']} ({ex.get('plan')}, {g['phase']}): {ex.get('detail', '')}",
                                 ex.get("seed"), g.get("reproducer"),
                                 {"invariant": g["invariant"], "structure": g["structure"]}))
    cov = s.get("coverage") or {}
    return {"campaign": {"seed": s.get("seed"), "shard": s.get("shard"), "shard_source": s.get("shard_source"),
                         "engine": s.get("engine"), "elapsed_s": s.get("wall_s"),
                         "partial": bool(s.get("interrupted"))},
            "methods": {"faults": {"seconds": s.get("wall_s", 0), "faults": s.get("injected", 0),
                                   "violations": s.get("violations", 0), "targets": targets,
                                   "coverage": {"complete": bool(s.get("complete", True)), "unit": "plans",
                                                "text": cov.get("text", "?") if isinstance(cov, dict) else "?"}}},
            "coverage": {}, "failures": failures, "series": []}


# ---- merging ------------------------------------------------------------------------------
def _size(path):
    try:
        return os.path.getsize(path)
    except (OSError, TypeError):
        return float("inf")


def _reproducer(f):
    """The input a failure's reproducer command runs (the stored, minimized
    one when triage stored it), or None."""
    cmd = f.get("command") or ""
    if cmd.startswith("scripts/powercut repro "):
        p = cmd[len("scripts/powercut repro "):]
        p = p if os.path.isabs(p) else os.path.join(ROOT, p)
        if os.path.exists(p):
            return p
    a = f.get("artifact")
    return a if a and os.path.exists(a) else None


def merge_failures(parts):
    """Failures of all parts, one per signature id: counts add up, the
    smallest reproducer is kept; "seen_in" lists the parts."""
    out = {}
    for part in parts:
        for f in part["data"].get("failures", []):
            fid = f.get("id") or triage.failure_id((f.get("what") or "?", []))
            rep = _reproducer(f)
            key = (_size(rep), rep or "")
            g = out.get(fid)
            if g is None:
                g = out[fid] = dict(f, id=fid, count=0, seen_in=[])
                g["_key"] = key
                g["_rep"] = rep
            elif key < g["_key"]:
                keep = {"count": g["count"], "seen_in": g["seen_in"]}
                g.clear()
                g.update(dict(f, id=fid, **keep))
                g["_key"], g["_rep"] = key, rep
            g["count"] += f.get("count", 1)
            g["seen_in"].append(f"{part['shard']} {part['dir']}")
    return list(out.values())


def _add(dst, src):
    for k in SUMS:
        if isinstance(src.get(k), (int, float)) and not isinstance(src.get(k), bool):
            dst[k] = round(dst.get(k, 0) + src[k], 3)


def merge_methods(parts):
    methods = {}
    for part in parts:
        for m, mv in part["data"].get("methods", {}).items():
            om = methods.setdefault(m, {"targets": {}, "parts": []})
            _add(om, mv)
            for t, tv in mv.get("targets", {}).items():
                ot = om["targets"].setdefault(t, {})
                _add(ot, tv)
                if "complete" in tv:
                    ot["complete"] = ot.get("complete", True) and bool(tv["complete"])
                if isinstance(tv.get("coverage"), (int, float)):  # a percentage: not additive
                    ot["coverage"] = max(ot.get("coverage", 0), tv["coverage"])
            cv = mv.get("coverage") or {}
            om["parts"].append({"shard": part["shard"], "dir": part["dir"], "complete": cv.get("complete", True),
                                "text": cv.get("text")})
    for m, om in methods.items():
        ps = om.pop("parts")
        done = [p for p in ps if p["complete"]]
        om["coverage"] = {"complete": len(done) == len(ps), "done": len(done), "planned": len(ps), "unit": "parts",
                          "text": f"{len(done)} of {len(ps)} parts complete: " +
                                  "; ".join(f"shard {p['shard']}: {p['text']}" for p in ps)}
    return methods


def check_shards(parts):
    """Problems with the shard numbering: missing or doubled shards, per
    kind of report."""
    problems = []
    by_kind = {}
    for p in parts:
        by_kind.setdefault(p["kind"], []).append(p)
    for kind, ps in by_kind.items():
        ns = {int(p["shard"].split("/")[1]) for p in ps}
        if len(ns) > 1:
            problems.append(f"the {kind} reports come from different shard counts: "
                            + ", ".join(f"{p['shard']} ({p['dir']})" for p in ps))
            continue
        n = ns.pop()
        ks = [int(p["shard"].split("/")[0]) for p in ps]
        for k in sorted(set(ks)):
            if ks.count(k) > 1:
                problems.append(f"{kind} shard {k}/{n} given {ks.count(k)} times ("
                                + ", ".join(p["dir"] for p in ps if p["shard"] == f"{k}/{n}")
                                + "): its counts would be added twice")
        missing = [k for k in range(n) if k not in ks]
        if missing:
            problems.append(f"{kind} shard(s) " + ", ".join(f"{k}/{n}" for k in missing) + " missing: the merged "
                            f"report covers {n - len(missing)} of {n} shards")
    return problems


def merge_coverage(parts, out):
    """Engine coverage from the parts: profiles merged when every part that
    measured coverage kept them, else the highest percentage, said so."""
    measured = [p for p in parts if (p["data"].get("coverage") or {}).get("lines")]
    if not measured:
        return {}, None
    profs = [os.path.join(p["dir"], "coverage", "prof", "all.profdata") for p in measured]
    have = [x for x in profs if os.path.exists(x)]
    if len(have) == len(profs) and shutil.which("llvm-profdata-14"):
        from . import common
        from .phases.coverage import llvm_cov_totals
        d = os.path.join(out, "coverage", "prof")
        os.makedirs(d, exist_ok=True)
        allpd = os.path.join(d, "all.profdata")
        common.run(["llvm-profdata-14", "merge", "-sparse", "-o", allpd] + have, check=False)
        targets = sorted({t for p in measured for t in (p["data"]["coverage"].get("per_target") or {})})
        objs = [o for o in (tool("coverage", t) for t in targets) if os.path.exists(o)]
        if os.path.exists(allpd) and objs:
            cov = llvm_cov_totals(allpd, objs, [os.path.join(ROOT, "engine", "src"),
                                                 os.path.join(ROOT, "engine", "include")])
            if cov:
                cov["merged"] = f"llvm profiles of {len(have)} parts merged"
                return cov, f"engine coverage: the llvm profiles of {len(have)} parts merged ({allpd})"
        note = (f"engine coverage: the llvm profiles of {len(have)} parts were merged into {allpd}, but the "
                f"coverage build's targets are not here to measure them (scripts/powercut build coverage); "
                f"the highest part's percentages are shown, not a union")
    else:
        note = (f"engine coverage: only percentages are available ({len(profs) - len(have)} of {len(profs)} parts "
                f"kept no llvm profile): the highest part's is shown, not a union")
    best = max(measured, key=lambda p: p["data"]["coverage"]["lines"].get("percent", 0))
    cov = {k: v for k, v in best["data"]["coverage"].items() if k in ("lines", "regions", "functions", "branches")}
    cov["merged"] = "highest part's percentages (not a union)"
    return cov, note


def copy_reproducers(failures, out):
    """The kept reproducers, copied into out/repro/ (the merged report
    stands alone); commands point at the copies."""
    d = os.path.join(out, "repro")
    for f in failures:
        rep = f.pop("_rep", None)
        f.pop("_key", None)
        if not rep:
            continue
        os.makedirs(d, exist_ok=True)
        dst = os.path.join(d, f"{f['id']}-{os.path.basename(rep)}")
        if os.path.abspath(rep) != os.path.abspath(dst):
            shutil.copyfile(rep, dst)
        f["reproducer"] = dst
        f["reproducer_bytes"] = os.path.getsize(dst)
        f["command"] = f"scripts/powercut repro {dst}"


def merge(parts, out, damaged=()):
    """The merged report data of parts (read_part answers)."""
    notes = list(damaged)
    notes += check_shards(parts)
    failures = merge_failures(parts)
    copy_reproducers(failures, out)
    methods = merge_methods(parts)
    for mname, mv in methods.items():
        for t, tv in mv["targets"].items():
            tv["failures"] = sum(1 for f in failures if f.get("method") == mname and f.get("target") == t)
    cov, cov_note = merge_coverage(parts, out)
    if cov_note:
        notes.append(cov_note)
    for p in parts:
        c = p["data"].get("campaign", {})
        if c.get("partial"):
            notes.append(f"shard {p['shard']} ({p['dir']}) was interrupted: its report is partial")
        notes += [f"shard {p['shard']}: {n}" for n in c.get("notes", [])]
    seeds = []
    for p in parts:
        s = p["data"].get("campaign", {}).get("seed")
        if s is not None and s not in seeds:
            seeds.append(s)
    if len(seeds) > 1:
        notes.append(f"the parts ran with different seeds ({', '.join(map(str, seeds))}): they are not shards of "
                     f"one run")
    cs = [p["data"].get("campaign", {}) for p in parts]
    series = []
    for p in parts:
        series += [dict(x, shard=p["shard"]) for x in p["data"].get("series", [])]
    return {
        "campaign": {"seed": seeds[0] if len(seeds) == 1 else seeds, "merged": True,
                     "started": min((c.get("started") for c in cs if c.get("started")),
                                    default=time.strftime("%Y-%m-%dT%H:%M:%S")),
                     "elapsed_s": max((c.get("elapsed_s") or 0 for c in cs), default=0),
                     "budget_s": max((c.get("budget_s") or 0 for c in cs), default=0) or None,
                     "jobs": sum(c.get("jobs") or 1 for c in cs),
                     "partial": any(c.get("partial") for c in cs),
                     "engine": next((c.get("engine") for c in cs if c.get("engine")), None),
                     "command": " ".join(sys.argv),
                     "shards": [{"dir": p["dir"], "kind": p["kind"], "shard": p["shard"], "source": p["source"]}
                                for p in parts],
                     "notes": notes},
        "methods": methods,
        "coverage": cov,
        "failures": failures,
        "series": series,
        **merge_bench(parts),
    }


def merge_bench(parts):
    """{"bench": {"shards": [...]}} with each campaign part's bench figures
    (machines differ: listed, not combined), {} when no part has any."""
    shards = [dict(p["data"]["bench"], shard=p["shard"], dir=p["dir"]) for p in parts
              if isinstance(p["data"].get("bench"), dict)]
    return {"bench": {"shards": shards}} if shards else {}


def rerun(failures, timeout):
    """Runs each failure's kept reproducer again with `powercut repro`:
    exit 1 (it reproduces) sets f["reproduced"] True, exit 0 (clean, does
    not reproduce) False; anything else leaves it unset and returns a note."""
    from .common import TimeoutExpired, run
    notes = []
    for f in failures:
        rep = f.get("reproducer")
        if not rep:
            continue
        try:
            cp = run([sys.executable, os.path.join(ROOT, "scripts", "powercut"), "repro", rep], check=False,
                     capture=True, timeout=timeout)
        except TimeoutExpired:
            notes.append(f"rerun of [{f['id']}] {rep}: no answer within {timeout:g} s")
            continue
        if cp.returncode in (0, 1):
            f["reproduced"] = cp.returncode == 1
        else:
            notes.append(f"rerun of [{f['id']}] {rep}: powercut repro exited {cp.returncode}")
    return notes


def finish(out, data, args, regressions=triage.REGRESSIONS):
    """History, classification, SARIF and the report; returns whether the
    failures fail the run under --fail-on."""
    pcsweep = tool("default", "pcsweep")
    invariants = []
    if os.path.exists(pcsweep):
        from . import registry
        try:
            invariants = registry.invariants(pcsweep)
        except Exception:  # noqa: BLE001 - the SARIF rules then carry their names only
            invariants = []
    if getattr(args, "rerun", False):
        data["campaign"]["notes"] += rerun(data.get("failures", []), args.rerun_timeout)
    hist = args.history or history.default_path(out)
    history.finish(out, data, hist, regressions, invariants)
    mode = args.fail_on or history.default_fail_on()
    data["campaign"]["fail_on"] = mode
    path = report.write_report(out, data)
    return history.fail_status(data.get("failures", []), mode), path


def cmd_merge(args):
    out = os.path.abspath(args.out)
    check_output_dir(out, "--out")
    if args.history:
        history.check(args.history)
    else:
        history.check(history.default_path(out))
    for d in args.dirs:
        if os.path.abspath(d) == out:
            raise UsageError(f"--out {args.out} is also one of the parts")
    parts, damaged = [], []
    for d in args.dirs:
        try:
            parts.append(read_part(os.path.abspath(d)))
        except Damaged as e:
            damaged.append(str(e))
    if not parts:
        raise UsageError("nothing to merge: " + "; ".join(damaged))
    data = merge(parts, out, damaged)
    shard_problems = check_shards(parts)
    failed, path = finish(out, data, args)
    for p in parts:
        say(f"merge: {p['kind']} shard {p['shard']} (from {p['source'] or '?'}): {p['dir']}")
    n_states = sum(v.get("states") or 0 for mv in data["methods"].values() for v in mv["targets"].values())
    by = {k: sum(1 for f in data["failures"] if f.get("triage") == k) for k in ("new", "known", "flaky")}
    print(f"merged {len(parts)} report(s): {n_states:,} states, {len(data['failures'])} unique failure(s) "
          f"({', '.join(f'{k} {v}' for k, v in by.items())}), {len(data.get('fixed', []))} fixed; "
          f"--fail-on {data['campaign']['fail_on']}")
    for f in data["failures"]:
        print(f"FAILURE [{f['id']}] {f.get('triage')} {f['method']} {f.get('target')}: {f.get('what')} "
              f"(seen {f['count']}x)\n  reproduce: {f.get('command')}")
    for f in data.get("fixed", []):
        print(f"FIXED [{f['id']}] {f.get('what')}" + (f" ({f['note']})" if f.get("note") else ""))
    for problem in damaged + shard_problems:
        say(f"merge: error: {problem}")
    print(f"report: {path}")
    if damaged or shard_problems:
        return EXIT_USAGE
    return EXIT_FAIL if failed else EXIT_OK
