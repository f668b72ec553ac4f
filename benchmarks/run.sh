#!/usr/bin/env bash
# Runs the already-built benchmark suite and keeps its results:
#   benchmarks/run.sh BUILD_DIR [--vectors=N] [--check] [--benchmark_* flags...]
# writes <OUT>/bench-<UTC time>.json (Google Benchmark JSON, for pairing across
# releases) and <OUT>/bench-<UTC time>.txt (console output and the ratio report).
# OUT is $IQDB_BENCH_OUT_DIR, or BUILD_DIR/bench-results. Builds nothing.
# CI smoke pass: benchmarks/run.sh build --vectors=20000 --benchmark_min_time=0.01
set -euo pipefail

if [[ $# -lt 1 || ! -d "$1" ]]; then
  echo "usage: $0 BUILD_DIR [iqdb_persist_bench options...]" >&2
  exit 2
fi
build_dir=$1
shift
bench="$build_dir/benchmarks/iqdb_persist_bench"
if [[ ! -x "$bench" ]]; then
  echo "$0: $bench not found; build with -DIQDB_PERSIST_BUILD_BENCHMARKS=ON" >&2
  exit 2
fi

out_dir=${IQDB_BENCH_OUT_DIR:-"$build_dir/bench-results"}
mkdir -p "$out_dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
json="$out_dir/bench-$stamp.json"
text="$out_dir/bench-$stamp.txt"

set +e
"$bench" --benchmark_out="$json" --benchmark_out_format=json "$@" 2>&1 | tee "$text"
status=${PIPESTATUS[0]}
set -e
echo "results: $json $text"
exit "$status"
