"""Across runs: the history file, new / known / fixed / flaky failures,
--fail-on, and SARIF.

Used by `powercut campaign` and `powercut merge` after their report data is
complete (finish()):

* history: one JSON line per campaign or merged report appended to
  --history (default: history.jsonl beside the report directory, e.g.
  reports/runs/history.jsonl): time, commit, build (engine id), seed, shard,
  counts, rates (states/s, execs/s), engine line coverage, failures by
  signature id.  read() refuses a damaged file (UsageError naming the line:
  exit status 2, before any work when the caller checks first).
* classification of every failure of this run against the history and the
  regressions corpus (corpus/regressions/<id>/meta.json):
    new     never seen before (or stored as fixed and back: a regression)
    known   seen by an earlier run of the history, or stored in the corpus
            before this run (status new or open), and still failing
    flaky   seen, but not reproduced when it was run again (a fuzz crash
            that triage replayed without a crash: "does not reproduce")
  and the failures of the previous run that this run did not see: fixed
  (said to be possibly unreached when this run's planned work for that
  method was incomplete).
* fail_status(): --fail-on new (only new failures fail the run: the default
  when the environment has CI set) or any (every failure; the default
  locally).
* sarif(): SARIF 2.1.0 of the failures (sarif.json beside summary.json):
  rule = the invariant (rules described from `pcsweep invariants --json`,
  the invariant registry) or, for fuzz crashes, the crash type; location =
  the engine source line that raises the error code of the refusal where
  it can be found (engine/src), else the top stack frame with a file,
  else the reproducer.
"""
import datetime
import json
import os
import re

from .common import ROOT, UsageError, run, write_json

HISTORY_NAME = "history.jsonl"
KEEP_IN_REPORT = 20           # records shown in index.html's trends
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FAIL_ON = ("new", "any")


def default_path(out_dir):
    """history.jsonl beside the report directory."""
    return os.path.join(os.path.dirname(os.path.abspath(out_dir)), HISTORY_NAME)


def default_fail_on():
    """new under CI (the environment sets CI), any locally."""
    return "new" if os.environ.get("CI", "").strip().lower() not in ("", "0", "false") else "any"


def read(path):
    """The records of a history file (oldest first); [] when there is none.
    A line that is not a JSON object is a UsageError naming path:line."""
    if not path or not os.path.exists(path):
        return []
    out = []
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError as e:
                    raise UsageError(f"--history {path}:{n}: a damaged history record ({e}); repair or remove "
                                     f"the line") from e
                if not isinstance(rec, dict) or not isinstance(rec.get("failures", {}), dict):
                    raise UsageError(f"--history {path}:{n}: not a history record (an object with \"failures\" "
                                     f"by signature id)")
                out.append(rec)
    except OSError as e:
        raise UsageError(f"--history {path}: cannot be read: {e.strerror or e}") from e
    return out


def check(path):
    """Before any work: the history can be read and appended to."""
    read(path)
    from .common import check_output_file
    check_output_file(path, "--history")


def git_commit():
    try:
        cp = run(["git", "-C", ROOT, "rev-parse", "HEAD"], check=False, capture=True, quiet=True, timeout=10)
    except Exception:  # noqa: BLE001 - no git, no commit: the record says null
        return None
    if cp.returncode != 0:
        return None
    return cp.stdout.decode().strip() or None


def git_dirty():
    """Whether tracked files differ from HEAD (`git status --porcelain
    --untracked-files=no` prints something; untracked files are not built
    unless a CMakeLists.txt names them, and naming them changes a tracked
    file); None without git."""
    try:
        cp = run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"], check=False, capture=True,
                 quiet=True, timeout=30)
    except Exception:  # noqa: BLE001 - no git: unknown
        return None
    if cp.returncode != 0:
        return None
    return bool(cp.stdout.strip())


def _sum(data, key):
    return sum(v.get(key) or 0 for mv in data.get("methods", {}).values() for v in mv.get("targets", {}).values())


