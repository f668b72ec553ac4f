// Byte layout of write-ahead-log segments and the limits a reader enforces.
// docs/FORMAT.md ("Write-ahead log") is the specification; this is its code
// form, shared by the writer, the reader and the tests.
//
// The log of snapshot "<dir>/<name>" is a sequence of segment files
// "<dir>/<name>.wal-<number as 16 lowercase hex digits>". A segment is a
// header followed by frames; each frame holds one record body (wal_record.h)
// and carries the next log sequence number (LSN) of the log: LSNs increase by
// exactly one from frame to frame, across segments too.
#ifndef IQDB_PERSIST_SRC_WAL_WAL_FORMAT_H_
#define IQDB_PERSIST_SRC_WAL_WAL_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace iqdb::persist::wal_format {

// Segment header, 48 bytes, integers little-endian:
//   [0, 8)   magic "IQDBWLOG"
//   [8, 12)  format version (u32) = kVersion
//   [12, 16) frame checksum (u32) = kChecksumCrc32
//   [16, 24) segment number (u64), >= 1
//   [24, 32) first LSN (u64): the LSN of the segment's first frame, >= 1
//   [32, 40) database id (u64): the snapshot header's database_id; 0 = not
//            recorded (segments written before it existed)
//   [40, 44) reserved, zero
//   [44, 48) CRC-32 of bytes [0, 44)
inline constexpr std::string_view kMagic = "IQDBWLOG";
inline constexpr std::uint32_t kVersion = 2;
inline constexpr std::uint32_t kChecksumCrc32 = 1;  // CRC-32 (IEEE), as the snapshot
inline constexpr std::size_t kVersionOffset = 8;
inline constexpr std::size_t kChecksumOffset = 12;
inline constexpr std::size_t kSegmentNumberOffset = 16;
inline constexpr std::size_t kFirstLsnOffset = 24;
inline constexpr std::size_t kDatabaseIdOffset = 32;
inline constexpr std::size_t kHeaderCrcOffset = 44;
inline constexpr std::size_t kHeaderSize = 48;
static_assert(kHeaderCrcOffset + 4 == kHeaderSize);

// Frame, integers little-endian:
//   [0, 4)   CRC-32 of frame bytes [4, 24 + body length)
//   [4, 8)   body length (u32), 1 ..= kMaxBodyLength
//   [8, 16)  LSN (u64)
//   [16, 24) durable LSN (u64), < LSN: every frame of the log up to this LSN
//            was on stable storage when this frame was written (0: none known)
//   [24, 24 + body length) body
// The durable LSN tells damage that a power loss can cause (frames written
// but never synced, their pages reaching the disk in any order) from damage
// to frames that had been synced: see wal_recovery.h.
inline constexpr std::size_t kFrameCrcOffset = 0;
inline constexpr std::size_t kFrameLengthOffset = 4;
inline constexpr std::size_t kFrameLsnOffset = 8;
inline constexpr std::size_t kFrameDurableLsnOffset = 16;
inline constexpr std::size_t kFrameHeaderSize = 24;
inline constexpr std::uint32_t kMaxBodyLength = std::uint32_t{64} << 20;

// The highest LSN a log may use. A snapshot's wal_lsn and a segment's first
// LSN above it are refused at load: such a database could never log another
// record (the next LSN would not fit, or would wrap to 0). Half the u64 range
// is more LSNs than any log reaches, and keeps every "LSN + 1" in range.
inline constexpr std::uint64_t kMaxLsn = (std::uint64_t{1} << 63) - 1;

// Whether a segment recording `segment_id` may belong to the database of a
// snapshot recording `snapshot_id`: yes unless both are recorded and differ
// (a segment of another database, or of the one recreated at this path).
constexpr bool same_database(std::uint64_t snapshot_id, std::uint64_t segment_id) {
  return snapshot_id == 0 || segment_id == 0 || snapshot_id == segment_id;
}

// Resynchronisation: after a bad frame at offset X, the search for the next
// frame starts at X + 1 and accepts an LSN at most resync_max_skipped(size - X)
// above the last valid one: every frame takes at least kFrameHeaderSize + 1
// bytes, which bounds how many LSNs the rest of the segment can hold.
constexpr std::uint64_t resync_max_skipped(std::uint64_t bytes_from_bad_frame) {
  return bytes_from_bad_frame / (kFrameHeaderSize + 1) + 1;
}

// The CRC budget of a segment scan: the bytes of frame-CRC input (bytes
// [4, 24 + length) of a frame) a reader computes at most, over every frame it
// checks, at the expected offset and while resynchronising alike. A check
// that would go over it is not made: the scan stops and the rest of the
// segment is Unscanned damage (docs/FORMAT.md, "Damage"). An intact segment
// needs less than its size; the base keeps small segments from running out
// after a few long candidates.
inline constexpr std::uint64_t kScanCrcBudgetFactor = 2;
inline constexpr std::uint64_t kScanCrcBudgetBase = std::uint64_t{1} << 20;
constexpr std::uint64_t scan_crc_budget(std::uint64_t segment_size) {
  return kScanCrcBudgetBase + kScanCrcBudgetFactor * segment_size;
}

// Record bodies (wal_record.h has their grammar). The body's first byte is
// its type; the values are on-disk tags: never renumber them.
enum class WalRecordType : std::uint8_t { Insert = 1, Remove = 2, Batch = 3, Abort = 4 };
// Limits a decoder enforces and an encoder's caller must respect.
inline constexpr std::uint32_t kWalMaxDimension = std::uint32_t{1} << 24;
inline constexpr std::uint32_t kWalMaxByteIdLength = 65536;

// Segment files are named "<snapshot file name>" + kSegmentInfix + 16 hex digits.
inline constexpr std::string_view kSegmentInfix = ".wal-";
inline constexpr std::size_t kSegmentDigits = 16;
// A segment a load moved aside, rather than delete, because it holds records
// the load did not replay: "<segment file name>" + kSetAsideSuffix, then
// "-2", "-3", ... if that name is taken. Never read as a segment.
inline constexpr std::string_view kSetAsideSuffix = ".damaged";

}  // namespace iqdb::persist::wal_format

#endif  // IQDB_PERSIST_SRC_WAL_WAL_FORMAT_H_
