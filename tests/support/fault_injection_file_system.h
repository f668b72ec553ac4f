// FaultInjectionFileSystem: a FileSystem over another one (the operating
// system's by default) that counts every call per operation and can fail the
// Nth call of a chosen operation with ErrorKind::Io, without performing it.
//
//   auto fs = std::make_shared<FaultInjectionFileSystem>();
//   fs->fail_nth(FsOp::WriteAt, 2);   // the second write_at from now fails
//   config.file_system = fs;
//   EXPECT_THAT(db.save(), IsError(ErrorKind::Io, "injected"));
//
// Thread-safe: counters and the armed fault are guarded by a mutex, so it may
// be shared by files used from several threads.
#ifndef IQDB_PERSIST_TESTS_SUPPORT_FAULT_INJECTION_FILE_SYSTEM_H_
#define IQDB_PERSIST_TESTS_SUPPORT_FAULT_INJECTION_FILE_SYSTEM_H_

#include <array>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "iqdb/persist/file_system.h"

namespace iqdb::persist::test {

enum class FsOp {
  CreateNew,
  WriteAt,
  Truncate,
  Sync,
  Close,
  OpenReadable,
  Rename,
  Remove,
  SyncDir,
  ListDir,
  SyncFile,
  LockFile,
};
inline constexpr std::size_t kFsOpCount = 12;

std::string_view to_string(FsOp op);

class FaultInjectionFileSystem final : public FileSystem {
 public:
  explicit FaultInjectionFileSystem(std::shared_ptr<FileSystem> base = default_file_system());

  // Fails the `n`th call (1-based) of `op` made from now on; other calls pass.
  // One fault is armed at a time; arming replaces the previous one.
  void fail_nth(FsOp op, std::size_t n);
  void disarm();
  // True once the armed fault has fired.
  bool fault_fired() const;

  // Makes every file sync() take at least `delay`, as on a slow disk.
  void set_sync_delay(std::chrono::microseconds delay);
  std::chrono::microseconds sync_delay() const;

  // Calls of `op` made since construction or the last reset_counts().
  std::size_t calls(FsOp op) const;
  void reset_counts();

  Result<std::unique_ptr<WritableFile>> create_new(const std::filesystem::path& path) override;
  Result<std::unique_ptr<ReadableFile>> open_readable(const std::filesystem::path& path) override;
  Result<void> rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
  Result<void> remove(const std::filesystem::path& path) override;
  Result<void> sync_file(const std::filesystem::path& path) override;
  Result<void> sync_dir(const std::filesystem::path& dir) override;
  Result<std::vector<std::string>> list_dir(const std::filesystem::path& dir) override;
  Result<std::unique_ptr<FileLock>> lock_file(const std::filesystem::path& path) override;

  // Counts a call of `op` on `path` and returns the injected error if this is
  // the call chosen to fail. (Used by the file wrappers too.)
  std::optional<PersistError> on_call(FsOp op, const std::filesystem::path& path);

 private:
  std::shared_ptr<FileSystem> base_;
  mutable std::mutex mutex_;
  std::array<std::size_t, kFsOpCount> calls_{};
  std::optional<FsOp> armed_op_;
  std::size_t armed_at_ = 0;  // value of calls_[op] whose call fails
  bool fired_ = false;
  std::chrono::microseconds sync_delay_{0};
};

}  // namespace iqdb::persist::test

#endif  // IQDB_PERSIST_TESTS_SUPPORT_FAULT_INJECTION_FILE_SYSTEM_H_
