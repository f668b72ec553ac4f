// Path helpers shared by the log (wal/) and the database's files (db/).
#ifndef IQDB_PERSIST_SRC_UTIL_FILE_PATHS_H_
#define IQDB_PERSIST_SRC_UTIL_FILE_PATHS_H_

#include <filesystem>

namespace iqdb::persist {

// The directory holding `path` ("." for a bare file name): where temporary
// files and log segments go, and what sync_dir() must sync.
inline std::filesystem::path directory_of(const std::filesystem::path& path) {
  const auto parent = path.parent_path();
  return parent.empty() ? std::filesystem::path(".") : parent;
}

// The writer lock of the database whose snapshot is `path`: "<path>.lock".
inline std::filesystem::path lock_file_path(const std::filesystem::path& path) {
  std::filesystem::path lock = path;
  lock += ".lock";
  return lock;
}

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_UTIL_FILE_PATHS_H_
