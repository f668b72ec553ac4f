// libFuzzer target: any byte string, read as a write-ahead-log segment, must
// scan to a report or a clean error, and every frame the scan calls valid must
// decode to a record or a clean error: never a crash, an out-of-bounds read or
// an allocation beyond the input's budget. Inputs of 48+ bytes get a valid
// segment header (docs/FORMAT.md, "Segment header") so that mutations reach
// the frame scanner; each input is scanned as it is (damage detection, torn
// tails) and again with every frame's CRC recomputed along the chain of
// lengths, so that mutated bodies reach the record decoder.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "allocation_budget.h"
#include "wal_format.h"
#include "wal_reader.h"
#include "wal_record.h"

namespace persist = iqdb::persist;
namespace wal = iqdb::persist::wal_format;

namespace {

std::uint32_t crc_of(const std::vector<std::byte>& bytes, std::size_t offset, std::size_t length) {
  return static_cast<std::uint32_t>(
      ::crc32(0, reinterpret_cast<const Bytef*>(bytes.data() + offset), static_cast<uInt>(length)));
}

void fix_segment_header(std::vector<std::byte>& segment) {
  std::memcpy(segment.data(), wal::kMagic.data(), wal::kMagic.size());
  const std::uint32_t version = wal::kVersion, checksum = wal::kChecksumCrc32;
  std::memcpy(segment.data() + wal::kVersionOffset, &version, sizeof version);
  std::memcpy(segment.data() + wal::kChecksumOffset, &checksum, sizeof checksum);
  const std::uint32_t crc = crc_of(segment, 0, wal::kHeaderCrcOffset);
  std::memcpy(segment.data() + wal::kHeaderCrcOffset, &crc, sizeof crc);
}

// Frame after frame from the header on, while a frame's recorded length fits:
// its CRC covers the bytes after the CRC field up to the end of its body.
void fix_frame_crcs(std::vector<std::byte>& segment) {
  std::size_t offset = wal::kHeaderSize;
  while (segment.size() - offset >= wal::kFrameHeaderSize) {
    std::uint32_t length;
    std::memcpy(&length, segment.data() + offset + wal::kFrameLengthOffset, sizeof length);
    if (length > segment.size() - offset - wal::kFrameHeaderSize) break;
    const std::size_t covered = wal::kFrameHeaderSize - 4 + length;
    const std::uint32_t crc = crc_of(segment, offset + 4, covered);
    std::memcpy(segment.data() + offset + wal::kFrameCrcOffset, &crc, sizeof crc);
    offset += wal::kFrameHeaderSize + length;
  }
}

void scan_and_decode(const std::vector<std::byte>& segment) {
  auto scan = persist::scan_wal_segment(segment, "fuzz.wal");
  if (!scan) return;
  persist::DecodedRecord record;
  (void)persist::for_each_wal_frame(
      segment, scan.value(), UINT64_MAX,
      [&record](std::uint64_t, std::span<const std::byte> body) -> persist::Result<void> {
        (void)persist::decode_record(body, record, "fuzz.wal");
        return boost::outcome_v2::success();
      });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  persist::fuzz::AllocationBudget budget(persist::fuzz::budget_for(size));
  std::vector<std::byte> segment(reinterpret_cast<const std::byte*>(data),
                                 reinterpret_cast<const std::byte*>(data) + size);
  if (segment.size() < wal::kHeaderSize) {
    scan_and_decode(segment);
    return 0;
  }
  fix_segment_header(segment);
  scan_and_decode(segment);
  fix_frame_crcs(segment);
  scan_and_decode(segment);
  return 0;
}
