// Recomputes a snapshot's prefix CRC and (when the recorded header lies in
// the file) header CRC, docs/FORMAT.md "Prefix", so that a fuzzer's mutations
// reach the checks behind the checksums. Written from the format, with
// zlib's CRC-32, independently of the library's own code.
#ifndef IQDB_PERSIST_FUZZ_SNAPSHOT_CHECKSUMS_H_
#define IQDB_PERSIST_FUZZ_SNAPSHOT_CHECKSUMS_H_

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace iqdb::persist::fuzz {

inline void store_crc(std::vector<std::byte>& file, std::size_t at, std::size_t offset,
                      std::size_t length) {
  const auto crc = static_cast<std::uint32_t>(
      ::crc32(0, reinterpret_cast<const Bytef*>(file.data() + offset), static_cast<uInt>(length)));
  std::memcpy(file.data() + at, &crc, sizeof crc);
}

inline std::vector<std::byte> with_fixed_checksums(std::vector<std::byte> file) {
  if (file.size() < 32) return file;
  std::uint32_t header_length;
  std::uint64_t header_offset;
  std::memcpy(&header_length, file.data() + 12, sizeof header_length);
  std::memcpy(&header_offset, file.data() + 16, sizeof header_offset);
  if (header_offset <= file.size() && header_length <= file.size() - header_offset) {
    store_crc(file, 24, static_cast<std::size_t>(header_offset), header_length);
  }
  store_crc(file, 28, 0, 28);
  return file;
}

}  // namespace iqdb::persist::fuzz

#endif  // IQDB_PERSIST_FUZZ_SNAPSHOT_CHECKSUMS_H_
