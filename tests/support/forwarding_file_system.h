// ForwardingFileSystem: a FileSystem that passes every call to another one
// (the operating system's by default). Test file systems derive from it and
// override only the calls they watch or change.
//
// Thread-safety: that of the base file system.
#ifndef IQDB_PERSIST_TESTS_SUPPORT_FORWARDING_FILE_SYSTEM_H_
#define IQDB_PERSIST_TESTS_SUPPORT_FORWARDING_FILE_SYSTEM_H_

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "iqdb/persist/file_system.h"

namespace iqdb::persist::test {

class ForwardingFileSystem : public FileSystem {
 public:
  explicit ForwardingFileSystem(std::shared_ptr<FileSystem> base = default_file_system())
      : base_(std::move(base)) {}

  Result<std::unique_ptr<WritableFile>> create_new(const std::filesystem::path& path) override {
    return base_->create_new(path);
  }
  Result<std::unique_ptr<ReadableFile>> open_readable(const std::filesystem::path& path) override {
    return base_->open_readable(path);
  }
  Result<void> rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    return base_->rename(from, to);
  }
  Result<void> remove(const std::filesystem::path& path) override { return base_->remove(path); }
  Result<void> sync_file(const std::filesystem::path& path) override {
    return base_->sync_file(path);
  }
  Result<void> sync_dir(const std::filesystem::path& dir) override { return base_->sync_dir(dir); }
  Result<std::vector<std::string>> list_dir(const std::filesystem::path& dir) override {
    return base_->list_dir(dir);
  }
  Result<std::unique_ptr<FileLock>> lock_file(const std::filesystem::path& path) override {
    return base_->lock_file(path);
  }
  Result<FileStatus> status(const std::filesystem::path& path) override {
    return base_->status(path);
  }

 private:
  std::shared_ptr<FileSystem> base_;
};

}  // namespace iqdb::persist::test

#endif  // IQDB_PERSIST_TESTS_SUPPORT_FORWARDING_FILE_SYSTEM_H_
