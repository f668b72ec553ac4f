#include "wal/wal_writer.h"

#include <algorithm>
#include <array>
#include <cstring>

#include <fmt/format.h>

#include "util/crc32.h"
#include "util/file_paths.h"
#include "util/little_endian.h"
#include "wal/wal_format.h"
#include "wal/wal_segments.h"

namespace iqdb::persist {

namespace wf = wal_format;

WalWriter::WalWriter(std::unique_ptr<WritableFile> file, std::uint64_t first_lsn)
    : file_(std::move(file)), next_lsn_(first_lsn) {}

Result<std::unique_ptr<WalWriter>> WalWriter::create(FileSystem& fs,
                                                     const std::filesystem::path& snapshot_path,
                                                     std::uint64_t number, std::uint64_t first_lsn,
                                                     bool sync, std::uint64_t database_id) {
  const std::filesystem::path path = wal_segment_path(snapshot_path, number);
  if (first_lsn == 0 || first_lsn > wf::kMaxLsn) {
    return fail(ErrorKind::InvalidArgument,
                fmt::format("{}: first LSN {} outside 1..{}: the log has used every sequence "
                            "number",
                            path.string(), first_lsn, wf::kMaxLsn));
  }
  IQDB_TRY_ASSIGN(auto file, fs.create_new(path));
  std::unique_ptr<WalWriter> writer(new WalWriter(std::move(file), first_lsn));

  std::array<std::byte, wf::kHeaderSize> header{};
  std::memcpy(header.data(), wf::kMagic.data(), wf::kMagic.size());
  store_le(header, wf::kVersionOffset, wf::kVersion, 4);
  store_le(header, wf::kChecksumOffset, wf::kChecksumCrc32, 4);
  store_le(header, wf::kSegmentNumberOffset, number, 8);
  store_le(header, wf::kFirstLsnOffset, first_lsn, 8);
  store_le(header, wf::kDatabaseIdOffset, database_id, 8);
  store_le(header, wf::kHeaderCrcOffset,
           crc32(std::span<const std::byte>(header).first(wf::kHeaderCrcOffset)), 4);
  IQDB_TRY(writer->write(header));
  if (sync) {
    IQDB_TRY(writer->sync());
    IQDB_TRY(fs.sync_dir(directory_of(path)));
  }
  return writer;
}

void WalWriter::set_failure(std::string why) {
  std::lock_guard lock(failure_mutex_);
  if (failed_.load(std::memory_order_relaxed)) return;  // keep the first reason
  failure_ = std::move(why);
  failed_.store(true, std::memory_order_release);
}

Result<void> WalWriter::check_usable() const {
  if (!failed_.load(std::memory_order_acquire)) return success();
  std::lock_guard lock(failure_mutex_);
  return fail(ErrorKind::Io,
              fmt::format("{}: log segment no longer writable: {}", path().string(), failure_));
}

Result<void> WalWriter::write(std::span<const std::byte> bytes) {
  IQDB_TRY(check_usable());
  auto written = file_->write_at(size_, bytes);
  if (!written) {
    set_failure(written.error().message());
    return written;
  }
  size_ += bytes.size();
  return success();
}

Result<std::uint64_t> WalWriter::append(std::span<const std::byte> body,
                                        std::uint64_t durable_lsn) {
  frame_.resize(wf::kFrameHeaderSize + body.size());
  if (!body.empty()) {  // an empty body's data() may be null; append_frame refuses it
    std::memcpy(frame_.data() + wf::kFrameHeaderSize, body.data(), body.size());
  }
  return append_frame(frame_, durable_lsn);
}

Result<std::uint64_t> WalWriter::append_frame(std::span<std::byte> frame,
                                              std::uint64_t durable_lsn) {
  const std::size_t body_size = frame.size() - std::min(frame.size(), wf::kFrameHeaderSize);
  if (body_size == 0 || body_size > wf::kMaxBodyLength) {
    return fail(ErrorKind::InvalidArgument,
                fmt::format("{}: a log record of {} bytes (expected 1..{})", path().string(),
                            body_size, wf::kMaxBodyLength));
  }
  const std::uint64_t lsn = next_lsn_;
  if (lsn > wf::kMaxLsn) {
    return fail(ErrorKind::InvalidArgument,
                fmt::format("{}: the log has used every sequence number (up to {})",
                            path().string(), wf::kMaxLsn));
  }
  if (durable_lsn >= lsn) {
    return fail(ErrorKind::InvalidArgument,
                fmt::format("{}: durable LSN {} is not below the frame's LSN {}", path().string(),
                            durable_lsn, lsn));
  }
  store_le(frame, wf::kFrameLengthOffset, body_size, 4);
  store_le(frame, wf::kFrameLsnOffset, lsn, 8);
  store_le(frame, wf::kFrameDurableLsnOffset, durable_lsn, 8);
  const auto covered = std::span<const std::byte>(frame).subspan(wf::kFrameLengthOffset);
  store_le(frame, wf::kFrameCrcOffset, crc32(covered), 4);
  IQDB_TRY(write(frame));
  ++next_lsn_;
  return lsn;
}

Result<void> WalWriter::sync() {
  IQDB_TRY(check_usable());
  auto synced = file_->sync();
  if (!synced) set_failure(synced.error().message());
  return synced;
}

Result<void> WalWriter::close() {
  IQDB_TRY(check_usable());
  auto closed = file_->close();
  set_failure(closed ? "it was closed" : closed.error().message());
  return closed;
}

}  // namespace iqdb::persist
