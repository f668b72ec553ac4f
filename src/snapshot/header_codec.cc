#include "snapshot/header_codec.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <set>
#include <string_view>

#include <fmt/format.h>

#include "snapshot/section_codec.h"
#include "snapshot/section_name.h"
#include "snapshot_header_generated.h"
#include "util/crc32.h"
#include "util/little_endian.h"
#include "wal/wal_format.h"

namespace iqdb::persist {
namespace {

std::string_view as_chars(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::string_view view_of(const flatbuffers::String* text) { return {text->data(), text->size()}; }

// True when [offset, offset + length) lies within a file of `file_size` bytes.
bool fits_in_file(std::uint64_t offset, std::uint64_t length, std::uint64_t file_size) {
  return offset <= file_size && length <= file_size - offset;
}

bool ranges_overlap(std::uint64_t a_offset, std::uint64_t a_length, std::uint64_t b_offset,
                    std::uint64_t b_length) {
  return a_length > 0 && b_length > 0 && a_offset < b_offset + b_length &&
         b_offset < a_offset + a_length;
}

Result<SectionCompression> decode_compression(std::uint8_t tag, std::string_view name,
                                              const std::string& path) {
  switch (tag) {
    case 0: return SectionCompression::None;
    case 1: return SectionCompression::Zstd;
    case 2: return SectionCompression::Lz4;
    default:
      return fail(ErrorKind::InvalidHeader,
                  fmt::format("{}: section '{}' has unknown compression tag {}", path, name, tag));
  }
}

// The chunk table against the section: sizes, count, each chunk's stored
// length against its logical one (kMaxChunkExpansion bounds what a file can
// make a reader allocate), and the CRCs against the section's.
Result<void> decode_chunks(const fb::Section& entry, SectionInfo& section,
                           const std::string& path) {
  const auto invalid = [&](const std::string& why) {
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: section '{}' chunk table: {}", path, section.name, why));
  };
  section.chunk_size = entry.chunk_size();
  const auto* chunks = entry.chunks();
  if (section.chunk_size == 0) {
    if (chunks != nullptr && chunks->size() != 0) return invalid("chunks without a chunk size");
    if (section.compression != SectionCompression::None) return invalid("missing");
    return success();
  }
  if (!std::has_single_bit(section.chunk_size) || section.chunk_size < format::kMinChunkSize ||
      section.chunk_size > format::kMaxChunkSize) {
    return invalid(fmt::format("chunk size {} is not a power of two from {} to {}",
                               section.chunk_size, format::kMinChunkSize, format::kMaxChunkSize));
  }
  const std::uint64_t expected_count = section.logical_length / section.chunk_size +
                                       (section.logical_length % section.chunk_size != 0 ? 1 : 0);
  const std::uint64_t count = chunks == nullptr ? 0 : chunks->size();
  if (count != expected_count) {
    return invalid(fmt::format("{} chunks, but {} logical bytes in chunks of {} make {}", count,
                               section.logical_length, section.chunk_size, expected_count));
  }
  section.chunks.reserve(count);
  std::uint64_t stored_total = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const fb::Chunk& chunk = *chunks->Get(static_cast<flatbuffers::uoffset_t>(i));
    const std::uint64_t logical = section.chunk_logical_length(i);
    const std::uint64_t stored = chunk.stored_length();
    const bool raw = section.compression == SectionCompression::None;
    if (raw ? stored != logical : stored > logical || stored < min_stored_length(logical)) {
      return invalid(fmt::format("chunk {} stores {} bytes for {} logical bytes (expected {})", i,
                                 stored, logical,
                                 raw ? fmt::format("{}", logical)
                                     : fmt::format("{}..{}", min_stored_length(logical), logical)));
    }
    stored_total += stored;
    section.chunks.push_back({chunk.stored_length(), chunk.crc32()});
  }
  if (stored_total != section.stored_length) {
    return invalid(
        fmt::format("chunks store {} bytes, the section {}", stored_total, section.stored_length));
  }
  return success();
}

Result<SectionInfo> decode_section(const fb::Section& entry, std::size_t index,
                                   std::uint64_t file_size, const std::string& path) {
  const std::string_view name = view_of(entry.name());
  IQDB_TRY(check_section_name(name, ErrorKind::InvalidHeader, path,
                              fmt::format("section #{} has a name", index)));
  SectionInfo section;
  section.name = std::string(name);
  section.offset = entry.offset();
  section.stored_length = entry.stored_length();
  section.logical_length = entry.logical_length();
  section.crc32 = entry.crc32();
  section.alignment = entry.alignment();
  section.xxh3 = entry.xxh3();
  if (!std::has_single_bit(section.alignment) || section.alignment < format::kMinSectionAlignment ||
      section.alignment > format::kMaxSectionAlignment) {
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: section '{}' has alignment {} (expected a power of two from {} "
                            "to {})",
                            path, name, section.alignment, format::kMinSectionAlignment,
                            format::kMaxSectionAlignment));
  }
  if (section.offset % section.alignment != 0) {
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: section '{}' offset {} is not a multiple of its alignment {}",
                            path, name, section.offset, section.alignment));
  }
  IQDB_TRY_ASSIGN(auto compression, decode_compression(entry.compression(), name, path));
  section.compression = compression;
  if (compression == SectionCompression::None && section.logical_length != section.stored_length) {
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: uncompressed section '{}' has logical length {} but stored "
                            "length {}",
                            path, name, section.logical_length, section.stored_length));
  }
  if (!fits_in_file(section.offset, section.stored_length, file_size)) {
    return fail(ErrorKind::TruncatedPayload,
                fmt::format("{}: section '{}' (offset {}, {} bytes) extends past the end of the "
                            "{}-byte file",
                            path, name, section.offset, section.stored_length, file_size));
  }
  IQDB_TRY(decode_chunks(entry, section, path));
  return section;
}

