// WalLog: a database's live write-ahead log, as Database drives it: recovery
// at load, group commit, the Periodic flusher and checkpoints.
//
// A mutation is logged, made durable per the FsyncPolicy, and only then
// applied to the index (through an OpApplier, in LSN order). A refusal
// by the index is logged as an Abort record naming how many of the record's
// ops were applied, so that replay reproduces exactly what the index holds.
//
// Durability by policy:
//   Always:   commit() returns once the record is on stable storage. Concurrent
//             committers share fsyncs (group commit): whoever finds no sync
//             running syncs everything written so far, for everyone waiting,
//             after waiting (at most half a sync's time) for as many writers
//             as the last sync saw to append theirs.
//   Periodic: commit() returns once the record is written (it survives a
//             process crash); a background thread syncs every `interval`, so a
//             power loss loses at most the last interval's records.
//   Never:    written, never synced by the log.
// After a failed write or fsync the log refuses every commit with Io (the
// kernel may have dropped the dirty pages; a retried fsync could succeed
// without the data) until a checkpoint() starts a new segment.
//
// Files: segments "<snapshot>.wal-<number>" (docs/FORMAT.md). The log never
// writes into a file it did not create in this process, and never truncates:
// a checkpoint writes the snapshot (carrying the last LSN), removes the old
// segments and starts a new one, so every crash point leaves a state that
// recovers (old segments are either gone or entirely covered by the snapshot).
//
// Thread-safety: every method may be called from several threads at once;
// commits are applied one at a time, in LSN order, under the log's lock.
#ifndef IQDB_PERSIST_SRC_DB_WAL_LOG_H_
#define IQDB_PERSIST_SRC_DB_WAL_LOG_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "iqdb/persist/config.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/wal_replay.h"
#include "util/function_ref.h"
#include "wal/wal_op.h"

namespace iqdb::persist {
class ControlFile;
class FileLock;
class WalWriter;
}  // namespace iqdb::persist

namespace iqdb::persist::detail {

// Saves a snapshot of the index whose header records `wal_lsn`.
using SaveSnapshot = FunctionRef<Result<void>(std::uint64_t wal_lsn)>;

class WalLog {
 public:
  // Starts the log of a new database at config.path, whose caller has
  // checked that it may replace what is there: removes any old segments,
  // saves the initial snapshot and starts segment 1. Segments record
  // `database_id` (the snapshots' FileHeader::database_id). `lock` is the
  // database's writer lock (lock_database()), held until destruction.
  [[nodiscard]] static Result<std::unique_ptr<WalLog>> create(const PersistConfig& config,
                                                              std::uint64_t database_id,
                                                              const SaveSnapshot& save,
                                                              std::unique_ptr<FileLock> lock);

  // Replays the log of config.path onto an index rebuilt from a snapshot that
  // holds LSNs up to `snapshot_lsn` and records `snapshot_database_id`, per
  // config.wal_recovery, and makes what it replayed durable. New segments
  // record database_id(): the snapshot's; if it records none, that of the
  // newest segment recording one (an earlier writer chose it), else a new
  // one. The first commit starts a new segment (so a load that only reads
  // writes nothing). If a lossy recovery mode dropped records,
  // needs_checkpoint() is true and the caller must checkpoint()
  // before anything else. Errors: those of plan_wal_recovery()
  // (damage, naming file and offset); InvalidPayload for a record that does
  // not decode or an op the index refuses although the log says it was
  // applied; Io. `lock` as for create().
  [[nodiscard]] static Result<std::unique_ptr<WalLog>> recover(const PersistConfig& config,
                                                               std::uint64_t snapshot_lsn,
                                                               std::uint64_t snapshot_database_id,
                                                               const OpApplier& index,
                                                               std::unique_ptr<FileLock> lock);

  WalLog(const WalLog&) = delete;
  WalLog& operator=(const WalLog&) = delete;
  // Stops the Periodic flusher after a last sync; never throws or blocks on errors.
  ~WalLog();

  // Logs `ops` as one record (a batch record when `as_batch`, else exactly
  // one op), waits for durability per the policy, applies them. Errors:
  // InvalidArgument for an op or a record the format cannot hold (nothing
  // logged; the log stays usable); Io (nothing applied); the index's refusal
  // (the ops before it stay applied). If `index` throws, the exception
  // propagates and the log refuses further commits: the index's state is
  // unknown.
  [[nodiscard]] Result<void> commit(std::span<const WalOp> ops, bool as_batch,
                                    const OpApplier& index);

  // Waits for commits in flight, then: save(last LSN), remove every old
  // segment (but move aside those recovery said hold records it did not
  // replay), start a new one. Blocks commits meanwhile. A failed save
  // leaves the log as it was. A segment that cannot be removed is left
  // behind (recovery skips it: the snapshot holds its records) and removed by
  // a later checkpoint.
  [[nodiscard]] Result<void> checkpoint(const SaveSnapshot& save);

