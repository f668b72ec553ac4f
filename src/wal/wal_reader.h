// Scanning a mapped write-ahead-log segment (docs/FORMAT.md, "Write-ahead
// log"): the first, validating pass of recovery. It finds damage and reports
// it; what to do about it (drop a torn tail, refuse to open, skip) is the
// recovery policy's decision, made on the report.
//
// Two kinds of damage are told apart:
//   torn tail:  a bad frame with no valid frame after it: what a crash leaves
//               (an incomplete last frame, or a zero-filled or garbage tail).
//   corruption: a bad frame followed by a valid frame with a later LSN: bytes
//               that were written and acknowledged have since been damaged.
// After a bad frame the scanner looks for the next offset where a complete
// frame with a matching checksum and a plausible LSN starts, making the cheap
// checks first. Its CRC work is bounded (wal_format::scan_crc_budget), so
// that crafted bytes cannot make a scan quadratic; when the budget runs out
// it cannot tell, and says so:
//   unscanned:  the rest of the segment was not fully searched; valid frames
//               may lie in it (recovery treats it as corruption in the last
//               segment: wal_recovery.h).
// docs/FORMAT.md ("Damage") specifies the search exactly.
//
// The second pass, for_each_wal_frame(), visits the frames the scan found
// valid without checking them again. Neither pass copies the segment.
#ifndef IQDB_PERSIST_SRC_WAL_WAL_READER_H_
#define IQDB_PERSIST_SRC_WAL_WAL_READER_H_

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "iqdb/persist/error.h"
#include "util/function_ref.h"

namespace iqdb::persist {

enum class WalDamageKind { TornTail, Corruption, Unscanned };

struct WalDamage {
  WalDamageKind kind = WalDamageKind::TornTail;
  std::uint64_t offset = 0;      // first damaged byte
  std::uint64_t length = 0;      // up to the next valid frame (Corruption) or the end (TornTail)
  std::uint64_t lsn_before = 0;  // LSN of the last valid frame before it; first LSN - 1 if none
  // Corruption: LSN of the first valid frame after it. Unscanned: one past the
  // highest LSN a frame in it could carry. TornTail: 0.
  std::uint64_t lsn_after = 0;
  // Corruption only: the highest durable LSN that a valid frame after it in
  // the segment records. Below lsn_before + 1, no later frame saw the
  // damaged frames synced: the damage may be unsynced writes a power loss cut.
  std::uint64_t durable_after = 0;
  std::string reason;  // e.g. "frame checksum mismatch"
};

struct WalSegmentScan {
  std::uint64_t number = 0;
  std::uint64_t first_lsn = 0;
  std::uint64_t database_id = 0;      // 0: not recorded
  std::uint64_t frame_count = 0;      // valid frames, including any after a corruption
  std::uint64_t last_lsn = 0;         // LSN of the last valid frame; first_lsn - 1 if none
  std::uint64_t max_durable_lsn = 0;  // the highest durable LSN a valid frame records
  std::uint64_t size = 0;
  // Frame-CRC input the scan computed, searches included: at most
  // wal_format::scan_crc_budget(size).
  std::uint64_t crc_bytes = 0;
  // In file order; a TornTail or Unscanned, if any, is last.
  std::vector<WalDamage> damages;

  bool intact() const { return damages.empty(); }
  bool has_corruption() const;
};

// Scans `segment`, the whole content of the segment file at `path`.
// Errors (the header itself): TruncatedHeader when shorter than the header,
// BadMagic, UnsupportedVersion, ChecksumMismatch, InvalidHeader.
[[nodiscard]] Result<WalSegmentScan> scan_wal_segment(std::span<const std::byte> segment,
                                                      const std::filesystem::path& path);

// Checks the header of the segment that `segment` starts (at least its
// first wal_format::kHeaderSize bytes) and returns its number and first LSN
// (no frames scanned). Errors as for scan_wal_segment().
[[nodiscard]] Result<WalSegmentScan> read_wal_segment_header(std::span<const std::byte> segment,
                                                             const std::filesystem::path& path);

// One frame checked where `bytes` starts, by a reader that follows a segment
// while its writer appends (a replica): a frame is Valid, Incomplete (its
// header or body extends past `bytes`: more may come) or Bad (a length out of
// range, a CRC mismatch, an LSN other than `expected_lsn`).
struct WalFrameAt {
  enum class Status { Valid, Incomplete, Bad };
  Status status = Status::Incomplete;
  std::uint64_t size = 0;           // Valid, and Incomplete once the header is whole: header + body
  std::span<const std::byte> body;  // Valid only
  std::string problem;              // Bad only
};
WalFrameAt check_wal_frame(std::span<const std::byte> bytes, std::uint64_t expected_lsn);

// Called with each frame's LSN and body; an error stops the visit.
using WalFrameVisitor =
    FunctionRef<Result<void>(std::uint64_t lsn, std::span<const std::byte> body)>;

// Calls visit(lsn, body) for every valid frame of a segment `scan` describes,
// in order, skipping its damaged ranges, and stops early (returning that
// error) when visit fails. Stops after the frame with LSN `last_lsn`.
[[nodiscard]] Result<void> for_each_wal_frame(std::span<const std::byte> segment,
                                              const WalSegmentScan& scan, std::uint64_t last_lsn,
                                              WalFrameVisitor visit);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_WAL_WAL_READER_H_
