// WalTailer on hand-made logs: the rules of docs/FORMAT.md, "Following the
// log (replicas)", one case each.
#include "wal/wal_tailer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "support/forwarding_file_system.h"
#include "support/test_util.h"
#include "support/wal_test_util.h"
#include "wal/wal_segments.h"

namespace iqdb::persist::test {
namespace {

using State = WalTailer::State;
// The previous tailer followed segment 2, which starts before the snapshot.
constexpr WalTailer::SegmentHint kBeforeTheSnapshot{
    .segment = 2, .first_lsn = 1, .header_checked = true};
using ::testing::HasSubstr;

// Records what is applied; refuses removes of ids in `refused`.
class RecordingApplier final : public OpApplier {
 public:
  Result<void> apply(const WalOp& op) const override {
    const std::uint64_t id = op.id->as_u64();
    if (std::find(refused.begin(), refused.end(), id) != refused.end()) {
      return fail(ErrorKind::IdNotFound, "refused");
    }
    applied.push_back(id);
    return success();
  }
  std::vector<std::uint64_t> refused;
  mutable std::vector<std::uint64_t> applied;
};

class WalTailerTest : public ::testing::Test {
 protected:
  std::filesystem::path segment(std::uint64_t number) const {
    return wal_segment_path(snapshot_, number);
  }
  void make_writable(std::uint64_t number) const {
    std::filesystem::permissions(segment(number), std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::add);
  }
  // Appends an Abort record naming `lsn` to segment `number`, which ends at
  // LSN `last` (written by write_wal_segment, so the frames are Removes).
  void append_abort(std::uint64_t number, std::uint64_t first, std::uint64_t last,
                    std::uint64_t lsn, std::uint32_t applied) const {
    std::vector<std::byte> body;
    encode_abort(body, lsn, applied);
    // Rewrite the segment with its frames and the Abort after them.
    std::filesystem::remove(segment(number));
    auto writer = WalWriter::create(*default_file_system(), snapshot_, number, first, false);
    ASSERT_THAT(writer, IsOk());
    for (std::uint64_t id = first; id <= last; ++id) {
      std::vector<std::byte> remove;
      encode_remove(remove, VectorId(id));
      ASSERT_THAT(writer.value()->append(remove, 0), IsOk());
    }
    ASSERT_THAT(writer.value()->append(body, 0), IsOk());
    ASSERT_THAT(writer.value()->close(), IsOk());
  }

