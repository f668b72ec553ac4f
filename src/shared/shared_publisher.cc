// SharedPublisher (iqdb/persist/shared_memory.h): writes generations of a
// publication into POSIX shared memory through Boost.Interprocess (named
// objects, their permissions and removal; the head's mapping). Only what a
// crash cannot leave half-done is used: no Boost mutex, condition variable
// or segment allocator (a holder's crash leaves those locked forever); the
// head's fields are atomics, its lock an open-file-description lock.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include "db/snapshot_io.h"
#include "iqdb/persist/file_system.h"
#include "iqdb/persist/shared_memory.h"
#include "shared/publication_format.h"
#include "shared/segment_image.h"
#include "snapshot/snapshot_writer.h"
#include "util/futex.h"
#include "util/little_endian.h"

namespace iqdb::persist {
namespace {

namespace bip = boost::interprocess;
namespace pf = publication_format;

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

PersistError boost_failure(std::string_view what, std::string_view object,
                           const bip::interprocess_exception& error) {
  const int native = error.get_native_error();
  return PersistError(native == ENOENT ? ErrorKind::NotFound : ErrorKind::Io,
                      fmt::format("{}: {}: {}", pf::object_path(object).string(), what,
                                  native != 0 ? std::strerror(native) : error.what()));
}

// Removes a shared memory object by name; a missing one is not an error.
Result<bool> remove_object(const std::string& object) {
  errno = 0;
  if (bip::shared_memory_object::remove(object.c_str())) return true;
  if (errno == ENOENT || errno == 0) return false;
  return fail(ErrorKind::Io, fmt::format("{}: cannot remove: {}", pf::object_path(object).string(),
                                         std::strerror(errno)));
}

// Permissions of a publication's objects: whoever may read the source may
// read what was decoded from it; only the publisher writes.
bip::permissions permissions_like(mode_t source_mode) {
  bip::permissions permissions;
  permissions.set_permissions(static_cast<int>((source_mode & 0444) | 0200));
  return permissions;
}

}  // namespace

class SharedPublisher::Impl {
 public:
  Impl(std::string name, PublishOptions options) : name_(std::move(name)), options_(options) {}

  ~Impl() { (void)withdraw(); }

  // Opens or creates the head, takes its lock, and clears what a dead
  // publisher left.
  Result<void> take_name() {
    IQDB_TRY_ASSIGN(const std::uint64_t size, lock_head());
    const int fd = head_object_.get_mapping_handle().handle;
    IQDB_TRY(prepare_head(fd, size, pf::object_path(pf::head_object(name_)).string()));
    IQDB_TRY(map_head());
    store_u32(pf::kPidOffset, static_cast<std::uint32_t>(::getpid()));
    return success();
  }

  // For remove_stale_publication(): takes the head's lock and removes every
  // object of the name, whatever the head holds (it may be damaged or
  // foreign: the caller named it). Returns how many objects were removed.
  Result<std::size_t> remove_unused() {
    IQDB_TRY_ASSIGN(const std::uint64_t size, lock_head());
    IQDB_TRY_ASSIGN(std::size_t removed, remove_leftovers());
    // A head of this library is withdrawn (attachers that watch it are
    // told); a damaged or foreign one is only removed.
    if (head_is_valid(size) && map_head()) {
      IQDB_TRY_ASSIGN(const std::size_t withdrawn, remove_everything());
      return removed + withdrawn;
    }
    for (const std::string& object : {pf::current_object(name_), pf::head_object(name_)}) {
      IQDB_TRY_ASSIGN(const bool gone, remove_object(object));
      removed += gone ? 1 : 0;
    }
    head_object_ = bip::shared_memory_object();  // closes it: the lock goes with it
    return removed;
  }

