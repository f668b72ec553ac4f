// Replica<I> against real processes: one writer process and several replica
// processes share a database directory, and every state a replica shows is
// checked against the writer's state at the same LSN.
//
// The writer runs a seeded stream of inserts, removes, batches and refused
// mutations (a refused one takes a second LSN for its Abort record) with a
// checkpoint every few ops. The stream and its LSNs are deterministic given
// the seed, so the parent recomputes the writer's content at every LSN (the
// Model) without hearing from the writer; the writer runs the same Model and
// exits with an error code as soon as its last_lsn() or an op's outcome
// departs from it. A writer killed with SIGKILL leaves a log whose last record
// may be a refused mutation without its Abort; the next writer recovers to
// that LSN and goes on from there, and the Model does the same (recover_to).
//
// Replica processes loop over refresh() (or follow() and acquire()), and
// append (LSN, digest of the View's content, generation) to a report file
// whenever their View's LSN changes. The parent checks that each digest is the
// Model's at that LSN, that a replica's LSNs never decrease, and that each
// replica reaches the writer's last LSN with wait_for() once told it.
//
// The scenarios: one writer and four replicas; writers killed at random
// moments (in checkpoints among them, and before logging a refusal) while
// replica processes are killed and started; replica processes stopped with
// SIGSTOP, one holding a View, while the writer runs to the end.
//
// Children never return into GoogleTest and never assert: they use the
// library, write(2) and _exit(). IQDB_REPLICA_PROCESS_SEED=<seed> picks
// another seed.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "iqdb/persist/file_system.h"
#include "iqdb/persist/persisted_index.h"
#include "iqdb/persist/replica.h"
#include "support/child_process.h"
#include "support/forwarding_file_system.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"
#include "support/wal_workload.h"

namespace iqdb::persist::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Writer = PersistedIndex<StreamMapIndex>;
using Reader = Replica<StreamMapIndex>;
constexpr DistanceMetric kMetric = DistanceMetric::Euclidean;
constexpr std::size_t kLargeState = 150;  // above it, removes are favoured

// ---------------------------------------------------------------------------
// The workload and its model.

struct Op {
  bool batch = false;
  std::vector<Mutation> mutations;  // one, or 2..5 for a batch
};

Op next_op(Rng& rng, const State& state) {
  Op op;
  const bool large = state.size() > kLargeState;
  const auto roll = rng.below(100);
  if (roll < 10) {
    op.mutations.push_back(refused_mutation(rng, state));  // absent remove, duplicate, short
  } else if (roll < 30) {
    op.batch = true;
    op.mutations = random_batch(rng, state, large);  // some refused in the middle
  } else if (state.empty() || (!large && roll < 70)) {
    op.mutations.push_back(insert_of(absent_id(rng, state), random_vector(rng)));
  } else {
    op.mutations.push_back(remove_of(present_id(rng, state)));
  }
  return op;
}

Result<void> execute(Writer& db, const Op& op) {
  if (op.batch) return db.apply_batch(batch_of(op.mutations));
  const Mutation& m = op.mutations[0];
  return m.insert ? db.insert(m.id, m.vector) : db.remove(m.id);
}

// The writer's content at every LSN of one database's history. Each op takes
// one LSN, and a refused one a second for its Abort record; the content at a
// refused mutation's LSN is what it left (a batch's ops before the refused
// one), since a replica applies them before it sees the Abort.
class Model {
 public:
  explicit Model(std::uint64_t seed) : rng_(seed), digests_{state_digest(State{})} {}

  // Generates the next op and applies it to the model.
  const Op& step() {
    op_ = next_op(rng_, state_);
    refused_ = apply_mutations(state_, op_.mutations);
    const std::uint64_t after = state_digest(state_);
    digests_.push_back(after);
    if (refused_) digests_.push_back(after);
    ++ops_;
    return op_;
  }

  // Follows a writer that recovered the log up to `lsn`: runs the stream up
  // to it. When the log ends with a refused mutation whose Abort the killed
  // writer did not write, that mutation counts as done and the next op takes
  // the Abort's LSN. False when `lsn` is no point the stream passes through.
  bool recover_to(std::uint64_t lsn) {
    while (this->lsn() < lsn) step();
    if (this->lsn() == lsn) return true;
    if (refused_ && this->lsn() == lsn + 1) {
      digests_.pop_back();
      ++aborts_cut_;
      return true;
    }
    return false;
  }

  std::uint64_t lsn() const { return digests_.size() - 1; }
  std::uint64_t ops() const { return ops_; }
  // How many recoveries ended right after a refused mutation, without its Abort.
  std::uint64_t aborts_cut() const { return aborts_cut_; }
  const std::optional<ErrorKind>& refused() const { return refused_; }
  std::optional<std::uint64_t> digest_at(std::uint64_t lsn) const {
    if (lsn >= digests_.size()) return std::nullopt;
    return digests_[lsn];
  }

