#include "iqdb/persist/config.h"

#include <bit>

#include <fmt/format.h>

#include "snapshot/section_codec.h"
#include "snapshot/section_name.h"
#include "snapshot/snapshot_format.h"

namespace iqdb::persist {

namespace {

Result<void> validate_compression(const PersistConfig& config) {
  const std::string path = config.path.string();
  const SectionCompression codec = section_compression(config.compression);
  IQDB_TRY(check_codec_available(codec, path));
  if (codec == SectionCompression::Zstd)
    IQDB_TRY(check_zstd_level(config.compression.level(), path));
  if (!(config.compression_max_ratio > 0 && config.compression_max_ratio <= 1)) {
    return fail(ErrorKind::InvalidConfig,
                fmt::format("{}: compression_max_ratio {} is outside (0, 1]", path,
                            config.compression_max_ratio));
  }
  for (const auto& [name, mode] : config.section_warm_up) {
    IQDB_TRY(check_section_name(name, ErrorKind::InvalidConfig, path,
                                "section_warm_up names a section"));
  }
  for (const std::string& name : config.compressed_sections) {
    IQDB_TRY(check_section_name(name, ErrorKind::InvalidConfig, path,
                                "compressed_sections names a section"));
  }
  return success();
}

}  // namespace

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
  IQDB_TRY(validate_compression(*this));
  return success();
}

}  // namespace iqdb::persist
