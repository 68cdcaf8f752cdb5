"""The external-checker sweep (pclib.extsweep): qemu-io command parsing, the
read-back judgement (old or new per sector, never garbage; acknowledged
durable data never older; the end state exact), the trace reader, and a
bounded sweep of a recorded qemu-io trace with each checker.
"""
import json
import os
import shutil
import subprocess

import pytest

from pclib import extsweep
from pclib.common import PYTHON, ROOT

PRESET = os.environ.get("POWERCUT_TEST_PRESET", "default")
needs_qemu = pytest.mark.skipif(not shutil.which("qemu-img") or not shutil.which("qemu-io"),
                                reason="qemu-utils not installed")
S = 512


def test_crc32c_reference():
    from forge import crc32c  # the tests' own, to forge damaged inputs
    assert crc32c(b"123456789") == 0xE3069283


def test_parse_qemu_io_commands():
    p = extsweep.parse_qemu_io_command
    assert p("write -P 0x11 0 64k")[0] == ("write", 0, 65536, 0x11)
    assert p("write 1M 4k")[0] == ("write", 1 << 20, 4096, 0xCD)
    assert p("write -z 2M 512")[0] == ("write", 2 << 20, 512, 0)
    assert p("writev -P 7 4096 512 1k")[0] == ("write", 4096, 1536, 7)
    assert p("flush")[0][0] == "flush"
    assert p("discard 0 1M")[0] == ("discard", 0, 1 << 20, None)
    assert p("read -P 1 0 4k")[0][0] == "read"
    assert p("open foo")[0] is None
    assert p("write -P 1 0")[0] is None
    assert p("write -s file 0 4k")[0] is None


def workload(cmds, nsec=16):
    return extsweep.Workload(cmds, bytes([0xEE]) * (nsec * S))


def img(nsec, sectors):
    b = bytearray([0xEE]) * (nsec * S)
    for s, v in sectors.items():
        b[s * S:(s + 1) * S] = bytes([v]) * S
    return bytes(b)


def test_judge_old_or_new_never_garbage():
    w = workload([("write", 0, 2 * S, 0x11), ("flush", 0, 0, None), ("write", 0, S, 0x22)])
    # Nothing acknowledged: base, first or second write are all fine.
    assert w.judge(img(16, {}), -1, False)[0] == "ok"
    assert w.judge(img(16, {0: 0x22, 1: 0x11}), -1, False)[0] == "ok"
    # Garbage in a written sector, or a change in a sector never written.
    assert w.judge(img(16, {0: 0x99}), -1, False)[0] == "garbage"
    assert w.judge(img(16, {5: 0x11}), -1, False)[0] == "garbage"
    # The flush (command 1) acknowledged the first write: base is now "lost".
    assert w.judge(img(16, {0: 0x11, 1: 0x11}), 1, False)[0] == "ok"
    assert w.judge(img(16, {0: 0x22, 1: 0x11}), 1, False)[0] == "ok"
    assert w.judge(img(16, {0: 0x11}), 1, False)[0] == "lost"
    # The end of the run: exactly the final contents.
    assert w.judge(img(16, {0: 0x22, 1: 0x11}), -1, True)[0] == "ok"
    assert w.judge(img(16, {0: 0x11, 1: 0x11}), -1, True)[0] == "lost"
    assert w.judge(img(15, {}), -1, False)[0] == "size"


def test_judge_unaligned_and_discard_unchecked():
    w = workload([("write", 100, 50, 0x33), ("discard", 4 * S, 2 * S, None)])
    assert w.judge(img(16, {0: 0x77, 4: 0, 5: 0x55}), -1, True)[0] == "ok"