 private:
  Rng rng_;
  State state_;
  Op op_;
  std::optional<ErrorKind> refused_;
  std::vector<std::uint64_t> digests_;  // by LSN; [0] is the empty index
  std::uint64_t ops_ = 0;
  std::uint64_t aborts_cut_ = 0;
};

// The model of a whole run: the stream, the recoveries of the writers that
// ran (in order), then the rest of `total_ops`.
Model model_of_run(std::uint64_t seed, const std::vector<std::uint64_t>& recovered,
                   std::uint64_t total_ops) {
  Model model(seed);
  for (const std::uint64_t lsn : recovered) {
    if (!model.recover_to(lsn)) ADD_FAILURE() << "seed " << seed << ": no op ends at LSN " << lsn;
  }
  while (model.ops() < total_ops) model.step();
  return model;
}

// ---------------------------------------------------------------------------
// Processes.

// The parent's ends of pipes and files: a child closes them all at once, so
// that a child's pipes reach EOF when the parent alone is gone.
std::vector<int>& parent_fds() {
  static std::vector<int> fds;
  return fds;
}

void close_parent_fd(int& fd) {
  if (fd < 0) return;
  auto& fds = parent_fds();
  fds.erase(std::remove(fds.begin(), fds.end(), fd), fds.end());
  ::close(fd);
  fd = -1;
}

template <class Body>
pid_t spawn(Body body) {
  std::fflush(nullptr);  // nothing buffered may be written twice
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (const int fd : parent_fds()) ::close(fd);
    body();
    ::_exit(99);
  }
  return pid;
}

// waitpid until `deadline`; then SIGKILL and nullopt (a hang).
std::optional<int> wait_until(pid_t pid, Clock::time_point deadline) {
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return status;
    if (done < 0 && errno != EINTR) return std::nullopt;
    if (Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return std::nullopt;
    }
    std::this_thread::sleep_for(1ms);
  }
}

std::string describe_status(const std::optional<int>& status) {
  if (!status) return "hung (killed after the deadline)";
  if (WIFEXITED(*status)) return fmt::format("exited with {}", WEXITSTATUS(*status));
  if (WIFSIGNALED(*status)) return fmt::format("killed by signal {}", WTERMSIG(*status));
  return fmt::format("status {}", *status);
}

bool exited_ok(const std::optional<int>& status) {
  return status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
}

// Reads one u64 from `fd` until `deadline`; nullopt on EOF or timeout.
std::optional<std::uint64_t> read_u64(int fd, Clock::time_point deadline) {
  std::uint64_t value = 0;
  std::size_t got = 0;
  auto* bytes = reinterpret_cast<char*>(&value);
  while (got < sizeof value) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return std::nullopt;
    const ssize_t n = ::read(fd, bytes + got, sizeof value - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    got += static_cast<std::size_t>(n);
  }
  return value;
}

PersistConfig config_at(const TempDir& dir) {
  PersistConfig config(dir.file("db.iqdb"));
  config.wal_enabled = true;
  config.fsync_policy = FsyncPolicy::never();  // a process crash loses nothing anyway
  config.verify_threads = 1;
  return config;
}

// Where a writer kills itself (SIGKILL), instead of making the n-th such call:
// points a random kill rarely hits.
enum class DeathPoint {
  None,
  Abort,          // writing an Abort frame: the refused mutation is last in the log
  Rename,         // renaming a checkpoint's snapshot into place
  RemoveSegment,  // removing a segment the new snapshot holds
  CreateSegment,  // creating a segment (the second and later: in a checkpoint)
};

// The operating system's file system, except that the process dies at the
// n-th call of its DeathPoint.
class DyingFileSystem final : public ForwardingFileSystem {
 public:
  DyingFileSystem(DeathPoint point, std::uint64_t n) : point_(point), left_(n) {}

