#include "demo/demo_command.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "demo/baseline_load.h"
#include "demo/demo_data.h"
#include "demo/demo_wal.h"
#include "demo/page_cache.h"
#include "demo/scratch_dir.h"
#include "flat_index.h"
#include "iqdb/persist.h"
#include "output/exit_status.h"
#include "output/progress.h"
#include "output/stopwatch.h"
#include "output/table.h"
#include "output/text_format.h"

namespace iqdb::tools {
namespace {

using examples::FlatIndex;
using persist::OpenMode;
using persist::PersistConfig;
using persist::PersistedIndex;
using persist::Result;
using persist::VerifyMode;

constexpr std::string_view kSnapshotName = "demo.iqdb";
constexpr std::size_t kTopK = 10;
// Peak memory as a multiple of the snapshot size: the baseline holds the file
// buffer and its growing copy at once.
constexpr double kPeakMemoryFactor = 3.5;

struct QueryCheck {
  bool passed = false;
  std::string summary;
};

// A stored vector must come back as its own nearest neighbour (or tie for it).
QueryCheck check_hits(const std::vector<examples::SearchHit>& hits, std::uint64_t expected) {
  if (hits.empty()) return {false, "FAIL: the search returned no hits"};
  const examples::SearchHit& top = hits.front();
  if (top.id == expected) {
    return {true, fmt::format("PASS: top hit is the query vector's id {} (distance {:.3g})",
                              expected, top.distance)};
  }
  for (const examples::SearchHit& hit : hits) {
    if (hit.id == expected && hit.distance == top.distance) {
      return {true, fmt::format("PASS: the query's own id {} ties with id {} (distance {:.3g})",
                                expected, top.id, top.distance)};
    }
  }
  return {false, fmt::format("FAIL: top hit is id {} (distance {:.3g}), not the query's own id {}",
                             top.id, top.distance, expected)};
}

std::string cache_note(double resident) {
  return fmt::format("{} cache ({:.0f}% resident)", resident < 0.05 ? "cold" : "hot",
                     resident * 100);
}

// Why this machine cannot run the demo with these options, if it cannot.
std::optional<std::string> memory_problem(const DemoOptions& options) {
  const double snapshot =
      static_cast<double>(options.vectors) *
      (static_cast<double>(options.dim) * sizeof(float) + sizeof(std::uint64_t));
  const double memory =
      static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGESIZE));
  if (snapshot * kPeakMemoryFactor <= memory) return std::nullopt;
  const auto bytes = [](double value) {
    return format_bytes(static_cast<std::uint64_t>(std::min(value, 1e19)));
  };
  return fmt::format(
      "{} vectors of dimension {} make a {} snapshot; the demo needs about {} of memory and "
      "this machine has {}: use fewer --vectors or a smaller --dim",
      options.vectors, options.dim, bytes(snapshot), bytes(snapshot * kPeakMemoryFactor),
      bytes(memory));
}

// One demo run: each step adds a row to the report.
class DemoRun {
 public:
  DemoRun(const DemoOptions& options, std::filesystem::path snapshot)
      : metric_(options.metric),
        data_{options.vectors, options.dim, options.seed},
        snapshot_(std::move(snapshot)),
        query_slot_((options.seed * 0x9e3779b97f4a7c15ull) % options.vectors) {}

  Result<void> build_and_save();
  Result<void> load_mapped();
  Result<void> load_verified();
  Result<void> load_baseline();
  Result<void> wal_phase();

  void print_report() const;
  const QueryCheck& query_check() const { return query_check_; }
  const QueryCheck& wal_check() const { return wal_check_; }

 private:
  void add_row(std::string step, double seconds, std::string amount, std::string note) {
    table_.add_row({std::move(step), format_seconds(seconds), std::move(amount), std::move(note)});
  }
  // Times a top-k search for the stored vector at query_slot_.
  std::pair<double, QueryCheck> query(const FlatIndex& index) const;

