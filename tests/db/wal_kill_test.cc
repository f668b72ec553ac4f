// The write-ahead log against a real SIGKILL on the real file system.
//
// Each iteration forks a child that loads the database (replaying what the
// last child left) and runs a seeded stream of random mutations (inserts,
// removes, batches, some refused by the index, and occasional checkpoints)
// with FsyncPolicy::always(). After each op returns, success or the index's
// refusal, the child writes the op's sequence number (u64) to a pipe. The
// parent kills it with SIGKILL after a seeded random delay (counted from the
// child's "loaded" message, or every fourth time from the fork, so that some
// kills land in the recovery itself), collects every
// acknowledgement, loads the database and checks that it holds the model's
// content after exactly the acknowledged ops, or after one more (the op the
// kill cut short). The stream is deterministic given the seed, the iteration
// and the starting content, so the parent regenerates it; the child first
// sends a fingerprint of the content it loaded so that a divergence is caught
// at its source. The next iteration continues from the recovered database.
//
// The child never returns into GoogleTest: it uses the library, write(2) and
// _exit() only. IQDB_WAL_KILL_SEED=<seed> picks another seed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "iqdb/persist.h"
#include "support/child_process.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"
#include "support/wal_workload.h"

namespace iqdb::persist::test {
namespace {

using Db = PersistedIndex<StreamMapIndex>;
constexpr DistanceMetric kMetric = DistanceMetric::Euclidean;
constexpr std::size_t kLargeState = 300;       // above it, removes are favoured
constexpr std::uint64_t kMaxChildOps = 20000;  // a child that is never killed stops here

enum class OpKind { Insert, Remove, Batch, Checkpoint };

struct Op {
  OpKind kind = OpKind::Insert;
  std::vector<Mutation> mutations;  // one for Insert and Remove, 2..5 for Batch
};

Op next_op(Rng& rng, const State& state) {
  Op op;
  const bool large = state.size() > kLargeState;
  const auto roll = rng.below(100);
  if (roll < 3) {
    op.kind = OpKind::Checkpoint;
  } else if (roll < 8) {
    op.kind = OpKind::Remove;
    op.mutations.push_back(refused_mutation(rng, state));
    if (op.mutations[0].insert) op.kind = OpKind::Insert;
  } else if (roll < 25) {
    op.kind = OpKind::Batch;
    op.mutations = random_batch(rng, state, large);
  } else if (state.empty() || (!large && roll < 70)) {
    op.mutations.push_back(insert_of(absent_id(rng, state), random_vector(rng)));
  } else {
    op.kind = OpKind::Remove;
    op.mutations.push_back(remove_of(present_id(rng, state)));
  }
  return op;
}

Result<void> execute(Db& db, const Op& op) {
  switch (op.kind) {
    case OpKind::Insert: return db.insert(op.mutations[0].id, op.mutations[0].vector);
    case OpKind::Remove: return db.remove(op.mutations[0].id);
    case OpKind::Batch: return db.apply_batch(batch_of(op.mutations));
    case OpKind::Checkpoint: return db.checkpoint();
  }
  return success();
}

// The seed of iteration `iteration`'s op stream.
std::uint64_t stream_seed(std::uint64_t seed, int iteration) {
  return Rng(seed * 1'000'003 + static_cast<std::uint64_t>(iteration)).next();
}

std::string describe(const State& state) {
  if (state.size() > 40) return fmt::format("{} ids", state.size());
  std::vector<std::uint64_t> ids;
  for (const auto& [id, vector] : state) ids.push_back(id);
  return fmt::format("{{{}}}", fmt::join(ids, ","));
}

std::string describe(const Op& op) {
  std::vector<std::string> parts;
  for (const Mutation& m : op.mutations) {
    parts.push_back(m.insert ? fmt::format("insert {}{}", m.id,
                                           m.vector.size() == kDim ? "" : " (short vector)")
                             : fmt::format("remove {}", m.id));
  }
  switch (op.kind) {
    case OpKind::Checkpoint: return "checkpoint";
    case OpKind::Batch: return fmt::format("batch [{}]", fmt::join(parts, ", "));
    default: return parts[0];
  }
}

// Exit codes of a child that stopped by itself (anything but SIGKILL is a failure).
enum ChildExit : int {
  kRanOut = 0,         // ran kMaxChildOps ops without being killed
  kLoadFailed = 10,    // load() failed
  kWrongOutcome = 11,  // an op's outcome contradicted the model
  kPipeFailed = 12,
};

// The child: load, then run the stream, acknowledging each op. Never returns.
[[noreturn]] void child_main(const PersistConfig& config, std::uint64_t seed, int iteration,
                             int fd) {
  auto loaded = Db::load(config);
  if (!loaded) {
    std::fprintf(stderr, "child %d: load failed: %s\n", iteration,
                 loaded.error().to_string().c_str());
    ::_exit(kLoadFailed);
  }
  Db db = std::move(loaded).value();
  State state = db.index().vectors();
  const std::uint64_t print = state_digest(state);
  if (!write_all(fd, &print, sizeof print)) ::_exit(kPipeFailed);
  Rng rng(stream_seed(seed, iteration));
  for (std::uint64_t k = 1; k <= kMaxChildOps; ++k) {
    const Op op = next_op(rng, state);
    const std::optional<ErrorKind> expected = apply_mutations(state, op.mutations);
    const auto result = execute(db, op);
    const std::optional<ErrorKind> got =
        result ? std::nullopt : std::optional<ErrorKind>(result.error().kind());
    if (got != expected) {
      std::fprintf(stderr, "child %d: op %llu (%s) returned %s, expected %s\n", iteration,
                   static_cast<unsigned long long>(k), describe(op).c_str(),
                   result ? "success" : result.error().to_string().c_str(),
                   expected ? std::string(to_string(*expected)).c_str() : "success");
      ::_exit(kWrongOutcome);
    }
    if (!write_all(fd, &k, sizeof k)) ::_exit(kPipeFailed);
  }
  ::_exit(kRanOut);
}

// What the parent heard from one child.
struct Heard {
  std::optional<std::uint64_t> fingerprint;
  std::uint64_t acked = 0;  // ops acknowledged, 1..acked in order
  bool in_order = true;
  int status = 0;  // of waitpid
};

// Reads 8-byte messages from `fd` until `deadline` (none: until EOF), or
// until there are `enough` of them.
void read_messages(int fd, std::optional<std::chrono::steady_clock::time_point> deadline,
                   std::vector<std::uint64_t>& messages, std::string& partial,
                   std::size_t enough = SIZE_MAX) {
  while (messages.size() < enough) {
    int timeout_ms = -1;
    if (deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          *deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return;
      timeout_ms = static_cast<int>(left.count());
    }
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return;  // timed out (or a poll error: the caller ends up at EOF)
    char buffer[4096];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // EOF: every writer is gone
    partial.append(buffer, static_cast<std::size_t>(n));
    std::size_t used = 0;
    for (; partial.size() - used >= 8; used += 8) {
      std::uint64_t value = 0;
      std::memcpy(&value, partial.data() + used, 8);
      messages.push_back(value);
    }
    partial.erase(0, used);
  }
}

// Forks a child for `iteration` and kills it `delay` after the fork or, with
// `after_load`, after it reported its load done. Returns what it said.
Heard run_child(const PersistConfig& config, std::uint64_t seed, int iteration,
                std::chrono::milliseconds delay, bool after_load) {
  Heard heard;
  int fds[2];
  if (::pipe(fds) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return heard;
  }
  std::fflush(nullptr);  // nothing buffered may be written twice
  const pid_t child = ::fork();
  if (child < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return heard;
  }
  if (child == 0) {
    ::close(fds[0]);
    child_main(config, seed, iteration, fds[1]);
  }
  ::close(fds[1]);
  std::vector<std::uint64_t> messages;
  std::string partial;
  if (after_load) {
    read_messages(fds[0], std::chrono::steady_clock::now() + std::chrono::seconds(20), messages,
                  partial, 1);
  }
  read_messages(fds[0], std::chrono::steady_clock::now() + delay, messages, partial);
  ::kill(child, SIGKILL);
  while (::waitpid(child, &heard.status, 0) < 0 && errno == EINTR) {
  }
  read_messages(fds[0], std::nullopt, messages, partial);  // drain to EOF
  ::close(fds[0]);
  EXPECT_TRUE(partial.empty()) << "a message was cut in half";
  if (!messages.empty()) heard.fingerprint = messages[0];
  for (std::size_t i = 1; i < messages.size(); ++i) {
    if (messages[i] != i) heard.in_order = false;
  }
  heard.acked = messages.empty() ? 0 : messages.size() - 1;
  return heard;
}

std::uint64_t seed_from_env(std::uint64_t fallback) {
  const char* value = std::getenv("IQDB_WAL_KILL_SEED");
  if (value == nullptr || *value == '\0') return fallback;
  return std::strtoull(value, nullptr, 10);
}

TEST(WalKillTest, SigkillAtRandomMomentsLosesNothingAcknowledged) {
  const std::uint64_t seed = seed_from_env(1);
  const int iterations = kSanitized ? 25 : 40;
  const auto start = std::chrono::steady_clock::now();

  TempDir dir;
  PersistConfig config(dir.file("x.iqdb"));
  config.wal_enabled = true;
  config.fsync_policy = FsyncPolicy::always();
  config.verify_threads = 1;
  {
    auto created = Db::open_with(StreamMapIndex(kDim, kMetric), config);
    ASSERT_THAT(created, IsOk());
  }

  State model;  // the content the next child starts from
  Rng delays(seed ^ 0x6b696c6c);
  std::uint64_t total_acked = 0;
  int in_flight_kept = 0;
  int killed_before_first_ack = 0;
  for (int iteration = 0; iteration < iterations; ++iteration) {
    const auto delay = std::chrono::milliseconds(5 + delays.below(56));
    // Mostly while it runs ops; every fourth time possibly while it recovers.
    const bool after_load = iteration % 4 != 3;
    const std::string where =
        fmt::format("seed {} iteration {} (killed {} ms after {})", seed, iteration, delay.count(),
                    after_load ? "its load" : "the fork");
    SCOPED_TRACE(where);
    const Heard heard = run_child(config, seed, iteration, delay, after_load);
    if (WIFEXITED(heard.status)) {
      ASSERT_EQ(WEXITSTATUS(heard.status), kRanOut)
          << where << ": the child stopped by itself (see its stderr above)";
    } else {
      ASSERT_TRUE(WIFSIGNALED(heard.status) && WTERMSIG(heard.status) == SIGKILL)
          << where << ": child status " << heard.status;
    }
    ASSERT_TRUE(heard.in_order) << where << ": acknowledgements out of order";
    if (heard.fingerprint) {
      ASSERT_EQ(*heard.fingerprint, state_digest(model))
          << where << ": the child loaded other content than the parent recovered";
    }
    if (heard.acked == 0) ++killed_before_first_ack;
    total_acked += heard.acked;

    // The model after each prefix of the child's stream, up to one op past
    // the last acknowledged.
    std::vector<State> states{model};
    std::vector<Op> ops;
    Rng rng(stream_seed(seed, iteration));
    const std::uint64_t generated = std::min(heard.acked + 1, kMaxChildOps);
    for (std::uint64_t k = 0; k < generated; ++k) {
      State next = states.back();
      ops.push_back(next_op(rng, next));
      (void)apply_mutations(next, ops.back().mutations);
      states.push_back(std::move(next));
    }

    auto loaded = Db::load(config);
    ASSERT_THAT(loaded, IsOk()) << where << ": load after the kill (" << heard.acked
                                << " ops acknowledged)";
    const State& got = loaded.value().index().vectors();
    const std::size_t acked = static_cast<std::size_t>(heard.acked);
    if (got == states[acked]) {
      // Everything acknowledged, and not the op in flight (or it changed nothing).
    } else if (acked + 1 < states.size() && got == states[acked + 1]) {
      ++in_flight_kept;
    } else {
      const WalReplayReport& replay = loaded.value().wal_replay();
      FAIL() << where << ": recovered " << describe(got) << ", expected after the " << acked
             << " acknowledged ops " << describe(states[acked])
             << (acked + 1 < states.size()
                     ? fmt::format(" or, with op {} ({}), {}", acked + 1, describe(ops[acked]),
                                   describe(states[acked + 1]))
                     : std::string())
             << "; replay: snapshot LSN " << replay.snapshot_lsn << ", last LSN " << replay.last_lsn
             << ", " << replay.segments << " segments, " << replay.records_replayed << " records, "
             << replay.ops_applied << " ops applied, " << replay.ops_refused << " refused";
    }
    model = got;
  }

  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  RecordProperty("iterations", iterations);
  RecordProperty("acknowledged_ops", static_cast<int>(total_acked));
  std::cout << fmt::format(
                   "[ wal-kill ] seed {}: {} kills, {} ops acknowledged, in-flight op recovered "
                   "{} times, killed before the first op {} times, final size {}, {} ms",
                   seed, iterations, total_acked, in_flight_kept, killed_before_first_ack,
                   model.size(), took.count())
            << std::endl;
}

}  // namespace
}  // namespace iqdb::persist::test
