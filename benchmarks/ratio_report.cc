#include "ratio_report.h"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <algorithm>
#include <cstdio>
#include <optional>

namespace iqdb::bench {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

enum class Unit { Times, Percent, MiB, PerSecond, Micros, Millis };

struct Target {
  bool at_most = true;
  double limit = 0;
};

std::string format_value(double value, Unit unit) {
  switch (unit) {
    case Unit::Times:
      return value >= 100 ? fmt::format("{:.0f}x", value) : fmt::format("{:.2f}x", value);
    case Unit::Percent: return fmt::format("{:.1f}%", value * 100);
    case Unit::MiB: return fmt::format("{:.2f} MiB", value);
    case Unit::PerSecond: return fmt::format("{:.2f} M/s", value / 1e6);
    case Unit::Micros: return fmt::format("{:.1f} us", value);
    case Unit::Millis: return fmt::format("{:.2f} ms", value);
  }
  return {};
}

std::string format_seconds(double seconds) {
  if (seconds < 1e-3) return fmt::format("{:.2f} us", seconds * 1e6);
  if (seconds < 1) return fmt::format("{:.2f} ms", seconds * 1e3);
  return fmt::format("{:.3f} s", seconds);
}

class Report {
 public:
  Report(std::ostream& out, const std::map<std::string, Measured>& results)
      : out_(out), results_(results) {}

  std::optional<double> seconds(const std::string& name) const {
    const auto found = results_.find(name);
    if (found == results_.end() || found->second.seconds <= 0) return std::nullopt;
    return found->second.seconds;
  }

  std::optional<double> counter(const std::string& name, const std::string& counter) const {
    const auto found = results_.find(name);
    if (found == results_.end()) return std::nullopt;
    const auto value = found->second.counters.find(counter);
    if (value == found->second.counters.end()) return std::nullopt;
    return value->second;
  }

  // time(numerator) / time(denominator), if both ran.
  std::optional<double> ratio(const std::string& numerator, const std::string& denominator) const {
    const auto a = seconds(numerator);
    const auto b = seconds(denominator);
    if (!a || !b) return std::nullopt;
    return *a / *b;
  }

  // The same with the fastest repetitions, if both sides computed them.
  std::optional<double> fastest_ratio(const std::string& numerator,
                                      const std::string& denominator) const {
    const auto a = results_.find(numerator);
    const auto b = results_.find(denominator);
    if (a == results_.end() || b == results_.end()) return std::nullopt;
    if (a->second.fastest_seconds <= 0 || b->second.fastest_seconds <= 0) return std::nullopt;
    return a->second.fastest_seconds / b->second.fastest_seconds;
  }

  void line(const std::string& label, std::optional<double> value, Unit unit,
            std::optional<Target> target) {
    if (target) ++targets_;
    if (!value) return;
    std::string verdict = "(info)";
    if (target) {
      ++checked_;
      const bool pass = target->at_most ? *value <= target->limit : *value >= target->limit;
      if (!pass) all_pass_ = false;
      const std::string bound = fmt::format(
          "(target {} {})", target->at_most ? "<=" : ">=", format_value(target->limit, unit));
      verdict = fmt::format("{:<24} {}", bound, pass ? "PASS" : "FAIL");
    }
    fmt::print(out_, "  {:<52} = {:>11}  {}\n", label, format_value(*value, unit), verdict);
  }

  bool all_pass() const { return all_pass_; }
  // Targets whose pair ran, and all targets.
  int checked() const { return checked_; }
  int targets() const { return targets_; }

 private:
  std::ostream& out_;
  const std::map<std::string, Measured>& results_;
  bool all_pass_ = true;
  int checked_ = 0;
  int targets_ = 0;
};

// "/proc/loadavg" without the task counts: the 1, 5 and 15 minute averages.
std::string load_average() {
  std::FILE* file = std::fopen("/proc/loadavg", "r");
  if (file == nullptr) return "unknown";
  double one = 0, five = 0, fifteen = 0;
  const int read = std::fscanf(file, "%lf %lf %lf", &one, &five, &fifteen);
  std::fclose(file);
  return read == 3 ? fmt::format("{:.2f} {:.2f} {:.2f}", one, five, fifteen) : "unknown";
}

std::string sized(std::string_view name, std::uint64_t vectors) {
  return fmt::format("{}/vectors:{}", name, vectors);
}

std::string threaded(std::string_view name, int threads) {
  return fmt::format("{}/threads:{}", name, threads);
}

}  // namespace

