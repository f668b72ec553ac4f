// Small indexes for the tests, one per Persistable shape. They do only what
// the persistence layer needs (no search), and carry hooks to misbehave on
// purpose: report a wrong size, write trailing bytes, ask for odd alignments.
//
//   StreamMapIndex:    stream persistence only; a map id -> vector written through
//                      StreamWriter and read back through StreamReader (copied on load).
//   SectionArrayIndex: both (section persistence wins); sections "shape"
//                      (streamed), "ids" and "vectors"; a loaded index serves
//                      ids and vectors straight from the mapping and holds its
//                      keep_alive handle.
#ifndef IQDB_PERSIST_TESTS_SUPPORT_MOCK_INDEXES_H_
#define IQDB_PERSIST_TESTS_SUPPORT_MOCK_INDEXES_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "iqdb/index.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/persistable.h"
#include "iqdb/persist/sections.h"
#include "iqdb/persist/stream.h"
#include "iqdb/types.h"

namespace iqdb::persist::test {

// The index-side checks both mocks share.
inline IndexResult<void> check_insert(const VectorId& id, std::span<const float> vector,
                                      std::size_t dim, bool present) {
  if (!id.is_u64()) return IndexError{IndexErrc::InvalidArgument, "byte ids are not stored"};
  if (vector.size() != dim) {
    return IndexError{IndexErrc::DimensionMismatch, "vector has " + std::to_string(vector.size()) +
                                                        " floats, expected " + std::to_string(dim)};
  }
  if (present) return IndexError{IndexErrc::DuplicateId, "id " + id.to_string() + " exists"};
  return success();
}

inline Result<DistanceMetric> metric_from_payload(std::uint8_t tag, std::string_view context) {
  const auto metric = metric_from_tag(tag);
  if (!metric) {
    return fail(ErrorKind::InvalidPayload,
                std::string(context) + ": bad metric tag " + std::to_string(tag));
  }
  return *metric;
}

class StreamMapIndex {
 public:
  static constexpr std::string_view kIndexType = "test-stream-map";

  StreamMapIndex(std::size_t dim, DistanceMetric metric) : dim_(dim), metric_(metric) {}

  IndexResult<void> insert(const VectorId& id, std::span<const float> vector, const Metadata&) {
    const bool present = id.is_u64() && vectors_.contains(id.as_u64());
    if (auto checked = check_insert(id, vector, dim_, present); !checked) return checked;
    vectors_.emplace(id.as_u64(), std::vector<float>(vector.begin(), vector.end()));
    return success();
  }
  IndexResult<void> remove(const VectorId& id) {
    if (!id.is_u64() || vectors_.erase(id.as_u64()) == 0) {
      return IndexError{IndexErrc::IdNotFound, "no id " + id.to_string()};
    }
    return success();
  }
  std::size_t size() const { return vectors_.size() + reported_size_bias_; }
  std::size_t dim() const { return dim_; }
  DistanceMetric metric() const { return metric_; }

  const std::map<std::uint64_t, std::vector<float>>& vectors() const { return vectors_; }

  // Misbehaviour hooks (not persisted): size() over-reports by `bias`; save_to
  // appends `n` bytes the loader does not read.
  void set_reported_size_bias(std::size_t bias) { reported_size_bias_ = bias; }
  void set_trailing_bytes(std::size_t n) { trailing_bytes_ = n; }

  // Payload: u32 dim, u8 metric, u64 count, then count x (u64 id, dim x f32).
  Result<void> save_to(StreamWriter& out) const {
    IQDB_TRY(out.write_value(static_cast<std::uint32_t>(dim_)));
    IQDB_TRY(out.write_value(static_cast<std::uint8_t>(metric_)));
    IQDB_TRY(out.write_value(static_cast<std::uint64_t>(vectors_.size())));
    for (const auto& [id, vector] : vectors_) {
      IQDB_TRY(out.write_value(id));
      IQDB_TRY(out.write_array(std::span<const float>(vector)));
    }
    const std::vector<std::byte> trailing(trailing_bytes_, std::byte{0x5a});
    return out.write(trailing);
  }

