#include "demo/demo_wal.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "flat_index.h"
#include "iqdb/persist.h"
#include "output/stopwatch.h"
#include "output/text_format.h"

namespace iqdb::tools {
namespace {

using examples::FlatIndex;
using persist::FsyncPolicy;
using persist::PersistConfig;
using persist::Result;
using Db = persist::PersistedIndex<FlatIndex>;

constexpr std::string_view kDatabaseName = "wal-demo.iqdb";
constexpr std::uint64_t kAlwaysInserts = 300;
constexpr std::uint64_t kBufferedInserts = 20000;
constexpr std::size_t kBatchSize = 64;
constexpr std::uint64_t kBatches = 100;
constexpr auto kPeriodicInterval = std::chrono::milliseconds(100);
// The child is killed once it has acknowledged this many inserts, or after
// kCrashDeadline, whichever comes first.
constexpr std::uint64_t kAcksBeforeKill = 200;
constexpr auto kCrashDeadline = std::chrono::seconds(5);

std::string per_second(std::uint64_t records, double seconds) {
  return fmt::format("{:.0f} records/s", static_cast<double>(records) / std::max(seconds, 1e-9));
}

persist::PersistError os_error(std::string_view what) {
  return {persist::ErrorKind::Io, fmt::format("{}: {}", what, std::strerror(errno))};
}

class WalDemo {
 public:
  WalDemo(const std::filesystem::path& dir, const DemoData& data, DistanceMetric metric)
      : path_(dir / kDatabaseName), data_(data), metric_(metric), vector_(data.dim) {}

  Result<void> create();
  Result<void> insert_each(FsyncPolicy policy, std::string_view label, std::uint64_t count,
                           std::string_view note);
  Result<void> insert_batches();
  Result<void> crash_child();
  Result<void> recover();
  Result<void> checkpoint();

  WalDemoResult& result() { return result_; }

 private:
  PersistConfig config(FsyncPolicy policy) const {
    PersistConfig config(path_);
    config.wal_enabled = true;
    config.fsync_policy = policy;
    return config;
  }
  std::span<const float> vector_for(std::uint64_t id) {
    fill_vector(data_, id % data_.count, vector_);
    return vector_;
  }
  void add_row(std::string step, double seconds, std::string amount, std::string note) {
    result_.rows.push_back({std::move(step), seconds, std::move(amount), std::move(note)});
  }
  // The child: inserts from next_id_ on, reporting each acknowledged id on
  // `acks`, until it is killed. Never returns.
  [[noreturn]] void run_child(int acks);

  std::filesystem::path path_;
  DemoData data_;
  DistanceMetric metric_;
  std::vector<float> vector_;
  std::uint64_t next_id_ = 0;              // ids 0..next_id_-1 are in the database
  std::vector<std::uint64_t> child_acks_;  // ids the killed child acknowledged
  WalDemoResult result_;
};

Result<void> WalDemo::create() {
  const Stopwatch time;
  IQDB_TRY(Db::open_with(FlatIndex(data_.dim, metric_), config(FsyncPolicy::always()),
                         persist::OpenMode::Overwrite));
  add_row("wal: create (empty snapshot + log)", time.seconds(), "", path_.filename().string());
  return iqdb::persist::success();
}

Result<void> WalDemo::insert_each(FsyncPolicy policy, std::string_view label, std::uint64_t count,
                                  std::string_view note) {
  IQDB_TRY_ASSIGN(auto db, Db::load(config(policy)));
  const Stopwatch time;
  for (std::uint64_t i = 0; i < count; ++i, ++next_id_) {
    IQDB_TRY(db.insert(next_id_, vector_for(next_id_)));
  }
  const double seconds = time.seconds();
  add_row(fmt::format("wal: {} inserts, {}", count, label), seconds, per_second(count, seconds),
          std::string(note));
  return iqdb::persist::success();
}

Result<void> WalDemo::insert_batches() {
  IQDB_TRY_ASSIGN(auto db, Db::load(config(FsyncPolicy::always())));
  persist::WriteBatch batch;
  const Stopwatch time;
  for (std::uint64_t b = 0; b < kBatches; ++b) {
    batch.clear();
    for (std::size_t i = 0; i < kBatchSize; ++i, ++next_id_) {
      batch.insert(next_id_, vector_for(next_id_));
    }
    IQDB_TRY(db.apply_batch(batch));
  }
  const double seconds = time.seconds();
  add_row(fmt::format("wal: {} batches of {}, fsync always", kBatches, kBatchSize), seconds,
          per_second(kBatches * kBatchSize, seconds), "one record and one fsync per batch");
  return iqdb::persist::success();
}

void WalDemo::run_child(int acks) {
  auto db = Db::load(config(FsyncPolicy::always()));
  if (!db) ::_exit(2);
  for (std::uint64_t id = next_id_;; ++id) {
    if (!db.value().insert(id, vector_for(id))) ::_exit(3);
    if (::write(acks, &id, sizeof id) != static_cast<ssize_t>(sizeof id)) ::_exit(4);
  }
}

Result<void> WalDemo::crash_child() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return os_error("pipe");
  const pid_t child = ::fork();
  if (child < 0) return os_error("fork");
  if (child == 0) {
    ::close(fds[0]);
    run_child(fds[1]);
  }
  ::close(fds[1]);
  const Stopwatch time;
  std::uint64_t id = 0;
  bool killed = false;
  // Read acknowledgements; kill the child part-way, then drain what it sent.
  while (true) {
    if (!killed && (child_acks_.size() >= kAcksBeforeKill ||
                    time.seconds() > static_cast<double>(kCrashDeadline.count()))) {
      ::kill(child, SIGKILL);
      killed = true;
    }
    pollfd ready{fds[0], POLLIN, 0};
    const int polled = ::poll(&ready, 1, 100);
    if (polled < 0 && errno != EINTR) break;
    if (polled <= 0) continue;
    const ssize_t n = ::read(fds[0], &id, sizeof id);
    if (n == static_cast<ssize_t>(sizeof id)) {
      child_acks_.push_back(id);
    } else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
      break;  // the child is gone and the pipe is drained
    }
  }
  ::close(fds[0]);
  if (!killed) ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  const bool by_sigkill = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  add_row("wal: child inserting, fsync always", time.seconds(),
          fmt::format("{} acknowledged", child_acks_.size()),
          by_sigkill ? "then killed with SIGKILL mid-write"
                     : fmt::format("child exited early (status {})", status));
  if (!by_sigkill) {
    result_.summary = fmt::format("FAIL: the child process stopped on its own (status {})", status);
  }
  return iqdb::persist::success();
}