  DistanceMetric metric_;
  DemoData data_;
  std::filesystem::path snapshot_;
  std::uint64_t query_slot_;  // also the expected id: vector i has id i
  std::uint64_t file_size_ = 0;
  double skip_load_seconds_ = 0;
  double eager_load_seconds_ = 0;
  double baseline_load_seconds_ = 0;
  QueryCheck query_check_;
  QueryCheck wal_check_;
  TextTable table_{{{"step"},
                    {"time", TextTable::Align::Right},
                    {"size / throughput", TextTable::Align::Right},
                    {"notes"}}};
};

std::pair<double, QueryCheck> DemoRun::query(const FlatIndex& index) const {
  std::vector<float> vector(data_.dim);
  fill_vector(data_, query_slot_, vector);
  const Stopwatch time;
  const auto hits = index.search(vector, kTopK);
  const double seconds = time.seconds();
  QueryCheck check = check_hits(hits, query_slot_);
  if (!check.passed && hits.size() == kTopK && hits.back().distance == hits.front().distance) {
    // Every hit ties (tiny dimensions): the query's own vector may tie too, past the first k.
    check = check_hits(index.search(vector, index.size()), query_slot_);
  }
  return {seconds, check};
}

Result<void> DemoRun::build_and_save() {
  const Stopwatch build_time;
  IQDB_TRY_ASSIGN(auto index, build_index(data_, metric_));
  add_row("build (random unit vectors)", build_time.seconds(), format_bytes(data_.vector_bytes()),
          fmt::format("{} x {} floats", data_.count, data_.dim));

  PersistConfig config(snapshot_);
  config.fsync_policy = persist::FsyncPolicy::always();
  IQDB_TRY_ASSIGN(const auto db, PersistedIndex<FlatIndex>::open_with(std::move(index), config,
                                                                      OpenMode::Overwrite));
  ProgressLine progress("saving");
  progress.start(data_.vector_bytes());
  const Stopwatch save_time;
  IQDB_TRY(db.save());
  const double seconds = save_time.seconds();
  progress.clear();
  std::error_code error;
  file_size_ = std::filesystem::file_size(snapshot_, error);
  if (error) {
    return persist::fail(persist::ErrorKind::Io,
                         fmt::format("{}: {}", snapshot_.string(), error.message()));
  }
  add_row("save (fsync always)", seconds, format_rate(file_size_, seconds),
          fmt::format("{}; temp file, fsync, rename, fsync dir", format_bytes(file_size_)));
  return iqdb::persist::success();
}

Result<void> DemoRun::load_mapped() {
  IQDB_TRY_ASSIGN(const double resident, drop_from_page_cache(snapshot_));
  PersistConfig config(snapshot_);
  config.verify = VerifyMode::Skip;
  const Stopwatch load_time;
  IQDB_TRY_ASSIGN(const auto db, PersistedIndex<FlatIndex>::load(config));
  skip_load_seconds_ = load_time.seconds();
  const FlatIndex& index = db.index();
  add_row("load (mmap, verify skip)", skip_load_seconds_, "zero-copy",
          fmt::format("is_mapped() = {}; {}", index.is_mapped(), cache_note(resident)));

  const auto [first_seconds, first_check] = query(index);
  add_row(fmt::format("query top-{} (mapped, first)", kTopK), first_seconds,
          format_rate(data_.vector_bytes(), first_seconds), "first touch pages the mapping in");
  const auto [warm_seconds, warm_check] = query(index);
  add_row(fmt::format("query top-{} (mapped, again)", kTopK), warm_seconds,
          format_rate(data_.vector_bytes(), warm_seconds), warm_check.summary);
  query_check_ = first_check.passed ? warm_check : first_check;
  return iqdb::persist::success();
}

Result<void> DemoRun::load_verified() {
  IQDB_TRY_ASSIGN(const double resident, drop_from_page_cache(snapshot_));
  PersistConfig config(snapshot_);
  config.verify = VerifyMode::Eager;
  ProgressLine progress("loading and verifying");
  progress.start(file_size_);
  const Stopwatch load_time;
  IQDB_TRY_ASSIGN(const auto db, PersistedIndex<FlatIndex>::load(config));
  eager_load_seconds_ = load_time.seconds();
  progress.clear();
  add_row("load (mmap, verify eager)", eager_load_seconds_,
          format_rate(file_size_, eager_load_seconds_),
          fmt::format("all CRCs checked; is_mapped() = {}; {}", db.index().is_mapped(),
                      cache_note(resident)));
  return iqdb::persist::success();
}

