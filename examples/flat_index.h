// FlatIndex: a brute-force vector index that implements both ways of being
// iqdb::persist::Persistable: stream and section persistence. It is the
// example the demo and the benchmarks use; the library itself never names it.
//
//   FlatIndex index(128, iqdb::DistanceMetric::Cosine);
//   index.insert(7, vector, {});
//   auto hits = index.search(query, 10);   // nearest first
//
// Layout: a base and a delta. The base is the "ids" and "vectors" sections of
// the snapshot it was loaded from, served from the read-only mapping and never
// copied (empty for an index built by inserts or loaded from a stream). Every
// mutation goes to owned memory that grows with the mutations, not with the
// base: an insert appends a row to the delta (id -> row in a hash map), a
// remove of a delta row moves the delta's last row into its place, a remove
// of a base row records the slot as a tombstone (a hash set). Re-inserting an
// id removed from the base adds it to the delta. So a read-only replica that
// applies the log to a loaded index keeps serving the file's pages.
//
// Id lookups in the base are a binary search over the mapped ids: a save
// writes the ids in ascending order and says so (section "id_order"). A base
// whose ids do not ascend (a file without "id_order": written before it
// existed, or by another writer) gets an owned permutation sorting it instead,
// 8 bytes per vector, built by the load (O(n log n)).
//
// Persistence:
//   section persistence (zero-copy): sections "ids" (u64 per vector,
//     strictly ascending), "vectors" (dim float32 per vector, row-major, in id
//     order), "id_order" (one u64: 1, the ids ascend) and, when any vector has
//     metadata, "metadata" (streamed, see flat_index.cc). A save of an index
//     whose rows are already stored in ascending id order with no tombstone
//     (a fresh load, or ids inserted in increasing order) writes straight from
//     that memory; otherwise it streams the merge of base and delta, with a
//     temporary of 8 bytes per delta row. A load reads no vector. With
//     VerifyMode::Eager it reads the ids, once, to refuse duplicates and ids
//     that do not ascend although "id_order" says they do: a linear scan. With
//     Skip or Background (the payload trusted, SnapshotView::payload_trusted())
//     it reads none when "id_order" is there, so that such a load costs the
//     same whatever the file's size: a file whose CRCs match but whose ids
//     repeat or do not ascend as claimed (not one this library wrote) is then
//     served as is, and lookups in it may miss. Without "id_order" a load
//     reads the ids whatever the mode and sorts the permutation if they do not
//     ascend.
//   stream persistence: the same data as one payload, in ascending id order;
//     a load copies it into the delta.
//
// Ids are u64 (VectorId::from_bytes ids are refused with InvalidArgument).
// Thread-safety: const methods may run concurrently; mutation needs exclusive
// access.
#ifndef IQDB_EXAMPLES_FLAT_INDEX_H_
#define IQDB_EXAMPLES_FLAT_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
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

  // Index concept. insert refuses InvalidArgument (a byte-string id),
  // DimensionMismatch, DuplicateId (the id is live); remove IdNotFound.
  IndexResult<void> insert(const VectorId& id, std::span<const float> vector,
                           const Metadata& metadata);
  IndexResult<void> remove(const VectorId& id);
  std::size_t size() const { return mapped_ids_.size() - removed_.size() + delta_ids_.size(); }
  std::size_t dim() const { return dim_; }
  DistanceMetric metric() const { return metric_; }

  // Makes room in the delta for `count` inserted vectors, so that many
  // inserts do not reallocate.
  void reserve(std::size_t count);

  // The k nearest vectors to `query` (dim() floats), nearest first; equal
  // distances in ascending id order. An empty result if query.size() != dim().
  // Distances: Euclidean is the squared L2 distance, DotProduct the negated
  // dot product, Cosine 1 - cos (1 when either vector is zero), Manhattan the
  // L1 distance, Hamming the count of components whose signs (> 0) differ.
  std::vector<SearchHit> search(std::span<const float> query, std::size_t k) const;

  // Whether `id` is live, and its vector (dim() floats) if so.
  bool contains(std::uint64_t id) const { return find(id).has_value(); }
  std::optional<std::span<const float>> find(std::uint64_t id) const;
  // The metadata stored with `id`, or nullptr.
  const Metadata* metadata(std::uint64_t id) const;

  // Calls f(std::uint64_t id, std::span<const float> vector) once per live
  // row, in no particular order. `f` must not mutate the index.
  template <class F>
  void for_each(F f) const {
    for (std::size_t slot = 0; slot < mapped_ids_.size(); ++slot) {
      if (removed_.empty() || !removed_.contains(slot)) f(mapped_ids_[slot], base_row(slot));
    }
    for (std::size_t row = 0; row < delta_ids_.size(); ++row) f(delta_ids_[row], delta_row(row));
  }

  // A digest of the live contents: dim, metric and every (id, vector bytes,
  // metadata). Independent of how rows are split between base and delta and
  // of their order, so two indexes holding the same rows have the same digest
  // (e.g. a replica and its writer at one log position). Not cryptographic.
  std::uint64_t state_digest() const;

  // The base: the ids and vectors (dim() floats per id) of the snapshot this
  // index was loaded from, in file order, inside its mapping (or decoded
  // memory, for compressed sections); empty when not loaded from sections.
  // Tombstoned rows are still in them: contains()/for_each() give live rows.
  std::span<const std::uint64_t> base_ids() const { return mapped_ids_; }
  std::span<const float> base_vectors() const { return mapped_vectors_; }
  // The count of base rows removed (tombstones).
  std::size_t removed_from_base() const { return removed_.size(); }
  // The delta: ids and vectors (dim() floats per id) inserted since the load,
  // in owned memory, in no particular order (a remove moves the last row).
  std::span<const std::uint64_t> delta_ids() const { return delta_ids_; }
  std::span<const float> delta_vectors() const { return delta_vectors_; }
  // True while the base is served from a snapshot mapping (mutations keep it).
  bool is_mapped() const { return keep_alive_ != nullptr; }
  // Heap bytes held for the delta, the tombstones and the base's permutation
  // (hash nodes estimated; metadata not counted). After a load of a file this
  // code wrote, it grows with the mutations only.
  std::size_t owned_bytes() const;

  // Section persistence (zero-copy). Loads of either kind refuse a snapshot
  // that holds an id twice (InvalidPayload, naming it); see above for when.
  persist::Result<void> save_sections(persist::SectionWriter& out) const;
  static persist::Result<FlatIndex> load_sections(const persist::SnapshotView& snapshot);

  // Stream persistence.
  persist::Result<void> save_to(persist::StreamWriter& out) const;
  static persist::Result<FlatIndex> load_from(persist::StreamReader& in);

 private:
  std::span<const float> base_row(std::size_t slot) const {
    return mapped_vectors_.subspan(slot * dim_, dim_);
  }
  std::span<const float> delta_row(std::size_t row) const {
    return std::span<const float>(delta_vectors_).subspan(row * dim_, dim_);
  }
  // The live base slot holding `id`, if any.
  std::optional<std::size_t> live_base_slot(std::uint64_t id) const;
  // The rows stored in ascending id order with no tombstone: a save can
  // write that memory as it is.
  bool stored_in_id_order() const;
  // Calls f(id, vector) for every live row in ascending id order.
  template <class F>
  persist::Result<void> for_each_ascending(F f) const;
  template <class Kernel>
  std::vector<SearchHit> search_with(const Kernel& distance, std::size_t k) const;

  std::size_t dim_;
  DistanceMetric metric_;
  // The base: spans into a snapshot that keep_alive_ holds.
  std::shared_ptr<const void> keep_alive_;
  std::span<const std::uint64_t> mapped_ids_;
  std::span<const float> mapped_vectors_;
  // Base slots in ascending id order; empty when mapped_ids_ ascend.
  std::vector<std::size_t> base_order_;
  // Tombstones: removed base slots.
  std::unordered_set<std::size_t> removed_;
  // The delta: inserted rows, with delta_row_of_ indexing them by id.
  std::vector<std::uint64_t> delta_ids_;
  std::vector<float> delta_vectors_;
  std::unordered_map<std::uint64_t, std::size_t> delta_row_of_;
  std::unordered_map<std::uint64_t, Metadata> metadata_;
};

}  // namespace iqdb::examples

#endif  // IQDB_EXAMPLES_FLAT_INDEX_H_
