#include "support/fault_injection_file_system.h"

#include <fmt/format.h>

#include <thread>
#include <utility>

namespace iqdb::persist::test {
namespace {

// Forwards to the real file unless the file system injects a failure.
class FaultInjectionWritableFile final : public WritableFile {
 public:
  FaultInjectionWritableFile(FaultInjectionFileSystem& fs, std::unique_ptr<WritableFile> base)
      : fs_(fs), base_(std::move(base)) {}

  Result<void> write_at(std::uint64_t offset, std::span<const std::byte> data) override {
    if (auto error = fs_.on_call(FsOp::WriteAt, path())) return *error;
    return base_->write_at(offset, data);
  }
  Result<void> truncate(std::uint64_t size) override {
    if (auto error = fs_.on_call(FsOp::Truncate, path())) return *error;
    return base_->truncate(size);
  }
  Result<void> sync() override {
    if (auto error = fs_.on_call(FsOp::Sync, path())) return *error;
    std::this_thread::sleep_for(fs_.sync_delay());
    return base_->sync();
  }
  Result<void> close() override {
    if (auto error = fs_.on_call(FsOp::Close, path())) return *error;
    return base_->close();
  }
  const std::filesystem::path& path() const override { return base_->path(); }

 private:
  FaultInjectionFileSystem& fs_;
  std::unique_ptr<WritableFile> base_;
};

}  // namespace

std::string_view to_string(FsOp op) {
  switch (op) {
    case FsOp::CreateNew: return "create_new";
    case FsOp::WriteAt: return "write_at";
    case FsOp::Truncate: return "truncate";
    case FsOp::Sync: return "sync";
    case FsOp::Close: return "close";
    case FsOp::OpenReadable: return "open_readable";
    case FsOp::Rename: return "rename";
    case FsOp::Remove: return "remove";
    case FsOp::SyncDir: return "sync_dir";
    case FsOp::ListDir: return "list_dir";
    case FsOp::SyncFile: return "sync_file";
    case FsOp::LockFile: return "lock_file";
  }
  return "unknown";
}

FaultInjectionFileSystem::FaultInjectionFileSystem(std::shared_ptr<FileSystem> base)
    : base_(std::move(base)) {}

void FaultInjectionFileSystem::fail_nth(FsOp op, std::size_t n) {
  std::lock_guard lock(mutex_);
  armed_op_ = op;
  armed_at_ = calls_[static_cast<std::size_t>(op)] + n;
  fired_ = false;
}

void FaultInjectionFileSystem::disarm() {
  std::lock_guard lock(mutex_);
  armed_op_.reset();
}

bool FaultInjectionFileSystem::fault_fired() const {
  std::lock_guard lock(mutex_);
  return fired_;
}

void FaultInjectionFileSystem::set_sync_delay(std::chrono::microseconds delay) {
  std::lock_guard lock(mutex_);
  sync_delay_ = delay;
}

std::chrono::microseconds FaultInjectionFileSystem::sync_delay() const {
  std::lock_guard lock(mutex_);
  return sync_delay_;
}

std::size_t FaultInjectionFileSystem::calls(FsOp op) const {
  std::lock_guard lock(mutex_);
  return calls_[static_cast<std::size_t>(op)];
}

void FaultInjectionFileSystem::reset_counts() {
  std::lock_guard lock(mutex_);
  calls_.fill(0);
  armed_op_.reset();
}

std::optional<PersistError> FaultInjectionFileSystem::on_call(FsOp op,
                                                              const std::filesystem::path& path) {
  std::lock_guard lock(mutex_);
  const std::size_t call = ++calls_[static_cast<std::size_t>(op)];
  if (armed_op_ != op || call != armed_at_) return std::nullopt;
  fired_ = true;
  armed_op_.reset();
  return PersistError(
      ErrorKind::Io, fmt::format("{}: {} #{}: injected fault", path.string(), to_string(op), call));
}

Result<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::create_new(
    const std::filesystem::path& path) {
  if (auto error = on_call(FsOp::CreateNew, path)) return *error;
  IQDB_TRY_ASSIGN(auto file, base_->create_new(path));
  return std::unique_ptr<WritableFile>(
      std::make_unique<FaultInjectionWritableFile>(*this, std::move(file)));
}

Result<std::unique_ptr<ReadableFile>> FaultInjectionFileSystem::open_readable(
    const std::filesystem::path& path) {
  if (auto error = on_call(FsOp::OpenReadable, path)) return *error;
  return base_->open_readable(path);
}

Result<void> FaultInjectionFileSystem::rename(const std::filesystem::path& from,
                                              const std::filesystem::path& to) {
  if (auto error = on_call(FsOp::Rename, from)) return *error;
  return base_->rename(from, to);
}

Result<void> FaultInjectionFileSystem::remove(const std::filesystem::path& path) {
  if (auto error = on_call(FsOp::Remove, path)) return *error;
  return base_->remove(path);
}

Result<void> FaultInjectionFileSystem::sync_file(const std::filesystem::path& path) {
  if (auto error = on_call(FsOp::SyncFile, path)) return *error;
  return base_->sync_file(path);
}

Result<void> FaultInjectionFileSystem::sync_dir(const std::filesystem::path& dir) {
  if (auto error = on_call(FsOp::SyncDir, dir)) return *error;
  return base_->sync_dir(dir);
}

Result<std::vector<std::string>> FaultInjectionFileSystem::list_dir(
    const std::filesystem::path& dir) {
  if (auto error = on_call(FsOp::ListDir, dir)) return *error;
  return base_->list_dir(dir);
}

Result<std::unique_ptr<FileLock>> FaultInjectionFileSystem::lock_file(
    const std::filesystem::path& path) {
  if (auto error = on_call(FsOp::LockFile, path)) return *error;
  return base_->lock_file(path);
}

}  // namespace iqdb::persist::test
