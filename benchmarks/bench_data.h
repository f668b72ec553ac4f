// The data the benchmarks run on: a deterministic FlatIndex of random vectors,
// and its snapshot file, built once per (vectors, dim) and reused by later runs
// as long as its header still matches and it verifies.
#ifndef IQDB_BENCHMARKS_BENCH_DATA_H_
#define IQDB_BENCHMARKS_BENCH_DATA_H_

#include <cstdint>
#include <filesystem>

#include "flat_index.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/file_header.h"

namespace iqdb::bench {

// A snapshot of make_index(vectors, dim), validated and in the page cache.
struct SnapshotFile {
  std::uint64_t vectors = 0;
  std::filesystem::path path;
  persist::FileHeader header;  // header.file_size is the file's length

  std::uint64_t size() const { return header.file_size; }
};

// An owned (not mapped) index of `vectors` random vectors with ids 0..vectors-1.
// The same arguments give the same index in every run.
examples::FlatIndex make_index(std::uint64_t vectors, std::uint32_t dim);

// Returns <dir>/flat-<vectors>x<dim>.iqdb, writing it first unless a valid
// snapshot of that shape is already there. The file is verified in full, which
// also leaves it in the page cache (the benchmarks measure hot loads).
persist::Result<SnapshotFile> prepare_snapshot(const std::filesystem::path& dir,
                                               std::uint64_t vectors, std::uint32_t dim);

}  // namespace iqdb::bench

#endif  // IQDB_BENCHMARKS_BENCH_DATA_H_
