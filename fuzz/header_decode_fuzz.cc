// libFuzzer target: the snapshot prefix, the FlatBuffers header and the
// section table (src/snapshot/header_codec.h). Any byte string, read as a whole
// snapshot file, must decode to a header or a clean error. The prefix and
// header CRCs of the input are recomputed first (snapshot_checksums.h) so
// that mutations reach the FlatBuffers verifier and the table's checks
// instead of stopping at a checksum. A header that decodes must survive a
// round trip: encoded again and decoded against the same file size, it must
// be equal, or the decoder accepted something the encoder cannot express.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "allocation_budget.h"
#include "snapshot/header_codec.h"
#include "snapshot_checksums.h"

namespace persist = iqdb::persist;

namespace {

[[noreturn]] void fail_round_trip(const std::string& why) {
  std::fprintf(stderr, "header round trip failed: %s\n", why.c_str());
  std::abort();
}

void check_round_trip(const persist::FileHeader& header, std::uint64_t file_size) {
  const std::vector<std::byte> encoded = persist::encode_header(header);
  // The file's geometry includes the header's length (a reader accounts for
  // every byte), so the property is checked where the encoding, which may lay
  // fields out differently from the input's, takes the same space.
  if (encoded.size() != header.header_length) return;
  const auto prefix = persist::encode_prefix(encoded, header.header_offset);
  auto location = persist::decode_prefix(prefix, file_size, "fuzz.iqdb");
  if (!location) fail_round_trip(location.error().to_string());
  auto again = persist::decode_header(location.value(), encoded, file_size, "fuzz.iqdb");
  if (!again) fail_round_trip(again.error().to_string());
  if (!(again.value() == header)) fail_round_trip("the decoded header differs");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  persist::fuzz::AllocationBudget budget(persist::fuzz::budget_for(size));
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  const std::vector<std::byte> file =
      persist::fuzz::with_fixed_checksums(std::vector<std::byte>(bytes, bytes + size));
  const std::span<const std::byte> whole(file);
  auto location =
      persist::decode_prefix(whole.first(std::min<std::size_t>(size, 32)), size, "fuzz.iqdb");
  if (!location) return 0;
  // decode_prefix() has checked that the header lies inside the file.
  const auto header_bytes = whole.subspan(location.value().offset, location.value().length);
  auto header = persist::decode_header(location.value(), header_bytes, size, "fuzz.iqdb");
  if (!header) return 0;
  check_round_trip(header.value(), size);
  return 0;
}
