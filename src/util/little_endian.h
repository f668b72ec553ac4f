// Reading and writing little-endian integers at byte offsets, for the fixed
// layouts of docs/FORMAT.md. Callers check bounds first.
#ifndef IQDB_PERSIST_SRC_UTIL_LITTLE_ENDIAN_H_
#define IQDB_PERSIST_SRC_UTIL_LITTLE_ENDIAN_H_

#include <cstddef>
#include <cstdint>
#include <span>

namespace iqdb::persist {

// The `width`-byte little-endian integer at bytes[offset, offset + width).
inline std::uint64_t load_le(std::span<const std::byte> bytes, std::size_t offset,
                             std::size_t width) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    value |= static_cast<std::uint64_t>(bytes[offset + i]) << (8 * i);
  }
  return value;
}

// Stores the low `width` bytes of `value` at bytes[offset, offset + width).
inline void store_le(std::span<std::byte> bytes, std::size_t offset, std::uint64_t value,
                     std::size_t width) {
  for (std::size_t i = 0; i < width; ++i) {
    bytes[offset + i] = static_cast<std::byte>(value >> (8 * i));
  }
}

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_UTIL_LITTLE_ENDIAN_H_
