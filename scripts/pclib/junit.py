"""JUnit XML, produced in one place: from the JSON the tools and the
campaign write (ElementTree; the C tools keep their own --junit, which the
driver no longer uses).

  sweep(summary, ...)       `powercut sweep`: pcsweep's sweep.json -- one test
                            case per planned run (scenario x workload seed),
                            skipped when it did not judge all its planned
                            states (failed with --require-complete), and one
                            failed case per violation signature
  faults(summary, ...)      `powercut faults`: pcfaults' faults.json -- a
                            "planned plans" case, one case per phase, kind and
                            mode that ran, one failed case per signature
  faults_exec(...)          `powercut faults --exec`: one case per kind, one
                            failed case per signature
  campaign(data)            a campaign's summary (report.py): one suite per
                            method, a case per target and a "planned work" case

Each returns the document as text; write(path, text) saves it.  A later
SARIF writer belongs here too, from the same JSON.
"""
import os
import xml.etree.ElementTree as ET


# ---- building blocks --------------------------------------------------------------------
def _attrs(**kw):
    return {k: str(v) for k, v in kw.items() if v is not None}


def testsuites(name, **kw):
    return ET.Element("testsuites", _attrs(name=name, **kw))


def testsuite(parent, name, **kw):
    return ET.SubElement(parent, "testsuite", _attrs(name=name, **kw))


def testcase(suite, classname, name, time=None):
    return ET.SubElement(suite, "testcase", _attrs(classname=classname, name=name,
                                                   time=f"{time:.3f}" if isinstance(time, float) else time))


def failure(case, message, type_, text=None):
    el = ET.SubElement(case, "failure", _attrs(type=type_, message=message))
    if text is not None:
        el.text = text
    return el


def skipped(case, message):
    return ET.SubElement(case, "skipped", _attrs(message=message))


def system_out(case, text):
    ET.SubElement(case, "system-out").text = text


def incomplete(case, message, require_complete):
    """Work not done: a skipped case, or a failed one (type incomplete)
    with --require-complete."""
    if require_complete:
        failure(case, message, "incomplete")
    else:
        skipped(case, message)


def text(root):
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write(path, doc):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(doc)
    os.replace(path + ".tmp", path)


def _signature_failure(case, g, noun, first, also, reproducer=True):
    """The failure of one violation signature: its count and id, the first
    example in full and the others in a line each."""
    ex = g.get("examples") or []
    body = first(ex[0]) if ex else ""
    body += "".join("\nalso: " + also(e) for e in ex[1:])
    if g["count"] > len(ex):
        body += f"\n... and {g['count'] - len(ex)} more"
    if reproducer and g.get("reproducer"):
        body += f"\nreproducer: {g['reproducer']}"
    failure(case, f"{g['count']} {noun} with signature {g.get('id')} ({g['signature']})", str(g["invariant"]), body)


# ---- powercut sweep ------------------------------------------------------------------------
def sweep(summary, first_seed, require_complete=False):
    """From pcsweep's sweep.json: the planned runs are every scenario of
    coverage.scenarios_planned times the workload seeds (runs_planned of
    them, seeds first_seed, first_seed+1, ...), in the order pcsweep runs
    them."""
    cov = summary.get("coverage") or {}
    names = cov.get("scenarios_planned") or []
    runs = summary.get("runs") or []
    planned = cov.get("runs_planned", len(runs))
    per = planned // len(names) if names else 0
    sigs = summary.get("signatures") or []
    n_incomplete = sum(1 for r in runs if not r.get("complete")) + max(0, planned - len(runs))
    req = bool(require_complete)
    root = testsuites("powercut-sweep", tests=planned + len(sigs),
                      failures=len(sigs) + (n_incomplete if req else 0), skipped=0 if req else n_incomplete,
                      time=f"{summary.get('wall_s', 0.0):.3f}")
    suite = testsuite(root, "sweep", tests=planned, failures=n_incomplete if req else 0,
                      skipped=0 if req else n_incomplete)
    k = 0
    for name in names:
        for j in range(per):
            r = runs[k] if k < len(runs) else None
            seed = r["seed"] if r else first_seed + j
            case = testcase(suite, f"sweep.{name}", f"seed-{seed}", float(r.get("wall_s", 0.0)) if r else 0.0)
            if not r:
                incomplete(case, "not started: the sweep stopped before this run", req)
            elif not r.get("complete"):
                if r.get("states_planned") is not None:
                    msg = (f"incomplete: {r['states']} of {r['states_planned']} planned states judged "
                           f"(epoch {r['next_epoch']} of {r['epochs_total']})")
                else:
                    msg = f"incomplete: stopped in epoch {r['next_epoch']} of {r['epochs_total']}"
                incomplete(case, msg, req)
            if r:
                system_out(case, f"states {r['states']}, violations {r['violations']}, epochs {r['next_epoch']} of "
                                 f"{r['epochs_total']}")
            k += 1
    vs = testsuite(root, "sweep.violations", tests=len(sigs), failures=len(sigs))
    for g in sigs:
        case = testcase(vs, f"sweep.{g['scenario']}", g["signature"])
        _signature_failure(case, g, "crash state(s)",
                           lambda e: f"first state: seed {e['seed']} {e['choice']}\n{e['detail']}",
                           lambda e: f"seed {e['seed']} {e['choice']}")
    return text(root)


