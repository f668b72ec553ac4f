#include "memory_probe.h"

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
