// Replica benchmarks, each beside its floor:
//   BM_StatFloor / BM_ReplicaRefreshIdle   a refresh with nothing new vs two stat(2)
//   BM_ReplicaSwitch (/vectors:N)          a switch to a new snapshot; floor BM_OpenFloor
//   BM_SwitchCallsFloor (/vectors:N)       the system calls of that switch alone (info)
//   BM_ReplicaCheckpointSwitch / BM_CheckpointOpenFloor (/vectors:N)
//                                          the same after a real checkpoint (SwitchStage)
//   BM_ReplicaVisibility                   insert() returning -> a replica process sees it
//   BM_ReplicaMemory                       private memory of 4 replica processes, by size
// (BM_ReplicaCatchUp, beside BM_WalReplay, is in wal_benchmarks.cc.)
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "benchmarks.h"
#include "iqdb/persist/persisted_index.h"
#include "iqdb/persist/replica.h"
#include "memory_probe.h"
#include "wal/wal_segments.h"
#include "wal/wal_writer.h"

namespace iqdb::bench {
namespace {

using persist::FsyncPolicy;
using persist::PersistConfig;
using persist::ReplicaOptions;
using persist::VerifyMode;
using FlatReplica = persist::Replica<examples::FlatIndex>;
using FlatWriter = persist::PersistedIndex<examples::FlatIndex>;

struct ReplicaSetup {
  std::filesystem::path dir;
  std::uint32_t dim = 0;
  std::vector<const SnapshotFile*> files;
};
ReplicaSetup g_setup;

std::vector<float> vector_for(std::uint64_t id, std::uint32_t dim) {
  std::vector<float> vector(dim);
  for (std::uint32_t i = 0; i < dim; ++i)
    vector[i] = static_cast<float>((id * 31 + i) % 97) / 97.0f;
  return vector;
}

// A database with the log at <dir>/replica-<name>.iqdb holding `records`
// logged inserts over an empty snapshot; the writer stays open.
persist::Result<FlatWriter> make_database(const std::string& name, std::uint64_t records,
                                          FsyncPolicy policy) {
  PersistConfig config(g_setup.dir / fmt::format("replica-{}.iqdb", name));
  config.wal_enabled = true;
  config.fsync_policy = policy;
  IQDB_TRY_ASSIGN(auto writer,
                  FlatWriter::open_with(examples::FlatIndex(g_setup.dim, DistanceMetric::Euclidean),
                                        config, persist::OpenMode::Overwrite));
  for (std::uint64_t id = 0; id < records; ++id) {
    IQDB_TRY(writer.insert(id, vector_for(id, g_setup.dim)));
  }
  return writer;
}

PersistConfig replica_config(const std::filesystem::path& path) {
  PersistConfig config(path);
  config.verify = VerifyMode::Skip;  // a trusted replica: the same cost whatever the size
  return config;
}

// The floor of an idle refresh: what any follower must do to learn that
// nothing changed without help from the writer: stat the snapshot and the
// segment it follows.
void BM_StatFloor(benchmark::State& state) {
  auto writer = make_database("idle-floor", 100, FsyncPolicy::never());
  if (!writer) {
    state.SkipWithError(writer.error().to_string().c_str());
    return;
  }
  const auto snapshot = writer.value().config().path;
  auto segment = snapshot;
  segment += ".wal-0000000000000001";
  for (auto _ : state) {
    struct stat a {};
    struct stat b {};
    benchmark::DoNotOptimize(::stat(snapshot.c_str(), &a));
    benchmark::DoNotOptimize(::stat(segment.c_str(), &b));
  }
}

void BM_ReplicaRefreshIdle(benchmark::State& state) {
  auto writer = make_database("idle", 100, FsyncPolicy::never());
  if (!writer) {
    state.SkipWithError(writer.error().to_string().c_str());
    return;
  }
  auto replica = FlatReplica::open(replica_config(writer.value().config().path));
  if (!replica) {
    state.SkipWithError(replica.error().to_string().c_str());
    return;
  }
  for (auto _ : state) {
    auto refreshed = replica.value().refresh();
    if (!refreshed || refreshed.value().records != 0) {
      state.SkipWithError("an idle refresh applied records or failed");
      break;
    }
  }
}

// What a checkpoint leaves for a replica, staged (untimed) before each timed
// switch: a new snapshot renamed over the old one, the old segment removed,
// a new empty one started after the snapshot's LSN.
//   Hot: the new snapshot is one of two hard links to copies of the file, so
//     no file is ever freed and the page cache stays warm: the switch's own
//     cost, against BM_OpenFloor.
//   Checkpoint: as a writer's save, a new file each time (copied, fsynced,
//     renamed in), so the old snapshot's last reference is the replica's
//     previous generation, which a query has read (its page tables are
//     filled). Against a floor staged the same way.
class SwitchStage {
 public:
  enum class Mode { Hot, Checkpoint };