  Result<PublishReport> publish(const std::filesystem::path& given) {
    if (head_ == nullptr) {
      return fail(ErrorKind::InvalidArgument,
                  fmt::format("{}: '{}' was withdrawn: open a publisher again to publish",
                              pf::object_path(pf::head_object(name_)).string(), name_));
    }
    const auto started = std::chrono::steady_clock::now();
    // Attachers read the source path in other directories: make it absolute.
    std::error_code absolute_error;
    std::filesystem::path source = std::filesystem::absolute(given, absolute_error);
    if (absolute_error) source = given;
    FileSystem& fs = *default_file_system();
    IQDB_TRY_ASSIGN(const FileStatus status, fs.status(source));
    auto report = publish_file(source, status, started);
    if (report) {
      failed_source_.reset();
    } else {
      failed_source_ = FailedSource{status, report.error()};
    }
    return report;
  }

  Result<PublishReport> publish_file(const std::filesystem::path& source, const FileStatus& status,
                                     std::chrono::steady_clock::time_point started) {
    struct stat source_info {};
    const mode_t mode = ::stat(source.c_str(), &source_info) == 0 ? source_info.st_mode : 0644;
    PersistConfig config(source);
    config.verify = options_.verify;
    config.verify_threads = options_.threads;
    config.warm_up = WarmUp::Lazy;
    IQDB_TRY_ASSIGN(const auto opened, detail::open_snapshot(config, detail::kAnyIndexType));
    IQDB_TRY(opened.verification->wait());

    const std::uint64_t generation = next_generation_++;
    const std::string object = pf::building_object(name_, generation);
    // Recorded before the object exists: a publisher that dies while
    // writing it leaves a name the next one knows to remove.
    store_u64(pf::kBuildingOffset, generation);
    // The same time in the descriptor and the head: an attacher compares
    // both with its own (generation numbers restart with a new head).
    const std::uint64_t published_ns = now_ns();
    auto written =
        write_segment(object, generation, published_ns, opened.view, status, mode, source);
    if (written) written = replace_current(object, written.value());
    if (!written) {
      (void)remove_object(object);
      store_u64(pf::kBuildingOffset, 0);
      return written.error();
    }
    make_current(generation, published_ns);
    PublishReport report;
    report.generation = generation;
    report.object = pf::current_object(name_);
    report.wal_lsn = opened.view.header().wal_lsn;
    report.image_bytes = written.value();
    report.source_bytes = status.size;
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    published_source_ = status;
    return report;
  }

  Result<std::optional<PublishReport>> publish_if_changed(const std::filesystem::path& source) {
    auto status = default_file_system()->status(source);
    // A missing source (a writer between two renames) is "not yet".
    if (!status) {
      if (status.error().kind() == ErrorKind::NotFound && current_ != 0) return std::nullopt;
      return status.error();
    }
    const auto same = [&](const std::optional<FileStatus>& known) {
      return known && known->same_file(status.value()) && known->size == status.value().size;
    };
    if (current_ != 0 && same(published_source_)) return std::nullopt;
    // A file that failed is not read again until another replaces it.
    if (failed_source_ && same(failed_source_->status)) return failed_source_->error;
    IQDB_TRY_ASSIGN(auto report, publish(source));
    return report;
  }

  Result<void> withdraw() {
    auto removed = remove_everything();
    if (!removed) return removed.error();
    return success();
  }

  // Withdraws: attachers see "withdrawn" (current 0, the counter moved)
  // before the names go. Returns how many objects were removed.
  Result<std::size_t> remove_everything() {
    if (head_ == nullptr) return std::size_t{0};
    store_u64(pf::kCurrentOffset, 0);
    store_u64(pf::kBuildingOffset, 0);
    bump_changes();
    current_ = 0;
    head_ = nullptr;
    std::size_t removed = 0;
    std::optional<PersistError> error;
    for (const std::string& object : {pf::current_object(name_), pf::head_object(name_)}) {
      auto gone = remove_object(object);
      if (gone) removed += gone.value() ? 1 : 0;
      if (!gone && !error) error = gone.error();
    }
    head_region_ = bip::mapped_region();
    head_object_ = bip::shared_memory_object();  // closes it: the lock goes with it
    if (error) return *error;
    return removed;
  }

  std::uint64_t generation() const { return current_; }
  const std::string& name() const { return name_; }

