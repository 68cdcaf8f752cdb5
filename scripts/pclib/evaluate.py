"""`powercut evaluate`: mutation testing of the harness itself.

    powercut evaluate [--mutants DIR] [--names A,B] [--budget S] [--methods LIST] [--json PATH]

Each planted bug (a patch file: harness/mutants/*.patch by default, or a
directory of your own) is applied to a scratch copy of the source tree
(build/evaluate/src; the real tree is never modified), the presets the
methods need are built there (incrementally: only the files the patch
touches recompile), and every method gets the same fixed budget to find it:

  sweep      pcsweep, every scenario and crash model, stops at the first
             violation (`--judges oracle` once pcsweep has judges)
  faults     pcfaults' fault sweep, stops at the first violation
  fuzz       every libFuzzer target side by side from the committed seeds
             (-seed=1), stops at the first crash
  reference  `pcsweep sweep --judges reference`: the independent reference
             reader as the only judge of the same crash states
  protocol   `pcsweep protocol --scenario all`: the ordering rules of the log
             proved on every scenario's trace (exit 1 = a rule is broken)
  diff       `powercut diff` (this engine against QEMU) over images written
             by the reference writer (`pcsweep refgen`) and by qemu-img/qemu-io

A method the built tools do not offer yet (no `--judges`, no `protocol` or
`refgen` command, no qemu-img) is reported as skipped, with the reason; it
never counts as a kill or a miss.

First the unpatched tree runs through the same methods: a method that fails
on the clean engine would make its kills meaningless, so evaluate stops
there (exit 2).  The exception is diff, whose peer (QEMU) has bugs of its
own: the disagreements of the clean engine are recorded and a mutant is
killed only by a disagreement the clean engine does not have.

The result is a kill matrix, bug x method, with the time each method took
to detect the bug (wall clock from the start of the method), printed and
written as JSON:

  {"budget_s": S, "methods": [...], "kill_rate": k/n (equivalent mutants left out),
   "by_method": {method: {"killed", "survived", "skipped", "error", "kill_rate", "median_seconds"}},
   "mutants": [{"name", "category", "status": killed|survived|equivalent|equivalent-killed,
                "by": [methods], "seconds": fastest or null,
                "results": {method: {"result": killed|survived|skipped|error, "seconds", "detail"}},
                "times": {method: seconds or null}, "detail": {method: text}}]}

A mutant whose sidecar says {"equivalent": "reason"} is one no method can
tell apart from the correct engine; it is reported as `equivalent`, not as a
survivor, and left out of the kill rate.  When a method kills it anyway the
reason was wrong: its status is `equivalent-killed` and evaluate exits 1.

The scratch build always matches its sources: files are copied by content
(a changed file gets the current time, whatever its mtime in your tree),
each build tree remembers the content hashes of the sources it was built
from and touches every file that differs before building, and a build tree
configured from another source directory (or with other options) is
configured again.

Writing your own mutant: change the engine in a checkout, `git diff >
my-mutants/name.patch` (paths a/engine/..., b/engine/...; apply with
patch -p1 from the top of the tree), optionally add name.json with a
"description" (and "equivalent" with the reason, if it is one).  Then
`powercut evaluate --mutants my-mutants`.

Exit status: 0 evaluated; 1 a mutant declared equivalent was killed; 2
usage or infrastructure error (a patch that does not apply, a build that
fails, a method that fails on the clean engine).
"""
import argparse
import filecmp
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time

from . import fuzz, mutants, setup
from .common import (BUILD, EXIT_FAIL, EXIT_OK, PYTHON, ROOT, InfraError, UsageError, run, say, write_json)

METHODS = ["sweep", "faults", "fuzz", "reference", "protocol", "diff"]
PRESET = {"sweep": "default", "faults": "fiu", "fuzz": "fuzz", "reference": "default", "protocol": "default",
          "diff": "default"}
BINARIES = {"sweep": ["pcsweep"], "faults": ["pcfaults"], "fuzz": list(fuzz.TARGETS), "reference": ["pcsweep"],
            "protocol": ["pcsweep"], "diff": ["pcsweep", "vhdxtool", "pcrecord", "pcrecord-pack"]}
