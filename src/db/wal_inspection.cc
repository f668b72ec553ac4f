#include "iqdb/persist/wal_inspection.h"

#include <array>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "iqdb/persist/file_header.h"
#include "iqdb/persist/file_system.h"
#include "wal/wal_format.h"
#include "wal/wal_reader.h"
#include "wal/wal_record.h"
#include "wal/wal_recovery.h"
#include "wal/wal_segments.h"

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
                             return success();
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

// A record that a load would replay and fail to decode.
struct Undecodable {
  std::uint64_t lsn = 0;
  // A load decodes Abort records first, in a pass of their own.
  bool abort = false;
  PersistError error;  // as the load reports it
};

// Decodes, as a load does (same decoder, same context), every valid frame of
// `segment` past the snapshot's LSN; lists those that fail in `info` and returns them.
std::vector<Undecodable> find_undecodable(const OpenedWalSegment& segment,
                                          std::uint64_t snapshot_lsn, WalSegmentInfo& info) {
  const WalSegmentScan& scan = segment.input.scan.value();
  const auto bytes = segment.mapping->bytes();
  const std::string context = segment.input.path.string();
  DecodedRecord record;
  std::vector<Undecodable> found;
  (void)for_each_wal_frame(
      bytes, scan, scan.last_lsn,
      [&](std::uint64_t lsn, std::span<const std::byte> body) -> Result<void> {
        if (lsn <= snapshot_lsn) return success();
        auto decoded = decode_record(body, record, context);
        if (decoded) return success();
        const auto offset =
            static_cast<std::uint64_t>(body.data() - bytes.data()) - wal_format::kFrameHeaderSize;
        // The segment is named by the report already: keep the decoder's own words.
        std::string reason = decoded.error().message();
        if (reason.starts_with(context + ": ")) reason.erase(0, context.size() + 2);
        info.invalid_records.push_back({lsn, offset, std::move(reason)});
        found.push_back({lsn, static_cast<WalRecordType>(body[0]) == WalRecordType::Abort,
                         decoded.error().with_context(fmt::format("record LSN {}", lsn))});
        return success();
      });
  return found;
}

// The error of the first record of the plan's replay that a load would fail
// to decode, in the load's order: Abort records first, then every record.
std::optional<PersistError> first_undecodable(
    const WalRecoveryPlan& plan, const std::vector<std::vector<Undecodable>>& undecodable) {
  for (const bool aborts_only : {true, false}) {
    for (const WalReplayRange& range : plan.replay) {
      for (const Undecodable& record : undecodable[range.segment]) {
        if (record.lsn < range.first_lsn || record.lsn > range.last_lsn) continue;
        if (!aborts_only || record.abort) return record.error;
      }
    }
  }
  return std::nullopt;
}

WalModeOutcome outcome_of(WalRecoveryMode mode, std::span<const WalSegmentInput> inputs,
                          std::uint64_t snapshot_lsn,
                          const std::vector<std::vector<Undecodable>>& undecodable) {
  WalModeOutcome outcome;
  outcome.mode = mode;
  auto plan = plan_wal_recovery(inputs, snapshot_lsn, mode);
  if (!plan) {
    outcome.refusal = plan.error();
    return outcome;
  }
  if (auto refusal = first_undecodable(plan.value(), undecodable)) {
    outcome.refusal = std::move(refusal);
    return outcome;
  }
  outcome.last_lsn = plan.value().last_lsn;
  outcome.frames_replayed = plan.value().frames_replayed;
  outcome.frames_dropped = plan.value().frames_dropped;
  outcome.bytes_dropped = plan.value().bytes_dropped;
  outcome.notes = std::move(plan.value().notes);
  for (const std::size_t index : plan.value().set_aside) {
    outcome.set_aside.push_back(inputs[index].path);
  }
  return outcome;
}

// Whether the file name has ".wal-" and 16 hex digits in it, as a segment's
// (moved aside or not) has.
bool has_segment_name(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  const std::size_t infix = name.rfind(wal_format::kSegmentInfix);
  if (infix == std::string::npos) return false;
  const std::string_view digits = std::string_view(name).substr(
      infix + wal_format::kSegmentInfix.size(), wal_format::kSegmentDigits);
  return digits.size() == wal_format::kSegmentDigits &&
         digits.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// Whether `path` is a log segment rather than a snapshot: by its magic, or by
// its name when its header is too damaged to tell.
bool is_wal_segment(FileSystem& fs, const std::filesystem::path& path) {
  if (has_segment_name(path)) return true;
  auto file = fs.open_readable(path);
  if (!file || file.value()->size() < wal_format::kMagic.size()) return false;
  std::array<std::byte, wal_format::kMagic.size()> magic{};
  if (!file.value()->read_at(0, magic)) return false;
  return std::memcmp(magic.data(), wal_format::kMagic.data(), magic.size()) == 0;
}

// One segment file on its own: what it holds, not what a load would do (no
// load reads it unless it is part of a snapshot's log).
Result<WalReport> inspect_lone_segment(FileSystem& fs, const std::filesystem::path& path) {
  IQDB_TRY_ASSIGN(const auto segment, open_wal_segment(fs, path, 0));
  WalReport report;
  report.lone_segment = true;
  report.segments.push_back(describe(segment.input));
  if (segment.input.scan) count_record_types(segment, report.segments.back());
  return report;
}

}  // namespace

Result<WalReport> inspect_wal(const std::filesystem::path& snapshot_path,
                              const std::shared_ptr<FileSystem>& file_system) {
  FileSystem& fs = file_system_or_default(file_system);
  if (is_wal_segment(fs, snapshot_path)) return inspect_lone_segment(fs, snapshot_path);
  WalReport report;
  auto header = read_file_header(snapshot_path, file_system);
  std::uint64_t database_id = 0;  // without a snapshot, any segment may be this database's
  if (header) {
    report.snapshot_found = true;
    report.snapshot_lsn = header.value().wal_lsn;
    database_id = header.value().database_id;
  } else if (header.error().kind() != ErrorKind::NotFound) {
    return header.error();
  }
  IQDB_TRY_ASSIGN(auto segments, open_wal_segments(fs, snapshot_path, database_id));
  std::vector<WalSegmentInput> inputs;
  inputs.reserve(segments.size());
  // Per segment, in the order of `inputs` (which the plans' ranges index).
  std::vector<std::vector<Undecodable>> undecodable(segments.size());
  for (std::size_t i = 0; i < segments.size(); ++i) {
    OpenedWalSegment& segment = segments[i];
    report.segments.push_back(describe(segment.input));
    if (segment.input.scan) {
      count_record_types(segment, report.segments.back());
      undecodable[i] = find_undecodable(segment, report.snapshot_lsn, report.segments.back());
    }
    inputs.push_back(std::move(segment.input));
  }
  for (const WalRecoveryMode mode : kModes) {
    report.modes.push_back(outcome_of(mode, inputs, report.snapshot_lsn, undecodable));
  }
  return report;
}

}  // namespace iqdb::persist
