// `iqdb-persist torture`: a crash-consistency check of the write-ahead log on
// the user's own file system and hardware. It repeats, for --seconds: fork a
// writer process that loads the database and runs random inserts, removes,
// batches and checkpoints, acknowledging each one on a pipe once its call has
// returned (torture_writer.h); SIGKILL it at a random moment, one time in four
// early enough to land in its own recovery; load the database in this process
// and check it against the model (torture_workload.h): it must hold every
// acknowledged write, and nothing else but possibly the op the kill cut short.
// The next iteration starts from what was recovered.
//
// A failure is reported on stderr as it happens, naming the iteration, the
// seed and each id whose acknowledged write was lost (or that holds what was
// never acknowledged); the run continues from the recovered content, unless
// the database no longer loads. Progress goes to stderr once a second and the
// summary to stdout. The database lives in DIR/iqdb-torture (torture_dir.h);
// it is removed at the end unless --keep is given or a check failed.
//
// Returns kExitOk when every check passed, kExitIntegrity after any failure,
// kExitOther when the storage failed (an Io error: full disk, permissions),
// which says nothing about lost writes.
#ifndef IQDB_PERSIST_TOOLS_TORTURE_TORTURE_COMMAND_H_
#define IQDB_PERSIST_TOOLS_TORTURE_TORTURE_COMMAND_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace iqdb::tools {

inline constexpr std::uint64_t kDefaultTortureSeconds = 60;
inline constexpr std::uint32_t kDefaultTortureDim = 16;
inline constexpr std::uint32_t kMaxTortureDim = 4096;

struct TortureOptions {
  std::filesystem::path dir;  // created if missing; the database goes in DIR/iqdb-torture
  std::uint64_t seconds = kDefaultTortureSeconds;  // >= 1; the last iteration may run over
  std::optional<std::uint64_t> seed;               // none: a random one, printed
  std::string fsync = "always";                    // always, periodic (100 ms) or never
  std::uint32_t dim = kDefaultTortureDim;          // 1..kMaxTortureDim
  bool keep = false;                               // keep the database at the end
};

int run_torture(const TortureOptions& options);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_TORTURE_TORTURE_COMMAND_H_
