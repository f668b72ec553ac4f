// Releasing retired objects off the caller's thread. When a replica switches
// to a new generation, the old one is unmapped; when a checkpoint replaced
// its snapshot, that unmapping is the file's last reference, and the kernel
// frees its page cache then: work that grows with the snapshot (10 to 30 ms
// for a 52 MB snapshot a query had read) and that no refresh or query needs
// to wait for.
//
// Not part of the public API. Objects are destroyed on one process-wide
// thread, in the order they were released (on the caller's thread if no
// thread can be started). Objects still queued when the process exits are
// not destroyed: their memory and mappings go with the process.
#ifndef IQDB_PERSIST_DETAIL_DEFERRED_RELEASE_H_
#define IQDB_PERSIST_DETAIL_DEFERRED_RELEASE_H_

#include <cstddef>
#include <memory>
#include <utility>

namespace iqdb::persist::detail {

// Something that can be destroyed on the release thread.
class Releasable {
 public:
  virtual ~Releasable() = default;
};

// Destroys `object` on the release thread.
void release_in_background(std::unique_ptr<Releasable> object) noexcept;

// Waits until every object released so far is destroyed (for tests and
// benchmarks that measure what a release frees).
void wait_for_background_releases();

// Destroys `object` on the release thread, keeping `keep_alive` (for example
// the file system its files came from) until after it.
template <class T, class KeepAlive = std::nullptr_t>
void release_in_background(std::unique_ptr<T> object, KeepAlive keep_alive = nullptr) noexcept {
  struct Holder final : Releasable {
    Holder(std::unique_ptr<T> o, KeepAlive k) : keep_alive(std::move(k)), object(std::move(o)) {}
    KeepAlive keep_alive;  // declared first: destroyed last
    std::unique_ptr<T> object;
  };
  if (!object) return;
  std::unique_ptr<Releasable> holder;
  try {
    holder = std::make_unique<Holder>(std::move(object), std::move(keep_alive));
  } catch (...) {
    return;  // out of memory: `object` is destroyed here, on the caller's thread
  }
  release_in_background(std::move(holder));
}

}  // namespace iqdb::persist::detail

#endif  // IQDB_PERSIST_DETAIL_DEFERRED_RELEASE_H_
