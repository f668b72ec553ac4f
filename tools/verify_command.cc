#include "verify_command.h"

#include <fmt/format.h>

#include "iqdb/persist/verify_snapshot.h"
#include "output/exit_status.h"
#include "output/progress.h"
#include "output/stopwatch.h"
#include "output/text_format.h"

namespace iqdb::tools {

int run_verify(const VerifyCommandOptions& options) {
  ProgressLine progress("verifying");
  persist::VerifyOptions verify_options;
  verify_options.threads = options.threads;
  verify_options.progress_interval = std::chrono::milliseconds(100);
  verify_options.progress = [&progress](std::uint64_t done, std::uint64_t total) {
    progress.update(done, total);
  };

  const Stopwatch time;
  auto report_or_error = persist::verify_snapshot(options.file, verify_options);
  const double seconds = time.seconds();
  progress.clear();  // erase the line before printing anything else
  if (!report_or_error) return report(report_or_error.error());

  const persist::VerifyReport& result = report_or_error.value();
  fmt::print("OK: {}: {} sections, {} bytes verified in {} ({})\n",
             escape_for_terminal(options.file.string()), result.header.sections.size(),
             result.bytes_checked, format_seconds(seconds),
             format_rate(result.bytes_checked, seconds));
  return kExitOk;
}

}  // namespace iqdb::tools
