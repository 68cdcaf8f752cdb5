# ref.independent: the reference shares no source with the code it judges.
# Fails when a file under harness/ref includes an engine ("vhdx/...") or
# harness ("harness/...", "faults/...") header, or names an engine symbol.
file(GLOB_RECURSE files "${DIR}/*.c" "${DIR}/*.h")
set(bad "")
foreach(f ${files})
  file(STRINGS "${f}" lines REGEX "#include|vhdx_|oracle_|sdata_")
  foreach(l ${lines})
    if(l MATCHES "#include *[<\"](vhdx|harness|faults|fuzz)/" OR l MATCHES "(^|[^a-z_])(vhdx|oracle|sdata)_[a-z]")
      string(APPEND bad "\n  ${f}: ${l}")
    endif()
  endforeach()
endforeach()
list(LENGTH files n)
if(bad)
  message(FATAL_ERROR "the reference must not use the code it judges:${bad}")
endif()
message(STATUS "ref.independent: ${n} files, no engine or harness include")
