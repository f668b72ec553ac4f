// FileSystem on POSIX: the only file in the library that makes system calls.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include <fmt/format.h>

#include "iqdb/persist/file_system.h"

namespace iqdb::persist {
namespace {

// Io, or `missing` when the OS reports ENOENT (NotFound only where the
// FileSystem contract says so: a missing file to read, a missing directory).
PersistError os_error(std::string_view what, const std::filesystem::path& path, int err,
                      ErrorKind missing = ErrorKind::Io) {
  return {err == ENOENT ? missing : ErrorKind::Io,
          fmt::format("{}: {}: {}", path.string(), what, std::generic_category().message(err))};
}

auto os_failure(std::string_view what, const std::filesystem::path& path, int err = errno,
                ErrorKind missing = ErrorKind::Io) {
  return boost::outcome_v2::failure(os_error(what, path, err, missing));
}

class PosixMappedRegion final : public MappedRegion {
 public:
  PosixMappedRegion(void* address, std::size_t length) : address_(address), length_(length) {}
  ~PosixMappedRegion() override {
    if (length_ > 0) ::munmap(address_, length_);
  }
  PosixMappedRegion(const PosixMappedRegion&) = delete;
  PosixMappedRegion& operator=(const PosixMappedRegion&) = delete;

  std::span<const std::byte> bytes() const override {
    return {static_cast<const std::byte*>(address_), length_};
  }

 private:
  void* address_;
  std::size_t length_;
};

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  PosixWritableFile(const PosixWritableFile&) = delete;
  PosixWritableFile& operator=(const PosixWritableFile&) = delete;

  Result<void> write_at(std::uint64_t offset, std::span<const std::byte> data) override {
    while (!data.empty()) {
      const ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return os_failure(fmt::format("write of {} bytes at offset {}", data.size(), offset),
                          path_);
      }
      data = data.subspan(static_cast<std::size_t>(n));
      offset += static_cast<std::uint64_t>(n);
    }
    return boost::outcome_v2::success();
  }

  Result<void> truncate(std::uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return os_failure(fmt::format("ftruncate to {} bytes", size), path_);
    }
    return boost::outcome_v2::success();
  }

  Result<void> sync() override {
    if (::fdatasync(fd_) != 0) return os_failure("fdatasync", path_);
    return boost::outcome_v2::success();
  }

  Result<void> close() override {
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return os_failure("close", path_);
    return boost::outcome_v2::success();
  }

  const std::filesystem::path& path() const override { return path_; }

 private:
  int fd_;
  std::filesystem::path path_;
};

class PosixReadableFile final : public ReadableFile {
 public:
  PosixReadableFile(int fd, std::uint64_t size, std::filesystem::path path)
      : fd_(fd), size_(size), path_(std::move(path)) {}
  ~PosixReadableFile() override { ::close(fd_); }
  PosixReadableFile(const PosixReadableFile&) = delete;
  PosixReadableFile& operator=(const PosixReadableFile&) = delete;

  std::uint64_t size() const override { return size_; }

  Result<void> read_at(std::uint64_t offset, std::span<std::byte> out) const override {
    if (offset > size_ || out.size() > size_ - offset) {
      return fail(ErrorKind::Io, fmt::format("{}: read of {} bytes at offset {} is past the end "
                                             "of the {}-byte file",
                                             path_.string(), out.size(), offset, size_));
    }
    while (!out.empty()) {
      const ssize_t n = ::pread(fd_, out.data(), out.size(), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return os_failure(fmt::format("read of {} bytes at offset {}", out.size(), offset), path_);
      }
      if (n == 0) {
        return fail(ErrorKind::Io, fmt::format("{}: file shrank while being read (at offset {})",
                                               path_.string(), offset));
      }
      out = out.subspan(static_cast<std::size_t>(n));
      offset += static_cast<std::uint64_t>(n);
    }
    return boost::outcome_v2::success();
  }

  Result<std::shared_ptr<const MappedRegion>> map() const override {
    if (size_ == 0) return std::make_shared<PosixMappedRegion>(nullptr, 0);
    if (size_ > SIZE_MAX)
      return fail(ErrorKind::Unsupported, path_.string() + ": too large to map");
    void* address = ::mmap(nullptr, static_cast<std::size_t>(size_), PROT_READ, MAP_SHARED, fd_, 0);
    if (address == MAP_FAILED) return os_failure("mmap", path_);
    return std::make_shared<PosixMappedRegion>(address, static_cast<std::size_t>(size_));
  }

  const std::filesystem::path& path() const override { return path_; }

 private:
  int fd_;
  std::uint64_t size_;
  std::filesystem::path path_;
};

// Opens `path` with `flags`, syncs it with `sync` (fsync or fdatasync), closes it.
Result<void> open_and_sync(const std::filesystem::path& path, int flags, int (*sync)(int),
                           std::string_view open_what, std::string_view sync_what) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return os_failure(open_what, path);
  const int rc = sync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return os_failure(sync_what, path, err);
  return boost::outcome_v2::success();
}

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> create_new(const std::filesystem::path& path) override {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return os_failure("create", path, errno, ErrorKind::NotFound);
    return std::make_unique<PosixWritableFile>(fd, path);
  }

  Result<std::unique_ptr<ReadableFile>> open_readable(const std::filesystem::path& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return os_failure("open", path, errno, ErrorKind::NotFound);
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
      const int err = errno;
      ::close(fd);
      return os_failure("fstat", path, err);
    }
    if (!S_ISREG(info.st_mode)) {
      ::close(fd);
      return fail(ErrorKind::Io, fmt::format("{}: not a regular file", path.string()));
    }
    return std::make_unique<PosixReadableFile>(fd, static_cast<std::uint64_t>(info.st_size), path);
  }

  Result<void> rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return os_failure(fmt::format("rename to '{}'", to.string()), from);
    }
    return boost::outcome_v2::success();
  }

  Result<void> remove(const std::filesystem::path& path) override {
    if (::unlink(path.c_str()) != 0) return os_failure("unlink", path);
    return boost::outcome_v2::success();
  }

  Result<void> sync_file(const std::filesystem::path& path) override {
    return open_and_sync(path, O_RDONLY, ::fdatasync, "open for fdatasync", "fdatasync");
  }

  Result<void> sync_dir(const std::filesystem::path& dir) override {
    return open_and_sync(dir, O_RDONLY | O_DIRECTORY, ::fsync, "open directory", "fsync directory");
  }

  Result<std::vector<std::string>> list_dir(const std::filesystem::path& dir) override {
    DIR* stream = ::opendir(dir.c_str());
    if (stream == nullptr) return os_failure("open directory", dir, errno, ErrorKind::NotFound);
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* entry = ::readdir(stream)) {
      const std::string_view name = entry->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    const int err = errno;
    ::closedir(stream);
    if (err != 0) return os_failure("read directory", dir, err);
    return names;
  }
};

}  // namespace

std::shared_ptr<FileSystem> default_file_system() {
  static const auto file_system = std::make_shared<PosixFileSystem>();
  return file_system;
}

}  // namespace iqdb::persist
