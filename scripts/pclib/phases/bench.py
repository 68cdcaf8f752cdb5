"""The bench step of a campaign: the speed of the build it runs, measured by
`powercut bench`'s own functions (bench.measure) and kept with its report.

What runs: the cheap sections with --quick -- `sweep` (the default
preset's pcsweep, 20,000 crash states of every scenario under every model:
states/s) and, when the campaign fuzzes, `fuzz` (each of the campaign's
fuzz targets, one process each, its [bench] quick_runs with -seed=1, with
sanitizers (preset fuzz) and without (fuzz-nosan): execs/s wall and per
CPU second).  About 5 to 15 s on two cores.

Why before the clock, like the build: the figures describe the build, not
the campaign's work; measured while the phases run they would measure the
phases' load as well (the phases use every job); and short campaigns (the
4-minute `powercut run`, CI's) keep their whole budget.  Its time is
reported apart (summary.json campaign.bench_s, beside build_s).

Output: DIR/bench.json (bench's JSON, with its "build" record: commit,
dirty, presets, compiler, time) and bench-fuzz/ (the libFuzzer logs), the
same figures in summary.json under "bench" (plus "file": "bench.json"), and
index.html's "Build and speed" section.  `campaign --no-bench` skips it:
"bench" is then {"skipped": "--no-bench"} and the report says so.  A bench
that fails (a build or a tool) does not stop the campaign: "skipped" says
why and a note repeats it; a fuzz run that stops before its runs (a crash:
a finding of the bench's own fuzzing) is a note too, its figures missing.
"""
import os
import time

from .. import bench
from ..common import InfraError, UsageError, say

SECTIONS = ("sweep", "fuzz")
PRESET = "default"  # the build the sweep and diff phases run


def sections(camp):
    """The bench sections of a campaign: sweep, and fuzz when it fuzzes."""
    return [s for s in SECTIONS if s != "fuzz" or camp.split["fuzz"]]


def run(camp):
    """Measures and sets camp.bench (the figures or {"skipped": why}) and
    camp.bench_seconds."""
    camp.bench_seconds = None
    if camp.args.no_bench:
        camp.bench = {"skipped": "--no-bench"}
        return
    secs = sections(camp)
    out = os.path.join(camp.out, "bench.json")
    say(f"campaign: measuring the build before the clock starts (powercut bench --only {','.join(secs)} --quick "
        f"--json {out})")
    t = time.time()
    try:
        res = bench.measure(secs, PRESET, True, out, targets=list(camp.targets) if "fuzz" in secs else None,
                            quiet=True)
    except (InfraError, UsageError) as e:
        camp.bench = {"skipped": f"failed: {e}"}
        camp.notes.append(f"the build's speed was not measured: {e}")
        return
    finally:
        camp.bench_seconds = round(time.time() - t, 1)
    res["file"] = "bench.json"
    if "fuzz" not in secs:
        res["fuzz_skipped"] = "the campaign does not fuzz (--split gives fuzz no share)"
    for x in (res.get("fuzz") or {}).get("stopped", []):
        camp.notes.append(f"bench: a fuzz run stopped before its runs (a finding of the bench's own fuzzing; its "
                          f"figures are missing): {x}")
    camp.bench = res
