// FlatIndex: a brute-force vector index that implements both ways of being
// iqdb::persist::Persistable: stream and section persistence. It is the
// example the demo and the benchmarks use; the library itself never names it.
//
//   FlatIndex index(128, iqdb::DistanceMetric::Cosine);
//   index.insert(7, vector, {});
//   auto hits = index.search(query, 10);   // nearest first
//
// Persistence:
//   section persistence (zero-copy): sections "ids" (u64 per vector),
//     "vectors" (dim float32 per vector, row-major, in id order) and, when any
//     vector has metadata, "metadata" (streamed, see flat_index.cc). A loaded
//     index serves ids and vectors straight from the read-only mapping: the
//     vectors are never read by a load. With VerifyMode::Eager the ids are,
//     once, to refuse duplicates: a linear scan when they ascend (ids inserted
//     in increasing order), else a sort of a copy (O(n log n) time, 8 bytes of
//     memory per vector while it runs). With Skip or Background (the payload
//     trusted, SnapshotView::payload_trusted()) they are not, so that such a
//     load costs the same whatever the file's size: a file whose CRCs match
//     but whose ids repeat (not one this library wrote) is then served as is.
//   stream persistence: the same data as one payload (copied on load).
//
// Mutation after a zero-copy load copies the mapped arrays into owned memory
// first (copy-on-write) and builds the id -> slot map, so the first insert or
// remove after a load costs O(n); later ones are O(1) (remove moves the last
// vector into the freed slot, so slot order is not insertion order).
//
// Ids are u64 (VectorId::from_bytes ids are refused with InvalidArgument).
// Thread-safety: const methods may run concurrently; mutation needs exclusive
// access.
#ifndef IQDB_EXAMPLES_FLAT_INDEX_H_
#define IQDB_EXAMPLES_FLAT_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "iqdb/index.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/sections.h"
#include "iqdb/persist/stream.h"
#include "iqdb/types.h"

namespace iqdb::examples {

struct SearchHit {
  std::uint64_t id = 0;
  float distance = 0;  // smaller is nearer, for every metric
};

class FlatIndex {
 public:
  static constexpr std::string_view kIndexType = "flat";

  // Precondition: dim >= 1.
  FlatIndex(std::size_t dim, DistanceMetric metric) : dim_(dim), metric_(metric) {}

  // Index concept.
  IndexResult<void> insert(const VectorId& id, std::span<const float> vector,
                           const Metadata& metadata);
  IndexResult<void> remove(const VectorId& id);
  std::size_t size() const { return ids().size(); }
  std::size_t dim() const { return dim_; }
  DistanceMetric metric() const { return metric_; }

  // Makes room for `count` vectors in owned memory, so that many inserts do
  // not reallocate.
  void reserve(std::size_t count);

  // The k nearest vectors to `query` (dim() floats), nearest first. An empty
  // result if query.size() != dim().
  std::vector<SearchHit> search(std::span<const float> query, std::size_t k) const;

  // Ids and vectors in slot order; vectors() holds dim() floats per id.
  std::span<const std::uint64_t> ids() const { return is_mapped() ? mapped_ids_ : owned_ids_; }
  std::span<const float> vectors() const {
    return is_mapped() ? mapped_vectors_ : std::span<const float>(owned_vectors_);
  }
  // The metadata stored with `id`, or nullptr.
  const Metadata* metadata(std::uint64_t id) const;
  // True while ids and vectors are served from a snapshot mapping.
  bool is_mapped() const { return keep_alive_ != nullptr; }

  // Section persistence (zero-copy). Loads of either kind refuse a snapshot
  // that holds an id twice (InvalidPayload, naming it).
  persist::Result<void> save_sections(persist::SectionWriter& out) const;
  static persist::Result<FlatIndex> load_sections(const persist::SnapshotView& snapshot);

  // Stream persistence.
  persist::Result<void> save_to(persist::StreamWriter& out) const;
  static persist::Result<FlatIndex> load_from(persist::StreamReader& in);

 private:
  // Copies mapped data into owned memory and builds slot_of_ (once).
  void make_mutable();

  std::size_t dim_;
  DistanceMetric metric_;
  // While keep_alive_ is set, the data is mapped_*, inside a snapshot mapping;
  // otherwise owned_*, with slot_of_ indexing it.
  std::shared_ptr<const void> keep_alive_;
  std::span<const std::uint64_t> mapped_ids_;
  std::span<const float> mapped_vectors_;
  std::vector<std::uint64_t> owned_ids_;
  std::vector<float> owned_vectors_;
  std::unordered_map<std::uint64_t, std::size_t> slot_of_;
  std::unordered_map<std::uint64_t, Metadata> metadata_;
};

}  // namespace iqdb::examples

#endif  // IQDB_EXAMPLES_FLAT_INDEX_H_
