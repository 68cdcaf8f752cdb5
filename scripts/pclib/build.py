"""`powercut build [--preset P]`: configure and build a CMake preset.

Presets (CMakePresets.json): default (release + debug info, -Werror), asan
(ASan + UBSan, no recovery).  Later presets: fuzz, afl, coverage, fiu.
Building is incremental; configure runs only when the tree has no cache.
"""
import json
import os

from .common import ROOT, UsageError, build_dir, run


def preset_names():
    with open(os.path.join(ROOT, "CMakePresets.json")) as f:
        return {p["name"] for p in json.load(f).get("configurePresets", []) if not p.get("hidden")}


def ensure_built(preset="default", targets=None, quiet=False):
    """Configures (once) and builds a preset.  A name that is not a preset
    but an already configured tree under build/ is built as it is (handy for
    developer trees such as build/dev)."""
    bdir = build_dir(preset)
    is_preset = preset in preset_names()
    if not is_preset and not os.path.exists(os.path.join(bdir, "CMakeCache.txt")):
        raise UsageError(f"unknown preset '{preset}' (presets: {', '.join(sorted(preset_names()))})")
    cache = os.path.join(bdir, "CMakeCache.txt")
    # A preset configures once; again when CMakePresets.json changed since
    # (its cache variables, e.g. POWERCUT_FIU, would otherwise stay stale).
    if is_preset and (not os.path.exists(cache) or
                      os.path.getmtime(os.path.join(ROOT, "CMakePresets.json")) > os.path.getmtime(cache)):
        run(["cmake", "--preset", preset], cwd=ROOT, quiet=quiet,
            capture=quiet)
    cmd = ["cmake", "--build", "--preset", preset] if is_preset else ["cmake", "--build", bdir]
    if targets:
        cmd += ["--target"] + list(targets)
    run(cmd, cwd=ROOT, quiet=quiet, capture=quiet)
    return bdir


def add_parser(sub):
    p = sub.add_parser("build", help="configure and build a CMake preset", description=__doc__)
    p.add_argument("--preset", default="default", help="CMake preset (default: %(default)s)")
    p.add_argument("--target", action="append", help="build only these targets")
    p.set_defaults(func=cmd_build)


def cmd_build(args):
    from . import setup
    setup.ensure(quiet=True)
    ensure_built(args.preset, args.target)
    return 0
