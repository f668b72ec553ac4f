#include "demo/page_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <vector>

#include <fmt/format.h>

namespace iqdb::tools {
namespace {

using persist::ErrorKind;
using persist::Result;

persist::PersistError os_error(const std::filesystem::path& path, std::string_view what, int err) {
  return {err == ENOENT ? ErrorKind::NotFound : ErrorKind::Io,
          fmt::format("{}: {}: {}", path.string(), what, std::generic_category().message(err))};
}

// A read-only descriptor, closed on destruction.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Result<double> resident_fraction_of(int fd, const std::filesystem::path& path) {
  struct stat status {};
  if (::fstat(fd, &status) != 0) return boost::outcome_v2::failure(os_error(path, "fstat", errno));
  const auto size = static_cast<std::size_t>(status.st_size);
  if (size == 0) return 1.0;
  // Mapping without touching does not read the file; mincore only inspects.
  void* address = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (address == MAP_FAILED) return boost::outcome_v2::failure(os_error(path, "mmap", errno));
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> pages((size + page - 1) / page);
  const int rc = ::mincore(address, size, pages.data());
  const int err = errno;
  ::munmap(address, size);
  if (rc != 0) return boost::outcome_v2::failure(os_error(path, "mincore", err));
  std::size_t resident = 0;
  for (const unsigned char flags : pages) resident += flags & 1u;
  return static_cast<double>(resident) / static_cast<double>(pages.size());
}

// Optionally drops the file's clean pages, then measures what stays resident.
Result<double> check_cache(const std::filesystem::path& path, bool drop_first) {
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return boost::outcome_v2::failure(os_error(path, "open", errno));
  if (drop_first) {
    if (const int err = ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED); err != 0) {
      return boost::outcome_v2::failure(os_error(path, "posix_fadvise", err));
    }
  }
  return resident_fraction_of(fd.get(), path);
}

}  // namespace

Result<double> resident_fraction(const std::filesystem::path& path) {
  return check_cache(path, false);
}

Result<double> drop_from_page_cache(const std::filesystem::path& path) {
  return check_cache(path, true);
}

}  // namespace iqdb::tools
