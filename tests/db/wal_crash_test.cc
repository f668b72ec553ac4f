// Crash consistency of the write-ahead log under random workloads.
//
// Each seed makes a random workload over a PersistedIndex<StreamMapIndex> with
// the log on: inserts (new ids, duplicates, wrong dimensions), removes
// (present and missing ids), batches (sometimes refused part-way), checkpoints,
// saves and reloads (drop the database and load it again: replay, new
// segment). An in-memory model gives the index content after every prefix of
// the workload. The workload runs once to count its mutating file-system
// calls N; then, for every crash point 1..N (open_with included), it is rerun
// on a fresh CrashFileSystem that goes down at that call (the call not made,
// or for a write a torn prefix of it written), the workload stops there, and
// the machine comes back after a process crash or a power loss of each
// flavour. Then:
//   - load() succeeds and the index equals the model after `done` ops (every
//     op that returned, with success or with the index's refusal) or, if the
//     crash cut an op short (it returned Io), possibly after that op too.
//     That is stricter than "nothing acknowledged is lost": nothing that had
//     not been attempted appears either. A crash inside open_with() leaves
//     the empty index or, if it came before the first snapshot was durable,
//     no database at all: load() must then say NotFound, and a new
//     open_with() must succeed.
//   - the recovered database keeps working: an insert, another crash of the
//     same kind, and a load that must hold the insert (a torn tail or a broken
//     segment left by the first crash must not harm later writes).
// Under FsyncPolicy::always() every recovery flavour applies (power losses
// that keep a torn prefix of the unsynced writes, or any subset of them:
// PowerLoss::UnsyncedData::AnySubset, write-back in any order). Under
// periodic() and never() only a process crash is promised to lose nothing
// acknowledged.
//
// Under periodic() and never() a power loss (torn prefix or any subset) is
// checked against what those policies do promise: load() succeeds and the
// index equals the model after some prefix of the ops, at least those the
// policy made durable (periodic(): every op before the last save, checkpoint
// or reload), and the database keeps working (an insert and a clean reload:
// one crash per case). never() does not sync its snapshots (nor log frames;
// only the header of each new log segment), so a power loss may also leave no
// database (NotFound) or a damaged snapshot (wal_options.h: "on some file systems,
// be empty"); a second never() sweep has the OS write each snapshot back after
// its save, so that the log is what is at stake. One never() refusal, a
// known limitation, is tolerated and counted rather than failed (see
// check_recovery()): "log records ... are missing", when a segment started
// after an unsynced recovery survived frames of an earlier one.
//
// One sweep also crashes the first recovery itself at each of its calls
// (sync of what it replayed, the new segment) and recovers again (in another
// flavour), to check that recovery can be interrupted and restarted.
//
// Failures name the seed, the crash point and call, and the recovery, and the
// sweep is deterministic: IQDB_WAL_CRASH_SEED=<seed> reruns one seed alone;
// IQDB_WAL_CRASH_KEEP_GOING=1 reports every failing crash instead of stopping
// at the first.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "iqdb/persist.h"
#include "support/crash_file_system.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"
#include "support/wal_workload.h"

