// Save benchmarks and their floor. The saved index is an owned, in-memory
// FlatIndex (as in a live server), not a mapped one.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "benchmarks.h"
#include "iqdb/persist/persisted_index.h"
#include "memory_probe.h"

namespace iqdb::bench {
namespace {

using examples::FlatIndex;
using persist::PersistConfig;
using persist::PersistedIndex;

constexpr double kMiB = 1024.0 * 1024.0;
constexpr std::size_t kWriteChunk = std::size_t{64} << 20;
constexpr std::string_view kSavePrefix = "save-";
constexpr std::string_view kFloorPrefix = "floor-write-";

// One owned index per snapshot size, saved to <dir>/save-<vectors>x<dim>.iqdb
// with FsyncPolicy::always(). Built on first use and kept for the whole run.
PersistedIndex<FlatIndex>& index_to_save(const SnapshotFile& file,
                                         const std::filesystem::path& dir) {
  static std::map<std::uint64_t, std::unique_ptr<PersistedIndex<FlatIndex>>> cache;
  auto& slot = cache[file.vectors];
  if (!slot) {
    PersistConfig config(dir /
                         fmt::format("{}{}x{}.iqdb", kSavePrefix, file.vectors, file.header.dim));
    config.fsync_policy = persist::FsyncPolicy::always();
    auto db = PersistedIndex<FlatIndex>::open_with(make_index(file.vectors, file.header.dim),
                                                   std::move(config));
    slot = std::make_unique<PersistedIndex<FlatIndex>>(std::move(db).value());
  }
  return *slot;
}

bool write_all(int fd, std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    const std::size_t chunk = std::min(bytes.size(), kWriteChunk);
    const ssize_t n = ::write(fd, bytes.data(), chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
  return true;
}

void set_bytes(benchmark::State& state, const SnapshotFile& file) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(file.size()));
}

// Creates `path`, writes `parts` to it in large chunks, fdatasyncs and closes
// it. Returns 0 or the errno of the first failure.
int write_file(const std::filesystem::path& path,
               std::initializer_list<std::span<const std::byte>> parts) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  bool ok = true;
  for (const auto part : parts) ok = ok && write_all(fd, part);
  ok = ok && ::fdatasync(fd) == 0;
  const int err = ok ? 0 : errno;
  ::close(fd);
  return err;
}

// The least a durable save of these bytes can cost: create a new file, write
// the snapshot's byte count from the index's own memory, fdatasync, close, and
// unlink the file written the iteration before. Like a save replacing a
// snapshot, the old file lives until the new one is durable, so both hold the
// same page cache. Left to the library: the header, the CRCs, the rename and
// the directory sync.
void BM_WriteFsyncFloor(benchmark::State& state, const SnapshotFile* file,
                        const std::filesystem::path* dir) {
  const FlatIndex& index = index_to_save(*file, *dir).index();
  // An index built by inserts holds everything in its delta, in id order.
  const auto ids = std::as_bytes(index.delta_ids());
  const auto vectors = std::as_bytes(index.delta_vectors());
  const std::vector<std::byte> tail(file->size() - ids.size() - vectors.size());
  const std::filesystem::path paths[2] = {*dir / fmt::format("{}a", kFloorPrefix),
                                          *dir / fmt::format("{}b", kFloorPrefix)};
  for (const auto& path : paths) ::unlink(path.c_str());
  // An untimed first write, so that every timed one replaces a file.
  int err = write_file(paths[0], {ids, vectors, tail});
  std::size_t next = 1;
  for (auto _ : state) {
    if (err != 0) break;
    err = write_file(paths[next], {ids, vectors, tail});
    next ^= 1;
    ::unlink(paths[next].c_str());
  }
  if (err != 0) state.SkipWithError((std::string("write: ") + std::strerror(err)).c_str());
  set_bytes(state, *file);
}

void BM_SaveAlways(benchmark::State& state, const SnapshotFile* file,
                   const std::filesystem::path* dir) {
  const PersistedIndex<FlatIndex>& db = index_to_save(*file, *dir);
  // One untimed save under the memory sampler. It also creates the target, so
  // every timed save replaces an existing snapshot, as in steady state.
  PeakAnonSampler sampler;
  auto saved = db.save();
  const std::uint64_t extra = sampler.stop();
  if (!saved) {
    state.SkipWithError(saved.error().to_string().c_str());
    return;
  }
  for (auto _ : state) {
    if (auto again = db.save(); !again) {
      state.SkipWithError(again.error().to_string().c_str());
      break;
    }
  }
  set_bytes(state, *file);
  state.counters["extra_anon_MiB"] = static_cast<double>(extra) / kMiB;
}

}  // namespace

void register_save_benchmarks(const std::vector<SnapshotFile>& files,
                              const std::filesystem::path& dir, double min_time) {
  static std::filesystem::path save_dir;
  save_dir = dir;
  for (const SnapshotFile& file : files) {
    const auto vectors = static_cast<std::int64_t>(file.vectors);
    auto* floor =
        benchmark::RegisterBenchmark("BM_WriteFsyncFloor", BM_WriteFsyncFloor, &file, &save_dir);
    auto* save = benchmark::RegisterBenchmark("BM_SaveAlways", BM_SaveAlways, &file, &save_dir);
    for (auto* family : {floor, save}) {
      family->Arg(vectors)->ArgName("vectors")->UseRealTime()->Unit(benchmark::kMillisecond);
      if (min_time > 0) family->MinTime(min_time);
    }
  }
}

void remove_save_files(const std::filesystem::path& dir) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(kSavePrefix) || name.starts_with(kFloorPrefix)) {
      std::filesystem::remove(entry.path(), error);
    }
  }
}

}  // namespace iqdb::bench
