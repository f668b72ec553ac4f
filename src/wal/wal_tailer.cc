// Following a log while its writer appends (see wal_tailer.h).
#include "wal/wal_tailer.h"

#include <algorithm>
#include <array>
#include <utility>

#include <fmt/format.h>

#include "wal/wal_format.h"
#include "wal/wal_reader.h"
#include "wal/wal_segments.h"

namespace iqdb::persist {
namespace {

namespace wf = wal_format;

// Bytes read at once: enough for thousands of small records per read, small
// enough that a replica's buffer stays modest.
constexpr std::uint64_t kReadChunk = std::uint64_t{1} << 20;
// From this many unread bytes on, the segment is mapped instead.
constexpr std::uint64_t kMapAtLeast = std::uint64_t{4} << 20;

// How often one advance() looks for the segment again after the one it
// followed disappeared.
constexpr int kMaxRelocations = 3;

using Outcome = WalTailer::Outcome;
using State = WalTailer::State;

// A segment file opened and its header read, or why it cannot be followed:
// missing, of another database, or (problem) a header not yet written or
// damaged.
struct SegmentProbe {
  std::unique_ptr<ReadableFile> file;  // set when the header was read
  std::uint64_t first_lsn = 0;
  bool missing = false;
  bool other_database = false;  // its header records another database id
  std::string problem;
};

std::string other_database_detail(const std::filesystem::path& path, std::uint64_t segment_id,
                                  std::uint64_t snapshot_id) {
  return fmt::format(
      "{} belongs to database {:016x}, not to the snapshot's ({:016x}): the "
      "database was recreated at this path (or the file copied from another); the "
      "snapshot of the database it belongs to is needed",
      path.string(), segment_id, snapshot_id);
}

// Errors: those of opening the file other than NotFound; Io reading its header.
Result<SegmentProbe> probe_segment(FileSystem& fs, const std::filesystem::path& path,
                                   std::uint64_t database_id) {
  SegmentProbe probe;
  auto file = fs.open_readable(path);
  if (!file) {
    if (file.error().kind() != ErrorKind::NotFound) return file.error();
    probe.missing = true;
    return probe;
  }
  std::array<std::byte, wf::kHeaderSize> header{};
  if (file.value()->size() < wf::kHeaderSize) {
    probe.problem = fmt::format("{}: being created", path.string());
    return probe;
  }
  IQDB_TRY(file.value()->read_at(0, header));
  auto scan = read_wal_segment_header(header, path);
  if (!scan) {
    probe.problem = scan.error().to_string();
    return probe;
  }
  if (!wf::same_database(database_id, scan.value().database_id)) {
    probe.other_database = true;
    probe.problem = other_database_detail(path, scan.value().database_id, database_id);
    return probe;
  }
  probe.file = std::move(file).value();
  probe.first_lsn = scan.value().first_lsn;
  return probe;
}

Outcome stopped(State state, std::string detail) {
  Outcome outcome;
  outcome.state = state;
  outcome.detail = std::move(detail);
  return outcome;
}

}  // namespace

WalTailer::WalTailer(FileSystem& fs, std::filesystem::path snapshot_path, std::uint64_t next_lsn,
                     SegmentHint hint, std::uint64_t database_id)
    : fs_(fs),
      snapshot_path_(std::move(snapshot_path)),
      database_id_(database_id),
      next_lsn_(next_lsn),
      hint_(hint) {}

void WalTailer::follow_segment(std::uint64_t number, std::filesystem::path path,
                               std::uint64_t first_lsn) {
  segment_ = number;
  segment_path_ = std::move(path);
  segment_first_lsn_ = first_lsn;
  offset_ = wf::kHeaderSize;
  expected_lsn_ = first_lsn;
  seen_size_ = 0;
  header_unchecked_ = false;
}

bool WalTailer::try_hint(const SegmentHint& hint) {
  if (hint.first_lsn == next_lsn_) {
    // The segment the previous tailer followed starts here (a checkpoint
    // with nothing logged since the last one). Gone, a checkpoint removed it
    // and started the next one.
    auto path = wal_segment_path(snapshot_path_, hint.segment);
    if (!fs_.status(path)) return try_segment_after_hint(hint.segment + 1);
    follow_segment(hint.segment, std::move(path), next_lsn_);
    header_unchecked_ = !hint.header_checked;
    return true;
  }
  // Only a segment after one that starts before next_lsn_ can start at it:
  // records are never logged twice.
  return hint.first_lsn < next_lsn_ && try_segment_after_hint(hint.segment + 1);
}

bool WalTailer::try_segment_after_hint(std::uint64_t number) {
  auto path = wal_segment_path(snapshot_path_, number);
  auto status = fs_.status(path);
  if (status && status.value().size == wf::kHeaderSize) {
    follow_segment(number, std::move(path), next_lsn_);
    seen_size_ = wf::kHeaderSize;
    header_unchecked_ = true;
    return true;
  }
  auto probe = probe_segment(fs_, path, database_id_);
  if (!probe || !probe.value().file || probe.value().first_lsn != next_lsn_) return false;
  follow_segment(number, std::move(path), next_lsn_);
  probed_ = std::move(probe.value().file);
  return true;
}

Result<WalTailer::Reopened> WalTailer::check_reopened(const ReadableFile& file,
                                                      std::string& detail) const {
  std::array<std::byte, wf::kHeaderSize> header{};
  if (file.size() < wf::kHeaderSize) return Reopened::OtherSegment;
  IQDB_TRY(file.read_at(0, header));
  auto scan = read_wal_segment_header(header, segment_path_);
  if (!scan) return Reopened::OtherSegment;
  if (!wf::same_database(database_id_, scan.value().database_id)) {
    detail = other_database_detail(segment_path_, scan.value().database_id, database_id_);
    return Reopened::OtherDatabase;
  }
  return scan.value().first_lsn == segment_first_lsn_ ? Reopened::Same : Reopened::OtherSegment;
}

bool WalTailer::maybe_changed() {
  if (segment_ == 0) return true;
  auto status = fs_.status(segment_path_);
  if (!status || status.value().size != seen_size_) return true;
  return static_cast<bool>(fs_.status(wal_segment_path(snapshot_path_, segment_ + 1)));
}

std::string WalTailer::frame_context(std::uint64_t offset, std::uint64_t lsn) const {
  return fmt::format("{}: frame at offset {} (LSN {})", segment_path_.string(), offset, lsn);
}

Result<std::optional<Outcome>> WalTailer::locate() {
  // After a checkpoint the next record starts the segment after the one the
  // previous generation followed: found without listing the directory.
  if (hint_.segment != 0) {
    const SegmentHint hint = std::exchange(hint_, SegmentHint{});
    if (try_hint(hint)) return std::nullopt;
  }
  IQDB_TRY_ASSIGN(const auto numbers, list_wal_segments(fs_, snapshot_path_));
  std::optional<std::uint64_t> first_after;
  std::string other_database;
  for (auto number = numbers.rbegin(); number != numbers.rend(); ++number) {
    auto path = wal_segment_path(snapshot_path_, *number);
    auto probe = probe_segment(fs_, path, database_id_);
    if (probe && probe.value().other_database && other_database.empty()) {
      other_database = std::move(probe.value().problem);
    }
    // A segment just created (its header not yet readable) or one with a
    // damaged header holds nothing this replica can apply yet; one of
    // another database never will.
    if (!probe || !probe.value().file) continue;
    if (probe.value().first_lsn > next_lsn_) {
      first_after = probe.value().first_lsn;
      continue;
    }
    follow_segment(*number, std::move(path), probe.value().first_lsn);
    probed_ = std::move(probe.value().file);
    return std::nullopt;
  }
  if (first_after) {
    return stopped(State::NeedsSnapshot,
                   fmt::format("{}: the log starts at LSN {}, after the next record to apply ({})",
                               snapshot_path_.string(), *first_after, next_lsn_));
  }
  if (!other_database.empty()) return stopped(State::NeedsSnapshot, std::move(other_database));
  return stopped(State::CaughtUp, fmt::format("{}: no log segment yet", snapshot_path_.string()));
}

Result<void> WalTailer::read_window(const ReadableFile& file, std::uint64_t size,
                                    std::uint64_t want) {
  const std::uint64_t available = size - offset_;
  if (available >= kMapAtLeast) {
    // Catching up: view the frames in place rather than copy them.
    IQDB_TRY_ASSIGN(mapping_, file.map());
    const auto bytes = mapping_->bytes();
    if (bytes.size() < size) {
      return fail(ErrorKind::Io,
                  fmt::format("{}: shorter than when it was opened", segment_path_.string()));
    }
    window_ = bytes.subspan(offset_, available);
  } else {
    mapping_.reset();
    buffer_.resize(std::min(available, std::max(want, kReadChunk)));
    IQDB_TRY(file.read_at(offset_, buffer_));
    window_ = buffer_;
  }
  window_offset_ = offset_;
  return success();
}

void WalTailer::clear_window() {
  window_ = {};
  mapping_.reset();
  window_offset_ = offset_;
}

Result<std::optional<Outcome>> WalTailer::at_segment_end(bool bytes_left) {
  auto next_path = wal_segment_path(snapshot_path_, segment_ + 1);
  IQDB_TRY_ASSIGN(auto next, probe_segment(fs_, next_path, database_id_));
  if (next.other_database) return stopped(State::NeedsSnapshot, std::move(next.problem));
  if (next.missing) {
    if (!bytes_left) return stopped(State::CaughtUp, "");
    return stopped(State::NotYet, fmt::format("{}: the frame at offset {} (LSN {}) is not complete "
                                              "yet",
                                              segment_path_.string(), offset_, expected_lsn_));
  }
  if (!next.file) return stopped(State::NotYet, std::move(next.problem));
  const std::uint64_t first = next.first_lsn;
  // The next segment continues the sequence (this one is sealed, and what is
  // left of it is a torn tail the writer's recovery dropped), or this one
  // held only records below the next one needed (an old segment a copier has
  // not deleted yet, beside the newer snapshot that holds them): move on.
  if (first == expected_lsn_ || (expected_lsn_ < next_lsn_ && first <= next_lsn_)) {
    follow_segment(segment_ + 1, std::move(next_path), first);
    probed_ = std::move(next.file);
    clear_window();
    return std::nullopt;
  }
  if (first > expected_lsn_) {
    return stopped(State::NeedsSnapshot,
                   fmt::format("{} starts at LSN {}: records {}..{} are no longer in the log",
                               next_path.string(), first, expected_lsn_, first - 1));
  }
  return stopped(State::Diverged,
                 fmt::format("{} starts at LSN {}, repeating records up to {} already read",
                             next_path.string(), first, expected_lsn_ - 1));
}

Result<void> WalTailer::apply_frame(std::uint64_t lsn, std::span<const std::byte> body,
                                    std::optional<std::uint32_t> abort_limit, bool followed,
                                    const OpApplier& index, Outcome& outcome) {
  IQDB_TRY(decode_record(body, record_, frame_context(offset_, lsn)));
  if (record_.type() == WalRecordType::Abort) {
    const bool disagrees = unconfirmed_ && unconfirmed_->lsn == record_.aborted_lsn() &&
                           unconfirmed_->applied != record_.aborted_applied_ops();
    if (disagrees) {
      outcome.state = State::Diverged;
      outcome.detail = fmt::format(
          "{}: the writer's index applied {} op(s) of the record at LSN {}, this one {}",
          segment_path_.string(), record_.aborted_applied_ops(), unconfirmed_->lsn,
          unconfirmed_->applied);
    }
    unconfirmed_.reset();
    return success();
  }
  unconfirmed_.reset();
  const auto ops = record_.ops();
  const std::size_t limit = std::min<std::size_t>(abort_limit.value_or(ops.size()), ops.size());
  std::uint32_t applied = 0;
  for (std::size_t i = 0; i < limit; ++i) {
    const DecodedOp& op = ops[i];
    const WalOp view = op.kind == WalOp::Kind::Insert ? WalOp::insert(op.id, op.vector, op.metadata)
                                                      : WalOp::remove(op.id);
    if (index.apply(view)) {
      ++applied;
      continue;
    }
    if (abort_limit) {
      outcome.state = State::Diverged;
      outcome.detail = fmt::format("{}: op {} was applied by the writer but this index refuses it",
                                   frame_context(offset_, lsn), i + 1);
      return success();
    }
    break;  // refused here as by the writer, whose Abort record may follow
  }
  ++outcome.records;
  if (!followed) unconfirmed_ = Unconfirmed{lsn, applied};
  return success();
}

Result<Outcome> WalTailer::advance(const OpApplier& index, std::uint64_t max_records) {
  Outcome outcome;
  int relocations = 0;
  bool located_here = false;  // the segment was found by this call
  while (outcome.records < max_records) {
    if (segment_ == 0) {
      IQDB_TRY_ASSIGN(auto located, locate());
      if (located) return *located;
      located_here = true;
    }
    // Found by a stat, holding only its header: nothing to read yet.
    if (located_here && header_unchecked_ && seen_size_ == wf::kHeaderSize) {
      return stopped(State::CaughtUp, "");
    }
    const bool probed = probed_ != nullptr;  // its header was just read
    auto opened = probed ? Result<std::unique_ptr<ReadableFile>>(std::move(probed_))
                         : fs_.open_readable(segment_path_);
    probed_.reset();
    if (opened && !probed) {
      // The path may name another file than last time: a copier replaced
      // it, or (found by a stat) it was only assumed to start at the LSN it
      // was taken for. Read on only in the segment followed so far.
      std::string detail;
      IQDB_TRY_ASSIGN(const Reopened reopened, check_reopened(*opened.value(), detail));
      if (reopened == Reopened::OtherDatabase) {
        outcome.state = State::NeedsSnapshot;
        outcome.detail = std::move(detail);
        return outcome;
      }
      if (reopened == Reopened::OtherSegment) {
        if (++relocations > kMaxRelocations) {
          return stopped(State::NotYet,
                         fmt::format("{}: segments are being replaced", snapshot_path_.string()));
        }
        segment_ = 0;
        continue;
      }
      header_unchecked_ = false;
    }
    if (!opened) {
      if (opened.error().kind() != ErrorKind::NotFound) return opened.error();
      // Retired by a checkpoint (or deleted by a copier): the next record may
      // be in a newer segment, or only in the newer snapshot. Look again, a
      // few times at most while segments come and go.
      if (++relocations > kMaxRelocations) {
        return stopped(State::NotYet,
                       fmt::format("{}: segments are being replaced", snapshot_path_.string()));
      }
      segment_ = 0;
      continue;
    }
    const ReadableFile& file = *opened.value();
    const std::uint64_t size = file.size();
    seen_size_ = size;
    clear_window();
    // The frames of the segment from offset_ on, until none is readable.
    bool bytes_left = false;
    // The next frame, once checked as the look-ahead of the one before it
    // (each frame's CRC is computed once). Invalid once the window moves.
    std::optional<WalFrameAt> checked_next;
    while (outcome.records < max_records && outcome.state == State::CaughtUp) {
      if (offset_ >= size) break;
      const auto in_window = [&](std::uint64_t at) {
        const std::uint64_t end = window_offset_ + window_.size();
        return at >= window_offset_ && at <= end ? window_.subspan(at - window_offset_)
                                                 : std::span<const std::byte>();
      };
      const WalFrameAt frame = checked_next ? std::move(*checked_next)
                                            : check_wal_frame(in_window(offset_), expected_lsn_);
      checked_next.reset();
      const std::uint64_t needed = std::max<std::uint64_t>(frame.size, wf::kFrameHeaderSize);
      if (frame.status == WalFrameAt::Status::Incomplete && offset_ + needed <= size) {
        IQDB_TRY(read_window(file, size, needed));  // the window ends before the file does
        continue;
      }
      if (frame.status != WalFrameAt::Status::Valid) {
        bytes_left = true;
        break;
      }
      // Look at the next frame for an Abort record naming this one.
      const std::uint64_t next = offset_ + frame.size;
      const WalFrameAt after = check_wal_frame(in_window(next), expected_lsn_ + 1);
      const std::uint64_t after_needed = std::max<std::uint64_t>(after.size, wf::kFrameHeaderSize);
      if (after.status == WalFrameAt::Status::Incomplete && next + after_needed <= size) {
        IQDB_TRY(read_window(file, size, frame.size + after_needed));
        continue;
      }
      std::optional<std::uint32_t> abort_limit;
      const bool followed = after.status == WalFrameAt::Status::Valid;
      if (followed && static_cast<WalRecordType>(after.body[0]) == WalRecordType::Abort) {
        DecodedRecord abort;
        if (decode_record(after.body, abort, "") && abort.aborted_lsn() == expected_lsn_) {
          abort_limit = abort.aborted_applied_ops();
        }
      }
      if (expected_lsn_ >= next_lsn_) {
        IQDB_TRY(apply_frame(expected_lsn_, frame.body, abort_limit, followed, index, outcome));
        if (outcome.state != State::CaughtUp) return outcome;
        outcome.bytes += frame.size;
        next_lsn_ = expected_lsn_ + 1;
      }
      offset_ = next;
      ++expected_lsn_;
      if (followed) checked_next = after;
    }
    if (outcome.records >= max_records) break;
    // A segment just found that starts at the next LSN and holds no frame
    // yet (what a checkpoint leaves): nothing more to read, and no need to
    // look for a segment after it. If one appears, maybe_changed() sees it
    // (it looks at the next segment) and the next advance moves on.
    if (located_here && size == wf::kHeaderSize && expected_lsn_ == next_lsn_) {
      return stopped(State::CaughtUp, "");
    }
    IQDB_TRY_ASSIGN(auto ended, at_segment_end(bytes_left));
    if (ended) {
      ended->records = outcome.records;
      ended->bytes = outcome.bytes;
      return *ended;
    }
  }
  return outcome;
}

}  // namespace iqdb::persist
