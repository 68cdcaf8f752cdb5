"""`powercut bench`: run the benchmark programs and record their figures.

Builds the default preset, runs vhdx_bench (engine: CRC-32C per
implementation, replay of a full 1 MiB log, open of 1 GiB / 1 TiB images)
and, when built, the harness benchmark (crash states per second), then
writes everything to a JSON file (default reports/runs/bench-<time>/bench.json).
"""
import json
import os
import tempfile
import time

from . import build, setup
from .common import BUILD, ROOT, run, say, tool, write_json


def add_parser(sub):
    p = sub.add_parser("bench", help="run the benchmarks and record figures", description=__doc__)
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--quick", action="store_true", help="short runs (for a smoke test)")
    p.add_argument("--dir", help="directory for benchmark images (default: under build/)")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args):
    setup.ensure(quiet=True)
    build.ensure_built("default")
    out = args.json or os.path.join(ROOT, "reports", "runs", time.strftime("bench-%Y%m%d-%H%M%S"), "bench.json")
    workdir = args.dir or os.path.join(BUILD, "bench-tmp")
    os.makedirs(workdir, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory() as d:
        j = os.path.join(d, "engine.json")
        cmd = [tool("default", "vhdx_bench"), "--dir", workdir, "--json", j]
        if args.quick:
            cmd.append("--quick")
        run(cmd)
        with open(j) as f:
            results["engine"] = json.load(f)
        hb = tool("default", "harness_bench")
        if os.path.exists(hb):
            j = os.path.join(d, "harness.json")
            cmd = [hb, "--json", j] + (["--quick"] if args.quick else [])
            run(cmd)
            with open(j) as f:
                results["harness"] = json.load(f)
    write_json(out, results)
    say(f"bench: figures written to {out}")
    return 0
