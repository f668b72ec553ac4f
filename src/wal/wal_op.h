// Applying WalOps (iqdb/persist/detail/wal_op.h) to an index in order, as a
// commit does (WalLog::commit, and Database without the log); replay applies
// its ops itself, as far as Abort records allow (wal_replay.cc).
#ifndef IQDB_PERSIST_SRC_WAL_WAL_OP_H_
#define IQDB_PERSIST_SRC_WAL_WAL_OP_H_

#include <cstdint>
#include <span>

#include "iqdb/persist/detail/wal_op.h"
#include "iqdb/persist/error.h"

namespace iqdb::persist {

using detail::OpApplier;
using detail::WalOp;

// How far apply_in_order() got: the ops applied, and the refusal that
// stopped it (success when all were applied).
struct AppliedOps {
  std::uint32_t applied = 0;
  Result<void> outcome = success();
};

// Applies `ops` in order until the index refuses one. A refusal in a batch
// of several is named by its position ("batch op 3 of 5 refused...").
AppliedOps apply_in_order(std::span<const WalOp> ops, const OpApplier& index);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_WAL_WAL_OP_H_
