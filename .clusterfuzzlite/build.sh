#!/bin/bash -eu
# .clusterfuzzlite/build.sh - builds every powercut fuzz target the OSS-Fuzz
# way, through CMake: the same CMakeLists.txt as every other build, so the
# targets, include paths, libraries and the code left out of coverage
# feedback are those of fuzz/CMakeLists.txt and never a copy of them.
#
#   1. configure with the preset oss-fuzz (CMakePresets.json): $CC $CXX
#      $CFLAGS $CXXFLAGS as they come (sanitizers, coverage, the engine's
#      instrumentation), POWERCUT_FUZZ_ENGINE=external with
#      POWERCUT_FUZZ_ENGINE_LINK=$LIB_FUZZING_ENGINE (targets link through
#      $CXX, as OSS-Fuzz asks), warnings not errors (the builder's clang is
#      not ours), build tree $WORK/powercut-build;
#   2. build the target fuzz_targets: every fuzz target of fuzz/ (the
#      fuzz_qemu_* ones too when the QEMU subject is built, i.e. its fetched
#      source is in build/qemu-src) and their seed-corpus zips;
#   3. `cmake --install --component fuzz` into $OUT: for every target the
#      binary, <target>.options, <target>.dict (where fuzz/ has one) and
#      <target>_seed_corpus.zip (corpus/<target>/).
#
# Inputs: $CC $CFLAGS $LIB_FUZZING_ENGINE $OUT $SRC $WORK (set by
# ClusterFuzzLite/OSS-Fuzz; by hand, scripts/tests/test_fuzz_cflite.py and
# docs/fuzzing.md show how).  $CXX defaults to $CC's clang++ (clang-14 ->
# clang++-14), $CXXFLAGS to $CFLAGS.  Needs CMake >= 3.25 and Ninja
# (the Dockerfile installs both).  The tree is $SRC/powercut when that
# exists, otherwise the directory above this script.  Exit status: 0 when
# every target is in $OUT; 2 when a variable is missing; otherwise the
# failing step's status (set -e).
set -eu  # also when run as `bash build.sh` (the test's way), which ignores the options above
for v in CC CFLAGS LIB_FUZZING_ENGINE OUT SRC WORK; do
    if [ -z "${!v+x}" ]; then
        echo "build.sh: \$$v is not set (OSS-Fuzz/ClusterFuzzLite sets it)" >&2
        exit 2
    fi
done
export CXX="${CXX:-${CC/clang/clang++}}" CXXFLAGS="${CXXFLAGS-$CFLAGS}"
if [ -d "$SRC/powercut/fuzz" ]; then
    ROOT="$SRC/powercut"
else
    ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fi
BUILD="$WORK/powercut-build"
rm -rf "$BUILD"
mkdir -p "$OUT"
set -x
cd "$ROOT"
cmake --preset oss-fuzz -B "$BUILD"
cmake --build "$BUILD" --target fuzz_targets -j "$(nproc)"
cmake --install "$BUILD" --component fuzz --prefix "$OUT"
