"""`powercut repro` for the artifacts the sweep does not own: VHDX images
attached to bug reports, fuzz crashes, and stored regressions.

A plain VHDX image (`powercut repro bug.vhdx`) is never touched: a copy is
examined with the asan build of vhdxtool -- `info`, the log as `dump-log
--descriptors` shows it, `check`, then an open that replays the log on the
copy, the sectors the replay changed (by region: headers, BAT entries,
metadata, payload), which log entry wrote each, and `check` again.  The
verdict is one of:

  CLEAN        no log pending, the image checks clean
  RECOVERED    the pending log replayed and the image then checks clean
  REFUSED      the engine refused the image (the reason is printed; a
               refusal of a damaged image is correct behaviour)
  INCONSISTENT the image opens but fails the check (after replay)
  ENGINE BUG   a sanitizer report or a signal while opening (crash type and
               our top frames, the deduplication key of `campaign`)

A fuzz crash (`powercut repro reports/runs/.../fuzz_log_replay/crashes/
crash-...`, or any input with --target) runs again in the asan preset's
standalone target; the verdict is the crash state.  A stored regression
(corpus/regressions/<id>/ or a file in it) is replayed by the tool its
meta.json names.

Exit status: 0 clean / recovered / does not reproduce; 1 refused,
inconsistent, engine bug or the crash reproduces; 2 usage error.
"""
import filecmp
import glob
import json
import os
import shutil
import subprocess
import tempfile

from . import build, setup, sweep, triage
from .common import EXIT_FAIL, EXIT_OK, UsageError, build_dir, file_sha256, is_vhdx, tool, write_json

SECTOR = 4096
SAN_ENV = {"ASAN_OPTIONS": "handle_abort=1:detect_leaks=1:abort_on_error=0:symbolize=1",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}


def run_tool(cmd, timeout=300):
    env = dict(os.environ, **SAN_ENV)
    try:
        cp = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            timeout=timeout)
        return cp.returncode, cp.stdout.decode(errors="replace"), cp.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        return 124, (e.stdout or b"").decode(errors="replace"), "timeout after %d s" % timeout


def sanitizer_report(rc, text):
    """The crash state when the output shows an engine crash, else None."""
    if rc < 0 or rc >= 128 or any(k in text for k in ("ERROR: AddressSanitizer", "runtime error:",
                                                        "ERROR: LeakSanitizer", "DEADLYSIGNAL")):
        return triage.crash_state(text)
    return None


# ---- plain VHDX images ------------------------------------------------------------------
def regions_of(info):
    """[(start, end, name)] of the image's structures, from `info --json`."""
    r = [(0, 64 << 10, "file identifier"), (64 << 10, 128 << 10, "header 1"), (128 << 10, 192 << 10, "header 2"),
         (192 << 10, 256 << 10, "region table 1"), (256 << 10, 320 << 10, "region table 2")]
    for key, name in (("log", "log"), ("bat", "BAT"), ("metadata", "metadata region")):
        v = info.get(key) or {}
        if v.get("length"):
            r.append((v["offset"], v["offset"] + v["length"], name))
    return sorted(r)


def describe_offset(off, regions, info):
    for a, b, name in regions:
        if a <= off < b:
            if name == "BAT" and info.get("chunk_ratio"):
                first = (off - a) // 8
                return f"BAT entries {first}..{first + SECTOR // 8 - 1}"
            return f"{name} +0x{off - a:x}"
    return "payload / sector bitmap area"


def changed_ranges(a, b):
    """[(offset, length)] of the 4 KiB sectors that differ between files a
    and b (a size change counts as the tail)."""
    out = []
    with open(a, "rb") as fa, open(b, "rb") as fb:
        off = 0
        while True:
            x, y = fa.read(SECTOR * 256), fb.read(SECTOR * 256)
            if not x and not y:
                break
            n = max(len(x), len(y))
            for i in range(0, n, SECTOR):
                if x[i:i + SECTOR] != y[i:i + SECTOR]:
                    s = off + i
                    if out and out[-1][0] + out[-1][1] == s:
                        out[-1] = (out[-1][0], out[-1][1] + SECTOR)
                    else:
                        out.append((s, SECTOR))
            off += n
    return out


