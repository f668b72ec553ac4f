#include "torture/torture_command.h"

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "flat_index.h"
#include "iqdb/persist.h"
#include "output/exit_status.h"
#include "output/stopwatch.h"
#include "output/text_format.h"
#include "torture/torture_dir.h"
#include "torture/torture_workload.h"
#include "torture/torture_writer.h"

namespace iqdb::tools {
namespace {

using persist::ErrorKind;
using persist::FsyncPolicy;
using persist::PersistConfig;
using persist::Result;
using Db = persist::PersistedIndex<examples::FlatIndex>;

constexpr auto kPeriodicInterval = std::chrono::milliseconds(100);
// Most kills come this long at most after the writer loaded.
constexpr std::uint64_t kMaxDelayMicros = 60'000;
// The early kills come within this many times the last recovery's duration
// after the fork, plus kForkMicros for the fork itself.
constexpr double kEarlyWindowFactor = 2.0;
constexpr std::uint64_t kForkMicros = 300;
// At most this many differing ids are listed per failure.
constexpr std::size_t kMaxListed = 10;

FsyncPolicy policy_named(const std::string& name) {
  if (name == "never") return FsyncPolicy::never();
  if (name == "periodic") return FsyncPolicy::periodic(kPeriodicInterval);
  return FsyncPolicy::always();
}

std::uint64_t random_seed() {
  std::random_device device;
  return (std::uint64_t{device()} << 32) ^ device();
}

struct TortureStats {
  std::uint64_t iterations = 0;
  std::uint64_t operations = 0;      // acknowledged, checkpoints and refusals included
  std::uint64_t writes_checked = 0;  // acknowledged inserts and removes the index applied
  std::uint64_t recovery_kills = 0;  // the writer had not finished loading
  std::uint64_t in_flight_applied = 0;
  std::uint64_t failures = 0;
};

// What one kill left to check.
struct Killed {
  std::string where;  // "iteration 12 (seed 7, killed 3.1 ms after its load)"
  WriterRun run;
  TortureRng stream;  // as the writer started it
};

class Torture {
 public:
  Torture(const TortureOptions& options, const std::filesystem::path& snapshot, std::uint64_t seed)
      : options_(options), config_(snapshot), seed_(seed), kills_(seed ^ 0x6b696c6cu) {
    config_.wal_enabled = true;
    config_.fsync_policy = policy_named(options.fsync);
  }

  // Creates the database and runs iterations until the time is up or the
  // database no longer loads. Errors: Io from the storage or the OS.
  Result<void> run();
  // The figures, then what `status` (run_torture's) means.
  void print_summary(int status) const;
  const TortureStats& stats() const { return stats_; }

 private:
  Result<void> create();
  // False when the run must stop.
  Result<bool> iteration();
  KillPlan plan_kill();
  Result<bool> recover(const Killed& killed);
  void check(const Killed& killed, const TortureState& got);
  void report_lost(const Killed& killed, const TortureState& expected, const TortureState& got,
                   const std::map<std::uint64_t, std::uint64_t>& written_by);
  void fail(const std::string& message);
  void print_progress();

