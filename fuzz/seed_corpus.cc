// Writes small valid snapshots of the example flat index (with and without
// metadata, several metrics) into DIR, as the fuzzer's seed corpus:
//   iqdb_fuzz_seeds DIR
#include <cstdio>
#include <string>
#include <vector>

#include "flat_index.h"
#include "iqdb/persist.h"

using iqdb::examples::FlatIndex;
namespace persist = iqdb::persist;

int main(int argc, char** argv) {
  if (argc != 2) return std::fprintf(stderr, "usage: iqdb_fuzz_seeds DIR\n"), 2;
  const std::string dir = argv[1];
  int written = 0;
  for (const std::size_t count : {0, 1, 5}) {
    for (const auto metric : {iqdb::DistanceMetric::Cosine, iqdb::DistanceMetric::Hamming}) {
      FlatIndex index(4, metric);
      for (std::uint64_t id = 0; id < count; ++id) {
        const std::vector<float> vector = {float(id), 1, -1, 0.5f};
        iqdb::Metadata metadata;
        if (id % 2 == 1) metadata = {{"tag", std::string("odd")}, {"n", std::int64_t(id)}};
        if (!index.insert(id, vector, metadata)) return 1;
      }
      persist::PersistConfig config(dir + "/seed-" + std::to_string(written++) + ".iqdb");
      config.fsync_policy = persist::FsyncPolicy::never();
      auto db = persist::PersistedIndex<FlatIndex>::open_with(std::move(index), config);
      if (!db || !db.value().save()) return std::fprintf(stderr, "cannot write seeds\n"), 1;
    }
  }
  std::printf("wrote %d seeds to %s\n", written, dir.c_str());
  return 0;
}