 private:
  // Removes every segment of the name that is not current: "iqdb.NAME."
  // followed by 16 hex digits (written by a publisher that died, recorded
  // in its head or not). Under the head's lock. Returns how many.
  Result<std::size_t> remove_leftovers() {
    const std::string prefix = pf::head_object(name_) + ".";
    std::error_code error;
    std::vector<std::string> leftovers;
    for (const auto& entry : std::filesystem::directory_iterator(pf::kShmDirectory, error)) {
      const std::string file = entry.path().filename().string();
      const std::string_view suffix =
          std::string_view(file).substr(std::min(file.size(), prefix.size()));
      const bool hex16 =
          suffix.size() == 16 && std::all_of(suffix.begin(), suffix.end(), [](char c) {
            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
          });
      if (file.starts_with(prefix) && hex16) leftovers.push_back(file);
    }
    if (error) {
      return fail(ErrorKind::Io,
                  fmt::format("{}: cannot list: {}", pf::kShmDirectory, error.message()));
    }
    std::size_t removed = 0;
    for (const std::string& object : leftovers) {
      IQDB_TRY_ASSIGN(const bool gone, remove_object(object));
      removed += gone ? 1 : 0;
    }
    return removed;
  }

  // Maps the locked head read-write (head_).
  Result<void> map_head() {
    try {
      head_region_ = bip::mapped_region(head_object_, bip::read_write, 0, pf::kHeadSize);
    } catch (const bip::interprocess_exception& error) {
      return boost_failure("cannot map the head", pf::head_object(name_), error);
    }
    head_ = static_cast<std::byte*>(head_region_.get_address());
    return success();
  }

  // Whether the locked head (of `size` bytes) is one this library wrote.
  bool head_is_valid(std::uint64_t size) const {
    std::array<std::byte, pf::kHeadSize> bytes{};
    const auto length = static_cast<std::size_t>(std::min<std::uint64_t>(size, bytes.size()));
    const int fd = head_object_.get_mapping_handle().handle;
    return ::pread(fd, bytes.data(), length, 0) == static_cast<ssize_t>(length) &&
           pf::decode_head(std::span(bytes).first(length), size, "").has_value();
  }

  // Opens (or creates, empty) the head and takes its lock; returns its
  // size. Locked while a publisher holds it.
  Result<std::uint64_t> lock_head() {
    const std::string object = pf::head_object(name_);
    const std::string path = pf::object_path(object).string();
    try {
      bip::permissions permissions;
      permissions.set_permissions(0644);
      head_object_ = bip::shared_memory_object(bip::open_or_create, object.c_str(), bip::read_write,
                                               permissions);
    } catch (const bip::interprocess_exception& error) {
      return boost_failure("cannot open or create the head", object, error);
    }
    const int fd = head_object_.get_mapping_handle().handle;
    struct stat info {};
    if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
      return fail(ErrorKind::Io, fmt::format("{}: not a regular file: refused", path));
    }
    struct flock lock {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    lock.l_start = 0;
    lock.l_len = 1;
    if (::fcntl(fd, F_OFD_SETLK, &lock) == 0) return static_cast<std::uint64_t>(info.st_size);
    if (errno != EAGAIN && errno != EACCES) {
      return fail(ErrorKind::Io, fmt::format("{}: cannot lock: {}", path, std::strerror(errno)));
    }
    std::array<std::byte, pf::kHeadFieldsEnd> bytes{};
    const bool read =
        ::pread(fd, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size());
    return fail(
        ErrorKind::Locked,
        fmt::format("{}: '{}' is published by another running process{}", path, name_,
                    read ? fmt::format(" (pid {})", load_le(bytes, pf::kPidOffset, 4)) : ""));
  }