  SwitchStage(const SnapshotFile& file, Mode mode, std::string_view name)
      : file_(file),
        mode_(mode),
        dir_(g_setup.dir / fmt::format("replica-{}-{}", name, file.vectors)) {
    std::error_code error;
    std::filesystem::remove_all(dir_, error);
    std::filesystem::create_directories(dir_, error);
    path_ = dir_ / "db.iqdb";
    if (mode_ == Mode::Hot) {
      std::filesystem::create_hard_link(file.path, dir_ / "a.iqdb", error);
      std::filesystem::copy_file(file.path, dir_ / "b.iqdb", error);
    }
    ok_ = !error && next();
  }

  bool ok() const { return ok_; }
  const std::filesystem::path& path() const { return path_; }
  // The empty segment the last checkpoint started, and the one before it.
  std::filesystem::path segment() const { return persist::wal_segment_path(path_, segment_); }
  std::filesystem::path previous_segment() const {
    return persist::wal_segment_path(path_, segment_ - 1);
  }

  // The next checkpoint's files.
  bool next() {
    std::error_code error;
    const auto staged = dir_ / "staged";
    if (mode_ == Mode::Hot) {
      std::filesystem::create_hard_link(dir_ / (copy_ == 0 ? "a.iqdb" : "b.iqdb"), staged, error);
      copy_ ^= 1;
    } else {
      std::filesystem::copy_file(file_.path, staged, error);
      // Durable before it is renamed in, as a writer's save is.
      const int fd = ::open(staged.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::fsync(fd) != 0) error = std::error_code(errno, std::generic_category());
      if (fd >= 0) ::close(fd);
    }
    std::filesystem::rename(staged, path_, error);
    if (segment_ != 0) std::filesystem::remove(persist::wal_segment_path(path_, segment_), error);
    auto segment = persist::WalWriter::create(*persist::default_file_system(), path_, ++segment_,
                                              file_.header.wal_lsn + 1, false);
    return !error && segment && segment.value()->close();
  }

 private:
  const SnapshotFile& file_;
  const Mode mode_;
  const std::filesystem::path dir_;
  std::filesystem::path path_;
  std::uint64_t segment_ = 0;
  int copy_ = 0;
  bool ok_ = false;
};

// Reads one float per page of the generation's mapped vectors, as a scan
// does: its page tables are then filled.
void read_every_page(const FlatReplica& replica) {
  const auto view = replica.acquire();
  const auto vectors = view.index().base_vectors();
  float sum = 0;
  for (std::size_t i = 0; i < vectors.size(); i += 4096 / sizeof(float)) sum += vectors[i];
  benchmark::DoNotOptimize(sum);
}

// Timed: the refresh that switches to the staged snapshot. The previous
// generation is released on the library's release thread, off the refresh;
// the time then spent waiting for it is reported apart (release_ms, mean per
// switch), since it grows with what the old generation holds.
void time_switches(benchmark::State& state, const SnapshotFile* file, SwitchStage::Mode mode) {
  SwitchStage stage(*file, mode, mode == SwitchStage::Mode::Hot ? "switch" : "checkpoint");
  if (!stage.ok()) {
    state.SkipWithError("cannot stage the snapshot and its segment");
    return;
  }
  auto replica = FlatReplica::open(replica_config(stage.path()));
  if (!replica) {
    state.SkipWithError(replica.error().to_string().c_str());
    return;
  }
  double release_seconds = 0;
  for (auto _ : state) {
    if (mode == SwitchStage::Mode::Checkpoint) read_every_page(replica.value());
    if (!stage.next()) {
      state.SkipWithError("cannot stage the next snapshot");
      break;
    }
    // Timed by hand (PauseTiming() would add its own clock reads).
    const auto started = std::chrono::steady_clock::now();
    auto refreshed = replica.value().refresh();
    const auto switched = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(switched - started).count());
    if (!refreshed || !refreshed.value().switched) {
      state.SkipWithError("the refresh did not switch");
      break;
    }
    persist::detail::wait_for_background_releases();
    release_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - switched).count();
  }
  state.counters["release_ms"] =
      benchmark::Counter(release_seconds * 1e3 / static_cast<double>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(file->size()));
}

