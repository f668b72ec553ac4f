// The verification pass over a mapped snapshot, shared by verify_snapshot()
// and PersistedIndex::load in VerifyMode::Eager.
#ifndef IQDB_PERSIST_SRC_VERIFY_INTERNAL_H_
#define IQDB_PERSIST_SRC_VERIFY_INTERNAL_H_

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "iqdb/persist/error.h"
#include "iqdb/persist/file_header.h"
#include "parallel_crc.h"

namespace iqdb::persist {

// Checks the CRC of every section (of each chunk, when it has a chunk table)
// and that all padding is zero. `file` is the whole mapped file described by
// the validated `header`. Compressed sections are skipped unless
// `check_compressed` (a load checks them as it decodes them). Returns the
// bytes checked. Errors: ChecksumMismatch (naming the section and chunk),
// InvalidPayload (padding).
Result<std::uint64_t> verify_mapped_snapshot(
    std::span<const std::byte> file, const FileHeader& header, const std::string& path,
    unsigned threads, bool check_compressed = true, const ProgressCallback& progress = nullptr,
    std::chrono::milliseconds progress_interval = std::chrono::milliseconds(200));

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_VERIFY_INTERNAL_H_
