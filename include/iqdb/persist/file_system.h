// FileSystem: the one seam through which iqdb-persist touches the operating
// system. Saves, loads and tools use nothing else, so a test can substitute an
// implementation that fails the Nth write, fsync or rename and check that no
// failure loses data (tests/support/fault_injection_file_system.h does exactly that).
//
// Errors: every method returns ErrorKind::Io with the path and the OS reason,
// except NotFound for what does not exist (open_readable() of a missing file,
// create_new() in a missing directory, list_dir() of a missing directory),
// and lock_file() on a file locked elsewhere, which returns Locked. Nothing
// blocks on a special file: opening anything that is not a regular file (a
// FIFO, a device, a directory) is refused with Io at once.
//
// Thread-safety: default_file_system() may be used from any thread. A
// WritableFile or ReadableFile must not be used by two threads at once, except
// that ReadableFile::read_at() may be called concurrently, and
// WritableFile::sync() may run concurrently with one write_at() and with other
// sync() calls (a log's group commit syncs while the next record is written).
#ifndef IQDB_PERSIST_FILE_SYSTEM_H_
#define IQDB_PERSIST_FILE_SYSTEM_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "iqdb/persist/error.h"

namespace iqdb::persist {

// A read-only view of a whole file that stays valid while any shared_ptr to it
// lives. Mapped PROT_READ: a stray write through a cast crashes instead of
// silently corrupting the file.
class MappedRegion {
 public:
  virtual ~MappedRegion() = default;
  virtual std::span<const std::byte> bytes() const = 0;
};

// A file being written. Writes are positional so that the header can be filled
// in after the payload.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes all of `data` at `offset` (short writes are retried internally).
  virtual Result<void> write_at(std::uint64_t offset, std::span<const std::byte> data) = 0;
  // Sets the file's length; bytes past the old end read as zero.
  virtual Result<void> truncate(std::uint64_t size) = 0;
  // Forces the file's data and length to stable storage (fdatasync).
  virtual Result<void> sync() = 0;
  // Closes the descriptor, reporting the OS's deferred write errors. The
  // destructor closes silently if close() was not called.
  virtual Result<void> close() = 0;
  virtual const std::filesystem::path& path() const = 0;
};

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  virtual std::uint64_t size() const = 0;
  // Reads exactly out.size() bytes at `offset`. Reading past the end is Io.
  virtual Result<void> read_at(std::uint64_t offset, std::span<std::byte> out) const = 0;
  // Maps the whole file read-only. The mapping outlives this object.
  virtual Result<std::shared_ptr<const MappedRegion>> map() const = 0;
  virtual const std::filesystem::path& path() const = 0;
};

// An exclusive lock taken by FileSystem::lock_file(), held until this object
// is destroyed (or its process ends).
class FileLock {
 public:
  virtual ~FileLock() = default;
  virtual const std::filesystem::path& path() const = 0;
};

// What FileSystem::status() tells of a file: enough to see, without opening
// it, that it grew or was replaced (a rename over it makes a new identity).
struct FileStatus {
  std::uint64_t size = 0;
  std::uint64_t device = 0;  // with `inode`, the file's identity; 0 when unknown
  std::uint64_t inode = 0;
  std::int64_t modified_ns = 0;  // modification time, ns since the Unix epoch; 0 when unknown

  bool same_file(const FileStatus& other) const {
    return device == other.device && inode == other.inode && modified_ns == other.modified_ns;
  }
  friend bool operator==(const FileStatus&, const FileStatus&) = default;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Creates `path`, which must not exist (O_EXCL), for writing. NotFound if
  // its directory does not exist; Io if the file exists. The file is
  // read-only (mode 0444) from the start: only the returned object writes
  // it, and once complete it is never written again (processes map it), so
  // ordinary tools refuse to write into it.
  virtual Result<std::unique_ptr<WritableFile>> create_new(const std::filesystem::path& path) = 0;
  // Opens an existing file for reading. NotFound if it does not exist.
  virtual Result<std::unique_ptr<ReadableFile>> open_readable(
      const std::filesystem::path& path) = 0;
  // Atomically replaces `to` with `from` (rename(2)).
  virtual Result<void> rename(const std::filesystem::path& from,
                              const std::filesystem::path& to) = 0;
  virtual Result<void> remove(const std::filesystem::path& path) = 0;
  // Makes the data of the existing file `path` durable (fdatasync), e.g. a
  // log segment written by a process that has since died.
  virtual Result<void> sync_file(const std::filesystem::path& path) = 0;
  // Makes the directory's entries (creations, renames) durable.
  virtual Result<void> sync_dir(const std::filesystem::path& dir) = 0;
  // The names (not paths) of the entries of `dir`, excluding "." and "..".
  // NotFound if `dir` does not exist.
  virtual Result<std::vector<std::string>> list_dir(const std::filesystem::path& dir) = 0;
  // Takes an exclusive lock on the file `path`, creating it (empty) if it is
  // missing, without waiting. The file is never removed, so that every locker
  // locks the same file. The lock belongs to the lock object, not to the
  // process: a second lock_file() of the same path conflicts even in the same
  // process, and closing other descriptors of the file does not release it
  // (POSIX's OFD locks, fcntl F_OFD_SETLK). The OS's implementation records
  // the holder's pid and host in the file, for the next locker's error
  // message only: liveness is the lock itself, released by the kernel when
  // the holder dies. Errors: Locked (naming the file and the holder it
  // records); NotFound when its directory does not exist; Io.
  virtual Result<std::unique_ptr<FileLock>> lock_file(const std::filesystem::path& path) = 0;
  // The size and identity of the regular file `path`, without opening it:
  // the one call a replica's idle check makes per file (stat(2)). NotFound if
  // it does not exist; Io if it is not a regular file. The default opens the
  // file and knows its size only (identity and time 0): file systems that can
  // tell more override it.
  virtual Result<FileStatus> status(const std::filesystem::path& path);
};

// The operating system's file system (POSIX: open, pwrite, fdatasync, mmap...).
std::shared_ptr<FileSystem> default_file_system();

// Every options struct and function of this library that takes a file system
// takes a std::shared_ptr<FileSystem> (PersistConfig::file_system,
// VerifyOptions::file_system, read_file_header(), ...), null meaning
// default_file_system(). This resolves one: the file system given, or the
// default when it is null. The reference stays valid while `file_system`
// lives (the default one lives as long as the process).
FileSystem& file_system_or_default(const std::shared_ptr<FileSystem>& file_system);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_FILE_SYSTEM_H_