void BM_ReplicaSwitch(benchmark::State& state, const SnapshotFile* file) {
  time_switches(state, file, SwitchStage::Mode::Hot);
}

void BM_ReplicaCheckpointSwitch(benchmark::State& state, const SnapshotFile* file) {
  time_switches(state, file, SwitchStage::Mode::Checkpoint);
}

// The floor of BM_ReplicaCheckpointSwitch: the same staging, then a bare
// open, fstat, mmap, munmap and close of the new snapshot.
void BM_CheckpointOpenFloor(benchmark::State& state, const SnapshotFile* file) {
  SwitchStage stage(*file, SwitchStage::Mode::Checkpoint, "checkpoint-floor");
  if (!stage.ok()) {
    state.SkipWithError("cannot stage the snapshot and its segment");
    return;
  }
  for (auto _ : state) {
    if (!stage.next()) {
      state.SkipWithError("cannot stage the next snapshot");
      break;
    }
    const auto started = std::chrono::steady_clock::now();
    const int fd = ::open(stage.path().c_str(), O_RDONLY | O_CLOEXEC);
    struct stat info {};
    if (fd < 0 || ::fstat(fd, &info) != 0) {
      state.SkipWithError("cannot open the snapshot");
      break;
    }
    const auto size = static_cast<std::size_t>(info.st_size);
    void* address = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    benchmark::DoNotOptimize(address);
    if (address != MAP_FAILED) ::munmap(address, size);
    ::close(fd);
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
}

// A thread that unmaps what it is handed, as the library's release thread
// does with a retired generation: asleep until then.
class Unmapper {
 public:
  Unmapper() : thread_([this] { run(); }) {}
  Unmapper(const Unmapper&) = delete;
  Unmapper& operator=(const Unmapper&) = delete;
  ~Unmapper() {
    {
      std::lock_guard guard(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  void hand(void* address, std::size_t size) {
    {
      std::lock_guard guard(mutex_);
      address_ = address;
      size_ = size;
    }
    wake_.notify_one();
  }
  void drain() {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return address_ == nullptr; });
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stopping_ || address_ != nullptr; });
      if (address_ != nullptr) {
        ::munmap(address_, size_);
        address_ = nullptr;
        done_.notify_all();
      }
      if (stopping_) return;
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  void* address_ = nullptr;
  std::size_t size_ = 0;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is constructed
};

// The system work a switch does, staged as BM_ReplicaSwitch is: the stat of
// the snapshot (has it changed?), open, fstat, one 8 KiB read (the prefix
// and the header), mmap and close of the new one, the stats of the previous
// and the current segment (where its log starts), and handing the previous
// mapping to a sleeping thread that unmaps it. Beside BM_ReplicaSwitch
// (info): the share of a switch that is the kernel's, not the library's.
void BM_SwitchCallsFloor(benchmark::State& state, const SnapshotFile* file) {
  SwitchStage stage(*file, SwitchStage::Mode::Hot, "switch-calls");
  if (!stage.ok()) {
    state.SkipWithError("cannot stage the snapshot and its segment");
    return;
  }
  Unmapper unmapper;
  void* previous = nullptr;
  std::size_t previous_size = 0;
  std::vector<std::byte> prefix(8192);
  for (auto _ : state) {
    if (!stage.next()) {
      state.SkipWithError("cannot stage the next snapshot");
      break;
    }
    const auto started = std::chrono::steady_clock::now();
    struct stat info {};
    ::stat(stage.path().c_str(), &info);
    const int fd = ::open(stage.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fstat(fd, &info) != 0 ||
        ::pread(fd, prefix.data(), prefix.size(), 0) != static_cast<ssize_t>(prefix.size())) {
      state.SkipWithError("cannot open and read the snapshot");
      break;
    }
    const auto size = static_cast<std::size_t>(info.st_size);
    void* address = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    ::stat(stage.previous_segment().c_str(), &info);
    ::stat(stage.segment().c_str(), &info);
    if (previous != nullptr) unmapper.hand(previous, previous_size);
    const auto switched = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(switched - started).count());
    if (address == MAP_FAILED) {
      state.SkipWithError("cannot map the snapshot");
      break;
    }
    unmapper.drain();
    previous = address;
    previous_size = size;
  }
  unmapper.drain();
  if (previous != nullptr) ::munmap(previous, previous_size);
}

