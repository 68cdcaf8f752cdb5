"""One long-lived `qemu-io` process that opens, reads, writes and closes
image after image (the external-checker sweep's fast QEMU path,
docs/external.md).

qemu-io started without an image reads its commands from stdin, one line
at a time, and prints its prompt `qemu-io> ` (flushing stdout) before it
reads each line.  It reads stdin through stdio when its event loop sees the
pipe readable, so a second line that arrived in the same read() waits until
more input comes: commands are therefore sent one at a time, each after the
prompt that follows the previous one.  stdout and stderr share one pipe,
so what a command printed is everything between its line and the next
prompt.  An exchange ends with an unknown command, `powercut-mark-N`, whose message
(`command "powercut-mark-N" not found`) must come back exactly: a session
out of step is closed (SessionError).
The caller decides what counts as success (for `open`, `close`, `read -q`,
`write -q`: printing nothing).

qemu-io runs with glibc's malloc tunables set so that freed memory stays in
its heap (TUNABLES below): every `read` allocates a buffer the size of the
request, and where page faults are dear (a sandboxed kernel) mapping and
unmapping those buffers costs more than the reads (reading 4 MiB back with
four `read -P`: 57 ms without, 10 ms with, on the 2-core test machine).

Image paths go into the command line unquoted (qemu-io splits at blanks):
a path with white space is refused (ValueError).
"""
import os
import re
import select
import subprocess
import time

from .common import say

PROMPT = b"qemu-io> "
TUNABLES = "glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824:glibc.malloc.top_pad=67108864"
_HEX = re.compile(r"^([0-9a-f]+):  ((?:[0-9a-f]{2} )+)", re.M)


class SessionError(Exception):
    """The session timed out or qemu-io ended; it is closed and must not be used again."""


class QemuIo:
    def __init__(self, program="qemu-io", announce=True):
        say(f"+ {program}  (a long-lived session: commands on stdin)", quiet=not announce)
        env = dict(os.environ)
        env["GLIBC_TUNABLES"] = ":".join(x for x in (env.get("GLIBC_TUNABLES"), TUNABLES) if x)
        self.p = subprocess.Popen([program], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, bufsize=0, env=env)
        self.n = 0
        self.started = False
        self.buf = b""
        self.commands = 0

    @staticmethod
    def check_path(path):
        if re.search(r"\s", path):
            raise ValueError(f"{path!r}: qemu-io commands cannot name a path with white space")
        return path

    def _answer(self, deadline, timeout):
        """What qemu-io printed up to its next prompt."""
        fout = self.p.stdout.fileno()
        while not self.buf.endswith(PROMPT):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fout], [], [], left)[0]:
                self.close(kill=True)
                raise SessionError(f"qemu-io did not answer within {timeout:g} s")
            chunk = os.read(fout, 1 << 20)
            if not chunk:
                self.close(kill=True)
                raise SessionError("qemu-io ended")
            self.buf += chunk
        out, self.buf = self.buf[:-len(PROMPT)], b""
        return out.decode(errors="replace")

    def run(self, cmds, timeout=60.0, mark=True):
        """Runs the commands in order; returns what each printed (str).
        SessionError past the timeout (the process is killed), when
        qemu-io has ended or (mark: the marker's answer checked at the end)
        is out of step.  A caller that leaves the marker out of some runs
        must end its exchange with one (run([]) does)."""
        if self.p is None:
            raise SessionError("the session is closed")
        deadline = time.monotonic() + timeout
        if not self.started:
            self._answer(deadline, timeout)
            self.started = True
        mark = f"powercut-mark-{self.n}" if mark else None
        self.n += 1
        outs = []
        for c in list(cmds) + ([mark] if mark else []):
            if "\n" in c:
                raise ValueError(f"qemu-io command {c!r} spans lines")
            try:
                self.p.stdin.write(c.encode() + b"\n")
            except BrokenPipeError:
                self.close(kill=True)
                raise SessionError("qemu-io ended") from None
            outs.append(self._answer(deadline, timeout))
        if mark and outs.pop() != f'command "{mark}" not found\n':
            self.close(kill=True)
            raise SessionError("qemu-io is out of step")
        self.commands += len(cmds)
        return outs

    def close(self, kill=False):
        p, self.p = self.p, None
        if p is None:
            return
        try:
            if kill:
                p.kill()
            else:
                p.stdin.write(b"quit\n")
                p.stdin.close()
            p.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            p.kill()
            p.wait()
        finally:
            for f in (p.stdin, p.stdout):
                try:
                    f.close()
                except OSError:
                    pass


def keep_heap():
    """The same for this (Python) process, which builds and compares the
    disk's bytes for every state: mallopt, where glibc is there."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        for param, value in ((-3, 256 << 20), (-1, 1 << 30), (-2, 64 << 20)):  # M_MMAP_THRESHOLD, TRIM, TOP_PAD
            libc.mallopt(param, value)
    except (OSError, AttributeError):
        pass


def parse_dump(text, off, length):
    """The bytes of `read -v OFF LEN` output (hex dump lines 'OFFSET:  xx xx
    ...  ascii'), or None when the dump does not cover the range exactly."""
    out = bytearray(length)
    got = 0
    for m in _HEX.finditer(text):
        o = int(m.group(1), 16) - off
        b = bytes.fromhex(m.group(2))
        if o < 0 or o + len(b) > length:
            return None
        out[o:o + len(b)] = b
        got += len(b)
    return bytes(out) if got == length else None
