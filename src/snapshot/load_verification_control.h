// VerificationControl: the library's side of Verification. A load creates a
// Verification through it (not run, passed, or a check started on the
// verification worker), and the check reports its progress and sees stop
// requests through it. Users only read a Verification (load_verification.h).
#ifndef IQDB_PERSIST_SRC_SNAPSHOT_LOAD_VERIFICATION_CONTROL_H_
#define IQDB_PERSIST_SRC_SNAPSHOT_LOAD_VERIFICATION_CONTROL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

#include "iqdb/persist/load_verification.h"

namespace iqdb::persist::detail {

class VerificationControl {
 public:
  // Returns the bytes it verified; see start().
  using Check = Verification::Check;

  // A check that was not run, or that already passed over `bytes` bytes.
  static std::shared_ptr<Verification> not_run() { return Verification::not_run(); }
  static std::shared_ptr<Verification> passed(std::uint64_t bytes) {
    return Verification::passed(bytes);
  }

  // Starts `check` on the process's verification worker thread (one for the
  // whole process, started on first use, so that a load pays no thread
  // start; checks run one after another, each over its own threads), or on
  // the caller's thread when no worker can be started. `check` reports
  // progress through set_progress() and stops early when stop_requested()
  // (its result is then ignored).
  static std::shared_ptr<Verification> start(std::uint64_t total_bytes, Check check) {
    return Verification::start(total_bytes, std::move(check));
  }

  // From inside a check.
  static bool stop_requested(const Verification& check) { return check.stop_requested(); }
  static const std::atomic<bool>& stop_flag(const Verification& check) { return check.stop_flag(); }
  static void set_progress(Verification& check, std::uint64_t bytes_checked) {
    check.set_progress(bytes_checked);
  }
};

}  // namespace iqdb::persist::detail

#endif  // IQDB_PERSIST_SRC_SNAPSHOT_LOAD_VERIFICATION_CONTROL_H_
