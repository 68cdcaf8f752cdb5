"""`powercut mutants`: planted bugs that prove the harness finds bugs.

A mutant is a patch file (unified diff, paths a/engine/... b/engine/...)
with a JSON sidecar {name, description, category, expose, sweep: [pcsweep
args], expect: [invariants], sweep_kills}.  The engine source is never
modified: each mutant is applied to a scratch copy of engine/ and harness/
under build/mutants/<name>/, built with its own small CMake project, and
swept with the sidecar's arguments.  A mutant is *killed* when the sweep
exits 1 and its first violation names one of the expected invariants; a
sweep that exits 0 means the harness missed the bug.

What the sidecar says about the sweep (docs/mutants.md):
  "sweep_kills": true (the default)   the sweep must kill it;
  "why_the_sweep_cannot_kill_it"      equivalent for this writer's crash
                                      states, left to other methods: the
                                      sweep must miss it;
  "sweep_blind"                       a blind spot of today's sweep (issue
                                      10): checked only with --all, where a
                                      kill is good news, not a failure;
  "equivalent"                        no method can tell it apart from the
                                      correct engine: the sweep must miss it
                                      (`evaluate` checks every method).
By default (and in CTest) only the first, second and fourth kinds run.
The project's own mutants live in harness/mutants/; a user's directory of
patches works the same way (the sidecar is optional: without it the mutant
is swept with the default arguments and any violation kills it).
"""
import hashlib
import json
import os
import shutil
import time

from .common import BUILD, ROOT, InfraError, UsageError, run, say

MUTANT_DIR = os.path.join(ROOT, "harness", "mutants")
DEFAULT_SWEEP = ["--scenario", "all", "--models", "power"]

SCRATCH_CMAKE = """\
# Scratch build of a mutant: the patched engine and harness only.
cmake_minimum_required(VERSION 3.25)
project(powercut_mutant C)
set(CMAKE_C_STANDARD 11)
set(CMAKE_C_STANDARD_REQUIRED ON)
find_package(Threads REQUIRED)
add_compile_definitions(VHDX_BUILD_FLAVOR="mutant" VHDX_VERSION_STRING="mutant")
add_subdirectory(engine)
add_subdirectory(harness)
"""


def list_mutants(directory=MUTANT_DIR):
    """Mutants in a directory: [{name, patch, description, category, expose,
    sweep, expect, sweep_kills, ...the rest of the sidecar}]."""
    if not os.path.isdir(directory):
        raise UsageError(f"{directory}: no such directory of mutants")
    out = []
    for fn in sorted(os.listdir(directory)):
        if not fn.endswith(".patch"):
            continue
        name = fn[:-len(".patch")]
        meta = {"name": name, "description": "", "category": None, "expose": "", "sweep": DEFAULT_SWEEP,
                "expect": [], "sweep_kills": True}
        side = os.path.join(directory, name + ".json")
        if os.path.exists(side):
            try:
                with open(side) as f:
                    meta.update(json.load(f))
            except (OSError, ValueError) as e:
                raise UsageError(f"{side}: unreadable mutant description: {e}") from e
        if meta.get("equivalent") or meta.get("sweep_blind"):
            meta["sweep_kills"] = False
        meta["patch"] = os.path.join(directory, fn)
        out.append(meta)
    return out


