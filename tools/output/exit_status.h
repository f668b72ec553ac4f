// The tool's exit statuses and its one way of reporting an error:
// "iqdb-persist: <Kind>: <message>" on stderr.
#ifndef IQDB_PERSIST_TOOLS_OUTPUT_EXIT_STATUS_H_
#define IQDB_PERSIST_TOOLS_OUTPUT_EXIT_STATUS_H_

#include <string_view>

#include "iqdb/persist/error.h"

namespace iqdb::tools {

inline constexpr int kExitOk = 0;
// The file is damaged or is not a snapshot we can read; or the demo's
// self-check found a wrong answer; or torture found a lost write.
inline constexpr int kExitIntegrity = 1;
// A bad command line.
inline constexpr int kExitUsage = 2;
// Anything else: a missing file, an OS refusal, an internal error.
inline constexpr int kExitOther = 3;

// The text of `--help`'s footer describing the statuses above.
std::string_view exit_status_help();

// kExitIntegrity for errors that mean "this file is damaged or not a
// snapshot", kExitOther for the rest.
int exit_status_for(persist::ErrorKind kind);

// Prints "iqdb-persist: <kind>: <message>" to stderr.
void print_error(std::string_view kind, std::string_view message);

// Prints `error` as above and returns exit_status_for(error.kind()).
int report(const persist::PersistError& error);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_OUTPUT_EXIT_STATUS_H_
