// ChunkedSectionWriter writes the bytes of one snapshot section at its offset,
// cut into chunks (docs/FORMAT.md, "Chunks"): each chunk's CRC-32 goes into the
// section table, and with a codec each chunk is encoded on its own.
//
// With a codec, the first chunk decides: if it does not shrink to at most
// `max_ratio` of its size, the whole section is stored raw (and stays
// zero-copy at load). After that, a chunk that does not shrink at all is
// stored raw within the compressed section.
//
// It writes only its own range of the file; SnapshotWriter places sections
// and writes the table.
#ifndef IQDB_PERSIST_SRC_SNAPSHOT_CHUNKED_SECTION_WRITER_H_
#define IQDB_PERSIST_SRC_SNAPSHOT_CHUNKED_SECTION_WRITER_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "iqdb/persist/compression.h"
#include "iqdb/persist/file_header.h"
#include "iqdb/persist/file_system.h"
#include "iqdb/persist/stream.h"
#include "snapshot/content_hash.h"
#include "snapshot/section_codec.h"

namespace iqdb::persist {

// The chunk size for a section of `length` bytes: 1 MiB, doubled (up to the
// format's maximum) until the section has at most 1024 chunks.
std::uint64_t chunk_size_for(std::uint64_t length);

class ChunkedSectionWriter final : public StreamWriter {
 public:
  // A writer of the section at `offset` in `file` (which must outlive it), in
  // chunks of `chunk_size` logical bytes, encoded per `compression`, which
  // must be valid (its level one the codec accepts). `max_ratio` is the
  // first chunk's test above (only with a codec). Unsupported if the codec is
  // not in this build.
  static Result<std::unique_ptr<ChunkedSectionWriter>> create(
      WritableFile& file, std::uint64_t offset, std::uint64_t chunk_size,
      Compression compression = Compression::none(), double max_ratio = 1.0);

  // Streams bytes into the section (buffered per chunk).
  Result<void> write(std::span<const std::byte> bytes) override;

  // Writes the whole section from the caller's memory, without a staging
  // copy when stored raw. Only on a writer nothing was written to.
  Result<void> write_all(std::span<const std::byte> bytes);

  // Writes what is buffered; then info() describes the section.
  Result<void> finish();

  // Compression, lengths, CRC-32, chunk table and content hash (name, offset
  // and alignment are the caller's to fill in).
  const SectionInfo& info() const { return info_; }

 private:
  enum class Mode { Undecided, Raw, Compressed };

  ChunkedSectionWriter(WritableFile& file, std::uint64_t offset, std::uint64_t chunk_size,
                       Compression compression, double max_ratio,
                       std::unique_ptr<ChunkEncoder> encoder);

  // Decides the mode on the first chunk (if undecided), then stores `chunk`.
  Result<void> store_chunk(std::span<const std::byte> chunk);
  Result<void> store_raw(std::span<const std::byte> chunk);
  Result<void> store_stored_bytes(std::span<const std::byte> stored, std::uint64_t logical);
  // Raw sections from memory: one write, chunk CRCs computed alongside.
  Result<void> write_all_raw(std::span<const std::byte> bytes);

  WritableFile& file_;
  std::uint64_t offset_;
  std::uint64_t chunk_size_;
  Compression compression_;
  double max_ratio_;
  std::unique_ptr<ChunkEncoder> encoder_;  // null when raw from the start
  Mode mode_;
  std::vector<std::byte> pending_;  // the chunk being filled by write()
  std::vector<std::byte> encoded_;  // the last encoded chunk
  ContentHasher hasher_;            // of the logical bytes
  SectionInfo info_;
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_SNAPSHOT_CHUNKED_SECTION_WRITER_H_
