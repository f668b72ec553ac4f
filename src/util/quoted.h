// Byte strings (ids, metadata keys) shown in messages: quoted, with quotes and
// backslashes escaped and non-printable bytes as \xNN.
#ifndef IQDB_PERSIST_SRC_UTIL_QUOTED_H_
#define IQDB_PERSIST_SRC_UTIL_QUOTED_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace iqdb {

// `bytes` quoted and escaped; beyond `max_shown` bytes it is cut short and
// says so ("... (first 64 of 1000 bytes)").
std::string quote_bytes(std::string_view bytes, std::size_t max_shown = std::string_view::npos);

}  // namespace iqdb

#endif  // IQDB_PERSIST_SRC_UTIL_QUOTED_H_
