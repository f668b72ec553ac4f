// libFuzzer target: any byte string, read as a write-ahead-log segment, must
// scan to a report or a clean error, and every frame the scan calls valid must
// decode to a record or a clean error: never a crash, an out-of-bounds read or
// an allocation beyond the input's budget. Inputs of 48+ bytes get a valid
// segment header (docs/FORMAT.md, "Segment header") so that mutations reach
// the frame scanner; each input is scanned as it is (damage detection, torn
// tails) and again with every frame's CRC recomputed along the chain of
// lengths, so that mutated bodies reach the record decoder.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "allocation_budget.h"
#include "wal/wal_format.h"
#include "wal/wal_reader.h"
#include "wal/wal_record.h"
#include "wal_segment_repair.h"

namespace persist = iqdb::persist;
namespace wal = iqdb::persist::wal_format;
using iqdb::persist::fuzz::fix_frame_crcs;
using iqdb::persist::fuzz::fix_segment_header;

namespace {

void scan_and_decode(const std::vector<std::byte>& segment) {
  auto scan = persist::scan_wal_segment(segment, "fuzz.wal");
  if (!scan) return;
  persist::DecodedRecord record;
  (void)persist::for_each_wal_frame(
      segment, scan.value(), UINT64_MAX,
      [&record](std::uint64_t, std::span<const std::byte> body) -> persist::Result<void> {
        (void)persist::decode_record(body, record, "fuzz.wal");
        return persist::success();
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
