"""`powercut diff`: powercut's engine and QEMU replay the same crash images.

Clean images agree; non-VHDX files are skipped; an image whose header names
a LogGuid with no valid log sequence (what a cut between QEMU's header update
and its first log entry leaves) is a disagreement of the class
qemu-opens-logguid-without-valid-sequence (QEMU departs from MS-VHDX 2.3.3);
a damaged first region table copy makes QEMU refuse what powercut opens from
the second.  Each class is minimized into a reproducer that still shows it.
"""
import json
import os
import shutil
import struct
import subprocess

import pytest

from pclib.common import PYTHON, ROOT
from forge import crc32c

PRESET = os.environ.get("POWERCUT_TEST_PRESET", "default")
POWERCUT = os.path.join(ROOT, "scripts", "powercut")
pytestmark = pytest.mark.skipif(not shutil.which("qemu-img") or not shutil.which("qemu-io"),
                                reason="qemu-utils not installed")


def powercut(*args):
    return subprocess.run([PYTHON, POWERCUT] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def qemu_image(path, size="4M"):
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M,log_size=1M", str(path), size],
                   check=True)
    subprocess.run(["qemu-io", "-f", "vhdx", "-c", "write -P 0x42 0 64k", str(path)], check=True,
                   stdout=subprocess.DEVNULL)


def set_log_guid(path, guid=bytes(range(1, 17))):
    """Rewrites the current header with a LogGuid and a fresh checksum."""
    with open(path, "r+b") as f:
        hs = []
        for off in (65536, 131072):
            f.seek(off)
            hs.append((struct.unpack_from("<Q", f.read(16), 8)[0], off))
        off = max(hs)[1]
        f.seek(off)
        h = bytearray(f.read(4096))
        h[48:64] = guid
        h[4:8] = bytes(4)
        h[4:8] = struct.pack("<I", crc32c(bytes(h)))
        f.seek(off)
        f.write(h)


def report(path):
    with open(path) as f:
        return json.load(f)


def test_diff_agrees_on_clean_images_and_skips_other_files(tmp_path):
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    qemu_image(d / "a.vhdx")
    qemu_image(d / "sub" / "b.img")
    (d / "notes.txt").write_text("not an image")
    (d / "empty").write_bytes(b"")
    out = tmp_path / "r" / "diff.json"
    cp = powercut("diff", "--preset", PRESET, d, "--json", out)
    assert cp.returncode == 0, cp.stderr
    r = report(out)
    assert r["images"] == 2 and r["skipped"] == 2 and r["agree"] == 2
    assert r["disagreements"] == [] and r["classes"] == []


