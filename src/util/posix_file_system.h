// The POSIX FileSystem (posix_file_system.cc), which default_file_system()
// returns.
#ifndef IQDB_PERSIST_SRC_UTIL_POSIX_FILE_SYSTEM_H_
#define IQDB_PERSIST_SRC_UTIL_POSIX_FILE_SYSTEM_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <filesystem>
#include <memory>

#include "iqdb/persist/error.h"
#include "iqdb/persist/file_system.h"

namespace iqdb::persist {

// A new FileSystem over this process's POSIX system calls. Stateless: one
// may serve every thread.
std::shared_ptr<FileSystem> make_posix_file_system();

// Opens `path`, which must be a regular file, with open(2) `flags` (and
// `mode` when they create it), and fills `info` from fstat. O_NONBLOCK and
// O_CLOEXEC are added: the open returns at once on a FIFO (which would
// otherwise wait for a writer forever) or a device, and such files are then
// refused. Also used for the files that bypass FileSystem (the control file,
// a shared mapping). Returns the descriptor, which the caller closes.
// Errors: `missing` when it does not exist; Io otherwise, naming the path.
[[nodiscard]] Result<int> open_regular(const std::filesystem::path& path, int flags,
                                       struct stat& info, ErrorKind missing = ErrorKind::Io,
                                       mode_t mode = 0);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_UTIL_POSIX_FILE_SYSTEM_H_