SCRATCH = os.path.join(BUILD, "evaluate")
IGNORE = ("build", ".git", "reports", "corpus", "__pycache__", ".pytest_cache")
MANIFEST = ".evaluate-sources.json"   # in each build tree: content hashes of the sources it was built from
CONFIG_STAMP = ".evaluate-configure.json"  # in each build tree: source dir and options it was configured with


def add_parser(sub):
    p = sub.add_parser("evaluate", help="mutation testing: which methods find planted bugs, and how fast",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mutants", default=mutants.MUTANT_DIR, help="directory of .patch files (default: harness/mutants)")
    p.add_argument("--names", help="only these mutants (comma list)")
    p.add_argument("--budget", type=int, default=60, help="seconds per method and mutant (default: %(default)s)")
    p.add_argument("--methods", default=",".join(METHODS), help="comma list of " + ", ".join(METHODS) +
                   " (default: all; the ones the tools do not offer yet are skipped)")
    p.add_argument("--json", help="write the kill matrix here (default: reports/runs/evaluate-<time>/evaluate.json)")
    p.add_argument("--no-baseline", action="store_true", help="skip the clean-engine run (not recommended)")
    p.add_argument("--equivalent-only", action="store_true",
                   help="only the mutants declared equivalent (exit 1 if any is killed)")
    p.set_defaults(func=cmd_evaluate)


# ---- the scratch tree -----------------------------------------------------------------------
def _ignored(name):
    return name in IGNORE


def _walk(top):
    """Relative paths of the files under top, ignored folders left out."""
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not _ignored(d))
        for fn in sorted(filenames):
            if not _ignored(fn):
                out.append(os.path.relpath(os.path.join(dirpath, fn), top))
    return out


def _sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _touch(path, now):
    if not os.path.islink(path):
        os.utime(path, (now, now))


