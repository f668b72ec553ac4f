// Vocabulary types shared by iQDB indexes and the persistence layer, and
// IndexError, how an index refuses a mutation (see iqdb/index.h).
//
// DistanceMetric's numeric values are on-disk tags (docs/FORMAT.md): never
// renumber them. VectorId is either a 64-bit integer or a non-empty byte
// string; Metadata is a small string-keyed map of scalar values.
//
// All types here are plain values: copyable, no shared state, safe to use from
// any thread as long as one object is not mutated concurrently.
#ifndef IQDB_TYPES_H_
#define IQDB_TYPES_H_

#include <boost/outcome/result.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace iqdb {

// How two vectors are compared. The values are stable on-disk tags.
enum class DistanceMetric : std::uint8_t {
  Cosine = 0,
  DotProduct = 1,
  Euclidean = 2,
  Manhattan = 3,
  Hamming = 4,
};

// Returns the metric with on-disk tag `tag`, or nullopt for an unknown tag.
constexpr std::optional<DistanceMetric> metric_from_tag(std::uint8_t tag) {
  if (tag > static_cast<std::uint8_t>(DistanceMetric::Hamming)) return std::nullopt;
  return static_cast<DistanceMetric>(tag);
}

// The metric's name as written in the API ("Cosine", "DotProduct", ...).
std::string_view to_string(DistanceMetric metric);

// The identity of a stored vector: a u64 or a non-empty byte string.
class VectorId {
 public:
  // NOLINTNEXTLINE(google-explicit-constructor): ids are written as plain numbers.
  constexpr VectorId(std::uint64_t id) : value_(id) {}

  // Returns nullopt for an empty string: byte ids must be non-empty.
  static std::optional<VectorId> from_bytes(std::string bytes);

  bool is_u64() const { return std::holds_alternative<std::uint64_t>(value_); }
  // Precondition: is_u64().
  std::uint64_t as_u64() const { return std::get<std::uint64_t>(value_); }
  // Precondition: !is_u64().
  const std::string& as_bytes() const { return std::get<std::string>(value_); }

  // Human-readable form: the number, or the bytes quoted (non-printable bytes escaped).
  std::string to_string() const;

  friend bool operator==(const VectorId&, const VectorId&) = default;
  friend auto operator<=>(const VectorId&, const VectorId&) = default;

 private:
  explicit VectorId(std::string bytes) : value_(std::move(bytes)) {}
  std::variant<std::uint64_t, std::string> value_;
};

// A metadata value: null, string, integer, floating point or boolean.
using MetadataValue = std::variant<std::monostate, std::string, std::int64_t, double, bool>;

// Per-vector metadata: an ordered string -> value map.
using Metadata = std::map<std::string, MetadataValue, std::less<>>;

// Why an index refused a mutation.
enum class IndexErrc {
  DuplicateId,        // insert of an id that is already present
  IdNotFound,         // remove of an id that is absent
  DimensionMismatch,  // vector length differs from dim()
  InvalidArgument,    // any other refusal (e.g. an id kind the index does not store)
};

// An index's refusal: a code to branch on and a message for people.
struct IndexError {
  IndexErrc code = IndexErrc::InvalidArgument;
  std::string message;
};

template <class T>
using IndexResult = boost::outcome_v2::result<T, IndexError, boost::outcome_v2::policy::terminate>;

}  // namespace iqdb

template <>
struct std::hash<iqdb::VectorId> {
  std::size_t operator()(const iqdb::VectorId& id) const noexcept {
    return id.is_u64() ? std::hash<std::uint64_t>{}(id.as_u64())
                       : std::hash<std::string>{}(id.as_bytes());
  }
};

#endif  // IQDB_TYPES_H_
