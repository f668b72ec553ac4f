// libFuzzer target: compressed chunk decoding. Loads check a chunk's CRC
// before decoding it, so the snapshot fuzzer rarely gets garbage past that
// check; this target hands any bytes straight to the decoders. Input: byte 0
// picks the codec, bytes 1..3 the logical length (up to 16 MiB), the rest is
// the stored chunk. Decoding must produce exactly that many bytes or a clean
// error: never a write past the buffer, a crash or an allocation of its own
// (the output buffer, at most 256 times the input, is within the budget).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "allocation_budget.h"
#include "snapshot/section_codec.h"

namespace persist = iqdb::persist;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  persist::fuzz::AllocationBudget budget(persist::fuzz::budget_for(size));
  if (size < 4) return 0;
  const auto codec =
      data[0] % 2 == 0 ? persist::SectionCompression::Zstd : persist::SectionCompression::Lz4;
  const std::size_t logical = data[1] | (std::size_t{data[2]} << 8) | (std::size_t{data[3]} << 16);
  const auto* stored = reinterpret_cast<const std::byte*>(data + 4);
  // As a reader would: the format bounds a chunk's expansion, checked before decoding.
  if (logical > (size - 4) * persist::kMaxChunkExpansion) return 0;
  std::vector<std::byte> out(logical);
  (void)persist::decode_chunk(codec, {stored, size - 4}, out, "fuzz");
  return 0;
}