  Result<std::unique_ptr<WritableFile>> create_new(const std::filesystem::path& path) override {
    if (is_segment(path)) at(DeathPoint::CreateSegment);
    IQDB_TRY_ASSIGN(auto file, ForwardingFileSystem::create_new(path));
    return std::unique_ptr<WritableFile>(std::make_unique<File>(std::move(file), *this));
  }
  Result<void> rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    at(DeathPoint::Rename);
    return ForwardingFileSystem::rename(from, to);
  }
  Result<void> remove(const std::filesystem::path& path) override {
    if (is_segment(path)) at(DeathPoint::RemoveSegment);
    return ForwardingFileSystem::remove(path);
  }

 private:
  class File final : public WritableFile {
   public:
    File(std::unique_ptr<WritableFile> base, DyingFileSystem& fs)
        : base_(std::move(base)), fs_(fs) {}
    Result<void> write_at(std::uint64_t offset, std::span<const std::byte> data) override {
      // A frame header is 24 bytes; an Abort body is its type (4), an LSN
      // and an op count.
      constexpr std::size_t kAbortFrame = 24 + 1 + 8 + 4;
      if (data.size() == kAbortFrame && data[24] == std::byte{4}) fs_.at(DeathPoint::Abort);
      return base_->write_at(offset, data);
    }
    Result<void> truncate(std::uint64_t size) override { return base_->truncate(size); }
    Result<void> sync() override { return base_->sync(); }
    Result<void> close() override { return base_->close(); }
    const std::filesystem::path& path() const override { return base_->path(); }

   private:
    std::unique_ptr<WritableFile> base_;
    DyingFileSystem& fs_;
  };

  static bool is_segment(const std::filesystem::path& path) {
    return path.filename().string().find(".wal-") != std::string::npos;
  }
  void at(DeathPoint point) {
    if (point == point_ && --left_ == 0) ::kill(::getpid(), SIGKILL);
  }

  const DeathPoint point_;
  std::uint64_t left_;
};

// ---------------------------------------------------------------------------
// The writer process.

struct WriterPlan {
  std::uint64_t seed = 0;
  std::uint64_t total_ops = 0;
  std::uint64_t checkpoint_every = 1;
  std::vector<std::uint64_t> recovered;  // the LSNs earlier writers recovered to
  DeathPoint death = DeathPoint::None;   // die at the death_at-th call of this point
  std::uint64_t death_at = 0;
};

enum WriterExit : int {
  kWriterDone = 0,
  kWriterLoadFailed = 10,
  kWriterNotOnModel = 11,    // recovered to an LSN no op of the stream ends at
  kWriterWrongContent = 12,  // recovered other content than the model's at its LSN
  kWriterWrongOutcome = 13,  // an op succeeded or failed against the model
  kWriterWrongLsn = 14,      // last_lsn() departed from the model
  kWriterCheckpointFailed = 15,
  kWriterPipeFailed = 16,
};

// Loads the database (recovering the log), tells the parent the LSN it
// recovered to, then runs the stream from there to plan.total_ops, telling
// the parent the op count before each checkpoint. Never returns.
[[noreturn]] void writer_main(PersistConfig config, const WriterPlan& plan, int fd) {
  if (plan.death != DeathPoint::None) {
    config.file_system = std::make_shared<DyingFileSystem>(plan.death, plan.death_at);
  }
  auto loaded = Writer::load(config);
  if (!loaded) {
    std::fprintf(stderr, "writer: load failed: %s\n", loaded.error().to_string().c_str());
    ::_exit(kWriterLoadFailed);
  }
  Writer db = std::move(loaded).value();
  const std::uint64_t recovered = db.last_lsn();
  if (!write_all(fd, &recovered, sizeof recovered)) ::_exit(kWriterPipeFailed);
  Model model(plan.seed);
  for (const std::uint64_t lsn : plan.recovered) {
    if (!model.recover_to(lsn)) ::_exit(kWriterNotOnModel);
  }
  if (!model.recover_to(recovered)) {
    std::fprintf(stderr, "writer: recovered to LSN %llu, where no op ends\n",
                 static_cast<unsigned long long>(recovered));
    ::_exit(kWriterNotOnModel);
  }
  if (state_digest(db.index().vectors()) != model.digest_at(recovered)) {
    std::fprintf(stderr, "writer: recovered content at LSN %llu is not the model's\n",
                 static_cast<unsigned long long>(recovered));
    ::_exit(kWriterWrongContent);
  }
  while (model.ops() < plan.total_ops) {
    const Op& op = model.step();
    const auto result = execute(db, op);
    const std::optional<ErrorKind> got =
        result ? std::nullopt : std::optional<ErrorKind>(result.error().kind());
    if (got != model.refused()) {
      std::fprintf(stderr, "writer: op %llu returned %s, the model expected %s\n",
                   static_cast<unsigned long long>(model.ops()),
                   result ? "success" : result.error().to_string().c_str(),
                   model.refused() ? std::string(to_string(*model.refused())).c_str() : "success");
      ::_exit(kWriterWrongOutcome);
    }
    if (db.last_lsn() != model.lsn()) {
      std::fprintf(stderr, "writer: after op %llu (%s) last_lsn() is %llu, the model's %llu\n",
                   static_cast<unsigned long long>(model.ops()), op.batch ? "batch" : "single",
                   static_cast<unsigned long long>(db.last_lsn()),
                   static_cast<unsigned long long>(model.lsn()));
      ::_exit(kWriterWrongLsn);
    }
    if (model.ops() % plan.checkpoint_every == 0) {
      const std::uint64_t ops = model.ops();
      if (!write_all(fd, &ops, sizeof ops)) ::_exit(kWriterPipeFailed);
      if (auto saved = db.checkpoint(); !saved) {
        std::fprintf(stderr, "writer: checkpoint failed: %s\n", saved.error().to_string().c_str());
        ::_exit(kWriterCheckpointFailed);
      }
    }
  }
  ::_exit(kWriterDone);
}

