// PersistedIndex with the write-ahead log: log-then-apply, replay, checkpoints,
// and one test for each failure mode of a naive log design (the issue's list):
//   1. a crash between a checkpoint's snapshot and its log reset;
//   2. a torn tail left in place, with new records appended after it;
//   3. mid-log corruption silently dropping every later record;
//   4. open_with() wiping an existing database;
//   5. FsyncPolicy::periodic() syncing only on the next append.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "db/snapshot_io.h"
#include "iqdb/persist/persisted_index.h"
#include "support/crash_file_system.h"
#include "support/fault_injection_file_system.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"
#include "support/wal_test_util.h"
#include "util/crc32.h"
#include "util/little_endian.h"
#include "wal/wal_format.h"
#include "wal/wal_reader.h"
#include "wal/wal_segments.h"
#include "wal/wal_writer.h"

namespace iqdb::persist::test {
namespace {

using ::testing::HasSubstr;
using Db = PersistedIndex<StreamMapIndex>;
using Content = std::map<std::uint64_t, std::vector<float>>;
constexpr std::size_t kDim = 4;

std::vector<float> vec(std::uint64_t id) {
  const float x = static_cast<float>(id);
  return {x, x + 0.5f, -x, 1.0f};
}

class WalPersistedIndexTest : public ::testing::Test {
 protected:
  WalPersistedIndexTest() {
    config_.path = dir_.file("db.iqdb");
    config_.wal_enabled = true;
  }

  Db create(StreamMapIndex index = StreamMapIndex(kDim, DistanceMetric::Euclidean)) {
    auto db = Db::open_with(std::move(index), config_);
    EXPECT_THAT(db, IsOk());
    return std::move(db).value();
  }

  Result<Db> load() { return Db::load(config_); }

  // Closes the writer `db` (one writer per database), then loads.
  Content reopened_content(Db&& db) {
    { const Db closing = std::move(db); }
    return loaded_content();
  }

  Content loaded_content() {
    auto db = load();
    EXPECT_THAT(db, IsOk());
    return db ? db.value().index().vectors() : Content{};
  }

  std::vector<std::uint64_t> segments() {
    return list_wal_segments(*default_file_system(), config_.path).value();
  }

  std::filesystem::path last_segment() { return wal_segment_path(config_.path, segments().back()); }

  // Writes a snapshot of an empty index at config_.path whose header
  // records `wal_lsn` and `database_id`, as no writer would.
  Result<void> save_empty_snapshot(std::uint64_t wal_lsn, std::uint64_t database_id) {
    const StreamMapIndex empty(kDim, DistanceMetric::Euclidean);
    const IndexFacts facts{
        StreamMapIndex::kIndexType, kDim, DistanceMetric::Euclidean, 0, wal_lsn, database_id};
    return detail::save_snapshot(config_, facts, [&](SectionWriter& out) {
      return out.add_streamed_section(kStreamSectionName,
                                      [&](StreamWriter& writer) { return empty.save_to(writer); });
    });
  }

  // Puts the database at /db/x.iqdb on a new CrashFileSystem and returns it.
  std::shared_ptr<CrashFileSystem> use_crash_file_system() {
    auto fs = std::make_shared<CrashFileSystem>();
    fs->create_dir("/db");
    config_.path = "/db/x.iqdb";
    config_.file_system = fs;
    return fs;
  }

  TempDir dir_;
  PersistConfig config_;
};

TEST_F(WalPersistedIndexTest, MutationsSurviveWithoutAnySaveAndReplayOnLoad) {
  {
    Db db = create();
    for (std::uint64_t id = 1; id <= 20; ++id) ASSERT_THAT(db.insert(id, vec(id)), IsOk());
    ASSERT_THAT(db.remove(7), IsOk());
    ASSERT_THAT(db.remove(8), IsOk());
  }  // no checkpoint, no save: only the log has them
  auto db = load();
  ASSERT_THAT(db, IsOk());
  Content expected;
  for (std::uint64_t id = 1; id <= 20; ++id) {
    if (id != 7 && id != 8) expected[id] = vec(id);
  }
  EXPECT_EQ(db.value().index().vectors(), expected);
  const WalReplayReport report = db.value().wal_replay();
  EXPECT_EQ(report.snapshot_lsn, 0u);
  EXPECT_EQ(report.last_lsn, 22u);
  EXPECT_EQ(report.records_replayed, 22u);
  EXPECT_EQ(report.ops_applied, 22u);
  EXPECT_EQ(report.ops_refused, 0u);
}

TEST_F(WalPersistedIndexTest, LoadThenMoreWritesThenLoadAgainKeepsEverything) {
  {
    Db db = create();
    ASSERT_THAT(db.insert(1, vec(1)), IsOk());
  }
  {
    auto db = load();
    ASSERT_THAT(db, IsOk());
    ASSERT_THAT(db.value().insert(2, vec(2)), IsOk());
  }
  {
    auto db = load();
    ASSERT_THAT(db, IsOk());
    ASSERT_THAT(db.value().remove(1), IsOk());
  }
  EXPECT_EQ(loaded_content(), (Content{{2, vec(2)}}));
  EXPECT_EQ(segments().size(), 3u);  // one per session, none rewritten
}

TEST_F(WalPersistedIndexTest, CheckpointFoldsTheLogIntoTheSnapshotAndStartsAnEmptyLog) {
  Db db = create();
  for (std::uint64_t id = 1; id <= 5; ++id) ASSERT_THAT(db.insert(id, vec(id)), IsOk());
  ASSERT_THAT(db.checkpoint(), IsOk());
  const auto header = read_file_header(config_.path);
  ASSERT_THAT(header, IsOk());
  EXPECT_EQ(header.value().wal_lsn, 5u);
  EXPECT_EQ(header.value().n_vectors, 5u);
  ASSERT_EQ(segments().size(), 1u);
  EXPECT_EQ(std::filesystem::file_size(last_segment()), 48u);  // header only

  ASSERT_THAT(db.insert(6, vec(6)), IsOk());
  const Content expected = db.index().vectors();
  { const Db closing = std::move(db); }
  auto loaded = load();
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded.value().index().vectors(), expected);
  EXPECT_EQ(loaded.value().wal_replay().snapshot_lsn, 5u);
  EXPECT_EQ(loaded.value().wal_replay().records_replayed, 1u);
}

TEST_F(WalPersistedIndexTest, SaveWithTheLogIsACheckpoint) {
  Db db = create();
  ASSERT_THAT(db.insert(1, vec(1)), IsOk());
  ASSERT_THAT(db.save(), IsOk());
  EXPECT_EQ(read_file_header(config_.path).value().wal_lsn, 1u);
  EXPECT_EQ(std::filesystem::file_size(last_segment()), 48u);
}

// Failure mode 1: the snapshot is written but the old log is not removed.
// Replaying that log onto the snapshot would insert every id a second time.
TEST_F(WalPersistedIndexTest, CrashBetweenCheckpointSnapshotAndLogResetReplaysNothingTwice) {
  auto fs = std::make_shared<FaultInjectionFileSystem>(default_file_system());
  config_.file_system = fs;
  Db db = create();
  for (std::uint64_t id = 1; id <= 10; ++id) ASSERT_THAT(db.insert(id, vec(id)), IsOk());
  fs->fail_nth(FsOp::Remove, 1);  // the checkpoint cannot retire the old segment
  EXPECT_THAT(db.checkpoint(), IsOk());
  EXPECT_EQ(segments().size(), 2u);  // the old segment (LSNs 1..10) and the new one
  ASSERT_THAT(db.insert(11, vec(11)), IsOk());
  const Content expected = db.index().vectors();
  { const Db closing = std::move(db); }

  auto loaded = load();
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded.value().index().vectors(), expected);
  EXPECT_EQ(loaded.value().wal_replay().records_replayed, 1u);  // only LSN 11
}

