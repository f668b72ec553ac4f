#include "flat_index.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <string>

#include <fmt/format.h>

#include "flat_search.h"

namespace iqdb::examples {
namespace {

using persist::ErrorKind;
using persist::fail;
using persist::Result;
using persist::success;

// Section "id_order": one u64 saying how the "ids" section is ordered.
constexpr std::string_view kIdOrderSection = "id_order";
constexpr std::uint64_t kIdsAscend = 1;

IndexResult<void> refuse(IndexErrc code, std::string message) {
  return IndexError{code, std::move(message)};
}

// Metadata section / payload tail, little-endian:
//   u64 entry_count, then per entry: u64 id, u32 field_count, then per field:
//   u32 key_length, key bytes, u8 tag (0 null, 1 string, 2 int64, 3 double,
//   4 bool), value (string: u32 length + bytes; int64/double: 8 bytes; bool: 1).
enum class ValueTag : std::uint8_t { Null = 0, String = 1, Int = 2, Double = 3, Bool = 4 };

Result<void> write_string(persist::StreamWriter& out, std::string_view text) {
  IQDB_TRY(out.write_value(static_cast<std::uint32_t>(text.size())));
  return out.write(std::as_bytes(std::span(text.data(), text.size())));
}

Result<void> write_value(persist::StreamWriter& out, const MetadataValue& value) {
  if (const auto* text = std::get_if<std::string>(&value)) {
    IQDB_TRY(out.write_value(ValueTag::String));
    return write_string(out, *text);
  }
  if (const auto* number = std::get_if<std::int64_t>(&value)) {
    IQDB_TRY(out.write_value(ValueTag::Int));
    return out.write_value(*number);
  }
  if (const auto* real = std::get_if<double>(&value)) {
    IQDB_TRY(out.write_value(ValueTag::Double));
    return out.write_value(*real);
  }
  if (const auto* flag = std::get_if<bool>(&value)) {
    IQDB_TRY(out.write_value(ValueTag::Bool));
    return out.write_value(static_cast<std::uint8_t>(*flag));
  }
  return out.write_value(ValueTag::Null);
}

Result<void> write_metadata(persist::StreamWriter& out,
                            const std::unordered_map<std::uint64_t, Metadata>& metadata) {
  IQDB_TRY(out.write_value(static_cast<std::uint64_t>(metadata.size())));
  for (const auto& [id, fields] : metadata) {
    IQDB_TRY(out.write_value(id));
    IQDB_TRY(out.write_value(static_cast<std::uint32_t>(fields.size())));
    for (const auto& [key, value] : fields) {
      IQDB_TRY(write_string(out, key));
      IQDB_TRY(write_value(out, value));
    }
  }
  return success();
}

Result<std::string> read_string(persist::StreamReader& in) {
  IQDB_TRY_ASSIGN(auto length, in.read_value<std::uint32_t>());
  IQDB_TRY_ASSIGN(auto bytes, in.read_view(length));
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

Result<MetadataValue> read_value(persist::StreamReader& in, std::string_view context) {
  IQDB_TRY_ASSIGN(auto tag, in.read_value<std::uint8_t>());
  switch (static_cast<ValueTag>(tag)) {
    case ValueTag::Null: return MetadataValue{};
    case ValueTag::String: {
      IQDB_TRY_ASSIGN(auto text, read_string(in));
      return MetadataValue{std::move(text)};
    }
    case ValueTag::Int: {
      IQDB_TRY_ASSIGN(auto number, in.read_value<std::int64_t>());
      return MetadataValue{number};
    }
    case ValueTag::Double: {
      IQDB_TRY_ASSIGN(auto real, in.read_value<double>());
      return MetadataValue{real};
    }
    case ValueTag::Bool: {
      IQDB_TRY_ASSIGN(auto flag, in.read_value<std::uint8_t>());
      if (flag > 1) break;
      return MetadataValue{flag == 1};
    }
  }
  return fail(ErrorKind::InvalidPayload,
              fmt::format("{}: bad metadata value at offset {}", context, in.position() - 1));
}

// Reads what write_metadata() wrote. Counts come from the file, so nothing is
// reserved from them: every element read is bounds-checked by the StreamReader.
Result<std::unordered_map<std::uint64_t, Metadata>> read_metadata(persist::StreamReader& in,
                                                                  std::string_view context) {
  std::unordered_map<std::uint64_t, Metadata> metadata;
  IQDB_TRY_ASSIGN(auto entries, in.read_value<std::uint64_t>());
  for (std::uint64_t e = 0; e < entries; ++e) {
    IQDB_TRY_ASSIGN(auto id, in.read_value<std::uint64_t>());
    IQDB_TRY_ASSIGN(auto field_count, in.read_value<std::uint32_t>());
    Metadata fields;
    for (std::uint32_t f = 0; f < field_count; ++f) {
      IQDB_TRY_ASSIGN(auto key, read_string(in));
      IQDB_TRY_ASSIGN(auto value, read_value(in, context));
      fields.insert_or_assign(std::move(key), std::move(value));
    }
    if (!metadata.emplace(id, std::move(fields)).second) {
      return fail(ErrorKind::InvalidPayload,
                  fmt::format("{}: metadata for id {} appears twice", context, id));
    }
  }
  return metadata;
}

Result<void> check_shape(std::uint64_t dim, std::uint64_t count, std::string_view context) {
  if (dim == 0 || dim > (std::uint64_t{1} << 24)) {
    return fail(ErrorKind::InvalidPayload,
                fmt::format("{}: dimension {} is outside 1..{}", context, dim, 1u << 24));
  }
  if (count > std::numeric_limits<std::size_t>::max() / sizeof(float) / dim) {
    return fail(
        ErrorKind::InvalidPayload,
        fmt::format("{}: {} vectors of dimension {} cannot be addressed", context, count, dim));
  }
  return success();
}

// Whether the snapshot says its ids ascend (section "id_order").
Result<bool> ids_said_to_ascend(const persist::SnapshotView& snapshot) {
  if (!snapshot.has_section(kIdOrderSection)) return false;
  IQDB_TRY_ASSIGN(auto section, snapshot.section(kIdOrderSection));
  IQDB_TRY_ASSIGN(auto order, section.as_span<std::uint64_t>(1));
  if (order[0] != kIdsAscend) {
    return fail(ErrorKind::InvalidPayload, fmt::format("{}: unknown id order {} (expected {})",
                                                       section.context(), order[0], kIdsAscend));
  }
  return true;
}

// The base slots in ascending id order, or an empty vector when the ids
// ascend already (a linear scan). Unless `trusted`, refuses duplicates, and
// ids that do not ascend when the file says they do (`said_to_ascend`).
// Duplicates would have search() return an id twice and lookups find one of
// them only. Never quadratic, whatever the file holds: O(n log n) at worst.
Result<std::vector<std::size_t>> sort_base(std::span<const std::uint64_t> ids, bool said_to_ascend,
                                           bool trusted, std::string_view context) {
  const auto drop = std::adjacent_find(ids.begin(), ids.end(), std::greater_equal<>());
  if (drop == ids.end()) return std::vector<std::size_t>();
  if (said_to_ascend && !trusted && *drop != *(drop + 1)) {
    return fail(ErrorKind::InvalidPayload,
                fmt::format("{}: id {} comes before id {}, though section '{}' says ids ascend",
                            context, *drop, *(drop + 1), kIdOrderSection));
  }
  std::vector<std::size_t> order(ids.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [ids](std::size_t a, std::size_t b) {
    return ids[a] < ids[b] || (ids[a] == ids[b] && a < b);
  });
  if (trusted) return order;
  const auto twice = std::adjacent_find(order.begin(), order.end(),
                                        [ids](auto a, auto b) { return ids[a] == ids[b]; });
  if (twice == order.end()) return order;
  return fail(ErrorKind::InvalidPayload,
              fmt::format("{}: id {} appears twice", context, ids[*twice]));
}

// The splitmix64 finalizer: a bijection that spreads every input bit.
std::uint64_t mix(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A 64-bit hash of a sequence of words and byte strings (for state_digest()).
class Hasher {
 public:
  void add(std::uint64_t word) { state_ = mix(state_ ^ word); }
  void add(std::span<const std::byte> bytes) {
    add(static_cast<std::uint64_t>(bytes.size()));
    std::size_t i = 0;
    for (; i + 8 <= bytes.size(); i += 8) {
      std::uint64_t word;
      std::memcpy(&word, bytes.data() + i, 8);
      add(word);
    }
    std::uint64_t tail = 0;
    if (i < bytes.size()) std::memcpy(&tail, bytes.data() + i, bytes.size() - i);
    add(tail);
  }
  void add(std::string_view text) { add(std::as_bytes(std::span(text.data(), text.size()))); }
  void add(const Metadata& fields) {
    add(static_cast<std::uint64_t>(fields.size()));
    for (const auto& [key, value] : fields) {  // a std::map: in key order
      add(key);
      add(static_cast<std::uint64_t>(value.index()));
      if (const auto* text = std::get_if<std::string>(&value)) add(*text);
      if (const auto* number = std::get_if<std::int64_t>(&value)) {
        add(static_cast<std::uint64_t>(*number));
      }
      if (const auto* real = std::get_if<double>(&value)) add(std::bit_cast<std::uint64_t>(*real));
      if (const auto* flag = std::get_if<bool>(&value)) add(std::uint64_t{*flag});
    }
  }
  std::uint64_t value() const { return state_; }

 private:
  std::uint64_t state_ = 0x9e3779b97f4a7c15ULL;
};

// Heap bytes of a node-based hash table, as libstdc++ lays it out: a bucket
// array, and per element a node holding the value, a next pointer and a hash.
template <class Table>
std::size_t table_bytes(const Table& table) {
  return table.bucket_count() * sizeof(void*) +
         table.size() * (sizeof(typename Table::value_type) + 2 * sizeof(void*));
}

}  // namespace

IndexResult<void> FlatIndex::insert(const VectorId& id, std::span<const float> vector,
                                    const Metadata& metadata) {
  if (!id.is_u64()) {
    return refuse(IndexErrc::InvalidArgument, "the flat index stores integer ids only");
  }
  if (vector.size() != dim_) {
    return refuse(
        IndexErrc::DimensionMismatch,
        fmt::format("vector has {} components, the index has dimension {}", vector.size(), dim_));
  }
  const std::uint64_t key = id.as_u64();
  if (live_base_slot(key) || !delta_row_of_.emplace(key, delta_ids_.size()).second) {
    return refuse(IndexErrc::DuplicateId, fmt::format("id {} is already present", key));
  }
  delta_ids_.push_back(key);
  delta_vectors_.insert(delta_vectors_.end(), vector.begin(), vector.end());
  if (!metadata.empty()) metadata_[key] = metadata;
  return success();
}

IndexResult<void> FlatIndex::remove(const VectorId& id) {
  if (!id.is_u64()) {
    return refuse(IndexErrc::IdNotFound, fmt::format("id {} is absent", id.to_string()));
  }
  const std::uint64_t key = id.as_u64();
  if (const auto found = delta_row_of_.find(key); found != delta_row_of_.end()) {
    // Moves the last row into the freed one, so delta order is not insertion order.
    const std::size_t row = found->second;
    const std::size_t last = delta_ids_.size() - 1;
    if (row != last) {
      delta_ids_[row] = delta_ids_[last];
      std::copy_n(delta_vectors_.begin() + static_cast<std::ptrdiff_t>(last * dim_), dim_,
                  delta_vectors_.begin() + static_cast<std::ptrdiff_t>(row * dim_));
      delta_row_of_[delta_ids_[row]] = row;
    }
    delta_ids_.pop_back();
    delta_vectors_.resize(last * dim_);
    delta_row_of_.erase(found);
  } else if (const auto slot = live_base_slot(key)) {
    removed_.insert(*slot);
  } else {
    return refuse(IndexErrc::IdNotFound, fmt::format("id {} is absent", key));
  }
  metadata_.erase(key);
  return success();
}

void FlatIndex::reserve(std::size_t count) {
  delta_ids_.reserve(count);
  delta_vectors_.reserve(count * dim_);
  delta_row_of_.reserve(count);
}

std::optional<std::size_t> FlatIndex::live_base_slot(std::uint64_t id) const {
  std::size_t slot = 0;
  if (base_order_.empty()) {
    const auto found = std::lower_bound(mapped_ids_.begin(), mapped_ids_.end(), id);
    if (found == mapped_ids_.end() || *found != id) return std::nullopt;
    slot = static_cast<std::size_t>(found - mapped_ids_.begin());
  } else {
    const auto found = std::lower_bound(
        base_order_.begin(), base_order_.end(), id,
        [this](std::size_t at, std::uint64_t wanted) { return mapped_ids_[at] < wanted; });
    if (found == base_order_.end() || mapped_ids_[*found] != id) return std::nullopt;
    slot = *found;
  }
  if (removed_.contains(slot)) return std::nullopt;
  return slot;
}

std::optional<std::span<const float>> FlatIndex::find(std::uint64_t id) const {
  if (const auto found = delta_row_of_.find(id); found != delta_row_of_.end()) {
    return delta_row(found->second);
  }
  if (const auto slot = live_base_slot(id)) return base_row(*slot);
  return std::nullopt;
}

const Metadata* FlatIndex::metadata(std::uint64_t id) const {
  const auto found = metadata_.find(id);
  return found == metadata_.end() ? nullptr : &found->second;
}

std::uint64_t FlatIndex::state_digest() const {
  Hasher shape;
  shape.add(static_cast<std::uint64_t>(dim_));
  shape.add(static_cast<std::uint64_t>(metric_));
  // A wrapping sum of one hash per row: independent of the rows' order.
  std::uint64_t digest = shape.value();
  for_each([&](std::uint64_t id, std::span<const float> vector) {
    Hasher row;
    row.add(id);
    row.add(std::as_bytes(vector));
    if (const Metadata* fields = metadata(id)) row.add(*fields);
    digest += row.value();
  });
  return digest;
}

std::size_t FlatIndex::owned_bytes() const {
  return delta_ids_.capacity() * sizeof(std::uint64_t) + delta_vectors_.capacity() * sizeof(float) +
         base_order_.capacity() * sizeof(std::size_t) + table_bytes(delta_row_of_) +
         table_bytes(removed_);
}

std::vector<SearchHit> FlatIndex::search(std::span<const float> query, std::size_t k) const {
  if (query.size() != dim_ || k == 0) return {};
  const float* q = query.data();
  switch (metric_) {
    case DistanceMetric::Cosine: return search_with(flat_search::Cosine(q, dim_), k);
    case DistanceMetric::DotProduct: return search_with(flat_search::DotProduct{q, dim_}, k);
    case DistanceMetric::Euclidean: return search_with(flat_search::Euclidean{q, dim_}, k);
    case DistanceMetric::Manhattan: return search_with(flat_search::Manhattan{q, dim_}, k);
    case DistanceMetric::Hamming: return search_with(flat_search::Hamming{q, dim_}, k);
  }
  return {};
}

// One pass over the base, then the delta. A row is looked up among the
// tombstones only when its distance would enter the top k.
template <class Kernel>
std::vector<SearchHit> FlatIndex::search_with(const Kernel& distance, std::size_t k) const {
  flat_search::TopK top(k, size());
  const bool any_removed = !removed_.empty();
  const float* rows = mapped_vectors_.data();
  for (std::size_t slot = 0; slot < mapped_ids_.size(); ++slot) {
    const float d = distance(rows + slot * dim_);
    if (d <= top.bound() && !(any_removed && removed_.contains(slot))) {
      top.offer(mapped_ids_[slot], d);
    }
  }
  rows = delta_vectors_.data();
  for (std::size_t row = 0; row < delta_ids_.size(); ++row) {
    const float d = distance(rows + row * dim_);
    if (d <= top.bound()) top.offer(delta_ids_[row], d);
  }
  return std::move(top).take();
}

bool FlatIndex::stored_in_id_order() const {
  if (!removed_.empty()) return false;
  if (delta_ids_.empty()) return base_order_.empty();
  return mapped_ids_.empty() && std::adjacent_find(delta_ids_.begin(), delta_ids_.end(),
                                                   std::greater_equal<>()) == delta_ids_.end();
}

// A merge of the live base rows (in id order through base_order_) and the
// delta rows (sorted here: the only temporary, 8 bytes per delta row).
template <class F>
persist::Result<void> FlatIndex::for_each_ascending(F f) const {
  std::vector<std::size_t> delta_order(delta_ids_.size());
  std::iota(delta_order.begin(), delta_order.end(), std::size_t{0});
  std::sort(delta_order.begin(), delta_order.end(),
            [this](std::size_t a, std::size_t b) { return delta_ids_[a] < delta_ids_[b]; });
  std::size_t position = 0;  // in base id order
  const auto next_base = [&]() -> std::optional<std::size_t> {
    while (position < mapped_ids_.size()) {
      const std::size_t slot = base_order_.empty() ? position : base_order_[position];
      ++position;
      if (removed_.empty() || !removed_.contains(slot)) return slot;
    }
    return std::nullopt;
  };
  std::optional<std::size_t> base = next_base();
  std::size_t next_delta = 0;
  while (base || next_delta < delta_order.size()) {
    if (base && (next_delta == delta_order.size() ||
                 mapped_ids_[*base] < delta_ids_[delta_order[next_delta]])) {
      IQDB_TRY(f(mapped_ids_[*base], base_row(*base)));
      base = next_base();
    } else {
      const std::size_t row = delta_order[next_delta++];
      IQDB_TRY(f(delta_ids_[row], delta_row(row)));
    }
  }
  return success();
}

persist::Result<void> FlatIndex::save_sections(persist::SectionWriter& out) const {
  if (stored_in_id_order()) {
    const bool base = delta_ids_.empty();
    IQDB_TRY(out.add_array<std::uint64_t>(
        "ids", base ? mapped_ids_ : std::span<const std::uint64_t>(delta_ids_)));
    IQDB_TRY(out.add_array<float>("vectors",
                                  base ? mapped_vectors_ : std::span<const float>(delta_vectors_)));
  } else {
    IQDB_TRY(out.add_streamed_section("ids", [this](persist::StreamWriter& writer) {
      return for_each_ascending(
          [&writer](std::uint64_t id, std::span<const float>) { return writer.write_value(id); });
    }));
    IQDB_TRY(out.add_streamed_section("vectors", [this](persist::StreamWriter& writer) {
      return for_each_ascending([&writer](std::uint64_t, std::span<const float> vector) {
        return writer.write_array(vector);
      });
    }));
  }
  IQDB_TRY(out.add_array<std::uint64_t>(kIdOrderSection, std::span(&kIdsAscend, 1)));
  if (metadata_.empty()) return success();
  return out.add_streamed_section("metadata", [this](persist::StreamWriter& writer) {
    return write_metadata(writer, metadata_);
  });
}

persist::Result<FlatIndex> FlatIndex::load_sections(const persist::SnapshotView& snapshot) {
  const persist::FileHeader& header = snapshot.header();
  const std::string context = snapshot.path().string();
  IQDB_TRY(check_shape(header.dim, header.n_vectors, context));
  const auto count = static_cast<std::size_t>(header.n_vectors);
  IQDB_TRY_ASSIGN(auto ids_section, snapshot.section("ids"));
  IQDB_TRY_ASSIGN(auto ids, ids_section.as_span<std::uint64_t>(count));
  IQDB_TRY_ASSIGN(auto vectors_section, snapshot.section("vectors"));
  IQDB_TRY_ASSIGN(auto vectors, vectors_section.as_span<float>(count * header.dim));
  IQDB_TRY_ASSIGN(const bool said_to_ascend, ids_said_to_ascend(snapshot));

  FlatIndex index(header.dim, header.metric);
  if (!said_to_ascend || !snapshot.payload_trusted()) {
    IQDB_TRY_ASSIGN(index.base_order_, sort_base(ids, said_to_ascend, snapshot.payload_trusted(),
                                                 ids_section.context()));
  }
  if (snapshot.has_section("metadata")) {
    IQDB_TRY_ASSIGN(auto metadata_section, snapshot.section("metadata"));
    auto reader = metadata_section.reader();
    IQDB_TRY_ASSIGN(index.metadata_, read_metadata(reader, metadata_section.context()));
    IQDB_TRY(reader.expect_end());
  }
  index.mapped_ids_ = ids;
  index.mapped_vectors_ = vectors;
  index.keep_alive_ = snapshot.keep_alive();
  return index;
}

persist::Result<void> FlatIndex::save_to(persist::StreamWriter& out) const {
  IQDB_TRY(out.write_value(static_cast<std::uint32_t>(dim_)));
  IQDB_TRY(out.write_value(static_cast<std::uint8_t>(metric_)));
  IQDB_TRY(out.write_value(static_cast<std::uint64_t>(size())));
  IQDB_TRY(for_each_ascending(
      [&out](std::uint64_t id, std::span<const float>) { return out.write_value(id); }));
  IQDB_TRY(for_each_ascending(
      [&out](std::uint64_t, std::span<const float> vector) { return out.write_array(vector); }));
  return write_metadata(out, metadata_);
}

persist::Result<FlatIndex> FlatIndex::load_from(persist::StreamReader& in) {
  const std::string context = "flat index payload";
  IQDB_TRY_ASSIGN(auto dim, in.read_value<std::uint32_t>());
  IQDB_TRY_ASSIGN(auto metric_tag, in.read_value<std::uint8_t>());
  IQDB_TRY_ASSIGN(auto count, in.read_value<std::uint64_t>());
  const auto metric = metric_from_tag(metric_tag);
  if (!metric) {
    return fail(
        ErrorKind::InvalidMetric,
        fmt::format("{}: metric tag {} is not a known distance metric", context, metric_tag));
  }
  IQDB_TRY(check_shape(dim, count, context));
  // Check the lengths against what is left before allocating anything.
  const std::uint64_t bytes_per_vector = sizeof(std::uint64_t) + std::uint64_t{dim} * sizeof(float);
  if (count > in.remaining() / bytes_per_vector) {
    return fail(ErrorKind::InvalidPayload,
                fmt::format("{}: {} vectors of dimension {} need more than the {} bytes left",
                            context, count, dim, in.remaining()));
  }
  // Everything goes to the delta: the payload is copied anyway.
  FlatIndex index(dim, *metric);
  index.delta_ids_.resize(static_cast<std::size_t>(count));
  index.delta_vectors_.resize(static_cast<std::size_t>(count) * dim);
  IQDB_TRY(in.read_array(std::span<std::uint64_t>(index.delta_ids_)));
  IQDB_TRY(in.read_array(std::span<float>(index.delta_vectors_)));
  IQDB_TRY_ASSIGN(index.metadata_, read_metadata(in, context));
  index.delta_row_of_.reserve(index.delta_ids_.size());
  for (std::size_t row = 0; row < index.delta_ids_.size(); ++row) {
    if (!index.delta_row_of_.emplace(index.delta_ids_[row], row).second) {
      return fail(ErrorKind::InvalidPayload,
                  fmt::format("{}: id {} appears twice", context, index.delta_ids_[row]));
    }
  }
  return index;
}

}  // namespace iqdb::examples
