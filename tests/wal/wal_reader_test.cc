// Scanning log segments: torn tails are told apart from mid-log corruption,
// and no damage, anywhere, yields a frame that was not written.
#include "wal/wal_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "support/test_util.h"
#include "support/wal_test_util.h"
#include "util/crc32.h"
#include "util/little_endian.h"
#include "wal/wal_format.h"
#include "wal/wal_segments.h"
#include "wal/wal_writer.h"

namespace iqdb::persist::test {
namespace {

constexpr std::uint64_t kFirstLsn = 40;

// lsn -> body of every valid frame for_each_wal_frame() visits.
std::map<std::uint64_t, std::string> visit_all(std::span<const std::byte> bytes,
                                               const WalSegmentScan& scan) {
  std::map<std::uint64_t, std::string> frames;
  const auto visited = for_each_wal_frame(
      bytes, scan, UINT64_MAX, [&](std::uint64_t lsn, std::span<const std::byte> body) {
        frames.emplace(lsn, std::string(reinterpret_cast<const char*>(body.data()), body.size()));
        return Result<void>(success());
      });
  EXPECT_THAT(visited, IsOk());
  return frames;
}

class WalReaderTest : public ::testing::Test {
 protected:
  // Writes a segment of `count` frames with distinct bodies of varying length.
  void SetUp() override {
    const auto snapshot = dir_.file("db.iqdb");
    auto writer = WalWriter::create(*default_file_system(), snapshot, 7, kFirstLsn, false);
    ASSERT_THAT(writer, IsOk());
    for (int i = 0; i < 5; ++i) {
      const std::string body = "record-" + std::to_string(i) + std::string(3 * i, 'z');
      frame_offsets_.push_back(writer.value()->size());
      const std::uint64_t durable = writer.value()->next_lsn() - 1;
      ASSERT_THAT(
          writer.value()->append(std::as_bytes(std::span(body.data(), body.size())), durable),
          IsOk());
      bodies_.emplace(kFirstLsn + i, body);
    }
    ASSERT_THAT(writer.value()->close(), IsOk());
    segment_ = read_file(wal_segment_path(snapshot, 7));
  }

  // Sets the u64 at `field` of the frame starting at `frame` and recomputes
  // the frame's CRC: a well-formed frame whose content is wrong.
  void rewrite_frame_field(std::uint64_t frame, std::size_t field, std::uint64_t value) {
    const std::span<std::byte> bytes(segment_);
    store_le(bytes, frame + field, value, 8);
    const auto length = load_le(bytes, frame + wal_format::kFrameLengthOffset, 4);
    const auto covered =
        bytes.subspan(frame + wal_format::kFrameLengthOffset,
                      wal_format::kFrameHeaderSize - wal_format::kFrameLengthOffset + length);
    store_le(bytes, frame + wal_format::kFrameCrcOffset, crc32(covered), 4);
  }

  // The index of the frame holding byte `offset` (offset >= header).
  std::size_t frame_of(std::uint64_t offset) const {
    std::size_t frame = 0;
    while (frame + 1 < frame_offsets_.size() && frame_offsets_[frame + 1] <= offset) ++frame;
    return frame;
  }

