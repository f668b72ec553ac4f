// The snapshot image inside a publication segment (publication_format.h),
// seen as the file that the snapshot code writes and reads: offsets are the
// image's, kImageOffset into the segment. So a publisher writes a segment
// with the snapshot writer, and an attacher opens one with the snapshot
// loader (every check of a load), unchanged.
#ifndef IQDB_PERSIST_SRC_SHARED_SEGMENT_IMAGE_H_
#define IQDB_PERSIST_SRC_SHARED_SEGMENT_IMAGE_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "iqdb/persist/file_system.h"

namespace iqdb::persist {

// Writes the image of the segment open as `fd` (not owned).
class SegmentImageWriter final : public WritableFile {
 public:
  SegmentImageWriter(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}

  Result<void> write_at(std::uint64_t offset, std::span<const std::byte> data) override;
  Result<void> truncate(std::uint64_t size) override;
  Result<void> sync() override;   // tmpfs: nothing to sync
  Result<void> close() override;  // the descriptor is the caller's
  const std::filesystem::path& path() const override { return path_; }

 private:
  int fd_;
  std::filesystem::path path_;
};

// Reads the image of a segment of `segment_size` bytes open as `fd` (owned:
// closed with the reader). `first` holds the segment's first bytes, already
// read: reads within them make no system call. map() maps the whole segment
// once and returns the image's part of it.
class SegmentImageReader final : public ReadableFile {
 public:
  SegmentImageReader(int fd, std::uint64_t segment_size, std::filesystem::path path,
                     std::vector<std::byte> first);
  ~SegmentImageReader() override;
  SegmentImageReader(const SegmentImageReader&) = delete;
  SegmentImageReader& operator=(const SegmentImageReader&) = delete;

  std::uint64_t size() const override;
  Result<void> read_at(std::uint64_t offset, std::span<std::byte> out) const override;
  Result<std::shared_ptr<const MappedRegion>> map() const override;
  const std::filesystem::path& path() const override { return path_; }

 private:
  int fd_;
  std::uint64_t segment_size_;
  std::filesystem::path path_;
  std::vector<std::byte> first_;
};

// A file system holding one readable file, `file`, at its path: how the
// snapshot loader is handed a segment's image. Everything else is
// Unsupported.
std::shared_ptr<FileSystem> single_file_system(std::unique_ptr<ReadableFile> file);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_SHARED_SEGMENT_IMAGE_H_
