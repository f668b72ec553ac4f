// Replica<I> switching to a new snapshot while the writer keeps
// checkpointing: a replica that tailed the log past a checkpoint before it
// saw the checkpoint's snapshot must not go back to that snapshot's LSN when
// the log after it is gone (a newer checkpoint removed it) or not there yet
// (a copier has not delivered it). The writer's steps run inside the
// replica's file system calls, at the instants that matter.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "iqdb/persist/persisted_index.h"
#include "iqdb/persist/replica.h"
#include "support/forwarding_file_system.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"
#include "wal/wal_segments.h"

namespace iqdb::persist::test {
namespace {

using Writer = PersistedIndex<StreamMapIndex>;
using Reader = Replica<StreamMapIndex>;
constexpr std::size_t kDim = 4;

std::vector<float> vec(std::uint64_t id) {
  const float x = static_cast<float>(id);
  return {x, 1.0f, -x, 0.5f};
}

// The operating system's file system, running a hook once right after the
// next status() or open_readable() of one path: the caller got what the
// path held before the hook ran.
class HookFileSystem final : public ForwardingFileSystem {
 public:
  enum class Call { Status, Open };

  void after_next(Call call, std::filesystem::path path, std::function<void()> hook) {
    armed_ = Armed{call, std::move(path), std::move(hook)};
  }
  bool fired() const { return !armed_; }

  // The next open of `path` fails with Io.
  void fail_next_open(std::filesystem::path path) { failing_ = std::move(path); }

  Result<std::unique_ptr<ReadableFile>> open_readable(const std::filesystem::path& path) override {
    if (failing_ && *failing_ == path) {
      failing_.reset();
      return fail(ErrorKind::Io, path.string() + ": injected");
    }
    auto opened = ForwardingFileSystem::open_readable(path);
    maybe_fire(Call::Open, path);
    return opened;
  }
  Result<FileStatus> status(const std::filesystem::path& path) override {
    auto status = ForwardingFileSystem::status(path);
    maybe_fire(Call::Status, path);
    return status;
  }

 private:
  struct Armed {
    Call call;
    std::filesystem::path path;
    std::function<void()> hook;
  };

  void maybe_fire(Call call, const std::filesystem::path& path) {
    if (!armed_ || armed_->call != call || armed_->path != path) return;
    const std::function<void()> hook = std::move(armed_->hook);
    armed_.reset();
    hook();
  }

  std::optional<Armed> armed_;
  std::optional<std::filesystem::path> failing_;
};

class ReplicaSwitchTest : public ::testing::Test {
 protected:
  ReplicaSwitchTest() {
    config_.path = dir_.file("db.iqdb");
    config_.wal_enabled = true;
    config_.fsync_policy = FsyncPolicy::never();
  }

  // A writer that inserted 1..4 into a new database (segment 1), and a
  // replica on the hooked file system at LSN 4.
  void start_at_lsn_4() {
    auto created = Writer::open_with(StreamMapIndex(kDim, DistanceMetric::Euclidean), config_);
    ASSERT_THAT(created, IsOk());
    writer_.emplace(std::move(created).value());
    for (std::uint64_t id = 1; id <= 4; ++id) ASSERT_THAT(writer_->insert(id, vec(id)), IsOk());
    PersistConfig reader_config = config_;
    reader_config.file_system = fs_;
    auto opened = Reader::open(reader_config);
    ASSERT_THAT(opened, IsOk());
    reader_.emplace(std::move(opened).value());
    ASSERT_EQ(reader_->lsn(), 4u);
  }

  // A writer at LSN 4, and a replica whose current generation (the first
  // snapshot's) tailed the log past a checkpoint at LSN 4 to LSN 8 before
  // it saw that checkpoint's snapshot.
  void start_ahead_of_a_checkpoint() {
    ASSERT_NO_FATAL_FAILURE(start_at_lsn_4());

    // Right after the refresh has seen the first snapshot still in place.
    fs_->after_next(HookFileSystem::Call::Status, config_.path, [this] {
      ASSERT_THAT(writer_->checkpoint(), IsOk());
      for (std::uint64_t id = 5; id <= 8; ++id) ASSERT_THAT(writer_->insert(id, vec(id)), IsOk());
    });
    auto refreshed = reader_->refresh();
    ASSERT_THAT(refreshed, IsOk());
    ASSERT_TRUE(fs_->fired());
    ASSERT_FALSE(refreshed.value().switched);
    ASSERT_EQ(reader_->lsn(), 8u);
    ASSERT_EQ(reader_->acquire().snapshot_lsn(), 0u);
    ASSERT_EQ(reader_->acquire().index().vectors(), writer_->index().vectors());
  }

  // The one log segment there is.
  std::filesystem::path only_segment() const {
    const auto segments = list_wal_segments(*default_file_system(), config_.path);
    EXPECT_THAT(segments, IsOk());
    if (!segments || segments.value().size() != 1) {
      ADD_FAILURE() << "expected one log segment";
      return {};
    }
    return wal_segment_path(config_.path, segments.value().front());
  }

