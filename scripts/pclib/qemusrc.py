"""QEMU's source for the QEMU subject (qemu/): fetched into build/qemu-src by
qemu/fetch_source.py (Debian's source package of the installed qemu-utils,
through a private apt configuration; about 24 MB downloaded once), checked
on every setup, never inside the repository's tracked files.

`setup.ensure()` calls ensure(): nothing happens when the source is present
and current; otherwise it is fetched, and when it cannot be had the reason
is printed and everything else goes on (CMake then leaves the QEMU subject
out and its tests are skipped with that reason).
"""
import os

from .common import PYTHON, ROOT, run, say

SCRIPT = os.path.join(ROOT, "qemu", "fetch_source.py")
DEST = os.path.join(ROOT, "build", "qemu-src")  # CMake's POWERCUT_QEMU_SRC_ROOT default
EXIT_UNAVAILABLE = 3

_state = None  # None: not tried in this process; True/False: the outcome


def present():
    """True when the fetched source is present and matches the installed QEMU (no network)."""
    if not os.path.exists(SCRIPT):
        return False
    return run([PYTHON, SCRIPT, "--dest", DEST, "--check"], check=False, capture=True, quiet=True).returncode == 0


def ensure(quiet=False):
    """Fetches the source when it is missing or stale; once per process.
    Returns True when it is present afterwards."""
    global _state
    if _state is not None:
        return _state
    if present():
        say("setup: QEMU's VHDX driver source is present (build/qemu-src)", quiet)
        _state = True
        return True
    say("setup: fetching QEMU's source package for the in-process QEMU subject (qemu/fetch_source.py)")
    cp = run([PYTHON, SCRIPT, "--dest", DEST], check=False)
    _state = cp.returncode == 0
    if not _state:
        why = "the source package cannot be had" if cp.returncode == EXIT_UNAVAILABLE else "the fetch failed"
        say(f"setup: {why} (status {cp.returncode}; messages above): the QEMU subject is left out "
            f"and its tests are skipped")
    return _state
