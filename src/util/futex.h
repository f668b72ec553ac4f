// Futexes on shared mappings: how a process that changes a shared counter
// wakes the processes waiting for it to change (Linux; the word must be in a
// MAP_SHARED mapping that every party maps).
#ifndef IQDB_PERSIST_SRC_UTIL_FUTEX_H_
#define IQDB_PERSIST_SRC_UTIL_FUTEX_H_

#include <chrono>
#include <cstdint>

namespace iqdb::persist {

// Wakes every waiter on `word`.
void futex_wake_all(const std::uint32_t* word);

// Waits until `*word` is no longer `seen`, a wake, or `timeout` passes;
// returns at once when `*word != seen`. Where futexes are unavailable,
// sleeps `timeout` (the caller re-checks either way).
void futex_wait(const std::uint32_t* word, std::uint32_t seen, std::chrono::nanoseconds timeout);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_UTIL_FUTEX_H_
