// A FileSystem holding one read-only file in memory, so that a fuzzer can
// drive the real load path (open, header read, map, verify, rebuild) on each
// input without touching the disk.
#ifndef IQDB_PERSIST_FUZZ_MEMORY_FILE_SYSTEM_H_
#define IQDB_PERSIST_FUZZ_MEMORY_FILE_SYSTEM_H_

#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "iqdb/persist/file_system.h"

namespace iqdb::persist::fuzz {

class MemoryRegion final : public MappedRegion {
 public:
  explicit MemoryRegion(std::vector<std::byte> bytes) : bytes_(std::move(bytes)) {}
  std::span<const std::byte> bytes() const override { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

class MemoryReadableFile final : public ReadableFile {
 public:
  MemoryReadableFile(std::shared_ptr<const MemoryRegion> region, std::filesystem::path path)
      : region_(std::move(region)), path_(std::move(path)) {}

  std::uint64_t size() const override { return region_->bytes().size(); }
  Result<void> read_at(std::uint64_t offset, std::span<std::byte> out) const override {
    const auto bytes = region_->bytes();
    if (offset > bytes.size() || out.size() > bytes.size() - offset) {
      return fail(ErrorKind::Io, path_.string() + ": read past the end");
    }
    if (!out.empty()) std::memcpy(out.data(), bytes.data() + offset, out.size());
    return success();
  }
  Result<std::shared_ptr<const MappedRegion>> map() const override {
    return std::shared_ptr<const MappedRegion>(region_);
  }
  const std::filesystem::path& path() const override { return path_; }

 private:
  std::shared_ptr<const MemoryRegion> region_;
  std::filesystem::path path_;
};

// Serves `bytes` as the only file; every other operation fails with Io.
class MemoryFileSystem final : public FileSystem {
 public:
  explicit MemoryFileSystem(std::vector<std::byte> bytes)
      : region_(std::make_shared<MemoryRegion>(std::move(bytes))) {}

  Result<std::unique_ptr<ReadableFile>> open_readable(const std::filesystem::path& path) override {
    return std::make_unique<MemoryReadableFile>(region_, path);
  }
  Result<std::unique_ptr<WritableFile>> create_new(const std::filesystem::path& path) override {
    return refuse(path);
  }
  Result<void> rename(const std::filesystem::path& from, const std::filesystem::path&) override {
    return refuse(from);
  }
  Result<void> remove(const std::filesystem::path& path) override { return refuse(path); }
  Result<void> sync_file(const std::filesystem::path& path) override { return refuse(path); }
  Result<void> sync_dir(const std::filesystem::path& dir) override { return refuse(dir); }
  Result<std::vector<std::string>> list_dir(const std::filesystem::path& dir) override {
    return refuse(dir);
  }
  Result<std::unique_ptr<FileLock>> lock_file(const std::filesystem::path& path) override {
    return refuse(path);
  }

 private:
  static PersistError refuse(const std::filesystem::path& path) {
    return {ErrorKind::Io, path.string() + ": read-only in-memory file system"};
  }

  std::shared_ptr<const MemoryRegion> region_;
};

}  // namespace iqdb::persist::fuzz

#endif  // IQDB_PERSIST_FUZZ_MEMORY_FILE_SYSTEM_H_