class Scratch:
    """A copy of the tree where patches are applied and presets built.

    The copy is synchronised by content, never by mtime: a file that differs
    from the tree is copied and stamped with the current time (shutil's
    copies keep the source's old mtime, which ninja would take for older than
    the objects of the last mutant built here), files gone from the tree are
    removed, identical files are left alone so builds stay incremental."""

    def __init__(self, presets, root=ROOT, scratch=SCRATCH):
        self.root = root
        self.scratch = scratch
        self.src = os.path.join(scratch, "src")
        self.marker = os.path.join(scratch, "applied-patch")
        self.presets = presets
        if os.path.exists(self.marker):
            say("evaluate: an earlier run was interrupted with a patch applied; the copy is restored by content")
            os.remove(self.marker)
        os.makedirs(self.src, exist_ok=True)
        self.sync()

    def sync(self):
        now = time.time()
        want = set(_walk(self.root))
        for rel in sorted(want):
            s, d = os.path.join(self.root, rel), os.path.join(self.src, rel)
            if os.path.islink(s):
                if not (os.path.islink(d) and os.readlink(d) == os.readlink(s)):
                    if os.path.lexists(d):
                        os.remove(d)
                    os.makedirs(os.path.dirname(d), exist_ok=True)
                    os.symlink(os.readlink(s), d)
                continue
            if os.path.isfile(d) and not os.path.islink(d) and filecmp.cmp(s, d, shallow=False):
                continue
            os.makedirs(os.path.dirname(d), exist_ok=True)
            if os.path.lexists(d):
                os.remove(d)
            shutil.copyfile(s, d)
            shutil.copymode(s, d)
            _touch(d, now)
        for rel in _walk(self.src):
            if rel not in want:
                os.remove(os.path.join(self.src, rel))

    def _hashes(self):
        return {rel: _sha(os.path.join(self.src, rel)) for rel in _walk(self.src)
                if not os.path.islink(os.path.join(self.src, rel))}

    @staticmethod
    def _configure_args(preset):
        # A planted bug may leave a variable unused: no -Werror here.  The
        # record tools are built in the default tree only (`powercut diff`
        # run from the scratch tree wants them); fixed per preset, so runs
        # with other methods never reconfigure a tree.
        return ["-DPOWERCUT_WERROR=OFF", f"-DPOWERCUT_SKIP_RECORD={'OFF' if preset == 'default' else 'ON'}"]

    def _config_stamp(self, preset, args):
        return {"src": os.path.realpath(self.src), "preset": preset, "args": args,
                "presets_sha256": _sha(os.path.join(self.src, "CMakePresets.json"))}

    def _needs_configure(self, preset, bdir, args):
        """Why the build tree must be configured again from scratch, or None.
        Decided by content, never by mtime (sources get fresh mtimes here)."""
        cache = os.path.join(bdir, "CMakeCache.txt")
        if not os.path.exists(cache):
            return "not configured"
        home = None
        with open(cache, errors="replace") as f:
            for line in f:
                if line.startswith("CMAKE_HOME_DIRECTORY:"):
                    home = line.split("=", 1)[1].strip()
        if home is None or os.path.realpath(home) != os.path.realpath(self.src):
            return f"configured from another source directory ({home})"
        try:
            with open(os.path.join(bdir, CONFIG_STAMP)) as f:
                stamp = json.load(f)
        except (OSError, ValueError):
            return "configured by something else"
        if stamp != self._config_stamp(preset, args):
            return "configured with other options or presets"
        if not os.path.exists(os.path.join(bdir, MANIFEST)):
            return "no record of the sources it was built from"
        return None

    def build(self, preset, targets):
        bdir = os.path.join(self.src, "build", preset)
        args = self._configure_args(preset)
        why = self._needs_configure(preset, bdir, args)
        mpath = os.path.join(bdir, MANIFEST)
        current = self._hashes()
        if why:
            if why != "not configured":
                say(f"evaluate: build tree {bdir}: {why}; configuring it again from scratch")
            shutil.rmtree(bdir, ignore_errors=True)
            run(["cmake", "--preset", preset] + args, cwd=self.src, capture=True, quiet=True)
            with open(os.path.join(bdir, CONFIG_STAMP), "w") as f:
                json.dump(self._config_stamp(preset, args), f)
        else:
            # Touch every source whose content differs from what this tree was
            # last built from: ninja then rebuilds it whatever its mtime was.
            with open(mpath) as f:
                built_from = json.load(f)
            now = time.time()
            for rel, h in current.items():
                if built_from.get(rel) != h:
                    _touch(os.path.join(self.src, rel), now)
        cp = run(["cmake", "--build", bdir, "--target"] + targets, cwd=self.src, capture=True, quiet=True,
                 check=False)
        if cp.returncode != 0:
            if os.path.exists(mpath):
                os.remove(mpath)   # what the objects were built from is unknown now
            raise InfraError(f"scratch build of {preset} failed:\n{cp.stdout.decode(errors='replace')[-3000:]}")
        with open(mpath, "w") as f:
            json.dump(current, f)
        return bdir

    def apply(self, patch, reverse=False):
        cmd = ["patch", "-p1", "--batch", "--silent", "-d", self.src, "-i", patch] + (["-R"] if reverse else [])
        cp = run(cmd, check=False, capture=True, quiet=True)
        if cp.returncode != 0:
            raise InfraError(f"{patch}: does not {'revert' if reverse else 'apply'} cleanly: "
                             f"{cp.stdout.decode(errors='replace').strip()[:400]}")
        if reverse:
            if os.path.exists(self.marker):
                os.remove(self.marker)
        else:
            with open(self.marker, "w") as f:
                f.write(patch)


# ---- method results ---------------------------------------------------------------------------
def killed(seconds, detail):
    return {"result": "killed", "seconds": seconds, "detail": detail}


def survived(detail=""):
    return {"result": "survived", "seconds": None, "detail": detail}


def skipped(reason):
    return {"result": "skipped", "seconds": None, "detail": reason}


def error(detail):
    return {"result": "error", "seconds": None, "detail": detail}


