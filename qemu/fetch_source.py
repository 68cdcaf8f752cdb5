#!/usr/bin/python3
"""fetch_source.py - bring QEMU's VHDX driver into the BUILD tree (never the repository).

The QEMU subject (qemu/) compiles QEMU's own block/vhdx*.c against a shim.
This script gets those files from Debian's source package of the QEMU that
is installed (the source version of `qemu-utils`, so the in-process driver
and the qemu-img/qemu-io on this machine are the same code):

  1. a PRIVATE apt configuration under DEST/.fetch/: a deb-src sources list
     made from the machine's own `deb` entries (same mirrors, suites,
     components and keyrings), private state and cache directories; the
     machine's apt configuration, lists and caches are never touched:
        apt-get -o Dir::Etc::SourceList=... -o Dir::Etc::SourceParts=...
                -o Dir::State=... -o Dir::Cache=... update
     downloads the Sources indices only (about 10 MB for bookworm);
  2. `apt-get ... source --download-only qemu=VERSION` downloads the .dsc,
     the orig tarball and the Debian tarball (about 24 MB for 7.2), their
     hashes checked by apt against the signed indices;
  3. `dpkg-source -x` unpacks them with every Debian patch applied (the
     stable-branch updates touch the vhdx files), into a scratch directory;
  4. only the files the subject needs are kept (FILES below), with QEMU's
     license texts, in DEST/<package>_<version>/, plus STAMP.json (version,
     sha256 of each file, what was downloaded); DEST/current names that
     directory; the scratch directory and the downloads are removed.

Idempotent: when DEST/current names the installed version and every file
matches STAMP.json, nothing is downloaded (`already present`).

Usage: fetch_source.py [--dest DIR] [--version V] [--check] [--keep-work]
  --dest      where to put it (default: build/qemu-src of this checkout)
  --version   source version to fetch (default: the installed qemu-utils')
  --check     do not download; exit 0 when present and current, 3 otherwise

Exit status: 0 present (fetched now or before); 3 the source cannot be had
(qemu-utils not installed, no network, the version gone from the mirror,
dpkg-source missing): the message says why and what to do; 2 usage or an
unexpected error.  Messages start with "qemu-source:".
"""
import argparse
import glob
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

EXIT_OK, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 2, 3

# The files the subject compiles (block/*) or needs beside them.
FILES = [
    "block/vhdx.c",
    "block/vhdx-log.c",
    "block/vhdx-endian.c",
    "block/vhdx.h",
    "util/crc32c.c",      # QEMU's own CRC-32C (crc32c() used by vhdx.c)
    "COPYING",            # the license texts travel with the code
    "COPYING.LIB",
]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Unavailable(Exception):
    """The source package cannot be had: exit status 3."""


def say(msg):
    print(f"qemu-source: {msg}", file=sys.stderr, flush=True)


