// One writer per database: the writer lock, and whether a database exists
// (see lock_database() in iqdb/persist/detail/snapshot_io.h).
#include <fmt/format.h>

#include "util/file_paths.h"
#include "iqdb/persist/detail/snapshot_io.h"
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
  if (!files.snapshot && files.segments == 0) return boost::outcome_v2::success();
  return fail(
      ErrorKind::AlreadyExists,
      fmt::format("{}: a database already exists here ({}{} log segment(s)); "
                  "open_with() will not replace it: load() it, open() it, or pass "
                  "OpenMode::Overwrite to discard it",
                  config.path.string(), files.snapshot ? "a snapshot and " : "", files.segments));
}

}  // namespace iqdb::persist::detail