def writer_of(off, entries):
    """The last active entry whose updates cover file offset off."""
    who = None
    for e in sorted((e for e in entries if e.get("active")), key=lambda e: e["sequence"]):
        for u in e.get("updates", []):
            if u["file_offset"] <= off < u["file_offset"] + u["length"]:
                who = e
    return who


def examine(vt, image):
    """Prints what vhdxtool sees in a copy of image: the log with each
    entry's updates, check, a read-write open that replays, the sectors the
    replay changed with their region and the entry that wrote them, check
    again.  Returns a dict (info, entries, statuses, crash state or None,
    changed ranges)."""
    r = {"changed": []}
    with tempfile.TemporaryDirectory(prefix="powercut-repro-") as tmp:
        copy, pristine = os.path.join(tmp, "image.vhdx"), os.path.join(tmp, "pristine.vhdx")
        shutil.copyfile(image, copy)
        shutil.copyfile(image, pristine)
        rc, out, err = run_tool([vt, "info", copy, "--json"])
        info = {}
        if rc == 0:
            try:
                info = json.loads(out)
            except ValueError:
                pass
        crash = sanitizer_report(rc, err)
        rc_d, dump_text, dump_err = run_tool([vt, "dump-log", copy, "--descriptors"])
        rc_j, dump_json, _ = run_tool([vt, "dump-log", copy, "--descriptors", "--json"])
        crash = crash or sanitizer_report(rc_d, dump_err)
        entries = []
        if rc_j in (0, 1):
            try:
                entries = json.loads(dump_json).get("entries", [])
            except ValueError:
                pass
        print("== the log, as `vhdxtool dump-log --descriptors` shows it ==")
        print((dump_text or dump_err).rstrip() + "\n")
        rc_c, check_out, check_err = run_tool([vt, "check", copy])
        crash = crash or sanitizer_report(rc_c, check_err)
        print("== check before replay (pending logs replayed in memory) ==")
        print((check_out + check_err).rstrip() + "\n")

        rc_r, rout, rerr = run_tool([vt, "replay", copy])
        crash = crash or sanitizer_report(rc_r, rerr)
        print("== open read-write (replays a pending log) ==")
        print(f"status {rc_r}" + (": " + (rout + rerr).strip()[-3000:] if (rout + rerr).strip() else "") + "\n")

        ranges = changed_ranges(pristine, copy) if not filecmp.cmp(pristine, copy, shallow=False) else []
        regions = regions_of(info)
        if ranges:
            print("== sectors the replay changed ==")
            for off, ln in ranges:
                e = writer_of(off, entries)
                where = describe_offset(off, regions, info)
                by = f"entry seq {e['sequence']} at log +0x{e['position']:x}" if e else \
                    "no log entry (file extension or header update)"
                print(f"  0x{off:010x} +{ln:<8d} {where:32s} written by {by}")
                r["changed"].append({"offset": off, "length": ln, "region": where,
                                     "entry_sequence": e["sequence"] if e else None})
            if os.path.getsize(copy) != os.path.getsize(pristine):
                print(f"  file size {os.path.getsize(pristine):,} -> {os.path.getsize(copy):,} bytes")
            print()
        rc_a, after_out, after_err = run_tool([vt, "check", copy])
        crash = crash or sanitizer_report(rc_a, after_err)
        if rc_r == 0:
            print("== check after replay ==")
            print((after_out + after_err).rstrip() + "\n")
    r.update(info=info, entries=entries, crash=crash, replay_status=rc_r, replay_output=(rout, rerr),
             check_after=rc_a, check_after_output=after_out + after_err, ranges=ranges)
    return r


