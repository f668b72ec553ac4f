#include "wal/wal_recovery.h"

#include <algorithm>

#include <fmt/format.h>

#include "wal/wal_format.h"

namespace iqdb::persist {
namespace {

// How many valid frames of `scan` have LSNs in [low, high].
std::uint64_t count_valid(const WalSegmentScan& scan, std::uint64_t low, std::uint64_t high) {
  low = std::max(low, scan.first_lsn);
  high = std::min(high, scan.last_lsn);
  if (scan.frame_count == 0 || low > high) return 0;
  std::uint64_t count = high - low + 1;
  for (const WalDamage& damage : scan.damages) {
    if (damage.kind != WalDamageKind::Corruption) continue;
    // LSNs (lsn_before, lsn_after) have no valid frame.
    const std::uint64_t gap_low = std::max(low, damage.lsn_before + 1);
    const std::uint64_t gap_high = std::min(high, damage.lsn_after - 1);
    if (gap_low <= gap_high) count -= gap_high - gap_low + 1;
  }
  return count;
}

// Shorter than its header or all zero: a crash cut the segment's creation
// short, so it never held a record.
bool cut_short(const WalSegmentInput& input) {
  return input.size < wal_format::kHeaderSize || input.all_zero;
}

// Damage other than what a crash leaves at the end of the log (a torn tail, a
// creation cut short): bytes a power loss cut out of order, or media damage.
bool holds_damage(const WalSegmentInput& input) {
  return input.scan ? input.scan.value().has_corruption() : !cut_short(input);
}

class Planner {
 public:
  Planner(std::span<const WalSegmentInput> segments, std::uint64_t snapshot_lsn,
          WalRecoveryMode mode)
      : segments_(segments), mode_(mode), snapshot_lsn_(snapshot_lsn), expected_(snapshot_lsn + 1) {
    // durable_from_[i]: the highest durable LSN recorded in segments i.. .
    durable_from_.assign(segments.size() + 1, 0);
    for (std::size_t i = segments.size(); i-- > 0;) {
      const auto& scan = segments[i].scan;
      durable_from_[i] = std::max(durable_from_[i + 1], scan ? scan.value().max_durable_lsn : 0);
    }
    set_aside_.assign(segments.size(), false);
  }

  Result<WalRecoveryPlan> run() {
    for (std::size_t i = 0; i < segments_.size() && !stopped_; ++i) {
      IQDB_TRY(plan_segment(i));
    }
    plan_.last_lsn = expected_ - 1;
    for (std::size_t i = 0; i < segments_.size(); ++i) {
      const WalSegmentInput& input = segments_[i];
      if (input.scan) plan_.max_lsn = std::max(plan_.max_lsn, input.scan.value().last_lsn);
      if (set_aside_[i] || holds_damage(input)) plan_.set_aside.push_back(i);
    }
    return std::move(plan_);
  }

 private:
  // Refuses, stops or skips, as the mode says, after finding `damage`.
  Result<void> corruption(PersistError damage, std::uint64_t bytes) {
    if (mode_ == WalRecoveryMode::TolerateCorruptedTail ||
        mode_ == WalRecoveryMode::AbsoluteConsistency) {
      return boost::outcome_v2::failure(std::move(damage));
    }
    plan_.dropped_corruption = true;
    plan_.bytes_dropped += bytes;
    plan_.notes.push_back(damage.to_string());
    if (mode_ == WalRecoveryMode::PointInTime) stopped_ = true;
    return success();
  }

  Result<void> torn_tail(const std::string& what, std::uint64_t bytes) {
    if (mode_ == WalRecoveryMode::AbsoluteConsistency) {
      return fail(ErrorKind::TruncatedPayload, what);
    }
    plan_.bytes_dropped += bytes;
    plan_.notes.push_back("dropped " + what);
    return success();
  }

  // Damage no later frame saw synced: what a power loss leaves when unsynced
  // frames reach the disk out of order (or media damage to them: the two look
  // alike). Under TolerateCorruptedTail it is dropped with everything after
  // it, as at a torn tail: that is a state a power loss may leave under
  // never() and periodic(), whose users accepted losing unsynced records, and
  // refusing would turn each such power loss into a failed restart. As it may
  // also be media damage to records synced without a later one saying so,
  // nothing dropped is deleted: the segment is moved aside (set_aside).
  Result<void> unsynced_damage(const std::string& path, const WalDamage& damage) {
    const std::string what = fmt::format(
        "{}: damaged log records at offset {} ({}) that no later record saw synced (the last "
        "sync seen covers LSN {})",
        path, damage.offset, damage.reason, damage.durable_after);
    if (mode_ == WalRecoveryMode::AbsoluteConsistency) {
      return fail(ErrorKind::TruncatedPayload,
                  what + ": unsynced writes cut by a crash, or damage");
    }
    plan_.bytes_dropped += damage.length;
    if (mode_ == WalRecoveryMode::SkipCorruptedRecords) {
      plan_.dropped_corruption = true;
      plan_.notes.push_back(
          fmt::format("{}: records {}..{} skipped, the valid records after them kept", what,
                      damage.lsn_before + 1, damage.lsn_after - 1));
      return success();
    }
    plan_.notes.push_back(
        fmt::format("{}: unsynced writes cut by a crash, dropped with every record from LSN {} on",
                    what, damage.lsn_before + 1));
    stopped_ = true;
    return success();
  }

