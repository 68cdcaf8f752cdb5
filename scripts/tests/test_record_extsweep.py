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
