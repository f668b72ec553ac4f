// parallel_for(): runs work(i) for every i in [0, count) on up to `threads`
// threads, the caller included; items are claimed in order, one at a time.
// When no thread can be started, the caller does everything.
#ifndef IQDB_PERSIST_SRC_PARALLEL_FOR_H_
#define IQDB_PERSIST_SRC_PARALLEL_FOR_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <system_error>
#include <thread>
#include <vector>

namespace iqdb::persist {

template <class Work>
void parallel_for(std::size_t count, unsigned threads, const Work& work) {
  std::atomic<std::size_t> next{0};
  const auto run = [&] {
    for (std::size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) work(i);
  };
  const std::size_t helpers = std::min<std::size_t>(std::max(threads, 1u), count) - (count > 0);
  std::vector<std::thread> workers;
  workers.reserve(helpers);
  for (std::size_t i = 0; i < helpers; ++i) {
    try {
      workers.emplace_back(run);
    } catch (const std::system_error&) {
      break;
    }
  }
  run();
  for (std::thread& worker : workers) worker.join();
}

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_PARALLEL_FOR_H_
