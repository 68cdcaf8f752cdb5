"""`powercut record --file IMG --out TRACE -- CMD...`: record every write-side
call any program makes on one file into a harness trace.

The command runs with LD_PRELOAD=libpcrecord.so (record/src/pcrecord.c),
which appends each pwrite/pwritev/write/ftruncate/fallocate/fsync/fdatasync/
sync_file_range/... on IMG (known by device and inode) to a spool, in
completion order across threads.  Before the run a copy of IMG is taken (the
base); afterwards pcrecord-pack stores base + operations in TRACE (flag
EXTERNAL) and checks that base + trace reproduces the file the program left.
The trace is self-contained: `pcsweep info|sweep --trace|export|repro` and
`powercut sweep --trace T --checker ...` need nothing else.

Exit status: 0 complete trace; 2 usage error, the command failed (unless
--allow-fail), or the recording is incomplete (the trace is still written and
says why in its metadata: record.complete, record.stopped, record.verified).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

from . import build
from .common import (BUILD, EXIT_OK, EXIT_USAGE, ROOT, InfraError, UsageError, build_dir, check_output_file, run, say,
                     show_cmd, tool)

TARGETS = ["pcrecord", "pcrecord-pack", "pcsweep", "vhdxtool"]


def presets():
    try:
        with open(os.path.join(ROOT, "CMakePresets.json")) as f:
            return {p["name"] for p in json.load(f).get("configurePresets", [])}
    except (OSError, ValueError):
        return set()


def ensure_tools(preset, quiet=False):
    """Builds the record/sweep tools of a preset (a CMake preset, or any
    already-configured tree build/<name>) and returns a tool() lookup."""
    if preset in presets():
        build.ensure_built(preset, TARGETS, quiet=quiet)
    elif os.path.exists(os.path.join(build_dir(preset), "CMakeCache.txt")):
        run(["cmake", "--build", build_dir(preset), "--target"] + TARGETS, quiet=quiet, capture=quiet)
    else:
        raise UsageError(f"--preset {preset}: neither a CMake preset nor a configured tree under {BUILD}")
    return lambda name: tool(preset, name)


def preload_library(t):
    so = os.path.join(os.path.dirname(t("pcrecord-pack")), "libpcrecord.so")
    if not os.path.exists(so):
        raise InfraError(f"{so} was not built")
    return so


def add_parser(sub):
    p = sub.add_parser("record", help="record a program's writes to an image as a trace (LD_PRELOAD)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--file", required=True, help="the image the program writes (recorded by device+inode)")
    p.add_argument("--out", required=True, help="trace to write (.pctrace)")
    p.add_argument("--preset", default="default", help="build tree of the tools (default: %(default)s)")
    p.add_argument("--allow-fail", action="store_true", help="keep the trace when the command exits nonzero")
    p.add_argument("--keep", action="store_true", help="keep the spool and the base copy next to the trace")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE", help="extra trace metadata")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...", help="the program and its arguments")
    p.set_defaults(func=cmd_record)


def record(t, img, out, cmd, allow_fail=False, keep=False, meta=(), quiet=False):
    """Runs cmd under the recorder; writes the trace to out.  Returns
    (status, info) where info holds the command's exit status and the
    packer's summary."""
    img = os.path.abspath(img)
    out = os.path.abspath(out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    work = tempfile.mkdtemp(prefix=".pcrecord-", dir=os.path.dirname(out))
    spool = os.path.join(work, "spool")
    base = os.path.join(work, "base")
    try:
        had_base = os.path.exists(img)
        if had_base:
            if not os.path.isfile(img):
                raise UsageError(f"--file {img}: not a regular file")
            run(["cp", "--sparse=always", "--reflink=auto", img, base], quiet=quiet)
        so = preload_library(t)
        env = dict(os.environ)
        env["LD_PRELOAD"] = so + (" " + env["LD_PRELOAD"] if env.get("LD_PRELOAD") else "")
        env["POWERCUT_RECORD_FILE"] = img
        env["POWERCUT_RECORD_SPOOL"] = spool
        if quiet:
            env["POWERCUT_RECORD_QUIET"] = "1"
        if not quiet:
            show_cmd(["LD_PRELOAD=" + so, "POWERCUT_RECORD_FILE=" + img, "POWERCUT_RECORD_SPOOL=" + spool] + cmd)
        try:
            cp = run(cmd, env=env, check=False, capture=quiet, quiet=True)  # printed above, with its environment
        except InfraError as e:
            raise UsageError(str(e)) from e
        status = cp.returncode
        if status != 0:
            say(f"record: the command exited with status {status}", quiet and allow_fail)
        if not os.path.exists(spool):
            raise InfraError("the recorder wrote no spool (was the program dynamically linked? "
                             "statically linked programs ignore LD_PRELOAD)")
        pack = [t("pcrecord-pack"), "--spool", spool, "--out", out, "--file", img,
                "--meta", "record.command=" + json.dumps(cmd),
                "--meta", f"record.exit_status={status}",
                "--meta", "record.cwd=" + os.getcwd()]
        pack += ["--base", base] if had_base else ["--no-base"]
        if os.path.exists(img):
            pack += ["--final", img]
        for m in meta:
            pack += ["--meta", m]
        pc = run(pack, check=False, capture=True, quiet=quiet)
        sys.stdout.write(pc.stdout.decode(errors="replace")) if not quiet else None
        if pc.returncode == 2:
            raise InfraError("pcrecord-pack failed: " + pc.stderr.decode(errors="replace").strip())
        if pc.stderr and not quiet:
            sys.stderr.write(pc.stderr.decode(errors="replace"))
        info = {"exit_status": status, "pack_status": pc.returncode, "trace": out,
                "summary": pc.stdout.decode(errors="replace").strip(),
                "problems": pc.stderr.decode(errors="replace").strip()}
        if keep:
            for name in ("spool", "base"):
                src = os.path.join(work, name)
                if os.path.exists(src):
                    shutil.move(src, out + "." + name)
        result = EXIT_OK
        if pc.returncode != 0:
            say(f"record: the recording is incomplete; {out} holds what was recorded (see its record.* metadata)",
                quiet)
            result = EXIT_USAGE
        if status != 0 and not allow_fail:
            say(f"record: {out} written, but the command failed (use --allow-fail to accept)", quiet)
            result = EXIT_USAGE
        return result, info
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cmd_record(args):
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("no command given (powercut record --file IMG --out TRACE -- CMD...)")
    for m in args.meta:
        if "=" not in m or m.startswith("="):
            raise UsageError(f"--meta {m}: expected KEY=VALUE")
    # Before the program runs: a trace that cannot be written would waste
    # the run (and a program's run may not be repeatable).
    check_output_file(args.out, "--out")
    if args.keep:
        for ext in (".spool", ".base"):
            check_output_file(args.out + ext, "--keep")
    t = ensure_tools(args.preset)
    status, info = record(t, args.file, args.out, cmd, allow_fail=args.allow_fail, keep=args.keep, meta=args.meta)
    if status == EXIT_OK:
        say(f"record: {args.out} ready: pcsweep info / sweep --trace / export --trace / repro, "
            f"or powercut sweep --trace {args.out} --checker both")
    return status
