// iqdb_persist_bench: the benchmark suite. Our options (bench_options.h) come
// off the command line first; the rest go to Google Benchmark. After the run it
// prints the ratio report (ratio_report.h); with --check, a missed target (or a
// run that checked none) makes the exit status 1.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <algorithm>

#include <cstdio>
#include <iostream>
#include <vector>

#include "bench_options.h"
#include "benchmarks.h"
#include "iqdb/persist/version.h"
#include "ratio_report.h"

namespace {

void print_help() {
  benchmark::PrintDefaultHelp();
  std::fputs(iqdb::bench::options_help().c_str(), stdout);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace iqdb::bench;
  const auto options = parse_options(argc, argv, IQDB_BENCH_DEFAULT_DATA_DIR);
  if (!options) return 2;
  benchmark::Initialize(&argc, argv, print_help);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;

  std::vector<std::uint64_t> sizes = {options->vectors};
  if (options->small_vectors != options->vectors) sizes.push_back(options->small_vectors);
  std::vector<SnapshotFile> files;
  files.reserve(sizes.size());  // registered benchmarks keep pointers into it
  for (const std::uint64_t vectors : sizes) {
    auto file = prepare_snapshot(options->data_dir, vectors, options->dim);
    if (!file) {
      std::fprintf(stderr, "iqdb_persist_bench: %s\n", file.error().to_string().c_str());
      return 1;
    }
    files.push_back(std::move(file).value());
  }

  benchmark::AddCustomContext("iqdb_persist_version", std::string(iqdb::persist::kVersion));
  benchmark::AddCustomContext("vectors", std::to_string(options->vectors));
  benchmark::AddCustomContext("dim", std::to_string(options->dim));
  benchmark::AddCustomContext("snapshot_bytes", std::to_string(files.front().size()));
  register_load_benchmarks(files);
  register_save_benchmarks(files, options->data_dir, options->save_min_time);
  register_wal_benchmarks(options->data_dir, options->vectors, options->dim);
  register_compression_benchmarks(options->data_dir, options->vectors);
  // The memory of replicas (and of processes attached to a publication) of
  // the main snapshot is compared with that of a tiny one (when the main one
  // is larger).
  const std::uint64_t tiny = std::min(kReplicaMemorySmallVectors, options->vectors);
  auto memory_small = prepare_snapshot(options->data_dir, tiny, options->dim);
  if (!memory_small) {
    std::fprintf(stderr, "iqdb_persist_bench: %s\n", memory_small.error().to_string().c_str());
    return 1;
  }
  register_replica_benchmarks(options->data_dir, options->dim, files, memory_small.value());
  register_shared_benchmarks(options->data_dir, options->dim, files, memory_small.value());
  register_search_benchmarks(files.front());

  benchmark::BenchmarkReporter* display = benchmark::CreateDefaultDisplayReporter();
  CollectingReporter collector(*display);
  benchmark::RunSpecifiedBenchmarks(&collector);
  remove_save_files(options->data_dir);
  remove_wal_files(options->data_dir);
  remove_compression_files(options->data_dir);
  remove_replica_files(options->data_dir);
  remove_shared_files(options->data_dir);

  ReportSetup setup{options->vectors, files.front().size(), 0, 0, options->dim};
  setup.checkpoint_vectors = wal_bench_sizes(options->vectors).checkpoint_vectors();
  setup.compression_ids = compression_bench_ids(options->vectors);
  if (tiny < options->vectors) setup.memory_small_vectors = tiny;
  if (files.size() > 1) {
    setup.small_vectors = files[1].vectors;
    setup.small_file_bytes = files[1].size();
  }
  // Keep machine-readable output on stdout parseable: the report goes to stderr then.
  const bool console = dynamic_cast<benchmark::ConsoleReporter*>(display) != nullptr;
  const bool passed =
      print_ratio_report(console ? std::cout : std::cerr, collector.results(), setup);
  benchmark::Shutdown();
  return options->check && !passed ? 1 : 0;
}
