// verify_snapshot(): the full integrity check of a snapshot file on demand,
// as `iqdb-persist verify` runs it; a load in VerifyMode::Eager runs the same
// pass (its outcome: Verification, load_verification.h).
//
// It validates the prefix and header, then checks in one parallel pass over
// the read-only mapping that every section's CRC-32 matches the table, that
// the padding between sections is zero, and that the payload CRC-32 in the
// header equals the combination of the section CRCs. Every byte of a snapshot
// is thus covered: a single flipped bit anywhere is reported. It then decodes
// every compressed chunk (into scratch memory, a chunk per thread at a time)
// and checks that it decodes to exactly its logical length, so that a file
// that verifies is one whose every section a load can read.
//
// Thread-safety: reentrant; it starts and joins its own worker threads. The
// progress callback runs on the calling thread.
#ifndef IQDB_PERSIST_VERIFY_SNAPSHOT_H_
#define IQDB_PERSIST_VERIFY_SNAPSHOT_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>

#include "iqdb/persist/error.h"
#include "iqdb/persist/file_header.h"

namespace iqdb::persist {

class FileSystem;

struct VerifyOptions {
  // Worker threads; 0 means one per hardware thread.
  unsigned threads = 0;
  // Called about every `progress_interval` with bytes checked so far and the
  // total, and once at the end. Optional.
  std::function<void(std::uint64_t done, std::uint64_t total)> progress;
  std::chrono::milliseconds progress_interval{200};
  // Null means default_file_system().
  std::shared_ptr<FileSystem> file_system;
};

struct VerifyReport {
  FileHeader header;
  std::uint64_t bytes_checked = 0;
  double seconds = 0;  // wall time of the CRC pass
};

// Errors: those of read_file_header(), then ChecksumMismatch naming the
// damaged section (and chunk), its offset and the expected and found CRC-32,
// InvalidPayload for non-zero padding (naming its offset), and InvalidPayload
// for a compressed chunk that does not decode to its logical length, naming
// the section and chunk: the error a load of the file reports.
[[nodiscard]] Result<VerifyReport> verify_snapshot(const std::filesystem::path& path,
                                                   const VerifyOptions& options = {});

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_VERIFY_SNAPSHOT_H_
