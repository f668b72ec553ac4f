#include "publish_command.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "iqdb/persist/file_system.h"
#include "iqdb/persist/shared_memory.h"
#include "output/exit_status.h"
#include "output/json_writer.h"
#include "output/text_format.h"
#include "stop_signals.h"

namespace iqdb::tools {
namespace {

using persist::FileStatus;
using persist::PersistError;
using persist::PublishReport;
using persist::SharedPublisher;
using Clock = std::chrono::steady_clock;

std::string render_json(const PublishReport& report) {
  JsonWriter json(JsonWriter::Layout::OneLine);
  json.begin_object();
  json.key("generation").number(report.generation);
  json.key("object").string(report.object);
  json.key("wal_lsn").number(report.wal_lsn);
  json.key("image_bytes").number(report.image_bytes);
  json.key("source_bytes").number(report.source_bytes);
  json.key("seconds").fixed(report.seconds, 6);
  json.end_object();
  return json.str();
}

std::string render_text(const PublishReport& report) {
  return fmt::format("generation {}  {}  wal lsn {}  image {}  source {}  in {}\n",
                     report.generation, escape_for_terminal(report.object), report.wal_lsn,
                     format_bytes(report.image_bytes), format_bytes(report.source_bytes),
                     format_seconds(report.seconds));
}

// Prints a generation's line and flushes it at once: whoever reads the
// output (a script, a supervisor's log) learns of a generation as soon as
// processes can attach it. False if standard output failed.
bool print_generation(const PublishReport& report, bool json) {
  const std::string text = json ? render_json(report) : render_text(report);
  std::fputs(text.c_str(), stdout);
  if (std::fflush(stdout) == 0) return true;
  print_error("Io", "cannot write to standard output");
  return false;
}

// The last publication of FILE that failed. publish_if_changed() does not
// read a file that failed again (it returns the same error); the follower
// also prints that error once per file, not at every poll.
struct LastFailure {
  std::optional<FileStatus> file;  // its identity, if it could be taken
  std::string error;               // as printed
};

void report_failure(const PersistError& error, std::optional<FileStatus> identity,
                    std::uint64_t generation, LastFailure& last) {
  std::string text = error.to_string();
  // Without an identity (FILE cannot even be looked at) every poll fails
  // alike: say it once, not ten times a second.
  if (identity || text != last.error) {
    print_error(persist::to_string(error.kind()),
                fmt::format("{} (not published; generation {} stays current)", error.message(),
                            generation));
  }
  last.file = identity;
  last.error = std::move(text);
}

// One poll: publishes FILE if it changed (printing the new generation's
// line) or reports why it could not. False if standard output failed.
bool poll_source(SharedPublisher& publisher, const std::filesystem::path& file, bool json,
                 LastFailure& last) {
  // Taken before the attempt, so that a file replacing FILE while a
  // publication fails is not mistaken for the failed one.
  auto identity = persist::default_file_system()->status(file);
  if (identity && last.file == identity.value()) return true;
  auto published = publisher.publish_if_changed(file);
  if (!published) {
    report_failure(published.error(), identity ? std::optional(identity.value()) : std::nullopt,
                   publisher.generation(), last);
    return true;
  }
  last = LastFailure{};
  return !published.value() || print_generation(*published.value(), json);
}

// Sleeps until the next poll is due; false once it is time to stop: a stop
// signal arrived, or `end` (if any) has passed.
bool wait_for_poll(const StopSignals& signals, Clock::duration poll,
                   std::optional<Clock::time_point> end) {
  if (end) {
    const Clock::time_point now = Clock::now();
    if (now >= *end) return false;
    poll = std::min<Clock::duration>(poll, *end - now);
  }
  return !signals.wait(poll);
}

}  // namespace

// The publisher is withdrawn on every way out: explicitly at the end (so
// that a failure to remove an object is reported), by its destructor on an
// early return. A process killed outright leaves its objects; the next
// publisher of NAME, or `iqdb-persist unpublish NAME`, removes them.
int run_publish(const PublishCommandOptions& options) {
  const StopSignals signals;  // before the publisher starts decoding threads
  auto opened = SharedPublisher::open(options.name);
  if (!opened) return report(opened.error());
  SharedPublisher publisher = std::move(opened).value();
  // Named in full: attachers, in directories of their own, are told which
  // file they serve (SharedDescriptor::source_path).
  std::error_code ignored;
  std::filesystem::path file = std::filesystem::absolute(options.file, ignored);
  if (file.empty()) file = options.file;
  if (!options.json) {
    fmt::print("publishing {} as '{}'\n", escape_for_terminal(file.string()),
               escape_for_terminal(options.name));
  }
  auto first = publisher.publish(file);
  if (!first) return report(first.error());
  if (!print_generation(first.value(), options.json)) return kExitOther;

  const auto poll = std::chrono::milliseconds(options.poll_ms);
  std::optional<Clock::time_point> end;
  if (options.seconds != 0) end = Clock::now() + std::chrono::seconds(options.seconds);
  LastFailure last;
  while (wait_for_poll(signals, poll, end)) {
    if (!poll_source(publisher, file, options.json, last)) return kExitOther;
  }

  const std::uint64_t generation = publisher.generation();
  if (auto withdrawn = publisher.withdraw(); !withdrawn) return report(withdrawn.error());
  if (!options.json) {
    fmt::print("withdrew '{}' (generation {} was current)\n", escape_for_terminal(options.name),
               generation);
  }
  return kExitOk;
}

}  // namespace iqdb::tools
