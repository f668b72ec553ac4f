#include "iqdb/persist/write_batch.h"

namespace iqdb::persist {

using detail::WalOp;

void WriteBatch::insert(VectorId id, std::span<const float> vector, Metadata metadata) {
  entries_.push_back(
      {WalOp::Kind::Insert, std::move(id), floats_.size(), vector.size(), std::move(metadata)});
  floats_.insert(floats_.end(), vector.begin(), vector.end());
}

void WriteBatch::remove(VectorId id) {
  entries_.push_back({WalOp::Kind::Remove, std::move(id), 0, 0, {}});
}

void WriteBatch::clear() {
  entries_.clear();
  floats_.clear();
}

std::vector<WalOp> WriteBatch::ops() const {
  std::vector<WalOp> ops;
  ops.reserve(entries_.size());
  for (const Entry& entry : entries_) {
    if (entry.kind == WalOp::Kind::Insert) {
      const std::span<const float> vector(floats_.data() + entry.first_float, entry.dim);
      ops.push_back(WalOp::insert(entry.id, vector, entry.metadata));
    } else {
      ops.push_back(WalOp::remove(entry.id));
    }
  }
  return ops;
}

}  // namespace iqdb::persist
