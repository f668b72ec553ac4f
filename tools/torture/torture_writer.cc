#include "torture/torture_writer.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "flat_index.h"
#include "iqdb/persist.h"

namespace iqdb::tools {
namespace {

using Clock = std::chrono::steady_clock;
using Db = persist::PersistedIndex<examples::FlatIndex>;
using persist::ErrorKind;
using persist::Result;

constexpr std::uint64_t kLoadedMessage = 0;
// A child that has not loaded after this long is killed anyway.
constexpr auto kLoadTimeout = std::chrono::seconds(60);

Result<void> execute(Db& db, const TortureOp& op) {
  switch (op.kind) {
    case TortureOp::Kind::Insert: return db.insert(op.mutations[0].id, op.mutations[0].vector);
    case TortureOp::Kind::Remove: return db.remove(op.mutations[0].id);
    case TortureOp::Kind::Batch: return db.apply_batch(batch_of(op));
    case TortureOp::Kind::Checkpoint: return db.checkpoint();
  }
  return iqdb::persist::success();
}

bool send(int fd, std::uint64_t message) {
  ssize_t written = 0;
  do {
    written = ::write(fd, &message, sizeof message);
  } while (written < 0 && errno == EINTR);
  return written == static_cast<ssize_t>(sizeof message);
}

// Prints why the child stops, and stops it without running any of the
// parent's exit handlers or flushing its copies of the parent's buffers.
[[noreturn]] void stop_child(WriterExit code, std::string_view why) {
  fmt::print(stderr, "iqdb-persist: torture: writer process: {}\n", why);
  ::_exit(code);
}

// The child: loads the database, which must hold `state`, then runs `stream`
// on it, acknowledging each op on `fd` once its call has returned, until it is
// killed.
[[noreturn]] void child_main(const persist::PersistConfig& config, TortureState state,
                             TortureRng stream, std::size_t dim, int fd) {
  auto loaded = Db::load(config);
  if (!loaded) {
    stop_child(loaded.error().kind() == ErrorKind::Io ? kWriterIo : kWriterLoadFailed,
               fmt::format("load failed: {}", loaded.error().to_string()));
  }
  Db db = std::move(loaded).value();
  const auto differences = compare(state, state_of(db.index()));
  if (!differences.empty()) {
    stop_child(
        kWriterLoadedOther,
        fmt::format("loaded {} vectors where the parent recovered {}; {} ids differ, "
                    "the first id {}",
                    db.index().size(), state.size(), differences.size(), differences.front().id));
  }
  if (!send(fd, kLoadedMessage)) ::_exit(kWriterPipe);
  for (std::uint64_t k = 1;; ++k) {
    const TortureOp op = next_op(stream, state, dim);
    const TortureOutcome expected = apply_op(state, op);
    const Result<void> done = execute(db, op);
    if (!done && done.error().kind() == ErrorKind::Io) {
      stop_child(kWriterIo,
                 fmt::format("op {} ({}): {}", k, describe(op), done.error().to_string()));
    }
    const std::optional<ErrorKind> got =
        done ? std::nullopt : std::optional<ErrorKind>(done.error().kind());
    if (got != expected.refusal) {
      stop_child(kWriterWrongOutcome,
                 fmt::format("op {} ({}) returned {}, the model expected {}", k, describe(op),
                             done ? "success" : done.error().to_string(),
                             expected.refusal ? persist::to_string(*expected.refusal) : "success"));
    }
    if (!send(fd, k)) ::_exit(kWriterPipe);
  }
}

// Collects the child's messages from the read end of the pipe.
class AckReader {
 public:
  explicit AckReader(int fd) : fd_(fd) {}

  // Reads until `deadline` (none: until the pipe's end) or, with
  // `until_loaded`, until the child has loaded.
  void read(std::optional<Clock::time_point> deadline, bool until_loaded) {
    while (!(until_loaded && run_.loaded)) {
      pollfd ready{fd_, POLLIN, 0};
      timespec timeout{};
      if (deadline) {
        const auto left =
            std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - Clock::now());
        if (left.count() <= 0) return;
        timeout.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
        timeout.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
      }
      const int polled = ::ppoll(&ready, 1, deadline ? &timeout : nullptr, nullptr);
      if (polled < 0 && errno == EINTR) continue;
      if (polled <= 0) return;  // timed out, or a poll error that the drain ends at EOF
      char buffer[4096];
      const ssize_t n = ::read(fd_, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // the child is gone and the pipe is drained
      partial_.append(buffer, static_cast<std::size_t>(n));
      take_messages();
    }
  }

  WriterRun& run() { return run_; }

 private:
  void take_messages() {
    std::size_t used = 0;
    for (; partial_.size() - used >= sizeof(std::uint64_t); used += sizeof(std::uint64_t)) {
      std::uint64_t message = 0;
      std::memcpy(&message, partial_.data() + used, sizeof message);
      if (!run_.loaded) {
        run_.loaded = true;
        run_.in_order = run_.in_order && message == kLoadedMessage;
      } else {
        run_.in_order = run_.in_order && message == run_.acked + 1;
        ++run_.acked;
      }
    }
    partial_.erase(0, used);
  }

  int fd_;
  std::string partial_;
  WriterRun run_;
};

persist::PersistError os_error(std::string_view what) {
  return {ErrorKind::Io, fmt::format("torture: {}: {}", what, std::strerror(errno))};
}

}  // namespace

Result<WriterRun> run_killed_writer(const persist::PersistConfig& config, const TortureState& start,
                                    const TortureRng& stream, std::size_t dim, KillPlan plan) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return os_error("pipe");
  std::fflush(nullptr);  // nothing the parent buffered may be written twice
  const pid_t child = ::fork();
  if (child < 0) {
    const auto error = os_error("fork");
    ::close(fds[0]);
    ::close(fds[1]);
    return error;
  }
  if (child == 0) {
    ::close(fds[0]);
    child_main(config, start, stream, dim, fds[1]);
  }
  ::close(fds[1]);
  AckReader reader(fds[0]);
  if (plan.after_load) reader.read(Clock::now() + kLoadTimeout, true);
  reader.read(Clock::now() + plan.delay, false);
  ::kill(child, SIGKILL);
  while (::waitpid(child, &reader.run().status, 0) < 0 && errno == EINTR) {
  }
  reader.read(std::nullopt, false);
  ::close(fds[0]);
  return reader.run();
}

bool killed_by_parent(const WriterRun& run) {
  return WIFSIGNALED(run.status) && WTERMSIG(run.status) == SIGKILL;
}

std::string describe_end(const WriterRun& run) {
  if (WIFSIGNALED(run.status)) return fmt::format("killed by signal {}", WTERMSIG(run.status));
  if (!WIFEXITED(run.status)) return fmt::format("wait status {}", run.status);
  const int code = WEXITSTATUS(run.status);
  const char* why = code == kWriterLoadFailed     ? "its load failed"
                    : code == kWriterLoadedOther  ? "it loaded other content than the parent"
                    : code == kWriterWrongOutcome ? "an operation's outcome contradicted the model"
                    : code == kWriterIo           ? "an I/O error"
                    : code == kWriterPipe         ? "its pipe to the parent broke"
                                                  : "unexpected";
  return fmt::format("exited by itself with status {} ({})", code, why);
}

}  // namespace iqdb::tools
