#include "flat_index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>

#include <fmt/format.h>

namespace iqdb::examples {
namespace {

using persist::ErrorKind;
using persist::fail;
using persist::Result;
using persist::success;

IndexResult<void> refuse(IndexErrc code, std::string message) {
  return IndexError{code, std::move(message)};
}

float distance(DistanceMetric metric, std::span<const float> a, std::span<const float> b) {
  float sum = 0;
  switch (metric) {
    case DistanceMetric::Cosine: {
      float dot = 0, norm_a = 0, norm_b = 0;
      for (std::size_t i = 0; i < a.size(); ++i) {
        dot += a[i] * b[i];
        norm_a += a[i] * a[i];
        norm_b += b[i] * b[i];
      }
      const float denominator = std::sqrt(norm_a) * std::sqrt(norm_b);
      return denominator == 0 ? 1.0f : 1.0f - dot / denominator;
    }
    case DistanceMetric::DotProduct:
      for (std::size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
      return -sum;
    case DistanceMetric::Euclidean:
      for (std::size_t i = 0; i < a.size(); ++i) sum += (a[i] - b[i]) * (a[i] - b[i]);
      return sum;
    case DistanceMetric::Manhattan:
      for (std::size_t i = 0; i < a.size(); ++i) sum += std::abs(a[i] - b[i]);
      return sum;
    case DistanceMetric::Hamming:  // over the sign bits of the components
      for (std::size_t i = 0; i < a.size(); ++i) sum += (a[i] > 0) != (b[i] > 0) ? 1.0f : 0.0f;
      return sum;
  }
  return std::numeric_limits<float>::infinity();
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

// Duplicate ids would have search() return an id twice and the first
// mutation lose track of slots. Linear when the ids ascend (as when inserted
// in order), else O(n log n) on a sorted copy: never quadratic, whatever the
// file holds.
Result<void> check_distinct_ids(std::span<const std::uint64_t> ids, std::string_view context) {
  if (std::adjacent_find(ids.begin(), ids.end(), std::greater_equal<>()) == ids.end()) {
    return success();
  }
  std::vector<std::uint64_t> sorted(ids.begin(), ids.end());
  std::sort(sorted.begin(), sorted.end());
  const auto twice = std::adjacent_find(sorted.begin(), sorted.end());
  if (twice == sorted.end()) return success();
  return fail(ErrorKind::InvalidPayload, fmt::format("{}: id {} appears twice", context, *twice));
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
  make_mutable();
  const std::uint64_t key = id.as_u64();
  if (!slot_of_.emplace(key, owned_ids_.size()).second) {
    return refuse(IndexErrc::DuplicateId, fmt::format("id {} is already present", key));
  }
  owned_ids_.push_back(key);
  owned_vectors_.insert(owned_vectors_.end(), vector.begin(), vector.end());
  if (!metadata.empty()) metadata_[key] = metadata;
  return success();
}

IndexResult<void> FlatIndex::remove(const VectorId& id) {
  if (!id.is_u64()) {
    return refuse(IndexErrc::IdNotFound, fmt::format("id {} is absent", id.to_string()));
  }
  make_mutable();
  const auto found = slot_of_.find(id.as_u64());
  if (found == slot_of_.end()) {
    return refuse(IndexErrc::IdNotFound, fmt::format("id {} is absent", id.as_u64()));
  }
  const std::size_t slot = found->second;
  const std::size_t last = owned_ids_.size() - 1;
  if (slot != last) {
    owned_ids_[slot] = owned_ids_[last];
    std::copy_n(owned_vectors_.begin() + static_cast<std::ptrdiff_t>(last * dim_), dim_,
                owned_vectors_.begin() + static_cast<std::ptrdiff_t>(slot * dim_));
    slot_of_[owned_ids_[slot]] = slot;
  }
  owned_ids_.pop_back();
  owned_vectors_.resize(last * dim_);
  slot_of_.erase(found);
  metadata_.erase(id.as_u64());
  return success();
}

void FlatIndex::reserve(std::size_t count) {
  make_mutable();
  owned_ids_.reserve(count);
  owned_vectors_.reserve(count * dim_);
  slot_of_.reserve(count);
}

void FlatIndex::make_mutable() {
  if (!is_mapped()) return;
  owned_ids_.assign(mapped_ids_.begin(), mapped_ids_.end());
  owned_vectors_.assign(mapped_vectors_.begin(), mapped_vectors_.end());
  slot_of_.clear();
  slot_of_.reserve(owned_ids_.size());
  for (std::size_t slot = 0; slot < owned_ids_.size(); ++slot) {
    slot_of_.insert_or_assign(owned_ids_[slot], slot);
  }
  keep_alive_.reset();
  mapped_ids_ = {};
  mapped_vectors_ = {};
}

std::vector<SearchHit> FlatIndex::search(std::span<const float> query, std::size_t k) const {
  if (query.size() != dim_ || k == 0) return {};
  const auto all_ids = ids();
  const auto all_vectors = vectors();
  std::vector<SearchHit> hits;
  hits.reserve(all_ids.size());
  for (std::size_t slot = 0; slot < all_ids.size(); ++slot) {
    hits.push_back(
        {all_ids[slot], distance(metric_, query, all_vectors.subspan(slot * dim_, dim_))});
  }
  const auto nearer = [](const SearchHit& a, const SearchHit& b) {
    return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
  };
  const std::size_t keep = std::min(k, hits.size());
  std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(keep), hits.end(),
                    nearer);
  hits.resize(keep);
  return hits;
}

const Metadata* FlatIndex::metadata(std::uint64_t id) const {
  const auto found = metadata_.find(id);
  return found == metadata_.end() ? nullptr : &found->second;
}

persist::Result<void> FlatIndex::save_sections(persist::SectionWriter& out) const {
  IQDB_TRY(out.add_array<std::uint64_t>("ids", ids()));
  IQDB_TRY(out.add_array<float>("vectors", vectors()));
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
  if (!snapshot.payload_trusted()) IQDB_TRY(check_distinct_ids(ids, ids_section.context()));
  IQDB_TRY_ASSIGN(auto vectors_section, snapshot.section("vectors"));
  IQDB_TRY_ASSIGN(auto vectors, vectors_section.as_span<float>(count * header.dim));

  FlatIndex index(header.dim, header.metric);
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
  IQDB_TRY(out.write_array(ids()));
  IQDB_TRY(out.write_array(vectors()));
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
  FlatIndex index(dim, *metric);
  index.owned_ids_.resize(static_cast<std::size_t>(count));
  index.owned_vectors_.resize(static_cast<std::size_t>(count) * dim);
  IQDB_TRY(in.read_array(std::span<std::uint64_t>(index.owned_ids_)));
  IQDB_TRY(in.read_array(std::span<float>(index.owned_vectors_)));
  IQDB_TRY_ASSIGN(index.metadata_, read_metadata(in, context));
  for (std::size_t slot = 0; slot < index.owned_ids_.size(); ++slot) {
    if (!index.slot_of_.emplace(index.owned_ids_[slot], slot).second) {
      return fail(ErrorKind::InvalidPayload,
                  fmt::format("{}: id {} appears twice", context, index.owned_ids_[slot]));
    }
  }
  return index;
}

}  // namespace iqdb::examples
