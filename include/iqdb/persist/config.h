// PersistConfig: everything PersistedIndex needs to know about where and how
// to persist an index (Tier 1 path, Tier 2 knobs).
//
//   iqdb::persist::PersistConfig config("/data/products.iqdb");
//   config.fsync_policy = FsyncPolicy::never();  // bulk load: durability later
//   config.verify = VerifyMode::Skip;            // trusted replica
//
// A PersistConfig is a plain copyable value. validate() reports every
// out-of-range field with ErrorKind::InvalidConfig, and features this build
// does not offer with ErrorKind::Unsupported; PersistedIndex calls it first.
#ifndef IQDB_PERSIST_CONFIG_H_
#define IQDB_PERSIST_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "iqdb/persist/compression.h"
#include "iqdb/persist/error.h"

namespace iqdb::persist {

class FileSystem;

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

// When a load checks the section CRCs (compressed sections are always
// checked, chunk by chunk, before they are decoded).
//   Eager:      before load() returns, in parallel over `verify_threads`
//               threads. A damaged file is an error; the index never sees
//               damaged bytes.
//   Background: load() returns once the header is validated; worker threads
//               check the rest while the index serves. The index may see
//               damaged bytes until the check passes; a failure is reported,
//               never swallowed (PersistedIndex::verification(), see
//               iqdb/persist/verification.h).
//   Skip:       never. For replicas whose files are known good (e.g. verified
//               by the writer, or by `iqdb-persist verify`). The header is
//               still fully validated, so a hostile file cannot cause
//               out-of-bounds access by the library; flipped payload bits
//               reach the index unnoticed.
// With Background and Skip the snapshot's payload is handed to the index as
// trusted (SnapshotView::payload_trusted()): an index may skip its own checks
// that cost time in proportion to the payload (the example flat index's
// distinct-id check), so that those loads stay independent of the file size.
// Every mode checks the file as it is during the load. Raw sections are read
// through the mapping afterwards: a file changed in place later is never
// checked again (see "Files changed under a live mapping" in sections.h).
enum class VerifyMode { Eager, Background, Skip };

// How a load brings a raw section's pages into memory (compressed sections
// are decoded into memory at load, so they are resident anyway). Measured on
// this project's test machine, a 500 MB snapshot evicted from the page cache
// (1M x 128 floats) and a brute-force first query: Lazy, WillNeed and
// Prefetch answer it 0.32 s after load() starts; Populate spends 0.2 s in
// load() and answers after 0.50-0.59 s (faulting page by page in order lets
// the kernel's read-ahead overlap the scan). Hence Lazy by default; the
// others suit queries that touch a section at random, or latency goals for
// the first query after start-up.
//   Lazy:      nothing; pages are read on first touch, with the kernel's
//              read-ahead.
//   WillNeed:  madvise(MADV_WILLNEED): the kernel starts reading the section
//              at once; load() does not wait.
//   Populate:  load() returns with every page resident (MADV_POPULATE_READ).
//   Prefetch:  a background thread touches every page after load() returns
//              (stopped when the snapshot's memory is released).
//   Lock:      Populate, then mlock(2): the pages stay resident. Needs a
//              large enough RLIMIT_MEMLOCK; a refusal fails the load (Io).
enum class WarmUp { Lazy, WillNeed, Populate, Prefetch, Lock };

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

struct PersistConfig {
  PersistConfig() = default;
  // NOLINTNEXTLINE(google-explicit-constructor): "a config is a path" (Tier 1).
  PersistConfig(std::filesystem::path snapshot_path) : path(std::move(snapshot_path)) {}

  // The snapshot file. Its directory must exist (it is never created): a
  // load, a save and open_with() all report NotFound when it does not.
  // Temporary files are created beside the snapshot so that the final rename
  // stays within one file system.
  std::filesystem::path path;

  // The write-ahead log: insert/remove/apply_batch are logged, and made
  // durable per fsync_policy, before they are applied; load() replays the log
  // onto the snapshot; checkpoint() folds it into a new snapshot. Its files
  // are "<path>.wal-<16 hex digits>" beside the snapshot. Without it, load()
  // reads the snapshot alone and ignores any log.
  bool wal_enabled = false;

  FsyncPolicy fsync_policy = FsyncPolicy::always();
  Compression compression = Compression::none();
  // The sections `compression` applies to, by name; empty means every section.
  std::vector<std::string> compressed_sections;
  // A section is compressed only where it pays: unless its first chunk
  // shrinks to at most this fraction of its size, it is stored raw (and stays
  // zero-copy). In (0, 1]. Random float vectors barely compress (zstd ~0.93,
  // LZ4 ~1.0) and stay raw at the default; sorted ids shrink ~7x.
  double compression_max_ratio = 0.9;
  VerifyMode verify = VerifyMode::Eager;
  WalRecoveryMode wal_recovery = WalRecoveryMode::TolerateCorruptedTail;

  // Warm-up of raw sections on load (see WarmUp), and per-section overrides
  // by name.
  WarmUp warm_up = WarmUp::Lazy;
  std::vector<std::pair<std::string, WarmUp>> section_warm_up;
  // madvise(MADV_HUGEPAGE) on raw sections aligned to 2 MiB (set
  // section_alignment or the index's per-section alignment), for fewer TLB
  // misses. Advice only: the kernel's transparent huge page settings decide.
  // (Decoded sections of 2 MiB or more always get it.)
  bool huge_pages = false;

  // Threads for verification and for decoding compressed sections; 0 means
  // one per hardware thread.
  unsigned verify_threads = 0;

  // Default alignment of payload sections, in bytes: a power of two from 4096
  // to 1 GiB (2 MiB lets a mapping use huge pages). An index may ask for a
  // larger alignment per section.
  std::uint64_t section_alignment = 4096;

  // All file-system access goes through this seam; null means the operating
  // system (default_file_system()). Tests substitute a fault-injecting one.
  std::shared_ptr<FileSystem> file_system;

  // InvalidConfig for an empty path, a bad alignment, a non-positive periodic
  // interval, a zstd level outside the library's range, an empty section name
  // or a compression_max_ratio outside (0, 1]; Unsupported for a codec this
  // build lacks (naming its CMake option).
  Result<void> validate() const;
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_CONFIG_H_
