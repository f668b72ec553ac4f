#include "support/crash_file_system.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <random>
#include <unordered_set>
#include <utility>

namespace iqdb::persist::test {
namespace {

// A write_at (or, with is_write false, a truncate to `offset`) not yet synced.
struct PendingChange {
  bool is_write;
  std::uint64_t offset;
  std::vector<std::byte> bytes;
};

struct Inode {
  std::vector<std::byte> visible;
  std::vector<std::byte> durable;
  // In issue order; replayed by a TornPrefix or AnySubset power loss.
  std::vector<PendingChange> unsynced;

  void write(std::uint64_t offset, std::span<const std::byte> bytes) {
    if (offset + bytes.size() > visible.size()) visible.resize(offset + bytes.size());
    std::copy(bytes.begin(), bytes.end(), visible.begin() + static_cast<std::ptrdiff_t>(offset));
  }
};

// The unit of write-back for PowerLoss::UnsyncedData::AnySubset.
constexpr std::uint64_t kPageSize = 4096;

using Namespace = std::map<std::string, std::shared_ptr<Inode>>;

struct Directory {
  Namespace visible;
  Namespace durable;
};

struct Location {
  std::string dir;
  std::string name;
};

std::string dir_key(const std::filesystem::path& dir) {
  std::string key = dir.lexically_normal().string();
  while (key.size() > 1 && key.back() == '/') key.pop_back();
  return key.empty() ? "." : key;
}

Location locate(const std::filesystem::path& path) {
  const auto normal = path.lexically_normal();
  return {dir_key(normal.parent_path()), normal.filename().string()};
}

PersistError io_error(const std::filesystem::path& path, std::string_view what,
                      std::string_view why) {
  return {ErrorKind::Io, fmt::format("{}: {}: {}", path.string(), what, why)};
}

// What the FileSystem contract reports as NotFound: a missing directory.
PersistError not_found(const std::filesystem::path& path, std::string_view what,
                       std::string_view why) {
  return {ErrorKind::NotFound, fmt::format("{}: {}: {}", path.string(), what, why)};
}

// A copy of a file's bytes, aligned like a page so that sections keep their
// alignment in memory.
class CopiedRegion final : public MappedRegion {
 public:
  explicit CopiedRegion(std::span<const std::byte> bytes) : size_(bytes.size()) {
    if (size_ == 0) return;
    data_.reset(static_cast<std::byte*>(::operator new(size_, kAlignment)));
    std::memcpy(data_.get(), bytes.data(), size_);
  }
  std::span<const std::byte> bytes() const override { return {data_.get(), size_}; }

 private:
  static constexpr std::align_val_t kAlignment{4096};
  struct Free {
    void operator()(std::byte* p) const { ::operator delete(p, kAlignment); }
  };
  std::size_t size_;
  std::unique_ptr<std::byte, Free> data_;
};

}  // namespace

struct CrashFileSystem::State {
  explicit State(std::uint64_t seed) : random(seed) {}

  // Counts a mutating call and decides its fate: an error when the machine is
  // (or now goes) down; `tear` when the failing call should write part of its data.
  struct Verdict {
    std::optional<PersistError> error;
    bool tear = false;
  };
  Verdict begin_mutation(std::string_view op, const std::filesystem::path& path,
                         std::string_view what) {
    ++calls;
    if (logging) log.push_back(fmt::format("{} {}", op, path.string()));
    if (auto error = check_up(path, what)) return {std::move(error)};
    if (crash_at == 0 || calls != crash_at) return {};
    down = true;
    crash_at = 0;
    return {io_error(path, what, fmt::format("machine crashed at this call (#{})", calls)),
            crash_how == CrashingCall::TornWrite};
  }

  std::optional<PersistError> check_up(const std::filesystem::path& path,
                                       std::string_view what) const {
    if (down) return io_error(path, what, "machine is down");
    return std::nullopt;
  }