Result<void> DemoRun::load_baseline() {
  IQDB_TRY_ASSIGN(const double resident, drop_from_page_cache(snapshot_));
  ProgressLine progress("baseline: reading and copying");
  progress.start(file_size_);
  const Stopwatch load_time;
  IQDB_TRY_ASSIGN(const auto baseline, load_by_reading(snapshot_));
  baseline_load_seconds_ = load_time.seconds();
  progress.clear();
  add_row("baseline load (read all + copy)", baseline_load_seconds_,
          format_rate(file_size_, baseline_load_seconds_),
          fmt::format("read {} + copy {}, no CRCs; {}", format_seconds(baseline.read_seconds),
                      format_seconds(baseline.copy_seconds), cache_note(resident)));
  const auto [seconds, check] = query(baseline.index);
  add_row(fmt::format("query top-{} (baseline copy)", kTopK), seconds,
          format_rate(data_.vector_bytes(), seconds), "same search, owned memory");
  if (!check.passed) query_check_ = check;
  return iqdb::persist::success();
}

Result<void> DemoRun::wal_phase() {
  IQDB_TRY_ASSIGN(auto wal, run_wal_demo(snapshot_.parent_path(), data_, metric_));
  for (DemoRow& row : wal.rows) {
    add_row(std::move(row.step), row.seconds, std::move(row.amount), std::move(row.note));
  }
  wal_check_ = {wal.passed, std::move(wal.summary)};
  return iqdb::persist::success();
}

void DemoRun::print_report() const {
  fmt::print("\n{}\n", table_.render());
  fmt::print("file size: {} ({} bytes)\n", format_bytes(file_size_), file_size_);
  fmt::print("load time, baseline / ours: {:.0f}x (verify skip), {:.1f}x (verify eager)\n",
             baseline_load_seconds_ / std::max(skip_load_seconds_, 1e-9),
             baseline_load_seconds_ / std::max(eager_load_seconds_, 1e-9));
  fmt::print("query check: {}\n", query_check_.summary);
  fmt::print("crash check: {}\n", wal_check_.summary);
}

persist::Result<ScratchDir> make_scratch_dir(const DemoOptions& options) {
  if (options.dir) return ScratchDir::use_existing(*options.dir);
  return ScratchDir::create_temporary("iqdb-persist-demo-");
}

}  // namespace

std::optional<DistanceMetric> parse_metric_name(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "cosine") return DistanceMetric::Cosine;
  if (lower == "dot") return DistanceMetric::DotProduct;
  if (lower == "euclidean") return DistanceMetric::Euclidean;
  if (lower == "manhattan") return DistanceMetric::Manhattan;
  if (lower == "hamming") return DistanceMetric::Hamming;
  return std::nullopt;
}

int run_demo(const DemoOptions& options) {
  if (auto problem = memory_problem(options)) {
    print_error("Usage", *problem);
    return kExitUsage;
  }
  auto scratch = make_scratch_dir(options);
  if (!scratch) return report(scratch.error());
  const std::filesystem::path snapshot = scratch.value().path() / kSnapshotName;
  fmt::print("iqdb-persist demo: {} vectors x {} dims, metric {}, seed {}\n", options.vectors,
             options.dim, to_string(options.metric), options.seed);
  fmt::print("snapshot: {}{}\n", escape_for_terminal(snapshot.string()),
             scratch.value().is_temporary() ? " (temporary, removed at exit)" : "");
  std::fflush(stdout);

  DemoRun run(options, snapshot);
  for (const auto& step : {&DemoRun::build_and_save, &DemoRun::load_mapped, &DemoRun::load_verified,
                           &DemoRun::load_baseline, &DemoRun::wal_phase}) {
    if (auto done = (run.*step)(); !done) return report(done.error());
  }
  run.print_report();
  if (!run.query_check().passed) {
    print_error("QueryCheck", run.query_check().summary);
    return kExitIntegrity;
  }
  if (!run.wal_check().passed) {
    print_error("CrashCheck", run.wal_check().summary);
    return kExitIntegrity;
  }
  return kExitOk;
}

}  // namespace iqdb::tools
