// Releasing retired objects off the caller's thread
// (iqdb/persist/detail/deferred_release.h).
#include "iqdb/persist/detail/deferred_release.h"

#include "util/background_worker.h"

namespace iqdb::persist::detail {
namespace {

// Started by the first release.
LazyBackgroundWorker g_release_worker;

}  // namespace

void release_in_background(std::unique_ptr<Releasable> object) noexcept {
  if (!object) return;
  BackgroundWorker* worker = g_release_worker.get();
  if (worker == nullptr) return;  // `object` is destroyed here
  // No abandon function: in a child forked while the worker was destroying
  // this object, it is left alone (part of it may be gone already).
  worker->post(
      {object.release(), [](void* held) { delete static_cast<Releasable*>(held); }, nullptr});
}

void wait_for_background_releases() {
  if (BackgroundWorker* worker = g_release_worker.if_started()) worker->drain();
}

}  // namespace iqdb::persist::detail
