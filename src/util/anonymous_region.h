// Private anonymous memory that a compressed section is decoded into, and the
// process-wide cache that recycles it.
//
// Fresh anonymous memory costs a page fault and a kernel zeroing per page
// (per 2 MiB huge page here) on first write: about 7% of an LZ4 load's time,
// on every load. A process that loads snapshots again and again (a replica
// following a writer, a server reopening after a checkpoint) would pay it each
// time. So a region released by a closed snapshot is not unmapped at once but
// kept in a small cache, marked MADV_FREE (the kernel may still take its pages
// back under memory pressure; they then read as zeros), and handed to the
// next load that needs a region of about its size. Its old bytes are
// overwritten by the decoder before anyone reads them.
//
// The cache holds at most kRegionCacheCapacity bytes in at most
// kRegionCacheSlots regions (a lookup scans them); larger regions, and
// regions beyond that, are unmapped as before. Thread-safe: regions are
// created and released on any thread.
#ifndef IQDB_PERSIST_SRC_UTIL_ANONYMOUS_REGION_H_
#define IQDB_PERSIST_SRC_UTIL_ANONYMOUS_REGION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "iqdb/persist/error.h"

namespace iqdb::persist {

// What released regions the cache keeps, in mapped bytes.
inline constexpr std::uint64_t kRegionCacheCapacity = std::uint64_t{64} << 20;
inline constexpr std::size_t kRegionCacheSlots = 32;

class AnonymousRegion {
 public:
  // `length` bytes of read-write memory starting at a multiple of `alignment`
  // (a power of two). A region of 2 MiB or more is made of whole 2 MiB huge
  // pages (aligned and rounded up, advised MADV_HUGEPAGE): it is written in
  // full at once, and 4 KiB pages would cost a page fault per 4 KiB decoded.
  // The bytes are unspecified (zeros, or a recycled region's old bytes).
  // Errors: Io naming `context` when the memory cannot be mapped.
  static Result<std::unique_ptr<AnonymousRegion>> create(std::uint64_t length,
                                                         std::uint64_t alignment,
                                                         const std::string& context);

  // Hands the mapping to the cache, or unmaps it.
  ~AnonymousRegion();
  AnonymousRegion(const AnonymousRegion&) = delete;
  AnonymousRegion& operator=(const AnonymousRegion&) = delete;

  std::span<std::byte> bytes() const { return {data_, length_}; }

  // After decoding: a stray write through a cast crashes, as on the file mapping.
  void make_read_only() const;

 private:
  AnonymousRegion(std::byte* data, std::size_t length, std::size_t mapped)
      : data_(data), length_(length), mapped_(mapped) {}

  std::byte* data_;
  std::size_t length_;
  std::size_t mapped_;  // whole pages from data_
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_UTIL_ANONYMOUS_REGION_H_
