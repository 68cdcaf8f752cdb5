"""Engine coverage, in the final step: the coverage preset's standalone
fuzz targets over the kept corpora, llvm-cov totals and HTML."""
import glob
import json
import os
import time

from .. import fuzz as fuzzing
from .. import common
from ..common import ROOT, build_dir


def run(camp, deadline):
    """Engine coverage from the kept corpora, with the coverage preset's
    standalone targets; llvm-cov HTML in DIR/coverage/."""
    cdir = os.path.join(camp.out, "coverage")
    prof = os.path.join(cdir, "prof")
    os.makedirs(prof, exist_ok=True)
    objs, per_target = [], {}
    engine_src = [os.path.join(ROOT, "engine", "src"), os.path.join(ROOT, "engine", "include")]
    for t in camp.targets:
        b = os.path.join(build_dir("coverage"), "fuzz", t)
        if not os.path.exists(b) or time.time() > deadline:
            continue
        objs.append(b)
        env = dict(os.environ, LLVM_PROFILE_FILE=os.path.join(prof, f"{t}-%p.profraw"))
        corp = [p for p in (os.path.join(fuzzing.CORPUS, t), os.path.join(fuzzing.CORPUS, t, ".work"))
                if os.path.isdir(p)]
        p = camp.start([b, "--quiet"] + corp, os.path.join(cdir, f"{t}.log"), env=env)
        camp.wait([p], deadline, grace=0)
        raws = glob.glob(os.path.join(prof, f"{t}-*.profraw"))
        if not raws:
            continue
        pd = os.path.join(prof, f"{t}.profdata")
        common.run(["llvm-profdata-14", "merge", "-sparse", "-o", pd] + raws, check=False)
        per_target[t] = llvm_cov_totals(pd, [b], engine_src)
    pds = glob.glob(os.path.join(prof, "*.profdata"))
    if not pds:
        return {}
    allpd = os.path.join(prof, "all.profdata")
    common.run(["llvm-profdata-14", "merge", "-sparse", "-o", allpd] + pds, check=False)
    args = ["-instr-profile", allpd, objs[0]] + sum((["-object", o] for o in objs[1:]), [])
    common.run(["llvm-cov-14", "show", "-format=html", "-output-dir", cdir, "-show-line-counts-or-regions",
                "-project-title=powercut engine (campaign corpora)"] + args + engine_src,
               check=False, stdout=common.DEVNULL)
    cov = llvm_cov_totals(allpd, objs, engine_src)
    cov["html"] = "coverage/index.html" if os.path.exists(os.path.join(cdir, "index.html")) else None
    cov["per_target"] = per_target
    return cov

# ---- the whole run ----------------------------------------------------------------------


def llvm_cov_totals(profdata, objs, sources):
    args = ["llvm-cov-14", "export", "-summary-only", "-instr-profile", profdata, objs[0]] + \
        sum((["-object", o] for o in objs[1:]), []) + sources
    try:
        cp = common.run(args, check=False, capture=True, stderr=common.DEVNULL, text=True, timeout=300)
        totals = json.loads(cp.stdout)["data"][0]["totals"]
    except (OSError, common.InfraError, ValueError, KeyError, IndexError, common.TimeoutExpired):
        return {}
    return {k: {"covered": v.get("covered", 0), "count": v.get("count", 0), "percent": round(v.get("percent", 0), 2)}
            for k, v in totals.items() if k in ("lines", "regions", "functions", "branches")}
