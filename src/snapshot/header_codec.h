// Encoding and validating decoding of a snapshot's prefix and FlatBuffers
// header (docs/FORMAT.md, "Prefix" and "Header"). Decoding trusts nothing: each
// length, offset and count is checked against the file size, with arithmetic
// that cannot overflow, before it is used.
#ifndef IQDB_PERSIST_SRC_SNAPSHOT_HEADER_CODEC_H_
#define IQDB_PERSIST_SRC_SNAPSHOT_HEADER_CODEC_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "iqdb/persist/error.h"
#include "iqdb/persist/file_header.h"
#include "iqdb/persist/file_system.h"
#include "snapshot/snapshot_format.h"

namespace iqdb::persist {

// Unsupported on a big-endian host: the format is little-endian and the
// library maps it without byte swapping.
Result<void> check_host_is_little_endian(const std::filesystem::path& path);

// The FlatBuffers header for `header`'s fields and section table.
std::vector<std::byte> encode_header(const FileHeader& header);

// The prefix for `header_bytes` stored at `header_offset`.
std::array<std::byte, format::kPrefixSize> encode_prefix(std::span<const std::byte> header_bytes,
                                                         std::uint64_t header_offset);

// Where the header lies, as recorded by a validated prefix.
struct HeaderLocation {
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  std::uint32_t crc32 = 0;
};

// Validates the first min(32, file_size) bytes of a file of `file_size` bytes.
// Errors: BadMagic, UnsupportedVersion, TruncatedHeader, ChecksumMismatch,
// InvalidHeader. `path` names the file in messages.
Result<HeaderLocation> decode_prefix(std::span<const std::byte> prefix, std::uint64_t file_size,
                                     const std::string& path);

// Validates the header bytes found at `location` and the section table against
// the file size. Errors: ChecksumMismatch, InvalidHeader, InvalidMetric,
// TruncatedPayload, Unsupported.
Result<FileHeader> decode_header(const HeaderLocation& location,
                                 std::span<const std::byte> header_bytes, std::uint64_t file_size,
                                 const std::string& path);

// Reads and validates prefix and header of `file` with one positional read
// (two when the header does not lie within the first 4 KiB).
Result<FileHeader> read_header(const ReadableFile& file);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_SNAPSHOT_HEADER_CODEC_H_
