"""`powercut run`: the main job, with built-in defaults -- a short campaign.

The same as `powercut campaign --time 4m`: crash-point sweeps of every
scenario under every crash model, fault sweeps, libFuzzer and AFL++ on every
fuzz target, triage of anything found (stored under corpus/regressions/),
engine coverage from the corpora, and the report (summary.json, junit.xml,
index.html, bench.json: the speed of the build it ran).  Builds what it
needs first and measures it (not counted in the time; --no-bench skips the
measurement).  The
last line printed is the path of the report.  See `powercut campaign
--help` for the phases, resuming and Ctrl-C.
"""
import argparse

from . import campaign


def add_parser(sub):
    p = sub.add_parser("run", help="the main job: a short campaign (4 minutes; --time to change), then the report",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    campaign.add_campaign_args(p, "4m")
    p.set_defaults(func=campaign.cmd_campaign)
