"""The diff phase: `powercut diff` (our engine against QEMU) over the
corpora of the fuzz targets that build whole images."""
import os
import shutil
import sys
import time

from .. import fuzz as fuzzing
from ..common import ROOT
from .slices import share_text

DIFF_TARGETS = ("fuzz_log_replay", "fuzz_image_open")  # corpora that describe whole images
DIFF_MIN = 4.0          # below this the diff phase would compare nothing: it is not started


def run(camp, budget):
    """powercut diff (our engine vs QEMU) over the image-building fuzz
    corpora: committed seeds first, then the kept new units."""
    d = os.path.join(camp.out, "diff")
    os.makedirs(d, exist_ok=True)
    m = camp.methods.setdefault("diff", {"seconds": 0.0, "budget_s": 0.0, "targets": {}})
    m["budget_s"] += budget
    paths = []
    for t in DIFF_TARGETS:
        for p in (os.path.join(fuzzing.CORPUS, t), os.path.join(fuzzing.CORPUS, t, ".work")):
            if os.path.isdir(p) and os.listdir(p):
                paths.append(p)
    files = sum(fuzzing.count_files(p) for p in paths)
    if not (shutil.which("qemu-img") and shutil.which("qemu-io")):
        m["coverage"] = {"complete": False, "done": 0, "planned": files, "unit": "images",
                         "text": f"not run: qemu-img/qemu-io are not installed (0 of {files} images)"}
        camp.notes.append("diff: qemu-img/qemu-io are not installed: no differential replay")
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
        camp.notes.append(f"diff: {m['coverage']['text']}")
        return
    t_start = time.time()
    out_json = os.path.join(d, "diff.json")
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "powercut"), "diff", "--no-build", "--json", out_json,
           "--jobs", camp.jobs, "--max-seconds", f"{compare:.1f}", "--minimize-seconds", 5,
           "--minimize-total", f"{minimize_total:.1f}"] + paths
    p = camp.start(cmd, os.path.join(d, "diff.log"))
    camp.wait([p], t_start + budget, lambda: camp.progress("diff: our engine vs QEMU on the fuzz corpora"))
    m["seconds"] += time.time() - t_start
    r = camp.read_json(out_json, "diff") if os.path.exists(out_json) else None
    if r is None:
        if not os.path.exists(out_json):
            camp.notes.append(f"diff wrote no report (status {p.returncode}); see {d}/diff.log")
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
    camp.diff_failures += [f"diff: our engine departs: {c['name']} ({c['count']}x; {c.get('rule', '')}); "
                           f"reproduce: {c.get('reproduce')}" for c in ours]
    for c in r.get("classes", []):
        if c not in ours:
            camp.notes.append(f"diff: {c['name']} ({c['count']} images; departs: {c['departs']}); "
                              f"reproducer {c.get('reproducer')}")
    camp.sample(method="diff", target="corpora", states=n, violations=len(ours))

# ---- final ----------------------------------------------------------------------------
