// A database's files as a whole (see database_files.h).
#include "db/database_files.h"

#include <fmt/format.h>

#include "util/file_paths.h"
#include "wal/wal_format.h"
#include "wal/wal_segments.h"

namespace iqdb::persist::detail {
namespace {

struct DatabaseFiles {
  bool snapshot = false;
  std::size_t segments = 0;
};

Result<DatabaseFiles> find_database_files(const PersistConfig& config) {
  FileSystem& fs = file_system_or_default(config.file_system);
  IQDB_TRY_ASSIGN(const auto segments, list_wal_segments(fs, config.path));
  auto snapshot = fs.open_readable(config.path);
  if (!snapshot && snapshot.error().kind() != ErrorKind::NotFound) return snapshot.error();
  return DatabaseFiles{snapshot.has_value(), segments.size()};
}

}  // namespace

Result<std::unique_ptr<FileLock>> lock_database(const PersistConfig& config) {
  auto lock = file_system_or_default(config.file_system).lock_file(lock_file_path(config.path));
  if (lock || lock.error().kind() != ErrorKind::Locked) return lock;
  return fail(ErrorKind::Locked,
              fmt::format("{}: another writer has this database open ({}); one writer per "
                          "database: close that one first, or read the last checkpoint with "
                          "load() and wal_enabled = false",
                          config.path.string(), lock.error().message()));
}

Result<bool> database_exists(const PersistConfig& config) {
  IQDB_TRY_ASSIGN(const DatabaseFiles files, find_database_files(config));
  return files.snapshot || files.segments > 0;
}

Result<void> check_no_database(const PersistConfig& config) {
  IQDB_TRY_ASSIGN(const DatabaseFiles files, find_database_files(config));
  if (!files.snapshot && files.segments == 0) return success();
  return fail(
      ErrorKind::AlreadyExists,
      fmt::format("{}: a database already exists here ({}{} log segment(s)); "
                  "open_with() will not replace it: load() it, open() it, or pass "
                  "OpenMode::Overwrite to discard it",
                  config.path.string(), files.snapshot ? "a snapshot and " : "", files.segments));
}

Result<void> check_no_log(const PersistConfig& config) {
  // Best effort: when the directory cannot be listed, the save that follows
  // reports the problem in its own terms.
  const auto segments = list_wal_segments(file_system_or_default(config.file_system), config.path);
  if (!segments || segments.value().empty()) return success();
  return fail(ErrorKind::InvalidConfig,
              fmt::format("{}: wal_enabled is false, but the database has a write-ahead log ({} "
                          "segment(s)) whose replay would overwrite this save: save with "
                          "wal_enabled = true (to stop using the log, checkpoint with it on, "
                          "then delete the {}{}* files)",
                          config.path.string(), segments.value().size(),
                          config.path.filename().string(), wal_format::kSegmentInfix));
}

}  // namespace iqdb::persist::detail
