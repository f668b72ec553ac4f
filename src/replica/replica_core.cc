// ReplicaCore (iqdb/persist/detail/replica_core.h): the files side of a
// read-only replica.
#include "iqdb/persist/detail/replica_core.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "db/snapshot_io.h"
#include "iqdb/persist/detail/deferred_release.h"
#include "iqdb/persist/file_system.h"
#include "wal/control_file.h"
#include "wal/wal_format.h"
#include "wal/wal_tailer.h"

namespace iqdb::persist::detail {
namespace {

// The snapshot a generation was built from, and the log after it.
struct GenerationFiles {
  FileStatus snapshot;  // identity when opened
  std::uint64_t snapshot_lsn = 0;
  std::uint64_t database_id = 0;  // the snapshot's (0: not recorded)
  std::unique_ptr<WalTailer> tailer;
};

bool same_snapshot(const FileStatus& a, const FileStatus& b) {
  return a.same_file(b) && a.size == b.size;
}

}  // namespace

class ReplicaCore::Impl {
 public:
  Impl(PersistConfig config, ReplicaOptions options)
      : config_(std::move(config)),
        options_(options),
        fs_(file_system_or_default(config_.file_system)) {}

  const PersistConfig& config() const { return config_; }
  const ReplicaOptions& options() const { return options_; }

  Step check() {
    look_for_control();
    auto status = fs_.status(config_.path);
    // A missing snapshot (a copier between delete and create) is "not yet":
    // the current generation stays.
    if (status && !same_snapshot(status.value(), current_.snapshot)) {
      if (pending_.tailer && same_snapshot(status.value(), pending_.snapshot)) {
        return Step::CatchUp;
      }
      if (failed_ && same_snapshot(status.value(), failed_->snapshot)) return Step::Failed;
      checked_snapshot_ = status.value();  // open_snapshot() need not stat it again
      return Step::Switch;
    }
    // The snapshot is missing (a copier between delete and create): a
    // pending generation goes on catching up. Or the path holds the current
    // generation's snapshot again: a pending one has nothing to catch up to.
    if (pending_.tailer) {
      if (!status) return Step::CatchUp;
      drop_pending();
    }
    return current_.tailer->maybe_changed() ? Step::Tail : Step::Nothing;
  }

  bool snapshot_unchanged() {
    auto status = fs_.status(config_.path);
    return !status || same_snapshot(status.value(), current_.snapshot);
  }

  void switch_failed(const PersistError& error) {
    // The file the switch tried, as open_snapshot() saw it before opening it
    // (none if it could not even stat one: the next check looks again).
    if (attempted_snapshot_) failed_ = FailedSwitch{*attempted_snapshot_, error};
    drop_pending();
  }

  bool has_pending() const { return pending_.tailer != nullptr; }
  bool pending_is_other_database() const {
    return pending_.tailer && current_.tailer &&
           !wal_format::same_database(current_.database_id, pending_.database_id);
  }
  bool pending_log_ends_here() {
    if (!pending_.tailer || !pending_.tailer->segment_header_checked()) return false;
    auto status = fs_.status(config_.path);
    return status && same_snapshot(status.value(), pending_.snapshot);
  }
  void drop_pending() {
    pending_ = GenerationFiles{};
    attempted_snapshot_.reset();
  }
  const PersistError& failed_switch() const { return failed_->error; }

  Result<SnapshotView> open_snapshot(std::string_view index_type) {
    pending_ = GenerationFiles{};
    // Stat before opening (or use check()'s): if the file is replaced in
    // between, the next check sees another identity and switches again, to
    // the file now there.
    FileStatus status;
    if (checked_snapshot_) {
      status = *std::exchange(checked_snapshot_, std::nullopt);
    } else {
      IQDB_TRY_ASSIGN(status, fs_.status(config_.path));
    }
    attempted_snapshot_ = status;
    IQDB_TRY_ASSIGN(auto opened, detail::open_snapshot(config_, index_type));
    const std::uint64_t lsn = opened.view.header().wal_lsn;
    pending_.snapshot = status;
    pending_.snapshot_lsn = lsn;
    pending_.database_id = opened.view.header().database_id;
    // The segment the current generation follows is where a checkpoint
    // continued its log, not that of a database recreated at the path.
    const bool same_log =
        current_.tailer && wal_format::same_database(current_.database_id, pending_.database_id);
    const auto hint = same_log ? current_.tailer->hint() : WalTailer::SegmentHint{};
    pending_.tailer =
        std::make_unique<WalTailer>(fs_, config_.path, lsn + 1, hint, pending_.database_id);
    return std::move(opened.view);
  }

