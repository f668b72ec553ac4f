// Load benchmarks and their floors. Every loop iteration opens and maps the
// file afresh, as a load must; the page cache is hot throughout.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <isa-l/crc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "benchmarks.h"
#include "iqdb/persist/persisted_index.h"
#include "memory_probe.h"

namespace iqdb::bench {
namespace {

using examples::FlatIndex;
using persist::PersistConfig;
using persist::PersistedIndex;
using persist::VerifyMode;

constexpr double kMiB = 1024.0 * 1024.0;

void skip_with_errno(benchmark::State& state, const char* what) {
  const std::string message = std::string(what) + ": " + std::strerror(errno);
  state.SkipWithError(message.c_str());
}

// The whole file mapped read-only, the way the library maps it.
class FileMapping {
 public:
  explicit FileMapping(const std::filesystem::path& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return;
    struct stat info {};
    if (::fstat(fd_, &info) != 0) return;
    size_ = static_cast<std::size_t>(info.st_size);
    void* address = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_, 0);
    if (address != MAP_FAILED) data_ = static_cast<const unsigned char*>(address);
  }
  ~FileMapping() {
    if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;

  const unsigned char* data() const { return data_; }

 private:
  int fd_ = -1;
  std::size_t size_ = 0;
  const unsigned char* data_ = nullptr;
};

struct Range {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

std::vector<Range> section_ranges(const persist::FileHeader& header) {
  std::vector<Range> ranges;
  for (const persist::SectionInfo& section : header.sections) {
    ranges.push_back({section.offset, section.stored_length});
  }
  return ranges;
}

// CRC-32 of bytes [begin, end) of the concatenation of `ranges` of `file`.
std::uint32_t crc_of_stream(const unsigned char* file, const std::vector<Range>& ranges,
                            std::uint64_t begin, std::uint64_t end) {
  std::uint32_t crc = 0;
  std::uint64_t stream_offset = 0;
  for (const Range& range : ranges) {
    const std::uint64_t from = std::max(begin, stream_offset);
    const std::uint64_t to = std::min(end, stream_offset + range.length);
    if (from < to) {
      crc = crc32_gzip_refl(crc, file + range.offset + (from - stream_offset), to - from);
    }
    stream_offset += range.length;
  }
  return crc;
}

// The CRC floor: ISA-L over the sections' bytes, split into `threads` equal
// parts whose CRCs zlib combines. The same result as the header's payload CRC.
std::uint32_t crc_in_parallel(const unsigned char* file, const std::vector<Range>& ranges,
                              std::uint64_t total, unsigned threads) {
  std::vector<std::uint32_t> crcs(threads);
  std::vector<std::thread> helpers;
  const auto part = [&](unsigned t) {
    crcs[t] = crc_of_stream(file, ranges, total * t / threads, total * (t + 1) / threads);
  };
  for (unsigned t = 1; t < threads; ++t) helpers.emplace_back(part, t);
  part(0);
  for (std::thread& helper : helpers) helper.join();
  std::uint32_t crc = crcs[0];
  for (unsigned t = 1; t < threads; ++t) {
    const std::uint64_t length = total * (t + 1) / threads - total * t / threads;
    crc =
        static_cast<std::uint32_t>(::crc32_combine64(crc, crcs[t], static_cast<z_off64_t>(length)));
  }
  return crc;
}

void set_bytes(benchmark::State& state, const SnapshotFile& file) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(file.size()));
}

void BM_OpenFloor(benchmark::State& state, const SnapshotFile* file) {
  const auto size = static_cast<std::size_t>(file->size());
  for (auto _ : state) {
    const int fd = ::open(file->path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat info {};
    if (fd < 0 || ::fstat(fd, &info) != 0) {
      skip_with_errno(state, "open");
      break;
    }
    void* address = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    benchmark::DoNotOptimize(address);
    if (address != MAP_FAILED) ::munmap(address, size);
    ::close(fd);
  }
  set_bytes(state, *file);
}

// The timed loop of the load benchmarks: one full load per iteration.
void time_loads(benchmark::State& state, const PersistConfig& config) {
  for (auto _ : state) {
    auto loaded = PersistedIndex<FlatIndex>::load(config);
    if (!loaded) {
      state.SkipWithError(loaded.error().to_string().c_str());
      break;
    }
    benchmark::DoNotOptimize(loaded.value().index().base_vectors().data());
  }
}

void BM_LoadSkip(benchmark::State& state, const SnapshotFile* file) {
  PersistConfig config(file->path);
  config.verify = VerifyMode::Skip;
  std::uint64_t anon_growth = 0;
  for (int round = 0; round < 2; ++round) {  // the first round warms up; measure the second
    const std::uint64_t before = rss_anon_bytes();
    auto loaded = PersistedIndex<FlatIndex>::load(config);
    const std::uint64_t after = rss_anon_bytes();
    if (!loaded) {
      state.SkipWithError(loaded.error().to_string().c_str());
      return;
    }
    anon_growth = after > before ? after - before : 0;
  }
  time_loads(state, config);
  set_bytes(state, *file);
  state.counters["anon_MiB"] = static_cast<double>(anon_growth) / kMiB;
}

// The time until load() returns in VerifyMode::Background (manual time: the
// check it starts is stopped when the database is destroyed, untimed, at the
// end of each iteration). Compared with BM_LoadSkip, which does everything
// but start the check.
void BM_LoadBackground(benchmark::State& state, const SnapshotFile* file) {
  PersistConfig config(file->path);
  config.verify = VerifyMode::Background;
  for (auto _ : state) {
    const auto started = std::chrono::steady_clock::now();
    auto loaded = PersistedIndex<FlatIndex>::load(config);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
    if (!loaded) {
      state.SkipWithError(loaded.error().to_string().c_str());
      break;
    }
    benchmark::DoNotOptimize(loaded.value().index().base_vectors().data());
    state.SetIterationTime(elapsed.count());
  }
  set_bytes(state, *file);
}

void BM_CrcFloor(benchmark::State& state, const SnapshotFile* file) {
  const auto threads = static_cast<unsigned>(state.range(0));
  const std::vector<Range> ranges = section_ranges(file->header);
  std::uint64_t total = 0;
  for (const Range& range : ranges) total += range.length;
  for (auto _ : state) {
    FileMapping mapping(file->path);
    if (mapping.data() == nullptr) {
      skip_with_errno(state, "open and map");
      break;
    }
    const std::uint32_t crc = crc_in_parallel(mapping.data(), ranges, total, threads);
    if (crc != file->header.crc32) {
      state.SkipWithError("CRC floor disagrees with the header's payload CRC");
      break;
    }
  }
  set_bytes(state, *file);
}

void BM_LoadEager(benchmark::State& state, const SnapshotFile* file) {
  PersistConfig config(file->path);
  config.verify = VerifyMode::Eager;
  config.verify_threads = static_cast<unsigned>(state.range(0));
  time_loads(state, config);
  set_bytes(state, *file);
}

// What a loader without a snapshot format would do: read the whole file into
// memory, check its CRCs, and build an owned index from the copy.
void BM_LoadNaive(benchmark::State& state, const SnapshotFile* file) {
  for (auto _ : state) {
    const int fd = ::open(file->path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat info {};
    if (fd < 0 || ::fstat(fd, &info) != 0) {
      skip_with_errno(state, "open");
      break;
    }
    const auto size = static_cast<std::size_t>(info.st_size);
    auto bytes = std::make_unique_for_overwrite<unsigned char[]>(size);
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::read(fd, bytes.get() + done, size - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    auto header = persist::read_file_header(file->path);
    if (done != size || !header) {
      state.SkipWithError("read failed");
      break;
    }
    std::uint32_t crc = 0;
    for (const persist::SectionInfo& section : header.value().sections) {
      const std::uint32_t section_crc =
          crc32_gzip_refl(0, bytes.get() + section.offset, section.stored_length);
      crc = static_cast<std::uint32_t>(
          ::crc32_combine64(crc, section_crc, static_cast<z_off64_t>(section.stored_length)));
    }
    const persist::SectionInfo* ids = header.value().find_section("ids");
    const persist::SectionInfo* vectors = header.value().find_section("vectors");
    if (crc != header.value().crc32 || ids == nullptr || vectors == nullptr) {
      state.SkipWithError("damaged snapshot");
      break;
    }
    const std::size_t dim = header.value().dim;
    const std::size_t count = header.value().n_vectors;
    std::vector<std::uint64_t> id_values(count);
    std::memcpy(id_values.data(), bytes.get() + ids->offset, count * sizeof(std::uint64_t));
    const auto* floats = reinterpret_cast<const float*>(bytes.get() + vectors->offset);
    FlatIndex index(dim, header.value().metric);
    for (std::size_t i = 0; i < count; ++i) {
      if (!index.insert(id_values[i], std::span<const float>(floats + i * dim, dim), {})) break;
    }
    if (index.size() != count) {
      state.SkipWithError("insert failed");
      break;
    }
    benchmark::DoNotOptimize(index.delta_vectors().data());
  }
  set_bytes(state, *file);
}

}  // namespace

void register_load_benchmarks(const std::vector<SnapshotFile>& files) {
  for (const SnapshotFile& file : files) {
    const auto vectors = static_cast<std::int64_t>(file.vectors);
    benchmark::RegisterBenchmark("BM_OpenFloor", BM_OpenFloor, &file)
        ->Arg(vectors)
        ->ArgName("vectors")
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_LoadSkip", BM_LoadSkip, &file)
        ->Arg(vectors)
        ->ArgName("vectors")
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
  const SnapshotFile* main = &files.front();
  benchmark::RegisterBenchmark("BM_LoadBackground", BM_LoadBackground, main)
      ->Arg(static_cast<std::int64_t>(main->vectors))
      ->ArgName("vectors")
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
  for (const std::int64_t threads : {1, 2}) {
    benchmark::RegisterBenchmark("BM_CrcFloor", BM_CrcFloor, main)
        ->Arg(threads)
        ->ArgName("threads")
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_LoadEager", BM_LoadEager, main)
        ->Arg(threads)
        ->ArgName("threads")
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("BM_LoadNaive", BM_LoadNaive, main)
      ->Arg(static_cast<std::int64_t>(main->vectors))
      ->ArgName("vectors")
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

}  // namespace iqdb::bench
