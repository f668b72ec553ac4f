// `iqdb-persist demo`: the project's claim, measured on this machine. It builds
// a FlatIndex of random vectors, saves it durably, and times loading it back:
// zero-copy from the mapping (verify skip), with full CRC verification (verify
// eager), and the baseline that a loader without mmap must do (read the whole
// file, copy it into a fresh index). Before each load it asks the kernel to
// drop the file from the page cache and reports whether that worked. Then it
// queries the mapped index for a stored vector and checks that the vector
// itself comes back first (PASS/FAIL). Last, the write-ahead-log phase
// (demo_wal.h) times durable inserts under each fsync policy, kills a writer
// process with SIGKILL, recovers, and checks no acknowledged insert was lost.
//
// It works in a private temporary directory removed at exit, or in --dir DIR,
// which is kept.
#ifndef IQDB_PERSIST_TOOLS_DEMO_DEMO_COMMAND_H_
#define IQDB_PERSIST_TOOLS_DEMO_DEMO_COMMAND_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include "iqdb/types.h"

namespace iqdb::tools {

inline constexpr std::uint64_t kDefaultDemoVectors = 200000;
inline constexpr std::uint32_t kDefaultDemoDim = 128;
inline constexpr std::uint32_t kMaxDemoDim = 65536;
inline constexpr std::uint64_t kDefaultDemoSeed = 42;

struct DemoOptions {
  std::uint64_t vectors = kDefaultDemoVectors;  // >= 1
  std::uint32_t dim = kDefaultDemoDim;          // 1..kMaxDemoDim
  std::uint64_t seed = kDefaultDemoSeed;
  DistanceMetric metric = DistanceMetric::Cosine;
  std::optional<std::filesystem::path> dir;  // keep files here instead of a temporary directory
};

// The metric named on the command line: cosine, dot, euclidean, manhattan or
// hamming (any case).
std::optional<DistanceMetric> parse_metric_name(std::string_view name);

// Returns the exit status: kExitIntegrity if the query check fails,
// kExitUsage if the data set would not fit in this machine's memory.
int run_demo(const DemoOptions& options);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_DEMO_DEMO_COMMAND_H_
