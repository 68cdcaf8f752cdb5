"""`powercut faults`: fault injection through libfiu.

Without --exec it drives the C program pcfaults (built in the `fiu` preset,
where the engine's libfiu points exist): for every default workload it fails
the nth engine call for every n, with every fault kind (eio, enospc, short,
flush, flush-lose, enomem), transient and persistent, while the workload
runs, while crash images are opened (replay) and while the image is
created; each fault is judged live (error reported, handle poisoned or
still correct) and after a power cut and a reopen (the oracle).  Results go
to a run directory (default reports/runs/faults-<time>/): faults.json,
junit.xml, repro/ (one reproducer per violation; `powercut repro FILE`
replays it).  --campaign runs random plans (fiu_enable_random, libfiu's PRNG
seeded from the printed campaign seed); --points prints the fault-point
catalogue and how often the default workloads reach each point.  Options not
listed here go to pcfaults unchanged (`pcfaults --help`).

With --exec -- CMD..., any program runs under libfiu's POSIX preload
(fiu_run_preload.so + fiu_posix_preload.so) and pcfault_preload.so, which
fails exactly the nth call of the chosen libc points; before every run the
image is restored from its base copy, afterwards `vhdxtool check` judges it.
A run is a violation when the image no longer passes the check, the program
dies of a signal, or it exits 0 although --verify data is missing; a fault
the program did not report (exit 0) is listed as "unreported".  --random P
runs libfiu's own enable_random through fiu-run instead, with FIU_PRNG_SEED.

Exit status: 0 no violation; 1 violations; 2 usage or infrastructure error.
"""
import argparse
import json
import os
import shlex
import shutil
import time

from . import ask, build, junit, setup
from .common import (EXIT_FAIL, EXIT_OK, EXIT_USAGE, ROOT, InfraError, LostOutput, TimeoutExpired, UsageError,
                     check_output_dir, check_output_file, is_pctrace, run, run_summarized, save_copy, save_json, say,
                     tool, write_json)

FIU_LIB = "/usr/lib/fiu"

# External (--exec) kinds: libfiu POSIX points and the errno they fail with.
# read()/write() are left out on purpose: programs use them on pipes and
# eventfds (QEMU's event loop), not on the image.
EXEC_KINDS = {
    "write": (["posix/io/rw/pwrite", "posix/io/rw/pwritev"], 5),
    "read": (["posix/io/rw/pread", "posix/io/rw/preadv"], 5),
    "flush": (["posix/io/sync/fdatasync", "posix/io/sync/fsync"], 5),
    "truncate": (["posix/io/rw/ftruncate"], 5),
    "enospc": (["posix/io/rw/pwrite", "posix/io/rw/pwritev", "posix/io/rw/ftruncate"], 28),
    "short": (["posix/io/rw/pwrite/reduce", "posix/io/rw/pwritev/reduce"], 5),
}
EXEC_REPRO_KIND = "powercut-fault-exec"


