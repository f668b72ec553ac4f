// Replica<I>: a read-only copy of a database that follows its writer, in this
// process or in any number of others, on this host or on another that
// receives the writer's files (docs/REPLICATION.md).
//
//   auto opened = Replica<FlatIndex>::open("/data/products.iqdb");
//   Replica<FlatIndex> replica = std::move(opened).value();
//   replica.follow();                              // optional: a background follower
//   {
//     auto view = replica.acquire();               // one generation, held
//     auto hits = view.index().search(query, 10);  // sees one state throughout
//   }
//   replica.wait_for(writer_lsn, 1s);              // read your own writes
//
// A replica never writes a file and never takes the writer lock: it works in
// a read-only directory, on read-only files, beside a writer. It loads the
// snapshot (zero-copy where the index allows) and applies the log records
// after it. refresh() brings it up to date: it applies the records the writer
// appended since; when the writer has checkpointed, it builds a new
// generation from the new snapshot and the log after it, and switches to it
// once that generation has reached the LSN served (a replica that tailed the
// log past the checkpoint may have to wait for the log after it).
// What it cannot read yet (a frame the writer is still writing, a file a
// copier has not finished) is "not yet": it waits, it does not fail, and it
// never applies part of a record.
//
// Generations. Queries run on a View from acquire(): a reference-counted
// generation (a snapshot, its index and the records applied to it) plus a
// shared hold on it. While any View of a generation lives, the replica does
// not change that generation (records wait; they are applied once the views
// are released), and a switch leaves it intact: its mapping stays valid
// until its last View is gone. So a View sees one state, the writer's at
// View::lsn(), from start to end, never a mix. A generation nothing holds any
// more is released (unmapped, its files closed) on a library thread, not by
// the refresh or the query that let it go: when a checkpoint replaced its
// snapshot, that is when the kernel frees the old file, in time that grows
// with the file (10 to 30 ms for 52 MB here). The writer never waits for a
// replica, and a dead or slow replica costs the writer nothing. Hold Views
// for the duration of a query, not longer: a View held forever stops the
// replica at its LSN (lag() shows it); a thread that holds a View of the
// current generation cannot refresh (InvalidArgument: it would wait for
// itself). A View must be released by the thread that acquired it. A refresh waiting to apply
// records holds back new Views (not those of a thread already holding one), so a steady stream of
// queries does not starve it.
//
// Freshness. On the writer's host, the writer wakes waiting replicas at each
// commit through its control file ("<snapshot>.control"), so a follower sees
// a commit within microseconds; elsewhere, or when that file cannot be used,
// a follower looks every options.poll_interval. A record is visible to a
// replica once the writer has written it, which may be before its insert()
// returns (and, under FsyncPolicy::always(), after it is durable).
//
// LSNs only increase, with two exceptions that start a new history: the
// writer recreated the database (OpenMode::Overwrite), or records a replica
// on another host applied were lost with the writer's host before they were
// durable (the replica then rebuilds from the snapshot: docs/REPLICATION.md).
// A recreated database has a new database id in its snapshot and segment
// headers: the replica never applies its log to the old database's state,
// even where both logs have the same segment names and LSNs; it waits for
// the new snapshot and switches to it. (Unless the snapshot it serves
// records no id: written by a version before ids, docs/FORMAT.md.)
//
// Damage. A frame that does not check out is never applied; the replica
// stops before it and waits (its lag grows) until the writer moves past it:
// a new segment that continues after the last good record, or a checkpoint.
// A snapshot that does not load is an error of refresh(), repeated without
// reading the file again until it is replaced; the current generation stays.
//
// Verification: config.verify applies to each snapshot a replica opens (Skip
// or Background make a switch cost the same whatever the snapshot's size).
// Log frames are always checked (CRC and LSN) before they are applied.
//
// Thread-safety: every method may be called from any thread; refreshes (and
// the follower's) run one at a time. The index is only read through Views;
// I's const methods must be safe to call concurrently.
#ifndef IQDB_PERSIST_REPLICA_H_
#define IQDB_PERSIST_REPLICA_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "iqdb/index.h"
#include "iqdb/persist/config.h"
#include "iqdb/persist/detail/deferred_release.h"
#include "iqdb/persist/detail/replica_core.h"
#include "iqdb/persist/detail/snapshot_io.h"
#include "iqdb/persist/detail/wal_op.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/persistable.h"
#include "iqdb/persist/replica_options.h"