  TempDir dir_;
  std::filesystem::path snapshot_ = dir_.file("db.iqdb");
  FileSystem& fs_ = *default_file_system();
};

TEST_F(WalTailerTest, AppliesWhatIsThereAndWaitsForAnIncompleteFrame) {
  write_wal_segment(snapshot_, 1, 1, 3);
  make_writable(1);
  const auto size = std::filesystem::file_size(segment(1));
  std::filesystem::resize_file(segment(1), size - 5);  // the last frame cut short
  WalTailer tailer(fs_, snapshot_, 1);
  RecordingApplier index;
  auto outcome = tailer.advance(index, 100);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().state, State::NotYet);
  EXPECT_THAT(outcome.value().detail, HasSubstr("not complete yet"));
  EXPECT_EQ(index.applied, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(tailer.next_lsn(), 3u);
  EXPECT_FALSE(tailer.maybe_changed());
  std::filesystem::remove(segment(1));  // the whole segment arrives (a copier's rename)
  write_wal_segment(snapshot_, 1, 1, 3);
  EXPECT_TRUE(tailer.maybe_changed());
  outcome = tailer.advance(index, 100);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().state, State::CaughtUp);
  EXPECT_EQ(index.applied, (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST_F(WalTailerTest, MovesOnWhenTheNextSegmentContinuesAfterATornTail) {
  write_wal_segment(snapshot_, 1, 1, 3);
  make_writable(1);
  std::filesystem::resize_file(segment(1), std::filesystem::file_size(segment(1)) - 5);
  write_wal_segment(snapshot_, 2, 3, 2);  // recovery dropped LSN 3's torn frame
  WalTailer tailer(fs_, snapshot_, 1);
  RecordingApplier index;
  auto outcome = tailer.advance(index, 100);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().state, State::CaughtUp);
  EXPECT_EQ(index.applied, (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(tailer.segment(), 2u);
}

TEST_F(WalTailerTest, ALaterStartingSegmentNeedsTheSnapshotAndAnEarlierOneDiverges) {
  write_wal_segment(snapshot_, 1, 1, 2);
  write_wal_segment(snapshot_, 2, 5, 1);
  {
    WalTailer tailer(fs_, snapshot_, 1);
    RecordingApplier index;
    auto outcome = tailer.advance(index, 100);
    ASSERT_THAT(outcome, IsOk());
    EXPECT_EQ(outcome.value().state, State::NeedsSnapshot);
    EXPECT_THAT(outcome.value().detail, HasSubstr("records 3..4"));
  }
  std::filesystem::remove(segment(2));
  write_wal_segment(snapshot_, 2, 2, 1);  // repeats LSN 2
  WalTailer tailer(fs_, snapshot_, 1);
  RecordingApplier index;
  auto outcome = tailer.advance(index, 100);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().state, State::Diverged);
}

TEST_F(WalTailerTest, AStaleSegmentBelowTheSnapshotIsSteppedOver) {
  write_wal_segment(snapshot_, 1, 1, 2);   // ends at LSN 2
  write_wal_segment(snapshot_, 2, 11, 2);  // after a snapshot at LSN 10
  WalTailer tailer(fs_, snapshot_, 11);
  RecordingApplier index;
  auto outcome = tailer.advance(index, 100);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().state, State::CaughtUp);
  EXPECT_EQ(index.applied, (std::vector<std::uint64_t>{11, 12}));
}

TEST_F(WalTailerTest, NoSegmentIsCaughtUpAndALogStartingLaterNeedsTheSnapshot) {
  {
    WalTailer tailer(fs_, snapshot_, 1);
    RecordingApplier index;
    auto outcome = tailer.advance(index, 100);
    ASSERT_THAT(outcome, IsOk());
    EXPECT_EQ(outcome.value().state, State::CaughtUp);
    EXPECT_THAT(outcome.value().detail, HasSubstr("no log segment yet"));
    EXPECT_TRUE(tailer.maybe_changed());
  }
  write_wal_segment(snapshot_, 3, 20, 1);
  WalTailer tailer(fs_, snapshot_, 1);
  RecordingApplier index;
  auto outcome = tailer.advance(index, 100);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().state, State::NeedsSnapshot);
  EXPECT_THAT(outcome.value().detail, HasSubstr("starts at LSN 20"));
}

TEST_F(WalTailerTest, ARetiredSegmentIsFollowedByTheOneACheckpointStarted) {
  write_wal_segment(snapshot_, 1, 1, 2);
  WalTailer tailer(fs_, snapshot_, 1);
  RecordingApplier index;
  ASSERT_THAT(tailer.advance(index, 100), IsOk());
  std::filesystem::remove(segment(1));
  write_wal_segment(snapshot_, 2, 3, 2);
  EXPECT_TRUE(tailer.maybe_changed());
  auto outcome = tailer.advance(index, 100);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().state, State::CaughtUp);
  EXPECT_EQ(index.applied, (std::vector<std::uint64_t>{1, 2, 3, 4}));
}

// What a checkpoint leaves: an empty segment at the next LSN. Nothing to
// read there, so the step ends without looking for a segment after it; one
// that appears later (a writer restarted with a new segment at the same LSN)
// is seen by maybe_changed() and followed by the next step.
TEST_F(WalTailerTest, AnEmptySegmentJustFoundEndsTheStepAndALaterOneIsFollowedNext) {
  write_wal_segment(snapshot_, 3, 10, 0);
  WalTailer tailer(fs_, snapshot_, 10, kBeforeTheSnapshot);
  RecordingApplier index;
  auto first = tailer.advance(index, 100);
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first.value().state, State::CaughtUp);
  EXPECT_EQ(first.value().records, 0u);
  EXPECT_EQ(tailer.segment(), 3u);
  EXPECT_FALSE(tailer.maybe_changed());

  write_wal_segment(snapshot_, 4, 10, 2);
  EXPECT_TRUE(tailer.maybe_changed());
  auto second = tailer.advance(index, 100);
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(second.value().state, State::CaughtUp);
  EXPECT_EQ(index.applied, (std::vector<std::uint64_t>{10, 11}));
  EXPECT_EQ(tailer.segment(), 4u);
}