// Failure mode 2: after a torn tail is dropped, new records must not be lost
// behind it on the next load.
TEST_F(WalPersistedIndexTest, WritesAfterRecoveringATornTailSurviveTheNextLoad) {
  {
    Db db = create();
    for (std::uint64_t id = 1; id <= 3; ++id) ASSERT_THAT(db.insert(id, vec(id)), IsOk());
  }
  const auto segment = last_segment();
  truncate_file(segment, std::filesystem::file_size(segment) - 5);  // tear record 3
  {
    auto db = load();
    ASSERT_THAT(db, IsOk());
    EXPECT_EQ(db.value().index().vectors(), (Content{{1, vec(1)}, {2, vec(2)}}));
    EXPECT_GT(db.value().wal_replay().bytes_dropped, 0u);
    ASSERT_THAT(db.value().insert(4, vec(4)), IsOk());
    ASSERT_THAT(db.value().insert(3, vec(30)), IsOk());
  }
  EXPECT_EQ(loaded_content(), (Content{{1, vec(1)}, {2, vec(2)}, {3, vec(30)}, {4, vec(4)}}));
  EXPECT_EQ(loaded_content(), (Content{{1, vec(1)}, {2, vec(2)}, {3, vec(30)}, {4, vec(4)}}));
}

// Failure mode 3: a damaged record in the middle is refused by default, naming
// the file and offset, rather than silently dropping every record after it.
TEST_F(WalPersistedIndexTest, MidLogCorruptionRefusesByDefaultAndPointInTimeRecoversAPrefix) {
  {
    Db db = create();
    for (std::uint64_t id = 1; id <= 6; ++id) ASSERT_THAT(db.insert(id, vec(id)), IsOk());
  }
  const auto segment = last_segment();
  const std::uint64_t frame_size = (std::filesystem::file_size(segment) - 48) / 6;
  const std::uint64_t third_frame = 48 + 2 * frame_size;
  flip_byte(segment, third_frame + 20, 0x01);
  auto refused = load();
  EXPECT_THAT(refused, IsError(ErrorKind::ChecksumMismatch, segment.string()));
  EXPECT_THAT(refused,
              IsError(ErrorKind::ChecksumMismatch, "at offset " + std::to_string(third_frame)));
  config_.wal_recovery = WalRecoveryMode::AbsoluteConsistency;
  EXPECT_THAT(load(), IsError(ErrorKind::ChecksumMismatch, segment.string()));

  config_.wal_recovery = WalRecoveryMode::PointInTime;
  {
    auto db = load();
    ASSERT_THAT(db, IsOk());
    EXPECT_EQ(db.value().index().vectors(), (Content{{1, vec(1)}, {2, vec(2)}}));
    EXPECT_TRUE(db.value().wal_replay().checkpointed);
    EXPECT_EQ(db.value().wal_replay().frames_dropped, 3u);
    ASSERT_THAT(db.value().insert(9, vec(9)), IsOk());
  }
  // The lossy load checkpointed, so the default mode opens cleanly afterwards.
  config_.wal_recovery = WalRecoveryMode::TolerateCorruptedTail;
  EXPECT_EQ(loaded_content(), (Content{{1, vec(1)}, {2, vec(2)}, {9, vec(9)}}));
}

TEST_F(WalPersistedIndexTest, SkipCorruptedRecordsKeepsTheValidRecordsAfterTheDamage) {
  {
    Db db = create();
    for (std::uint64_t id = 1; id <= 4; ++id) ASSERT_THAT(db.insert(id, vec(id)), IsOk());
  }
  const auto segment = last_segment();
  const std::uint64_t frame_size = (std::filesystem::file_size(segment) - 48) / 4;
  flip_byte(segment, 48 + frame_size + 30, 0x80);  // record 2
  config_.wal_recovery = WalRecoveryMode::SkipCorruptedRecords;
  auto db = load();
  ASSERT_THAT(db, IsOk());
  EXPECT_EQ(db.value().index().vectors(), (Content{{1, vec(1)}, {3, vec(3)}, {4, vec(4)}}));
  EXPECT_TRUE(db.value().wal_replay().checkpointed);
  ASSERT_FALSE(db.value().wal_replay().notes.empty());
  EXPECT_THAT(db.value().wal_replay().notes[0], HasSubstr(segment.string()));
}

