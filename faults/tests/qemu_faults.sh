#!/bin/sh
# faults.qemu (CTest, fiu presets, when the QEMU subject is built): the fault
# sweep on QEMU's own driver (pcfaults --subject qemu), one workload.  The
# shim's points (qemu/io/*, qemu/alloc) must fire in every phase; every
# verdict must be one of QEMU's filed departures (Q1: crash states of its
# write path; Q7: acknowledged writes lost after a failed allocation; Q8: a
# failed header update not reported) and each of the three must be seen:
# a sweep that stops finding them, or finds anything else, fails.  --strict
# counts them as violations (exit 1).
set -eu
pcfaults=$1
out=$2
rm -rf "$out"
mkdir -p "$out"
"$pcfaults" sweep --subject qemu --scenario overwrite --quiet --json "$out/qemu.json"
/usr/bin/python3 - "$out/qemu.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["subject"] == "qemu", j["subject"]
assert j["violations"] == 0, j["failures"][:3]
assert j["points"] and all(p.startswith("qemu/") for p in j["points"]), list(j["points"])
for p in ("run", "replay", "create"):
    assert j["phases"][p]["injected"] > 0, p
found = {d["finding"].split()[0] for d in j["known_departures"] if d["count"] > 0}
for q in ("Q1", "Q7", "Q8"):
    assert q in found, (q, j["known_departures"])
print("faults.qemu: %d plans, %d known departures (%s), 0 violations" % (j["plans"], j["known"], ", ".join(sorted(found))))
PY
set +e
"$pcfaults" sweep --subject qemu --scenario overwrite --quiet --strict --max-faults 200 > "$out/strict.out" 2>&1
rc=$?
set -e
if [ "$rc" != 1 ]; then
    echo "faults.qemu: --strict should count QEMU's departures as violations (exit 1), got $rc" >&2
    exit 1
fi
echo "faults.qemu: passed"
