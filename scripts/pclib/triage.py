"""Triage: turn raw failures into unique, minimized, stored regressions.

Every failure a campaign produces (a fuzzer crash with its sanitizer report,
a sweep or fault violation with its reproducer) gets a *crash state*, the
key it is deduplicated by:

* sanitizer and fuzzer crashes: the crash type (e.g. "heap-buffer-overflow
  READ 4", "UndefinedBehaviorSanitizer: shift-exponent", "deadly signal",
  "timeout", "out-of-memory") plus the top three stack frames that are not
  sanitizer, libc or fuzzer frames (ClusterFuzz's crash state);
* harness violations: the method, the invariant and the crash model.

Each unique failure is minimized (libFuzzer -minimize_crash, afl-tmin, or
`pcsweep repro --minimize`) and stored under corpus/regressions/<id>/ with
meta.json: what failed, first seen, seed, the command that reproduces it.
Stored regressions are replayed by CTest.
"""
import hashlib
import json
import os
import re
import shutil
import time

from .common import ROOT, write_json

REGRESSIONS = os.path.join(ROOT, "corpus", "regressions")

# Frames that say nothing about *our* code.
_SKIP_FRAME = re.compile(
    r"(__asan|__ubsan|__sanitizer|__lsan|__msan|__interceptor|asan_|ubsan_|sanitizer_|"
    r"LLVMFuzzer(TestOneInput|RunDriver)?$|fuzzer::|^fuzz_fail$|^gsignal$|pthread_kill|^main$|libFuzzer|afl_|__afl|__libc_start|_start$|"
    r"^run_file$|^run_path$|"  # fuzz/standalone_main.c: how AFL++ findings and stored inputs are replayed
    r"^(abort|raise|__GI_|malloc|calloc|realloc|free|memcpy|memmove|memset|memcmp|strlen|__memcpy|__memmove|"
    r"__memset|__memcmp|__strlen|operator new|operator delete)|libc\.so|libstdc\+\+|ld-linux)")
_FRAME = re.compile(r"^\s*#(\d+)\s+0x[0-9a-f]+\s+in\s+(.+?)(?:\s+(/\S+|\S+\.c:\d+\S*))?\s*$")
_FRAME_NOIN = re.compile(r"^\s*#(\d+)\s+0x[0-9a-f]+\s+\((.+?)\+0x[0-9a-f]+\)")


def crash_type(report):
    """The crash type from a sanitizer / fuzzer report, or None."""
    prop = re.search(r"==powercut-fuzz== [^\n]*check failed: ([^\n]+)", report)
    m = re.search(r"ERROR: AddressSanitizer: ([\w-]+)(?: on [^\n]*)?", report)
    if prop and (not m or m.group(1) == "ABRT"):
        # a failed property of a fuzz target: fuzz_fail() printed it, then abort()
        return "check failed: " + prop.group(1).strip()[:80]
    if m:
        kind = m.group(1)
        rw = re.search(r"^(READ|WRITE) of size (\d+)", report, re.M)
        return f"{kind} {rw.group(1)} {rw.group(2)}" if rw else kind
    m = re.search(r"runtime error: ([^\n]+)", report)
    if m:
        what = m.group(1)
        # keep the class of error, not the values
        what = re.sub(r"-?\b(0x[0-9a-f]+|\d+)\b", "N", what)
        what = re.sub(r"'[^']*'", "'T'", what)
        return "UndefinedBehaviorSanitizer: " + what[:80]
    for pat, name in ((r"ERROR: LeakSanitizer", "memory-leak"), (r"ERROR: libFuzzer: timeout", "timeout"),
                      (r"ERROR: libFuzzer: out-of-memory", "out-of-memory"),
                      (r"ERROR: libFuzzer: deadly signal", "deadly signal"),
                      (r"ERROR: libFuzzer: fuzz target exited", "fuzz target exited"),
                      (r"AddressSanitizer:DEADLYSIGNAL", "deadly signal"),
                      (r"Assertion .* failed", "assertion")):
        if re.search(pat, report):
            return name
    m = re.search(r"^(?:powercut|fuzz\w*): (?:VIOLATION|property violated|BUG)[: ]+([^\n]+)", report, re.M)
    if m:
        return "property: " + m.group(1)[:80]
    return None


