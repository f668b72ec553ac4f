// A database's live write-ahead log: recovery, group commit, the Periodic
// flusher and checkpoints (see wal_log.h).
#include "db/wal_log.h"

#include <algorithm>

#include <fmt/format.h>

#include "iqdb/persist/file_system.h"
#include "util/file_paths.h"
#include "util/random_id.h"
#include "wal/control_file.h"
#include "wal/wal_format.h"
#include "wal/wal_record.h"
#include "wal/wal_replay.h"
#include "wal/wal_segments.h"
#include "wal/wal_writer.h"

namespace iqdb::persist::detail {
namespace {

bool syncs(const PersistConfig& config) { return config.fsync_policy.syncs_snapshots(); }

}  // namespace

WalLog::WalLog(PersistConfig config, std::unique_ptr<FileLock> lock, std::uint64_t database_id,
               std::uint64_t next_segment, std::uint64_t next_lsn)
    : config_(std::move(config)),
      database_id_(database_id),
      lock_(std::move(lock)),
      next_segment_(next_segment),
      next_lsn_(next_lsn),
      durable_lsn_(next_lsn - 1) {
  if (config_.fsync_policy.kind() == FsyncPolicy::Kind::Periodic) {
    flusher_ = std::thread([this] { run_flusher(); });
  }
}

WalLog::~WalLog() {
  {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    if (config_.fsync_policy.kind() == FsyncPolicy::Kind::Periodic && writer_ && failure_.empty()) {
      (void)wait_durable(lock, next_lsn_ - 1);
    }
  }
  flusher_wakeup_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  if (writer_) (void)writer_->close();
}

std::uint64_t WalLog::last_lsn() const {
  std::lock_guard lock(mutex_);
  return next_lsn_ - 1;
}

void WalLog::open_control(std::uint64_t lsn) {
  if (config_.file_system != nullptr) return;  // the control file is the host's
  auto control = ControlFile::open_for_writer(config_.path, /*create=*/true);
  if (!control) return;
  control_ = std::move(control).value();
  announced_lsn_ = lsn;
  control_->publish_snapshot(lsn);
}

void WalLog::announce_now(std::uint64_t lsn) { control_->publish_commit(lsn); }

WalReplayReport WalLog::replay_report() const {
  std::lock_guard lock(mutex_);
  return replay_;
}

Result<std::unique_ptr<WalLog>> WalLog::create(const PersistConfig& config,
                                               std::uint64_t database_id, const SaveSnapshot& save,
                                               std::unique_ptr<FileLock> lock) {
  FileSystem& fs = file_system_or_default(config.file_system);
  IQDB_TRY_ASSIGN(const auto segments, list_wal_segments(fs, config.path));
  // The old log goes first: a new snapshot (LSN 0) beside old segments would
  // have them replayed onto it.
  for (const std::uint64_t number : segments) {
    IQDB_TRY(fs.remove(wal_segment_path(config.path, number)));
  }
  if (!segments.empty() && syncs(config)) IQDB_TRY(fs.sync_dir(directory_of(config.path)));
  IQDB_TRY(save(0));
  std::unique_ptr<WalLog> log(new WalLog(config, std::move(lock), database_id, 1, 1));
  {
    std::lock_guard guard(log->mutex_);  // the Periodic flusher already runs
    IQDB_TRY(log->start_segment());
    log->open_control(0);
  }
  return log;
}

Result<std::unique_ptr<WalLog>> WalLog::recover(const PersistConfig& config,
                                                std::uint64_t snapshot_lsn,
                                                std::uint64_t snapshot_database_id,
                                                const OpApplier& index,
                                                std::unique_ptr<FileLock> lock) {
  IQDB_TRY_ASSIGN(auto replayed,
                  replay_wal(file_system_or_default(config.file_system), config.path, snapshot_lsn,
                             snapshot_database_id, config.wal_recovery, syncs(config), index));
  // A snapshot written before ids existed: the writer that first logged
  // after it chose one, and every writer since keeps it, so that no segment
  // of this database records another id than its next snapshot will.
  std::uint64_t database_id = snapshot_database_id;
  if (database_id == 0) database_id = replayed.newest_database_id;
  if (database_id == 0) database_id = new_random_id();
  std::unique_ptr<WalLog> log(
      new WalLog(config, std::move(lock), database_id, replayed.next_segment, replayed.next_lsn));
  log->replay_ = std::move(replayed.report);
  {
    std::lock_guard guard(log->mutex_);
    log->open_control(replayed.next_lsn - 1);
  }
  log->set_aside_at_checkpoint_ = std::move(replayed.set_aside_at_checkpoint);
  // Otherwise the first commit starts the next segment, so a load that never
  // writes creates no file.
  if (replayed.checkpoint_due) {
    log->checkpoint_due_ = true;
    log->failure_ = "recovery dropped records or set segments aside; a checkpoint must come first";
  }
  return log;
}

bool WalLog::needs_checkpoint() const {
  std::lock_guard lock(mutex_);
  return checkpoint_due_;
}

Result<void> WalLog::check_writable() const {
  if (failure_.empty()) return success();
  return fail(ErrorKind::Io, fmt::format("{}: the write-ahead log refuses writes until a "
                                         "checkpoint: {}",
                                         config_.path.string(), failure_));
}

Result<void> WalLog::start_segment() {
  // The header is synced whatever the policy (once per segment): a header
  // lost while later pages of the segment survive would be indistinguishable
  // from a damaged header, which refuses the load.
  auto writer = WalWriter::create(file_system_or_default(config_.file_system), config_.path,
                                  next_segment_, next_lsn_, /*sync=*/true, database_id_);
  if (!writer) {
    failure_ = writer.error().message();
    return writer.error();
  }
  writer_ = std::move(writer).value();
  ++next_segment_;
  durable_lsn_ = next_lsn_ - 1;
  // With a syncing policy, everything before this segment is on disk: the
  // checkpoint's snapshot, or what recovery replayed (and synced).
  if (syncs(config_)) synced_watermark_ = next_lsn_ - 1;
  failure_.clear();
  return success();
}

Result<void> WalLog::wait_durable(std::unique_lock<std::mutex>& lock, std::uint64_t lsn) {
  while (durable_lsn_ < lsn) {
    IQDB_TRY(check_writable());
    // A sync in flight covers this record, or a leader gathering its group
    // will: join it.
    if (syncing_upto_ >= lsn || gathering_group_) {
      wait_for_change(lock);
      continue;
    }
    // Lead a group commit: one sync covers every record written so far, and
    // the records that others append meanwhile get the next one (which may
    // start before this one ends: the kernel merges concurrent syncs).
    gather_group(lock);
    const std::uint64_t target = next_lsn_ - 1;
    syncing_upto_ = std::max(syncing_upto_, target);
    ++syncs_in_flight_;
    peak_writers_ = writers_in_commit_;
    WalWriter& writer = *writer_;
    lock.unlock();
    const auto started = std::chrono::steady_clock::now();
    auto synced = writer.sync();
    const auto took = std::chrono::steady_clock::now() - started;
    lock.lock();
    --syncs_in_flight_;
    expected_group_ = peak_writers_;
    max_group_wait_ = std::chrono::duration_cast<std::chrono::nanoseconds>(took) / 2;
    if (synced) {
      durable_lsn_ = std::max(durable_lsn_, target);
      synced_watermark_ = std::max(synced_watermark_, target);
    } else {
      failure_ = synced.error().message();
    }
    notify_waiters();
  }
  return success();
}

void WalLog::gather_group(std::unique_lock<std::mutex>& lock) {
  // The writers that came during the last sync are likely to be back within
  // microseconds, each with a record: waiting for them (up to half a sync)
  // lets one sync carry them all, where syncing at once would leave each
  // record its own sync. PostgreSQL's commit_delay does the same; here the
  // group size and the wait are learnt from the last sync, so a lone writer
  // never waits.
  if (expected_group_ <= 1) return;
  const auto pending = [this] { return next_lsn_ - 1 - std::max(durable_lsn_, syncing_upto_); };
  const auto deadline = std::chrono::steady_clock::now() + max_group_wait_;
  gathering_group_ = true;
  while (pending() < expected_group_ && failure_.empty() &&
         std::chrono::steady_clock::now() < deadline) {
    lock.unlock();
    std::this_thread::yield();
    lock.lock();
  }
  gathering_group_ = false;
}

namespace {

// commit()'s refusal of an oversized record, kept out of its path.
[[gnu::cold, gnu::noinline]] Result<void> record_too_large(const std::filesystem::path& path,
                                                           std::size_t body_size) {
  return fail(ErrorKind::InvalidArgument,
              fmt::format("{}: a log record of {} bytes exceeds the format's {} bytes: split "
                          "the batch",
                          path.string(), body_size, wal_format::kMaxBodyLength));
}

}  // namespace

Result<void> WalLog::commit(std::span<const WalOp> ops, bool as_batch, const OpApplier& index) {
  for (const WalOp& op : ops) {
    if (!plainly_encodable(op)) IQDB_TRY(check_encodable(op));
  }
  std::unique_lock lock(mutex_);
  // Counts this writer for group commit (gather_group), until it returns.
  struct CountWriter {
    WalLog& log;
    explicit CountWriter(WalLog& log) : log(log) {
      ++log.writers_in_commit_;
      log.peak_writers_ = std::max(log.peak_writers_, log.writers_in_commit_);
    }
    ~CountWriter() { --log.writers_in_commit_; }
  } count_writer(*this);
  await(lock, [this] { return !checkpointing_; });
  if (!failure_.empty()) [[unlikely]]
    return check_writable();
  if (!writer_) IQDB_TRY(start_segment());
  const std::size_t body_size = wal_body_size(ops, as_batch);
  if (body_size > wal_format::kMaxBodyLength) [[unlikely]] {
    return record_too_large(config_.path, body_size);
  }
  // The body is encoded after room for the frame header, which the writer
  // fills in whole, so that it frames the record in place. Records of the
  // previous one's size (the usual case) resize nothing: the buffer is neither
  // grown nor zero-filled before the body is written over it.
  frame_.resize(wal_format::kFrameHeaderSize + body_size);
  encode_body(std::span<std::byte>(frame_).subspan(wal_format::kFrameHeaderSize), ops, as_batch);
  auto lsn = writer_->append_frame(frame_, synced_watermark_);
  if (!lsn) [[unlikely]] {
    failure_ = lsn.error().message();
    return lsn.error();
  }
  next_lsn_ = lsn.value() + 1;
  if (gathering_group_) notify_waiters();
  const std::uint64_t ticket = next_ticket_++;
  // The next commit's turn comes however this one ends, exceptions included.
  // Replicas hear of it then too: what it applied, or its Abort record.
  struct PassTurn {
    WalLog& log;
    ~PassTurn() {
      ++log.apply_turn_;
      log.announce(log.next_lsn_ - 1);
      log.notify_waiters();
    }
  } pass_turn{*this};

  const auto my_turn = [&] { return apply_turn_ == ticket; };
  if (config_.fsync_policy.kind() == FsyncPolicy::Kind::Always) {
    auto durable = wait_durable(lock, lsn.value());
    await(lock, my_turn);
    if (!durable) return durable;
  } else {
    await(lock, my_turn);
  }
  AppliedOps applied = [&] {
    try {
      return apply_in_order(ops, index);
    } catch (...) {
      failure_ = fmt::format("the index threw while applying the record at LSN {}", lsn.value());
      throw;
    }
  }();
  if (!applied.outcome) [[unlikely]] {
    // The caller hears the refusal; a failure to log it surfaces on the next commit.
    (void)log_abort(lock, lsn.value(), applied.applied);
  }
  return std::move(applied.outcome);
}

Result<void> WalLog::log_abort(std::unique_lock<std::mutex>& lock, std::uint64_t lsn,
                               std::uint32_t applied) {
  IQDB_TRY(check_writable());
  frame_.assign(wal_format::kFrameHeaderSize, std::byte{0});
  encode_abort(frame_, lsn, applied);
  auto abort_lsn = writer_->append_frame(frame_, synced_watermark_);
  if (!abort_lsn) {
    failure_ = abort_lsn.error().message();
    return abort_lsn.error();
  }
  next_lsn_ = abort_lsn.value() + 1;
  if (config_.fsync_policy.kind() != FsyncPolicy::Kind::Always) {
    return success();
  }
  return wait_durable(lock, abort_lsn.value());
}

Result<void> WalLog::sync() {
  std::unique_lock lock(mutex_);
  return wait_durable(lock, next_lsn_ - 1);
}

Result<void> WalLog::checkpoint(const SaveSnapshot& save) {
  std::unique_lock lock(mutex_);
  await(lock, [this] { return !checkpointing_; });
  // New commits wait from here on, so that the ones in flight can drain.
  checkpointing_ = true;
  struct Reopen {
    WalLog& log;
    ~Reopen() {
      log.checkpointing_ = false;
      log.notify_waiters();
    }
  } reopen{*this};
  await(lock, [this] { return apply_turn_ == next_ticket_ && syncs_in_flight_ == 0; });
  const std::uint64_t last_lsn = next_lsn_ - 1;
  IQDB_TRY(save(last_lsn));
  if (checkpoint_due_) replay_.checkpointed = true;
  checkpoint_due_ = false;
  if (writer_) {
    (void)writer_->close();  // superseded by the snapshot, whatever its state
    writer_.reset();
  }
  // Every segment now holds only LSNs <= last_lsn: remove them all, except
  // those recovery said to move aside. One that cannot be removed is harmless
  // (recovery skips what the snapshot holds) and the next checkpoint tries
  // again; one that cannot be moved aside stays, and the next load, finding
  // its damage, moves it. The checkpoint itself has succeeded.
  FileSystem& fs = file_system_or_default(config_.file_system);
  const auto kept = std::move(set_aside_at_checkpoint_);
  set_aside_at_checkpoint_.clear();
  if (auto moved = set_aside_segments(fs, kept, syncs(config_), replay_); !moved) {
    replay_.notes.push_back(moved.error().to_string() + " (left in place; the next load moves it)");
  }
  auto numbers = list_wal_segments(fs, config_.path);
  if (numbers) {
    for (const std::uint64_t number : numbers.value()) {
      next_segment_ = std::max(next_segment_, number + 1);
      const auto segment = wal_segment_path(config_.path, number);
      if (std::find(kept.begin(), kept.end(), segment) == kept.end()) (void)fs.remove(segment);
    }
  }
  return start_segment();
}

void WalLog::run_flusher() {
  std::unique_lock lock(mutex_);
  const auto interval = config_.fsync_policy.interval();
  while (!stopping_) {
    flusher_wakeup_.wait_for(lock, interval, [this] { return stopping_; });
    if (stopping_) break;
    if (writer_ && failure_.empty() && durable_lsn_ < next_lsn_ - 1) {
      (void)wait_durable(lock, next_lsn_ - 1);  // a failure refuses later commits
    }
  }
}

}  // namespace iqdb::persist::detail
