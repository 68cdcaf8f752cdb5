"""The phases of a campaign, one module each (campaign.py runs them in order).

  bench      before the clock: the speed of the build (bench.measure, --quick:
             sweep states/s, fuzz execs/s with and without sanitizers)
  sweep      pcsweep over the scenarios of a workload seed (slices.py shares
             the time among the scenarios not finished)
  faults     pcfaults' sweep of a workload seed, then random fault plans
  fuzz       libFuzzer and AFL++ on every target; the corpus merge
  diff       powercut diff (our engine vs QEMU) over the image corpora
  triage     crash states, grouping, minimization, corpus/regressions/
  coverage   engine coverage from the corpora (llvm-cov)
  report     the summary data, the console table, notes on the budget

Each phase is a function of the campaign (campaign.Campaign: its budget,
jobs, resume state, the tools it runs and what it collects: methods,
notes, raw failures, series).  PHASES lists the timed phases in the order
they run, with the key of their share in --split.
"""
from . import diff, faults, fuzz, sweep

PHASES = [("sweep", sweep.run), ("faults", faults.run), ("fuzz", fuzz.run), ("diff", diff.run)]
