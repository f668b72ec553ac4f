// The default file system and the "null means default" rule of the options
// that take one (see iqdb/persist/file_system.h).
#include "iqdb/persist/file_system.h"

#include "util/posix_file_system.h"

namespace iqdb::persist {

std::shared_ptr<FileSystem> default_file_system() {
  static const std::shared_ptr<FileSystem> file_system = make_posix_file_system();
  return file_system;
}

FileSystem& file_system_or_default(const std::shared_ptr<FileSystem>& file_system) {
  return file_system ? *file_system : *default_file_system();
}

}  // namespace iqdb::persist