def add_parser(sub):
    p = sub.add_parser("faults", help="libfiu fault injection: engine fault sweeps, campaigns, or any program",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="fiu", help="build preset with fault points (default: %(default)s; "
                   "fiu-asan for ASan+UBSan)")
    p.add_argument("--out", help="run directory (default reports/runs/faults-<time>/)")
    p.add_argument("--json", help="also write the summary here")
    p.add_argument("--junit", help="also write JUnit XML here")
    p.add_argument("--scenario", default="all", help="workloads (comma list or all)")
    p.add_argument("--seed", type=int, default=1, help="first workload seed")
    p.add_argument("--seeds", type=int, default=1, help="seeds per scenario")
    p.add_argument("--ops", type=int, help="workload operations (pcfaults default: 12)")
    p.add_argument("--kinds", help="fault kinds (the registry: `pcfaults kinds --json`; --exec: " +
                   ",".join(EXEC_KINDS) + ") or all (default all)")
    p.add_argument("--modes", default="all", help="transient,persistent or all (default all)")
    p.add_argument("--phases", help="phases (the registry: `pcfaults kinds --json`) or all (default all)")
    p.add_argument("--max-faults", type=int, help="stop after this many fault plans")
    p.add_argument("--max-seconds", type=int, help="stop after this long")
    p.add_argument("--shard", help="K/N: run only this shard of the plans")
    p.add_argument("--require-complete", action="store_true",
                   help="a sweep that did not run every planned plan fails (JUnit failure, exit status 1) instead of "
                        "being reported as skipped")
    p.add_argument("--campaign", action="store_true", help="random fault plans instead of the sweep")
    p.add_argument("--runs", type=int, help="campaign (or --random) runs (default 50)")
    p.add_argument("--campaign-seed", type=int, help="campaign seed (default: printed)")
    p.add_argument("--probability", type=float, help="campaign per-call failure probability (default 0.02)")
    p.add_argument("--points", action="store_true", help="print the catalogue and the calls of the default workloads")
    g = p.add_argument_group("external programs (--exec -- CMD...)")
    g.add_argument("--exec", action="store_true", help="run CMD under libfiu's POSIX preload with a fault plan")
    g.add_argument("--image", help="the image CMD writes; judged with vhdxtool check after every run")
    g.add_argument("--base", help="restore the image from this file before every run (default: a copy of --image "
                   "taken first)")
    g.add_argument("--nth", type=int, help="only this n (default: every n up to the calls of a clean run)")
    g.add_argument("--stride", type=int, default=1, help="only every Nth n (default 1)")
    g.add_argument("--verify", action="append", default=[], metavar="OFF:LEN:BYTE",
                   help="when CMD exits 0, virtual [OFF, OFF+LEN) must read as BYTE (hex), e.g. 0:4M:ab")
    g.add_argument("--random", type=float, metavar="P", help="libfiu enable_random on the kinds' points with "
                   "probability P (via fiu-run), --runs times, seeded by FIU_PRNG_SEED")
    g.add_argument("--fiu-seed", type=int, default=1, help="first FIU_PRNG_SEED of --random (default 1)")
    g.add_argument("--timeout", type=int, default=120, help="seconds per program run (default 120)")
    # The program of --exec follows "--"; it is taken from the unparsed rest
    # (a positional would swallow the values of options passed to pcfaults).
    p.usage = "%(prog)s [options] [pcfaults options]\n       %(prog)s --exec --image IMG [options] -- CMD ..."
    p.set_defaults(func=cmd_faults, passthrough=True)


