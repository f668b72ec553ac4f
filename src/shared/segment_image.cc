// The snapshot image inside a publication segment (segment_image.h).
#include "shared/segment_image.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

#include <fmt/format.h>

#include "shared/publication_format.h"

namespace iqdb::persist {
namespace {

namespace pf = publication_format;

PersistError os_error(const std::filesystem::path& path, std::string_view what, int err) {
  return PersistError(ErrorKind::Io,
                      fmt::format("{}: {}: {}", path.string(), what, std::strerror(err)));
}

// The image's part of a mapping of the whole segment.
class ImageRegion final : public MappedRegion {
 public:
  ImageRegion(void* address, std::size_t length) : address_(address), length_(length) {}
  ~ImageRegion() override { ::munmap(address_, length_); }
  ImageRegion(const ImageRegion&) = delete;
  ImageRegion& operator=(const ImageRegion&) = delete;

  std::span<const std::byte> bytes() const override {
    return std::span(static_cast<const std::byte*>(address_), length_).subspan(pf::kImageOffset);
  }

 private:
  void* address_;
  std::size_t length_;
};

class SingleFileSystem final : public FileSystem {
 public:
  explicit SingleFileSystem(std::unique_ptr<ReadableFile> file)
      : path_(file->path()), file_(std::move(file)) {}

  Result<std::unique_ptr<ReadableFile>> open_readable(const std::filesystem::path& path) override {
    std::lock_guard guard(mutex_);
    if (path != path_ || !file_) return unsupported(path);
    return std::move(file_);
  }
  Result<std::unique_ptr<WritableFile>> create_new(const std::filesystem::path& path) override {
    return unsupported(path);
  }
  Result<void> rename(const std::filesystem::path& from, const std::filesystem::path&) override {
    return unsupported(from);
  }
  Result<void> remove(const std::filesystem::path& path) override { return unsupported(path); }
  Result<void> sync_file(const std::filesystem::path& path) override { return unsupported(path); }
  Result<void> sync_dir(const std::filesystem::path& dir) override { return unsupported(dir); }
  Result<std::vector<std::string>> list_dir(const std::filesystem::path& dir) override {
    return unsupported(dir);
  }
  Result<std::unique_ptr<FileLock>> lock_file(const std::filesystem::path& path) override {
    return unsupported(path);
  }

 private:
  static PersistError unsupported(const std::filesystem::path& path) {
    return PersistError(
        ErrorKind::Unsupported,
        fmt::format("{}: not available through a publication segment", path.string()));
  }

  std::mutex mutex_;
  const std::filesystem::path path_;
  std::unique_ptr<ReadableFile> file_;
};

}  // namespace

Result<void> SegmentImageWriter::write_at(std::uint64_t offset, std::span<const std::byte> data) {
  std::uint64_t at = pf::kImageOffset + offset;
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(at));
    if (n < 0) {
      if (errno == EINTR) continue;
      return os_error(path_, fmt::format("write of {} bytes at offset {}", data.size(), at), errno);
    }
    data = data.subspan(static_cast<std::size_t>(n));
    at += static_cast<std::uint64_t>(n);
  }
  return success();
}

Result<void> SegmentImageWriter::truncate(std::uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(pf::kImageOffset + size)) != 0) {
    return os_error(path_, fmt::format("setting its length to {}", pf::kImageOffset + size), errno);
  }
  return success();
}

Result<void> SegmentImageWriter::sync() { return success(); }
Result<void> SegmentImageWriter::close() { return success(); }

SegmentImageReader::SegmentImageReader(int fd, std::uint64_t segment_size,
                                       std::filesystem::path path, std::vector<std::byte> first)
    : fd_(fd), segment_size_(segment_size), path_(std::move(path)), first_(std::move(first)) {}

SegmentImageReader::~SegmentImageReader() { ::close(fd_); }

std::uint64_t SegmentImageReader::size() const {
  return segment_size_ > pf::kImageOffset ? segment_size_ - pf::kImageOffset : 0;
}

Result<void> SegmentImageReader::read_at(std::uint64_t offset, std::span<std::byte> out) const {
  if (offset > size() || out.size() > size() - offset) {
    return fail(ErrorKind::Io, fmt::format("{}: read of {} bytes at image offset {} is past the "
                                           "end of the {}-byte image",
                                           path_.string(), out.size(), offset, size()));
  }
  std::uint64_t at = pf::kImageOffset + offset;
  if (at + out.size() <= first_.size()) {
    std::memcpy(out.data(), first_.data() + at, out.size());
    return success();
  }
  while (!out.empty()) {
    const ssize_t n = ::pread(fd_, out.data(), out.size(), static_cast<off_t>(at));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return os_error(path_, fmt::format("read at offset {}", at), errno);
      return fail(ErrorKind::Io,
                  fmt::format("{}: shorter than when it was opened", path_.string()));
    }
    out = out.subspan(static_cast<std::size_t>(n));
    at += static_cast<std::uint64_t>(n);
  }
  return success();
}

Result<std::shared_ptr<const MappedRegion>> SegmentImageReader::map() const {
  const auto length = static_cast<std::size_t>(segment_size_);
  void* address = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd_, 0);
  if (address == MAP_FAILED) return os_error(path_, "mmap", errno);
  return std::shared_ptr<const MappedRegion>(std::make_shared<ImageRegion>(address, length));
}

std::shared_ptr<FileSystem> single_file_system(std::unique_ptr<ReadableFile> file) {
  return std::make_shared<SingleFileSystem>(std::move(file));
}

}  // namespace iqdb::persist