// Checks the section table as a whole: order, overlaps, the header's own
// range, the file's exact length and the payload CRC.
Result<void> check_layout(const FileHeader& header, std::uint64_t file_size,
                          const std::string& path) {
  std::set<std::string_view> names;
  std::uint64_t previous_end = format::kPrefixSize;
  std::uint32_t payload_crc = 0;
  for (const SectionInfo& section : header.sections) {
    if (!names.insert(section.name).second) {
      return fail(ErrorKind::InvalidHeader,
                  fmt::format("{}: section name '{}' appears twice", path, section.name));
    }
    if (section.offset < previous_end) {
      return fail(ErrorKind::InvalidHeader,
                  fmt::format("{}: section '{}' at offset {} overlaps the prefix or the previous "
                              "section (which ends at {})",
                              path, section.name, section.offset, previous_end));
    }
    if (ranges_overlap(section.offset, section.stored_length, header.header_offset,
                       header.header_length)) {
      return fail(ErrorKind::InvalidHeader,
                  fmt::format("{}: section '{}' (offset {}, {} bytes) overlaps the header "
                              "(offset {}, {} bytes)",
                              path, section.name, section.offset, section.stored_length,
                              header.header_offset, header.header_length));
    }
    previous_end = section.offset + section.stored_length;
    payload_crc = crc32_combine(payload_crc, section.crc32, section.stored_length);
  }
  const std::uint64_t expected_size =
      std::max(previous_end, header.header_offset + header.header_length);
  if (file_size != expected_size) {
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: file is {} bytes but its header accounts for {}: {} trailing "
                            "bytes",
                            path, file_size, expected_size, file_size - expected_size));
  }
  if (payload_crc != header.crc32) {
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: header payload CRC32 0x{:08x} disagrees with its section CRCs "
                            "(combined 0x{:08x})",
                            path, header.crc32, payload_crc));
  }
  return success();
}

}  // namespace

Result<void> check_host_is_little_endian(const std::filesystem::path& path) {
  if constexpr (std::endian::native == std::endian::little) {
    return success();
  } else {
    return fail(ErrorKind::Unsupported,
                fmt::format("{}: snapshots are little-endian and this host is not", path.string()));
  }
}

std::vector<std::byte> encode_header(const FileHeader& header) {
  flatbuffers::FlatBufferBuilder builder(1024);
  // Strings are passed with their lengths: names may contain NUL bytes.
  const auto string = [&builder](const std::string& text) {
    return builder.CreateString(text.data(), text.size());
  };
  std::vector<flatbuffers::Offset<fb::Section>> sections;
  sections.reserve(header.sections.size());
  std::vector<fb::Chunk> chunks;
  for (const SectionInfo& section : header.sections) {
    chunks.clear();
    for (const SectionChunk& chunk : section.chunks) {
      chunks.emplace_back(chunk.stored_length, chunk.crc32);
    }
    flatbuffers::Offset<flatbuffers::Vector<const fb::Chunk*>> chunk_table;
    if (!chunks.empty()) chunk_table = builder.CreateVectorOfStructs(chunks);
    sections.push_back(fb::CreateSection(
        builder, string(section.name), section.offset, section.stored_length,
        section.logical_length, static_cast<std::uint8_t>(section.compression), section.crc32,
        section.alignment, section.chunk_size, chunk_table, section.xxh3));
  }
  const auto index_type = string(header.index_type);
  const auto writer_version = string(header.writer_version);
  const auto section_table = builder.CreateVector(sections);
  const auto root = fb::CreateSnapshotHeader(
      builder, index_type, header.dim, static_cast<std::uint8_t>(header.metric), header.n_vectors,
      header.crc32, header.wal_lsn, writer_version, section_table, header.content_hash,
      header.database_id);
  fb::FinishSnapshotHeaderBuffer(builder, root);
  const auto* data = reinterpret_cast<const std::byte*>(builder.GetBufferPointer());
  return {data, data + builder.GetSize()};
}

