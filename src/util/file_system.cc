// The default file system, the "null means default" rule of the options
// that take one, and FileSystem's default status() (see iqdb/persist/file_system.h).
#include "iqdb/persist/file_system.h"

#include "util/posix_file_system.h"

namespace iqdb::persist {

std::shared_ptr<FileSystem> default_file_system() {
  static const std::shared_ptr<FileSystem> file_system = make_posix_file_system();
  return file_system;
}

Result<FileStatus> FileSystem::status(const std::filesystem::path& path) {
  IQDB_TRY_ASSIGN(const auto file, open_readable(path));
  FileStatus status;
  status.size = file->size();
  return status;
}

FileSystem& file_system_or_default(const std::shared_ptr<FileSystem>& file_system) {
  return file_system ? *file_system : *default_file_system();
}

}  // namespace iqdb::persist
