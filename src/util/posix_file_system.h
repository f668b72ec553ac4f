// The POSIX FileSystem (posix_file_system.cc), which default_file_system()
// returns.
#ifndef IQDB_PERSIST_SRC_UTIL_POSIX_FILE_SYSTEM_H_
#define IQDB_PERSIST_SRC_UTIL_POSIX_FILE_SYSTEM_H_

#include <memory>

#include "iqdb/persist/file_system.h"

namespace iqdb::persist {

// A new FileSystem over this process's POSIX system calls. Stateless: one
// may serve every thread.
std::shared_ptr<FileSystem> make_posix_file_system();

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_UTIL_POSIX_FILE_SYSTEM_H_
