// Replica<I> following a directory that a copier fills from a live writer's
// directory, as a replica on another host does (docs/REPLICATION.md): real
// rsync runs in a loop while the writer inserts, removes and checkpoints, and
// every state the replica shows must be the writer's at the replica's LSN.
// Then the copies a copier can leave, made by hand: a segment cut mid-frame,
// a snapshot before its segments, old segments deleted before the snapshot
// that replaces them. Each is "not yet", never an error.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "iqdb/persist/persisted_index.h"
#include "iqdb/persist/replica.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"
#include "wal/wal_segments.h"

namespace iqdb::persist::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using Writer = PersistedIndex<StreamMapIndex>;
using Reader = Replica<StreamMapIndex>;
using Content = std::map<std::uint64_t, std::vector<float>>;
using Clock = std::chrono::steady_clock;
constexpr std::size_t kDim = 4;

std::vector<float> vec(std::uint64_t id) {
  const float x = static_cast<float>(id);
  return {x, x * 0.25f, -x, 1.0f};
}

// A deterministic workload in which op n (from 1) is logged as LSN n: every
// op is valid (no refusal, so no Abort record takes an LSN), and the writer's
// state at LSN n is ops 1..n applied in order.
class Workload {
 public:
  struct Step {
    bool insert = true;
    std::uint64_t id = 0;
  };
  using Op = std::vector<Step>;  // one step: insert() or remove(); more: a batch

  explicit Workload(std::uint64_t seed) : random_(seed) {}

  const Op& op(std::uint64_t n) {
    while (ops_.size() < n) ops_.push_back(next());
    return ops_[n - 1];
  }

 private:
  Op next() {
    const std::uint64_t steps = random_() % 8 == 0 ? 2 + random_() % 4 : 1;
    Op op;
    for (std::uint64_t i = 0; i < steps; ++i) {
      if (!live_.empty() && random_() % 5 < 2) {
        const std::size_t slot = random_() % live_.size();
        op.push_back({false, live_[slot]});
        live_[slot] = live_.back();
        live_.pop_back();
      } else {
        op.push_back({true, next_id_});
        live_.push_back(next_id_++);
      }
    }
    return op;
  }

  std::mt19937_64 random_;
  std::vector<std::uint64_t> live_;  // the ids present after the ops made so far
  std::uint64_t next_id_ = 1;
  std::vector<Op> ops_;
};

Result<void> apply(Writer& writer, const Workload::Op& op) {
  if (op.size() == 1) {
    return op[0].insert ? writer.insert(op[0].id, vec(op[0].id)) : writer.remove(op[0].id);
  }
  WriteBatch batch;
  for (const Workload::Step& step : op) {
    if (step.insert) {
      batch.insert(step.id, vec(step.id));
    } else {
      batch.remove(step.id);
    }
  }
  return writer.apply_batch(batch);
}

// The writer's content at an LSN that never decreases.
class Model {
 public:
  explicit Model(std::uint64_t seed) : workload_(seed) {}

  const Content& at(std::uint64_t lsn) {
    for (; lsn_ < lsn; ++lsn_) {
      for (const Workload::Step& step : workload_.op(lsn_ + 1)) {
        if (step.insert) {
          content_.emplace(step.id, vec(step.id));
        } else {
          content_.erase(step.id);
        }
      }
    }
    return content_;
  }

 private:
  Workload workload_;
  std::uint64_t lsn_ = 0;
  Content content_;
};

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && ::access((std::filesystem::path(dir) / program).c_str(), X_OK) == 0) {
      return true;
    }
  }
  return false;
}

// rsync's statuses for a pass that copied everything there was, and for one
// that found files gone before it could copy them (a checkpoint retired them).
constexpr int kRsyncOk = 0;
constexpr int kRsyncVanished = 24;

