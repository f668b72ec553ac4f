// The write-ahead log behind PersistedIndex: recovery, group commit,
// the Periodic flusher and checkpoints (see iqdb/persist/detail/wal_log.h).
#include "iqdb/persist/detail/wal_log.h"

#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>

#include "util/file_paths.h"
#include "iqdb/persist/detail/snapshot_io.h"
#include "iqdb/persist/file_system.h"
#include "wal/wal_format.h"
#include "wal/wal_reader.h"
#include "wal/wal_record.h"
#include "wal/wal_recovery.h"
#include "wal/wal_segments.h"
#include "wal/wal_writer.h"

namespace iqdb::persist::detail {
namespace {

bool syncs(const PersistConfig& config) { return config.fsync_policy.syncs_snapshots(); }

// Snapshot LSN -> how many ops of each aborted mutation were applied.
using AbortedOps = std::unordered_map<std::uint64_t, std::uint32_t>;

// Applies the frames of one replay range: the validated second pass.
class Replayer {
 public:
  Replayer(ApplyOp apply, WalReplayReport& report) : apply_(apply), report_(report) {}

  // Pass one: the Abort records of the range (each names an earlier LSN).
  Result<void> collect_aborts(const OpenedWalSegment& segment, const WalReplayRange& range) {
    return visit(segment, range,
                 [this](std::uint64_t, std::span<const std::byte> body,
                        const std::string& context) -> Result<void> {
                   if (static_cast<WalRecordType>(body[0]) != WalRecordType::Abort) {
                     return boost::outcome_v2::success();
                   }
                   IQDB_TRY(decode_record(body, record_, context));
                   aborted_[record_.aborted_lsn()] = record_.aborted_applied_ops();
                   return boost::outcome_v2::success();
                 });
  }

  // Pass two: apply every mutation, as much of it as the index applied live.
  Result<void> apply(const OpenedWalSegment& segment, const WalReplayRange& range) {
    return visit(segment, range,
                 [this](std::uint64_t lsn, std::span<const std::byte> body,
                        const std::string& context) { return apply_record(lsn, body, context); });
  }

 private:
  using Visit = std::function<Result<void>(std::uint64_t lsn, std::span<const std::byte> body,
                                           const std::string& context)>;

  static Result<void> visit(const OpenedWalSegment& segment, const WalReplayRange& range,
                            const Visit& visit_frame) {
    const std::string context = segment.input.path.string();
    return for_each_wal_frame(
        segment.mapping->bytes(), segment.input.scan.value(), range.last_lsn,
        [&](std::uint64_t lsn, std::span<const std::byte> body) -> Result<void> {
          if (lsn < range.first_lsn) return boost::outcome_v2::success();
          auto visited = visit_frame(lsn, body, context);
          if (!visited) {
            return boost::outcome_v2::failure(
                visited.error().with_context(fmt::format("record LSN {}", lsn)));
          }
          return visited;
        });
  }

  Result<void> apply_record(std::uint64_t lsn, std::span<const std::byte> body,
                            const std::string& context) {
    IQDB_TRY(decode_record(body, record_, context));
    if (record_.type() == WalRecordType::Abort) return boost::outcome_v2::success();
    const auto ops = record_.ops();
    const auto aborted = aborted_.find(lsn);
    const std::size_t limit =
        aborted == aborted_.end() ? ops.size() : std::min<std::size_t>(aborted->second, ops.size());
    ++report_.records_replayed;
    for (std::size_t i = 0; i < limit; ++i) {
      const DecodedOp& op = ops[i];
      const WalOp view = op.kind == WalOp::Kind::Insert
                             ? WalOp::insert(op.id, op.vector, op.metadata)
                             : WalOp::remove(op.id);
      auto applied = apply_(view);
      if (applied) {
        ++report_.ops_applied;
        continue;
      }
      if (aborted != aborted_.end()) {
        // The log says the index applied this op when it was logged.
        return fail(ErrorKind::InvalidPayload,
                    fmt::format("{}: op {} was applied when logged but the index now refuses "
                                "it ({}); the index does not match its log",
                                context, i + 1, applied.error().to_string()));
      }
      // Logged, then refused, and the writer stopped before it could log the
      // refusal: the index refuses it again, so the state matches the writer's.
      report_.ops_refused += ops.size() - i;
      break;
    }
    return boost::outcome_v2::success();
  }

