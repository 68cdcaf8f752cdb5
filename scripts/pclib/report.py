"""Campaign reports: summary.json, junit.xml (junit.py) and index.html from one dict.

write_report(out_dir, data) is a pure function of `data` (what a campaign
collected, see campaign.py; tests pass canned data), so a report can be
regenerated from a saved summary.json with `powercut report DIR`.

data = {
  "campaign": {seed, started, elapsed_s, budget_s, jobs, partial, command, engine, state: {...}},
  "methods": {method: {"seconds": s, "targets": {target: {states, execs, coverage, failures, ...}}}},
  "coverage": {"lines": {"covered", "count", "percent"}, "regions": ..., "functions": ...,
               "html": "coverage/index.html", "per_target": {target: {"lines": {...}}}} or {},
  "failures": [{id, method, target, what, count, first_seen, command, regression, input}],
  "series": [{t, method, target, engine, execs, coverage, states}],
  "bench": the figures of `powercut bench --only sweep,fuzz --quick` on the build the campaign ran
           (bench.py: {build: {commit, dirty, presets, compiler, time}, sweep: {...}, fuzz: {targets: ...}},
           "file": "bench.json"), or {"skipped": why}; a merged report: {"shards": [{shard, dir, ...}]}
}

index.html is one self-contained page (no network): the summary table,
coverage and executions over time per target (matplotlib PNGs embedded as
data: URIs), the failure list with the commands that reproduce each one,
a link to the llvm-cov HTML report next to it, and "Build and speed": the
commit and build the figures are of, crash states/s of the sweep, execs/s
of each fuzz target with and without sanitizers.
"""
import base64
import html
import io
import os

from . import junit
from .common import write_json

METHOD_ORDER = ["sweep", "faults", "fuzz", "diff"]
COLUMNS = [("method", "method"), ("target", "target"), ("states", "crash states"), ("execs", "executions"),
           ("coverage", "coverage"), ("failures", "failures"), ("seconds", "seconds"), ("done", "planned work")]


def target_done(v):
    """A target's share of the planned work, as a short text, or None."""
    if v.get("coverage_text"):
        return v["coverage_text"] + ("" if v.get("complete", True) else " (incomplete)")
    if v.get("epochs_total"):
        done = "complete" if v.get("complete") else \
            f"epoch {v.get('epochs_done', 0):,} of {v['epochs_total']:,} (incomplete)"
        return f"workload seed {v.get('workload_seed', '?')}: {done}"
    return None


def method_subject(m, v):
    """The subject a method tested: its "subject" field, else from its key
    ("sweep:qemu"), else libvhdx (every method before --subjects)."""
    return v.get("subject") or (m.split(":", 1)[1] if ":" in m else "libvhdx")


def method_sort_key(k):
    base = k.split(":", 1)[0]
    return (METHOD_ORDER.index(base) if base in METHOD_ORDER else 99, k)


def subjects_html(data):
    """A section per subject (campaign --subjects): what each method did on
    it, its violations, the filed departures set apart, the workloads it
    cannot run.  Empty when only libvhdx was tested."""
    methods = data.get("methods", {})
    subs = {}
    for m in sorted(methods, key=method_sort_key):
        subs.setdefault(method_subject(m, methods[m]), []).append(m)
    if list(subs) in ([], ["libvhdx"]) and (data.get("campaign") or {}).get("subjects", ["libvhdx"]) == ["libvhdx"]:
        return []
    h = ['<h2>Subjects</h2>']
    for subj, ms in subs.items():
        h.append(f'<h3 id="subject-{html.escape(subj)}">{html.escape(subj)}</h3>')
        h.append('<table class="subject"><thead><tr><th>method</th><th>crash states</th><th>faults injected</th>'
                 '<th>violations</th><th>known departures</th><th>planned work</th></tr></thead><tbody>')
        for m in ms:
            v = methods[m]
            states = sum(t.get("states", 0) or 0 for t in v.get("targets", {}).values()) if m.startswith("sweep") \
                else None
            cls = ' class="bad"' if v.get("violations") else ""
            h.append(f'<tr{cls}><td>{html.escape(m)}</td><td class="n">{_fmt(states)}</td>'
                     f'<td class="n">{_fmt(v.get("faults"))}</td><td class="n">{_fmt(v.get("violations"))}</td>'
                     f'<td class="n">{_fmt(v.get("known"))}</td>'
                     f'<td>{html.escape(str((v.get("coverage") or {}).get("text", "")))}</td></tr>')
        h.append("</tbody></table>")
        kd = {}
        for m in ms:
            for k, n in (methods[m].get("known_departures") or {}).items():
                kd[k] = kd.get(k, 0) + n
        if kd:
            h.append("<p>Set apart as the subject's filed departures (its known list; <code>--strict</code> "
                     "counts them):</p><ul>" +
                     "".join(f"<li>{html.escape(k)}: {n:,}</li>" for k, n in sorted(kd.items(), key=lambda x: -x[1]))
                     + "</ul>")
        lo = {}
        for m in ms:
            lo.update(methods[m].get("left_out") or {})
        if lo:
            h.append("<p>Workloads the subject cannot run (left out, not judged):</p><ul>" +
                     "".join(f"<li>{html.escape(x)}: {html.escape(str(w))}</li>" for x, w in sorted(lo.items()))
                     + "</ul>")
    return h


