# regressions.cmake - replays the stored regressions of one kind from
# corpus/regressions/<id>/ (written by `powercut campaign` triage, or by hand).
#
#   cmake -DKIND=fuzz -DBIN=<dir of the standalone fuzz_* targets> -DDIR=<corpus/regressions> -P regressions.cmake
#   cmake -DKIND=pcsweep|pcfaults -DTOOL=<path of the tool> -DDIR=<corpus/regressions> -P regressions.cmake
#
# A case is a directory with meta.json -- "target": what replays it (a fuzz
# target name such as "fuzz_log_replay", or "pcsweep", "pcfaults"),
# "status", for AFL++ findings of the targets with the custom mutator
# "post_process": true, for a tool's case judged by a subject that may not
# be built "requires_subject" (e.g. "qemu": skipped without it) -- and its
# inputs (every file but *.json, *.md, *.txt).  Cases of other kinds are
# skipped (each kind has its own CTest: fuzz.regressions,
# sweep.regressions, faults.campaign-regressions).
#
# Status "new" (found, not yet fixed) and "fixed" cases must pass.  "open"
# marks a known, accepted failure that must still be there, so that a fix
# makes this test say "set status to fixed":
#   fuzz targets  run clean in the default (tolerant) mode and fail with
#                 POWERCUT_FUZZ_STRICT=1 (docs/fuzzing.md, known deviations)
#   tools         `TOOL repro FILE` exits 1 (0 = passes, 1 = still fails)
if(NOT IS_DIRECTORY "${DIR}")
  message(STATUS "no regressions directory ${DIR}: nothing to replay")
  return()
endif()
file(GLOB cases LIST_DIRECTORIES true "${DIR}/*")
set(failed 0)
set(count 0)

function(fail msg)
  message(SEND_ERROR "${msg}")
  math(EXPR n "${failed} + 1")
  set(failed ${n} PARENT_SCOPE)
endfunction()

foreach(c ${cases})
  if(NOT IS_DIRECTORY "${c}" OR NOT EXISTS "${c}/meta.json")
    continue()
  endif()
  file(READ "${c}/meta.json" meta)
  string(JSON target ERROR_VARIABLE err GET "${meta}" target)
  if(err)
    fail("${c}: meta.json has no \"target\"")
    continue()
  endif()
  if(KIND STREQUAL "fuzz")
    if(NOT target MATCHES "^fuzz_")
      continue()
    endif()
  elseif(NOT target STREQUAL "${KIND}")
    continue()
  endif()
  string(JSON status ERROR_VARIABLE err GET "${meta}" status)
  if(err)
    set(status "new")
  endif()
  math(EXPR count "${count} + 1")

  if(KIND STREQUAL "fuzz")
    if(NOT EXISTS "${BIN}/${target}")
      if(target MATCHES "^fuzz_qemu_")  # built only with the QEMU subject (qemu/)
        message(STATUS "${c}: skipped: ${target} is not built (the QEMU subject is not)")
        math(EXPR count "${count} - 1")
        continue()
      endif()
      fail("${c}: meta.json names no built fuzz target ('${target}')")
      continue()
    endif()
    set(flags --quiet)
    string(JSON post ERROR_VARIABLE err GET "${meta}" post_process)
    if(NOT err AND post)
      list(APPEND flags --post-process)  # saved before AFL++'s post-processing
    endif()
    # the standalone main runs every input file of the directory
    execute_process(COMMAND "${BIN}/${target}" ${flags} "${c}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(NOT rc EQUAL 0)
      fail("${c}: ${target} failed (${rc}, status ${status}):\n${out}")
    elseif(status STREQUAL "open")
      execute_process(COMMAND ${CMAKE_COMMAND} -E env POWERCUT_FUZZ_STRICT=1 "${BIN}/${target}" ${flags} "${c}"
                      RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
      if(rc EQUAL 0)
        fail("${c}: marked open but runs clean with POWERCUT_FUZZ_STRICT=1: the engine was fixed; set \"status\": \"fixed\"")
      endif()
    endif()
    continue()
  endif()

  # a case judged by a subject this build may lack (the QEMU subject: meta.json
  # "requires_subject") is skipped when `TOOL subjects` does not list it
  string(JSON needs ERROR_VARIABLE err GET "${meta}" requires_subject)
  if(NOT err AND needs)
    execute_process(COMMAND "${TOOL}" subjects RESULT_VARIABLE rc OUTPUT_VARIABLE subjects ERROR_QUIET)
    string(FIND "${subjects}" "\"name\": \"${needs}\"" at)
    if(NOT rc EQUAL 0 OR at EQUAL -1)
      message(STATUS "${c}: skipped: the subject ${needs} is not built")
      math(EXPR count "${count} - 1")
      continue()
    endif()
  endif()

  file(GLOB inputs LIST_DIRECTORIES false "${c}/*")
  list(FILTER inputs EXCLUDE REGEX "\\.(json|md|txt)$")
  if(NOT inputs)
    fail("${c}: meta.json but no input file")
    continue()
  endif()
  foreach(in ${inputs})
    execute_process(COMMAND "${TOOL}" repro "${in}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(status STREQUAL "open")
      if(rc EQUAL 0)
        fail("${in}: marked open but passes now: the engine was fixed; set \"status\": \"fixed\"")
      elseif(NOT rc EQUAL 1)
        fail("${in}: ${KIND} repro could not run (${rc}):\n${out}")
      endif()
    elseif(NOT rc EQUAL 0)
      fail("${in}: ${KIND} repro fails (${rc}, status ${status}):\n${out}")
    endif()
  endforeach()
endforeach()
message(STATUS "replayed ${count} ${KIND} regression cases, ${failed} failed")
if(failed GREATER 0)
  message(FATAL_ERROR "${failed} ${KIND} regression cases failed")
endif()
