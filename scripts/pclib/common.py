"""Shared helpers: project paths, printing and running external commands,
exit statuses, JSON output.

Every external command goes through run() (waits) or popen() (a process
left running), which print it (as a shell-quoted line on stderr, prefixed
with '+') before it runs.  quiet=True is for queries repeated many times
(registries, per-state checker commands after the first); POWERCUT_VERBOSE=1
prints those too.  Nothing else in the driver calls subprocess.
"""
import json
import os
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
PYTHON = "/usr/bin/python3"  # Debian's, which sees python3-pytest and python3-matplotlib

EXIT_OK = 0          # success / no violation
EXIT_FAIL = 1        # violations found, image invalid, tests failed
EXIT_USAGE = 2       # usage or infrastructure error

TimeoutExpired = subprocess.TimeoutExpired  # what run(..., timeout=) raises
DEVNULL = subprocess.DEVNULL
VERBOSE = os.environ.get("POWERCUT_VERBOSE", "") not in ("", "0")


class UsageError(Exception):
    """A bad argument or missing input: exit status 2 with a clear message."""


class InfraError(Exception):
    """A tool failed to build or run: exit status 2."""


def say(msg, quiet=False):
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def show_cmd(cmd, cwd=None):
    line = " ".join(shlex.quote(str(c)) for c in cmd)
    if cwd and os.path.abspath(cwd) != os.getcwd():
        line = f"(cd {shlex.quote(cwd)} && {line})"
    print(f"+ {line}", file=sys.stderr, flush=True)


def run(cmd, cwd=None, check=True, capture=False, env=None, quiet=False, timeout=None, input=None, stdout=None,
        stderr=None, text=False):
    """Runs cmd after printing it.  Returns CompletedProcess.  With check,
    a nonzero status raises InfraError naming the command.  capture keeps
    stdout and stderr (stdout= / stderr= choose otherwise: a file, DEVNULL,
    subprocess.STDOUT); past timeout, TimeoutExpired."""
    if not quiet or VERBOSE:
        show_cmd(cmd, cwd)
    try:
        cp = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, timeout=timeout, input=input, text=text,
                            stdout=subprocess.PIPE if capture and stdout is None else stdout,
                            stderr=subprocess.PIPE if capture and stderr is None else stderr)
    except FileNotFoundError as e:
        raise InfraError(f"cannot run {cmd[0]}: {e}") from e
    if check and cp.returncode != 0:
        detail = ""
        if capture and cp.stderr:
            detail = ": " + cp.stderr.decode(errors="replace").strip()[-2000:]
        raise InfraError(f"command failed with status {cp.returncode}: {' '.join(map(str, cmd))}{detail}")
    return cp


def popen(cmd, cwd=None, env=None, stdout=None, stderr=None, new_session=False, quiet=False):
    """Starts cmd after printing it and returns the Popen (the caller waits).
    new_session: the process gets its own session, so a terminal's Ctrl-C
    reaches only the driver (which forwards it)."""
    if not quiet or VERBOSE:
        show_cmd(cmd, cwd)
    try:
        return subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=env, stdout=stdout, stderr=stderr,
                                start_new_session=new_session)
    except FileNotFoundError as e:
        raise InfraError(f"cannot run {cmd[0]}: {e}") from e


STDOUT = subprocess.STDOUT


def build_dir(preset):
    return os.path.join(BUILD, preset)


def tool(preset, name):
    """Path of a built program in a preset's tree (engine/, harness/, ...)."""
    for sub in ("engine", "harness", "fuzz", "faults", "tests", "bench", "record"):
        p = os.path.join(build_dir(preset), sub, name)
        if os.path.exists(p):
            return p
    return os.path.join(build_dir(preset), "engine", name)


def run_summarized(cmd, name, summary_path, junit_path, run_dir, json_copy=None, junit_copy=None, junit_of=None):
    """Runs a C tool (pcsweep, pcfaults) that writes a JSON summary into
    run_dir and exits 0 (clean) or 1 (violations).  The summary gains
    "run_dir"; junit_of(summary) gives the JUnit document written to
    junit_path (junit.py: the one JUnit writer); the summary is copied to
    json_copy, the JUnit file to junit_copy (when given).  Returns (status,
    summary); any other status, or no summary, is an InfraError."""
    cp = run(cmd, check=False)
    if cp.returncode not in (0, 1) or not os.path.exists(summary_path):
        raise InfraError(f"{name} failed (status {cp.returncode}); see the messages above")
    try:
        with open(summary_path) as f:
            summary = json.load(f)
    except (OSError, ValueError) as e:
        raise InfraError(f"{name} wrote an unreadable summary {summary_path}: {e}") from e
    summary["run_dir"] = run_dir
    write_json(summary_path, summary)
    if junit_of:
        with open(junit_path, "w") as f:
            f.write(junit_of(summary))
    lost = []
    for src, dst, what in ((summary_path, json_copy, "--json"), (junit_path, junit_copy, "--junit")):
        if dst:
            try:
                save_copy(src, dst, what)
            except LostOutput as e:
                lost.append(str(e))
    if lost:
        summary["lost_outputs"] = lost
    return cp.returncode, summary


def starts_with(path, magic):
    """True when path is a readable regular file beginning with magic."""
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError:
        return False


