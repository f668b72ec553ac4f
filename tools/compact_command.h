// `iqdb-persist compact FILE [--output OUT] [--compression none|zstd|lz4]
// [--level N] [--sections a,b] [--max-ratio R]` (alias `rewrite`): rewrites a
// snapshot with other compression settings (rewrite_snapshot()), in place or
// to OUT, after verifying every byte of it, and prints the sizes before and
// after and each section's old and new compression. It never touches the
// write-ahead log: the rewritten snapshot keeps its log sequence number.
//
// Exit status: as exit_status_for(), except that options the library finds
// out of range (a zstd level, a ratio, a section the file lacks) are a bad
// command line (kExitUsage).
#ifndef IQDB_PERSIST_TOOLS_COMPACT_COMMAND_H_
#define IQDB_PERSIST_TOOLS_COMPACT_COMMAND_H_

#include <filesystem>
#include <string>
#include <vector>

#include "iqdb/persist/compression.h"
#include "iqdb/persist/rewrite.h"

namespace iqdb::tools {

struct CompactOptions {
  std::filesystem::path file;
  std::filesystem::path output;  // empty: rewrite `file` in place
  persist::Compression compression = persist::Compression::zstd();
  std::vector<std::string> sections;  // to compress; empty: every section
  double max_ratio = persist::RewriteOptions().compression_max_ratio;
};

// Returns the exit status; errors are reported on stderr.
int run_compact(const CompactOptions& options);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_COMPACT_COMMAND_H_
