#include "stop_signals.h"

#include <pthread.h>

#include <ctime>

namespace iqdb::tools {

StopSignals::StopSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
}

bool StopSignals::wait(std::chrono::steady_clock::duration timeout) const {
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  timespec limit{};
  limit.tv_sec = static_cast<time_t>(nanos / 1'000'000'000);
  limit.tv_nsec = static_cast<long>(nanos % 1'000'000'000);
  // EAGAIN (timed out) and EINTR (another signal) both mean: not stopped.
  return sigtimedwait(&set_, nullptr, &limit) > 0;
}

}  // namespace iqdb::tools
