// Write-ahead-log benchmarks and their floors (benchmarks/README.md, "Write-ahead
// log"). The per-record pairs log into an O(1) mock index (CountingIndex, below),
// so that what is measured is the log and not the index: 128-float vectors with
// u64 ids, no metadata, i.e. the library's 554-byte frame (24-byte frame header
// + 530-byte insert body) per record. Every floor writes frames of exactly that
// size, CRC-32 (ISA-L, as the library) included, with the least system calls the
// operating system allows; each floor/subject pair does the same number of
// records per iteration, and items_per_second is records per second.
//
// The checkpoint pair runs on the example FlatIndex instead, at the --vectors
// scale: a checkpoint must cost what a plain save of the same index costs.
//
// The resynchronisation pair scans segments built in memory with the
// library's scanner (src/wal/wal_reader.h): a crafted one, whose damage makes the
// scanner search, against an intact one of the same size.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <isa-l/crc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "benchmarks.h"
#include "iqdb/persist/persisted_index.h"
#include "iqdb/persist/replica.h"
#include "iqdb/persist/write_batch.h"
#include "wal/wal_reader.h"

namespace iqdb::bench {
namespace {

using examples::FlatIndex;
using persist::FsyncPolicy;
using persist::OpenMode;
using persist::PersistConfig;
using persist::PersistedIndex;
using persist::Replica;

// Every file these benchmarks create starts with this; remove_wal_files() deletes them.
constexpr std::string_view kWalPrefix = "wal-";
// Single-save repetitions of the checkpoint pair.
constexpr int kCheckpointRepetitions = 9;
constexpr std::size_t kBatchSize = 64;
// The log's layout (docs/FORMAT.md, "Write-ahead log", format version 2): a
// 48-byte segment header, then frames of a 24-byte header (CRC-32 of the rest
// of the frame, u32 body length, u64 LSN, u64 durable LSN) and the body. The
// replay setup checks that the library's frames are this size.
constexpr std::size_t kSegmentHeaderSize = 48;
constexpr std::size_t kFrameHeaderSize = 24;
constexpr DistanceMetric kMetric = DistanceMetric::Cosine;

// ---------------------------------------------------------------------------
// The O(1) mock index: it checks the dimension and counts. Stream persistence only;
// its payload is u32 dim, u8 metric, u64 count.
class CountingIndex {
 public:
  static constexpr std::string_view kIndexType = "bench-counting";

  CountingIndex(std::size_t dim, DistanceMetric metric) : dim_(dim), metric_(metric) {}

  IndexResult<void> insert(const VectorId&, std::span<const float> vector, const Metadata&) {
    if (vector.size() != dim_) {
      return IndexError{IndexErrc::DimensionMismatch,
                        fmt::format("vector has {} floats, expected {}", vector.size(), dim_)};
    }
    ++size_;
    return iqdb::persist::success();
  }
  IndexResult<void> remove(const VectorId& id) {
    if (size_ == 0) return IndexError{IndexErrc::IdNotFound, "no id " + id.to_string()};
    --size_;
    return iqdb::persist::success();
  }
  std::size_t size() const { return size_; }
  std::size_t dim() const { return dim_; }
  DistanceMetric metric() const { return metric_; }

  persist::Result<void> save_to(persist::StreamWriter& out) const {
    IQDB_TRY(out.write_value(static_cast<std::uint32_t>(dim_)));
    IQDB_TRY(out.write_value(static_cast<std::uint8_t>(metric_)));
    return out.write_value(static_cast<std::uint64_t>(size_));
  }
  static persist::Result<CountingIndex> load_from(persist::StreamReader& in) {
    IQDB_TRY_ASSIGN(const auto dim, in.read_value<std::uint32_t>());
    IQDB_TRY_ASSIGN(const auto tag, in.read_value<std::uint8_t>());
    IQDB_TRY_ASSIGN(const auto count, in.read_value<std::uint64_t>());
    const auto metric = metric_from_tag(tag);
    if (dim == 0 || !metric) {
      return persist::fail(persist::ErrorKind::InvalidPayload, "bench-counting: bad shape");
    }
    CountingIndex index(dim, *metric);
    index.size_ = count;
    return index;
  }

