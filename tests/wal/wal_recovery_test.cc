// The recovery policy: what each WalRecoveryMode replays, drops or refuses
// for clean logs, torn tails, mid-log corruption and missing records.
#include "wal/wal_recovery.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/test_util.h"
#include "support/wal_test_util.h"
#include "wal/wal_format.h"
#include "wal/wal_segments.h"
#include "wal/wal_writer.h"

namespace iqdb::persist::test {
namespace {

using ::testing::ElementsAre;
using ::testing::FieldsAre;

class WalRecoveryTest : public ::testing::Test {
 protected:
  std::vector<std::uint64_t> write_segment(std::uint64_t number, std::uint64_t first_lsn, int count,
                                           bool synced = true) {
    return write_wal_segment(snapshot_, number, first_lsn, count, synced);
  }

  std::filesystem::path segment(std::uint64_t number) const {
    return wal_segment_path(snapshot_, number);
  }

  // Reads and scans segments 1..count.
  std::vector<WalSegmentInput> inputs(std::uint64_t count) {
    std::vector<WalSegmentInput> result;
    contents_.clear();
    contents_.reserve(count);
    for (std::uint64_t number = 1; number <= count; ++number) {
      contents_.push_back(read_file(segment(number)));
      const auto& bytes = contents_.back();
      const bool zero =
          std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
      result.push_back(
          {segment(number), bytes.size(), zero, scan_wal_segment(bytes, segment(number))});
    }
    return result;
  }

  Result<WalRecoveryPlan> plan(std::uint64_t segments, std::uint64_t snapshot_lsn,
                               WalRecoveryMode mode = WalRecoveryMode::TolerateCorruptedTail) {
    const auto found = inputs(segments);
    return plan_wal_recovery(found, snapshot_lsn, mode);
  }

