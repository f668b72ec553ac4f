// The codecs of compressed snapshot sections, one chunk at a time
// (docs/FORMAT.md, "Compressed sections"). A chunk is encoded independently of
// the others, so chunks decode in parallel and damage stays within one.
//
// Each codec exists only in builds configured with its CMake option
// (IQDB_PERSIST_WITH_ZSTD, IQDB_PERSIST_WITH_LZ4); without it, both directions
// fail with Unsupported naming the option. Decoding is bounded: it never writes
// past the caller's buffer, and anything but exactly its size is an error.
#ifndef IQDB_PERSIST_SRC_SNAPSHOT_SECTION_CODEC_H_
#define IQDB_PERSIST_SRC_SNAPSHOT_SECTION_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "iqdb/persist/compression.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/file_header.h"

namespace iqdb::persist {

// A chunk's decoded length is at most this many times its stored length; the
// encoder pads a chunk that compresses better (zstd) and readers refuse a
// table that breaks the rule, so a file can never claim more decoded bytes
// than kMaxChunkExpansion times its own size.
inline constexpr std::uint64_t kMaxChunkExpansion = 256;

// The fewest stored bytes a chunk of `logical_length` bytes may occupy.
constexpr std::uint64_t min_stored_length(std::uint64_t logical_length) {
  return (logical_length + kMaxChunkExpansion - 1) / kMaxChunkExpansion;
}

// The on-disk tag of the codec `compression` chooses.
SectionCompression section_compression(const Compression& compression);

// Whether this build encodes and decodes `compression` (None always).
bool codec_available(SectionCompression compression);

// Unsupported, naming `context`, the codec and its CMake option, unless
// codec_available(compression).
Result<void> check_codec_available(SectionCompression compression, std::string_view context);

// InvalidConfig unless `level` is one this build's zstd accepts.
Result<void> check_zstd_level(int level, std::string_view context);

// Encodes chunks with one codec and level, reusing its state between chunks.
// Not thread-safe: one per thread.
class ChunkEncoder {
 public:
  // Unsupported if the codec is not in this build. `level` is zstd's.
  static Result<std::unique_ptr<ChunkEncoder>> create(SectionCompression compression, int level,
                                                      std::string_view context);
  virtual ~ChunkEncoder() = default;

  // Replaces `out` with the encoded `chunk`. Returns false when the encoding
  // is not smaller than the chunk (it must then be stored raw) or cannot
  // respect kMaxChunkExpansion. `chunk` is non-empty and at most 2 GiB.
  [[nodiscard]] virtual Result<bool> encode(std::span<const std::byte> chunk,
                                            std::vector<std::byte>& out) = 0;
};

// Decodes one stored chunk into exactly out.size() bytes. Errors:
// InvalidPayload (naming `context`) if the data does not decode to exactly
// that many bytes; Unsupported if the codec is not in this build.
[[nodiscard]] Result<void> decode_chunk(SectionCompression compression,
                                        std::span<const std::byte> stored, std::span<std::byte> out,
                                        std::string_view context);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_SNAPSHOT_SECTION_CODEC_H_
