# ctest: `ctxstore-bench --smoke` exits 0 and prints the table and targets.
execute_process(COMMAND ${BENCH} --smoke RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ctxstore-bench --smoke exited with ${rc}")
endif()
foreach(expected "| key | scenario | ops/s" "| snapshot.async.1 |"
        "| remote.cycle.blocking.1 |"
        "| durable.sqlite.cycle.1 |" "targets: ")
  string(FIND "${out}" "${expected}" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "ctxstore-bench --smoke did not print '${expected}'")
  endif()
endforeach()
