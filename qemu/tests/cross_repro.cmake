# cross_repro.cmake - a reproducer of a cross-subject sweep is judged by the
# subject that judged the state when it was saved (its choice
# "replay_subject"), not by the one that wrote the trace; --replay-subject
# overrides it.  QEMU writes (its Q1 states: a LogGuid with no entry),
# libvhdx replays: the strict sweep saves the first such state; `pcsweep
# repro` on it must say libvhdx judged it and fail with
# ref:invalid-crash-state (QEMU judging it fails with log-guid-not-cleared).
#
#   cmake -DPCSWEEP=<pcsweep> -DDIR=<scratch directory> -P cross_repro.cmake
file(REMOVE_RECURSE "${DIR}")
execute_process(COMMAND "${PCSWEEP}" sweep --quiet --subject qemu --replay-subject libvhdx --scenario overwrite
                        --models prefix --judges oracle,reference --strict --max-violations 1 --repro-dir "${DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 1)
  message(FATAL_ERROR "the strict cross sweep should find QEMU's Q1 states (status 1, got ${rc}):\n${out}")
endif()
file(GLOB repros "${DIR}/*.pctrace")
list(LENGTH repros n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "expected one reproducer in ${DIR}, found ${n}:\n${out}")
endif()

function(expect args want_rc)
  execute_process(COMMAND "${PCSWEEP}" ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL want_rc)
    message(FATAL_ERROR "pcsweep ${args}: status ${rc}, expected ${want_rc}:\n${out}${err}")
  endif()
  foreach(text ${ARGN})
    string(FIND "${out}" "${text}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "pcsweep ${args}: the output lacks '${text}':\n${out}${err}")
    endif()
  endforeach()
  message(STATUS "pcsweep ${args}: ok")
endfunction()

expect("info;${repros}" 0 "choice replay_subject = libvhdx")
expect("repro;${repros}" 1 "written by qemu, opened and judged by libvhdx" "VIOLATION ref:invalid-crash-state")
expect("repro;${repros};--replay-subject;qemu" 1 "written by qemu, opened and judged by qemu"
       "VIOLATION log-guid-not-cleared")
