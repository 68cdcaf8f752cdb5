"""The fault phase: pcfaults' sweep of a workload seed (resumed at the plan
each scenario stopped at), then random fault plans, one campaign seed per
job, for the rest of the phase.  With campaign --subjects the phase's time
is shared among the subjects (methods "faults" / "faults:qemu"); random
plans run on libvhdx only (`pcfaults campaign`)."""
import os
import time

from .. import triage
from ..common import tool
from . import slices
from .slices import SLICE_MIN


def run(camp, budget):
    slices.per_subject(camp, budget, run_subject)


def run_subject(camp, budget, subject):
    from ..campaign import part_key
    key = part_key("faults", subject)
    pcfaults = tool("fiu", "pcfaults")
    d = os.path.join(camp.out, key.replace(":", "-"))
    os.makedirs(d, exist_ok=True)
    m = camp.methods.setdefault(key, {"seconds": 0.0, "budget_s": 0.0, "targets": {}, "seeds": [],
                                      "campaign_seeds": [], "subject": subject, "known": 0,
                                      "known_departures": {}})
    part = camp.state.setdefault(key, {"workload_seed": 1, "scenarios": {}})
    subj_args = [] if subject == "libvhdx" else ["--subject", subject]
    start_seed = part["workload_seed"]
    t_start = time.time()
    deadline = t_start + budget
    totals = {"faults": 0, "violations": 0}

    def collect(s, where):
        totals["faults"] += s.get("injected", 0)
        totals["violations"] += s.get("violations", 0)
        slices.add_known(m, s)
        for kind, v in (s.get("kinds") or {}).items():
            t = m["targets"].setdefault(kind, {"states": 0, "execs": 0, "failures": 0, "seconds": 0.0})
            t["states"] += v.get("states", 0)
            t["execs"] += v.get("injected", 0)
            t["failures"] += v.get("violations", 0)
            t["seconds"] += v.get("seconds", 0)
        for g in s.get("signatures", []):
            ex = g["examples"][0]
            camp.raw_failures.append({
                "state": triage.violation_state("faults", g["invariant"],
                                                [f"{g['phase']}/{g['kind']}", g["scenario"], g["structure"]]),
                "method": key, "subject": subject, "target": g["kind"], "count": g["count"],
                "invariant": g["invariant"], "structure": g["structure"],
                "what": f"{g['invariant']} ({ex['plan']}, {g['phase']}): {ex['detail']}"[:300],
                "seed": ex["seed"], "artifact": g.get("reproducer"), "kind": "fault"})

    def run_slice(seed, x, secs):
        pos = part["scenarios"].setdefault(x, {"next_plan": 0, "done": False})
        first = pos["next_plan"]
        procs, outs = [], []
        for k in range(camp.jobs):
            j = os.path.join(d, f"sweep-seed{seed}-{x}-p{first}-shard{k}.json")
            outs.append(j)
            # The first slice of a scenario also counts its plans when it
            # stops (a few tenths of a second): it stops a little earlier.
            run_for = secs if pos.get("plans") is not None else max(1.0, secs * 0.8)
            cmd = [pcfaults, "sweep", "--quiet"] + subj_args + ["--scenario", x, "--seed", seed, "--shard", camp.job_shard(k),
                   "--first-plan", first, "--max-seconds", f"{run_for:.1f}", "--json", j,
                   "--repro-dir", os.path.join(d, "repro")]
            if pos.get("plans") is not None:
                cmd.append("--no-count")  # known from an earlier slice
            procs.append(camp.start(cmd, j[:-5] + ".log"))
        camp.wait(procs, time.time() + secs, lambda: camp.progress(
            f"{key}: workload seed {seed} {x} from plan {first}: {totals['faults']:,} faults injected, "
            f"{totals['violations']} violations so far"))
        nexts, complete = [], True
        for j, p in zip(outs, procs):
            s = camp.read_json(j, f"pcfaults ({x}, workload seed {seed})") if os.path.exists(j) else None
            if s is None:
                complete = False
                nexts.append(first)
                if not os.path.exists(j):
                    camp.notes.append(f"pcfaults {x} workload seed {seed} wrote no summary (status "
                                      f"{p.returncode}); see {j[:-5]}.log")
                continue
            collect(s, x)
            complete &= bool(s.get("complete"))
            nexts.append(s.get("next_plan", first))
            if s.get("plans_total") is not None:
                pos["plans"] = s["plans_total"]
        pos["next_plan"] = min(nexts) if nexts else first
        pos["done"] = complete
        camp.sample(method=key, target="all", execs=totals["faults"], violations=totals["violations"])
        return all(os.path.exists(j) for j in outs)

    m["budget_s"] += budget
    m["seeds"] += slices.run_slices(camp, part, budget, run_slice)
    # A finished seed leaves time for random plans, one campaign seed per job.
    while subject == "libvhdx" and not camp.interrupts and deadline - time.time() > SLICE_MIN and m["seeds"]:
        rem = deadline - time.time()
        cs = camp.state["fault_campaign_seed"]
        procs, outs = [], []
        base = cs + camp.shard_k * camp.jobs  # campaign --shard K/N: seeds of its own
        for k in range(camp.jobs):
            j = os.path.join(d, f"campaign-{base + k}.json")
            outs.append(j)
            procs.append(camp.start([pcfaults, "campaign", "--quiet", "--campaign-seed", base + k, "--runs", 100000,
                                     "--max-seconds", f"{min(rem, 60):.1f}", "--json", j,
                                     "--repro-dir", os.path.join(d, "repro")], j[:-5] + ".log"))
        camp.wait(procs, time.time() + min(rem, 60), lambda: camp.progress(
            f"faults: campaign seeds {base}..{base + camp.jobs - 1}: {totals['faults']:,} faults injected"))
        for j in outs:
            s = camp.read_json(j, "pcfaults campaign") if os.path.exists(j) else None
            if s:
                collect(s, "campaign")
        m["campaign_seeds"] += list(range(base, base + camp.jobs))
        camp.state["fault_campaign_seed"] = cs + camp.jobs * camp.shard_n
        camp.sample(method="faults", target="all", execs=totals["faults"], violations=totals["violations"])
    m["seconds"] += time.time() - t_start
    m["faults"] = m.get("faults", 0) + totals["faults"]
    m["violations"] = m.get("violations", 0) + totals["violations"]
    m["coverage"] = slices.seed_coverage(camp, part, "plans", start_seed, m["seeds"], "next_plan", "plans")
    camp.progress(f"{key}: {m['coverage']['text']}", force=True)