namespace iqdb::persist {

template <Persistable I>
class Replica {
  struct Generation;

 public:
  // The lock of one generation: shared by Views, exclusive while records are
  // applied. A refresh waiting for the exclusive hold makes new Views wait
  // (so that a stream of queries cannot starve the replica), except in a
  // thread that already holds a View, which would otherwise deadlock.
  class HoldLock {
   public:
    void lock_shared() {
      std::vector<const HoldLock*>& held = held_by_this_thread();
      if (held.empty()) {
        while (refresh_waiting_.load()) refresh_waiting_.wait(true);
      }
      mutex_.lock_shared();
      held.push_back(this);
    }
    void unlock_shared() {
      std::vector<const HoldLock*>& held = held_by_this_thread();
      const auto it = std::find(held.rbegin(), held.rend(), this);
      if (it != held.rend()) held.erase(std::next(it).base());
      mutex_.unlock_shared();
    }
    void lock() {
      refresh_waiting_.store(true);
      mutex_.lock();
      refresh_waiting_.store(false);
      refresh_waiting_.notify_all();
    }
    void unlock() { mutex_.unlock(); }

    // Whether the calling thread holds this lock shared (a View of it).
    bool held_here() const {
      const std::vector<const HoldLock*>& held = held_by_this_thread();
      return std::find(held.begin(), held.end(), this) != held.end();
    }

   private:
    // The generations this thread holds Views of, in acquisition order.
    static std::vector<const HoldLock*>& held_by_this_thread() {
      thread_local std::vector<const HoldLock*> held;
      return held;
    }
    std::shared_mutex mutex_;  // prefers readers (glibc): a nested View never waits
    std::atomic<bool> refresh_waiting_{false};
  };

  // One generation of the replica, held: the index as it was at lsn(). Keeps
  // its generation (and its snapshot's mapping) alive and unchanged until
  // destroyed. Movable, not copyable.
  class View {
   public:
    const I& index() const { return generation_->index; }
    // Every log record up to it is applied, and none after it.
    std::uint64_t lsn() const { return generation_->lsn; }
    // The replica's count of generations, 1 for the first: a new one per
    // snapshot it switched to.
    std::uint64_t generation() const { return generation_->number; }
    // The LSN of the snapshot the generation was built from.
    std::uint64_t snapshot_lsn() const { return generation_->snapshot_lsn; }

   private:
    friend class Replica;
    explicit View(std::shared_ptr<Generation> generation)
        : generation_(std::move(generation)), hold_(generation_->mutex) {}

    std::shared_ptr<Generation> generation_;
    std::shared_lock<HoldLock> hold_;
  };

  // Opens the database at config.path read-only and brings the replica up to
  // date (the snapshot, then every readable log record after it). config's
  // log options (wal_enabled, fsync_policy, wal_recovery) are ignored.
  // Errors: those of PersistConfig::validate() and ReplicaOptions::validate();
  // NotFound when there is no snapshot; every error of load() but the
  // writer lock; InvalidPayload when a log frame with a valid CRC does not
  // decode.
  [[nodiscard]] static Result<Replica> open(PersistConfig config, ReplicaOptions options = {}) {
    IQDB_TRY_ASSIGN(auto core, detail::ReplicaCore::open(std::move(config), options));
    Replica replica(std::make_unique<State>(std::move(core)));
    std::lock_guard guard(replica.state_->refresh_mutex);
    RefreshReport report;
    IQDB_TRY(replica.state_->switch_generation(report));
    return replica;
  }

