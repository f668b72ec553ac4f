# `iqdb-persist publish`, `attach` and `unpublish` run as a user would, on a
# zstd-compressed copy of the demo's snapshot, under a name no other run
# uses (a random suffix):
# - publish (in the background, --json) prints generation 1, and
#   `attach --json --verify` shows it: the source's sections, all decoded
#   (raw), and the source's content hash, verified;
# - while it runs, a second publish of the name and unpublish are Locked
#   (exit 3, naming the head object);
# - a snapshot renamed over FILE becomes generation 2; a foreign file renamed
#   over it is refused once, not at every poll, while generation 2 stays
#   current; another foreign file is tried (and refused) again; a snapshot
#   after it becomes generation 3;
# - at SIGTERM publish withdraws and exits 0: attach is NotFound, /dev/shm
#   holds nothing of the name, and unpublish removes 0 objects;
# - what a SIGKILLed publisher left (head and segment), unpublish removes;
# - a publish whose FILE is missing fails with NotFound and leaves nothing.
#   cmake -DTOOL=path/to/iqdb-persist -P shared_command_test.cmake
cmake_minimum_required(VERSION 3.25)

include("${CMAKE_CURRENT_LIST_DIR}/../cmake/command_test.cmake")

string(RANDOM LENGTH 12 ALPHABET "0123456789abcdef" suffix)
set(name "command-test-${suffix}")
set(served "${work}/served.iqdb")