def table_rows(data):
    """One row per method and target, in a stable order."""
    rows = []
    methods = data.get("methods", {})
    for m in sorted(methods, key=method_sort_key):
        for t, v in sorted(methods[m].get("targets", {}).items()):
            rows.append({"method": m, "target": t, "states": v.get("states"), "execs": v.get("execs"),
                         "coverage": v.get("coverage"), "failures": v.get("failures", 0),
                         "seconds": v.get("seconds"), "done": target_done(v)})
    return rows


def incomplete_methods(data):
    """{method: coverage text} of the phases that did not do all their planned work."""
    return {m: (v.get("coverage") or {}).get("text", "?") for m, v in data.get("methods", {}).items()
            if v.get("coverage") and not v["coverage"].get("complete", True)}


def summary_problem(data):
    """Why a loaded summary.json cannot be a campaign summary (None if it can)."""
    if not isinstance(data, dict):
        return "not a JSON object"
    for key, ty in (("campaign", dict), ("methods", dict)):
        if not isinstance(data.get(key), ty):
            return f'"{key}" missing or not an object'
    for m, v in data["methods"].items():
        if not isinstance(v, dict) or not isinstance(v.get("targets", {}), dict):
            return f'"methods.{m}" is not an object with "targets"'
        for t, tv in v.get("targets", {}).items():
            if not isinstance(tv, dict):
                return f'"methods.{m}.targets.{t}" is not an object'
    for key in ("failures", "series"):
        if not isinstance(data.get(key, []), list) or not all(isinstance(x, dict) for x in data.get(key, [])):
            return f'"{key}" is not a list of objects'
    if not isinstance(data.get("coverage", {}), dict):
        return '"coverage" is not an object'
    b = data.get("bench", {})
    if not isinstance(b, dict) or not all(isinstance(x, dict) for x in b.get("shards", [])):
        return '"bench" is not an object (or its "shards" not a list of objects)'
    return None


def _fmt(v):
    if v is None:
        return "&ndash;"
    if isinstance(v, float):
        return f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return html.escape(str(v))


# ---- the build's speed (bench) -------------------------------------------------------------
def _rate(rec):
    """(wall, per CPU-s) of one bench fuzz record, or the reason it has none."""
    if rec is None:
        return None, "not built"
    if rec.get("error"):
        return None, "stopped: " + str(rec["error"])
    return (rec.get("wall_execs_per_s"), rec.get("execs_per_cpu_s")), None


def _commit_text(b):
    c = str(b.get("commit") or "unknown commit")[:12]
    return c + (" (dirty: tracked files changed)" if b.get("dirty") else "")