def repro_image(args):
    setup.ensure(quiet=True)
    build.ensure_built("asan", ["vhdxtool"], quiet=True)
    vt = tool("asan", "vhdxtool")
    orig = os.path.abspath(args.file)
    before_hash = file_sha256(orig)
    res = {"image": orig, "sha256": before_hash}
    print(f"image:     {orig} ({os.path.getsize(orig):,} bytes, sha256 {before_hash[:16]}...)")
    print(f"           examined on a copy with {vt} (ASan + UBSan)\n")
    x = examine(vt, orig)
    info, entries, crash, ranges = x["info"], x["entries"], x["crash"], x["ranges"]
    rc_r, (rout, rerr), rc_a, after = x["replay_status"], x["replay_output"], x["check_after"], x["check_after_output"]
    res["changed"] = x["changed"]
    if file_sha256(orig) != before_hash:  # cannot happen: only copies were opened
        raise UsageError(f"{orig} changed while it was examined")
    pending = info.get("log", {}).get("pending")
    if crash:
        verdict, detail = "ENGINE BUG", f"{crash[0]} in {' > '.join(crash[1]) or '?'} (id {triage.failure_id(crash)})"
        advice = ("the engine crashed on this image: a bug to fix (not a property of the image). Store it as a "
                  "regression: copy the image under corpus/regressions/<id>/ with a meta.json.")
    elif rc_r != 0:
        msg = (rerr or rout).strip().splitlines()
        first = next((m for m in msg if "open:" in m), msg[-1] if msg else f"status {rc_r}")
        verdict, detail = "REFUSED", first.split("open:", 1)[-1].strip()
        advice = ("the engine refused the image and left it untouched. If the image came from a crash of a "
                  "correct writer, the refusal is the bug (see which entry or structure the reason names above); "
                  "if the image is damaged, refusing is the right answer.")
    elif rc_a != 0:
        verdict, detail = "INCONSISTENT", after.strip().splitlines()[-1:] or [""]
        detail = detail[0]
        advice = ("the image opens, but after replay the check fails: the log replayed state that is "
                  "inconsistent (see the problems above and the entries that wrote the sectors).")
    elif pending:
        verdict, detail = "RECOVERED", f"{len([e for e in entries if e.get('active')])} log entries replayed, " \
                                       f"{sum(ln for _, ln in ranges):,} bytes changed"
        advice = "the pending log replays into a consistent image: a correct reader recovers it."
    else:
        verdict, detail, advice = "CLEAN", "no log pending, the image checks clean", ""
    print(f"verdict:   {verdict}: {detail}")
    if advice:
        print(f"meaning:   {advice}")
    print(f"original:  untouched (sha256 {before_hash[:16]}... before and after)")
    res.update(verdict=verdict, detail=detail, pending=bool(pending))
    if getattr(args, "json", None):
        write_json(args.json, res)
    return EXIT_OK if verdict in ("CLEAN", "RECOVERED") else EXIT_FAIL


def explain_pctrace(args, pcsweep):
    """After a sweep reproducer failed: the crash image it builds, examined
    like an image (its log, the replay's sector diff)."""
    try:
        build.ensure_built(args.preset, ["vhdxtool"], quiet=True)  # the engine under test
    except Exception:  # noqa: BLE001 - the verdict above stands without the explanation
        return
    vt = os.path.join(os.path.dirname(os.path.dirname(pcsweep)), "engine", "vhdxtool")
    if not os.path.exists(vt):
        return
    with tempfile.TemporaryDirectory(prefix="powercut-repro-") as tmp:
        img = os.path.join(tmp, "state.vhdx")
        rc, _, _ = run_tool([pcsweep, "repro", args.file, "--save-image", img])
        if not os.path.exists(img):
            return
        print(f"\n== the crash image of this state (before replay), examined with {os.path.basename(vt)} ==\n")
        examine(vt, img)


# ---- fuzz crashes ---------------------------------------------------------------------------
def fuzz_targets():
    from . import fuzz
    return fuzz.TARGETS


def fuzz_replay_preset(target):
    from . import fuzz
    return fuzz.replay_preset(target)


def guess_target(path):
    """The fuzz target an input belongs to: meta.json next to it, or a
    path component naming a target."""
    d = os.path.dirname(os.path.abspath(path))
    meta = os.path.join(d, "meta.json")
    if os.path.exists(meta):
        try:
            with open(meta) as f:
                t = json.load(f).get("target")
            if t in fuzz_targets():
                return t
        except (OSError, ValueError):
            pass
    for part in reversed(os.path.abspath(path).split(os.sep)):
        if part in fuzz_targets():
            return part
    return None