  std::optional<PersistError> check_handle(const std::filesystem::path& path, std::string_view what,
                                           std::uint64_t handle_epoch) const {
    if (handle_epoch != epoch) return io_error(path, what, "file handle died in a crash");
    return std::nullopt;
  }

  Directory* find_dir(const std::string& key) {
    const auto it = dirs.find(key);
    return it == dirs.end() ? nullptr : &it->second;
  }

  std::size_t random_below(std::size_t bound) {  // uniform in [0, bound)
    return std::uniform_int_distribution<std::size_t>(0, bound - 1)(random);
  }

  // Everything comes back up; open handles are dead.
  void restart() {
    down = false;
    crash_at = 0;
    ++epoch;
  }

  std::mutex mutex;
  std::map<std::string, Directory> dirs;
  // Lock path -> the epoch of its holder: a crash (a new epoch) releases
  // every lock, as the kernel does when the holding process dies.
  std::map<std::string, std::uint64_t> locks;
  std::mt19937_64 random;
  std::uint64_t calls = 0;
  std::uint64_t crash_at = 0;  // value of `calls` at which to crash; 0: none armed
  CrashingCall crash_how = CrashingCall::NotMade;
  bool down = false;
  std::uint64_t epoch = 0;  // handles opened in an earlier epoch died in a crash
  bool logging = false;
  std::vector<std::string> log;
};

namespace {

using State = CrashFileSystem::State;

class CrashWritableFile final : public WritableFile {
 public:
  CrashWritableFile(std::shared_ptr<State> state, std::shared_ptr<Inode> inode,
                    std::filesystem::path path)
      : state_(std::move(state)),
        inode_(std::move(inode)),
        path_(std::move(path)),
        epoch_(state_->epoch) {}

  Result<void> write_at(std::uint64_t offset, std::span<const std::byte> data) override {
    std::lock_guard lock(state_->mutex);
    auto verdict =
        begin("write_at", fmt::format("write of {} bytes at offset {}", data.size(), offset));
    if (verdict.error) {
      if (verdict.tear && !closed_ && epoch_ == state_->epoch && data.size() >= 2) {
        apply_write(offset, data.first(1 + state_->random_below(data.size() - 1)));
      }
      return *verdict.error;
    }
    apply_write(offset, data);
    return success();
  }

  Result<void> truncate(std::uint64_t size) override {
    std::lock_guard lock(state_->mutex);
    if (auto verdict = begin("truncate", fmt::format("truncate to {} bytes", size));
        verdict.error) {
      return *verdict.error;
    }
    inode_->visible.resize(size);
    inode_->unsynced.push_back({false, size, {}});
    return success();
  }

  Result<void> sync() override {
    std::lock_guard lock(state_->mutex);
    if (auto verdict = begin("sync", "fdatasync"); verdict.error) return *verdict.error;
    inode_->durable = inode_->visible;
    inode_->unsynced.clear();
    return success();
  }

  Result<void> close() override {
    std::lock_guard lock(state_->mutex);
    if (auto verdict = begin("close", "close"); verdict.error) return *verdict.error;
    closed_ = true;
    return success();
  }

  const std::filesystem::path& path() const override { return path_; }

 private:
  State::Verdict begin(std::string_view op, std::string_view what) {
    auto verdict = state_->begin_mutation(op, path_, what);
    if (verdict.error) return verdict;
    if (auto dead = state_->check_handle(path_, what, epoch_)) return {std::move(dead)};
    if (closed_) return {io_error(path_, what, "file is closed")};
    return {};
  }

  void apply_write(std::uint64_t offset, std::span<const std::byte> data) {
    inode_->write(offset, data);
    inode_->unsynced.push_back({true, offset, {data.begin(), data.end()}});
  }

