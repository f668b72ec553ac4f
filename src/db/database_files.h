// The files that make up a database, as a whole: the writer lock that
// guards them, and whether a database is there at all (a snapshot, or log
// segments, at the path).
#ifndef IQDB_PERSIST_SRC_DB_DATABASE_FILES_H_
#define IQDB_PERSIST_SRC_DB_DATABASE_FILES_H_

#include <memory>

#include "iqdb/persist/config.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/file_system.h"

namespace iqdb::persist::detail {

// Takes the writer lock of the database at config.path (the file
// "<snapshot>.lock", see FileSystem::lock_file): one writer per database.
// Errors: Locked, naming the database and the holder; Io (e.g. a read-only
// directory: a writer could not write there anyway).
[[nodiscard]] Result<std::unique_ptr<FileLock>> lock_database(const PersistConfig& config);

// Whether a database (a snapshot, or log segments) exists at config.path.
// Errors: Io when that cannot be told.
[[nodiscard]] Result<bool> database_exists(const PersistConfig& config);

// AlreadyExists, naming what was found, when database_exists(); Io.
[[nodiscard]] Result<void> check_no_database(const PersistConfig& config);

// InvalidConfig when config.path has log segments: a save without the log
// would be overwritten by their replay at the next load with it.
[[nodiscard]] Result<void> check_no_log(const PersistConfig& config);

}  // namespace iqdb::persist::detail

#endif  // IQDB_PERSIST_SRC_DB_DATABASE_FILES_H_