  TempDir dir_;
  std::filesystem::path snapshot_ = dir_.file("db.iqdb");
  std::vector<std::vector<std::byte>> contents_;
};

TEST_F(WalRecoveryTest, CleanLogReplaysEveryFrameAfterTheSnapshot) {
  write_segment(1, 1, 3);
  write_segment(2, 4, 3);
  auto result = plan(2, 2);
  ASSERT_THAT(result, IsOk());
  EXPECT_THAT(result.value().replay, ElementsAre(FieldsAre(0, 3, 3), FieldsAre(1, 4, 6)));
  EXPECT_EQ(result.value().last_lsn, 6u);
  EXPECT_EQ(result.value().frames_replayed, 4u);
  EXPECT_TRUE(result.value().notes.empty());
}

TEST_F(WalRecoveryTest, SegmentsTheSnapshotAlreadyHoldsReplayNothing) {
  write_segment(1, 1, 3);
  write_segment(2, 4, 3);
  auto result = plan(2, 6);
  ASSERT_THAT(result, IsOk());
  EXPECT_TRUE(result.value().replay.empty());
  EXPECT_EQ(result.value().last_lsn, 6u);
}

TEST_F(WalRecoveryTest, TornTailOfTheLastSegmentIsDroppedExceptUnderAbsoluteConsistency) {
  write_segment(1, 1, 3);
  truncate_file(segment(1), std::filesystem::file_size(segment(1)) - 2);
  for (const auto mode : {WalRecoveryMode::TolerateCorruptedTail, WalRecoveryMode::PointInTime,
                          WalRecoveryMode::SkipCorruptedRecords}) {
    auto result = plan(1, 0, mode);
    ASSERT_THAT(result, IsOk()) << to_string(mode);
    EXPECT_EQ(result.value().last_lsn, 2u) << to_string(mode);
    EXPECT_FALSE(result.value().dropped_corruption);
    EXPECT_THAT(result.value().notes, ElementsAre(::testing::HasSubstr("torn log tail")));
  }
  EXPECT_THAT(plan(1, 0, WalRecoveryMode::AbsoluteConsistency),
              IsError(ErrorKind::TruncatedPayload, {segment(1).string(), "torn log tail"}));
}

TEST_F(WalRecoveryTest, TornTailSealedByAContinuingSegmentIsNotDamage) {
  write_segment(1, 1, 3);
  truncate_file(segment(1), std::filesystem::file_size(segment(1)) - 2);  // LSN 3 torn
  write_segment(2, 3, 2);                                                 // recovery went on at 3
  auto result = plan(2, 0, WalRecoveryMode::AbsoluteConsistency);
  ASSERT_THAT(result, IsOk());
  EXPECT_THAT(result.value().replay, ElementsAre(FieldsAre(0, 1, 2), FieldsAre(1, 3, 4)));
  EXPECT_EQ(result.value().last_lsn, 4u);
}

TEST_F(WalRecoveryTest, MidLogCorruptionIsRefusedOrHandledAsEachModeSays) {
  const auto offsets = write_segment(1, 1, 5);
  write_segment(2, 6, 2);
  flip_byte(segment(1), offsets[2] + 17, 0x20);  // LSN 3
  EXPECT_THAT(plan(2, 0), IsError(ErrorKind::ChecksumMismatch,
                                  {segment(1).string(), "offset " + std::to_string(offsets[2]),
                                   "records 3..3"}));
  EXPECT_THAT(plan(2, 0, WalRecoveryMode::AbsoluteConsistency),
              IsError(ErrorKind::ChecksumMismatch, segment(1).string()));

  auto point_in_time = plan(2, 0, WalRecoveryMode::PointInTime);
  ASSERT_THAT(point_in_time, IsOk());
  EXPECT_THAT(point_in_time.value().replay, ElementsAre(FieldsAre(0, 1, 2)));
  EXPECT_EQ(point_in_time.value().last_lsn, 2u);
  EXPECT_EQ(point_in_time.value().frames_dropped, 4u);  // LSNs 4, 5, 6, 7
  EXPECT_TRUE(point_in_time.value().dropped_corruption);
  EXPECT_EQ(point_in_time.value().max_lsn, 7u);

  auto skip = plan(2, 0, WalRecoveryMode::SkipCorruptedRecords);
  ASSERT_THAT(skip, IsOk());
  EXPECT_THAT(skip.value().replay, ElementsAre(FieldsAre(0, 1, 5), FieldsAre(1, 6, 7)));
  EXPECT_EQ(skip.value().frames_replayed, 6u);
  EXPECT_TRUE(skip.value().dropped_corruption);
}

// Frames written under FsyncPolicy::never() carry durable LSN 0: damage among
// them is what a power loss leaves, dropped with what follows it, except
// under AbsoluteConsistency, which accepts no loss at all.
TEST_F(WalRecoveryTest, DamageNoLaterRecordSawSyncedIsDroppedExceptUnderAbsoluteConsistency) {
  auto writer = WalWriter::create(*default_file_system(), snapshot_, 1, 1, false);
  ASSERT_THAT(writer, IsOk());
  std::vector<std::uint64_t> offsets;
  for (int i = 0; i < 4; ++i) {
    offsets.push_back(writer.value()->size());
    const std::string body = "unsynced " + std::to_string(i);
    ASSERT_THAT(writer.value()->append(std::as_bytes(std::span(body.data(), body.size())), 0),
                IsOk());
  }
  ASSERT_THAT(writer.value()->close(), IsOk());
  flip_byte(segment(1), offsets[1] + 30, 0x08);  // LSN 2

  auto tolerated = plan(1, 0);
  ASSERT_THAT(tolerated, IsOk());
  EXPECT_EQ(tolerated.value().last_lsn, 1u);
  EXPECT_EQ(tolerated.value().frames_dropped, 2u);  // LSNs 3 and 4, intact but after the gap
  EXPECT_FALSE(tolerated.value().dropped_corruption);
  EXPECT_THAT(tolerated.value().notes, ElementsAre(::testing::HasSubstr("no later record saw")));
  EXPECT_THAT(plan(1, 0, WalRecoveryMode::AbsoluteConsistency),
              IsError(ErrorKind::TruncatedPayload,
                      {segment(1).string(), "offset " + std::to_string(offsets[1]),
                       "unsynced writes cut by a crash"}));
}

// The scan's CRC budget ran out in the last segment: valid, acknowledged
// records may lie in the rest, so it is corruption, never a silent drop.
TEST_F(WalRecoveryTest, UnscannedRestOfTheLastSegmentIsRefusedOrHandledAsCorruption) {
  write_segment(1, 1, 2);
  const std::uint64_t offset = append_crafted_headers(segment(1), 3);
  const std::uint64_t length = std::filesystem::file_size(segment(1)) - offset;
  EXPECT_THAT(plan(1, 0), IsError(ErrorKind::ChecksumMismatch,
                                  {segment(1).string(), "offset " + std::to_string(offset),
                                   "CRC budget", "not searched", "from LSN 3 on"}));
  EXPECT_THAT(plan(1, 0, WalRecoveryMode::AbsoluteConsistency),
              IsError(ErrorKind::ChecksumMismatch, "not searched"));
  for (const auto mode : {WalRecoveryMode::PointInTime, WalRecoveryMode::SkipCorruptedRecords}) {
    auto result = plan(1, 0, mode);
    ASSERT_THAT(result, IsOk()) << to_string(mode);
    EXPECT_THAT(result.value().replay, ElementsAre(FieldsAre(0, 1, 2))) << to_string(mode);
    EXPECT_EQ(result.value().last_lsn, 2u) << to_string(mode);
    EXPECT_EQ(result.value().bytes_dropped, length) << to_string(mode);
    EXPECT_TRUE(result.value().dropped_corruption) << to_string(mode);
  }
}

// In a segment before the last, the next segment's first LSN decides, as for
// a torn tail: continuing the sequence, it holds whatever the rest could.
TEST_F(WalRecoveryTest, UnscannedRestOfAnEarlierSegmentIsSettledByTheNextSegment) {
  write_segment(1, 1, 2);
  append_crafted_headers(segment(1), 3);
  write_segment(2, 3, 2);
  auto result = plan(2, 0, WalRecoveryMode::AbsoluteConsistency);
  ASSERT_THAT(result, IsOk());
  EXPECT_THAT(result.value().replay, ElementsAre(FieldsAre(0, 1, 2), FieldsAre(1, 3, 4)));

  std::filesystem::remove(segment(2));
  write_segment(2, 5, 2);
  EXPECT_THAT(plan(2, 0), IsError(ErrorKind::TruncatedPayload, "records 3..4 are missing"));
}

TEST_F(WalRecoveryTest, UnscannedRestTheSnapshotAlreadyHoldsIsIrrelevant) {
  write_segment(1, 1, 2);
  append_crafted_headers(segment(1), 3);
  const auto found = inputs(1);
  ASSERT_THAT(found[0].scan, IsOk());
  const WalDamage& damage = found[0].scan.value().damages.back();
  ASSERT_EQ(damage.kind, WalDamageKind::Unscanned);
  // Every LSN a frame in the rest could carry is below lsn_after.
  EXPECT_THAT(plan_wal_recovery(found, damage.lsn_after - 1, WalRecoveryMode::AbsoluteConsistency),
              IsOk());
  EXPECT_THAT(plan_wal_recovery(found, damage.lsn_after - 2, WalRecoveryMode::AbsoluteConsistency),
              IsError(ErrorKind::ChecksumMismatch, "not searched"));
}

// The same damage, followed by more records in a later segment, none of which
// saw the damaged one synced (FsyncPolicy::never()): PointInTime and the
// default stop before it, SkipCorruptedRecords skips only the damaged record.
TEST_F(WalRecoveryTest, UnsyncedDamageFollowedByValidRecordsIsHandledAsEachModeSays) {
  const auto offsets = write_segment(1, 1, 4, /*synced=*/false);
  write_segment(2, 5, 2, /*synced=*/false);
  flip_byte(segment(1), offsets[1] + 30, 0x08);  // LSN 2
  for (const auto mode : {WalRecoveryMode::TolerateCorruptedTail, WalRecoveryMode::PointInTime}) {
    auto stopped = plan(2, 0, mode);
    ASSERT_THAT(stopped, IsOk()) << to_string(mode);
    EXPECT_THAT(stopped.value().replay, ElementsAre(FieldsAre(0, 1, 1)));
    EXPECT_EQ(stopped.value().frames_dropped, 4u);  // LSNs 3..6
    EXPECT_THAT(stopped.value().set_aside, ElementsAre(0, 1)) << to_string(mode);
  }
  auto skip = plan(2, 0, WalRecoveryMode::SkipCorruptedRecords);
  ASSERT_THAT(skip, IsOk());
  EXPECT_THAT(skip.value().replay, ElementsAre(FieldsAre(0, 1, 4), FieldsAre(1, 5, 6)));
  EXPECT_EQ(skip.value().frames_replayed, 5u);
  EXPECT_EQ(skip.value().last_lsn, 6u);
  EXPECT_TRUE(skip.value().dropped_corruption);
  EXPECT_THAT(skip.value().set_aside, ElementsAre(0));
  EXPECT_THAT(skip.value().notes, ElementsAre(::testing::HasSubstr("records 2..2 skipped")));
  EXPECT_THAT(plan(2, 0, WalRecoveryMode::AbsoluteConsistency),
              IsError(ErrorKind::TruncatedPayload, segment(1).string()));
}

// Only a torn tail or a segment cut short at creation may be deleted with
// nothing replayed from it: any other damage is kept as evidence.
TEST_F(WalRecoveryTest, SegmentsWithDamageOtherThanATornTailAreSetAside) {
  write_segment(1, 1, 3);
  truncate_file(segment(1), std::filesystem::file_size(segment(1)) - 2);  // torn tail
  auto torn = plan(1, 0);
  ASSERT_THAT(torn, IsOk());
  EXPECT_TRUE(torn.value().set_aside.empty());

  std::filesystem::remove(segment(1));
  const auto offsets = write_segment(1, 1, 5);
  write_segment(2, 6, 2);
  flip_byte(segment(1), offsets[2] + 17, 0x20);  // LSN 3, synced corruption
  auto point_in_time = plan(2, 0, WalRecoveryMode::PointInTime);
  ASSERT_THAT(point_in_time, IsOk());
  EXPECT_THAT(point_in_time.value().set_aside, ElementsAre(0, 1));
  auto skip = plan(2, 0, WalRecoveryMode::SkipCorruptedRecords);
  ASSERT_THAT(skip, IsOk());
  EXPECT_THAT(skip.value().set_aside, ElementsAre(0));
  // Even when the snapshot holds every damaged record (a crash came between a
  // checkpoint's snapshot and its moving the segment aside).
  auto held = plan(2, 7);
  ASSERT_THAT(held, IsOk());
  EXPECT_THAT(held.value().set_aside, ElementsAre(0));
}

TEST_F(WalRecoveryTest, CorruptionAmongRecordsTheSnapshotHoldsIsIrrelevant) {
  const auto offsets = write_segment(1, 1, 5);
  flip_byte(segment(1), offsets[1] + 17, 0x20);  // LSN 2
  auto result = plan(1, 3);
  ASSERT_THAT(result, IsOk());
  EXPECT_THAT(result.value().replay, ElementsAre(FieldsAre(0, 4, 5)));
}

TEST_F(WalRecoveryTest, MissingRecordsBetweenSegmentsAreRefused) {
  write_segment(1, 1, 3);
  write_segment(2, 6, 2);  // 4 and 5 missing
  EXPECT_THAT(plan(2, 0), IsError(ErrorKind::TruncatedPayload, "records 4..5 are missing"));
  EXPECT_THAT(plan(2, 0, WalRecoveryMode::SkipCorruptedRecords), IsOk());
  auto point_in_time = plan(2, 0, WalRecoveryMode::PointInTime);
  ASSERT_THAT(point_in_time, IsOk());
  EXPECT_THAT(point_in_time.value().replay, ElementsAre(FieldsAre(0, 1, 3)));
  EXPECT_EQ(point_in_time.value().last_lsn, 3u);
  EXPECT_EQ(point_in_time.value().frames_dropped, 2u);  // LSNs 6 and 7
  EXPECT_THAT(point_in_time.value().notes, ElementsAre(::testing::HasSubstr("4..5 are missing")));
}

// Two writers that each started a segment at their own next LSN: the second
// segment repeats LSNs the first holds above the snapshot.
TEST_F(WalRecoveryTest, OverlappingSegmentsAreRefused) {
  write_segment(1, 3, 4);  // 3..6
  write_segment(2, 5, 3);  // 5..7: 5 and 6 claimed twice
  EXPECT_THAT(plan(2, 2), IsError(ErrorKind::InvalidHeader, {segment(2).string(), "starts at LSN 5",
                                                             "up to LSN 6", "overlapping"}));
  auto point_in_time = plan(2, 2, WalRecoveryMode::PointInTime);
  ASSERT_THAT(point_in_time, IsOk());
  EXPECT_THAT(point_in_time.value().replay, ElementsAre(FieldsAre(0, 3, 6)));
  EXPECT_EQ(point_in_time.value().frames_dropped, 1u);  // LSN 7; 5 and 6 are held already
  // An overlap the snapshot already holds is what a checkpoint whose unlink
  // failed leaves: not damage.
  EXPECT_THAT(plan(2, 6), IsOk());
}

TEST_F(WalRecoveryTest, LogStartingAfterTheSnapshotMeansMissingRecords) {
  write_segment(1, 5, 2);
  EXPECT_THAT(plan(1, 2), IsError(ErrorKind::TruncatedPayload, "records 3..4 are missing"));
}

TEST_F(WalRecoveryTest, LastSegmentCutShortAtCreationIsDropped) {
  write_segment(1, 1, 2);
  write_file(segment(2), std::vector<std::byte>(20));  // a crash during creation
  auto result = plan(2, 0);
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result.value().last_lsn, 2u);
  EXPECT_THAT(plan(2, 0, WalRecoveryMode::AbsoluteConsistency),
              IsError(ErrorKind::TruncatedPayload, segment(2).string()));
}

// A crash while creating segment 2 left it cut short; a later load dropped it
// and a later write started segment 3. Segment 2 never held a record.
TEST_F(WalRecoveryTest, EarlierSegmentCutShortAtCreationIsSkipped) {
  write_segment(1, 1, 2);
  write_file(segment(2), std::vector<std::byte>(20));
  write_segment(3, 3, 2);
  for (const WalRecoveryMode mode :
       {WalRecoveryMode::TolerateCorruptedTail, WalRecoveryMode::AbsoluteConsistency,
        WalRecoveryMode::PointInTime}) {
    auto result = plan(3, 0, mode);
    ASSERT_THAT(result, IsOk()) << to_string(mode);
    EXPECT_EQ(result.value().last_lsn, 4u);
    EXPECT_EQ(result.value().frames_replayed, 4u);
    EXPECT_FALSE(result.value().dropped_corruption);
  }
  write_file(segment(2), std::vector<std::byte>(100));  // all zero, header-sized or more
  EXPECT_THAT(plan(3, 0), IsOk());
}

TEST_F(WalRecoveryTest, SkippedCutShortSegmentStillRevealsMissingRecords) {
  write_segment(1, 1, 2);
  write_file(segment(2), std::vector<std::byte>(10));
  write_segment(3, 5, 2);
  EXPECT_THAT(plan(3, 0), IsError(ErrorKind::TruncatedPayload, "records 3..4 are missing"));
}

TEST_F(WalRecoveryTest, DamagedHeaderOfAnEarlierSegmentIsRefused) {
  write_segment(1, 1, 2);
  write_segment(2, 3, 2);
  flip_byte(segment(1), 20, 0x01);
  EXPECT_THAT(plan(2, 0), IsError(ErrorKind::ChecksumMismatch, segment(1).string()));
}

}  // namespace
}  // namespace iqdb::persist::test
