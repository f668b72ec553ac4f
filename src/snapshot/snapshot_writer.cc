#include "snapshot/snapshot_writer.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include <fmt/format.h>

#include "iqdb/persist/version.h"
#include "snapshot/content_hash.h"
#include "snapshot/header_codec.h"
#include "snapshot/section_name.h"
#include "snapshot/snapshot_format.h"
#include "util/crc32.h"

namespace iqdb::persist {
namespace {

constexpr std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) {
  return (value + alignment - 1) & ~(alignment - 1);
}

}  // namespace

SnapshotWriter::SnapshotWriter(WritableFile& file, std::uint64_t default_alignment,
                               Compression compression,
                               std::vector<std::string> compressed_sections, double max_ratio)
    : file_(file),
      default_alignment_(default_alignment),
      compression_(compression),
      compressed_sections_(std::move(compressed_sections)),
      max_ratio_(max_ratio),
      end_(format::kPrefixSize) {}

Result<std::uint64_t> SnapshotWriter::place_section(std::string_view name,
                                                    std::uint64_t alignment) {
  const std::string where = file_.path().string();
  IQDB_TRY(check_section_name(name, ErrorKind::InvalidArgument, where, "section name"));
  for (const SectionInfo& section : sections_) {
    if (section.name == name) {
      return fail(ErrorKind::InvalidArgument,
                  fmt::format("{}: section '{}' was added twice", where, name));
    }
  }
  if (sections_.size() >= kMaxSections) {
    return fail(ErrorKind::InvalidArgument,
                fmt::format("{}: more than {} sections", where, kMaxSections));
  }
  if (!std::has_single_bit(alignment) || alignment < format::kMinSectionAlignment ||
      alignment > format::kMaxSectionAlignment) {
    return fail(
        ErrorKind::InvalidArgument,
        fmt::format("{}: section '{}' alignment {} is not a power of two from {} to {}", where,
                    name, alignment, format::kMinSectionAlignment, format::kMaxSectionAlignment));
  }
  return align_up(end_, alignment);
}

Compression SnapshotWriter::compression_for(std::string_view name) const {
  const bool selected = compressed_sections_.empty() ||
                        std::find(compressed_sections_.begin(), compressed_sections_.end(), name) !=
                            compressed_sections_.end();
  return selected ? compression_ : Compression::none();
}

Result<std::unique_ptr<ChunkedSectionWriter>> SnapshotWriter::start_section(
    std::string_view name, std::uint64_t offset, std::uint64_t chunk_size) const {
  return ChunkedSectionWriter::create(file_, offset, chunk_size, compression_for(name), max_ratio_);
}

void SnapshotWriter::record_section(std::string_view name, std::uint64_t offset,
                                    std::uint64_t alignment, SectionInfo info) {
  info.name = std::string(name);
  info.offset = offset;
  info.alignment = alignment;
  end_ = offset + info.stored_length;
  sections_.push_back(std::move(info));
}

Result<void> SnapshotWriter::add_section(std::string_view name, std::span<const std::byte> bytes,
                                         std::uint64_t alignment) {
  if (alignment == 0) alignment = default_alignment_;
  IQDB_TRY_ASSIGN(auto offset, place_section(name, alignment));
  IQDB_TRY_ASSIGN(auto writer, start_section(name, offset, chunk_size_for(bytes.size())));
  IQDB_TRY(writer->write_all(bytes));
  IQDB_TRY(writer->finish());
  record_section(name, offset, alignment, writer->info());
  return success();
}

Result<void> SnapshotWriter::add_streamed_section(
    std::string_view name, const std::function<Result<void>(StreamWriter&)>& fill,
    std::uint64_t alignment) {
  if (alignment == 0) alignment = default_alignment_;
  IQDB_TRY_ASSIGN(auto offset, place_section(name, alignment));
  IQDB_TRY_ASSIGN(auto writer, start_section(name, offset, chunk_size_for(0)));
  IQDB_TRY(fill(*writer));
  IQDB_TRY(writer->finish());
  record_section(name, offset, alignment, writer->info());
  return success();
}

Result<void> SnapshotWriter::finish(const IndexFacts& facts) {
  const std::string where = file_.path().string();
  if (facts.index_type.empty() || facts.index_type.size() > kMaxIndexTypeLength) {
    return fail(ErrorKind::InvalidArgument,
                fmt::format("{}: index type '{}' must be 1..{} bytes", where, facts.index_type,
                            kMaxIndexTypeLength));
  }
  if (facts.dim > UINT32_MAX) {
    return fail(
        ErrorKind::InvalidArgument,
        fmt::format("{}: dimension {} does not fit the format's 32 bits", where, facts.dim));
  }
  FileHeader header;
  header.index_type = std::string(facts.index_type);
  header.dim = static_cast<std::uint32_t>(facts.dim);
  header.metric = facts.metric;
  header.n_vectors = facts.n_vectors;
  header.wal_lsn = facts.wal_lsn;
  header.database_id = facts.database_id;
  header.writer_version = std::string(kWriterVersion);
  for (const SectionInfo& section : sections_) {
    header.crc32 = crc32_combine(header.crc32, section.crc32, section.stored_length);
  }
  header.sections = sections_;
  header.content_hash = snapshot_content_hash(header);
  const std::vector<std::byte> header_bytes = encode_header(header);

  // The header goes right after the prefix when it fits before the first
  // section; otherwise after the last one.
  const std::uint64_t room_end = sections_.empty() ? UINT64_MAX : sections_.front().offset;
  std::uint64_t header_offset = format::kPrefixSize;
  if (header_offset + header_bytes.size() > room_end) {
    header_offset = align_up(end_, format::kHeaderAlignment);
  }
  if (header_bytes.size() > format::kMaxHeaderLength) {
    return fail(ErrorKind::InvalidArgument,
                fmt::format("{}: header of {} bytes exceeds the format's {}-byte limit", where,
                            header_bytes.size(), format::kMaxHeaderLength));
  }
  IQDB_TRY(file_.write_at(header_offset, header_bytes));
  const auto prefix = encode_prefix(header_bytes, header_offset);
  IQDB_TRY(file_.write_at(0, prefix));
  return file_.truncate(std::max(end_, header_offset + header_bytes.size()));
}

}  // namespace iqdb::persist
