#include "memory_probe.h"

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace iqdb::bench {

std::uint64_t rss_anon_bytes() {
  std::FILE* status = std::fopen("/proc/self/status", "r");
  if (status == nullptr) return 0;
  char line[256];
  std::uint64_t kib = 0;
  while (std::fgets(line, sizeof line, status) != nullptr) {
    if (std::strncmp(line, "RssAnon:", 8) == 0) {
      unsigned long long value = 0;
      if (std::sscanf(line + 8, "%llu", &value) == 1) kib = value;
      break;
    }
  }
  std::fclose(status);
  return kib * 1024;
}

ProcessMemory memory_of(int pid) {
  ProcessMemory memory;
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string line;
  // After a header line naming the range: "Key:   <n> kB" lines.
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon);
    const std::uint64_t kib = std::strtoull(line.c_str() + colon + 1, nullptr, 10);
    if (key == "Private_Clean" || key == "Private_Dirty") memory.private_kib += kib;
    if (key == "Pss") memory.pss_kib = kib;
  }
  return memory;
}

MemorySummary summarize(const std::vector<ProcessMemory>& memory) {
  MemorySummary summary;
  for (const ProcessMemory& m : memory) {
    summary.most_private_kib =
        std::max(summary.most_private_kib, static_cast<double>(m.private_kib));
    summary.mean_pss_kib += static_cast<double>(m.pss_kib);
  }
  if (!memory.empty()) summary.mean_pss_kib /= static_cast<double>(memory.size());
  return summary;
}

std::vector<ProcessMemory> memory_of_children(
    int processes, const std::function<std::shared_ptr<const void>()>& work) {
  // Each child writes one byte to `ready` once its work is done, then waits
  // for `release` to close. Every process closes the ends it does not use,
  // so a child that dies shows as an early end of `ready` (no hang).
  int ready[2];
  int release[2];
  if (::pipe(ready) != 0) return {};
  if (::pipe(release) != 0) {
    ::close(ready[0]);
    ::close(ready[1]);
    return {};
  }
  std::vector<pid_t> children;
  for (int i = 0; i < processes; ++i) {
    const pid_t child = ::fork();
    if (child == 0) {
      ::close(ready[0]);
      ::close(release[1]);
      // Kept until the child exits: what is measured is what it holds.
      const std::shared_ptr<const void> kept = work();
      if (!kept) ::_exit(1);
      const char byte = 'r';
      (void)!::write(ready[1], &byte, 1);
      ::close(ready[1]);
      char done = 0;
      (void)!::read(release[0], &done, 1);
      ::_exit(0);
    }
    if (child > 0) children.push_back(child);
  }
  ::close(ready[1]);
  ::close(release[0]);
  int arrived = 0;
  for (char byte = 0; arrived < processes && ::read(ready[0], &byte, 1) == 1;) ++arrived;
  std::vector<ProcessMemory> memory;
  if (arrived == processes) {
    for (const pid_t child : children) memory.push_back(memory_of(child));
  }
  ::close(release[1]);  // every child's read returns
  for (const pid_t child : children) ::waitpid(child, nullptr, 0);
  ::close(ready[0]);
  return memory;
}

PeakAnonSampler::PeakAnonSampler() : baseline_(rss_anon_bytes()), peak_(baseline_) {
  thread_ = std::thread([this] {
    while (running_.load(std::memory_order_relaxed)) {
      const std::uint64_t now = rss_anon_bytes();
      if (now > peak_.load(std::memory_order_relaxed)) peak_.store(now, std::memory_order_relaxed);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
}

PeakAnonSampler::~PeakAnonSampler() { stop(); }

std::uint64_t PeakAnonSampler::stop() {
  running_.store(false, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
  const std::uint64_t last = rss_anon_bytes();
  const std::uint64_t peak = std::max(peak_.load(std::memory_order_relaxed), last);
  return peak > baseline_ ? peak - baseline_ : 0;
}

}  // namespace iqdb::bench