// Frames written while a group commit's fsync runs are not yet synced; a power
// loss may persist a later page and not an earlier one. Damage followed by
// intact frames that never saw it synced is that, not corruption: the load
// drops it (nothing there was acknowledged) instead of refusing to open.
TEST_F(WalPersistedIndexTest, UnsyncedFramesLostOutOfOrderAreATornTailNotCorruption) {
  config_.fsync_policy = FsyncPolicy::never();  // frames 3..6 written, never synced
  {
    Db db = create();
    for (std::uint64_t id = 1; id <= 6; ++id) ASSERT_THAT(db.insert(id, vec(id)), IsOk());
  }
  const auto segment = last_segment();
  const std::uint64_t frame_size = (std::filesystem::file_size(segment) - 48) / 6;
  flip_byte(segment, 48 + 2 * frame_size + 40, 0x01);  // record 3 lost, 4..6 made it
  config_.fsync_policy = FsyncPolicy::always();
  {
    auto db = load();
    ASSERT_THAT(db, IsOk());
    EXPECT_EQ(db.value().index().vectors(), (Content{{1, vec(1)}, {2, vec(2)}}));
    EXPECT_EQ(db.value().wal_replay().frames_dropped, 3u);
    EXPECT_TRUE(db.value().wal_replay().checkpointed);
    ASSERT_FALSE(db.value().wal_replay().notes.empty());
    EXPECT_THAT(db.value().wal_replay().notes[0], HasSubstr("no later record saw synced"));
  }
  config_.wal_recovery = WalRecoveryMode::AbsoluteConsistency;
  EXPECT_THAT(load(), IsOk());  // the checkpoint left a clean log
}

// The issue "damage under never() deletes intact records": a load must never
// delete a segment holding records it did not replay. Under never() nothing
// proves record 3 was synced, so the default load drops it and what follows
// (the state a power loss could have left), but moves the segment aside,
// byte for byte, instead of letting its checkpoint delete it.
TEST_F(WalPersistedIndexTest, UnsyncedMidLogDamageMovesTheSegmentAsideInsteadOfDeletingIt) {
  config_.fsync_policy = FsyncPolicy::never();
  {
    Db db = create();
    for (std::uint64_t id = 1; id <= 6; ++id) ASSERT_THAT(db.insert(id, vec(id)), IsOk());
  }
  const auto segment = last_segment();
  const std::uint64_t frame_size = (std::filesystem::file_size(segment) - 48) / 6;
  flip_byte(segment, 48 + 2 * frame_size + 40, 0x01);  // record 3; 4..6 intact
  const auto damaged_bytes = read_file(segment);
  TempDir copy;
  std::filesystem::copy(dir_.path(), copy.path(), std::filesystem::copy_options::recursive);
  {
    auto db = load();
    ASSERT_THAT(db, IsOk());
    EXPECT_EQ(db.value().index().vectors(), (Content{{1, vec(1)}, {2, vec(2)}}));
    const WalReplayReport report = db.value().wal_replay();
    EXPECT_EQ(report.frames_dropped, 3u);
    EXPECT_THAT(report.set_aside, ::testing::ElementsAre(segment.string() + ".damaged"));
    EXPECT_THAT(::testing::PrintToString(report.notes), HasSubstr(segment.string() + ".damaged"));
  }
  EXPECT_FALSE(std::filesystem::exists(segment));
  EXPECT_EQ(read_file(segment.string() + ".damaged"), damaged_bytes);
  {
    auto db = load();
    ASSERT_THAT(db, IsOk());
    EXPECT_EQ(db.value().index().vectors(), (Content{{1, vec(1)}, {2, vec(2)}}));
    EXPECT_TRUE(db.value().wal_replay().set_aside.empty());  // no longer part of the log
    ASSERT_THAT(db.value().checkpoint(), IsOk());
  }
  EXPECT_EQ(read_file(segment.string() + ".damaged"), damaged_bytes);  // no checkpoint removes it

  // The same log, loaded with SkipCorruptedRecords: only record 3 is lost.
  config_.path = copy.file("db.iqdb");
  config_.wal_recovery = WalRecoveryMode::SkipCorruptedRecords;
  EXPECT_EQ(loaded_content(),
            (Content{{1, vec(1)}, {2, vec(2)}, {4, vec(4)}, {5, vec(5)}, {6, vec(6)}}));
}

// SkipCorruptedRecords replays from the damaged segment, so only the
// checkpoint (once its snapshot holds those records) may move it aside. If
// that fails (or a crash comes first), the segment stays, and the next load
// recognises it by its damage, although the snapshot holds every record in
// it, and moves it aside.
TEST_F(WalPersistedIndexTest, ASegmentTheCheckpointCouldNotMoveAsideIsMovedByTheNextLoad) {
  config_.fsync_policy = FsyncPolicy::never();
  {
    Db db = create();
    for (std::uint64_t id = 1; id <= 4; ++id) ASSERT_THAT(db.insert(id, vec(id)), IsOk());
  }
  const auto segment = last_segment();
  const std::uint64_t frame_size = (std::filesystem::file_size(segment) - 48) / 4;
  flip_byte(segment, 48 + frame_size + 40, 0x01);  // record 2
  const auto damaged_bytes = read_file(segment);
  auto fs = std::make_shared<FaultInjectionFileSystem>();
  config_.file_system = fs;
  config_.wal_recovery = WalRecoveryMode::SkipCorruptedRecords;
  fs->fail_nth(FsOp::Rename, 2);  // the checkpoint's snapshot, then moving the segment aside
  {
    auto db = load();
    ASSERT_THAT(db, IsOk());
    EXPECT_TRUE(fs->fault_fired());
    EXPECT_EQ(db.value().index().vectors(), (Content{{1, vec(1)}, {3, vec(3)}, {4, vec(4)}}));
    EXPECT_TRUE(db.value().wal_replay().set_aside.empty());
    EXPECT_THAT(::testing::PrintToString(db.value().wal_replay().notes),
                HasSubstr("the next load moves it"));
  }
  EXPECT_EQ(read_file(segment), damaged_bytes);  // neither moved nor removed
  config_.wal_recovery = WalRecoveryMode::TolerateCorruptedTail;
  {
    auto db = load();
    ASSERT_THAT(db, IsOk());
    EXPECT_EQ(db.value().index().vectors(), (Content{{1, vec(1)}, {3, vec(3)}, {4, vec(4)}}));
    EXPECT_THAT(db.value().wal_replay().set_aside,
                ::testing::ElementsAre(segment.string() + ".damaged"));
  }
  EXPECT_EQ(read_file(segment.string() + ".damaged"), damaged_bytes);
}

TEST_F(WalPersistedIndexTest, DamageToRecordsALaterRecordSawSyncedIsCorruption) {
  {
    Db db = create();  // FsyncPolicy::always(): each record synced before the next
    for (std::uint64_t id = 1; id <= 4; ++id) ASSERT_THAT(db.insert(id, vec(id)), IsOk());
  }
  const auto segment = last_segment();
  const std::uint64_t frame_size = (std::filesystem::file_size(segment) - 48) / 4;
  flip_byte(segment, 48 + 2 * frame_size + 40, 0x01);  // record 3; record 4 saw it synced
  EXPECT_THAT(load(), IsError(ErrorKind::ChecksumMismatch, segment.string()));
}