def test_workload_from_trace_metadata():
    argv = ["qemu-io", "-t", "writeback", "-f", "vhdx", "-c", "write -P 1 0 4k", "-c", "flush",
            "--cmd=write -P 2 4k 4k", "x.vhdx"]
    w, why = extsweep.Workload.from_trace({"record.command": json.dumps(argv)}, bytes(16 * S))
    assert why is None and [c[0] for c in w.cmds] == ["write", "flush", "write"]
    assert extsweep.Workload.from_trace({"record.command": '["cp", "a", "b"]'}, b"")[0] is None
    assert extsweep.Workload.from_trace({"record.command": json.dumps(["qemu-io", "-c", "frobnicate"])},
                                        b"")[0] is None
    # Proof that the guest flush finished: a payload write of a later command.
    ops = [("W", 0, 4096, 1), ("F", 0, 0, None), ("W", 1 << 20, 4096, 2), ("F", 0, 0, None)]
    w.locate(ops)
    assert w.proof == {1: 2}
    assert w.acked(2) == -1 and w.acked(3) == 1
    # qemu-io's default cache mode is writethrough: every write is followed by a flush.
    argv = ["qemu-io", "-f", "vhdx", "-c", "write -P 1 0 4k", "-c", "write -P 2 4k 4k", "x.vhdx"]
    w, _ = extsweep.Workload.from_trace({"record.command": json.dumps(argv)}, bytes(16 * S))
    assert [c[0] for c in w.cmds] == ["write", "flush", "write", "flush"]
    w.locate(ops)
    assert w.proof == {1: 2} and w.acked(3) == 1
    argv[1:1] = ["-t", "unsafe"]
    w, _ = extsweep.Workload.from_trace({"record.command": json.dumps(argv)}, bytes(16 * S))
    w.locate(ops)
    assert w.proof == {}


@pytest.fixture(scope="module")
def qemu_trace(tmp_path_factory):
    from pclib.record import ensure_tools, record
    t = ensure_tools(PRESET, quiet=True)
    d = tmp_path_factory.mktemp("ext")
    img = d / "q.vhdx"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M,log_size=1M", str(img), "4M"],
                   check=True)
    trace = d / "q.pctrace"
    status, _ = record(t, str(img), str(trace), ["qemu-io", "-f", "vhdx", "-c", "write -P 0x11 0 64k",
                                                 "-c", "flush", "-c", "write -P 0x22 1M 4k", str(img)], quiet=True)
    assert status == 0
    return t, d, trace


@needs_qemu
def test_read_trace_matches_pcsweep_info(qemu_trace):
    t, d, trace = qemu_trace
    tr = extsweep.read_trace(str(trace))
    out = subprocess.run([t("pcsweep"), "info", str(trace)], stdout=subprocess.PIPE, text=True).stdout
    assert f"operations: {len(tr['ops'])} " in out
    assert tr["flags"] & 2 and json.loads(tr["meta"]["record.command"])[0] == "qemu-io"
    assert any(op[0] == "W" and op[3] == 0x11 for op in tr["ops"])


