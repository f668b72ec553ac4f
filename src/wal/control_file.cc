// The control file (see control_file.h).
#include "wal/control_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "util/futex.h"
#include "util/posix_file_system.h"

namespace iqdb::persist {
namespace {

constexpr std::string_view kMagic = "IQDBCTRL";
constexpr std::size_t kVersionOffset = 8;
constexpr std::size_t kBootIdOffset = 16;
constexpr std::size_t kCommittedLsnOffset = 32;
constexpr std::size_t kCommitTimeOffset = 40;
constexpr std::size_t kGenerationOffset = 48;
constexpr std::size_t kChangesOffset = 56;
constexpr std::size_t kWaitersOffset = 60;
constexpr std::size_t kUsedSize = 64;

template <class T>
std::atomic_ref<T> field(std::byte* base, std::size_t offset) {
  return std::atomic_ref<T>(*reinterpret_cast<T*>(base + offset));
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Whether the bytes at `base` are a control file of this version and host.
bool is_current(const std::byte* base) {
  if (std::memcmp(base, kMagic.data(), kMagic.size()) != 0) return false;
  std::uint32_t version = 0;
  std::memcpy(&version, base + kVersionOffset, sizeof version);
  const auto boot = host_boot_id();
  return version == ControlFile::kVersion &&
         std::memcmp(base + kBootIdOffset, boot.data(), boot.size()) == 0;
}

// Maps `fd`'s first kFileSize bytes; closes `fd` either way.
Result<std::byte*> map_control(int fd, bool writable, const std::filesystem::path& path) {
  void* address = ::mmap(nullptr, ControlFile::kFileSize,
                         writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  const int err = errno;
  ::close(fd);
  if (address == MAP_FAILED) {
    return fail(ErrorKind::Io,
                fmt::format("{}: mmap: {}", path.string(), std::generic_category().message(err)));
  }
  return static_cast<std::byte*>(address);
}

}  // namespace

std::array<std::byte, 16> host_boot_id() {
  static const std::array<std::byte, 16> boot = [] {
    std::array<std::byte, 16> id{};
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::string text;
    std::getline(in, text);
    std::size_t n = 0;
    for (std::size_t i = 0; i + 1 < text.size() && n < id.size(); ++i) {
      const int high = hex_value(text[i]);
      const int low = hex_value(text[i + 1]);
      if (high < 0 || low < 0) continue;
      id[n++] = static_cast<std::byte>(high * 16 + low);
      ++i;
    }
    return id;
  }();
  return boot;
}

std::filesystem::path ControlFile::path_for(const std::filesystem::path& snapshot_path) {
  std::filesystem::path path = snapshot_path;
  path += ".control";
  return path;
}

Result<std::unique_ptr<ControlFile>> ControlFile::open_for_writer(
    const std::filesystem::path& snapshot_path, bool create) {
  const auto path = path_for(snapshot_path);
  struct stat info {};
  // Never through a symbolic link: the writer would write into its target.
  IQDB_TRY_ASSIGN(const int fd,
                  open_regular(path, (create ? O_RDWR | O_CREAT : O_RDWR) | O_NOFOLLOW, info,
                               ErrorKind::NotFound, 0644));
  // Grown, never shrunk: a replica's mapping of a shorter file would fault.
  if (static_cast<std::uint64_t>(info.st_size) < kFileSize && ::ftruncate(fd, kFileSize) != 0) {
    const int err = errno;
    ::close(fd);
    return fail(ErrorKind::Io, fmt::format("{}: ftruncate: {}", path.string(),
                                           std::generic_category().message(err)));
  }
  IQDB_TRY_ASSIGN(std::byte * base, map_control(fd, true, path));
  if (!is_current(base)) {
    // Another host's, another version's, or new: reset. The magic goes last,
    // so that a replica never takes a half-reset file for a valid one.
    std::memset(base, 0, kUsedSize);
    const auto boot = host_boot_id();
    std::memcpy(base + kBootIdOffset, boot.data(), boot.size());
    field<std::uint32_t>(base, kVersionOffset).store(kVersion);
    std::atomic_thread_fence(std::memory_order_release);
    std::memcpy(base, kMagic.data(), kMagic.size());
  }
  return std::unique_ptr<ControlFile>(new ControlFile(base, true));
}

Result<std::unique_ptr<ControlFile>> ControlFile::open_for_reader(
    const std::filesystem::path& snapshot_path) {
  const auto path = path_for(snapshot_path);
  struct stat info {};
  bool writable = true;
  auto opened = open_regular(path, O_RDWR | O_NOFOLLOW, info, ErrorKind::NotFound);
  if (!opened && opened.error().kind() != ErrorKind::NotFound) {
    // Not ours to write (another user, a read-only mount): read it.
    writable = false;
    opened = open_regular(path, O_RDONLY | O_NOFOLLOW, info, ErrorKind::NotFound);
  }
  IQDB_TRY_ASSIGN(const int fd, std::move(opened));
  if (static_cast<std::uint64_t>(info.st_size) < kFileSize) {
    ::close(fd);
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: control file of {} bytes (expected {}): ignored", path.string(),
                            info.st_size, kFileSize));
  }
  IQDB_TRY_ASSIGN(std::byte * base, map_control(fd, writable, path));
  std::unique_ptr<ControlFile> control(new ControlFile(base, writable));
  if (!is_current(base)) {
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: not a control file of this version written on this host: "
                            "ignored",
                            path.string()));
  }
  return control;
}

