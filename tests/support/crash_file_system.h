// CrashFileSystem: an in-memory FileSystem that models a machine's volatile
// page cache and its durable disk separately, so that a test can cut the power
// (or kill the process) at any I/O call and check what survives, deterministically
// and without touching real files.
//
//   auto fs = std::make_shared<CrashFileSystem>();
//   fs->create_dir("/db");
//   config.file_system = fs;                 // config.path = "/db/x.iqdb"
//   fs->crash_after(7);                      // the 7th mutating call from now fails
//   (void)db.save();                         // fails at that call: the machine is down
//   fs->simulate_power_loss();               // back up with only what was durable
//   auto loaded = PersistedIndex<I>::load(config);
//
// The model (in the spirit of LevelDB's FaultInjectionTestEnv and RocksDB's
// FaultInjectionTestFS):
//   - A file is an inode with "visible" bytes (the page cache: what reads and
//     maps see) and "durable" bytes (as of its last successful sync()). Writes
//     and truncates change only the visible bytes; sync() copies them to the
//     durable ones.
//   - Each directory has a "visible" namespace (name -> inode) and a "durable"
//     one as of its last sync_dir(). create_new, rename and remove change the
//     visible namespace at once and the durable one only at sync_dir() of the
//     directory (of both directories, for a rename between two). So a file
//     whose data was synced but whose directory entry was not is lost at power
//     loss, and a rename not followed by sync_dir() is undone.
//   - simulate_power_loss(): every directory's namespace becomes its durable
//     one and every file's bytes its durable bytes (by default; see
//     PowerLoss for torn data and for directory entries that reached the disk).
//   - simulate_process_crash(): everything visible stays.
//   Both kill every open WritableFile and ReadableFile (their calls then fail
//   with Io; a MappedRegion stays readable) and bring the machine back up.
//
// Simplifications: directories are made with create_dir(), which is durable at
// once and cannot fail; there are no hard links, permissions or free-space
// limits. map() returns a private copy of the file's bytes at the time of the
// call (aligned to 4096 bytes), so later writes, renames and crashes never
// change a mapping. That is what a MAP_SHARED mapping of a file that is only
// ever replaced by rename, never written in place, would show (it keeps the old
// inode); it hides the effect of writes into a mapped file, which the library
// never makes.
//
// Crash points: every mutating call (create_new, write_at, truncate, sync,
// close, rename, remove, sync_file, sync_dir) is counted by call_count(). crash_after(n)
// makes the n-th mutating call from now fail with Io without taking effect
// (or, for a write_at with CrashingCall::TornWrite, after writing a random
// proper prefix of its bytes); from then on the machine is down and every call,
// reads included, fails with Io until simulate_power_loss() or
// simulate_process_crash(). A test runs a workload once to count its calls N,
// then reruns it crashing at each of 1..N.
//
// Thread-safety: all state is guarded by one mutex, so the file system and its
// files may be used from several threads (a single WritableFile still from one
// at a time, as the FileSystem contract says). Handles share ownership of the
// state, so they may outlive the CrashFileSystem.
#ifndef IQDB_PERSIST_TESTS_SUPPORT_CRASH_FILE_SYSTEM_H_
#define IQDB_PERSIST_TESTS_SUPPORT_CRASH_FILE_SYSTEM_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "iqdb/persist/file_system.h"

namespace iqdb::persist::test {

// What happens to the call at which crash_after() brings the machine down.
enum class CrashingCall {
  NotMade,    // the call has no effect
  TornWrite,  // a write_at writes a random proper prefix of its bytes first;
              // any other call has no effect
};

// What survives a power loss besides what was synced.
struct PowerLoss {
  // File bytes written (or truncated) since the file's last sync().
  enum class UnsyncedData {
    Drop,        // all lost
    TornPrefix,  // a random prefix of the unsynced writes and truncates, in
                 // issue order, survives; the last kept write may be cut part-way.
                 // (Real write-back may persist pages in any order; this models
                 // in-order write-back interrupted by the power cut.)
    AnySubset,   // write-back in any order: each unsynced truncate, and each
                 // piece of an unsynced write that lies within one 4096-byte
                 // page of the file (most writes are one piece), survives or
                 // is lost on its own coin flip; the survivors are applied in
                 // issue order onto the durable bytes. So a later write may
                 // survive an earlier one, a write spanning pages may keep any
                 // of its pages, and bytes no surviving change covers read as
                 // they were durable (zeros past the durable end). This is
                 // harsher than a real page cache, which writes back whole
                 // pages (a page holding two writes keeps both or the older
                 // only), but no harsher than what a reader of unsynced data
                 // may assume: nothing about which unsynced bytes survive.
  };
  // Directory changes made since the directory's last sync_dir().
  enum class UnsyncedEntries {
    Drop,  // all undone
    Keep,  // all reached the disk (a journal commit), even though the data of
           // the files they name may not have (the "zero-length file" case)
  };
  UnsyncedData data = UnsyncedData::Drop;
  UnsyncedEntries entries = UnsyncedEntries::Drop;
};

class CrashFileSystem final : public FileSystem {
 public:
  // `seed` drives every random choice (torn-write lengths, torn prefixes, the
  // survivors of an AnySubset power loss).
  explicit CrashFileSystem(std::uint64_t seed = 1);
  ~CrashFileSystem() override;
  CrashFileSystem(const CrashFileSystem&) = delete;
  CrashFileSystem& operator=(const CrashFileSystem&) = delete;

  // Makes the directory `dir` exist, empty if new, durably. Its parent need not
  // exist (directories are not entries of their parents in this model).
  void create_dir(const std::filesystem::path& dir);

  // Mutating calls attempted since construction, whether they succeeded or not.
  std::uint64_t call_count() const;

  // Diagnostics: once enabled, every mutating call is recorded, in order, as
  // "<op> <path>" (op as in FsOp: "write_at", "sync_dir"...), so a test can
  // name its crash points.
  void enable_call_log();
  std::vector<std::string> call_log() const;

  // Arms a crash: the `n`th (1-based) mutating call from now fails and brings
  // the machine down. Replaces any armed crash; n == 0 disarms.
  void crash_after(std::uint64_t n, CrashingCall how = CrashingCall::NotMade);
  // True once an armed crash has brought the machine down (until it comes back).
  bool is_down() const;

  // Power loss: what was durable comes back, as `what` says; the machine is up.
  void simulate_power_loss(PowerLoss what = {});
  // Process crash: the page cache survives whole; the machine is up.
  void simulate_process_crash();

  Result<std::unique_ptr<WritableFile>> create_new(const std::filesystem::path& path) override;
  Result<std::unique_ptr<ReadableFile>> open_readable(const std::filesystem::path& path) override;
  Result<void> rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
  Result<void> remove(const std::filesystem::path& path) override;
  Result<void> sync_file(const std::filesystem::path& path) override;
  Result<void> sync_dir(const std::filesystem::path& dir) override;
  Result<std::vector<std::string>> list_dir(const std::filesystem::path& dir) override;
  // An in-memory lock table; no lock file appears in the directory. A crash
  // or power loss releases every lock (its holder's process is gone).
  Result<std::unique_ptr<FileLock>> lock_file(const std::filesystem::path& path) override;

  struct State;  // shared with the file handles; defined in the .cc

 private:
  std::shared_ptr<State> state_;
};

}  // namespace iqdb::persist::test

#endif  // IQDB_PERSIST_TESTS_SUPPORT_CRASH_FILE_SYSTEM_H_
