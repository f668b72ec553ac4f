#include "compact_command.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <system_error>

#include <fmt/format.h>

#include "iqdb/persist/rewrite.h"
#include "output/exit_status.h"
#include "output/progress.h"
#include "output/table.h"
#include "output/text_format.h"

namespace iqdb::tools {
namespace {

using persist::RewriteReport;
using persist::SectionRewrite;

std::string render(const CompactOptions& options, const RewriteReport& report) {
  const std::string file = escape_for_terminal(options.file.string());
  std::string out =
      options.output.empty()
          ? fmt::format("OK: {}: rewritten in place", file)
          : fmt::format("OK: {} -> {}", file, escape_for_terminal(options.output.string()));
  out += fmt::format(" in {}\n", format_seconds(report.seconds));
  const bool smaller = report.bytes_after <= report.bytes_before;
  out += fmt::format(
      "size: {} -> {} bytes ({} -> {}): {} {}\n", report.bytes_before, report.bytes_after,
      format_bytes(report.bytes_before), format_bytes(report.bytes_after),
      format_ratio(smaller ? compression_ratio(report.bytes_before, report.bytes_after)
                           : compression_ratio(report.bytes_after, report.bytes_before)),
      smaller ? "smaller" : "larger");

  using Align = TextTable::Align;
  TextTable table({{"name"},
                   {"logical length", Align::Right},
                   {"compression"},
                   {"stored length", Align::Right},
                   {"ratio", Align::Right}});
  for (const SectionRewrite& section : report.sections) {
    table.add_row(
        {escape_for_terminal(section.name), fmt::format("{}", section.logical_length),
         fmt::format("{} -> {}", to_string(section.old_compression),
                     to_string(section.new_compression)),
         fmt::format("{} -> {}", section.old_stored_length, section.new_stored_length),
         format_ratio(compression_ratio(section.logical_length, section.new_stored_length))});
  }
  out += fmt::format("\nsections ({}):\n", report.sections.size());
  out += table.render();
  return out;
}

}  // namespace

int run_compact(const CompactOptions& options) {
  const std::filesystem::path& target = options.output.empty() ? options.file : options.output;
  persist::RewriteOptions rewrite;
  rewrite.compression = options.compression;
  rewrite.compressed_sections = options.sections;
  rewrite.compression_max_ratio = options.max_ratio;

  ProgressLine progress("compacting");
  std::error_code unknown;  // no progress line then; the rewrite reports the problem
  const std::uintmax_t size = std::filesystem::file_size(options.file, unknown);
  progress.start(unknown ? 0 : size);
  auto rewritten = persist::rewrite_snapshot(options.file, target, rewrite);
  progress.clear();  // erase the line before printing anything else
  if (!rewritten) {
    const persist::PersistError& error = rewritten.error();
    // Only the command line's options can be out of range here.
    if (error.kind() == persist::ErrorKind::InvalidConfig) {
      print_error(persist::to_string(error.kind()), error.message());
      return kExitUsage;
    }
    return report(error);
  }
  const std::string text = render(options, rewritten.value());
  std::fputs(text.c_str(), stdout);
  return kExitOk;
}

}  // namespace iqdb::tools
