// ReplicaOptions (iqdb/persist/replica_options.h).
#include "iqdb/persist/replica_options.h"

#include <fmt/format.h>

namespace iqdb::persist {

Result<void> ReplicaOptions::validate() const {
  if (poll_interval <= std::chrono::milliseconds::zero()) {
    return fail(ErrorKind::InvalidConfig,
                fmt::format("ReplicaOptions::poll_interval must be positive (got {} ms)",
                            poll_interval.count()));
  }
  if (records_per_step == 0) {
    return fail(ErrorKind::InvalidConfig, "ReplicaOptions::records_per_step must be at least 1");
  }
  return success();
}

}  // namespace iqdb::persist