 private:
  std::size_t dim_;
  DistanceMetric metric_;
  std::size_t size_ = 0;
};
static_assert(persist::Persistable<CountingIndex>);

using WalDb = PersistedIndex<CountingIndex>;

// What the registered benchmarks share; set once by register_wal_benchmarks().
struct WalSetup {
  std::filesystem::path dir;
  std::uint32_t dim = 128;
  WalBenchSizes sizes;
  std::vector<float> vector;  // the one vector every per-record benchmark logs
};
WalSetup g_setup;

std::filesystem::path wal_path(std::string_view name) {
  return g_setup.dir / fmt::format("{}{}", kWalPrefix, name);
}

// The log segment file `number` of the snapshot at `snapshot` (docs/FORMAT.md).
std::filesystem::path segment_path(const std::filesystem::path& snapshot, std::uint64_t number) {
  return std::filesystem::path(fmt::format("{}.wal-{:016x}", snapshot.string(), number));
}

PersistConfig wal_config(std::string_view name, FsyncPolicy policy) {
  PersistConfig config(wal_path(name));
  config.wal_enabled = true;
  config.fsync_policy = policy;
  return config;
}

// Writes back everything dirty on the data directory's file system, so that a
// benchmark does not pay for the writeback of what ran before it: under
// data=ordered (ext4's default) a journal commit, i.e. an fdatasync that
// extends a file, waits for the data of blocks allocated meanwhile, and the
// never() benchmarks leave hundreds of MiB dirty. Called untimed, by thread 0,
// at the start of every benchmark here.
void flush_file_system() {
  const int fd = ::open(g_setup.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::syncfs(fd);
  ::close(fd);
}

// Removes this run's files "wal-<name>*" (a snapshot and its log segments),
// dropping their dirty pages instead of leaving them to writeback.
void remove_files_named(std::string_view name) {
  const std::string prefix = fmt::format("{}{}", kWalPrefix, name);
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(g_setup.dir, error)) {
    if (entry.path().filename().string().starts_with(prefix)) {
      std::filesystem::remove(entry.path(), error);
    }
  }
}

void skip_with_errno(benchmark::State& state, const char* what) {
  const std::string message = std::string(what) + ": " + std::strerror(errno);
  state.SkipWithError(message.c_str());
}

// ---------------------------------------------------------------------------
// The floors' frames: byte for byte the size of the library's insert frame.

template <class T>
void put_at(std::byte* out, T value) {
  std::memcpy(out, &value, sizeof(T));
}

// type u8, id tag u8, id u64, dim u32, dim x f32, metadata count u32.
std::size_t insert_body_size(std::size_t dim) { return 1 + 1 + 8 + 4 + dim * sizeof(float) + 4; }
std::size_t insert_frame_size(std::size_t dim) { return kFrameHeaderSize + insert_body_size(dim); }

// One insert frame into `out` (insert_frame_size(vector.size()) bytes): the CRC
// covers the length, the LSNs and the body, as in the library's frames.
void encode_frame(std::byte* out, std::uint64_t lsn, std::uint64_t durable_lsn, std::uint64_t id,
                  std::span<const float> vector) {
  const std::size_t body_size = insert_body_size(vector.size());
  std::byte* body = out + kFrameHeaderSize;
  body[0] = std::byte{1};  // insert
  body[1] = std::byte{0};  // u64 id
  put_at(body + 2, id);
  put_at(body + 10, static_cast<std::uint32_t>(vector.size()));
  std::memcpy(body + 14, vector.data(), vector.size_bytes());
  put_at(body + 14 + vector.size_bytes(), std::uint32_t{0});
  put_at(out + 4, static_cast<std::uint32_t>(body_size));
  put_at(out + 8, lsn);
  put_at(out + 16, durable_lsn);
  put_at(out, static_cast<std::uint32_t>(
                  crc32_gzip_refl(0, reinterpret_cast<const unsigned char*>(out + 4),
                                  kFrameHeaderSize - 4 + body_size)));
}

bool write_all(int fd, std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
  return true;
}

void set_records(benchmark::State& state, std::size_t records_per_iteration) {
  const auto records = static_cast<std::int64_t>(state.iterations() *
                                                 static_cast<std::int64_t>(records_per_iteration));
  state.SetItemsProcessed(records);
  state.SetBytesProcessed(records * static_cast<std::int64_t>(insert_frame_size(g_setup.dim)));
}

// The floors of the per-record pairs: `records` frames built in one buffer,
// one O_APPEND write(2), and with `sync` one fdatasync. With several threads
// they share the file (O_APPEND keeps each write whole) and an LSN counter.
void run_append_floor(benchmark::State& state, std::string_view name, std::size_t records,
                      bool sync) {
  static std::atomic<int> shared_fd{-1};
  static std::atomic<std::uint64_t> next_lsn{1};
  const std::filesystem::path path = wal_path(name);
  if (state.thread_index() == 0) {
    ::unlink(path.c_str());
    flush_file_system();
    shared_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    next_lsn = 1;
  }
  const std::size_t frame_size = insert_frame_size(g_setup.dim);
  std::vector<std::byte> frames(records * frame_size);
  for (auto _ : state) {
    const int fd = shared_fd.load(std::memory_order_relaxed);
    if (fd < 0) {
      skip_with_errno(state, "open");
      break;
    }
    const std::uint64_t first = next_lsn.fetch_add(records, std::memory_order_relaxed);
    for (std::size_t i = 0; i < records; ++i) {
      // As the log under always(): every earlier frame was synced.
      const std::uint64_t lsn = first + i;
      encode_frame(frames.data() + i * frame_size, lsn, sync ? first - 1 : 0, lsn, g_setup.vector);
    }
    if (!write_all(fd, frames) || (sync && ::fdatasync(fd) != 0)) {
      skip_with_errno(state, sync ? "write and fdatasync" : "write");
      break;
    }
  }
  set_records(state, records);
  if (state.thread_index() == 0) {
    if (const int fd = shared_fd.exchange(-1); fd >= 0) ::close(fd);
    ::unlink(path.c_str());
  }
}

void BM_WalAppendFloor(benchmark::State& state) {
  run_append_floor(state, "floor-append", 1, false);
}
void BM_WalSyncFloor(benchmark::State& state) { run_append_floor(state, "floor-sync", 1, true); }
void BM_WalBatchFloor(benchmark::State& state) {
  run_append_floor(state, "floor-batch", kBatchSize, true);
}

// ---------------------------------------------------------------------------
// The subjects: one PersistedIndex<CountingIndex> with the log on, created
// afresh (OpenMode::Overwrite) by thread 0 for each run and shared by all the
// run's threads.

std::unique_ptr<WalDb>& shared_db() {
  static std::unique_ptr<WalDb> db;
  return db;
}

void open_shared_db(benchmark::State& state, std::string_view name, FsyncPolicy policy) {
  if (state.thread_index() != 0) return;
  remove_files_named(name);
  flush_file_system();
  auto db = WalDb::open_with(CountingIndex(g_setup.dim, kMetric), wal_config(name, policy),
                             OpenMode::Overwrite);
  if (!db) {
    state.SkipWithError(db.error().to_string().c_str());
    return;
  }
  shared_db() = std::make_unique<WalDb>(std::move(db).value());
}

void close_shared_db(benchmark::State& state, std::string_view name) {
  if (state.thread_index() != 0) return;
  shared_db().reset();
  remove_files_named(name);
}

// insert() one record per iteration; ids are unique across the run's threads.
void run_inserts(benchmark::State& state, std::string_view name, FsyncPolicy policy) {
  static std::atomic<std::uint64_t> next_id{0};
  open_shared_db(state, name, policy);
  for (auto _ : state) {
    WalDb* db = shared_db().get();
    if (db == nullptr) {
      state.SkipWithError("no database");
      break;
    }
    if (auto inserted = db->insert(next_id.fetch_add(1, std::memory_order_relaxed), g_setup.vector);
        !inserted) {
      state.SkipWithError(inserted.error().to_string().c_str());
      break;
    }
  }
  set_records(state, 1);
  close_shared_db(state, name);
}

void BM_WalInsertNever(benchmark::State& state) {
  run_inserts(state, "insert-never.iqdb", FsyncPolicy::never());
}
void BM_WalInsertAlways(benchmark::State& state) {
  run_inserts(state, "insert-always.iqdb", FsyncPolicy::always());
}

// apply_batch() of kBatchSize inserts per iteration, the batch built in the loop
// as a caller would.
void BM_WalBatch64(benchmark::State& state) {
  constexpr std::string_view kName = "batch-always.iqdb";
  open_shared_db(state, kName, FsyncPolicy::always());
  WalDb* db = shared_db().get();
  persist::WriteBatch batch;
  std::uint64_t next_id = 0;
  for (auto _ : state) {
    if (db == nullptr) {
      state.SkipWithError("no database");
      break;
    }
    batch.clear();
    for (std::size_t i = 0; i < kBatchSize; ++i) batch.insert(next_id++, g_setup.vector);
    if (auto applied = db->apply_batch(batch); !applied) {
      state.SkipWithError(applied.error().to_string().c_str());
      break;
    }
  }
  set_records(state, kBatchSize);
  close_shared_db(state, kName);
}

// ---------------------------------------------------------------------------
// Replay: a snapshot of an empty CountingIndex and one log segment of
// replay_records inserts, written once (FsyncPolicy::never(); the page cache
// is hot) and loaded in every iteration.

const std::filesystem::path& replay_snapshot() {
  static std::filesystem::path path;
  if (!path.empty()) return path;
  const PersistConfig config = wal_config("replay.iqdb", FsyncPolicy::never());
  auto db = WalDb::open_with(CountingIndex(g_setup.dim, kMetric), config, OpenMode::Overwrite);
  if (!db) return path;
  for (std::uint64_t id = 0; id < g_setup.sizes.replay_records; ++id) {
    if (!db.value().insert(id, g_setup.vector)) return path;
  }
  // The floors write frames of insert_frame_size() bytes: check that it is
  // what the library writes.
  std::error_code error;
  const auto size = std::filesystem::file_size(segment_path(config.path, 1), error);
  if (error ||
      size != kSegmentHeaderSize + g_setup.sizes.replay_records * insert_frame_size(g_setup.dim)) {
    std::fprintf(stderr, "iqdb_persist_bench: the log's frames are not %zu bytes each\n",
                 insert_frame_size(g_setup.dim));
    return path;
  }
  path = config.path;
  return path;
}

void set_replay_counters(benchmark::State& state) {
  const auto records = static_cast<std::int64_t>(g_setup.sizes.replay_records);
  state.SetItemsProcessed(state.iterations() * records);
  state.SetBytesProcessed(state.iterations() * records *
                          static_cast<std::int64_t>(insert_frame_size(g_setup.dim)));
  state.counters["records"] = static_cast<double>(records);
}

// The least a replay can do: map the segment, check each frame's CRC and LSN,
// copy its vector out (it is not aligned for float) and count it, unmap.
void BM_WalScanFloor(benchmark::State& state) {
  const std::filesystem::path& snapshot = replay_snapshot();
  if (snapshot.empty()) {
    state.SkipWithError("cannot write the log to replay");
    return;
  }
  const std::filesystem::path segment = segment_path(snapshot, 1);
  std::vector<float> vector(g_setup.dim);
  flush_file_system();
  for (auto _ : state) {
    const int fd = ::open(segment.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat info {};
    if (fd < 0 || ::fstat(fd, &info) != 0) {
      skip_with_errno(state, "open");
      break;
    }
    const auto size = static_cast<std::size_t>(info.st_size);
    void* address = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (address == MAP_FAILED) {
      ::close(fd);
      skip_with_errno(state, "mmap");
      break;
    }
    const auto* bytes = static_cast<const unsigned char*>(address);
    std::size_t offset = kSegmentHeaderSize;
    std::uint64_t expected_lsn = 1;
    std::uint64_t applied = 0;
    bool intact = true;
    while (offset + kFrameHeaderSize <= size) {
      std::uint32_t crc = 0, length = 0;
      std::uint64_t lsn = 0;
      std::memcpy(&crc, bytes + offset, 4);
      std::memcpy(&length, bytes + offset + 4, 4);
      std::memcpy(&lsn, bytes + offset + 8, 8);
      if (length < 14 || length > size - offset - kFrameHeaderSize || lsn != expected_lsn ||
          crc32_gzip_refl(0, bytes + offset + 4, kFrameHeaderSize - 4 + length) != crc) {
        intact = false;
        break;
      }
      const unsigned char* body = bytes + offset + kFrameHeaderSize;
      std::memcpy(vector.data(), body + 14, std::min<std::size_t>(length - 14, vector.size() * 4));
      benchmark::DoNotOptimize(vector.data());
      ++applied;
      ++expected_lsn;
      offset += kFrameHeaderSize + length;
    }
    ::munmap(address, size);
    ::close(fd);
    if (!intact || applied != g_setup.sizes.replay_records) {
      state.SkipWithError("the replay log is not what was written");
      break;
    }
  }
  set_replay_counters(state);
}

void BM_WalReplay(benchmark::State& state) {
  const std::filesystem::path& snapshot = replay_snapshot();
  if (snapshot.empty()) {
    state.SkipWithError("cannot write the log to replay");
    return;
  }
  PersistConfig config(snapshot);
  config.wal_enabled = true;
  config.fsync_policy = FsyncPolicy::never();
  // Each load starts a new (empty) segment after the replayed one; it is
  // removed between iterations so that every load sees the same log.
  const std::filesystem::path started = segment_path(snapshot, 2);
  flush_file_system();
  for (auto _ : state) {
    auto loaded = WalDb::load(config);
    if (!loaded) {
      state.SkipWithError(loaded.error().to_string().c_str());
      break;
    }
    if (loaded.value().index().size() != g_setup.sizes.replay_records) {
      state.SkipWithError("the replay did not insert every record");
      break;
    }
    state.PauseTiming();
    { auto done = std::move(loaded); }
    ::unlink(started.c_str());
    state.ResumeTiming();
  }
  set_replay_counters(state);
}

// ---------------------------------------------------------------------------
// Resynchronisation: scan_wal_segment() of a crafted segment against an intact
// one of the same size, both built once in memory (no file, no page cache).
// The intact one is kResyncSegmentBytes of insert frames; the crafted one has
// the same header and a frame header every 24 bytes that fails nothing but
// its CRC (the next LSN, durable LSN 0, a body reaching to the end), the worst
// case for the search after a bad frame: without the scan's CRC budget
// (docs/FORMAT.md, "Damage") it would CRC about size^2 / 48 bytes.

constexpr std::size_t kResyncSegmentBytes = std::size_t{64} << 20;

struct ResyncSegments {
  std::vector<std::byte> intact;
  std::vector<std::byte> crafted;
  std::uint64_t intact_frames = 0;
};

// A segment header: segment 1, first LSN 1 (docs/FORMAT.md, "Segment header").
void put_segment_header(std::byte* out) {
  std::memset(out, 0, kSegmentHeaderSize);
  std::memcpy(out, "IQDBWLOG", 8);
  put_at(out + 8, std::uint32_t{2});
  put_at(out + 12, std::uint32_t{1});
  put_at(out + 16, std::uint64_t{1});
  put_at(out + 24, std::uint64_t{1});
  put_at(out + 44, static_cast<std::uint32_t>(
                       crc32_gzip_refl(0, reinterpret_cast<const unsigned char*>(out), 44)));
}

ResyncSegments make_resync_segments() {
  ResyncSegments segments;
  const std::size_t frame = insert_frame_size(g_setup.dim);
  segments.intact_frames = (kResyncSegmentBytes - kSegmentHeaderSize) / frame;
  const std::size_t size = kSegmentHeaderSize + segments.intact_frames * frame;
  segments.intact.resize(size);
  put_segment_header(segments.intact.data());
  for (std::uint64_t i = 0; i < segments.intact_frames; ++i) {
    encode_frame(segments.intact.data() + kSegmentHeaderSize + i * frame, i + 1, i, i,
                 g_setup.vector);
  }
  segments.crafted.assign(segments.intact.begin(), segments.intact.begin() + kSegmentHeaderSize);
  segments.crafted.resize(size);
  for (std::size_t at = kSegmentHeaderSize; at + kFrameHeaderSize < size; at += kFrameHeaderSize) {
    std::byte* header = segments.crafted.data() + at;
    put_at(header + 4, static_cast<std::uint32_t>(size - at - kFrameHeaderSize));
    put_at(header + 8, std::uint64_t{1});
  }
  return segments;
}

const ResyncSegments& resync_segments() {
  static const ResyncSegments segments = make_resync_segments();
  return segments;
}

// Scans `segment` once per iteration; `check` says whether the scan is the
// one expected. Counter crc_MiB: the frame-CRC input of one scan.
template <class Check>
void run_segment_scan(benchmark::State& state, const std::vector<std::byte>& segment, Check check) {
  std::uint64_t crc_bytes = 0;
  for (auto _ : state) {
    auto scan = persist::scan_wal_segment(segment, "resync.wal");
    if (!scan || !check(scan.value())) {
      state.SkipWithError("the segment did not scan as built");
      break;
    }
    crc_bytes = scan.value().crc_bytes;
    benchmark::DoNotOptimize(scan.value().frame_count);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(segment.size()));
  state.counters["crc_MiB"] = static_cast<double>(crc_bytes) / (1 << 20);
}

// A replica opening the same database: the snapshot, then every logged
// record applied as a replica tails a live log (frame by frame, by position).
void BM_ReplicaCatchUp(benchmark::State& state) {
  const std::filesystem::path& snapshot = replay_snapshot();
  if (snapshot.empty()) {
    state.SkipWithError("cannot write the log to replay");
    return;
  }
  const PersistConfig config(snapshot);
  flush_file_system();
  for (auto _ : state) {
    auto replica = Replica<CountingIndex>::open(config);
    if (!replica) {
      state.SkipWithError(replica.error().to_string().c_str());
      break;
    }
    if (replica.value().acquire().index().size() != g_setup.sizes.replay_records) {
      state.SkipWithError("the replica did not apply every record");
      break;
    }
    state.PauseTiming();
    { auto done = std::move(replica); }
    state.ResumeTiming();
  }
  set_replay_counters(state);
}

void BM_WalScanIntact(benchmark::State& state) {
  const ResyncSegments& segments = resync_segments();
  run_segment_scan(state, segments.intact, [&](const persist::WalSegmentScan& scan) {
    return scan.intact() && scan.frame_count == segments.intact_frames;
  });
}

void BM_WalResyncCrafted(benchmark::State& state) {
  run_segment_scan(state, resync_segments().crafted, [](const persist::WalSegmentScan& scan) {
    return scan.damages.size() == 1 && scan.damages[0].kind == persist::WalDamageKind::Unscanned;
  });
}

// ---------------------------------------------------------------------------
// Checkpoint: an index of base + extra vectors whose last `extra` arrived
// through the log, checkpointed, against a plain save (log off) of an equal
// index. Both under FsyncPolicy::never(), so that the comparison is of the
// work and not of the disk. Built once (a few seconds at full size) and kept.

struct CheckpointData {
  std::unique_ptr<PersistedIndex<FlatIndex>> plain;   // log off, base + extra vectors
  std::unique_ptr<PersistedIndex<FlatIndex>> logged;  // log on, base + extra via the log
  std::string error;
};

CheckpointData& checkpoint_data() {
  static CheckpointData data;
  if (data.plain || !data.error.empty()) return data;
  const std::uint64_t base = g_setup.sizes.checkpoint_base;
  const std::uint64_t total = base + g_setup.sizes.checkpoint_extra;
  PersistConfig plain_config(wal_path(fmt::format("plain-save-{}x{}.iqdb", total, g_setup.dim)));
  plain_config.fsync_policy = FsyncPolicy::never();
  auto plain = PersistedIndex<FlatIndex>::open_with(make_index(total, g_setup.dim), plain_config);
  if (!plain) {
    data.error = plain.error().to_string();
    return data;
  }
  auto logged = PersistedIndex<FlatIndex>::open_with(
      make_index(base, g_setup.dim),
      wal_config(fmt::format("checkpoint-{}x{}.iqdb", total, g_setup.dim), FsyncPolicy::never()),
      OpenMode::Overwrite);
  if (!logged) {
    data.error = logged.error().to_string();
    return data;
  }
  data.plain = std::make_unique<PersistedIndex<FlatIndex>>(std::move(plain).value());
  data.logged = std::make_unique<PersistedIndex<FlatIndex>>(std::move(logged).value());
  return data;
}

// Brings the logged index to base + extra vectors with the last `extra` in
// the log: removes them first if they are there (after an earlier
// checkpoint), then inserts them, with the same vectors as the plain index.
persist::Result<void> refill_log(CheckpointData& data) {
  const std::uint64_t base = g_setup.sizes.checkpoint_base;
  const std::uint64_t total = base + g_setup.sizes.checkpoint_extra;
  PersistedIndex<FlatIndex>& db = *data.logged;
  if (db.index().size() == total) {
    for (std::uint64_t id = total; id-- > base;) IQDB_TRY(db.remove(id));
  }
  const FlatIndex& plain = data.plain->index();
  for (std::uint64_t id = base; id < total; ++id) {
    const auto vector = plain.find(id);
    if (!vector) return persist::fail(persist::ErrorKind::NotFound, "the plain index lost an id");
    IQDB_TRY(db.insert(id, *vector));
  }
  return iqdb::persist::success();
}

// The plain index's side of refill_log(): the same removes and inserts of
// the last `extra` vectors, made on the index directly (no log), so that both
// benchmarks leave the machine alike before their timed save. It matters on
// a VM that hands freed memory back to the host: how long a save takes
// depends on how long ago the page cache it reuses was freed.
persist::Result<void> refill_plain(CheckpointData& data) {
  const std::uint64_t base = g_setup.sizes.checkpoint_base;
  const std::uint64_t total = base + g_setup.sizes.checkpoint_extra;
  FlatIndex& index = data.plain->index_mut();
  const std::size_t dim = g_setup.dim;
  std::vector<float> extra;
  extra.reserve((total - base) * dim);
  for (std::uint64_t id = base; id < total; ++id) {
    const auto vector = index.find(id);
    if (!vector) return persist::fail(persist::ErrorKind::NotFound, "the plain index lost an id");
    extra.insert(extra.end(), vector->begin(), vector->end());
  }
  for (std::uint64_t id = total; id-- > base;) {
    if (auto removed = index.remove(id); !removed)
      return persist::PersistError::from_index(removed.error());
  }
  for (std::uint64_t id = base; id < total; ++id) {
    const std::span<const float> vector(extra.data() + (id - base) * dim, dim);
    if (auto inserted = index.insert(id, vector, {}); !inserted) {
      return persist::PersistError::from_index(inserted.error());
    }
  }
  return iqdb::persist::success();
}

persist::Result<void> refill_both(CheckpointData& data) {
  IQDB_TRY(refill_log(data));
  return refill_plain(data);
}

// The checkpoint's reference: save() of an equal index with the log off.
void BM_WalPlainSave(benchmark::State& state) {
  CheckpointData& data = checkpoint_data();
  if (!data.plain) {
    state.SkipWithError(data.error.c_str());
    return;
  }
  // An untimed first save, so that every timed one replaces a snapshot.
  if (auto saved = data.plain->save(); !saved) {
    state.SkipWithError(saved.error().to_string().c_str());
    return;
  }
  for (auto _ : state) {
    state.PauseTiming();
    auto refilled = refill_both(data);
    flush_file_system();
    state.ResumeTiming();
    if (!refilled) {
      state.SkipWithError(refilled.error().to_string().c_str());
      break;
    }
    if (auto saved = data.plain->save(); !saved) {
      state.SkipWithError(saved.error().to_string().c_str());
      break;
    }
  }
}

void BM_WalCheckpoint(benchmark::State& state) {
  CheckpointData& data = checkpoint_data();
  if (!data.logged) {
    state.SkipWithError(data.error.c_str());
    return;
  }
  const std::uint64_t total = g_setup.sizes.checkpoint_base + g_setup.sizes.checkpoint_extra;
  for (auto _ : state) {
    state.PauseTiming();
    auto refilled = refill_both(data);
    flush_file_system();
    state.ResumeTiming();
    if (!refilled) {
      state.SkipWithError(refilled.error().to_string().c_str());
      break;
    }
    if (data.logged->index().size() != total) {
      state.SkipWithError("the logged index has the wrong size");
      break;
    }
    if (auto done = data.logged->checkpoint(); !done) {
      state.SkipWithError(done.error().to_string().c_str());
      break;
    }
  }
}

}  // namespace

WalBenchSizes wal_bench_sizes(std::uint64_t vectors) {
  WalBenchSizes sizes;
  sizes.replay_records = std::max<std::uint64_t>(1000, vectors / 5);
  sizes.checkpoint_base = vectors;
  sizes.checkpoint_extra = std::max<std::uint64_t>(1, vectors / 10);
  return sizes;
}

void register_wal_benchmarks(const std::filesystem::path& dir, std::uint64_t vectors,
                             std::uint32_t dim) {
  g_setup.dir = dir;
  g_setup.dim = dim;
  g_setup.sizes = wal_bench_sizes(vectors);
  g_setup.vector.resize(dim);
  for (std::uint32_t i = 0; i < dim; ++i) {
    g_setup.vector[i] = static_cast<float>(i % 17) / 17.0f - 0.5f;
  }

  const auto per_record = [](benchmark::internal::Benchmark* family) {
    return family->UseRealTime()->Unit(benchmark::kMicrosecond);
  };
  per_record(benchmark::RegisterBenchmark("BM_WalAppendFloor", BM_WalAppendFloor));
  per_record(benchmark::RegisterBenchmark("BM_WalInsertNever", BM_WalInsertNever));
  for (auto* family : {benchmark::RegisterBenchmark("BM_WalSyncFloor", BM_WalSyncFloor),
                       benchmark::RegisterBenchmark("BM_WalInsertAlways", BM_WalInsertAlways)}) {
    per_record(family)->Threads(1)->Threads(2);
  }
  per_record(benchmark::RegisterBenchmark("BM_WalBatchFloor", BM_WalBatchFloor));
  per_record(benchmark::RegisterBenchmark("BM_WalBatch64", BM_WalBatch64));
  for (auto* family : {benchmark::RegisterBenchmark("BM_WalScanFloor", BM_WalScanFloor),
                       benchmark::RegisterBenchmark("BM_WalReplay", BM_WalReplay),
                       benchmark::RegisterBenchmark("BM_ReplicaCatchUp", BM_ReplicaCatchUp)}) {
    family->UseRealTime()->Unit(benchmark::kMillisecond);
  }

  for (auto* family : {benchmark::RegisterBenchmark("BM_WalScanIntact", BM_WalScanIntact),
                       benchmark::RegisterBenchmark("BM_WalResyncCrafted", BM_WalResyncCrafted)}) {
    family->UseRealTime()->Unit(benchmark::kMillisecond);
    family->ComputeStatistics("min", [](const std::vector<double>& times) {
      return times.empty() ? 0.0 : *std::min_element(times.begin(), times.end());
    });
  }

  const auto total =
      static_cast<std::int64_t>(g_setup.sizes.checkpoint_base + g_setup.sizes.checkpoint_extra);
  for (auto* family : {benchmark::RegisterBenchmark("BM_WalPlainSave", BM_WalPlainSave),
                       benchmark::RegisterBenchmark("BM_WalCheckpoint", BM_WalCheckpoint)}) {
    // One save per repetition, compared on the fastest (benchmarks/README.md).
    family->Arg(total)->ArgName("vectors")->UseRealTime()->Unit(benchmark::kMillisecond);
    family->Iterations(1)->Repetitions(kCheckpointRepetitions);
    family->ComputeStatistics("min", [](const std::vector<double>& times) {
      return times.empty() ? 0.0 : *std::min_element(times.begin(), times.end());
    });
  }
}

void remove_wal_files(const std::filesystem::path& dir) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (entry.path().filename().string().starts_with(kWalPrefix)) {
      std::filesystem::remove(entry.path(), error);
    }
  }
}

}  // namespace iqdb::bench