  // Makes every committed record durable now, whatever the policy. Errors: Io.
  [[nodiscard]] Result<void> sync();

  bool needs_checkpoint() const;
  // The id recorded in this log's segments, and in the snapshots its
  // checkpoints write.
  std::uint64_t database_id() const { return database_id_; }
  WalReplayReport replay_report() const;
  // The LSN of the last record logged (0 before the first): a replica that
  // has applied it holds every mutation committed so far.
  std::uint64_t last_lsn() const;

 private:
  WalLog(PersistConfig config, std::unique_ptr<FileLock> lock, std::uint64_t database_id,
         std::uint64_t next_segment, std::uint64_t next_lsn);

  Result<void> check_writable() const;
  // Starts segment next_segment_ with first LSN next_lsn_.
  Result<void> start_segment();
  // Waits until every record up to `lsn` is durable, syncing if nobody is.
  Result<void> wait_durable(std::unique_lock<std::mutex>& lock, std::uint64_t lsn);
  // Before a leader syncs: waits briefly for the writers of the last group to
  // append, so that one sync covers them all.
  void gather_group(std::unique_lock<std::mutex>& lock);
  Result<void> log_abort(std::unique_lock<std::mutex>& lock, std::uint64_t lsn,
                         std::uint32_t applied);
  void run_flusher();
  // Opens (creating) the control file and announces `lsn` to the replicas of
  // this host; without one the log works the same (replicas poll).
  void open_control(std::uint64_t lsn);
  // Announces a commit to replicas (under mutex_, in LSN order).
  void announce(std::uint64_t lsn) {
    if (control_ && lsn > announced_lsn_) {
      announced_lsn_ = lsn;
      announce_now(lsn);
    }
  }
  void announce_now(std::uint64_t lsn);

  // Waiting on changed_, counted so that an uncontended commit skips the
  // broadcast (notify_waiters() with nobody waiting does nothing).
  void wait_for_change(std::unique_lock<std::mutex>& lock) {
    ++waiters_;
    changed_.wait(lock);
    --waiters_;
  }
  template <class Ready>
  void await(std::unique_lock<std::mutex>& lock, Ready ready) {
    while (!ready()) wait_for_change(lock);
  }
  void notify_waiters() {
    if (waiters_ > 0) changed_.notify_all();
  }

  const PersistConfig config_;
  const std::uint64_t database_id_;  // recorded in every segment header
  // The writer lock: destroyed last, after the segment is closed.
  const std::unique_ptr<FileLock> lock_;
  WalReplayReport replay_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;    // turns, durability, syncs finishing
  int waiters_ = 0;                    // threads waiting on changed_
  std::unique_ptr<WalWriter> writer_;  // null until the first commit after recovery
  std::string failure_;                // why commits are refused; empty while usable
  std::uint64_t next_segment_;
  std::uint64_t next_lsn_;     // the LSN the next record gets
  std::uint64_t durable_lsn_;  // every record up to it is on stable storage (or need not be)
  // The highest LSN known synced, recorded in every frame (docs/FORMAT.md):
  // recovery tells unsynced damage from corruption by it.
  std::uint64_t synced_watermark_ = 0;
  // Syncs run with the lock released: how many, and the highest LSN one covers.
  int syncs_in_flight_ = 0;
  std::uint64_t syncing_upto_ = 0;
  // Group commit sizing (gather_group): writers inside commit() now, the most
  // seen during the latest sync, and what the latest completed sync learnt.
  std::uint64_t writers_in_commit_ = 0;
  std::uint64_t peak_writers_ = 0;
  std::uint64_t expected_group_ = 1;
  std::chrono::nanoseconds max_group_wait_{0};
  bool gathering_group_ = false;  // a leader waits in gather_group(); others join it
  bool checkpoint_due_ = false;
  // Segments recovery replayed from but must not delete (damage, dropped
  // records): the next checkpoint moves them aside once its snapshot holds
  // what was replayed.
  std::vector<std::filesystem::path> set_aside_at_checkpoint_;
  bool checkpointing_ = false;  // a checkpoint waits for commits in flight; new ones wait
  // Commits apply in the order they were logged: each takes a ticket when it
  // appends and applies when apply_turn_ reaches it.
  std::uint64_t next_ticket_ = 0;
  std::uint64_t apply_turn_ = 0;
  std::vector<std::byte> frame_;  // reused frame buffer (header room + body), under mutex_
  // The replicas' notification (wal/control_file.h); null when unavailable.
  std::unique_ptr<ControlFile> control_;
  std::uint64_t announced_lsn_ = 0;

  bool stopping_ = false;
  std::condition_variable flusher_wakeup_;
  std::thread flusher_;  // Periodic only
};

}  // namespace iqdb::persist::detail

#endif  // IQDB_PERSIST_SRC_DB_WAL_LOG_H_
