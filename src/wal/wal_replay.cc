// Log replay at load (see wal_replay.h): the Abort pass, the apply pass, and
// setting aside segments that hold records the load did not replay.
#include "wal/wal_replay.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "util/file_paths.h"
#include "wal/wal_reader.h"
#include "wal/wal_record.h"
#include "wal/wal_recovery.h"
#include "wal/wal_segments.h"

namespace iqdb::persist {
namespace {

// Snapshot LSN -> how many ops of each aborted mutation were applied.
using AbortedOps = std::unordered_map<std::uint64_t, std::uint32_t>;

// Applies the frames of one replay range: the validated second pass.
class Replayer {
 public:
  Replayer(const OpApplier& index, WalReplayReport& report) : index_(index), report_(report) {}

  // Pass one: the Abort records of the range (each names an earlier LSN).
  Result<void> collect_aborts(const OpenedWalSegment& segment, const WalReplayRange& range) {
    return visit(segment, range,
                 [this](std::uint64_t, std::span<const std::byte> body,
                        const std::string& context) -> Result<void> {
                   if (static_cast<WalRecordType>(body[0]) != WalRecordType::Abort) {
                     return success();
                   }
                   IQDB_TRY(decode_record(body, record_, context));
                   aborted_[record_.aborted_lsn()] = record_.aborted_applied_ops();
                   return success();
                 });
  }

  // Pass two: apply every mutation, as much of it as the index applied live.
  Result<void> apply(const OpenedWalSegment& segment, const WalReplayRange& range) {
    return visit(segment, range,
                 [this](std::uint64_t lsn, std::span<const std::byte> body,
                        const std::string& context) { return apply_record(lsn, body, context); });
  }

 private:
  using VisitFrame = FunctionRef<Result<void>(std::uint64_t lsn, std::span<const std::byte> body,
                                              const std::string& context)>;

  static Result<void> visit(const OpenedWalSegment& segment, const WalReplayRange& range,
                            VisitFrame visit_frame) {
    const std::string context = segment.input.path.string();
    return for_each_wal_frame(
        segment.mapping->bytes(), segment.input.scan.value(), range.last_lsn,
        [&](std::uint64_t lsn, std::span<const std::byte> body) -> Result<void> {
          if (lsn < range.first_lsn) return success();
          auto visited = visit_frame(lsn, body, context);
          if (!visited) {
            return boost::outcome_v2::failure(
                visited.error().with_context(fmt::format("record LSN {}", lsn)));
          }
          return visited;
        });
  }

  Result<void> apply_record(std::uint64_t lsn, std::span<const std::byte> body,
                            const std::string& context) {
    IQDB_TRY(decode_record(body, record_, context));
    if (record_.type() == WalRecordType::Abort) return success();
    const auto ops = record_.ops();
    const auto aborted = aborted_.find(lsn);
    const std::size_t limit =
        aborted == aborted_.end() ? ops.size() : std::min<std::size_t>(aborted->second, ops.size());
    ++report_.records_replayed;
    for (std::size_t i = 0; i < limit; ++i) {
      const DecodedOp& op = ops[i];
      const WalOp view = op.kind == WalOp::Kind::Insert
                             ? WalOp::insert(op.id, op.vector, op.metadata)
                             : WalOp::remove(op.id);
      auto applied = index_.apply(view);
      if (applied) {
        ++report_.ops_applied;
        continue;
      }
      if (aborted != aborted_.end()) {
        // The log says the index applied this op when it was logged.
        return fail(ErrorKind::InvalidPayload,
                    fmt::format("{}: op {} was applied when logged but the index now refuses "
                                "it ({}); the index does not match its log",
                                context, i + 1, applied.error().to_string()));
      }
      // Logged, then refused, and the writer stopped before it could log the
      // refusal: the index refuses it again, so the state matches the writer's.
      report_.ops_refused += ops.size() - i;
      break;
    }
    return success();
  }

