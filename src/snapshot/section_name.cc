#include "snapshot/section_name.h"

#include <fmt/format.h>

#include "iqdb/persist/file_header.h"

namespace iqdb::persist {

Result<void> check_section_name(std::string_view name, ErrorKind kind, std::string_view context,
                                std::string_view subject) {
  if (!name.empty() && name.size() <= kMaxSectionNameLength) return success();
  return fail(kind, fmt::format("{}: {} of {} bytes (expected 1..{})", context, subject,
                                name.size(), kMaxSectionNameLength));
}

}  // namespace iqdb::persist