  // A new head is initialized; an existing one must be this library's: a
  // dead publisher's segments are removed, and its generations continue.
  Result<void> prepare_head(int fd, std::uint64_t size, const std::string& path) {
    std::array<std::byte, pf::kHeadSize> bytes{};
    const auto length = static_cast<std::size_t>(std::min<std::uint64_t>(size, bytes.size()));
    if (length > 0 && ::pread(fd, bytes.data(), length, 0) != static_cast<ssize_t>(length)) {
      return fail(ErrorKind::Io,
                  fmt::format("{}: cannot read the head: {}", path, std::strerror(errno)));
    }
    // Empty or all zero: new, or left by a publisher that died while it
    // created it.
    const bool blank =
        std::all_of(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(length),
                    [](std::byte b) { return b == std::byte{0}; });
    if (blank) {
      IQDB_TRY(remove_leftovers());
      pf::encode_new_head(bytes);
      if (::ftruncate(fd, pf::kHeadSize) != 0 ||
          ::pwrite(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
        return fail(ErrorKind::Io,
                    fmt::format("{}: cannot write the head: {}", path, std::strerror(errno)));
      }
      next_generation_ = 1;
      return success();
    }
    auto head = pf::decode_head(std::span(bytes).first(length), size, path);
    if (!head) {
      return PersistError(
          head.error().kind(),
          head.error().message() + "; not taken over (left alone: remove it if nothing uses it)");
    }
    // A dead publisher's current segment stays current (attachers may use
    // it) until this one publishes; segments it was writing are removed.
    IQDB_TRY(remove_leftovers());
    const std::uint64_t last = std::max(head.value().current, head.value().building);
    if (last >= std::numeric_limits<std::uint64_t>::max() / 2) {
      return fail(ErrorKind::InvalidHeader,
                  fmt::format("{}: generation {} recorded: not one a publisher counted to; left "
                              "alone (remove it with `iqdb-persist unpublish` if nothing uses it)",
                              path, last));
    }
    next_generation_ = last + 1;
    // Written through the descriptor: the head is not mapped yet.
    pf::encode_new_head(bytes);
    store_le(bytes, pf::kCurrentOffset, head.value().current, 8);
    store_le(bytes, pf::kChangesOffset, head.value().changes + 1u, 4);
    store_le(bytes, pf::kPublishedOffset, head.value().published_ns, 8);
    if (::pwrite(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
      return fail(ErrorKind::Io,
                  fmt::format("{}: cannot reset the head: {}", path, std::strerror(errno)));
    }
    return success();
  }

  // Creates the segment, writes the image then the descriptor; returns the
  // image's size.
  Result<std::uint64_t> write_segment(const std::string& object, std::uint64_t generation,
                                      std::uint64_t published_ns, const SnapshotView& snapshot,
                                      const FileStatus& source, mode_t source_mode,
                                      const std::filesystem::path& source_path) {
    const std::string path = pf::object_path(object).string();
    // A segment of this generation can only be a leftover: nobody attaches
    // a generation the head never named.
    IQDB_TRY(remove_object(object));
    bip::shared_memory_object segment;
    try {
      segment = bip::shared_memory_object(bip::create_only, object.c_str(), bip::read_write,
                                          permissions_like(source_mode));
    } catch (const bip::interprocess_exception& error) {
      return boost_failure("cannot create the segment", object, error);
    }
    const int fd = segment.get_mapping_handle().handle;
    SegmentImageWriter image(fd, path);
    const FileHeader& header = snapshot.header();
    SnapshotWriter writer(image, header.sections.empty() ? 4096 : header.sections[0].alignment);
    for (const SectionInfo& section : header.sections) {
      IQDB_TRY_ASSIGN(const auto view, snapshot.section(section.name));
      IQDB_TRY(writer.add_section(section.name, view.bytes(), section.alignment));
    }
    IQDB_TRY(writer.finish(IndexFacts{header.index_type, header.dim, header.metric,
                                      header.n_vectors, header.wal_lsn, header.database_id}));
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
      return fail(ErrorKind::Io, fmt::format("{}: fstat: {}", path, std::strerror(errno)));
    }
    const auto segment_size = static_cast<std::uint64_t>(info.st_size);

    pf::Descriptor descriptor;
    descriptor.generation = generation;
    descriptor.image_length = segment_size - pf::kImageOffset;
    descriptor.wal_lsn = header.wal_lsn;
    descriptor.content_hash = header.content_hash;
    descriptor.source_device = source.device;
    descriptor.source_inode = source.inode;
    descriptor.source_size = source.size;
    descriptor.source_mtime_ns = static_cast<std::uint64_t>(source.modified_ns);
    descriptor.published_ns = published_ns;
    descriptor.publisher_pid = static_cast<std::uint32_t>(::getpid());
    descriptor.source_path = source_path.string();
    const std::vector<std::byte> bytes = pf::encode_descriptor(descriptor);
    if (::pwrite(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
      return fail(ErrorKind::Io,
                  fmt::format("{}: cannot write the descriptor: {}", path, std::strerror(errno)));
    }
    return descriptor.image_length;
  }

  // Renames the complete segment `object` over the current one: attachers
  // that mapped the previous one keep it; the kernel frees it with their
  // last mapping. Returns `image_bytes`.
  Result<std::uint64_t> replace_current(const std::string& object, std::uint64_t image_bytes) {
    const auto from = pf::object_path(object);
    const auto to = pf::object_path(pf::current_object(name_));
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return fail(ErrorKind::Io, fmt::format("{}: cannot rename it to {}: {}", from.string(),
                                             to.string(), std::strerror(errno)));
    }
    return image_bytes;
  }

  void make_current(std::uint64_t generation, std::uint64_t published_ns) {
    store_u64(pf::kPublishedOffset, published_ns);
    store_u64(pf::kCurrentOffset, generation);
    store_u64(pf::kBuildingOffset, 0);
    bump_changes();
    current_ = generation;
  }

  void bump_changes() {
    std::atomic_ref<std::uint32_t>(*u32_at(pf::kChangesOffset)).fetch_add(1);
    futex_wake_all(u32_at(pf::kChangesOffset));
  }

  std::uint32_t* u32_at(std::size_t offset) const {
    return reinterpret_cast<std::uint32_t*>(head_ + offset);
  }
  void store_u32(std::size_t offset, std::uint32_t value) {
    std::atomic_ref<std::uint32_t>(*u32_at(offset)).store(value);
  }
  void store_u64(std::size_t offset, std::uint64_t value) {
    std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(head_ + offset)).store(value);
  }