bool CollectingReporter::ReportContext(const Context& context) {
  return display_.ReportContext(context);
}

void CollectingReporter::ReportRuns(const std::vector<Run>& runs) {
  for (const Run& run : runs) {
    if (run.error_occurred) continue;
    std::string key = run.run_name.function_name;
    for (const std::string* part : {&run.run_name.args, &run.run_name.threads}) {
      if (!part->empty()) key += "/" + *part;
    }
    const double seconds =
        run.GetAdjustedRealTime() / benchmark::GetTimeUnitMultiplier(run.time_unit);
    Collected& entry = collected_[key];
    if (run.run_type == Run::RT_Aggregate) {
      if (run.aggregate_name == "min") entry.fastest_seconds = seconds;
      if (run.aggregate_name != "median") continue;
      entry.has_median = true;
      entry.median.seconds = seconds;
      for (const auto& [name, value] : run.counters) entry.median.counters[name] = value.value;
    } else {
      entry.seconds.push_back(seconds);
      for (const auto& [name, value] : run.counters) {
        const auto [slot, fresh] = entry.counters.emplace(name, value.value);
        if (!fresh) slot->second = std::max(slot->second, value.value);
      }
    }
  }
  display_.ReportRuns(runs);
}

void CollectingReporter::Finalize() { display_.Finalize(); }

std::map<std::string, Measured> CollectingReporter::results() const {
  std::map<std::string, Measured> results;
  for (const auto& [key, entry] : collected_) {
    Measured measured;
    if (entry.has_median) {
      measured = entry.median;
    } else if (!entry.seconds.empty()) {
      std::vector<double> sorted = entry.seconds;
      std::sort(sorted.begin(), sorted.end());
      measured.seconds = sorted[sorted.size() / 2];
    } else {
      continue;
    }
    if (!entry.counters.empty()) measured.counters = entry.counters;
    measured.fastest_seconds = entry.fastest_seconds;
    results.emplace(key, std::move(measured));
  }
  return results;
}

