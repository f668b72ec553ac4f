// The non-template half of PersistedIndex: snapshot save and open, compiled
// once in the library. Not part of the public API; call PersistedIndex.
#ifndef IQDB_PERSIST_DETAIL_SNAPSHOT_IO_H_
#define IQDB_PERSIST_DETAIL_SNAPSHOT_IO_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "iqdb/persist/config.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/file_system.h"
#include "iqdb/persist/sections.h"
#include "iqdb/persist/verification.h"
#include "iqdb/types.h"

namespace iqdb::persist::detail {

// What an index reports about itself; recorded in the header on save and
// compared with the rebuilt index on load.
struct IndexFacts {
  std::string_view index_type;
  std::uint64_t dim = 0;
  DistanceMetric metric = DistanceMetric::Cosine;
  std::uint64_t n_vectors = 0;
  std::uint64_t wal_lsn = 0;  // the last log record the index holds; 0 = none
};

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

// Takes the writer lock of the database at config.path (the file
// "<snapshot>.lock", see FileSystem::lock_file): one writer per database.
// Errors: Locked, naming the database and the holder; Io (e.g. a read-only
// directory: a writer could not write there anyway).
[[nodiscard]] Result<std::unique_ptr<FileLock>> lock_database(const PersistConfig& config);

// Whether a database (a snapshot, or log segments) exists at config.path.
// Errors: Io when that cannot be told.
[[nodiscard]] Result<bool> database_exists(const PersistConfig& config);

// AlreadyExists, naming what was found, when database_exists(); Io.
[[nodiscard]] Result<void> check_no_database(const PersistConfig& config);

// InvalidPayload unless the rebuilt index's facts match the header's.
[[nodiscard]] Result<void> check_rebuilt(const SnapshotView& snapshot, const IndexFacts& rebuilt);

// The index's own load error, with the file named in the message.
PersistError rebuild_failed(const SnapshotView& snapshot, const PersistError& error);

}  // namespace iqdb::persist::detail

#endif  // IQDB_PERSIST_DETAIL_SNAPSHOT_IO_H_
