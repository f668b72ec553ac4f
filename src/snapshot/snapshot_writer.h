// SnapshotWriter lays out one snapshot file: it places each section the index
// adds at the next aligned offset, writes it in chunks (ChunkedSectionWriter:
// raw straight from the caller's memory, or compressed per the
// SectionEncoding), and finally writes the header and prefix.
//
// It only writes the file it is given; the atomic replace protocol (temp file,
// sync, rename, directory sync) is save_snapshot()'s (snapshot_io.cc).
#ifndef IQDB_PERSIST_SRC_SNAPSHOT_SNAPSHOT_WRITER_H_
#define IQDB_PERSIST_SRC_SNAPSHOT_SNAPSHOT_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "iqdb/persist/config.h"
#include "iqdb/persist/file_header.h"
#include "iqdb/persist/file_system.h"
#include "iqdb/persist/sections.h"
#include "snapshot/chunked_section_writer.h"

namespace iqdb::persist {

// Which sections are compressed, and how.
struct SectionEncoding {
  SectionCompression compression = SectionCompression::None;
  int level = 0;                  // zstd's
  std::vector<std::string> only;  // names to compress; empty means every section
  double max_ratio = 1.0;         // see ChunkedSectionWriter

  // The encoding from a validated config.
  static SectionEncoding from(const PersistConfig& config);
};

class SnapshotWriter final : public SectionWriter {
 public:
  // `file` must outlive the writer. `default_alignment` is a valid alignment.
  SnapshotWriter(WritableFile& file, std::uint64_t default_alignment,
                 SectionEncoding encoding = {});
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  Result<void> add_section(std::string_view name, std::span<const std::byte> bytes,
                           std::uint64_t alignment) override;
  Result<void> add_streamed_section(std::string_view name,
                                    const std::function<Result<void>(Writer&)>& fill,
                                    std::uint64_t alignment) override;

  // Writes the header describing `facts` and the sections added so far, then
  // the prefix, and sets the file's final length.
  Result<void> finish(const IndexFacts& facts);

 private:
  // Validates a new section and returns its offset.
  Result<std::uint64_t> place_section(std::string_view name, std::uint64_t alignment);
  // Options for section `name` with chunks of `chunk_size`.
  ChunkedSectionWriter::Options options_for(std::string_view name, std::uint64_t chunk_size) const;
  void record_section(std::string_view name, std::uint64_t offset, std::uint64_t alignment,
                      SectionInfo info);

  WritableFile& file_;
  std::uint64_t default_alignment_;
  SectionEncoding encoding_;
  std::uint64_t end_;  // end of the last section written
  std::vector<SectionInfo> sections_;
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_SNAPSHOT_SNAPSHOT_WRITER_H_
