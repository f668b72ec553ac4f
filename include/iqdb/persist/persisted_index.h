// PersistedIndex<I>: an in-memory index together with where and how it is
// persisted (Tier 1 of the API).
//
//   PersistConfig config("/data/products.iqdb");
//   config.wal_enabled = true;      // optional: every mutation durable at once
//   auto opened = PersistedIndex<FlatIndex>::open_with(FlatIndex(128, metric), config);
//   if (!opened) return report(opened.error());
//   PersistedIndex<FlatIndex> db = std::move(opened).value();
//   db.insert(42, vector);          // logged and synced, then applied
//   if (auto done = db.checkpoint(); !done) ...;     // fold the log into a snapshot
//   auto loaded = PersistedIndex<FlatIndex>::load(config);  // mmap, verify, replay
//
// Snapshots. save() is atomic: it writes a new temporary file beside the
// snapshot, syncs it (per fsync_policy), renames it over the snapshot and
// syncs the directory. A failed or interrupted save leaves the previous
// snapshot intact; the one exception is a failed directory sync after the
// rename, reported as Io, when the new snapshot is already in place but may
// not survive a power loss. A failed save removes its temporary file; the
// temporary file of a save whose process died is removed by the next save of
// the same path (temporary files record their owner's pid, so run saves of one
// path from one host and PID namespace). It never writes into an existing
// file, so processes that have the old snapshot mapped keep reading it
// unharmed.
//
// One writer per database, enforced by an exclusive lock on the file
// "<snapshot>.lock" beside the snapshot (created on first use, never
// deleted). A writer holds it from open_with(), open() or load() with the log
// until it is destroyed; save() without the log holds it for the save; so do
// rewrite_snapshot() and `iqdb-persist compact`. A second writer, in another
// process or in this one, gets Locked at once, naming the path and the pid and
// host the holder recorded, before it touches any file. Readers (load()
// without the log) never take it. The lock is an open-file-description lock
// (fcntl F_OFD_SETLK): it belongs to the object that took it, not to the
// process, so a second PersistedIndex in one process is refused too, and the
// kernel releases it when the holder dies (SIGKILL included): there is no
// stale lock to clean up, and the pid in the file is never used for liveness.
// A child forked while a writer is open shares its lock until the child exits
// or execs. On a local file system this is exact. On NFS the lock becomes a
// byte-range lock on the server (NFSv4, or NLM for v3): it holds across hosts
// only if every host mounts with locking on (not `nolock` or `local_lock`);
// on other network or FUSE file systems it may cover one host only, so keep
// the writers of one database on one host there.
//
// Without the log, load() of a database that has one reads the snapshot alone
// (a view of the last checkpoint, e.g. for a replica), and save() refuses
// with InvalidConfig, since replaying the log would overwrite the save.
//
// open_with() creates a new database and refuses (AlreadyExists) when a
// snapshot or log is already at the path, unless given OpenMode::Overwrite;
// open() loads the database if there is one, else creates it.
//
// The write-ahead log (config.wal_enabled). open_with() saves the index as
// the first snapshot and starts the log. insert(), remove() and apply_batch() log
// the mutation, make it durable per fsync_policy (FsyncPolicy::always(): on
// stable storage before the call returns), and only then apply it; when the
// index refuses it, the refusal is logged too, so replay never applies it.
// A mutation that returns Io was not applied; after a crash it may or may not
// be replayed. After a failed log write or fsync every mutation fails with Io
// until a checkpoint() succeeds. load() replays the log onto the snapshot
// (docs/FORMAT.md, "Recovery"; config.wal_recovery says what to do with
// damage). checkpoint() (and save(), which is the same with the log) writes a
// snapshot recording the last log sequence number it holds, then replaces the
// log with an empty one. A crash at any point of any of these loses nothing
// acknowledged under FsyncPolicy::always() and leaves a database that loads.
//
// Thread-safety. Without the log: none of its own; calls that mutate (insert,
// remove, apply_batch, index_mut) need exclusive access; save() and
// checkpoint() may run concurrently with const access to the index but not
// with mutation. With the log: insert, remove, apply_batch, checkpoint, save
// and sync may be called from several threads at once; they are applied one at
// a time in log order, and concurrent writers under FsyncPolicy::always()
// share fsyncs (group commit). Reading the index while another thread mutates
// it is safe only if the index itself is thread-safe.
#ifndef IQDB_PERSIST_PERSISTED_INDEX_H_
#define IQDB_PERSIST_PERSISTED_INDEX_H_

