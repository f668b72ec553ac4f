// FileSystem on POSIX: the library's system calls on files and directories
// (open, fstat, pread, pwrite, fdatasync, ftruncate, rename, unlink, readdir,
// mmap of files, the writer lock's fcntl, and gethostname and getpid for the
// lock's holder line). Saves, loads and the log reach them only through the
// FileSystem seam, so tests can put a file system that fails or crashes in
// its place.
//
// Three other files call the system directly. None of them opens, writes,
// syncs or renames a file, which is what the seam exists to fail in tests:
//   util/anonymous_region.cc  mmap, munmap, madvise (MADV_FREE, MADV_HUGEPAGE)
//                             and sysconf: anonymous memory for decoded
//                             sections, recycled between loads.
//   snapshot/warm_up.cc       madvise (MADV_WILLNEED, MADV_POPULATE_READ,
//                             MADV_HUGEPAGE), mlock and sysconf on memory a load
//                             already has: the mapping and decoded sections.
//   db/snapshot_io.cc         getpid, for temporary files' names, and
//                             kill(pid, 0), to tell whether the process that
//                             left a temporary file still runs.
// The standard library makes the rest: threads, and getcwd behind
// std::filesystem::absolute() in db/rewrite.cc.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include <fmt/format.h>

#include "util/posix_file_system.h"

namespace iqdb::persist {
namespace {

// The description of `err`, as strerror() gives it in the C locale, without
// strerror()'s locale lookup: a replica's every poll meets a "No such file"
// (the next segment, not there yet), so this is on its idle path.
std::string errno_description(int err) {
  if (const char* description = ::strerrordesc_np(err)) return description;
  return std::generic_category().message(err);
}

// Io, or `missing` when the OS reports ENOENT (NotFound only where the
// FileSystem contract says so: a missing file to read, a missing directory).
PersistError os_error(std::string_view what, const std::filesystem::path& path, int err,
                      ErrorKind missing = ErrorKind::Io) {
  return {err == ENOENT ? missing : ErrorKind::Io,
          fmt::format("{}: {}: {}", path.string(), what, errno_description(err))};
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
    return success();
  }

  Result<void> truncate(std::uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return os_failure(fmt::format("ftruncate to {} bytes", size), path_);
    }
    return success();
  }

  Result<void> sync() override {
    if (::fdatasync(fd_) != 0) return os_failure("fdatasync", path_);
    return success();
  }

