// libFuzzer target: any byte string, loaded as a snapshot, must give an index
// or a clean error: never a crash, an out-of-bounds read or an allocation
// beyond the input's budget (allocation_budget.h). Each input is loaded
// both ways an index persists, as the example flat index (section
// persistence, zero-copy) and as the tests' StreamMapIndex (stream
// persistence, copied): as it is, in every verify mode, and again with its
// prefix and header CRCs recomputed and verification skipped, so that
// mutations reach the header verifier, the section table checks and the
// index's own parsing instead of stopping at a checksum.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "allocation_budget.h"
#include "flat_index.h"
#include "iqdb/persist.h"
#include "memory_file_system.h"
#include "snapshot_checksums.h"
#include "support/mock_indexes.h"

using iqdb::examples::FlatIndex;
using iqdb::persist::test::StreamMapIndex;
namespace persist = iqdb::persist;

namespace {

// Reads every loaded vector, as a query would. An empty index is not
// searched: its dimension, up to 2^24, is bounded by nothing in the file, and
// the query would be the harness's allocation, not the library's.
void touch(const FlatIndex& index) {
  if (index.size() == 0) return;
  std::vector<float> query(index.dim(), 0.5f);
  (void)index.search(query, 3);
}

void touch(const StreamMapIndex& index) {
  float sum = 0;
  for (const auto& [id, vector] : index.vectors()) {
    for (const float value : vector) sum += value;
  }
  volatile float sink = sum;
  (void)sink;
}

template <class Index>
void load(const std::vector<std::byte>& file, persist::VerifyMode mode) {
  persist::PersistConfig config("fuzz.iqdb");
  config.verify = mode;
  config.verify_threads = 1;
  config.file_system = std::make_shared<persist::fuzz::MemoryFileSystem>(file);
  auto loaded = persist::PersistedIndex<Index>::load(config);
  if (!loaded) return;
  (void)loaded.value().verification().wait();
  touch(loaded.value().index());
}

template <class Index>
void load_every_way(const std::vector<std::byte>& file, const std::vector<std::byte>& fixed) {
  load<Index>(file, persist::VerifyMode::Eager);
  load<Index>(file, persist::VerifyMode::Background);
  load<Index>(file, persist::VerifyMode::Skip);
  load<Index>(fixed, persist::VerifyMode::Skip);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  persist::fuzz::AllocationBudget budget(persist::fuzz::budget_for(size));
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  const std::vector<std::byte> file(bytes, bytes + size);
  const std::vector<std::byte> fixed = persist::fuzz::with_fixed_checksums(file);
  load_every_way<FlatIndex>(file, fixed);
  load_every_way<StreamMapIndex>(file, fixed);
  return 0;
}
