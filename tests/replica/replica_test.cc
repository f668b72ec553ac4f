// Replica<I> in one process: following commits, checkpoints, aborts, torn
// frames, generations held by Views, wait_for(), the follower thread and the
// control file's notification.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "iqdb/persist/persisted_index.h"
#include "iqdb/persist/replica.h"
#include "iqdb/persist/rewrite.h"
#include "support/fault_injection_file_system.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"
#include "wal/control_file.h"
#include "wal/wal_segments.h"

namespace iqdb::persist::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using Writer = PersistedIndex<StreamMapIndex>;
using Reader = Replica<StreamMapIndex>;
using Content = std::map<std::uint64_t, std::vector<float>>;
constexpr std::size_t kDim = 4;

std::vector<float> vec(std::uint64_t id) {
  const float x = static_cast<float>(id);
  return {x, x + 0.5f, -x, 1.0f};
}

class ReplicaTest : public ::testing::Test {
 protected:
  ReplicaTest() {
    config_.path = dir_.file("db.iqdb");
    config_.wal_enabled = true;
    config_.fsync_policy = FsyncPolicy::never();
  }

  Writer create() {
    auto db = Writer::open_with(StreamMapIndex(kDim, DistanceMetric::Euclidean), config_);
    EXPECT_THAT(db, IsOk());
    return std::move(db).value();
  }

  Reader replica(ReplicaOptions options = {}) {
    auto opened = Reader::open(config_, options);
    EXPECT_THAT(opened, IsOk());
    return std::move(opened).value();
  }

  static Content content(const Reader& reader) { return reader.acquire().index().vectors(); }

  TempDir dir_;
  PersistConfig config_;
};

TEST_F(ReplicaTest, FollowsCommitsAndCheckpoints) {
  Writer writer = create();
  ASSERT_THAT(writer.insert(1, vec(1)), IsOk());
  Reader reader = replica();
  EXPECT_EQ(reader.lsn(), 1u);
  EXPECT_EQ(content(reader), writer.index().vectors());

  ASSERT_THAT(writer.insert(2, vec(2)), IsOk());
  ASSERT_THAT(writer.remove(1), IsOk());
  auto refreshed = reader.refresh();
  ASSERT_THAT(refreshed, IsOk());
  EXPECT_EQ(refreshed.value().records, 2u);
  EXPECT_FALSE(refreshed.value().switched);
  EXPECT_EQ(reader.lsn(), writer.last_lsn());
  EXPECT_EQ(content(reader), writer.index().vectors());

  ASSERT_THAT(writer.checkpoint(), IsOk());
  ASSERT_THAT(writer.insert(3, vec(3)), IsOk());
  refreshed = reader.refresh();
  ASSERT_THAT(refreshed, IsOk());
  EXPECT_TRUE(refreshed.value().switched);
  EXPECT_EQ(reader.generation(), 2u);
  EXPECT_EQ(reader.acquire().snapshot_lsn(), 3u);
  EXPECT_EQ(reader.lsn(), writer.last_lsn());
  EXPECT_EQ(content(reader), writer.index().vectors());

  // Nothing new: nothing applied, no switch.
  refreshed = reader.refresh();
  ASSERT_THAT(refreshed, IsOk());
  EXPECT_EQ(refreshed.value().records, 0u);
  EXPECT_FALSE(refreshed.value().switched);
}

TEST_F(ReplicaTest, ViewKeepsItsGenerationAcrossSwitches) {
  Writer writer = create();
  ASSERT_THAT(writer.insert(1, vec(1)), IsOk());
  Reader reader = replica();
  auto old_view = std::make_unique<Reader::View>(reader.acquire());
  const Content before = old_view->index().vectors();
  ASSERT_THAT(writer.insert(2, vec(2)), IsOk());
  ASSERT_THAT(writer.checkpoint(), IsOk());
  ASSERT_THAT(writer.insert(3, vec(3)), IsOk());
  auto refreshed = reader.refresh();  // a switch does not wait for old Views
  ASSERT_THAT(refreshed, IsOk());
  EXPECT_TRUE(refreshed.value().switched);
  EXPECT_EQ(old_view->index().vectors(), before);
  EXPECT_EQ(old_view->lsn(), 1u);
  EXPECT_EQ(old_view->generation(), 1u);
  old_view.reset();
  EXPECT_EQ(content(reader), writer.index().vectors());
}