  const OpApplier& index_;
  WalReplayReport& report_;
  DecodedRecord record_;
  AbortedOps aborted_;
};

}  // namespace

Result<void> set_aside_segments(FileSystem& fs, std::span<const std::filesystem::path> segments,
                                bool sync_dir, WalReplayReport& report) {
  Result<void> outcome = success();
  for (const std::filesystem::path& segment : segments) {
    auto moved = set_aside_wal_segment(fs, segment);
    if (!moved) {
      if (outcome) outcome = moved.error();
      continue;
    }
    report.notes.push_back(
        fmt::format("{}: moved aside to {}: it holds records this load did not replay",
                    segment.string(), moved.value().string()));
    report.set_aside.push_back(std::move(moved).value());
  }
  if (!segments.empty() && sync_dir) {
    auto synced = fs.sync_dir(directory_of(segments.front()));
    if (!synced && outcome) outcome = synced;
  }
  return outcome;
}

Result<WalReplayOutcome> replay_wal(FileSystem& fs, const std::filesystem::path& snapshot_path,
                                    std::uint64_t snapshot_lsn, std::uint64_t database_id,
                                    WalRecoveryMode mode, bool sync_dir, const OpApplier& index) {
  IQDB_TRY_ASSIGN(auto segments, open_wal_segments(fs, snapshot_path, database_id));
  std::vector<WalSegmentInput> inputs;
  inputs.reserve(segments.size());
  for (const OpenedWalSegment& segment : segments) inputs.push_back(segment.input);
  IQDB_TRY_ASSIGN(const auto plan, plan_wal_recovery(inputs, snapshot_lsn, mode));

  WalReplayOutcome outcome;
  WalReplayReport& report = outcome.report;
  report.snapshot_lsn = snapshot_lsn;
  report.last_lsn = std::max(plan.last_lsn, snapshot_lsn);
  report.segments = segments.size();
  report.frames_dropped = plan.frames_dropped;
  report.bytes_dropped = plan.bytes_dropped;
  report.notes = plan.notes;
  Replayer replayer(index, report);
  for (const WalReplayRange& range : plan.replay) {
    IQDB_TRY(replayer.collect_aborts(segments[range.segment], range));
  }
  for (const WalReplayRange& range : plan.replay) {
    IQDB_TRY(replayer.apply(segments[range.segment], range));
  }
  // What was replayed may exist only in the page cache (the writer died
  // before syncing it). The next segment continues after it, so it must be
  // durable first, or a power loss would leave a gap in the LSN sequence that
  // refuses the load. Whatever the policy: once per load, not per write.
  for (const WalReplayRange& range : plan.replay) {
    IQDB_TRY(fs.sync_file(segments[range.segment].input.path));
  }
  // A segment holding records this load does not replay is moved aside,
  // never deleted: now if nothing was replayed from it, else by the
  // checkpoint, once its snapshot holds what was.
  std::vector<std::filesystem::path> now;
  for (const std::size_t segment : plan.set_aside) {
    const bool replayed =
        std::any_of(plan.replay.begin(), plan.replay.end(),
                    [&](const WalReplayRange& r) { return r.segment == segment; });
    (replayed ? outcome.set_aside_at_checkpoint : now).push_back(segments[segment].input.path);
  }
  IQDB_TRY(set_aside_segments(fs, now, sync_dir, report));

  for (auto segment = segments.rbegin(); segment != segments.rend(); ++segment) {
    const auto& scan = segment->input.scan;
    if (scan && scan.value().database_id != 0) {
      outcome.newest_database_id = scan.value().database_id;
      break;
    }
  }
  outcome.next_segment = (segments.empty() ? 0 : segments.back().number) + 1;
  outcome.next_lsn = std::max({plan.max_lsn, plan.last_lsn, snapshot_lsn}) + 1;
  // A lossy mode dropped records whose LSNs a new segment would skip: only a
  // snapshot that claims them can make the log consistent again.
  outcome.checkpoint_due = plan.dropped_corruption || plan.max_lsn > plan.last_lsn ||
                           !outcome.set_aside_at_checkpoint.empty();
  return outcome;
}

}  // namespace iqdb::persist