  // Applies what the writer logged since the last refresh, switching to a
  // new generation when the writer has checkpointed. Errors (the replica then
  // keeps serving its current generation): those of open() for a new
  // snapshot that cannot be loaded (returned again, without reading the file
  // again, until the file is replaced); InvalidPayload for a damaged log
  // record; Io; InvalidArgument when records are due and the calling thread
  // holds a View of the current generation.
  [[nodiscard]] Result<RefreshReport> refresh() {
    if (state_->current()->mutex.held_here()) {
      // This thread holds the current generation: it may switch to a new
      // one, but not apply records to this one (that waits for its View),
      // and not wait for a refresh in another thread (which may be waiting
      // for its View).
      std::unique_lock guard(state_->refresh_mutex, std::try_to_lock);
      if (!guard.owns_lock()) {
        RefreshReport busy;
        busy.waiting = "another thread is refreshing";
        return busy;
      }
      return state_->refresh(/*may_apply=*/false);
    }
    std::lock_guard guard(state_->refresh_mutex);
    return state_->refresh(/*may_apply=*/true);
  }

  // Waits until every record up to `lsn` is applied (true), or `timeout`
  // passes (false), refreshing as needed. Errors: those of refresh().
  template <class Rep, class Period>
  [[nodiscard]] Result<bool> wait_for(std::uint64_t lsn,
                                      std::chrono::duration<Rep, Period> timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    IQDB_TRY(state_->check_no_view_held());
    for (;;) {
      const std::uint32_t seen = state_->core.changes();
      {
        std::lock_guard guard(state_->refresh_mutex);
        if (state_->applied_lsn() >= lsn) return true;
        IQDB_TRY(state_->refresh());
        if (state_->applied_lsn() >= lsn) return true;
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      state_->core.wait_for_change(seen, deadline - now);
    }
  }

  // Starts a background thread that refreshes at each commit the writer
  // announces (or every poll_interval), until stop_following() or
  // destruction. Its last error, if its last refresh failed, is in
  // follower_error(). Calling it again while it runs does nothing.
  void follow() {
    std::lock_guard guard(state_->follower_mutex);
    if (state_->follower.joinable()) return;
    state_->stopping = false;
    state_->follower = std::thread([state = state_.get()] { state->run_follower(); });
  }
  void stop_following() { state_->stop_follower(); }
  std::optional<PersistError> follower_error() const {
    std::lock_guard guard(state_->follower_mutex);
    return state_->follower_error;
  }

  // The current generation, held (see View).
  View acquire() const { return View(state_->current()); }

  // The current generation's LSN and number (see View).
  std::uint64_t lsn() const { return state_->core.lag().lsn; }
  std::uint64_t generation() const { return state_->current()->number; }
  ReplicaLag lag() const { return state_->core.lag(); }
  const PersistConfig& config() const { return state_->core.config(); }

  // A moved-from Replica may only be destroyed or assigned to.
  Replica(Replica&&) noexcept = default;
  Replica& operator=(Replica&& other) noexcept {
    if (state_) state_->stop_follower();
    state_ = std::move(other.state_);
    return *this;
  }
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;
  ~Replica() {
    if (state_) state_->stop_follower();
  }

 private:
  struct Generation {
    Generation(I built, std::uint64_t number) : index(std::move(built)), number(number) {}
    I index;
    HoldLock mutex;         // shared by Views, exclusive to apply records
    std::uint64_t lsn = 0;  // written under the exclusive hold
    const std::uint64_t number;
    std::uint64_t snapshot_lsn = 0;
  };

  using Applier = detail::IndexApplier<I>;

  // Everything a Replica owns, behind one pointer so that the follower
  // thread's reference survives a move of the Replica.
  struct State {
    explicit State(detail::ReplicaCore c) : core(std::move(c)) {}

    std::shared_ptr<Generation> current() const {
      std::lock_guard guard(current_mutex);
      return current_generation;
    }
    std::uint64_t applied_lsn() const { return core.lsn(); }

    // Refuses a wait from a thread holding a View of the current generation,
    // before refresh_mutex is taken: applying records would wait for that
    // View, and a follower holding refresh_mutex while it waits for the View
    // would wait for this thread. Only the current generation takes records,
    // so Views of older ones are no obstacle.
    Result<void> check_no_view_held() const {
      if (!current()->mutex.held_here()) return success();
      return refuse_apply();
    }
    Result<void> refuse_apply() const {
      return fail(ErrorKind::InvalidArgument,
                  core.config().path.string() +
                      ": records cannot be applied while this thread holds a View of the current "
                      "generation (refresh() or wait_for() would wait for it): release the View "
                      "first");
    }

    // Under refresh_mutex. Without `may_apply` (the caller holds a View of
    // the current generation), a refresh that would apply records to it is
    // refused.
    Result<RefreshReport> refresh(bool may_apply = true) {
      RefreshReport report;
      const auto step = core.check();
      if (!core.has_pending()) pending_generation.reset();
      switch (step) {
        case detail::ReplicaCore::Step::Nothing: return report;
        case detail::ReplicaCore::Step::CatchUp:
          if (pending_generation) {
            IQDB_TRY(catch_up_pending(report));
            return report;
          }
          [[fallthrough]];  // (the core and this always agree on a pending one)
        case detail::ReplicaCore::Step::Switch: IQDB_TRY(switch_generation(report)); return report;
        case detail::ReplicaCore::Step::Failed: return core.failed_switch();
        case detail::ReplicaCore::Step::Tail: break;
      }
      if (!may_apply) IQDB_TRY(refuse_apply());
      const std::shared_ptr<Generation> generation = current();
      for (;;) {
        std::unique_lock hold(generation->mutex);
        auto tailed = core.tail(Applier(generation->index), false);
        generation->lsn = core.lsn();
        hold.unlock();
        if (!tailed) return tailed.error();
        report.records += tailed.value().records;
        switch (tailed.value().end) {
          case detail::ReplicaCore::TailEnd::More: continue;
          case detail::ReplicaCore::TailEnd::CaughtUp: return report;
          case detail::ReplicaCore::TailEnd::NotYet:
            report.waiting = tailed.value().detail;
            return report;
          case detail::ReplicaCore::TailEnd::NeedsSnapshot:
            // Retired records live in a newer snapshot; until it is there
            // (a copier may deliver it later), wait.
            if (core.snapshot_unchanged()) {
              report.waiting = tailed.value().detail;
              return report;
            }
            [[fallthrough]];
          case detail::ReplicaCore::TailEnd::Diverged:
            IQDB_TRY(switch_generation(
                report, tailed.value().end == detail::ReplicaCore::TailEnd::Diverged));
            return report;
        }
      }
    }

    // Builds a generation from the snapshot now at the path, then applies the
    // log after it and makes it current (catch_up_pending()). A snapshot that
    // does not load is remembered, so that it is not read again until it
    // changes; an error reading the log is returned, and the next refresh
    // goes on. `diverged`: the current generation applied records the writer
    // lost, so the new one may be behind it. Under refresh_mutex.
    Result<void> switch_generation(RefreshReport& report, bool diverged = false) {
      auto built = build_generation();
      if (!built) {
        pending_generation.reset();
        core.switch_failed(built.error());
        return built;
      }
      pending_diverged = diverged;
      return catch_up_pending(report);
    }

    Result<void> build_generation() {
      pending_generation.reset();
      IQDB_TRY_ASSIGN(const SnapshotView snapshot, core.open_snapshot(I::kIndexType));
      IQDB_TRY_ASSIGN(auto index, detail::rebuild_index<I>(snapshot));
      IQDB_TRY(detail::check_rebuilt(snapshot, detail::index_facts(index)));
      const auto previous = current();
      pending_generation = make_generation(std::move(index), previous ? previous->number + 1 : 1);
      pending_generation->snapshot_lsn = snapshot.header().wal_lsn;
      return success();
    }

    // Applies the pending generation's log, then makes it current, unless
    // its log does not reach the current generation's LSN yet: LSNs do not
    // go back because a replica read the log faster than a checkpoint's
    // snapshot appeared (it tailed past the checkpoint before seeing its
    // snapshot, and a newer checkpoint has removed that log since) or a
    // copier delivered the snapshot before its log. The pending generation
    // then waits, the current one is served, and the next refreshes go on
    // with it (Step::CatchUp). It is made current although behind when the
    // current one's history is not the writer's: the log diverged, the new
    // snapshot records another database id (the database was recreated), or
    // is not newer than the current one's (recreated by a version that
    // recorded no id), or the log after the new snapshot, read from a segment
    // whose header says where it starts, ends before the LSN served while
    // that snapshot is still at the path (the writer lost records, or
    // another writer recreated the database and checkpointed).
    Result<void> catch_up_pending(RefreshReport& report) {
      Generation& generation = *pending_generation;
      detail::ReplicaCore::TailEnd end = detail::ReplicaCore::TailEnd::CaughtUp;
      // Not yet shared: no hold needed while its log is applied.
      for (;;) {
        IQDB_TRY_ASSIGN(const auto tailed, core.tail(Applier(generation.index), true));
        report.records += tailed.records;
        end = tailed.end;
        if (end == detail::ReplicaCore::TailEnd::More) continue;
        if (end != detail::ReplicaCore::TailEnd::CaughtUp) report.waiting = tailed.detail;
        break;
      }
      generation.lsn = core.lsn(true);
      if (end == detail::ReplicaCore::TailEnd::Diverged) {
        // It applied a record its writer refused (the Abort came later):
        // built again, from the snapshot, by the next refresh.
        pending_generation.reset();
        core.drop_pending();
        return success();
      }
      const auto previous = current();
      if (previous && generation.lsn < previous->lsn && !may_go_back(generation, *previous, end)) {
        if (report.waiting.empty()) {
          report.waiting = core.config().path.string() + ": the log after the new snapshot (LSN " +
                           std::to_string(generation.snapshot_lsn) + ") reaches LSN " +
                           std::to_string(generation.lsn) + " so far, short of LSN " +
                           std::to_string(previous->lsn) +
                           ", which this replica serves: the new snapshot is served once its "
                           "log gets there";
        }
        return success();
      }
      core.adopt_pending();
      std::shared_ptr<Generation> adopted = std::move(pending_generation);
      {
        std::lock_guard guard(current_mutex);
        current_generation.swap(adopted);
      }
      // `adopted` now holds the previous one: dropped outside current_mutex,
      // so that acquire() never waits for its release.
      report.switched = true;
      return success();
    }

    // Whether the pending generation, behind the current one, starts a new
    // history (see catch_up_pending()).
    bool may_go_back(const Generation& pending, const Generation& served,
                     detail::ReplicaCore::TailEnd end) {
      if (pending_diverged || core.pending_is_other_database()) return true;
      if (pending.snapshot_lsn <= served.snapshot_lsn) return true;
      return end == detail::ReplicaCore::TailEnd::CaughtUp && core.pending_log_ends_here();
    }

    // A generation whose last holder (the replica or a View) hands it to the
    // release thread (detail/deferred_release.h): unmapping it, and the
    // kernel freeing a snapshot a checkpoint replaced, take time that grows
    // with the snapshot. The file system its files came from outlives it.
    std::shared_ptr<Generation> make_generation(I index, std::uint64_t number) const {
      return std::shared_ptr<Generation>(
          new Generation(std::move(index), number),
          [file_system = core.config().file_system](Generation* retired) noexcept {
            detail::release_in_background(std::unique_ptr<Generation>(retired), file_system);
          });
    }

    void run_follower() {
      for (;;) {
        const std::uint32_t seen = core.changes();
        {
          std::lock_guard guard(refresh_mutex);
          auto refreshed = refresh();
          std::lock_guard error_guard(follower_mutex);
          follower_error = refreshed ? std::nullopt : std::optional(refreshed.error());
        }
        if (stopping.load()) return;
        core.wait_for_change(seen, core.options().poll_interval);
        if (stopping.load()) return;
      }
    }

    void stop_follower() {
      std::thread follower_thread;
      {
        std::lock_guard guard(follower_mutex);
        if (!follower.joinable()) return;
        stopping = true;
        follower_thread = std::move(follower);
      }
      core.wake_waiters();
      follower_thread.join();
    }

    detail::ReplicaCore core;
    std::mutex refresh_mutex;
    mutable std::mutex current_mutex;
    std::shared_ptr<Generation> current_generation;
    // Built from a newer snapshot, not served until its log reaches the
    // current generation's LSN (catch_up_pending()). Under refresh_mutex.
    std::shared_ptr<Generation> pending_generation;
    bool pending_diverged = false;  // built because the current one diverged

    mutable std::mutex follower_mutex;
    std::thread follower;
    std::atomic<bool> stopping{false};
    std::optional<PersistError> follower_error;
  };

  explicit Replica(std::unique_ptr<State> state) : state_(std::move(state)) {}

  std::unique_ptr<State> state_;
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_REPLICA_H_