// A hint naming the segment that starts at the next LSN: followed at once,
// even when the segment after it holds only a header (a writer restarted
// after logging records in the hinted one). Gone (a checkpoint removed it),
// the segment after it is taken on a stat for the one a checkpoint started
// at the next LSN; once frames show it starts later, the records between
// are known to be only in a newer snapshot.
TEST_F(WalTailerTest, AHintedSegmentStartingHereIsFollowedAndAGuessIsCheckedByFrames) {
  write_wal_segment(snapshot_, 2, 5, 4);  // LSNs 5..8
  write_wal_segment(snapshot_, 3, 9, 0);  // started at LSN 9, nothing in it yet
  const WalTailer::SegmentHint starts_here{.segment = 2, .first_lsn = 5, .header_checked = true};
  {
    WalTailer tailer(fs_, snapshot_, 5, starts_here);
    RecordingApplier index;
    auto outcome = tailer.advance(index, 100);
    ASSERT_THAT(outcome, IsOk());
    EXPECT_EQ(outcome.value().state, State::CaughtUp);
    EXPECT_EQ(index.applied, (std::vector<std::uint64_t>{5, 6, 7, 8}));
    EXPECT_EQ(tailer.segment(), 3u);
  }
  std::filesystem::remove(segment(2));
  WalTailer tailer(fs_, snapshot_, 5, starts_here);
  RecordingApplier index;
  auto guessed = tailer.advance(index, 100);
  ASSERT_THAT(guessed, IsOk());
  EXPECT_EQ(guessed.value().state, State::CaughtUp);
  EXPECT_EQ(tailer.segment(), 3u);
  EXPECT_EQ(tailer.next_lsn(), 5u);

  std::filesystem::remove(segment(3));
  write_wal_segment(snapshot_, 3, 9, 2);  // LSNs 9..10
  EXPECT_TRUE(tailer.maybe_changed());
  auto checked = tailer.advance(index, 100);
  ASSERT_THAT(checked, IsOk());
  EXPECT_EQ(checked.value().state, State::NeedsSnapshot);
  EXPECT_THAT(checked.value().detail, HasSubstr("LSN 9"));
  EXPECT_TRUE(index.applied.empty());
  EXPECT_EQ(tailer.next_lsn(), 5u);
}

// The same snapshot LSN again (a checkpoint with nothing logged since): the
// hinted segment is gone and the checkpoint started the next one there.
TEST_F(WalTailerTest, AGoneHintedSegmentIsSucceededByOneStartingHere) {
  write_wal_segment(snapshot_, 3, 5, 0);
  WalTailer tailer(fs_, snapshot_, 5, {.segment = 2, .first_lsn = 5, .header_checked = false});
  RecordingApplier index;
  auto outcome = tailer.advance(index, 100);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().state, State::CaughtUp);
  EXPECT_EQ(tailer.segment(), 3u);
  std::filesystem::remove(segment(3));
  write_wal_segment(snapshot_, 3, 5, 2);  // LSNs 5..6
  auto more = tailer.advance(index, 100);
  ASSERT_THAT(more, IsOk());
  EXPECT_EQ(index.applied, (std::vector<std::uint64_t>{5, 6}));
}

// The segment after the hint, holding only a header, is followed on a stat;
// its header is read when frames appear. If it turns out to start elsewhere
// (here: a segment rewritten with earlier records), the tailer looks for the
// next LSN again and applies exactly the records it needs.
TEST_F(WalTailerTest, ASegmentFollowedOnAStatIsCheckedWhenFramesAppear) {
  write_wal_segment(snapshot_, 3, 5, 0);
  WalTailer tailer(fs_, snapshot_, 10, kBeforeTheSnapshot);
  RecordingApplier index;
  auto first = tailer.advance(index, 100);
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first.value().state, State::CaughtUp);
  EXPECT_EQ(tailer.segment(), 3u);

  std::filesystem::remove(segment(3));
  write_wal_segment(snapshot_, 3, 5, 7);  // LSNs 5..11
  EXPECT_TRUE(tailer.maybe_changed());
  auto second = tailer.advance(index, 100);
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(second.value().state, State::CaughtUp);
  EXPECT_EQ(index.applied, (std::vector<std::uint64_t>{10, 11}));
  EXPECT_EQ(tailer.next_lsn(), 12u);
}

