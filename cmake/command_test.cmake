# Shared by the scripts that run a program as a user would (`cmake -P`):
# `work` is a fresh temporary directory, and fail(why) removes it and stops
# the test, printing why and the last command's `out` and `err`.
execute_process(COMMAND mktemp -d OUTPUT_VARIABLE work OUTPUT_STRIP_TRAILING_WHITESPACE
                COMMAND_ERROR_IS_FATAL ANY)

macro(fail why)
  file(REMOVE_RECURSE "${work}")
  message(FATAL_ERROR "${why}\nstdout:\n${out}\nstderr:\n${err}")
endmacro()
