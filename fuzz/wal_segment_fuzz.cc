// libFuzzer target: any byte string, read as a write-ahead-log segment, must
// scan to a report or a clean error, and every frame the scan calls valid must
// decode to a record or a clean error: never a crash, an out-of-bounds read or
// an unbounded allocation. Inputs of 48+ bytes get a valid segment header
// (recomputed CRC) so that mutations reach the frame scanner.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "wal_reader.h"
#include "wal_record.h"

namespace persist = iqdb::persist;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> segment(reinterpret_cast<const std::byte*>(data),
                                 reinterpret_cast<const std::byte*>(data) + size);
  if (segment.size() >= 48) {  // docs/FORMAT.md, "Segment header"
    std::memcpy(segment.data(), "IQDBWLOG\x01\0\0\0\x01\0\0\0", 16);
    const auto crc =
        static_cast<std::uint32_t>(::crc32(0, reinterpret_cast<const Bytef*>(segment.data()), 44));
    std::memcpy(segment.data() + 44, &crc, sizeof crc);
  }
  auto scan = persist::scan_wal_segment(segment, "fuzz.wal");
  if (!scan) return 0;
  persist::DecodedRecord record;
  (void)persist::for_each_wal_frame(
      segment, scan.value(), UINT64_MAX,
      [&record](std::uint64_t, std::span<const std::byte> body) -> persist::Result<void> {
        (void)persist::decode_record(body, record, "fuzz.wal");
        return boost::outcome_v2::success();
      });
  return 0;
}
