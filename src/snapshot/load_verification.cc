#include "iqdb/persist/load_verification.h"

#include <new>

#include "util/background_worker.h"

namespace iqdb::persist {

namespace {

// The process-wide thread that runs Background checks, so that a load pays a
// queue push rather than a thread start (which costs more than the rest of a
// Skip load). Started by the first Background check.
LazyBackgroundWorker g_verification_worker;

}  // namespace

std::shared_ptr<Verification> Verification::not_run() {
  return std::shared_ptr<Verification>(new Verification(State::NotRun, 0));
}

std::shared_ptr<Verification> Verification::passed(std::uint64_t bytes) {
  std::shared_ptr<Verification> verification(new Verification(State::Passed, bytes));
  verification->set_progress(bytes);
  return verification;
}

std::shared_ptr<Verification> Verification::start(std::uint64_t total_bytes, Check check) {
  std::shared_ptr<Verification> verification(new Verification(State::Running, total_bytes));
  verification->check_ = std::move(check);
  if (BackgroundWorker* worker = g_verification_worker.get()) {
    // In a child forked while the worker ran it, the check fails (no thread
    // will finish it there), so that nothing in the child waits forever.
    worker->post({verification.get(), [](void* check) { static_cast<Verification*>(check)->run(); },
                  [](void* check) { static_cast<Verification*>(check)->abandon_after_fork(); }});
  } else {
    verification->run();
  }
  return verification;
}

Verification::~Verification() {
  stop_.store(true, std::memory_order_relaxed);
  // Only a worker that was started can hold this check.
  BackgroundWorker* worker = g_verification_worker.if_started();
  if (worker != nullptr && worker->remove(this)) return;  // never started
  std::unique_lock lock(mutex_);
  finished_.wait(lock, [this] { return state_ != State::Running; });
}

void Verification::abandon_after_fork() {
  // The child has one thread, this one: nobody can hold the lock but the
  // parent's worker, which does not exist here, so it is made anew.
  new (&mutex_) std::mutex();
  new (&finished_) std::condition_variable();
  failure_ = PersistError(ErrorKind::Io,
                          "verification interrupted: the process forked while it ran; load the "
                          "snapshot again in this process to verify it");
  state_ = State::Failed;
}

void Verification::run() {
  Check check = std::move(check_);
  finish(stop_requested() ? fail(ErrorKind::Io, "verification stopped") : check(*this));
}

Verification::State Verification::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

Result<void> Verification::wait() const {
  std::unique_lock lock(mutex_);
  finished_.wait(lock, [this] { return state_ != State::Running; });
  if (failure_) return *failure_;
  return success();
}

void Verification::finish(Result<std::uint64_t> outcome) {
  // Notified under the lock: the destructor may run as soon as the state
  // changes, and the condition variable must outlive the notification.
  std::lock_guard lock(mutex_);
  if (outcome) {
    set_progress(outcome.value());
    state_ = State::Passed;
  } else {
    failure_ = outcome.error();
    state_ = State::Failed;
  }
  finished_.notify_all();
}

}  // namespace iqdb::persist
