#include "iqdb/persist/wal_options.h"

namespace iqdb::persist {

std::string_view to_string(WalRecoveryMode mode) {
  switch (mode) {
    case WalRecoveryMode::TolerateCorruptedTail: return "TolerateCorruptedTail";
    case WalRecoveryMode::AbsoluteConsistency: return "AbsoluteConsistency";
    case WalRecoveryMode::PointInTime: return "PointInTime";
    case WalRecoveryMode::SkipCorruptedRecords: return "SkipCorruptedRecords";
  }
  return "Unknown";
}

}  // namespace iqdb::persist