def top_frames(report, n=3):
    """The first n frames of the first stack that are our code."""
    frames = []
    started = False
    for line in report.splitlines():
        m = _FRAME.match(line)
        if not m:
            if started and frames and not line.strip():
                break  # end of the first stack
            continue
        started = True
        func = m.group(2).strip()
        func = re.sub(r"\(.*$", "", func).strip()  # C++ signatures
        if _SKIP_FRAME.search(func):
            continue
        frames.append(func)
        if len(frames) == n:
            break
    return frames


def crash_state(report):
    """(type, frames): the deduplication key of a sanitizer/fuzzer report."""
    return crash_type(report) or "unknown crash", top_frames(report)


def violation_state(method, invariant, where=None):
    """The crash state of a harness violation: the method and invariant,
    and where -- a list: the signature's model class (or phase/kind),
    scenario and structure, so that the campaign groups as the tools do
    (one report per bug); a single string is taken as a one-element list."""
    if where is None:
        where = []
    elif isinstance(where, str):
        where = [where]
    return f"{method}: {invariant}", [str(w) for w in where]


def signature(state):
    kind, frames = state
    return kind + " | " + " > ".join(frames)


def failure_id(state):
    return hashlib.sha1(signature(state).encode()).hexdigest()[:12]


def dedupe(failures):
    """failures: dicts with 'state' (type, frames).  Returns the unique ones,
    in first-seen order, each with 'count' and 'id'."""
    seen = {}
    for f in failures:
        key = signature(f["state"])
        n = f.get("count", 1)  # a tool's signature already counts its states
        if key in seen:
            seen[key]["count"] += n
            continue
        g = dict(f)
        g["count"] = n
        g["id"] = failure_id(f["state"])
        seen[key] = g
    return list(seen.values())


class DamagedRegression(Exception):
    """A stored regression's meta.json cannot be read or is not an object."""


def store_regression(f, artifact, root=REGRESSIONS, now=None, extra=None):
    """Stores a unique failure under root/<id>/ (input + meta.json).  An
    existing entry keeps its first-seen date and status and gains a
    sighting.  extra: fields the replay needs ("target": the tool or fuzz
    target that replays the input, "post_process", ...)."""
    d = os.path.join(root, f["id"])
    os.makedirs(d, exist_ok=True)
    meta_path = os.path.join(d, "meta.json")
    meta = {}
    if os.path.exists(meta_path):
        try:
            with open(meta_path) as fh:
                meta = json.load(fh)
        except (OSError, ValueError) as e:
            raise DamagedRegression(f"{meta_path}: {e}") from e
        if not isinstance(meta, dict):
            raise DamagedRegression(f"{meta_path}: not a JSON object")
    name = os.path.basename(artifact)
    if not os.path.exists(os.path.join(d, name)):
        shutil.copyfile(artifact, os.path.join(d, name))
    stamp = now or time.strftime("%Y-%m-%dT%H:%M:%S")
    kind, frames = f["state"]
    meta.update({
        "id": f["id"],
        "what": f.get("what") or kind,
        "crash_type": kind,
        "frames": frames,
        "method": f.get("method"),
        "target": f.get("target"),
        "where": f.get("target"),
        "file": name,
        "seed": f.get("seed"),
        "command": f.get("command"),
        "first_seen": meta.get("first_seen", stamp),
        "last_seen": stamp,
        "sightings": meta.get("sightings", 0) + f.get("count", 1),
    })
    prior = meta.get("status")
    meta.update(extra or {})
    # "new": found, not yet looked at (the CTest replay fails until it is
    # fixed or marked "open"); a person's "open" (a known, accepted
    # deviation) is kept; a "fixed" one seen again has regressed: "new".
    meta["status"] = "open" if prior == "open" else "new"
    write_json(meta_path, meta)
    return d
