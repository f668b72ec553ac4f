#include "iqdb/persist/load_verification.h"

#include <pthread.h>

#include <algorithm>
#include <deque>
#include <new>
#include <system_error>
#include <thread>

namespace iqdb::persist {

// The process-wide thread that runs Background checks, so that a load pays a
// queue push rather than a thread start (which costs more than the rest of a
// Skip load). Never destroyed: it outlives every Verification, including
// those destroyed during static destruction.
//
// fork() copies the queue but not the thread. Around a fork the worker's
// mutex is held (so the child never inherits it locked mid-operation); in
// the child the thread is started again by the next post(), and a check the
// parent's thread was running is failed there (no thread will finish it), so
// that nothing in the child waits for it forever. Replicas and tests fork
// processes that load snapshots.
class VerificationWorker {
 public:
  // Null when no thread can be started.
  static VerificationWorker* instance() {
    static VerificationWorker* const worker = create();
    return worker;
  }

  void post(Verification* check) {
    {
      std::lock_guard lock(mutex_);
      if (thread_running_ || start_thread()) {
        queue_.push_back(check);
        check = nullptr;
      }
    }
    if (check != nullptr) {
      check->run();  // no thread could be started: run it here
      return;
    }
    queued_.notify_one();
  }

  // Removes `check` if it has not started; false if it has (or has run).
  bool remove(Verification* check) {
    std::lock_guard lock(mutex_);
    const auto it = std::find(queue_.begin(), queue_.end(), check);
    if (it == queue_.end()) return false;
    queue_.erase(it);
    return true;
  }

 private:
  static VerificationWorker* create() {
    auto* worker = new VerificationWorker;
    std::lock_guard lock(worker->mutex_);
    if (!worker->start_thread()) {
      delete worker;
      return nullptr;
    }
    ::pthread_atfork([] { instance()->mutex_.lock(); }, [] { instance()->mutex_.unlock(); },
                     [] { instance()->after_fork_in_child(); });
    return worker;
  }

  // Under mutex_.
  bool start_thread() {
    try {
      std::thread([this] { run(); }).detach();
    } catch (const std::system_error&) {
      return false;
    }
    thread_running_ = true;
    return true;
  }

  // In a forked child, with mutex_ held by the forking thread (prepare).
  void after_fork_in_child() {
    thread_running_ = false;
    if (running_ != nullptr) running_->abandon_after_fork();
    running_ = nullptr;
    mutex_.unlock();
  }

  void run() {
    std::unique_lock lock(mutex_);
    while (true) {
      queued_.wait(lock, [this] { return !queue_.empty(); });
      Verification* check = queue_.front();
      queue_.pop_front();
      running_ = check;
      lock.unlock();
      check->run();  // its destructor waits for this when it cannot remove it
      lock.lock();
      running_ = nullptr;
    }
  }

  std::mutex mutex_;
  std::condition_variable queued_;
  std::deque<Verification*> queue_;
  bool thread_running_ = false;
  Verification* running_ = nullptr;  // the check the thread is running, if any
};

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
  if (VerificationWorker* worker = VerificationWorker::instance()) {
    worker->post(verification.get());
  } else {
    verification->run();
  }
  return verification;
}

Verification::~Verification() {
  stop_.store(true, std::memory_order_relaxed);
  VerificationWorker* worker = VerificationWorker::instance();
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
