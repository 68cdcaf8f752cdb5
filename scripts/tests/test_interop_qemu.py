"""Interoperability with QEMU (Debian's qemu-img / qemu-io), a real peer.

Both directions: images made and filled by vhdxtool pass `qemu-img check`
and convert to the same raw bytes as `vhdxtool export`; images made by
qemu-img and written by qemu-io export identically with vhdxtool, and stay
clean and identical after vhdxtool writes into them.  512 and 4096 logical
sectors, several block and log sizes.
"""
import os
import random
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(not shutil.which("qemu-img"), reason="qemu-utils not installed")


def sh(*cmd, ok=True):
    cp = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if ok and cp.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} -> {cp.returncode}\n{cp.stdout}\n{cp.stderr}")
    return cp


def qemu_check_clean(img):
    cp = sh("qemu-img", "check", "-f", "vhdx", img, ok=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "No errors were found" in cp.stdout, cp.stdout


def qemu_refuses_4k(img):
    """QEMU 7.2 supports only 512-byte logical sectors: it refuses to open a
    4096-byte-sector VHDX with ENOTSUP (a fact about that QEMU, recorded in
    docs/qemu-interop.md).  The refusal must be clean."""
    cp = sh("qemu-img", "check", "-f", "vhdx", img, ok=False)
    assert cp.returncode != 0 and "Operation not supported" in cp.stderr, cp.stderr


def read(path):
    with open(path, "rb") as f:
        return f.read()


def fill_with_vhdxtool(vt, img, tmp, size, seed, lsec):
    """Writes seeded extents (aligned and unaligned, across blocks); returns the expected raw bytes."""
    rnd = random.Random(seed)
    expect = bytearray(size)
    for i in range(10):
        n = rnd.choice([512, 4096, 70000, 1 << 20, 3 * (1 << 20) + 512])
        off = rnd.randrange(0, size - n)
        if i % 2 == 0:
            off -= off % lsec
        data = rnd.randbytes(n)
        p = tmp / f"w{i}.bin"
        p.write_bytes(data)
        sh(vt, "write", img, off, p)
        expect[off:off + n] = data
    return bytes(expect)


GEOMETRIES = [
    # (virtual size, block size, log size, logical, physical)
    (48 << 20, "1M", "1M", 512, 4096),
    (48 << 20, "1M", "1M", 4096, 4096),
    (64 << 20, "2M", "2M", 512, 512),
    (96 << 20, "32M", "4M", 4096, 512),
    (40 << 20, "8M", "1M", 512, 4096),
]


@pytest.mark.parametrize("size,bs,ls,lsec,psec", GEOMETRIES)
def test_vhdxtool_image_is_read_by_qemu(vhdxtool, tmp_path, size, bs, ls, lsec, psec):
    img = tmp_path / "a.vhdx"
    sh(vhdxtool, "create", img, size, "--block-size", bs, "--log-size", ls, "--logical-sector", lsec,
       "--physical-sector", psec)
    expect = fill_with_vhdxtool(vhdxtool, img, tmp_path, size, seed=size + lsec, lsec=lsec)
    sh(vhdxtool, "check", img)
    sh(vhdxtool, "export", img, tmp_path / "v.raw")
    assert read(tmp_path / "v.raw") == expect
    if lsec == 4096:
        qemu_refuses_4k(img)
        return
    qemu_check_clean(img)
    sh("qemu-img", "convert", "-f", "vhdx", "-O", "raw", img, tmp_path / "q.raw")
    assert read(tmp_path / "q.raw") == expect
    info = sh("qemu-img", "info", "--output=json", img).stdout
    assert f'"virtual-size": {size}' in info


@pytest.mark.parametrize("lsec", [512, 4096])
def test_import_then_qemu_agrees(vhdxtool, tmp_path, lsec):
    raw = tmp_path / "in.raw"
    rnd = random.Random(lsec)
    data = bytearray(20 << 20)
    for _ in range(12):
        off = rnd.randrange(0, len(data) - 200000)
        data[off:off + 200000] = rnd.randbytes(200000)
    raw.write_bytes(bytes(data))
    img = tmp_path / "i.vhdx"
    sh(vhdxtool, "import", raw, img, "--block-size", "1M", "--logical-sector", lsec)
    sh(vhdxtool, "export", img, tmp_path / "v.raw")
    assert read(tmp_path / "v.raw") == bytes(data)
    if lsec == 4096:
        qemu_refuses_4k(img)
        return
    qemu_check_clean(img)
    sh("qemu-img", "convert", "-f", "vhdx", "-O", "raw", img, tmp_path / "q.raw")
    assert read(tmp_path / "q.raw") == bytes(data)


@pytest.mark.parametrize("bs,ls", [("1M", "1M"), ("8M", "1M"), ("32M", "4M")])
def test_qemu_image_is_read_and_written_by_vhdxtool(vhdxtool, tmp_path, bs, ls):
    img = tmp_path / "q.vhdx"
    size = 64 << 20
    sh("qemu-img", "create", "-f", "vhdx", "-o", f"block_size={bs},log_size={ls}", img, size)
    sh("qemu-io", "-f", "vhdx", "-c", "write -P 0xab 0 1M", "-c", "write -P 0xcd 5M 12345",
       "-c", "write -P 0x11 40M 3M", img)
    expect = bytearray(size)
    expect[0:1 << 20] = b"\xab" * (1 << 20)
    expect[5 << 20:(5 << 20) + 12345] = b"\xcd" * 12345
    expect[40 << 20:43 << 20] = b"\x11" * (3 << 20)
    sh(vhdxtool, "check", img)
    sh(vhdxtool, "export", img, tmp_path / "v.raw")
    assert read(tmp_path / "v.raw") == bytes(expect)
    # Now vhdxtool writes into QEMU's image, allocating and overwriting.
    rnd = random.Random(7)
    for i, off in enumerate([100, 5 << 20, 20 << 20, (63 << 20) + 512]):
        data = rnd.randbytes(300000 if off < (63 << 20) else 4096)
        p = tmp_path / f"w{i}.bin"
        p.write_bytes(data)
        sh(vhdxtool, "write", img, off, p)
        expect[off:off + len(data)] = data
    qemu_check_clean(img)
    sh("qemu-img", "convert", "-f", "vhdx", "-O", "raw", img, tmp_path / "q.raw")
    sh(vhdxtool, "export", img, tmp_path / "v2.raw")
    assert read(tmp_path / "q.raw") == bytes(expect)
    assert read(tmp_path / "v2.raw") == bytes(expect)


def test_qemu_reads_after_our_log_replay(vhdxtool, tmp_path):
    """An image left with a pending log (batched, never applied) is replayed by
    vhdxtool and then read identically by QEMU."""
    img = tmp_path / "b.vhdx"
    sh(vhdxtool, "create", img, 32 << 20, "--block-size", "1M")
    data = random.Random(3).randbytes(5 << 20)
    (tmp_path / "d.bin").write_bytes(data)
    sh(vhdxtool, "write", img, 1 << 20, tmp_path / "d.bin", "--apply-every", "64")
    sh(vhdxtool, "replay", img)
    qemu_check_clean(img)
    sh("qemu-img", "convert", "-f", "vhdx", "-O", "raw", img, tmp_path / "q.raw")
    q = read(tmp_path / "q.raw")
    assert q[1 << 20:(1 << 20) + len(data)] == data
