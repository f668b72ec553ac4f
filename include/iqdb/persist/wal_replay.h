// WalReplayReport: what a load with the write-ahead log did to bring the
// index up to date (PersistedIndex::wal_replay()): records replayed, anything
// a WalRecoveryMode dropped, and segments moved aside. docs/FORMAT.md
// ("Recovery") has the rules that decide it.
#ifndef IQDB_PERSIST_WAL_REPLAY_H_
#define IQDB_PERSIST_WAL_REPLAY_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace iqdb::persist {

struct WalReplayReport {
  std::uint64_t snapshot_lsn = 0;      // the LSN the snapshot already held
  std::uint64_t last_lsn = 0;          // the LSN the recovered index holds
  std::uint64_t segments = 0;          // segment files found
  std::uint64_t records_replayed = 0;  // mutation records applied (all or part)
  std::uint64_t ops_applied = 0;       // inserts and removes applied
  // Ops the index refused on replay with no Abort record for them: the writer
  // had logged them and stopped before it could record the refusal.
  std::uint64_t ops_refused = 0;
  std::uint64_t frames_dropped = 0;  // valid records a lossy WalRecoveryMode gave up
  std::uint64_t bytes_dropped = 0;   // damaged bytes dropped (torn tail included)
  bool checkpointed = false;         // the load wrote a checkpoint (after a lossy recovery)
  std::vector<std::string> notes;    // one line per thing dropped, naming file and offset
  // Segments moved aside, by their new paths ("<segment>.damaged", or
  // "<segment>.damaged-2"... when taken): they held records this load did not
  // replay (damage other than a torn tail, or valid records it dropped). A
  // load never deletes such a segment; no load reads it again, and no
  // checkpoint removes it. `iqdb-persist wal PATH` shows its records.
  std::vector<std::filesystem::path> set_aside;
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_WAL_REPLAY_H_
