// SnapshotWriter lays out one snapshot file: it places each section the index
// adds at the next aligned offset, writes it in chunks (ChunkedSectionWriter:
// raw straight from the caller's memory, or compressed as the Compression
// given for it asks), and finally writes the header and prefix.
//
// It only writes the file it is given; the atomic replace protocol (temp file,
// sync, rename, directory sync) is save_snapshot()'s (db/snapshot_io.cc).
#ifndef IQDB_PERSIST_SRC_SNAPSHOT_SNAPSHOT_WRITER_H_
#define IQDB_PERSIST_SRC_SNAPSHOT_SNAPSHOT_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "iqdb/persist/compression.h"
#include "iqdb/persist/file_header.h"
#include "iqdb/persist/file_system.h"
#include "iqdb/persist/sections.h"
#include "snapshot/chunked_section_writer.h"

namespace iqdb::persist {

class SnapshotWriter final : public SectionWriter {
 public:
  // `file` must outlive the writer. `default_alignment` is a valid alignment.
  // Sections are compressed with `compression` (a validated one), those named
  // in `compressed_sections` only unless it is empty, and each only where its
  // first chunk shrinks to `max_ratio` (see ChunkedSectionWriter): as
  // PersistConfig's fields of those names ask.
  SnapshotWriter(WritableFile& file, std::uint64_t default_alignment,
                 Compression compression = Compression::none(),
                 std::vector<std::string> compressed_sections = {}, double max_ratio = 1.0);
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  Result<void> add_section(std::string_view name, std::span<const std::byte> bytes,
                           std::uint64_t alignment) override;
  Result<void> add_streamed_section(std::string_view name,
                                    const std::function<Result<void>(StreamWriter&)>& fill,
                                    std::uint64_t alignment) override;

  // Writes the header describing `facts` and the sections added so far, then
  // the prefix, and sets the file's final length.
  Result<void> finish(const IndexFacts& facts);

 private:
  // Validates a new section and returns its offset.
  Result<std::uint64_t> place_section(std::string_view name, std::uint64_t alignment);
  // The compression of section `name`: none() unless compressed_sections_
  // selects it.
  Compression compression_for(std::string_view name) const;
  // A writer of section `name` at `offset`, in chunks of `chunk_size`.
  Result<std::unique_ptr<ChunkedSectionWriter>> start_section(std::string_view name,
                                                              std::uint64_t offset,
                                                              std::uint64_t chunk_size) const;
  void record_section(std::string_view name, std::uint64_t offset, std::uint64_t alignment,
                      SectionInfo info);

  WritableFile& file_;
  std::uint64_t default_alignment_;
  Compression compression_;
  std::vector<std::string> compressed_sections_;
  double max_ratio_;
  std::uint64_t end_;  // end of the last section written
  std::vector<SectionInfo> sections_;
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_SNAPSHOT_SNAPSHOT_WRITER_H_
