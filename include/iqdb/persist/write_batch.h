// WriteBatch: inserts and removes applied by PersistedIndex::apply_batch() as
// one unit. With the write-ahead log, a batch is one log record with one sync:
// after a crash, recovery applies all of it or none of it.
//
//   WriteBatch batch;
//   batch.insert(7, vector_a);
//   batch.remove(3);
//   auto applied = db.apply_batch(batch);
//
// A batch copies what it is given, so the caller's buffers may go away after
// each call. Ops are applied in the order they were added. With the log, a
// batch must encode to at most 64 MiB (about 120,000 vectors of dimension
// 128); a larger one is refused with InvalidArgument and nothing is logged.
//
// Thread-safety: none; a batch is built by one thread and then only read.
#ifndef IQDB_PERSIST_WRITE_BATCH_H_
#define IQDB_PERSIST_WRITE_BATCH_H_

#include <cstddef>
#include <span>
#include <vector>

#include "iqdb/persist/detail/wal_op.h"
#include "iqdb/types.h"

namespace iqdb::persist {
namespace detail {
class Database;
}  // namespace detail

class WriteBatch {
 public:
  void insert(VectorId id, std::span<const float> vector, Metadata metadata = {});
  void remove(VectorId id);

  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  void clear();

 private:
  friend class detail::Database;  // logs and applies the ops

  // The ops as views into this batch, valid until it is next changed.
  std::vector<detail::WalOp> ops() const;

  struct Entry {
    detail::WalOp::Kind kind;
    VectorId id;
    std::size_t first_float;  // into floats_; Insert only
    std::size_t dim;
    Metadata metadata;
  };
  std::vector<Entry> entries_;
  std::vector<float> floats_;  // every insert's vector, back to back
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_WRITE_BATCH_H_