std::array<std::byte, format::kPrefixSize> encode_prefix(std::span<const std::byte> header_bytes,
                                                         std::uint64_t header_offset) {
  std::array<std::byte, format::kPrefixSize> prefix{};
  std::memcpy(prefix.data() + format::kMagicOffset, kMagic.data(), kMagic.size());
  store_le(prefix, format::kVersionOffset, kCurrentVersion, 4);
  store_le(prefix, format::kHeaderLengthOffset, header_bytes.size(), 4);
  store_le(prefix, format::kHeaderOffsetOffset, header_offset, 8);
  store_le(prefix, format::kHeaderCrcOffset, crc32(header_bytes), 4);
  const auto covered = std::span<const std::byte>(prefix).first(format::kPrefixCrcOffset);
  store_le(prefix, format::kPrefixCrcOffset, crc32(covered), 4);
  return prefix;
}

Result<HeaderLocation> decode_prefix(std::span<const std::byte> prefix, std::uint64_t file_size,
                                     const std::string& path) {
  const std::size_t available = std::min<std::size_t>(prefix.size(), format::kPrefixSize);
  const std::size_t magic_seen = std::min(available, kMagic.size());
  if (as_chars(prefix.first(magic_seen)) != kMagic.substr(0, magic_seen)) {
    return fail(ErrorKind::BadMagic,
                fmt::format("{}: not an iqdb-persist snapshot (the file does not start with "
                            "\"IQDBPRST\")",
                            path));
  }
  if (available >= format::kVersionOffset + 4) {
    const auto version = static_cast<std::uint32_t>(load_le(prefix, format::kVersionOffset, 4));
    if (version != kCurrentVersion) {
      return fail(
          ErrorKind::UnsupportedVersion,
          fmt::format("{}: format version {} (this build reads version {}{})", path, version,
                      kCurrentVersion,
                      version == 2 ? "; version 2 is the original Rust crate's format" : ""));
    }
  }
  if (available < format::kPrefixSize) {
    return fail(ErrorKind::TruncatedHeader,
                fmt::format("{}: file is {} bytes, shorter than the {}-byte prefix", path,
                            file_size, format::kPrefixSize));
  }
  const auto stored_prefix_crc =
      static_cast<std::uint32_t>(load_le(prefix, format::kPrefixCrcOffset, 4));
  const std::uint32_t actual_prefix_crc = crc32(prefix.first(format::kPrefixCrcOffset));
  if (stored_prefix_crc != actual_prefix_crc) {
    return fail(ErrorKind::ChecksumMismatch,
                fmt::format("{}: prefix (offset 0, {} bytes): CRC32 expected 0x{:08x}, found "
                            "0x{:08x}",
                            path, format::kPrefixCrcOffset, stored_prefix_crc, actual_prefix_crc));
  }
  HeaderLocation location;
  location.length = static_cast<std::uint32_t>(load_le(prefix, format::kHeaderLengthOffset, 4));
  location.offset = load_le(prefix, format::kHeaderOffsetOffset, 8);
  location.crc32 = static_cast<std::uint32_t>(load_le(prefix, format::kHeaderCrcOffset, 4));
  if (location.length == 0 || location.length > format::kMaxHeaderLength) {
    return fail(ErrorKind::InvalidHeader, fmt::format("{}: header length {} is outside 1..{}", path,
                                                      location.length, format::kMaxHeaderLength));
  }
  if (location.offset < format::kPrefixSize || location.offset % format::kHeaderAlignment != 0) {
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: header offset {} is not a multiple of {} at or after the prefix",
                            path, location.offset, format::kHeaderAlignment));
  }
  if (!fits_in_file(location.offset, location.length, file_size)) {
    return fail(ErrorKind::TruncatedHeader,
                fmt::format("{}: header (offset {}, {} bytes) extends past the end of the {}-byte "
                            "file",
                            path, location.offset, location.length, file_size));
  }
  return location;
}

