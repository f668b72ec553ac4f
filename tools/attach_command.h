// `iqdb-persist attach NAME [--verify] [--json] [--hold SECONDS]`: attaches
// the current generation of the shared-memory publication NAME
// (SharedSnapshot, iqdb/persist/shared_memory.h), as a serving process
// would, and prints what it attached: the descriptor (object, generation,
// LSN, content hash, image and segment sizes, the source file, when and by
// which process it was published, whether a newer generation is published
// already), the index's facts and the image's section table (the columns of
// `inspect`; every section is raw). With --json, one JSON object.
//
// An attach validates the head, the descriptor and the image's header;
// --verify (VerifyMode::Eager) also checks every section's CRC-32, which
// reads every page of the image. --hold keeps the mapping for SECONDS after
// printing (a SIGINT or SIGTERM ends it early), for measuring what
// attachers cost in memory.
//
// Exit status 0, or the error's: NotFound (exit 3) when nothing is published
// under NAME; 1 for a damaged or foreign object, named in the message.
#ifndef IQDB_PERSIST_TOOLS_ATTACH_COMMAND_H_
#define IQDB_PERSIST_TOOLS_ATTACH_COMMAND_H_

#include <cstdint>
#include <string>

namespace iqdb::tools {

struct AttachCommandOptions {
  std::string name;        // the publication
  bool verify = false;     // check every section's CRC-32 before printing
  bool json = false;       // one JSON object on stdout instead of text
  std::uint64_t hold = 0;  // seconds to keep the mapping after printing
};

int run_attach(const AttachCommandOptions& options);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_ATTACH_COMMAND_H_
