// BackgroundWorker (background_worker.h).
#include "util/background_worker.h"

#include <pthread.h>

#include <algorithm>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

namespace iqdb::persist {
namespace {

// Every worker, for the fork handlers (registered once for all of them).
struct Registry {
  std::mutex mutex;
  std::vector<BackgroundWorker*> workers;
};

Registry& registry() {
  static Registry* const instance = new Registry;  // never destroyed, like the workers
  return *instance;
}

}  // namespace

BackgroundWorker* BackgroundWorker::create() {
  auto* worker = new BackgroundWorker;
  {
    std::lock_guard lock(worker->mutex_);
    if (!worker->start_thread()) {
      delete worker;
      return nullptr;
    }
  }
  static const bool handlers_registered =
      ::pthread_atfork(&prepare_fork, &after_fork_in_parent, &after_fork_in_child) == 0;
  (void)handlers_registered;
  Registry& all = registry();
  std::lock_guard lock(all.mutex);
  all.workers.push_back(worker);
  return worker;
}

void BackgroundWorker::prepare_fork() {
  Registry& all = registry();
  all.mutex.lock();
  for (BackgroundWorker* worker : all.workers) worker->mutex_.lock();
}

void BackgroundWorker::after_fork_in_parent() {
  Registry& all = registry();
  for (BackgroundWorker* worker : all.workers) worker->mutex_.unlock();
  all.mutex.unlock();
}

void BackgroundWorker::after_fork_in_child() {
  Registry& all = registry();
  for (BackgroundWorker* worker : all.workers) {
    // The child has one thread, this one; whoever waited on the condition
    // variables was a thread of the parent: they are made anew.
    worker->thread_running_ = false;
    if (worker->busy_) {
      if (worker->running_.abandon != nullptr) worker->running_.abandon(worker->running_.object);
      worker->busy_ = false;
    }
    new (&worker->queued_) std::condition_variable();
    new (&worker->idle_) std::condition_variable();
    worker->mutex_.unlock();
  }
  all.mutex.unlock();
}

bool BackgroundWorker::start_thread() {
  try {
    std::thread([this] { run(); }).detach();
  } catch (const std::system_error&) {
    return false;
  }
  thread_running_ = true;
  return true;
}

void BackgroundWorker::post(BackgroundTask task) noexcept {
  bool queued = false;
  {
    std::lock_guard lock(mutex_);
    if (thread_running_ || start_thread()) {
      try {
        queue_.push_back(task);
        queued = true;
      } catch (const std::bad_alloc&) {
        queued = false;
      }
    }
  }
  if (!queued) {
    task.run(task.object);
    return;
  }
  queued_.notify_one();
}

bool BackgroundWorker::remove(const void* object) {
  std::lock_guard lock(mutex_);
  const auto it = std::find_if(queue_.begin(), queue_.end(), [object](const BackgroundTask& task) {
    return task.object == object;
  });
  if (it == queue_.end()) return false;
  queue_.erase(it);
  if (queue_.empty() && !busy_) idle_.notify_all();
  return true;
}

void BackgroundWorker::drain() {
  std::unique_lock lock(mutex_);
  if (!queue_.empty() && !thread_running_ && !start_thread()) return;  // a forked child's queue
  idle_.wait(lock, [this] { return queue_.empty() && !busy_; });
}

void BackgroundWorker::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    queued_.wait(lock, [this] { return !queue_.empty(); });
    running_ = queue_.front();
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    running_.run(running_.object);
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
}

}  // namespace iqdb::persist
