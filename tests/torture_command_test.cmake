# `iqdb-persist torture` run as a user would, in a fresh temporary directory:
# two seconds must pass (exit 0) with iterations and checked writes reported,
# and leave no database behind; a directory holding a file that is not the
# database's must be refused (exit 3, naming the file) and the file left alone.
#   cmake -DTOOL=path/to/iqdb-persist -P torture_command_test.cmake
cmake_minimum_required(VERSION 3.25)

include("${CMAKE_CURRENT_LIST_DIR}/../cmake/command_test.cmake")

# Sets `count` to the number after "<label>:" in the summary, and fails unless it is positive.
macro(expect_positive label)
  string(REGEX MATCH "\n${label}: +([0-9]+)" found "${out}")
  if(NOT found OR NOT CMAKE_MATCH_1 GREATER 0)
    fail("the summary does not report '${label}' above zero")
  endif()
endmacro()

execute_process(COMMAND "${TOOL}" torture --dir "${work}/dir" --seconds 2 --seed 7
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0)
  fail("torture --seconds 2 exited with ${status}, expected 0")
endif()
expect_positive("iterations")
expect_positive("acknowledged writes checked")
if(EXISTS "${work}/dir/iqdb-torture")
  fail("torture left its database directory behind")
endif()

file(WRITE "${work}/dir/iqdb-torture/notes.txt" "not a database file")
execute_process(COMMAND "${TOOL}" torture --dir "${work}/dir" --seconds 1
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 3 OR NOT err MATCHES "AlreadyExists: .*'notes.txt'")
  fail("torture on a directory holding notes.txt exited with ${status}, expected 3 naming it")
endif()
if(NOT EXISTS "${work}/dir/iqdb-torture/notes.txt")
  fail("torture removed a file that was not its own")
endif()
file(REMOVE_RECURSE "${work}")
