// Options and reports of a read-only replica (iqdb/persist/replica.h).
#ifndef IQDB_PERSIST_REPLICA_OPTIONS_H_
#define IQDB_PERSIST_REPLICA_OPTIONS_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "iqdb/persist/error.h"

namespace iqdb::persist {

// How a Replica follows its writer.
struct ReplicaOptions {
  // How often a follower (follow(), wait_for()) looks at the files when the
  // writer cannot wake it: no control file (another host, a copied
  // directory), or one this process may only read and no other replica
  // registered on. With notification, a commit wakes it at once.
  std::chrono::milliseconds poll_interval{50};
  // Records applied per exclusive hold of the current generation: bounds how
  // long a catch-up keeps queries waiting (they wait for one step at most).
  std::uint64_t records_per_step = 4096;

  // InvalidConfig unless poll_interval and records_per_step are positive.
  [[nodiscard]] Result<void> validate() const;
};

// How far a replica is behind its writer, as far as it can tell.
struct ReplicaLag {
  std::uint64_t lsn = 0;         // every record up to it is applied
  std::uint64_t writer_lsn = 0;  // the last LSN the writer is known to have committed
  std::uint64_t records = 0;     // writer_lsn - lsn
  std::uint64_t bytes = 0;       // log bytes seen but not applied yet
  // How long since the replica was last current (0 while it is): the age of
  // the newest write it may be missing.
  std::chrono::nanoseconds behind{0};
  // Whether writer_lsn comes from the writer's control file (this host);
  // otherwise it is what the log showed at the last refresh.
  bool notified = false;
  // When the writer committed writer_lsn (from the control file; the epoch
  // when not notified).
  std::chrono::system_clock::time_point writer_commit_time{};
};

// What one refresh() did.
struct RefreshReport {
  std::uint64_t records = 0;  // log records applied
  bool switched = false;      // moved to a new generation (a newer snapshot)
  std::string waiting;        // why it stopped short of the writer, if it knows
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_REPLICA_OPTIONS_H_
