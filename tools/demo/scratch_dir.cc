#include "demo/scratch_dir.h"

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>

namespace iqdb::tools {

using persist::ErrorKind;
using persist::fail;
using persist::Result;

Result<ScratchDir> ScratchDir::create_temporary(std::string_view prefix) {
  const char* tmpdir = std::getenv("TMPDIR");
  const std::filesystem::path parent = tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
  std::string pattern = (parent / fmt::format("{}XXXXXX", prefix)).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    return fail(ErrorKind::Io, fmt::format("{}: cannot create a temporary directory: {}", pattern,
                                           std::generic_category().message(errno)));
  }
  return ScratchDir(buffer.data(), true);
}

Result<ScratchDir> ScratchDir::use_existing(const std::filesystem::path& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return fail(ErrorKind::Io,
                fmt::format("{}: cannot create directory: {}", dir.string(), error.message()));
  }
  return ScratchDir(dir, false);
}

ScratchDir::ScratchDir(ScratchDir&& other) noexcept
    : path_(std::move(other.path_)), remove_(other.remove_) {
  other.remove_ = false;
}

ScratchDir::~ScratchDir() {
  if (!remove_) return;
  std::error_code ignored;  // best effort: nothing useful to do about a failure here
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace iqdb::tools