namespace iqdb::persist::test {
namespace {

// Full sweeps in optimised builds; smaller ones in Debug and sanitizer builds,
// which run the same code 5 to 20 times slower.
#if defined(NDEBUG)
constexpr bool kFullSweeps = !kSanitized;
#else
constexpr bool kFullSweeps = false;
#endif

using Db = PersistedIndex<StreamMapIndex>;
constexpr DistanceMetric kMetric = DistanceMetric::Euclidean;
const std::filesystem::path kDir = "/db";
const std::filesystem::path kPath = "/db/x.iqdb";
constexpr std::uint64_t kFreshId = 1'000'000;  // never used by a workload

enum class OpKind { Insert, Remove, Batch, Checkpoint, Save, Reload };

struct Op {
  OpKind kind = OpKind::Insert;
  std::vector<Mutation> mutations;   // one for Insert and Remove, 2..5 for Batch
  std::optional<ErrorKind> refusal;  // the index's answer, per the model
};

struct Workload {
  std::uint64_t seed = 0;
  std::vector<Op> ops;
  std::vector<State> states;  // states[k]: the content after the first k ops
};

std::string describe(const Mutation& m) {
  if (!m.insert) return fmt::format("remove {}", m.id);
  if (m.vector.size() != kDim) return fmt::format("insert {} ({} floats)", m.id, m.vector.size());
  return fmt::format("insert {}", m.id);
}

std::string describe(const Op& op) {
  std::string text;
  switch (op.kind) {
    case OpKind::Insert:
    case OpKind::Remove: text = describe(op.mutations[0]); break;
    case OpKind::Batch: {
      std::vector<std::string> parts;
      for (const Mutation& m : op.mutations) parts.push_back(describe(m));
      text = fmt::format("batch [{}]", fmt::join(parts, ", "));
      break;
    }
    case OpKind::Checkpoint: return "checkpoint";
    case OpKind::Save: return "save";
    case OpKind::Reload: return "reload";
  }
  if (op.refusal) text += fmt::format(" (refused: {})", to_string(*op.refusal));
  return text;
}

std::string describe(const State& state) {
  std::vector<std::uint64_t> ids;
  for (const auto& [id, vector] : state) ids.push_back(id);
  return fmt::format("{{{}}}", fmt::join(ids, ","));
}

Op next_op(Rng& rng, const State& state) {
  Op op;
  const auto roll = rng.below(100);
  if (roll < 30) {
    op.mutations.push_back(insert_of(absent_id(rng, state), random_vector(rng)));
  } else if (roll < 36 && !state.empty()) {
    op.mutations.push_back(insert_of(present_id(rng, state), random_vector(rng)));
  } else if (roll < 39) {
    op.mutations.push_back(insert_of(absent_id(rng, state), random_vector(rng, kDim - 1)));
  } else if (roll < 54 && !state.empty()) {
    op.kind = OpKind::Remove;
    op.mutations.push_back(remove_of(present_id(rng, state)));
  } else if (roll < 59) {
    op.kind = OpKind::Remove;
    op.mutations.push_back(remove_of(absent_id(rng, state)));
  } else if (roll < 80) {
    op.kind = OpKind::Batch;
    op.mutations = random_batch(rng, state);
  } else if (roll < 88) {
    op.kind = OpKind::Checkpoint;
  } else if (roll < 93) {
    op.kind = OpKind::Save;
  } else if (roll < 98) {
    op.kind = OpKind::Reload;
  } else {
    op.mutations.push_back(insert_of(absent_id(rng, state), random_vector(rng)));
  }
  return op;
}

Workload make_workload(std::uint64_t seed, std::size_t min_ops, std::size_t max_ops) {
  Rng rng(seed * 0x2545F4914F6CDD1Dull + 17);
  Workload w;
  w.seed = seed;
  w.states.emplace_back();
  const std::size_t n = min_ops + rng.below(max_ops - min_ops + 1);
  for (std::size_t k = 0; k < n; ++k) {
    State state = w.states.back();
    Op op = next_op(rng, state);
    op.refusal = apply_mutations(state, op.mutations);
    w.ops.push_back(std::move(op));
    w.states.push_back(std::move(state));
  }
  return w;
}

PersistConfig config_for(std::shared_ptr<CrashFileSystem> fs, FsyncPolicy policy) {
  PersistConfig config(kPath);
  config.wal_enabled = true;
  config.fsync_policy = policy;
  config.verify_threads = 1;
  config.file_system = std::move(fs);
  return config;
}

Result<void> execute(std::optional<Db>& db, const Op& op, const PersistConfig& config) {
  switch (op.kind) {
    case OpKind::Insert: return db->insert(op.mutations[0].id, op.mutations[0].vector);
    case OpKind::Remove: return db->remove(op.mutations[0].id);
    case OpKind::Batch: return db->apply_batch(batch_of(op.mutations));
    case OpKind::Checkpoint: return db->checkpoint();
    case OpKind::Save: return db->save();
    case OpKind::Reload: {
      db.reset();
      IQDB_TRY_ASSIGN(auto loaded, Db::load(config));
      db.emplace(std::move(loaded));
      return success();
    }
  }
  return success();
}

// How far a run got before the machine went down.
struct Run {
  bool opened = false;     // open_with() returned the database
  std::size_t done = 0;    // ops that returned success or the index's refusal
  bool cut_short = false;  // op `done` returned Io: the crash hit it
  bool broken = false;     // an op's outcome contradicted the model (reported)
  // What survives a power loss under the policy's own promise (all the
  // sweeps of periodic() and never() need): the ops the policy made durable
  // (periodic(): those before the last save, checkpoint or reload; never():
  // those in a snapshot the OS wrote back, see SweepOptions::write_back), and
  // whether the snapshot's directory entry and its data are durable.
  std::size_t durable_ops = 0;
  bool snapshot_entry_durable = false;
  bool snapshot_data_durable = false;
};

// What the OS's own write-back does to the snapshot under FsyncPolicy::never()
// some time after a save: its data and the directory reach the disk. (The log
// segments' entries with it; their data stays in the page cache.) False when
// the machine went down at one of the two calls.
bool write_back_snapshot(CrashFileSystem& fs) {
  const bool done = fs.sync_file(kPath).has_value() && fs.sync_dir(kDir).has_value();
  EXPECT_TRUE(done || fs.is_down()) << "write-back failed with the machine up";
  return done;
}

// Runs `w` from open_with() on until it ends or the machine goes down (the
// first op that finds it down is the last: a dead machine runs nothing more).
// `db` is left open, as a crashed process would leave it.
// With `write_back`, the OS writes the snapshot back after open_with() and
// after every save and checkpoint (write_back_snapshot(): two more calls,
// which may crash too).
Run run_workload(CrashFileSystem& fs, const PersistConfig& config, const Workload& w,
                 std::optional<Db>& db, const std::string& where, bool write_back = false) {
  Run run;
  const bool syncs = config.fsync_policy.syncs_snapshots();
  auto opened = Db::open_with(StreamMapIndex(kDim, kMetric), config);
  if (!opened) {
    EXPECT_TRUE(fs.is_down() && opened.error().kind() == ErrorKind::Io)
        << where << ": open_with failed with " << opened.error().to_string();
    run.broken = !fs.is_down();
    return run;
  }
  run.opened = true;
  run.snapshot_entry_durable = run.snapshot_data_durable = syncs;
  db.emplace(std::move(opened).value());
  if (write_back) {
    if (!write_back_snapshot(fs)) return run;
    run.snapshot_entry_durable = run.snapshot_data_durable = true;
  }
  for (std::size_t k = 0; k < w.ops.size(); ++k) {
    const Op& op = w.ops[k];
    const bool saves = op.kind == OpKind::Save || op.kind == OpKind::Checkpoint;
    // A save renames a new snapshot over the old one; under never() the
    // rename may reach the disk before the new file's data.
    if (saves && !syncs) run.snapshot_data_durable = false;
    const auto result = execute(db, op, config);
    const bool down = fs.is_down();
    if (!result && result.error().kind() == ErrorKind::Io && down) {
      run.cut_short = true;
      return run;
    }
    const std::optional<ErrorKind> got =
        result ? std::nullopt : std::optional<ErrorKind>(result.error().kind());
    if (got != op.refusal) {
      ADD_FAILURE() << where << ": op " << k << " (" << describe(op) << ") returned "
                    << (result ? std::string("success") : result.error().to_string())
                    << (down ? " with the machine down" : "");
      run.broken = true;
      return run;
    }
    // A refusal is an outcome: the ops of a batch before the refused one stay
    // applied, and were logged before they were.
    ++run.done;
    if (down) return run;
    if (db->index().vectors() != w.states[k + 1]) {
      ADD_FAILURE() << where << ": after op " << k << " (" << describe(op) << ") the index holds "
                    << describe(db->index().vectors()) << ", the model "
                    << describe(w.states[k + 1]);
      run.broken = true;
      return run;
    }
    // A save or checkpoint syncs its snapshot (always(), periodic()); a
    // reload's recovery syncs what it replayed (docs/FORMAT.md, "Writing the
    // log").
    if (syncs && (saves || op.kind == OpKind::Reload)) run.durable_ops = run.done;
    if (write_back && saves) {
      if (!write_back_snapshot(fs)) return run;
      run.snapshot_data_durable = true;
      run.durable_ops = run.done;
    }
  }
  return run;
}

struct Recovery {
  const char* name;
  std::optional<PowerLoss> power_loss;  // nullopt: only the process crashes
};

using Data = PowerLoss::UnsyncedData;
using Entries = PowerLoss::UnsyncedEntries;
const Recovery kProcessCrash{"ProcessCrash", std::nullopt};
const Recovery kAllRecoveries[] = {
    kProcessCrash,
    {"PowerLoss{Drop,Drop}", PowerLoss{Data::Drop, Entries::Drop}},
    {"PowerLoss{TornPrefix,Drop}", PowerLoss{Data::TornPrefix, Entries::Drop}},
    {"PowerLoss{Drop,Keep}", PowerLoss{Data::Drop, Entries::Keep}},
    {"PowerLoss{TornPrefix,Keep}", PowerLoss{Data::TornPrefix, Entries::Keep}},
    {"PowerLoss{AnySubset,Drop}", PowerLoss{Data::AnySubset, Entries::Drop}},
    {"PowerLoss{AnySubset,Keep}", PowerLoss{Data::AnySubset, Entries::Keep}},
};
const Recovery& kTornPrefixKeep = kAllRecoveries[4];
const Recovery& kAnySubsetDrop = kAllRecoveries[5];
const Recovery& kAnySubsetKeep = kAllRecoveries[6];

void bring_back(CrashFileSystem& fs, const Recovery& recovery) {
  if (recovery.power_loss) {
    fs.simulate_power_loss(*recovery.power_loss);
  } else {
    fs.simulate_process_crash();
  }
}

struct Tally {
  std::uint64_t crash_points = 0;       // (seed, call) pairs swept
  std::uint64_t recoveries = 0;         // crashed runs recovered and checked
  std::uint64_t torn_writes = 0;        // of which the crashing call was a torn write
  std::uint64_t recovery_crashes = 0;   // of which the first load crashed too
  std::uint64_t no_database = 0;        // a crash in open_with() left none
  std::uint64_t cut_short_kept = 0;     // the op the crash cut short was recovered
  std::uint64_t cut_short_dropped = 0;  // ... or not (where that makes a difference)
  // Sweeps whose policy does not promise durability across a power loss:
  std::uint64_t lost_acknowledged = 0;  // the recovered prefix ended before `done`
  std::uint64_t unsynced_damage = 0;    // recovery dropped damage no later frame saw synced
  std::uint64_t snapshot_lost = 0;      // never(): the snapshot itself did not survive
};

// Where the machine goes down, and how it comes back.
struct CrashPlan {
  std::uint64_t point = 0;  // the workload's mutating call that fails
  bool torn = false;        // CrashingCall::TornWrite rather than NotMade
  const Recovery* recovery = nullptr;
  // A second crash at this call of the first load (0: none), then `second`.
  std::uint64_t recovery_point = 0;
  const Recovery* second = nullptr;
};

std::string describe(const CrashPlan& plan, const std::vector<std::string>& calls,
                     std::uint64_t seed) {
  std::string text =
      fmt::format("seed {} crash at call {}/{} ({}) {}, {}", seed, plan.point, calls.size(),
                  calls[plan.point - 1], plan.torn ? "TornWrite" : "NotMade", plan.recovery->name);
  if (plan.recovery_point != 0) {
    text += fmt::format("; load crashed at its call {} ({}), {}", plan.recovery_point,
                        plan.recovery_point % 2 == 1 ? "TornWrite" : "NotMade", plan.second->name);
  }
  return text;
}

// Whether `error` is about the snapshot file itself (not a log segment):
// its header, sections or checksums.
bool is_snapshot_damage(const PersistError& error) {
  return error.kind() != ErrorKind::Io && error.kind() != ErrorKind::NotFound &&
         error.message().starts_with(kPath.string() + ":");
}

// Recovers after a crashed run and checks what load() finds and that the
// database keeps working. `where` names the crash. Sets `load_calls` to the
// mutating calls the first load made.
//
// `strict`: nothing acknowledged may be lost (FsyncPolicy::always(), or a
// process crash). Otherwise (a power loss under periodic() or never()) the
// recovered content must be the model after some prefix of the ops, no
// shorter than what the policy made durable (Run::durable_ops); under never()
// the snapshot itself may be lost (NotFound, or a damaged snapshot: wal_options.h,
// "on some file systems, be empty"); and the recovered database must keep
// working through an insert and a clean reload (one crash per case).
void check_recovery(CrashFileSystem& fs, const PersistConfig& config, const Workload& w,
                    const Run& run, const CrashPlan& plan, const std::string& where, Tally& tally,
                    std::uint64_t& load_calls, bool strict) {
  ++tally.recoveries;
  if (plan.recovery_point != 0) {
    // The first attempt to recover dies too, part-way.
    ++tally.recovery_crashes;
    fs.crash_after(plan.recovery_point,
                   plan.recovery_point % 2 == 1 ? CrashingCall::TornWrite : CrashingCall::NotMade);
    auto crashed = Db::load(config);
    ASSERT_TRUE(fs.is_down()) << where << ": the load made fewer calls than before";
    EXPECT_THAT(crashed, IsError(ErrorKind::Io)) << where << ": the crashed load";
    bring_back(fs, *plan.second);
  }
  const Recovery& last_recovery = plan.second != nullptr ? *plan.second : *plan.recovery;

  std::optional<Db> db;
  State expected;
  const std::uint64_t calls_before = fs.call_count();
  auto loaded = Db::load(config);
  load_calls = fs.call_count() - calls_before;
  if (!loaded && !run.snapshot_entry_durable && loaded.error().kind() == ErrorKind::NotFound) {
    // The crash came before the first snapshot was durable (in open_with(),
    // or ever, under never()): there is no database, and nothing in the way
    // of creating one.
    ++tally.no_database;
    auto opened = Db::open_with(StreamMapIndex(kDim, kMetric), config);
    ASSERT_THAT(opened, IsOk()) << where << ": open_with after a crash that left no database";
    db.emplace(std::move(opened).value());
  } else if (!loaded && !strict && !run.snapshot_data_durable &&
             is_snapshot_damage(loaded.error())) {
    // never(): the rename of a snapshot whose data was never synced reached
    // the disk, its data did not (all of it). The database is gone; a new one
    // can replace it.
    ++tally.snapshot_lost;
    auto opened = Db::open_with(StreamMapIndex(kDim, kMetric), config, OpenMode::Overwrite);
    ASSERT_THAT(opened, IsOk()) << where << ": open_with(Overwrite) over a lost snapshot";
    db.emplace(std::move(opened).value());
  } else {
    ASSERT_THAT(loaded, IsOk()) << where << ": load after the crash ("
                                << (run.opened ? fmt::format("{} ops done", run.done)
                                               : std::string("in open_with"))
                                << ")";
    db.emplace(std::move(loaded).value());
    const State& got = db->index().vectors();
    const std::size_t first = strict ? run.done : run.durable_ops;
    const std::size_t last = run.done + (run.cut_short ? 1 : 0);
    std::optional<std::size_t> match;
    for (std::size_t j = first; j <= last; ++j) {
      if (w.states[j] == got) match = j;
    }
    if (!match && !strict) {
      const WalReplayReport& replay = db->wal_replay();
      ADD_FAILURE() << where << ": recovered " << describe(got)
                    << ", which is the model after no prefix of ops " << first << ".." << last
                    << " (" << run.done << " done" << (run.cut_short ? ", 1 cut short" : "") << ", "
                    << run.durable_ops << " durable); replay: snapshot LSN " << replay.snapshot_lsn
                    << ", last LSN " << replay.last_lsn << ", " << replay.records_replayed
                    << " records, notes: " << fmt::format("{}", fmt::join(replay.notes, " | "));
      return;
    }
    if (!match) {
      std::string wanted = describe(w.states[run.done]);
      if (run.cut_short) {
        wanted += fmt::format(" (before op {}, {}, which the crash cut short", run.done,
                              describe(w.ops[run.done]));
        wanted += w.states[last] == w.states[run.done]
                      ? ")"
                      : fmt::format(") or {} (after it)", describe(w.states[last]));
      }
      const WalReplayReport& replay = db->wal_replay();
      ADD_FAILURE() << where << ": recovered " << describe(got) << ", expected " << wanted
                    << "; replay: snapshot LSN " << replay.snapshot_lsn << ", last LSN "
                    << replay.last_lsn << ", " << replay.records_replayed << " records, "
                    << replay.ops_applied << " ops applied, " << replay.ops_refused << " refused";
      return;
    }
    if (run.cut_short && w.states[run.done] != w.states[last]) {
      ++(*match == last ? tally.cut_short_kept : tally.cut_short_dropped);
    }
    if (!strict) {
      // The latest prefix that matches (states repeat) is the least loss.
      std::size_t latest = *match;
      for (std::size_t j = latest; j <= last; ++j) {
        if (w.states[j] == got) latest = j;
      }
      if (latest < run.done) ++tally.lost_acknowledged;
      const auto& notes = db->wal_replay().notes;
      if (std::any_of(notes.begin(), notes.end(), [](const std::string& note) {
            return note.find("no later record saw synced") != std::string::npos;
          })) {
        ++tally.unsynced_damage;
      }
    }
    expected = got;
  }

  // The recovered database keeps working: across another crash of the same
  // kind or, when that may lose the insert, a clean reload.
  const std::vector<float> fresh = {0.25f, -0.5f, 0.75f, 1.0f};
  ASSERT_THAT(db->insert(kFreshId, fresh), IsOk()) << where << ": insert after recovery";
  expected.emplace(kFreshId, fresh);
  if (strict) bring_back(fs, last_recovery);
  db.reset();
  auto again = Db::load(config);
  ASSERT_THAT(again, IsOk()) << where << ": second load, after an insert and "
                             << (strict ? fmt::format("another {}", last_recovery.name)
                                        : std::string("a clean close"));
  EXPECT_EQ(again.value().index().vectors(), expected)
      << where << ": second load holds " << describe(again.value().index().vectors())
      << ", expected " << describe(expected);
}

std::optional<std::uint64_t> seed_from_env() {
  const char* value = std::getenv("IQDB_WAL_CRASH_SEED");
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::strtoull(value, nullptr, 10);
}

bool keep_going() { return std::getenv("IQDB_WAL_CRASH_KEEP_GOING") != nullptr; }

struct SweepOptions {
  FsyncPolicy policy = FsyncPolicy::always();
  std::span<const Recovery> recoveries;
  // Recoveries to rerun with CrashingCall::TornWrite when the crashing call
  // is a write (a torn write is the same as a call not made for any other).
  std::span<const Recovery> torn_recoveries;
  // Also crash the first load at each of its calls, recovering from that
  // second crash with recoveries[(point + call) % size].
  bool crash_recoveries = false;
  std::uint64_t first_seed = 1;
  std::uint64_t seeds = 1;
  std::size_t min_ops = 30;
  std::size_t max_ops = 60;
  // False for a policy that does not promise durability across a power loss:
  // after one, check_recovery() asks only for a prefix of the ops (see there).
  bool power_loss_keeps_acknowledged = true;
  // never() only: the OS writes the snapshot back after every save (see
  // run_workload()).
  bool write_back = false;
};

// Replays workload `w` on a fresh machine that crashes as `plan` says, and
// checks the recovery. Returns false when the sweep should stop.
bool crash_and_recover(const Workload& w, const std::vector<std::string>& calls,
                       const SweepOptions& options, const CrashPlan& plan, Tally& tally,
                       std::uint64_t& load_calls) {
  const std::string where = describe(plan, calls, w.seed);
  SCOPED_TRACE(where);
  auto fs =
      std::make_shared<CrashFileSystem>(w.seed * 100'003 + plan.point * 7 + (plan.torn ? 1 : 0));
  fs->create_dir(kDir);
  const PersistConfig config = config_for(fs, options.policy);
  fs->crash_after(plan.point, plan.torn ? CrashingCall::TornWrite : CrashingCall::NotMade);
  std::optional<Db> db;
  const Run run = run_workload(*fs, config, w, db, where, options.write_back);
  if (run.broken) return false;
  if (!fs->is_down()) {
    ADD_FAILURE() << where << ": the workload ended without reaching the crash";
    return false;
  }
  if (plan.torn) ++tally.torn_writes;
  // The process dies with its database open; its handles die with it.
  bring_back(*fs, *plan.recovery);
  db.reset();
  const bool strict = options.power_loss_keeps_acknowledged || !plan.recovery->power_loss;
  check_recovery(*fs, config, w, run, plan, where, tally, load_calls, strict);
  return !::testing::Test::HasFailure() || keep_going();  // one failure is enough to debug
}

// A call log with the unique part of temporary file names ("x.iqdb.tmp-<pid>-
// <counter>-<clock>") cut off.
std::vector<std::string> without_temp_names(std::vector<std::string> calls) {
  for (std::string& call : calls) {
    if (const auto at = call.find(".tmp-"); at != std::string::npos) call.resize(at + 4);
  }
  return calls;
}

// Sweeps every crash point of the workload of each seed.
void sweep(const SweepOptions& options, Tally& tally) {
  std::vector<std::uint64_t> seeds;
  if (const auto only = seed_from_env()) {
    seeds.push_back(*only);
  } else {
    for (std::uint64_t s = 0; s < options.seeds; ++s) seeds.push_back(options.first_seed + s);
  }
  for (const std::uint64_t seed : seeds) {
    const Workload w = make_workload(seed, options.min_ops, options.max_ops);

    // The clean run, twice: N calls, which each is, and the same each time
    // (the sweep replays the workload and relies on it).
    std::vector<std::string> calls;
    for (int pass = 0; pass < 2; ++pass) {
      auto fs = std::make_shared<CrashFileSystem>(seed);
      fs->create_dir(kDir);
      fs->enable_call_log();
      const PersistConfig config = config_for(fs, options.policy);
      std::optional<Db> db;
      const Run run = run_workload(*fs, config, w, db, fmt::format("seed {} clean run", seed),
                                   options.write_back);
      ASSERT_FALSE(run.broken) << "seed " << seed << ": the clean run failed; no sweep";
      EXPECT_EQ(run.done, w.ops.size());
      if (pass == 0) {
        calls = fs->call_log();
      } else {
        ASSERT_EQ(without_temp_names(fs->call_log()), without_temp_names(calls))
            << "seed " << seed << ": the workload's calls vary";
      }
      db.reset();
    }

    for (std::uint64_t point = 1; point <= calls.size(); ++point) {
      ++tally.crash_points;
      const bool is_write = calls[point - 1].starts_with("write_at ");
      for (const bool torn : {false, true}) {
        if (torn && !is_write) continue;
        for (const Recovery& recovery : torn ? options.torn_recoveries : options.recoveries) {
          CrashPlan plan{point, torn, &recovery};
          std::uint64_t load_calls = 0;
          if (!crash_and_recover(w, calls, options, plan, tally, load_calls)) return;
          if (!options.crash_recoveries) continue;
          for (std::uint64_t r = 1; r <= load_calls; ++r) {
            plan.recovery_point = r;
            plan.second = &options.recoveries[(point + r) % options.recoveries.size()];
            std::uint64_t ignored = 0;
            if (!crash_and_recover(w, calls, options, plan, tally, ignored)) return;
          }
        }
      }
    }
  }
}

void report(const char* name, const Tally& tally, std::chrono::steady_clock::duration took) {
  ::testing::Test::RecordProperty("crash_points", static_cast<int>(tally.crash_points));
  ::testing::Test::RecordProperty("recoveries", static_cast<int>(tally.recoveries));
  std::cout << fmt::format(
                   "[ wal-crash ] {}: {} crash points, {} recoveries checked ({} torn writes, {} "
                   "crashed loads, {} left no database, in-flight op kept {} / dropped {}{}) in {} "
                   "ms",
                   name, tally.crash_points, tally.recoveries, tally.torn_writes,
                   tally.recovery_crashes, tally.no_database, tally.cut_short_kept,
                   tally.cut_short_dropped,
                   tally.lost_acknowledged + tally.unsynced_damage + tally.snapshot_lost == 0
                       ? std::string()
                       : fmt::format("; acknowledged ops lost {}, unsynced log damage dropped {}, "
                                     "snapshot lost {}",
                                     tally.lost_acknowledged, tally.unsynced_damage,
                                     tally.snapshot_lost),
                   std::chrono::duration_cast<std::chrono::milliseconds>(took).count())
            << std::endl;
}

// The minimal form of what the sweeps find first. A crash between creating a
// log segment and completing its header (here: checkpoint() starting segment
// 2) leaves a segment too short to hold a header. The next load rightly
// drops it as a creation cut short, since it is the last segment, but leaves
// the file in place, and the next write starts segment 3 beside it. From then
// on it is no longer the last segment, and the next load treats its bad
// header as corruption: the default mode refuses to open the database
// (acknowledged writes unreachable), and PointInTime stops before it and
// silently drops the acknowledged writes of segment 3 (then checkpoints, so
// they are gone for good).
TEST(WalCrashTest, SegmentWhoseCreationACrashCutShortDoesNotBreakLaterLoads) {
  const std::vector<float> v1 = {1, 2, 3, 4};
  const std::vector<float> v2 = {5, 6, 7, 8};
  const auto until_checkpoint = [&](const PersistConfig& config) -> Result<void> {
    IQDB_TRY_ASSIGN(auto db, Db::open_with(StreamMapIndex(kDim, kMetric), config));
    IQDB_TRY(db.insert(1, v1));
    return db.checkpoint();
  };
  // Where checkpoint() writes the header of segment 2.
  std::uint64_t header_write = 0;
  {
    auto fs = std::make_shared<CrashFileSystem>(1);
    fs->create_dir(kDir);
    fs->enable_call_log();
    ASSERT_THAT(until_checkpoint(config_for(fs, FsyncPolicy::always())), IsOk());
    const auto calls = fs->call_log();
    const auto at =
        std::find(calls.begin(), calls.end(), "write_at /db/x.iqdb.wal-0000000000000002");
    ASSERT_NE(at, calls.end());
    header_write = static_cast<std::uint64_t>(at - calls.begin()) + 1;
  }
  for (const WalRecoveryMode mode :
       {WalRecoveryMode::TolerateCorruptedTail, WalRecoveryMode::PointInTime}) {
    SCOPED_TRACE(to_string(mode));
    auto fs = std::make_shared<CrashFileSystem>(1);
    fs->create_dir(kDir);
    PersistConfig config = config_for(fs, FsyncPolicy::always());
    config.wal_recovery = mode;
    fs->crash_after(header_write);
    ASSERT_THAT(until_checkpoint(config), IsError(ErrorKind::Io, "machine crashed"));
    fs->simulate_process_crash();

    auto loaded = Db::load(config);  // drops the empty segment 2, leaves the file
    ASSERT_THAT(loaded, IsOk());
    EXPECT_THAT(loaded.value().wal_replay().notes,
                ::testing::ElementsAre(::testing::HasSubstr("creation was cut short")));
    ASSERT_THAT(loaded.value().insert(2, v2), IsOk());  // starts segment 3; acknowledged
    fs->simulate_process_crash();

    auto again = Db::load(config);
    EXPECT_THAT(again, IsOk());  // TolerateCorruptedTail: TruncatedHeader naming segment 2
    if (again) {
      EXPECT_EQ(again.value().index().vectors(), (State{{1, v1}, {2, v2}}))  // PointInTime: {1}
          << "holds " << describe(again.value().index().vectors());
    }
  }
}

// Write-back in any order may persist a later page of a log segment but not
// its first, which holds the header and the first frames. Found by the never()
// power-loss sweeps: under FsyncPolicy::never() the writer used not to sync a
// new segment's header, so such a power loss left a zero-filled header before
// valid frames, and load() refused it as corruption (BadMagic naming the
// segment) instead of dropping unsynced writes by rule 2 of docs/FORMAT.md
// "Recovery". The disk state is built from the model: page 0 as it was durable
// (whatever the writer synced), the later pages as the page cache held them.
TEST(WalCrashTest, FsyncNeverLoadsAfterAPowerLossThatKeptALaterPageOfALogSegmentButNotItsFirst) {
  constexpr std::size_t kPage = 4096;
  auto fs = std::make_shared<CrashFileSystem>(1);
  fs->create_dir(kDir);
  const PersistConfig config = config_for(fs, FsyncPolicy::never());
  const std::filesystem::path segment = "/db/x.iqdb.wal-0000000000000001";
  const auto read_all = [&](std::vector<std::byte>& bytes) {
    auto file = fs->open_readable(segment);
    ASSERT_THAT(file, IsOk());
    bytes.resize(file.value()->size());
    ASSERT_THAT(file.value()->read_at(0, bytes), IsOk());
  };
  std::vector<std::byte> cached;  // the segment as the page cache holds it
  {
    auto db = Db::open_with(StreamMapIndex(kDim, kMetric), config);
    ASSERT_THAT(db, IsOk());
    // The OS writes back the snapshot and the directory (the segment's entry).
    ASSERT_TRUE(write_back_snapshot(*fs));
    for (std::uint64_t id = 1; cached.size() < 2 * kPage; ++id) {
      const std::vector<float> vector = {1, 2, 3, static_cast<float>(id)};
      ASSERT_THAT(db.value().insert(id, vector), IsOk());
      ASSERT_NO_FATAL_FAILURE(read_all(cached));
    }
  }
  // The power loss: of the segment's unsynced data, pages 1.. reached the
  // disk and page 0 did not. (The file is rebuilt by hand to hold exactly
  // that: its durable bytes, zeros to the end of page 0, the later pages.)
  fs->simulate_power_loss(
      {.data = PowerLoss::UnsyncedData::Drop, .entries = PowerLoss::UnsyncedEntries::Keep});
  std::vector<std::byte> disk;
  ASSERT_NO_FATAL_FAILURE(read_all(disk));
  ASSERT_LE(disk.size(), kPage) << "the test expects little of the segment to be synced";
  disk.resize(kPage);
  disk.insert(disk.end(), cached.begin() + kPage, cached.end());
  ASSERT_THAT(fs->remove(segment), IsOk());
  {
    auto file = fs->create_new(segment);
    ASSERT_THAT(file, IsOk());
    ASSERT_THAT(file.value()->write_at(0, disk), IsOk());
    ASSERT_THAT(file.value()->sync(), IsOk());
    ASSERT_THAT(file.value()->close(), IsOk());
    ASSERT_THAT(fs->sync_dir(kDir), IsOk());
  }

  auto loaded = Db::load(config);
  ASSERT_THAT(loaded, IsOk()) << "a power loss under never() may lose the log, not the database";
  std::optional<Db> db(std::move(loaded).value());
  // Some prefix of the inserts (by rule 2: none, as the first frames are lost).
  std::uint64_t expected_id = 1;
  for (const auto& [id, vector] : db->index().vectors()) {
    EXPECT_EQ(id, expected_id++) << "not a prefix";
  }
  // And the database keeps working.
  const std::vector<float> fresh = {4, 3, 2, 1};
  ASSERT_THAT(db->insert(kFreshId, fresh), IsOk());
  db.reset();
  auto again = Db::load(config);
  ASSERT_THAT(again, IsOk());
  EXPECT_TRUE(again.value().index().vectors().contains(kFreshId));
}

// Runs the sweep `options` describe, prints its tally under `name`, and
// returns the tally.
Tally sweep_and_report(const char* name, const SweepOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  Tally tally;
  sweep(options, tally);
  report(name, tally, std::chrono::steady_clock::now() - start);
  return tally;
}

// A sweep of `seeds` seeds from `first_seed` under `policy`, recovering in
// each of `recoveries` and, after a torn write, in each of `torn_recoveries`.
SweepOptions sweep_options(FsyncPolicy policy, std::span<const Recovery> recoveries,
                           std::span<const Recovery> torn_recoveries, std::uint64_t first_seed,
                           std::uint64_t seeds) {
  SweepOptions options;
  options.policy = policy;
  options.recoveries = recoveries;
  options.torn_recoveries = torn_recoveries;
  options.first_seed = first_seed;
  options.seeds = seeds;
  return options;
}

const Recovery kProcessCrashOnly[] = {kProcessCrash};

// periodic() and never() promise nothing across a power loss but what was
// synced; the log must still recover to a prefix of the ops and keep working.
const Recovery kWeakPowerLosses[] = {
    kAllRecoveries[2],  // PowerLoss{TornPrefix,Drop}
    kTornPrefixKeep,
    kAnySubsetDrop,
    kAnySubsetKeep,
};

// A sweep of power losses under periodic() or never(), checked against what
// the policy promises (see check_recovery()).
SweepOptions weak_power_loss_sweep(FsyncPolicy policy, std::uint64_t first_seed,
                                   std::uint64_t seeds) {
  static const Recovery kTorn[] = {kAnySubsetKeep};
  SweepOptions options = sweep_options(policy, kWeakPowerLosses, kTorn, first_seed, seeds);
  options.power_loss_keeps_acknowledged = false;
  return options;
}

TEST(WalCrashTest, FsyncAlwaysKeepsEveryAcknowledgedOpThroughEveryCrashAndPowerLoss) {
  static const Recovery kTorn[] = {kProcessCrash, kTornPrefixKeep, kAnySubsetKeep};
  const Tally tally = sweep_and_report(
      "always",
      sweep_options(FsyncPolicy::always(), kAllRecoveries, kTorn, 1, kFullSweeps ? 24 : 5));
  EXPECT_GT(tally.crash_points, 0u);
}

TEST(WalCrashTest, FsyncAlwaysLosesNothingWhenTheRecoveryCrashesToo) {
  static const Recovery kTorn[] = {kAllRecoveries[2]};
  SweepOptions options =
      sweep_options(FsyncPolicy::always(), kAllRecoveries, kTorn, 101, kFullSweeps ? 10 : 2);
  options.crash_recoveries = true;
  const Tally tally = sweep_and_report("always, crashed recoveries", options);
  EXPECT_GT(tally.recovery_crashes, 0u);
}

TEST(WalCrashTest, FsyncPeriodicKeepsEveryAcknowledgedOpThroughAProcessCrash) {
  // An interval no test reaches, so the flusher never adds calls of its own
  // and the sweep stays deterministic.
  const Tally tally = sweep_and_report(
      "periodic", sweep_options(FsyncPolicy::periodic(std::chrono::hours(1)), kProcessCrashOnly,
                                kProcessCrashOnly, 1001, kFullSweeps ? 8 : 2));
  EXPECT_GT(tally.crash_points, 0u);
}

TEST(WalCrashTest, FsyncNeverKeepsEveryAcknowledgedOpThroughAProcessCrash) {
  const Tally tally =
      sweep_and_report("never", sweep_options(FsyncPolicy::never(), kProcessCrashOnly,
                                              kProcessCrashOnly, 2001, kFullSweeps ? 12 : 3));
  EXPECT_GT(tally.crash_points, 0u);
}

TEST(WalCrashTest, FsyncPeriodicRecoversAPrefixAfterAPowerLoss) {
  const Tally tally = sweep_and_report(
      "periodic, power loss",
      weak_power_loss_sweep(FsyncPolicy::periodic(std::chrono::hours(1)),  // the flusher never runs
                            3001, kFullSweeps ? 4 : 1));
  EXPECT_GT(tally.lost_acknowledged, 0u);
  EXPECT_GT(tally.unsynced_damage, 0u);
}

TEST(WalCrashTest, FsyncNeverRecoversAPrefixOrNothingAfterAPowerLoss) {
  const Tally tally = sweep_and_report(
      "never, power loss", weak_power_loss_sweep(FsyncPolicy::never(), 4001, kFullSweeps ? 8 : 1));
  EXPECT_GT(tally.no_database, 0u);
}

// As above, with the OS writing each snapshot back some time after its save,
// so that what is at stake is the log.
TEST(WalCrashTest, FsyncNeverRecoversAPrefixAfterAPowerLossWhenTheSnapshotWasWrittenBack) {
  SweepOptions options = weak_power_loss_sweep(FsyncPolicy::never(), 5001, kFullSweeps ? 8 : 1);
  options.write_back = true;
  const Tally tally = sweep_and_report("never, power loss, snapshots written back", options);
  EXPECT_GT(tally.lost_acknowledged, 0u);
}

}  // namespace
}  // namespace iqdb::persist::test
