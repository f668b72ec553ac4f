// The atomic save under crashes. A durable snapshot A is being replaced by B;
// the machine goes down at each mutating I/O call of that save in turn (the
// call not made, or a write torn), then comes back after a power loss (in
// several flavours) or after a mere process crash. Every recovery must load
// exactly A or exactly B, and B whenever the save's promise says so.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "iqdb/persist.h"
#include "support/crash_file_system.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"

namespace iqdb::persist::test {
namespace {

using ::testing::IsEmpty;

const std::filesystem::path kDir = "/db";
const std::filesystem::path kPath = "/db/x.iqdb";
const std::string kSnapshotName = "x.iqdb";

PersistConfig config_for(std::shared_ptr<CrashFileSystem> fs, FsyncPolicy policy) {
  PersistConfig config(kPath);
  config.fsync_policy = policy;
  config.verify_threads = 1;
  config.file_system = std::move(fs);
  return config;
}

template <class I>
Result<void> save(const I& index, const PersistConfig& config) {
  IQDB_TRY_ASSIGN(auto db, PersistedIndex<I>::open_with(index, config, OpenMode::Overwrite));
  return db.save();
}

// "A", "B", "neither" or the load error: what a recovery found at kPath.
template <class I>
std::string load_outcome(const PersistConfig& config, const I& a, const I& b) {
  auto loaded = PersistedIndex<I>::load(config);
  if (!loaded) return "error " + loaded.error().to_string();
  if (same_content(loaded.value().index(), a)) return "A";
  if (same_content(loaded.value().index(), b)) return "B";
  return "neither A nor B";
}

// A fresh machine whose kPath durably holds `a`.
template <class I>
std::shared_ptr<CrashFileSystem> machine_holding(const I& a, std::uint64_t seed) {
  auto fs = std::make_shared<CrashFileSystem>(seed);
  fs->create_dir(kDir);
  EXPECT_THAT(save(a, config_for(fs, FsyncPolicy::always())), IsOk());
  return fs;
}

// The names in kDir other than the snapshot's.
std::vector<std::string> extra_entries(CrashFileSystem& fs) {
  auto names = fs.list_dir(kDir);
  EXPECT_THAT(names, IsOk());
  std::vector<std::string> extras;
  for (const std::string& name : names.value()) {
    if (name != kSnapshotName) extras.push_back(name);
  }
  return extras;
}

std::string own_temp_prefix() { return fmt::format("{}.tmp-{}-", kSnapshotName, ::getpid()); }

struct Scenario {
  std::string name;
  FsyncPolicy policy;
  std::optional<PowerLoss> power_loss;  // nullopt: only the process crashes
  CrashingCall crashing_call;
};

void PrintTo(const Scenario& scenario, std::ostream* os) { *os << scenario.name; }

std::vector<Scenario> all_scenarios() {
  using Data = PowerLoss::UnsyncedData;
  using Entries = PowerLoss::UnsyncedEntries;
  const std::pair<std::string, std::optional<PowerLoss>> recoveries[] = {
      {"ProcessCrash", std::nullopt},
      {"PowerLoss", PowerLoss{Data::Drop, Entries::Drop}},
      {"PowerLossTornData", PowerLoss{Data::TornPrefix, Entries::Drop}},
      {"PowerLossKeptEntries", PowerLoss{Data::Drop, Entries::Keep}},
      {"PowerLossTornDataKeptEntries", PowerLoss{Data::TornPrefix, Entries::Keep}},
  };
  const std::pair<std::string, FsyncPolicy> policies[] = {{"Always", FsyncPolicy::always()},
                                                          {"Never", FsyncPolicy::never()}};
  const std::pair<std::string, CrashingCall> calls[] = {{"CallNotMade", CrashingCall::NotMade},
                                                        {"TornWrite", CrashingCall::TornWrite}};
  std::vector<Scenario> scenarios;
  for (const auto& [policy_name, policy] : policies) {
    for (const auto& [recovery_name, power_loss] : recoveries) {
      for (const auto& [call_name, call] : calls) {
        scenarios.push_back(
            {policy_name + "_" + recovery_name + "_" + call_name, policy, power_loss, call});
      }
    }
  }
  return scenarios;
}

// 1-based position of the first logged call of `op`, or 0.
std::size_t position_of(const std::vector<std::string>& log, std::string_view op) {
  for (std::size_t i = 0; i < log.size(); ++i) {
    if (log[i].starts_with(std::string(op) + " ")) return i + 1;
  }
  return 0;
}

bool is_detected_damage(const std::string& outcome) {
  for (const ErrorKind kind : {ErrorKind::TruncatedHeader, ErrorKind::BadMagic,
                               ErrorKind::TruncatedPayload, ErrorKind::ChecksumMismatch}) {
    if (outcome.starts_with("error " + std::string(to_string(kind)))) return true;
  }
  return false;
}

class SnapshotCrashTest : public ::testing::TestWithParam<Scenario> {
 protected:
  // Crashes the save of `b` over `a` at every call, then once more after it
  // returned, and checks each recovery.
  template <class I>
  void sweep(const I& a, const I& b) {
    const Scenario& scenario = GetParam();
    std::vector<std::string> log;
    {
      auto fs = machine_holding(a, 0);
      fs->enable_call_log();
      ASSERT_THAT(save(b, config_for(fs, scenario.policy)), IsOk());
      log = fs->call_log();
    }
    const std::size_t created_at = position_of(log, "create_new");
    const std::size_t renamed_at = position_of(log, "rename");
    const std::size_t dir_synced_at = position_of(log, "sync_dir");  // 0 under never()
    ASSERT_EQ(created_at, 1u);
    ASSERT_GT(renamed_at, created_at);

    for (std::size_t n = 1; n <= log.size() + 1; ++n) {
      SCOPED_TRACE(n <= log.size()
                       ? fmt::format("crash at call {} of {}: {}", n, log.size(), log[n - 1])
                       : fmt::format("crash after the save of {} calls returned", log.size()));
      auto fs = machine_holding(a, n);
      const PersistConfig config = config_for(fs, scenario.policy);
      fs->crash_after(n, scenario.crashing_call);
      const auto saved = save(b, config);
      if (n <= log.size()) {
        EXPECT_THAT(saved, IsError(ErrorKind::Io, "machine crashed at this call"));
        EXPECT_TRUE(fs->is_down());
      } else {
        EXPECT_THAT(saved, IsOk());
      }
      if (scenario.power_loss) {
        fs->simulate_power_loss(*scenario.power_loss);
      } else {
        fs->simulate_process_crash();
      }
      ++crash_points_;

      const bool power_loss = scenario.power_loss.has_value();
      const bool entries_kept =
          !power_loss || scenario.power_loss->entries == PowerLoss::UnsyncedEntries::Keep;
      const bool renamed = n > renamed_at;
      const bool dir_synced = dir_synced_at != 0 && n > dir_synced_at;
      // Whether kPath names B's inode now. never() makes no sync_dir, so after a
      // power loss that drops unsynced entries even a returned save is undone.
      const bool names_b = entries_kept ? renamed : dir_synced;
      const std::string outcome = load_outcome(config, a, b);
      if (!names_b) {
        EXPECT_EQ(outcome, "A");
      } else if (!power_loss || scenario.policy.syncs_snapshots()) {
        EXPECT_EQ(outcome, "B");
      } else {
        // never(): the rename reached the disk but B's bytes need not have.
        EXPECT_TRUE(outcome == "B" || is_detected_damage(outcome)) << outcome;
        if (outcome != "B") ++damaged_loads_;
      }

      // The crashed save's temporary file survives where its entry did; a
      // later save leaves it (its pid, ours, is alive) and is not disturbed.
      const bool temp_left = n > created_at && !renamed && entries_kept;
      const std::vector<std::string> extras = extra_entries(*fs);
      ASSERT_EQ(extras.size(), temp_left ? 1u : 0u) << fmt::format("{}", fmt::join(extras, " "));
      if (temp_left) {
        EXPECT_TRUE(extras[0].starts_with(own_temp_prefix())) << extras[0];
      }
      ASSERT_THAT(save(b, config), IsOk());
      EXPECT_EQ(load_outcome(config, a, b), "B");
      EXPECT_EQ(extra_entries(*fs), extras);
    }
  }