def _tree_hash(paths):
    h = hashlib.sha256()
    for base in paths:
        for dirpath, dirnames, filenames in sorted(os.walk(base)):
            dirnames.sort()
            if "mutants" in dirpath.split(os.sep):
                continue
            for fn in sorted(filenames):
                p = os.path.join(dirpath, fn)
                h.update(os.path.relpath(p, ROOT).encode())
                with open(p, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()[:16]


def build_mutant(m, quiet=True):
    """Builds the mutant; returns the path of its pcsweep.  Cached by the
    hash of the engine/harness sources and of the patch."""
    with open(m["patch"], "rb") as f:
        patch_hash = hashlib.sha256(f.read()).hexdigest()[:12]
    key = _tree_hash([os.path.join(ROOT, "engine"), os.path.join(ROOT, "harness")]) + "-" + patch_hash
    work = os.path.join(BUILD, "mutants", m["name"])
    stamp = os.path.join(work, "stamp")
    pcsweep = os.path.join(work, "build", "harness", "pcsweep")
    if os.path.exists(stamp) and open(stamp).read() == key and os.path.exists(pcsweep):
        return pcsweep
    shutil.rmtree(work, ignore_errors=True)
    src = os.path.join(work, "src")
    os.makedirs(src)
    for sub in ("engine", "harness"):
        shutil.copytree(os.path.join(ROOT, sub), os.path.join(src, sub),
                        ignore=shutil.ignore_patterns("mutants"))
    with open(os.path.join(src, "CMakeLists.txt"), "w") as f:
        f.write(SCRATCH_CMAKE)
    cp = run(["patch", "-p1", "--batch", "--silent", "-d", src, "-i", m["patch"]], check=False, capture=True,
             quiet=quiet)
    if cp.returncode != 0:
        raise InfraError(f"mutant {m['name']}: the patch no longer applies to engine/ "
                         f"({cp.stdout.decode(errors='replace').strip()[:300]}); regenerate it")
    bdir = os.path.join(work, "build")
    run(["cmake", "-S", src, "-B", bdir, "-G", "Ninja", "-DCMAKE_C_COMPILER=clang-14",
         "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_C_FLAGS=-g1"], capture=True, quiet=quiet)
    run(["cmake", "--build", bdir, "--target", "pcsweep"], capture=True, quiet=quiet)
    with open(stamp, "w") as f:
        f.write(key)
    return pcsweep


def check_mutant(m, seconds=None, quiet=True, extra=()):
    """Sweeps one mutant.  Returns {name, killed, invariant, expected_ok,
    seconds, states, detail, json}."""
    pcsweep = build_mutant(m, quiet=quiet)
    work = os.path.dirname(os.path.dirname(pcsweep)).rsplit(os.sep, 1)[0]
    out = os.path.join(work, "sweep.json")
    cmd = [pcsweep, "sweep", "--quiet", "--max-violations", "1", "--json", out] + list(m["sweep"]) + list(extra)
    if seconds:
        cmd += ["--max-seconds", str(int(seconds))]
    if os.path.exists(out):
        os.remove(out)
    t0 = time.time()
    cp = run(cmd, check=False, capture=True, quiet=quiet)
    dt = time.time() - t0
    if cp.returncode not in (0, 1) or not os.path.exists(out):
        raise InfraError(f"mutant {m['name']}: sweep failed with status {cp.returncode}: "
                         f"{cp.stderr.decode(errors='replace').strip()[-500:]}")
    with open(out) as f:
        summary = json.load(f)
    failures = summary.get("failures", [])
    inv = failures[0]["invariant"] if failures else ""
    killed = cp.returncode == 1 and bool(failures)
    return {
        "name": m["name"],
        "killed": killed,
        "invariant": inv,
        "expected_ok": killed and (not m["expect"] or inv in m["expect"]),
        "seconds": round(dt, 2),
        "states": summary.get("states", 0),
        "detail": failures[0]["detail"] if failures else "",
        "choice": failures[0]["choice"] if failures else "",
    }


def add_parser(sub):
    p = sub.add_parser("mutants", help="planted bugs: list them, or prove the sweep catches them",
                       description=__doc__)
    p.add_argument("names", nargs="*", help="mutants to check (default: all)")
    p.add_argument("--dir", default=MUTANT_DIR, help="directory of .patch files (default: harness/mutants)")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--all", action="store_true",
                   help="also sweep the mutants declared out of the sweep's reach (expect them to survive)")
    p.add_argument("--max-seconds", type=int, default=None, help="time budget per mutant sweep")
    p.add_argument("--json", help="write the results here")
    p.set_defaults(func=cmd_mutants)


def expectation(m):
    """What `mutants` expects of the sweep: "kill", "miss" (equivalent for
    the sweep, or for every method) or "any" (a declared blind spot)."""
    if m.get("sweep_blind") and not m.get("equivalent"):
        return "any"
    return "kill" if m["sweep_kills"] else "miss"


def verdict(m, r):
    """(ok, text) for the sweep result r of mutant m."""
    exp = expectation(m)
    if exp == "any":
        return True, (f"killed [{r['invariant']}]: the blind spot is closed, make it sweep_kills in its sidecar"
                      if r["killed"] else "survived (a declared blind spot of today's sweep)")
    if exp == "miss":
        kind = "equivalent" if m.get("equivalent") else "equivalent for this writer"
        if r["killed"]:
            return False, f"killed although declared {kind} [{r['invariant']}]: the reason in its sidecar is wrong"
        return True, f"survived, as declared ({kind})"
    if not r["killed"]:
        return False, "SURVIVED"
    if not r["expected_ok"]:
        return False, f"killed by an unexpected invariant ({r['invariant']})"
    return True, "killed"


def cmd_mutants(args):
    ms = list_mutants(args.dir)
    if args.names:
        known = {m["name"]: m for m in ms}
        missing = [n for n in args.names if n not in known]
        if missing:
            raise UsageError(f"unknown mutant(s): {', '.join(missing)} (see --list)")
        ms = [known[n] for n in args.names]
    elif not args.all and not args.list:
        ms = [m for m in ms if expectation(m) == "kill"]
    if args.list:
        for m in ms:
            tag = (" [equivalent: see its .json]" if m.get("equivalent") else
                   " [a blind spot of today's sweep]" if m.get("sweep_blind") else
                   " [not killable by the sweep: see its .json]" if not m["sweep_kills"] else "")
            cat = f"({m['category']}) " if m.get("category") else ""
            print(f"{m['name']:32s} {cat}{m['description']}{tag}")
        return 0
    from . import setup
    setup.ensure(quiet=True)
    results = []
    bad = 0
    for m in ms:
        r = check_mutant(m, args.max_seconds, quiet=False)
        ok, text = verdict(m, r)
        r["expected_ok"] = ok
        results.append(r)
        say(f"mutant {m['name']}: {text} after {r['states']} states, {r['seconds']} s"
            + (f" [{r['invariant']}] {r['choice']}" if r["killed"] else ""))
        bad |= not ok
    if args.json:
        from .common import write_json
        write_json(args.json, {"mutants": results,
                               "killed": sum(r["killed"] for r in results), "total": len(results)})
    return 1 if bad else 0