def is_fuzz_input(path):
    name = os.path.basename(path)
    return guess_target(path) is not None and (
        name.startswith(("crash-", "leak-", "timeout-", "oom-", "slow-unit-", "id:")) or
        os.path.exists(os.path.join(os.path.dirname(os.path.abspath(path)), "meta.json")))


def repro_fuzz(args):
    target = getattr(args, "target", None) or guess_target(args.file)
    if not target:
        raise UsageError(f"{args.file}: which fuzz target? (--target NAME; targets: {', '.join(fuzz_targets())})")
    if target not in fuzz_targets():
        target = "fuzz_" + target if "fuzz_" + target in fuzz_targets() else target
        if target not in fuzz_targets():
            raise UsageError(f"unknown fuzz target {target}")
    setup.ensure(quiet=True)
    preset = fuzz_replay_preset(target)
    build.ensure_built(preset, [target], quiet=True)
    binary = os.path.join(build_dir(preset), "fuzz", target)
    meta_path = os.path.join(os.path.dirname(os.path.abspath(args.file)), "meta.json")
    post = os.path.basename(args.file).startswith("id:") or "/afl/" in os.path.abspath(args.file)
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            post = bool(json.load(f).get("post_process", post))
    cmd = [binary] + (["--post-process"] if post and fuzz_targets()[target]["mutator"] else []) + [args.file]
    print(f"input:     {args.file} ({os.path.getsize(args.file):,} bytes)")
    print(f"run:       {' '.join(cmd)}")
    rc, out, err = run_tool(cmd, timeout=300)
    text = out + err
    print(text.rstrip()[-6000:])
    if rc == 0:
        print(f"\nverdict:   does not reproduce with this build ({target} ran clean)")
        result = {"reproduced": False}
        status = EXIT_OK
    else:
        state = triage.crash_state(text)
        print(f"\nverdict:   REPRODUCES: {state[0]}")
        print(f"frames:    {' > '.join(state[1]) or '(none of ours)'}")
        print(f"id:        {triage.failure_id(state)} (the campaign's deduplication key)")
        print("meaning:   the fuzz target's property or a sanitizer failed on this input; the report above names "
              "the check or the memory error and where. POWERCUT_FUZZ_VERBOSE=1 prints what the target built.")
        result = {"reproduced": True, "crash_type": state[0], "frames": state[1], "id": triage.failure_id(state)}
        status = EXIT_FAIL
    if getattr(args, "json", None):
        write_json(args.json, dict(result, target=target, input=args.file, status=rc))
    return status


# ---- stored regressions ---------------------------------------------------------------------
def is_regression_dir(path):
    return os.path.isdir(path) and os.path.exists(os.path.join(path, "meta.json"))


def repro_regression(args):
    d = os.path.abspath(args.file)
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    inputs = [p for p in sorted(glob.glob(os.path.join(d, "*")))
              if os.path.isfile(p) and not p.endswith((".json", ".md", ".txt"))]
    if meta.get("file") and os.path.join(d, meta["file"]) in inputs:
        inputs = [os.path.join(d, meta["file"])]
    if not inputs:
        raise UsageError(f"{d}: no input file next to meta.json")
    print(f"regression {os.path.basename(d)}: {meta.get('what', '')} (status {meta.get('status', '?')}, "
          f"first seen {meta.get('first_seen', '?')})")
    worst = EXIT_OK
    for p in inputs:
        sub = type(args)(**dict(vars(args), file=p))
        worst = max(worst, dispatch(sub))
    return worst


def dispatch(args):
    for accepts, handler in sweep.REPRO_HANDLERS:
        if accepts(args.file):
            return handler(args)
    raise UsageError(f"{args.file}: not an artifact this build knows (pctrace, fault reproducer, VHDX image, "
                     f"fuzz input with --target, regression directory)")


def _register():
    handlers = sweep.REPRO_HANDLERS
    for pair in ((is_regression_dir, repro_regression), (is_vhdx, repro_image)):
        if all(h[1] is not pair[1] for h in handlers):
            handlers.insert(0, pair)
    if all(h[1] is not repro_fuzz for h in handlers):
        handlers.append((lambda p: os.path.isfile(p) and is_fuzz_input(p), repro_fuzz))


_register()
