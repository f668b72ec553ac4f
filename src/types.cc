#include "iqdb/types.h"

#include <fmt/format.h>

namespace iqdb {

std::string_view to_string(DistanceMetric metric) {
  switch (metric) {
    case DistanceMetric::Cosine: return "Cosine";
    case DistanceMetric::DotProduct: return "DotProduct";
    case DistanceMetric::Euclidean: return "Euclidean";
    case DistanceMetric::Manhattan: return "Manhattan";
    case DistanceMetric::Hamming: return "Hamming";
  }
  return "Unknown";
}

std::optional<VectorId> VectorId::from_bytes(std::string bytes) {
  if (bytes.empty()) return std::nullopt;
  return VectorId(std::move(bytes));
}

std::string VectorId::to_string() const {
  if (is_u64()) return fmt::format("{}", as_u64());
  std::string out = "\"";
  for (const char c : as_bytes()) {
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
  return out;
}

}  // namespace iqdb
