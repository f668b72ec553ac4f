// The library's own version, recorded in every snapshot it writes.
#ifndef IQDB_PERSIST_VERSION_H_
#define IQDB_PERSIST_VERSION_H_

#include <string_view>

namespace iqdb::persist {

inline constexpr std::string_view kVersion = "0.1.0";
// What snapshots record as their writer: "iqdb-persist <kVersion>".
inline constexpr std::string_view kWriterVersion = "iqdb-persist 0.1.0";

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_VERSION_H_
