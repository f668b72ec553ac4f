#include "torture/torture_dir.h"

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "output/text_format.h"

namespace iqdb::tools {
namespace {

using persist::ErrorKind;
using persist::fail;
using persist::Result;

constexpr std::string_view kSubdirectory = "iqdb-torture";
constexpr std::string_view kSnapshotName = "torture.iqdb";

bool is_database_file(std::string_view name) {
  if (!name.starts_with(kSnapshotName)) return false;
  const std::string_view suffix = name.substr(kSnapshotName.size());
  return suffix.empty() || suffix == ".lock" || suffix == ".control" ||
         suffix.starts_with(".wal-") || suffix.starts_with(".tmp-");
}

std::string quoted(const std::filesystem::path& path) {
  return fmt::format("'{}'", escape_for_terminal(path.string()));
}

Result<std::vector<std::filesystem::path>> entries_of(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> entries;
  std::error_code error;
  for (std::filesystem::directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    entries.push_back(it->path());
  }
  if (error) {
    return fail(ErrorKind::Io,
                fmt::format("{}: cannot list the directory: {}", quoted(dir), error.message()));
  }
  return entries;
}

Result<void> remove_file(const std::filesystem::path& path) {
  std::error_code error;
  std::filesystem::remove(path, error);
  if (error) {
    return fail(ErrorKind::Io, fmt::format("{}: cannot remove: {}", quoted(path), error.message()));
  }
  return iqdb::persist::success();
}

}  // namespace

Result<std::filesystem::path> prepare_torture_dir(const std::filesystem::path& dir) {
  const std::filesystem::path subdirectory = dir / kSubdirectory;
  std::error_code error;
  std::filesystem::create_directories(subdirectory, error);
  if (error) {
    return fail(ErrorKind::Io, fmt::format("{}: cannot create the directory: {}",
                                           quoted(subdirectory), error.message()));
  }
  IQDB_TRY_ASSIGN(const auto entries, entries_of(subdirectory));
  for (const std::filesystem::path& entry : entries) {
    if (!is_database_file(entry.filename().string())) {
      return fail(
          ErrorKind::AlreadyExists,
          fmt::format("{} holds {}, which is not part of a torture database (the torture "
                      "command keeps its database in that directory and deletes it when "
                      "done): move {} away or choose another --dir",
                      quoted(subdirectory), quoted(entry.filename()), quoted(entry.filename())));
    }
  }
  for (const std::filesystem::path& entry : entries) IQDB_TRY(remove_file(entry));
  return subdirectory / kSnapshotName;
}

Result<void> remove_torture_database(const std::filesystem::path& snapshot) {
  const std::filesystem::path subdirectory = snapshot.parent_path();
  IQDB_TRY_ASSIGN(const auto entries, entries_of(subdirectory));
  for (const std::filesystem::path& entry : entries) {
    if (is_database_file(entry.filename().string())) IQDB_TRY(remove_file(entry));
  }
  return remove_file(subdirectory);
}

}  // namespace iqdb::tools
