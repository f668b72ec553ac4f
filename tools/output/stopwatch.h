// Stopwatch: wall time since construction, on the monotonic clock.
#ifndef IQDB_PERSIST_TOOLS_OUTPUT_STOPWATCH_H_
#define IQDB_PERSIST_TOOLS_OUTPUT_STOPWATCH_H_

#include <chrono>

namespace iqdb::tools {

class Stopwatch {
 public:
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_OUTPUT_STOPWATCH_H_
