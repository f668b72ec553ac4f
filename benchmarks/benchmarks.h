// Registration of the benchmark families. Each subject ("ours") is registered
// next to the floor it is compared with, so that the two run back to back:
//   BM_OpenFloor / BM_LoadSkip          per snapshot size (/vectors:N)
//   BM_CrcFloor / BM_LoadEager          per thread count (/threads:T)
//   BM_LoadNaive                        read-everything + CRC + copy loader
//   BM_WriteFsyncFloor / BM_SaveAlways  per snapshot size (/vectors:N)
//   BM_WalAppendFloor / BM_WalInsertNever   one logged insert per iteration
//   BM_WalSyncFloor / BM_WalInsertAlways    the same, synced; per thread count (/threads:T)
//   BM_WalBatchFloor / BM_WalBatch64        64 inserts, one sync per iteration
//   BM_WalScanFloor / BM_WalReplay          a load replaying a log of N inserts
//   BM_WalScanIntact / BM_WalResyncCrafted  scanning a 64 MiB segment, intact or crafted
//   BM_WalPlainSave / BM_WalCheckpoint  per index size (/vectors:N)
//   BM_Lz4Floor / BM_LoadLz4            an LZ4-compressed section; per thread count (/threads:T)
//   BM_ZstdFloor / BM_SaveZstd          a section compressed with zstd level 1
//   BM_StatFloor / BM_ReplicaRefreshIdle  a replica's refresh with nothing new
//   BM_OpenFloor / BM_ReplicaSwitch     a replica's switch to a new snapshot, per size
//   BM_WalReplay / BM_ReplicaCatchUp    a replica applying a log of N inserts
//   BM_ReplicaVisibility                insert() under always() -> seen by a replica process
//   BM_ReplicaMemory                    private memory of 4 replica processes, per size
//   BM_ScanFloor / BM_FlatSearch        a k-nearest search of the main snapshot (/vectors:N)
//   BM_OpenFloor / BM_AttachShared      attaching a published generation, per size
//   BM_SharedMemory                     private memory of 4 attached processes, per size
// Names are stable: scripts pair them across releases.
#ifndef IQDB_BENCHMARKS_BENCHMARKS_H_
#define IQDB_BENCHMARKS_BENCHMARKS_H_

#include <cstdint>
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

// The sizes of the write-ahead-log benchmarks, scaled from --vectors (N):
// the replayed log holds max(1000, N/5) inserts; the checkpointed index has N
// vectors plus max(1, N/10) inserted through the log (1,000,000 + 100,000 at
// the default scale).
struct WalBenchSizes {
  std::uint64_t replay_records = 0;
  std::uint64_t checkpoint_base = 0;
  std::uint64_t checkpoint_extra = 0;

  std::uint64_t checkpoint_vectors() const { return checkpoint_base + checkpoint_extra; }
};
WalBenchSizes wal_bench_sizes(std::uint64_t vectors);

// The write-ahead-log benchmarks (wal_benchmarks.cc). Their files go to `dir`,
// named "wal-*"; remove_wal_files() deletes them.
void register_wal_benchmarks(const std::filesystem::path& dir, std::uint64_t vectors,
                             std::uint32_t dim);
void remove_wal_files(const std::filesystem::path& dir);

// The ids the compressed-section benchmarks compress: one per vector (N), at
// most 4,194,304 (32 MiB), so that --vectors at any scale keeps them quick.
std::uint64_t compression_bench_ids(std::uint64_t vectors);

// The compressed-section benchmarks (compression_benchmarks.cc). Their files
// go to `dir`, named "compression-*"; remove_compression_files() deletes them.
void register_compression_benchmarks(const std::filesystem::path& dir, std::uint64_t vectors);
void remove_compression_files(const std::filesystem::path& dir);

// The replica benchmarks (replica_benchmarks.cc): switches on each of
// `files`, memory on the first and on `memory_small`. Their files go to
// `dir`, named "replica-*"; remove_replica_files() deletes them.
inline constexpr std::uint64_t kReplicaMemorySmallVectors = 10000;
void register_replica_benchmarks(const std::filesystem::path& dir, std::uint32_t dim,
                                 const std::vector<SnapshotFile>& files,
                                 const SnapshotFile& memory_small);
void remove_replica_files(const std::filesystem::path& dir);
// The shared-memory benchmarks (shared_benchmarks.cc): attaches to each of
// `files` published, memory of processes attached to the first and to
// `memory_small` published zstd-compressed (copies "shared-zstd-*" in `dir`,
// kept between runs). remove_shared_files() withdraws the publications.
void register_shared_benchmarks(const std::filesystem::path& dir, std::uint32_t dim,
                                const std::vector<SnapshotFile>& files,
                                const SnapshotFile& memory_small);
void remove_shared_files(const std::filesystem::path& dir);
// The search pair (search_benchmarks.cc) on `file`, the main snapshot,
// loaded once with VerifyMode::Skip. `file` must outlive the benchmark run.
void register_search_benchmarks(const SnapshotFile& file);

}  // namespace iqdb::bench

#endif  // IQDB_BENCHMARKS_BENCHMARKS_H_
