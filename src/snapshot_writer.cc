#include "snapshot_writer.h"

#include <bit>
#include <cstring>
#include <system_error>
#include <thread>

#include <fmt/format.h>

#include "crc32.h"
#include "header_codec.h"
#include "iqdb/persist/persistable.h"
#include "iqdb/persist/version.h"
#include "snapshot_format.h"

namespace iqdb::persist {
namespace {

constexpr std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) {
  return (value + alignment - 1) & ~(alignment - 1);
}

// Sections at least this large get their CRC computed on a second thread
// while the main thread writes them.
constexpr std::size_t kConcurrentCrcThreshold = std::size_t{16} << 20;
constexpr std::size_t kStreamBufferSize = std::size_t{1} << 20;

// Computes the CRC of `bytes` while `write` runs, on another thread when the
// data is large enough to make that pay.
Result<std::uint32_t> write_with_crc(std::span<const std::byte> bytes,
                                     const std::function<Result<void>()>& write) {
  std::uint32_t crc = 0;
  std::thread crc_thread;
  if (bytes.size() >= kConcurrentCrcThreshold) {
    try {
      crc_thread = std::thread([&crc, bytes] { crc = crc32(bytes); });
    } catch (const std::system_error&) {
      // No thread available: compute it inline below.
    }
  }
  if (!crc_thread.joinable()) crc = crc32(bytes);
  auto written = write();
  if (crc_thread.joinable()) crc_thread.join();
  if (!written) return written.error();
  return crc;
}

// The Writer a streamed section's fill function writes to: buffers small
// writes, passes large ones straight through, and checksums everything.
class SectionStream final : public Writer {
 public:
  SectionStream(WritableFile& file, std::uint64_t offset) : file_(file), offset_(offset) {}

  Result<void> write(std::span<const std::byte> bytes) override {
    if (buffer_.size() + bytes.size() <= kStreamBufferSize) {
      if (buffer_.capacity() == 0) buffer_.reserve(kStreamBufferSize);
      buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
      return boost::outcome_v2::success();
    }
    IQDB_TRY(flush());
    if (bytes.size() < kStreamBufferSize) return write(bytes);
    return write_through(bytes);
  }

  Result<void> flush() {
    IQDB_TRY(write_through(buffer_));
    buffer_.clear();
    return boost::outcome_v2::success();
  }

  std::uint64_t length() const { return length_; }
  std::uint32_t crc() const { return crc_; }

 private:
  Result<void> write_through(std::span<const std::byte> bytes) {
    if (bytes.empty()) return boost::outcome_v2::success();
    IQDB_TRY(file_.write_at(offset_ + length_, bytes));
    crc_ = crc32(bytes, crc_);
    length_ += bytes.size();
    return boost::outcome_v2::success();
  }

  WritableFile& file_;
  std::uint64_t offset_;
  std::uint64_t length_ = 0;
  std::uint32_t crc_ = 0;
  std::vector<std::byte> buffer_;
};

}  // namespace

SnapshotWriter::SnapshotWriter(WritableFile& file, std::uint64_t default_alignment)
    : file_(file), default_alignment_(default_alignment), end_(format::kPrefixSize) {}

Result<std::uint64_t> SnapshotWriter::place_section(std::string_view name,
                                                    std::uint64_t alignment) {
  const std::string where = file_.path().string();
  if (name.empty() || name.size() > kMaxSectionNameLength) {
    return fail(ErrorKind::InvalidArgument,
                fmt::format("{}: section name of {} bytes (expected 1..{})", where, name.size(),
                            kMaxSectionNameLength));
  }
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

void SnapshotWriter::record_section(std::string_view name, std::uint64_t offset,
                                    std::uint64_t length, std::uint32_t crc,
                                    std::uint64_t alignment) {
  sections_.push_back(
      {std::string(name), offset, length, length, SectionCompression::None, crc, alignment});
  end_ = offset + length;
}

Result<void> SnapshotWriter::add_section(std::string_view name, std::span<const std::byte> bytes,
                                         std::uint64_t alignment) {
  if (alignment == 0) alignment = default_alignment_;
  IQDB_TRY_ASSIGN(auto offset, place_section(name, alignment));
  IQDB_TRY_ASSIGN(auto crc, write_with_crc(bytes, [&]() -> Result<void> {
                    if (bytes.empty()) return boost::outcome_v2::success();
                    return file_.write_at(offset, bytes);
                  }));
  record_section(name, offset, bytes.size(), crc, alignment);
  return boost::outcome_v2::success();
}

Result<void> SnapshotWriter::add_streamed_section(std::string_view name,
                                                  const std::function<Result<void>(Writer&)>& fill,
                                                  std::uint64_t alignment) {
  if (alignment == 0) alignment = default_alignment_;
  IQDB_TRY_ASSIGN(auto offset, place_section(name, alignment));
  SectionStream stream(file_, offset);
  IQDB_TRY(fill(stream));
  IQDB_TRY(stream.flush());
  record_section(name, offset, stream.length(), stream.crc(), alignment);
  return boost::outcome_v2::success();
}

Result<void> SnapshotWriter::finish(const detail::IndexFacts& facts) {
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
  header.writer_version = std::string(kWriterVersion);
  for (const SectionInfo& section : sections_) {
    header.crc32 = crc32_combine(header.crc32, section.crc32, section.stored_length);
  }
  header.sections = sections_;
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
