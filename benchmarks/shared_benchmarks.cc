// Shared-memory serving benchmarks, each beside its floor:
//   BM_AttachShared (/vectors:N)   attaching (and detaching) a published
//                                  generation; floor BM_OpenFloor
//   BM_SharedMemory (/vectors:N)   private memory and PSS of 4 processes
//                                  attached to a zstd snapshot published
//                                  decoded, by size
// Publications are named "bench-<pid>-..." and withdrawn at the end.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "benchmarks.h"
#include "iqdb/persist/rewrite.h"
#include "iqdb/persist/shared_memory.h"
#include "memory_probe.h"

namespace iqdb::bench {
namespace {

using persist::SharedIndex;
using persist::SharedPublisher;
using persist::SharedSnapshot;

struct SharedSetup {
  std::filesystem::path dir;
  std::uint32_t dim = 0;
  // Publications by name, withdrawn by remove_shared_files().
  std::map<std::string, SharedPublisher> publishers;
};
SharedSetup g_shared;

// Publishes `path` under `name` once per run; the publication stays until
// remove_shared_files().
persist::Result<void> ensure_published(const std::string& name, const std::filesystem::path& path) {
  if (g_shared.publishers.contains(name)) return persist::success();
  IQDB_TRY_ASSIGN(auto publisher, SharedPublisher::open(name));
  IQDB_TRY(publisher.publish(path));
  g_shared.publishers.emplace(name, std::move(publisher));
  return persist::success();
}

// <dir>/shared-zstd-<N>.iqdb: the N-vector snapshot with every section
// compressed (zstd level 1, whatever the ratio: random vectors hardly
// shrink, and the point is a snapshot a load must decode). Rewritten only
// when missing or older than the source.
persist::Result<std::filesystem::path> zstd_copy(const SnapshotFile& file) {
  const auto path = g_shared.dir / fmt::format("shared-zstd-{}.iqdb", file.vectors);
  std::error_code error;
  if (std::filesystem::exists(path, error) &&
      std::filesystem::last_write_time(path, error) >=
          std::filesystem::last_write_time(file.path, error)) {
    return path;
  }
  persist::RewriteOptions options;
  options.compression = persist::Compression::zstd(1);
  options.compression_max_ratio = 1.0;
  options.fsync_policy = persist::FsyncPolicy::never();
  IQDB_TRY(persist::rewrite_snapshot(file.path, path, options));
  return path;
}

std::string publication_name(std::string_view what, std::uint64_t vectors) {
  return fmt::format("bench-{}-{}-{}", ::getpid(), what, vectors);
}

// One iteration attaches the current generation (opens the head and the
// segment, checks the descriptor, maps the segment, validates the image's
// header) and detaches it (unmaps): the same round trip as the floor's
// open, mmap, munmap and close.
void BM_AttachShared(benchmark::State& state, const SnapshotFile* file) {
  const std::string name = publication_name("attach", file->vectors);
  if (auto published = ensure_published(name, file->path); !published) {
    state.SkipWithError(published.error().to_string().c_str());
    return;
  }
  for (auto _ : state) {
    auto attached = SharedSnapshot::attach(name);
    if (!attached) {
      state.SkipWithError(attached.error().to_string().c_str());
      break;
    }
    benchmark::DoNotOptimize(attached.value().view().header().n_vectors);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(file->size()));
}

// `processes` processes each attach the publication `name`, rebuild the
// flat index from it and run a query (touching every vector); then their
// memory is read while they wait.
std::vector<ProcessMemory> attached_memory(const std::string& name, int processes) {
  return memory_of_children(processes, [&name]() -> std::shared_ptr<const void> {
    auto shared = SharedIndex<examples::FlatIndex>::attach(name);
    if (!shared) return nullptr;
    const std::vector<float> query(g_shared.dim, 0.5f);
    benchmark::DoNotOptimize(shared.value().index().search(query, 10));
    return std::make_shared<SharedIndex<examples::FlatIndex>>(std::move(shared).value());
  });
}

void BM_SharedMemory(benchmark::State& state, const SnapshotFile* file) {
  constexpr int kProcesses = 4;
  const std::string name = publication_name("memory", file->vectors);
  auto compressed = zstd_copy(*file);
  if (!compressed) {
    state.SkipWithError(compressed.error().to_string().c_str());
    return;
  }
  if (auto published = ensure_published(name, compressed.value()); !published) {
    state.SkipWithError(published.error().to_string().c_str());
    return;
  }
  std::vector<ProcessMemory> memory;
  for (auto _ : state) memory = attached_memory(name, kProcesses);
  if (memory.size() != kProcesses) {
    state.SkipWithError("an attached process failed");
    return;
  }
  const MemorySummary summary = summarize(memory);
  state.counters["private_kib"] = summary.most_private_kib;
  state.counters["pss_kib"] = summary.mean_pss_kib;
  state.counters["processes"] = kProcesses;
}

}  // namespace

void register_shared_benchmarks(const std::filesystem::path& dir, std::uint32_t dim,
                                const std::vector<SnapshotFile>& files,
                                const SnapshotFile& memory_small) {
  g_shared.dir = dir;
  g_shared.dim = dim;
  for (const SnapshotFile& file : files) {
    benchmark::RegisterBenchmark("BM_AttachShared", BM_AttachShared, &file)
        ->Arg(static_cast<std::int64_t>(file.vectors))
        ->ArgName("vectors")
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
  for (const SnapshotFile* file : {&files.front(), &memory_small}) {
    if (file != &files.front() && file->vectors == files.front().vectors) break;
    benchmark::RegisterBenchmark("BM_SharedMemory", BM_SharedMemory, file)
        ->Arg(static_cast<std::int64_t>(file->vectors))
        ->ArgName("vectors")
        ->Iterations(1)
        ->UseRealTime();
  }
}

void remove_shared_files(const std::filesystem::path&) {
  g_shared.publishers.clear();  // each withdraws its publication
}

}  // namespace iqdb::bench
