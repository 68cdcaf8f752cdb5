"""`powercut build [--preset P]`: configure and build a CMake preset.

Presets (CMakePresets.json): default (release + debug info, -Werror), asan
(ASan + UBSan, no recovery), fuzz, afl, afl-cmplog, coverage, fiu, fiu-asan.
Building is incremental.  A tree is configured when it has no cache, when
CMakePresets.json changed since, and -- after deleting it -- when it cannot
be trusted: its cache was made for another source directory (a copied
checkout: CMake would go on compiling the original's files), or after a
build one of this checkout's sources is still newer than its object file
(the build does not see these sources).  Every command that builds goes
through ensure_built(), so all of them get these checks.
"""
import glob
import json
import os
import shutil
import time

from .common import ROOT, InfraError, UsageError, run, say


def preset_names(root=ROOT):
    with open(os.path.join(root, "CMakePresets.json")) as f:
        return {p["name"] for p in json.load(f).get("configurePresets", []) if not p.get("hidden")}


def cache_values(bdir, keys=("CMAKE_HOME_DIRECTORY", "CMAKE_CACHEFILE_DIR")):
    """{name: value} of the CMakeCache.txt entries named in keys (by
    default the two the trust checks read; {} without a cache)."""
    out = {}
    try:
        with open(os.path.join(bdir, "CMakeCache.txt"), errors="replace") as f:
            for line in f:
                name, sep, value = line.rstrip("\n").partition("=")
                key = name.split(":", 1)[0]
                if sep and key in keys:
                    out[key] = value
    except OSError:
        pass
    return out


def _same(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def foreign_cache(bdir, root=ROOT):
    """Why the cache in bdir does not belong to this checkout (None when it
    does, or when there is no cache)."""
    v = cache_values(bdir)
    home, cdir = v.get("CMAKE_HOME_DIRECTORY"), v.get("CMAKE_CACHEFILE_DIR")
    if home and not _same(home, root):
        return f"its CMake cache was made for the sources in {home}, not {root}"
    if cdir and not _same(cdir, bdir):
        return f"its CMake cache was made for the build directory {cdir}, not {bdir}"
    return None


def stale_objects(bdir, root=ROOT, before=None, targets=None):
    """Sources of this checkout newer than their object files in bdir
    ([(source, object)]).  Objects live at <dir>/CMakeFiles/<target>.dir/
    <path>.o for the source <root>/<dir>/<path>; sources changed after
    `before` (a build start time) are not counted: they may have been saved
    while the build ran.  targets: only these targets' own objects (a
    partial build leaves the others alone)."""
    out = []
    pats = [os.path.join(bdir, "**", "CMakeFiles", d, "**", "*.o")
            for d in (["*.dir"] if not targets else [t + ".dir" for t in targets])]
    objs = sorted({o for pat in pats for o in glob.glob(pat, recursive=True)})
    for obj in objs:
        rel = os.sep + os.path.relpath(obj, bdir)
        head, _, tail = rel.partition(os.sep + "CMakeFiles" + os.sep)
        head = head.lstrip(os.sep)
        if not tail:
            continue
        src_rel = tail.split(os.sep, 1)[1][:-2] if os.sep in tail else ""
        if not src_rel.endswith((".c", ".cc", ".cpp")):
            continue
        src = os.path.normpath(os.path.join(root, head, src_rel.replace("__", "..")))
        try:
            s, o = os.path.getmtime(src), os.path.getmtime(obj)
        except OSError:
            continue
        if s > o + 1 and (before is None or s < before):
            out.append((src, obj))
    return out


def preset_targets(preset, root=ROOT):
    """The targets a build preset builds (None: all of them)."""
    try:
        with open(os.path.join(root, "CMakePresets.json")) as f:
            for b in json.load(f).get("buildPresets", []):
                if b.get("name") == preset:
                    return b.get("targets")
    except (OSError, ValueError):
        pass
    return None


def _configure(preset, bdir, root, quiet):
    run(["cmake", "--preset", preset], cwd=root, quiet=quiet, capture=quiet)


def ensure_built(preset="default", targets=None, quiet=False, root=ROOT):
    """Configures (when needed, see the module docstring) and builds a
    preset.  A name that is not a preset but an already configured tree
    under build/ is built as it is (handy for developer trees such as
    build/dev).  Returns the build directory."""
    bdir = os.path.join(root, "build", preset)
    cache = os.path.join(bdir, "CMakeCache.txt")
    is_preset = preset in preset_names(root)
    if not is_preset and not os.path.exists(cache):
        raise UsageError(f"unknown preset '{preset}' (presets: {', '.join(sorted(preset_names(root)))})")
    src_root = root
    if is_preset:
        why = foreign_cache(bdir, root) if os.path.exists(cache) else None
        if why:
            say(f"build: {bdir}: {why}: deleting it and configuring again")
            shutil.rmtree(bdir)
    else:
        # A developer or scratch tree (build/dev, build/mutants/<name>/build)
        # is built from the sources it was configured for; they must exist.
        src_root = cache_values(bdir).get("CMAKE_HOME_DIRECTORY") or root
        if not os.path.isdir(src_root):
            raise InfraError(f"{bdir} cannot be used: its CMake cache names the sources in {src_root}, which are "
                             f"gone; delete it and configure it again")
    # A preset configures once; again when CMakePresets.json changed since
    # (its cache variables, e.g. POWERCUT_FIU, would otherwise stay stale).
    if is_preset and (not os.path.exists(cache) or
                      os.path.getmtime(os.path.join(root, "CMakePresets.json")) > os.path.getmtime(cache)):
        _configure(preset, bdir, root, quiet)
    cmd = ["cmake", "--build", "--preset", preset] if is_preset else ["cmake", "--build", bdir]
    if targets:
        cmd += ["--target"] + list(targets)
    started = time.time()
    run(cmd, cwd=root, quiet=quiet, capture=quiet)
    # Only the targets this build built can be judged (a build preset may
    # leave others out: their objects stay older than their sources).
    built = targets or (preset_targets(preset, root) if is_preset else None)
    stale = stale_objects(bdir, src_root, started, built)
    if stale:
        src, obj = stale[0]
        why = f"{os.path.relpath(src, src_root)} is newer than {os.path.relpath(obj, bdir)} after the build " \
              f"({len(stale)} such source(s)): the build does not see this checkout's sources"
        if not is_preset:
            raise InfraError(f"{bdir} cannot be used: {why}; delete it and configure it again")
        say(f"build: {bdir}: {why}: deleting it and configuring again")
        shutil.rmtree(bdir)
        _configure(preset, bdir, root, quiet)
        started = time.time()
        run(cmd, cwd=root, quiet=quiet, capture=quiet)
        stale = stale_objects(bdir, root, started, built)
        if stale:
            raise InfraError(f"{bdir}: {os.path.relpath(stale[0][0], root)} is still newer than its object after a "
                             f"fresh build (is the clock of this file system in the future?)")
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
