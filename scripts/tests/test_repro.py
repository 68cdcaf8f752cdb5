"""`powercut repro` on a plain VHDX image (pending log, damaged, clean), on a
fuzz input, on a stored regression, and on something it does not know."""
import hashlib
import json
import os
import subprocess
import sys

import pytest

from pclib.common import tool

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POWERCUT = os.path.join(ROOT, "scripts", "powercut")


def powercut(*args, timeout=600):
    return subprocess.run([sys.executable, POWERCUT] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


def sha(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Crash images of a real workload: one with a pending log, one without."""
    d = tmp_path_factory.mktemp("imgs")
    pcsweep, vt = tool("default", "pcsweep"), tool("default", "vhdxtool")
    if not os.path.exists(pcsweep):
        pytest.fail("pcsweep is not built (scripts/powercut build)")
    subprocess.run([pcsweep, "record", "--scenario", "mixed", d / "t.pctrace"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([pcsweep, "export", "--trace", d / "t.pctrace", "--models", "prefix", "--max-states", "60",
                    "--out", d / "x"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pending = clean = None
    for line in open(d / "x" / "manifest.jsonl"):
        img = json.loads(line)["image"]
        img = img if os.path.isabs(img) else os.path.join(d, "x", os.path.basename(img))
        info = json.loads(subprocess.run([vt, "info", img, "--json"], stdout=subprocess.PIPE, text=True).stdout)
        if info["log"]["pending"] and not pending:
            pending = img
        elif not info["log"]["pending"] and info["blocks_allocated"] and not clean:
            clean = img
    assert pending and clean
    return {"pending": pending, "clean": clean, "dir": d}


def test_image_with_pending_log_recovers_on_a_copy(images, tmp_path):
    img = images["pending"]
    before = sha(img)
    cp = powercut("repro", img, "--json", tmp_path / "v.json")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    out = cp.stdout
    assert "vhdxtool dump-log --descriptors" in out and "(replay pending)" in out
    assert "data file offset" in out  # the entry's updates
    assert "== sectors the replay changed ==" in out and "written by entry seq" in out
    assert "verdict:   RECOVERED" in out
    assert sha(img) == before
    v = json.loads((tmp_path / "v.json").read_text())
    assert v["verdict"] == "RECOVERED" and v["pending"] and v["changed"]
    assert any(c["entry_sequence"] for c in v["changed"])


def test_clean_image(images):
    cp = powercut("repro", images["clean"])
    assert cp.returncode == 0 and "verdict:   CLEAN" in cp.stdout, cp.stdout + cp.stderr


def test_damaged_image_is_refused_and_left_alone(images, tmp_path):
    bad = tmp_path / "bad.vhdx"
    data = bytearray(open(images["pending"], "rb").read())
    for off in (64 << 10, 128 << 10):  # both headers
        data[off:off + 4] = b"XXXX"
    bad.write_bytes(bytes(data))
    before = sha(bad)
    cp = powercut("repro", bad)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert "verdict:   REFUSED" in cp.stdout and "header" in cp.stdout
    assert sha(bad) == before


def test_fuzz_input_that_does_not_crash(tmp_path):
    f = tmp_path / "input"
    f.write_bytes(b"\x00" * 64)
    cp = powercut("repro", f, "--target", "log_parse")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "does not reproduce" in cp.stdout


def test_stored_regression_directory():
    d = os.path.join(ROOT, "corpus", "regressions", "8d74cf8dbabd")  # KD1
    cp = powercut("repro", d)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "regression 8d74cf8dbabd" in cp.stdout and "status fixed" in cp.stdout
    assert "first seen 2026-11-22T23:59:53" in cp.stdout and "first seen ?" not in cp.stdout


def test_unknown_artifact_is_a_usage_error(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    cp = powercut("repro", f)
    assert cp.returncode == 2 and "not an artifact this build knows" in cp.stderr
    cp = powercut("repro", tmp_path / "missing")
    assert cp.returncode == 2 and "no such file" in cp.stderr
    cp = powercut("repro", f, "--target", "nosuch")
    assert cp.returncode == 2 and "unknown fuzz target" in cp.stderr


def _pages(e):
    out = set()
    for u in e.get("updates", []):
        out.update(range(u["file_offset"] // 4096 * 4096, u["file_offset"] + u["length"], 4096))
    return out


@pytest.fixture(scope="module")
def neighbour_pages_image(tmp_path_factory):
    """A crash image whose pending log holds consecutive entries that write
    neighbouring 4 KiB pages (the batch scenario's BAT pages)."""
    d = tmp_path_factory.mktemp("nb")
    pcsweep, vt = tool("default", "pcsweep"), tool("default", "vhdxtool")
    subprocess.run([pcsweep, "record", "--scenario", "batch", d / "t.pctrace"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([pcsweep, "export", "--trace", d / "t.pctrace", "--models", "prefix", "--max-states", "200",
                    "--out", d / "x"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for line in open(d / "x" / "manifest.jsonl"):
        img = json.loads(line)["image"]
        log = json.loads(subprocess.run([vt, "dump-log", img, "--descriptors", "--json"], stdout=subprocess.PIPE,
                                        text=True).stdout)
        last = {}
        for e in sorted((e for e in log["entries"] if e.get("active")), key=lambda e: e["sequence"]):
            for p in _pages(e):
                last[p] = e["sequence"]
        if any(p + 4096 in last and last[p] != last[p + 4096] for p in last):
            return img, last
    pytest.fail("no crash state of the batch workload has neighbouring pages from different entries")


def test_replayed_pages_are_attributed_to_the_entry_that_wrote_each(neighbour_pages_image, tmp_path):
    img, last = neighbour_pages_image
    cp = powercut("repro", img, "--json", tmp_path / "v.json")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    changed = json.loads((tmp_path / "v.json").read_text())["changed"]
    logged = [c for c in changed if c["entry_sequence"] is not None]
    assert logged
    for c in logged:
        pages = range(c["offset"], c["offset"] + c["length"], 4096)
        # every page of a range was written last by the entry it names
        assert all(last.get(p) == c["entry_sequence"] for p in pages), (c, {p: last.get(p) for p in pages})
    # and the neighbouring pages of different entries are separate lines
    starts = {c["offset"]: c for c in logged}
    assert any(o + 4096 in starts and starts[o + 4096]["entry_sequence"] != c["entry_sequence"]
               for o, c in starts.items())


def test_stored_regressions_follow_the_documented_schema():
    """docs/campaign.md: each corpus/regressions/<id>/ holds the input and a
    meta.json with every documented field, and <id> is the campaign's
    failure id of the crash state (so a campaign that finds the bug again
    counts a sighting instead of storing a second copy).  A reproducer of a
    documented finding (meta "finding": the document and its section, e.g.
    docs/qemu-findings.md Q1) is named after the finding instead: the QEMU
    targets' strict check is one crash state for every class they tell
    apart, so those cases share a failure id."""
    from pclib import repro, triage
    base = os.path.join(ROOT, "corpus", "regressions")
    dirs = sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)))
    assert dirs
    for name in dirs:
        d = os.path.join(base, name)
        meta = json.load(open(os.path.join(d, "meta.json")))
        assert repro.meta_problems(d, meta) == [], (name, repro.meta_problems(d, meta))
        if "finding" in meta:
            doc, section = meta["finding"].split()
            assert f"| {section} |" in open(os.path.join(ROOT, doc)).read(), (name, meta["finding"])
            assert meta["class"] and meta["class"] in meta["what"], name
        else:
            assert name == triage.failure_id((meta["crash_type"], meta["frames"])), name


def test_damaged_regression_meta_is_a_usage_error(tmp_path):
    d = tmp_path / "abc"
    d.mkdir()
    (d / "input").write_bytes(b"x")
    for text in ("{oops", "[1]", json.dumps({"target": 5})):
        (d / "meta.json").write_text(text)
        cp = powercut("repro", d)
        assert cp.returncode == 2, cp.stdout + cp.stderr
        assert "damaged regression description" in cp.stderr and "Traceback" not in cp.stderr


def test_image_repro_suggests_the_differential_replay(images):
    cp = powercut("repro", images["pending"])
    assert f"scripts/powercut diff {images['pending']}" in cp.stdout


@pytest.fixture(scope="module")
def wrong_tail(tmp_path_factory):
    """A sweep reproducer of the planted bug wrong-tail (the writer names
    every entry its own Tail, so the replay forgets the earlier entries of
    a batch): its trace holds the buggy writer's I/O, so the data loss
    reproduces with this build's reader too."""
    from pclib import mutants
    m = [x for x in mutants.list_mutants() if x["name"] == "wrong-tail"][0]
    pcsweep = mutants.build_mutant(m)
    d = tmp_path_factory.mktemp("wt")
    subprocess.run([pcsweep, "sweep", "--quiet", "--scenario", "batch", "--models", "prefix", "--judges", "oracle",
                    "--max-violations", "1",
                    "--repro-dir", d / "repro", "--json", d / "s.json"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    [rep] = [os.path.join(d, "repro", f) for f in os.listdir(d / "repro")]
    return pcsweep, rep, d


def test_a_lost_sector_is_explained_by_the_entry_the_tail_excluded(wrong_tail, tmp_path):
    _, rep, _ = wrong_tail
    cp = powercut("repro", rep, "--json", tmp_path / "v.json")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert "== why virtual sector" in cp.stdout
    v = json.loads((tmp_path / "v.json").read_text())
    c = v["cause"]
    assert c["why"] == "tail" and c["sector"] == v["bad_sector"]
    assert c["bat_intended"]["state"] == "FULLY_PRESENT" and c["bat_after_replay"]["state"] != "FULLY_PRESENT"
    assert f"log entry seq {c['carrier']['sequence']}" in c["cause"] and "Tail" in c["cause"]
    assert c["cause"] in cp.stdout


def test_minimize_shows_the_minimized_reproducers_verdict(wrong_tail, tmp_path):
    pcsweep, rep, _ = wrong_tail
    preset = os.path.relpath(os.path.dirname(os.path.dirname(pcsweep)), os.path.join(ROOT, "build"))
    out = tmp_path / "min.pctrace"
    cp = powercut("repro", rep, "--preset", preset, "--minimize", out, "--minimize-seconds", 30,
                  "--json", tmp_path / "v.json")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    v = json.loads((tmp_path / "v.json").read_text())
    m = v["minimized"]
    assert os.path.exists(out) and m["reproducer"] == str(out)
    assert m["state"] != v["state"] or m["cut"] != v["cut"]        # a smaller workload, another state
    tail = cp.stdout.split("== the minimized reproducer ==", 1)[1]
    assert f"state:     {m['state']}" in tail and m["detail"].splitlines()[0] in tail
    assert m["cause"]["why"] == "tail"                               # explained: the minimized state
