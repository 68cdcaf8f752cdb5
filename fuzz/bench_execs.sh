#!/bin/bash
# fuzz/bench_execs.sh - executions per second of every fuzz target, one
# process (one core), with sanitizers (preset fuzz) and without (preset
# fuzz-nosan): libFuzzer's own wall-clock exec/s, and executions per CPU
# second (user + sys of the process, less sensitive to a loaded machine).
# Each run: -seed=1, the committed seed corpus, a fresh work directory,
# -runs=N.  Build first: cmake --build --preset fuzz (and fuzz-nosan).
# Usage: fuzz/bench_execs.sh [PRESET...]   (default: fuzz fuzz-nosan)
set -eu
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(fuzz fuzz-nosan)
for build in "${presets[@]}"; do
  for t in fuzz_log_replay fuzz_log_parse fuzz_image_open fuzz_crash_schedule; do
    case $t in
      fuzz_log_replay) N=40000 ;; fuzz_log_parse) N=100000 ;; fuzz_image_open) N=8000 ;; fuzz_crash_schedule) N=3000 ;;
    esac
    bin="$ROOT/build/$build/fuzz/$t"
    [ -x "$bin" ] || { echo "bench_execs: $bin is not built (cmake --build --preset $build)" >&2; exit 2; }
    rm -rf "$WORK/w" && mkdir "$WORK/w"
    opts=$(sed -n 's/^\([a-z_]*\) = \(.*\)$/-\1=\2/p' "$ROOT/fuzz/$t.options" | sed "s|-dict=|-dict=$ROOT/fuzz/|" | tr '\n' ' ')
    # shellcheck disable=SC2086
    /usr/bin/time -f "%U %S" -o "$WORK/time" "$bin" $opts -seed=1 -runs=$N "$WORK/w" "$ROOT/corpus/$t" > "$WORK/log" 2>&1
    seeds=$(find "$ROOT/corpus/$t" -maxdepth 1 -type f | wc -l)
    eps=$(grep -o "DONE.*exec/s: [0-9]*" "$WORK/log" | grep -o "[0-9]*$")
    cpu=$(awk '{print $1+$2}' "$WORK/time")
    echo "$build $t runs=$N wall_execs_per_s=$eps cpu_s=$cpu execs_per_cpu_s=$(awk -v n=$N -v s=$seeds -v c=$cpu 'BEGIN{printf "%d", (n+s)/c}')"
  done
done
