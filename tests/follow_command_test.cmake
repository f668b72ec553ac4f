# `iqdb-persist follow` run as a user would: on the logged database the demo
# leaves, `follow --seconds 2 --json` must exit 0 after two lines, each a JSON
# object with the documented fields, at the LSN the snapshot's header gives
# (the demo ends with a checkpoint); a missing database must be NotFound
# (exit 3, naming the file).
#   cmake -DTOOL=path/to/iqdb-persist -P follow_command_test.cmake
cmake_minimum_required(VERSION 3.25)

include("${CMAKE_CURRENT_LIST_DIR}/../cmake/command_test.cmake")

execute_process(COMMAND "${TOOL}" demo --vectors 1000 --dim 8 --dir "${work}/demo"
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0)
  fail("demo --dir exited with ${status}, expected 0")
endif()
set(database "${work}/demo/wal-demo.iqdb")

execute_process(COMMAND "${TOOL}" inspect --json "${database}"
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(JSON snapshot_lsn ERROR_VARIABLE json_error GET "${out}" wal_lsn)
if(NOT status EQUAL 0 OR json_error OR NOT snapshot_lsn GREATER 0)
  fail("inspect --json on the demo's database gives no LSN: ${json_error}")
endif()

execute_process(COMMAND "${TOOL}" follow "${database}" --seconds 2 --json
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0)
  fail("follow --seconds 2 --json exited with ${status}, expected 0")
endif()
string(STRIP "${out}" lines)
string(REPLACE "\n" ";" lines "${lines}")
list(LENGTH lines count)
if(NOT count EQUAL 2)
  fail("follow --seconds 2 printed ${count} lines, expected 2")
endif()
set(second 0)
foreach(line IN LISTS lines)
  math(EXPR second "${second} + 1")
  foreach(field seconds lsn generation snapshot_lsn lag_records lag_bytes behind_ms writer_lsn
                records_applied)
    string(JSON type ERROR_VARIABLE json_error TYPE "${line}" ${field})
    if(json_error OR NOT type STREQUAL "NUMBER")
      fail("line ${second}: '${field}' is not a number: ${json_error}")
    endif()
  endforeach()
  foreach(field notified switched)
    string(JSON type ERROR_VARIABLE json_error TYPE "${line}" ${field})
    if(json_error OR NOT type STREQUAL "BOOLEAN")
      fail("line ${second}: '${field}' is not a boolean: ${json_error}")
    endif()
  endforeach()
  foreach(field waiting error)
    string(JSON type ERROR_VARIABLE json_error TYPE "${line}" ${field})
    if(json_error OR NOT type STREQUAL "STRING")
      fail("line ${second}: '${field}' is not a string: ${json_error}")
    endif()
  endforeach()
  string(JSON seconds GET "${line}" seconds)
  string(JSON lsn GET "${line}" lsn)
  string(JSON writer_lsn GET "${line}" writer_lsn)
  string(JSON lag GET "${line}" lag_records)
  string(JSON generation GET "${line}" generation)
  if(NOT seconds EQUAL second OR NOT lsn EQUAL snapshot_lsn OR NOT writer_lsn EQUAL snapshot_lsn
     OR NOT lag EQUAL 0 OR NOT generation EQUAL 1)
    fail("line ${second}: expected second ${second}, LSN ${snapshot_lsn} (the writer's too), "
         "lag 0 and generation 1")
  endif()
endforeach()

execute_process(COMMAND "${TOOL}" follow "${work}/missing.iqdb" --seconds 1
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 3 OR NOT err MATCHES "NotFound: .*missing\\.iqdb")
  fail("follow on a missing database exited with ${status}, expected 3 and NotFound naming it")
endif()
file(REMOVE_RECURSE "${work}")
