// The rule for a section's name, shared by everything that takes one: an
// index adding a section (SnapshotWriter), a config naming sections
// (PersistConfig::validate()) and a header read from a file (header_codec):
// 1 to kMaxSectionNameLength bytes (iqdb/persist/file_header.h), any bytes.
#ifndef IQDB_PERSIST_SRC_SNAPSHOT_SECTION_NAME_H_
#define IQDB_PERSIST_SRC_SNAPSHOT_SECTION_NAME_H_

#include <string_view>

#include "iqdb/persist/error.h"

namespace iqdb::persist {

// Ok when `name` follows the rule. Otherwise an error of `kind` (each caller
// its own: InvalidArgument, InvalidConfig, InvalidHeader) reading
// "<context>: <subject> of <n> bytes (expected 1..<kMaxSectionNameLength>)",
// e.g. "/data/x.iqdb: section name of 0 bytes (expected 1..255)".
[[nodiscard]] Result<void> check_section_name(std::string_view name, ErrorKind kind,
                                              std::string_view context, std::string_view subject);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_SNAPSHOT_SECTION_NAME_H_
