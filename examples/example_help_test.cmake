# An example program run as a user would, in a fresh temporary directory:
# --help and -h print the usage and exit 0, an unknown option is refused
# (exit 2), and none of them creates a file (a mistyped option must not
# become a database named after it).
#   cmake -DEXAMPLE=path/to/iqdb_quickstart -P example_help_test.cmake
cmake_minimum_required(VERSION 3.25)

include("${CMAKE_CURRENT_LIST_DIR}/../cmake/command_test.cmake")

macro(expect_no_files args)
  file(GLOB created "${work}/*" "${work}/.*")
  if(created)
    fail("'${args}' created ${created}")
  endif()
endmacro()

foreach(help --help -h)
  execute_process(COMMAND "${EXAMPLE}" ${help} WORKING_DIRECTORY "${work}"
                  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0 OR NOT out MATCHES "^Usage: ")
    fail("'${help}' exited with ${status}, expected 0 and the usage on stdout")
  endif()
  expect_no_files("${help}")
endforeach()

execute_process(COMMAND "${EXAMPLE}" --no-such-option WORKING_DIRECTORY "${work}"
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 2 OR NOT err MATCHES "unexpected argument '--no-such-option'")
  fail("--no-such-option exited with ${status}, expected 2 naming it")
endif()
expect_no_files("--no-such-option")
file(REMOVE_RECURSE "${work}")
