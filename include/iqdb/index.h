// The Index concept: what every iQDB vector index offers, independent of how it
// searches. The persistence layer is written against this concept only and
// never names a concrete index.
//
// Contract for implementations:
//   insert(id, vector, metadata) -> IndexResult<void>
//       errors: DuplicateId if `id` is present, DimensionMismatch if
//       vector.size() != dim(), InvalidArgument for anything else it refuses.
//   remove(id) -> IndexResult<void>      errors: IdNotFound if `id` is absent.
//   size() -> number of live vectors;  dim() -> vector dimension;
//   metric() -> the DistanceMetric it ranks by.
// A failed insert or remove must leave the index unchanged.
//
// Thread-safety is the implementation's business; the persistence layer calls
// these from the thread that calls it.
#ifndef IQDB_INDEX_H_
#define IQDB_INDEX_H_

#include <concepts>
#include <cstddef>
#include <span>

#include "iqdb/types.h"

namespace iqdb {

template <class I>
concept Index = requires(I& index, const I& const_index, const VectorId& id,
                         std::span<const float> vector, const Metadata& metadata) {
  { index.insert(id, vector, metadata) } -> std::same_as<IndexResult<void>>;
  { index.remove(id) } -> std::same_as<IndexResult<void>>;
  { const_index.size() } -> std::convertible_to<std::size_t>;
  { const_index.dim() } -> std::convertible_to<std::size_t>;
  { const_index.metric() } -> std::same_as<DistanceMetric>;
};

}  // namespace iqdb

#endif  // IQDB_INDEX_H_