class Context:
    """What the methods share within one evaluate run: the scratch source
    tree, what the built tools support (asked once), the images of the diff
    method (made once) and the diff disagreements of the clean engine."""

    def __init__(self, src, work_root):
        self.src = src
        self.work_root = work_root
        self._help = {}
        self._diff_inputs = None
        self.diff_known = None   # set of (source, class) of the clean engine; None = no baseline
        self.diff_compared = None  # sources the clean engine's diff compared; None = unknown

    def help_text(self, binary, args):
        key = (os.path.basename(binary), tuple(args))
        if key not in self._help:
            try:
                cp = subprocess.run([binary] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    timeout=30)
                self._help[key] = cp.stdout.decode(errors="replace")
            except (OSError, subprocess.TimeoutExpired):
                self._help[key] = ""
        return self._help[key]

    def has_command(self, binary, command):
        """Does `binary --help` list `command` among its commands?"""
        return re.search(rf"^\s+{re.escape(command)}\b", self.help_text(binary, ["--help"]), re.M) is not None

    def has_option(self, binary, command, option):
        """Does `binary command --help` mention `option`?"""
        return option in self.help_text(binary, [command, "--help"])

    def diff_inputs(self, bdir):
        """Folders of images for the diff method: written by QEMU (when
        qemu-img and qemu-io exist) and by the reference writer (when pcsweep
        has `refgen`).  Made once per run; returns (dirs, notes)."""
        if self._diff_inputs is None:
            base = os.path.join(self.work_root, "diff-images")
            shutil.rmtree(base, ignore_errors=True)
            dirs, notes = [], []
            if shutil.which("qemu-img") and shutil.which("qemu-io"):
                d = os.path.join(base, "qemu")
                n = make_qemu_images(d)
                dirs.append(d)
                notes.append(f"{n} images written by QEMU")
            else:
                notes.append("qemu-img/qemu-io missing: no QEMU-written images")
            pcsweep = os.path.join(bdir, "harness", "pcsweep")
            if self.has_command(pcsweep, "refgen"):
                d = os.path.join(base, "refgen")
                cp = subprocess.run([pcsweep, "refgen", "--out", d, "--count", str(REFGEN_COUNT)],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
                if cp.returncode == 0 and os.path.isdir(d):
                    dirs.append(d)
                    notes.append(f"images of the reference writer (pcsweep refgen --count {REFGEN_COUNT})")
                else:
                    notes.append(f"pcsweep refgen failed (status {cp.returncode}): "
                                 f"{cp.stdout.decode(errors='replace').strip()[-300:]}")
            else:
                notes.append("pcsweep has no refgen command yet: no reference-writer images")
            self._diff_inputs = (dirs, notes)
        return self._diff_inputs


REFGEN_COUNT = 24

# Images QEMU writes (clean logs: QEMU replays and clears its log on close),
# chosen so that block size, BAT layout and allocation differ: they exercise
# this engine's reading of headers, region tables, metadata and BAT written
# by another implementation.
QEMU_IMAGES = [
    ("small-1m-blocks", "64M", "block_size=1M,log_size=1M",
     ["write -P 0x5a 0 3M", "write -P 0xa5 10M 512", "write -P 0x33 63M 1M"]),
    ("default-32m-blocks", "1G", "",
     ["write -P 0x11 0 64k", "write -P 0x22 100M 4k", "write -P 0x44 1000M 1M"]),
    ("big-bat-1m-blocks", "8G", "block_size=1M",
     ["write -P 0x66 0 512", "write -P 0x77 4095M 2M", "write -P 0x88 8190M 1M"]),
    ("zero-state-discard", "256M", "block_size=1M",
     ["write -P 0x99 0 4M", "discard 1M 2M", "write -z 8M 1M"]),
]


def make_qemu_images(d):
    os.makedirs(d, exist_ok=True)
    for name, size, opts, cmds in QEMU_IMAGES:
        path = os.path.join(d, name + ".vhdx")
        run(["qemu-img", "create", "-q", "-f", "vhdx"] + (["-o", opts] if opts else []) + [path, size],
            capture=True, quiet=True)
        io = ["qemu-io", "-f", "vhdx"]
        for c in cmds:
            io += ["-c", c]
        run(io + [path], capture=True, quiet=True)
    return len(QEMU_IMAGES)


# ---- methods ----------------------------------------------------------------------------------
def _run_until(cmds, budget, found, logs, grace=60):
    """Starts cmds side by side; returns (seconds to the first found(), index,
    exit statuses) or (None, None, statuses) when the budget ends first (the
    status of a process stopped at the end of the budget is None)."""
    t0 = time.time()
    procs = []
    for cmd, log in zip(cmds, logs):
        with open(log, "w") as lf:
            procs.append(subprocess.Popen([str(c) for c in cmd], stdout=subprocess.DEVNULL, stderr=lf,
                                          start_new_session=True))
    try:
        while time.time() - t0 < budget + grace:
            for i, p in enumerate(procs):
                if p.poll() is not None and found(i):
                    return round(time.time() - t0, 1), i, [q.poll() for q in procs]
            if all(p.poll() is not None for p in procs):
                return None, None, [q.returncode for q in procs]
            time.sleep(0.2)
        return None, None, [q.poll() for q in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _first_failure(path):
    try:
        with open(path) as f:
            fs = json.load(f).get("failures", [])
        return fs[0] if fs else None
    except (OSError, ValueError):
        return None


def _tail(path, n=400):
    try:
        with open(path, errors="replace") as f:
            return f.read().strip()[-n:]
    except OSError:
        return ""


def _judge_status(rc, out, log, what):
    """A tool that stopped without a failure in its JSON: a crash (signal)
    is a kill, status 2 an error, anything else a miss."""
    if rc is not None and rc < 0:
        return killed(None, f"{what} died of signal {-rc}: {_tail(log, 200)}")
    if rc == 2:
        return error(f"{what} exited with status 2: {_tail(log)}")
    return survived()


def _sweep_with(bdir, budget, work, judges, what):
    out = os.path.join(work, f"{what}.json")
    if os.path.exists(out):
        os.remove(out)
    cmd = [os.path.join(bdir, "harness", "pcsweep"), "sweep", "--quiet"] + judges + \
        ["--scenario", "all", "--models", "all", "--max-violations", "1", "--max-seconds", budget, "--json", out]
    secs, _, rcs = _run_until([cmd], budget, lambda i: _first_failure(out) is not None, [out + ".log"])
    f = _first_failure(out)
    if f:
        return killed(secs, f"[{f['invariant']}] {f['scenario']} seed {f['seed']}: {f['choice']}")
    r = _judge_status(rcs[0], out, out + ".log", "pcsweep")
    if r["result"] == "killed" and secs is None:
        r["seconds"] = budget
    return r


def method_sweep(ctx, bdir, budget, work):
    pcsweep = os.path.join(bdir, "harness", "pcsweep")
    judges = ["--judges", "oracle"] if ctx.has_option(pcsweep, "sweep", "--judges") else []
    return _sweep_with(bdir, budget, work, judges, "sweep")


def method_reference(ctx, bdir, budget, work):
    pcsweep = os.path.join(bdir, "harness", "pcsweep")
    if not ctx.has_option(pcsweep, "sweep", "--judges"):
        return skipped("pcsweep sweep has no --judges option yet (the reference judge is not built)")
    r = _sweep_with(bdir, budget, work, ["--judges", "reference"], "reference")
    if r["result"] == "error":
        return skipped(f"pcsweep sweep --judges reference is refused: {r['detail']}")
    return r


def method_faults(ctx, bdir, budget, work):
    out = os.path.join(work, "faults.json")
    if os.path.exists(out):
        os.remove(out)
    cmd = [os.path.join(bdir, "faults", "pcfaults"), "sweep", "--quiet", "--max-violations", "1",
           "--max-seconds", budget, "--json", out]
    secs, _, rcs = _run_until([cmd], budget, lambda i: _first_failure(out) is not None, [out + ".log"])
    f = _first_failure(out)
    if f:
        return killed(secs, f"[{f['invariant']}] {f['scenario']} {f.get('phase')} {f.get('plan')}")
    return _judge_status(rcs[0], out, out + ".log", "pcfaults")


def method_protocol(ctx, bdir, budget, work):
    pcsweep = os.path.join(bdir, "harness", "pcsweep")
    if not ctx.has_command(pcsweep, "protocol"):
        return skipped("pcsweep has no protocol command yet (the trace protocol checker is not built)")
    out = os.path.join(work, "protocol.json")
    log = out + ".log"
    if os.path.exists(out):
        os.remove(out)
    cmd = [pcsweep, "protocol", "--scenario", "all"]
    if ctx.has_option(pcsweep, "protocol", "--json"):
        cmd += ["--json", out]
    if ctx.has_option(pcsweep, "protocol", "--max-violations"):
        cmd += ["--max-violations", "1"]
    secs, _, rcs = _run_until([cmd], budget, lambda i: True, [log], grace=0)
    rc = rcs[0]
    if rc == 1:
        f = _first_failure(out)
        what = (f"[{f.get('rule') or f.get('invariant')}] {f.get('scenario', '')} ops {f.get('ops', '')}".strip()
                if f else _tail(log, 300))
        return killed(secs, what)
    if rc == 0:
        return survived()
    if rc is None:
        return survived(f"not finished in {budget} s")
    if rc < 0:
        return killed(secs, f"pcsweep protocol died of signal {-rc}: {_tail(log, 200)}")
    return error(f"pcsweep protocol exited with status {rc}: {_tail(log)}")


def _diff_signature(report):
    return sorted({(os.path.basename(str(r.get("source") or r.get("image") or "")), r.get("class", ""))
                   for r in report.get("disagreements", [])})


def _diff_new(ctx, s):
    """Is disagreement s = (source, class) the mutant's own?  Not when the
    clean engine disagreed the same way on the same source; and, for a
    source the clean engine's run never reached (a time budget compares a
    different number of images each run), not when the clean engine showed
    the class at all."""
    if ctx.diff_known is None:
        return True
    if s in ctx.diff_known:
        return False
    src, cls = s
    if ctx.diff_compared is not None and src not in ctx.diff_compared:
        return cls not in {c for _, c in ctx.diff_known}
    return True


def method_diff(ctx, bdir, budget, work):
    dirs, notes = ctx.diff_inputs(bdir)
    if not dirs:
        return skipped("no images to compare: " + "; ".join(notes))
    if not shutil.which("qemu-img") or not shutil.which("qemu-io"):
        return skipped("qemu-img/qemu-io missing: powercut diff needs QEMU as the peer")
    out = os.path.join(work, "diff.json")
    log = out + ".log"
    if os.path.exists(out):
        os.remove(out)
    # The clean engine's run compares what it can in the budget; every
    # mutant's run then compares exactly those images (--max-images, same
    # order), so a disagreement is the mutant's and not the luck of the clock.
    limit = ["--max-images", str(len(ctx.diff_compared))] if ctx.diff_compared else ["--max-seconds", budget]
    cmd = [PYTHON, os.path.join(ctx.src, "scripts", "powercut"), "diff"] + dirs + \
        ["--json", out] + limit + ["--minimize-seconds", "0", "--jobs", "1", "--preset", "default"]
    secs, _, rcs = _run_until([cmd], budget * 3 if ctx.diff_compared else budget, lambda i: True, [log], grace=120)
    rc = rcs[0]
    if rc not in (0, 1):
        return error(f"powercut diff exited with status {rc}: {_tail(log)}")
    try:
        with open(out) as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        return error(f"powercut diff wrote no report: {e}")
    sig = _diff_signature(report)
    new = [s for s in sig if _diff_new(ctx, tuple(s))]
    if new:
        src, cls = new[0]
        return killed(secs, f"{len(new)} new disagreement(s) with QEMU, first: {cls} on {src}")
    return survived(f"{len(sig)} disagreement(s), all also seen on the clean engine" if sig else "")


def method_fuzz(ctx, bdir, budget, work):
    cmds, logs, arts = [], [], []
    for t in fuzz.TARGETS:
        d = os.path.join(work, t)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "corpus"))
        cmds.append([os.path.join(bdir, "fuzz", t)] + fuzz.read_options(t) +
                    ["-seed=1", f"-max_total_time={budget}", f"-artifact_prefix={d}/", os.path.join(d, "corpus"),
                     os.path.join(fuzz.CORPUS, t)])
        logs.append(os.path.join(d, "log"))
        arts.append(d)

    def found(i):
        return bool(glob.glob(os.path.join(arts[i], "crash-*")) + glob.glob(os.path.join(arts[i], "leak-*")) +
                    glob.glob(os.path.join(arts[i], "timeout-*")))
    secs, i, _ = _run_until(cmds, budget, found, logs)
    if secs is None:
        return survived()
    with open(logs[i], errors="replace") as f:
        text = f.read()
    from . import triage
    kind, frames = triage.crash_state(text)
    return killed(secs, f"{list(fuzz.TARGETS)[i]}: {kind}" + (f" in {' > '.join(frames)}" if frames else ""))


