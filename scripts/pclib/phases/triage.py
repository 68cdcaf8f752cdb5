"""Triage, in the final step: every raw failure gets its crash state, the
unique ones are minimized and stored under corpus/regressions/ (triage.py
holds the crash states and the store)."""
import os
import shutil
import time

from .. import build, triage
from .. import fuzz as fuzzing
from .. import common
from ..common import ROOT, build_dir, tool


def run(camp, deadline):
    """Crash states, grouping, minimization, storage.  Returns the unique
    list.  A fuzz crash that cannot be reproduced within the budget is
    still a failure, kept apart (by its file) and said to be untriaged."""
    untriaged = 0
    for f in camp.raw_failures:
        if f["kind"] == "fuzz" and "state" not in f:
            left = deadline - time.time()
            if left < 3 or camp.interrupts:
                untriaged += 1
                f["state"] = ("untriaged fuzz crash (no time left to reproduce it)",
                              [os.path.basename(f["artifact"])])
                f["what"] = f"untriaged: {f['artifact']}"
                continue
            rc, text = reproduce_fuzz(f["target"], f["artifact"], f["engine"], timeout=min(120, left))
            f["report"] = text[-4000:]
            f["state"] = triage.crash_state(text) if rc != 0 else ("does not reproduce", [])
            f["what"] = f["state"][0]
    unique = triage.dedupe([f for f in camp.raw_failures if f.get("state")])
    out = []
    for u in unique:
        art = u.get("artifact")
        if not art or not os.path.exists(art):
            u["command"] = "(no reproducer saved)"
            out.append(u)
            continue
        minimized = art
        if not camp.interrupts and deadline - time.time() > 10:
            minimized = minimize(u, art, camp.out, min(120, max(10, deadline - time.time()))) or art
        u["minimized"] = minimized != art
        try:
            d = triage.store_regression(u, minimized, root=camp.args.regressions, extra=regression_fields(u))
        except triage.DamagedRegression as e:
            camp.damaged.append(f"a damaged stored regression: {e}; failure {u['id']} was not stored there "
                                f"(repair or delete the file)")
            u["command"] = f"scripts/powercut repro {art}"
            out.append(u)
            continue
        u["regression"] = os.path.relpath(d, ROOT) if d.startswith(ROOT) else d
        u["command"] = f"scripts/powercut repro {os.path.join(u['regression'], os.path.basename(minimized))}"
        out.append(u)
    camp.final["triage"] = "done" if not untriaged else f"{untriaged} fuzz crash file(s) not reproduced (budget)"
    return out


def reproduce_fuzz(target, path, engine, timeout=120):
    """Runs one input again; returns (status, output).  libFuzzer findings
    run with the libFuzzer binary (same sanitizers); AFL++ findings (from an
    uninstrumented build) with the standalone target of the target's replay
    preset (asan, fiu-asan for fault schedules), after
    the AFL++ post-processing for the targets with the custom mutator."""
    env = dict(os.environ, ASAN_OPTIONS="handle_abort=1:detect_leaks=1:symbolize=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    if engine == "afl":
        preset = fuzzing.replay_preset(target)
        build.ensure_built(preset, [target], quiet=True)
        cmd = [os.path.join(build_dir(preset), "fuzz", target)]
        if fuzzing.TARGETS[target]["mutator"]:
            cmd.append("--post-process")
        cmd.append(path)
    else:
        cmd = [os.path.join(build_dir("fuzz"), "fuzz", target)] + \
            [o for o in fuzzing.read_options(target) if o.startswith(("-timeout", "-rss_limit_mb"))] + [path]
    try:
        cp = common.run(cmd, check=False, capture=True, stderr=common.STDOUT, env=env, timeout=timeout)
        return cp.returncode, cp.stdout.decode(errors="replace")
    except common.TimeoutExpired as e:
        return 124, (e.stdout or b"").decode(errors="replace") + "\nERROR: libFuzzer: timeout (reproduction)"


def minimize(u, art, out, seconds):
    """A smaller input with the same crash state, or None."""
    mdir = os.path.join(out, "minimized")
    os.makedirs(mdir, exist_ok=True)
    dest = os.path.join(mdir, f"{u['id']}-{os.path.basename(art).replace(':', '_')}")
    try:
        if u["kind"] == "pctrace":
            cp = common.run([tool("default", "pcsweep"), "repro", art, "--minimize", dest], check=False,
                            stdout=common.DEVNULL, stderr=common.DEVNULL, timeout=seconds)
            return dest if cp.returncode in (0, 1) and os.path.exists(dest) else None
        if u["kind"] == "fuzz" and u.get("engine") == "libfuzzer":
            binary = os.path.join(build_dir("fuzz"), "fuzz", u["target"])
            common.run([binary, "-minimize_crash=1", f"-max_total_time={int(seconds)}", "-runs=100000",
                        f"-exact_artifact_path={dest}", art], check=False, stdout=common.DEVNULL,
                       stderr=common.DEVNULL, timeout=seconds + 30)
        elif u["kind"] == "fuzz" and not fuzzing.TARGETS[u["target"]]["mutator"] and shutil.which("afl-tmin"):
            common.run(["afl-tmin", "-i", art, "-o", dest, "-t", "10000", "--",
                        os.path.join(build_dir("afl"), "fuzz", u["target"])], check=False,
                       stdout=common.DEVNULL, stderr=common.DEVNULL, timeout=seconds,
                       env=dict(os.environ, AFL_QUIET="1"))
        else:
            return None  # fault plans are one call already; AFL++ post-processed inputs stay as saved
    except common.TimeoutExpired:
        pass
    if not os.path.exists(dest) or os.path.getsize(dest) >= os.path.getsize(art):
        return None
    # keep the smaller input only if it still fails the same way
    rc, text = reproduce_fuzz(u["target"], dest, u.get("engine"))
    if rc != 0 and triage.signature(triage.crash_state(text)) == triage.signature(u["state"]):
        return dest
    return None


def regression_fields(u):
    """What the CTest replay needs in meta.json: the tool ("target") and
    how to run the input."""
    if u["kind"] == "pctrace":
        return {"target": "pcsweep", "status": "new"}
    if u["kind"] == "fault":
        return {"target": "pcfaults", "status": "new"}
    fields = {"target": u["target"], "status": "new"}
    if u.get("engine") == "afl" and fuzzing.TARGETS[u["target"]]["mutator"]:
        fields["post_process"] = True
    return fields
