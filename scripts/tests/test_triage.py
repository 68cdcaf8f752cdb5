"""Triage: crash types, our top frames, deduplication, the regression store."""
import json

from pclib import triage

ASAN = """==1234==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000000011 at pc 0x4f1 bp 0x7ff sp 0x7fe
READ of size 4 at 0x602000000011 thread T0
    #0 0x4f1e2a in __asan_memcpy /build/llvm/asan_interceptors.cpp:22
    #1 0x55d3c1 in vhdx_get32 /work/main/engine/include/vhdx/format.h:71:5
    #2 0x55d9aa in vhdx_log_header_decode /work/main/engine/src/format.c:340:12
    #3 0x55e001 in validate_at /work/main/engine/src/log_search.c:104:7
    #4 0x55e3f0 in vhdx_log_search /work/main/engine/src/log_search.c:301:9
    #5 0x4c2210 in LLVMFuzzerTestOneInput /work/main/fuzz/fuzz_log_replay.c:80:3
    #6 0x43a1c0 in fuzzer::Fuzzer::ExecuteCallback(unsigned char const*, unsigned long) FuzzerLoop.cpp:611:15

0x602000000011 is located 0 bytes to the right of 1-byte region
"""

ASAN_OTHER_INPUT = ASAN.replace("0x602000000011", "0x603000000022").replace("0x55d3c1", "0x55d3c9")

UBSAN = """/work/main/engine/src/crc32c.c:91:30: runtime error: shift exponent 40 is too large for 32-bit type 'uint32_t' (aka 'unsigned int')
    #0 0x51a2b3 in crc32c_sw /work/main/engine/src/crc32c.c:91:30
    #1 0x51a9c0 in crc32c /work/main/engine/src/crc32c.c:150:12
    #2 0x52b111 in vhdx_header_decode /work/main/engine/src/format.c:120:9
SUMMARY: UndefinedBehaviorSanitizer: undefined-behavior /work/main/engine/src/crc32c.c:91:30
"""


def test_crash_type_and_frames():
    assert triage.crash_type(ASAN) == "heap-buffer-overflow READ 4"
    assert triage.top_frames(ASAN) == ["vhdx_get32", "vhdx_log_header_decode", "validate_at"]
    t = triage.crash_type(UBSAN)
    assert t.startswith("UndefinedBehaviorSanitizer: shift exponent N is too large")
    assert triage.top_frames(UBSAN) == ["crc32c_sw", "crc32c", "vhdx_header_decode"]
    assert triage.crash_type("==1==ERROR: libFuzzer: timeout after 25 seconds") == "timeout"
    assert triage.crash_type("nothing to see") is None


def test_dedupe_same_bug_different_inputs():
    fs = [{"state": triage.crash_state(ASAN), "input": "a"},
          {"state": triage.crash_state(ASAN_OTHER_INPUT), "input": "b"},
          {"state": triage.crash_state(UBSAN), "input": "c"},
          {"state": triage.violation_state("sweep", "data:acked-data-lost", "torn"), "input": "d"},
          {"state": triage.violation_state("sweep", "data:acked-data-lost", "torn"), "input": "e"},
          {"state": triage.violation_state("sweep", "data:acked-data-lost", "reorder"), "input": "f"}]
    u = triage.dedupe(fs)
    assert [x["input"] for x in u] == ["a", "c", "d", "f"]
    assert [x["count"] for x in u] == [2, 1, 2, 1]
    assert len({x["id"] for x in u}) == 4
    # the id is stable across runs (a pure function of the state)
    assert triage.dedupe(fs)[0]["id"] == u[0]["id"]


