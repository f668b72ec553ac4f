#include "snapshot/chunked_section_writer.h"

#include <algorithm>
#include <system_error>
#include <thread>

#include "snapshot/snapshot_format.h"
#include "util/crc32.h"

namespace iqdb::persist {
namespace {

// Small enough that a section of a few MiB still splits into chunks that two
// or more threads decode in balance (an 8 MB section in 4 MiB chunks left one
// of two threads idle for half a load), large enough that a chunk's fixed
// costs (a CRC call, a codec frame, a table entry) stay negligible.
constexpr std::uint64_t kDefaultChunkSize = std::uint64_t{1} << 20;
constexpr std::uint64_t kTargetChunksPerSection = 1024;
// Raw sections at least this large get their chunk CRCs and hash computed on
// a second thread while the main thread writes them.
constexpr std::size_t kConcurrentCrcThreshold = std::size_t{16} << 20;

// The CRC-32 of each `chunk_size` piece of `bytes`.
std::vector<std::uint32_t> chunk_crcs(std::span<const std::byte> bytes, std::uint64_t chunk_size) {
  std::vector<std::uint32_t> crcs;
  crcs.reserve(bytes.size() / chunk_size + 1);
  for (std::uint64_t start = 0; start < bytes.size(); start += chunk_size) {
    crcs.push_back(
        crc32(bytes.subspan(start, std::min<std::uint64_t>(chunk_size, bytes.size() - start))));
  }
  return crcs;
}

}  // namespace

std::uint64_t chunk_size_for(std::uint64_t length) {
  std::uint64_t size = kDefaultChunkSize;
  while (size < format::kMaxChunkSize && length / size > kTargetChunksPerSection) size *= 2;
  return size;
}

Result<std::unique_ptr<ChunkedSectionWriter>> ChunkedSectionWriter::create(WritableFile& file,
                                                                           std::uint64_t offset,
                                                                           std::uint64_t chunk_size,
                                                                           Compression compression,
                                                                           double max_ratio) {
  std::unique_ptr<ChunkEncoder> encoder;
  if (compression.kind() != Compression::Kind::None) {
    IQDB_TRY_ASSIGN(encoder, ChunkEncoder::create(section_compression(compression),
                                                  compression.level(), file.path().string()));
  }
  return std::unique_ptr<ChunkedSectionWriter>(new ChunkedSectionWriter(
      file, offset, chunk_size, compression, max_ratio, std::move(encoder)));
}

ChunkedSectionWriter::ChunkedSectionWriter(WritableFile& file, std::uint64_t offset,
                                           std::uint64_t chunk_size, Compression compression,
                                           double max_ratio, std::unique_ptr<ChunkEncoder> encoder)
    : file_(file),
      offset_(offset),
      chunk_size_(chunk_size),
      compression_(compression),
      max_ratio_(max_ratio),
      encoder_(std::move(encoder)),
      mode_(encoder_ ? Mode::Undecided : Mode::Raw) {
  info_.chunk_size = chunk_size;
}

Result<void> ChunkedSectionWriter::write(std::span<const std::byte> bytes) {
  const std::uint64_t chunk_size = chunk_size_;
  while (!bytes.empty()) {
    if (pending_.empty() && bytes.size() >= chunk_size) {  // a whole chunk: no copy
      IQDB_TRY(store_chunk(bytes.first(chunk_size)));
      bytes = bytes.subspan(chunk_size);
      continue;
    }
    if (pending_.capacity() == 0) pending_.reserve(chunk_size);
    const std::size_t take = std::min<std::size_t>(bytes.size(), chunk_size - pending_.size());
    pending_.insert(pending_.end(), bytes.begin(),
                    bytes.begin() + static_cast<std::ptrdiff_t>(take));
    bytes = bytes.subspan(take);
    if (pending_.size() == chunk_size) {
      IQDB_TRY(store_chunk(pending_));
      pending_.clear();
    }
  }
  return success();
}

Result<void> ChunkedSectionWriter::write_all(std::span<const std::byte> bytes) {
  if (mode_ == Mode::Raw) return write_all_raw(bytes);
  const std::uint64_t chunk_size = chunk_size_;
  for (std::uint64_t start = 0; start < bytes.size(); start += chunk_size) {
    if (mode_ == Mode::Raw) return write_all_raw(bytes.subspan(start));  // decided on chunk 0
    IQDB_TRY(store_chunk(bytes.subspan(start, std::min(chunk_size, bytes.size() - start))));
  }
  return success();
}

Result<void> ChunkedSectionWriter::finish() {
  if (!pending_.empty()) {
    IQDB_TRY(store_chunk(pending_));
    pending_.clear();
  }
  info_.compression =
      mode_ == Mode::Compressed ? section_compression(compression_) : SectionCompression::None;
  info_.xxh3 = hasher_.digest();
  return success();
}

Result<void> ChunkedSectionWriter::store_chunk(std::span<const std::byte> chunk) {
  hasher_.update(chunk);
  if (mode_ == Mode::Raw) return store_raw(chunk);
  IQDB_TRY_ASSIGN(const bool shrank, encoder_->encode(chunk, encoded_));
  if (mode_ == Mode::Undecided) {
    const double ratio =
        shrank ? static_cast<double>(encoded_.size()) / static_cast<double>(chunk.size()) : 1.0;
    mode_ = shrank && ratio <= max_ratio_ ? Mode::Compressed : Mode::Raw;
    if (mode_ == Mode::Raw) {
      encoder_.reset();
      return store_raw(chunk);
    }
  }
  return shrank ? store_stored_bytes(encoded_, chunk.size()) : store_raw(chunk);
}

Result<void> ChunkedSectionWriter::store_raw(std::span<const std::byte> chunk) {
  return store_stored_bytes(chunk, chunk.size());
}

Result<void> ChunkedSectionWriter::store_stored_bytes(std::span<const std::byte> stored,
                                                      std::uint64_t logical) {
  IQDB_TRY(file_.write_at(offset_ + info_.stored_length, stored));
  const std::uint32_t crc = crc32(stored);
  info_.chunks.push_back({static_cast<std::uint32_t>(stored.size()), crc});
  info_.crc32 = crc32_combine(info_.crc32, crc, stored.size());
  info_.stored_length += stored.size();
  info_.logical_length += logical;
  return success();
}

Result<void> ChunkedSectionWriter::write_all_raw(std::span<const std::byte> bytes) {
  if (bytes.empty()) return success();
  std::vector<std::uint32_t> crcs;
  const auto checksum = [&] {
    crcs = chunk_crcs(bytes, chunk_size_);
    hasher_.update(bytes);
  };
  std::thread crc_thread;
  if (bytes.size() >= kConcurrentCrcThreshold) {
    try {
      crc_thread = std::thread(checksum);
    } catch (const std::system_error&) {
      // No thread available: compute them inline below.
    }
  }
  if (!crc_thread.joinable()) checksum();
  auto written = file_.write_at(offset_ + info_.stored_length, bytes);
  if (crc_thread.joinable()) crc_thread.join();
  if (!written) return written.error();
  std::uint64_t start = 0;
  for (const std::uint32_t crc : crcs) {
    const std::uint64_t length = std::min<std::uint64_t>(chunk_size_, bytes.size() - start);
    info_.chunks.push_back({static_cast<std::uint32_t>(length), crc});
    info_.crc32 = crc32_combine(info_.crc32, crc, length);
    start += length;
  }
  info_.stored_length += bytes.size();
  info_.logical_length += bytes.size();
  return success();
}

}  // namespace iqdb::persist