def record_of(data, out_dir):
    """The history record of a report's data."""
    c = data.get("campaign", {})
    secs = {m: mv.get("seconds") or 0 for m, mv in data.get("methods", {}).items()}
    counts = {m: {"states": sum(v.get("states") or 0 for v in mv.get("targets", {}).values()),
                  "execs": sum(v.get("execs") or 0 for v in mv.get("targets", {}).values()),
                  "failures": sum(1 for f in data.get("failures", []) if f.get("method") == m),
                  "seconds": round(secs[m], 1),
                  "complete": (mv.get("coverage") or {}).get("complete", True)}
              for m, mv in data.get("methods", {}).items()}
    sw = counts.get("sweep", {})
    fz = counts.get("fuzz", {})
    cov = (data.get("coverage") or {}).get("lines", {}).get("percent")
    return {
        "time": c.get("started") or datetime.datetime.now().strftime("%Y-%m-%dT%H:%M:%S"),
        "commit": c.get("commit") or git_commit(),
        "build": c.get("engine"),
        "seed": c.get("seed"),
        "shard": c.get("shard"),
        "report": os.path.abspath(out_dir),
        "counts": counts,
        "rates": {"states_per_s": round(sw["states"] / sw["seconds"], 1) if sw.get("seconds") else None,
                  "execs_per_s": round(fz["execs"] / fz["seconds"], 1) if fz.get("seconds") else None},
        "coverage": cov,
        "failures": {f["id"]: {"signature": f.get("signature"), "what": f.get("what"), "method": f.get("method"),
                               "count": f.get("count", 1), "triage": f.get("triage")}
                     for f in data.get("failures", []) if f.get("id")},
    }


def _stored(regressions):
    """{id: meta} of the regressions corpus (damaged entries are skipped:
    the campaign's triage reports them)."""
    out = {}
    if not regressions or not os.path.isdir(regressions):
        return out
    for name in os.listdir(regressions):
        p = os.path.join(regressions, name, "meta.json")
        try:
            with open(p) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict):
            out[name] = meta
    return out


def not_reproduced(f):
    """A failure that did not reproduce when it was run again."""
    return f.get("reproduced") is False or f.get("what") == "does not reproduce"


def classify(failures, history, regressions=None, started=None, incomplete=()):
    """Sets f["triage"] (new, known, flaky) on each failure of this run and
    returns the fixed ones: [{id, signature, what, method, last_seen,
    note}] -- failing in the previous record, not seen now.  history: the
    earlier records (oldest first); regressions: the corpus directory;
    started: this run's start (corpus entries first seen at or after it were
    stored by this run and say nothing); incomplete: methods whose planned
    work this run did not finish."""
    seen = {}
    for rec in history:
        for i, v in rec.get("failures", {}).items():
            seen[i] = rec.get("time")
    stored = _stored(regressions)
    for f in failures:
        meta = stored.get(f.get("id")) or {}
        before = meta and (not started or str(meta.get("first_seen", "")) < str(started))
        if not_reproduced(f):
            f["triage"] = "flaky"
        elif meta.get("status") == "fixed" and before:
            f["triage"] = "new"       # stored as fixed and back: a regression
            f["triage_note"] = "stored as fixed in the regressions corpus: it has come back"
        elif f.get("id") in seen or (before and meta.get("status") in ("new", "open")):
            f["triage"] = "known"
            f["triage_note"] = (f"seen before, last in the run of {seen[f['id']]}" if f.get("id") in seen else
                                f"stored in the regressions corpus (status {meta.get('status')})")
        else:
            f["triage"] = "new"
    now = {f.get("id") for f in failures}
    fixed = []
    if history:
        last = history[-1]
        for i, v in last.get("failures", {}).items():
            if i in now or v.get("triage") == "flaky":
                continue
            note = None
            if v.get("method") in incomplete:
                note = f"this run's {v.get('method')} work was incomplete: it may not have been reached"
            fixed.append({"id": i, "signature": v.get("signature"), "what": v.get("what"), "method": v.get("method"),
                          "last_seen": last.get("time"), "note": note})
    return fixed


def fail_status(failures, mode):
    """True when the failures fail the run under --fail-on mode."""
    if mode == "any":
        return bool(failures)
    return any(f.get("triage") == "new" for f in failures)


# ---- SARIF -----------------------------------------------------------------------------
_ERR = re.compile(r"\b(VHDX_E_[A-Z0-9_]+)\b(?:\s+([\w.\[\]]+))?")


def engine_location(structure, src=os.path.join(ROOT, "engine", "src")):
    """(path relative to ROOT, line) of the engine source that raises the
    error code named in a violation's structure ("VHDX_E_LOG_NO_SEQUENCE
    header.LogGuid"): the line with the code and the field, else the first
    vhdx_fail/return with the code; None when not found."""
    m = _ERR.search(structure or "")
    if not m or not os.path.isdir(src):
        return None
    code, field = m.group(1), m.group(2)
    best, best_score = None, 0
    for name in sorted(os.listdir(src)):
        if not name.endswith(".c"):
            continue
        path = os.path.join(src, name)
        try:
            with open(path, errors="replace") as f:
                lines = f.readlines()
        except OSError:
            continue
        for n, line in enumerate(lines, 1):
            if code not in line:
                continue
            window = "".join(lines[n - 1:n + 2])
            # a refusal (vhdx_fail) naming the field is the best match; then
            # the field; then any place that raises the code
            score = (2 if field and f'"{field}"' in window else 0) + (1 if "vhdx_fail" in window else 0)
            if score == 0 and ("return" in line or "vhdx_report" in line):
                score = 0.5
            if score > best_score:
                best, best_score = (os.path.relpath(path, ROOT), n), score
    return best