  static Result<StreamMapIndex> load_from(StreamReader& in) {
    IQDB_TRY_ASSIGN(const auto dim, in.read_value<std::uint32_t>());
    IQDB_TRY_ASSIGN(const auto tag, in.read_value<std::uint8_t>());
    IQDB_TRY_ASSIGN(const auto metric, metric_from_payload(tag, "payload"));
    IQDB_TRY_ASSIGN(const auto count, in.read_value<std::uint64_t>());
    const std::uint64_t entry_size = 8 + std::uint64_t{dim} * 4;
    if (count > in.remaining() / entry_size) {
      return fail(ErrorKind::InvalidPayload, "payload: " + std::to_string(count) +
                                                 " entries do not fit in " +
                                                 std::to_string(in.remaining()) + " bytes");
    }
    StreamMapIndex index(dim, metric);
    for (std::uint64_t i = 0; i < count; ++i) {
      IQDB_TRY_ASSIGN(const auto id, in.read_value<std::uint64_t>());
      std::vector<float> vector(dim);
      IQDB_TRY(in.read_array(std::span<float>(vector)));
      if (!index.vectors_.emplace(id, std::move(vector)).second) {
        return fail(ErrorKind::InvalidPayload, "payload: duplicate id " + std::to_string(id));
      }
    }
    return index;
  }

 private:
  std::size_t dim_;
  DistanceMetric metric_;
  std::map<std::uint64_t, std::vector<float>> vectors_;
  std::size_t reported_size_bias_ = 0;
  std::size_t trailing_bytes_ = 0;
};

class SectionArrayIndex {
 public:
  static constexpr std::string_view kIndexType = "test-section-array";

  SectionArrayIndex(std::size_t dim, DistanceMetric metric) : dim_(dim), metric_(metric) {}
  // An index of ids 0..n-1 over `vectors` (n * dim floats).
  SectionArrayIndex(std::size_t dim, DistanceMetric metric, std::vector<float> vectors)
      : dim_(dim), metric_(metric), owned_vectors_(std::move(vectors)) {
    owned_ids_.resize(owned_vectors_.size() / dim_);
    for (std::size_t i = 0; i < owned_ids_.size(); ++i) owned_ids_[i] = i;
  }

  IndexResult<void> insert(const VectorId& id, std::span<const float> vector, const Metadata&) {
    const auto all = ids();
    const bool present = id.is_u64() && std::find(all.begin(), all.end(), id.as_u64()) != all.end();
    if (auto checked = check_insert(id, vector, dim_, present); !checked) return checked;
    make_owned();
    owned_ids_.push_back(id.as_u64());
    owned_vectors_.insert(owned_vectors_.end(), vector.begin(), vector.end());
    return success();
  }
  IndexResult<void> remove(const VectorId& id) {
    const auto all = ids();
    const auto it = id.is_u64() ? std::find(all.begin(), all.end(), id.as_u64()) : all.end();
    if (it == all.end()) return IndexError{IndexErrc::IdNotFound, "no id " + id.to_string()};
    const auto slot = static_cast<std::size_t>(it - all.begin());
    make_owned();
    owned_ids_.erase(owned_ids_.begin() + static_cast<std::ptrdiff_t>(slot));
    const auto first = owned_vectors_.begin() + static_cast<std::ptrdiff_t>(slot * dim_);
    owned_vectors_.erase(first, first + static_cast<std::ptrdiff_t>(dim_));
    return success();
  }
  std::size_t size() const { return ids().size() + reported_size_bias_; }
  std::size_t dim() const { return dim_; }
  DistanceMetric metric() const { return metric_; }

  std::span<const std::uint64_t> ids() const { return keep_alive_ ? mapped_ids_ : owned_ids_; }
  std::span<const float> vectors() const {
    return keep_alive_ ? mapped_vectors_ : std::span<const float>(owned_vectors_);
  }
  bool is_mapped() const { return keep_alive_ != nullptr; }
  const std::shared_ptr<const void>& keep_alive() const { return keep_alive_; }

  // Alignment requested for the "vectors" section (0: the config's default).
  void set_vectors_alignment(std::uint64_t alignment) { vectors_alignment_ = alignment; }
  void set_reported_size_bias(std::size_t bias) { reported_size_bias_ = bias; }

  // Section persistence. "shape": u32 dim, u8 metric, u64 count (streamed).
  Result<void> save_sections(SectionWriter& out) const {
    IQDB_TRY(out.add_streamed_section("shape", [this](StreamWriter& writer) -> Result<void> {
      IQDB_TRY(writer.write_value(static_cast<std::uint32_t>(dim_)));
      IQDB_TRY(writer.write_value(static_cast<std::uint8_t>(metric_)));
      return writer.write_value(static_cast<std::uint64_t>(ids().size()));
    }));
    IQDB_TRY(out.add_array<std::uint64_t>("ids", ids()));
    return out.add_array<float>("vectors", vectors(), vectors_alignment_);
  }

