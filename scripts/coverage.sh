#!/usr/bin/env bash
# Line and branch coverage of the library (src/ only) from a build made with
# IQDB_PERSIST_COVERAGE=ON (the `coverage` preset, or `asan-ubsan-coverage` as
# in CI), after its tests have run:
#
#   cmake --preset coverage && cmake --build --preset coverage && ctest --preset coverage
#   scripts/coverage.sh [--check] build/coverage
#
# Prints a per-file table of lines, then of branches, then the totals. With
# --check, exits non-zero when lines < 90% or branches < 80%. Counters add up
# over runs: delete the build's *.gcda files to measure one run alone.
set -euo pipefail

check=0
build=""
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    -*) echo "usage: $0 [--check] BUILD_DIR" >&2; exit 64 ;;
    *) build=$arg ;;
  esac
done
if [[ -z "$build" || ! -d "$build" ]]; then
  echo "usage: $0 [--check] BUILD_DIR (a build with IQDB_PERSIST_COVERAGE=ON)" >&2
  exit 64
fi
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
tracefile="$build/coverage-src.json"

# Only src/: the filter leaves out tests/, fuzz/, examples/, tools/, the public
# headers' templates and system headers; the generated FlatBuffers header
# lives in the build tree but is excluded by name in case of an in-tree build.
# Exception edges (a throw from std::vector growth, std::function, fmt) are
# branches the compiler adds to every library call, not decisions of our
# code that a test could take, and no exception crosses our API: they are
# left out, as are branches on lines without code.
gcovr --root "$root" --filter "$root/src/" --exclude '.*_generated\.h$' \
  --exclude-throw-branches --exclude-unreachable-branches \
  -j "$(nproc)" --json "$tracefile" "$build"

report=(gcovr --root "$root" --add-tracefile "$tracefile")
"${report[@]}" --txt -
"${report[@]}" --txt - --branches
if [[ $check == 1 ]]; then
  "${report[@]}" --print-summary --txt /dev/null --fail-under-line 90 --fail-under-branch 80
else
  "${report[@]}" --print-summary --txt /dev/null
fi
