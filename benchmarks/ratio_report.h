// The ratio report: each subject's time divided by its floor's, measured in
// the same run, checked against the targets of the benchmark spec
// (benchmarks/README.md). Absolute times vary by machine; these ratios should not.
#ifndef IQDB_BENCHMARKS_RATIO_REPORT_H_
#define IQDB_BENCHMARKS_RATIO_REPORT_H_

#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace iqdb::bench {

// One benchmark's result: real time per iteration (the median when repeated),
// the fastest repetition's when the family computes a "min" statistic (0
// otherwise), and its counters (the largest value seen over repetitions).
struct Measured {
  double seconds = 0;
  double fastest_seconds = 0;
  std::map<std::string, double> counters;
};

// Forwards everything to the display reporter chosen by --benchmark_format and
// keeps each result, keyed by "<function>/<args>/<threads>" without the empty
// parts and the /real_time suffix (e.g. "BM_LoadSkip/vectors:1000",
// "BM_WalInsertAlways/threads:2", "BM_WalAppendFloor"). Failed runs are not kept.
class CollectingReporter final : public benchmark::BenchmarkReporter {
 public:
  // `display` must outlive this reporter.
  explicit CollectingReporter(benchmark::BenchmarkReporter& display) : display_(display) {}

  bool ReportContext(const Context& context) override;
  void ReportRuns(const std::vector<Run>& runs) override;
  void Finalize() override;

  std::map<std::string, Measured> results() const;

 private:
  struct Collected {
    std::vector<double> seconds;
    std::map<std::string, double> counters;
    bool has_median = false;
    Measured median;
    double fastest_seconds = 0;
  };

  benchmark::BenchmarkReporter& display_;
  std::map<std::string, Collected> collected_;
};

// What the report needs to know about the data the benchmarks ran on.
struct ReportSetup {
  std::uint64_t vectors = 0;
  std::uint64_t file_bytes = 0;
  std::uint64_t small_vectors = 0;  // 0: no small snapshot
  std::uint64_t small_file_bytes = 0;
  std::uint32_t dim = 0;
  std::uint64_t checkpoint_vectors = 0;    // the index BM_WalCheckpoint and BM_WalPlainSave save
  std::uint64_t compression_ids = 0;       // the u64 ids of the compressed-section benchmarks
  std::uint64_t memory_small_vectors = 0;  // the small snapshot of BM_ReplicaMemory (0: none)
};

// Prints one line per pair whose two sides both ran, then the raw times, then
// the verdict and how many targets it covers. Returns false if any target is
// missed, or if none was checked (no pair ran): an empty run proves nothing.
bool print_ratio_report(std::ostream& out, const std::map<std::string, Measured>& results,
                        const ReportSetup& setup);

}  // namespace iqdb::bench

#endif  // IQDB_BENCHMARKS_RATIO_REPORT_H_