  std::shared_ptr<State> state_;
  std::shared_ptr<Inode> inode_;
  std::filesystem::path path_;
  std::uint64_t epoch_;
  bool closed_ = false;
};

class CrashReadableFile final : public ReadableFile {
 public:
  CrashReadableFile(std::shared_ptr<State> state, std::shared_ptr<Inode> inode,
                    std::filesystem::path path)
      : state_(std::move(state)),
        inode_(std::move(inode)),
        path_(std::move(path)),
        epoch_(state_->epoch),
        size_(inode_->visible.size()) {}

  std::uint64_t size() const override { return size_; }

  Result<void> read_at(std::uint64_t offset, std::span<std::byte> out) const override {
    std::lock_guard lock(state_->mutex);
    const std::string what = fmt::format("read of {} bytes at offset {}", out.size(), offset);
    IQDB_TRY(check(what));
    if (offset > size_ || out.size() > size_ - offset) {
      return io_error(path_, what, fmt::format("past the end of the {}-byte file", size_));
    }
    std::copy_n(inode_->visible.begin() + static_cast<std::ptrdiff_t>(offset), out.size(),
                out.begin());
    return success();
  }

  Result<std::shared_ptr<const MappedRegion>> map() const override {
    std::lock_guard lock(state_->mutex);
    IQDB_TRY(check("map"));
    return std::make_shared<CopiedRegion>(std::span(inode_->visible).first(size_));
  }

  const std::filesystem::path& path() const override { return path_; }

 private:
  // Io when the machine is down, the handle died, or the file shrank below
  // the size it had when opened (a real mapping would fault).
  Result<void> check(std::string_view what) const {
    if (auto error = state_->check_up(path_, what)) return *error;
    if (auto error = state_->check_handle(path_, what, epoch_)) return *error;
    if (inode_->visible.size() < size_) return io_error(path_, what, "file shrank");
    return success();
  }