def is_vhdx(path):
    """A VHDX image (the "vhdxfile" file type identifier)."""
    return starts_with(path, b"vhdxfile")


def is_pctrace(path):
    """A harness trace (harness/include/harness/trace.h)."""
    return starts_with(path, b"PCTRACE1")


def file_sha256(path):
    """SHA-256 of a file's content (hex)."""
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- scratch files ----------------------------------------------------------------------
def sparse_copy(src, dst):
    """Copies a file leaving zero MiB chunks as holes (no process needed)."""
    chunk = 1 << 20
    zero = bytes(chunk)
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        size = 0
        while True:
            b = fi.read(chunk)
            if not b:
                break
            if b == zero[:len(b)]:
                fo.seek(len(b), os.SEEK_CUR)
            else:
                fo.write(b)
            size += len(b)
        fo.truncate(size)


def work_tmpdir():
    """Where checkers' scratch copies go: $POWERCUT_TMPDIR, else /dev/shm
    when it is a writable tmpfs with room (the checkers' own fsyncs cost
    nothing there: QEMU's replay syncs every 4 KiB it writes), else the
    default temporary directory."""
    d = os.environ.get("POWERCUT_TMPDIR")
    if d:
        return d
    try:
        st = os.statvfs("/dev/shm")
        if os.access("/dev/shm", os.W_OK) and st.f_bavail * st.f_frsize >= (4 << 30):
            return "/dev/shm"
    except OSError:
        pass
    return None


class OnceRunner:
    """Runs many checker commands through run(), from several threads: each
    distinct program (and sub-command) is printed the first time, every
    command with verbose.  Past the timeout a command is killed and reported
    as a CompletedProcess with status -9."""

    def __init__(self, verbose=False, timeout=60.0):
        import threading
        self.verbose = verbose
        self.timeout = timeout
        self.shown = set()
        self.lock = threading.Lock()

    def run(self, cmd, timeout=None):
        timeout = timeout or self.timeout
        key = os.path.basename(str(cmd[0])) + " " + str(cmd[1])
        with self.lock:
            quiet = not self.verbose and key in self.shown
            self.shown.add(key)
        try:
            return run(cmd, check=False, capture=True, quiet=quiet, timeout=timeout)
        except TimeoutExpired:
            return subprocess.CompletedProcess(cmd, -9, b"", f"timed out after {timeout} s".encode())


def write_json(path, obj):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    if os.path.exists(path) and not os.path.isfile(path):
        # a device or pipe (/dev/stdout): written in place, never replaced
        with open(path, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


# ---- outputs: checked before the work, never lost after it ----------------------------
def _why(e):
    return e.strerror or str(e)


def check_output_file(path, what):
    """Before any work: can `path` (the value of option `what`) be written?
    Its directory is created when missing.  A UsageError (exit status 2)
    names the path otherwise.  A file that does not exist yet is created
    and removed again, so the answer is the file system's, not a guess from
    permission bits (which root passes everywhere)."""
    if not path:
        return
    if os.path.isdir(path):
        raise UsageError(f"{what} {path}: is a directory, a file name is expected")
    d = os.path.dirname(os.path.abspath(path))
    up = d
    while not os.path.exists(up) and os.path.dirname(up) != up:
        up = os.path.dirname(up)
    if not os.path.isdir(up):
        raise UsageError(f"{what} {path}: {up} is not a directory")
    try:
        os.makedirs(d, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{what} {path}: cannot create the directory {d}: {_why(e)}") from e
    try:
        if os.path.exists(path):
            with open(path, "ab"):
                pass
        else:
            with open(path, "xb"):
                pass
            os.unlink(path)
    except OSError as e:
        raise UsageError(f"{what} {path}: cannot be written: {_why(e)}") from e


def check_output_dir(path, what):
    """Before any work: `path` (option `what`) is, or can be made, a
    directory we can create files in.  UsageError (exit 2) otherwise."""
    if not path:
        return
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{what} {path}: exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
        import tempfile
        with tempfile.NamedTemporaryFile(dir=path, prefix=".powercut-check-"):
            pass
    except OSError as e:
        raise UsageError(f"{what} {path}: cannot write there: {_why(e)}") from e


def fallback_path(path):
    """Where results go when `path` cannot be written after the run."""
    import tempfile
    base = os.path.basename(path) or "results"
    return os.path.join(tempfile.gettempdir(), f"powercut-{os.getpid()}-{base}")


class LostOutput(InfraError):
    """A finished run's output could not be written where asked; it was
    saved elsewhere (the message says where).  Exit status 2."""


def save_json(path, obj, what="--json"):
    """write_json that never loses the results: when `path` cannot be
    written (it was checked before the run, but file systems fill up and
    permissions change), the JSON goes to a file in the temporary
    directory and LostOutput names both."""
    try:
        write_json(path, obj)
        return path
    except OSError as e:
        alt = fallback_path(path)
        write_json(alt, obj)
        raise LostOutput(f"{what} {path}: cannot be written ({_why(e)}); the results were saved to {alt}") from e


def save_copy(src, path, what):
    """shutil.copyfile with the same promise as save_json."""
    import shutil
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        shutil.copyfile(src, path)
        return path
    except OSError as e:
        alt = fallback_path(path)
        shutil.copyfile(src, alt)
        raise LostOutput(f"{what} {path}: cannot be written ({_why(e)}); the results were saved to {alt}") from e
