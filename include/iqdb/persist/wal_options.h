// The durability and recovery options of a database: how hard saves and the
// write-ahead log push data to stable storage (FsyncPolicy), and what a load
// does with a log that a crash or the media damaged (WalRecoveryMode);
// PersistConfig::fsync_policy and wal_recovery take them. docs/FORMAT.md
// ("Write-ahead log", "Recovery") specifies the files and the rules.
// Plain constexpr values: thread-safe.
#ifndef IQDB_PERSIST_WAL_OPTIONS_H_
#define IQDB_PERSIST_WAL_OPTIONS_H_

#include <chrono>
#include <string_view>

namespace iqdb::persist {

// How aggressively data is forced to stable storage.
//   always():  fsync the snapshot file and its directory before save() returns;
//              a power loss after that cannot lose the snapshot. With the
//              write-ahead log, every mutation is synced before it is applied
//              and acknowledged; concurrent writers share fsyncs.
//   periodic(interval): for snapshots, the same as always(): a save is one
//              large write and is synced before it is acknowledged. With the
//              write-ahead log, a mutation returns once it is written (it
//              survives a process crash), and a background thread syncs the
//              log every `interval`: a power loss loses at most the records
//              of the last interval, even if no further write comes.
//   never():   no fsync at all. The rename is still atomic with respect to a
//              process crash, but after a power loss the file may hold the
//              previous snapshot or, on some file systems, be empty. Logged
//              mutations survive a process crash, not a power loss (the log
//              syncs only a new segment's header, and on load what it
//              replayed, so that a power loss cannot make it unreadable).
//
// What a crash leaves in the log, by policy (what a load then does:
// WalRecoveryMode):
//                 process crash          power loss
//   always()      at most a torn tail    at most a torn tail, or damage among
//                 (the record being      records still waiting for their sync
//                 written, never         (never acknowledged)
//                 acknowledged)
//   periodic()    at most a torn tail    the unsynced records (the last
//                                        interval's) lost, torn, or damaged
//                                        with later ones intact
//   never()       at most a torn tail    the same for every record since the
//                                        last load (which syncs what it
//                                        replayed); a checkpoint's snapshot is
//                                        not synced either (see above)
// Unsynced pages reach the disk in any order, so a power loss can leave
// damaged records followed by intact ones. Each frame records the highest LSN
// known synced when it was written: damage that no later frame saw synced is
// "unsynced damage", which the default recovery drops like a torn tail.
class FsyncPolicy {
 public:
  enum class Kind { Always, Periodic, Never };

  static constexpr FsyncPolicy always() { return FsyncPolicy(Kind::Always, {}); }
  static constexpr FsyncPolicy periodic(std::chrono::milliseconds interval) {
    return FsyncPolicy(Kind::Periodic, interval);
  }
  static constexpr FsyncPolicy never() { return FsyncPolicy(Kind::Never, {}); }

  constexpr Kind kind() const { return kind_; }
  // Meaningful for Kind::Periodic only.
  constexpr std::chrono::milliseconds interval() const { return interval_; }
  // True when snapshot saves must fsync (Always and Periodic).
  constexpr bool syncs_snapshots() const { return kind_ != Kind::Never; }

  friend constexpr bool operator==(const FsyncPolicy&, const FsyncPolicy&) = default;

 private:
  constexpr FsyncPolicy(Kind kind, std::chrono::milliseconds interval)
      : kind_(kind), interval_(interval) {}
  Kind kind_;
  std::chrono::milliseconds interval_;
};

// What a load does with a damaged write-ahead log (docs/FORMAT.md,
// "Recovery"). The kinds of damage:
//   torn tail:  a bad last record with nothing valid after it, or a last
//               segment whose creation was cut short: what any crash leaves.
//   unsynced damage: bad records followed by valid ones, none of which saw
//               the bad ones synced: what a power loss leaves under periodic()
//               and never() (FsyncPolicy), or damage to records synced
//               without a later record saying so; the two look alike.
//   corruption: bad records followed by a valid one that saw them synced:
//               synced (maybe acknowledged) data, damaged since.
//   bad header: a segment other than the last whose header is unreadable
//               (not merely cut short at creation).
//   missing records: a segment that does not continue the LSN sequence.
//   unscanned:  damage after which the scan's CRC budget ran out
//               (docs/FORMAT.md, "Damage"): it may hide valid records, so in
//               the last segment it counts as corruption.
//   overlap:    a segment repeating LSNs an earlier one holds above the
//               snapshot's (two writers' segments): counts as corruption.
// And what each mode does with each (refuse: the load fails, naming the file
// and offset; stop: keep every record before it, drop everything after):
//                     Tolerate-      Absolute-     PointInTime   SkipCorrupted-
//                     CorruptedTail  Consistency                 Records
//   torn tail         drop           refuse        drop          drop
//   unsynced damage   stop           refuse        stop          skip it
//   corruption        refuse         refuse        stop          skip it
//   bad header        refuse         refuse        stop          skip segment
//   missing records   refuse         refuse        stop          skip the gap
//   TolerateCorruptedTail (default): keeps what a crash under the configured
//       policy may legitimately leave (a torn tail; unsynced damage, dropped
//       with every record after it: a state the database really passed
//       through, and one the policy accepted losing to a power loss) and
//       refuses anything else. Refusing unsynced damage instead would turn
//       every such power loss under periodic() or never() into a failed
//       restart. Right for almost everyone.
//   AbsoluteConsistency: refuse on any damage, torn tail included. For
//       deployments that sync every write and want to hear about any loss.
//   PointInTime: keep every record before the first damage and drop
//       everything after it, valid or not. Recovers a consistent earlier state
//       after corruption, at the price of the later records.
//   SkipCorruptedRecords: drop only the damaged records and keep every valid
//       one after them. Salvage: the result may reflect a write without the
//       ones before it.
// Nothing a load did not replay is ever deleted: a segment holding damage
// other than a torn tail, or valid records the load dropped, is renamed to
// "<segment>.damaged" (see WalReplayReport::set_aside; `iqdb-persist wal`
// reads it). A load that dropped anything other than a torn tail, or moved a
// segment aside, writes a checkpoint right away, so that the next load sees a
// clean log.
enum class WalRecoveryMode {
  TolerateCorruptedTail,
  AbsoluteConsistency,
  PointInTime,
  SkipCorruptedRecords,
};

// The mode's name as written here ("TolerateCorruptedTail", ...).
std::string_view to_string(WalRecoveryMode mode);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_WAL_OPTIONS_H_