def bench_lines(bench):
    """The bench figures in a few console lines ([] when there are none)."""
    if not bench:
        return []
    if bench.get("skipped"):
        return [f"build and speed: not measured ({bench['skipped']})"]
    if bench.get("shards"):
        out = []
        for sh in bench["shards"]:
            out += [f"shard {sh.get('shard')}: {x}" for x in bench_lines({k: v for k, v in sh.items()
                                                                            if k not in ("shard", "dir")})]
        return out
    b = bench.get("build") or {}
    out = [f"build and speed: commit {_commit_text(b)}, {', '.join(b.get('presets') or [])}, "
           f"{b.get('compiler') or 'compiler unknown'}"]
    sw = bench.get("sweep")
    if sw:
        out.append(f"  sweep: {_fmt_plain(sw.get('states_per_sec_judging'))} states/s judging "
                   f"({_fmt_plain(sw.get('states_per_sec_overall'))} overall, {_fmt_plain(sw.get('states'))} states)")
    fz = bench.get("fuzz")
    if fz:
        presets = list(fz.get("presets") or {})
        for t, row in (fz.get("targets") or {}).items():
            cells = []
            for p in presets:
                r, why = _rate(row.get(p))
                cells.append(f"{p} {why}" if why else f"{p} {_fmt_plain(r[0])}/s wall, {_fmt_plain(r[1])}/CPU-s")
            out.append(f"  {t}: " + "; ".join(cells))
    return out


def _fmt_plain(v):
    if v is None:
        return "-"
    return f"{v:,.0f}" if isinstance(v, float) else (f"{v:,}" if isinstance(v, int) else str(v))


def _bench_one(bench, link=True):
    """The "Build and speed" content of one campaign's bench figures
    (link: the JSON file is beside the page)."""
    if bench.get("skipped"):
        return [f'<p class="bench-skipped">not measured: {html.escape(str(bench["skipped"]))}</p>']
    b = bench.get("build") or {}
    h = ['<table class="meta bench-build">']
    for label, v in (("commit", _commit_text(b)), ("presets", ", ".join(b.get("presets") or [])),
                     ("compiler", b.get("compiler")), ("measured", b.get("time")),
                     ("took (s)", b.get("elapsed_s")),
                     ("runs", "short (--quick)" if bench.get("quick") else "full")):
        if v is not None:
            h.append(f"<tr><td>{html.escape(label)}</td><td>{_fmt(v)}</td></tr>")
    f = bench.get("file")
    if f:
        f = html.escape(str(f))
        h.append("<tr><td>figures</td><td>" + (f'<a href="{f}">{f}</a>' if link else f) + "</td></tr>")
    h.append("</table>")
    sw = bench.get("sweep")
    if sw:
        h.append(f'<p id="bench-sweep">Crash sweep ({html.escape(str(sw.get("config", "")))}): '
                 f'<b>{_fmt(sw.get("states_per_sec_judging"))}</b> states/s judging, '
                 f'{_fmt(sw.get("states_per_sec_overall"))} overall, {_fmt(sw.get("states"))} states, '
                 f'{_fmt(sw.get("violations"))} violations.</p>')
    fz = bench.get("fuzz")
    if fz:
        presets = fz.get("presets") or {}
        h.append('<table id="bench-fuzz"><thead><tr><th>fuzz target</th><th>runs</th>'
                 + "".join(f'<th>{html.escape(str(about))} (<code>{html.escape(p)}</code>): execs/s wall</th>'
                           f'<th>per CPU-s</th>' for p, about in presets.items())
                 + "</tr></thead><tbody>")
        for t, row in (fz.get("targets") or {}).items():
            runs = next((r.get("runs") for r in row.values() if r), None)
            cells = []
            bad = False
            for p in presets:
                r, why = _rate(row.get(p))
                if why:
                    bad = bad or why.startswith("stopped")
                    cells.append(f'<td colspan="2">{html.escape(why)}</td>')
                else:
                    cells.append(f'<td class="n">{_fmt(r[0])}</td><td class="n">{_fmt(r[1])}</td>')
            cls = ' class="bad"' if bad else ""
            h.append(f"<tr{cls}><td>{html.escape(t)}</td><td class=\"n\">{_fmt(runs)}</td>{''.join(cells)}</tr>")
        h.append("</tbody></table>")
    elif bench.get("fuzz_skipped"):
        h.append(f"<p>Fuzz targets: not measured ({html.escape(str(bench['fuzz_skipped']))}).</p>")
    return h


