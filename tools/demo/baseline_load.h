// The demo's baseline: the load that a loader without mmap must do. It reads
// the whole snapshot into memory through the FileSystem seam (pread), then
// rebuilds the index by copying every id and vector out of that buffer into a
// fresh FlatIndex (which, like any owning index, also builds its id map).
// It checks no CRCs, so compare it with a VerifyMode::Skip load.
#ifndef IQDB_PERSIST_TOOLS_DEMO_BASELINE_LOAD_H_
#define IQDB_PERSIST_TOOLS_DEMO_BASELINE_LOAD_H_

#include <filesystem>

#include "flat_index.h"
#include "iqdb/persist/error.h"

namespace iqdb::tools {

struct BaselineLoad {
  examples::FlatIndex index;
  std::uint64_t bytes_read = 0;
  double read_seconds = 0;  // header, then the whole file into one buffer
  double copy_seconds = 0;  // buffer -> FlatIndex
};

// Errors: those of read_file_header() and FileSystem::read_at(), and
// InvalidPayload if the "ids" or "vectors" section does not match the header.
[[nodiscard]] persist::Result<BaselineLoad> load_by_reading(const std::filesystem::path& path);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_DEMO_BASELINE_LOAD_H_
