#include "iqdb/persist/load_verification.h"

#include <algorithm>
#include <deque>
#include <system_error>
#include <thread>

namespace iqdb::persist {

// The process-wide thread that runs Background checks, so that a load pays a
// queue push rather than a thread start (which costs more than the rest of a
// Skip load). Never destroyed: it outlives every Verification, including
// those destroyed during static destruction.
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
      queue_.push_back(check);
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
    try {
      std::thread([worker] { worker->run(); }).detach();
    } catch (const std::system_error&) {
      delete worker;
      return nullptr;
    }
    return worker;
  }

  void run() {
    std::unique_lock lock(mutex_);
    while (true) {
      queued_.wait(lock, [this] { return !queue_.empty(); });
      Verification* check = queue_.front();
      queue_.pop_front();
      lock.unlock();
      check->run();  // its destructor waits for this when it cannot remove it
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable queued_;
  std::deque<Verification*> queue_;
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
