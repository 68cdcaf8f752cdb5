"""vhdxtool's command line: exit statuses (0 ok, 1 invalid/refused, 2 usage or
I/O), messages naming what and where, refused images left byte-identical."""
import hashlib
import json
import subprocess


def sh(*cmd):
    return subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def digest(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


def test_usage_errors(vhdxtool, tmp_path):
    assert sh(vhdxtool).returncode == 2
    assert sh(vhdxtool, "frobnicate").returncode == 2
    cp = sh(vhdxtool, "create", tmp_path / "x.vhdx", "12Q")
    assert cp.returncode == 2 and "SIZE" in cp.stderr
    cp = sh(vhdxtool, "create", tmp_path / "x.vhdx", "1G", "--block-size", "3M")
    assert cp.returncode == 2 and "block size" in cp.stderr
    assert not (tmp_path / "x.vhdx").exists()
    assert sh(vhdxtool, "info").returncode == 2
    assert sh(vhdxtool, "info", tmp_path / "missing.vhdx").returncode == 2
    assert sh(vhdxtool, "check", "a", "--bogus").returncode == 2
    assert sh(vhdxtool, "--help").returncode == 0


def test_not_a_vhdx_is_refused_untouched(vhdxtool, tmp_path):
    p = tmp_path / "junk.vhdx"
    p.write_bytes(b"hello world" * 100000)
    before = digest(p)
    for args in (["info", p], ["check", p], ["replay", p], ["write", p, 0, p]):
        cp = sh(vhdxtool, *args)
        assert cp.returncode == 1, (args, cp.stderr)
        assert "vhdxfile" in cp.stderr or "vhdxfile" in cp.stdout
    assert digest(p) == before


def test_damaged_header_field_names_field_and_offset(vhdxtool, tmp_path):
    img = tmp_path / "a.vhdx"
    assert sh(vhdxtool, "create", img, "16M").returncode == 0
    # Make both headers claim Version 2 (re-checksummed), so the image is refused.
    import struct
    data = bytearray(img.read_bytes())
    for off in (64 << 10, 128 << 10):
        h = bytearray(data[off:off + 4096])
        struct.pack_into("<H", h, 66, 2)
        struct.pack_into("<I", h, 4, 0)
        struct.pack_into("<I", h, 4, _crc32c(h))
        data[off:off + 4096] = h
    img.write_bytes(bytes(data))
    before = digest(img)
    cp = sh(vhdxtool, "write", img, 0, img)
    assert cp.returncode == 1
    assert "Version" in cp.stderr and "VHDX_E_VERSION" in cp.stderr and "offset" in cp.stderr
    assert digest(img) == before


def test_info_check_dumplog_json(vhdxtool, tmp_path):
    img = tmp_path / "a.vhdx"
    assert sh(vhdxtool, "create", img, "64M", "--block-size", "1M", "--logical-sector", "4096").returncode == 0
    (tmp_path / "d").write_bytes(b"\x5a" * 3 * (1 << 20))
    assert sh(vhdxtool, "write", img, "1M", tmp_path / "d").returncode == 0
    info = json.loads(sh(vhdxtool, "info", img, "--json").stdout)
    assert info["virtual_size"] == 64 << 20 and info["logical_sector"] == 4096
    assert info["blocks_allocated"] == 3 and info["log"]["pending"] is False
    chk = json.loads(sh(vhdxtool, "check", img, "--json").stdout)
    assert chk["ok"] is True and chk["errors"] == 0
    dl = json.loads(sh(vhdxtool, "dump-log", img, "--json").stdout)
    assert dl["pending"] is False and len(dl["entries"]) >= 1
    assert all(e["valid"] for e in dl["entries"])
    out = tmp_path / "r"
    assert sh(vhdxtool, "read", img, "1M", "4096", out).returncode == 0
    assert out.read_bytes() == b"\x5a" * 4096
    assert sh(vhdxtool, "read", img, "63M", "2M", out).returncode == 2  # outside the disk


def test_readonly_commands_do_not_write(vhdxtool, tmp_path):
    img = tmp_path / "a.vhdx"
    assert sh(vhdxtool, "create", img, "32M", "--block-size", "1M").returncode == 0
    (tmp_path / "d").write_bytes(b"\x77" * (4 << 20))
    assert sh(vhdxtool, "write", img, 0, tmp_path / "d", "--apply-every", "1000").returncode == 0
    before = digest(img)
    for args in (["info", img], ["check", img], ["dump-log", img], ["read", img, 0, 512, tmp_path / "o"],
                 ["export", img, tmp_path / "o2"]):
        assert sh(vhdxtool, *args).returncode == 0
    assert digest(img) == before


def _crc32c(b):
    from forge import crc32c
    return crc32c(bytes(b))


def _set_log_guid(img):
    """Both headers name a LogGuid; the log holds no entry for it."""
    import struct
    data = bytearray(img.read_bytes())
    for off in (64 << 10, 128 << 10):
        h = bytearray(data[off:off + 4096])
        h[48:64] = bytes(range(1, 17))
        struct.pack_into("<I", h, 4, 0)
        struct.pack_into("<I", h, 4, _crc32c(h))
        data[off:off + 4096] = h
    img.write_bytes(bytes(data))


def test_info_json_of_a_refused_image_shows_what_parses_and_the_error(vhdxtool, tmp_path):
    img = tmp_path / "a.vhdx"
    assert sh(vhdxtool, "create", img, "16M", "--block-size", "1M").returncode == 0
    _set_log_guid(img)
    before = digest(img)
    cp = sh(vhdxtool, "info", img, "--json")
    assert cp.returncode == 1 and "VHDX_E_LOG_NO_SEQUENCE" in cp.stderr
    j = json.loads(cp.stdout)
    assert j["opened"] is False
    assert j["error"]["code"] == "VHDX_E_LOG_NO_SEQUENCE" and j["error"]["field"] == "header.LogGuid"
    assert [h["valid"] for h in j["headers"]] == [True, True] and j["current_header"] in (1, 2)
    assert j["headers"][0]["log_guid"] == "04030201-0605-0807-090A-0B0C0D0E0F10"
    assert j["log"]["pending"] is True and j["log"]["offset"] >= 1 << 20
    assert [r["valid"] for r in j["region_tables"]] == [True, True]
    assert j["bat"]["length"] > 0 and j["metadata"]["valid"] is True
    assert j["metadata"]["block_size"] == 1 << 20 and j["metadata"]["virtual_size"] == 16 << 20
    assert j["file_identifier"]["valid"] is True
    assert digest(img) == before
    # a file that is no VHDX at all: the error, and nothing valid
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x01" * (2 << 20))
    cp = sh(vhdxtool, "info", junk, "--json")
    j = json.loads(cp.stdout)
    assert cp.returncode == 1 and j["opened"] is False and j["file_identifier"]["valid"] is False
    assert not any(h["valid"] for h in j["headers"]) and j["current_header"] is None
    # an image that opens says so
    ok = tmp_path / "ok.vhdx"
    assert sh(vhdxtool, "create", ok, "16M").returncode == 0
    assert json.loads(sh(vhdxtool, "info", ok, "--json").stdout)["opened"] is True


def test_check_and_open_name_the_same_offset_for_the_same_error(vhdxtool, tmp_path):
    img = tmp_path / "a.vhdx"
    assert sh(vhdxtool, "create", img, "16M").returncode == 0
    _set_log_guid(img)
    check = json.loads(sh(vhdxtool, "check", img, "--json").stdout)
    [p] = [p for p in check["problems"] if p["code"] == "VHDX_E_LOG_NO_SEQUENCE"]
    info = json.loads(sh(vhdxtool, "info", img, "--json").stdout)
    assert p["field"] == info["error"]["field"] == "header.LogGuid"
    assert p["offset"] == info["error"]["offset"]
    slot = info["current_header"]
    assert p["offset"] == (64 << 10) * slot + 48           # the LogGuid field of the current header
    assert "the log at 1048576" in p["message"]            # the log's offset stays in the message


def test_help_lists_every_option(vhdxtool):
    """Every option vhdxtool's parser accepts is in its --help text."""
    import os
    import re
    src = open(os.path.join(os.path.dirname(__file__), "..", "..", "engine", "tools", "vhdxtool.c")).read()
    accepted = set(re.findall(r'parse_opts\(argc, argv, &o, \d+, "([^"]*)"\)', src))
    names = {n for group in accepted for n in group.split()}
    names |= {"seed", "apply-every"}
    helptext = sh(vhdxtool, "--help").stdout
    missing = [n for n in sorted(names) if f"--{n}" not in helptext]
    assert not missing, missing
