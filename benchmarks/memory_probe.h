// Private (anonymous) memory of this process, as the kernel accounts it:
// RssAnon in /proc/self/status. File-backed pages of a snapshot mapping are not
// included, which is the point: a zero-copy load should add almost none.
//
// The kernel's counters are updated lazily, so figures are accurate to a few
// hundred KiB: fine for targets stated in MiB.
#ifndef IQDB_BENCHMARKS_MEMORY_PROBE_H_
#define IQDB_BENCHMARKS_MEMORY_PROBE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace iqdb::bench {

// Current RssAnon in bytes; 0 if it cannot be read (not Linux).
std::uint64_t rss_anon_bytes();

// What process `pid` holds, from /proc/PID/smaps_rollup, in KiB: its private
// memory (Private_Clean + Private_Dirty: pages no other process maps) and its
// proportional set size (each shared page divided among its sharers). Zero
// when it cannot be read.
struct ProcessMemory {
  std::uint64_t private_kib = 0;
  std::uint64_t pss_kib = 0;
};
ProcessMemory memory_of(int pid);

// Forks `processes` children that each run `work`, keep what it returns
// (null: it failed) and wait; reads each one's memory while all of them
// wait, then lets them exit. Empty if a child failed or could not be started.
// The most private memory of any of `memory`'s processes and their mean
// PSS, in KiB.
struct MemorySummary {
  double most_private_kib = 0;
  double mean_pss_kib = 0;
};
MemorySummary summarize(const std::vector<ProcessMemory>& memory);

std::vector<ProcessMemory> memory_of_children(
    int processes, const std::function<std::shared_ptr<const void>()>& work);

// Samples RssAnon about every millisecond on its own thread from construction
// until stop(), and reports the highest value seen above the baseline taken at
// construction. Not copyable; stops in the destructor if stop() was not called.
class PeakAnonSampler {
 public:
  PeakAnonSampler();
  ~PeakAnonSampler();
  PeakAnonSampler(const PeakAnonSampler&) = delete;
  PeakAnonSampler& operator=(const PeakAnonSampler&) = delete;

  // Stops sampling and returns the peak growth over the baseline, in bytes.
  std::uint64_t stop();

 private:
  std::uint64_t baseline_;
  std::atomic<std::uint64_t> peak_;
  std::atomic<bool> running_{true};
  std::thread thread_;
};

}  // namespace iqdb::bench

#endif  // IQDB_BENCHMARKS_MEMORY_PROBE_H_
