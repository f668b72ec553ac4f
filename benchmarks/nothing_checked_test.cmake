# The benchmark binary run so that no ratio pair runs (a filter matching no
# benchmark, then --benchmark_list_tests): the report must say that nothing
# was checked, not that every target was met, and --check must exit nonzero.
# Runs on a tiny snapshot in a fresh temporary directory.
#   cmake -DBENCH=path/to/iqdb_persist_bench -P nothing_checked_test.cmake
cmake_minimum_required(VERSION 3.25)

include("${CMAKE_CURRENT_LIST_DIR}/../cmake/command_test.cmake")

foreach(selection --benchmark_filter=^NoSuchBenchmark$ --benchmark_list_tests)
  execute_process(COMMAND "${BENCH}" "--data-dir=${work}" --vectors=200 --dim=4 ${selection}
                          --check
                  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(status EQUAL 0)
    fail("${selection} --check exited with 0: no target was checked")
  endif()
  if("${out}${err}" MATCHES "all met" OR NOT "${out}${err}" MATCHES "Targets: none checked")
    fail("${selection}: the report does not say that nothing was checked")
  endif()
endforeach()
file(REMOVE_RECURSE "${work}")
