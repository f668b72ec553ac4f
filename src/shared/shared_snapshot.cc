// SharedSnapshot (iqdb/persist/shared_memory.h): attaching a publication's
// current generation. Objects are opened as any file the library reads is:
// non-blocking, never through a symbolic link, regular files only (a FIFO
// planted under a publication's name must not hang an attacher; Boost's
// shared_memory_object cannot open that way, so the attacher opens the
// objects' files in /dev/shm itself).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "db/snapshot_io.h"
#include "iqdb/persist/shared_memory.h"
#include "shared/publication_format.h"
#include "shared/segment_image.h"
#include "util/futex.h"
#include "util/posix_file_system.h"

namespace iqdb::persist {
namespace {

namespace pf = publication_format;
using detail::OpenedSnapshot;

// Bytes read at once from a segment: its descriptor and the image's prefix
// and header (which a load reads next) in one system call.
constexpr std::size_t kFirstRead = pf::kImageOffset + 4096;

std::chrono::system_clock::time_point from_ns(std::uint64_t ns) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(ns)));
}

Result<void> read_exactly(int fd, std::span<std::byte> out, const std::filesystem::path& path) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return fail(ErrorKind::Io, fmt::format("{}: read: {}", path.string(), std::strerror(errno)));
    }
    if (n == 0) {
      return fail(ErrorKind::Io, fmt::format("{}: shorter than when it was opened", path.string()));
    }
    done += static_cast<std::size_t>(n);
  }
  return success();
}

}  // namespace

class SharedSnapshot::Impl {
 public:
  SharedDescriptor descriptor;
  std::uint64_t published_ns = 0;  // the descriptor's, as stored
  std::optional<SnapshotView> view;
  std::shared_ptr<Verification> verification;
  // The head mapped read-only, once newer_published() or wait_for_newer()
  // is first called (an attach alone does not need it).
  mutable std::mutex head_mutex;
  mutable const std::byte* head = nullptr;

  ~Impl() {
    if (head != nullptr) ::munmap(const_cast<std::byte*>(head), pf::kHeadSize);
  }

  const std::uint32_t* head_word(std::size_t offset) const {
    return reinterpret_cast<const std::uint32_t*>(head + offset);
  }

  // Maps the head; false if it is gone (withdrawn) or not one any more.
  bool map_head() const {
    std::lock_guard guard(head_mutex);
    if (head != nullptr) return true;
    const auto path = pf::object_path(pf::head_object(descriptor.name));
    struct stat info {};
    auto opened = open_regular(path, O_RDONLY | O_NOFOLLOW, info, ErrorKind::NotFound);
    if (!opened) return false;
    void* address = info.st_size == static_cast<off_t>(pf::kHeadSize)
                        ? ::mmap(nullptr, pf::kHeadSize, PROT_READ, MAP_SHARED, opened.value(), 0)
                        : MAP_FAILED;
    ::close(opened.value());
    if (address == MAP_FAILED) return false;
    auto fields = pf::decode_head(std::span(static_cast<const std::byte*>(address), pf::kHeadSize),
                                  pf::kHeadSize, path.string());
    if (!fields) {
      ::munmap(address, pf::kHeadSize);
      return false;
    }
    head = static_cast<const std::byte*>(address);
    return true;
  }

  // A generation other than this one is current, or none: its number or
  // its publication time differ (numbers start again at 1 with a new head).
  bool newer() const {
    if (!map_head()) return true;  // withdrawn
    return load_u64(pf::kCurrentOffset) != descriptor.generation ||
           load_u64(pf::kPublishedOffset) != published_ns;
  }

  // (Loaded as atomics: the publisher stores them as such.)
  std::uint64_t load_u64(std::size_t offset) const {
    auto* word = reinterpret_cast<std::uint64_t*>(const_cast<std::byte*>(head + offset));
    return std::atomic_ref<std::uint64_t>(*word).load();
  }
};

