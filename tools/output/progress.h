// ProgressLine: a one-line progress display on stderr ("label  45%  1.93 GB/s"),
// redrawn in place with '\r' and erased when done, so that stdout stays clean
// for results. It draws only when stderr is a terminal and the work is large
// enough to be worth watching (kMinBytesWorthShowing); otherwise every call is
// a no-op. Redraws are throttled to about ten per second.
//
// Thread-safety: none; call it from one thread.
#ifndef IQDB_PERSIST_TOOLS_OUTPUT_PROGRESS_H_
#define IQDB_PERSIST_TOOLS_OUTPUT_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <string>

namespace iqdb::tools {

inline constexpr std::uint64_t kMinBytesWorthShowing = std::uint64_t{64} << 20;

class ProgressLine {
 public:
  // Starts the clock the rate is measured from.
  explicit ProgressLine(std::string label);
  ~ProgressLine() { clear(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  // Draws "label ..." for work of `total_bytes` that reports no progress of its own.
  void start(std::uint64_t total_bytes);
  // Draws "label  45.0%  1.93 GB/s": `done_bytes` of `total_bytes` since construction.
  void update(std::uint64_t done_bytes, std::uint64_t total_bytes);
  // Erases the line. Later update() calls draw it again.
  void clear();

 private:
  void draw(const std::string& line);

  using Clock = std::chrono::steady_clock;

  std::string label_;
  bool terminal_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_draw_{};
  std::size_t drawn_width_ = 0;
};

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_OUTPUT_PROGRESS_H_
