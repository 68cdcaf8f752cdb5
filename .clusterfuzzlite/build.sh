#!/bin/bash -eu
# .clusterfuzzlite/build.sh - builds every powercut fuzz target the OSS-Fuzz
# way: compiles libvhdx, the harness and the fuzz support code with $CC and
# $CFLAGS (whatever sanitizer and coverage flags the build asks for), plus
# the faults library (schedules only: no libfiu there), links
# each fuzz/fuzz_<name>.c with $LIB_FUZZING_ENGINE through $CXX, and puts in
# $OUT, for every target: the binary, <name>.dict, <name>.options and
# <name>_seed_corpus.zip (the committed corpus/<name>/ seeds).
#
# Inputs: $CC $CXX $CFLAGS $CXXFLAGS $LIB_FUZZING_ENGINE $OUT $SRC $WORK
# (set by ClusterFuzzLite/OSS-Fuzz, or by hand: scripts/tests/test_fuzz_cflite.py
# runs this script with them).  The tree is $SRC/powercut when that exists,
# otherwise the directory above this script.  Exit status: 0 when every
# target is in $OUT; non-zero (set -e) on the first failure.
#
# The QEMU targets (fuzz/fuzz_qemu_*.c) are left out: they need QEMU's own
# VHDX driver, fetched at setup into build/qemu-src and built only by CMake
# (qemu/CMakeLists.txt, when that source is present).
set -eu  # also when run as `bash build.sh`, which ignores the options above
for v in CC CXX CFLAGS LIB_FUZZING_ENGINE OUT SRC WORK; do
    if [ -z "${!v+x}" ]; then
        echo "build.sh: \$$v is not set (OSS-Fuzz/ClusterFuzzLite sets it)" >&2
        exit 2
    fi
done
CXXFLAGS="${CXXFLAGS-$CFLAGS}"
if [ -d "$SRC/powercut/fuzz" ]; then
    ROOT="$SRC/powercut"
else
    ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fi
OBJ="$WORK/powercut-obj"
rm -rf "$OBJ"
mkdir -p "$OBJ" "$OUT"
INC="-I$ROOT/engine/include -I$ROOT/engine/src -I$ROOT/harness/include -I$ROOT/harness/ref/include -I$ROOT/faults/include -I$ROOT/fuzz"
DEFS="-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -DVHDX_BUILD_FLAVOR=\"cflite\" -DVHDX_VERSION_STRING=\"1.0.0\""
# Code that every input runs the same way is left out of coverage feedback
# (the same choices as fuzz/CMakeLists.txt), when the compiler has coverage on.
NOCOV=""
case "$CFLAGS" in
    *fuzzer-no-link*|*sanitize-coverage*) NOCOV="-fno-sanitize-coverage=trace-cmp,inline-8bit-counters,pc-table,indirect-calls" ;;
esac

compile() { # source object [extra flags...]
    local src="$1" obj="$2"
    shift 2
    # shellcheck disable=SC2086
    $CC $CFLAGS -std=c11 -pthread $DEFS $INC "$@" -c "$src" -o "$obj"
}

lib_objs=()
for f in "$ROOT"/engine/src/*.c "$ROOT"/harness/src/*.c "$ROOT"/harness/src/models/*.c "$ROOT"/faults/src/*.c "$ROOT"/fuzz/fuzz_common.c "$ROOT"/harness/ref/*.c "$ROOT"/fuzz/mutator.c; do
    rel="${f#"$ROOT"/}"
    o="$OBJ/$(echo "${rel%.c}" | tr / _).o"
    case "$f" in
        */engine/src/crc32c.c|*/faults/src/*.c|*/fuzz/mutator.c|*/fuzz/fuzz_common.c) compile "$f" "$o" $NOCOV & ;;
        *) compile "$f" "$o" & ;;
    esac
    lib_objs+=("$o")
    # at most $(nproc) compilers at once
    while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n; done
done
wait
ar rcs "$OBJ/libpowercut_fuzz.a" "${lib_objs[@]}"

for src in "$ROOT"/fuzz/fuzz_*.c; do
    name="$(basename "${src%.c}")"
    case "$name" in fuzz_common|fuzz_target|fuzz_qemu_*) continue ;; esac
    compile "$src" "$OBJ/$name.o" -DFUZZ_LIBFUZZER
    # shellcheck disable=SC2086
    $CXX $CXXFLAGS "$OBJ/$name.o" "$OBJ/libpowercut_fuzz.a" $LIB_FUZZING_ENGINE -pthread -o "$OUT/$name"
    cp "$ROOT/fuzz/$name.dict" "$OUT/$name.dict"
    cp "$ROOT/fuzz/$name.options" "$OUT/$name.options"
    rm -f "$OUT/${name}_seed_corpus.zip"
    if [ -d "$ROOT/corpus/$name" ]; then
        (cd "$ROOT/corpus/$name" && find . -maxdepth 1 -type f ! -name '.*' -print0 | xargs -0 -r zip -q -j "$OUT/${name}_seed_corpus.zip")
    fi
    echo "build.sh: $OUT/$name"
done
