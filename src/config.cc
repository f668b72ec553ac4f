#include "iqdb/persist/config.h"

#include <bit>

#include <fmt/format.h>

#include "snapshot_format.h"

namespace iqdb::persist {

std::string_view to_string(WalRecoveryMode mode) {
  switch (mode) {
    case WalRecoveryMode::TolerateCorruptedTail: return "TolerateCorruptedTail";
    case WalRecoveryMode::AbsoluteConsistency: return "AbsoluteConsistency";
    case WalRecoveryMode::PointInTime: return "PointInTime";
    case WalRecoveryMode::SkipCorruptedRecords: return "SkipCorruptedRecords";
  }
  return "Unknown";
}

Result<void> PersistConfig::validate() const {
  if (path.empty()) return fail(ErrorKind::InvalidConfig, "PersistConfig::path is empty");
  if (path.filename().empty()) {
    return fail(
        ErrorKind::InvalidConfig,
        fmt::format("PersistConfig::path '{}' names a directory, not a file", path.string()));
  }
  if (!std::has_single_bit(section_alignment) || section_alignment < format::kMinSectionAlignment ||
      section_alignment > format::kMaxSectionAlignment) {
    return fail(
        ErrorKind::InvalidConfig,
        fmt::format("{}: section_alignment {} is not a power of two from {} to {}", path.string(),
                    section_alignment, format::kMinSectionAlignment, format::kMaxSectionAlignment));
  }
  if (fsync_policy.kind() == FsyncPolicy::Kind::Periodic && fsync_policy.interval().count() <= 0) {
    return fail(ErrorKind::InvalidConfig,
                fmt::format("{}: FsyncPolicy::periodic interval must be positive, got {} ms",
                            path.string(), fsync_policy.interval().count()));
  }
  if (compression.kind() != Compression::Kind::None) {
    return fail(
        ErrorKind::Unsupported,
        fmt::format("{}: compression {}: compressed snapshots are not available in this "
                    "version of iqdb-persist",
                    path.string(), compression.kind() == Compression::Kind::Zstd ? "zstd" : "lz4"));
  }
  return boost::outcome_v2::success();
}

}  // namespace iqdb::persist
