"""`powercut run`: the main job with built-in defaults.

Until the crash harness lands this is an end-to-end smoke job through the
real tools: create an image, write seeded data with vhdxtool, replay, check,
export, and compare the export with the data written and with QEMU's
conversion of the same image.
"""
import os
import random
import tempfile

from . import build, setup
from .common import EXIT_FAIL, run, say, tool


def add_parser(sub):
    p = sub.add_parser("run", help="the main job (smoke: create, write, replay, check, export, compare)",
                       description=__doc__)
    p.add_argument("--seed", type=int, default=1, help="data seed (default: %(default)s)")
    p.set_defaults(func=cmd_run)


def cmd_run(args):
    setup.ensure(quiet=True)
    build.ensure_built("default")
    vt = tool("default", "vhdxtool")
    rnd = random.Random(args.seed)
    say(f"run: smoke job, seed {args.seed}")
    with tempfile.TemporaryDirectory(prefix="powercut-run-") as d:
        img, raw = os.path.join(d, "a.vhdx"), os.path.join(d, "a.raw")
        size = 64 << 20
        run([vt, "create", img, str(size), "--block-size", "1M"])
        expect = bytearray(size)
        for i in range(8):
            off = rnd.randrange(0, size - 300000) // 512 * 512
            data = rnd.randbytes(rnd.randrange(1, 300000))
            p = os.path.join(d, f"w{i}.bin")
            with open(p, "wb") as f:
                f.write(data)
            run([vt, "write", img, str(off), p])
            expect[off:off + len(data)] = data
        run([vt, "replay", img])
        run([vt, "check", img])
        run([vt, "export", img, raw])
        with open(raw, "rb") as f:
            got = f.read()
        ok = got == bytes(expect)
        qraw = os.path.join(d, "q.raw")
        run(["qemu-img", "convert", "-O", "raw", img, qraw])
        with open(qraw, "rb") as f:
            qok = f.read() == got
    say(f"run: export matches the data written: {'yes' if ok else 'NO'}; QEMU agrees: {'yes' if qok else 'NO'}")
    return 0 if ok and qok else EXIT_FAIL
