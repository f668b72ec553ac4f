// WalOp: one mutation as the write-ahead log sees it, made of views: what
// PersistedIndex hands the library to log and apply, and what the log's
// record codec encodes and decodes; OpApplier: how the library applies one.
// Not part of the public API.
#ifndef IQDB_PERSIST_DETAIL_WAL_OP_H_
#define IQDB_PERSIST_DETAIL_WAL_OP_H_

#include <cstdint>
#include <span>

#include "iqdb/persist/error.h"
#include "iqdb/types.h"

namespace iqdb::persist::detail {

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

// The index as the library applies ops to it: PersistedIndex and Replica
// implement it over their index (IndexApplier), for the duration of one call
// into the library.
class OpApplier {
 public:
  // Applies one op; an error is the index's refusal (the index is then
  // unchanged). Const: applying changes the index, not the applier.
  virtual Result<void> apply(const WalOp& op) const = 0;

 protected:
  ~OpApplier() = default;
};

// OpApplier over an index of the Index concept (iqdb/index.h): inserts and
// removes through its own methods, its refusals as PersistErrors.
template <class I>
class IndexApplier final : public OpApplier {
 public:
  explicit IndexApplier(I& index) : index_(index) {}
  Result<void> apply(const WalOp& op) const override {
    if (op.kind == WalOp::Kind::Remove) return from_index(index_.remove(*op.id));
    static const Metadata kNoMetadata;
    return from_index(index_.insert(*op.id, op.vector, op.metadata ? *op.metadata : kNoMetadata));
  }

 private:
  static Result<void> from_index(IndexResult<void> outcome) {
    if (outcome) return success();
    return boost::outcome_v2::failure(PersistError::from_index(outcome.error()));
  }

  I& index_;
};

}  // namespace iqdb::persist::detail

#endif  // IQDB_PERSIST_DETAIL_WAL_OP_H_