bool print_ratio_report(std::ostream& out, const std::map<std::string, Measured>& results,
                        const ReportSetup& setup) {
  const std::uint64_t n = setup.vectors;
  const std::uint64_t small = setup.small_vectors;
  fmt::print(out, "\nRATIO REPORT: {} x {} float32, snapshot {:.1f} MiB", n, setup.dim,
             static_cast<double>(setup.file_bytes) / kMiB);
  if (small != 0) {
    fmt::print(out, "; small {} vectors, {:.1f} MiB", small,
               static_cast<double>(setup.small_file_bytes) / kMiB);
  }
  fmt::print(out, "\nLoad average now: {} (other work on the machine skews the ratios)\n",
             load_average());

  Report report(out, results);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> sizes = {{n, setup.file_bytes}};
  if (small != 0) sizes.emplace_back(small, setup.small_file_bytes);

  for (const auto& [vectors, bytes] : sizes) {
    report.line(fmt::format("LoadSkip / OpenFloor [{}]", vectors),
                report.ratio(sized("BM_LoadSkip", vectors), sized("BM_OpenFloor", vectors)),
                Unit::Times, Target{true, 3});
  }
  if (small != 0) {
    report.line(fmt::format("LoadSkip [{}] / LoadSkip [{}]", n, small),
                report.ratio(sized("BM_LoadSkip", n), sized("BM_LoadSkip", small)), Unit::Times,
                Target{true, 1.5});
  }
  report.line(fmt::format("LoadBackground / LoadSkip [{}]", n),
              report.ratio(sized("BM_LoadBackground", n), sized("BM_LoadSkip", n)), Unit::Times,
              Target{true, 2});
  report.line(fmt::format("LoadNaive / LoadSkip [{}]", n),
              report.ratio(sized("BM_LoadNaive", n), sized("BM_LoadSkip", n)), Unit::Times,
              Target{false, 1000});

  // Speeds over the same bytes: speed(a) / speed(b) = time(b) / time(a).
  const std::string floor1 = threaded("BM_CrcFloor", 1);
  report.line("LoadEager/1 speed / CrcFloor/1 speed",
              report.ratio(floor1, threaded("BM_LoadEager", 1)), Unit::Percent, Target{false, 0.9});
  report.line("LoadEager/2 speed / CrcFloor/1 speed",
              report.ratio(floor1, threaded("BM_LoadEager", 2)), Unit::Times, Target{false, 1.6});
  report.line("CrcFloor/2 speed / CrcFloor/1 speed",
              report.ratio(floor1, threaded("BM_CrcFloor", 2)), Unit::Times, std::nullopt);
  report.line("LoadEager/2 speed / CrcFloor/2 speed",
              report.ratio(threaded("BM_CrcFloor", 2), threaded("BM_LoadEager", 2)), Unit::Percent,
              std::nullopt);

  for (const auto& [vectors, bytes] : sizes) {
    // The time target is stated for the main size; smaller saves are shown for information.
    report.line(fmt::format("SaveAlways / WriteFsyncFloor [{}]", vectors),
                report.ratio(sized("BM_SaveAlways", vectors), sized("BM_WriteFsyncFloor", vectors)),
                Unit::Times, vectors == n ? std::optional(Target{true, 1.15}) : std::nullopt);
  }
  for (const auto& [vectors, bytes] : sizes) {
    report.line(fmt::format("LoadSkip anon memory [{}]", vectors),
                report.counter(sized("BM_LoadSkip", vectors), "anon_MiB"), Unit::MiB,
                Target{true, 16 + 0.01 * static_cast<double>(bytes) / kMiB});
    report.line(fmt::format("SaveAlways extra anon memory [{}]", vectors),
                report.counter(sized("BM_SaveAlways", vectors), "extra_anon_MiB"), Unit::MiB,
                Target{true, 64});
  }

  // Write-ahead log. Speeds are records per second over the same records per
  // iteration: speed(a) / speed(b) = time(b) / time(a).
  report.line("WalInsertNever speed / WalAppendFloor speed",
              report.ratio("BM_WalAppendFloor", "BM_WalInsertNever"), Unit::Percent,
              Target{false, 0.85});
  const std::string sync_floor1 = threaded("BM_WalSyncFloor", 1);
  const std::string always1 = threaded("BM_WalInsertAlways", 1);
  report.line("WalInsertAlways/1 speed / WalSyncFloor/1 speed", report.ratio(sync_floor1, always1),
              Unit::Percent, Target{false, 0.9});
  report.line("WalBatch64 speed / WalBatchFloor speed",
              report.ratio("BM_WalBatchFloor", "BM_WalBatch64"), Unit::Percent,
              Target{false, 0.85});
  report.line("WalInsertAlways/2 speed / WalInsertAlways/1 speed",
              report.ratio(always1, threaded("BM_WalInsertAlways", 2)), Unit::Times,
              Target{false, 1.5});
  report.line("WalSyncFloor/2 speed / WalSyncFloor/1 speed",
              report.ratio(sync_floor1, threaded("BM_WalSyncFloor", 2)), Unit::Times, std::nullopt);
  {
    const auto records = report.counter("BM_WalReplay", "records");
    const auto seconds = report.seconds("BM_WalReplay");
    report.line(fmt::format("WalReplay records/s [{:.0f} records]", records.value_or(0)),
                records && seconds ? std::optional(*records / *seconds) : std::nullopt,
                Unit::PerSecond, Target{false, 2e6});
  }
  report.line("WalReplay speed / WalScanFloor speed",
              report.ratio("BM_WalScanFloor", "BM_WalReplay"), Unit::Percent, std::nullopt);
  // A crafted segment's damage must not make its scan much costlier than an
  // intact one's (the scan's CRC budget, docs/FORMAT.md "Damage").
  report.line("WalResyncCrafted / WalScanIntact [64 MiB]",
              report.ratio("BM_WalResyncCrafted", "BM_WalScanIntact"), Unit::Times,
              Target{true, 4});
  report.line("WalResyncCrafted / WalScanIntact [64 MiB], fastest",
              report.fastest_ratio("BM_WalResyncCrafted", "BM_WalScanIntact"), Unit::Times,
              std::nullopt);
  if (setup.checkpoint_vectors != 0) {
    const std::uint64_t v = setup.checkpoint_vectors;
    // Checked on the fastest repetitions (benchmarks/README.md says why).
    const std::string checkpoint = sized("BM_WalCheckpoint", v);
    const std::string plain = sized("BM_WalPlainSave", v);
    report.line(fmt::format("WalCheckpoint / WalPlainSave [{}], fastest", v),
                report.fastest_ratio(checkpoint, plain), Unit::Times, Target{true, 1.2});
    report.line(fmt::format("WalCheckpoint / WalPlainSave [{}], medians", v),
                report.ratio(checkpoint, plain), Unit::Times, std::nullopt);
  }

  // Replicas.
  report.line("ReplicaRefreshIdle / StatFloor",
              report.ratio("BM_ReplicaRefreshIdle", "BM_StatFloor"), Unit::Times, Target{true, 3});
  for (const auto& [vectors, bytes] : sizes) {
    report.line(fmt::format("ReplicaSwitch / OpenFloor [{}]", vectors),
                report.ratio(sized("BM_ReplicaSwitch", vectors), sized("BM_OpenFloor", vectors)),
                Unit::Times, Target{true, 3});
    // What the switch's own system calls cost: the rest is the library's.
    report.line(
        fmt::format("ReplicaSwitch / SwitchCallsFloor [{}]", vectors),
        report.ratio(sized("BM_ReplicaSwitch", vectors), sized("BM_SwitchCallsFloor", vectors)),
        Unit::Times, std::nullopt);
    report.line(fmt::format("ReplicaCheckpointSwitch / CheckpointOpenFloor [{}]", vectors),
                report.ratio(sized("BM_ReplicaCheckpointSwitch", vectors),
                             sized("BM_CheckpointOpenFloor", vectors)),
                Unit::Times, Target{true, 3});
    // Off the refresh, on the release thread: grows with the snapshot.
    report.line(fmt::format("ReplicaCheckpointSwitch release [{}]", vectors),
                report.counter(sized("BM_ReplicaCheckpointSwitch", vectors), "release_ms"),
                Unit::Millis, std::nullopt);
  }
  report.line("ReplicaCatchUp speed / WalReplay speed",
              report.ratio("BM_WalReplay", "BM_ReplicaCatchUp"), Unit::Percent, Target{false, 0.8});
  for (const char* counter : {"p50_us", "p99_us", "p999_us"}) {
    report.line(
        fmt::format("ReplicaVisibility {}", counter),
        report.counter("BM_ReplicaVisibility", counter), Unit::Micros,
        std::string_view(counter) == "p99_us" ? std::optional(Target{true, 1000}) : std::nullopt);
  }
  if (setup.memory_small_vectors != 0) {
    const auto large = report.counter(sized("BM_ReplicaMemory", n), "private_kib");
    const auto tiny =
        report.counter(sized("BM_ReplicaMemory", setup.memory_small_vectors), "private_kib");
    report.line(fmt::format("ReplicaMemory private [{}] - [{}], per process", n,
                            setup.memory_small_vectors),
                large && tiny ? std::optional((*large - *tiny) / 1024) : std::nullopt, Unit::MiB,
                Target{true, 1});
    const auto pss = report.counter(sized("BM_ReplicaMemory", n), "pss_kib");
    report.line(fmt::format("ReplicaMemory PSS [{}], per process", n),
                pss ? std::optional(*pss / 1024) : std::nullopt, Unit::MiB, std::nullopt);
  }

  // Shared-memory serving.
  for (const auto& [vectors, bytes] : sizes) {
    report.line(fmt::format("AttachShared / OpenFloor [{}]", vectors),
                report.ratio(sized("BM_AttachShared", vectors), sized("BM_OpenFloor", vectors)),
                Unit::Times, Target{true, 3});
  }
  if (setup.memory_small_vectors != 0) {
    const auto large = report.counter(sized("BM_SharedMemory", n), "private_kib");
    const auto tiny =
        report.counter(sized("BM_SharedMemory", setup.memory_small_vectors), "private_kib");
    report.line(
        fmt::format("SharedMemory private [{}] - [{}], per process", n, setup.memory_small_vectors),
        large && tiny ? std::optional((*large - *tiny) / 1024) : std::nullopt, Unit::MiB,
        Target{true, 1});
    const auto pss = report.counter(sized("BM_SharedMemory", n), "pss_kib");
    report.line(fmt::format("SharedMemory PSS [{}], per process", n),
                pss ? std::optional(*pss / 1024) : std::nullopt, Unit::MiB, std::nullopt);
  }

  // Compressed sections. Speeds over the same ids: speed(a) / speed(b) = time(b) / time(a).
  {
    const std::string ids = fmt::format("[{} ids]", setup.compression_ids);
    const std::string lz4_floor1 = threaded("BM_Lz4Floor", 1);
    report.line(fmt::format("LoadLz4/1 speed / Lz4Floor/1 speed {}", ids),
                report.ratio(lz4_floor1, threaded("BM_LoadLz4", 1)), Unit::Percent,
                Target{false, 0.8});
    report.line(fmt::format("LoadLz4/2 speed / Lz4Floor/1 speed {}", ids),
                report.ratio(lz4_floor1, threaded("BM_LoadLz4", 2)), Unit::Times,
                Target{false, 1.6});
    report.line(fmt::format("Lz4Floor/2 speed / Lz4Floor/1 speed {}", ids),
                report.ratio(lz4_floor1, threaded("BM_Lz4Floor", 2)), Unit::Times, std::nullopt);
    report.line(fmt::format("LoadLz4/2 speed / Lz4Floor/2 speed {}", ids),
                report.ratio(threaded("BM_Lz4Floor", 2), threaded("BM_LoadLz4", 2)), Unit::Percent,
                std::nullopt);
    report.line(fmt::format("SaveZstd speed / ZstdFloor speed {}", ids),
                report.ratio("BM_ZstdFloor", "BM_SaveZstd"), Unit::Percent, Target{false, 0.8});
  }

  // Search: the example index's k-nearest search against a bare L2 scan.
  report.line(fmt::format("FlatSearch / ScanFloor [{}]", n),
              report.ratio(sized("BM_FlatSearch", n), sized("BM_ScanFloor", n)), Unit::Times,
              Target{true, 1.5});
  report.line(fmt::format("FlatSearch / ScanFloor [{}], fastest", n),
              report.fastest_ratio(sized("BM_FlatSearch", n), sized("BM_ScanFloor", n)),
              Unit::Times, std::nullopt);

  fmt::print(out, "Raw real times per iteration:\n");
  for (const auto& [name, measured] : results) {
    fmt::print(out, "  {:<40} {:>12}\n", name, format_seconds(measured.seconds));
  }
  // A run that checked nothing (a filter matching no pair, --benchmark_list_tests)
  // proves nothing: it must not read, or exit, as a pass.
  if (report.checked() == 0) {
    fmt::print(out, "Targets: none checked (no pair of the {} ran)\n", report.targets());
    return false;
  }
  fmt::print(out, "Targets: {} ({} of {} checked)\n", report.all_pass() ? "all met" : "SOME MISSED",
             report.checked(), report.targets());
  return report.all_pass();
}

}  // namespace iqdb::bench
