// Shared-memory serving: a snapshot decoded once per host and generation,
// attached read-only and zero-copy by any number of processes.
//
//   // The publisher (or `iqdb-persist publish FILE --name products`):
//   auto publisher = SharedPublisher::open("products");
//   publisher->publish("/data/products.iqdb");     // generation 1
//   ... after each checkpoint: publisher->publish("/data/products.iqdb");
//
//   // Any process on the host:
//   auto shared = SharedIndex<FlatIndex>::attach("products");
//   auto hits = shared->index().search(query, 10);  // reads the shared pages
//   if (shared->snapshot().newer_published()) { /* attach again */ }
//
// Why: raw sections are already shared between processes through the page
// cache (N processes mapping one file hold one copy), but compressed
// sections are decoded into each process's private memory. A publication
// holds the decoded image once, in the host's POSIX shared memory
// (/dev/shm, tmpfs); attachers map it read-only. docs/SHARED_MEMORY.md says
// when to use which; docs/FORMAT.md, "Shared-memory publication", has the
// layout and the rules below in full.
//
// Generations. Each publish() writes a new segment (a descriptor, then the
// snapshot image with every section raw), renames it over the current one,
// then tells attachers through the head. A process attached to an older
// generation keeps it, intact, until it detaches (the kernel frees a
// replaced segment when its last mapping goes, including when a process is
// killed): the publisher never waits for attachers and never writes a
// segment once published. A generation is a snapshot of the source, as of
// its last checkpoint: log records written since are not in it.
//
// Liveness and clean-up, never by pid numbers: the publisher holds an
// open-file-description lock on the head while it runs, which the kernel
// releases when it exits or dies. A new publisher of the name removes the
// segment a dead one was writing, and replaces its current segment at its
// first publication; remove_stale_publication() removes everything a dead
// publisher left. A publisher that stops cleanly (its destructor,
// withdraw()) removes everything it published.
//
// Trust. An attacher validates everything it maps: the head, the
// descriptor (CRC-32), and the image as a load validates a file (prefix,
// header CRC, section table within bounds); with VerifyMode::Eager it also
// checks every section's CRC. A damaged or foreign object is an error naming
// it, never a crash. Attachers never write.
//
// Errors name the publication's object. Linux only: POSIX shared memory in
// /dev/shm.
#ifndef IQDB_PERSIST_SHARED_MEMORY_H_
#define IQDB_PERSIST_SHARED_MEMORY_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "iqdb/persist/config.h"
#include "iqdb/persist/detail/snapshot_io.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/load_verification.h"
#include "iqdb/persist/persistable.h"
#include "iqdb/persist/sections.h"

namespace iqdb::persist {

struct PublishOptions {
  // How each source snapshot is checked before it is published: Eager (the
  // default) checks every CRC, so a damaged file is refused, never served.
  VerifyMode verify = VerifyMode::Eager;
  // Threads to verify and decode with; 0 = one per hardware thread.
  unsigned threads = 0;
};

// One publish().
struct PublishReport {
  std::uint64_t generation = 0;
  std::string object;             // the segment's shared memory object name (".current")
  std::uint64_t wal_lsn = 0;      // of the snapshot published
  std::uint64_t image_bytes = 0;  // decoded: what attachers share
  std::uint64_t source_bytes = 0;
  double seconds = 0;
};

// Publishes snapshots under one name. Thread-safety: one thread at a time.
class SharedPublisher {
 public:
  // Takes the name `name` (1 to 200 characters of [A-Za-z0-9_-]), removing
  // what a dead publisher of it left. Errors:
  // InvalidArgument (the name); Locked while another publisher runs, naming
  // its pid; BadMagic, UnsupportedVersion or InvalidHeader when the head
  // object exists but is not one this library wrote (it is left alone); Io.
  [[nodiscard]] static Result<SharedPublisher> open(std::string name, PublishOptions options = {});

  // Loads `snapshot` (verified per options, compressed sections decoded in
  // parallel), writes it as the next generation and makes it current (the
  // previous one loses its name). Attachers are given its absolute path. On
  // error nothing changes for attachers and no new object is left. Errors:
  // those of a load (NotFound, ChecksumMismatch, ...); Io (for instance
  // /dev/shm full: ENOSPC); InvalidArgument after withdraw().
  [[nodiscard]] Result<PublishReport> publish(const std::filesystem::path& snapshot);

  // publish() when the file at `snapshot` is not the one the current
  // generation came from (a checkpoint replaced it; compared by identity,
  // one stat): how `iqdb-persist publish` follows a database. nullopt when
  // it is the same, or when the file is missing for a moment (a copier
  // between delete and create) after a first publication. Errors: those of
  // publish(); a file publish() failed on is not read again until another
  // replaces it: its error is returned again.
  [[nodiscard]] Result<std::optional<PublishReport>> publish_if_changed(
      const std::filesystem::path& snapshot);

  // The current generation (0 before the first publish()).
  std::uint64_t generation() const;
  const std::string& name() const;

