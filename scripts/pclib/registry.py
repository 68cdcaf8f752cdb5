"""The registries of the C tools, read from the binaries (never listed here).

DESIGN.md section 8: one registry per concept, in C; the tools print them as
JSON and nothing else keeps a list.  The driver asks:

  scenarios(pcsweep)    `pcsweep scenarios`        [{name, about}]
  models(pcsweep)       `pcsweep models`           [{name, class, exportable}]
  invariants(pcsweep)   `pcsweep invariants --json` [{name, class, about}]
  fault_kinds(pcfaults) `pcfaults kinds --json`    {kinds: [{name, points}], modes, phases, points}
  shard(pcsweep, ...)   `pcsweep shard --json`     {k, n, shard, source}: the shard rule (not cached)

Each takes the path of the binary (a preset's build: tool(preset, name)) and
is cached per build: the answer is kept for that path as long as the binary
is not rebuilt (its modification time), so a driver run asks each binary at
most once.  The helpers below derive what callers need (model groups,
exportable models, classes) from the answers.
"""
import json
import os

from .common import InfraError, UsageError, run

_cache = {}


def ask(binary, *args):
    """The JSON a registry command of binary prints (cached per build)."""
    try:
        stamp = os.path.getmtime(binary)
    except OSError as e:
        raise InfraError(f"{binary} is not built: cannot read its registry ({e.strerror or e})") from e
    key = (os.path.abspath(binary), args)
    hit = _cache.get(key)
    if hit and hit[0] == stamp:
        return hit[1]
    cp = run([binary] + list(args), check=False, capture=True, quiet=True)
    try:
        value = json.loads(cp.stdout.decode(errors="replace"))
    except ValueError as e:
        raise InfraError(f"`{os.path.basename(binary)} {' '.join(args)}` printed no registry "
                         f"(status {cp.returncode})") from e
    _cache[key] = (stamp, value)
    return value


def scenarios(pcsweep):
    """Scenario names, in registry order."""
    return [x["name"] for x in ask(pcsweep, "scenarios")]


def subjects(pcsweep):
    """The implementations under test this build has (`pcsweep subjects`):
    [{"name", "about", "creates", "known": [...]}], libvhdx first."""
    return ask(pcsweep, "subjects")


def models(pcsweep):
    """The crash-model registry: [{name, class, exportable, about}]."""
    return ask(pcsweep, "models")


def model_names(pcsweep):
    return [m["name"] for m in models(pcsweep)]


def model_groups(pcsweep):
    """The names --models takes besides the models: all and each class."""
    return ["all"] + sorted({m["class"] for m in models(pcsweep)})


def exportable_models(pcsweep):
    """Models whose states can be written as images (registry order)."""
    return [m["name"] for m in models(pcsweep) if m["exportable"]]


def models_of_class(pcsweep, cls):
    return [m["name"] for m in models(pcsweep) if m["class"] == cls]


def model_class(pcsweep, name):
    """The class of a model (power, corruption), or None."""
    return next((m["class"] for m in models(pcsweep) if m["name"] == name), None)


def invariants(pcsweep):
    """The invariant registry: [{name, class, about}]."""
    return ask(pcsweep, "invariants", "--json")


def fault_kinds(pcfaults):
    """Fault kind names (pcfaults kinds --json), in registry order."""
    return [k["name"] for k in ask(pcfaults, "kinds", "--json")["kinds"]]


def fault_phases(pcfaults):
    return list(ask(pcfaults, "kinds", "--json")["phases"])


def shard(pcsweep, shard_arg=None, shards_arg=None):
    """The shard this process takes: `pcsweep shard --json` applies the one
    rule (engine/tools/toolbase.h: --shard K/N, else TEST_SHARD_INDEX/
    TEST_TOTAL_SHARDS, JOB_COMPLETION_INDEX with --shards N,
    SLURM_ARRAY_TASK_ID/COUNT/MIN, else 0/1) to this environment.  Returns
    {k, n, shard: "K/N", source}; a bad value is a UsageError (exit 2) with
    the tool's message.  Not cached: the environment decides."""
    cmd = [pcsweep, "shard", "--json"]
    if shard_arg:
        cmd += ["--shard", str(shard_arg)]
    if shards_arg is not None:
        cmd += ["--shards", str(shards_arg)]
    cp = run(cmd, check=False, capture=True, quiet=True)
    if cp.returncode == 2:
        msg = cp.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError((msg[0] if msg else "bad shard").replace("pcsweep: ", "", 1))
    try:
        value = json.loads(cp.stdout.decode(errors="replace"))
    except ValueError as e:
        raise InfraError(f"`pcsweep shard --json` printed no shard (status {cp.returncode})") from e
    return value
