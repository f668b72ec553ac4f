// Replaying a database's write-ahead log onto its index at load: the second
// pass of recovery, after wal_recovery.h has planned what to replay.
//
// The index is reached through OpApplier only, so this layer knows nothing of
// index types. Replay applies each mutation record as far as the index
// applied it live: an Abort record (logged when the index refused an op)
// limits its record to the ops applied before the refusal.
#ifndef IQDB_PERSIST_SRC_WAL_WAL_REPLAY_H_
#define IQDB_PERSIST_SRC_WAL_WAL_REPLAY_H_

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "iqdb/persist/error.h"
#include "iqdb/persist/file_system.h"
#include "iqdb/persist/wal_options.h"
#include "iqdb/persist/wal_replay.h"
#include "wal/wal_op.h"

namespace iqdb::persist {

// Where the log goes on after a replay, and what the replay did.
struct WalReplayOutcome {
  WalReplayReport report;
  std::uint64_t next_segment = 1;  // the number of the segment the next commit starts
  std::uint64_t next_lsn = 1;      // the LSN of the next record
  // The database id recorded by the highest-numbered segment that records
  // one (0: none does): a writer of a snapshot that records none keeps it.
  std::uint64_t newest_database_id = 0;
  // Segments replayed from that hold records the load did not replay: the
  // next checkpoint moves them aside once its snapshot holds what was.
  std::vector<std::filesystem::path> set_aside_at_checkpoint;
  // A lossy mode dropped records, or segments wait to be set aside: only a
  // checkpoint makes the log consistent again, and it must come first.
  bool checkpoint_due = false;
};

// Replays the log of the database whose snapshot is `snapshot_path`, and
// which holds LSNs up to `snapshot_lsn` and records `database_id`, onto
// `index`, per `mode` (a segment of another database is a bad header:
// open_wal_segments()); syncs what it replayed (whatever the policy: once per load), and
// moves aside segments holding records it does not replay (syncing their
// directory when `sync_dir`); those it replayed from are returned in
// set_aside_at_checkpoint instead, for the checkpoint to move. Errors: those of plan_wal_recovery()
// (damage, naming file and offset); InvalidPayload for a record that does not decode or an op the
// index refuses although the log says it was applied; Io.
[[nodiscard]] Result<WalReplayOutcome> replay_wal(FileSystem& fs,
                                                  const std::filesystem::path& snapshot_path,
                                                  std::uint64_t snapshot_lsn,
                                                  std::uint64_t database_id, WalRecoveryMode mode,
                                                  bool sync_dir, const OpApplier& index);

// Moves `segments` aside (set_aside_wal_segment) and records it in `report`:
// they hold records a load did not replay, which nothing may delete. Tries
// them all, then syncs their directory when `sync_dir`; returns the first
// failure.
[[nodiscard]] Result<void> set_aside_segments(FileSystem& fs,
                                              std::span<const std::filesystem::path> segments,
                                              bool sync_dir, WalReplayReport& report);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_WAL_WAL_REPLAY_H_