  ApplyOp apply_;  // only used while recover() runs
  WalReplayReport& report_;
  DecodedRecord record_;
  AbortedOps aborted_;
};

// Moves `segments` aside (set_aside_wal_segment) and records it in `report`:
// they hold records the load did not replay, which nothing may delete.
// Returns the first failure, after trying them all.
Result<void> set_aside(const PersistConfig& config, std::span<const std::filesystem::path> segments,
                       WalReplayReport& report) {
  FileSystem& fs = file_system_or_default(config.file_system);
  Result<void> outcome = boost::outcome_v2::success();
  for (const std::filesystem::path& segment : segments) {
    auto moved = set_aside_wal_segment(fs, segment);
    if (!moved) {
      if (outcome) outcome = moved.error();
      continue;
    }
    report.notes.push_back(
        fmt::format("{}: moved aside to {}: it holds records this load did not replay",
                    segment.string(), moved.value().string()));
    report.set_aside.push_back(std::move(moved).value());
  }
  if (!segments.empty() && syncs(config)) {
    auto synced = fs.sync_dir(directory_of(config.path));
    if (!synced && outcome) outcome = synced;
  }
  return outcome;
}

}  // namespace

Result<void> check_no_log(const PersistConfig& config) {
  // Best effort: when the directory cannot be listed, the save that follows
  // reports the problem in its own terms.
  const auto segments = list_wal_segments(file_system_or_default(config.file_system), config.path);
  if (!segments || segments.value().empty()) return boost::outcome_v2::success();
  return fail(ErrorKind::InvalidConfig,
              fmt::format("{}: wal_enabled is false, but the database has a write-ahead log ({} "
                          "segment(s)) whose replay would overwrite this save: save with "
                          "wal_enabled = true (to stop using the log, checkpoint with it on, "
                          "then delete the {}{}* files)",
                          config.path.string(), segments.value().size(),
                          config.path.filename().string(), wal_format::kSegmentInfix));
}

AppliedOps apply_in_order(std::span<const WalOp> ops, const ApplyOp& apply) {
  AppliedOps result;
  for (const WalOp& op : ops) {
    auto applied = apply(op);
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

WalLog::WalLog(PersistConfig config, std::unique_ptr<FileLock> lock, std::uint64_t next_segment,
               std::uint64_t next_lsn)
    : config_(std::move(config)),
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

WalReplayReport WalLog::replay_report() const {
  std::lock_guard lock(mutex_);
  return replay_;
}

Result<std::unique_ptr<WalLog>> WalLog::create(const PersistConfig& config, bool overwrite,
                                               const SaveSnapshot& save,
                                               std::unique_ptr<FileLock> lock) {
  FileSystem& fs = file_system_or_default(config.file_system);
  if (!overwrite) IQDB_TRY(check_no_database(config));
  IQDB_TRY_ASSIGN(const auto segments, list_wal_segments(fs, config.path));
  // The old log goes first: a new snapshot (LSN 0) beside old segments would
  // have them replayed onto it.
  for (const std::uint64_t number : segments) {
    IQDB_TRY(fs.remove(wal_segment_path(config.path, number)));
  }
  if (!segments.empty() && syncs(config)) IQDB_TRY(fs.sync_dir(directory_of(config.path)));
  IQDB_TRY(save(0));
  std::unique_ptr<WalLog> log(new WalLog(config, std::move(lock), 1, 1));
  {
    std::lock_guard guard(log->mutex_);  // the Periodic flusher already runs
    IQDB_TRY(log->start_segment());
  }
  return log;
}

Result<std::unique_ptr<WalLog>> WalLog::recover(const PersistConfig& config,
                                                std::uint64_t snapshot_lsn, const ApplyOp& apply,
                                                std::unique_ptr<FileLock> lock) {
  FileSystem& fs = file_system_or_default(config.file_system);
  IQDB_TRY_ASSIGN(auto segments, open_wal_segments(fs, config.path));
  std::vector<WalSegmentInput> inputs;
  inputs.reserve(segments.size());
  for (const OpenedWalSegment& segment : segments) inputs.push_back(segment.input);
  IQDB_TRY_ASSIGN(const auto plan, plan_wal_recovery(inputs, snapshot_lsn, config.wal_recovery));

  WalReplayReport report;
  report.snapshot_lsn = snapshot_lsn;
  report.last_lsn = std::max(plan.last_lsn, snapshot_lsn);
  report.segments = segments.size();
  report.frames_dropped = plan.frames_dropped;
  report.bytes_dropped = plan.bytes_dropped;
  report.notes = plan.notes;
  Replayer replayer(apply, report);
  for (const WalReplayRange& range : plan.replay) {
    IQDB_TRY(replayer.collect_aborts(segments[range.segment], range));
  }
  for (const WalReplayRange& range : plan.replay) {
    IQDB_TRY(replayer.apply(segments[range.segment], range));
  }
  // What was replayed may exist only in the page cache (the writer died
  // before syncing it). The next segment continues after it, so it must be
  // durable first, or a power loss would leave a gap in the LSN sequence that
  // refuses the load. Whatever the policy: once per load, not per write.
  for (const WalReplayRange& range : plan.replay) {
    IQDB_TRY(fs.sync_file(segments[range.segment].input.path));
  }
  // A segment holding records this load does not replay is moved aside,
  // never deleted: now if nothing was replayed from it, else by the
  // checkpoint, once its snapshot holds what was.
  std::vector<std::filesystem::path> now;
  std::vector<std::filesystem::path> at_checkpoint;
  for (const std::size_t index : plan.set_aside) {
    const bool replayed = std::any_of(plan.replay.begin(), plan.replay.end(),
                                      [&](const WalReplayRange& r) { return r.segment == index; });
    (replayed ? at_checkpoint : now).push_back(segments[index].input.path);
  }
  IQDB_TRY(set_aside(config, now, report));

  const std::uint64_t last_number = segments.empty() ? 0 : segments.back().number;
  const std::uint64_t next_lsn = std::max({plan.max_lsn, plan.last_lsn, snapshot_lsn}) + 1;
  std::unique_ptr<WalLog> log(new WalLog(config, std::move(lock), last_number + 1, next_lsn));
  log->replay_ = std::move(report);
  log->set_aside_at_checkpoint_ = std::move(at_checkpoint);
  // A lossy mode dropped records whose LSNs a new segment would skip: only a
  // snapshot that claims them can make the log consistent again. Otherwise
  // the first commit starts the next segment, so a load that never writes
  // creates no file.
  if (plan.dropped_corruption || plan.max_lsn > plan.last_lsn ||
      !log->set_aside_at_checkpoint_.empty()) {
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
  if (failure_.empty()) return boost::outcome_v2::success();
  return fail(ErrorKind::Io, fmt::format("{}: the write-ahead log refuses writes until a "
                                         "checkpoint: {}",
                                         config_.path.string(), failure_));
}

Result<void> WalLog::start_segment() {
  // The header is synced whatever the policy (once per segment): a header
  // lost while later pages of the segment survive would be indistinguishable
  // from a damaged header, which refuses the load.
  auto writer = WalWriter::create(file_system_or_default(config_.file_system), config_.path,
                                  next_segment_, next_lsn_, /*sync=*/true);
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
  return boost::outcome_v2::success();
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
  return boost::outcome_v2::success();
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

Result<void> WalLog::commit(std::span<const WalOp> ops, bool as_batch, const ApplyOp& apply) {
  for (const WalOp& op : ops) IQDB_TRY(check_encodable(op));
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
  IQDB_TRY(check_writable());
  if (!writer_) IQDB_TRY(start_segment());
  // The body is encoded after room for the frame header, so that the writer
  // frames it in place.
  frame_.assign(wal_format::kFrameHeaderSize, std::byte{0});
  if (as_batch) {
    encode_batch(frame_, ops);
  } else if (ops[0].kind == WalOp::Kind::Insert) {
    static const Metadata kNoMetadata;
    encode_insert(frame_, *ops[0].id, ops[0].vector,
                  ops[0].metadata ? *ops[0].metadata : kNoMetadata);
  } else {
    encode_remove(frame_, *ops[0].id);
  }
  const std::size_t body_size = frame_.size() - wal_format::kFrameHeaderSize;
  if (body_size > wal_format::kMaxBodyLength) {
    return fail(ErrorKind::InvalidArgument,
                fmt::format("{}: a log record of {} bytes exceeds the format's {} bytes: split "
                            "the batch",
                            config_.path.string(), body_size, wal_format::kMaxBodyLength));
  }
  auto lsn = writer_->append_frame(frame_, synced_watermark_);
  if (!lsn) {
    failure_ = lsn.error().message();
    return lsn.error();
  }
  next_lsn_ = lsn.value() + 1;
  if (gathering_group_) notify_waiters();
  const std::uint64_t ticket = next_ticket_++;
  // The next commit's turn comes however this one ends, exceptions included.
  struct PassTurn {
    WalLog& log;
    ~PassTurn() {
      ++log.apply_turn_;
      log.notify_waiters();
    }
  } pass_turn{*this};

  Result<void> durable = boost::outcome_v2::success();
  if (config_.fsync_policy.kind() == FsyncPolicy::Kind::Always) {
    durable = wait_durable(lock, lsn.value());
  }
  await(lock, [&] { return apply_turn_ == ticket; });
  if (!durable) return durable;
  AppliedOps applied;
  try {
    applied = apply_in_order(ops, apply);
  } catch (...) {
    failure_ = fmt::format("the index threw while applying the record at LSN {}", lsn.value());
    throw;
  }
  if (!applied.outcome) {
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
    return boost::outcome_v2::success();
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
  if (auto moved = set_aside(config_, kept, replay_); !moved) {
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
