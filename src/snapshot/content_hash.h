// Content hashes: XXH3-64 of each section's logical bytes and one hash of a
// whole snapshot's content (docs/FORMAT.md, "Content hashes"). They identify
// data, they do not protect it (the CRCs do): two snapshots with equal
// content hashes hold the same index data, whatever their compression,
// chunking or write-ahead-log position, so a replica or a copy tool can tell
// in microseconds whether a transfer is needed.
//
// XXH3 runs with AVX2 where the CPU has it (about 1.4x faster than SSE2),
// chosen at run time, so the library still runs on any x86-64.
#ifndef IQDB_PERSIST_SRC_SNAPSHOT_CONTENT_HASH_H_
#define IQDB_PERSIST_SRC_SNAPSHOT_CONTENT_HASH_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "iqdb/persist/file_header.h"

namespace iqdb::persist {

// XXH3-64 (seed 0) of everything passed to update(), in order.
class ContentHasher {
 public:
  ContentHasher();
  ~ContentHasher();
  ContentHasher(const ContentHasher&) = delete;
  ContentHasher& operator=(const ContentHasher&) = delete;

  void update(std::span<const std::byte> bytes);
  std::uint64_t digest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::uint64_t content_hash(std::span<const std::byte> bytes);

// The snapshot's content hash from its header fields and section hashes.
std::uint64_t snapshot_content_hash(const FileHeader& header);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_SNAPSHOT_CONTENT_HASH_H_
