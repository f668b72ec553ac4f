// ReplicaCore: everything of Replica<I> that does not depend on I, compiled
// once in the library: the files a replica follows (the snapshot, the log
// after it, the writer's control file), how far it got, and its lag. The
// template keeps the generations (indexes) and hands the core an OpApplier
// to change one, as PersistedIndex does with Database.
//
// Not part of the public API: call Replica<I>. Errors and threading are
// those documented there; the core itself is used under the template's
// refresh lock, except lag() and wait_for_change(), which any thread may call.
#ifndef IQDB_PERSIST_DETAIL_REPLICA_CORE_H_
#define IQDB_PERSIST_DETAIL_REPLICA_CORE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "iqdb/persist/config.h"
#include "iqdb/persist/detail/wal_op.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/file_header.h"
#include "iqdb/persist/replica_options.h"
#include "iqdb/persist/sections.h"

namespace iqdb::persist::detail {

class ReplicaCore {
 public:
  // Validates `config` (its log options are ignored) and looks for the
  // writer's control file. Touches no file but to read.
  [[nodiscard]] static Result<ReplicaCore> open(PersistConfig config, ReplicaOptions options);

  // What a refresh has to do, found with a few stat calls. Failed: the
  // snapshot at the path is one a switch already failed on (switch_failed()),
  // unchanged since: its error is failed_switch(), and it is not read again.
  // CatchUp: a pending generation (one whose log did not yet reach the
  // current one's LSN) is still the snapshot at the path: tail it further.
  enum class Step { Nothing, Tail, Switch, CatchUp, Failed };
  [[nodiscard]] Step check();
  // Records that a switch to the snapshot open_snapshot() opened (or, if it
  // could not, the one now at the path) failed with `error`.
  void switch_failed(const PersistError& error);
  const PersistError& failed_switch() const;

  // Opens the snapshot at the path for a new generation (a pending one, until
  // adopt_pending()); the log is then followed from its LSN.
  [[nodiscard]] Result<SnapshotView> open_snapshot(std::string_view index_type);

  // How a tail step ended.
  enum class TailEnd { CaughtUp, More, NotYet, NeedsSnapshot, Diverged };
  struct Tailed {
    std::uint64_t records = 0;
    TailEnd end = TailEnd::CaughtUp;
    std::string detail;
  };
  // Applies at most records_per_step records of the log to the current
  // generation's index (or, `pending`, to the pending one's).
  [[nodiscard]] Result<Tailed> tail(const OpApplier& index, bool pending);
  // The pending generation becomes the current one.
  void adopt_pending();
  // Whether there is a pending generation (its snapshot opened, not adopted:
  // check() forgets it when the path no longer holds its snapshot).
  [[nodiscard]] bool has_pending() const;
  // Whether the pending generation's snapshot records another database id
  // than the current one's: the database was recreated at the path.
  [[nodiscard]] bool pending_is_other_database() const;
  // Forgets the pending generation: the next check() says Switch.
  void drop_pending();
  // Whether the pending generation's log is known to end where its tail
  // stopped: the segment followed had its header read, and the snapshot at
  // the path is still the pending one's (a stat).
  [[nodiscard]] bool pending_log_ends_here();
  // Whether the snapshot at the path is still the current generation's.
  [[nodiscard]] bool snapshot_unchanged();

  // The next LSN the current (or pending) generation applies, minus one.
  std::uint64_t lsn(bool pending = false) const;
  std::uint64_t snapshot_lsn(bool pending = false) const;
  ReplicaLag lag() const;
  const ReplicaOptions& options() const;
  const PersistConfig& config() const;

  // The writer's change counter (0 without a control file), and a wait until
  // it moves or `timeout` passes (at most the poll interval without one).
  std::uint32_t changes() const;
  void wait_for_change(std::uint32_t seen, std::chrono::nanoseconds timeout) const;
  // Wakes this process's wait_for_change() callers (to stop a follower).
  void wake_waiters() const;

  ReplicaCore(ReplicaCore&&) noexcept;
  ReplicaCore& operator=(ReplicaCore&&) noexcept;
  ~ReplicaCore();

 private:
  class Impl;
  explicit ReplicaCore(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace iqdb::persist::detail

#endif  // IQDB_PERSIST_DETAIL_REPLICA_CORE_H_
