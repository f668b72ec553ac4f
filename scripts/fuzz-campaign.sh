#!/usr/bin/env bash
# Runs libFuzzer campaigns on the fuzz targets (built with the preset fuzz),
# each from the committed corpus plus fresh seeds, with the memory limits of
# the library's promise (a crafted input may not make it allocate more than
# 256x its size plus a constant: fuzz/allocation_budget.h aborts past that,
# and -malloc_limit_mb / -rss_limit_mb catch the rest):
#   scripts/fuzz-campaign.sh [--seconds S | --runs N] [--merge] [TARGET...]
# --seconds S: each target runs S seconds (default 30); --runs N: N executions.
# --merge: afterwards, adds what the campaign found to tests/fuzz/corpus/<target>
#   (minimized with -merge=1: only inputs that add coverage).
# Work files go to build/fuzz/campaign/<target>; each target's last lines of
# statistics are printed, and a crash input is left as crash-* in that folder.
# Exits non-zero if any target found something.
set -euo pipefail
cd "$(dirname "$0")/.."

limit=(-max_total_time=30)
merge=0
targets=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    --runs) limit=(-runs="$2"); shift 2 ;;
    --merge) merge=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "fuzz-campaign: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=(header_decode_fuzz snapshot_load_fuzz wal_segment_fuzz chunk_decode_fuzz)

bin=build/fuzz/fuzz
[[ -x $bin/iqdb_fuzz_seeds ]] || { echo "fuzz-campaign: build first: cmake --preset fuzz && cmake --build --preset fuzz" >&2; exit 2; }

# Per target: dictionary, longest input, largest single allocation (MiB).
options_for() {
  case $1 in
    header_decode_fuzz|snapshot_load_fuzz) echo "-dict=tests/fuzz/snapshot.dict -max_len=65536 -malloc_limit_mb=64" ;;
    wal_segment_fuzz) echo "-dict=tests/fuzz/wal.dict -max_len=8192 -malloc_limit_mb=16" ;;
    chunk_decode_fuzz) echo "-max_len=131072 -malloc_limit_mb=64" ;;
    *) echo "fuzz-campaign: no target $1" >&2; return 1 ;;
  esac
}

seed() {
  local target=$1 dir=$2
  case $target in
    header_decode_fuzz|snapshot_load_fuzz) "$bin/iqdb_fuzz_seeds" "$dir" >/dev/null ;;
    wal_segment_fuzz) python3 .ci/write_test_wal.py "$dir" ;;
    chunk_decode_fuzz) "$bin/iqdb_fuzz_seeds" --chunks "$dir" >/dev/null ;;
  esac
}

status=0
for target in "${targets[@]}"; do
  work=build/fuzz/campaign/$target
  corpus=tests/fuzz/corpus/$target
  rm -rf "$work" && mkdir -p "$work/seeds" "$work/found" "$corpus"
  seed "$target" "$work/seeds"
  read -r -a options <<<"$(options_for "$target")"
  echo "=== $target ${limit[*]}"
  set +e
  "$bin/$target" "${limit[@]}" "${options[@]}" -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/" "$work/found" "$corpus" "$work/seeds" >"$work/log" 2>&1
  result=$?
  set -e
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|budget' \
    "$work/log" || tail -n 20 "$work/log"
  if [[ $result -ne 0 ]]; then
    echo "$target: FINDING (exit $result), see $work/log and $work/crash-*"
    status=1
  elif [[ $merge -eq 1 ]]; then
    "$bin/$target" -merge=1 "${options[@]}" "$corpus" "$work/found" "$work/seeds" >"$work/merge.log" 2>&1
    echo "$target: corpus now $(find "$corpus" -type f | wc -l) inputs, $(du -sh "$corpus" | cut -f1)"
  fi
done
exit $status