  TempDir dir_;
  std::vector<std::byte> segment_;
  std::vector<std::uint64_t> frame_offsets_;
  std::map<std::uint64_t, std::string> bodies_;
};

TEST_F(WalReaderTest, IntactSegmentYieldsEveryFrame) {
  auto scan = scan_wal_segment(segment_, "seg");
  ASSERT_THAT(scan, IsOk());
  EXPECT_TRUE(scan.value().intact());
  EXPECT_EQ(scan.value().frame_count, 5u);
  EXPECT_EQ(scan.value().last_lsn, kFirstLsn + 4);
  EXPECT_EQ(visit_all(segment_, scan.value()), bodies_);
}

TEST_F(WalReaderTest, VisitingStopsAfterTheRequestedLsn) {
  auto scan = scan_wal_segment(segment_, "seg");
  ASSERT_THAT(scan, IsOk());
  std::vector<std::uint64_t> lsns;
  ASSERT_THAT(for_each_wal_frame(segment_, scan.value(), kFirstLsn + 1,
                                 [&](std::uint64_t lsn, std::span<const std::byte>) {
                                   lsns.push_back(lsn);
                                   return Result<void>(success());
                                 }),
              IsOk());
  EXPECT_EQ(lsns, (std::vector<std::uint64_t>{kFirstLsn, kFirstLsn + 1}));
}

TEST_F(WalReaderTest, ZeroFilledTailIsATornTail) {
  segment_.resize(segment_.size() + 4096);
  auto scan = scan_wal_segment(segment_, "seg");
  ASSERT_THAT(scan, IsOk());
  ASSERT_EQ(scan.value().damages.size(), 1u);
  EXPECT_EQ(scan.value().damages[0].kind, WalDamageKind::TornTail);
  EXPECT_EQ(scan.value().damages[0].reason, "zero-filled tail");
  EXPECT_EQ(scan.value().damages[0].length, 4096u);
  EXPECT_EQ(visit_all(segment_, scan.value()), bodies_);
}

TEST_F(WalReaderTest, GarbageAfterTheLastFrameIsATornTail) {
  const auto garbage = random_bytes(300, 11);
  segment_.insert(segment_.end(), garbage.begin(), garbage.end());
  auto scan = scan_wal_segment(segment_, "seg");
  ASSERT_THAT(scan, IsOk());
  ASSERT_EQ(scan.value().damages.size(), 1u);
  EXPECT_EQ(scan.value().damages[0].kind, WalDamageKind::TornTail);
  EXPECT_EQ(visit_all(segment_, scan.value()), bodies_);
}

TEST_F(WalReaderTest, DamagedMiddleFrameIsCorruptionAndLaterFramesStillScan) {
  segment_[frame_offsets_[2] + 20] ^= std::byte{0x40};
  auto scan = scan_wal_segment(segment_, "seg");
  ASSERT_THAT(scan, IsOk());
  ASSERT_EQ(scan.value().damages.size(), 1u);
  const WalDamage& damage = scan.value().damages[0];
  EXPECT_EQ(damage.kind, WalDamageKind::Corruption);
  EXPECT_EQ(damage.offset, frame_offsets_[2]);
  EXPECT_EQ(damage.length, frame_offsets_[3] - frame_offsets_[2]);
  EXPECT_THAT(damage.reason, ::testing::HasSubstr("checksum"));
  auto expected = bodies_;
  expected.erase(kFirstLsn + 2);
  EXPECT_EQ(visit_all(segment_, scan.value()), expected);
  EXPECT_EQ(scan.value().last_lsn, kFirstLsn + 4);
}

TEST_F(WalReaderTest, BadHeadersAreRefusedWithTheirKinds) {
  EXPECT_THAT(scan_wal_segment(std::span(segment_).first(47), "seg"),
              IsError(ErrorKind::TruncatedHeader, "seg"));
  auto foreign = segment_;
  foreign[0] = std::byte{'X'};
  EXPECT_THAT(scan_wal_segment(foreign, "seg"), IsError(ErrorKind::BadMagic, "seg"));
  auto newer = segment_;
  newer[wal_format::kVersionOffset] = std::byte{wal_format::kVersion + 1};
  EXPECT_THAT(scan_wal_segment(newer, "seg"), IsError(ErrorKind::UnsupportedVersion, "seg"));
  auto damaged = segment_;
  damaged[wal_format::kFirstLsnOffset] ^= std::byte{1};
  EXPECT_THAT(scan_wal_segment(damaged, "seg"), IsError(ErrorKind::ChecksumMismatch, "seg"));
}

// The header's CRC holds but its fields are impossible: a writer bug or a
// hostile file, refused as an invalid header naming each field.
TEST_F(WalReaderTest, HeaderWithAValidChecksumButImpossibleFieldsIsInvalidHeader) {
  const struct {
    std::size_t offset;
    std::size_t width;
    std::uint64_t value;
    std::string shown;
  } fields[] = {
      {wal_format::kChecksumOffset, 4, 2, "checksum kind 2"},
      {wal_format::kSegmentNumberOffset, 8, 0, "segment number 0"},
      {wal_format::kFirstLsnOffset, 8, 0, "first LSN 0"},
  };
  for (const auto& field : fields) {
    auto bad = segment_;
    const std::span<std::byte> bytes(bad);
    store_le(bytes, field.offset, field.value, field.width);
    store_le(bytes, wal_format::kHeaderCrcOffset, crc32(bytes.first(wal_format::kHeaderCrcOffset)),
             4);
    EXPECT_THAT(scan_wal_segment(bad, "seg"),
                IsError(ErrorKind::InvalidHeader, {"seg: log segment header", field.shown}));
  }
}

// A frame with a valid checksum whose LSN breaks the sequence, or that claims
// its own LSN was already durable, is damage like any other: it is lost, and
// the frames after it still scan.
TEST_F(WalReaderTest, WellFormedFrameWithImpossibleLsnsIsDamage) {
  const struct {
    std::size_t field;
    std::uint64_t value;
    std::string reason;
  } cases[] = {
      {wal_format::kFrameLsnOffset, kFirstLsn + 9, "LSN 49 out of sequence (expected 42)"},
      {wal_format::kFrameDurableLsnOffset, kFirstLsn + 2,
       "durable LSN 42 not below the frame's LSN 42"},
  };
  const auto intact = segment_;
  for (const auto& [field, value, reason] : cases) {
    segment_ = intact;
    rewrite_frame_field(frame_offsets_[2], field, value);
    auto scan = scan_wal_segment(segment_, "seg");
    ASSERT_THAT(scan, IsOk()) << reason;
    ASSERT_EQ(scan.value().damages.size(), 1u) << reason;
    EXPECT_EQ(scan.value().damages[0].kind, WalDamageKind::Corruption);
    EXPECT_EQ(scan.value().damages[0].offset, frame_offsets_[2]);
    EXPECT_EQ(scan.value().damages[0].reason, reason);
    auto expected = bodies_;
    expected.erase(kFirstLsn + 2);
    EXPECT_EQ(visit_all(segment_, scan.value()), expected) << reason;
  }
}

// Exhaustive: a flipped byte in a frame is a torn tail when it is in the last
// frame and corruption otherwise; exactly that frame is lost; every frame
// visited is one that was written, with its LSN.
TEST_F(WalReaderTest, EveryFlippedByteLosesExactlyItsFrameAndIsClassifiedByPosition) {
  for (const auto mask : {std::byte{0x01}, std::byte{0x80}, std::byte{0xff}}) {
    for (std::size_t offset = 0; offset < segment_.size(); ++offset) {
      auto damaged = segment_;
      damaged[offset] ^= mask;
      auto scan = scan_wal_segment(damaged, "seg");
      if (offset < wal_format::kHeaderSize) {
        EXPECT_FALSE(scan.has_value()) << "header offset " << offset;
        continue;
      }
      ASSERT_THAT(scan, IsOk()) << "offset " << offset;
      const std::size_t frame = frame_of(offset);
      const bool last = frame + 1 == frame_offsets_.size();
      ASSERT_EQ(scan.value().damages.size(), 1u) << "offset " << offset;
      EXPECT_EQ(scan.value().damages[0].kind,
                last ? WalDamageKind::TornTail : WalDamageKind::Corruption)
          << "offset " << offset;
      EXPECT_EQ(scan.value().damages[0].offset, frame_offsets_[frame]) << "offset " << offset;
      auto expected = bodies_;
      expected.erase(kFirstLsn + frame);
      EXPECT_EQ(visit_all(damaged, scan.value()), expected) << "offset " << offset;
    }
  }
}

// Exhaustive: every truncation keeps exactly the complete frames before it.
TEST_F(WalReaderTest, EveryTruncationIsATornTailKeepingTheCompleteFrames) {
  for (std::size_t length = 0; length <= segment_.size(); ++length) {
    const auto truncated = std::span<const std::byte>(segment_).first(length);
    auto scan = scan_wal_segment(truncated, "seg");
    if (length < wal_format::kHeaderSize) {
      EXPECT_THAT(scan, IsError(ErrorKind::TruncatedHeader, "seg")) << "length " << length;
      continue;
    }
    ASSERT_THAT(scan, IsOk()) << "length " << length;
    EXPECT_FALSE(scan.value().has_corruption()) << "length " << length;
    std::map<std::uint64_t, std::string> expected;
    for (std::size_t i = 0; i < frame_offsets_.size(); ++i) {
      const std::uint64_t end =
          i + 1 < frame_offsets_.size() ? frame_offsets_[i + 1] : segment_.size();
      if (end <= length) expected.emplace(kFirstLsn + i, bodies_.at(kFirstLsn + i));
    }
    EXPECT_EQ(visit_all(truncated, scan.value()), expected) << "length " << length;
  }
}

// ---------------------------------------------------------------------------
// The scan's CRC work is bounded (docs/FORMAT.md, "Damage"): at most
// kScanCrcBudgetFactor times the segment's size, whatever the bytes.

class WalResyncBudgetTest : public WalReaderTest {
 protected:
  static constexpr std::size_t kSize = 64 * 1024;