struct WriterProcess {
  pid_t pid = -1;
  int messages = -1;  // the read end of the writer's pipe
};

WriterProcess start_writer(const PersistConfig& config, const WriterPlan& plan) {
  WriterProcess writer;
  int fds[2];
  if (::pipe(fds) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return writer;
  }
  writer.pid = spawn([&] {
    ::close(fds[0]);
    writer_main(config, plan, fds[1]);
  });
  ::close(fds[1]);
  writer.messages = fds[0];
  parent_fds().push_back(fds[0]);
  return writer;
}

// ---------------------------------------------------------------------------
// The replica processes.

enum class Mode {
  Refresh,   // refresh() and acquire() in a loop
  Follower,  // follow(), and acquire() in a loop
  Hold,      // acquire() once, hold the View until told to stop
};

enum ReplicaExit : int {
  kReplicaDone = 0,
  kReplicaOpenFailed = 20,
  kReplicaRefreshFailed = 21,
  kReplicaWaitFailed = 22,   // wait_for() failed or timed out
  kReplicaViewChanged = 23,  // a held View's content changed
  kReplicaOrphaned = 24,     // the parent is gone
  kReplicaReportFailed = 25,
};

struct Report {
  std::uint64_t lsn = 0;
  std::uint64_t digest = 0;
  std::uint64_t generation = 0;
};

[[noreturn]] void replica_exit(int code, const char* what, const PersistError* error = nullptr) {
  std::fprintf(stderr, "replica %d: %s%s%s\n", static_cast<int>(::getpid()), what,
               error != nullptr ? ": " : "", error != nullptr ? error->to_string().c_str() : "");
  ::_exit(code);
}

void report(int fd, const Report& r) {
  if (!write_all(fd, &r, sizeof r)) replica_exit(kReplicaReportFailed, "cannot write its report");
}

Report report_of(const Reader::View& view) {
  return {view.lsn(), state_digest(view.index().vectors()), view.generation()};
}

// Waits for every record up to `lsn` and reports the View there.
[[noreturn]] void finish(Reader& replica, std::uint64_t lsn, int out) {
  auto reached = replica.wait_for(lsn, 20s);
  if (!reached) replica_exit(kReplicaWaitFailed, "wait_for failed", &reached.error());
  if (!reached.value()) replica_exit(kReplicaWaitFailed, "wait_for timed out");
  report(out, report_of(replica.acquire()));
  ::_exit(kReplicaDone);
}

// The value the parent sent on `fd` (the writer's last LSN), if any yet.
std::optional<std::uint64_t> poll_stop(int fd) {
  std::uint64_t lsn = 0;
  const ssize_t n = ::read(fd, &lsn, sizeof lsn);
  if (n == sizeof lsn) return lsn;
  if (n == 0) replica_exit(kReplicaOrphaned, "the parent is gone");
  return std::nullopt;  // EAGAIN (a message of 8 bytes on a pipe is never split)
}

[[noreturn]] void replica_main(const PersistConfig& config, Mode mode, std::uint64_t seed, int out,
                               int stop) {
  // A writer on a file system of the test's announces nothing in the control
  // file: poll often.
  auto opened = Reader::open(config, ReplicaOptions{.poll_interval = 5ms});
  if (!opened) replica_exit(kReplicaOpenFailed, "open failed", &opened.error());
  Reader replica = std::move(opened).value();
  Rng rng(seed);

  if (mode == Mode::Hold) {
    auto view = std::make_unique<Reader::View>(replica.acquire());
    const Report held = report_of(*view);
    report(out, held);
    const auto lsn = read_u64(stop, Clock::now() + 60s);  // stopped and continued meanwhile
    if (!lsn) replica_exit(kReplicaOrphaned, "no word from the parent");
    if (report_of(*view).digest != held.digest || view->lsn() != held.lsn) {
      replica_exit(kReplicaViewChanged, "the held View changed");
    }
    view.reset();
    finish(replica, *lsn, out);
  }

  ::fcntl(stop, F_SETFL, ::fcntl(stop, F_GETFL) | O_NONBLOCK);
  if (mode == Mode::Follower) replica.follow();
  std::uint64_t last_lsn = UINT64_MAX;
  for (;;) {
    if (const auto lsn = poll_stop(stop)) {
      if (mode == Mode::Follower) {
        if (const auto error = replica.follower_error()) {
          replica_exit(kReplicaRefreshFailed, "the follower failed", &*error);
        }
      }
      finish(replica, *lsn, out);
    }
    if (mode == Mode::Refresh) {
      auto refreshed = replica.refresh();
      if (!refreshed) replica_exit(kReplicaRefreshFailed, "refresh failed", &refreshed.error());
    }
    std::optional<Report> seen;
    {
      const Reader::View view = replica.acquire();
      if (view.lsn() != last_lsn) seen = report_of(view);
      last_lsn = view.lsn();
    }
    if (seen) report(out, *seen);
    std::this_thread::sleep_for(std::chrono::microseconds(rng.below(400)));
  }
}

