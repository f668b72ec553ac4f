// rewrite_snapshot(): rewrites a snapshot file with other storage settings
// (which sections are compressed, with which codec) without knowing its index
// type and without loading the index: compress an existing database, or
// decompress one so that every section loads zero-copy again.
// `iqdb-persist compact` is this function.
//
//   RewriteOptions options;
//   options.compression = Compression::zstd(3);
//   auto rewritten = rewrite_snapshot("/data/products.iqdb",  // in place
//                                     "/data/products.iqdb", options);
//   if (!rewritten) return handle(rewritten.error());  // the old file is intact
//
// Contract:
//   - The source is fully verified first, as a load with VerifyMode::Eager
//     does (header, padding, the CRC-32 of every chunk, every compressed chunk
//     decoded): a damaged source is refused, never copied.
//   - The new file records the same facts (index type, dim, metric, n_vectors,
//     wal_lsn) and the same sections, in the same order, with the same names,
//     alignments and logical bytes. Only how they are stored changes:
//     compression per options.compression / compressed_sections /
//     compression_max_ratio, chunking, offsets, CRCs and writer_version.
//   - It is written like every save: a temporary file beside `target`,
//     synced per options.fsync_policy, renamed over `target`, directory
//     synced. A failure up to the rename leaves `target` as it was; `target`
//     may be `source` (in place, atomic: processes that have the old file
//     mapped keep reading it).
//
// The write-ahead log: segments ("<snapshot>.wal-*") are never read, written
// or removed. wal_lsn is kept, so after an in-place rewrite the log replays
// onto the new file exactly as onto the old one. A copy written to another
// path holds the snapshot alone (the last checkpoint), not the records of the
// source's log; a target path that has log segments of its own is refused,
// since their replay would apply to the copy.
//
// The rewrite is a writer of `target`: it holds the database's writer lock
// (see persisted_index.h) until the new file is in place, and is refused with
// Locked while a writer has that database open (a checkpoint it completed
// meanwhile would be replaced by the older snapshot).
//
// Memory and threads: compressed source sections are decoded into memory, as
// a load does; raw ones are written straight from the source's read-only
// mapping, which stays alive until the new file is in place. Verification and
// decoding use options.verify_threads threads. Reentrant.
#ifndef IQDB_PERSIST_REWRITE_H_
#define IQDB_PERSIST_REWRITE_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "iqdb/persist/compression.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/file_header.h"
#include "iqdb/persist/wal_options.h"

namespace iqdb::persist {

class FileSystem;

// How rewrite_snapshot() stores and writes the new file. The fields mean what
// PersistConfig's fields of the same names mean, applied to this one file, and
// have the same defaults; nothing else of a PersistConfig applies (each
// section keeps its own alignment, and the source is always fully verified).
struct RewriteOptions {
  // The codec of the new file's sections (see Compression); none() makes
  // every section raw, loaded zero-copy, again.
  Compression compression = Compression::none();
  // The sections `compression` applies to, by name; empty means every
  // section. Each name must be a section of the source.
  std::vector<std::string> compressed_sections;
  // A section is compressed only if its first chunk shrinks to at most this
  // fraction of its size; otherwise it is stored raw. In (0, 1].
  double compression_max_ratio = 0.9;
  // Whether the new file and its directory are synced before the rename
  // counts as done: always() and periodic() sync them, never() does not.
  FsyncPolicy fsync_policy = FsyncPolicy::always();
  // Threads for verifying and decoding the source; 0 means one per hardware
  // thread.
  unsigned verify_threads = 0;
  // Null means default_file_system().
  std::shared_ptr<FileSystem> file_system;
};

// How one section was stored before and after.
struct SectionRewrite {
  std::string name;
  std::uint64_t logical_length = 0;
  SectionCompression old_compression = SectionCompression::None;
  SectionCompression new_compression = SectionCompression::None;
  std::uint64_t old_stored_length = 0;
  std::uint64_t new_stored_length = 0;
};

struct RewriteReport {
  std::uint64_t bytes_before = 0;  // file sizes
  std::uint64_t bytes_after = 0;
  std::vector<SectionRewrite> sections;  // in table order
  double seconds = 0;                    // wall time of the whole rewrite
};

// Rewrites the snapshot at `source` to `target` (which may be `source`) with
// the storage settings of `options`. Errors, each naming the file:
//   InvalidConfig for an empty `target` or one naming a directory, or an
//     option PersistConfig::validate() would refuse (a zstd level, a ratio, a
//     non-positive periodic interval, a bad section name); Unsupported for a
//     codec this build lacks; InvalidConfig when compressed_sections names a
//     section the source does not have;
//   those of verify_snapshot() for the source (NotFound, Io, BadMagic,
//     ChecksumMismatch, InvalidPayload, ...), and Unsupported when a source
//     section needs a codec this build lacks;
//   Locked while another writer has the target database open;
//   AlreadyExists when `target` is not `source` and has log segments;
//   NotFound when the directory of `target` does not exist;
//   Io writing the new file. Two Io errors come after the rename, with the
//     new file in place: a failed directory sync (as for any save: the file
//     may not survive a power loss) and a failed read of its header.
[[nodiscard]] Result<RewriteReport> rewrite_snapshot(const std::filesystem::path& source,
                                                     const std::filesystem::path& target,
                                                     const RewriteOptions& options = {});

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_REWRITE_H_