  // Unscanned damage of the last segment (the scan's CRC budget ran out):
  // the rest of the segment may hold valid frames, synced and acknowledged
  // ones included, and nothing tells whether it is a torn tail or unsynced
  // writes. Dropping it as either could lose acknowledged records without a
  // word, so it is corruption: refused by the default mode, which names the
  // file and offset and leaves the choice of a lossy mode to the operator.
  Result<void> unscanned(const std::string& path, const WalDamage& damage) {
    return corruption(
        {ErrorKind::ChecksumMismatch,
         fmt::format("{}: damaged log record at offset {} ({}); the {} bytes from there to the "
                     "end of the segment were not searched for valid records: records from LSN "
                     "{} on may be damaged or lost",
                     path, damage.offset, damage.reason, damage.length, damage.lsn_before + 1)},
        damage.length);
  }

  Result<void> plan_segment(std::size_t index) {
    const WalSegmentInput& input = segments_[index];
    const bool last = index + 1 == segments_.size();
    const std::string path = input.path.string();
    if (!input.scan) {
      if (!cut_short(input)) {
        IQDB_TRY(corruption(input.scan.error(), input.size));
        if (stopped_) count_dropped(index, expected_ - 1);
        return success();
      }
      if (last) {
        stopped_ = true;
        return torn_tail(fmt::format("{}: log segment of {} bytes without a complete header "
                                     "(its creation was cut short)",
                                     path, input.size),
                         input.size);
      }
      // A header is durable before any frame is written, so this segment never
      // held a record; whether records are missing shows at the next segment.
      return success();
    }
    const WalSegmentScan& scan = input.scan.value();
    if (scan.first_lsn > expected_) {
      IQDB_TRY(corruption({ErrorKind::TruncatedPayload,
                           fmt::format("{}: log records {}..{} are missing: the segment starts at "
                                       "LSN {}",
                                       path, expected_, scan.first_lsn - 1, scan.first_lsn)},
                          0));
      if (stopped_) {
        count_dropped(index, expected_ - 1);
        return success();
      }
      expected_ = scan.first_lsn;
    } else if (scan.first_lsn < expected_ && expected_ > snapshot_lsn_ + 1) {
      // Records above the snapshot's LSN that two segments both claim: two
      // writers logged at once (or a segment was copied in). Neither copy
      // can be trusted to be the one the index saw.
      IQDB_TRY(corruption({ErrorKind::InvalidHeader,
                           fmt::format("{}: the segment starts at LSN {}, but the previous segment "
                                       "already holds records up to LSN {}: overlapping log "
                                       "segments (two writers?)",
                                       path, scan.first_lsn, expected_ - 1)},
                          0));
      if (stopped_) {
        count_dropped(index, expected_ - 1);
        return success();
      }
    }
    std::uint64_t upto = scan.last_lsn;
    for (const WalDamage& damage : scan.damages) {
      if (damage.kind == WalDamageKind::Corruption) {
        if (damage.lsn_after <= expected_) continue;  // every damaged LSN is already held
        if (std::max(damage.durable_after, durable_from_[index + 1]) <= damage.lsn_before) {
          IQDB_TRY(unsynced_damage(path, damage));
        } else {
          IQDB_TRY(corruption(
              {ErrorKind::ChecksumMismatch,
               fmt::format("{}: corrupted log record at offset {} ({}), followed by valid "
                           "records from LSN {}: records {}..{} are damaged",
                           path, damage.offset, damage.reason, damage.lsn_after,
                           damage.lsn_before + 1, damage.lsn_after - 1)},
              damage.length));
        }
        if (stopped_) {
          upto = damage.lsn_before;
          break;
        }
      } else if (damage.kind == WalDamageKind::Unscanned) {
        // Not last: like a torn tail, the next segment's first LSN decides
        // (a frame hidden here would repeat that segment's LSNs, or the
        // segment starts late: missing records). lsn_after <= expected_:
        // every LSN the rest could hold is already held.
        if (!last || damage.lsn_after <= expected_) continue;
        IQDB_TRY(unscanned(path, damage));
        if (stopped_) {
          upto = damage.lsn_before;
          break;
        }
      } else if (last && damage.lsn_before + 1 >= expected_) {
        // Not last: the next segment continues the sequence (checked there),
        // so an earlier recovery already sealed this tail.
        IQDB_TRY(torn_tail(fmt::format("{}: torn log tail of {} bytes at offset {} ({})", path,
                                       damage.length, damage.offset, damage.reason),
                           damage.length));
      }
    }
    if (stopped_) count_dropped(index, upto);
    if (upto >= expected_) {
      plan_.replay.push_back({index, expected_, upto});
      plan_.frames_replayed += count_valid(scan, expected_, upto);
      expected_ = upto + 1;
    }
    return success();
  }

  // Counts the valid frames after LSN `kept` that stopping drops, and marks
  // the segments holding them to be moved aside.
  void count_dropped(std::size_t from, std::uint64_t kept) {
    for (std::size_t i = from; i < segments_.size(); ++i) {
      if (!segments_[i].scan) continue;
      const std::uint64_t dropped = count_valid(segments_[i].scan.value(), kept + 1, UINT64_MAX);
      plan_.frames_dropped += dropped;
      if (dropped > 0) set_aside_[i] = true;
    }
  }

  std::span<const WalSegmentInput> segments_;
  WalRecoveryMode mode_;
  std::uint64_t snapshot_lsn_;
  std::uint64_t expected_;  // the next LSN the recovered state needs
  std::vector<std::uint64_t> durable_from_;
  std::vector<bool> set_aside_;  // segments holding valid frames the plan drops
  bool stopped_ = false;
  WalRecoveryPlan plan_;
};

}  // namespace

Result<WalRecoveryPlan> plan_wal_recovery(std::span<const WalSegmentInput> segments,
                                          std::uint64_t snapshot_lsn, WalRecoveryMode mode) {
  return Planner(segments, snapshot_lsn, mode).run();
}

}  // namespace iqdb::persist