// Failure mode 4: open_with() on an existing database must not wipe it.
TEST_F(WalPersistedIndexTest, OpenWithRefusesAnExistingDatabaseUnlessAskedToOverwrite) {
  {
    Db db = create();
    ASSERT_THAT(db.insert(1, vec(1)), IsOk());
  }
  auto again = Db::open_with(StreamMapIndex(kDim, DistanceMetric::Euclidean), config_);
  EXPECT_THAT(again, IsError(ErrorKind::AlreadyExists, config_.path.string()));
  EXPECT_EQ(loaded_content(), (Content{{1, vec(1)}}));

  // A log without its snapshot is a database too.
  std::filesystem::remove(config_.path);
  EXPECT_THAT(Db::open_with(StreamMapIndex(kDim, DistanceMetric::Euclidean), config_),
              IsError(ErrorKind::AlreadyExists, "1 log segment"));

  auto replaced =
      Db::open_with(StreamMapIndex(kDim, DistanceMetric::Euclidean), config_, OpenMode::Overwrite);
  ASSERT_THAT(replaced, IsOk());
  ASSERT_THAT(replaced.value().insert(5, vec(5)), IsOk());
  EXPECT_EQ(reopened_content(std::move(replaced).value()), (Content{{5, vec(5)}}));
}

TEST_F(WalPersistedIndexTest, OpenWithSavesTheInitialIndexAsTheFirstSnapshot) {
  StreamMapIndex initial(kDim, DistanceMetric::Euclidean);
  ASSERT_TRUE(initial.insert(100, vec(100), {}));
  { Db db = create(std::move(initial)); }
  EXPECT_EQ(read_file_header(config_.path).value().wal_lsn, 0u);
  EXPECT_EQ(loaded_content(), (Content{{100, vec(100)}}));
}

// Failure mode 5: Periodic must sync on its own, not only when the next
// append comes; a power loss after the interval keeps the record.
TEST_F(WalPersistedIndexTest, PeriodicSyncsOnATimerWithoutAFurtherWrite) {
  auto fs = use_crash_file_system();
  config_.fsync_policy = FsyncPolicy::periodic(std::chrono::milliseconds(10));
  {
    Db db = create();
    ASSERT_THAT(db.insert(1, vec(1)), IsOk());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    fs->simulate_power_loss();  // the db object is now cut off, as after a reboot
  }
  EXPECT_EQ(loaded_content(), (Content{{1, vec(1)}}));
}

TEST_F(WalPersistedIndexTest, NeverSurvivesAProcessCrashButNotAPowerLoss) {
  auto fs = use_crash_file_system();
  config_.fsync_policy = FsyncPolicy::never();
  {
    Db db = create();
    ASSERT_THAT(db.insert(1, vec(1)), IsOk());
    fs->simulate_process_crash();
  }
  EXPECT_EQ(loaded_content(), (Content{{1, vec(1)}}));
}

TEST_F(WalPersistedIndexTest, AlwaysKeepsEveryAcknowledgedWriteThroughAPowerLoss) {
  auto fs = use_crash_file_system();
  {
    Db db = create();
    for (std::uint64_t id = 1; id <= 5; ++id) ASSERT_THAT(db.insert(id, vec(id)), IsOk());
    fs->simulate_power_loss(
        {PowerLoss::UnsyncedData::TornPrefix, PowerLoss::UnsyncedEntries::Drop});
  }
  EXPECT_EQ(loaded_content().size(), 5u);
}

// A process crash leaves a record written but not yet synced; recovery
// replays it and continues the log after it. It must make it durable first:
// otherwise a power loss would drop it and leave a gap before the new segment.
TEST_F(WalPersistedIndexTest, RecoveryMakesWhatItReplayedDurableBeforeContinuingTheLog) {
  auto fs = use_crash_file_system();
  {
    Db db = create();
    ASSERT_THAT(db.insert(1, vec(1)), IsOk());
    fs->crash_after(2);  // the insert's write lands, its sync brings the machine down
    EXPECT_THAT(db.insert(2, vec(2)), IsError(ErrorKind::Io));
    EXPECT_EQ(db.index().vectors().size(), 1u);  // not applied: never acknowledged
  }
  fs->simulate_process_crash();
  {
    auto db = load();
    ASSERT_THAT(db, IsOk());
    EXPECT_EQ(db.value().index().vectors().size(), 2u);  // written, so replayed
    ASSERT_THAT(db.value().insert(3, vec(3)), IsOk());
  }
  fs->simulate_power_loss();
  EXPECT_EQ(loaded_content().size(), 3u);
}

TEST_F(WalPersistedIndexTest, ARefusedMutationIsLoggedAsAbortedAndNeverReplayed) {
  {
    Db db = create();
    ASSERT_THAT(db.insert(1, vec(1)), IsOk());
    EXPECT_THAT(db.insert(1, vec(2)), IsError(ErrorKind::DuplicateId));
    EXPECT_THAT(db.remove(42), IsError(ErrorKind::IdNotFound));
    EXPECT_THAT(db.insert(2, std::vector<float>{1.0f}), IsError(ErrorKind::DimensionMismatch));
    EXPECT_EQ(db.index().vectors(), (Content{{1, vec(1)}}));
  }
  auto db = load();
  ASSERT_THAT(db, IsOk());
  EXPECT_EQ(db.value().index().vectors(), (Content{{1, vec(1)}}));
  EXPECT_EQ(db.value().wal_replay().ops_refused, 0u);  // the Abort records said so
  EXPECT_EQ(db.value().wal_replay().last_lsn, 7u);     // 4 mutations + 3 aborts
}

TEST_F(WalPersistedIndexTest, BatchIsOneRecordAndReplaysWhole) {
  {
    Db db = create();
    WriteBatch batch;
    for (std::uint64_t id = 1; id <= 5; ++id) batch.insert(id, vec(id));
    batch.remove(3);
    ASSERT_THAT(db.apply_batch(batch), IsOk());
    EXPECT_EQ(db.index().vectors().size(), 4u);
  }
  auto db = load();
  ASSERT_THAT(db, IsOk());
  EXPECT_EQ(db.value().index().vectors().size(), 4u);
  EXPECT_EQ(db.value().wal_replay().records_replayed, 1u);
  EXPECT_EQ(db.value().wal_replay().ops_applied, 6u);
}

