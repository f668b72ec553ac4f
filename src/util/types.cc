#include "iqdb/types.h"

#include <fmt/format.h>

#include "util/quoted.h"

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
  return quote_bytes(as_bytes());
}

}  // namespace iqdb
