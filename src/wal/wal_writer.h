// WalWriter appends frames to one new write-ahead-log segment
// (docs/FORMAT.md, "Write-ahead log"). It never reopens or rewrites an
// existing file: every writer creates its own segment, so a reader that has
// an older segment mapped is never disturbed.
//
// Durability is the caller's decision: append() only writes (the bytes reach
// the page cache, so they survive a process crash); sync() makes every frame
// appended so far durable. A failed write or sync leaves the segment's tail in
// an unknown state, so the writer then refuses every further call with Io
// rather than retrying and pretending (after a failed fsync the kernel may
// have dropped the dirty pages: a retried fsync can succeed without the data).
//
// Thread-safety: callers serialise append() and close(); sync() may run
// concurrently with an append() and with other sync() calls (group commit
// syncs while the next frame is written).
#ifndef IQDB_PERSIST_SRC_WAL_WAL_WRITER_H_
#define IQDB_PERSIST_SRC_WAL_WAL_WRITER_H_

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "iqdb/persist/error.h"
#include "iqdb/persist/file_system.h"

namespace iqdb::persist {

class WalWriter {
 public:
  // Creates segment `number` of the log of `snapshot_path`, whose first frame
  // will carry LSN `first_lsn`, and writes its header, which records
  // `database_id` (that of the database's snapshots; 0: not recorded). With
  // `sync`, the header and the directory entry are made durable before this
  // returns, so that a synced frame is never lost with its file. Errors: Io
  // (also when the segment already exists).
  [[nodiscard]] static Result<std::unique_ptr<WalWriter>> create(
      FileSystem& fs, const std::filesystem::path& snapshot_path, std::uint64_t number,
      std::uint64_t first_lsn, bool sync, std::uint64_t database_id = 0);

  WalWriter(const WalWriter&) = delete;
  WalWriter& operator=(const WalWriter&) = delete;
  ~WalWriter() = default;

  // Writes one frame holding `body` (1 ..= kMaxBodyLength bytes) and returns
  // its LSN. `durable_lsn` (< that LSN) is recorded in the frame: every frame
  // of the log up to it is known to be on stable storage. Errors:
  // InvalidArgument for a bad body length or durable LSN; Io.
  [[nodiscard]] Result<std::uint64_t> append(std::span<const std::byte> body,
                                             std::uint64_t durable_lsn);

  // The same without a copy: `frame` is kFrameHeaderSize bytes of room for
  // the frame header (filled in here), followed by the body.
  [[nodiscard]] Result<std::uint64_t> append_frame(std::span<std::byte> frame,
                                                   std::uint64_t durable_lsn);

  // Makes every appended frame durable. Errors: Io.
  [[nodiscard]] Result<void> sync();

  // Closes the segment, reporting deferred write errors. Errors: Io.
  [[nodiscard]] Result<void> close();

  // The LSN the next append() will get.
  std::uint64_t next_lsn() const { return next_lsn_; }
  // Bytes written so far, header included.
  std::uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return file_->path(); }

 private:
  WalWriter(std::unique_ptr<WritableFile> file, std::uint64_t first_lsn);
  // Io naming the segment once a failure (or close()) made it unusable.
  Result<void> check_usable() const;
  Result<void> write(std::span<const std::byte> bytes);

  std::unique_ptr<WritableFile> file_;
  std::uint64_t next_lsn_;
  std::uint64_t size_ = 0;
  void set_failure(std::string why);

  std::atomic<bool> failed_{false};  // checked on every call without the mutex
  mutable std::mutex failure_mutex_;
  std::string failure_;           // why the writer is unusable, once failed_
  std::vector<std::byte> frame_;  // reused: one write_at per frame
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_WAL_WAL_WRITER_H_
