// WalTailer: follows a database's write-ahead log while its writer appends,
// applying each new record to an index as it becomes readable: how a replica
// stays current between checkpoints.
//
// The log is only ever appended to, in whole segments that are never
// rewritten (docs/FORMAT.md, "Write-ahead log"), so a reader can follow it by
// position: it remembers the segment and offset of the next frame and the LSN
// it expects there. What it cannot read yet is "not yet", never an error:
//   - an incomplete or bad frame at the end of the segment is one the writer
//     is still writing (or a torn tail it will never finish): wait;
//   - once the next segment exists and continues the LSN sequence, the rest
//     of this one is a torn tail the writer's recovery dropped: move on;
//   - when the segment followed disappears, the next LSN is looked for in the
//     segments there are (a checkpoint starts a new one at that LSN);
//   - when the log no longer holds the next LSN (no segment has it, or the
//     next segment starts later), a checkpoint folded those records into
//     a newer snapshot: the caller must switch to it (NeedsSnapshot);
//   - a segment whose header records another database id than the snapshot
//     followed (wal_format::same_database()) is never read: the database
//     was recreated at this path (or files of another were copied in), and
//     only its new snapshot can be followed (NeedsSnapshot).
// A frame is applied only when it is complete and its CRC and LSN match, so
// half a frame is never applied. Records are applied as far as the writer
// applied them: a refusal by the writer's index is logged as an Abort record
// right after its record (wal_record.h); when both are readable the record is
// limited by it, as replay does. When the record is the last readable frame,
// it is applied at once (the index refuses what the writer's refused), and
// an Abort arriving later that disagrees reports Diverged: the caller must
// rebuild from the snapshot, which replays the pair together.
//
// Files are reopened by path at each step, so a file replaced by a copier
// (rsync writes a new file and renames it) is followed as well as one
// appended in place; each reopened file's header is read again, so a file
// replaced by another segment, or by another database's, is never read from
// the offset reached in the one before. The tailer never writes.
//
// Thread-safety: none; one thread at a time.
#ifndef IQDB_PERSIST_SRC_WAL_WAL_TAILER_H_
#define IQDB_PERSIST_SRC_WAL_WAL_TAILER_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "iqdb/persist/error.h"
#include "iqdb/persist/file_system.h"
#include "wal/wal_op.h"
#include "wal/wal_record.h"

namespace iqdb::persist {

class WalTailer {
 public:
  enum class State {
    CaughtUp,       // every frame there is was applied
    NotYet,         // bytes or a segment are still being written: try again later
    NeedsSnapshot,  // the log no longer holds next_lsn(): switch to a newer snapshot
    Diverged,       // the writer's index refused a record this one applied: rebuild
  };
  struct Outcome {
    State state = State::CaughtUp;
    std::uint64_t records = 0;  // mutation records applied by this call
    std::uint64_t bytes = 0;    // frame bytes consumed by this call
    std::string detail;         // why, for NotYet, NeedsSnapshot and Diverged
  };

  // Where the previous tailer of the same log was, so that a new tailer
  // (the next generation's, after a checkpoint) can find its segment without
  // listing the directory: the segment it followed and the LSN that segment
  // starts at (checked against the segment's header, or only assumed).
  struct SegmentHint {
    std::uint64_t segment = 0;  // 0: no hint
    std::uint64_t first_lsn = 0;
    bool header_checked = false;
  };

  // Follows the log of the snapshot at `snapshot_path` from `next_lsn` (one
  // past the snapshot's LSN); `database_id` is the snapshot's (0: it records
  // none, and segments of any database are followed). `fs` must outlive the
  // tailer. With a hint, the hinted segment is followed if it starts at
  // next_lsn, and otherwise, if it starts before, the one after it is looked
  // at (a checkpoint starts the next segment at next_lsn) before the
  // directory is listed.
  WalTailer(FileSystem& fs, std::filesystem::path snapshot_path, std::uint64_t next_lsn,
            SegmentHint hint, std::uint64_t database_id = 0);
  WalTailer(FileSystem& fs, std::filesystem::path snapshot_path, std::uint64_t next_lsn)
      : WalTailer(fs, std::move(snapshot_path), next_lsn, SegmentHint{}) {}

  // Whether advance() may find something new: two stats (the segment being
  // followed and the one after it), or true when no segment is known yet.
  bool maybe_changed();