  static Result<SectionArrayIndex> load_sections(const SnapshotView& snapshot) {
    IQDB_TRY_ASSIGN(auto shape_section, snapshot.section("shape"));
    StreamReader shape = shape_section.reader();
    IQDB_TRY_ASSIGN(const auto dim, shape.read_value<std::uint32_t>());
    IQDB_TRY_ASSIGN(const auto tag, shape.read_value<std::uint8_t>());
    IQDB_TRY_ASSIGN(const auto metric, metric_from_payload(tag, shape_section.context()));
    IQDB_TRY_ASSIGN(const auto count, shape.read_value<std::uint64_t>());
    IQDB_TRY(shape.expect_end());
    if (dim == 0) return fail(ErrorKind::InvalidPayload, shape_section.context() + ": dim 0");
    IQDB_TRY_ASSIGN(auto ids_section, snapshot.section("ids"));
    IQDB_TRY_ASSIGN(auto vectors_section, snapshot.section("vectors"));
    IQDB_TRY_ASSIGN(auto ids, ids_section.as_span<std::uint64_t>(count));
    // count fits the ids section, so count * dim cannot overflow for any real file.
    IQDB_TRY_ASSIGN(auto vectors, vectors_section.as_span<float>(count * dim));
    SectionArrayIndex index(dim, metric);
    index.keep_alive_ = vectors_section.keep_alive();
    index.mapped_ids_ = ids;
    index.mapped_vectors_ = vectors;
    return index;
  }

  // Stream persistence (unused while section persistence exists; proves it wins).
  Result<void> save_to(StreamWriter&) const {
    return fail(ErrorKind::InvalidArgument, "stream persistence must not be used");
  }
  static Result<SectionArrayIndex> load_from(StreamReader&) {
    return fail(ErrorKind::InvalidArgument, "stream persistence must not be used");
  }

 private:
  void make_owned() {
    if (!keep_alive_) return;
    owned_ids_.assign(mapped_ids_.begin(), mapped_ids_.end());
    owned_vectors_.assign(mapped_vectors_.begin(), mapped_vectors_.end());
    mapped_ids_ = {};
    mapped_vectors_ = {};
    keep_alive_.reset();
  }

  std::size_t dim_;
  DistanceMetric metric_;
  std::shared_ptr<const void> keep_alive_;
  std::span<const std::uint64_t> mapped_ids_;
  std::span<const float> mapped_vectors_;
  std::vector<std::uint64_t> owned_ids_;
  std::vector<float> owned_vectors_;
  std::uint64_t vectors_alignment_ = 0;
  std::size_t reported_size_bias_ = 0;
};

static_assert(Persistable<StreamMapIndex> && StreamPersistable<StreamMapIndex> &&
              !SectionPersistable<StreamMapIndex>);
static_assert(Persistable<SectionArrayIndex> && SectionPersistable<SectionArrayIndex> &&
              StreamPersistable<SectionArrayIndex>);

// `n` deterministic vectors of `dim` floats, row-major.
inline std::vector<float> make_vectors(std::size_t n, std::size_t dim, std::uint32_t seed = 1) {
  std::vector<float> values(n * dim);
  std::uint32_t state = seed * 2654435761u + 7;
  for (float& v : values) {
    state = state * 1664525u + 1013904223u;
    v = static_cast<float>(state >> 8) / static_cast<float>(1u << 24) - 0.5f;
  }
  return values;
}

inline bool same_content(const StreamMapIndex& a, const StreamMapIndex& b) {
  return a.dim() == b.dim() && a.metric() == b.metric() && a.vectors() == b.vectors();
}

inline bool same_content(const SectionArrayIndex& a, const SectionArrayIndex& b) {
  return a.dim() == b.dim() && a.metric() == b.metric() && std::ranges::equal(a.ids(), b.ids()) &&
         std::ranges::equal(a.vectors(), b.vectors());
}

// Small indexes of `n` vectors of `dim` floats with ids 10, 20, 30, ...
template <class I>
I make_index(std::size_t n, std::size_t dim, DistanceMetric metric, std::uint32_t seed = 1) {
  I index(dim, metric);
  const std::vector<float> values = make_vectors(n, dim, seed);
  for (std::size_t i = 0; i < n; ++i) {
    const auto inserted =
        index.insert(VectorId(10 * (i + 1)), std::span(values).subspan(i * dim, dim), {});
    if (!inserted) std::abort();
  }
  return index;
}

}  // namespace iqdb::persist::test

#endif  // IQDB_PERSIST_TESTS_SUPPORT_MOCK_INDEXES_H_