// How many of this process's mappings are of the file with inode `inode`.
int mappings_of_inode(std::uint64_t inode) {
  std::ifstream maps("/proc/self/maps");
  int found = 0;
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream fields(line);
    std::string range, perms, offset, device;
    std::uint64_t number = 0;
    if (fields >> range >> perms >> offset >> device >> number && number == inode) ++found;
  }
  return found;
}

// The previous generation goes to the release thread when its last View is
// released: its snapshot (unlinked by the checkpoint) stays mapped while a
// View holds it, and is unmapped once the release thread has run.
TEST_F(ReplicaTest, PreviousGenerationIsReleasedOnceItsLastViewIsGone) {
  using MappedWriter = PersistedIndex<SectionArrayIndex>;
  using MappedReader = Replica<SectionArrayIndex>;
  auto writer = MappedWriter::open_with(
      SectionArrayIndex(kDim, DistanceMetric::Euclidean, make_vectors(64, kDim)), config_);
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT(writer.value().checkpoint(), IsOk());
  auto reader = MappedReader::open(config_);
  ASSERT_THAT(reader, IsOk());
  ASSERT_TRUE(reader.value().acquire().index().is_mapped());
  struct stat first {};
  ASSERT_EQ(::stat(config_.path.c_str(), &first), 0);
  auto view = std::make_unique<MappedReader::View>(reader.value().acquire());
  ASSERT_EQ(mappings_of_inode(first.st_ino), 1);

  ASSERT_THAT(writer.value().insert(1000, vec(1000)), IsOk());
  ASSERT_THAT(writer.value().checkpoint(), IsOk());
  auto refreshed = reader.value().refresh();
  ASSERT_THAT(refreshed, IsOk());
  ASSERT_TRUE(refreshed.value().switched);
  detail::wait_for_background_releases();
  EXPECT_EQ(mappings_of_inode(first.st_ino), 1);  // the View holds it
  EXPECT_EQ(view->index().ids().size(), 64u);

  view.reset();
  detail::wait_for_background_releases();
  EXPECT_EQ(mappings_of_inode(first.st_ino), 0);
  EXPECT_EQ(reader.value().acquire().index().ids().size(), 65u);
}

TEST_F(ReplicaTest, RefusedOpsAreRefusedAsByTheWriter) {
  Writer writer = create();
  Reader reader = replica();
  ASSERT_THAT(writer.insert(1, vec(1)), IsOk());
  EXPECT_FALSE(writer.insert(1, vec(1)));  // DuplicateId: logged, refused, Abort logged
  WriteBatch batch;
  batch.insert(2, vec(2));
  batch.remove(99);  // refused: the batch stops here
  batch.insert(3, vec(3));
  EXPECT_FALSE(writer.apply_batch(batch));
  ASSERT_THAT(reader.refresh(), IsOk());
  EXPECT_EQ(reader.lsn(), writer.last_lsn());
  EXPECT_EQ(content(reader), writer.index().vectors());
}

