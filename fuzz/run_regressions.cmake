# run_regressions.cmake - replays corpus/regressions/<id>/ with the
# standalone fuzz targets (ctest -R fuzz.regressions).
#
# Each case directory holds meta.json with at least "target" (fuzz target
# name, e.g. "fuzz_log_replay"; cases of other tools -- "pcsweep",
# "pcfaults" -- are left to tests/regressions.cmake), optionally
# "post_process": true (an AFL++ finding), and "status": "fixed" and "new"
# (found by a campaign, not fixed yet) cases must run clean;
# "open" cases document a known engine deviation: they must run clean in the
# default (tolerant) mode and must still fail with POWERCUT_FUZZ_STRICT=1,
# so fixing the engine makes this test say so.  Input files are every other
# file in the case directory (the standalone main skips *.json/*.md/*.txt).
# Usage: cmake -DBIN=<dir of fuzz_* binaries> -DDIR=<corpus/regressions> -P run_regressions.cmake
if(NOT IS_DIRECTORY "${DIR}")
  message(STATUS "no regressions directory ${DIR}: nothing to replay")
  return()
endif()
file(GLOB cases LIST_DIRECTORIES true "${DIR}/*")
set(failed 0)
set(count 0)
foreach(c ${cases})
  if(NOT IS_DIRECTORY "${c}" OR NOT EXISTS "${c}/meta.json")
    continue()
  endif()
  file(READ "${c}/meta.json" meta)
  string(JSON target ERROR_VARIABLE err GET "${meta}" target)
  string(JSON status ERROR_VARIABLE err2 GET "${meta}" status)
  if(NOT err AND NOT target MATCHES "^fuzz_")
    continue()  # a sweep or fault reproducer: tests/regressions.cmake replays it
  endif()
  # AFL++ findings of targets with the custom mutator are saved before its
  # post-processing: the standalone main repeats it.
  string(JSON post ERROR_VARIABLE err3 GET "${meta}" post_process)
  set(flags --quiet)
  if(NOT err3 AND post)
    list(APPEND flags --post-process)
  endif()
  if(err OR NOT EXISTS "${BIN}/${target}")
    message(SEND_ERROR "${c}: meta.json names no built target ('${target}')")
    math(EXPR failed "${failed} + 1")
    continue()
  endif()
  math(EXPR count "${count} + 1")
  execute_process(COMMAND "${BIN}/${target}" ${flags} "${c}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(SEND_ERROR "${c}: ${target} failed (${rc}):\n${out}")
    math(EXPR failed "${failed} + 1")
    continue()
  endif()
  if(status STREQUAL "open")
    execute_process(COMMAND ${CMAKE_COMMAND} -E env POWERCUT_FUZZ_STRICT=1 "${BIN}/${target}" ${flags} "${c}"
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(rc EQUAL 0)
      message(SEND_ERROR "${c}: marked open but runs clean with POWERCUT_FUZZ_STRICT=1: the engine was fixed; set \"status\": \"fixed\"")
      math(EXPR failed "${failed} + 1")
    endif()
  endif()
endforeach()
message(STATUS "replayed ${count} regression cases, ${failed} failed")
if(failed GREATER 0)
  message(FATAL_ERROR "${failed} regression cases failed")
endif()