RUNNERS = {"sweep": method_sweep, "faults": method_faults, "fuzz": method_fuzz, "reference": method_reference,
           "protocol": method_protocol, "diff": method_diff}


# ---- the command ------------------------------------------------------------------------------
def evaluate_one(scratch, ctx, methods, budget, work):
    results = {}
    for m in methods:
        bdir = scratch.build(PRESET[m], BINARIES[m])
        os.makedirs(work, exist_ok=True)
        t0 = time.time()
        r = RUNNERS[m](ctx, bdir, budget, work)
        r["wall_s"] = round(time.time() - t0, 1)
        results[m] = r
    return results


CELL = {"survived": "-", "skipped": "skip", "error": "err"}


def matrix_line(name, methods, results, status, width):
    cells = [(f"{results[m]['seconds']:.1f} s" if results[m]["result"] == "killed" and results[m]["seconds"] is not None
              else "killed" if results[m]["result"] == "killed" else CELL[results[m]["result"]]) for m in methods]
    return f"{name:{width}s} " + " ".join(f"{c:>10s}" for c in cells) + f"  {status}"


def mutant_status(m, by):
    if m.get("equivalent"):
        return "equivalent-killed" if by else "equivalent"
    return "killed" if by else "survived"


def summarize(results, methods, budget, mutants_dir, baseline):
    counted = [r for r in results if r["status"] in ("killed", "survived")]
    n = len(counted)
    killed_n = sum(r["status"] == "killed" for r in counted)
    by_method = {}
    for k in methods:
        rs = [r["results"][k] for r in counted]
        kills = [x for x in rs if x["result"] == "killed"]
        ran = [x for x in rs if x["result"] in ("killed", "survived")]
        by_method[k] = {"killed": len(kills), "survived": sum(x["result"] == "survived" for x in rs),
                        "skipped": sum(x["result"] == "skipped" for x in rs),
                        "error": sum(x["result"] == "error" for x in rs),
                        "kill_rate": round(len(kills) / len(ran), 4) if ran else None,
                        "median_seconds": _median([x["seconds"] for x in kills if x["seconds"] is not None])}
    return {
        "budget_s": budget, "methods": methods, "mutants_dir": os.path.abspath(mutants_dir),
        "kill_rate": round(killed_n / n, 4) if n else None, "killed": killed_n, "total": n,
        "equivalent": sum(r["status"] == "equivalent" for r in results),
        "equivalent_killed": [r["name"] for r in results if r["status"] == "equivalent-killed"],
        "by_method": by_method,
        "kill_rate_by_method": {k: v["kill_rate"] for k, v in by_method.items()},
        "median_seconds_by_method": {k: v["median_seconds"] for k, v in by_method.items()},
        "baseline": baseline, "mutants": results,
    }