  // A refresh switches to generation 2, built from the snapshot at
  // `snapshot_lsn`, and serves the writer's state.
  void expect_refresh_switches_to(std::uint64_t snapshot_lsn) {
    auto refreshed = reader_->refresh();
    ASSERT_THAT(refreshed, IsOk());
    EXPECT_TRUE(refreshed.value().switched);
    EXPECT_EQ(reader_->generation(), 2u);
    EXPECT_EQ(reader_->acquire().snapshot_lsn(), snapshot_lsn);
    expect_current();
  }

  // The replica serves the writer's state at the writer's LSN.
  void expect_current() {
    EXPECT_EQ(reader_->lsn(), writer_->last_lsn());
    const auto view = reader_->acquire();
    EXPECT_EQ(view.lsn(), writer_->last_lsn());
    EXPECT_EQ(view.index().vectors(), writer_->index().vectors());
  }

  TempDir dir_;
  PersistConfig config_;
  std::shared_ptr<HookFileSystem> fs_ = std::make_shared<HookFileSystem>();
  std::optional<Writer> writer_;
  std::optional<Reader> reader_;
};

TEST_F(ReplicaSwitchTest, LogRemovedByANewerCheckpointWaitsForThatCheckpoint) {
  ASSERT_NO_FATAL_FAILURE(start_ahead_of_a_checkpoint());
  // The switch opens the checkpoint at LSN 4; right after, a second
  // checkpoint (at LSN 8) removes the log that held 5..8.
  fs_->after_next(HookFileSystem::Call::Open, config_.path,
                  [this] { ASSERT_THAT(writer_->checkpoint(), IsOk()); });
  auto refreshed = reader_->refresh();
  ASSERT_THAT(refreshed, IsOk());
  ASSERT_TRUE(fs_->fired());
  EXPECT_FALSE(refreshed.value().switched);
  EXPECT_FALSE(refreshed.value().waiting.empty());
  EXPECT_EQ(reader_->generation(), 1u);
  expect_current();  // still LSN 8, never 4

  // The next refresh switches to the second checkpoint, which is at LSN 8.
  ASSERT_NO_FATAL_FAILURE(expect_refresh_switches_to(8));
}

TEST_F(ReplicaSwitchTest, NewSnapshotWhoseLogIsNotThereYetIsServedOnceItCatchesUp) {
  ASSERT_NO_FATAL_FAILURE(start_ahead_of_a_checkpoint());
  const std::filesystem::path segment = only_segment();
  ASSERT_FALSE(segment.empty());
  const auto away = dir_.file("segment-not-delivered-yet");
  // Right after the switch opened the checkpoint at LSN 4, the log after it
  // is gone, as from a copy that does not have it yet.
  fs_->after_next(HookFileSystem::Call::Open, config_.path,
                  [&] { std::filesystem::rename(segment, away); });
  auto refreshed = reader_->refresh();
  ASSERT_THAT(refreshed, IsOk());
  ASSERT_TRUE(fs_->fired());
  EXPECT_FALSE(refreshed.value().switched);
  EXPECT_THAT(refreshed.value().waiting, ::testing::HasSubstr("LSN 8"));
  expect_current();

  // Still missing: the pending generation waits; the current one is served.
  refreshed = reader_->refresh();
  ASSERT_THAT(refreshed, IsOk());
  EXPECT_FALSE(refreshed.value().switched);
  EXPECT_EQ(reader_->generation(), 1u);
  expect_current();

  // Delivered: the pending generation catches up and is served.
  std::filesystem::rename(away, segment);
  refreshed = reader_->refresh();
  ASSERT_THAT(refreshed, IsOk());
  EXPECT_TRUE(refreshed.value().switched);
  EXPECT_EQ(refreshed.value().records, 4u);
  EXPECT_EQ(reader_->generation(), 2u);
  EXPECT_EQ(reader_->acquire().snapshot_lsn(), 4u);
  expect_current();

  // And it follows the writer from there.
  ASSERT_THAT(writer_->insert(9, vec(9)), IsOk());
  ASSERT_THAT(reader_->refresh(), IsOk());
  expect_current();
}

// An error reading the log after the new snapshot is the refresh's error;
// the snapshot, which loaded, is not taken for a damaged one: the next
// refresh goes on with it.
TEST_F(ReplicaSwitchTest, LogErrorWhileCatchingUpIsRetriedNotBlamedOnTheSnapshot) {
  ASSERT_NO_FATAL_FAILURE(start_ahead_of_a_checkpoint());
  const std::filesystem::path segment = only_segment();
  ASSERT_FALSE(segment.empty());
  fs_->fail_next_open(segment);
  auto refreshed = reader_->refresh();
  ASSERT_FALSE(refreshed);
  EXPECT_EQ(refreshed.error().kind(), ErrorKind::Io);
  EXPECT_EQ(reader_->generation(), 1u);
  expect_current();

  ASSERT_NO_FATAL_FAILURE(expect_refresh_switches_to(4));
}

// The database recreated (OpenMode::Overwrite) by a writer that logged and
// checkpointed before the replica looked: the new snapshot is newer than the
// replica's, but its log, read whole, ends below the LSN the replica serves.
// That is a new history: the replica serves it, going back, rather than
// wait for the new writer to pass the old LSN.
TEST_F(ReplicaSwitchTest, DatabaseRecreatedAndCheckpointedIsServedAlthoughItsLsnIsLower) {
  {
    auto first = Writer::open_with(StreamMapIndex(kDim, DistanceMetric::Euclidean), config_);
    ASSERT_THAT(first, IsOk());
    for (std::uint64_t id = 1; id <= 6; ++id)
      ASSERT_THAT(first.value().insert(id, vec(id)), IsOk());
    auto opened = Reader::open(config_);
    ASSERT_THAT(opened, IsOk());
    reader_.emplace(std::move(opened).value());
    ASSERT_EQ(reader_->lsn(), 6u);
  }
  auto recreated = Writer::open_with(StreamMapIndex(kDim, DistanceMetric::Euclidean), config_,
                                     OpenMode::Overwrite);
  ASSERT_THAT(recreated, IsOk());
  writer_.emplace(std::move(recreated).value());
  ASSERT_THAT(writer_->insert(100, vec(100)), IsOk());
  ASSERT_THAT(writer_->insert(101, vec(101)), IsOk());
  ASSERT_THAT(writer_->checkpoint(), IsOk());
  ASSERT_THAT(writer_->insert(102, vec(102)), IsOk());
  ASSERT_EQ(writer_->last_lsn(), 3u);

  auto refreshed = reader_->refresh();
  ASSERT_THAT(refreshed, IsOk());
  EXPECT_TRUE(refreshed.value().switched) << refreshed.value().waiting;
  expect_current();
  EXPECT_EQ(reader_->acquire().snapshot_lsn(), 2u);
}

// The database recreated at the path while a refresh runs, after it saw the
// old snapshot in place: the new database's log has the same segment names,
// LSNs and frame sizes as the old one's (the same inserts, other vectors).
// The replica must never read on into the new log as if it continued the
// old one: it switches to the new database's snapshot instead.
class RecreatedDatabaseTest : public ReplicaSwitchTest {
 protected:
  static std::vector<float> other_vec(std::uint64_t id) {
    const float x = static_cast<float>(id);
    return {-x, 2.0f, x, -0.5f};
  }