TEST_F(WalTailerTest, StopsAfterMaxRecordsAndGoesOnFromThere) {
  write_wal_segment(snapshot_, 1, 1, 10);
  WalTailer tailer(fs_, snapshot_, 1);
  RecordingApplier index;
  auto outcome = tailer.advance(index, 4);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().records, 4u);
  EXPECT_EQ(tailer.next_lsn(), 5u);
  outcome = tailer.advance(index, 100);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().records, 6u);
  EXPECT_EQ(index.applied.size(), 10u);
}

TEST_F(WalTailerTest, AnAbortAfterItsRecordLimitsItAndALateDisagreeingOneDiverges) {
  // The record at LSN 2 (remove 2) was refused by the writer: Abort(2, 0).
  append_abort(1, 1, 2, 2, 0);
  {
    WalTailer tailer(fs_, snapshot_, 1);
    RecordingApplier index;
    auto outcome = tailer.advance(index, 100);
    ASSERT_THAT(outcome, IsOk());
    EXPECT_EQ(outcome.value().state, State::CaughtUp);
    EXPECT_EQ(index.applied, (std::vector<std::uint64_t>{1}));
    EXPECT_EQ(tailer.next_lsn(), 4u);
  }
  // Seen one frame at a time: LSN 2 is applied at once (this index accepts
  // it), then the Abort says the writer's refused it.
  std::filesystem::remove(segment(1));
  write_wal_segment(snapshot_, 1, 1, 2);
  WalTailer tailer(fs_, snapshot_, 1);
  RecordingApplier index;
  ASSERT_THAT(tailer.advance(index, 100), IsOk());
  EXPECT_EQ(index.applied, (std::vector<std::uint64_t>{1, 2}));
  append_abort(1, 1, 2, 2, 0);
  auto outcome = tailer.advance(index, 100);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().state, State::Diverged);
  EXPECT_THAT(outcome.value().detail, HasSubstr("applied 0 op(s)"));
}

TEST_F(WalTailerTest, ARefusalThatMatchesALateAbortIsConsistent) {
  write_wal_segment(snapshot_, 1, 1, 2);
  WalTailer tailer(fs_, snapshot_, 1);
  RecordingApplier index;
  index.refused = {2};  // refused here as by the writer
  ASSERT_THAT(tailer.advance(index, 100), IsOk());
  append_abort(1, 1, 2, 2, 0);
  auto outcome = tailer.advance(index, 100);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().state, State::CaughtUp);
  EXPECT_EQ(tailer.next_lsn(), 4u);
}

TEST_F(WalTailerTest, ALongBacklogIsReadThroughAMapping) {
  // More than the 4 MiB from which the tailer maps rather than reads.
  constexpr int kFrames = 200000;  // ~34 bytes each
  write_wal_segment(snapshot_, 1, 1, kFrames);
  ASSERT_GT(std::filesystem::file_size(segment(1)), std::uint64_t{4} << 20);
  WalTailer tailer(fs_, snapshot_, 1);
  RecordingApplier index;
  auto outcome = tailer.advance(index, kFrames + 1);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().state, State::CaughtUp);
  EXPECT_EQ(index.applied.size(), static_cast<std::size_t>(kFrames));
  EXPECT_EQ(index.applied.back(), static_cast<std::uint64_t>(kFrames));
  EXPECT_EQ(tailer.pending_bytes(), 0u);
}

// Segments of the database recreated at the path (another database id) are
// never read as this snapshot's log, wherever the tailer meets them.
constexpr std::uint64_t kThisDatabase = 0x1111;
constexpr std::uint64_t kRecreated = 0x2222;