TEST_F(ReplicaTest, IncompleteFrameIsNotYetAndNeverHalfApplied) {
  Writer writer = create();
  ASSERT_THAT(writer.insert(1, vec(1)), IsOk());
  Reader reader = replica();
  ASSERT_THAT(writer.insert(2, vec(2)), IsOk());
  // Cut the last frame short in a copy of the directory, as a copier that
  // caught the writer mid-frame would.
  TempDir copy;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    std::filesystem::copy(entry.path(), copy.path() / entry.path().filename());
  }
  PersistConfig copied = config_;
  copied.path = copy.file("db.iqdb");
  const auto segments = list_wal_segments(*default_file_system(), copied.path).value();
  const auto segment = wal_segment_path(copied.path, segments.back());
  const auto full_size = std::filesystem::file_size(segment);
  std::filesystem::permissions(segment, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add);
  std::filesystem::resize_file(segment, full_size - 3);
  auto opened = Reader::open(copied);
  ASSERT_THAT(opened, IsOk());
  EXPECT_EQ(opened.value().lsn(), 1u);
  auto refreshed = opened.value().refresh();
  ASSERT_THAT(refreshed, IsOk());
  EXPECT_EQ(opened.value().lsn(), 1u);
  // The rest of the frame arrives.
  std::filesystem::copy_file(wal_segment_path(config_.path, segments.back()), segment,
                             std::filesystem::copy_options::overwrite_existing);
  refreshed = opened.value().refresh();
  ASSERT_THAT(refreshed, IsOk());
  EXPECT_EQ(opened.value().lsn(), 2u);
  EXPECT_EQ(content(opened.value()), writer.index().vectors());
}

TEST_F(ReplicaTest, WaitForSeesOwnWritesFromAnotherThread) {
  Writer writer = create();
  Reader reader = replica(ReplicaOptions{.poll_interval = 10s});
  std::thread inserter([&] {
    std::this_thread::sleep_for(20ms);
    EXPECT_THAT(writer.insert(7, vec(7)), IsOk());
  });
  const auto started = std::chrono::steady_clock::now();
  auto reached = reader.wait_for(1, 5s);
  inserter.join();
  ASSERT_THAT(reached, IsOk());
  EXPECT_TRUE(reached.value());
  // Woken by the control file, not by the 10 s poll.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(content(reader).count(7), 1u);
  auto timed_out = reader.wait_for(100, 30ms);
  ASSERT_THAT(timed_out, IsOk());
  EXPECT_FALSE(timed_out.value());
}