  TortureOptions options_;
  PersistConfig config_;
  std::uint64_t seed_;
  TortureRng kills_;    // the kill times, apart from the workload streams
  TortureState model_;  // what the database holds now
  double last_load_seconds_ = 0;
  TortureStats stats_;
  Stopwatch clock_;
  double next_progress_ = 1;
};

Result<void> Torture::create() {
  IQDB_TRY(Db::open_with(examples::FlatIndex(options_.dim, DistanceMetric::Euclidean), config_));
  const Stopwatch load_time;
  IQDB_TRY(Db::load(config_));
  last_load_seconds_ = load_time.seconds();
  return iqdb::persist::success();
}

Result<void> Torture::run() {
  IQDB_TRY(create());
  while (clock_.seconds() < static_cast<double>(options_.seconds)) {
    IQDB_TRY_ASSIGN(const bool go_on, iteration());
    if (!go_on) break;
    if (clock_.seconds() >= next_progress_) print_progress();
  }
  return iqdb::persist::success();
}

KillPlan Torture::plan_kill() {
  if (kills_() % 4 != 0) return {true, std::chrono::microseconds(kills_() % kMaxDelayMicros)};
  const auto window = static_cast<std::uint64_t>(kEarlyWindowFactor * 1e6 * last_load_seconds_);
  return {false, std::chrono::microseconds(kills_() % (window + kForkMicros))};
}

Result<bool> Torture::iteration() {
  const std::uint64_t n = stats_.iterations++;
  std::seed_seq stream_seed{static_cast<std::uint32_t>(seed_),
                            static_cast<std::uint32_t>(seed_ >> 32), static_cast<std::uint32_t>(n),
                            static_cast<std::uint32_t>(n >> 32)};
  const KillPlan plan = plan_kill();
  Killed killed{fmt::format("iteration {} (seed {}, killed {} after {})", n, seed_,
                            format_seconds(static_cast<double>(plan.delay.count()) / 1e6),
                            plan.after_load ? "its load" : "the fork"),
                {},
                TortureRng(stream_seed)};
  IQDB_TRY_ASSIGN(killed.run,
                  run_killed_writer(config_, model_, killed.stream, options_.dim, plan));
  if (!killed.run.loaded) ++stats_.recovery_kills;
  stats_.operations += killed.run.acked;
  if (!killed_by_parent(killed.run)) {
    if (WIFEXITED(killed.run.status) && WEXITSTATUS(killed.run.status) == kWriterIo) {
      return persist::fail(ErrorKind::Io, fmt::format("{}: the writer process hit an I/O error "
                                                      "(above); this is not a lost write",
                                                      killed.where));
    }
    fail(fmt::format("{}: the writer process {} (its message is above)", killed.where,
                     describe_end(killed.run)));
  }
  if (!killed.run.in_order) {
    fail(fmt::format("{}: the writer's messages were garbled", killed.where));
  }
  return recover(killed);
}

// Loads the database as a restarted application would, checks it, and makes
// what it holds the starting point of the next iteration.
Result<bool> Torture::recover(const Killed& killed) {
  const Stopwatch load_time;
  auto loaded = Db::load(config_);
  if (!loaded && loaded.error().kind() == ErrorKind::Io) {
    return boost::outcome_v2::failure(std::move(loaded).error());
  }
  if (!loaded) {
    fail(fmt::format("{}: the database does not load after the kill: {}", killed.where,
                     loaded.error().to_string()));
    return false;
  }
  last_load_seconds_ = load_time.seconds();
  TortureState got = state_of(loaded.value().index());
  check(killed, got);
  model_ = std::move(got);
  return true;
}

// The recovered content must be the model after the acknowledged ops, or
// after one more: the op the kill cut short may have reached the log.
void Torture::check(const Killed& killed, const TortureState& got) {
  TortureRng stream = killed.stream;
  TortureState expected = model_;
  std::map<std::uint64_t, std::uint64_t> written_by;  // id -> the last acknowledged op writing it
  for (std::uint64_t k = 1; k <= killed.run.acked; ++k) {
    const TortureOp op = next_op(stream, expected, options_.dim);
    const TortureOutcome outcome = apply_op(expected, op);
    for (std::size_t i = 0; i < outcome.applied; ++i) written_by[op.mutations[i].id] = k;
    stats_.writes_checked += outcome.applied;
  }
  if (got == expected) return;
  if (killed.run.loaded) {
    TortureState with_in_flight = expected;
    (void)apply_op(with_in_flight, next_op(stream, expected, options_.dim));
    if (got == with_in_flight) {
      ++stats_.in_flight_applied;
      return;
    }
  }
  report_lost(killed, expected, got, written_by);
}

// Why the recovered content of `d.id` is wrong, in terms of the last
// acknowledged op that wrote it, if any (`written_by`).
std::string explain(const IdDifference& d,
                    const std::map<std::uint64_t, std::uint64_t>& written_by) {
  const auto op = written_by.find(d.id);
  const std::string by =
      op == written_by.end() ? std::string() : fmt::format("acknowledged operation {}", op->second);
  switch (d.kind) {
    case IdDifference::Kind::Missing:
      return by.empty() ? "missing, though present before this iteration"
                        : fmt::format("missing, though {} inserted it", by);
    case IdDifference::Kind::Unexpected:
      return by.empty() ? "present, though no acknowledged write put it there"
                        : fmt::format("present, though {} removed it", by);
    case IdDifference::Kind::VectorChanged: break;
  }
  return by.empty() ? "holds another vector than before this iteration"
                    : fmt::format("holds another vector than {} inserted", by);
}

void Torture::report_lost(const Killed& killed, const TortureState& expected,
                          const TortureState& got,
                          const std::map<std::uint64_t, std::uint64_t>& written_by) {
  const auto differences = compare(expected, got);
  std::string lines;
  for (std::size_t i = 0; i < differences.size() && i < kMaxListed; ++i) {
    const IdDifference& d = differences[i];
    lines += fmt::format("\n  id {}: {}", d.id, explain(d, written_by));
  }
  if (differences.size() > kMaxListed) {
    lines += fmt::format("\n  ... and {} more ids", differences.size() - kMaxListed);
  }
  fail(
      fmt::format("{}: acknowledged writes lost ({} operations acknowledged; recovered {} "
                  "vectors, the model holds {}):{}",
                  killed.where, killed.run.acked, got.size(), expected.size(), lines));
}

void Torture::fail(const std::string& message) {
  ++stats_.failures;
  print_error("FAIL", message);
}

void Torture::print_progress() {
  next_progress_ = clock_.seconds() + 1;
  fmt::print(stderr,
             "torture: {:.0f} s: {} iterations, {} operations, {} acknowledged writes checked, {} "
             "kills during recovery, {} failures\n",
             clock_.seconds(), stats_.iterations, stats_.operations, stats_.writes_checked,
             stats_.recovery_kills, stats_.failures);
}

void Torture::print_summary(int status) const {
  fmt::print("seconds:                      {:.1f}\n", clock_.seconds());
  fmt::print("iterations:                   {} (each a SIGKILL and a recovery)\n",
             stats_.iterations);
  fmt::print("operations:                   {} acknowledged\n", stats_.operations);
  fmt::print("acknowledged writes checked:  {}\n", stats_.writes_checked);
  fmt::print("kills during recovery:        {}\n", stats_.recovery_kills);
  fmt::print("in-flight operation kept:     {}\n", stats_.in_flight_applied);
  fmt::print("final size:                   {} vectors\n", model_.size());
  fmt::print("failures:                     {}\n", stats_.failures);
  if (options_.keep || stats_.failures > 0) {
    fmt::print("database kept: {}\n", escape_for_terminal(config_.path.string()));
  }
  if (stats_.failures > 0) {
    fmt::print("FAIL: {} checks failed (see above)\n", stats_.failures);
  } else if (status != kExitOk) {
    fmt::print("STOPPED by an error (see above); no lost write was found until then\n");
  } else {
    fmt::print("PASS: every acknowledged write survived every kill\n");
  }
}

}  // namespace

int run_torture(const TortureOptions& options) {
  const std::uint64_t seed = options.seed.value_or(random_seed());
  auto snapshot = prepare_torture_dir(options.dir);
  if (!snapshot) return report(snapshot.error());
  fmt::print("iqdb-persist torture: {} s, fsync {}, dimension {}, seed {}\n", options.seconds,
             options.fsync, options.dim, seed);
  fmt::print("database: {}{}\n", escape_for_terminal(snapshot.value().string()),
             options.keep ? "" : " (removed at the end unless a check fails)");
  std::fflush(stdout);

  Torture torture(options, snapshot.value(), seed);
  const auto ran = torture.run();
  int status = torture.stats().failures > 0 ? kExitIntegrity : kExitOk;
  if (!ran) {
    const int error_status = report(ran.error());
    if (status == kExitOk) status = error_status;
  }
  if (!options.keep && torture.stats().failures == 0) {
    if (auto removed = remove_torture_database(snapshot.value()); !removed) {
      const int error_status = report(removed.error());
      if (status == kExitOk) status = error_status;
    }
  }
  torture.print_summary(status);
  return status;
}

}  // namespace iqdb::tools
