// The Tier 1 path end to end: wrap an index, save it, load it back (mapped,
// verified), search it. Run: iqdb_quickstart [FILE]  (default ./quickstart.iqdb)
#include <cstdio>
#include <vector>

#include "example_args.h"
#include "flat_index.h"
#include "iqdb/persist.h"

using iqdb::examples::FlatIndex;
using iqdb::persist::PersistConfig;
using iqdb::persist::PersistedIndex;

constexpr const char* kUsage =
    "Usage: iqdb_quickstart [FILE]\n"
    "Saves a three-vector index to FILE (default ./quickstart.iqdb, replaced if\n"
    "it exists), loads it back and searches it.\n";

int main(int argc, char** argv) {
  const auto args = iqdb::examples::parse_example_args(argc, argv, kUsage, "quickstart.iqdb");
  if (args.exit_status) return *args.exit_status;
  const PersistConfig config(args.path);

  FlatIndex index(3, iqdb::DistanceMetric::Euclidean);
  // Overwrite: this example replaces its file on every run (without it,
  // open_with() refuses an existing database with AlreadyExists).
  auto opened = PersistedIndex<FlatIndex>::open_with(std::move(index), config,
                                                     iqdb::persist::OpenMode::Overwrite);
  if (!opened) return std::fprintf(stderr, "%s\n", opened.error().to_string().c_str()), 1;
  auto db = std::move(opened).value();
  for (std::uint64_t id = 1; id <= 3; ++id) {
    const std::vector<float> vector = {float(id), 0, 0};
    if (auto inserted = db.insert(id, vector, {{"name", std::string("point")}}); !inserted) {
      return std::fprintf(stderr, "%s\n", inserted.error().to_string().c_str()), 1;
    }
  }
  if (auto saved = db.save(); !saved) {
    return std::fprintf(stderr, "%s\n", saved.error().to_string().c_str()), 1;
  }

  auto loaded = PersistedIndex<FlatIndex>::load(config);
  if (!loaded) return std::fprintf(stderr, "%s\n", loaded.error().to_string().c_str()), 1;
  const std::vector<float> query = {2.2f, 0, 0};
  const auto hits = loaded.value().index().search(query, 1);
  std::printf("%s: %zu vectors, nearest to (2.2, 0, 0) is id %llu\n", config.path.c_str(),
              loaded.value().index().size(), static_cast<unsigned long long>(hits.at(0).id));
  return 0;
}
