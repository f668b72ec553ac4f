// `iqdb-persist inspect FILE [--json]`: prints a snapshot's header and section
// table, with each section's compression ratio (logical / stored bytes) and
// chunking, and the total logical bytes against the file size. It reads only
// the prefix and header (read_file_header()): it never maps the file or loads
// the index, so it works for any index type and costs the same for any file
// size.
#ifndef IQDB_PERSIST_TOOLS_INSPECT_COMMAND_H_
#define IQDB_PERSIST_TOOLS_INSPECT_COMMAND_H_

#include <filesystem>

namespace iqdb::tools {

struct InspectOptions {
  std::filesystem::path file;
  bool json = false;  // one JSON object on stdout instead of text
};

// Returns the exit status; errors are reported on stderr.
int run_inspect(const InspectOptions& options);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_INSPECT_COMMAND_H_
