#include "wal/wal_segments.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "util/file_paths.h"
#include "wal/wal_format.h"
#include "wal/wal_reader.h"

namespace iqdb::persist {
namespace {

namespace wf = wal_format;

}  // namespace

std::filesystem::path wal_segment_path(const std::filesystem::path& snapshot_path,
                                       std::uint64_t number) {
  std::filesystem::path path = snapshot_path;
  path += fmt::format("{}{:016x}", wf::kSegmentInfix, number);
  return path;
}

Result<std::vector<std::uint64_t>> list_wal_segments(FileSystem& fs,
                                                     const std::filesystem::path& snapshot_path) {
  // Exactly prefix + 16 hex digits: a segment moved aside (".damaged" after
  // the digits) is never listed, so no load replays it and no checkpoint or
  // overwrite removes it.
  auto listed = fs.list_dir(directory_of(snapshot_path));
  // Name the database the caller gave, not just its directory.
  if (!listed) {
    return boost::outcome_v2::failure(listed.error().with_context(
        fmt::format("{}: listing its log segments", snapshot_path.string())));
  }
  const std::vector<std::string>& names = listed.value();
  const std::string prefix = snapshot_path.filename().string() + std::string(wf::kSegmentInfix);
  std::vector<std::uint64_t> numbers;
  for (const std::string& name : names) {
    if (name.size() != prefix.size() + wf::kSegmentDigits || !name.starts_with(prefix)) continue;
    const char* digits = name.data() + prefix.size();
    const char* end = name.data() + name.size();
    if (!std::all_of(digits, end,
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); })) {
      continue;
    }
    std::uint64_t number = 0;
    std::from_chars(digits, end, number, 16);
    numbers.push_back(number);
  }
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

Result<OpenedWalSegment> open_wal_segment(FileSystem& fs, const std::filesystem::path& path,
                                          std::uint64_t number) {
  IQDB_TRY_ASSIGN(auto file, fs.open_readable(path));
  IQDB_TRY_ASSIGN(auto mapping, file->map());
  const auto bytes = mapping->bytes();
  auto scan = scan_wal_segment(bytes, path);
  // Only a segment with a bad header needs this pass (recovery asks whether
  // its creation was cut short); an intact one is read once, by the scan.
  const bool all_zero = !scan && std::all_of(bytes.begin(), bytes.end(),
                                             [](std::byte b) { return b == std::byte{0}; });
  return OpenedWalSegment{
      number, std::move(mapping), {path, bytes.size(), all_zero, std::move(scan)}};
}

Result<std::vector<OpenedWalSegment>> open_wal_segments(FileSystem& fs,
                                                        const std::filesystem::path& snapshot_path,
                                                        std::uint64_t database_id) {
  IQDB_TRY_ASSIGN(auto numbers, list_wal_segments(fs, snapshot_path));
  std::vector<OpenedWalSegment> segments;
  segments.reserve(numbers.size());
  for (const std::uint64_t number : numbers) {
    IQDB_TRY_ASSIGN(auto segment,
                    open_wal_segment(fs, wal_segment_path(snapshot_path, number), number));
    auto& scan = segment.input.scan;
    if (scan && !wf::same_database(database_id, scan.value().database_id)) {
      scan = fail(ErrorKind::InvalidHeader,
                  fmt::format("{}: log segment of database {:016x}, not of this snapshot's "
                              "({:016x}): left from a database that was recreated at this path, "
                              "or copied from another",
                              segment.input.path.string(), scan.value().database_id, database_id));
    }
    segments.push_back(std::move(segment));
  }
  return segments;
}

Result<std::filesystem::path> set_aside_wal_segment(FileSystem& fs,
                                                    const std::filesystem::path& segment) {
  IQDB_TRY_ASSIGN(const auto names, fs.list_dir(directory_of(segment)));
  const std::string base = segment.filename().string() + std::string(wf::kSetAsideSuffix);
  std::string name = base;
  // rename() replaces its target: an earlier load's evidence must survive.
  for (int n = 2; std::find(names.begin(), names.end(), name) != names.end(); ++n) {
    name = fmt::format("{}-{}", base, n);
  }
  std::filesystem::path target = segment;
  target.replace_filename(name);
  IQDB_TRY(fs.rename(segment, target));
  return target;
}

}  // namespace iqdb::persist
