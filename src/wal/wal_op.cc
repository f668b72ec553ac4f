// apply_in_order() (see wal_op.h).
#include "wal/wal_op.h"

#include <utility>

#include <fmt/format.h>

namespace iqdb::persist {

AppliedOps apply_in_order(std::span<const WalOp> ops, const OpApplier& index) {
  AppliedOps result;
  for (const WalOp& op : ops) {
    auto applied = index.apply(op);
    if (!applied) {
      result.outcome = ops.size() == 1
                           ? std::move(applied)
                           : boost::outcome_v2::failure(applied.error().with_context(fmt::format(
                                 "batch op {} of {} refused, the {} before it stay applied",
                                 result.applied + 1, ops.size(), result.applied)));
      return result;
    }
    ++result.applied;
  }
  return result;
}

}  // namespace iqdb::persist
