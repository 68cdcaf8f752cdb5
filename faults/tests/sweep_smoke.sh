#!/bin/sh
# faults.sweep (CTest, fiu presets): a bounded fault sweep over every phase,
# kind and mode on two small workloads must find no violation and write its
# JSON and JUnit; a kept reproducer must replay through `pcfaults repro`;
# bad input must exit 2.
set -eu
pcfaults=$1
out=$2
rm -rf "$out"
mkdir -p "$out"
"$pcfaults" sweep --scenario overwrite,reopen --ops 6 --replay-states 1 --stride 2 --quiet \
    --repro-dir "$out/repro" --keep-repro 2 --json "$out/faults.json" --junit "$out/faults.xml"
/usr/bin/python3 - "$out/faults.json" "$out/faults.xml" <<'PY'
import json, sys, xml.etree.ElementTree as ET
j = json.load(open(sys.argv[1]))
for key in ("injected", "violations", "kinds", "modes", "phases", "points", "faults_per_sec"):
    assert key in j, key
assert j["violations"] == 0, j["failures"][:3]
assert j["injected"] > 0
assert j["kinds"]
for k in j["kinds"]:  # every kind of the registry (faults/plan.h)
    assert j["kinds"][k]["injected"] > 0, k
for p in ("run", "replay", "create"):
    assert j["phases"][p]["injected"] > 0, p
assert j["modes"]["transient"]["injected"] > 0 and j["modes"]["persistent"]["injected"] > 0
assert ET.parse(sys.argv[2]).getroot().tag == "testsuites"
PY
n=0
for r in "$out"/repro/*.pctrace; do
    "$pcfaults" repro "$r" > "$out/repro.out"
    n=$((n + 1))
done
test "$n" -ge 1
"$pcfaults" run --scenario overwrite --ops 6 --plan 'kind=short mode=transient nth=3' > "$out/run.out"
set +e
"$pcfaults" sweep --kinds bogus 2>/dev/null; test $? -eq 2 || exit 1
"$pcfaults" run --scenario overwrite --plan 'kind=eio mode=sometimes' 2>/dev/null; test $? -eq 2 || exit 1
"$pcfaults" repro "$out/faults.json" 2>/dev/null; test $? -eq 2 || exit 1
echo "faults.sweep: ok"
