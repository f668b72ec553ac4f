// Repairs that let a fuzzer's bytes reach the deeper checks of a write-ahead-
// log segment (docs/FORMAT.md, "Segment header" and "Frame"): a valid segment
// header, and every frame's CRC recomputed along the chain of lengths. Shared
// by the wal_segment_fuzz target and the test that loads its corpus, so both
// see the same segments. Written from the format, with zlib's CRC-32.
#ifndef IQDB_PERSIST_FUZZ_WAL_SEGMENT_REPAIR_H_
#define IQDB_PERSIST_FUZZ_WAL_SEGMENT_REPAIR_H_

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "wal/wal_format.h"

namespace iqdb::persist::fuzz {

inline std::uint32_t wal_crc_of(const std::vector<std::byte>& bytes, std::size_t offset,
                                std::size_t length) {
  return static_cast<std::uint32_t>(
      ::crc32(0, reinterpret_cast<const Bytef*>(bytes.data() + offset), static_cast<uInt>(length)));
}

// Writes a valid magic, version, checksum kind and header CRC over the first
// wal_format::kHeaderSize bytes (the segment number and first LSN are kept).
// Precondition: segment.size() >= wal_format::kHeaderSize.
inline void fix_segment_header(std::vector<std::byte>& segment) {
  namespace wal = wal_format;
  std::memcpy(segment.data(), wal::kMagic.data(), wal::kMagic.size());
  const std::uint32_t version = wal::kVersion, checksum = wal::kChecksumCrc32;
  std::memcpy(segment.data() + wal::kVersionOffset, &version, sizeof version);
  std::memcpy(segment.data() + wal::kChecksumOffset, &checksum, sizeof checksum);
  const std::uint32_t crc = wal_crc_of(segment, 0, wal::kHeaderCrcOffset);
  std::memcpy(segment.data() + wal::kHeaderCrcOffset, &crc, sizeof crc);
}

// Frame after frame from the header on, while a frame's recorded length fits:
// its CRC covers the bytes after the CRC field up to the end of its body.
inline void fix_frame_crcs(std::vector<std::byte>& segment) {
  namespace wal = wal_format;
  std::size_t offset = wal::kHeaderSize;
  while (segment.size() - offset >= wal::kFrameHeaderSize) {
    std::uint32_t length;
    std::memcpy(&length, segment.data() + offset + wal::kFrameLengthOffset, sizeof length);
    if (length > segment.size() - offset - wal::kFrameHeaderSize) break;
    const std::size_t covered = wal::kFrameHeaderSize - 4 + length;
    const std::uint32_t crc = wal_crc_of(segment, offset + 4, covered);
    std::memcpy(segment.data() + offset + wal::kFrameCrcOffset, &crc, sizeof crc);
    offset += wal::kFrameHeaderSize + length;
  }
}

}  // namespace iqdb::persist::fuzz

#endif  // IQDB_PERSIST_FUZZ_WAL_SEGMENT_REPAIR_H_