TEST_F(WalTailerTest, NextSegmentOfAnotherDatabaseNeedsTheSnapshot) {
  write_wal_segment(snapshot_, 1, 1, 2, true, kThisDatabase);
  write_wal_segment(snapshot_, 2, 3, 2, true, kRecreated);
  WalTailer tailer(fs_, snapshot_, 1, WalTailer::SegmentHint{}, kThisDatabase);
  RecordingApplier index;
  auto outcome = tailer.advance(index, 100);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().state, State::NeedsSnapshot);
  EXPECT_THAT(outcome.value().detail,
              HasSubstr(segment(2).string() + " belongs to database 0000000000002222"));
  EXPECT_EQ(index.applied, (std::vector<std::uint64_t>{1, 2}));

  // Found by listing the directory (segment 1 retired), it is not followed
  // either.
  std::filesystem::remove(segment(1));
  WalTailer from_3(fs_, snapshot_, 3, WalTailer::SegmentHint{}, kThisDatabase);
  RecordingApplier later;
  outcome = from_3.advance(later, 100);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().state, State::NeedsSnapshot);
  EXPECT_TRUE(later.applied.empty());

  // A snapshot that records no database id (written before ids existed)
  // follows segments of any.
  WalTailer unknown(fs_, snapshot_, 3);
  RecordingApplier all;
  outcome = unknown.advance(all, 100);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().state, State::CaughtUp);
  EXPECT_EQ(all.applied, (std::vector<std::uint64_t>{3, 4}));
}

TEST_F(WalTailerTest, SegmentReplacedAtItsPathIsReadOnOnlyIfItIsStillThisDatabases) {
  write_wal_segment(snapshot_, 1, 1, 2, true, kThisDatabase);
  WalTailer tailer(fs_, snapshot_, 1, WalTailer::SegmentHint{}, kThisDatabase);
  RecordingApplier index;
  ASSERT_THAT(tailer.advance(index, 100), IsOk());
  ASSERT_EQ(index.applied, (std::vector<std::uint64_t>{1, 2}));

  // A copier replaces the file with a longer copy of the same segment.
  std::filesystem::remove(segment(1));
  write_wal_segment(snapshot_, 1, 1, 3, true, kThisDatabase);
  auto outcome = tailer.advance(index, 100);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().state, State::CaughtUp);
  EXPECT_EQ(index.applied, (std::vector<std::uint64_t>{1, 2, 3}));

  // Then with the recreated database's segment 1: the same name, LSNs and
  // frame sizes, one more frame. Its frame at the offset reached is not
  // this log's LSN 4.
  std::filesystem::remove(segment(1));
  write_wal_segment(snapshot_, 1, 1, 4, true, kRecreated);
  outcome = tailer.advance(index, 100);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(outcome.value().state, State::NeedsSnapshot);
  EXPECT_THAT(outcome.value().detail, HasSubstr("belongs to database 0000000000002222"));
  EXPECT_EQ(index.applied, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(tailer.next_lsn(), 4u);
}

// A file system whose files fail every read of one path with Io.
class FailingReadsFileSystem final : public ForwardingFileSystem {
 public:
  explicit FailingReadsFileSystem(std::filesystem::path failing) : failing_(std::move(failing)) {}

  Result<std::unique_ptr<ReadableFile>> open_readable(const std::filesystem::path& path) override {
    IQDB_TRY_ASSIGN(auto file, ForwardingFileSystem::open_readable(path));
    if (path != failing_) return file;
    return std::unique_ptr<ReadableFile>(std::make_unique<FailingFile>(std::move(file)));
  }

 private:
  class FailingFile final : public ReadableFile {
   public:
    explicit FailingFile(std::unique_ptr<ReadableFile> base) : base_(std::move(base)) {}
    std::uint64_t size() const override { return base_->size(); }
    Result<void> read_at(std::uint64_t, std::span<std::byte>) const override {
      return fail(ErrorKind::Io, path().string() + ": read: injected");
    }
    Result<std::shared_ptr<const MappedRegion>> map() const override { return base_->map(); }
    const std::filesystem::path& path() const override { return base_->path(); }

   private:
    std::unique_ptr<ReadableFile> base_;
  };

  std::filesystem::path failing_;
};

// An error reading the next segment's header is the step's error, not a
// segment "being created" that the tailer would wait for forever.
TEST_F(WalTailerTest, AnErrorReadingTheNextSegmentsHeaderIsReported) {
  write_wal_segment(snapshot_, 1, 1, 2);
  write_wal_segment(snapshot_, 2, 3, 1);
  FailingReadsFileSystem fs(segment(2));
  WalTailer tailer(fs, snapshot_, 1);
  RecordingApplier index;
  EXPECT_THAT(tailer.advance(index, 100),
              IsError(ErrorKind::Io, {segment(2).string(), "injected"}));
  EXPECT_EQ(index.applied, (std::vector<std::uint64_t>{1, 2}));
}

}  // namespace
}  // namespace iqdb::persist::test
