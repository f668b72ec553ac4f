#include "wal/wal_reader.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "util/crc32.h"
#include "util/little_endian.h"
#include "wal/wal_format.h"

namespace iqdb::persist {
namespace {

namespace wf = wal_format;

// Frame CRCs within the segment's CRC budget (wal_format::scan_crc_budget):
// the one bound on a scan's work whatever the bytes. Without it, a search past
// damage that meets a plausible header every few bytes, each claiming a long
// body, would CRC the rest of the segment at each: quadratic in its size.
class CrcBudget {
 public:
  explicit CrcBudget(std::uint64_t segment_size) : limit_(wf::scan_crc_budget(segment_size)) {}

  // The CRC of the frame at `offset` with a body of `length` bytes (which the
  // caller checked is in the segment); nullopt, not computed, when it would go
  // over budget.
  std::optional<std::uint32_t> frame_crc(std::span<const std::byte> segment, std::uint64_t offset,
                                         std::uint64_t length) {
    const std::uint64_t input = wf::kFrameHeaderSize - wf::kFrameLengthOffset + length;
    if (input > limit_ - spent_) return std::nullopt;
    spent_ += input;
    return crc32(segment.subspan(offset + wf::kFrameLengthOffset, input));
  }

  std::uint64_t spent() const { return spent_; }
  std::uint64_t limit() const { return limit_; }

