// `iqdb-persist follow FILE [--seconds N] [--json]`: runs a read-only replica
// of the database at FILE (docs/REPLICATION.md) and prints, once a second,
// how far it got: its LSN and generation, its lag behind the writer, and what
// it did since the last line (records applied, a switch to a newer snapshot,
// why it is waiting). With --json each line is one JSON object. It stops at
// SIGINT or SIGTERM, or after N seconds.
//
// The tool links one index type, the example FlatIndex ("flat"), which is
// what a replica must rebuild: a database of another index type is refused
// with Unsupported, naming the file and the type.
//
// Exit status 0, unless the last refresh before the end failed: then that
// error's status (the error was printed when it happened). An error opening
// the replica (no database: NotFound) is printed and its status returned.
#ifndef IQDB_PERSIST_TOOLS_FOLLOW_COMMAND_H_
#define IQDB_PERSIST_TOOLS_FOLLOW_COMMAND_H_

#include <cstdint>
#include <filesystem>

namespace iqdb::tools {

struct FollowOptions {
  std::filesystem::path file;  // the snapshot; its log is "<file>.wal-*"
  std::uint64_t seconds = 0;   // stop after this many lines; 0: at a signal only
  bool json = false;           // one JSON object per line instead of text
};

int run_follow(const FollowOptions& options);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_FOLLOW_COMMAND_H_
