// The write-ahead-log phase of `iqdb-persist demo`: durable inserts under
// each FsyncPolicy, a real crash (a child process killed with SIGKILL while it
// inserts under FsyncPolicy::always()), recovery by replaying the log, and a
// checkpoint. It checks that every insert the child had acknowledged before
// it was killed is in the recovered index (PASS/FAIL).
#ifndef IQDB_PERSIST_TOOLS_DEMO_DEMO_WAL_H_
#define IQDB_PERSIST_TOOLS_DEMO_DEMO_WAL_H_

#include <filesystem>
#include <string>
#include <vector>

#include "demo/demo_data.h"
#include "iqdb/persist/error.h"
#include "iqdb/types.h"

namespace iqdb::tools {

struct DemoRow {
  std::string step;
  double seconds = 0;
  std::string amount;
  std::string note;
};

struct WalDemoResult {
  std::vector<DemoRow> rows;
  bool passed = false;
  std::string summary;  // "PASS: ..." or "FAIL: ..."
};

// Runs the phase on a database "<dir>/wal-demo.iqdb" holding vectors of
// `data`'s dimension. Errors: those of the library calls it makes; Io when the
// child process cannot be started.
[[nodiscard]] persist::Result<WalDemoResult> run_wal_demo(const std::filesystem::path& dir,
                                                          const DemoData& data,
                                                          DistanceMetric metric);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_DEMO_DEMO_WAL_H_
