#include "iqdb/persist/verification.h"

namespace iqdb::persist {

std::shared_ptr<Verification> Verification::not_run() {
  return std::shared_ptr<Verification>(new Verification(State::NotRun, 0));
}

std::shared_ptr<Verification> Verification::passed(std::uint64_t bytes) {
  std::shared_ptr<Verification> verification(new Verification(State::Passed, bytes));
  verification->set_progress(bytes);
  return verification;
}

Verification::~Verification() {
  stop_.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
}

Verification::State Verification::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

Result<void> Verification::wait() const {
  std::unique_lock lock(mutex_);
  finished_.wait(lock, [this] { return state_ != State::Running; });
  if (failure_) return *failure_;
  return boost::outcome_v2::success();
}

void Verification::finish(Result<std::uint64_t> outcome) {
  {
    std::lock_guard lock(mutex_);
    if (outcome) {
      set_progress(outcome.value());
      state_ = State::Passed;
    } else {
      failure_ = outcome.error();
      state_ = State::Failed;
    }
  }
  finished_.notify_all();
}

}  // namespace iqdb::persist
