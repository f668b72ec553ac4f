// Registration of the benchmark families. Each subject ("ours") is registered
// next to the floor it is compared with, so that the two run back to back:
//   BM_OpenFloor / BM_LoadSkip          per snapshot size (/vectors:N)
//   BM_CrcFloor / BM_LoadEager          per thread count (/threads:T)
//   BM_LoadNaive                        read-everything + CRC + copy loader
//   BM_WriteFsyncFloor / BM_SaveAlways  per snapshot size (/vectors:N)
// Names are stable: scripts pair them across releases.
#ifndef IQDB_BENCHMARKS_BENCHMARKS_H_
#define IQDB_BENCHMARKS_BENCHMARKS_H_

#include <filesystem>
#include <vector>

#include "bench_data.h"

namespace iqdb::bench {

// `files` must outlive the benchmark run. The first file is the main size
// (Eager, naive and CRC benchmarks run on it only).
void register_load_benchmarks(const std::vector<SnapshotFile>& files);

// Saves go to, and floors write into, new files in `dir`; remove_save_files()
// deletes what they leave behind. A positive `min_time` (seconds) overrides
// --benchmark_min_time for these benchmarks.
void register_save_benchmarks(const std::vector<SnapshotFile>& files,
                              const std::filesystem::path& dir, double min_time);
void remove_save_files(const std::filesystem::path& dir);

}  // namespace iqdb::bench

#endif  // IQDB_BENCHMARKS_BENCHMARKS_H_
