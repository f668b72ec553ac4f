// WalOp: one mutation as the write-ahead log sees it, made of views. Shared
// by PersistedIndex (which logs and applies ops) and the log's record codec.
// Not part of the public API.
#ifndef IQDB_PERSIST_DETAIL_WAL_OP_H_
#define IQDB_PERSIST_DETAIL_WAL_OP_H_

#include <cstdint>
#include <span>

#include "iqdb/types.h"

namespace iqdb::persist {

// The caller keeps `*id`, the floats behind `vector` and `*metadata` alive
// while the op is used. Like a string_view, a WalOp made from temporaries
// dangles after the full expression.
struct WalOp {
  // On-disk op tags inside a batch record; never renumber them.
  enum class Kind : std::uint8_t { Insert = 1, Remove = 2 };

  static WalOp insert(const VectorId& id, std::span<const float> vector, const Metadata& metadata) {
    return {Kind::Insert, &id, vector, &metadata};
  }
  static WalOp remove(const VectorId& id) { return {Kind::Remove, &id, {}, nullptr}; }

  Kind kind = Kind::Remove;
  const VectorId* id = nullptr;        // never null
  std::span<const float> vector;       // Insert only
  const Metadata* metadata = nullptr;  // Insert only; null means no metadata
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_DETAIL_WAL_OP_H_