def bench_html(bench):
    """index.html's "Build and speed" section ([] for summaries without
    bench figures: older ones, sweep or fault runs)."""
    if not bench:
        return []
    h = ['<h2 id="bench">Build and speed</h2>']
    if bench.get("shards"):
        for sh in bench["shards"]:
            h.append(f"<h3>shard {html.escape(str(sh.get('shard')))} <code>{html.escape(str(sh.get('dir')))}"
                     f"</code></h3>")
            h += _bench_one(sh, link=False)
        return h
    return h + _bench_one(bench)


# ---- plots ------------------------------------------------------------------------------
def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def plots(series):
    """{title: data URI} for the time series; {} when matplotlib is missing
    or there is nothing to plot."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    out = {}
    fuzz = [s for s in series if s.get("method") == "fuzz"]
    targets = sorted({s["target"] for s in fuzz})
    for key, title, ylabel in (("coverage", "Coverage over time", "coverage (libFuzzer cov / AFL++ edges)"),
                               ("execs", "Executions over time", "executions")):
        if not targets:
            break
        fig, axes = plt.subplots(len(targets), 1, figsize=(8, 2.4 * len(targets)), squeeze=False)
        for ax, t in zip(axes[:, 0], targets):
            for eng in sorted({s.get("engine", "") for s in fuzz if s["target"] == t}):
                pts = [(s["t"], s.get(key) or 0) for s in fuzz if s["target"] == t and s.get("engine", "") == eng]
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=eng or "fuzz")
            ax.set_title(t, fontsize=10)
            ax.set_xlabel("campaign time (s)")
            ax.set_ylabel(ylabel, fontsize=8)
            ax.legend(fontsize=8, loc="lower right")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        out[title] = _png(fig)
        plt.close(fig)
    for method, key, title in (("sweep", "states", "Crash states judged over time"),
                               ("faults", "execs", "Faults injected over time")):
        pts = [(s["t"], s.get(key) or 0) for s in series if s.get("method") == method]
        if pts:
            fig, ax = plt.subplots(figsize=(8, 2.4))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".")
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("campaign time (s)")
            ax.grid(alpha=0.3)
            fig.tight_layout()
            out[title] = _png(fig)
            plt.close(fig)
    return out


# ---- HTML ---------------------------------------------------------------------------------
CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0} th,td{border:1px solid #ccc;padding:.25em .6em}
th{background:#f0f0f0;cursor:pointer} td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fde8e8} .ok{color:#176f2c;font-weight:bold} .bad{color:#b00020;font-weight:bold}
code{background:#f4f4f4;padding:0 .2em} img{max-width:100%;border:1px solid #eee}
.meta td:first-child{font-weight:bold}
"""

