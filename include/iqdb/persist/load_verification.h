// Verification: the integrity check that a load runs on the snapshot it
// loaded, per PersistConfig::verify (VerifyMode), and how a caller follows
// it (PersistedIndex::verification()). To check a file on demand, without
// loading it, call verify_snapshot() (verify_snapshot.h).
//
//   config.verify = VerifyMode::Background;
//   auto db = PersistedIndex<FlatIndex>::load(config);   // returns at once
//   ... serve queries ...
//   if (auto checked = db->verification().wait(); !checked) alarm(checked.error());
//
// Background: load() returns once the header is validated (and compressed
// sections, whose CRCs are always checked as they are decoded, are decoded);
// the CRCs of the raw sections and the zero padding are checked by worker
// threads meanwhile. Until wait() has returned success, the index may read
// damaged bytes from a raw section: its answers may be wrong, though the
// library itself never reads out of bounds (every length and offset was
// validated). A failure is kept, never swallowed: state() becomes Failed and
// wait() returns the error naming the damaged section, chunk and offset.
//
// Thread-safety: every method may be called from any thread. Destroying the
// last handle to a running check stops it (within one 8 MiB piece per thread).
// Checks run on one process-wide worker thread, one after another.
#ifndef IQDB_PERSIST_LOAD_VERIFICATION_H_
#define IQDB_PERSIST_LOAD_VERIFICATION_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "iqdb/persist/error.h"

namespace iqdb::persist {
namespace detail {
class VerificationControl;
}  // namespace detail

class Verification {
 public:
  enum class State {
    NotRun,   // VerifyMode::Skip, or nothing was loaded
    Running,  // Background, still checking
    Passed,   // every byte checked and intact
    Failed,   // damage found: wait() returns it
  };

  Verification(const Verification&) = delete;
  Verification& operator=(const Verification&) = delete;
  // Stops a running check (within one 8 MiB piece per thread) and waits for
  // it, or drops it if it has not started.
  ~Verification();

  State state() const;
  // Blocks until the check has ended. Success when it passed or was not run.
  [[nodiscard]] Result<void> wait() const;

  // Progress: bytes of section data checked so far, out of bytes_total().
  std::uint64_t bytes_checked() const { return checked_.load(std::memory_order_relaxed); }
  std::uint64_t bytes_total() const { return total_; }

 private:
  // The library starts checks and reports their progress through
  // detail::VerificationControl (src/snapshot/load_verification_control.h).
  friend class detail::VerificationControl;

  // A check that was not run, or that already passed over `bytes` bytes.
  static std::shared_ptr<Verification> not_run();
  static std::shared_ptr<Verification> passed(std::uint64_t bytes);

  // Starts `check` on the process's verification worker thread (one for the
  // whole process, started on first use, so that a load pays no thread
  // start: checks run one after another, each over its own threads). `check`
  // returns the bytes it verified, reports progress through set_progress()
  // and stops early when stop_requested() (its result is then ignored).
  // Without a worker thread, runs it on the caller's.
  using Check = std::function<Result<std::uint64_t>(Verification& self)>;
  static std::shared_ptr<Verification> start(std::uint64_t total_bytes, Check check);

  // For the check itself.
  bool stop_requested() const { return stop_.load(std::memory_order_relaxed); }
  const std::atomic<bool>& stop_flag() const { return stop_; }
  void set_progress(std::uint64_t checked) { checked_.store(checked, std::memory_order_relaxed); }

  Verification(State state, std::uint64_t total) : state_(state), total_(total) {}
  void finish(Result<std::uint64_t> outcome);
  // Runs check_ (on the worker) and records its outcome.
  void run();
  // In a child forked while the worker ran this check: fails it (no thread
  // will finish it in the child).
  void abandon_after_fork();

  mutable std::mutex mutex_;
  mutable std::condition_variable finished_;
  State state_;
  std::optional<PersistError> failure_;
  const std::uint64_t total_;
  std::atomic<std::uint64_t> checked_{0};
  std::atomic<bool> stop_{false};
  Check check_;  // until it has run
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_LOAD_VERIFICATION_H_
