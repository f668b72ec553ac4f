// The recovery policy of the write-ahead log: given the scans of every
// segment (wal_reader.h), the LSN the snapshot already holds and a
// WalRecoveryMode, decide which frames to replay, or refuse to open.
//
// Rules (docs/FORMAT.md, "Recovery"):
//   - Frames with LSN <= the snapshot's LSN are already in the snapshot and
//     are never replayed; damage among them is irrelevant.
//   - LSNs are consecutive across segments. A segment that does not start
//     right after the previous one's last valid frame means records are
//     missing: corruption (unless the gap lies entirely in the snapshot).
//   - A torn tail followed by a segment that continues the LSN sequence was
//     sealed by an earlier recovery and is not damage. A torn tail of the last
//     segment (or a last segment too short to hold its header, or all zero)
//     is what a crash leaves: dropped, except in AbsoluteConsistency.
//   - A segment whose creation was cut short (shorter than its header, or all
//     zero) never held a record: dropped if last (a torn tail), ignored if
//     not. Any other bad header is corruption.
//   - Damage followed by valid frames is corruption only if some later frame
//     records (as its durable LSN) that the first damaged LSN had been
//     synced. Otherwise it may be unsynced writes a power loss cut, out of
//     order: refused in AbsoluteConsistency, skipped in SkipCorruptedRecords,
//     else dropped with every frame after it (the state a power loss may
//     leave, which never() and periodic() accept).
//   - Unscanned damage (the scan's CRC budget ran out, so valid frames may
//     follow it) is treated like a torn tail in a segment but the last, and
//     as corruption in the last segment, unless every LSN it could hold is
//     already held.
//   - Corruption is refused, except in PointInTime (stop before it) and
//     SkipCorruptedRecords (skip it).
//   - A segment holding damage other than a torn tail or a header cut short,
//     or valid frames the plan drops, is evidence: the load moves it aside
//     (set_aside) instead of ever deleting it. Damage among LSNs the snapshot
//     holds counts too: a crash may have come between the checkpoint that
//     followed a lossy load and its moving the segment aside.
#ifndef IQDB_PERSIST_SRC_WAL_WAL_RECOVERY_H_
#define IQDB_PERSIST_SRC_WAL_WAL_RECOVERY_H_

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "iqdb/persist/error.h"
#include "iqdb/persist/wal_options.h"
#include "wal/wal_reader.h"

namespace iqdb::persist {

// One segment as found on disk, in segment-number order.
struct WalSegmentInput {
  std::filesystem::path path;
  std::uint64_t size = 0;
  bool all_zero = false;        // every byte is zero (looked at only when the header is bad)
  Result<WalSegmentScan> scan;  // the header error, if the header is bad
};

// Replay the valid frames of segments[segment] with LSNs in [first_lsn, last_lsn].
struct WalReplayRange {
  std::size_t segment = 0;
  std::uint64_t first_lsn = 0;
  std::uint64_t last_lsn = 0;
};

struct WalRecoveryPlan {
  std::vector<WalReplayRange> replay;
  std::uint64_t last_lsn = 0;         // the last LSN the recovered state holds
  std::uint64_t max_lsn = 0;          // the highest LSN of any valid frame found
  std::uint64_t frames_replayed = 0;  // frames with LSN > snapshot LSN that are kept
  std::uint64_t frames_dropped = 0;   // valid frames dropped (PointInTime)
  std::uint64_t bytes_dropped = 0;    // damaged bytes dropped
  bool dropped_corruption = false;    // a lossy mode dropped more than a torn tail
  // Segments (indices, ascending) that hold records this load does not
  // replay: damaged bytes other than a torn tail, or dropped valid frames.
  // They must be moved aside, never deleted (WalLog does it).
  std::vector<std::size_t> set_aside;
  std::vector<std::string> notes;  // one line per thing dropped, naming file and offset
};

// Errors: ChecksumMismatch (corruption, naming the file, offset and reason),
// TruncatedPayload (a torn tail under AbsoluteConsistency, or missing
// records), and the header errors of a damaged segment that is not the last.
[[nodiscard]] Result<WalRecoveryPlan> plan_wal_recovery(std::span<const WalSegmentInput> segments,
                                                        std::uint64_t snapshot_lsn,
                                                        WalRecoveryMode mode);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_WAL_WAL_RECOVERY_H_
