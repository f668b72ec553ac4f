// FileHeader: the facts a snapshot file records about itself, readable without
// loading (or even mapping) the index it carries. Tools use read_file_header()
// to show a snapshot's index type, shape and section table.
//
// On disk (docs/FORMAT.md has the byte-level grammar):
//   [ 32-byte prefix: kMagic, version, header length/offset/CRC32, prefix CRC32 ]
//   [ FlatBuffers header (schema/snapshot_header.fbs)                           ]
//   [ zero padding ] [ section 0 ] [ zero padding ] [ section 1 ] ...
// Every section starts at a multiple of its alignment (at least 4096), so an
// uncompressed section can be used straight out of a memory mapping.
#ifndef IQDB_PERSIST_FILE_HEADER_H_
#define IQDB_PERSIST_FILE_HEADER_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "iqdb/persist/error.h"
#include "iqdb/types.h"

namespace iqdb::persist {

class FileSystem;

// The first eight bytes of every snapshot.
inline constexpr std::string_view kMagic = "IQDBPRST";
// The format version this build writes and reads. (Version 2 was the original
// Rust crate's single-payload format, which this library does not read.)
inline constexpr std::uint32_t kCurrentVersion = 3;

// Limits of the format, which writers respect and readers enforce: an index
// type name (Persistable's kIndexType) of 1..kMaxIndexTypeLength bytes; at
// most kMaxSections sections, each named by 1..kMaxSectionNameLength bytes.
inline constexpr std::size_t kMaxIndexTypeLength = 64;
inline constexpr std::size_t kMaxSections = 1024;
inline constexpr std::size_t kMaxSectionNameLength = 255;

// How a section's bytes are stored. Values are on-disk tags.
enum class SectionCompression : std::uint8_t { None = 0, Zstd = 1, Lz4 = 2 };

std::string_view to_string(SectionCompression compression);

// One chunk of a section (see SectionInfo::chunks).
struct SectionChunk {
  std::uint32_t stored_length = 0;  // bytes in the file
  std::uint32_t crc32 = 0;          // CRC-32 of those bytes

  friend bool operator==(const SectionChunk&, const SectionChunk&) = default;
};

// One entry of the section table.
struct SectionInfo {
  std::string name;
  std::uint64_t offset = 0;          // absolute file offset
  std::uint64_t stored_length = 0;   // bytes in the file
  std::uint64_t logical_length = 0;  // bytes once decoded
  SectionCompression compression = SectionCompression::None;
  std::uint32_t crc32 = 0;  // CRC-32 of the stored bytes
  std::uint64_t alignment = 4096;
  // The section cut into chunks of chunk_size logical bytes (the last may be
  // shorter), stored back to back from `offset`, each with its own CRC-32:
  // verification reports the damaged chunk, and compressed chunks decode in
  // parallel. A compressed chunk whose stored_length equals its logical
  // length is stored raw. Empty (chunk_size 0) in files written before chunk
  // tables existed, and never for a compressed section.
  std::uint64_t chunk_size = 0;
  std::vector<SectionChunk> chunks;

  // XXH3-64 of the logical bytes: identifies the content (0 in files written
  // before hashes existed). Not an integrity check; the CRCs are.
  std::uint64_t xxh3 = 0;

  // Logical length of chunk `i`.
  std::uint64_t chunk_logical_length(std::size_t i) const;

  friend bool operator==(const SectionInfo&, const SectionInfo&) = default;
};

// What an index says about itself: recorded in the header when a snapshot is
// written, and compared with the rebuilt index when one is loaded.
struct IndexFacts {
  std::string_view index_type;
  std::uint64_t dim = 0;
  DistanceMetric metric = DistanceMetric::Cosine;
  std::uint64_t n_vectors = 0;
  std::uint64_t wal_lsn = 0;  // the last log record the index holds; 0 = none
  // The database the snapshot belongs to (FileHeader::database_id): not the
  // index's, but recorded with its facts when a database writes it.
  std::uint64_t database_id = 0;
};

struct FileHeader {
  std::string magic = std::string(kMagic);
  std::uint32_t version = kCurrentVersion;
  std::string index_type;
  std::uint32_t dim = 0;
  DistanceMetric metric = DistanceMetric::Cosine;
  std::uint64_t n_vectors = 0;
  std::uint32_t crc32 = 0;  // CRC-32 of every section's stored bytes, in table order
  std::uint64_t wal_lsn = 0;
  std::string writer_version;
  std::vector<SectionInfo> sections;
  // XXH3-64 of the index facts (type, dim, metric, count) and of each
  // section's name, logical length and hash (docs/FORMAT.md, "Content
  // hashes"): equal for two snapshots holding the same data, whatever their
  // compression. 0 in files written before hashes existed.
  std::uint64_t content_hash = 0;
  // Chosen at random when the database was created (OpenMode::Overwrite
  // chooses a new one) and kept by its every snapshot and log segment, so
  // that a reader never takes another database's log, or the log of the one
  // recreated at the same path, for this snapshot's (docs/FORMAT.md,
  // "Database identity"). 0 in files written before it existed, which
  // accept any log.
  std::uint64_t database_id = 0;

  // Where the FlatBuffers header itself lies, and the whole file's length.
  std::uint64_t header_offset = 0;
  std::uint32_t header_length = 0;
  std::uint64_t file_size = 0;

  // The section named `name`, or nullptr.
  const SectionInfo* find_section(std::string_view name) const;

  friend bool operator==(const FileHeader&, const FileHeader&) = default;
};

// Reads and fully validates the prefix, header and section table of the
// snapshot at `path` with positional reads (no mapping, no payload read).
// Section CRCs are not checked: use verify_snapshot() for that. A header
// whose sections use a codec this build lacks still reads (loading such a
// section is what fails, with Unsupported).
// Errors: NotFound, Io, BadMagic, UnsupportedVersion, TruncatedHeader,
// TruncatedPayload, ChecksumMismatch (prefix or header), InvalidHeader,
// InvalidMetric, Unsupported (a big-endian host).
// `file_system`: null means default_file_system().
[[nodiscard]] Result<FileHeader> read_file_header(
    const std::filesystem::path& path, const std::shared_ptr<FileSystem>& file_system = nullptr);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_FILE_HEADER_H_
