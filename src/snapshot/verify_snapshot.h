// The verification pass over a mapped snapshot (the library-only part of
// iqdb/persist/verify_snapshot.h), shared by verify_snapshot() and
// open_snapshot() (db/snapshot_io.cc), which loads and rewrite_snapshot() use
// in VerifyMode::Eager and Background.
#ifndef IQDB_PERSIST_SRC_SNAPSHOT_VERIFY_SNAPSHOT_H_
#define IQDB_PERSIST_SRC_SNAPSHOT_VERIFY_SNAPSHOT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "iqdb/persist/error.h"
#include "iqdb/persist/file_header.h"
#include "util/parallel_crc.h"

namespace iqdb::persist {

struct VerifyPassOptions {
  unsigned threads = 0;  // 0: one per hardware thread
  // A load checks compressed sections as it decodes them.
  bool check_compressed = true;
  ProgressCallback progress;
  std::chrono::milliseconds progress_interval{200};
  // When set and it becomes true, the pass stops early with an Io error.
  const std::atomic<bool>* stop = nullptr;
};

// Checks the CRC of every section (of each chunk, when it has a chunk table)
// and that all padding is zero; with check_compressed, also that every
// compressed chunk decodes to its logical length. `file` is the whole mapped
// file described by the validated `header`. Returns the bytes checked.
// Errors: ChecksumMismatch (naming the section and chunk), InvalidPayload
// (padding; a chunk that does not decode, naming it), Io (stopped).
Result<std::uint64_t> verify_mapped_snapshot(std::span<const std::byte> file,
                                             const FileHeader& header, const std::string& path,
                                             const VerifyPassOptions& options);

// The bytes verify_mapped_snapshot() checks with these options.
std::uint64_t bytes_to_verify(const FileHeader& header, bool check_compressed);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_SNAPSHOT_VERIFY_SNAPSHOT_H_