  Result<void> close() override {
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return os_failure("close", path_);
    return success();
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
    return success();
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

std::string_view file_type_name(mode_t mode) {
  if (S_ISDIR(mode)) return "directory";
  if (S_ISFIFO(mode)) return "FIFO";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "device";
  return "special file";
}

// Runs `sync` (fsync or fdatasync) on `fd`, then closes it.
Result<void> sync_and_close(int fd, int (*sync)(int), const std::filesystem::path& path,
                            std::string_view sync_what) {
  const int rc = sync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return os_failure(sync_what, path, err);
  return success();
}

// Holds an OFD lock on the whole file through its own open file
// description; closing the descriptor releases it.
class PosixFileLock final : public FileLock {
 public:
  PosixFileLock(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFileLock() override { ::close(fd_); }
  PosixFileLock(const PosixFileLock&) = delete;
  PosixFileLock& operator=(const PosixFileLock&) = delete;

  const std::filesystem::path& path() const override { return path_; }

 private:
  int fd_;
  std::filesystem::path path_;
};

// Who holds the lock, as its holder recorded it: for messages only, so at
// most a line of printable text, whatever the file holds.
std::string recorded_holder(int fd) {
  std::array<char, 160> buffer{};
  const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), 0);
  std::string holder;
  for (ssize_t i = 0; i < n; ++i) {
    const char c = buffer[static_cast<std::size_t>(i)];
    if (c == '\n') break;
    if (c >= 0x20 && c < 0x7f) holder.push_back(c);
  }
  return holder.empty() ? std::string("a holder that has not recorded itself yet") : holder;
}

// Best effort: the record only improves the next locker's message.
void record_holder(int fd) {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  const std::string holder = fmt::format("pid {} on host {}\n", ::getpid(), host.data());
  if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, holder.data(), holder.size(), 0);
}

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> create_new(const std::filesystem::path& path) override {
    // Read-only from birth: this descriptor writes it, nothing ever will
    // again, and ordinary tools refuse to write into a file readers map.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0) return os_failure("create", path, errno, ErrorKind::NotFound);
    return std::make_unique<PosixWritableFile>(fd, path);
  }

  Result<std::unique_ptr<ReadableFile>> open_readable(const std::filesystem::path& path) override {
    struct stat info {};
    IQDB_TRY_ASSIGN(const int fd, open_regular(path, O_RDONLY, info, ErrorKind::NotFound));
    return std::make_unique<PosixReadableFile>(fd, static_cast<std::uint64_t>(info.st_size), path);
  }

  Result<void> rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return os_failure(fmt::format("rename to '{}'", to.string()), from);
    }
    return success();
  }

  Result<void> remove(const std::filesystem::path& path) override {
    if (::unlink(path.c_str()) != 0) return os_failure("unlink", path);
    return success();
  }

  Result<void> sync_file(const std::filesystem::path& path) override {
    struct stat info {};
    IQDB_TRY_ASSIGN(const int fd, open_regular(path, O_RDONLY, info));
    return sync_and_close(fd, ::fdatasync, path, "fdatasync");
  }

  Result<void> sync_dir(const std::filesystem::path& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return os_failure("open directory", dir);
    return sync_and_close(fd, ::fsync, dir, "fsync directory");
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

  Result<std::unique_ptr<FileLock>> lock_file(const std::filesystem::path& path) override {
    struct stat info {};
    IQDB_TRY_ASSIGN(const int fd,
                    open_regular(path, O_RDWR | O_CREAT, info, ErrorKind::NotFound, 0644));
    struct flock whole_file {};
    whole_file.l_type = F_WRLCK;
    whole_file.l_whence = SEEK_SET;
    if (::fcntl(fd, F_OFD_SETLK, &whole_file) != 0) {
      const int err = errno;
      const std::string holder =
          err == EAGAIN || err == EACCES ? recorded_holder(fd) : std::string();
      ::close(fd);
      if (holder.empty()) return os_failure("fcntl F_OFD_SETLK", path, err);
      return fail(ErrorKind::Locked, fmt::format("{}: locked by {}", path.string(), holder));
    }
    record_holder(fd);
    return std::make_unique<PosixFileLock>(fd, path);
  }

  Result<FileStatus> status(const std::filesystem::path& path) override {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0)
      return os_failure("stat", path, errno, ErrorKind::NotFound);
    if (!S_ISREG(info.st_mode)) {
      return fail(ErrorKind::Io, fmt::format("{}: not a regular file (a {})", path.string(),
                                             file_type_name(info.st_mode)));
    }
    FileStatus status;
    status.size = static_cast<std::uint64_t>(info.st_size);
    status.device = static_cast<std::uint64_t>(info.st_dev);
    status.inode = static_cast<std::uint64_t>(info.st_ino);
    status.modified_ns =
        static_cast<std::int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec;
    return status;
  }
};

}  // namespace

// O_NONBLOCK: see posix_file_system.h. It has no effect on reads of a
// regular file, so it is cleared only for descriptors that write (a system
// call fewer on every open of a load or a replica's refresh).
Result<int> open_regular(const std::filesystem::path& path, int flags, struct stat& info,
                         ErrorKind missing, mode_t mode) {
  const int fd = ::open(path.c_str(), flags | O_NONBLOCK | O_CLOEXEC, mode);
  if (fd < 0) return os_failure("open", path, errno, missing);
  if (::fstat(fd, &info) != 0) {
    const int err = errno;
    ::close(fd);
    return os_failure("fstat", path, err);
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    return fail(ErrorKind::Io, fmt::format("{}: not a regular file (a {}): refused", path.string(),
                                           file_type_name(info.st_mode)));
  }
  if ((flags & O_ACCMODE) != O_RDONLY && ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    const int err = errno;
    ::close(fd);
    return os_failure("fcntl F_SETFL", path, err);
  }
  return fd;
}

std::shared_ptr<FileSystem> make_posix_file_system() { return std::make_shared<PosixFileSystem>(); }

}  // namespace iqdb::persist
