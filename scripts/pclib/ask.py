"""What the driver knows of traces and images, it asks the binaries.

DESIGN.md section 8: the driver asks the binaries (`--json` outputs) instead
of re-parsing VHDX or traces.  This module is the one place that does:

  trace_info(pcsweep, TRACE, ops)   `pcsweep info TRACE --json [--ops]`: header,
                                    metadata, the epochs as the sweep counts them,
                                    every operation without its data
  export_count / export_states      `pcsweep export --count` / `--only I,...`: the
                                    crash states of a trace as image files
  layout(vhdxtool, IMG, bat_at)     `vhdxtool layout IMG [--bat-at VOFF]`: the
                                    structures without opening the image

Each function takes the binary's path (tool(preset, name)) and, where a
caller runs many commands from threads, the runner (common.OnceRunner: every
distinct command printed once).  A command that fails gives None or an
InfraError / UsageError naming the file, never a traceback.
"""
import json
import os

from .common import InfraError, UsageError, run


def _json(cp):
    try:
        return json.loads(cp.stdout.decode(errors="replace")) if cp.returncode == 0 else None
    except ValueError:
        return None


def _why(cp, what):
    return cp.stderr.decode(errors="replace").strip() or f"{what} exited with status {cp.returncode}"


# ---- traces ---------------------------------------------------------------------------
def trace_info(pcsweep, path, ops=False, quiet=False):
    """`pcsweep info PATH --json [--ops]` as a dict; a trace that does not
    load is a UsageError with pcsweep's message (it names the file)."""
    cp = run([pcsweep, "info", path, "--json"] + (["--ops"] if ops else []), check=False, capture=True,
             quiet=quiet)
    info = _json(cp)
    if info is None:
        raise UsageError(_why(cp, f"pcsweep info {path}"))
    return info


def trace_ops(info):
    """The operations of trace_info(..., ops=True) as tuples (kind, offset or
    new size, length, fill byte or mark name): W (offset, length, the byte the
    write is uniformly filled with or None), T (size), F, M (name), B, E."""
    out = []
    for op in info.get("operations", []):
        k = op["kind"]
        if k == "W":
            out.append(("W", op["offset"], op["length"], op["fill"]))
        elif k == "T":
            out.append(("T", op["size"], 0, None))
        elif k == "M":
            out.append(("M", 0, 0, op["name"]))
        else:
            out.append((k, 0, 0, None))
    return out


def epoch_starts(info):
    """starts[e] = the trace index of the flush that begins epoch e (0 for
    epoch 0): every operation before it is durable in epoch e's states."""
    epochs = info["epochs"]
    return [0] + [e["flush"] for e in epochs[:-1]]


def trace_meta(pcsweep, path):
    """The metadata of a .pctrace (None when it does not load)."""
    try:
        return trace_info(pcsweep, path, quiet=True).get("meta", {})
    except UsageError:
        return None


# ---- crash states as images -------------------------------------------------------------
def _export_args(trace, models, sweep_seed, shard):
    a = ["--trace", trace, "--models", ",".join(models)]
    if sweep_seed is not None:
        a += ["--sweep-seed", str(sweep_seed)]
    if shard and shard not in ("0/1",):
        a += ["--shard", shard]
    return a


def export_count(pcsweep, trace, models, sweep_seed=None, shard=None, quiet=True):
    """(number of exportable states, None), or (None, why)."""
    cp = run([pcsweep, "export"] + _export_args(trace, models, sweep_seed, shard) + ["--count"], check=False,
             capture=True, quiet=quiet)
    d = _json(cp)
    try:
        return int(d["states"]), None
    except (TypeError, KeyError, ValueError):
        return None, _why(cp, "pcsweep export --count")


def export_states(pcsweep, trace, out, models, indices, sweep_seed=None, shard=None, quiet=False, failed="",
                  keep=1000):
    """Writes the states `indices` of a trace as images into out; returns
    the manifest rows (index, image, model, epoch, cut, size, choice).  A
    failed export is an InfraError: `failed` followed by the last `keep`
    characters of pcsweep's message."""
    cmd = [pcsweep, "export"] + _export_args(trace, models, sweep_seed, shard) + [
        "--out", out, "--only", ",".join(map(str, indices))]
    cp = run(cmd, check=False, capture=True, quiet=quiet)
    if cp.returncode != 0:
        raise InfraError(failed + cp.stderr.decode(errors="replace").strip()[-keep:])
    with open(os.path.join(out, "manifest.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


# ---- images ---------------------------------------------------------------------------
def layout(vhdxtool, img, bat_at=None, runner=None):
    """`vhdxtool layout IMG [--bat-at VOFF]` as a dict, or None."""
    cmd = [vhdxtool, "layout", img] + (["--bat-at", str(bat_at)] if bat_at is not None else [])
    cp = runner.run(cmd) if runner else run(cmd, check=False, capture=True, quiet=True)
    return _json(cp)


def log_pending(lay):
    """The current header (by the engine's rule) names a log to replay."""
    return bool(lay and (lay.get("log") or {}).get("pending"))


def log_range(lay):
    """(offset, length) of the log the current header names, or None."""
    lg = (lay or {}).get("log")
    return (lg["offset"], lg["length"]) if lg else None


def region_range(lay, name):
    """(offset, length) of the BAT or metadata region of the first valid
    region table, or None."""
    r = (lay or {}).get(name)
    return (r["offset"], r["length"]) if r else None


def region_tables_valid(lay):
    """[copy 1 valid, copy 2 valid]."""
    return [bool(t.get("valid")) for t in (lay or {}).get("region_tables", [])]


def bat_state_at(lay):
    """The state name of the BAT entry of layout(..., bat_at=V), or None."""
    at = (lay or {}).get("bat_at")
    return at["value"]["state"] if at else None
