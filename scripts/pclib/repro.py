"""`powercut repro PATH`: re-run any saved artifact and print its verdict.

One table, ARTIFACTS, lists every artifact kind this command knows, how it
is recognised and its handler; the first whose test accepts the path runs
(the order matters where kinds overlap: a fault reproducer is a .pctrace
too, an input of fuzz_image_open may be a VHDX image).  The handlers of the
fault tools live in faults.py; the others are here:

A sweep reproducer (.pctrace with a crash choice) runs in `pcsweep repro`;
when it still fails, its crash image is examined like an image (below),
and for a lost or wrong sector the cause is named.

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
import argparse
import filecmp
import glob
import json
import os
import shutil
import tempfile

from . import build, faults, setup, sweep, triage
from .common import (EXIT_FAIL, EXIT_OK, TimeoutExpired, UsageError, build_dir, check_output_file, file_sha256,
                     is_pctrace, is_vhdx, run, save_json, tool, write_json)

SECTOR = 4096
SAN_ENV = {"ASAN_OPTIONS": "handle_abort=1:detect_leaks=1:abort_on_error=0:symbolize=1",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}


DOC = """\
Re-runs a saved artifact with this build and prints the verdict and an
explanation.  What runs depends on the artifact:

  sweep reproducer   .pctrace with a crash choice (a run's repro/): the crash
                     state is rebuilt and judged by the oracle; --minimize
                     shrinks it, --rerun re-runs its workload with this build,
                     --save-image writes the crash image
  fault reproducer   .pctrace with a fault plan: pcfaults repro (fiu preset)
  external plan      JSON from `faults --exec`: the program under the same plan
  fuzz crash         crash-*, leak-*, timeout-*, oom-*, AFL++ id:* under a path
                     naming a fuzz target (or any file with --target): the
                     asan preset's standalone target; the crash state
  VHDX image         examined on a copy with the asan vhdxtool: info, the log
                     (dump-log --descriptors), check, replay, the sectors the
                     replay changed and the entries that wrote them, check;
                     CLEAN, RECOVERED, REFUSED, INCONSISTENT or ENGINE BUG
  regression         corpus/regressions/<id>/: each input, by the tool its
                     meta.json names

Exit status: 0 passes (clean, recovered, does not reproduce); 1 the failure is
there (violation, crash, refused or inconsistent image); 2 usage error.
"""



def add_parser(sub):
    r = sub.add_parser("repro", help="re-run any saved artifact (sweep or fault reproducer, fuzz crash, VHDX image, "
                                     "stored regression) and print its verdict", description=DOC,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("file", help="a sweep or fault reproducer (.pctrace), a fuzz crash, a VHDX image, "
                                "or a stored regression (corpus/regressions/<id>/)")
    r.add_argument("--target", help="the fuzz target of an input whose path does not name one")
    r.add_argument("--minimize", nargs="?", const="", metavar="OUT",
                   help="shrink the workload and crash choice; save to OUT (default: next to FILE)")
    r.add_argument("--rerun", action="store_true", help="re-run the recorded workload with this build")
    r.add_argument("--save-image", help="write the crash image (before replay) here")
    r.add_argument("--json", help="write the verdict here")
    r.add_argument("--preset", default="default", help="build preset to run with (default: default)")
    r.set_defaults(func=cmd_repro, passthrough=True)


# ---- sweep reproducers ------------------------------------------------------------------------
def repro_pctrace(args):
    check_output_file(args.json, "--json")
    check_output_file(args.save_image, "--save-image")
    cmd = [sweep.pcsweep_path(args.preset), "repro", args.file]
    outp = None
    if args.minimize is not None:
        outp = args.minimize or os.path.splitext(args.file)[0] + ".min.pctrace"
        check_output_file(outp, "--minimize")
        cmd += ["--minimize", outp]
    if args.rerun:
        cmd.append("--rerun")
    if args.save_image:
        cmd += ["--save-image", args.save_image]
    if args.json:
        cmd += ["--json", args.json]
    cmd += list(args.extra or [])
    rc = run(cmd, check=False).returncode
    if rc == 1 and not args.rerun:
        # The log entries, the replay's sector diff, why a sector was lost.
        # After --minimize the explanation is the minimized reproducer's:
        # that is the state the user goes on with.
        target = outp if outp and os.path.exists(outp) else args.file
        cause = explain_pctrace(args, cmd[0], target)
        if cause and args.json and os.path.exists(args.json):
            try:
                with open(args.json) as f:
                    v = json.load(f)
                (v.setdefault("minimized", {}) if target == outp else v)["cause"] = cause
                write_json(args.json, v)
            except (OSError, ValueError):
                pass
    return rc


def run_tool(cmd, timeout=300):
    env = dict(os.environ, **SAN_ENV)
    try:
        cp = run(cmd, check=False, capture=True, env=env, timeout=timeout)
        return cp.returncode, cp.stdout.decode(errors="replace"), cp.stderr.decode(errors="replace")
    except TimeoutExpired as e:
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


def region_at(off, regions):
    for a, b, name in regions:
        if a <= off < b:
            return a, b, name
    return None, None, "payload / sector bitmap area"


def describe_range(off, length, regions, info):
    """What [off, off+length) holds: 'BAT entries i..j', 'log +0x..', ..."""
    a, _b, name = region_at(off, regions)
    if a is None:
        return name
    if name == "BAT" and info.get("chunk_ratio"):
        first = (off - a) // 8
        return f"BAT entries {first}..{first + length // 8 - 1}"
    return f"{name} +0x{off - a:x}"


def describe_offset(off, regions, info):
    return describe_range(off, SECTOR, regions, info)


def changed_pages(a, b):
    """Offsets of the 4 KiB pages that differ between files a and b (a size
    change counts as the tail)."""
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
                    out.append(off + i)
            off += n
    return out


def changed_ranges(a, b):
    """[(offset, length)] of the runs of 4 KiB pages that differ."""
    out = []
    for p in changed_pages(a, b):
        if out and out[-1][0] + out[-1][1] == p:
            out[-1] = (out[-1][0], out[-1][1] + SECTOR)
        else:
            out.append((p, SECTOR))
    return out


def writer_of(off, entries, length=1):
    """The active entry the replay took [off, off+length) from: the last
    (in sequence order) whose updates cover it, or None."""
    who = None
    for e in sorted((e for e in entries if e.get("active")), key=lambda e: e["sequence"]):
        for u in e.get("updates", []):
            if u["file_offset"] <= off and off + length <= u["file_offset"] + u["length"]:
                who = e
    return who


def attribute(pages, entries, regions, info):
    """The changed pages as runs, each with the one entry that wrote all of
    it: neighbouring pages are merged only when the same entry wrote both
    and they lie in the same structure (three consecutive entries writing
    neighbouring pages are three runs, not one run of the last entry).
    [(offset, length, entry or None, description)]."""
    runs = []
    for p in pages:
        e = writer_of(p, entries, SECTOR)
        seq = e["sequence"] if e else None
        reg = region_at(p, regions)[2]
        if runs and runs[-1][0] + runs[-1][1] == p and runs[-1][4] == seq and runs[-1][5] == reg:
            runs[-1][1] += SECTOR
        else:
            runs.append([p, SECTOR, e, None, seq, reg])
    return [(off, ln, e, describe_range(off, ln, regions, info)) for off, ln, e, _d, _s, _r in runs]


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

        pages = changed_pages(pristine, copy) if not filecmp.cmp(pristine, copy, shallow=False) else []
        ranges = changed_ranges(pristine, copy) if pages else []
        regions = regions_of(info)
        if pages:
            print("== sectors the replay changed ==")
            for off, ln, e, where in attribute(pages, entries, regions, info):
                by = f"entry seq {e['sequence']} at log +0x{e['position']:x}" if e else \
                    "no log entry (file extension or header update)"
                print(f"  0x{off:010x} +{ln:<8d} {where:32s} written by {by}")
                r["changed"].append({"offset": off, "length": ln, "region": where,
                                     "entry_sequence": e["sequence"] if e else None,
                                     "entry_position": e["position"] if e else None})
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
    check_output_file(getattr(args, "json", None), "--json")
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
    # Another implementation's view of the same image is one command away.
    print(f"compare:   scripts/powercut diff {orig}   (QEMU opens and replays a copy too; which side departs "
          f"from MS-VHDX, with the rule)")
    res["compare"] = f"scripts/powercut diff {orig}"
    res.update(verdict=verdict, detail=detail, pending=bool(pending))
    if getattr(args, "json", None):
        save_json(args.json, res)
    return EXIT_OK if verdict in ("CLEAN", "RECOVERED") else EXIT_FAIL


def explain_pctrace(args, pcsweep, path=None):
    """After a sweep reproducer failed: the crash image it builds, examined
    like an image (its log, the replay's sector diff), and for a lost or
    wrong sector the cause (lost_sector_cause)."""
    path = path or args.file
    try:
        build.ensure_built(args.preset, ["vhdxtool"], quiet=True)  # the engine under test
    except Exception:  # noqa: BLE001 - the verdict above stands without the explanation
        return None
    vt = os.path.join(os.path.dirname(os.path.dirname(pcsweep)), "engine", "vhdxtool")
    if not os.path.exists(vt):
        return None
    with tempfile.TemporaryDirectory(prefix="powercut-repro-") as tmp:
        img, final, vj = (os.path.join(tmp, n) for n in ("state.vhdx", "final.vhdx", "verdict.json"))
        rc, _, _ = run_tool([pcsweep, "repro", path, "--save-image", img, "--save-final-image", final, "--json", vj])
        if not os.path.exists(img):
            return None
        print(f"\n== the crash image of this state (before replay), examined with {os.path.basename(vt)} ==\n")
        x = examine(vt, img)
        try:
            with open(vj) as f:
                verdict = json.load(f)
        except (OSError, ValueError):
            return None
        if str(verdict.get("invariant", "")).startswith("data:") and verdict.get("bad_sector") is not None \
                and os.path.exists(final):
            cause = lost_sector_cause(vt, img, final, verdict["bad_sector"], x.get("info") or {}, tmp)
            print_cause(verdict["bad_sector"], cause)
            return cause
    return None


# ---- why a sector was lost ------------------------------------------------------------------
def read_at(path, off, n):
    with open(path, "rb") as f:
        f.seek(off)
        b = f.read(n)
    return b + bytes(n - len(b))


def bat_of(value):
    """A BAT entry as vhdxtool decodes it (layout's bat_at value, dump-log's
    value_at_bat): {"state", "offset_mb"}."""
    return {"state": value["state"], "offset_mb": value["offset_mb"]}


def bat_at(vt, img, voff):
    """The BAT entry mapping virtual offset voff in img (`vhdxtool layout
    --bat-at`): {"block", "index", "file_offset", "value"}, or None."""
    rc, out, _ = run_tool([vt, "layout", img, "--bat-at", str(voff)])
    try:
        return json.loads(out).get("bat_at") if rc == 0 else None
    except ValueError:
        return None


def log_of(vt, img, value_at=None):
    cmd = [vt, "dump-log", img, "--descriptors", "--json"]
    if value_at is not None:
        cmd += ["--value-at", str(value_at)]
    rc, out, err = run_tool(cmd)
    try:
        return json.loads(out)
    except ValueError:
        return {"error": (err or out).strip()[-300:] or f"vhdxtool dump-log exited {rc}"}


def covering(entries, off):
    """Entries (any validity) whose updates cover file offset off, oldest first."""
    return sorted((e for e in entries if any(u["file_offset"] <= off < u["file_offset"] + u["length"]
                                             for u in e.get("updates", []))), key=lambda e: e["sequence"])


def lost_sector_cause(vt, crash, final, sector, info, tmp):
    """Why virtual `sector` does not hold its acknowledged value in the
    crash image `crash`, found by comparing it with `final` (the image at
    the end of the state's epoch, every pending write persisted): the BAT
    entry that maps the sector's block -- what it reads after the replay,
    what the writer meant it to be (the last update of it the writer
    logged, or wrote in place) -- the log entry that carried the change and
    why the replay did not apply it (its write did not persist, torn, the
    header naming its log did not persist, excluded by the Tail), or the
    payload write that did not persist.  A dict: 'cause' (one sentence),
    'why' (a keyword) and the facts."""
    out = {"sector": sector}
    voff = sector * 512
    bs = info.get("block_size")
    at = bat_at(vt, crash, voff)
    if not bs or at is None:
        out.update(why="unknown", cause="unknown: the crash image's geometry could not be read")
        return out
    block, index, eoff = at["block"], at["index"], at["file_offset"]
    page = eoff // SECTOR * SECTOR
    out.update(block=block, bat_index=index, bat_entry_offset=eoff, bat_page=page)
    crash_r = os.path.join(tmp, "crash-replayed.vhdx")
    shutil.copyfile(crash, crash_r)
    run_tool([vt, "replay", crash_r])
    replayed = bat_at(vt, crash_r, voff)
    got = bat_of(replayed["value"]) if replayed else None
    crash_log, final_log = log_of(vt, crash, eoff), log_of(vt, final, eoff)
    for lg in (crash_log, final_log):
        if "error" in lg and "entries" not in lg:
            out.update(why="unknown", cause=f"unknown: the log could not be listed ({lg['error']})")
            return out
    # What the writer meant: the last update of the entry it logged under
    # the final image's LogGuid, else what it wrote in place.
    guid = final_log.get("header_log_guid") if final_log.get("pending") else None
    carriers = []
    for e in covering(final_log.get("entries", []), eoff):
        vals = [u["value_at_bat"] for u in e.get("updates", []) if "value_at_bat" in u]
        if e.get("valid") and vals and (guid is None or e.get("log_guid") == guid):
            carriers.append((e, vals[-1]))
    if guid and carriers:
        carrier, value = carriers[-1]
        want = bat_of(value)
    else:
        meant = bat_at(vt, final, voff)
        carrier, want = None, bat_of(meant["value"]) if meant else None
    if got is None or want is None:
        out.update(why="unknown", cause="unknown: a BAT entry could not be read")
        return out
    out.update(bat_after_replay=got, bat_intended=want)
    if got != want:
        head = f"BAT entry {index} (block {block}) reads {got['state']} after the replay; the writer made it " \
               f"{want['state']}" + (f" at {want['offset_mb']} MiB" if want["offset_mb"] else "")
        if carrier is None:
            same = read_at(crash, page, SECTOR) == read_at(final, page, SECTOR)
            out["why"] = "in-place"
            out["cause"] = (f"{head} in place, without the log: its write of BAT page 0x{page:x} "
                            + ("is in the crash image but was overwritten later" if same else "did not persist"))
            return out
        out["carrier"] = {k: carrier.get(k) for k in ("sequence", "position", "log_guid", "tail")}
        head += f" through log entry seq {carrier['sequence']} (log +0x{carrier['position']:x})"
        mine = [c for c in crash_log.get("entries", []) if c["sequence"] == carrier["sequence"]
                and c["position"] == carrier["position"] and c.get("log_guid") == carrier.get("log_guid")]
        hdr = crash_log.get("header_log_guid") or ""
        act = crash_log.get("active") or {}
        if not mine:
            out["why"] = "not-durable"
            out["cause"] = f"{head}; that entry's log write did not persist in this crash state"
        elif not mine[0].get("valid"):
            out["why"] = "torn"
            out["cause"] = f"{head}; that entry is in the crash image but not valid ({mine[0].get('status')}): " \
                           f"torn or partly written"
        elif not crash_log.get("pending") or hdr != carrier.get("log_guid"):
            out["why"] = "header"
            out["cause"] = (f"{head}; the entry is valid in the crash image, but the header names "
                            f"{'no log' if not crash_log.get('pending') else 'LogGuid ' + hdr}, not "
                            f"{carrier.get('log_guid')}: the header write naming the log did not persist, so "
                            f"the entry was not replayed")
        elif not mine[0].get("active"):
            out["why"] = "tail"
            hs, ts = act.get("head_sequence"), act.get("tail_sequence")
            out["cause"] = (f"{head}; the entry is valid in the crash image but not in the active sequence"
                            + (f" (seq {ts}..{hs}): the Tail of head entry seq {hs} excludes it, so the replay "
                               f"did not apply it" if hs is not None else ", so the replay did not apply it"))
        else:
            out["why"] = "overwritten"
            out["cause"] = f"{head}; the entry was replayed, and a later update changed the BAT entry again"
        return out
    if want["state"] in ("FULLY_PRESENT", "PARTIALLY_PRESENT"):
        p = want["offset_mb"] * (1 << 20) + voff % bs
        out["payload_offset"] = p
        if read_at(crash, p, 512) != read_at(final, p, 512):
            out["why"] = "payload"
            out["cause"] = (f"block {block} is mapped as the writer meant (BAT entry {index}: {got['state']} at "
                            f"{got['offset_mb']} MiB), but the payload write at file offset 0x{p:x} did not "
                            f"persist: it was not durable when a flush acknowledged it")
            return out
    out["why"] = "other"
    out["cause"] = (f"BAT entry {index} (block {block}) and its payload are as the writer left them at the end of "
                    f"the epoch; the sector's value comes from the order of the epoch's writes")
    return out


def print_cause(sector, c):
    print(f"== why virtual sector {sector} was lost ==")
    if "bat_entry_offset" in c:
        print(f"  block {c['block']}, BAT entry {c['bat_index']} at file offset 0x{c['bat_entry_offset']:x} "
              f"(BAT page 0x{c['bat_page']:x})")
    if "bat_after_replay" in c:
        a, b = c["bat_after_replay"], c["bat_intended"]
        print(f"  after the replay: {a['state']} at {a['offset_mb']} MiB")
        print(f"  as the writer meant it: {b['state']} at {b['offset_mb']} MiB")
    print(f"cause:     {c['cause']}\n")


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
    check_output_file(getattr(args, "json", None), "--json")
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
        post = bool(load_meta(os.path.dirname(meta_path)).get("post_process", post))
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
        save_json(args.json, dict(result, target=target, input=args.file, status=rc))
    return status


# ---- stored regressions ---------------------------------------------------------------------
def is_regression_dir(path):
    return os.path.isdir(path) and os.path.exists(os.path.join(path, "meta.json"))


# The documented meta.json of a stored regression (docs/campaign.md).
META_FIELDS = {"id": str, "what": str, "crash_type": str, "frames": list, "method": str, "where": str,
               "target": str, "file": str, "command": str, "status": str, "first_seen": str, "last_seen": str,
               "sightings": int}
META_STATUS = ("new", "open", "fixed")


def meta_problems(d, meta):
    """What keeps a regression directory from the documented schema ([] if
    nothing): every field with its type, a known status, the input file
    there, and the id naming the directory."""
    if not isinstance(meta, dict):
        return ["meta.json is not a JSON object"]
    out = [f"{k} missing or not {ty.__name__}" for k, ty in META_FIELDS.items()
           if not isinstance(meta.get(k), ty) or (ty is int and isinstance(meta.get(k), bool))]
    if "seed" not in meta:
        out.append("seed missing (null when there is none)")
    if meta.get("status") not in META_STATUS:
        out.append(f"status {meta.get('status')!r} is not one of {', '.join(META_STATUS)}")
    if isinstance(meta.get("file"), str) and not os.path.isfile(os.path.join(d, meta["file"])):
        out.append(f"file {meta['file']!r} is not in the directory")
    if isinstance(meta.get("id"), str) and meta["id"] != os.path.basename(os.path.normpath(d)):
        out.append(f"id {meta['id']!r} does not name the directory")
    return out


def load_meta(d):
    """meta.json of a regression directory; a damaged one is a UsageError."""
    path = os.path.join(d, "meta.json")
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: a damaged regression description: {e}") from e
    if not isinstance(meta, dict):
        raise UsageError(f"{path}: a damaged regression description: not a JSON object")
    for k in ("file", "target", "status", "what"):
        if k in meta and not isinstance(meta[k], (str, type(None))):
            raise UsageError(f"{path}: a damaged regression description: {k} is not a string")
    return meta


def repro_regression(args):
    d = os.path.abspath(args.file)
    meta = load_meta(d)
    inputs = [p for p in sorted(glob.glob(os.path.join(d, "*")))
              if os.path.isfile(p) and not p.endswith((".json", ".md", ".txt"))]
    if meta.get("file") and os.path.join(d, meta["file"]) in inputs:
        inputs = [os.path.join(d, meta["file"])]
    if not inputs:
        raise UsageError(f"{d}: no input file next to meta.json")
    print(f"regression {os.path.basename(d)}: {meta.get('what', '')} (status {meta.get('status')}, "
          f"first seen {meta.get('first_seen')}, {meta.get('sightings')} sighting(s))")
    worst = EXIT_OK
    # a fuzz target's input goes to that target, whatever else its bytes
    # look like (fuzz_trace_load's inputs are traces, a VHDX target's images)
    target = meta.get("target") if meta.get("method") == "fuzz" else None
    fuzz_input = bool(target) and target in fuzz_targets()
    for p in inputs:
        sub = type(args)(**dict(vars(args), file=p))
        if fuzz_input:
            sub.target = target
            worst = max(worst, repro_fuzz(sub))
        else:
            worst = max(worst, dispatch(sub))
    return worst


# ---- the artifacts ---------------------------------------------------------------------------
def is_fuzz_file(path):
    return os.path.isfile(path) and is_fuzz_input(path)


# Every artifact kind `powercut repro` knows: (what, test, handler).  The
# first whose test accepts the path runs.
ARTIFACTS = [
    ("VHDX image", is_vhdx, repro_image),
    ("stored regression", is_regression_dir, repro_regression),
    ("fault reproducer", faults.is_fault_repro, faults.repro_fault),
    ("external fault plan", faults.is_exec_repro, faults.repro_exec),
    ("sweep reproducer", is_pctrace, repro_pctrace),
    ("fuzz input", is_fuzz_file, repro_fuzz),
]


def dispatch(args):
    """Runs the handler of the first artifact kind that accepts args.file."""
    for _what, accepts, handler in ARTIFACTS:
        try:
            ok = accepts(args.file)
        except OSError as e:
            raise UsageError(f"{args.file}: {e}") from e
        if ok:
            return handler(args)
    raise UsageError(f"{args.file}: not an artifact this build knows (a .pctrace reproducer, a fault reproducer, "
                     f"a VHDX image, a fuzz crash -- give --target when its path names no fuzz target -- or a "
                     f"regression directory with meta.json)")


def cmd_repro(args):
    if not os.path.exists(args.file):
        raise UsageError(f"{args.file}: no such file")
    if getattr(args, "target", None):
        return repro_fuzz(args)  # any file is an input of the named fuzz target
    return dispatch(args)