def make_scratch(methods):
    return Scratch({PRESET[m] for m in methods})


def cmd_evaluate(args):
    # a kill (SIGTERM) stops the tools evaluate started and reverts the patch, like Ctrl-C
    old = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _evaluate(args)
    finally:
        signal.signal(signal.SIGTERM, old)


def _evaluate(args):
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise UsageError(f"--methods: unknown {', '.join(bad) or '(none)'} (methods: {', '.join(METHODS)})")
    if args.budget < 1:
        raise UsageError("--budget must be at least 1 second")
    ms = mutants.list_mutants(args.mutants)
    if args.names:
        want = [n.strip() for n in args.names.split(",")]
        unknown = [n for n in want if n not in {m["name"] for m in ms}]
        if unknown:
            raise UsageError(f"unknown mutant(s) {', '.join(unknown)} in {args.mutants}")
        ms = [m for m in ms if m["name"] in want]
    if getattr(args, "equivalent_only", False):
        ms = [m for m in ms if m.get("equivalent")]
    if not ms:
        raise UsageError(f"{args.mutants}: no mutants selected")
    setup.ensure(quiet=True)
    if not shutil.which("patch"):
        raise InfraError("the patch program is missing (scripts/powercut setup installs it)")
    out = args.json or os.path.join(ROOT, "reports", "runs", time.strftime("evaluate-%Y%m%d-%H%M%S"),
                                    "evaluate.json")
    work_root = os.path.join(os.path.dirname(os.path.abspath(out)), "work")
    say(f"evaluate: {len(ms)} mutant(s) from {args.mutants}, methods {', '.join(methods)}, "
        f"budget {args.budget} s each; scratch tree {SCRATCH}")
    scratch = make_scratch(methods)
    ctx = Context(scratch.src, work_root)
    width = max(len(m["name"]) for m in ms) + 2
    baseline = None
    if not args.no_baseline:
        say("evaluate: the clean engine first (every method must come back empty)")
        res = evaluate_one(scratch, ctx, methods, args.budget, os.path.join(work_root, "clean"))
        baseline = {"results": res}
        if "diff" in res and res["diff"]["result"] in ("killed", "survived"):
            try:
                with open(os.path.join(work_root, "clean", "diff.json")) as f:
                    clean = json.load(f)
                known = _diff_signature(clean)
                compared = clean.get("compared_sources")
            except (OSError, ValueError):
                known, compared = [], None
            ctx.diff_known = {tuple(s) for s in known}
            ctx.diff_compared = set(compared) if compared is not None else None
            baseline["diff_known_disagreements"] = known
            res["diff"] = dict(survived(f"{len(known)} disagreement(s) of the clean engine with QEMU, "
                                        "subtracted from every mutant's" if known else ""),
                               wall_s=res["diff"].get("wall_s"))
        false = {m: r["detail"] for m, r in res.items() if r["result"] in ("killed", "error")}
        if false:
            raise InfraError("a method fails on the clean engine, its kills would mean nothing: " +
                             "; ".join(f"{m}: {d}" for m, d in false.items()))
        for m, r in res.items():
            if r["result"] == "skipped":
                say(f"evaluate: method {m} skipped: {r['detail']}")
    print(f"\n{'mutant':{width}s} " + " ".join(f"{m:>10s}" for m in methods) + "  status", flush=True)
    results = []
    for m in ms:
        scratch.apply(m["patch"])
        try:
            res = evaluate_one(scratch, ctx, methods, args.budget, os.path.join(work_root, m["name"]))
        finally:
            scratch.apply(m["patch"], reverse=True)
        by = [k for k in methods if res[k]["result"] == "killed"]
        times = [res[k]["seconds"] for k in by if res[k]["seconds"] is not None]
        status = mutant_status(m, by)
        entry = {"name": m["name"], "description": m.get("description", ""), "category": m.get("category"),
                 "status": status, "killed": bool(by), "by": by, "seconds": min(times) if times else None,
                 "results": res, "times": {k: res[k]["seconds"] if k in by else None for k in methods},
                 "detail": {k: res[k]["detail"] for k in methods},
                 "sweep_kills_declared": m.get("sweep_kills", True)}
        if m.get("equivalent"):
            entry["equivalent"] = m["equivalent"]
        results.append(entry)
        print(matrix_line(m["name"], methods, res, status, width), flush=True)
        # after every mutant: a long run that is stopped keeps what it measured
        write_json(out, dict(summarize(results, methods, args.budget, args.mutants, baseline), complete=False))
    summary = dict(summarize(results, methods, args.budget, args.mutants, baseline), complete=True)
    write_json(out, summary)
    if summary["total"]:
        print(f"\nkilled {summary['killed']}/{summary['total']} (kill rate {summary['kill_rate']:.0%}"
              + (f"; {summary['equivalent']} equivalent left out" if summary["equivalent"] else "") + "); by method: " +
              ", ".join(f"{k} {v['killed']}" + (f" ({v['kill_rate']:.0%})" if v["kill_rate"] is not None else " (skipped)")
                        for k, v in summary["by_method"].items()))
    for r in results:
        if r["status"] == "survived":
            print(f"  survived: {r['name']}: {r['description']}")
    for r in results:
        if r["status"] == "equivalent-killed":
            print(f"  EQUIVALENT KILLED: {r['name']} (by {', '.join(r['by'])}: "
                  f"{r['detail'][r['by'][0]]}); the reason in its sidecar is wrong: {r['equivalent']}")
    print(f"kill matrix: {out}")
    return EXIT_FAIL if summary["equivalent_killed"] else EXIT_OK


def _terminate(signum, frame):
    raise KeyboardInterrupt


def _median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else round((xs[n // 2 - 1] + xs[n // 2]) / 2, 1)
