// Finding, naming and opening the segment files of a snapshot's write-ahead
// log (docs/FORMAT.md, "Write-ahead log"): "<snapshot>.wal-<16 hex digits>".
#ifndef IQDB_PERSIST_SRC_WAL_WAL_SEGMENTS_H_
#define IQDB_PERSIST_SRC_WAL_WAL_SEGMENTS_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "iqdb/persist/error.h"
#include "iqdb/persist/file_system.h"
#include "wal/wal_recovery.h"

namespace iqdb::persist {

// The path of segment `number` of the log of `snapshot_path`.
std::filesystem::path wal_segment_path(const std::filesystem::path& snapshot_path,
                                       std::uint64_t number);

// The numbers of the log's segments present beside the snapshot, ascending.
// Names that merely resemble a segment's, such as a segment moved aside
// ("<segment>.damaged"), are ignored. Errors, naming the snapshot: NotFound
// when its directory does not exist, Io.
[[nodiscard]] Result<std::vector<std::uint64_t>> list_wal_segments(
    FileSystem& fs, const std::filesystem::path& snapshot_path);

// A segment mapped read-only and scanned; `input.scan` holds its header error
// when it has one. The mapping backs the frames the scan describes.
struct OpenedWalSegment {
  std::uint64_t number = 0;  // from the file name
  std::shared_ptr<const MappedRegion> mapping;
  WalSegmentInput input;
};

// Maps and scans every segment of the log, in number order. A segment whose
// header records a database id other than `database_id` (the snapshot's;
// wal_format::same_database()) belongs to another database: its scan is an
// InvalidHeader error saying so, which recovery treats as any bad header.
// Errors: those of list_wal_segments(), Io.
[[nodiscard]] Result<std::vector<OpenedWalSegment>> open_wal_segments(
    FileSystem& fs, const std::filesystem::path& snapshot_path, std::uint64_t database_id);

// Maps and scans one segment file, whatever its name (e.g. one moved aside).
// Errors: NotFound, Io.
[[nodiscard]] Result<OpenedWalSegment> open_wal_segment(FileSystem& fs,
                                                        const std::filesystem::path& path,
                                                        std::uint64_t number);

// Renames `segment` to "<segment>.damaged" (or "-2", "-3"... after it, never
// replacing a file) and returns the new path. The caller syncs the directory.
// Errors: Io.
[[nodiscard]] Result<std::filesystem::path> set_aside_wal_segment(
    FileSystem& fs, const std::filesystem::path& segment);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_WAL_WAL_SEGMENTS_H_
