"""`powercut test`: the project's test suite (what CI runs).

Installs missing packages, builds the default and asan presets and runs
CTest in both (C unit tests, the clean-engine sweep, planted bugs, corpus
and regression replays), builds the fiu and fiu-asan presets (the engine
with libfiu fault points) and runs the fault tests there (label "faults"),
then pytest over scripts/tests (driver tests, QEMU interoperability).  Exit
status 0 when everything passed, 1 when a test failed, 2 when something
could not run.
"""
import os
import time

from . import build, setup
from .common import PYTHON, ROOT, run, say


def add_parser(sub):
    p = sub.add_parser("test", help="build default + asan, run CTest and pytest", description=__doc__)
    p.add_argument("--preset", action="append",
                   help="only these presets (default: default and asan, then fiu and fiu-asan for label faults)")
    p.add_argument("--no-pytest", action="store_true", help="skip the Python tests")
    p.add_argument("-L", "--label", help="only CTest tests with this label (e.g. unit)")
    p.add_argument("-k", dest="pytest_k", help="pytest -k expression")
    p.set_defaults(func=cmd_test)


def cmd_test(args):
    setup.ensure()
    # preset -> label it runs (None: everything)
    plan = {p: None for p in args.preset} if args.preset else {
        "default": None, "asan": None, "fiu": "faults", "fiu-asan": "faults"}
    results = []
    t0 = time.time()
    for preset in plan:
        build.ensure_built(preset)
    jobs = str(max(1, os.cpu_count() or 1))
    for preset, label in plan.items():
        cmd = ["ctest", "--preset", preset, "-j", jobs]
        if args.label or label:
            cmd += ["-L", args.label or label]
        cp = run(cmd, cwd=ROOT, check=False)
        results.append((f"ctest {preset}", cp.returncode))
    if not args.no_pytest:
        cmd = [PYTHON, "-m", "pytest", "-q", os.path.join(ROOT, "scripts", "tests")]
        if args.pytest_k:
            cmd += ["-k", args.pytest_k]
        cp = run(cmd, cwd=ROOT, check=False, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        results.append(("pytest", cp.returncode))
    say(f"\ntest summary ({time.time() - t0:.0f} s):")
    failed = 0
    for name, rc in results:
        say(f"  {name:16s} {'passed' if rc == 0 else 'FAILED (status %d)' % rc}")
        failed |= rc != 0
    return 1 if failed else 0