def test_store_regression(tmp_path):
    art = tmp_path / "crash-1"
    art.write_bytes(b"\x01\x02")
    f = triage.dedupe([{"state": triage.crash_state(ASAN), "method": "fuzz", "target": "fuzz_log_replay",
                        "seed": 7, "command": "build/default/fuzz/fuzz_log_replay crash-1"}])[0]
    d = triage.store_regression(f, str(art), root=str(tmp_path / "reg"), now="2026-11-22T00:00:00")
    meta = json.loads((tmp_path / "reg" / f["id"] / "meta.json").read_text())
    assert meta["first_seen"] == "2026-11-22T00:00:00" and meta["sightings"] == 1
    assert meta["crash_type"] == "heap-buffer-overflow READ 4" and meta["seed"] == 7
    assert (tmp_path / "reg" / f["id"] / "crash-1").read_bytes() == b"\x01\x02"
    triage.store_regression(f, str(art), root=str(tmp_path / "reg"), now="2026-11-23T00:00:00")
    meta = json.loads((tmp_path / "reg" / f["id"] / "meta.json").read_text())
    assert meta["first_seen"] == "2026-11-22T00:00:00" and meta["last_seen"] == "2026-11-23T00:00:00"
    assert meta["sightings"] == 2
    assert d.endswith(f["id"])


PROPERTY = """
==powercut-fuzz== /work/main/fuzz/fuzz_log_replay.c:166: check failed: engine replay == reference replay
==powercut-fuzz== sector 12 differs
AddressSanitizer:DEADLYSIGNAL
==77==ERROR: AddressSanitizer: ABRT on unknown address 0x00000004d2 (pc 0x7f0 bp 0x7ff sp 0x7fe T0)
    #0 0x7f01 in raise (/lib/x86_64-linux-gnu/libc.so.6+0x3c1)
    #1 0x7f02 in abort (/lib/x86_64-linux-gnu/libc.so.6+0x25)
    #2 0x4c0001 in fuzz_fail /work/main/fuzz/fuzz_common.c:40:5
    #3 0x4c1002 in compare_replays /work/main/fuzz/fuzz_log_replay.c:166:17
    #4 0x4c1100 in run_one /work/main/fuzz/fuzz_log_replay.c:250:5
    #5 0x4c1200 in LLVMFuzzerTestOneInput /work/main/fuzz/fuzz_log_replay.c:300:3
"""


def test_fuzz_property_failure_state():
    kind, frames = triage.crash_state(PROPERTY)
    assert kind == "check failed: engine replay == reference replay"
    assert frames == ["compare_replays", "run_one"]


def _pcsweep():
    import os
    from pclib.common import tool
    p = tool("default", "pcsweep")
    if not os.path.exists(p):
        import pytest
        pytest.fail("pcsweep is not built (scripts/powercut build)")
    return p


def _case(root, name, status, repro):
    import shutil
    d = root / name
    d.mkdir(parents=True)
    shutil.copy(repro, d / "state.pctrace")
    (d / "meta.json").write_text(json.dumps({"id": name, "target": "pcsweep", "status": status}))
    return d


def _replay(root, tool):
    import os
    import subprocess
    from pclib.common import ROOT
    return subprocess.run(["cmake", f"-DTOOL={tool}", "-DKIND=pcsweep", f"-DDIR={root}", "-P",
                           os.path.join(ROOT, "tests", "regressions.cmake")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)


def test_stored_sweep_regressions_replay(tmp_path):
    """The CTest replay of stored sweep reproducers: a passing one passes
    unless it is marked open (then the engine was fixed: say so); cases of
    other tools are skipped."""
    import subprocess
    pcsweep = _pcsweep()
    subprocess.run([pcsweep, "record", "--scenario", "batch", str(tmp_path / "t.pctrace")], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([pcsweep, "export", "--trace", str(tmp_path / "t.pctrace"), "--models", "torn", "--only", "5",
                    "--with-repro", "--out", str(tmp_path / "x")], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    repro = next((tmp_path / "x").glob("*.pctrace"))
    reg = tmp_path / "reg"
    _case(reg, "a", "new", repro)
    (reg / "fz").mkdir()
    (reg / "fz" / "meta.json").write_text(json.dumps({"target": "fuzz_log_replay", "status": "new"}))
    cp = _replay(reg, pcsweep)
    assert cp.returncode == 0, cp.stdout
    assert "replayed 1 pcsweep regression cases, 0 failed" in cp.stdout
    _case(reg, "b", "open", repro)
    cp = _replay(reg, pcsweep)
    assert cp.returncode != 0 and "marked open but passes now" in cp.stdout
