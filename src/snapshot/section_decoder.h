// Decodes the compressed sections of a mapped snapshot into anonymous memory,
// in parallel over their chunks. Each chunk's CRC-32 is checked before the
// chunk is decoded, whatever the VerifyMode: a decoder never sees damaged
// input, and a flipped bit in a compressed section is always an error.
//
// Memory: each compressed section gets its own private anonymous mapping
// (an AnonymousRegion, recycled from a closed snapshot when one fits),
// aligned as the section is in the file (at least 2 MiB, in huge pages, when
// the section is that large) and made read-only once decoded, so
// an index sees compressed and raw sections alike. Its size is the section's
// logical length, which the header codec has bounded by kMaxChunkExpansion
// times the stored length.
#ifndef IQDB_PERSIST_SRC_SNAPSHOT_SECTION_DECODER_H_
#define IQDB_PERSIST_SRC_SNAPSHOT_SECTION_DECODER_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "iqdb/persist/error.h"
#include "iqdb/persist/file_header.h"

namespace iqdb::persist {

struct DecodedSections {
  // Per section of the header, in table order: a compressed section's
  // decoded bytes; empty for a raw one.
  std::vector<std::span<const std::byte>> bytes;
  // Owns the decoded memory (null when nothing was compressed).
  std::shared_ptr<const void> memory;
  std::uint64_t stored_bytes = 0;   // compressed bytes checked and decoded
  std::uint64_t decoded_bytes = 0;  // bytes they decoded to
};

// "<path>: section '<name>' chunk <i> (offset <o>, <n> bytes)": how errors
// name chunk `chunk` of `section`, stored at file offset `offset`.
std::string chunk_context(const std::string& path, const SectionInfo& section, std::size_t chunk,
                          std::uint64_t offset);

// `file` is the whole mapped file that the validated `header` describes.
// `threads`: 0 means one per hardware thread. Errors: ChecksumMismatch or
// InvalidPayload naming the section and chunk; Unsupported for a codec this
// build lacks; Io when the memory cannot be mapped.
[[nodiscard]] Result<DecodedSections> decode_compressed_sections(std::span<const std::byte> file,
                                                                 const FileHeader& header,
                                                                 const std::string& path,
                                                                 unsigned threads);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_SNAPSHOT_SECTION_DECODER_H_