# Click a header to sort the summary table (numbers numerically).
SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.dataset.asc !== '1'; th.dataset.asc = asc ? '1' : '0';
    function key(r) { var v = r.cells[col].dataset.v; var n = parseFloat(v);
                      return isNaN(n) ? (r.cells[col].textContent || '') : n; }
    rows.sort(function (a, b) { var x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
document.body.dataset.rendered = document.querySelectorAll('#summary tbody tr').length;
"""


def state_text(st):
    """The resume state in words: per phase the workload seed and where
    each unfinished scenario stands."""
    parts = []
    for key, unit, pos in (("sweep", "epoch", "next_epoch"), ("faults", "plan", "next_plan")):
        part = st.get(key)
        if not isinstance(part, dict):
            continue
        sc = part.get("scenarios") or {}
        done = sorted(n for n, v in sc.items() if isinstance(v, dict) and v.get("done"))
        open_ = [f"{n} at {unit} {v.get(pos, 0):,}" for n, v in sorted(sc.items())
                 if isinstance(v, dict) and not v.get("done")]
        parts.append(f"{key}: workload seed {part.get('workload_seed')}"
                     + (f" ({', '.join(open_)}" + (f"; {len(done)} done" if done else "") + ")" if open_ else
                        f" ({len(done)} scenarios done)" if done else ""))
    rest = {k: v for k, v in st.items() if k not in ("sweep", "faults", "version")}
    parts += [f"{k}={v}" for k, v in sorted(rest.items())]
    return "; ".join(parts)


def _coverage_text(cov):
    if not cov or "lines" not in cov:
        return "not measured"
    parts = []
    for k in ("lines", "regions", "functions", "branches"):
        if k in cov:
            c = cov[k]
            parts.append(f"{k} {c.get('percent', 0):.1f}% ({c.get('covered', 0):,}/{c.get('count', 0):,})")
    return ", ".join(parts)


def render_html(data, images):
    c = data.get("campaign", {})
    rows = table_rows(data)
    failures = data.get("failures", [])
    incomplete = incomplete_methods(data)
    status = ('<span class="bad">%d unique failure(s)</span>' % len(failures)) if failures else \
        ('<span class="ok">no failures</span>' if not incomplete else
         '<span class="bad">no failures in the work done</span>')
    if c.get("partial"):
        status += ' &mdash; <span class="bad">partial report (interrupted)</span>'
    if incomplete:
        status += (' &mdash; <span class="bad">INCOMPLETE: ' + html.escape("; ".join(
            f"{m}: {t}" for m, t in incomplete.items())) + '</span>')
    h = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         f"<title>powercut campaign {html.escape(str(c.get('started', '')))}</title>",
         f"<style>{CSS}</style></head><body>",
         f"<h1>powercut campaign report</h1><p>{status}</p>",
         '<table class="meta">']
    for label, key in (("started", "started"), ("elapsed (s)", "elapsed_s"), ("budget (s)", "budget_s"),
                       ("jobs", "jobs"), ("campaign seed", "seed"), ("engine", "engine"), ("command", "command")):
        if key in c:
            h.append(f"<tr><td>{label}</td><td>{_fmt(c[key])}</td></tr>")
    st = c.get("state")
    if st:
        h.append("<tr><td>resume state</td><td>" + html.escape(state_text(st)) + "</td></tr>")
    h.append("</table>")

    methods = data.get("methods", {})
    if any(v.get("coverage") for v in methods.values()):
        h.append('<h2>Planned work</h2><table id="planned"><thead><tr><th>phase</th><th>done</th>'
                 '<th>of the planned work</th><th>seconds (share)</th></tr></thead><tbody>')
        for m in sorted(methods, key=method_sort_key):
            cv = methods[m].get("coverage")
            if not cv:
                continue
            ok = cv.get("complete", True) and not c.get("partial")
            cls = "" if ok else ' class="bad"'
            h.append(f'<tr{cls}><td>{html.escape(m)}</td>'
                     f'<td>{"complete" if ok else "INCOMPLETE"}</td><td>{html.escape(str(cv.get("text", "")))}</td>'
                     f'<td class="n">{_fmt(methods[m].get("seconds"))} ({_fmt(methods[m].get("budget_s"))})</td></tr>')
        for k, v in sorted((c.get("final") or {}).items()):
            h.append(f"<tr><td>final: {html.escape(k)}</td><td></td><td>{html.escape(str(v))}</td><td></td></tr>")
        h.append("</tbody></table>")
    notes = c.get("notes") or []
    if notes:
        h.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(str(n))}</li>" for n in notes) + "</ul>")

    h += subjects_html(data)
    h.append('<h2>Summary</h2><table id="summary" class="sortable"><thead><tr>')
    h += [f"<th>{html.escape(label)}</th>" for _, label in COLUMNS]
    h.append("</tr></thead><tbody>")
    for r in rows:
        cls = ' class="bad"' if r["failures"] else ""
        h.append(f"<tr{cls}>")
        for key, _ in COLUMNS:
            v = r[key]
            num = isinstance(v, (int, float))
            attrs = f' class="n" data-v="{v}"' if num else ""
            h.append(f"<td{attrs}>{_fmt(v)}</td>")
        h.append("</tr>")
    h.append("</tbody></table>")

    cov = data.get("coverage") or {}
    h.append("<h2>Engine coverage</h2><p>" + html.escape(_coverage_text(cov)))
    if cov.get("html"):
        h.append(f' &mdash; <a href="{html.escape(cov["html"])}">llvm-cov HTML report</a>')
    h.append("</p>")
    if cov.get("per_target"):
        h.append("<table><thead><tr><th>target corpus</th><th>engine line coverage</th></tr></thead><tbody>")
        for t, v in sorted(cov["per_target"].items()):
            h.append(f"<tr><td>{html.escape(t)}</td><td>{html.escape(_coverage_text(v))}</td></tr>")
        h.append("</tbody></table>")

    h += bench_html(data.get("bench"))

    h.append('<h2>Failures</h2><table id="failures"><thead><tr><th>id</th><th>triage</th><th>method</th>'
             "<th>target</th><th>what</th><th>seen</th><th>reproduce</th></tr></thead><tbody>")
    for f in failures:
        tri = f.get("triage") or "&ndash;"
        note = f.get("triage_note")
        title = f' title="{html.escape(note)}"' if note else ""
        h.append(f"<tr><td><code>{html.escape(str(f.get('id')))}</code></td>"
                 f"<td{title}>{tri}</td>"
                 f"<td>{html.escape(str(f.get('method')))}"
                 f"</td><td>{html.escape(str(f.get('target')))}</td><td>{html.escape(str(f.get('what')))}</td>"
                 f"<td class=\"n\">{_fmt(f.get('count', 1))}</td>"
                 f"<td><code>{html.escape(str(f.get('command')))}</code></td></tr>")
    if not failures:
        h.append('<tr><td colspan="7">none</td></tr>')
    h.append("</tbody></table>")
    fixed = data.get("fixed") or []
    if fixed:
        h.append('<h2>Fixed since the last run</h2><table id="fixed"><thead><tr><th>id</th><th>method</th>'
                 "<th>what</th><th>last seen</th><th>note</th></tr></thead><tbody>")
        for f in fixed:
            h.append(f"<tr><td><code>{html.escape(str(f.get('id')))}</code></td><td>{html.escape(str(f.get('method')))}"
                     f"</td><td>{html.escape(str(f.get('what')))}</td><td>{html.escape(str(f.get('last_seen')))}</td>"
                     f"<td>{html.escape(str(f.get('note') or ''))}</td></tr>")
        h.append("</tbody></table>")
    shards = c.get("shards")
    if shards:
        h.append('<h2>Merged parts</h2><table id="shards"><thead><tr><th>shard</th><th>from</th><th>kind</th>'
                 "<th>report</th></tr></thead><tbody>")
        for p in shards:
            h.append(f"<tr><td>{html.escape(str(p.get('shard')))}</td><td>{html.escape(str(p.get('source')))}</td>"
                     f"<td>{html.escape(str(p.get('kind')))}</td><td><code>{html.escape(str(p.get('dir')))}</code>"
                     f"</td></tr>")
        h.append("</tbody></table>")
    h += history_html(data.get("history") or [])

    dm = data.get("methods", {}).get("diff")
    if dm:
        n, planned = dm.get("images", 0), dm.get("planned")
        done = (f"{_fmt(n)} of {_fmt(planned)} images" if planned is not None else f"{_fmt(n)} images")
        h.append(f"<h2>Differential replay against QEMU</h2><p>{done} from the fuzz corpora compared, "
                 f"{_fmt(dm.get('disagreements', 0))} disagreements"
                 + ("" if (dm.get("coverage") or {}).get("complete", True) else
                    f' &mdash; <span class="bad">INCOMPLETE: {html.escape(str(dm["coverage"].get("text", "")))}'
                    f'</span>') + "</p>")
        h.append('<table id="diff"><thead><tr><th>class</th><th>images</th><th>departs</th><th>rule</th>'
                 "<th>reproducer</th></tr></thead><tbody>")
        for c in dm.get("classes", []):
            cls = ' class="bad"' if str(c.get("departs", "")).startswith("ours") else ""
            h.append(f"<tr{cls}><td>{html.escape(str(c.get('name')))}</td><td class=\"n\">{_fmt(c.get('count'))}</td>"
                     f"<td>{html.escape(str(c.get('departs')))}</td><td>{html.escape(str(c.get('rule')))}</td>"
                     f"<td><code>{html.escape(str(c.get('reproducer')))}</code></td></tr>")
        if not dm.get("classes"):
            complete = (dm.get("coverage") or {}).get("complete", True)
            text = ("the implementations agree on every image" if complete and n else
                    f"the implementations agree on the {_fmt(n)} images compared; "
                    f"{_fmt((planned or n) - n)} were not compared" if n else "no image was compared")
            h.append(f'<tr><td colspan="5">{html.escape(text)}</td></tr>')
        h.append("</tbody></table>")

    h.append("<h2>Over time</h2>")
    if images:
        for title, uri in images.items():
            h.append(f"<h3>{html.escape(title)}</h3><img alt=\"{html.escape(title)}\" src=\"{uri}\">")
    else:
        h.append("<p>no time series (nothing ran long enough, or python3-matplotlib is missing)</p>")
    h.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(h) + "\n"


TREND_COLUMNS = [("states/s", lambda r: (r.get("rates") or {}).get("states_per_s")),
                 ("execs/s", lambda r: (r.get("rates") or {}).get("execs_per_s")),
                 ("engine line coverage %", lambda r: r.get("coverage")),
                 ("failures", lambda r: len(r.get("failures") or {}))]


def sparkline(values, width=160, height=28):
    """An inline SVG polyline of values (None: a gap); '' with fewer than
    two numbers."""
    nums = [v for v in values if isinstance(v, (int, float))]
    if len(nums) < 2:
        return ""
    lo, hi = min(nums), max(nums)
    span = (hi - lo) or 1.0
    step = width / max(1, len(values) - 1)
    pts = [f"{i * step:.1f},{height - 2 - (v - lo) / span * (height - 4):.1f}"
           for i, v in enumerate(values) if isinstance(v, (int, float))]
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
            f'<polyline fill="none" stroke="#36c" stroke-width="1.5" points="{" ".join(pts)}"/></svg>')


def history_html(records):
    """The trends over the last runs of the history file: one sparkline per
    measure and a table of the runs (newest last)."""
    if not records:
        return []
    h = ['<h2>Over the last runs</h2><table id="trends"><thead><tr><th>measure</th><th>trend</th>'
         '<th>this run</th></tr></thead><tbody>']
    for label, get in TREND_COLUMNS:
        vals = [get(r) for r in records]
        h.append(f"<tr><td>{html.escape(label)}</td><td>{sparkline(vals)}</td><td class=\"n\">{_fmt(vals[-1])}</td>"
                 f"</tr>")
    h.append('</tbody></table><table id="history"><thead><tr><th>time</th><th>commit</th><th>seed</th>'
             "<th>states/s</th><th>execs/s</th><th>coverage %</th><th>failures (new)</th></tr></thead><tbody>")
    for r in records:
        fails = r.get("failures") or {}
        new = sum(1 for v in fails.values() if v.get("triage") == "new")
        h.append(f"<tr><td>{html.escape(str(r.get('time')))}</td><td><code>{html.escape(str(r.get('commit'))[:12])}"
                 f"</code></td><td>{_fmt(r.get('seed'))}</td>"
                 f"<td class=\"n\">{_fmt((r.get('rates') or {}).get('states_per_s'))}</td>"
                 f"<td class=\"n\">{_fmt((r.get('rates') or {}).get('execs_per_s'))}</td>"
                 f"<td class=\"n\">{_fmt(r.get('coverage'))}</td><td class=\"n\">{len(fails)} ({new})</td></tr>")
    h.append("</tbody></table>")
    return h


def summary_json(data):
    """summary.json: the data itself plus the flat table."""
    out = dict(data)
    out["table"] = table_rows(data)
    return out


def write_report(out_dir, data):
    """Writes summary.json, junit.xml and index.html; returns the path of
    index.html."""
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, "summary.json"), summary_json(data))
    junit.write(os.path.join(out_dir, "junit.xml"), junit.campaign(data))
    page = render_html(data, plots(data.get("series", [])))
    path = os.path.join(out_dir, "index.html")
    with open(path + ".tmp", "w") as f:
        f.write(page)
    os.replace(path + ".tmp", path)
    return path
