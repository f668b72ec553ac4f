// BackgroundWorker: order, removal, drain, and a fork while a task runs.
#include "util/background_worker.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace iqdb::persist::test {
namespace {

// A task that appends its number to a list (only the worker's thread runs
// it; the list is read after drain()).
struct Numbered {
  int number = 0;
  std::vector<int>* ran = nullptr;
};

BackgroundTask numbered_task(Numbered& task) {
  return {&task,
          [](void* object) {
            auto* self = static_cast<Numbered*>(object);
            self->ran->push_back(self->number);
          },
          nullptr};
}

// A task that runs until released; abandon() marks it abandoned.
struct Blocking {
  std::atomic<bool> started{false};
  std::atomic<bool> release{false};
  bool abandoned = false;
};

BackgroundTask blocking_task(Blocking& task) {
  return {&task,
          [](void* object) {
            auto* self = static_cast<Blocking*>(object);
            self->started = true;
            while (!self->release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
          },
          [](void* object) { static_cast<Blocking*>(object)->abandoned = true; }};
}

void wait_until_started(const Blocking& task) {
  while (!task.started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

TEST(BackgroundWorkerTest, RunsTasksInTheOrderPostedAndDrainWaitsForThem) {
  BackgroundWorker* worker = BackgroundWorker::create();
  ASSERT_NE(worker, nullptr);
  std::vector<int> ran;
  std::vector<Numbered> tasks(100);
  for (int i = 0; i < 100; ++i) {
    tasks[i] = {i, &ran};
    worker->post(numbered_task(tasks[i]));
  }
  worker->drain();
  ASSERT_EQ(ran.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(ran[i], i);
}

TEST(BackgroundWorkerTest, RemoveTakesBackAQueuedTaskButNotARunningOne) {
  BackgroundWorker* worker = BackgroundWorker::create();
  ASSERT_NE(worker, nullptr);
  Blocking first;
  std::vector<int> ran;
  Numbered second{2, &ran};
  worker->post(blocking_task(first));
  worker->post(numbered_task(second));
  wait_until_started(first);
  EXPECT_FALSE(worker->remove(&first));
  EXPECT_TRUE(worker->remove(&second));
  EXPECT_FALSE(worker->remove(&second));
  first.release = true;
  worker->drain();
  EXPECT_TRUE(ran.empty());
}

// A child forked while the worker runs a task: that task is abandoned there
// (no thread will finish it), and the tasks queued behind it run in the
// child on a new thread. The parent's worker goes on as before.
TEST(BackgroundWorkerForkTest, ChildAbandonsTheRunningTaskAndRunsTheQueuedOnes) {
  BackgroundWorker* worker = BackgroundWorker::create();
  ASSERT_NE(worker, nullptr);
  Blocking running;
  std::vector<int> ran;
  Numbered queued{7, &ran};
  worker->post(blocking_task(running));
  worker->post(numbered_task(queued));
  wait_until_started(running);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    worker->drain();
    const bool ok = running.abandoned && ran == std::vector<int>{7};
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_FALSE(running.abandoned);
  running.release = true;
  worker->drain();
  EXPECT_EQ(ran, std::vector<int>{7});
}

}  // namespace
}  // namespace iqdb::persist::test