# ---- powercut faults -----------------------------------------------------------------------
def faults(summary, require_complete=False):
    """From pcfaults' faults.json (sweep or campaign)."""
    cov = summary.get("coverage") or {}
    cells = summary.get("cells") or []
    sigs = summary.get("signatures") or []
    inc = not summary.get("complete", cov.get("complete", True))
    req = bool(require_complete)
    wall = float(summary.get("wall_s", 0.0))
    root = testsuites("powercut-faults", tests=len(cells) + 1 + len(sigs), failures=len(sigs) + int(inc and req),
                      skipped=int(inc and not req), time=f"{wall:.3f}")
    suite = testsuite(root, "faults", tests=len(cells) + 1, failures=int(inc and req), skipped=int(inc and not req))
    case = testcase(suite, "faults", "planned plans", wall)
    if inc:
        incomplete(case, f"incomplete: {cov.get('text', '?')} (stopped by {cov.get('stopped_by') or '?'})", req)
    system_out(case, str(cov.get("text", "")))
    for c in cells:
        s = c["figures"]
        case = testcase(suite, f"faults.{c['phase']}", f"{c['kind']}-{c['mode']}", float(s.get("seconds", 0.0)))
        system_out(case, f"plans {s['plans']}, injected {s['injected']}, not reached {s['not_reached']}, crash states "
                         f"{s['states']}, violations {s['violations']} (see the signatures)")
    vs = testsuite(root, "faults.violations", tests=len(sigs), failures=len(sigs))
    for g in sigs:
        case = testcase(vs, f"faults.{g['phase']}", g["signature"])
        _signature_failure(case, g, "violation(s)",
                           lambda e: f"first: seed {e['seed']} {e['plan']} {e['state']}\n{e['detail']}",
                           lambda e: f"seed {e['seed']} {e['plan']} {e['state']}")
    return text(root)


def faults_exec(per_kind, signatures, wall, stopped=False, require_complete=False):
    """`powercut faults --exec`: one test case per kind (skipped -- failed
    with --require-complete -- when the run stopped at a limit), one failed
    test case per signature."""
    inc = 1 if stopped else 0
    req = bool(require_complete)
    root = testsuites("powercut-faults-exec", tests=len(per_kind) + len(signatures),
                      failures=len(signatures) + (inc if req else 0), time=f"{wall:.3f}")
    suite = testsuite(root, "faults-exec", tests=len(per_kind), failures=inc if req else 0)
    for kind, k in per_kind.items():
        case = testcase(suite, "faults.exec", kind)
        if stopped:
            incomplete(case, "incomplete: the run stopped at --max-faults/--max-seconds", req)
        system_out(case, f"plans {k['plans']}, injected {k['injected']}, unreported {k['unreported']}, "
                         f"violations {k['violations']}")
    vs = testsuite(root, "faults-exec.violations", tests=len(signatures), failures=len(signatures))
    for g in signatures:
        case = testcase(vs, f"faults.exec.{g['kind']}", g["signature"])
        body = "\n".join(f"{e['plan']}: {e['detail']}" for e in g["examples"])
        if g.get("reproducer"):
            body += f"\nreproducer: {g['reproducer']}"
        failure(case, f"{g['count']} run(s) with this signature", str(g["invariant"]), body)
    return text(root)


# ---- campaigns -------------------------------------------------------------------------------
def campaign(data):
    """One suite per method: a test case per target (failed when it has
    unique failures) and one "planned work" case, skipped when the phase did
    not do all its planned work (failed with --require-complete).  A
    partial (interrupted) campaign says so in the suites' names and
    properties, and its test cases are skipped, not passed."""
    from .report import target_done
    c = data.get("campaign", {})
    partial = bool(c.get("partial"))
    strict = bool(c.get("require_complete"))
    root = testsuites("powercut campaign" + (" (PARTIAL: interrupted)" if partial else ""))
    fails_by = {}
    for f in data.get("failures", []):
        fails_by.setdefault((f.get("method"), f.get("target")), []).append(f)
    total_tests = total_fail = total_skip = 0
    for m, mv in sorted(data.get("methods", {}).items()):
        targets = mv.get("targets", {})
        cov = mv.get("coverage")
        suite = testsuite(root, f"campaign.{m}" + (" (partial)" if partial else ""),
                          time=f"{mv.get('seconds', 0) or 0:.1f}")
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="partial", value="true" if partial else "false")
        if cov:
            ET.SubElement(props, "property", name="planned_work", value=str(cov.get("text", "")))
        nf = ns = 0
        for t, tv in sorted(targets.items()):
            case = testcase(suite, f"campaign.{m}", t, f"{tv.get('seconds', 0) or 0:.1f}")
            mine = fails_by.get((m, t), [])
            if mine or tv.get("failures"):
                nf += 1
                msg = f"{len(mine) or tv.get('failures')} unique failure(s)"
                body = "\n".join(f"[{f['id']}] {f.get('what')} (seen {f.get('count', 1)}x)\n"
                                 f"  reproduce: {f.get('command')}" for f in mine)
                failure(case, msg, "failure", body)
            elif partial:
                ns += 1
                skipped(case, "the campaign was interrupted: partial result")
            elif not tv.get("complete", True):
                ns += 1
                skipped(case, f"did not finish its planned work: {target_done(tv)}")
        if cov:
            case = testcase(suite, f"campaign.{m}", "planned work")
            if not cov.get("complete", True) or partial:
                why = ("interrupted: " if partial else "") + f"incomplete: {cov.get('text', '?')}"
                if strict:
                    nf += 1
                else:
                    ns += 1
                incomplete(case, why, strict)
            system_out(case, str(cov.get("text", "")))
        n = len(targets) + (1 if cov else 0)
        suite.set("tests", str(n))
        suite.set("failures", str(nf))
        suite.set("skipped", str(ns))
        total_tests += n
        total_fail += nf
        total_skip += ns
    root.set("tests", str(total_tests))
    root.set("failures", str(total_fail))
    root.set("skipped", str(total_skip))
    return text(root)
