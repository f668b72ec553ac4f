// The write-ahead log end to end: open the database at FILE if it exists
// (replaying its log), or create it, in one call (open(), under the writer
// lock); log a few inserts durably; checkpoint
// every tenth run. Run it repeatedly, kill it whenever you like: no insert it
// reported is ever lost. Run: iqdb_wal_quickstart [FILE]  (default ./wal_quickstart.iqdb)
#include <cstdio>
#include <vector>

#include "example_args.h"
#include "flat_index.h"
#include "iqdb/persist.h"

using iqdb::examples::FlatIndex;
using iqdb::persist::PersistConfig;
using iqdb::persist::PersistedIndex;

int fail(const iqdb::persist::PersistError& error) {
  std::fprintf(stderr, "%s\n", error.to_string().c_str());
  return 1;
}

constexpr const char* kUsage =
    "Usage: iqdb_wal_quickstart [FILE]\n"
    "Opens the database at FILE (default ./wal_quickstart.iqdb), replaying its\n"
    "log, or creates it; logs three inserts durably; checkpoints every tenth run.\n";

int main(int argc, char** argv) {
  const auto args = iqdb::examples::parse_example_args(argc, argv, kUsage, "wal_quickstart.iqdb");
  if (args.exit_status) return *args.exit_status;
  PersistConfig config(args.path);
  config.wal_enabled = true;  // FsyncPolicy::always(): each insert on disk before it returns

  auto opened = PersistedIndex<FlatIndex>::open(
      config, [] { return FlatIndex(3, iqdb::DistanceMetric::Euclidean); });
  if (!opened) return fail(opened.error());
  auto db = std::move(opened).value();
  const auto replay = db.wal_replay();
  std::printf("%s: %zu vectors (%llu records replayed from the log)\n", config.path.c_str(),
              db.index().size(), static_cast<unsigned long long>(replay.records_replayed));

  const std::uint64_t first = db.index().size() + 1;
  for (std::uint64_t id = first; id < first + 3; ++id) {
    const std::vector<float> vector = {float(id), 0, 0};
    if (auto inserted = db.insert(id, vector); !inserted) return fail(inserted.error());
    std::printf("inserted id %llu\n", static_cast<unsigned long long>(id));
  }
  if (db.index().size() % 30 == 0) {
    if (auto done = db.checkpoint(); !done) return fail(done.error());
    std::printf("checkpoint: the log is folded into the snapshot\n");
  }
  return 0;
}