  Result<Tailed> tail(const OpApplier& index, bool pending) {
    WalTailer& tailer = *(pending ? pending_ : current_).tailer;
    IQDB_TRY_ASSIGN(const auto outcome, tailer.advance(index, options_.records_per_step));
    Tailed tailed;
    tailed.records = outcome.records;
    tailed.detail = outcome.detail;
    switch (outcome.state) {
      case WalTailer::State::CaughtUp:
        tailed.end =
            outcome.records >= options_.records_per_step ? TailEnd::More : TailEnd::CaughtUp;
        break;
      case WalTailer::State::NotYet: tailed.end = TailEnd::NotYet; break;
      case WalTailer::State::NeedsSnapshot: tailed.end = TailEnd::NeedsSnapshot; break;
      case WalTailer::State::Diverged: tailed.end = TailEnd::Diverged; break;
    }
    if (!pending) note_progress(tailed.end);
    return tailed;
  }

  void adopt_pending() {
    // The previous generation's segment may be the last link to a file a
    // checkpoint removed: closing it frees the file, which the release
    // thread waits for instead of this refresh.
    if (current_.tailer) {
      release_in_background(std::make_unique<GenerationFiles>(std::move(current_)),
                            config_.file_system);
    }
    current_ = std::move(pending_);
    pending_ = GenerationFiles{};
    failed_.reset();
    attempted_snapshot_.reset();
    note_progress(TailEnd::CaughtUp);
  }

  std::uint64_t lsn(bool pending) const {
    const auto& files = pending ? pending_ : current_;
    return files.tailer ? files.tailer->next_lsn() - 1 : 0;
  }
  std::uint64_t snapshot_lsn(bool pending) const {
    return (pending ? pending_ : current_).snapshot_lsn;
  }

  ReplicaLag lag() const {
    std::unique_lock guard(lag_mutex_);
    ReplicaLag lag = lag_;
    const auto last_current = last_current_;
    guard.unlock();
    {
      // The writer may have committed since the last refresh.
      std::lock_guard control_guard(control_mutex_);
      if (control_) {
        lag.writer_lsn = std::max({lag.writer_lsn, lag.lsn, control_->committed_lsn()});
        lag.records = lag.writer_lsn - lag.lsn;
        lag.notified = true;
        lag.writer_commit_time = control_->commit_time();
      }
    }
    if (lag.records > 0 || lag.bytes > 0) {
      lag.behind = std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now() - last_current);
    }
    return lag;
  }

  std::uint32_t changes() const {
    std::lock_guard guard(control_mutex_);
    return control_ ? control_->changes() : 0;
  }

  void wait_for_change(std::uint32_t seen, std::chrono::nanoseconds timeout) const {
    std::shared_ptr<const ControlFile> control;
    {
      std::lock_guard guard(control_mutex_);
      control = control_;
    }
    timeout = std::min<std::chrono::nanoseconds>(timeout, options_.poll_interval);
    if (control) {
      control->wait_for_change(seen, timeout);
      return;
    }
    std::unique_lock guard(sleep_mutex_);
    const std::uint64_t wakes = wakes_;
    sleep_cv_.wait_for(guard, timeout, [&] { return wakes_ != wakes; });
  }

  void wake_waiters() const {
    {
      std::lock_guard guard(sleep_mutex_);
      ++wakes_;
    }
    sleep_cv_.notify_all();
    std::lock_guard guard(control_mutex_);
    if (control_) control_->wake_local();
  }

  // The control file exists only on the writer's host and only once a
  // writer has run; look again now and then until it appears.
  void look_for_control() {
    if (config_.file_system != nullptr) return;  // a custom file system: no host files
    {
      std::lock_guard guard(control_mutex_);
      if (control_) return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now < next_control_look_) return;
    next_control_look_ = now + std::chrono::seconds(1);
    auto control = ControlFile::open_for_reader(config_.path);
    if (!control) return;
    std::lock_guard guard(control_mutex_);
    control_ = std::move(control).value();
  }

