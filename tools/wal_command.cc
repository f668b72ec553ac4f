#include "wal_command.h"

#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "iqdb/persist/wal_inspection.h"
#include "output/exit_status.h"
#include "output/table.h"
#include "output/text_format.h"

namespace iqdb::tools {
namespace {

using persist::WalModeOutcome;
using persist::WalReport;
using persist::WalSegmentInfo;

std::string describe_damage(const WalSegmentInfo& segment) {
  if (segment.header_error) return escape_for_terminal(segment.header_error->to_string());
  if (segment.damages.empty() && segment.invalid_records.empty()) return "intact";
  std::string text;
  for (const auto& damage : segment.damages) {
    if (!text.empty()) text += "; ";
    // UNSCANNED: the scan gave up (its CRC budget ran out); the reason says where.
    const char* kind = damage.torn_tail   ? "torn tail"
                       : damage.unscanned ? "UNSCANNED"
                                          : "CORRUPTION";
    text += fmt::format("{} at offset {} ({} bytes: {})", kind, damage.offset, damage.length,
                        damage.reason);
  }
  // Intact frames whose records a load refuses: as fatal as corruption.
  for (const auto& record : segment.invalid_records) {
    if (!text.empty()) text += "; ";
    text += fmt::format("INVALID RECORD LSN {} at offset {} ({})", record.lsn, record.offset,
                        record.reason);
  }
  return escape_for_terminal(text);
}

void print_segments(const WalReport& report) {
  TextTable table({{"segment"},
                   {"bytes", TextTable::Align::Right},
                   {"frames", TextTable::Align::Right},
                   {"LSNs"},
                   {"records"},
                   {"state"}});
  for (const WalSegmentInfo& segment : report.segments) {
    const std::string lsns = segment.header_error || segment.frames == 0
                                 ? std::string("-")
                                 : fmt::format("{}..{}", segment.first_lsn, segment.last_lsn);
    const std::string records =
        segment.frames == 0
            ? std::string("-")
            : fmt::format("{} insert, {} remove, {} batch, {} abort", segment.inserts,
                          segment.removes, segment.batches, segment.aborts);
    table.add_row({escape_for_terminal(segment.path.filename().string()),
                   std::to_string(segment.size), std::to_string(segment.frames), lsns, records,
                   describe_damage(segment)});
  }
  std::fputs(table.render().c_str(), stdout);
}

void print_outcome(const WalModeOutcome& outcome) {
  const std::string_view mode = persist::to_string(outcome.mode);
  if (outcome.refusal) {
    fmt::print("  {:<22} refuses to open: {}\n", mode,
               escape_for_terminal(outcome.refusal->to_string()));
    return;
  }
  fmt::print(
      "  {:<22} opens at LSN {}: replays {} records, drops {} valid records and {} "
      "damaged bytes\n",
      mode, outcome.last_lsn, outcome.frames_replayed, outcome.frames_dropped,
      outcome.bytes_dropped);
  for (const std::string& note : outcome.notes) {
    fmt::print("  {:<22}   {}\n", "", escape_for_terminal(note));
  }
  for (const auto& segment : outcome.set_aside) {
    const std::string name = escape_for_terminal(segment.filename().string());
    fmt::print(
        "  {:<22}   moves {} aside as {}.damaged: it holds records this load does not "
        "replay\n",
        "", name, name);
  }
}

// FILE is a segment on its own, e.g. one a load moved aside: what it holds.
int print_lone_segment(const WalReport& wal, const std::filesystem::path& file) {
  fmt::print("segment   {}: a log segment read on its own; no load replays it\n\n",
             escape_for_terminal(file.string()));
  print_segments(wal);
  const WalSegmentInfo& segment = wal.segments.front();
  return segment.header_error || !segment.damages.empty() ? kExitIntegrity : kExitOk;
}

}  // namespace

int run_wal(const WalCommandOptions& options) {
  auto report_or_error = persist::inspect_wal(options.file);
  if (!report_or_error) return report(report_or_error.error());
  const WalReport& wal = report_or_error.value();
  if (wal.lone_segment) return print_lone_segment(wal, options.file);
  fmt::print("snapshot  {}: {}\n", escape_for_terminal(options.file.string()),
             wal.snapshot_found ? fmt::format("holds the log up to LSN {}", wal.snapshot_lsn)
                                : std::string("not found (replay would start from LSN 1)"));
  if (wal.segments.empty()) {
    fmt::print("log       no segments\n");
    return kExitOk;
  }
  fmt::print("log       {} segments\n\n", wal.segments.size());
  print_segments(wal);
  fmt::print("\nwhat a load would do, by recovery mode:\n");
  for (const WalModeOutcome& outcome : wal.modes) print_outcome(outcome);
  return wal.modes.front().refusal ? kExitIntegrity : kExitOk;
}

}  // namespace iqdb::tools