TEST_F(ReplicaTest, FollowerKeepsUpAndLagReachesZero) {
  Writer writer = create();
  Reader reader = replica();
  reader.follow();
  for (std::uint64_t id = 1; id <= 50; ++id) ASSERT_THAT(writer.insert(id, vec(id)), IsOk());
  ASSERT_THAT(writer.checkpoint(), IsOk());
  for (std::uint64_t id = 51; id <= 60; ++id) ASSERT_THAT(writer.insert(id, vec(id)), IsOk());
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (reader.lsn() < writer.last_lsn() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  reader.stop_following();
  EXPECT_EQ(reader.lsn(), writer.last_lsn());
  EXPECT_EQ(content(reader), writer.index().vectors());
  const ReplicaLag lag = reader.lag();
  EXPECT_EQ(lag.records, 0u);
  EXPECT_TRUE(lag.notified);
  EXPECT_EQ(lag.writer_lsn, writer.last_lsn());
  EXPECT_EQ(lag.behind, std::chrono::nanoseconds::zero());
  const auto since_commit = std::chrono::system_clock::now() - lag.writer_commit_time;
  EXPECT_GE(since_commit, std::chrono::nanoseconds::zero());
  EXPECT_LT(since_commit, std::chrono::minutes(1));
  EXPECT_FALSE(reader.follower_error().has_value());
}

TEST_F(ReplicaTest, WorksInReadOnlyDirectoryWithoutControlFile) {
  {
    Writer writer = create();
    ASSERT_THAT(writer.insert(1, vec(1)), IsOk());
  }
  std::filesystem::remove(ControlFile::path_for(config_.path));
  std::filesystem::permissions(
      dir_.path(), std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  auto opened = Reader::open(config_);
  std::filesystem::permissions(dir_.path(), std::filesystem::perms::owner_all);
  ASSERT_THAT(opened, IsOk());
  EXPECT_EQ(opened.value().lsn(), 1u);
  EXPECT_FALSE(opened.value().lag().notified);
}

// Every writer path that replaces the snapshot (checkpoint, save, an
// in-place rewrite) writes a new file and renames it: a generation mapping
// the old one keeps reading exactly the bytes it mapped.
TEST_F(ReplicaTest, MappedGenerationSurvivesEveryWriterPathThatReplacesTheSnapshot) {
  using MappedWriter = PersistedIndex<SectionArrayIndex>;
  std::vector<float> vectors(16 * kDim);
  for (std::size_t i = 0; i < vectors.size(); ++i) vectors[i] = static_cast<float>(i) * 0.25f;
  auto writer =
      MappedWriter::open_with(SectionArrayIndex(kDim, DistanceMetric::Euclidean, vectors), config_);
  ASSERT_THAT(writer, IsOk());
  auto opened = Replica<SectionArrayIndex>::open(config_);
  ASSERT_THAT(opened, IsOk());
  auto& reader = opened.value();
  const auto view = reader.acquire();
  ASSERT_TRUE(view.index().is_mapped());
  const std::vector<float> seen(view.index().vectors().begin(), view.index().vectors().end());
  ASSERT_EQ(seen, vectors);

  ASSERT_THAT(writer.value().insert(100, vec(100)), IsOk());
  ASSERT_THAT(writer.value().checkpoint(), IsOk());
  ASSERT_THAT(writer.value().remove(3), IsOk());
  ASSERT_THAT(writer.value().save(), IsOk());
  { const MappedWriter closing = std::move(writer).value(); }  // one writer: the rewrite
  RewriteOptions compress;
  compress.compression = Compression::zstd();
  ASSERT_THAT(rewrite_snapshot(config_.path, config_.path, compress), IsOk());
  ASSERT_THAT(reader.refresh(), IsOk());

  EXPECT_TRUE(std::equal(seen.begin(), seen.end(), view.index().vectors().begin(),
                         view.index().vectors().end()));
  EXPECT_EQ(view.lsn(), 0u);
  EXPECT_GE(reader.generation(), 2u);
  EXPECT_EQ(reader.acquire().index().ids().size(), 16u);
}

// A refresh waiting to apply records is not starved by a stream of Views,
// and a thread that holds a View may take another while it waits.
TEST_F(ReplicaTest, RefreshIsNotStarvedByViewsAndNestedViewsDoNotDeadlock) {
  Writer writer = create();
  Reader reader = replica();
  std::atomic<bool> stop{false};
  std::vector<std::thread> queries;
  for (int t = 0; t < 3; ++t) {
    queries.emplace_back([&] {
      while (!stop.load()) {
        const auto outer = reader.acquire();
        std::this_thread::sleep_for(200us);
        const auto inner = reader.acquire();  // nested: never waits for the refresh
        EXPECT_GE(inner.lsn(), outer.lsn());
      }
    });
  }
  for (std::uint64_t id = 1; id <= 20; ++id) {
    ASSERT_THAT(writer.insert(id, vec(id)), IsOk());
    ASSERT_THAT(reader.refresh(), IsOk());
    EXPECT_EQ(reader.lsn(), id);
  }
  stop = true;
  for (auto& query : queries) query.join();
  EXPECT_EQ(content(reader), writer.index().vectors());
}

// The control file is a hint: a foreign or damaged one is ignored by a
// replica (which polls) and taken over by the next writer.
TEST_F(ReplicaTest, ForeignControlFileIsIgnoredThenReset) {
  {
    Writer writer = create();
    ASSERT_THAT(writer.insert(1, vec(1)), IsOk());
  }
  const auto control_path = ControlFile::path_for(config_.path);
  {
    std::ofstream garbage(control_path, std::ios::binary | std::ios::trunc);
    garbage << std::string(ControlFile::kFileSize, 'x');
  }
  {
    Reader reader = replica();
    EXPECT_EQ(reader.lsn(), 1u);
    EXPECT_FALSE(reader.lag().notified);
  }
  auto writer = Writer::load(config_);
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT(writer.value().insert(2, vec(2)), IsOk());
  auto control = ControlFile::open_for_reader(config_.path);
  ASSERT_THAT(control, IsOk());
  EXPECT_EQ(control.value()->committed_lsn(), 2u);
  Reader reader = replica();
  EXPECT_TRUE(reader.lag().notified);
  EXPECT_EQ(reader.lag().writer_lsn, 2u);
}

TEST_F(ReplicaTest, RefreshWhileHoldingAViewIsRefusedNotDeadlocked) {
  Writer writer = create();
  Reader reader = replica();
  ASSERT_THAT(writer.insert(1, vec(1)), IsOk());
  {
    const auto view = reader.acquire();
    auto refreshed = reader.refresh();
    ASSERT_FALSE(refreshed);
    EXPECT_EQ(refreshed.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_THAT(refreshed.error().message(), HasSubstr("holds a View of the current generation"));
    EXPECT_FALSE(reader.wait_for(1, 10ms));
  }
  auto reached = reader.wait_for(1, 5s);
  ASSERT_THAT(reached, IsOk());
  EXPECT_TRUE(reached.value());
}

// A new snapshot that cannot be loaded is reported at each refresh without
// being read again (a damaged 100 GB file is not re-verified every poll),
// and the next good snapshot is switched to.
TEST_F(ReplicaTest, DamagedNewSnapshotIsReportedNotReread) {
  Writer writer = create();
  ASSERT_THAT(writer.insert(1, vec(1)), IsOk());
  auto fs = std::make_shared<FaultInjectionFileSystem>();
  PersistConfig replica_config = config_;
  replica_config.file_system = fs;
  auto opened = Reader::open(replica_config);
  ASSERT_THAT(opened, IsOk());
  Reader& reader = opened.value();

  ASSERT_THAT(writer.checkpoint(), IsOk());
  const auto size = std::filesystem::file_size(config_.path);
  std::filesystem::permissions(config_.path, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add);
  {
    std::fstream file(config_.path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(size - 1));
    file.put('\x5a');
  }
  auto first = reader.refresh();
  ASSERT_FALSE(first);
  fs->reset_counts();
  auto second = reader.refresh();
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().kind(), first.error().kind());
  EXPECT_LE(fs->calls(FsOp::OpenReadable), 1u);  // the stat, not a load
  EXPECT_EQ(reader.lsn(), 1u);                   // still serving its generation

  ASSERT_THAT(writer.insert(2, vec(2)), IsOk());
  ASSERT_THAT(writer.checkpoint(), IsOk());
  auto third = reader.refresh();
  ASSERT_THAT(third, IsOk());
  EXPECT_TRUE(third.value().switched);
  EXPECT_EQ(content(reader), writer.index().vectors());
}

TEST_F(ReplicaTest, LagCountsWhatTheWriterCommittedSinceTheLastRefresh) {
  Writer writer = create();
  Reader reader = replica();
  EXPECT_EQ(reader.lag().records, 0u);
  for (std::uint64_t id = 1; id <= 5; ++id) ASSERT_THAT(writer.insert(id, vec(id)), IsOk());
  std::this_thread::sleep_for(5ms);
  ReplicaLag lag = reader.lag();
  EXPECT_TRUE(lag.notified);
  EXPECT_EQ(lag.lsn, 0u);
  EXPECT_EQ(lag.writer_lsn, 5u);
  EXPECT_EQ(lag.records, 5u);
  EXPECT_GE(lag.behind, 5ms);
  ASSERT_THAT(reader.refresh(), IsOk());
  lag = reader.lag();
  EXPECT_EQ(lag.records, 0u);
  EXPECT_EQ(lag.bytes, 0u);
  EXPECT_EQ(lag.behind, std::chrono::nanoseconds::zero());
}

TEST_F(ReplicaTest, MissingDatabaseIsNotFound) {
  auto opened = Reader::open(config_);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().kind(), ErrorKind::NotFound);
}

TEST_F(ReplicaTest, BadOptionsAreRefused) {
  create();
  auto opened = Reader::open(config_, ReplicaOptions{.poll_interval = 0ms});
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().kind(), ErrorKind::InvalidConfig);
  EXPECT_THAT(opened.error().message(), HasSubstr("poll_interval"));
}

}  // namespace
}  // namespace iqdb::persist::test