struct ReplicaProcess {
  std::string name;
  pid_t pid = -1;
  int stop = -1;  // the write end of its stop pipe
  std::filesystem::path report;
  bool killed = false;
  std::optional<int> status;
};

ReplicaProcess start_replica(const PersistConfig& config, const TempDir& dir, Mode mode,
                             std::uint64_t seed, int number) {
  ReplicaProcess replica;
  replica.name = fmt::format("replica {} ({})", number,
                             mode == Mode::Refresh    ? "refresh"
                             : mode == Mode::Follower ? "follow"
                                                      : "hold");
  replica.report = dir.file(fmt::format("report-{}", number));
  const int out = ::open(replica.report.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int fds[2];
  if (out < 0 || ::pipe(fds) != 0) {
    ADD_FAILURE() << "cannot create the files of " << replica.name << ": " << std::strerror(errno);
    return replica;
  }
  replica.pid = spawn([&] {
    ::close(fds[1]);
    replica_main(config, mode, Rng(seed * 31 + static_cast<std::uint64_t>(number)).next(), out,
                 fds[0]);
  });
  ::close(out);
  ::close(fds[0]);
  replica.stop = fds[1];
  parent_fds().push_back(fds[1]);
  return replica;
}

std::vector<Report> read_reports(const std::filesystem::path& path) {
  const std::vector<std::byte> bytes = read_file(path);
  std::vector<Report> reports(bytes.size() / sizeof(Report));
  std::memcpy(reports.data(), bytes.data(), reports.size() * sizeof(Report));
  return reports;
}

// Waits until `replica` reported once (it is open and serving).
void wait_for_first_report(const ReplicaProcess& replica) {
  const auto deadline = Clock::now() + 20s;
  while (Clock::now() < deadline) {
    std::error_code ignored;
    if (std::filesystem::file_size(replica.report, ignored) >= sizeof(Report)) return;
    int status = 0;
    if (::waitpid(replica.pid, &status, WNOHANG) == replica.pid) {
      ADD_FAILURE() << replica.name << " " << describe_status(status) << " before reporting";
      return;
    }
    std::this_thread::sleep_for(1ms);
  }
  ADD_FAILURE() << replica.name << " did not report within 20 s";
}

void kill_replica(ReplicaProcess& replica) {
  ::kill(replica.pid, SIGKILL);
  replica.status = wait_until(replica.pid, Clock::now() + 20s);
  replica.killed = true;
  close_parent_fd(replica.stop);
}

// Tells a live replica the writer's last LSN and waits for it to get there.
void stop_replica(ReplicaProcess& replica, std::uint64_t last_lsn) {
  if (!write_all(replica.stop, &last_lsn, sizeof last_lsn)) {
    ADD_FAILURE() << "cannot tell " << replica.name << " to stop";
  }
  replica.status = wait_until(replica.pid, Clock::now() + 40s);
  close_parent_fd(replica.stop);
}

struct Coverage {
  std::uint64_t reports = 0;
  std::uint64_t max_generation = 0;
};

// Checks a replica's reports against the model: each one's content is the
// writer's at its LSN, LSNs never decrease, and (unless it was killed) the
// last is the writer's last LSN.
void check_replica(const ReplicaProcess& replica, const Model& model, std::uint64_t seed,
                   Coverage& coverage) {
  SCOPED_TRACE(fmt::format("seed {}, {}", seed, replica.name));
  if (!replica.killed) {
    EXPECT_TRUE(exited_ok(replica.status))
        << replica.name << " " << describe_status(replica.status) << " (see its stderr above)";
  }
  const std::vector<Report> reports = read_reports(replica.report);
  std::uint64_t previous = 0;
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const Report& r = reports[i];
    const auto expected = model.digest_at(r.lsn);
    if (!expected) {
      ADD_FAILURE() << "report " << i << ": LSN " << r.lsn << " is beyond the writer's last, "
                    << model.lsn();
      return;
    }
    if (r.digest != *expected) {
      ADD_FAILURE() << "report " << i << ": the View at LSN " << r.lsn << " (generation "
                    << r.generation << ") is not the writer's content at that LSN";
      return;
    }
    if (r.lsn < previous) {
      ADD_FAILURE() << "report " << i << ": LSN " << r.lsn << " after LSN " << previous;
      return;
    }
    previous = r.lsn;
    coverage.max_generation = std::max(coverage.max_generation, r.generation);
  }
  coverage.reports += reports.size();
  if (!replica.killed && exited_ok(replica.status)) {
    ASSERT_FALSE(reports.empty());
    EXPECT_EQ(reports.back().lsn, model.lsn()) << "did not reach the writer's last LSN";
  }
}