Result<FileHeader> decode_header(const HeaderLocation& location,
                                 std::span<const std::byte> header_bytes, std::uint64_t file_size,
                                 const std::string& path) {
  const std::uint32_t actual_crc = crc32(header_bytes);
  if (actual_crc != location.crc32) {
    return fail(ErrorKind::ChecksumMismatch,
                fmt::format("{}: header (offset {}, {} bytes): CRC32 expected 0x{:08x}, found "
                            "0x{:08x}",
                            path, location.offset, location.length, location.crc32, actual_crc));
  }
  const auto* data = reinterpret_cast<const std::uint8_t*>(header_bytes.data());
  flatbuffers::Verifier verifier(data, header_bytes.size(), format::kMaxHeaderDepth,
                                 format::kMaxHeaderTables);
  if (!fb::VerifySnapshotHeaderBuffer(verifier)) {
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: header (offset {}, {} bytes) is not a valid FlatBuffers "
                            "snapshot header",
                            path, location.offset, location.length));
  }
  const fb::SnapshotHeader& root = *fb::GetSnapshotHeader(data);
  FileHeader header;
  header.index_type = std::string(view_of(root.index_type()));
  if (header.index_type.empty() || header.index_type.size() > kMaxIndexTypeLength) {
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: index type has {} bytes (expected 1..{})", path,
                            header.index_type.size(), kMaxIndexTypeLength));
  }
  const auto metric = metric_from_tag(root.metric());
  if (!metric) {
    return fail(ErrorKind::InvalidMetric,
                fmt::format("{}: metric tag {} is not a known distance metric (0..4)", path,
                            root.metric()));
  }
  header.metric = *metric;
  header.dim = root.dim();
  header.n_vectors = root.n_vectors();
  header.crc32 = root.payload_crc32();
  header.wal_lsn = root.wal_lsn();
  if (header.wal_lsn > wal_format::kMaxLsn) {
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: wal_lsn {} is above the largest log sequence number {}: no "
                            "record could follow it",
                            path, header.wal_lsn, wal_format::kMaxLsn));
  }
  header.content_hash = root.content_xxh3();
  header.database_id = root.database_id();
  if (root.writer_version() != nullptr) header.writer_version = view_of(root.writer_version());
  header.header_offset = location.offset;
  header.header_length = location.length;
  header.file_size = file_size;

  const auto& entries = *root.sections();
  if (entries.size() > kMaxSections) {
    return fail(ErrorKind::InvalidHeader, fmt::format("{}: {} sections (at most {} allowed)", path,
                                                      entries.size(), kMaxSections));
  }
  header.sections.reserve(entries.size());
  for (flatbuffers::uoffset_t i = 0; i < entries.size(); ++i) {
    IQDB_TRY_ASSIGN(auto section, decode_section(*entries.Get(i), i, file_size, path));
    header.sections.push_back(std::move(section));
  }
  IQDB_TRY(check_layout(header, file_size, path));
  return header;
}

Result<FileHeader> read_header(const ReadableFile& file) {
  const std::string path = file.path().string();
  IQDB_TRY(check_host_is_little_endian(file.path()));
  // One read usually brings the prefix and the header, which follows it and
  // is small: a load (and a replica's switch) makes one system call fewer.
  constexpr std::size_t kFirstRead = 4096;
  static_assert(kFirstRead >= format::kPrefixSize);
  alignas(16) std::array<std::byte, kFirstRead> first{};
  const auto first_length =
      static_cast<std::size_t>(std::min<std::uint64_t>(file.size(), kFirstRead));
  IQDB_TRY(file.read_at(0, std::span(first).first(first_length)));
  const auto prefix_length = std::min(first_length, format::kPrefixSize);
  IQDB_TRY_ASSIGN(auto location,
                  decode_prefix(std::span(first).first(prefix_length), file.size(), path));
  // (In place only if as aligned as a heap buffer: the header's scalars are read in place.)
  if (location.offset + location.length <= first_length && location.offset % 16 == 0) {
    return decode_header(location, std::span(first).subspan(location.offset, location.length),
                         file.size(), path);
  }
  std::vector<std::byte> header_bytes(location.length);  // bounded by kMaxHeaderLength
  IQDB_TRY(file.read_at(location.offset, header_bytes));
  return decode_header(location, header_bytes, file.size(), path);
}

}  // namespace iqdb::persist
