// inspect_wal(): a report on a snapshot's write-ahead log without applying it,
// for tools (`iqdb-persist wal FILE`) and for operators deciding how to
// recover a damaged log. It lists the segments with their LSN ranges, any
// damage and any record that does not decode, and says what a load in each
// WalRecoveryMode would do: replay what, drop what, or refuse and why. It
// decodes every record a load would, with the load's decoder, so it says a
// load opens exactly when one would, unless the index refuses a replayed op
// that the log records as applied. docs/FORMAT.md ("Write-ahead log") specifies
// the files and the recovery rules.
//
// Read-only: it maps each segment and never writes. Thread-safety: reentrant.
#ifndef IQDB_PERSIST_WAL_INSPECTION_H_
#define IQDB_PERSIST_WAL_INSPECTION_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "iqdb/persist/error.h"
#include "iqdb/persist/wal_options.h"

namespace iqdb::persist {

class FileSystem;

struct WalDamageInfo {
  bool torn_tail = false;  // else corruption: valid frames follow it (unless unscanned)
  // The scan's CRC budget ran out here (docs/FORMAT.md, "Damage"): the rest
  // of the segment was not searched, and valid frames may lie in it.
  bool unscanned = false;
  std::uint64_t offset = 0;      // first damaged byte
  std::uint64_t length = 0;      // damaged bytes
  std::uint64_t lsn_before = 0;  // LSN of the last valid frame before it
  std::string reason;
};

// A frame whose checksum matches but whose record a load refuses to decode
// (an unknown record type, trailing bytes, a length past the body...).
struct WalInvalidRecord {
  std::uint64_t lsn = 0;
  std::uint64_t offset = 0;  // of the frame in the segment file
  std::string reason;        // the record decoder's, naming the body offset
};

struct WalSegmentInfo {
  std::filesystem::path path;
  std::uint64_t size = 0;
  // Set when the segment's header is unreadable; the fields below are then 0.
  std::optional<PersistError> header_error;
  std::uint64_t number = 0;
  std::uint64_t first_lsn = 0;
  std::uint64_t last_lsn = 0;  // of the last valid frame; first_lsn - 1 when none
  std::uint64_t frames = 0;    // valid frames
  // The valid frames by record type (the body's first byte; not decoded further).
  std::uint64_t inserts = 0;
  std::uint64_t removes = 0;
  std::uint64_t batches = 0;
  std::uint64_t aborts = 0;
  std::vector<WalDamageInfo> damages;
  // The valid frames with an LSN past the snapshot's (those a load may
  // replay) whose record does not decode, decoded as a load decodes them.
  std::vector<WalInvalidRecord> invalid_records;
};

// What a load in `mode` would do with this log. A load refuses when the
// recovery policy refuses the damage, or when a record it would replay does
// not decode (InvalidPayload naming the record's LSN and segment): what it
// does not know is whether the index accepts the ops it replays.
struct WalModeOutcome {
  WalRecoveryMode mode = WalRecoveryMode::TolerateCorruptedTail;
  std::optional<PersistError> refusal;  // set when the load would refuse to open
  std::uint64_t last_lsn = 0;           // the LSN the recovered state would end at
  std::uint64_t frames_replayed = 0;
  std::uint64_t frames_dropped = 0;  // valid frames given up
  std::uint64_t bytes_dropped = 0;   // damaged bytes given up
  std::vector<std::string> notes;    // what is dropped, naming file and offset
  // Segments the load would move aside ("<segment>.damaged") rather than
  // ever delete: they hold records it would not replay.
  std::vector<std::filesystem::path> set_aside;
};

struct WalReport {
  // The path given is a log segment itself (e.g. one a load moved aside, see
  // WalReplayReport::set_aside), read on its own: `segments` holds it alone,
  // and `modes` is empty (no load replays it).
  bool lone_segment = false;
  bool snapshot_found = false;
  std::uint64_t snapshot_lsn = 0;        // the snapshot's wal_lsn; 0 without a snapshot
  std::vector<WalSegmentInfo> segments;  // in segment-number order
  std::vector<WalModeOutcome> modes;     // one per WalRecoveryMode, default first
};

// `snapshot_path` may also name a log segment (by its magic, or a name with
// ".wal-" in it), such as one a load moved aside: the report then describes
// that file alone (lone_segment).
// Errors: those of read_file_header() for a snapshot that exists but is
// damaged; NotFound when the snapshot's directory does not exist; Io when the
// directory or a segment cannot be read. A log with no
// segments gives an empty report, not an error.
// `file_system`: null means default_file_system().
[[nodiscard]] Result<WalReport> inspect_wal(
    const std::filesystem::path& snapshot_path,
    const std::shared_ptr<FileSystem>& file_system = nullptr);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_WAL_INSPECTION_H_
