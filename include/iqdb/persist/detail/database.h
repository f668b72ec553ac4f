// Database: everything of PersistedIndex<I> that does not depend on I,
// compiled once in the library: the options, the writer lock, snapshot save
// and open, the write-ahead log and what its load replayed. The template
// keeps only its index, and hands the library a view of it with each call
// (SnapshotSource to save it, OpApplier to change it), so the library never
// stores a pointer into a PersistedIndex that may move.
//
// Not part of the public API: call PersistedIndex. Errors, durability and
// thread-safety are those documented on PersistedIndex.
#ifndef IQDB_PERSIST_DETAIL_DATABASE_H_
#define IQDB_PERSIST_DETAIL_DATABASE_H_

#include <memory>
#include <span>
#include <string_view>

#include "iqdb/persist/config.h"
#include "iqdb/persist/detail/wal_op.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/file_header.h"
#include "iqdb/persist/load_verification.h"
#include "iqdb/persist/sections.h"
#include "iqdb/persist/wal_replay.h"

namespace iqdb::persist {
class WriteBatch;
}  // namespace iqdb::persist

namespace iqdb::persist::detail {

// The index as a snapshot save reads it.
class SnapshotSource {
 public:
  // The index's type, shape and size now (wal_lsn is the library's to set).
  virtual IndexFacts facts() const = 0;
  virtual Result<void> write_sections(SectionWriter& out) const = 0;

 protected:
  ~SnapshotSource() = default;
};

class Database {
 public:
  // Validates `config` and, when it enables the log, takes the writer lock
  // (Locked when another writer holds it); nothing else is touched.
  [[nodiscard]] static Result<Database> open(PersistConfig config);

  // exists(), create(), open_snapshot() and recover() are the steps of
  // opening, called on a Database fresh from open(); the other members are
  // what a PersistedIndex calls for its lifetime, and refuse with
  // InvalidArgument (or answer a default) once the Database was moved from.

  // Whether a snapshot or log segments exist at the path.
  [[nodiscard]] Result<bool> exists() const;

  // Makes this a new database holding `index`: AlreadyExists if one is
  // there, unless `overwrite`. With the log, saves the first snapshot and
  // starts the log; without it, writes nothing.
  [[nodiscard]] Result<void> create(bool overwrite, const SnapshotSource& index);

  // Maps, validates, decodes and verifies (per config().verify) the snapshot
  // of a load; InvalidIndexType unless it holds an index of `index_type`.
  [[nodiscard]] Result<SnapshotView> open_snapshot(std::string_view index_type);

  // Ends a load once the caller has rebuilt its index from open_snapshot()'s
  // view: checks the index's facts against the header (InvalidPayload), and
  // with the log replays the log onto it through `applier`, then checkpoints
  // when recovery dropped records or left segments to move aside.
  [[nodiscard]] Result<void> recover(const SnapshotView& snapshot, const SnapshotSource& index,
                                     const OpApplier& applier);

  // Logs `ops` (as one batch record when `as_batch`), makes them durable per
  // the policy, then applies them through `applier`; without the log, applies
  // them. The index's refusal of an op is returned, the ops before it stay
  // applied.
  [[nodiscard]] Result<void> commit(std::span<const WalOp> ops, bool as_batch,
                                    const OpApplier& applier);
  [[nodiscard]] Result<void> apply_batch(const WriteBatch& batch, const OpApplier& applier);

  // Writes a snapshot of `index` (with the log: a checkpoint).
  [[nodiscard]] Result<void> save(const SnapshotSource& index) const;
  // With the log: makes every logged mutation durable now.
  [[nodiscard]] Result<void> sync();

  const Verification& verification() const;
  WalReplayReport wal_replay() const;
  // With the log: the LSN of the last record logged; 0 without it.
  std::uint64_t last_lsn() const;
  const PersistConfig& config() const;

  Database(Database&&) noexcept;
  Database& operator=(Database&&) noexcept;
  ~Database();

 private:
  class Impl;
  explicit Database(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace iqdb::persist::detail

#endif  // IQDB_PERSIST_DETAIL_DATABASE_H_
