// CRC-32 (IEEE 802.3, reflected; the same function as zlib's crc32()) over
// byte ranges, using ISA-L's carry-less-multiply kernels.
#ifndef IQDB_PERSIST_SRC_UTIL_CRC32_H_
#define IQDB_PERSIST_SRC_UTIL_CRC32_H_

#include <cstddef>
#include <cstdint>
#include <span>

namespace iqdb::persist {

// CRC-32 of `bytes`, continuing from `crc` (the CRC of the bytes before them;
// 0 for a fresh start).
std::uint32_t crc32(std::span<const std::byte> bytes, std::uint32_t crc = 0);

// The CRC-32 of A followed by B, from crc(A), crc(B) and B's length.
// Precondition: length_b < 2^63 (zlib's algorithm does not terminate beyond);
// callers pass lengths already checked against a file's size.
std::uint32_t crc32_combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t length_b);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_UTIL_CRC32_H_