// A moved-from writer is refused, never a crash; the object it was moved to
// keeps the log and the writer lock.
TEST_F(WalPersistedIndexTest, AMovedFromIndexRefusesEveryCallAndTheNewOneWrites) {
  Db db = create();
  ASSERT_THAT(db.insert(1, vec(1)), IsOk());
  Db moved = std::move(db);
  EXPECT_THAT(db.insert(2, vec(2)),
              IsError(ErrorKind::InvalidArgument));  // NOLINT(bugprone-use-after-move)
  EXPECT_THAT(db.remove(1), IsError(ErrorKind::InvalidArgument));
  WriteBatch batch;
  batch.remove(1);
  EXPECT_THAT(db.apply_batch(batch), IsError(ErrorKind::InvalidArgument));
  EXPECT_THAT(db.save(), IsError(ErrorKind::InvalidArgument));
  EXPECT_THAT(db.sync(), IsError(ErrorKind::InvalidArgument));
  EXPECT_EQ(db.verification().state(), Verification::State::NotRun);
  EXPECT_EQ(db.wal_replay().records_replayed, 0u);
  EXPECT_TRUE(db.config().path.empty());
  ASSERT_THAT(moved.insert(2, vec(2)), IsOk());
  EXPECT_EQ(moved.config().path, config_.path);
}

TEST_F(WalPersistedIndexTest, AClearedBatchStartsOverAndCanBeAppliedAgain) {
  const Content expected = {{2, vec(2)}, {3, vec(3)}};
  {
    Db db = create();
    WriteBatch batch;
    batch.insert(1, vec(1));
    batch.insert(2, vec(2));
    ASSERT_THAT(db.apply_batch(batch), IsOk());
    batch.clear();
    EXPECT_TRUE(batch.empty());
    EXPECT_EQ(batch.size(), 0u);
    batch.insert(3, vec(3));
    batch.remove(1);
    ASSERT_EQ(batch.size(), 2u);
    ASSERT_THAT(db.apply_batch(batch), IsOk());  // inserting 1 and 2 again would be refused
    EXPECT_EQ(db.index().vectors(), expected);
  }
  auto db = load();
  ASSERT_THAT(db, IsOk());
  EXPECT_EQ(db.value().index().vectors(), expected);
  EXPECT_EQ(db.value().wal_replay().records_replayed, 2u);
  EXPECT_EQ(db.value().wal_replay().ops_applied, 4u);
}

TEST_F(WalPersistedIndexTest, TornBatchIsDroppedWhole) {
  {
    Db db = create();
    ASSERT_THAT(db.insert(9, vec(9)), IsOk());
    WriteBatch batch;
    for (std::uint64_t id = 1; id <= 5; ++id) batch.insert(id, vec(id));
    ASSERT_THAT(db.apply_batch(batch), IsOk());
  }
  const auto segment = last_segment();
  truncate_file(segment, std::filesystem::file_size(segment) - 1);
  EXPECT_EQ(loaded_content(), (Content{{9, vec(9)}}));
}

TEST_F(WalPersistedIndexTest, PartlyRefusedBatchKeepsItsPrefixLiveAndOnReplay) {
  Content live;
  {
    Db db = create();
    WriteBatch batch;
    batch.insert(1, vec(1));
    batch.insert(2, vec(2));
    batch.remove(77);  // refused
    batch.insert(3, vec(3));
    EXPECT_THAT(db.apply_batch(batch), IsError(ErrorKind::IdNotFound, "batch op 3 of 4"));
    live = db.index().vectors();
    EXPECT_EQ(live, (Content{{1, vec(1)}, {2, vec(2)}}));
  }
  EXPECT_EQ(loaded_content(), live);
}

TEST_F(WalPersistedIndexTest, WithoutTheLogABatchAppliesInOrderUpToARefusal) {
  config_.wal_enabled = false;
  Db db = create();
  WriteBatch batch;
  batch.insert(1, vec(1));
  batch.insert(1, vec(1));
  batch.insert(2, vec(2));
  EXPECT_THAT(db.apply_batch(batch), IsError(ErrorKind::DuplicateId, "batch op 2 of 3"));
  EXPECT_EQ(db.index().vectors(), (Content{{1, vec(1)}}));
}

TEST_F(WalPersistedIndexTest, AnIdTheLogCannotHoldIsRefusedBeforeAnythingIsLogged) {
  Db db = create();
  const VectorId huge = VectorId::from_bytes(std::string(70000, 'x')).value();
  EXPECT_THAT(db.insert(huge, vec(1)), IsError(ErrorKind::InvalidArgument));
  EXPECT_EQ(std::filesystem::file_size(last_segment()), 48u);
  ASSERT_THAT(db.insert(1, vec(1)), IsOk());
}

// The fsyncgate lesson: after a failed fsync the log refuses writes (the
// mutation was not applied) until a checkpoint starts a new segment.
TEST_F(WalPersistedIndexTest, AFailedSyncStopsTheLogUntilACheckpoint) {
  auto fs = std::make_shared<FaultInjectionFileSystem>(default_file_system());
  config_.file_system = fs;
  Db db = create();
  ASSERT_THAT(db.insert(1, vec(1)), IsOk());
  fs->fail_nth(FsOp::Sync, 1);
  EXPECT_THAT(db.insert(2, vec(2)), IsError(ErrorKind::Io));
  EXPECT_EQ(db.index().vectors().size(), 1u);
  EXPECT_THAT(db.insert(3, vec(3)), IsError(ErrorKind::Io, "refuses writes until a checkpoint"));
  EXPECT_THAT(db.remove(1), IsError(ErrorKind::Io));
  ASSERT_THAT(db.checkpoint(), IsOk());
  ASSERT_THAT(db.insert(3, vec(3)), IsOk());
  EXPECT_EQ(reopened_content(std::move(db)), (Content{{1, vec(1)}, {3, vec(3)}}));
}

TEST_F(WalPersistedIndexTest, AFailedWriteStopsTheLogToo) {
  auto fs = std::make_shared<FaultInjectionFileSystem>(default_file_system());
  config_.file_system = fs;
  Db db = create();
  fs->fail_nth(FsOp::WriteAt, 1);
  EXPECT_THAT(db.insert(1, vec(1)), IsError(ErrorKind::Io));
  EXPECT_THAT(db.insert(2, vec(2)), IsError(ErrorKind::Io));
  EXPECT_TRUE(db.index().vectors().empty());
}

