"""The sweep phase: pcsweep over every scenario of a workload seed under
every crash model, sharded over the jobs (and, with campaign --shard K/N,
over the machines: job k of shard K is pcsweep shard K*jobs+k of N*jobs),
resumed at the epoch each scenario stopped in.  With campaign --subjects
the phase's time is shared among the subjects (each its own method
"sweep" / "sweep:qemu", resume state and report section)."""
import os
import time

from .. import triage
from ..common import tool
from . import slices


def run(camp, budget):
    slices.per_subject(camp, budget, run_subject)


def run_subject(camp, budget, subject):
    from ..campaign import part_key
    key = part_key("sweep", subject)
    pcsweep = tool("default", "pcsweep")
    d = os.path.join(camp.out, key.replace(":", "-"))
    os.makedirs(d, exist_ok=True)
    m = camp.methods.setdefault(key, {"seconds": 0.0, "budget_s": 0.0, "targets": {}, "seeds": [],
                                      "subject": subject, "known": 0, "known_departures": {}})
    part = camp.state.setdefault(key, {"workload_seed": 1, "scenarios": {}})
    subj_args = [] if subject == "libvhdx" else ["--subject", subject]
    start_seed = part["workload_seed"]
    t_start = time.time()
    totals = {"states": 0, "violations": 0}

    def run_slice(seed, x, secs):
        pos = part["scenarios"].setdefault(x, {"next_epoch": 0, "done": False})
        first = pos["next_epoch"]
        procs, outs = [], []
        for k in range(camp.jobs):
            j = os.path.join(d, f"seed{seed}-{x}-e{first}-shard{k}.json")
            outs.append(j)
            procs.append(camp.start([pcsweep, "sweep", "--quiet", "--no-count"] + subj_args + [
                                     "--scenario", x, "--models", "all",
                                     "--seed", seed, "--seeds", 1, "--shard", camp.job_shard(k),
                                     "--first-epoch", first, "--max-seconds", f"{secs:.1f}", "--json", j,
                                     "--repro-dir", os.path.join(d, "repro")], j[:-5] + ".log"))
        camp.wait(procs, time.time() + secs, lambda: camp.progress(
            f"{key} workload seed {seed} {x} from epoch {first}: {totals['states']:,} states, "
            f"{totals['violations']} violations so far"))
        nexts, complete = [], True
        t = m["targets"].setdefault(x, {"states": 0, "execs": 0, "failures": 0, "seconds": 0.0})
        for j, p in zip(outs, procs):
            s = camp.read_json(j, f"pcsweep ({x}, workload seed {seed})") if os.path.exists(j) else None
            if s is None:
                complete = False
                nexts.append(first)
                if not os.path.exists(j):
                    camp.notes.append(f"pcsweep {x} workload seed {seed} wrote no summary (status {p.returncode}); "
                                      f"see {j[:-5]}.log")
                continue
            complete &= bool(s.get("complete"))
            totals["states"] += s.get("states", 0)
            totals["violations"] += s.get("violations", 0)
            slices.add_known(m, s)
            for r in s.get("runs", []):
                if r.get("left_out"):  # the subject cannot run this workload (QEMU: no large discards)
                    pos["left_out"] = r["left_out"]
                    t["left_out"] = r["left_out"]
                    nexts.append(first)
                    continue
                t["states"] += r["states"]
                t["execs"] += r.get("opens", 0)
                t["seconds"] += r.get("wall_s", 0)
                nexts.append(r.get("next_epoch", first) if not r.get("complete") else r.get("epochs_total", 0))
                pos["epochs"] = r.get("epochs_total", pos.get("epochs"))
            for g in s.get("signatures", []):
                camp.raw_failures.append({
                    "state": triage.violation_state("sweep", g["invariant"],
                                                    [g["model_class"], g["scenario"], g["structure"]]),
                    "method": key, "subject": subject, "target": g["scenario"], "count": g["count"],
                    "invariant": g["invariant"], "structure": g["structure"],
                    "what": f"{g['invariant']} ({g['structure']}): {g['examples'][0]['detail']}"[:300],
                    "seed": g["examples"][0]["seed"], "artifact": g.get("reproducer"), "kind": "pctrace"})
        pos["next_epoch"] = min(nexts) if nexts else first
        # a workload the subject cannot run is done (said in the report), not retried every slice
        pos["done"] = complete or bool(pos.get("left_out"))
        if pos.get("left_out"):
            m.setdefault("left_out", {})[x] = pos["left_out"]
        t["workload_seed"] = seed
        t["epochs_done"], t["epochs_total"] = pos["next_epoch"], pos.get("epochs")
        t["complete"] = complete
        camp.sample(method=key, target="all", states=totals["states"], violations=totals["violations"])
        return all(os.path.exists(j) for j in outs)

    m["budget_s"] += budget
    m["seeds"] += slices.run_slices(camp, part, budget, run_slice)
    m["seconds"] += time.time() - t_start
    m["states"] = m.get("states", 0) + totals["states"]
    m["violations"] = m.get("violations", 0) + totals["violations"]
    # The planned work: every scenario of the workload seed the phase
    # began with, under every model.
    m["coverage"] = slices.seed_coverage(camp, part, "epochs", start_seed, m["seeds"], "next_epoch", "epochs")
    camp.progress(f"{key}: {m['coverage']['text']}", force=True)