 private:
  void note_progress(TailEnd end) {
    const std::uint64_t applied = lsn(false);
    std::uint64_t writer = applied;
    bool notified = false;
    {
      std::lock_guard guard(control_mutex_);
      if (control_) {
        writer = std::max(applied, control_->committed_lsn());
        notified = true;
      }
    }
    std::lock_guard guard(lag_mutex_);
    lag_.lsn = applied;
    lag_.writer_lsn = writer;
    lag_.records = writer - applied;
    lag_.bytes = current_.tailer ? current_.tailer->pending_bytes() : 0;
    lag_.notified = notified;
    if (end == TailEnd::CaughtUp && lag_.records == 0) lag_.bytes = 0;
    if (lag_.records == 0 && lag_.bytes == 0) last_current_ = std::chrono::steady_clock::now();
  }

  const PersistConfig config_;
  const ReplicaOptions options_;
  FileSystem& fs_;
  GenerationFiles current_;
  GenerationFiles pending_;
  // The last snapshot a switch failed on: a damaged file is reported at each
  // refresh, not verified again at each poll, until it is replaced.
  struct FailedSwitch {
    FileStatus snapshot;
    PersistError error;
  };
  std::optional<FailedSwitch> failed_;
  std::optional<FileStatus> checked_snapshot_;    // what check() saw when it said Switch
  std::optional<FileStatus> attempted_snapshot_;  // the file the pending switch opens

  mutable std::mutex control_mutex_;
  std::shared_ptr<ControlFile> control_;
  std::chrono::steady_clock::time_point next_control_look_{};

  // Waits without a control file sleep on this, so that wake_waiters() can
  // end them.
  mutable std::mutex sleep_mutex_;
  mutable std::condition_variable sleep_cv_;
  mutable std::uint64_t wakes_ = 0;

  mutable std::mutex lag_mutex_;
  ReplicaLag lag_;
  std::chrono::steady_clock::time_point last_current_ = std::chrono::steady_clock::now();
};

Result<ReplicaCore> ReplicaCore::open(PersistConfig config, ReplicaOptions options) {
  IQDB_TRY(config.validate());
  IQDB_TRY(options.validate());
  auto impl = std::make_unique<Impl>(std::move(config), options);
  impl->look_for_control();
  return ReplicaCore(std::move(impl));
}

ReplicaCore::ReplicaCore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ReplicaCore::ReplicaCore(ReplicaCore&&) noexcept = default;
ReplicaCore& ReplicaCore::operator=(ReplicaCore&&) noexcept = default;
ReplicaCore::~ReplicaCore() = default;

ReplicaCore::Step ReplicaCore::check() { return impl_->check(); }
Result<SnapshotView> ReplicaCore::open_snapshot(std::string_view index_type) {
  return impl_->open_snapshot(index_type);
}
Result<ReplicaCore::Tailed> ReplicaCore::tail(const OpApplier& index, bool pending) {
  return impl_->tail(index, pending);
}
void ReplicaCore::adopt_pending() { impl_->adopt_pending(); }
bool ReplicaCore::has_pending() const { return impl_->has_pending(); }
void ReplicaCore::drop_pending() { impl_->drop_pending(); }
bool ReplicaCore::pending_log_ends_here() { return impl_->pending_log_ends_here(); }
bool ReplicaCore::pending_is_other_database() const { return impl_->pending_is_other_database(); }
void ReplicaCore::switch_failed(const PersistError& error) { impl_->switch_failed(error); }
const PersistError& ReplicaCore::failed_switch() const { return impl_->failed_switch(); }
bool ReplicaCore::snapshot_unchanged() { return impl_->snapshot_unchanged(); }
std::uint64_t ReplicaCore::lsn(bool pending) const { return impl_->lsn(pending); }
std::uint64_t ReplicaCore::snapshot_lsn(bool pending) const { return impl_->snapshot_lsn(pending); }
ReplicaLag ReplicaCore::lag() const { return impl_->lag(); }
const ReplicaOptions& ReplicaCore::options() const { return impl_->options(); }
const PersistConfig& ReplicaCore::config() const { return impl_->config(); }
std::uint32_t ReplicaCore::changes() const { return impl_->changes(); }
void ReplicaCore::wait_for_change(std::uint32_t seen, std::chrono::nanoseconds timeout) const {
  impl_->wait_for_change(seen, timeout);
}
void ReplicaCore::wake_waiters() const { impl_->wake_waiters(); }

}  // namespace iqdb::persist::detail