def run(cmd, cwd=None, capture=False):
    print("+ " + " ".join(shlex.quote(c) for c in cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None, text=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def installed_source():
    """(source package, source version) of the installed qemu-utils."""
    if not shutil.which("dpkg-query"):
        raise Unavailable("this is not a Debian system (no dpkg-query)")
    cp = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status} ${source:Package} ${source:Version}",
                         "qemu-utils"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    parts = cp.stdout.split()
    if cp.returncode != 0 or len(parts) != 3 or parts[0] != "installed":
        raise Unavailable("qemu-utils is not installed (run `scripts/powercut setup` or "
                          "`apt-get install qemu-utils`): its version decides which QEMU source to fetch")
    return parts[1], parts[2]


def dir_name(package, version):
    """qemu_7.2+dfsg-7+deb12u18 (the epoch dropped, as Debian names files)."""
    return f"{package}_{version.split(':', 1)[-1]}"


def present(dest, package, version):
    """The kept directory when it is complete and current, else None."""
    try:
        with open(os.path.join(dest, "current")) as f:
            name = f.read().strip()
        d = os.path.join(dest, name)
        with open(os.path.join(d, "STAMP.json")) as f:
            st = json.load(f)
    except (OSError, ValueError):
        return None
    if st.get("package") != package or st.get("version") != version or name != dir_name(package, version):
        return None
    for rel, digest in st.get("files", {}).items():
        p = os.path.join(d, rel)
        if not os.path.isfile(p) or sha256(p) != digest:
            return None
    if set(st.get("files", {})) != set(FILES):
        return None
    return d


# ---- the machine's sources, as deb-src ----------------------------------------------------
def parse_one_line(line):
    """A one-line sources.list entry -> dict or None."""
    line = line.split("#", 1)[0].strip()
    if not line.startswith("deb "):
        return None
    opts = {}
    m = re.match(r"deb\s+\[([^\]]*)\]\s+(.*)", line)
    rest = line[4:]
    if m:
        for kv in m.group(1).split():
            if "=" in kv:
                k, v = kv.split("=", 1)
                opts[k] = v
        rest = m.group(2)
    f = rest.split()
    if len(f) < 3:
        return None
    return {"uris": [f[0]], "suites": [f[1]], "components": f[2:], "signed_by": opts.get("signed-by")}


def parse_deb822(text):
    out = []
    for para in re.split(r"\n\s*\n", text):
        fields, key = {}, None
        for line in para.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:
                fields[key] += "\n" + line.strip()
                continue
            if ":" in line:
                key, val = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = val.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        out.append({"uris": fields.get("uris", "").split(), "suites": fields.get("suites", "").split(),
                    "components": fields.get("components", "").split(), "signed_by": fields.get("signed-by")})
    return out


def machine_sources():
    entries = []
    paths = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")) + \
        sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
    for p in paths:
        try:
            with open(p) as f:
                text = f.read()
        except OSError:
            continue
        if p.endswith(".sources"):
            entries += parse_deb822(text)
        else:
            entries += [e for e in map(parse_one_line, text.splitlines()) if e]
    # only Debian archives can hold Debian's qemu source package
    entries = [e for e in entries if e["uris"] and e["suites"] and e["components"]
               and any("debian" in u for u in e["uris"])]
    if not entries:
        codename = "bookworm"
        try:
            with open("/etc/os-release") as f:
                m = re.search(r"^VERSION_CODENAME=(\S+)", f.read(), re.M)
                codename = m.group(1) if m else codename
        except OSError:
            pass
        kr = "/usr/share/keyrings/debian-archive-keyring.gpg"
        entries = [{"uris": ["http://deb.debian.org/debian"], "suites": [codename, codename + "-updates"],
                    "components": ["main"], "signed_by": kr if os.path.exists(kr) else None},
                   {"uris": ["http://deb.debian.org/debian-security"], "suites": [codename + "-security"],
                    "components": ["main"], "signed_by": kr if os.path.exists(kr) else None}]
    lines = []
    for e in entries:
        opt = f"[signed-by={e['signed_by']}] " if e.get("signed_by") and "\n" not in e["signed_by"] else ""
        for u in e["uris"]:
            for s in e["suites"]:
                lines.append(f"deb-src {opt}{u} {s} {' '.join(e['components'])}")
    return sorted(set(lines))


# ---- fetching ------------------------------------------------------------------------------
def fetch(dest, package, version, keep_work=False):
    for tool in ("apt-get", "dpkg-source"):
        if not shutil.which(tool):
            raise Unavailable(f"{tool} is missing (install {'apt' if tool == 'apt-get' else 'dpkg-dev'})")
    work = os.path.join(dest, ".fetch")
    shutil.rmtree(work, ignore_errors=True)
    etc, state, cache, dl = (os.path.join(work, n) for n in ("etc", "state", "cache", "download"))
    for d in (os.path.join(etc, "sources.list.d"), os.path.join(etc, "preferences.d"),
              os.path.join(state, "lists", "partial"), os.path.join(cache, "archives", "partial"), dl):
        os.makedirs(d, exist_ok=True)
    lines = machine_sources()
    with open(os.path.join(etc, "sources.list"), "w") as f:
        f.write("# private deb-src list of qemu/fetch_source.py, made from the machine's deb entries\n")
        f.write("\n".join(lines) + "\n")
    opts = ["-o", f"Dir::Etc::SourceList={etc}/sources.list", "-o", f"Dir::Etc::SourceParts={etc}/sources.list.d",
            "-o", f"Dir::Etc::PreferencesParts={etc}/preferences.d", "-o", f"Dir::Etc::Preferences={etc}/preferences",
            "-o", f"Dir::State={state}", "-o", f"Dir::Cache={cache}", "-o", "Acquire::Languages=none",
            "-o", "APT::Get::List-Cleanup=false", "-q"]
    if os.geteuid() == 0:
        opts += ["-o", "APT::Sandbox::User=root"]  # the private dirs belong to root, not _apt
    say(f"fetching Debian's source package {package}={version} (the installed qemu-utils' source) "
        f"with a private apt configuration in {work}")
    say("sources: " + "; ".join(lines))
    t0 = time.time()
    cp = run(["apt-get"] + opts + ["update"], capture=True)
    if cp.returncode != 0:
        raise Unavailable("apt-get update of the private deb-src list failed (no network or no mirror?): " +
                          " ".join((cp.stderr or cp.stdout).split())[-400:])
    cp = run(["apt-get"] + opts + ["source", "--download-only", f"{package}={version}"], cwd=dl, capture=True)
    if cp.returncode != 0:
        raise Unavailable(f"apt-get source {package}={version} failed (the mirror may no longer carry this "
                          f"version; snapshot.debian.org keeps every version): " +
                          " ".join((cp.stderr or cp.stdout).split())[-400:])
    downloaded = {n: os.path.getsize(os.path.join(dl, n)) for n in sorted(os.listdir(dl))
                  if os.path.isfile(os.path.join(dl, n))}
    dscs = [n for n in downloaded if n.endswith(".dsc")]
    if len(dscs) != 1:
        raise Unavailable(f"apt-get source left {sorted(downloaded)}: expected one .dsc")
    say(f"downloaded {sum(downloaded.values()) / 1e6:.1f} MB in {time.time() - t0:.1f} s: " +
        ", ".join(f"{n} ({s / 1e6:.1f} MB)" for n, s in downloaded.items()))
    tree = os.path.join(work, "tree")
    cp = run(["dpkg-source", "--no-copy", "-x", os.path.join(dl, dscs[0]), tree], cwd=dl, capture=True)
    if cp.returncode != 0 or not os.path.isdir(tree):
        raise Unavailable("dpkg-source -x failed: " + " ".join((cp.stderr or cp.stdout).split())[-400:])
    name = dir_name(package, version)
    final = os.path.join(dest, name)
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    files = {}
    for rel in FILES:
        src = os.path.join(tree, rel)
        if not os.path.isfile(src):
            raise Unavailable(f"the source package has no {rel}: this QEMU version is not the one the shim "
                              f"was written for")
        os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
        shutil.copyfile(src, os.path.join(tmp, rel))
        files[rel] = sha256(os.path.join(tmp, rel))
    with open(os.path.join(tree, "VERSION")) as f:
        upstream = f.read().strip()
    stamp = {"package": package, "version": version, "upstream_version": upstream, "files": files,
             "downloaded": downloaded, "sources_list": lines,
             "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "seconds": round(time.time() - t0, 1)}
    with open(os.path.join(tmp, "STAMP.json"), "w") as f:
        json.dump(stamp, f, indent=1, sort_keys=True)
        f.write("\n")
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    with open(os.path.join(dest, "current.tmp"), "w") as f:
        f.write(name + "\n")
    os.replace(os.path.join(dest, "current.tmp"), os.path.join(dest, "current"))
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
    say(f"kept {len(files)} files in {final} ({time.time() - t0:.1f} s in all; QEMU {upstream})")
    return final


def main(argv):
    ap = argparse.ArgumentParser(prog="fetch_source.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", default=os.path.join(ROOT, "build", "qemu-src"))
    ap.add_argument("--version", help="source version (default: the installed qemu-utils' source version)")
    ap.add_argument("--check", action="store_true", help="only say whether the source is present and current")
    ap.add_argument("--keep-work", action="store_true", help="keep the private apt dirs and the unpacked tree")
    a = ap.parse_args(argv)
    dest = os.path.abspath(a.dest)
    try:
        if a.version:
            package, version = "qemu", a.version
        else:
            package, version = installed_source()
        os.makedirs(dest, exist_ok=True)
        d = present(dest, package, version)
        if d:
            say(f"already present: {d} ({package} {version})")
            return EXIT_OK
        if a.check:
            raise Unavailable(f"{package} {version} has not been fetched into {dest} "
                              f"(run qemu/fetch_source.py or scripts/powercut setup)")
        try:
            fetch(dest, package, version, a.keep_work)
        finally:
            if not a.keep_work:
                shutil.rmtree(os.path.join(dest, ".fetch"), ignore_errors=True)
        return EXIT_OK
    except Unavailable as e:
        say(f"unavailable: {e}")
        return EXIT_UNAVAILABLE
    except OSError as e:
        say(f"error: {e}")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