TEST_F(WalPersistedIndexTest, AFailedCheckpointSaveLeavesTheLogWorking) {
  auto fs = std::make_shared<FaultInjectionFileSystem>(default_file_system());
  config_.file_system = fs;
  Db db = create();
  ASSERT_THAT(db.insert(1, vec(1)), IsOk());
  fs->fail_nth(FsOp::Rename, 1);
  EXPECT_THAT(db.checkpoint(), IsError(ErrorKind::Io));
  ASSERT_THAT(db.insert(2, vec(2)), IsOk());
  EXPECT_EQ(reopened_content(std::move(db)).size(), 2u);
}

TEST_F(WalPersistedIndexTest, ConcurrentWritersAreAllDurableAndShareSyncs) {
  auto fs = std::make_shared<FaultInjectionFileSystem>(default_file_system());
  // A slow disk: writers are back with their next record long before a sync
  // ends, so a group commit that gathers them needs far fewer syncs than
  // records (one that syncs each arrival at once needs about one per record).
  fs->set_sync_delay(std::chrono::milliseconds(5));
  config_.file_system = fs;
  Db db = create();
  constexpr int kThreads = 2;
  constexpr std::uint64_t kPerThread = 100;
  const std::size_t syncs_before = fs->calls(FsOp::Sync);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&db, t] {
      for (std::uint64_t i = 0; i < kPerThread; ++i) {
        const std::uint64_t id = 1000 * static_cast<std::uint64_t>(t + 1) + i;
        EXPECT_THAT(db.insert(id, vec(id)), IsOk());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const std::size_t syncs = fs->calls(FsOp::Sync) - syncs_before;
  // Two per sync in the steady state; a loaded machine may deschedule a
  // writer past a gathering leader's wait now and then.
  EXPECT_LE(syncs, kThreads * kPerThread * 3 / 4);
  EXPECT_EQ(db.index().vectors().size(), kThreads * kPerThread);
  const Content expected = db.index().vectors();
  EXPECT_EQ(reopened_content(std::move(db)), expected);
}

TEST_F(WalPersistedIndexTest, CheckpointWhileOtherThreadsWriteLosesNothing) {
  config_.fsync_policy = FsyncPolicy::never();  // about interleaving, not durability
  Db db = create();
  std::atomic<int> checkpoints{0};
  std::atomic<bool> stop{false};
  std::uint64_t written = 0;
  // The writer keeps going until several checkpoints have run meanwhile.
  std::thread writer([&] {
    for (std::uint64_t id = 1; id <= 200 || checkpoints.load() < 5; ++id) {
      EXPECT_THAT(db.insert(id, vec(id)), IsOk());
      written = id;
    }
    stop = true;
  });
  while (!stop) {
    EXPECT_THAT(db.checkpoint(), IsOk());
    ++checkpoints;
  }
  writer.join();
  EXPECT_GE(checkpoints.load(), 5);
  EXPECT_EQ(reopened_content(std::move(db)).size(), written);
}

TEST_F(WalPersistedIndexTest, ABatchTooLargeForOneRecordIsRefusedAndTheLogStaysUsable) {
  Db db = create();
  WriteBatch batch;
  const std::vector<float> wide(1 << 20, 0.5f);  // 4 MiB per insert
  for (std::uint64_t id = 1; id <= 17; ++id) batch.insert(id, wide);
  EXPECT_THAT(db.apply_batch(batch), IsError(ErrorKind::InvalidArgument, "split the batch"));
  EXPECT_TRUE(db.index().vectors().empty());
  ASSERT_THAT(db.insert(1, vec(1)), IsOk());
  EXPECT_EQ(reopened_content(std::move(db)), (Content{{1, vec(1)}}));
}

// An index whose insert throws for one id, as a user's index might (or on
// bad_alloc).
class ThrowingIndex : public StreamMapIndex {
 public:
  static constexpr std::uint64_t kThrowingId = 13;
  using StreamMapIndex::StreamMapIndex;
  explicit ThrowingIndex(StreamMapIndex base) : StreamMapIndex(std::move(base)) {}
  IndexResult<void> insert(const VectorId& id, std::span<const float> vector,
                           const Metadata& metadata) {
    if (id == VectorId(kThrowingId)) throw std::runtime_error("index failure");
    return StreamMapIndex::insert(id, vector, metadata);
  }
  static Result<ThrowingIndex> load_from(StreamReader& in) {
    IQDB_TRY_ASSIGN(auto base, StreamMapIndex::load_from(in));
    return ThrowingIndex(std::move(base));
  }
};

TEST_F(WalPersistedIndexTest, AnIndexThatThrowsStopsTheLogInsteadOfHangingLaterWriters) {
  auto db = PersistedIndex<ThrowingIndex>::open_with(ThrowingIndex(kDim, DistanceMetric::Cosine),
                                                     config_);
  ASSERT_THAT(db, IsOk());
  ASSERT_THAT(db.value().insert(1, vec(1)), IsOk());
  EXPECT_THROW((void)db.value().insert(ThrowingIndex::kThrowingId, vec(2)), std::runtime_error);
  EXPECT_THAT(db.value().insert(2, vec(2)), IsError(ErrorKind::Io, "the index threw"));
}

TEST_F(WalPersistedIndexTest, SaveWithoutTheLogIsRefusedWhereALogExists) {
  {
    Db db = create();
    ASSERT_THAT(db.insert(1, vec(1)), IsOk());
    ASSERT_THAT(db.remove(1), IsOk());
  }
  PersistConfig snapshot_only = config_;
  snapshot_only.wal_enabled = false;
  auto replica = Db::load(snapshot_only);
  ASSERT_THAT(replica, IsOk());
  ASSERT_THAT(replica.value().insert(1, vec(7)), IsOk());
  EXPECT_THAT(replica.value().save(), IsError(ErrorKind::InvalidConfig, "wal_enabled is false"));
  EXPECT_THAT(Db::open_with(StreamMapIndex(kDim, DistanceMetric::Euclidean), snapshot_only),
              IsError(ErrorKind::AlreadyExists, "1 log segment"));
  auto fresh = Db::open_with(StreamMapIndex(kDim, DistanceMetric::Euclidean), snapshot_only,
                             OpenMode::Overwrite);
  ASSERT_THAT(fresh, IsOk());
  EXPECT_THAT(fresh.value().save(), IsError(ErrorKind::InvalidConfig, ".wal-"));
  EXPECT_TRUE(loaded_content().empty());  // the log's own history, intact
}

TEST_F(WalPersistedIndexTest, LoadWithoutTheLogReadsTheLastCheckpointAlone) {
  {
    Db db = create();
    ASSERT_THAT(db.insert(1, vec(1)), IsOk());
    ASSERT_THAT(db.checkpoint(), IsOk());
    ASSERT_THAT(db.insert(2, vec(2)), IsOk());
  }
  PersistConfig snapshot_only = config_;
  snapshot_only.wal_enabled = false;
  auto replica = Db::load(snapshot_only);
  ASSERT_THAT(replica, IsOk());
  EXPECT_EQ(replica.value().index().vectors(), (Content{{1, vec(1)}}));
  EXPECT_EQ(replica.value().wal_replay().records_replayed, 0u);
  EXPECT_EQ(loaded_content().size(), 2u);
}

// A frame whose checksum holds but whose record no writer of this format
// produces (a bug, or a hostile file): the load names the segment and LSN
// rather than applying part of it or skipping it.
TEST_F(WalPersistedIndexTest, ARecordThatPassesItsChecksumButDoesNotDecodeFailsTheLoad) {
  {
    Db db = create();
    ASSERT_THAT(db.insert(1, vec(1)), IsOk());
  }
  const std::uint64_t number = segments().back() + 1;
  const auto segment = wal_segment_path(config_.path, number);
  const struct {
    std::vector<std::byte> body;
    const char* why;
  } records[] = {
      {{std::byte{0x66}, std::byte{0}}, "unknown record type 102"},  // in the replay pass
      {{std::byte{4}, std::byte{1}}, "ends inside"},  // an Abort, read in the first pass
  };
  for (const auto& [body, why] : records) {
    auto writer = WalWriter::create(*default_file_system(), config_.path, number, 2, false);
    ASSERT_THAT(writer, IsOk());
    ASSERT_THAT(writer.value()->append(body, 1), IsOk());
    ASSERT_THAT(writer.value()->close(), IsOk());
    EXPECT_THAT(load(),
                IsError(ErrorKind::InvalidPayload, {segment.string(), "record LSN 2", why}));
    std::filesystem::remove(segment);
  }
  EXPECT_EQ(loaded_content(), (Content{{1, vec(1)}}));
}

// The log says how much of a refused batch the index applied; replaying it
// onto a snapshot that is not the one the log continues (here another
// database's, which already holds id 2) makes the index refuse an op it
// once applied. That is a mismatch to report, not a refusal to skip.
TEST_F(WalPersistedIndexTest, ALogReplayedOntoAnotherDatabasesSnapshotIsRefused) {
  {
    Db db = create();
    WriteBatch batch;
    batch.insert(1, vec(1));
    batch.insert(2, vec(2));
    batch.remove(77);
    ASSERT_THAT(db.apply_batch(batch), IsError(ErrorKind::IdNotFound, "batch op 3 of 3"));
  }
  PersistConfig other = config_;
  other.path = dir_.file("other.iqdb");
  other.wal_enabled = false;
  StreamMapIndex holds_2(kDim, DistanceMetric::Euclidean);
  ASSERT_TRUE(holds_2.insert(2, vec(2), {}));
  auto foreign = Db::open_with(std::move(holds_2), other);
  ASSERT_THAT(foreign, IsOk());
  ASSERT_THAT(foreign.value().save(), IsOk());
  std::filesystem::rename(other.path, config_.path);
  // The segment's header records another database than the snapshot's.
  EXPECT_THAT(load(), IsError(ErrorKind::InvalidHeader,
                              {last_segment().string(), "log segment of database", "recreated"}));
  // A segment written before databases had ids is replayed, and its
  // records give the mismatch away.
  set_segment_database_id(last_segment(), 0);
  EXPECT_THAT(load(), IsError(ErrorKind::InvalidPayload,
                              {last_segment().string(), "record LSN 1",
                               "op 2 was applied when logged but the index now refuses it",
                               "DuplicateId", "does not match its log"}));
}

// Overwrite lists the old log, opens the old snapshot, then removes the log:
// a failure before anything is removed leaves the old database as it was.
TEST_F(WalPersistedIndexTest, OverwriteThatFailsBeforeRemovingAnythingKeepsTheOldDatabase) {
  {
    Db db = create();
    ASSERT_THAT(db.insert(1, vec(1)), IsOk());
  }
  auto fs = std::make_shared<FaultInjectionFileSystem>();
  config_.file_system = fs;
  for (const FsOp op : {FsOp::LockFile, FsOp::ListDir, FsOp::Remove}) {
    fs->fail_nth(op, 1);
    EXPECT_THAT(Db::open_with(StreamMapIndex(kDim, DistanceMetric::Euclidean), config_,
                              OpenMode::Overwrite),
                IsError(ErrorKind::Io, "injected"))
        << to_string(op);
    EXPECT_TRUE(fs->fault_fired()) << to_string(op);
    EXPECT_EQ(loaded_content(), (Content{{1, vec(1)}})) << to_string(op);
  }
  // Once the old log is gone, the directory must be synced before the new
  // snapshot is written: that failing fails the overwrite too.
  fs->fail_nth(FsOp::SyncDir, 1);
  EXPECT_THAT(
      Db::open_with(StreamMapIndex(kDim, DistanceMetric::Euclidean), config_, OpenMode::Overwrite),
      IsError(ErrorKind::Io, {dir_.path().string(), "sync_dir #"}));
  EXPECT_TRUE(segments().empty());
}

// A path without a directory names a file in the current directory: the
// log, the temporary files of saves and the directory syncs go there.
TEST_F(WalPersistedIndexTest, ABareFileNameKeepsTheDatabaseInTheCurrentDirectory) {
  struct InDirectory {  // for the test's duration, however it ends
    explicit InDirectory(const std::filesystem::path& dir) { std::filesystem::current_path(dir); }
    ~InDirectory() { std::filesystem::current_path(previous); }
    const std::filesystem::path previous = std::filesystem::current_path();
  } in_directory(dir_.path());
  config_.path = "bare.iqdb";
  {
    Db db = create();
    ASSERT_THAT(db.insert(1, vec(1)), IsOk());
    ASSERT_THAT(db.checkpoint(), IsOk());
    ASSERT_THAT(db.insert(2, vec(2)), IsOk());
  }
  EXPECT_EQ(loaded_content(), (Content{{1, vec(1)}, {2, vec(2)}}));
  const std::vector<std::string> entries = dir_.entries();
  ASSERT_GE(entries.size(), 2u);
  EXPECT_EQ(entries[0], "bare.iqdb");
  for (const std::string& name : entries) EXPECT_TRUE(name.starts_with("bare.iqdb")) << name;
}

TEST_F(WalPersistedIndexTest, SyncMakesPeriodicWritesDurableAtOnce) {
  auto fs = use_crash_file_system();
  config_.fsync_policy = FsyncPolicy::periodic(std::chrono::hours(1));
  {
    Db db = create();
    ASSERT_THAT(db.insert(1, vec(1)), IsOk());
    ASSERT_THAT(db.sync(), IsOk());
    fs->simulate_power_loss();
  }
  EXPECT_EQ(loaded_content().size(), 1u);
}

// The database id (docs/FORMAT.md, "Database identity"): chosen when the
// database is created, recorded by its snapshots and segments, kept by loads
// and checkpoints, chosen anew by Overwrite.
class DatabaseIdTest : public WalPersistedIndexTest {
 protected:
  std::uint64_t snapshot_id() {
    auto header = read_file_header(config_.path);
    EXPECT_THAT(header, IsOk());
    return header ? header.value().database_id : 0;
  }
  std::uint64_t segment_id(const std::filesystem::path& segment) {
    auto scan = read_wal_segment_header(read_file(segment), segment);
    EXPECT_THAT(scan, IsOk());
    return scan ? scan.value().database_id : 0;
  }
  void write_snapshot_without_id() {
    ASSERT_THAT(save_empty_snapshot(/*wal_lsn=*/0, /*database_id=*/0), IsOk());
  }
};

TEST_F(DatabaseIdTest, KeptByEveryFileOfADatabaseAndChosenAnewByOverwrite) {
  std::uint64_t id = 0;
  {
    Db db = create();
    ASSERT_THAT(db.insert(1, vec(1)), IsOk());
    id = snapshot_id();
    EXPECT_NE(id, 0u);
    EXPECT_EQ(segment_id(last_segment()), id);
  }
  {
    auto db = load();
    ASSERT_THAT(db, IsOk());
    ASSERT_THAT(db.value().insert(2, vec(2)), IsOk());
    ASSERT_THAT(db.value().checkpoint(), IsOk());
    ASSERT_THAT(db.value().insert(3, vec(3)), IsOk());
    EXPECT_EQ(snapshot_id(), id);
    EXPECT_EQ(segment_id(last_segment()), id);
  }
  Db recreated = [&] {
    auto db = Db::open_with(StreamMapIndex(kDim, DistanceMetric::Euclidean), config_,
                            OpenMode::Overwrite);
    EXPECT_THAT(db, IsOk());
    return std::move(db).value();
  }();
  ASSERT_THAT(recreated.insert(4, vec(4)), IsOk());
  const std::uint64_t new_id = snapshot_id();
  EXPECT_NE(new_id, 0u);
  EXPECT_NE(new_id, id);
  EXPECT_EQ(segment_id(last_segment()), new_id);
}

// A database written before ids existed: its segments still replay, and
// the first writer that logs chooses an id that every later writer keeps
// (each load would otherwise choose another, and the segments they leave
// would not belong to the snapshot that finally records one).
TEST_F(DatabaseIdTest, ADatabaseWithoutAnIdReplaysAndKeepsTheIdItsFirstWriterChose) {
  {
    Db db = create();
    ASSERT_THAT(db.insert(1, vec(1)), IsOk());
  }
  ASSERT_NO_FATAL_FAILURE(write_snapshot_without_id());
  ASSERT_NO_FATAL_FAILURE(set_segment_database_id(last_segment(), 0));
  ASSERT_EQ(snapshot_id(), 0u);
  std::uint64_t id = 0;
  {
    auto db = load();
    ASSERT_THAT(db, IsOk());
    EXPECT_EQ(db.value().index().vectors(), (Content{{1, vec(1)}}));
    ASSERT_THAT(db.value().insert(2, vec(2)), IsOk());
    id = segment_id(last_segment());
    EXPECT_NE(id, 0u);
  }
  auto db = load();
  ASSERT_THAT(db, IsOk());
  ASSERT_THAT(db.value().insert(3, vec(3)), IsOk());
  EXPECT_EQ(segment_id(last_segment()), id);
  ASSERT_THAT(db.value().checkpoint(), IsOk());
  EXPECT_EQ(snapshot_id(), id);
  EXPECT_EQ(reopened_content(std::move(db).value()),
            (Content{{1, vec(1)}, {2, vec(2)}, {3, vec(3)}}));
}

// A database whose LSNs leave no room for another record would load and then
// refuse every write: it is refused at load, naming the file.
TEST_F(WalPersistedIndexTest, SnapshotLsnThatLeavesNoRoomIsRefusedAtLoad) {
  ASSERT_THAT(save_empty_snapshot(/*wal_lsn=*/UINT64_MAX, /*database_id=*/0), IsOk());
  EXPECT_THAT(load(), IsError(ErrorKind::InvalidHeader, {config_.path.string(), "wal_lsn"}));
  config_.wal_enabled = false;
  EXPECT_THAT(load(), IsError(ErrorKind::InvalidHeader, "wal_lsn"));
}

TEST_F(WalPersistedIndexTest, SegmentFirstLsnThatLeavesNoRoomIsRefusedAtLoad) {
  { Db db = create(); }
  const auto path = wal_segment_path(config_.path, 2);
  std::vector<std::byte> header(wal_format::kHeaderSize);
  std::memcpy(header.data(), wal_format::kMagic.data(), wal_format::kMagic.size());
  store_le(header, wal_format::kVersionOffset, wal_format::kVersion, 4);
  store_le(header, wal_format::kChecksumOffset, wal_format::kChecksumCrc32, 4);
  store_le(header, wal_format::kSegmentNumberOffset, 2, 8);
  store_le(header, wal_format::kFirstLsnOffset, UINT64_MAX, 8);
  store_le(header, wal_format::kHeaderCrcOffset,
           crc32(std::span<const std::byte>(header).first(wal_format::kHeaderCrcOffset)), 4);
  write_file(path, header);
  EXPECT_THAT(load(), IsError(ErrorKind::InvalidHeader, {path.string(), "first LSN"}));
}

TEST_F(WalPersistedIndexTest, WriterNeverStartsASegmentPastTheLastLsn) {
  auto writer =
      WalWriter::create(*default_file_system(), config_.path, 1, wal_format::kMaxLsn + 1, false);
  EXPECT_THAT(writer, IsError(ErrorKind::InvalidArgument, "sequence number"));
  EXPECT_TRUE(dir_.entries().empty());
}

}  // namespace
}  // namespace iqdb::persist::test
