// Database (iqdb/persist/detail/database.h): the part of PersistedIndex<I>
// that does not depend on I.
#include "iqdb/persist/detail/database.h"

#include <utility>

#include "db/database_files.h"
#include "db/snapshot_io.h"
#include "db/wal_log.h"
#include "iqdb/persist/write_batch.h"
#include "snapshot/load_verification_control.h"
#include "util/random_id.h"
#include "wal/wal_op.h"

namespace iqdb::persist::detail {

class Database::Impl {
 public:
  Impl(PersistConfig config, std::unique_ptr<FileLock> lock)
      : config_(std::move(config)), lock_(std::move(lock)) {}

  const PersistConfig& config() const { return config_; }

  Result<void> create(bool overwrite, const SnapshotSource& index) {
    if (!overwrite) IQDB_TRY(check_no_database(config_));
    database_id_ = new_random_id();  // a new database, even at the same path
    if (!config_.wal_enabled) return success();
    const auto save = [&](std::uint64_t wal_lsn) { return save_now(index, wal_lsn); };
    IQDB_TRY_ASSIGN(log_, WalLog::create(config_, database_id_, save, std::move(lock_)));
    return success();
  }

  Result<SnapshotView> open_snapshot(std::string_view index_type) {
    IQDB_TRY_ASSIGN(auto opened, detail::open_snapshot(config_, index_type));
    snapshot_lsn_ = opened.view.header().wal_lsn;
    snapshot_database_id_ = opened.view.header().database_id;
    // A snapshot written before databases had an id gets one from its next
    // save on (with the log, recover() takes the one its segments record).
    database_id_ = snapshot_database_id_ != 0 ? snapshot_database_id_ : new_random_id();
    verification_ = std::move(opened.verification);
    return std::move(opened.view);
  }

  Result<void> recover(const SnapshotView& snapshot, const SnapshotSource& index,
                       const OpApplier& applier) {
    IQDB_TRY(check_rebuilt(snapshot, index.facts()));
    if (!config_.wal_enabled) return success();
    IQDB_TRY_ASSIGN(log_, WalLog::recover(config_, snapshot_lsn_, snapshot_database_id_, applier,
                                          std::move(lock_)));
    database_id_ = log_->database_id();
    if (log_->needs_checkpoint()) IQDB_TRY(save(index));
    return success();
  }

  Result<void> commit(std::span<const WalOp> ops, bool as_batch, const OpApplier& applier) {
    if (log_) return log_->commit(ops, as_batch, applier);
    return apply_in_order(ops, applier).outcome;
  }

  Result<void> save(const SnapshotSource& index) const {
    const auto save = [&](std::uint64_t wal_lsn) { return save_now(index, wal_lsn); };
    if (log_) return log_->checkpoint(save);
    // Without the log the lock is held for the save only.
    IQDB_TRY_ASSIGN(const auto lock, lock_database(config_));
    IQDB_TRY(check_no_log(config_));
    return save(snapshot_lsn_);
  }

  Result<void> sync() {
    if (log_) return log_->sync();
    return success();
  }

  const Verification& verification() const { return *verification_; }
  WalReplayReport wal_replay() const { return log_ ? log_->replay_report() : WalReplayReport{}; }
  std::uint64_t last_lsn() const { return log_ ? log_->last_lsn() : 0; }

 private:
  Result<void> save_now(const SnapshotSource& index, std::uint64_t wal_lsn) const {
    IndexFacts facts = index.facts();
    facts.wal_lsn = wal_lsn;
    facts.database_id = database_id_;
    return save_snapshot(config_, facts,
                         [&index](SectionWriter& out) { return index.write_sections(out); });
  }

  const PersistConfig config_;
  // The writer lock until the log takes it over (with the log only).
  std::unique_ptr<FileLock> lock_;
  std::uint64_t snapshot_lsn_ = 0;          // of the snapshot loaded; saves without the log keep it
  std::uint64_t snapshot_database_id_ = 0;  // of the snapshot loaded (0: it records none)
  std::uint64_t database_id_ = 0;           // recorded in every snapshot and segment written
  std::shared_ptr<Verification> verification_ = VerificationControl::not_run();
  std::unique_ptr<WalLog> log_;
};

Result<Database> Database::open(PersistConfig config) {
  IQDB_TRY(config.validate());
  std::unique_ptr<FileLock> lock;
  if (config.wal_enabled) {
    IQDB_TRY_ASSIGN(lock, lock_database(config));
  }
  return Database(std::make_unique<Impl>(std::move(config), std::move(lock)));
}

namespace {

// What a moved-from Database (and so a moved-from PersistedIndex) answers.
auto refuse_moved_from() {
  return fail(ErrorKind::InvalidArgument,
              "this PersistedIndex was moved from: use the object it was moved to");
}

}  // namespace

Database::Database(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Database::Database(Database&&) noexcept = default;
Database& Database::operator=(Database&&) noexcept = default;
Database::~Database() = default;

Result<bool> Database::exists() const { return database_exists(impl_->config()); }

Result<void> Database::create(bool overwrite, const SnapshotSource& index) {
  return impl_->create(overwrite, index);
}

Result<SnapshotView> Database::open_snapshot(std::string_view index_type) {
  return impl_->open_snapshot(index_type);
}

Result<void> Database::recover(const SnapshotView& snapshot, const SnapshotSource& index,
                               const OpApplier& applier) {
  return impl_->recover(snapshot, index, applier);
}

Result<void> Database::commit(std::span<const WalOp> ops, bool as_batch, const OpApplier& applier) {
  if (!impl_) return refuse_moved_from();
  return impl_->commit(ops, as_batch, applier);
}

Result<void> Database::apply_batch(const WriteBatch& batch, const OpApplier& applier) {
  if (!impl_) return refuse_moved_from();
  if (batch.empty()) return success();
  const std::vector<WalOp> ops = batch.ops();
  return impl_->commit(ops, true, applier);
}

Result<void> Database::save(const SnapshotSource& index) const {
  if (!impl_) return refuse_moved_from();
  return impl_->save(index);
}

Result<void> Database::sync() {
  if (!impl_) return refuse_moved_from();
  return impl_->sync();
}

const Verification& Database::verification() const {
  static const auto not_run = VerificationControl::not_run();
  return impl_ ? impl_->verification() : *not_run;
}

WalReplayReport Database::wal_replay() const {
  return impl_ ? impl_->wal_replay() : WalReplayReport{};
}

std::uint64_t Database::last_lsn() const { return impl_ ? impl_->last_lsn() : 0; }

const PersistConfig& Database::config() const {
  static const PersistConfig kNone;
  return impl_ ? impl_->config() : kNone;
}

}  // namespace iqdb::persist::detail