#include <concepts>
#include <span>
#include <type_traits>
#include <utility>

#include "iqdb/index.h"
#include "iqdb/persist/config.h"
#include "iqdb/persist/detail/database.h"
#include "iqdb/persist/detail/snapshot_io.h"
#include "iqdb/persist/detail/wal_op.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/load_verification.h"
#include "iqdb/persist/persistable.h"
#include "iqdb/persist/wal_replay.h"
#include "iqdb/persist/write_batch.h"

namespace iqdb::persist {

// What open_with() does when a database (a snapshot or a log) already exists
// at the path.
enum class OpenMode {
  CreateNew,  // refuse with AlreadyExists
  Overwrite,  // discard the existing snapshot and log
};

template <Persistable I>
class PersistedIndex {
 public:
  // Wraps an in-memory index as a new database at config.path. Refuses
  // (AlreadyExists) when a snapshot or log is already there, unless `mode` is
  // OpenMode::Overwrite. Without the log nothing is written yet (the first
  // save() writes the snapshot); with it, the writer lock is taken, the index
  // is saved as the first snapshot and an empty log is started.
  // Errors: those of PersistConfig::validate(); AlreadyExists; with the log,
  // Locked (another writer has the database open) and those of save().
  [[nodiscard]] static Result<PersistedIndex> open_with(I index, PersistConfig config,
                                                        OpenMode mode = OpenMode::CreateNew) {
    IQDB_TRY_ASSIGN(auto db, detail::Database::open(std::move(config)));
    return create_opened(std::move(index), std::move(db), mode);
  }

  // Rebuilds the index saved at config.path and, with the log, replays the
  // log onto it (wal_replay() says what that did). With the log, the writer
  // lock is taken first and held until this object is destroyed; without it,
  // this is a reader of the last checkpoint: it takes no lock, writes
  // nothing, and works beside a writer and in a read-only directory.
  // Errors: NotFound when there is no snapshot (or no directory); with the
  // log, Locked (another writer has the database open); every error of
  // read_file_header() and verify_snapshot(); InvalidIndexType when the file
  // holds another index type; InvalidPayload or the index's own error when it cannot be rebuilt;
  // with the log, damage that config.wal_recovery refuses (ChecksumMismatch
  // or TruncatedPayload, naming the segment file and offset).
  [[nodiscard]] static Result<PersistedIndex> load(PersistConfig config) {
    IQDB_TRY_ASSIGN(auto db, detail::Database::open(std::move(config)));
    return load_opened(std::move(db));
  }

  // The usual start-up of a writer: load() the database at config.path if
  // there is one, else create it from `make_empty()` as open_with() does.
  // With the log, both happen under the writer lock, so two processes
  // starting at once never both create: one gets Locked, or loads what the
  // other created. `make_empty` is called only when a new database is made
  // and returns an I. Errors: those of load() and open_with().
  template <class MakeEmpty>
  requires std::convertible_to<std::invoke_result_t<MakeEmpty&>, I>
  [[nodiscard]] static Result<PersistedIndex> open(PersistConfig config, MakeEmpty make_empty) {
    IQDB_TRY_ASSIGN(auto db, detail::Database::open(std::move(config)));
    IQDB_TRY_ASSIGN(const bool exists, db.exists());
    if (exists) return load_opened(std::move(db));
    // Nothing exists (checked just now, under the lock when there is a log):
    // Overwrite spares create_opened() the same check again.
    return create_opened(make_empty(), std::move(db), OpenMode::Overwrite);
  }

  // Writes a snapshot of the index to config().path, atomically. With the
  // log, the same as checkpoint().
  // Errors: those of the save; without the log, Locked while another writer
  // has the database open (the lock is held for the save only), and
  // InvalidConfig when the path has a log (enable wal_enabled: its replay
  // would overwrite this save).
  [[nodiscard]] Result<void> save() const { return db_.save(Source(index_)); }

  // Inserts a vector. Errors: the index's refusal as DuplicateId,
  // DimensionMismatch or InvalidArgument (the index is then unchanged); with
  // the log, InvalidArgument for what the log cannot hold (e.g. a byte id
  // over 64 KiB) and Io (the log failed; nothing applied).
  [[nodiscard]] Result<void> insert(const VectorId& id, std::span<const float> vector,
                                    const Metadata& metadata = {}) {
    const detail::WalOp op = detail::WalOp::insert(id, vector, metadata);
    return db_.commit({&op, 1}, false, Applier(index_));
  }