_FRAME_FILE = re.compile(r"((?:engine|harness|faults|fuzz|qemu)/[\w/.-]+\.c):(\d+)")


def _location(f):
    """(uri, line or None, how) of a failure."""
    for fr in f.get("frames") or []:
        m = _FRAME_FILE.search(str(fr))
        if m:
            return m.group(1), int(m.group(2)), "top stack frame"
    loc = engine_location(f.get("structure") or f.get("what") or "")
    if loc:
        return loc[0], loc[1], "engine source raising the error code"
    rep = f.get("reproducer") or f.get("artifact") or f.get("regression")
    if rep:
        return (os.path.relpath(rep, ROOT) if os.path.isabs(rep) and rep.startswith(ROOT) else rep), None, "reproducer"
    return None, None, None


def rule_of(f):
    """The SARIF rule of a failure: its invariant, else its crash type."""
    if f.get("invariant"):
        return f["invariant"]
    sig = f.get("signature") or ""
    kind = sig.split(" | ")[0]
    if kind.startswith(("sweep: ", "faults: ")):
        return kind.split(": ", 1)[1]
    return "crash: " + (kind or f.get("what") or "unknown")


def sarif(data, invariants=()):
    """SARIF 2.1.0 of data["failures"]; invariants: the registry
    [{name, class, about}] (`pcsweep invariants --json`)."""
    about = {i["name"]: i for i in invariants}
    rules, index, results = [], {}, []
    for f in data.get("failures", []):
        rid = rule_of(f)
        if rid not in index:
            index[rid] = len(rules)
            inv = about.get(rid)
            rules.append({"id": rid, "name": rid,
                          "shortDescription": {"text": inv["about"] if inv else
                                               ("a crash found by fuzzing" if rid.startswith("crash: ") else rid)},
                          "properties": {"class": inv["class"]} if inv else {}})
        uri, line, how = _location(f)
        loc = {"physicalLocation": {"artifactLocation": {"uri": uri or "unknown"}}}
        if line:
            loc["physicalLocation"]["region"] = {"startLine": line}
        rep = f.get("reproducer") or f.get("artifact")
        results.append({
            "ruleId": rid, "ruleIndex": index[rid],
            "level": "note" if f.get("triage") == "flaky" else "error",
            "message": {"text": f"{f.get('what') or rid} (seen {f.get('count', 1)}x; "
                                f"{f.get('triage') or 'unclassified'}; "
                                f"reproduce: {f.get('command') or rep or 'no reproducer saved'})"},
            "locations": [loc],
            "partialFingerprints": {"powercutSignature/v1": f.get("id") or ""},
            "properties": {"method": f.get("method"), "target": f.get("target"), "triage": f.get("triage"),
                           "count": f.get("count", 1), "signature": f.get("signature"), "location_from": how,
                           "reproducer": rep},
        })
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0",
            "runs": [{"tool": {"driver": {"name": "powercut", "informationUri": "https://github.com/",
                                          "rules": rules}},
                      "results": results}]}


# ---- the end of a campaign or merge ------------------------------------------------------
def finish(out_dir, data, history_path, regressions=None, invariants=()):
    """Classifies data's failures (data["fixed"], data["history"]: the
    earlier records shown as trends), appends this run's record to the
    history, writes sarif.json into out_dir.  Returns the record."""
    earlier = read(history_path)
    started = data.get("campaign", {}).get("started")
    incomplete = [m for m, v in data.get("methods", {}).items() if not (v.get("coverage") or {}).get("complete", True)]
    data["fixed"] = classify(data.get("failures", []), earlier, regressions, started, incomplete)
    rec = record_of(data, out_dir)
    data["history"] = earlier[-(KEEP_IN_REPORT - 1):] + [rec]
    data.setdefault("campaign", {})["history_file"] = os.path.abspath(history_path)
    os.makedirs(os.path.dirname(os.path.abspath(history_path)), exist_ok=True)
    with open(history_path, "a") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")
    write_json(os.path.join(out_dir, "sarif.json"), sarif(data, invariants))
    return rec
