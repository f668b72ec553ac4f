// libFuzzer target: any byte string, loaded as a snapshot of the example flat
// index, must give an index or a clean error: never a crash, an out-of-bounds
// read or an unbounded allocation. Each input is loaded as it is (in every
// verify mode) and again with its prefix and header CRCs recomputed and verification
// skipped, so that mutations reach the header verifier, the section table
// checks and the index's own parsing instead of stopping at a checksum.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "flat_index.h"
#include "iqdb/persist.h"
#include "memory_file_system.h"

using iqdb::examples::FlatIndex;
namespace persist = iqdb::persist;

namespace {

std::uint32_t load_u32(const std::vector<std::byte>& file, std::size_t offset) {
  std::uint32_t value;
  std::memcpy(&value, file.data() + offset, sizeof value);
  return value;
}

void store_crc(std::vector<std::byte>& file, std::size_t at, std::size_t offset,
               std::size_t length) {
  const auto crc = static_cast<std::uint32_t>(
      ::crc32(0, reinterpret_cast<const Bytef*>(file.data() + offset), static_cast<uInt>(length)));
  std::memcpy(file.data() + at, &crc, sizeof crc);
}

// Rewrites the header CRC (when the recorded header lies in the file) and the
// prefix CRC of `file` (docs/FORMAT.md, "Prefix").
std::vector<std::byte> with_fixed_checksums(std::vector<std::byte> file) {
  if (file.size() < 32) return file;
  const std::uint32_t header_length = load_u32(file, 12);
  std::uint64_t header_offset;
  std::memcpy(&header_offset, file.data() + 16, sizeof header_offset);
  if (header_offset <= file.size() && header_length <= file.size() - header_offset) {
    store_crc(file, 24, static_cast<std::size_t>(header_offset), header_length);
  }
  store_crc(file, 28, 0, 28);
  return file;
}

void load(std::vector<std::byte> file, persist::VerifyMode mode) {
  persist::PersistConfig config("fuzz.iqdb");
  config.verify = mode;
  config.verify_threads = 1;
  config.file_system = std::make_shared<persist::fuzz::MemoryFileSystem>(std::move(file));
  auto loaded = persist::PersistedIndex<FlatIndex>::load(config);
  if (!loaded) return;
  (void)loaded.value().verification().wait();
  // Touch every loaded byte, as a query would.
  const FlatIndex& index = loaded.value().index();
  std::vector<float> query(index.dim(), 0.5f);
  (void)index.search(query, 3);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  const std::vector<std::byte> file(bytes, bytes + size);
  load(file, persist::VerifyMode::Eager);
  load(file, persist::VerifyMode::Background);
  load(file, persist::VerifyMode::Skip);
  load(with_fixed_checksums(file), persist::VerifyMode::Skip);
  return 0;
}
