// ScratchDir: the directory the demo writes its snapshot into. Either a fresh
// private temporary directory (mkdtemp under $TMPDIR, else /tmp) that is
// removed with everything in it when the ScratchDir is destroyed, or a
// directory the user named, which is created if missing and kept.
#ifndef IQDB_PERSIST_TOOLS_DEMO_SCRATCH_DIR_H_
#define IQDB_PERSIST_TOOLS_DEMO_SCRATCH_DIR_H_

#include <filesystem>

#include "iqdb/persist/error.h"

namespace iqdb::tools {

class ScratchDir {
 public:
  // Errors: Io.
  [[nodiscard]] static persist::Result<ScratchDir> create_temporary(std::string_view prefix);
  // Errors: Io (including `dir` existing as something other than a directory).
  [[nodiscard]] static persist::Result<ScratchDir> use_existing(const std::filesystem::path& dir);

  ~ScratchDir();
  ScratchDir(ScratchDir&& other) noexcept;
  ScratchDir& operator=(ScratchDir&&) = delete;
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // True when the directory is removed on destruction.
  bool is_temporary() const { return remove_; }

 private:
  ScratchDir(std::filesystem::path path, bool remove) : path_(std::move(path)), remove_(remove) {}

  std::filesystem::path path_;
  bool remove_;
};

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_DEMO_SCRATCH_DIR_H_