  std::shared_ptr<State> state_;
  std::shared_ptr<Inode> inode_;
  std::filesystem::path path_;
  std::uint64_t epoch_;
  std::uint64_t size_;
};

}  // namespace

CrashFileSystem::CrashFileSystem(std::uint64_t seed) : state_(std::make_shared<State>(seed)) {}

CrashFileSystem::~CrashFileSystem() = default;

void CrashFileSystem::create_dir(const std::filesystem::path& dir) {
  std::lock_guard lock(state_->mutex);
  state_->dirs.try_emplace(dir_key(dir));
}

std::uint64_t CrashFileSystem::call_count() const {
  std::lock_guard lock(state_->mutex);
  return state_->calls;
}

void CrashFileSystem::crash_after(std::uint64_t n, CrashingCall how) {
  std::lock_guard lock(state_->mutex);
  state_->crash_at = n == 0 ? 0 : state_->calls + n;
  state_->crash_how = how;
}

void CrashFileSystem::enable_call_log() {
  std::lock_guard lock(state_->mutex);
  state_->logging = true;
}

std::vector<std::string> CrashFileSystem::call_log() const {
  std::lock_guard lock(state_->mutex);
  return state_->log;
}

bool CrashFileSystem::is_down() const {
  std::lock_guard lock(state_->mutex);
  return state_->down;
}

void CrashFileSystem::simulate_power_loss(PowerLoss what) {
  std::lock_guard lock(state_->mutex);
  State& state = *state_;
  std::vector<Inode*> survivors;
  std::unordered_set<const Inode*> seen;
  for (auto& [key, dir] : state.dirs) {
    if (what.entries == PowerLoss::UnsyncedEntries::Drop) {
      dir.visible = dir.durable;
    } else {
      dir.durable = dir.visible;
    }
    for (const auto& [name, inode] : dir.durable) {
      if (seen.insert(inode.get()).second) survivors.push_back(inode.get());
    }
  }
  for (Inode* inode : survivors) {
    inode->visible = inode->durable;
    if (what.data == PowerLoss::UnsyncedData::TornPrefix && !inode->unsynced.empty()) {
      // Write-back reached the k-th unsynced change, of which it wrote `cut` bytes.
      const std::size_t k = 1 + state.random_below(inode->unsynced.size());
      for (std::size_t i = 0; i < k; ++i) {
        const PendingChange& change = inode->unsynced[i];
        if (!change.is_write) {
          inode->visible.resize(change.offset);
          continue;
        }
        const std::size_t cut =
            i + 1 < k ? change.bytes.size() : state.random_below(change.bytes.size() + 1);
        inode->write(change.offset, std::span(change.bytes).first(cut));
      }
      inode->durable = inode->visible;
    } else if (what.data == PowerLoss::UnsyncedData::AnySubset) {
      for (const PendingChange& change : inode->unsynced) {
        if (!change.is_write) {
          if (state.random_below(2) == 1) inode->visible.resize(change.offset);
          continue;
        }
        // Piece by piece, cut at the file's page boundaries.
        std::uint64_t at = change.offset;
        const std::uint64_t end = change.offset + change.bytes.size();
        while (at < end) {
          const std::uint64_t piece_end = std::min(end, (at / kPageSize + 1) * kPageSize);
          if (state.random_below(2) == 1) {
            inode->write(at, std::span(change.bytes)
                                 .subspan(static_cast<std::size_t>(at - change.offset),
                                          static_cast<std::size_t>(piece_end - at)));
          }
          at = piece_end;
        }
      }
      inode->durable = inode->visible;
    }
    inode->unsynced.clear();
  }
  state.restart();
}

void CrashFileSystem::simulate_process_crash() {
  std::lock_guard lock(state_->mutex);
  state_->restart();
}

Result<std::unique_ptr<WritableFile>> CrashFileSystem::create_new(
    const std::filesystem::path& path) {
  std::lock_guard lock(state_->mutex);
  if (auto verdict = state_->begin_mutation("create_new", path, "create"); verdict.error) {
    return *verdict.error;
  }
  const Location at = locate(path);
  Directory* dir = state_->find_dir(at.dir);
  if (dir == nullptr) return not_found(path, "create", "no such directory");
  if (at.name.empty() || at.name == "." || at.name == "..") {
    return io_error(path, "create", "not a file name");
  }
  if (dir->visible.contains(at.name)) return io_error(path, "create", "file exists");
  auto inode = std::make_shared<Inode>();
  dir->visible.emplace(at.name, inode);
  return std::unique_ptr<WritableFile>(
      std::make_unique<CrashWritableFile>(state_, std::move(inode), path));
}

Result<std::unique_ptr<ReadableFile>> CrashFileSystem::open_readable(
    const std::filesystem::path& path) {
  std::lock_guard lock(state_->mutex);
  if (auto error = state_->check_up(path, "open")) return *error;
  const Location at = locate(path);
  if (Directory* dir = state_->find_dir(at.dir); dir != nullptr) {
    if (const auto entry = dir->visible.find(at.name); entry != dir->visible.end()) {
      return std::unique_ptr<ReadableFile>(
          std::make_unique<CrashReadableFile>(state_, entry->second, path));
    }
  }
  return fail(ErrorKind::NotFound, fmt::format("{}: open: no such file", path.string()));
}

Result<void> CrashFileSystem::rename(const std::filesystem::path& from,
                                     const std::filesystem::path& to) {
  std::lock_guard lock(state_->mutex);
  const std::string what = fmt::format("rename to '{}'", to.string());
  if (auto verdict = state_->begin_mutation("rename", from, what); verdict.error)
    return *verdict.error;
  const Location source = locate(from);
  const Location target = locate(to);
  Directory* from_dir = state_->find_dir(source.dir);
  Directory* to_dir = state_->find_dir(target.dir);
  if (from_dir == nullptr || !from_dir->visible.contains(source.name)) {
    return io_error(from, what, "no such file");
  }
  if (to_dir == nullptr || target.name.empty()) return io_error(from, what, "bad target");
  auto inode = from_dir->visible.at(source.name);
  from_dir->visible.erase(source.name);
  to_dir->visible[target.name] = std::move(inode);
  return success();
}

Result<void> CrashFileSystem::remove(const std::filesystem::path& path) {
  std::lock_guard lock(state_->mutex);
  if (auto verdict = state_->begin_mutation("remove", path, "unlink"); verdict.error)
    return *verdict.error;
  const Location at = locate(path);
  Directory* dir = state_->find_dir(at.dir);
  if (dir == nullptr || dir->visible.erase(at.name) == 0) {
    return io_error(path, "unlink", "no such file");
  }
  return success();
}

Result<void> CrashFileSystem::sync_file(const std::filesystem::path& path) {
  std::lock_guard lock(state_->mutex);
  if (auto verdict = state_->begin_mutation("sync_file", path, "fdatasync"); verdict.error) {
    return *verdict.error;
  }
  const Location at = locate(path);
  Directory* dir = state_->find_dir(at.dir);
  const auto entry = dir == nullptr ? Namespace::iterator() : dir->visible.find(at.name);
  if (dir == nullptr || entry == dir->visible.end()) {
    return io_error(path, "fdatasync", "no such file");
  }
  entry->second->durable = entry->second->visible;
  entry->second->unsynced.clear();
  return success();
}

Result<void> CrashFileSystem::sync_dir(const std::filesystem::path& dir) {
  std::lock_guard lock(state_->mutex);
  if (auto verdict = state_->begin_mutation("sync_dir", dir, "fsync directory"); verdict.error) {
    return *verdict.error;
  }
  Directory* found = state_->find_dir(dir_key(dir));
  if (found == nullptr) return io_error(dir, "fsync directory", "no such directory");
  found->durable = found->visible;
  return success();
}

namespace {

class CrashFileLock final : public FileLock {
 public:
  CrashFileLock(std::shared_ptr<CrashFileSystem::State> state, std::filesystem::path path,
                std::uint64_t epoch)
      : state_(std::move(state)), path_(std::move(path)), epoch_(epoch) {}
  ~CrashFileLock() override;
  CrashFileLock(const CrashFileLock&) = delete;
  CrashFileLock& operator=(const CrashFileLock&) = delete;
  const std::filesystem::path& path() const override { return path_; }