def test_diff_classifies_minimizes_and_reproduces(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    qemu_image(d / "logguid.vhdx")
    set_log_guid(d / "logguid.vhdx")
    qemu_image(d / "region.vhdx")
    with open(d / "region.vhdx", "r+b") as f:       # break region table copy 1
        f.seek(192 * 1024 + 100)
        f.write(b"\xff")
    out = tmp_path / "r" / "diff.json"
    cp = powercut("diff", "--preset", PRESET, d, "--json", out, "--minimize-seconds", "4")
    assert cp.returncode == 1, cp.stderr
    r = report(out)
    assert r["images"] == 2 and len(r["disagreements"]) == 2
    classes = {c["name"]: c for c in r["classes"]}
    c = classes["qemu-opens-logguid-without-valid-sequence"]
    assert c["count"] == 1 and c["departs"] == "qemu"
    assert "MUST fail to open it" in c["rule"] and c["rule"].startswith("MS-VHDX 2.3.3")
    assert os.path.exists(c["reproducer"]) and os.path.exists(c["example"])
    assert c["minimized"]["nonzero_pages_after"] <= c["minimized"]["nonzero_pages_before"]
    assert "qemu-refuses-damaged-region-table-1" in classes
    for name in ("count", "rule", "example", "name"):
        assert all(name in x for x in r["classes"])
    # The reproducer alone still shows the same class.
    out2 = tmp_path / "r2.json"
    cp = powercut("diff", "--preset", PRESET, c["reproducer"], "--json", out2, "--minimize-seconds", "0")
    assert cp.returncode == 1
    assert report(out2)["classes"][0]["name"] == "qemu-opens-logguid-without-valid-sequence"


def test_diff_usage_errors(tmp_path):
    assert powercut("diff", "--preset", PRESET, tmp_path / "missing").returncode == 2
    assert powercut("diff", "--preset", PRESET).returncode == 2


def test_fuzz_inputs_are_diffed_as_the_images_they_build(tmp_path):
    # Inputs of fuzz_log_replay and fuzz_image_open are turned into images
    # (POWERCUT_FUZZ_EXPORT); a corpus/<target>/ path or a meta.json says
    # which target; other files are skipped.
    def seeds(t):
        d = os.path.join(ROOT, "corpus", t)
        return sorted(n for n in os.listdir(d) if os.path.isfile(os.path.join(d, n)) and not n.startswith("."))
    lr = seeds("fuzz_log_replay")[:3]
    d = tmp_path / "corpus" / "fuzz_log_replay"
    d.mkdir(parents=True)
    for n in lr:
        shutil.copy(os.path.join(ROOT, "corpus", "fuzz_log_replay", n), d / n)
    reg = tmp_path / "reg"
    reg.mkdir()
    io = seeds("fuzz_image_open")[0]
    shutil.copy(os.path.join(ROOT, "corpus", "fuzz_image_open", io), reg / "input")
    (reg / "meta.json").write_text(json.dumps({"target": "fuzz_image_open"}))
    (tmp_path / "notes.txt").write_text("not an image")
    out = tmp_path / "r" / "diff.json"
    cp = powercut("diff", tmp_path / "corpus", reg, tmp_path / "notes.txt", "--json", out, "--minimize-seconds", 0,
                  "--preset", PRESET)
    assert cp.returncode in (0, 1), cp.stderr
    r = json.loads(out.read_text())
    assert r["images"] == 4 and r["skipped"] == 1 and r["complete"], r
    sources = [x["source"] for x in r["disagreements"] + r["errors"]]
    assert all("input)" in s for s in sources)
    assert "4 fuzz inputs" in cp.stderr


def test_max_seconds_stops_early(tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(6):
        qemu_image(imgs / f"{i}.vhdx")
    out = tmp_path / "diff.json"
    cp = powercut("diff", imgs, "--json", out, "--max-seconds", 0.001, "--jobs", 1, "--preset", PRESET)
    assert cp.returncode == 0, cp.stderr
    r = json.loads(out.read_text())
    assert not r["complete"] and r["images"] < 6


def test_unreadable_trace_is_an_error_not_a_skipped_file(tmp_path, built):
    # A file with a trace's signature that does not load (here: the first
    # 500 bytes of a real trace) is exit status 2, as repro and sweep treat it.
    pcsweep = built("pcsweep")
    subprocess.run([pcsweep, "record", "--scenario", "batch", "--ops", "4", tmp_path / "t.pctrace"], check=True,
                   stdout=subprocess.DEVNULL)
    cut = tmp_path / "cut.pctrace"
    cut.write_bytes((tmp_path / "t.pctrace").read_bytes()[:500])
    cp = powercut("diff", "--preset", PRESET, cut, "--json", tmp_path / "d.json")
    assert cp.returncode == 2, cp.stderr
    assert str(cut) in cp.stderr and "cannot be read" in cp.stderr and "Traceback" not in cp.stderr
    assert not (tmp_path / "d.json").exists()


def test_messages_are_whole_and_name_no_scratch_path(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    qemu_image(d / "logguid.vhdx")
    set_log_guid(d / "logguid.vhdx")
    out = tmp_path / "diff.json"
    cp = powercut("diff", "--preset", PRESET, d, "--json", out, "--minimize-seconds", 0)
    assert cp.returncode == 1, cp.stderr
    [dis] = report(out)["disagreements"]
    msg = dis["ours"]["message"]
    # what vhdxtool says on a copy of the image, path for path
    copy = tmp_path / "copy.vhdx"
    shutil.copy(d / "logguid.vhdx", copy)
    vt = subprocess.run([os.path.join(ROOT, "build", PRESET, "engine", "vhdxtool"), "replay", str(copy)],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert msg == " ".join(vt.stdout.split()).replace(str(copy), "IMG")
    assert "field header.LogGuid at file offset" in msg          # the end of the message is there
    assert "/dev/shm" not in json.dumps(report(out)) and "powercut-diff-" not in json.dumps(report(out))


def test_report_says_how_many_of_the_planned_images_it_compared(tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(4):
        qemu_image(imgs / f"{i}.vhdx")
    out = tmp_path / "diff.json"
    cp = powercut("diff", imgs, "--json", out, "--max-images", 2, "--jobs", 1, "--preset", PRESET)
    assert cp.returncode == 0, cp.stderr
    r = json.loads(out.read_text())
    assert r["planned"] == 4 and r["images"] == 2 and not r["complete"] and r["stopped_by"] == "--max-images 2"
    assert "2 of 4 images compared" in cp.stderr and "INCOMPLETE" in cp.stderr
    cp = powercut("diff", imgs, "--json", out, "--jobs", 2, "--preset", PRESET)
    r = json.loads(out.read_text())
    assert r["complete"] and r["planned"] == r["images"] == 4 and "4 of 4 images compared" in cp.stderr


def test_unwritable_json_is_refused_before_the_work(tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    qemu_image(imgs / "a.vhdx")
    cp = powercut("diff", imgs, "--json", blocker / "d.json", "--preset", PRESET)
    assert cp.returncode == 2 and str(blocker) in cp.stderr and "Traceback" not in cp.stderr
    assert "images planned" not in cp.stderr
