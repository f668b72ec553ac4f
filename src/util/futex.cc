// Futexes on shared mappings (futex.h).
#include "util/futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <ctime>
#include <thread>

namespace iqdb::persist {

void futex_wake_all(const std::uint32_t* word) {
  ::syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

void futex_wait(const std::uint32_t* word, std::uint32_t seen, std::chrono::nanoseconds timeout) {
  if (timeout <= std::chrono::nanoseconds::zero()) return;
  if (std::atomic_ref<std::uint32_t>(*const_cast<std::uint32_t*>(word)).load() != seen) return;
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  const struct timespec relative {
    static_cast<time_t>(seconds.count()), static_cast<long>((timeout - seconds).count())
  };
  // Not FUTEX_PRIVATE: the word is shared with other processes.
  const long rc = ::syscall(SYS_futex, word, FUTEX_WAIT, seen, &relative, nullptr, 0);
  if (rc != 0 && errno != EAGAIN && errno != ETIMEDOUT && errno != EINTR) {
    std::this_thread::sleep_for(timeout);  // futexes unavailable here: poll
  }
}

}  // namespace iqdb::persist
