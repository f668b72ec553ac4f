// A database's snapshot file: the atomic save protocol, and the open that
// maps, decodes and verifies it for a load. Used by Database, ReplicaCore and
// rewrite; iqdb/persist/detail/snapshot_io.h declares the part the templates
// call (check_rebuilt, rebuild_failed).
#ifndef IQDB_PERSIST_SRC_DB_SNAPSHOT_IO_H_
#define IQDB_PERSIST_SRC_DB_SNAPSHOT_IO_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "iqdb/persist/config.h"
#include "iqdb/persist/detail/snapshot_io.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/file_system.h"
#include "iqdb/persist/load_verification.h"
#include "iqdb/persist/sections.h"
#include "iqdb/types.h"

namespace iqdb::persist::detail {

using FillSections = std::function<Result<void>(SectionWriter&)>;

// Writes a snapshot of `facts` whose sections `fill` provides, atomically
// replacing config.path. An error up to and including the rename leaves the
// previous file untouched and removes the temporary file; its message starts
// "<config.path>: save failed: " and goes on with the failed step's own error
// (which names the temporary file for file system errors). An error syncing the
// directory after the rename means the new snapshot is in place but may not
// survive a power loss. Precondition: config.validate() succeeded.
[[nodiscard]] Result<void> save_snapshot(const PersistConfig& config, const IndexFacts& facts,
                                         const FillSections& fill);

// Tells the replicas on this host that a new snapshot holding LSNs up to
// `wal_lsn` is at config.path, through the control file if a log writer
// created one (save_snapshot() does it after every save). Never fails: the
// control file is a hint (wal/control_file.h).
void announce_snapshot(const PersistConfig& config, std::uint64_t wal_lsn);

struct OpenedSnapshot {
  SnapshotView view;
  std::shared_ptr<Verification> verification;  // per config.verify; never null
};

// open_snapshot()'s index type for tools that handle any index.
inline constexpr std::string_view kAnyIndexType{};

// Maps config.path, validates it, checks that it holds an index of type
// `index_type` (unless kAnyIndexType), decodes its compressed sections and verifies it per
// config.verify (VerifyMode::Background: starts the check and returns).
[[nodiscard]] Result<OpenedSnapshot> open_snapshot(const PersistConfig& config,
                                                   std::string_view index_type);

}  // namespace iqdb::persist::detail

#endif  // IQDB_PERSIST_SRC_DB_SNAPSHOT_IO_H_