  // Applies the readable records from next_lsn() on, in order, to `index`,
  // stopping after `max_records` mutation records (the caller then calls
  // again). Errors: InvalidPayload for a frame whose CRC matches but whose
  // record does not decode (the log is damaged; naming segment and offset);
  // Io.
  [[nodiscard]] Result<Outcome> advance(const OpApplier& index, std::uint64_t max_records);

  // The segment followed (0 until one is found).
  std::uint64_t segment() const { return segment_; }
  // Whether a segment is followed whose header was read (not only stat'ed):
  // where the log after next_lsn() is, is then known, not guessed.
  bool segment_header_checked() const { return segment_ != 0 && !header_unchecked_; }
  // The hint a tailer following the next snapshot of this log is given.
  SegmentHint hint() const { return {segment_, segment_first_lsn_, !header_unchecked_}; }
  // The LSN of the next record to apply: every record before it was applied.
  std::uint64_t next_lsn() const { return next_lsn_; }
  // Bytes of the followed segment past the last applied frame, as last seen.
  std::uint64_t pending_bytes() const { return seen_size_ > offset_ ? seen_size_ - offset_ : 0; }

 private:
  // A record applied while no frame followed it: an Abort naming it may come.
  struct Unconfirmed {
    std::uint64_t lsn = 0;
    std::uint32_t applied = 0;  // ops applied before the index refused one, or all
  };

  Result<std::optional<Outcome>> locate();
  // Follows the hinted segment if it starts at next_lsn_ and is there, or
  // else the one after it if that one does (see try_segment_after_hint()).
  bool try_hint(const SegmentHint& hint);
  // Follows segment `number`, the one after the hinted segment, if it starts
  // exactly at next_lsn_. One that holds only its header is taken, on a
  // stat, for the one the checkpoint that wrote this snapshot started there;
  // its header is checked once frames appear. (Had a later checkpoint
  // started it, the records before it are only in that checkpoint's
  // snapshot, which replaced this one: the replica's next check switches
  // to it. Until then this tailer reports its snapshot's LSN, whose state is
  // the writer's at that LSN.)
  bool try_segment_after_hint(std::uint64_t number);
  // What the header of the followed segment, reopened, says: still the
  // segment followed (it starts where that one did, of this database), a
  // segment of another database, or another segment (or none readable).
  // Errors: Io reading the header.
  enum class Reopened { Same, OtherDatabase, OtherSegment };
  Result<Reopened> check_reopened(const ReadableFile& file, std::string& detail) const;
  void follow_segment(std::uint64_t number, std::filesystem::path path, std::uint64_t first_lsn);
  // Makes the window start at offset_ and hold at least `want` bytes (if
  // the file has them).
  Result<void> read_window(const ReadableFile& file, std::uint64_t size, std::uint64_t want);
  void clear_window();
  // At the end of what the followed segment holds: moves to the next
  // segment, or says why not (nullopt: moved on).
  Result<std::optional<Outcome>> at_segment_end(bool bytes_left);
  Result<void> apply_frame(std::uint64_t lsn, std::span<const std::byte> body,
                           std::optional<std::uint32_t> abort_limit, bool followed,
                           const OpApplier& index, Outcome& outcome);
  std::string frame_context(std::uint64_t offset, std::uint64_t lsn) const;

  FileSystem& fs_;
  const std::filesystem::path snapshot_path_;
  const std::uint64_t database_id_;  // the snapshot's; 0: any
  std::uint64_t next_lsn_;
  SegmentHint hint_;                     // used by the first locate() only
  std::uint64_t segment_ = 0;            // the segment followed; 0 until located
  std::uint64_t segment_first_lsn_ = 0;  // the LSN it starts at
  std::filesystem::path segment_path_;
  std::uint64_t offset_ = 0;        // of the next frame in it
  std::uint64_t expected_lsn_ = 0;  // the LSN of the frame there
  std::uint64_t seen_size_ = 0;     // its size when last read
  bool header_unchecked_ = false;   // found by a stat: its header is read at its first open
  std::optional<Unconfirmed> unconfirmed_;
  // Bytes [window_offset_, +size) of the segment: read into buffer_ (a few
  // new frames), or viewed in mapping_ (a catch-up: no copy).
  std::span<const std::byte> window_;
  std::uint64_t window_offset_ = 0;
  std::vector<std::byte> buffer_;
  std::shared_ptr<const MappedRegion> mapping_;
  // The followed segment as the probe that found it opened it, used
  // (once) by the next advance() instead of opening it again.
  std::unique_ptr<ReadableFile> probed_;
  DecodedRecord record_;
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_WAL_WAL_TAILER_H_
