#include "util/random_id.h"

#include <sys/random.h>
#include <unistd.h>

// Header-only XXH3, as content_hash.cc uses it.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <atomic>
#include <chrono>

namespace iqdb {

std::uint64_t new_random_id() {
  std::uint64_t id = 0;
  if (::getrandom(&id, sizeof id, GRND_NONBLOCK) == static_cast<ssize_t>(sizeof id) && id != 0) {
    return id;
  }
  // Without the kernel's entropy: values no two calls on this host share.
  static std::atomic<std::uint64_t> counter{0};
  const struct {
    std::int64_t wall_ns;
    std::int64_t steady_ns;
    std::int64_t pid;
    std::uint64_t count;
  } seed{std::chrono::system_clock::now().time_since_epoch().count(),
         std::chrono::steady_clock::now().time_since_epoch().count(), ::getpid(),
         counter.fetch_add(1)};
  id = XXH3_64bits(&seed, sizeof seed);
  return id != 0 ? id : 1;
}

}  // namespace iqdb
