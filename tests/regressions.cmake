# regressions.cmake - replays the stored regressions of one tool from
# corpus/regressions/<id>/ (written by `powercut campaign` triage, or by hand).
#
#   cmake -DTOOL=<path of pcsweep or pcfaults> -DKIND=pcsweep|pcfaults
#         -DDIR=<corpus/regressions> -P tests/regressions.cmake
#
# A case is a directory with meta.json ("target": the tool that replays it,
# "status") and its input files (every file but *.json, *.md, *.txt).  Cases
# of other targets (fuzz targets: fuzz/run_regressions.cmake) are skipped.
# `TOOL repro FILE` exits 0 when the verdict passes and 1 when the failure is
# still there.  Status "open" (a known, accepted failure) must still fail:
# when it passes the engine was fixed and the case should say "fixed".
# Any other status ("new": found, not yet fixed; "fixed") must pass.
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
  if(err OR NOT target STREQUAL "${KIND}")
    continue()
  endif()
  string(JSON status ERROR_VARIABLE err GET "${meta}" status)
  if(err)
    set(status "new")
  endif()
  file(GLOB inputs LIST_DIRECTORIES false "${c}/*")
  list(FILTER inputs EXCLUDE REGEX "\\.(json|md|txt)$")
  if(NOT inputs)
    message(SEND_ERROR "${c}: meta.json but no input file")
    math(EXPR failed "${failed} + 1")
    continue()
  endif()
  foreach(in ${inputs})
    math(EXPR count "${count} + 1")
    execute_process(COMMAND "${TOOL}" repro "${in}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(status STREQUAL "open")
      if(rc EQUAL 0)
        message(SEND_ERROR "${in}: marked open but passes now: the engine was fixed; set \"status\": \"fixed\"")
        math(EXPR failed "${failed} + 1")
      elseif(NOT rc EQUAL 1)
        message(SEND_ERROR "${in}: ${KIND} repro could not run (${rc}):\n${out}")
        math(EXPR failed "${failed} + 1")
      endif()
    elseif(NOT rc EQUAL 0)
      message(SEND_ERROR "${in}: ${KIND} repro fails (${rc}, status ${status}):\n${out}")
      math(EXPR failed "${failed} + 1")
    endif()
  endforeach()
endforeach()
message(STATUS "replayed ${count} ${KIND} regression inputs, ${failed} failed")
if(failed GREATER 0)
  message(FATAL_ERROR "${failed} ${KIND} regression inputs failed")
endif()
