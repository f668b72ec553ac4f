#include "util/quoted.h"

#include <fmt/format.h>

namespace iqdb {

std::string quote_bytes(std::string_view bytes, std::size_t max_shown) {
  std::string out = "\"";
  for (const char c : bytes.substr(0, max_shown)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte == '"' || byte == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte >= 0x7f) {
      out += fmt::format("\\x{:02x}", byte);
    } else {
      out += c;
    }
  }
  out += '"';
  if (bytes.size() > max_shown) {
    out += fmt::format(" (first {} of {} bytes)", max_shown, bytes.size());
  }
  return out;
}

}  // namespace iqdb