ControlFile::~ControlFile() { ::munmap(base_, kFileSize); }

const std::uint32_t* ControlFile::changes_word() const {
  return reinterpret_cast<const std::uint32_t*>(base_ + kChangesOffset);
}

void ControlFile::publish_commit(std::uint64_t lsn) {
  field<std::uint64_t>(base_, kCommitTimeOffset).store(static_cast<std::uint64_t>(now_ns()));
  field<std::uint64_t>(base_, kCommittedLsnOffset).store(lsn);
  field<std::uint32_t>(base_, kChangesOffset).fetch_add(1);
  // Pairs with wait_for_change(): either this load sees the waiter's flag, or
  // the waiter's check (and the kernel's) sees the new counter.
  auto waiters = field<std::uint32_t>(base_, kWaitersOffset);
  if (waiters.load() != 0 && waiters.exchange(0) != 0) {
    futex_wake_all(changes_word());
  }
}

void ControlFile::publish_snapshot(std::uint64_t lsn) {
  field<std::uint64_t>(base_, kGenerationOffset).fetch_add(1);
  publish_commit(lsn);
}

std::uint64_t ControlFile::committed_lsn() const {
  return field<std::uint64_t>(base_, kCommittedLsnOffset).load(std::memory_order_acquire);
}

std::chrono::system_clock::time_point ControlFile::commit_time() const {
  const auto ns = field<std::uint64_t>(base_, kCommitTimeOffset).load(std::memory_order_acquire);
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(ns)));
}

std::uint64_t ControlFile::generation() const {
  return field<std::uint64_t>(base_, kGenerationOffset).load(std::memory_order_acquire);
}

std::uint32_t ControlFile::changes() const {
  return field<std::uint32_t>(base_, kChangesOffset).load(std::memory_order_acquire);
}

void ControlFile::wake_local() const { futex_wake_all(changes_word()); }

void ControlFile::wait_for_change(std::uint32_t seen, std::chrono::nanoseconds timeout) const {
  if (timeout <= std::chrono::nanoseconds::zero()) return;
  if (writable_) field<std::uint32_t>(base_, kWaitersOffset).store(1);
  // A read-only mapping cannot register, but is woken when another replica
  // did; either way the timeout bounds the wait.
  futex_wait(changes_word(), seen, timeout);
}

}  // namespace iqdb::persist
