// Command-line options of iqdb_persist_bench that are ours rather than Google
// Benchmark's. They are parsed, and removed from argv, before
// benchmark::Initialize() sees the rest.
#ifndef IQDB_BENCHMARKS_BENCH_OPTIONS_H_
#define IQDB_BENCHMARKS_BENCH_OPTIONS_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace iqdb::bench {

struct BenchOptions {
  std::uint64_t vectors = 1'000'000;  // the size the targets are stated for
  std::uint64_t small_vectors = 0;    // for the flatness comparison; 0 until resolved
  std::uint32_t dim = 128;
  std::filesystem::path data_dir;  // snapshots, reused across runs
  bool check = false;              // exit 1 when a target is missed
  // Minimum time of the slow durable-save benchmarks when --benchmark_min_time
  // is not given: a save takes about a second, and a single one is too noisy.
  double save_min_time = 2.0;
};

// Usage text for our options.
std::string options_help();

// Parses and strips our options from argv (updating argc); leaves every other
// argument in order for Google Benchmark (and sets save_min_time to 0, meaning
// "leave it to the flag", when --benchmark_min_time is among them). Returns nullopt, after printing
// the reason to stderr, for a malformed or out-of-range value.
std::optional<BenchOptions> parse_options(int& argc, char** argv,
                                          const std::filesystem::path& default_data_dir);

}  // namespace iqdb::bench

#endif  // IQDB_BENCHMARKS_BENCH_OPTIONS_H_
