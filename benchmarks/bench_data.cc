#include "bench_data.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "iqdb/persist/persisted_index.h"
#include "iqdb/persist/verify_snapshot.h"
#include "iqdb/persist/version.h"

namespace iqdb::bench {
namespace {

using examples::FlatIndex;
using persist::OpenMode;
using persist::PersistConfig;
using persist::PersistedIndex;

constexpr DistanceMetric kMetric = DistanceMetric::Cosine;

// SplitMix64: a small, fast generator; good enough for benchmark data.
std::uint64_t next_random(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

bool matches(const persist::FileHeader& header, std::uint64_t vectors, std::uint32_t dim) {
  return header.index_type == FlatIndex::kIndexType && header.dim == dim &&
         header.n_vectors == vectors && header.metric == kMetric &&
         header.writer_version == persist::kWriterVersion &&
         // Written by a flat index that records its id order (a load then
         // reads no ids): older files would make loads cost more.
         header.find_section("id_order") != nullptr;
}

persist::Result<void> write_snapshot(const std::filesystem::path& path, std::uint64_t vectors,
                                     std::uint32_t dim) {
  std::fprintf(stderr, "iqdb_persist_bench: writing %s (%llu x %u)...\n", path.c_str(),
               static_cast<unsigned long long>(vectors), dim);
  PersistConfig config(path);
  config.fsync_policy = persist::FsyncPolicy::never();
  IQDB_TRY_ASSIGN(auto db, PersistedIndex<FlatIndex>::open_with(make_index(vectors, dim), config,
                                                                OpenMode::Overwrite));
  return db.save();
}

}  // namespace

FlatIndex make_index(std::uint64_t vectors, std::uint32_t dim) {
  FlatIndex index(dim, kMetric);
  std::vector<float> row(dim);
  std::uint64_t state = 42;
  for (std::uint64_t id = 0; id < vectors; ++id) {
    for (float& value : row) {
      // 24 random bits -> [-1, 1).
      value = static_cast<float>(next_random(state) >> 40) * (2.0f / 16777216.0f) - 1.0f;
    }
    if (auto inserted = index.insert(id, row, {}); !inserted) {
      std::fprintf(stderr, "iqdb_persist_bench: insert failed: %s\n",
                   inserted.error().message.c_str());
      std::abort();
    }
  }
  return index;
}

persist::Result<SnapshotFile> prepare_snapshot(const std::filesystem::path& dir,
                                               std::uint64_t vectors, std::uint32_t dim) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return persist::fail(persist::ErrorKind::Io,
                         fmt::format("{}: cannot create: {}", dir.string(), error.message()));
  }
  const std::filesystem::path path = dir / fmt::format("flat-{}x{}.iqdb", vectors, dim);
  auto header = persist::read_file_header(path);
  bool valid = header && matches(header.value(), vectors, dim);
  if (valid) valid = persist::verify_snapshot(path).has_value();
  if (!valid) {
    IQDB_TRY(write_snapshot(path, vectors, dim));
    IQDB_TRY_ASSIGN(auto report, persist::verify_snapshot(path));
    header = std::move(report.header);
  }
  return SnapshotFile{vectors, path, std::move(header).value()};
}

}  // namespace iqdb::bench
