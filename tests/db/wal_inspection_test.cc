// inspect_wal(): the read-only report behind `iqdb-persist wal`.
#include "iqdb/persist/wal_inspection.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "../../fuzz/wal_segment_repair.h"
#include "iqdb/persist.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"
#include "support/wal_test_util.h"
#include "wal/wal_record.h"
#include "wal/wal_segments.h"

namespace iqdb::persist::test {
namespace {

class InspectWalTest : public ::testing::Test {
 protected:
  std::vector<std::uint64_t> write_segment(std::uint64_t number, std::uint64_t first_lsn,
                                           int count) {
    return write_wal_segment(snapshot_, number, first_lsn, count);
  }

  TempDir dir_;
  std::filesystem::path snapshot_ = dir_.file("db.iqdb");
};

TEST_F(InspectWalTest, NoSnapshotAndNoLogIsAnEmptyReport) {
  auto report = inspect_wal(snapshot_);
  ASSERT_THAT(report, IsOk());
  EXPECT_FALSE(report.value().snapshot_found);
  EXPECT_TRUE(report.value().segments.empty());
}

TEST_F(InspectWalTest, ListsSegmentsInOrderAndIgnoresLookalikes) {
  write_segment(2, 4, 2);
  write_segment(1, 1, 3);
  write_file(dir_.file("db.iqdb.wal-xyz"), random_bytes(10, 1));
  write_file(dir_.file("db.iqdb.wal-000000000000000A"), random_bytes(10, 3));  // not lowercase
  write_file(dir_.file("db.iqdb.wal-00000000000000g1"), random_bytes(10, 4));
  write_file(dir_.file("other.iqdb.wal-0000000000000001"), random_bytes(10, 2));
  write_file(dir_.file("db.iqdb.wal-0000000000000003.damaged"), random_bytes(10, 5));
  write_file(dir_.file("db.iqdb.wal-0000000000000003.damaged-2"), random_bytes(10, 6));
  auto report = inspect_wal(snapshot_);
  ASSERT_THAT(report, IsOk());
  ASSERT_EQ(report.value().segments.size(), 2u);
  EXPECT_EQ(report.value().segments[0].path, wal_segment_path(snapshot_, 1));
  EXPECT_EQ(report.value().segments[0].frames, 3u);
  EXPECT_EQ(report.value().segments[1].first_lsn, 4u);
  EXPECT_EQ(report.value().segments[1].last_lsn, 5u);
  ASSERT_EQ(report.value().modes.size(), 4u);
  for (const WalModeOutcome& outcome : report.value().modes) {
    EXPECT_FALSE(outcome.refusal) << to_string(outcome.mode);
    EXPECT_EQ(outcome.last_lsn, 5u);
    EXPECT_EQ(outcome.frames_replayed, 5u);
  }
}

TEST_F(InspectWalTest, CountsRecordTypesOfALogWrittenByPersistedIndex) {
  PersistConfig config(snapshot_);
  config.wal_enabled = true;
  auto db =
      PersistedIndex<StreamMapIndex>::open_with(StreamMapIndex(2, DistanceMetric::Cosine), config);
  ASSERT_THAT(db, IsOk());
  const std::vector<float> v = {1, 2};
  ASSERT_THAT(db.value().insert(1, v), IsOk());
  ASSERT_THAT(db.value().insert(2, v), IsOk());
  ASSERT_THAT(db.value().remove(1), IsOk());
  EXPECT_THAT(db.value().remove(1), IsError(ErrorKind::IdNotFound));  // logged, then an Abort
  WriteBatch batch;
  batch.insert(3, v);
  ASSERT_THAT(db.value().apply_batch(batch), IsOk());
  auto report = inspect_wal(snapshot_);
  ASSERT_THAT(report, IsOk());
  ASSERT_EQ(report.value().segments.size(), 1u);
  const WalSegmentInfo& segment = report.value().segments[0];
  EXPECT_EQ(segment.frames, 6u);
  EXPECT_EQ(segment.inserts, 2u);
  EXPECT_EQ(segment.removes, 2u);
  EXPECT_EQ(segment.aborts, 1u);
  EXPECT_EQ(segment.batches, 1u);
  EXPECT_EQ(report.value().modes[0].frames_replayed, 6u);
}

TEST_F(InspectWalTest, ReportsWhatEachModeDoesWithMidLogCorruption) {
  const auto offsets = write_segment(1, 1, 4);
  flip_byte(wal_segment_path(snapshot_, 1), offsets[1] + 18, 0x04);
  auto report = inspect_wal(snapshot_);
  ASSERT_THAT(report, IsOk());
  const auto& segment = report.value().segments.at(0);
  ASSERT_EQ(segment.damages.size(), 1u);
  EXPECT_FALSE(segment.damages[0].torn_tail);
  EXPECT_EQ(segment.damages[0].offset, offsets[1]);
  const auto& modes = report.value().modes;
  EXPECT_EQ(modes[0].mode, WalRecoveryMode::TolerateCorruptedTail);
  ASSERT_TRUE(modes[0].refusal.has_value());
  EXPECT_EQ(modes[0].refusal->kind(), ErrorKind::ChecksumMismatch);
  EXPECT_EQ(modes[2].mode, WalRecoveryMode::PointInTime);
  EXPECT_EQ(modes[2].last_lsn, 1u);
  EXPECT_EQ(modes[2].frames_dropped, 2u);
  EXPECT_EQ(modes[3].mode, WalRecoveryMode::SkipCorruptedRecords);
  EXPECT_EQ(modes[3].last_lsn, 4u);
  EXPECT_EQ(modes[3].frames_replayed, 3u);
  // Neither lossy load deletes the damaged segment.
  EXPECT_THAT(modes[2].set_aside, ::testing::ElementsAre(wal_segment_path(snapshot_, 1)));
  EXPECT_THAT(modes[3].set_aside, ::testing::ElementsAre(wal_segment_path(snapshot_, 1)));
}

// `iqdb-persist wal FILE` on a segment a load moved aside: no snapshot or
// log around it, just what the file holds.
TEST_F(InspectWalTest, ReadsASegmentMovedAsideWhenGivenItsPath) {
  const auto offsets = write_wal_segment(snapshot_, 1, 1, 5, /*synced=*/false);
  flip_byte(wal_segment_path(snapshot_, 1), offsets[2] + 30, 0x02);  // LSN 3
  auto moved = set_aside_wal_segment(*default_file_system(), wal_segment_path(snapshot_, 1));
  ASSERT_THAT(moved, IsOk());
  EXPECT_EQ(moved.value(), dir_.file("db.iqdb.wal-0000000000000001.damaged"));
  EXPECT_THAT(inspect_wal(snapshot_).value().segments, ::testing::IsEmpty());

  auto report = inspect_wal(moved.value());
  ASSERT_THAT(report, IsOk());
  EXPECT_TRUE(report.value().lone_segment);
  EXPECT_TRUE(report.value().modes.empty());
  ASSERT_EQ(report.value().segments.size(), 1u);
  const WalSegmentInfo& segment = report.value().segments[0];
  EXPECT_EQ(segment.path, moved.value());
  EXPECT_EQ(segment.frames, 4u);
  EXPECT_EQ(segment.last_lsn, 5u);
  ASSERT_EQ(segment.damages.size(), 1u);
  EXPECT_FALSE(segment.damages[0].torn_tail);
  EXPECT_EQ(segment.damages[0].offset, offsets[2]);

  // Named like a segment, its header too damaged to tell: still a segment.
  flip_byte(moved.value(), 0, 0x01);
  auto unreadable = inspect_wal(moved.value());
  ASSERT_THAT(unreadable, IsOk());
  ASSERT_EQ(unreadable.value().segments.size(), 1u);
  EXPECT_THAT(*unreadable.value().segments[0].header_error, IsError(ErrorKind::BadMagic));
}

TEST_F(InspectWalTest, SettingASegmentAsideNeverReplacesAnEarlierOne) {
  write_segment(1, 1, 2);
  const auto earlier = random_bytes(10, 7);
  write_file(dir_.file("db.iqdb.wal-0000000000000001.damaged"), earlier);
  auto moved = set_aside_wal_segment(*default_file_system(), wal_segment_path(snapshot_, 1));
  ASSERT_THAT(moved, IsOk());
  EXPECT_EQ(moved.value(), dir_.file("db.iqdb.wal-0000000000000001.damaged-2"));
  EXPECT_EQ(read_file(dir_.file("db.iqdb.wal-0000000000000001.damaged")), earlier);
  EXPECT_FALSE(std::filesystem::exists(wal_segment_path(snapshot_, 1)));
}

// The scan's CRC budget ran out: the report says so, with the reason, and
// the default mode refuses rather than drop what may follow.
TEST_F(InspectWalTest, ReportsAnUnscannedRestWithItsReason) {
  write_segment(1, 1, 2);
  const std::uint64_t offset = append_crafted_headers(wal_segment_path(snapshot_, 1), 3);
  auto report = inspect_wal(snapshot_);
  ASSERT_THAT(report, IsOk());
  const auto& segment = report.value().segments.at(0);
  EXPECT_EQ(segment.frames, 2u);
  ASSERT_EQ(segment.damages.size(), 1u);
  EXPECT_FALSE(segment.damages[0].torn_tail);
  EXPECT_TRUE(segment.damages[0].unscanned);
  EXPECT_EQ(segment.damages[0].offset, offset);
  EXPECT_THAT(segment.damages[0].reason, ::testing::HasSubstr("CRC budget"));
  const auto& modes = report.value().modes;
  ASSERT_TRUE(modes[0].refusal.has_value());
  EXPECT_EQ(modes[0].refusal->kind(), ErrorKind::ChecksumMismatch);
  EXPECT_EQ(modes[2].mode, WalRecoveryMode::PointInTime);
  EXPECT_EQ(modes[2].last_lsn, 2u);
}

// A segment whose header cannot be read is listed with the reason, and each
// mode says what a load would do about it.
TEST_F(InspectWalTest, ReportsASegmentWithAnUnreadableHeader) {
  write_segment(1, 1, 2);
  write_segment(2, 3, 2);
  flip_byte(wal_segment_path(snapshot_, 1), 0, 0x01);  // the magic
  auto report = inspect_wal(snapshot_);
  ASSERT_THAT(report, IsOk());
  ASSERT_EQ(report.value().segments.size(), 2u);
  const WalSegmentInfo& damaged = report.value().segments[0];
  EXPECT_EQ(damaged.path, wal_segment_path(snapshot_, 1));
  ASSERT_TRUE(damaged.header_error.has_value());
  EXPECT_THAT(*damaged.header_error,
              IsError(ErrorKind::BadMagic, wal_segment_path(snapshot_, 1).string()));
  EXPECT_EQ(damaged.frames, 0u);
  EXPECT_EQ(damaged.inserts + damaged.removes + damaged.batches + damaged.aborts, 0u);
  EXPECT_EQ(report.value().segments[1].frames, 2u);
  const auto& modes = report.value().modes;
  ASSERT_TRUE(modes[0].refusal.has_value());
  EXPECT_EQ(modes[0].refusal->kind(), ErrorKind::BadMagic);
  EXPECT_EQ(modes[2].mode, WalRecoveryMode::PointInTime);
  EXPECT_FALSE(modes[2].refusal.has_value());
  EXPECT_EQ(modes[2].last_lsn, 0u);
  EXPECT_EQ(modes[2].frames_dropped, 2u);
}

TEST_F(InspectWalTest, ReadsTheSnapshotsLsnAndRefusesADamagedSnapshot) {
  auto db = PersistedIndex<StreamMapIndex>::open_with(StreamMapIndex(2, DistanceMetric::Cosine),
                                                      PersistConfig(snapshot_));
  ASSERT_THAT(db, IsOk());
  ASSERT_THAT(db.value().save(), IsOk());
  auto report = inspect_wal(snapshot_);
  ASSERT_THAT(report, IsOk());
  EXPECT_TRUE(report.value().snapshot_found);
  EXPECT_EQ(report.value().snapshot_lsn, 0u);
  flip_byte(snapshot_, 0, 0x01);
  EXPECT_THAT(inspect_wal(snapshot_), IsError(ErrorKind::BadMagic, snapshot_.string()));
}

// A frame whose checksum is right but whose body the record decoder refuses
// makes a load fail: the report must say so, naming the record.
TEST_F(InspectWalTest, ReportsAValidFrameWhoseRecordDoesNotDecode) {
  auto writer = WalWriter::create(*default_file_system(), snapshot_, 1, 1, false);
  ASSERT_THAT(writer, IsOk());
  std::vector<std::byte> good;
  encode_remove(good, VectorId(7));
  ASSERT_THAT(writer.value()->append(good, 0), IsOk());
  const std::uint64_t bad_offset = writer.value()->size();
  const std::vector<std::byte> unknown_type = {std::byte{9}, std::byte{0}};
  ASSERT_THAT(writer.value()->append(unknown_type, 1), IsOk());
  ASSERT_THAT(writer.value()->close(), IsOk());

  auto report = inspect_wal(snapshot_);
  ASSERT_THAT(report, IsOk());
  const WalSegmentInfo& segment = report.value().segments.at(0);
  EXPECT_EQ(segment.frames, 2u);
  ASSERT_EQ(segment.invalid_records.size(), 1u);
  EXPECT_EQ(segment.invalid_records[0].lsn, 2u);
  EXPECT_EQ(segment.invalid_records[0].offset, bad_offset);
  EXPECT_THAT(segment.invalid_records[0].reason, ::testing::HasSubstr("body offset 0"));
  for (const WalModeOutcome& outcome : report.value().modes) {
    SCOPED_TRACE(to_string(outcome.mode));
    ASSERT_TRUE(outcome.refusal.has_value());
    EXPECT_THAT(*outcome.refusal, IsError(ErrorKind::InvalidPayload, "record LSN 2"));
  }
}

// An index that accepts every mutation, so that a load fails only for what
// the log itself holds, which is all inspect_wal() can judge.
class AcceptingIndex {
 public:
  static constexpr std::string_view kIndexType = "test-accepting";
  IndexResult<void> insert(const VectorId&, std::span<const float>, const Metadata&) {
    return success();
  }
  IndexResult<void> remove(const VectorId&) { return success(); }
  std::size_t size() const { return 0; }
  std::size_t dim() const { return 1; }
  DistanceMetric metric() const { return DistanceMetric::Cosine; }
  Result<void> save_to(StreamWriter&) const { return success(); }
  static Result<AcceptingIndex> load_from(StreamReader&) { return AcceptingIndex(); }
};

// The segments the wal_segment_fuzz target makes of one corpus input.
std::vector<std::vector<std::byte>> segments_of_fuzz_input(std::vector<std::byte> segment) {
  if (segment.size() < wal_format::kHeaderSize) return {segment};
  fuzz::fix_segment_header(segment);
  std::vector<std::vector<std::byte>> segments = {segment};
  fuzz::fix_frame_crcs(segment);
  segments.push_back(std::move(segment));
  return segments;
}

// Whether a load in the default recovery mode opens a database of an empty
// snapshot and `segment` as its only log segment, and what inspect_wal() said.
struct Verdicts {
  bool load_opens = false;
  bool inspect_says_opens = false;
  std::string load_error;
  std::string inspect_refusal;
};

Verdicts verdicts_for(const std::vector<std::byte>& segment) {
  TempDir dir;
  PersistConfig config(dir.file("db.iqdb"));
  config.fsync_policy = FsyncPolicy::never();
  EXPECT_THAT(PersistedIndex<AcceptingIndex>::open_with(AcceptingIndex(), config).value().save(),
              IsOk());
  write_file(wal_segment_path(config.path, 1), segment);
  Verdicts verdicts;
  const auto report = inspect_wal(config.path);
  EXPECT_THAT(report, IsOk());
  if (report) {
    const auto& refusal = report.value().modes.at(0).refusal;
    verdicts.inspect_says_opens = !refusal;
    if (refusal) verdicts.inspect_refusal = refusal->to_string();
  }
  config.wal_enabled = true;
  const auto loaded = PersistedIndex<AcceptingIndex>::load(config);
  verdicts.load_opens = loaded.has_value();
  if (!loaded) verdicts.load_error = loaded.error().to_string();
  return verdicts;
}

TEST(InspectWalCorpusTest, SaysALoadOpensExactlyWhenItDoesOnEveryFuzzInput) {
  std::size_t checked = 0;
  std::size_t refused = 0;
  for (const auto& entry : std::filesystem::directory_iterator(IQDB_WAL_FUZZ_CORPUS_DIR)) {
    for (const auto& segment : segments_of_fuzz_input(read_file(entry.path()))) {
      SCOPED_TRACE(entry.path().filename().string());
      const Verdicts verdicts = verdicts_for(segment);
      EXPECT_EQ(verdicts.inspect_says_opens, verdicts.load_opens)
          << "load: " << verdicts.load_error << "\ninspect_wal: " << verdicts.inspect_refusal;
      ++checked;
      refused += verdicts.load_opens ? 0 : 1;
    }
  }
  EXPECT_GT(checked, 100u);
  EXPECT_GT(refused, 0u);  // the corpus does reach the refusals
}

}  // namespace
}  // namespace iqdb::persist::test