 private:
  std::shared_ptr<CrashFileSystem::State> state_;
  std::filesystem::path path_;
  std::uint64_t epoch_;
};

}  // namespace

CrashFileLock::~CrashFileLock() {
  std::lock_guard lock(state_->mutex);
  const auto held = state_->locks.find(path_.string());
  if (held != state_->locks.end() && held->second == epoch_) state_->locks.erase(held);
}

Result<std::unique_ptr<FileLock>> CrashFileSystem::lock_file(const std::filesystem::path& path) {
  std::lock_guard lock(state_->mutex);
  if (auto error = state_->check_up(path, "lock")) return *error;
  const auto [held, inserted] = state_->locks.try_emplace(path.string(), state_->epoch);
  if (!inserted && held->second == state_->epoch) {
    return fail(ErrorKind::Locked, path.string() + ": locked by another lock object");
  }
  held->second = state_->epoch;
  return std::unique_ptr<FileLock>(std::make_unique<CrashFileLock>(state_, path, state_->epoch));
}

Result<std::vector<std::string>> CrashFileSystem::list_dir(const std::filesystem::path& dir) {
  std::lock_guard lock(state_->mutex);
  if (auto error = state_->check_up(dir, "read directory")) return *error;
  Directory* found = state_->find_dir(dir_key(dir));
  if (found == nullptr) return not_found(dir, "read directory", "no such directory");
  std::vector<std::string> names;
  for (const auto& [name, inode] : found->visible) names.push_back(name);
  return names;
}

}  // namespace iqdb::persist::test
