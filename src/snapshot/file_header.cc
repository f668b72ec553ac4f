#include "iqdb/persist/file_header.h"

#include <algorithm>

#include "iqdb/persist/file_system.h"
#include "snapshot/header_codec.h"

namespace iqdb::persist {

std::uint64_t SectionInfo::chunk_logical_length(std::size_t i) const {
  const std::uint64_t start = std::uint64_t{i} * chunk_size;
  return start >= logical_length ? 0 : std::min(chunk_size, logical_length - start);
}

std::string_view to_string(SectionCompression compression) {
  switch (compression) {
    case SectionCompression::None: return "none";
    case SectionCompression::Zstd: return "zstd";
    case SectionCompression::Lz4: return "lz4";
  }
  return "unknown";
}

const SectionInfo* FileHeader::find_section(std::string_view name) const {
  for (const SectionInfo& section : sections) {
    if (section.name == name) return &section;
  }
  return nullptr;
}

Result<FileHeader> read_file_header(const std::filesystem::path& path,
                                    const std::shared_ptr<FileSystem>& file_system) {
  IQDB_TRY_ASSIGN(auto file, file_system_or_default(file_system).open_readable(path));
  return read_header(*file);
}

}  // namespace iqdb::persist