 private:
  std::uint64_t limit_;
  std::uint64_t spent_ = 0;
};

// The result of checking the frame that should start at some offset.
struct FrameCheck {
  std::string problem;         // empty when the frame is valid
  bool out_of_budget = false;  // its CRC was not computed (CrcBudget)
  std::uint64_t lsn = 0;
  std::uint64_t durable_lsn = 0;
  std::uint64_t size = 0;  // header and body
};

// The frame at `offset`, once its length and CRC are known to be good.
FrameCheck good_frame(std::span<const std::byte> segment, std::uint64_t offset) {
  const auto length = load_le(segment, offset + wf::kFrameLengthOffset, 4);
  return {"", false, load_le(segment, offset + wf::kFrameLsnOffset, 8),
          load_le(segment, offset + wf::kFrameDurableLsnOffset, 8), wf::kFrameHeaderSize + length};
}

FrameCheck check_frame(std::span<const std::byte> segment, std::uint64_t offset,
                       std::uint64_t expected_lsn, CrcBudget& budget) {
  const std::uint64_t left = segment.size() - offset;
  if (left < wf::kFrameHeaderSize) {
    return {fmt::format("incomplete frame header ({} of {} bytes)", left, wf::kFrameHeaderSize)};
  }
  const auto length = load_le(segment, offset + wf::kFrameLengthOffset, 4);
  if (length == 0 || length > wf::kMaxBodyLength) {
    return {fmt::format("frame length {} outside 1..{}", length, wf::kMaxBodyLength)};
  }
  if (length > left - wf::kFrameHeaderSize) {
    return {fmt::format("incomplete frame ({} body bytes, {} present)", length,
                        left - wf::kFrameHeaderSize)};
  }
  const auto actual_crc = budget.frame_crc(segment, offset, length);
  if (!actual_crc) {
    return {fmt::format("frame of {} body bytes not checked: its CRC would exceed the segment's "
                        "CRC budget of {} bytes",
                        length, budget.limit()),
            true};
  }
  const auto stored_crc = static_cast<std::uint32_t>(load_le(segment, offset, 4));
  if (stored_crc != *actual_crc) {
    return {fmt::format("frame checksum mismatch (expected 0x{:08x}, found 0x{:08x})", stored_crc,
                        *actual_crc)};
  }
  FrameCheck frame = good_frame(segment, offset);
  if (frame.lsn != expected_lsn) {
    return {fmt::format("LSN {} out of sequence (expected {})", frame.lsn, expected_lsn)};
  }
  if (frame.durable_lsn >= frame.lsn) {
    return {
        fmt::format("durable LSN {} not below the frame's LSN {}", frame.durable_lsn, frame.lsn)};
  }
  return frame;
}

bool all_zero(std::span<const std::byte> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

// The cheap checks of a resynchronisation candidate at `at`, all made before
// its CRC is computed (docs/FORMAT.md, "Damage"): its LSN follows `last_lsn`
// by 1..max_skipped, its length is in range and its body within the segment,
// its durable LSN is below its LSN.
bool plausible_frame(std::span<const std::byte> segment, std::uint64_t at, std::uint64_t last_lsn,
                     std::uint64_t max_skipped) {
  const std::uint64_t lsn = load_le(segment, at + wf::kFrameLsnOffset, 8);
  if (lsn <= last_lsn || lsn - last_lsn > max_skipped) return false;
  const auto length = load_le(segment, at + wf::kFrameLengthOffset, 4);
  if (length == 0 || length > wf::kMaxBodyLength) return false;
  if (length > segment.size() - at - wf::kFrameHeaderSize) return false;
  return load_le(segment, at + wf::kFrameDurableLsnOffset, 8) < lsn;
}

// How a search for the next valid frame ended.
struct Resync {
  enum class Outcome { Found, NoneFound, OutOfBudget };
  Outcome outcome = Outcome::NoneFound;
  std::uint64_t offset = 0;  // Found: the frame's; OutOfBudget: the candidate left unchecked
  FrameCheck frame;          // Found: the frame
};

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

// One pass over a segment's frames, filling in `scan`.
class FrameScanner {
 public:
  FrameScanner(std::span<const std::byte> segment, WalSegmentScan& scan)
      : segment_(segment), scan_(scan), budget_(segment.size()) {}

  void run() {
    std::uint64_t offset = wf::kHeaderSize;
    while (offset < segment_.size()) {
      const FrameCheck frame = check_frame(segment_, offset, scan_.last_lsn + 1, budget_);
      if (frame.problem.empty()) {
        accept(frame);
        offset += frame.size;
      } else if (frame.out_of_budget) {
        add_damage(WalDamageKind::Unscanned, offset, segment_.size(), frame.problem);
        break;
      } else {
        const auto next = resynchronise(offset, frame.problem);
        if (!next) break;
        offset = *next;
      }
    }
    scan_.crc_bytes = budget_.spent();
  }

 private:
  void accept(const FrameCheck& frame) {
    ++scan_.frame_count;
    scan_.last_lsn = frame.lsn;
    scan_.max_durable_lsn = std::max(scan_.max_durable_lsn, frame.durable_lsn);
    if (!scan_.damages.empty()) {
      WalDamage& latest = scan_.damages.back();
      latest.durable_after = std::max(latest.durable_after, frame.durable_lsn);
    }
  }

  // Records the damage [offset, end) after the last valid frame.
  void add_damage(WalDamageKind kind, std::uint64_t offset, std::uint64_t end, std::string reason) {
    WalDamage damage{kind, offset, end - offset, scan_.last_lsn, 0, 0, std::move(reason)};
    // Unscanned: one past the highest LSN a frame in the rest could carry, as
    // a search from `offset` bounds it, so that recovery can tell whether the
    // snapshot already holds all of them.
    if (kind == WalDamageKind::Unscanned) {
      damage.lsn_after = saturating_add(scan_.last_lsn, wf::resync_max_skipped(end - offset) + 1);
    }
    scan_.damages.push_back(std::move(damage));
  }

  // After a bad frame at `bad_offset`: records the damage and returns the
  // offset after the valid frame the search found (which it accepts), or
  // nullopt when the rest of the segment is damage.
  std::optional<std::uint64_t> resynchronise(std::uint64_t bad_offset, const std::string& problem) {
    const std::uint64_t end = segment_.size();
    if (all_zero(segment_.subspan(bad_offset))) {
      add_damage(WalDamageKind::TornTail, bad_offset, end, "zero-filled tail");
      return std::nullopt;
    }
    const Resync found = find_next_frame(bad_offset);
    switch (found.outcome) {
      case Resync::Outcome::NoneFound:
        add_damage(WalDamageKind::TornTail, bad_offset, end, problem);
        return std::nullopt;
      case Resync::Outcome::OutOfBudget:
        add_damage(WalDamageKind::Unscanned, bad_offset, end,
                   fmt::format("{}; the search for the next frame stopped at offset {}: its CRC "
                               "would exceed the segment's CRC budget of {} bytes",
                               problem, found.offset, budget_.limit()));
        return std::nullopt;
      case Resync::Outcome::Found: break;
    }
    add_damage(WalDamageKind::Corruption, bad_offset, found.offset, problem);
    scan_.damages.back().lsn_after = found.frame.lsn;
    accept(found.frame);
    return found.offset + found.frame.size;
  }

  // The first offset after `bad_offset` where a valid frame starts whose LSN
  // follows the last valid one closely enough to belong to this segment; the
  // cheap checks come first, so that only plausible candidates cost a CRC.
  Resync find_next_frame(std::uint64_t bad_offset) {
    const std::uint64_t max_skipped = wf::resync_max_skipped(segment_.size() - bad_offset);
    for (std::uint64_t at = bad_offset + 1; at + wf::kFrameHeaderSize <= segment_.size(); ++at) {
      if (!plausible_frame(segment_, at, scan_.last_lsn, max_skipped)) continue;
      const auto length = load_le(segment_, at + wf::kFrameLengthOffset, 4);
      const auto crc = budget_.frame_crc(segment_, at, length);
      if (!crc) return {Resync::Outcome::OutOfBudget, at, {}};
      if (*crc == static_cast<std::uint32_t>(load_le(segment_, at, 4))) {
        return {Resync::Outcome::Found, at, good_frame(segment_, at)};
      }
    }
    return {};
  }

  std::span<const std::byte> segment_;
  WalSegmentScan& scan_;
  CrcBudget budget_;
};

Result<WalSegmentScan> read_segment_header(std::span<const std::byte> segment,
                                           const std::string& path) {
  if (segment.size() < wf::kHeaderSize) {
    return fail(ErrorKind::TruncatedHeader,
                fmt::format("{}: log segment of {} bytes is shorter than its {}-byte header", path,
                            segment.size(), wf::kHeaderSize));
  }
  const std::string_view magic(reinterpret_cast<const char*>(segment.data()), wf::kMagic.size());
  if (magic != wf::kMagic) {
    return fail(ErrorKind::BadMagic,
                fmt::format("{}: not an iqdb-persist log segment (no \"{}\" at offset 0)", path,
                            wf::kMagic));
  }
  const auto version = load_le(segment, wf::kVersionOffset, 4);
  if (version != wf::kVersion) {
    return fail(ErrorKind::UnsupportedVersion,
                fmt::format("{}: log format version {} (this build reads version {})", path,
                            version, wf::kVersion));
  }
  const auto stored_crc = static_cast<std::uint32_t>(load_le(segment, wf::kHeaderCrcOffset, 4));
  const std::uint32_t actual_crc = crc32(segment.first(wf::kHeaderCrcOffset));
  if (stored_crc != actual_crc) {
    return fail(ErrorKind::ChecksumMismatch,
                fmt::format("{}: log segment header: CRC32 expected 0x{:08x}, found 0x{:08x}", path,
                            stored_crc, actual_crc));
  }
  WalSegmentScan scan;
  scan.number = load_le(segment, wf::kSegmentNumberOffset, 8);
  scan.first_lsn = load_le(segment, wf::kFirstLsnOffset, 8);
  scan.database_id = load_le(segment, wf::kDatabaseIdOffset, 8);
  scan.last_lsn = scan.first_lsn - 1;
  scan.size = segment.size();
  const auto checksum = load_le(segment, wf::kChecksumOffset, 4);
  if (checksum != wf::kChecksumCrc32 || scan.number == 0 || scan.first_lsn == 0 ||
      scan.first_lsn > wf::kMaxLsn) {
    return fail(
        ErrorKind::InvalidHeader,
        fmt::format("{}: log segment header has checksum kind {}, segment number {}, "
                    "first LSN {} (expected {}, >= 1, 1..{})",
                    path, checksum, scan.number, scan.first_lsn, wf::kChecksumCrc32, wf::kMaxLsn));
  }
  return scan;
}

}  // namespace

bool WalSegmentScan::has_corruption() const {
  return std::any_of(damages.begin(), damages.end(), [](const WalDamage& damage) {
    return damage.kind == WalDamageKind::Corruption;
  });
}

Result<WalSegmentScan> scan_wal_segment(std::span<const std::byte> segment,
                                        const std::filesystem::path& path) {
  IQDB_TRY_ASSIGN(auto scan, read_segment_header(segment, path.string()));
  FrameScanner(segment, scan).run();
  // Each damage has seen the frames up to the next damage; frames after that
  // come after it too.
  for (std::size_t i = scan.damages.size(); i-- > 1;) {
    scan.damages[i - 1].durable_after =
        std::max(scan.damages[i - 1].durable_after, scan.damages[i].durable_after);
  }
  return scan;
}

Result<WalSegmentScan> read_wal_segment_header(std::span<const std::byte> segment,
                                               const std::filesystem::path& path) {
  return read_segment_header(segment, path.string());
}

WalFrameAt check_wal_frame(std::span<const std::byte> bytes, std::uint64_t expected_lsn) {
  WalFrameAt frame;
  if (bytes.size() < wf::kFrameHeaderSize) return frame;  // Incomplete
  const auto length = load_le(bytes, wf::kFrameLengthOffset, 4);
  if (length == 0 || length > wf::kMaxBodyLength) {
    frame.status = WalFrameAt::Status::Bad;
    frame.problem = fmt::format("frame length {} outside 1..{}", length, wf::kMaxBodyLength);
    return frame;
  }
  frame.size = wf::kFrameHeaderSize + length;
  if (bytes.size() < frame.size) return frame;  // Incomplete
  // The whole frame is there, so check_frame's budget (twice its size) covers it.
  CrcBudget budget(frame.size);
  const FrameCheck check = check_frame(bytes.first(frame.size), 0, expected_lsn, budget);
  if (!check.problem.empty()) {
    frame.status = WalFrameAt::Status::Bad;
    frame.problem = check.problem;
    return frame;
  }
  frame.status = WalFrameAt::Status::Valid;
  frame.body = bytes.subspan(wf::kFrameHeaderSize, length);
  return frame;
}

Result<void> for_each_wal_frame(std::span<const std::byte> segment, const WalSegmentScan& scan,
                                std::uint64_t last_lsn, WalFrameVisitor visit) {
  std::uint64_t offset = wf::kHeaderSize;
  auto damage = scan.damages.begin();
  while (offset < segment.size()) {
    if (damage != scan.damages.end() && offset == damage->offset) {
      if (damage->kind != WalDamageKind::Corruption) break;  // the rest is damage
      offset += damage->length;
      ++damage;
      continue;
    }
    const auto length = load_le(segment, offset + wf::kFrameLengthOffset, 4);
    const std::uint64_t lsn = load_le(segment, offset + wf::kFrameLsnOffset, 8);
    if (lsn > last_lsn) break;
    IQDB_TRY(visit(lsn, segment.subspan(offset + wf::kFrameHeaderSize, length)));
    offset += wf::kFrameHeaderSize + length;
  }
  return success();
}

}  // namespace iqdb::persist
