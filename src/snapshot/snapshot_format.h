// Byte layout of the snapshot file's fixed prefix, and the limits a reader
// enforces. docs/FORMAT.md is the specification; this is its code form, shared
// by the writer, the reader and the tests.
#ifndef IQDB_PERSIST_SRC_SNAPSHOT_SNAPSHOT_FORMAT_H_
#define IQDB_PERSIST_SRC_SNAPSHOT_SNAPSHOT_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace iqdb::persist::format {

// Prefix: all integers little-endian.
//   [0, 8)   magic "IQDBPRST"
//   [8, 12)  format version (u32)
//   [12, 16) header length (u32)
//   [16, 24) header offset (u64)
//   [24, 28) CRC-32 of the header bytes (u32)
//   [28, 32) CRC-32 of prefix bytes [0, 28) (u32)
inline constexpr std::size_t kMagicOffset = 0;
inline constexpr std::size_t kVersionOffset = 8;
inline constexpr std::size_t kHeaderLengthOffset = 12;
inline constexpr std::size_t kHeaderOffsetOffset = 16;
inline constexpr std::size_t kHeaderCrcOffset = 24;
inline constexpr std::size_t kPrefixCrcOffset = 28;
inline constexpr std::size_t kPrefixSize = 32;
static_assert(kPrefixCrcOffset + 4 == kPrefixSize);

// The FlatBuffers file identifier of the header (schema/snapshot_header.fbs).
inline constexpr char kHeaderIdentifier[] = "IQSH";

// Reader limits. A header cannot legitimately exceed these, so larger values
// are rejected before anything is allocated.
inline constexpr std::uint32_t kMaxHeaderLength = 1u << 20;
inline constexpr std::uint32_t kHeaderAlignment = 8;
inline constexpr std::uint64_t kMinSectionAlignment = 4096;
inline constexpr std::uint64_t kMaxSectionAlignment = std::uint64_t{1} << 30;
// Chunk sizes (SectionInfo::chunk_size) are powers of two in this range.
inline constexpr std::uint64_t kMinChunkSize = std::uint64_t{64} << 10;
inline constexpr std::uint64_t kMaxChunkSize = std::uint64_t{64} << 20;
inline constexpr unsigned kMaxHeaderDepth = 8;
inline constexpr unsigned kMaxHeaderTables = 4 * 1024 + 16;

}  // namespace iqdb::persist::format

#endif  // IQDB_PERSIST_SRC_SNAPSHOT_SNAPSHOT_FORMAT_H_