# Starts `publish ${served} --name ${name} --json` in the background (a
# shell's subshell: cmake -P waits for what it starts): its output goes to
# ${work}/publish.out and .err, its pid to publish.pid and, once it exits,
# its exit status to publish.status.
function(start_publisher)
  file(REMOVE "${work}/publish.out" "${work}/publish.err" "${work}/publish.pid"
       "${work}/publish.status")
  execute_process(
    COMMAND sh -c [[
      ("$0" publish "$1" --name "$2" --poll-ms 20 --seconds 120 --json \
           >"$3/publish.out" 2>"$3/publish.err" &
       echo $! >"$3/publish.pid.new" && mv "$3/publish.pid.new" "$3/publish.pid"
       wait $!
       echo $? >"$3/publish.status") </dev/null >/dev/null 2>&1 &]]
      "${TOOL}" "${served}" "${name}" "${work}"
    RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    fail("cannot start publish in the background: ${status}")
  endif()
endfunction()

# Sends `signal` to the background publisher if it still runs, and waits
# for it to exit.
function(signal_publisher signal)
  if(NOT EXISTS "${work}/publish.pid" OR EXISTS "${work}/publish.status")
    return()
  endif()
  file(READ "${work}/publish.pid" pid)
  string(STRIP "${pid}" pid)
  execute_process(COMMAND kill "-${signal}" "${pid}")
  foreach(attempt RANGE 100)
    if(EXISTS "${work}/publish.status")
      return()
    endif()
    execute_process(COMMAND "${CMAKE_COMMAND}" -E sleep 0.1)
  endforeach()
endfunction()

# fail(), having stopped the background publisher (which then withdraws).
macro(fail_and_stop why)
  signal_publisher(TERM)
  fail("${why}")
endmacro()

# Waits up to 20 s for ${work}/${name_of_file} to exist and match `regex`;
# sets `content` to what it holds.
function(wait_for name_of_file regex)
  foreach(attempt RANGE 200)
    if(EXISTS "${work}/${name_of_file}")
      file(READ "${work}/${name_of_file}" content)
      if(content MATCHES "${regex}")
        set(content "${content}" PARENT_SCOPE)
        return()
      endif()
    endif()
    execute_process(COMMAND "${CMAKE_COMMAND}" -E sleep 0.1)
  endforeach()
  fail_and_stop("${name_of_file} did not come to match '${regex}'")
endfunction()

# Sets `generations` to the generations publish.out reports, in order.
function(published_generations)
  file(STRINGS "${work}/publish.out" lines)
  set(found "")
  foreach(line IN LISTS lines)
    string(JSON generation ERROR_VARIABLE json_error GET "${line}" generation)
    if(json_error)
      fail_and_stop("publish --json printed a line that is not a generation's: ${line}")
    endif()
    list(APPEND found "${generation}")
  endforeach()
  set(generations "${found}" PARENT_SCOPE)
endfunction()

# Runs `attach ${name} --json` (with `ARGN`) and checks that it attached
# `generation`; `out` keeps the JSON.
macro(expect_attached generation)
  execute_process(COMMAND "${TOOL}" attach "${name}" --json ${ARGN}
                  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(JSON attached ERROR_VARIABLE json_error GET "${out}" generation)
  if(NOT status EQUAL 0 OR json_error OR NOT attached EQUAL ${generation})
    fail_and_stop("attach ${ARGN} exited with ${status}, expected 0 and generation ${generation}")
  endif()
endmacro()

# Fails unless /dev/shm holds nothing of the publication.
macro(expect_no_objects why)
  file(GLOB objects "/dev/shm/iqdb.${name}" "/dev/shm/iqdb.${name}.*")
  if(objects)
    fail_and_stop("${why}: /dev/shm still holds ${objects}")
  endif()
endmacro()

# The source: the demo's snapshot, every section that shrinks compressed
# with zstd, so that publishing has something to decode.
execute_process(COMMAND "${TOOL}" demo --vectors 2000 --dim 8 --dir "${work}/demo"
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0)
  fail("demo --dir exited with ${status}, expected 0")
endif()
execute_process(COMMAND "${TOOL}" compact "${work}/demo/demo.iqdb" --compression zstd
                        --output "${served}"
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0)
  fail("compact --compression zstd exited with ${status}, expected 0")
endif()
execute_process(COMMAND "${TOOL}" inspect --json "${served}"
                RESULT_VARIABLE status OUTPUT_VARIABLE source ERROR_VARIABLE err)
string(JSON source_hash ERROR_VARIABLE json_error GET "${source}" content_xxh3)
string(JSON section_count LENGTH "${source}" sections)
if(NOT status EQUAL 0 OR json_error OR NOT source MATCHES "\"compression\": \"zstd\"")
  fail("inspect --json shows no zstd section in the compacted snapshot: ${json_error}")
endif()

start_publisher()
wait_for(publish.out "\n")
wait_for(publish.pid "[0-9]")
string(STRIP "${content}" publisher_pid)
published_generations()
if(NOT generations STREQUAL "1")
  fail_and_stop("publish printed generations '${generations}', expected 1")
endif()

expect_attached(1 --verify)
string(JSON object GET "${out}" object)
string(JSON hash GET "${out}" content_xxh3)
string(JSON verified GET "${out}" verified)
string(JSON newer GET "${out}" newer_published)
string(JSON pid GET "${out}" publisher_pid)
string(JSON source_path GET "${out}" source_path)
if(NOT object STREQUAL "iqdb.${name}.current" OR NOT hash STREQUAL source_hash
   OR NOT verified OR newer OR NOT pid EQUAL publisher_pid OR NOT source_path STREQUAL served)
  fail_and_stop("attach --json --verify: expected object iqdb.${name}.current, the "
                "source's content hash ${source_hash}, verified, no newer generation, publisher "
                "pid ${publisher_pid} and source ${served}")
endif()
string(JSON count LENGTH "${out}" sections)
if(NOT count EQUAL section_count)
  fail_and_stop("attach shows ${count} sections, the source has ${section_count}")
endif()
math(EXPR last "${count} - 1")
foreach(i RANGE ${last})
  string(JSON section_name GET "${out}" sections ${i} name)
  string(JSON expected_name GET "${source}" sections ${i} name)
  string(JSON compression GET "${out}" sections ${i} compression)
  string(JSON length GET "${out}" sections ${i} logical_length)
  string(JSON expected_length GET "${source}" sections ${i} logical_length)
  if(NOT section_name STREQUAL expected_name OR NOT compression STREQUAL "none"
     OR NOT length EQUAL expected_length)
    fail_and_stop("attach: section ${i} is '${section_name}' (${compression}, ${length} bytes), "
                  "expected '${expected_name}' decoded (none, ${expected_length} bytes)")
  endif()
endforeach()

execute_process(COMMAND "${TOOL}" attach "${name}"
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0 OR NOT out MATCHES "\ngeneration +1\n"
   OR NOT out MATCHES "\nsections \\(${section_count}\\):\n")
  fail_and_stop("attach (text) exited with ${status}, expected 0, generation 1 and the sections")
endif()

execute_process(COMMAND "${TOOL}" publish "${served}" --name "${name}" --seconds 1
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 3 OR NOT err MATCHES "Locked: .*iqdb\\.${name}")
  fail_and_stop("a second publish of the name exited with ${status}, expected 3 (Locked)")
endif()
execute_process(COMMAND "${TOOL}" unpublish "${name}"
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 3 OR NOT err MATCHES "Locked: ")
  fail_and_stop("unpublish of a running publication exited with ${status}, expected 3 (Locked)")
endif()

# A checkpoint, as a writer makes one: a new file renamed over the old.
file(COPY_FILE "${work}/demo/demo.iqdb" "${work}/next.iqdb")
file(RENAME "${work}/next.iqdb" "${served}")
wait_for(publish.out "\"generation\": 2")
expect_attached(2)

# A foreign file is refused once, not at every 20 ms poll, and the current
# generation stays.
file(WRITE "${work}/next.iqdb" "not a snapshot")
file(RENAME "${work}/next.iqdb" "${served}")
wait_for(publish.err "BadMagic")
execute_process(COMMAND "${CMAKE_COMMAND}" -E sleep 1)
file(STRINGS "${work}/publish.err" refusals REGEX "BadMagic")
list(LENGTH refusals count)
if(NOT count EQUAL 1 OR NOT refusals MATCHES "generation 2 stays current")
  set(err "${refusals}")
  fail_and_stop("a foreign file was refused ${count} times in a second, expected once, saying "
                "generation 2 stays current")
endif()
expect_attached(2)
# Another one (another identity) is tried, and refused, again.
file(WRITE "${work}/next.iqdb" "not a snapshot either")
file(RENAME "${work}/next.iqdb" "${served}")
wait_for(publish.err "BadMagic[^\n]*\n[^\n]*BadMagic")
file(COPY_FILE "${work}/demo/demo.iqdb" "${work}/next.iqdb")
file(RENAME "${work}/next.iqdb" "${served}")
wait_for(publish.out "\"generation\": 3")
published_generations()
if(NOT generations STREQUAL "1;2;3")
  fail_and_stop("publish printed generations '${generations}', expected 1, 2 and 3")
endif()

# SIGTERM: publish withdraws everything and exits 0.
signal_publisher(TERM)
wait_for(publish.status "[0-9]")
string(STRIP "${content}" exit_status)
if(NOT exit_status EQUAL 0)
  fail("publish exited with ${exit_status} at SIGTERM, expected 0")
endif()
execute_process(COMMAND "${TOOL}" attach "${name}"
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 3 OR NOT err MATCHES "NotFound: .*iqdb\\.${name}")
  fail("attach after publish exited with ${status}, expected 3 (NotFound, naming the head)")
endif()
expect_no_objects("after publish withdrew")
execute_process(COMMAND "${TOOL}" unpublish "${name}"
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0 OR NOT out MATCHES "^removed 0 objects ")
  fail("unpublish of nothing exited with ${status}, expected 0 and 0 objects removed")
endif()

# SIGKILL: the publisher cannot withdraw; unpublish removes what it left.
start_publisher()
wait_for(publish.out "\n")
signal_publisher(KILL)
file(GLOB objects "/dev/shm/iqdb.${name}" "/dev/shm/iqdb.${name}.*")
list(LENGTH objects count)
if(NOT count EQUAL 2)
  fail("a killed publisher left ${count} objects (${objects}), expected its head and segment")
endif()
execute_process(COMMAND "${TOOL}" unpublish "${name}"
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0 OR NOT out MATCHES "^removed 2 objects ")
  execute_process(COMMAND "${TOOL}" unpublish "${name}")
  fail("unpublish after a killed publisher exited with ${status}, expected 2 objects removed")
endif()
expect_no_objects("after unpublish")

execute_process(COMMAND "${TOOL}" publish "${work}/missing.iqdb" --name "${name}" --seconds 1
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 3 OR NOT err MATCHES "NotFound: .*missing\\.iqdb")
  fail("publish of a missing file exited with ${status}, expected 3 (NotFound, naming it)")
endif()
expect_no_objects("after a publish that failed")
file(REMOVE_RECURSE "${work}")
