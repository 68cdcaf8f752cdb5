"""The CI and scheduler files are valid and name only real things:
.github/workflows/*.yml parse as YAML and use only the actions we know to
exist; nightly.yml has the shard matrix (fail-fast off), the ClusterFuzzLite
batch job and a merge job that publishes the report; docs/scale-out.md's
Kubernetes manifest is an Indexed Job and its Slurm script an array, both
running the campaign the nightly workflow runs."""
import glob
import os
import re

import pytest

from pclib.common import ROOT

yaml = pytest.importorskip("yaml")  # python3-yaml (scripts/powercut setup installs it)

KNOWN_ACTIONS = {"actions/checkout@v4", "actions/upload-artifact@v4", "actions/download-artifact@v4",
                 "google/clusterfuzzlite/actions/build_fuzzers@v1", "google/clusterfuzzlite/actions/run_fuzzers@v1"}
WORKFLOWS = sorted(glob.glob(os.path.join(ROOT, ".github", "workflows", "*.yml")))


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def steps(wf):
    for name, job in wf["jobs"].items():
        for st in job.get("steps", []):
            yield name, st


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_workflow_is_yaml_and_names_only_known_actions(path):
    wf = load(path)
    assert isinstance(wf, dict) and wf["jobs"]
    for job, st in steps(wf):
        if "uses" in st:
            assert st["uses"] in KNOWN_ACTIONS, f"{os.path.basename(path)} job {job}: unknown action {st['uses']}"
    for job in wf["jobs"].values():
        for need in ([job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", [])):
            assert need in wf["jobs"]


def test_nightly_has_shards_cflite_batch_and_merge():
    wf = load(os.path.join(ROOT, ".github", "workflows", "nightly.yml"))
    jobs = wf["jobs"]
    sh = jobs["shards"]
    assert sh["strategy"]["fail-fast"] is False
    n = len(sh["strategy"]["matrix"]["shard"])
    assert sh["strategy"]["matrix"]["shard"] == list(range(n)) and str(n) == str(wf["env"]["SHARDS"])
    run = "\n".join(st.get("run", "") for _, st in steps({"jobs": {"shards": sh}}))
    assert "powercut campaign --shard ${{ matrix.shard }}/${{ env.SHARDS }}" in run
    assert "--seed ${{ needs.plan.outputs.seed }}" in run           # one seed for every shard
    assert any(st.get("uses") == "actions/upload-artifact@v4" for _, st in steps({"jobs": {"s": sh}}))
    modes = [st["with"]["mode"] for _, st in steps(wf) if "run_fuzzers" in st.get("uses", "")]
    assert modes == ["batch"]
    m = jobs["merge"]
    assert m["needs"] == "shards" and m["if"] == "always()"        # merges (and names) failed shards too
    mrun = "\n".join(st.get("run", "") for st in m["steps"])
    assert "scripts/powercut merge" in mrun and "--out reports/nightly" in mrun
    up = [st for st in m["steps"] if st.get("uses") == "actions/upload-artifact@v4"]
    assert any(st["with"]["path"] == "reports/nightly" for st in up)
    assert any(st.get("uses") == "actions/download-artifact@v4" for st in m["steps"])


def blocks(lang):
    text = open(os.path.join(ROOT, "docs", "scale-out.md")).read()
    return re.findall(r"```" + lang + r"\n(.*?)```", text, re.S)


def test_scale_out_kubernetes_manifest_is_an_indexed_job():
    job = yaml.safe_load(blocks("yaml")[0])
    assert job["kind"] == "Job" and job["apiVersion"] == "batch/v1"
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 4
    args = " ".join(spec["template"]["spec"]["containers"][0]["args"])
    assert "powercut campaign --shards 4" in args and "JOB_COMPLETION_INDEX" in args


def test_scale_out_slurm_script_is_an_array():
    script = next(b for b in blocks("sh") if "#SBATCH" in b)
    arr = re.search(r"#SBATCH --array=(\d+)-(\d+)", script)
    assert arr and int(arr.group(2)) - int(arr.group(1)) + 1 == 4
    assert "powercut campaign" in script and "--shard" not in script   # the shard comes from Slurm's variables
    assert any("powercut merge" in b and "afterany" in b for b in blocks("sh"))
