#!/bin/sh
# faults.regressions (CTest, fiu presets): every saved fault reproducer in
# faults/regressions/ re-runs its workload and plan with this build and must
# pass (exit 0).  Each one failed once, on a real bug or a planted one.
set -u
pcfaults=$1
dir=$2
status=0
n=0
for r in "$dir"/*.pctrace; do
    n=$((n + 1))
    if ! "$pcfaults" repro "$r" > /dev/null; then
        echo "faults.regressions: FAILED: $pcfaults repro $r"
        status=1
    fi
done
test "$n" -gt 0 || { echo "faults.regressions: no reproducers in $dir"; exit 1; }
echo "faults.regressions: $n reproducer(s) replayed"
exit $status