def new_run_dir(prefix, create=True):
    """A fresh reports/runs/<prefix>-<time>/ (created, unless create is
    False: then the tool that writes into it creates it once it accepted
    its arguments, so a refused command leaves no empty directory)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    d = os.path.join(ROOT, "reports", "runs", f"{prefix}-{stamp}")
    n = 1
    while os.path.exists(d):
        n += 1
        d = os.path.join(ROOT, "reports", "runs", f"{prefix}-{stamp}-{n}")
    if create:
        os.makedirs(d)
    return d


def fiu_available():
    return os.path.exists("/usr/include/fiu.h") and os.path.exists(os.path.join(FIU_LIB, "fiu_posix_preload.so"))


def ensure_fiu_tools(preset, quiet=False):
    """Builds the fault tools of a fiu preset; returns a tool() lookup."""
    setup.ensure(["libfiu-dev", "fiu-utils"], quiet=True)
    if not fiu_available():
        raise InfraError("libfiu is not installed (libfiu-dev, fiu-utils)")
    build.ensure_built(preset, quiet=quiet)
    t = lambda name: tool(preset, name)  # noqa: E731
    if not os.path.exists(t("pcfaults")):
        raise UsageError(f"pcfaults was not built in preset {preset} (does it set POWERCUT_FIU=ON?)")
    return t


# ---- the engine sweep / campaign / points (pcfaults) ---------------------------------
def pcfaults_args(args):
    a = ["--scenario", args.scenario, "--seed", str(args.seed), "--seeds", str(args.seeds)]
    if args.ops is not None:
        a += ["--ops", str(args.ops)]
    if args.kinds:
        a += ["--kinds", args.kinds]
    if args.max_faults:
        a += ["--max-faults", str(args.max_faults)]
    if args.max_seconds:
        a += ["--max-seconds", str(args.max_seconds)]
    if args.shard:
        a += ["--shard", args.shard]
    if args.stride and args.stride != 1:
        a += ["--stride", str(args.stride)]
    return a


def print_summary(s, path):
    print(f"\n{'kind':11s} {'plans':>7s} {'injected':>9s} {'states':>8s} {'refused':>8s} {'violations':>10s}")
    for k, v in s.get("kinds", {}).items():
        if v["plans"]:
            print(f"{k:11s} {v['plans']:>7d} {v['injected']:>9d} {v['states']:>8d} {v['refusals']:>8d} "
                  f"{v['violations']:>10d}")
    print(f"\n{'phase':11s} {'plans':>7s} {'injected':>9s} {'states':>8s} {'violations':>10s}")
    for k, v in s.get("phases", {}).items():
        if v["plans"]:
            print(f"{k:11s} {v['plans']:>7d} {v['injected']:>9d} {v['states']:>8d} {v['violations']:>10d}")
    print(f"\ntotal: {s['injected']} faults injected ({s['injections']} failed calls), {s['crash_states']} crash "
          f"states judged, {s['violations']} violations, {s['faults_per_sec']:.0f} faults/s, {s['wall_s']:.1f} s; "
          f"fault points reached {s['points_reached']} of {s['points_catalogue']}  ({s['engine']})")
    cov = s.get("coverage") or {}
    print(f"coverage: {cov.get('text', '?')}" + ("" if s.get("complete", True) else
                                                 f"; INCOMPLETE (stopped by {cov.get('stopped_by') or '?'}): the "
                                                 f"plans not run may hold violations (resume: --first-plan "
                                                 f"{s.get('next_plan')})"))
    if "campaign_seed" in s:
        print(f"campaign seed {s['campaign_seed']} (repeat with --campaign-seed {s['campaign_seed']})")
    sigs = s.get("signatures") or []
    if sigs:
        print(f"\n{s['violations']} violations in {len(sigs)} signature(s) "
              f"(invariant | phase | kind | scenario | structure):")
    for g in sigs[:20]:
        ex = g["examples"][0]
        print(f"  {g['count']:6d}  {g['signature']}\n          first: seed {ex['seed']} {ex['plan']}, {ex['state']}")
        if g.get("reproducer"):
            print(f"          reproduce: scripts/powercut repro {g['reproducer']}")
        elif g.get("no_reproducer"):
            print(f"          no reproducer: {g['no_reproducer']}")
    if len(sigs) > 20:
        print(f"  ... and {len(sigs) - 20} more (see {path})")


def run_pcfaults(args):
    check_output_file(args.json, "--json")
    check_output_file(args.junit, "--junit")
    if args.out:
        check_output_dir(args.out, "--out")
    t = ensure_fiu_tools(args.preset)
    if args.points:
        out = args.out or new_run_dir("faults-points", create=False)
        pj = os.path.join(out, "points.json")
        cmd = [t("pcfaults"), "points", "--json", pj] + list(args.extra or [])
        if args.ops is not None:
            cmd += ["--ops", str(args.ops)]
        cp = run(cmd, check=False)
        if cp.returncode != 0:
            raise InfraError(f"pcfaults points failed (status {cp.returncode})")
        if args.json:
            save_copy(pj, args.json, "--json")
        return EXIT_OK
    out = args.out or new_run_dir("faults-campaign" if args.campaign else "faults", create=False)
    fj, ju = os.path.join(out, "faults.json"), os.path.join(out, "junit.xml")
    cmd = [t("pcfaults"), "campaign" if args.campaign else "sweep"] + pcfaults_args(args)
    if args.campaign:
        if args.runs:
            cmd += ["--runs", str(args.runs)]
        if args.campaign_seed is not None:
            cmd += ["--campaign-seed", str(args.campaign_seed)]
        if args.probability:
            cmd += ["--probability", str(args.probability)]
    else:
        cmd += ["--modes", args.modes]
        if args.phases:
            cmd += ["--phases", args.phases]
    if args.require_complete:
        cmd.append("--require-complete")
    cmd += ["--json", fj, "--repro-dir", os.path.join(out, "repro")] + list(args.extra or [])
    status, summary = run_summarized(cmd, "pcfaults", fj, ju, out, args.json, args.junit,
                                     junit_of=lambda s: junit.faults(s, args.require_complete))
    print_summary(summary, fj)
    print(f"\nrun directory: {out}")
    for m in summary.get("lost_outputs", []):
        say(f"faults: {m}")
    return EXIT_USAGE if summary.get("lost_outputs") else status


# ---- external programs (--exec) ---------------------------------------------------------
def preload_env(t, points, mode, nth, err, log):
    so = t("pcfault_preload.so")
    if not os.path.exists(so):
        raise InfraError(f"{so} was not built (the preload is built in unsanitized fiu presets)")
    return {
        "LD_PRELOAD": f"{FIU_LIB}/fiu_run_preload.so {FIU_LIB}/fiu_posix_preload.so {so}",
        "FIU_CTRL_FIFO": "",
        "PCFAULT_POINTS": ",".join(points),
        "PCFAULT_MODE": mode,
        "PCFAULT_NTH": str(nth),
        "PCFAULT_ERRNO": str(err),
        "PCFAULT_LOG": log,
    }


def parse_log(path):
    calls, injected = {}, []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                w = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
                if line.startswith("calls "):
                    calls[w["point"]] = int(w["calls"])
                elif line.startswith("inject "):
                    injected.append(w)
    return calls, injected


def parse_size(s):
    mul = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(s[-1:].lower(), 1)
    return int(s[:-1] if mul > 1 else s, 0) * mul


def parse_verify(specs):
    out = []
    for v in specs:
        try:
            off, ln, byte = v.split(":")
            out.append((parse_size(off), parse_size(ln), int(byte, 16)))
        except ValueError as e:
            raise UsageError(f"--verify takes OFF:LEN:BYTE (hex byte), not {v!r}") from e
    return out


def judge_image(t, image, verify, exit_ok, quiet=True):
    """(ok, invariant, detail) for the image a run left."""
    cp = run([t("vhdxtool"), "check", image, "--json"], check=False, capture=True, quiet=quiet)
    if cp.returncode == 2:
        return False, "check-failed", cp.stderr.decode(errors="replace").strip()[-400:]
    if cp.returncode != 0:
        detail = cp.stdout.decode(errors="replace")
        try:
            rep = json.loads(detail)
            errs = [p for p in rep.get("problems", []) if p.get("severity") == "error"]
            if errs:
                detail = f"{errs[0].get('field')}: {errs[0].get('message')} [{errs[0].get('code')}]"
        except ValueError:
            detail = detail.strip()[-400:]
        return False, "image-invalid", f"vhdxtool check: {detail}"
    if exit_ok:
        for off, ln, byte in verify:
            rp = run([t("vhdxtool"), "read", image, str(off), str(ln), "-"], check=False, capture=True, quiet=quiet)
            if rp.returncode != 0 or rp.stdout != bytes([byte]) * ln:
                bad = next((i for i, b in enumerate(rp.stdout) if b != byte), len(rp.stdout))
                return False, "data-lost", (f"the program exited 0, yet virtual offset {off + bad} does not read "
                                            f"0x{byte:02x} (vhdxtool read status {rp.returncode})")
    return True, "", ""


def exec_once(t, cmd, image, base, points, mode, nth, err, workdir, verify, timeout, fiu_cmd=None, fiu_seed=None,
              quiet=False):
    """One program run with a plan; returns a result dict."""
    shutil.copyfile(base, image)
    log = os.path.join(workdir, "pcfault.log")
    if os.path.exists(log):
        os.unlink(log)
    if fiu_cmd:
        full = ["env", f"FIU_PRNG_SEED={fiu_seed}", "fiu-run", "-x", "-f", ""]
        for c in fiu_cmd:
            full += ["-c", c]
        full += cmd
    else:
        env = preload_env(t, points, mode, nth, err, log)
        full = ["env"] + [f"{k}={v}" for k, v in env.items()] + cmd
    t0 = time.time()
    try:
        cp = run(full, check=False, capture=True, quiet=quiet, timeout=timeout)
        status, out, errout = cp.returncode, cp.stdout, cp.stderr
    except TimeoutExpired:
        status, out, errout = "timeout", b"", b""
    calls, injected = parse_log(log)
    res = {"plan": {"points": points, "mode": mode, "nth": nth, "errno": err} if not fiu_cmd else
           {"fiu": fiu_cmd, "fiu_seed": fiu_seed},
           "status": status, "seconds": round(time.time() - t0, 3), "calls": calls,
           "injected": len(injected) if not fiu_cmd else None,
           "stderr": errout.decode(errors="replace").strip()[-600:],
           "stdout": out.decode(errors="replace").strip()[-300:]}
    if status == "timeout":
        res.update(ok=False, invariant="timeout", detail=f"the program ran longer than {timeout} s")
    elif isinstance(status, int) and status < 0:
        res.update(ok=False, invariant="crash", detail=f"the program died of signal {-status}")
    else:
        ok, inv, detail = judge_image(t, image, verify, status == 0, quiet=True)
        res.update(ok=ok, invariant=inv, detail=detail)
    res["unreported"] = bool(res["ok"] and status == 0 and (res["injected"] or 0) > 0)
    return res


def save_exec_repro(path, cmd, image, base, points, mode, nth, err, verify, res):
    write_json(path, {"kind": EXEC_REPRO_KIND, "cmd": cmd, "image": os.path.abspath(image),
                      "base": os.path.abspath(base), "points": points, "mode": mode, "nth": nth, "errno": err,
                      "verify": [f"{o}:{n}:{b:02x}" for o, n, b in verify],
                      "invariant": res.get("invariant"), "detail": res.get("detail")})


def run_exec(args):
    if not args.cmd:
        raise UsageError("--exec needs a program: powercut faults --exec --image IMG -- CMD ...")
    if not args.image:
        raise UsageError("--exec needs --image IMG (the file the program writes, judged afterwards)")
    image = os.path.abspath(args.image)
    if not os.path.isfile(args.base or image):
        raise UsageError(f"{args.base or image}: no such file")
    kinds = list(EXEC_KINDS) if not args.kinds or args.kinds == "all" else args.kinds.split(",")
    for k in kinds:
        if k not in EXEC_KINDS:
            raise UsageError(f"--kinds: unknown external kind {k!r} ({', '.join(EXEC_KINDS)}, all)")
    modes = ["transient", "persistent"] if args.modes == "all" else args.modes.split(",")
    for m in modes:
        if m not in ("transient", "persistent"):
            raise UsageError(f"--modes: {m!r} is not transient or persistent")
    verify = parse_verify(args.verify)
    check_output_file(args.json, "--json")
    check_output_file(args.junit, "--junit")
    if args.out:
        check_output_dir(args.out, "--out")
    t = ensure_fiu_tools(args.preset)
    if shutil.which(args.cmd[0]) is None and not os.path.exists(args.cmd[0]):
        raise UsageError(f"{args.cmd[0]}: program not found")
    out = args.out or new_run_dir("faults-exec")
    os.makedirs(os.path.join(out, "repro"), exist_ok=True)
    base = os.path.abspath(args.base) if args.base else os.path.join(out, "base.img")
    if not args.base:
        shutil.copyfile(image, base)
    say(f"faults --exec: {shlex.join(args.cmd)}; image {image}, restored from {base} before every run")
    t0 = time.time()
    runs, failures = [], []
    sigs = {}  # signature -> {signature, count, first, examples}
    per_kind = {}
    stop = False

    def record(kind, res):
        k = per_kind.setdefault(kind, {"plans": 0, "injected": 0, "violations": 0, "unreported": 0,
                                        "not_reached": 0})
        k["plans"] += 1
        fired = res["injected"] is None or res["injected"] > 0
        k["injected"] += 1 if fired else 0
        k["not_reached"] += 0 if fired else 1
        res["kind"] = kind
        if kind == "short":
            res["unreported"] = False  # a short transfer is not an error: the program should just go on
        runs.append(res)
        k["unreported"] += 1 if res["unreported"] else 0
        if not res["ok"] and fired:
            k["violations"] += 1
            failures.append(res)
            key = exec_signature(kind, res)
            g = sigs.get(key)
            if g:  # the same bug again: counted, not saved or printed again
                g["count"] += 1
                if len(g["examples"]) < 5:
                    g["examples"].append({"plan": res["plan"], "detail": res["detail"]})
                return
            p = res["plan"]
            g = sigs[key] = {"signature": key, "kind": kind, "invariant": res["invariant"], "count": 1,
                             "examples": [{"plan": p, "detail": res["detail"]}], "reproducer": None}
            if "points" in p:
                rp = os.path.join(out, "repro", f"exec-{kind}-{len(sigs):04d}.json")
                save_exec_repro(rp, args.cmd, image, base, p["points"], p["mode"], p["nth"], p["errno"], verify, res)
                res["reproducer"] = g["reproducer"] = rp
            say(f"VIOLATION [{res['invariant']}] {kind} {p}: {res['detail']}\n  signature: {key} (further runs "
                f"with it are counted, not printed)")

    def over_limit():
        return ((args.max_faults and len(runs) >= args.max_faults) or
                (args.max_seconds and time.time() - t0 >= args.max_seconds))

    if args.random is not None:
        if not (0 < args.random <= 1):
            raise UsageError("--random takes a probability in (0, 1]")
        if not shutil.which("fiu-run"):
            raise InfraError("fiu-run is not installed (fiu-utils)")
        for r in range(args.runs or 50):
            if over_limit():
                stop = True
                break
            kind = kinds[r % len(kinds)]
            pts, err = EXEC_KINDS[kind]
            fiu_cmd = [f"enable_random name={p},probability={args.random},failinfo={err}" for p in pts]
            res = exec_once(t, args.cmd, image, base, pts, "random", 0, err, out, verify, args.timeout,
                            fiu_cmd=fiu_cmd, fiu_seed=args.fiu_seed + r)
            record(kind, res)
    else:
        for kind in kinds:
            pts, err = EXEC_KINDS[kind]
            # A clean run counts the calls of this kind's points.
            res = exec_once(t, args.cmd, image, base, pts, "count", 1, err, out, verify, args.timeout)
            if not res["ok"]:
                raise InfraError(f"the program fails without faults ({res['invariant']}: {res['detail']}); "
                                 f"status {res['status']}: {res['stderr']}")
            total = sum(res["calls"].values())
            say(f"faults --exec: kind {kind}: {total} calls of {', '.join(pts)} in a clean run")
            ns = [args.nth] if args.nth else list(range(1, total + 1, max(1, args.stride)))
            for mode in modes:
                for n in ns:
                    if over_limit():
                        stop = True
                        break
                    res = exec_once(t, args.cmd, image, base, pts, mode, n, err, out, verify, args.timeout)
                    record(kind, res)
                if stop:
                    break
            if stop:
                break
    wall = time.time() - t0
    injected = sum(k["injected"] for k in per_kind.values())
    signatures = sorted(sigs.values(), key=lambda g: -g["count"])
    summary = {"tool": "powercut faults --exec", "cmd": args.cmd, "image": image, "base": base,
               "injected": injected, "violations": len(failures),
               "unreported": sum(k["unreported"] for k in per_kind.values()),
               "plans": len(runs), "wall_s": round(wall, 3),
               "faults_per_sec": round(injected / wall, 2) if wall > 0 else 0.0,
               "stopped_early": stop, "complete": not stop,
               "coverage": {"done": len(runs), "planned": None if stop else len(runs), "unit": "plans",
                            "complete": not stop,
                            "text": f"{len(runs)} plans" + (" (stopped by --max-faults/--max-seconds)" if stop
                                                            else " (complete)")},
               "kinds": per_kind, "runs": runs, "signatures": signatures,
               "failures": [{k: f.get(k) for k in ("kind", "plan", "status", "invariant", "detail", "reproducer")}
                            for f in failures if f.get("reproducer")]}
    ej = os.path.join(out, "faults.json")
    write_json(ej, summary)
    junit.write(os.path.join(out, "junit.xml"), junit.faults_exec(per_kind, signatures, wall, stop,
                                                                  getattr(args, "require_complete", False)))
    lost = []
    for src, dst, what in ((ej, args.json, "--json"), (os.path.join(out, "junit.xml"), args.junit, "--junit")):
        if dst:
            try:
                save_copy(src, dst, what)
            except LostOutput as e:
                lost.append(str(e))
    print(f"\n{'kind':9s} {'plans':>6s} {'injected':>9s} {'unreported':>11s} {'violations':>11s}")
    for k, v in per_kind.items():
        print(f"{k:9s} {v['plans']:>6d} {v['injected']:>9d} {v['unreported']:>11d} {v['violations']:>11d}")
    by_inv = {}
    for f in failures:
        by_inv[f["invariant"]] = by_inv.get(f["invariant"], 0) + 1
    print(f"\ntotal: {injected} faults injected, {summary['unreported']} not reported by the program (exit 0), "
          f"{len(failures)} violations {by_inv or ''} in {len(signatures)} signature(s), {wall:.1f} s")
    print(f"coverage: {summary['coverage']['text']}")
    for g in signatures[:10]:
        print(f"  {g['count']:5d}  {g['signature']}\n         first: {g['examples'][0]['plan']}: "
              f"{g['examples'][0]['detail'][:200]}")
        if g.get("reproducer"):
            print(f"         reproduce: scripts/powercut repro {g['reproducer']}")
    print(f"\nrun directory: {out}")
    for m in lost:
        say(f"faults: {m}")
    if lost:
        return EXIT_USAGE
    return EXIT_FAIL if failures or (stop and getattr(args, "require_complete", False)) else EXIT_OK


def exec_signature(kind, res):
    """invariant | kind | structure: one report per bug.  The structure is
    the engine error and field `vhdxtool check` names, or else the detail
    without the GUIDs and numbers that differ from run to run."""
    import re
    detail = res.get("detail") or ""
    code = re.search(r"\[(VHDX_E_\w+)\]", detail)
    field = re.search(r"vhdxtool check: ([\w.\[\]]+):", detail)
    if code:
        structure = code.group(1) + (" " + field.group(1) if field else "")
    else:
        structure = re.sub(r"\{[0-9A-Fa-f-]+\}", "{GUID}", detail)
        structure = " ".join(re.sub(r"0x[0-9a-fA-F]+|\d+", "N", structure).split())[:100]
    return f"{res.get('invariant')}|{kind}|{structure}"


def split_program(args):
    """args.extra = [pcfaults options...] [-- CMD...]: sets args.cmd, keeps the options in args.extra."""
    extra = list(getattr(args, "extra", None) or [])
    if "--" in extra:
        i = extra.index("--")
        args.cmd, args.extra = extra[i + 1:], extra[:i]
    else:
        args.cmd, args.extra = [], extra


def cmd_faults(args):
    split_program(args)
    if args.exec:
        if args.extra:
            raise UsageError(f"unknown options for --exec: {' '.join(args.extra)}")
        return run_exec(args)
    if args.cmd:
        raise UsageError(f"unexpected arguments {' '.join(args.cmd)!r} (a program to run needs --exec)")
    if args.campaign and args.points:
        raise UsageError("--campaign and --points exclude each other")
    return run_pcfaults(args)


# ---- reproducers: `powercut repro FILE` ---------------------------------------------------
def is_fault_repro(path, pcsweep=None):
    """A .pctrace whose metadata names a fault plan (`pcsweep info --json`)."""
    if not is_pctrace(path):
        return False
    if pcsweep is None:
        pcsweep = next((p for p in (tool(pr, "pcsweep") for pr in ("default", "fiu", "fiu-asan", "asan"))
                        if os.path.exists(p)), None)
        if pcsweep is None:
            raise InfraError("pcsweep is not built (scripts/powercut build): cannot read the reproducer")
    meta = ask.trace_meta(pcsweep, path)
    return bool(meta and "fault.plan" in meta)


def repro_fault(args):
    preset = args.preset if getattr(args, "preset", "default") not in (None, "default") else "fiu"
    t = ensure_fiu_tools(preset, quiet=True)
    cmd = [t("pcfaults"), "repro", args.file]
    if getattr(args, "json", None):
        cmd += ["--json", args.json]
    return run(cmd, check=False).returncode


def is_exec_repro(path):
    if not path.endswith(".json"):
        return False
    try:
        with open(path) as f:
            return json.load(f).get("kind") == EXEC_REPRO_KIND
    except (OSError, ValueError, AttributeError):
        return False


def repro_exec(args):
    try:
        with open(args.file) as f:
            r = json.load(f)
        need = {"cmd": list, "image": str, "base": str, "points": list, "mode": str, "nth": int, "errno": int}
        bad = [k for k, ty in need.items() if not isinstance(r.get(k), ty)]
    except (OSError, ValueError) as e:
        raise UsageError(f"{args.file}: a damaged fault plan: {e}") from e
    if bad:
        raise UsageError(f"{args.file}: a damaged fault plan: {', '.join(bad)} missing or of the wrong type")
    check_output_file(getattr(args, "json", None), "--json")
    preset = args.preset if getattr(args, "preset", "default") not in (None, "default") else "fiu"
    t = ensure_fiu_tools(preset, quiet=True)
    workdir = os.path.dirname(os.path.abspath(args.file))
    verify = parse_verify(r.get("verify", []))
    res = exec_once(t, r["cmd"], r["image"], r["base"], r["points"], r["mode"], r["nth"], r["errno"], workdir,
                    verify, 300)
    print(f"program:   {shlex.join(r['cmd'])}\nplan:      {r['mode']} nth={r['nth']} errno={r['errno']} on "
          f"{', '.join(r['points'])}\nstatus:    {res['status']}, {res['injected']} fault(s) injected")
    if res["stderr"]:
        print(f"stderr:    {res['stderr'][-300:]}")
    print(f"verdict:   {'OK (no violation)' if res['ok'] else 'VIOLATION [' + res['invariant'] + '] ' + res['detail']}")
    if r.get("invariant") and res["ok"]:
        print(f"note:      the reproducer recorded '{r['invariant']}'; this run does not show it")
    if getattr(args, "json", None):
        save_json(args.json, res)
    return EXIT_OK if res["ok"] else EXIT_FAIL
