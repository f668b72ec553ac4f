// parallel_for(): runs work(i) for every i in [0, count) on up to `threads`
// threads, the caller included. The items are split into one contiguous run
// per thread; each thread works through its own run in order, then helps with
// the run that has the most items left, taking them from its end (so the
// run of a thread that could not be started is done by the others).
//
// Contiguous runs keep the threads apart in memory: items that write side by
// side (chunks decoded into one 2 MiB huge page) are then mostly taken by one
// thread, instead of two threads faulting in, and both zeroing, the same page.
#ifndef IQDB_PERSIST_SRC_UTIL_PARALLEL_FOR_H_
#define IQDB_PERSIST_SRC_UTIL_PARALLEL_FOR_H_

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

namespace iqdb::persist {

// The claims of parallel_for(): runs of items, one per thread.
class ItemRuns {
 public:
  ItemRuns(std::size_t count, std::size_t threads) : runs_(threads) {
    for (std::size_t t = 0; t < threads; ++t) {
      runs_[t] = {t * count / threads, (t + 1) * count / threads};
    }
  }

  // The next item of thread `t`'s run, else the last of the longest run left.
  std::optional<std::size_t> claim(std::size_t t) {
    std::lock_guard lock(mutex_);
    if (runs_[t].next < runs_[t].end) return runs_[t].next++;
    Run* longest = &runs_[t];
    for (Run& run : runs_) {
      if (run.end - run.next > longest->end - longest->next) longest = &run;
    }
    if (longest->next == longest->end) return std::nullopt;
    return --longest->end;
  }

 private:
  struct Run {
    std::size_t next = 0;
    std::size_t end = 0;
  };
  std::mutex mutex_;
  std::vector<Run> runs_;
};

template <class Work>
void parallel_for(std::size_t count, unsigned threads, const Work& work) {
  if (count == 0) return;
  const std::size_t workers = std::min<std::size_t>(std::max(threads, 1u), count);
  ItemRuns runs(count, workers);
  const auto run = [&](std::size_t t) {
    while (const auto item = runs.claim(t)) work(*item);
  };
  std::vector<std::thread> helpers;
  helpers.reserve(workers - 1);
  for (std::size_t t = 1; t < workers; ++t) {
    try {
      helpers.emplace_back(run, t);
    } catch (const std::system_error&) {
      break;  // the runs of threads that never started are taken over as leftovers
    }
  }
  run(0);
  for (std::thread& helper : helpers) helper.join();
}

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_UTIL_PARALLEL_FOR_H_
