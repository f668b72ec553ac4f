// The writer process of one `iqdb-persist torture` iteration, and its killing.
//
// run_killed_writer() forks a child that loads the database (so replaying the
// log the previous child left), checks that it holds the content the parent
// expects, and then runs the workload stream (torture_workload.h) forever,
// acknowledging each op on a pipe once its call has returned the outcome the
// model predicts. The parent kills the child with SIGKILL as the KillPlan says
// and reports what it heard.
//
// The pipe carries u64 messages in host byte order: 0 once the load is done
// and checked, then k for the k-th acknowledged op (1, 2, ...). Each message
// is one write(2) of 8 bytes, which a pipe makes atomic, so a kill never
// leaves half of one.
//
// The parent must have no other threads when it calls this (fork), and no
// database object open on the path.
#ifndef IQDB_PERSIST_TOOLS_TORTURE_TORTURE_WRITER_H_
#define IQDB_PERSIST_TOOLS_TORTURE_TORTURE_WRITER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "iqdb/persist/config.h"
#include "iqdb/persist/error.h"
#include "torture/torture_workload.h"

namespace iqdb::tools {

struct KillPlan {
  // Count `delay` from the child's "loaded" message; otherwise from the fork,
  // so that the kill may land in the child's own recovery.
  bool after_load = true;
  std::chrono::microseconds delay{0};
};

// Exit codes of a child that stopped by itself (it prints why on stderr).
enum WriterExit : int {
  kWriterLoadFailed = 10,    // load() failed, not with Io
  kWriterLoadedOther = 11,   // the loaded content is not what the parent recovered
  kWriterWrongOutcome = 12,  // an op succeeded or failed against the model's prediction
  kWriterIo = 13,            // an Io error: the storage failed, nothing was shown lost
  kWriterPipe = 14,          // the parent went away
};

// What the parent heard from one child.
struct WriterRun {
  bool loaded = false;      // the child loaded and checked the database
  std::uint64_t acked = 0;  // ops 1..acked were acknowledged
  bool in_order = true;     // the messages followed the protocol
  int status = 0;           // from waitpid()
};

// Runs one child whose database content is `start` and whose ops come from
// `stream` with vectors of `dim` floats, and kills it per `plan`.
// Errors: Io when the pipe or the child cannot be created.
[[nodiscard]] persist::Result<WriterRun> run_killed_writer(const persist::PersistConfig& config,
                                                           const TortureState& start,
                                                           const TortureRng& stream,
                                                           std::size_t dim, KillPlan plan);

// True when the child ended by the parent's SIGKILL.
bool killed_by_parent(const WriterRun& run);

// Why a child ended, for messages: "exit status 12 (...)".
std::string describe_end(const WriterRun& run);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_TORTURE_TORTURE_WRITER_H_