  void TearDown() override {
    RecordProperty("crash_points", crash_points_);
    RecordProperty("damaged_loads", damaged_loads_);
  }

  int crash_points_ = 0;
  int damaged_loads_ = 0;
};

TEST_P(SnapshotCrashTest, RecoveryLoadsOldOrNewSectionSnapshotAtEveryCrashPoint) {
  sweep(make_index<SectionArrayIndex>(3, 4, DistanceMetric::Euclidean, 1),
        make_index<SectionArrayIndex>(5, 4, DistanceMetric::Cosine, 2));
}

TEST_P(SnapshotCrashTest, RecoveryLoadsOldOrNewStreamSnapshotAtEveryCrashPoint) {
  sweep(make_index<StreamMapIndex>(3, 4, DistanceMetric::Euclidean, 1),
        make_index<StreamMapIndex>(5, 4, DistanceMetric::Cosine, 2));
}

INSTANTIATE_TEST_SUITE_P(AllCrashes, SnapshotCrashTest, ::testing::ValuesIn(all_scenarios()),
                         [](const auto& info) { return info.param.name; });

TEST(SnapshotCrashFacts, SaveWithFsyncAlwaysSurvivesPowerLossOnceReturned) {
  const auto a = make_index<SectionArrayIndex>(3, 4, DistanceMetric::Euclidean, 1);
  const auto b = make_index<SectionArrayIndex>(5, 4, DistanceMetric::Euclidean, 2);
  auto fs = machine_holding(a, 7);
  fs->simulate_power_loss();
  EXPECT_EQ(load_outcome(config_for(fs, FsyncPolicy::always()), a, b), "A");
}

TEST(SnapshotCrashFacts, SaveWithFsyncNeverIsLostEntirelyByPowerLossBeforeWriteBack) {
  const auto a = make_index<SectionArrayIndex>(3, 4, DistanceMetric::Euclidean, 1);
  const auto b = make_index<SectionArrayIndex>(5, 4, DistanceMetric::Euclidean, 2);
  auto fs = machine_holding(a, 7);
  const PersistConfig config = config_for(fs, FsyncPolicy::never());
  ASSERT_THAT(save(b, config), IsOk());
  fs->simulate_power_loss();
  EXPECT_EQ(load_outcome(config, a, b), "A");

  // A first snapshot saved with never() and no write-back at all is gone.
  auto empty = std::make_shared<CrashFileSystem>(7);
  empty->create_dir(kDir);
  const PersistConfig first = config_for(empty, FsyncPolicy::never());
  ASSERT_THAT(save(b, first), IsOk());
  empty->simulate_power_loss();
  EXPECT_THAT(PersistedIndex<SectionArrayIndex>::load(first), IsError(ErrorKind::NotFound));
}

TEST(SnapshotCrashFacts, SaveWithFsyncNeverCanLeaveAnEmptySnapshotWhenOnlyTheRenameIsDurable) {
  const auto a = make_index<SectionArrayIndex>(3, 4, DistanceMetric::Euclidean, 1);
  const auto b = make_index<SectionArrayIndex>(5, 4, DistanceMetric::Euclidean, 2);
  auto fs = machine_holding(a, 7);
  const PersistConfig config = config_for(fs, FsyncPolicy::never());
  ASSERT_THAT(save(b, config), IsOk());
  fs->simulate_power_loss({.entries = PowerLoss::UnsyncedEntries::Keep});
  EXPECT_THAT(PersistedIndex<SectionArrayIndex>::load(config),
              IsError(ErrorKind::TruncatedHeader, kPath.string()));
}

TEST(SnapshotCrashFacts, TempFileOfACrashedSaveIsRemovedByTheNextSaveOnceItsProcessIsGone) {
  const auto a = make_index<SectionArrayIndex>(3, 4, DistanceMetric::Euclidean, 1);
  const auto b = make_index<SectionArrayIndex>(5, 4, DistanceMetric::Euclidean, 2);
  auto fs = machine_holding(a, 7);
  const PersistConfig config = config_for(fs, FsyncPolicy::always());
  fs->crash_after(3);  // create_new, write_at, then down
  ASSERT_THAT(save(b, config), IsError(ErrorKind::Io));
  fs->simulate_process_crash();
  const std::vector<std::string> extras = extra_entries(*fs);
  ASSERT_EQ(extras.size(), 1u);

  // Pretend the temporary file belongs to a process that has exited.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  const std::string orphan = fmt::format("{}.tmp-{}-0-0", kSnapshotName, child);
  ASSERT_THAT(fs->rename(kDir / extras[0], kDir / orphan), IsOk());
  EXPECT_EQ(extra_entries(*fs), std::vector<std::string>{orphan});

  ASSERT_THAT(save(b, config), IsOk());
  EXPECT_THAT(extra_entries(*fs), IsEmpty());
  EXPECT_EQ(load_outcome(config, a, b), "B");
}

}  // namespace
}  // namespace iqdb::persist::test