std::uint64_t seed_from_env(std::uint64_t fallback) {
  const char* value = std::getenv("IQDB_REPLICA_PROCESS_SEED");
  if (value == nullptr || *value == '\0') return fallback;
  return std::strtoull(value, nullptr, 10);
}

class ReplicaProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = config_at(dir_);
    // Created by a child: this process never uses the library, so it has
    // none of the library's threads when it forks (see
    // ForkedChildRunsBackgroundVerification below).
    const pid_t creator = spawn([this] {
      auto created = Writer::open_with(StreamMapIndex(kDim, kMetric), config_);
      if (!created) {
        std::fprintf(stderr, "cannot create: %s\n", created.error().to_string().c_str());
      }
      ::_exit(created ? 0 : 1);
    });
    const auto status = wait_until(creator, Clock::now() + 20s);
    ASSERT_TRUE(exited_ok(status)) << "creating the database " << describe_status(status);
  }

  void TearDown() override {
    // Whatever a failed assertion left running.
    for (ReplicaProcess& replica : replicas_) {
      if (!replica.status && replica.pid > 0) kill_replica(replica);
    }
  }

  ReplicaProcess& add_replica(Mode mode, std::uint64_t seed) {
    replicas_.push_back(
        start_replica(config_, dir_, mode, seed, static_cast<int>(replicas_.size())));
    return replicas_.back();
  }

  TempDir dir_;
  PersistConfig config_;
  std::vector<ReplicaProcess> replicas_;
};

// ---------------------------------------------------------------------------

TEST_F(ReplicaProcessTest, EveryViewIsTheWritersStateAtItsLsn) {
  const std::uint64_t seed = seed_from_env(7);
  const std::uint64_t total_ops = kSanitized ? 800 : 2000;
  SCOPED_TRACE(fmt::format("seed {}", seed));
  const auto start = Clock::now();

  for (int i = 0; i < 3; ++i) add_replica(Mode::Refresh, seed);
  add_replica(Mode::Follower, seed);
  for (const ReplicaProcess& replica : replicas_) wait_for_first_report(replica);

  const WriterPlan plan{seed, total_ops, 25, {}};
  WriterProcess writer = start_writer(config_, plan);
  const auto recovered = read_u64(writer.messages, Clock::now() + 20s);
  const auto status = wait_until(writer.pid, Clock::now() + 60s);
  close_parent_fd(writer.messages);
  ASSERT_TRUE(exited_ok(status)) << "the writer " << describe_status(status);
  ASSERT_EQ(recovered, 0u);

  const Model model = model_of_run(seed, {0}, total_ops);
  for (ReplicaProcess& replica : replicas_) stop_replica(replica, model.lsn());
  Coverage coverage;
  for (const ReplicaProcess& replica : replicas_) check_replica(replica, model, seed, coverage);
  // The replicas served while the writer ran, across its checkpoints.
  EXPECT_GT(coverage.reports, replicas_.size() * 2);
  EXPECT_GT(coverage.max_generation, 1u);
  std::cout
      << fmt::format(
             "[ replica-process ] seed {}: {} ops, last LSN {}, {} reports, "
             "up to generation {}, {} ms",
             seed, total_ops, model.lsn(), coverage.reports, coverage.max_generation,
             std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count())
      << std::endl;
}

