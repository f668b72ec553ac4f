// `iqdb-persist wal FILE`: reports on the write-ahead log of snapshot FILE
// without applying it (inspect_wal()): its segments with their LSN ranges and
// any damage, and what a load in each recovery mode would keep, drop or
// refuse. Exit status 0 when a load in the default mode would open the
// database, 1 when it would refuse.
#ifndef IQDB_PERSIST_TOOLS_WAL_COMMAND_H_
#define IQDB_PERSIST_TOOLS_WAL_COMMAND_H_

#include <filesystem>

namespace iqdb::tools {

struct WalCommandOptions {
  std::filesystem::path file;  // the snapshot; its log is "<file>.wal-*"
};

int run_wal(const WalCommandOptions& options);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_WAL_COMMAND_H_
