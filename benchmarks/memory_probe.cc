#include "memory_probe.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

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