def sweep(d, trace, checker, n):
    out = d / f"{checker}.json"
    cp = subprocess.run([PYTHON, "-m", "pclib.extsweep", "--trace", str(trace), "--checker", checker,
                         "--preset", PRESET, "--max-states", str(n), "--json", str(out), "--keep-failures", "1"],
                        cwd=os.path.join(ROOT, "scripts"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert cp.returncode in (0, 1), cp.stderr
    rep = json.loads(out.read_text())
    return cp.returncode, rep


@needs_qemu
@pytest.mark.parametrize("checker", ["vhdxtool", "qemu", "both"])
def test_external_sweep_checkers(qemu_trace, checker):
    _, d, trace = qemu_trace
    status, rep = sweep(d, trace, checker, 24)
    assert rep["states"] == 24 and rep["states_per_sec"] > 0
    assert rep["readback"] == "qemu-io commands"
    names = ["vhdxtool", "qemu"] if checker == "both" else [checker]
    assert rep["checkers"] == names
    for st in rep["states_detail"]:
        for c in names:
            assert st[c]["open"] in ("opened", "replayed", "refused", "opened-log-not-replayed")
            if st[c]["open"] != "refused":
                assert st[c]["data"] == "ok", st   # QEMU and our engine keep the data in these states
    assert status == (1 if any(rep["violating_states"].values()) else 0)
    assert rep["inprocess"]["states"] == 24


def test_external_sweep_usage_errors(tmp_path):
    def run(*a):
        return subprocess.run([PYTHON, "-m", "pclib.extsweep"] + list(a), cwd=os.path.join(ROOT, "scripts"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert run("--trace", str(tmp_path / "none"), "--checker", "vhdxtool").returncode == 2
    (tmp_path / "bad.pctrace").write_bytes(b"not a trace")
    cp = run("--trace", str(tmp_path / "bad.pctrace"), "--checker", "vhdxtool", "--preset", PRESET)
    assert cp.returncode == 2 and "not a powercut trace" in cp.stderr
    assert run("--trace", str(tmp_path / "bad.pctrace"), "--checker", "nope").returncode == 2


# ---- the qemu-io session path and command checkers -----------------------------------------------
TRACE = os.path.join(ROOT, "record", "traces", "qemu-io-4cmd.pctrace")
VERDICT_KEYS = ("open", "error", "check_errors", "data", "data_detail", "probe", "probe_detail", "violations")


def test_parse_dump():
    from pclib.qemuio import parse_dump
    text = ("00010000:  11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11  ................\n"
            "00010010:  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f  ................\n"
            "read 32/32 bytes at offset 65536\n")
    assert parse_dump(text, 65536, 32) == b"\x11" * 16 + bytes(range(16))
    assert parse_dump(text, 65536, 48) is None       # a dump that does not cover the range
    assert parse_dump(text, 65552, 32) is None       # nor one that starts before it


def test_read_plan_segments():
    # Base: sectors 0-7 zero, 8-15 0xEE; writes of 0x11 over sectors 2-3 and 0x22 over 3-4.
    base = bytes(8 * S) + bytes([0xEE]) * (8 * S)
    w = extsweep.Workload([("write", 2 * S, 2 * S, 0x11), ("write", 3 * S, 2 * S, 0x22)], base)
    p = extsweep.ReadPlan(base, w, None)
    assert [(o // S, ln // S, c) for o, ln, c, _ in p.segments] == [
        (0, 2, (0,)), (2, 1, (0x11, 0)), (3, 1, (0x22, 0x11, 0)), (4, 1, (0x22, 0)), (5, 3, (0,)), (8, 8, (0xEE,))]
    # The probe range is a segment of its own.
    p = extsweep.ReadPlan(bytes(512 * S), None, 128 * S)
    assert [(o // S, ln // S, inp) for o, ln, _c, inp in p.segments] == [(0, 128, False), (128, 128, True),
                                                                          (256, 256, False)]


@needs_qemu
def test_qemu_io_session(tmp_path):
    from pclib.qemuio import QemuIo
    img = tmp_path / "s.vhdx"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(img), "4M"], check=True)
    s = QemuIo(announce=False)
    try:
        outs = s.run([f"open -o driver=vhdx {img}", "write -q -P 0x5a 0 4k", "read -q -P 0x5a 0 4k",
                      "read -q -P 0x5b 0 4k", "read -v 0 16", "close", f"open -o driver=vhdx {tmp_path}/none"])
        assert outs[:3] == ["", "", ""]
        assert outs[3].startswith("Pattern verification failed at offset 0")
        assert outs[4].startswith("00000000:  5a 5a")
        assert outs[5] == "" and "can't open device" in outs[6]
        assert s.run(["close"]) == ["no file open, try 'help open'\n"]   # still in step after a failure
        assert s.commands == 8
    finally:
        s.close()


def ext(*args, cwd=None):
    return subprocess.run([PYTHON, "-m", "pclib.extsweep", "--preset", PRESET] + list(args),
                          cwd=os.path.join(ROOT, "scripts"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@needs_qemu
def test_session_and_processes_give_the_same_verdicts(tmp_path):
    """The long-lived qemu-io path and one process per check judge every
    state of the committed qemu-io trace alike (power-loss states with and
    without a pending log, and bitflip states QEMU refuses: those go to the
    process path from the session, by design)."""
    reps = {}
    for mode in ("processes", "session"):
        out = tmp_path / f"{mode}.json"
        cp = ext("--trace", TRACE, "--checker", "qemu", "--qemu-mode", mode, "--models", "prefix,bitflip",
                 "--no-compare", "--json", str(out), "--keep-failures", "0", "--batch", "16")
        assert cp.returncode in (0, 1), cp.stderr
        reps[mode] = json.loads(out.read_text())
    a, b = reps["processes"], reps["session"]
    assert a["states"] == b["states"] == a["states_planned"] > 50
    assert b["qemu_mode"]["mode"] == "session" and b["qemu_mode"]["session_states"] > 0
    assert b["qemu_mode"]["process_states"] > 0          # the refusals
    assert 1 <= b["qemu_mode"]["sessions_started"] <= 2  # one per job (default 2), reused from batch to batch
    assert a["qemu_mode"]["session_states"] == 0
    for x, y in zip(a["states_detail"], b["states_detail"]):
        assert x["index"] == y["index"]
        for k in VERDICT_KEYS:
            vx, vy = x["qemu"].get(k), y["qemu"].get(k)
            if k in ("probe_detail", "message") and vx and vy:   # they name each run's scratch copy
                vx, vy = re_path(vx), re_path(vy)
            assert vx == vy, (x["index"], k, vx, vy)
        assert ("check_repaired" in x["qemu"]) == ("check_repaired" in y["qemu"]), x["index"]
    assert [(g["signature"], g["count"]) for g in a["signatures"]] == \
        [(g["signature"], g["count"]) for g in b["signatures"]]
    assert a["outcomes"] == b["outcomes"]
    opens = {st["qemu"]["open"] for st in b["states_detail"]}
    assert {"opened", "replayed", "refused"} <= opens


def re_path(s):
    import re
    return re.sub(r"/\S+", "PATH", s)


def test_command_checker_verdicts(tmp_path):
    """--checker 'CMD {image}': exit 0 opens, another status refuses (a
    violation on a power-loss state), a signal is a crash, past --timeout a
    hang; the image given is a copy of the state."""
    def sweep_with(cmd, *extra):
        out = tmp_path / "c.json"
        cp = ext("--trace", TRACE, "--checker", cmd, "--models", "prefix", "--max-states", "3", "--no-compare",
                 "--json", str(out), "--keep-failures", "0", *extra)
        return cp, json.loads(out.read_text())
    cp, rep = sweep_with("sh -c 'head -c 8 \"$0\" | grep -q vhdxfile' {image}")
    assert cp.returncode == 0, cp.stderr
    assert rep["checkers"] == ["cmd:sh"] and {s["cmd:sh"]["open"] for s in rep["states_detail"]} == {"opened"}
    cp, rep = sweep_with("sh -c 'echo no such thing >&2; exit 3' {image}")
    assert cp.returncode == 1
    r = rep["states_detail"][0]["cmd:sh"]
    assert r["open"] == "refused" and r["error"] == "exit 3" and r["message"] == "no such thing"
    assert rep["signatures"][0]["signature"] == "cmd:sh|refused|power|no such thing"
    cp, rep = sweep_with("sh -c 'kill -SEGV $$' {image}")
    assert cp.returncode == 1
    assert rep["states_detail"][0]["cmd:sh"]["open"] == "crashed"
    assert rep["states_detail"][0]["cmd:sh"]["violations"] == ["checker-crash"]
    cp, rep = sweep_with("sh -c 'sleep 5' {image}", "--timeout", "0.5")
    assert cp.returncode == 1 and rep["states_detail"][0]["cmd:sh"]["violations"] == ["hang"]


def test_command_checker_usage_errors():
    for bad, why in (("vhdiinfo", "{image}"), ("no-such-program-xyz {image}", "not installed"),
                     ("'unbalanced {image}", "cannot split")):
        cp = ext("--trace", TRACE, "--checker", bad)
        assert cp.returncode == 2 and why in cp.stderr, cp.stderr


@pytest.mark.skipif(not shutil.which("vhdiinfo"), reason="vhdiinfo not installed (libvhdi-utils; powercut setup "
                                                          "installs it)")
def test_vhdiinfo_as_checker(tmp_path):
    """libvhdi's reader opens every power-loss state (it does not replay the
    log and says nothing of a pending one) and refuses some bit flips."""
    out = tmp_path / "v.json"
    cp = ext("--trace", TRACE, "--checker", "vhdiinfo {image}", "--models", "prefix,bitflip", "--no-compare",
             "--json", str(out))
    assert cp.returncode == 0, cp.stderr
    rep = json.loads(out.read_text())
    det = rep["states_detail"]
    assert all(s["cmd:vhdiinfo"]["open"] == "opened" for s in det if s["model"] == "prefix")
    assert any(s["log_pending"] for s in det if s["model"] == "prefix")
    refused = [s for s in det if s["cmd:vhdiinfo"]["open"] == "refused"]
    assert refused and all(s["model"] == "bitflip" for s in refused)


def test_content_digest_and_sparse_copy(tmp_path):
    """Equal contents give equal digests whatever their holes; a copy keeps
    the content and leaves zero chunks as holes."""
    from pclib.common import content_digest, data_extents, sparse_copy
    dense, sparse, other = tmp_path / "dense", tmp_path / "sparse", tmp_path / "other"
    body = bytearray(3 << 20)
    body[100:104] = b"vhdx"
    body[(2 << 20) + 5] = 7
    dense.write_bytes(bytes(body))
    with open(sparse, "wb") as f:
        f.seek(100)
        f.write(b"vhdx")
        f.seek((2 << 20) + 5)
        f.write(b"\x07")
        f.truncate(3 << 20)
    body[(2 << 20) + 5] = 8
    other.write_bytes(bytes(body))
    assert content_digest(dense) == content_digest(sparse) != content_digest(other)
    (tmp_path / "longer").write_bytes(dense.read_bytes() + bytes(512))
    assert content_digest(tmp_path / "longer") != content_digest(dense)    # the size counts
    cp = tmp_path / "copy"
    sparse_copy(dense, cp)
    assert cp.read_bytes() == dense.read_bytes()
    with open(cp, "rb") as f:
        ext = data_extents(f, 3 << 20)
    assert sum(ln for _o, ln in ext) < (3 << 20)        # zero chunks became holes (tmpfs, ext4: SEEK_DATA)


def test_qemu_io_session_timeout_and_out_of_step(tmp_path):
    """A session that never prompts times out and is killed; one that
    prompts but does not answer the marker is out of step: both raise
    SessionError (the sweep then judges the state by processes)."""
    from pclib.qemuio import QemuIo, SessionError
    s = QemuIo(program="cat", announce=False)            # echoes, never prompts
    with pytest.raises(SessionError, match="did not answer"):
        s.run(["open x"], timeout=0.5)
    assert s.p is None
    prog = tmp_path / "prompts-only.sh"
    prog.write_text("#!/bin/sh\nprintf 'qemu-io> '\nwhile read l; do printf 'qemu-io> '; done\n")
    prog.chmod(0o755)
    s = QemuIo(program=str(prog), announce=False)
    assert s.run(["open x"], mark=False, timeout=5) == [""]
    with pytest.raises(SessionError, match="out of step"):
        s.run(["close"], timeout=5)
    assert s.p is None
