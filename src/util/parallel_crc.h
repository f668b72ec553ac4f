// CRC-32 of many byte ranges of one buffer, spread over several threads.
// Each range is cut into fixed-size pieces that threads take in turn; the
// pieces' CRCs are then combined in order, so the result equals a sequential
// pass whatever the thread count.
#ifndef IQDB_PERSIST_SRC_UTIL_PARALLEL_CRC_H_
#define IQDB_PERSIST_SRC_UTIL_PARALLEL_CRC_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace iqdb::persist {

struct ByteRange {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

using ProgressCallback = std::function<void(std::uint64_t done, std::uint64_t total)>;

// Size of the unit of work handed to a thread.
inline constexpr std::uint64_t kCrcPieceSize = std::uint64_t{8} << 20;

// Returns the CRC-32 of each range (which must lie within `bytes`), using up to
// `threads` threads including the caller (0 = one per hardware thread).
// `progress`, if set, is called on the calling thread about every `interval`
// and once at the end with done == total. When `*stop` becomes true, the
// threads stop taking pieces and the result is meaningless (empty).
std::vector<std::uint32_t> crc32_ranges(
    std::span<const std::byte> bytes, std::span<const ByteRange> ranges, unsigned threads,
    const ProgressCallback& progress = nullptr,
    std::chrono::milliseconds interval = std::chrono::milliseconds(200),
    const std::atomic<bool>* stop = nullptr);

// One per hardware thread when `requested` is 0, else `requested`.
unsigned resolve_thread_count(unsigned requested);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_UTIL_PARALLEL_CRC_H_