// Writers killed with SIGKILL at random moments (many of them in a
// checkpoint) and recovered by the next writer process; replica processes
// killed and started anew meanwhile. Every View a replica showed is still the
// state of the one history the writers made.
TEST_F(ReplicaProcessTest, WritersKilledAndRecoveredReplicasKilledAndRestarted) {
  const std::uint64_t seed = seed_from_env(11);
  const std::uint64_t total_ops = kSanitized ? 600 : 1200;
  const int writers = kSanitized ? 9 : 12;
  SCOPED_TRACE(fmt::format("seed {}", seed));
  const auto start = Clock::now();
  Rng rng(seed ^ 0x6b696c6c);

  add_replica(Mode::Refresh, seed);
  add_replica(Mode::Refresh, seed);
  add_replica(Mode::Follower, seed);
  for (const ReplicaProcess& replica : replicas_) wait_for_first_report(replica);

  std::vector<std::uint64_t> recovered;  // by each writer, in order
  std::vector<std::string> schedule;     // how each writer ended
  int killed_writers = 0;
  int died_at_abort = 0;
  int killed_replicas = 0;
  for (int w = 0; w < writers; ++w) {
    // A writer is killed a few milliseconds in, or right after it announces
    // its n-th checkpoint (in the checkpoint or just past it), or it dies at
    // a point of its own (DyingFileSystem); the last one runs to the end.
    enum class End { Delay, Checkpoint, Death, Run } end = End::Run;
    if (w < writers - 1) end = static_cast<End>(rng.below(3));
    const auto delay = std::chrono::microseconds(500 + rng.below(15'000));
    const auto checkpoints = 1 + rng.below(40);
    const auto spin = std::chrono::microseconds(rng.below(400));
    const auto death = static_cast<DeathPoint>(1 + rng.below(4));
    const auto death_at = (death == DeathPoint::CreateSegment ? 2 : 1) + rng.below(8);
    WriterPlan plan{seed, total_ops, 4, recovered};
    if (end == End::Death) {
      plan.death = death;
      plan.death_at = death_at;
    }
    constexpr const char* kDeaths[] = {"", "logging refusal", "renaming snapshot",
                                       "removing segment", "creating segment"};
    schedule.push_back(end == End::Delay        ? fmt::format("killed {} us in", delay.count())
                       : end == End::Checkpoint ? fmt::format("killed {} us after checkpoint {}",
                                                              spin.count(), checkpoints)
                       : end == End::Death      ? fmt::format("died before {} {}",
                                                              kDeaths[static_cast<int>(death)], death_at)
                                                : "ran to the end");
    SCOPED_TRACE(fmt::format("writer {}: {}", w, schedule.back()));

    WriterProcess writer = start_writer(config_, plan);
    const auto lsn = read_u64(writer.messages, Clock::now() + 20s);
    if (!lsn) {
      const auto status = wait_until(writer.pid, Clock::now() + 20s);
      FAIL() << "writer " << w << " " << describe_status(status) << " before it loaded";
    }
    recovered.push_back(*lsn);
    if (end != End::Run && rng.chance(60)) {
      // A replica dies at a random moment of the writer's run; another starts.
      std::this_thread::sleep_for(std::chrono::microseconds(rng.below(3'000)));
      std::vector<std::size_t> alive;
      for (std::size_t i = 0; i < replicas_.size(); ++i) {
        if (!replicas_[i].killed) alive.push_back(i);
      }
      kill_replica(replicas_[alive[rng.below(alive.size())]]);
      ++killed_replicas;
      add_replica(rng.chance(50) ? Mode::Refresh : Mode::Follower, seed);
    }
    if (end == End::Delay) {
      std::this_thread::sleep_for(delay);
      ::kill(writer.pid, SIGKILL);
    } else if (end == End::Checkpoint) {
      for (std::uint64_t i = 0; i < checkpoints; ++i) {
        if (!read_u64(writer.messages, Clock::now() + 20s)) break;
      }
      const auto until = Clock::now() + spin;
      while (Clock::now() < until) {
      }
      ::kill(writer.pid, SIGKILL);
    }
    const auto status = wait_until(writer.pid, Clock::now() + 60s);
    close_parent_fd(writer.messages);
    if (status && WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL && end != End::Run) {
      ++killed_writers;
      if (end == End::Death && death == DeathPoint::Abort) ++died_at_abort;
      continue;
    }
    ASSERT_TRUE(exited_ok(status))
        << "writer " << w << " " << describe_status(status) << " (see its stderr above)";
    break;  // it ran the whole stream
  }

  SCOPED_TRACE(fmt::format("writers: {}; recovered to LSNs {}", fmt::join(schedule, "; "),
                           fmt::join(recovered, ",")));
  const Model model = model_of_run(seed, recovered, total_ops);
  for (ReplicaProcess& replica : replicas_) {
    if (!replica.killed) stop_replica(replica, model.lsn());
  }
  Coverage coverage;
  for (const ReplicaProcess& replica : replicas_) check_replica(replica, model, seed, coverage);
  EXPECT_GT(killed_writers, 0);
  // Each writer that died before logging a refusal left the refused mutation
  // last in the log (and a random kill may have, too).
  EXPECT_GE(model.aborts_cut(), static_cast<std::uint64_t>(died_at_abort));
  std::cout
      << fmt::format(
             "[ replica-process ] seed {}: {} writers killed ({} before logging a "
             "refusal), {} replicas killed, last LSN {}, {} reports, up to generation {}, "
             "{} ms",
             seed, killed_writers, died_at_abort, killed_replicas, model.lsn(), coverage.reports,
             coverage.max_generation,
             std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count())
      << std::endl;
}

// A replica process stopped (SIGSTOP) while it holds a View, and another
// stopped at a random point of its follower's work, cost the writer nothing:
// it commits and checkpoints through its whole run. Continued, the held View
// still shows its state; then the replica catches up.
TEST_F(ReplicaProcessTest, StoppedReplicasDoNotHoldUpTheWriter) {
  const std::uint64_t seed = seed_from_env(13);
  const std::uint64_t total_ops = kSanitized ? 800 : 2000;
  SCOPED_TRACE(fmt::format("seed {}", seed));
  Rng rng(seed);

  // Some content first, so that the held View is of a state that goes away.
  {
    const WriterPlan plan{seed, 100, 30, {}};
    WriterProcess writer = start_writer(config_, plan);
    const auto status = wait_until(writer.pid, Clock::now() + 60s);
    close_parent_fd(writer.messages);
    ASSERT_TRUE(exited_ok(status)) << "the first writer " << describe_status(status);
  }
  const Model first = model_of_run(seed, {0}, 100);

  add_replica(Mode::Hold, seed);
  add_replica(Mode::Follower, seed);
  add_replica(Mode::Refresh, seed);
  for (const ReplicaProcess& replica : replicas_) wait_for_first_report(replica);
  ASSERT_EQ(::kill(replicas_[0].pid, SIGSTOP), 0);

  const WriterPlan plan{seed, total_ops, 10, {first.lsn()}};
  const auto started = Clock::now();
  WriterProcess writer = start_writer(config_, plan);
  std::this_thread::sleep_for(std::chrono::microseconds(rng.below(5'000)));
  ASSERT_EQ(::kill(replicas_[1].pid, SIGSTOP), 0);
  // A writer blocked by a stopped replica would never finish; a healthy one
  // takes well under a second here.
  const auto status = wait_until(writer.pid, started + 30s);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  close_parent_fd(writer.messages);
  ASSERT_TRUE(exited_ok(status)) << "the writer " << describe_status(status) << " after "
                                 << took.count() << " ms";

  const Model model = model_of_run(seed, {0, first.lsn()}, total_ops);
  ASSERT_EQ(::kill(replicas_[0].pid, SIGCONT), 0);
  stop_replica(replicas_[0], model.lsn());
  kill_replica(replicas_[1]);  // still stopped
  stop_replica(replicas_[2], model.lsn());
  Coverage coverage;
  for (const ReplicaProcess& replica : replicas_) check_replica(replica, model, seed, coverage);
  // The holder reported its View (at the first writer's last LSN) and the
  // writer's last LSN.
  const std::vector<Report> held = read_reports(replicas_[0].report);
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0].lsn, first.lsn());
  std::cout << fmt::format(
                   "[ replica-process ] seed {}: the writer ran {} ops and {} checkpoints "
                   "beside two stopped replicas in {} ms",
                   seed, total_ops - 100, (total_ops - 100) / 10, took.count())
            << std::endl;
}

// The library's process-wide thread for Background verification
// (VerificationWorker, src/snapshot/load_verification.cc) is started by the
// first Verification a process destroys, whatever its mode, and a forked
// child inherits the worker's queue and mutex but not its thread:
//  - a Background load in the child queues its check for a thread that does
//    not exist there: verification() stays Running and wait() never returns;
//  - when the fork comes while the thread is starting (it takes the mutex
//    before its first wait), the child inherits the mutex locked, and its
//    first load deadlocks in ~Verification (VerificationWorker::remove):
//    seen as replica processes that never finish Replica::open() when the
//    parent forked them right after creating the database.
// A server that loads, then forks workers that open replicas, meets both.
TEST(ReplicaProcessForkTest, ForkedChildRunsBackgroundVerification) {
  TempDir dir;
  PersistConfig config = config_at(dir);
  {
    auto created = Writer::open_with(StreamMapIndex(kDim, kMetric), config);
    ASSERT_THAT(created, IsOk());
  }
  {
    auto loaded = Writer::load(config);  // this process now has the worker thread
    ASSERT_THAT(loaded, IsOk());
  }
  std::this_thread::sleep_for(50ms);  // the worker is idle, its mutex free
  config.verify = VerifyMode::Background;
  const pid_t child = spawn([&] {
    auto loaded = Writer::load(config);
    if (!loaded) ::_exit(1);
    ::_exit(loaded.value().verification().wait() ? 0 : 2);
  });
  const auto status = wait_until(child, Clock::now() + 5s);
  EXPECT_TRUE(exited_ok(status)) << "the child " << describe_status(status);
}

}  // namespace
}  // namespace iqdb::persist::test