  // Removes every object of this publication (attachers keep what they
  // mapped) and gives the name up. The destructor does it too, ignoring
  // errors. Errors: Io.
  [[nodiscard]] Result<void> withdraw();

  SharedPublisher(SharedPublisher&&) noexcept;
  SharedPublisher& operator=(SharedPublisher&&) noexcept;
  ~SharedPublisher();

 private:
  class Impl;
  friend Result<std::size_t> remove_stale_publication(std::string_view name);
  explicit SharedPublisher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Removes what a publisher of `name` that is no longer running left (its
// segments and head, whatever the head holds: a damaged or foreign object
// under the name is removed too); attachers watching a head of this library
// are told, as by withdraw(). Returns how many objects were removed; 0 when
// there are none. Errors: InvalidArgument (the name); Locked while a
// publisher runs; Io.
[[nodiscard]] Result<std::size_t> remove_stale_publication(std::string_view name);

// What an attacher knows of the generation it attached.
struct SharedDescriptor {
  std::string name;    // the publication
  std::string object;  // the segment's object: "iqdb.<name>.current"
  std::uint64_t generation = 0;
  std::uint64_t wal_lsn = 0;
  std::uint64_t content_hash = 0;
  std::uint64_t image_bytes = 0;
  std::uint64_t segment_bytes = 0;
  std::string source_path;  // as the publisher named it (informational)
  std::uint64_t source_device = 0;
  std::uint64_t source_inode = 0;
  std::uint64_t source_size = 0;
  std::chrono::system_clock::time_point source_modified;
  std::chrono::system_clock::time_point published;
  std::uint32_t publisher_pid = 0;  // informational
};

struct AttachOptions {
  // Skip (the default): the publisher verified what it decoded, and the
  // image's header and the descriptor are checked at every attach. Eager
  // checks every section's CRC before attach() returns; Background starts
  // that check and returns (verification()).
  VerifyMode verify = VerifyMode::Skip;
  unsigned threads = 0;
};

// One attached generation: a read-only mapping of its segment, valid while
// this object (or any SectionView or index rebuilt from view()) lives.
// Thread-safety: const methods may be called from any thread.
class SharedSnapshot {
 public:
  // Attaches the current generation of `name` (one object: the head is not
  // read). Errors: InvalidArgument (the name); NotFound when nothing is
  // published under it (or its publisher has not published yet); BadMagic,
  // UnsupportedVersion, ChecksumMismatch, InvalidHeader, TruncatedHeader for
  // a damaged or foreign descriptor or image; Io for an object that is not a
  // regular file (refused without blocking).
  [[nodiscard]] static Result<SharedSnapshot> attach(std::string_view name,
                                                     AttachOptions options = {});

  const SharedDescriptor& descriptor() const;
  // The image as a snapshot: sections are views of the shared mapping.
  const SnapshotView& view() const;
  const Verification& verification() const;

  // Whether the publication's current generation is no longer this one:
  // another generation number or publication time in the head (a restarted
  // publisher numbers from 1 again), none (withdrawn), or no head of this
  // library any more. The first call maps the head; later ones read it, with
  // no system call.
  bool newer_published() const;
  // Waits until newer_published() or `timeout` passes (futex on the head).
  bool wait_for_newer(std::chrono::nanoseconds timeout) const;

  SharedSnapshot(SharedSnapshot&&) noexcept;
  SharedSnapshot& operator=(SharedSnapshot&&) noexcept;
  ~SharedSnapshot();

 private:
  class Impl;
  explicit SharedSnapshot(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// An index of type I rebuilt from an attached generation: zero-copy for a
// SectionPersistable index, whose sections are views of the shared pages.
template <Persistable I>
class SharedIndex {
 public:
  // Errors: those of SharedSnapshot::attach(); InvalidIndexType when the
  // publication holds another type of index; the index's own load errors.
  [[nodiscard]] static Result<SharedIndex> attach(std::string_view name,
                                                  AttachOptions options = {}) {
    IQDB_TRY_ASSIGN(auto snapshot, SharedSnapshot::attach(name, options));
    const SnapshotView& view = snapshot.view();
    if (view.header().index_type != I::kIndexType) {
      return fail(ErrorKind::InvalidIndexType,
                  view.path().string() + ": holds a '" + view.header().index_type +
                      "' index, expected '" + std::string(I::kIndexType) + "'");
    }
    IQDB_TRY_ASSIGN(auto index, detail::rebuild_index<I>(view));
    IQDB_TRY(detail::check_rebuilt(view, detail::index_facts(index)));
    return SharedIndex(std::move(snapshot), std::move(index));
  }

  const I& index() const { return index_; }
  const SharedSnapshot& snapshot() const { return snapshot_; }

 private:
  SharedIndex(SharedSnapshot snapshot, I index)
      : snapshot_(std::move(snapshot)), index_(std::move(index)) {}

  SharedSnapshot snapshot_;  // declared first: outlives the index's views
  I index_;
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SHARED_MEMORY_H_
