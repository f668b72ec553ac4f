#include "util/crc32.h"

#include <isa-l/crc.h>
#include <zlib.h>

#include <algorithm>
#include <limits>

namespace iqdb::persist {

std::uint32_t crc32(std::span<const std::byte> bytes, std::uint32_t crc) {
  // ISA-L takes a 64-bit length, but keep each call bounded anyway so the
  // loop is the same on every platform.
  constexpr std::size_t kStep = std::size_t{1} << 30;
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t left = bytes.size();
  while (left > 0) {
    const std::size_t n = std::min(left, kStep);
    crc = crc32_gzip_refl(crc, data, n);
    data += n;
    left -= n;
  }
  return crc;
}

std::uint32_t crc32_combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t length_b) {
  static_assert(sizeof(z_off64_t) == 8);
  return static_cast<std::uint32_t>(
      ::crc32_combine64(crc_a, crc_b, static_cast<z_off64_t>(length_b)));
}

}  // namespace iqdb::persist