Result<void> WalDemo::recover() {
  const Stopwatch time;
  IQDB_TRY_ASSIGN(auto db, Db::load(config(FsyncPolicy::always())));
  const double seconds = time.seconds();
  const persist::WalReplayReport replay = db.wal_replay();
  add_row("wal: load after the crash (replay)", seconds,
          per_second(replay.records_replayed, seconds),
          fmt::format("{} records replayed onto the snapshot; {} torn bytes dropped",
                      replay.records_replayed, replay.bytes_dropped));
  if (!result_.summary.empty()) return iqdb::persist::success();

  const FlatIndex& index = db.index();
  std::uint64_t missing = 0;
  for (std::uint64_t acked : child_acks_) missing += index.contains(acked) ? 0 : 1;
  for (std::uint64_t earlier = 0; earlier < next_id_; ++earlier) {
    missing += index.contains(earlier) ? 0 : 1;
  }
  const std::uint64_t expected = next_id_ + child_acks_.size();
  result_.passed = missing == 0;
  result_.summary =
      missing == 0 ? fmt::format(
                         "PASS: all {} acknowledged inserts recovered ({} of them by the killed "
                         "child; {} in the index)",
                         expected, child_acks_.size(), index.size())
                   : fmt::format("FAIL: {} of {} acknowledged inserts missing after recovery",
                                 missing, expected);
  return iqdb::persist::success();
}

Result<void> WalDemo::checkpoint() {
  {  // One writer per database: this one is closed before the reload below.
    IQDB_TRY_ASSIGN(auto db, Db::load(config(FsyncPolicy::always())));
    const Stopwatch time;
    IQDB_TRY(db.checkpoint());
    const double seconds = time.seconds();
    add_row("wal: checkpoint", seconds, format_bytes(std::filesystem::file_size(path_)),
            fmt::format("snapshot of {} vectors; the log starts empty", db.index().size()));
  }
  const Stopwatch load_time;
  IQDB_TRY_ASSIGN(auto reloaded, Db::load(config(FsyncPolicy::always())));
  add_row("wal: load after the checkpoint", load_time.seconds(), "",
          fmt::format("{} records replayed", reloaded.wal_replay().records_replayed));
  return iqdb::persist::success();
}

}  // namespace

Result<WalDemoResult> run_wal_demo(const std::filesystem::path& dir, const DemoData& data,
                                   DistanceMetric metric) {
  WalDemo demo(dir, data, metric);
  IQDB_TRY(demo.create());
  IQDB_TRY(demo.insert_each(FsyncPolicy::always(), "fsync always", kAlwaysInserts,
                            "each on disk before insert() returns"));
  IQDB_TRY(demo.insert_each(FsyncPolicy::periodic(kPeriodicInterval), "fsync every 100 ms",
                            kBufferedInserts, "a power loss loses at most 100 ms"));
  IQDB_TRY(demo.insert_each(FsyncPolicy::never(), "fsync never", kBufferedInserts,
                            "survives a process crash, not a power loss"));
  IQDB_TRY(demo.insert_batches());
  IQDB_TRY(demo.crash_child());
  IQDB_TRY(demo.recover());
  IQDB_TRY(demo.checkpoint());
  return std::move(demo.result());
}

}  // namespace iqdb::tools
