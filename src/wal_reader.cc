#include "wal_reader.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "crc32.h"
#include "little_endian.h"
#include "wal_format.h"

namespace iqdb::persist {
namespace {

namespace wf = wal_format;

// The result of checking the frame that should start at some offset.
struct FrameCheck {
  std::string problem;  // empty when the frame is valid
  std::uint64_t lsn = 0;
  std::uint64_t durable_lsn = 0;
  std::uint64_t size = 0;  // header and body
};

FrameCheck check_frame(std::span<const std::byte> segment, std::uint64_t offset,
                       std::uint64_t expected_lsn) {
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
  const auto stored_crc = static_cast<std::uint32_t>(load_le(segment, offset, 4));
  const std::uint32_t actual_crc = crc32(segment.subspan(
      offset + wf::kFrameLengthOffset, wf::kFrameHeaderSize - wf::kFrameLengthOffset + length));
  if (stored_crc != actual_crc) {
    return {fmt::format("frame checksum mismatch (expected 0x{:08x}, found 0x{:08x})", stored_crc,
                        actual_crc)};
  }
  const std::uint64_t lsn = load_le(segment, offset + wf::kFrameLsnOffset, 8);
  if (lsn != expected_lsn) {
    return {fmt::format("LSN {} out of sequence (expected {})", lsn, expected_lsn)};
  }
  const std::uint64_t durable_lsn = load_le(segment, offset + wf::kFrameDurableLsnOffset, 8);
  if (durable_lsn >= lsn) {
    return {fmt::format("durable LSN {} not below the frame's LSN {}", durable_lsn, lsn)};
  }
  return {"", lsn, durable_lsn, wf::kFrameHeaderSize + length};
}

bool all_zero(std::span<const std::byte> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

// The offset of the first valid frame after `bad_offset` whose LSN follows
// `last_lsn` closely enough to belong to this segment (each frame takes at
// least kFrameHeaderSize + 1 bytes, which bounds how many LSNs the rest can hold).
std::optional<std::uint64_t> find_next_frame(std::span<const std::byte> segment,
                                             std::uint64_t bad_offset, std::uint64_t last_lsn) {
  const std::uint64_t max_skipped = (segment.size() - bad_offset) / (wf::kFrameHeaderSize + 1) + 1;
  for (std::uint64_t at = bad_offset + 1; at + wf::kFrameHeaderSize <= segment.size(); ++at) {
    const std::uint64_t lsn = load_le(segment, at + wf::kFrameLsnOffset, 8);
    if (lsn <= last_lsn || lsn - last_lsn > max_skipped) continue;
    if (check_frame(segment, at, lsn).problem.empty()) return at;
  }
  return std::nullopt;
}

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
  std::uint64_t offset = wf::kHeaderSize;
  std::uint64_t expected_lsn = scan.first_lsn;
  while (offset < segment.size()) {
    const FrameCheck frame = check_frame(segment, offset, expected_lsn);
    if (frame.problem.empty()) {
      ++scan.frame_count;
      scan.last_lsn = frame.lsn;
      scan.max_durable_lsn = std::max(scan.max_durable_lsn, frame.durable_lsn);
      if (!scan.damages.empty()) {
        WalDamage& latest = scan.damages.back();
        latest.durable_after = std::max(latest.durable_after, frame.durable_lsn);
      }
      ++expected_lsn;
      offset += frame.size;
      continue;
    }
    const auto rest = segment.subspan(offset);
    const bool zero_filled = all_zero(rest);
    const auto next = zero_filled ? std::nullopt : find_next_frame(segment, offset, scan.last_lsn);
    if (!next) {
      scan.damages.push_back({WalDamageKind::TornTail, offset, rest.size(), scan.last_lsn, 0, 0,
                              zero_filled ? std::string("zero-filled tail") : frame.problem});
      break;
    }
    expected_lsn = load_le(segment, *next + wf::kFrameLsnOffset, 8);
    scan.damages.push_back({WalDamageKind::Corruption, offset, *next - offset, scan.last_lsn,
                            expected_lsn, 0, frame.problem});
    offset = *next;
  }
  // Each damage has seen the frames up to the next damage; frames after that
  // come after it too.
  for (std::size_t i = scan.damages.size(); i-- > 1;) {
    scan.damages[i - 1].durable_after =
        std::max(scan.damages[i - 1].durable_after, scan.damages[i].durable_after);
  }
  return scan;
}

Result<void> for_each_wal_frame(
    std::span<const std::byte> segment, const WalSegmentScan& scan, std::uint64_t last_lsn,
    const std::function<Result<void>(std::uint64_t lsn, std::span<const std::byte> body)>& visit) {
  std::uint64_t offset = wf::kHeaderSize;
  auto damage = scan.damages.begin();
  while (offset < segment.size()) {
    if (damage != scan.damages.end() && offset == damage->offset) {
      if (damage->kind == WalDamageKind::TornTail) break;
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
  return boost::outcome_v2::success();
}

}  // namespace iqdb::persist
