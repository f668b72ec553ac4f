// `iqdb-persist publish FILE --name NAME [--poll-ms N] [--seconds N] [--json]`:
// serves the snapshot at FILE from the host's shared memory under NAME
// (SharedPublisher, iqdb/persist/shared_memory.h): decoded once, for any
// number of processes to attach read-only and zero-copy (SharedIndex<I>, or
// `iqdb-persist attach NAME`). It publishes FILE, then follows it: every
// poll interval (100 ms) it publishes FILE again if a checkpoint replaced
// it. Each generation published prints one line: its number and shared
// memory object, the snapshot's LSN, the image's and the file's sizes and
// how long it took; with --json, one JSON object (`generation`, `object`,
// `wal_lsn`, `image_bytes`, `source_bytes`, `seconds`). It stops at SIGINT
// or SIGTERM, or N seconds after the first publication, and then withdraws:
// every object it published is removed (attached processes keep what they
// mapped).
//
// Any index type is served: sections are checked and decoded, never
// rebuilt into an index.
//
// Exit status 0 once withdrawn. An error taking NAME (Locked while another
// publisher runs, naming it) or publishing FILE the first time is printed
// and its status returned, with nothing left published. A later
// publication that fails (a damaged snapshot replaced FILE) is printed and
// does not change the exit status: the previous generation stays current,
// and the failed file is not tried again, only a file that replaces it.
#ifndef IQDB_PERSIST_TOOLS_PUBLISH_COMMAND_H_
#define IQDB_PERSIST_TOOLS_PUBLISH_COMMAND_H_

#include <cstdint>
#include <filesystem>
#include <string>

namespace iqdb::tools {

struct PublishCommandOptions {
  std::filesystem::path file;   // the snapshot to serve and follow
  std::string name;             // the publication's name
  std::uint64_t poll_ms = 100;  // how often FILE is looked at
  std::uint64_t seconds = 0;    // stop this long after the first publication; 0: at a signal only
  bool json = false;            // one JSON object per line instead of text
};

int run_publish(const PublishCommandOptions& options);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_PUBLISH_COMMAND_H_
