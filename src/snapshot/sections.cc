#include "iqdb/persist/sections.h"

#include <cstdint>

#include <fmt/format.h>

namespace iqdb::persist {

Result<void> SectionView::check_array(std::size_t element_size, std::size_t element_alignment,
                                      const std::size_t* expected_count) const {
  if (bytes_.size() % element_size != 0) {
    return fail(ErrorKind::InvalidPayload,
                fmt::format("{}: {} bytes is not a whole number of {}-byte elements", context_,
                            bytes_.size(), element_size));
  }
  if (reinterpret_cast<std::uintptr_t>(bytes_.data()) % element_alignment != 0) {
    return fail(ErrorKind::InvalidPayload,
                fmt::format("{}: data is not aligned to {} bytes", context_, element_alignment));
  }
  if (expected_count != nullptr && bytes_.size() / element_size != *expected_count) {
    return fail(ErrorKind::InvalidPayload,
                fmt::format("{}: holds {} elements, expected {}", context_,
                            bytes_.size() / element_size, *expected_count));
  }
  return success();
}

Result<SectionView> SnapshotView::section(std::string_view name) const {
  const SectionInfo* info = header_.find_section(name);
  if (info == nullptr) {
    return fail(ErrorKind::InvalidPayload,
                fmt::format("{}: snapshot has no section '{}'", path_.string(), name));
  }
  const std::string context = fmt::format("{}: section '{}'", path_.string(), name);
  if (info->compression != SectionCompression::None) {
    const auto index = static_cast<std::size_t>(info - header_.sections.data());
    if (index >= decoded_.size() || decoded_[index].size() != info->logical_length) {
      return fail(ErrorKind::InvalidPayload,
                  fmt::format("{} is {}-compressed and this view holds no decoded bytes for it",
                              context, to_string(info->compression)));
    }
    return SectionView(*info, decoded_[index], keep_alive_, context);
  }
  // The header was validated against the file size; this guards views built by hand.
  if (info->offset > file_bytes_.size() ||
      info->stored_length > file_bytes_.size() - info->offset) {
    return fail(ErrorKind::TruncatedPayload,
                fmt::format("{} (offset {}, {} bytes) lies outside the {}-byte mapping", context,
                            info->offset, info->stored_length, file_bytes_.size()));
  }
  const auto bytes = file_bytes_.subspan(static_cast<std::size_t>(info->offset),
                                         static_cast<std::size_t>(info->stored_length));
  return SectionView(*info, bytes, keep_alive_, context);
}

}  // namespace iqdb::persist