  // The header of the fixture's segment (first LSN kFirstLsn), zeros to kSize.
  std::vector<std::byte> blank_segment() const {
    std::vector<std::byte> segment(segment_.begin(), segment_.begin() + wal_format::kHeaderSize);
    segment.resize(kSize);
    return segment;
  }

  static constexpr std::uint64_t kBudget = wal_format::scan_crc_budget(kSize);
};

// A plausible LSN every 12 bytes after long lengths. No frame header can
// repeat every 12 bytes and keep its durable LSN below its LSN, so the cheap
// checks reject every candidate before its CRC, except the last one, whose
// durable LSN field lies past the pattern (zero) and whose body is 4 bytes:
// only that and the first frame's own CRC are computed, and the search ends
// in a torn tail. (Unbounded and CRC first, it cost about size^2 / 24 bytes.)
TEST_F(WalResyncBudgetTest, PlausibleLsnsEveryTwelveBytesCostNoCandidateCrc) {
  auto segment = blank_segment();
  const std::span<std::byte> bytes(segment);
  std::uint64_t first_crc_input = 0;
  std::uint64_t last_crc_input = 0;
  for (std::uint64_t at = wal_format::kHeaderSize; at + 24 <= kSize; at += 12) {
    const std::uint64_t length = kSize - at - 24;
    if (at == wal_format::kHeaderSize) first_crc_input = 20 + length;
    last_crc_input = 20 + length;
    store_le(bytes, at + 4, length, 4);
    store_le(bytes, at + 8, kFirstLsn, 4);
  }
  ASSERT_EQ(last_crc_input, 24u);
  auto scan = scan_wal_segment(segment, "seg");
  ASSERT_THAT(scan, IsOk());
  ASSERT_EQ(scan.value().damages.size(), 1u);
  EXPECT_EQ(scan.value().damages[0].kind, WalDamageKind::TornTail);
  EXPECT_THAT(scan.value().damages[0].reason, ::testing::HasSubstr("checksum mismatch"));
  EXPECT_EQ(scan.value().crc_bytes, first_crc_input + last_crc_input);
}

// Frame headers every 24 bytes that fail nothing but their CRC, and a valid
// frame (LSN kFirstLsn + 1) at the end: the search stops when its next CRC
// would exceed the budget, and the rest of the segment is Unscanned, not a
// torn tail: a valid frame may lie beyond (here one does).
TEST_F(WalResyncBudgetTest, HeadersFailingOnlyTheirCrcExhaustTheBudgetAndLeaveTheRestUnscanned) {
  auto segment = blank_segment();
  const std::span<std::byte> bytes(segment);
  const std::string body = "hidden";
  const std::uint64_t hidden = kSize - 24 - body.size();
  put_crafted_headers(bytes, wal_format::kHeaderSize, hidden, kFirstLsn);
  put_frame(bytes, hidden, kFirstLsn + 1, 0, body);
  auto scan = scan_wal_segment(segment, "seg");
  ASSERT_THAT(scan, IsOk());
  EXPECT_LE(scan.value().crc_bytes, kBudget);
  ASSERT_EQ(scan.value().damages.size(), 1u);
  const WalDamage& damage = scan.value().damages[0];
  EXPECT_EQ(damage.kind, WalDamageKind::Unscanned);
  EXPECT_EQ(damage.offset, wal_format::kHeaderSize);
  EXPECT_EQ(damage.length, kSize - wal_format::kHeaderSize);
  EXPECT_EQ(damage.lsn_before, kFirstLsn - 1);
  // One past the highest LSN the search could have accepted.
  EXPECT_EQ(damage.lsn_after, kFirstLsn + (kSize - wal_format::kHeaderSize) / 25 + 1);
  EXPECT_THAT(damage.reason, ::testing::HasSubstr("frame checksum mismatch"));
  EXPECT_THAT(damage.reason, ::testing::HasSubstr("CRC budget"));
  EXPECT_EQ(scan.value().frame_count, 0u);
  EXPECT_TRUE(visit_all(segment, scan.value()).empty());
}

// Each bad frame's own CRC counts too: bad frames claiming the rest of the
// segment, each followed by a valid frame, would otherwise cost a CRC of the
// rest apiece. The scan keeps the corruptions it resolved and leaves the
// rest, from where the budget ran out, Unscanned.
TEST_F(WalResyncBudgetTest, BadFramesBetweenValidOnesShareTheBudget) {
  auto segment = blank_segment();
  const std::span<std::byte> bytes(segment);
  std::uint64_t at = wal_format::kHeaderSize;
  std::uint64_t lsn = kFirstLsn;
  while (at + 24 + 25 <= kSize) {
    at = put_frame(bytes, at, lsn, 0, "v");
    put_frame_header(bytes, at, 0, kSize - at - 24, lsn + 1, 0);  // LSN lsn + 1, lost
    at += 24;
    lsn += 2;
  }
  auto scan = scan_wal_segment(segment, "seg");
  ASSERT_THAT(scan, IsOk());
  EXPECT_LE(scan.value().crc_bytes, kBudget);
  const auto& damages = scan.value().damages;
  ASSERT_GE(damages.size(), 2u);
  EXPECT_EQ(damages.back().kind, WalDamageKind::Unscanned);
  EXPECT_THAT(damages.back().reason, ::testing::HasSubstr("CRC budget"));
  for (std::size_t i = 0; i + 1 < damages.size(); ++i) {
    EXPECT_EQ(damages[i].kind, WalDamageKind::Corruption) << i;
    EXPECT_EQ(damages[i].lsn_after, damages[i].lsn_before + 2) << i;
  }
  const auto frames = visit_all(segment, scan.value());
  EXPECT_EQ(frames.size(), scan.value().frame_count);
  for (const auto& [frame_lsn, frame_body] : frames) {
    EXPECT_EQ((frame_lsn - kFirstLsn) % 2, 0u) << frame_lsn;
    EXPECT_EQ(frame_body, "v");
  }
}

// Within the budget a search still finds the next valid frame exactly as an
// unbounded one would: a few costly candidates before it do not change the
// verdict.
TEST_F(WalResyncBudgetTest, CostlyCandidatesWithinTheBudgetStillResynchronise) {
  auto segment = blank_segment();
  const std::string body(200, 'b');
  const std::uint64_t valid = wal_format::kHeaderSize + 3 * 24;
  std::uint64_t end = put_frame(segment, valid, kFirstLsn + 1, 0, body);
  end = put_frame(segment, end, kFirstLsn + 2, kFirstLsn + 1, body);
  segment.resize(end);
  const std::span<std::byte> bytes(segment);
  // The bad frame and two candidates, each claiming nearly the rest.
  put_crafted_headers(bytes, wal_format::kHeaderSize, valid, kFirstLsn);
  for (std::uint64_t at = wal_format::kHeaderSize; at < valid; at += 24) {
    store_le(bytes, at + 4, end - at - 24 - 1, 4);
  }
  auto scan = scan_wal_segment(segment, "seg");
  ASSERT_THAT(scan, IsOk());
  ASSERT_EQ(scan.value().damages.size(), 1u);
  const WalDamage& damage = scan.value().damages[0];
  EXPECT_EQ(damage.kind, WalDamageKind::Corruption);
  EXPECT_EQ(damage.offset, wal_format::kHeaderSize);
  EXPECT_EQ(damage.length, valid - wal_format::kHeaderSize);
  EXPECT_EQ(damage.lsn_after, kFirstLsn + 1);
  EXPECT_EQ(scan.value().frame_count, 2u);
  EXPECT_GT(scan.value().crc_bytes, 3 * (end - valid));
}

}  // namespace
}  // namespace iqdb::persist::test