// Shared between the writer (this process) and the replica process: when
// each LSN was acknowledged and when the replica first saw it, in ns of
// CLOCK_MONOTONIC (the same clock in both processes).
struct VisibilityLog {
  static constexpr std::size_t kMaxRecords = 1 << 16;
  std::atomic<std::uint64_t> ready{0};
  std::atomic<std::uint64_t> stop{0};
  std::atomic<std::int64_t> acknowledged[kMaxRecords];
  std::atomic<std::int64_t> seen[kMaxRecords];
};

std::int64_t monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The replica process: waits for each next LSN (woken by the writer's
// control file) and stamps every LSN it sees when it first sees it.
[[noreturn]] void run_visibility_replica(const std::filesystem::path& path, VisibilityLog& log) {
  auto replica = FlatReplica::open(replica_config(path));
  if (!replica) ::_exit(1);
  log.ready.store(1);
  std::uint64_t last = replica.value().lsn();
  while (log.stop.load() == 0) {
    auto reached = replica.value().wait_for(last + 1, std::chrono::milliseconds(100));
    if (!reached) ::_exit(2);
    if (!reached.value()) continue;
    const std::uint64_t lsn = replica.value().lsn();
    const std::int64_t now = monotonic_ns();
    for (std::uint64_t seen = last + 1; seen <= lsn && seen < VisibilityLog::kMaxRecords; ++seen) {
      log.seen[seen].store(now);
    }
    last = lsn;
  }
  ::_exit(0);
}

double percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  return values[rank];
}

void BM_ReplicaVisibility(benchmark::State& state) {
  auto writer = make_database("visibility", 0, FsyncPolicy::always());
  if (!writer) {
    state.SkipWithError(writer.error().to_string().c_str());
    return;
  }
  void* shared = ::mmap(nullptr, sizeof(VisibilityLog), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) {
    state.SkipWithError("mmap");
    return;
  }
  auto* log = new (shared) VisibilityLog();
  const pid_t child = ::fork();
  if (child == 0) run_visibility_replica(writer.value().config().path, *log);
  while (log->ready.load() == 0) std::this_thread::yield();
  std::uint64_t id = 0;
  for (auto _ : state) {
    if (!writer.value().insert(id, vector_for(id, g_setup.dim))) {
      state.SkipWithError("insert failed");
      break;
    }
    const std::uint64_t lsn = writer.value().last_lsn();
    if (lsn < VisibilityLog::kMaxRecords) log->acknowledged[lsn].store(monotonic_ns());
    ++id;
  }
  // Let the replica see the last ones, then stop it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  const std::uint64_t last = std::min<std::uint64_t>(id, VisibilityLog::kMaxRecords - 1);
  while (last > 0 && log->seen[last].load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  log->stop.store(1);
  int status = 0;
  ::waitpid(child, &status, 0);
  std::vector<double> micros;
  std::uint64_t unseen = 0;
  for (std::uint64_t lsn = 1; lsn <= last; ++lsn) {
    const std::int64_t seen = log->seen[lsn].load();
    if (seen == 0) {
      ++unseen;
      continue;
    }
    // Seen before insert() returned (a replica may see a record as soon as
    // it is written): no delay.
    micros.push_back(std::max<double>(0, static_cast<double>(seen - log->acknowledged[lsn]) / 1e3));
  }
  ::munmap(shared, sizeof(VisibilityLog));
  state.counters["p50_us"] = percentile(micros, 0.50);
  state.counters["p99_us"] = percentile(micros, 0.99);
  state.counters["p999_us"] = percentile(micros, 0.999);
  state.counters["unseen"] = static_cast<double>(unseen);
}

// `replicas` processes each open a replica of `path`, apply `records` logged
// inserts, and run a query (touching every mapped vector); then their memory
// is read while they wait.
std::vector<ProcessMemory> replica_memory(const std::filesystem::path& path, int replicas) {
  return memory_of_children(replicas, [&path]() -> std::shared_ptr<const void> {
    auto replica = FlatReplica::open(replica_config(path));
    if (!replica) return nullptr;
    benchmark::DoNotOptimize(
        replica.value().acquire().index().search(vector_for(1, g_setup.dim), 10));
    return std::make_shared<FlatReplica>(std::move(replica).value());
  });
}

// A database at <dir>/replica-memory-<N>.iqdb: the N-vector snapshot and a
// log of `records` inserts after it.
persist::Result<PersistConfig> memory_database(const SnapshotFile& file, std::uint64_t records) {
  PersistConfig config(g_setup.dir / fmt::format("replica-memory-{}.iqdb", file.vectors));
  config.wal_enabled = true;
  config.fsync_policy = FsyncPolicy::never();
  config.verify = VerifyMode::Skip;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(g_setup.dir, error)) {
    if (entry.path().filename().string().starts_with(config.path.filename().string())) {
      std::filesystem::remove(entry.path(), error);
    }
  }
  std::filesystem::create_hard_link(file.path, config.path, error);
  if (error) return persist::fail(persist::ErrorKind::Io, error.message());
  IQDB_TRY_ASSIGN(auto writer, FlatWriter::load(config));
  for (std::uint64_t i = 0; i < records; ++i) {
    const std::uint64_t id = file.vectors + i;
    IQDB_TRY(writer.insert(id, vector_for(id, g_setup.dim)));
  }
  return config;
}