  const std::string name_;
  const PublishOptions options_;
  bip::shared_memory_object head_object_;
  bip::mapped_region head_region_;
  std::byte* head_ = nullptr;  // null once withdrawn
  std::uint64_t current_ = 0;
  std::uint64_t next_generation_ = 1;
  std::optional<FileStatus> published_source_;
  // The last file publish() failed on, and why.
  struct FailedSource {
    FileStatus status;
    PersistError error;
  };
  std::optional<FailedSource> failed_source_;
};

Result<SharedPublisher> SharedPublisher::open(std::string name, PublishOptions options) {
  IQDB_TRY(publication_format::check_name(name));
  auto impl = std::make_unique<Impl>(std::move(name), options);
  IQDB_TRY(impl->take_name());
  return SharedPublisher(std::move(impl));
}

SharedPublisher::SharedPublisher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SharedPublisher::SharedPublisher(SharedPublisher&&) noexcept = default;
SharedPublisher& SharedPublisher::operator=(SharedPublisher&&) noexcept = default;
SharedPublisher::~SharedPublisher() = default;

Result<PublishReport> SharedPublisher::publish(const std::filesystem::path& snapshot) {
  return impl_->publish(snapshot);
}
Result<std::optional<PublishReport>> SharedPublisher::publish_if_changed(
    const std::filesystem::path& snapshot) {
  return impl_->publish_if_changed(snapshot);
}
std::uint64_t SharedPublisher::generation() const { return impl_->generation(); }
const std::string& SharedPublisher::name() const { return impl_->name(); }
Result<void> SharedPublisher::withdraw() { return impl_->withdraw(); }

Result<std::size_t> remove_stale_publication(std::string_view name) {
  IQDB_TRY(publication_format::check_name(name));
  std::error_code error;
  const bool any =
      std::filesystem::exists(std::filesystem::symlink_status(
          publication_format::object_path(publication_format::head_object(name)), error)) ||
      std::filesystem::exists(std::filesystem::symlink_status(
          publication_format::object_path(publication_format::current_object(name)), error));
  if (!any) return 0;  // nothing there
  // A live publisher's lock refuses it.
  SharedPublisher::Impl impl{std::string(name), PublishOptions{}};
  return impl.remove_unused();
}

}  // namespace iqdb::persist
