#include "iqdb/persist/wal.h"

#include "iqdb/persist/file_header.h"
#include "iqdb/persist/file_system.h"
#include "wal_reader.h"
#include "wal_record.h"
#include "wal_recovery.h"
#include "wal_segments.h"

namespace iqdb::persist {
namespace {

constexpr WalRecoveryMode kModes[] = {
    WalRecoveryMode::TolerateCorruptedTail, WalRecoveryMode::AbsoluteConsistency,
    WalRecoveryMode::PointInTime, WalRecoveryMode::SkipCorruptedRecords};

void count_record_types(const OpenedWalSegment& segment, WalSegmentInfo& info) {
  const WalSegmentScan& scan = segment.input.scan.value();
  (void)for_each_wal_frame(segment.mapping->bytes(), scan, scan.last_lsn,
                           [&info](std::uint64_t, std::span<const std::byte> body) -> Result<void> {
                             switch (static_cast<WalRecordType>(body[0])) {
                               case WalRecordType::Insert: ++info.inserts; break;
                               case WalRecordType::Remove: ++info.removes; break;
                               case WalRecordType::Batch: ++info.batches; break;
                               case WalRecordType::Abort: ++info.aborts; break;
                             }
                             return boost::outcome_v2::success();
                           });
}

WalSegmentInfo describe(const WalSegmentInput& input) {
  WalSegmentInfo info;
  info.path = input.path;
  info.size = input.size;
  if (!input.scan) {
    info.header_error = input.scan.error();
    return info;
  }
  const WalSegmentScan& scan = input.scan.value();
  info.number = scan.number;
  info.first_lsn = scan.first_lsn;
  info.last_lsn = scan.last_lsn;
  info.frames = scan.frame_count;
  for (const WalDamage& damage : scan.damages) {
    info.damages.push_back({damage.kind == WalDamageKind::TornTail,
                            damage.kind == WalDamageKind::Unscanned, damage.offset, damage.length,
                            damage.lsn_before, damage.reason});
  }
  return info;
}

WalModeOutcome outcome_of(WalRecoveryMode mode, std::span<const WalSegmentInput> inputs,
                          std::uint64_t snapshot_lsn) {
  WalModeOutcome outcome;
  outcome.mode = mode;
  auto plan = plan_wal_recovery(inputs, snapshot_lsn, mode);
  if (!plan) {
    outcome.refusal = plan.error();
    return outcome;
  }
  outcome.last_lsn = plan.value().last_lsn;
  outcome.frames_replayed = plan.value().frames_replayed;
  outcome.frames_dropped = plan.value().frames_dropped;
  outcome.bytes_dropped = plan.value().bytes_dropped;
  outcome.notes = std::move(plan.value().notes);
  return outcome;
}

}  // namespace

Result<WalReport> inspect_wal(const std::filesystem::path& snapshot_path, FileSystem* file_system) {
  FileSystem& fs = file_system != nullptr ? *file_system : *default_file_system();
  WalReport report;
  auto header = read_file_header(snapshot_path, &fs);
  if (header) {
    report.snapshot_found = true;
    report.snapshot_lsn = header.value().wal_lsn;
  } else if (header.error().kind() != ErrorKind::NotFound) {
    return header.error();
  }
  IQDB_TRY_ASSIGN(auto segments, open_wal_segments(fs, snapshot_path));
  std::vector<WalSegmentInput> inputs;
  inputs.reserve(segments.size());
  for (OpenedWalSegment& segment : segments) {
    report.segments.push_back(describe(segment.input));
    if (segment.input.scan) count_record_types(segment, report.segments.back());
    inputs.push_back(std::move(segment.input));
  }
  for (const WalRecoveryMode mode : kModes) {
    report.modes.push_back(outcome_of(mode, inputs, report.snapshot_lsn));
  }
  return report;
}

}  // namespace iqdb::persist