void BM_ReplicaMemory(benchmark::State& state, const SnapshotFile* file) {
  constexpr int kReplicas = 4;
  constexpr std::uint64_t kRecords = 1000;
  auto config = memory_database(*file, kRecords);
  if (!config) {
    state.SkipWithError(config.error().to_string().c_str());
    return;
  }
  std::vector<ProcessMemory> memory;
  for (auto _ : state) memory = replica_memory(config.value().path, kReplicas);
  if (memory.size() != kReplicas) {
    state.SkipWithError("a replica process failed");
    return;
  }
  const MemorySummary summary = summarize(memory);
  state.counters["private_kib"] = summary.most_private_kib;
  state.counters["pss_kib"] = summary.mean_pss_kib;
  state.counters["replicas"] = kReplicas;
}

}  // namespace

void register_replica_benchmarks(const std::filesystem::path& dir, std::uint32_t dim,
                                 const std::vector<SnapshotFile>& files,
                                 const SnapshotFile& memory_small) {
  g_setup.dir = dir;
  g_setup.dim = dim;
  for (auto* family :
       {benchmark::RegisterBenchmark("BM_StatFloor", BM_StatFloor),
        benchmark::RegisterBenchmark("BM_ReplicaRefreshIdle", BM_ReplicaRefreshIdle)}) {
    family->Unit(benchmark::kMicrosecond)->UseRealTime();
  }
  for (const SnapshotFile& file : files) {
    for (auto* family :
         {benchmark::RegisterBenchmark("BM_ReplicaSwitch", BM_ReplicaSwitch, &file),
          benchmark::RegisterBenchmark("BM_SwitchCallsFloor", BM_SwitchCallsFloor, &file)}) {
      family->Arg(static_cast<std::int64_t>(file.vectors))
          ->ArgName("vectors")
          ->Unit(benchmark::kMicrosecond)
          ->UseManualTime();
    }
    // Each iteration copies and fsyncs a snapshot: a fixed count keeps the
    // 1M run to a few GB of copies.
    const auto checkpoints = std::clamp<std::int64_t>(
        5'000'000 / static_cast<std::int64_t>(std::max<std::uint64_t>(file.vectors, 1)), 10, 50);
    for (auto* family :
         {benchmark::RegisterBenchmark("BM_ReplicaCheckpointSwitch", BM_ReplicaCheckpointSwitch,
                                       &file),
          benchmark::RegisterBenchmark("BM_CheckpointOpenFloor", BM_CheckpointOpenFloor, &file)}) {
      family->Arg(static_cast<std::int64_t>(file.vectors))
          ->ArgName("vectors")
          ->Iterations(checkpoints)
          ->Unit(benchmark::kMicrosecond)
          ->UseManualTime();
    }
  }
  benchmark::RegisterBenchmark("BM_ReplicaVisibility", BM_ReplicaVisibility)
      ->Iterations(1000)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  for (const SnapshotFile* file : {&files.front(), &memory_small}) {
    if (file != &files.front() && file->vectors == files.front().vectors) break;
    benchmark::RegisterBenchmark("BM_ReplicaMemory", BM_ReplicaMemory, file)
        ->Arg(static_cast<std::int64_t>(file->vectors))
        ->ArgName("vectors")
        ->Iterations(1)
        ->UseRealTime();
  }
}

void remove_replica_files(const std::filesystem::path& dir) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (entry.path().filename().string().starts_with("replica-")) {
      std::filesystem::remove_all(entry.path(), error);
    }
  }
}

}  // namespace iqdb::bench