namespace {

struct Attached {
  SharedDescriptor descriptor;
  std::uint64_t published_ns = 0;
  OpenedSnapshot opened;
};

// Why there is no current segment: nothing published, or a publisher that
// has not published yet (or withdrew).
PersistError nothing_published(std::string_view name, const std::filesystem::path& current) {
  std::error_code error;
  if (std::filesystem::exists(pf::object_path(pf::head_object(name)), error)) {
    return PersistError(ErrorKind::NotFound, fmt::format("{}: '{}' has no generation published yet",
                                                         current.string(), name));
  }
  return PersistError(ErrorKind::NotFound,
                      fmt::format("{}: nothing is published under '{}'", current.string(), name));
}

// Opens the current segment of `name`, validates its descriptor and hands
// its image to the snapshot loader.
Result<Attached> attach_current(std::string_view name, const AttachOptions& options) {
  const std::string object = pf::current_object(name);
  const auto path = pf::object_path(object);
  struct stat info {};
  auto opened_fd = open_regular(path, O_RDONLY | O_NOFOLLOW, info, ErrorKind::NotFound);
  if (!opened_fd) {
    if (opened_fd.error().kind() == ErrorKind::NotFound) return nothing_published(name, path);
    return opened_fd.error();
  }
  const int fd = opened_fd.value();
  const auto segment_size = static_cast<std::uint64_t>(info.st_size);
  std::vector<std::byte> first(
      static_cast<std::size_t>(std::min<std::uint64_t>(segment_size, kFirstRead)));
  auto descriptor = [&]() -> Result<pf::Descriptor> {
    IQDB_TRY(read_exactly(fd, first, path));
    return pf::decode_descriptor(first, segment_size, path.string());
  }();
  if (!descriptor) {
    ::close(fd);
    return descriptor.error();
  }
  auto reader = std::make_unique<SegmentImageReader>(fd, segment_size, path, std::move(first));

  PersistConfig config(path);
  config.verify = options.verify;
  config.verify_threads = options.threads;
  config.warm_up = WarmUp::Lazy;
  config.file_system = single_file_system(std::move(reader));
  IQDB_TRY_ASSIGN(auto opened, detail::open_snapshot(config, detail::kAnyIndexType));
  const FileHeader& header = opened.view.header();
  const pf::Descriptor& fields = descriptor.value();
  if (header.wal_lsn != fields.wal_lsn || header.content_hash != fields.content_hash) {
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: the descriptor records LSN {} and content hash {:016x}, the "
                            "image's header LSN {} and content hash {:016x}",
                            path.string(), fields.wal_lsn, fields.content_hash, header.wal_lsn,
                            header.content_hash));
  }
  for (const SectionInfo& section : header.sections) {
    if (section.compression != SectionCompression::None) {
      return fail(ErrorKind::InvalidHeader,
                  fmt::format("{}: section '{}' is compressed; a publication holds raw sections "
                              "only",
                              path.string(), section.name));
    }
  }

  SharedDescriptor out;
  out.name = std::string(name);
  out.object = object;
  out.generation = fields.generation;
  out.wal_lsn = fields.wal_lsn;
  out.content_hash = fields.content_hash;
  out.image_bytes = fields.image_length;
  out.segment_bytes = segment_size;
  out.source_path = fields.source_path;
  out.source_device = fields.source_device;
  out.source_inode = fields.source_inode;
  out.source_size = fields.source_size;
  out.source_modified = from_ns(fields.source_mtime_ns);
  out.published = from_ns(fields.published_ns);
  out.publisher_pid = fields.publisher_pid;
  return Attached{std::move(out), fields.published_ns, std::move(opened)};
}

}  // namespace

Result<SharedSnapshot> SharedSnapshot::attach(std::string_view name, AttachOptions options) {
  IQDB_TRY(pf::check_name(name));
  IQDB_TRY_ASSIGN(auto attached, attach_current(name, options));
  auto impl = std::make_unique<Impl>();
  impl->descriptor = std::move(attached.descriptor);
  impl->published_ns = attached.published_ns;
  impl->view = std::move(attached.opened.view);
  impl->verification = std::move(attached.opened.verification);
  return SharedSnapshot(std::move(impl));
}

SharedSnapshot::SharedSnapshot(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SharedSnapshot::SharedSnapshot(SharedSnapshot&&) noexcept = default;
SharedSnapshot& SharedSnapshot::operator=(SharedSnapshot&&) noexcept = default;
SharedSnapshot::~SharedSnapshot() = default;

const SharedDescriptor& SharedSnapshot::descriptor() const { return impl_->descriptor; }
const SnapshotView& SharedSnapshot::view() const { return *impl_->view; }
const Verification& SharedSnapshot::verification() const { return *impl_->verification; }

bool SharedSnapshot::newer_published() const { return impl_->newer(); }

bool SharedSnapshot::wait_for_newer(std::chrono::nanoseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (!impl_->map_head()) return true;
    const std::uint32_t seen =
        std::atomic_ref<std::uint32_t>(
            *const_cast<std::uint32_t*>(impl_->head_word(pf::kChangesOffset)))
            .load();
    if (impl_->newer()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    futex_wait(impl_->head_word(pf::kChangesOffset), seen, deadline - now);
  }
}

}  // namespace iqdb::persist
