"""`powercut setup`: install the Debian packages powercut needs, idempotently.

Checks each package with dpkg-query and installs only what is missing
(apt-get update first, then apt-get install), saying what it installs.
Nothing happens when everything is present.  Then QEMU's source package
(the installed qemu-utils' version) is fetched into build/qemu-src for the
in-process QEMU subject, once (scripts/pclib/qemusrc.py,
qemu/fetch_source.py); when it cannot be had, the reason is printed and
the subject is left out.
"""
import os
import shutil

from .common import DEVNULL, InfraError, run, say

# package -> why powercut needs it
PACKAGES = {
    "cmake": "build system",
    "ninja-build": "build backend of the CMake presets",
    "clang-14": "the one compiler (all presets)",
    "llvm-14": "llvm-cov / llvm-profdata for coverage reports",
    "libclang-rt-14-dev": "sanitizer and libFuzzer runtimes",
    "afl++": "AFL++ fuzzing",
    "libfiu-dev": "fault-injection points (fiu preset)",
    "fiu-utils": "fiu-run / POSIX preload for external programs",
    "qemu-utils": "qemu-img / qemu-io, the peer implementation",
    "python3-pytest": "driver tests",
    "python3-matplotlib": "plots in campaign reports",
    "chromium": "headless check of the HTML report",
    "zip": "seed-corpus archives for ClusterFuzzLite",
    "git": "reproducible builds of planted bugs",
    "patch": "applying planted-bug patches",
    "dpkg-dev": "dpkg-source, which unpacks QEMU's source package for the QEMU subject (qemu/)",
}


def missing_packages(names=None):
    names = list(names or PACKAGES)
    cp = run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n"] + names, check=False, capture=True,
             stderr=DEVNULL, text=True, quiet=True)  # a query on every command: printed with POWERCUT_VERBOSE=1
    installed = {line.split()[0] for line in cp.stdout.splitlines() if line.endswith(" installed")}
    return [n for n in names if n not in installed]


def ensure(names=None, quiet=False):
    """Installs what is missing.  Returns the list installed.  A full setup
    (names None) also fetches QEMU's source for the QEMU subject
    (qemusrc.ensure: once, idempotent, never fatal)."""
    installed = _ensure_packages(names, quiet)
    if names is None:
        from . import qemusrc
        qemusrc.ensure(quiet)
    return installed


def _ensure_packages(names, quiet):
    if not shutil.which("dpkg-query"):
        raise InfraError("this is not a Debian system (no dpkg-query); install the packages listed in README.md by hand")
    missing = missing_packages(names)
    if not missing:
        say("setup: all required Debian packages are installed", quiet)
        return []
    for n in missing:
        say(f"setup: installing {n} ({PACKAGES.get(n, 'required')})")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    if sudo and not shutil.which("sudo"):
        raise InfraError(f"packages missing ({' '.join(missing)}) and not root: run as root or install them")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(sudo + ["apt-get", "update", "-qq"], env=env)
    run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing, env=env)
    still = missing_packages(missing)
    if still:
        raise InfraError(f"apt-get did not install: {' '.join(still)}")
    return missing


def add_parser(sub):
    p = sub.add_parser("setup", help="install missing Debian packages (idempotent)",
                       description=__doc__)
    p.set_defaults(func=cmd_setup)


def cmd_setup(args):
    ensure()
    return 0
