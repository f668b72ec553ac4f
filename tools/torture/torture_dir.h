// Where `iqdb-persist torture` keeps its database: the snapshot
// "<DIR>/iqdb-torture/torture.iqdb" and, beside it, the files the library
// names after it (its log segments "torture.iqdb.wal-*" and the temporary
// files of saves "torture.iqdb.tmp-*"). The subdirectory is the tool's own:
// it refuses to run when the subdirectory holds anything else, and removes
// only files named after the snapshot, so a mistyped --dir never costs a file.
#ifndef IQDB_PERSIST_TOOLS_TORTURE_TORTURE_DIR_H_
#define IQDB_PERSIST_TOOLS_TORTURE_TORTURE_DIR_H_

#include <filesystem>

#include "iqdb/persist/error.h"

namespace iqdb::tools {

// Creates `dir` and its subdirectory if missing and removes what a previous
// run left there. Returns the snapshot path.
// Errors: AlreadyExists naming the first file that is not the database's;
// Io when a directory cannot be created or read or a file removed.
[[nodiscard]] persist::Result<std::filesystem::path> prepare_torture_dir(
    const std::filesystem::path& dir);

// Removes the database's files and then its subdirectory, which must be empty
// by then. Errors: Io, naming the file or directory.
[[nodiscard]] persist::Result<void> remove_torture_database(const std::filesystem::path& snapshot);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_TORTURE_TORTURE_DIR_H_
