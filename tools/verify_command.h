// `iqdb-persist verify FILE [--threads N]`: checks every byte of a snapshot
// (verify_snapshot(): header, section CRCs, zero padding, payload CRC) and
// prints one "OK: ..." line on stdout. On a terminal, files larger than
// kMinBytesWorthShowing get a progress line on stderr while the check runs.
#ifndef IQDB_PERSIST_TOOLS_VERIFY_COMMAND_H_
#define IQDB_PERSIST_TOOLS_VERIFY_COMMAND_H_

#include <filesystem>

namespace iqdb::tools {

struct VerifyCommandOptions {
  std::filesystem::path file;
  unsigned threads = 0;  // 0: one per hardware thread
};

// Returns the exit status; errors (naming the damaged section) go to stderr.
int run_verify(const VerifyCommandOptions& options);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_VERIFY_COMMAND_H_
