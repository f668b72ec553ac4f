// BackgroundWorker: one thread, started on first use and never stopped,
// that runs posted tasks one after another, so that a caller pays a queue
// push instead of a thread start or the work itself. The library has two:
// one runs Background verification, one releases retired generations.
//
// Lifetime: a worker is created once and never destroyed, so that it
// outlives every object that posts to it, including those destroyed during
// static destruction. Tasks still queued when the process exits never run.
//
// fork(): the queue is copied into the child, the thread is not. Around a
// fork every worker's mutex is held, so that the child never inherits one
// locked mid-operation; in the child the thread is started again by the next
// post() (or drain()), queued tasks run there, and the task the parent's
// thread was running is handed to its `abandon` function (no thread will
// finish it in the child).
//
// Threading: every method may be called from any thread.
#ifndef IQDB_PERSIST_SRC_UTIL_BACKGROUND_WORKER_H_
#define IQDB_PERSIST_SRC_UTIL_BACKGROUND_WORKER_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>

namespace iqdb::persist {

// A unit of work: run(object) on the worker; abandon(object), if set, in a
// forked child whose copy of the worker was running it.
struct BackgroundTask {
  void* object = nullptr;
  void (*run)(void* object) = nullptr;
  void (*abandon)(void* object) = nullptr;
};

class BackgroundWorker {
 public:
  // A new worker, never destroyed; null when its thread cannot be started.
  static BackgroundWorker* create();

  // Queues `task`; runs it on the caller's thread when no thread can be
  // started or the queue cannot grow.
  void post(BackgroundTask task) noexcept;

  // Removes the queued task for `object`; false if it has started (or run).
  bool remove(const void* object);

  // Waits until no task is queued or running (for tests and benchmarks that
  // measure what the tasks free).
  void drain();

  BackgroundWorker(const BackgroundWorker&) = delete;
  BackgroundWorker& operator=(const BackgroundWorker&) = delete;

 private:
  BackgroundWorker() = default;
  ~BackgroundWorker() = default;

  static void prepare_fork();
  static void after_fork_in_parent();
  static void after_fork_in_child();

  bool start_thread();  // under mutex_
  void run();

  std::mutex mutex_;
  std::condition_variable queued_;
  std::condition_variable idle_;  // for drain()
  std::deque<BackgroundTask> queue_;
  bool thread_running_ = false;
  bool busy_ = false;       // the thread is running running_
  BackgroundTask running_;  // valid while busy_
};

// A worker started by its first task, not before, so that a process that
// never needs it has no extra thread (a fork while a thread starts is what
// some tools, AddressSanitizer among them, cannot survive). For a
// namespace-scope constant: constinit, no destructor to run.
class LazyBackgroundWorker {
 public:
  // The worker, started now if it was not; null when no thread can start.
  BackgroundWorker* get() {
    std::call_once(once_, [this] { worker_.store(BackgroundWorker::create()); });
    return worker_.load();
  }
  // The worker if it has been started, else null (it then holds no task).
  BackgroundWorker* if_started() const { return worker_.load(); }

 private:
  std::once_flag once_;
  std::atomic<BackgroundWorker*> worker_{nullptr};
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_UTIL_BACKGROUND_WORKER_H_