// `rsync -a --delete-after` of `from`'s files into `to`, as docs/REPLICATION.md
// says to run it; its stderr goes to `errors`. Returns its exit status, or -1
// if it could not run or was killed.
int rsync(const std::filesystem::path& from, const std::filesystem::path& to,
          const std::filesystem::path& errors) {
  std::vector<std::string> args = {"rsync",
                                   "-a",
                                   "--delete-after",
                                   "--exclude=*.lock",
                                   "--exclude=*.control",
                                   "--exclude=*.tmp-*",
                                   from.string() + "/",
                                   to.string() + "/"};
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, errors.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, "rsync", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string file_text(const std::filesystem::path& path) {
  const auto bytes = read_file(path);
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

TEST(ReplicaRsyncTest, FollowsADirectoryThatRsyncFillsFromALiveWriter) {
  if (!on_path("rsync")) GTEST_SKIP() << "rsync is not on PATH";
  constexpr std::uint64_t kSeed = 20240611;
  // The writer runs for kWriting, and longer (up to kMaxWriting) until the
  // run has seen what it is about: enough copies, and the replica switching
  // to new snapshots, however slowly a loaded machine runs rsync.
  const auto kWriting = kSanitized ? 3s : 2s;
  constexpr auto kMaxWriting = 10s;
  constexpr int kMinCopies = 20;
  constexpr std::uint64_t kMinGenerations = 3;
  constexpr auto kCheckpointEvery = 250ms;
  constexpr auto kCopyEvery = 20ms;

  TempDir source, copy, scratch;
  PersistConfig config;
  config.path = source.file("db.iqdb");
  config.wal_enabled = true;
  config.fsync_policy = FsyncPolicy::never();
  auto created = Writer::open_with(StreamMapIndex(kDim, DistanceMetric::Euclidean), config);
  ASSERT_THAT(created, IsOk());
  Writer writer = std::move(created).value();
  const auto rsync_errors = scratch.file("rsync.err");
  ASSERT_EQ(rsync(source.path(), copy.path(), rsync_errors), kRsyncOk) << file_text(rsync_errors);
  PersistConfig copied = config;
  copied.path = copy.file("db.iqdb");
  auto opened = Reader::open(copied);
  ASSERT_THAT(opened, IsOk());
  Reader replica = std::move(opened).value();

  std::mutex problems_mutex;
  std::vector<std::string> problems;  // from the writer and the copier
  const auto problem = [&](std::string what) {
    std::lock_guard guard(problems_mutex);
    problems.push_back(std::move(what));
  };
  std::atomic<bool> writing{true};
  std::atomic<std::uint64_t> final_lsn{0};
  std::atomic<int> checkpoints{0};
  std::atomic<int> copies{0};
  std::atomic<std::uint64_t> generations{1};  // the replica's, as the checker last saw

  // Declared after everything they use: on an early return they are stopped
  // and joined before it goes away.
  std::jthread writer_thread([&](const std::stop_token& stop) {
    Workload workload(kSeed);
    const Clock::time_point start = Clock::now();
    const auto finished = [&] {
      const auto elapsed = Clock::now() - start;
      const bool enough = copies >= kMinCopies && generations >= kMinGenerations;
      return (elapsed >= kWriting && enough) || elapsed >= kMaxWriting || stop.stop_requested();
    };
    Clock::time_point next_checkpoint = start + kCheckpointEvery;
    std::uint64_t n = 0;
    while (!finished()) {
      for (int i = 0; i < 8; ++i) {
        ++n;
        if (auto done = apply(writer, workload.op(n)); !done) {
          problem("writer, op " + std::to_string(n) + ": " + done.error().to_string());
          writing = false;
          return;
        }
        if (writer.last_lsn() != n) {
          problem("writer: op " + std::to_string(n) + " was logged as LSN " +
                  std::to_string(writer.last_lsn()));
          writing = false;
          return;
        }
      }
      if (Clock::now() >= next_checkpoint) {
        if (auto done = writer.checkpoint(); !done) {
          problem("writer, checkpoint: " + done.error().to_string());
          writing = false;
          return;
        }
        ++checkpoints;
        next_checkpoint = Clock::now() + kCheckpointEvery;
      }
      std::this_thread::sleep_for(1ms);
    }
    final_lsn = n;
    writing = false;
  });
  std::jthread copier_thread([&](const std::stop_token& stop) {
    while (!stop.stop_requested()) {
      const int status = rsync(source.path(), copy.path(), rsync_errors);
      if (status != kRsyncOk && status != kRsyncVanished) {
        problem("rsync exited with " + std::to_string(status) + ": " + file_text(rsync_errors));
        return;
      }
      ++copies;
      std::this_thread::sleep_for(kCopyEvery);
    }
  });

  Model model(kSeed);
  std::uint64_t last_lsn = 0;
  int refreshes = 0;
  int waits = 0;
  while (writing) {
    auto refreshed = replica.refresh();
    ASSERT_THAT(refreshed, IsOk()) << "after " << refreshes << " refreshes";
    ++refreshes;
    if (!refreshed.value().waiting.empty()) ++waits;
    const auto view = replica.acquire();
    ASSERT_GE(view.lsn(), last_lsn) << "the replica's LSN went backwards";
    last_lsn = view.lsn();
    generations = view.generation();
    ASSERT_EQ(view.index().vectors(), model.at(view.lsn())) << "at LSN " << view.lsn();
    std::this_thread::sleep_for(2ms);
  }
  writer_thread.join();
  copier_thread.request_stop();
  copier_thread.join();
  ASSERT_THAT(problems, ::testing::IsEmpty());

  // The last copy, with the writer stopped: the replica reaches its LSN.
  ASSERT_EQ(rsync(source.path(), copy.path(), rsync_errors), kRsyncOk) << file_text(rsync_errors);
  const std::uint64_t end_lsn = final_lsn;
  ASSERT_EQ(end_lsn, writer.last_lsn());
  auto reached = replica.wait_for(end_lsn, 5s);
  ASSERT_THAT(reached, IsOk());
  EXPECT_TRUE(reached.value()) << "stopped at LSN " << replica.lsn() << " of " << end_lsn;
  EXPECT_EQ(replica.lsn(), end_lsn);
  EXPECT_EQ(replica.acquire().index().vectors(), writer.index().vectors());
  EXPECT_EQ(writer.index().vectors(), model.at(end_lsn));

  // The run saw what it is about: checkpoints copied and switched to, many
  // copies and states.
  EXPECT_GE(checkpoints.load(), 4);
  EXPECT_GE(replica.generation(), kMinGenerations);
  EXPECT_GE(copies.load(), kMinCopies);
  RecordProperty("lsn", std::to_string(end_lsn));
  RecordProperty("refreshes", refreshes);
  RecordProperty("waits", waits);
  RecordProperty("generations", std::to_string(replica.generation()));
  RecordProperty("copies", copies.load());
}

// A copier made by hand, to leave each hostile state on purpose. Files arrive
// as rsync delivers them: a new file renamed over the old one.
class HostileCopyTest : public ::testing::Test {
 protected:
  HostileCopyTest() {
    config_.path = source_.file("db.iqdb");
    config_.wal_enabled = true;
    config_.fsync_policy = FsyncPolicy::never();
    copied_ = config_;
    copied_.path = copy_.file("db.iqdb");
    auto created = Writer::open_with(StreamMapIndex(kDim, DistanceMetric::Euclidean), config_);
    EXPECT_THAT(created, IsOk());
    writer_.emplace(std::move(created).value());
  }

  // Inserts ids first..last, one LSN each.
  void insert(std::uint64_t first, std::uint64_t last) {
    for (std::uint64_t id = first; id <= last; ++id) {
      ASSERT_THAT(writer_->insert(id, vec(id)), IsOk());
    }
  }

  // The writer's state after inserting ids 1..n.
  static Content inserted(std::uint64_t n) {
    Content content;
    for (std::uint64_t id = 1; id <= n; ++id) content.emplace(id, vec(id));
    return content;
  }

  // `source`'s segment `number` (1 for the first).
  static std::filesystem::path segment(const TempDir& dir, std::uint64_t number) {
    return wal_segment_path(dir.file("db.iqdb"), number);
  }

  // Delivers the source's file `name` into the copy, or only its first
  // `length` bytes (as a copier that read it while the writer appended).
  void deliver(const std::filesystem::path& name, std::optional<std::uint64_t> length = {}) {
    auto bytes = read_file(source_.path() / name);
    ASSERT_FALSE(bytes.empty()) << name << " is missing or empty";
    if (length) bytes.resize(*length);
    const auto part = copy_.path() / ("." + name.string() + ".part");
    write_file(part, bytes);
    std::filesystem::rename(part, copy_.path() / name);
  }
  void deliver_segment(std::uint64_t number, std::optional<std::uint64_t> length = {}) {
    deliver(segment(source_, number).filename(), length);
  }
  void deliver_snapshot() { deliver("db.iqdb"); }

  Reader open_replica() {
    auto opened = Reader::open(copied_);
    EXPECT_THAT(opened, IsOk());
    return std::move(opened).value();
  }

  // A refresh that must succeed; its report.
  static RefreshReport refresh(Reader& replica) {
    auto refreshed = replica.refresh();
    EXPECT_THAT(refreshed, IsOk());
    return refreshed ? refreshed.value() : RefreshReport{};
  }

  static Content content(const Reader& replica) { return replica.acquire().index().vectors(); }

  TempDir source_, copy_;
  PersistConfig config_, copied_;
  std::optional<Writer> writer_;
};

TEST_F(HostileCopyTest, TornSegmentIsNotYet) {
  insert(1, 10);
  const std::uint64_t full = std::filesystem::file_size(segment(source_, 1));
  deliver_snapshot();
  deliver_segment(1, 20);  // not even its header
  Reader replica = open_replica();
  EXPECT_EQ(replica.lsn(), 0u);
  EXPECT_EQ(content(replica), inserted(0));

  deliver_segment(1, full - 3);  // the last frame cut short
  RefreshReport report = refresh(replica);
  EXPECT_EQ(report.records, 9u);
  EXPECT_THAT(report.waiting, HasSubstr("not complete"));
  EXPECT_EQ(replica.lsn(), 9u);
  EXPECT_EQ(content(replica), inserted(9));
  report = refresh(replica);  // nothing new: still waiting, nothing applied twice
  EXPECT_EQ(report.records, 0u);
  EXPECT_EQ(content(replica), inserted(9));

  deliver_segment(1);
  report = refresh(replica);
  EXPECT_EQ(report.records, 1u);
  EXPECT_EQ(report.waiting, "");
  EXPECT_EQ(replica.lsn(), 10u);
  EXPECT_EQ(content(replica), inserted(10));
}

TEST_F(HostileCopyTest, SnapshotBeforeItsSegments) {
  insert(1, 10);
  deliver_snapshot();
  deliver_segment(1);
  Reader replica = open_replica();
  ASSERT_EQ(replica.lsn(), 10u);

  ASSERT_THAT(writer_->checkpoint(), IsOk());  // snapshot at LSN 10, segment 2 from 11
  insert(11, 15);
  deliver_snapshot();  // segment 2 not there yet, segment 1 not deleted yet
  RefreshReport report = refresh(replica);
  EXPECT_TRUE(report.switched);
  EXPECT_EQ(replica.lsn(), 10u);
  EXPECT_EQ(replica.generation(), 2u);
  EXPECT_EQ(content(replica), inserted(10));

  deliver_segment(2, std::filesystem::file_size(segment(source_, 2)) - 1);
  report = refresh(replica);
  EXPECT_EQ(replica.lsn(), 14u);
  EXPECT_THAT(report.waiting, HasSubstr("not complete"));
  deliver_segment(2);
  std::filesystem::remove(segment(copy_, 1));  // what --delete-after does last
  refresh(replica);
  EXPECT_EQ(replica.lsn(), 15u);
  EXPECT_EQ(content(replica), inserted(15));
}

// The copy's segment 1 ends before the LSN of the newer snapshot that
// arrives next (the writer appended to segment 1 and checkpointed after the
// copier's last look at it), and segment 1 stays until the copier deletes it:
// what an rsync pass that starts after a checkpoint leaves until its
// --delete-after, and what a copier that never deletes leaves for good.
TEST_F(HostileCopyTest, StaleSegmentEndingBeforeTheNewSnapshotDoesNotBlockTheNext) {
  insert(1, 10);
  deliver_snapshot();
  deliver_segment(1);
  Reader replica = open_replica();
  ASSERT_EQ(replica.lsn(), 10u);

  insert(11, 12);                              // in segment 1, never copied
  ASSERT_THAT(writer_->checkpoint(), IsOk());  // snapshot at LSN 12, segment 2 from 13
  insert(13, 15);
  deliver_snapshot();
  RefreshReport report = refresh(replica);
  EXPECT_TRUE(report.switched);
  EXPECT_EQ(replica.lsn(), 12u);
  EXPECT_EQ(content(replica), inserted(12));

  // Segment 2 continues the new snapshot's LSN: everything the replica needs
  // is there, whatever segment 1 (all below the snapshot's LSN) holds.
  deliver_segment(2);
  report = refresh(replica);
  EXPECT_EQ(replica.lsn(), 15u) << "waiting: " << report.waiting;
  EXPECT_EQ(content(replica), inserted(15));
  EXPECT_EQ(report.waiting, "");
}

TEST_F(HostileCopyTest, OldSegmentsDeletedBeforeTheNewSnapshot) {
  insert(1, 10);
  deliver_snapshot();
  const std::uint64_t full = std::filesystem::file_size(segment(source_, 1));
  deliver_segment(1, full - 3);  // LSNs 1..9 and a torn tail
  Reader replica = open_replica();
  ASSERT_EQ(replica.lsn(), 9u);

  ASSERT_THAT(writer_->checkpoint(), IsOk());  // snapshot at LSN 10, segment 2 from 11
  insert(11, 15);
  // A copier that deletes first: segment 1 goes, then the snapshot too for a
  // moment (a tool that removes a file before writing its replacement).
  std::filesystem::remove(segment(copy_, 1));
  RefreshReport report = refresh(replica);
  EXPECT_EQ(replica.lsn(), 9u);
  EXPECT_EQ(content(replica), inserted(9));
  std::filesystem::remove(copy_.file("db.iqdb"));
  report = refresh(replica);
  EXPECT_EQ(replica.lsn(), 9u);
  EXPECT_FALSE(report.switched);

  deliver_segment(2);  // LSN 11 on: LSN 10 is only in the snapshot to come
  report = refresh(replica);
  EXPECT_EQ(replica.lsn(), 9u);
  EXPECT_EQ(content(replica), inserted(9));
  EXPECT_THAT(report.waiting, HasSubstr("starts at LSN 11"));

  deliver_snapshot();
  report = refresh(replica);
  EXPECT_TRUE(report.switched);
  EXPECT_EQ(replica.lsn(), 15u);
  EXPECT_EQ(content(replica), inserted(15));
}

}  // namespace
}  // namespace iqdb::persist::test
