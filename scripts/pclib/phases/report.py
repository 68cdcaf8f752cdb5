"""What a campaign reports: the summary data (report.py writes summary.json,
junit.xml and index.html from it), the console table, and a note when the
campaign ran over its budget."""
import sys

from .. import report, triage
from .. import common
from ..common import tool


def budget_notes(camp):
    """Says where the budget went when the campaign ran over it by more
    than a tenth (what took longer than its share, and why)."""
    el = camp.elapsed()
    camp.overrun = el > camp.budget * 1.1
    if not camp.overrun:
        return
    parts = [f"{m} took {v['seconds']:.0f} s of its {v.get('budget_s', 0):.0f} s share"
             for m, v in camp.methods.items() if v.get("seconds", 0) > v.get("budget_s", 0) * 1.1 + 1]
    final = el - sum(v.get("seconds", 0) for v in camp.methods.values())
    parts.append(f"the final step (merge, triage, coverage, report) took {final:.0f} s")
    camp.notes.append(f"the campaign took {el:.0f} s of its {camp.budget} s budget: " + "; ".join(parts))


def data(camp, started, unique, cov):
    for u in unique:
        if u.get("state"):
            u["signature"] = triage.signature(u["state"])
            u.setdefault("frames", u["state"][1])
        u.pop("state", None)
        u.pop("report", None)
    fuzz_m = camp.methods.get("fuzz")
    if fuzz_m and cov.get("per_target"):
        for t, v in fuzz_m["targets"].items():
            pt = cov["per_target"].get(t)
            if pt and "lines" in pt:
                v["coverage"] = round(pt["lines"]["percent"], 2)
    for mname, mv in camp.methods.items():
        for t, v in mv["targets"].items():
            v["failures"] = sum(1 for u in unique if u.get("method") == mname and u.get("target") == t) or \
                v.get("failures", 0)
        if camp.interrupts and mv.get("coverage"):
            mv["coverage"]["complete"] = False
            mv["coverage"]["text"] += " (interrupted)"
    return {
        "campaign": {"seed": camp.seed, "started": started, "elapsed_s": round(camp.elapsed(), 1),
                     "budget_s": camp.budget, "build_s": getattr(camp, "build_seconds", None),
                     "bench_s": getattr(camp, "bench_seconds", None),
                     "jobs": camp.jobs, "split": camp.split,
                     "shard": camp.shard, "shard_source": camp.shard_source,
                     "partial": bool(camp.interrupts), "require_complete": bool(camp.args.require_complete),
                     "command": " ".join(sys.argv),
                     "engine": engine_id(), "state": camp.state, "final": camp.final,
                     "notes": camp.notes + camp.diff_failures + camp.damaged,
                     "afl": camp.use_afl, "subjects": camp.subjects},
        "methods": camp.methods,
        "bench": getattr(camp, "bench", None) or {"skipped": "not measured (the campaign stopped before it)"},
        "coverage": cov,
        "failures": unique,
        "series": camp.series,
    }


def print_summary(camp, data):
    rows = report.table_rows(data)
    print(f"\n{'method':8s} {'target':22s} {'states':>10s} {'execs':>12s} {'coverage':>9s} {'failures':>9s}  "
          f"planned work")
    for r in rows:
        print(f"{r['method']:8s} {r['target']:22s} {fmt_num(r['states']):>10s} {fmt_num(r['execs']):>12s} "
              f"{fmt_num(r['coverage']):>9s} {r['failures']:>9d}  {r.get('done') or ''}")
    print("\nplanned work done, per phase:")
    for mname, mv in camp.methods.items():
        c = mv.get("coverage") or {}
        print(f"  {mname:7s} {'complete' if c.get('complete') else 'INCOMPLETE'}: {c.get('text', '?')}")
    for k, v in camp.final.items():
        print(f"  {k:7s} {v}")
    c = data["campaign"]
    print(f"time: {c['elapsed_s']:.0f} s of the {c['budget_s']} s budget"
          + (f" (builds before the clock: {c['build_s']:.0f} s)" if c.get("build_s") else "")
          + (f" (bench before the clock: {c['bench_s']:.0f} s)" if c.get("bench_s") else ""))
    for line in report.bench_lines(data.get("bench")):
        print(line)
    cov = data.get("coverage") or {}
    if cov.get("lines"):
        print(f"\nengine coverage from the corpora: lines {cov['lines']['percent']:.1f}%, "
              f"regions {cov['regions']['percent']:.1f}%, functions {cov['functions']['percent']:.1f}%")
    for n in camp.notes:
        print(f"note: {n}")
    for n in camp.diff_failures:
        print(f"FAILURE {n}")
    for u in data["failures"]:
        print(f"FAILURE [{u['id']}] {u.get('triage') or ''} {u['method']} {u['target']}: {u.get('what')} "
              f"(seen {u['count']}x)\n  reproduce: {u.get('command')}")
    for f in data.get("fixed", []):
        print(f"FIXED [{f['id']}] {f.get('what')}" + (f" ({f['note']})" if f.get("note") else ""))
    c = data["campaign"]
    if c.get("history_file"):
        print(f"history: {c['history_file']}; --fail-on {c.get('fail_on')}")


def fmt_num(v):
    if v is None:
        return "-"
    return f"{v:,.1f}" if isinstance(v, float) else f"{v:,}"


def engine_id():
    vt = tool("default", "vhdxtool")
    try:
        cp = common.run([vt, "--version"], check=False, capture=True, stderr=common.DEVNULL, text=True, timeout=10,
                        quiet=True)
        return cp.stdout.strip() or None
    except (OSError, common.InfraError, common.TimeoutExpired):
        return None
