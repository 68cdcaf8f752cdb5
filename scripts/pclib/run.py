"""`powercut run`: the main job, with built-in defaults.

A crash-point sweep of every scenario (fill, overwrite, discard, batch,
reopen, mixed, wide) under every crash model, seed 1, judged by the oracle,
with a summary table at the end and the run directory (reports/runs/<id>/:
sweep.json, junit.xml, reproducers) printed last.
"""
import argparse

from . import sweep


def add_parser(sub):
    p = sub.add_parser("run", help="the main job: sweep every scenario under every crash model",
                       description=__doc__)
    p.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    p.add_argument("--max-seconds", type=int, help="time budget")
    p.add_argument("--out", help="run directory")
    p.set_defaults(func=cmd_run)


def cmd_run(args):
    a = argparse.Namespace(scenario="all", seed=args.seed, seeds=1, models="all", shard=None, max_states=None,
                           max_seconds=args.max_seconds, json=None, junit=None, out=args.out, trace=None,
                           checker="inprocess", preset="default", extra=[])
    status, _, out = sweep.run_sweep(a)
    print(f"report: {out}/sweep.json")
    return status