  // Closes the first writer and recreates the database: inserts 1..4 with
  // other vectors, then `checkpoint_at_4`, then inserts 5 and 6.
  void recreate(bool checkpoint_at_4) {
    writer_.reset();
    auto recreated = Writer::open_with(StreamMapIndex(kDim, DistanceMetric::Euclidean), config_,
                                       OpenMode::Overwrite);
    ASSERT_THAT(recreated, IsOk());
    writer_.emplace(std::move(recreated).value());
    for (std::uint64_t id = 1; id <= 6; ++id) {
      if (id == 5 && checkpoint_at_4) {
        ASSERT_THAT(writer_->checkpoint(), IsOk());
      }
      ASSERT_THAT(writer_->insert(id, other_vec(id)), IsOk());
    }
  }

  // The refresh that saw the first snapshot switches to the new database's
  // and serves exactly its state.
  void expect_refresh_serves_the_new_database() {
    auto refreshed = reader_->refresh();
    ASSERT_THAT(refreshed, IsOk());
    ASSERT_TRUE(fs_->fired());
    EXPECT_TRUE(refreshed.value().switched) << refreshed.value().waiting;
    EXPECT_EQ(reader_->generation(), 2u);
    expect_current();
  }
};

TEST_F(RecreatedDatabaseTest, SegmentReplacedAtItsPathIsNotReadOnFromTheOldOffset) {
  ASSERT_NO_FATAL_FAILURE(start_at_lsn_4());
  fs_->after_next(HookFileSystem::Call::Status, config_.path,
                  [this] { ASSERT_NO_FATAL_FAILURE(recreate(/*checkpoint_at_4=*/false)); });
  ASSERT_NO_FATAL_FAILURE(expect_refresh_serves_the_new_database());
}

TEST_F(RecreatedDatabaseTest, NextSegmentOfTheNewDatabaseIsNotTakenForTheOldOnesSuccessor) {
  ASSERT_NO_FATAL_FAILURE(start_at_lsn_4());
  fs_->after_next(HookFileSystem::Call::Status, config_.path,
                  [this] { ASSERT_NO_FATAL_FAILURE(recreate(/*checkpoint_at_4=*/true)); });
  ASSERT_NO_FATAL_FAILURE(expect_refresh_serves_the_new_database());
  EXPECT_EQ(reader_->acquire().snapshot_lsn(), 4u);
}

}  // namespace
}  // namespace iqdb::persist::test