  // Errors: IdNotFound when the index has no such id; with the log, Io.
  [[nodiscard]] Result<void> remove(const VectorId& id) {
    const detail::WalOp op = detail::WalOp::remove(id);
    return db_.commit({&op, 1}, false, Applier(index_));
  }

  // Applies the batch's ops in order; with the log, as one record and one
  // sync, so a crash leaves all of it or none. If the index refuses an op,
  // the ops before it stay applied (and are replayed as such), the rest are
  // not, and the refusal is returned naming the op.
  [[nodiscard]] Result<void> apply_batch(const WriteBatch& batch) {
    return db_.apply_batch(batch, Applier(index_));
  }

  // Makes every applied mutation durable in a new snapshot and, with the log,
  // starts an empty log (without it, the same as save()).
  [[nodiscard]] Result<void> checkpoint() { return save(); }

  // With the log: makes every logged mutation durable now, whatever the
  // fsync policy. Without it: nothing to do. Errors: Io.
  [[nodiscard]] Result<void> sync() { return db_.sync(); }

  // The integrity check of the snapshot load() read (see
  // iqdb/persist/load_verification.h): Passed after an Eager load, NotRun after a
  // Skip load or without a load, Running until done in Background mode.
  const Verification& verification() const { return db_.verification(); }

  // What load() replayed from the log; all zero without it.
  WalReplayReport wal_replay() const { return db_.wal_replay(); }

  // With the log: the log sequence number of the last mutation logged (0
  // before the first; without the log, always 0). A Replica whose lsn()
  // reaches it holds every mutation this writer acknowledged so far: pass it
  // to Replica::wait_for() to read your own writes.
  std::uint64_t last_lsn() const { return db_.last_lsn(); }

  const I& index() const { return index_; }
  // Direct access, bypassing the log: with the log on, a change made through
  // it is lost at the next load unless a checkpoint() follows it.
  I& index_mut() { return index_; }
  const PersistConfig& config() const { return db_.config(); }

  // A moved-from PersistedIndex holds no database: every call that would
  // use it returns InvalidArgument, config() is a default PersistConfig and
  // verification() is NotRun. Destroy it or assign to it.
  PersistedIndex(PersistedIndex&&) noexcept = default;
  PersistedIndex& operator=(PersistedIndex&&) noexcept = default;
  PersistedIndex(const PersistedIndex&) = delete;
  PersistedIndex& operator=(const PersistedIndex&) = delete;

 private:
  PersistedIndex(I index, detail::Database db) : index_(std::move(index)), db_(std::move(db)) {}

  // The index as a save reads it.
  class Source final : public detail::SnapshotSource {
   public:
    explicit Source(const I& index) : index_(index) {}
    IndexFacts facts() const override { return detail::index_facts(index_); }
    Result<void> write_sections(SectionWriter& out) const override {
      if constexpr (SectionPersistable<I>) {
        return index_.save_sections(out);
      } else {
        return out.add_streamed_section(
            kStreamSectionName, [this](StreamWriter& writer) { return index_.save_to(writer); });
      }
    }

   private:
    const I& index_;
  };

  // open_with() once the database is opened (and locked, with the log).
  static Result<PersistedIndex> create_opened(I index, detail::Database db, OpenMode mode) {
    IQDB_TRY(db.create(mode == OpenMode::Overwrite, Source(index)));
    return PersistedIndex(std::move(index), std::move(db));
  }

  // load() once the database is opened (and locked, with the log).
  static Result<PersistedIndex> load_opened(detail::Database db) {
    IQDB_TRY_ASSIGN(const SnapshotView snapshot, db.open_snapshot(I::kIndexType));
    IQDB_TRY_ASSIGN(auto index, detail::rebuild_index<I>(snapshot));
    PersistedIndex loaded(std::move(index), std::move(db));
    IQDB_TRY(loaded.db_.recover(snapshot, Source(loaded.index_), Applier(loaded.index_)));
    return loaded;
  }

  using Applier = detail::IndexApplier<I>;

  I index_;
  detail::Database db_;
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_PERSISTED_INDEX_H_
