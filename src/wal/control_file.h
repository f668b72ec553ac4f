// The control file "<snapshot>.control": a small shared mapping through which
// a database's writer tells the replicas on its host what it committed, and
// wakes those that wait (docs/FORMAT.md, "Control file").
//
// It is a hint, never a source of truth. Replicas read the log and the
// snapshot themselves; the control file only spares them a poll interval
// (a futex wakes them at each commit) and tells them how far behind they
// are. A writer that cannot create it carries on without it; a replica that
// finds it missing, foreign, damaged or written on another host (its boot id
// differs: the directory was copied) ignores it and polls. So it is never
// copied between hosts, and nothing in it is trusted for correctness.
//
// Layout (64 bytes at the start of a file of kFileSize bytes; integers
// little-endian, read and written as atomics in place):
//   [0, 8)   magic "IQDBCTRL"
//   [8, 12)  version (u32) = kVersion
//   [12, 16) reserved, zero
//   [16, 32) boot id of the host of the writer that wrote it
//   [32, 40) committed LSN (u64): the last log record the writer committed
//   [40, 48) commit time (u64): when, in ns since the Unix epoch
//   [48, 56) generation (u64): snapshots the writer published, counted
//   [56, 60) change counter (u32): bumped at each commit and snapshot; the
//            futex word replicas wait on
//   [60, 64) waiters (u32): nonzero once a replica waits; the writer clears
//            it when it wakes them, so a writer with nobody waiting makes
//            no system call
// The writer never shrinks or replaces the file (replicas map it), and
// rewrites only these fields.
//
// Thread-safety: every method may be called from any thread.
#ifndef IQDB_PERSIST_SRC_WAL_CONTROL_FILE_H_
#define IQDB_PERSIST_SRC_WAL_CONTROL_FILE_H_

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "iqdb/persist/error.h"

namespace iqdb::persist {

class ControlFile {
 public:
  static constexpr std::size_t kFileSize = 4096;
  static constexpr std::uint32_t kVersion = 1;

  // The control file of the database whose snapshot is `snapshot_path`.
  static std::filesystem::path path_for(const std::filesystem::path& snapshot_path);

  // For the writer (who holds the writer lock): opens the file read-write,
  // creating it when `create` (a writer with a log does; a save without
  // one only announces its snapshot to replicas when a log writer made the
  // file), and takes it over (a file of another host or version is reset).
  // Errors: NotFound (not `create`); Io. The writer goes on without it.
  [[nodiscard]] static Result<std::unique_ptr<ControlFile>> open_for_writer(
      const std::filesystem::path& snapshot_path, bool create);

  // For a replica: maps the file, read-write when it may (to register as a
  // waiter), else read-only (then it cannot be woken: can_wait() is false).
  // Errors: NotFound; Io; InvalidHeader when it is not a control file of
  // this version written on this host.
  [[nodiscard]] static Result<std::unique_ptr<ControlFile>> open_for_reader(
      const std::filesystem::path& snapshot_path);

  ControlFile(const ControlFile&) = delete;
  ControlFile& operator=(const ControlFile&) = delete;
  ~ControlFile();

  // Writer: records that the log holds every record up to `lsn`, and wakes
  // the waiting replicas.
  void publish_commit(std::uint64_t lsn);
  // Writer: records a new snapshot holding every record up to `lsn`.
  void publish_snapshot(std::uint64_t lsn);

  std::uint64_t committed_lsn() const;
  std::chrono::system_clock::time_point commit_time() const;
  std::uint64_t generation() const;
  // The change counter: pass it to wait_for_change().
  std::uint32_t changes() const;

  // Whether wait_for_change() can be woken by the writer (the file is mapped
  // read-write); otherwise it sleeps out its timeout.
  bool can_wait() const { return writable_; }
  // Waits until the change counter differs from `seen`, or `timeout` passes.
  void wait_for_change(std::uint32_t seen, std::chrono::nanoseconds timeout) const;
  // Wakes every wait_for_change() in progress, in any process, without
  // changing anything (e.g. to stop a follower thread).
  void wake_local() const;

 private:
  ControlFile(std::byte* base, bool writable) : base_(base), writable_(writable) {}
  // The change counter, the futex word.
  const std::uint32_t* changes_word() const;

  std::byte* base_;  // kFileSize bytes, MAP_SHARED
  bool writable_;
};

// The boot id of this host (16 bytes; zero when the kernel does not tell).
std::array<std::byte, 16> host_boot_id();

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_WAL_CONTROL_FILE_H_
