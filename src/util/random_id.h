// Random 64-bit identifiers: a database's identity (FileHeader::database_id),
// chosen once when the database is created.
#ifndef IQDB_PERSIST_SRC_UTIL_RANDOM_ID_H_
#define IQDB_PERSIST_SRC_UTIL_RANDOM_ID_H_

#include <cstdint>

namespace iqdb {

// A random value, never 0 (which files use for "not recorded"). From the
// kernel's random source; should that not answer at once (early boot), from
// the clocks, the process id and a counter, which still differ between any
// two calls on one host. Thread-safe; never blocks, never fails.
std::uint64_t new_random_id();

}  // namespace iqdb

#endif  // IQDB_PERSIST_SRC_UTIL_RANDOM_ID_H_
