"""Sharing a phase's time among the scenarios of a workload seed (the
sweep and fault phases), and the coverage of such a phase."""
import time

SLICE_MIN = 2.0  # the least time a scenario is given in the sweep and fault phases


def share_text(done, planned, unit):
    """'12 of 40 epochs (30%)'."""
    if planned is None:
        return f"{done:,} {unit} (of ? planned)"
    pct = 100.0 * done / planned if planned else 100.0
    return f"{done:,} of {planned:,} {unit} ({pct:.0f}%)"


def per_subject(camp, budget, run_subject):
    """Shares a phase's budget among the campaign's subjects (--subjects),
    what one leaves going to the next: run_subject(camp, seconds, name)."""
    t0 = time.time()
    for i, subj in enumerate(camp.subjects):
        left = budget - (time.time() - t0)
        run_subject(camp, max(0.0, left / (len(camp.subjects) - i)), subj)


def add_known(m, summary):
    """Adds a pcsweep or pcfaults summary's known departures (the subject's
    filed findings, set apart from the violations) to method m: "known", the
    total, and "known_departures", per "invariant: finding"."""
    for kd in summary.get("known_departures", []):
        m["known"] = m.get("known", 0) + kd.get("count", 0)
        kk = f"{kd.get('invariant')}: {kd.get('finding')}"
        m["known_departures"][kk] = m["known_departures"].get(kk, 0) + kd.get("count", 0)


def run_slices(camp, part, budget, run_slice):
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
    while not camp.interrupts:
        left = deadline - time.time()
        seed = part["workload_seed"]
        cur = part.get("cursor", 0) % len(camp.scenarios)
        order = camp.scenarios[cur:] + camp.scenarios[:cur]
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
        part["cursor"] = (camp.scenarios.index(x) + 1) % len(camp.scenarios)
        secs = max(SLICE_MIN, left / len(pending))
        if not run_slice(seed, x, min(secs, left)):
            break  # the tool failed (see the notes): no point in going on
    return finished


def seed_coverage(camp, part, unit, start_seed, finished, done_key, total_key):
    """Coverage of a phase whose planned work is one workload seed: all
    scenarios.  Complete when the seed it began with was finished."""
    if start_seed in finished:
        later = part["workload_seed"]
        text = f"workload seed {start_seed} finished: every scenario" + \
            (f" (and seeds up to {later - 1})" if later - 1 > start_seed else "") + \
            f"; workload seed {later} begun"
        return {"complete": True, "done": len(camp.scenarios), "planned": len(camp.scenarios),
                "unit": "scenarios", "text": text, "workload_seed": start_seed}
    sc = part["scenarios"]
    done = sum(1 for s in camp.scenarios if sc.get(s, {}).get("done"))
    started = [s for s in camp.scenarios if s in sc]
    a = sum(sc[s].get(done_key, 0) for s in started if sc[s].get(total_key))
    b = sum(sc[s][total_key] for s in started if sc[s].get(total_key))
    per = ", ".join(f"{s} {'done' if sc[s].get('done') else share_text(sc[s].get(done_key, 0), sc[s].get(total_key), unit)}"
                    for s in started)
    text = (f"workload seed {part['workload_seed']} not finished: {done} of {len(camp.scenarios)} scenarios "
            f"complete, {len(camp.scenarios) - len(started)} not started" +
            (f"; {share_text(a, b, unit)} of the started ones" if b else "") + (f" ({per})" if per else ""))
    return {"complete": False, "done": done, "planned": len(camp.scenarios), "unit": "scenarios",
            "fraction": round(a / b, 4) if b else 0.0, "text": text, "workload_seed": part["workload_seed"]}
